//! [`FakeNameServer`]: answers route and cluster queries from registrations and
//! explicit routes.

use std::collections::BTreeMap;
use std::io;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::route::{BrokerData, ClusterInfo, MASTER_ID, QueueData, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use tokio::sync::Notify;

use super::dialect::Dialect;
use super::server::{FakeServer, Handler, HandlerCtx, wait_on};
use super::transport::Transport;

/// The port memory name servers are bound at first (then upward).
const BASE_PORT: u16 = 9876;

#[derive(Debug, Default)]
struct Routes {
    /// Registered brokers by broker name.
    brokers: BTreeMap<String, BrokerData>,
    /// topic → broker name → queue data, from broker registrations.
    topics: BTreeMap<String, BTreeMap<String, QueueData>>,
    /// Routes set by the test; they win over registrations.
    explicit: BTreeMap<String, TopicRouteData>,
}

impl Routes {
    fn route(&self, topic: &str) -> Option<TopicRouteData> {
        if let Some(r) = self.explicit.get(topic) {
            return Some(r.clone());
        }
        let queues = self.topics.get(topic).filter(|q| !q.is_empty())?;
        Some(TopicRouteData {
            order_topic_conf: None,
            queue_datas: queues.values().cloned().collect(),
            broker_datas: queues
                .keys()
                .filter_map(|name| self.brokers.get(name).cloned())
                .collect(),
            warnings: Vec::new(),
        })
    }

    fn cluster_info(&self) -> ClusterInfo {
        let mut info = ClusterInfo::default();
        for (name, b) in &self.brokers {
            info.broker_addr_table.insert(name.clone(), b.clone());
            info.cluster_addr_table
                .entry(b.cluster.clone())
                .or_default()
                .insert(name.clone());
        }
        info
    }
}

#[derive(Debug, Default)]
pub(crate) struct NameServerState {
    routes: Mutex<Routes>,
}

impl NameServerState {
    fn lock(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Handler for NameServerState {
    fn handle(&self, ctx: &HandlerCtx<'_>, request: &RemotingCommand) -> Option<RemotingCommand> {
        let code = request.request_code();
        let response = if code == RequestCode::GET_ROUTEINFO_BY_TOPIC {
            match request.decode_header::<GetRouteInfoRequestHeader>() {
                Err(e) => RemotingCommand::response_to(request, ResponseCode::INVALID_PARAMETER)
                    .remark(format!("Request header is invalid: {e}")),
                Ok(h) => match self.lock().route(&h.topic) {
                    Some(route) => {
                        let standard = ctx.dialect.route_json.standard_for(
                            request.version,
                            h.accept_standard_json_only.unwrap_or(false),
                        );
                        let body = if standard {
                            route.to_json()
                        } else {
                            route.to_java_legacy_json()
                        };
                        RemotingCommand::response_to(request, ResponseCode::SUCCESS).body(body)
                    }
                    None => RemotingCommand::response_to(request, ResponseCode::TOPIC_NOT_EXIST).remark(format!(
                        "No topic route info in name server for the topic: {}\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.",
                        h.topic
                    )),
                },
            }
        } else if code == RequestCode::GET_BROKER_CLUSTER_INFO {
            RemotingCommand::response_to(request, ResponseCode::SUCCESS)
                .body(self.lock().cluster_info().to_json())
        } else if request.is_oneway() {
            return None;
        } else {
            RemotingCommand::response_to(request, ResponseCode::REQUEST_CODE_NOT_SUPPORTED)
                .remark(format!(" request type {} not supported", request.code))
        };
        Some(response)
    }
}

/// A fake name server: GET_ROUTEINFO_BY_TOPIC (105) and GET_BROKER_CLUSTER_INFO (106);
/// other codes get REQUEST_CODE_NOT_SUPPORTED (3).
///
/// A topic's route is the one set with [`set_route`](Self::set_route), or else built
/// from what brokers registered ([`register_broker`](Self::register_broker),
/// [`register_topic`](Self::register_topic); [`FakeBroker`](super::FakeBroker)s do
/// this themselves when they create a topic). Unknown topics get TOPIC_NOT_EXIST (17).
/// The route body is standard JSON or the legacy Java form, per
/// [`Dialect::route_json`]. Dereferences to [`FakeServer`] for scripts, records and
/// lifecycle.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
/// use rmq_testkit::fake::{FakeNameServer, Transport};
///
/// let ns = FakeNameServer::start(&Transport::memory()).await?;
/// ns.set_route("T", TopicRouteData {
///     queue_datas: vec![QueueData::new("broker-a", 4, 4, 6)],
///     broker_datas: vec![BrokerData::new("DefaultCluster", "broker-a").with_addr(0, "127.0.0.1:10911")],
///     ..TopicRouteData::default()
/// });
/// assert_eq!(ns.route("T").unwrap().queue_datas[0].write_queue_nums, 4);
/// assert_eq!(ns.addr(), "127.0.0.1:9876");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct FakeNameServer {
    server: FakeServer,
    state: Arc<NameServerState>,
}

impl Deref for FakeNameServer {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeNameServer {
    /// Starts a name server on `transport` with the default [`Dialect`]: in memory at
    /// the first free `127.0.0.1:<port>` from 9876, on TCP at an OS-chosen port.
    pub async fn start(transport: &Transport) -> io::Result<Self> {
        Self::start_with(transport, None, Dialect::default()).await
    }

    /// Starts a name server with a fixed memory address (ignored on TCP) and a dialect.
    pub async fn start_with(
        transport: &Transport,
        addr: Option<&str>,
        dialect: Dialect,
    ) -> io::Result<Self> {
        Self::start_shared(transport, addr, dialect, None)
    }

    /// Starts a name server whose events wake `events` (shared within a cluster).
    pub(crate) fn start_shared(
        transport: &Transport,
        addr: Option<&str>,
        dialect: Dialect,
        events: Option<Arc<Notify>>,
    ) -> io::Result<Self> {
        let state = Arc::new(NameServerState::default());
        let server = FakeServer::start(
            "namesrv",
            transport,
            addr,
            BASE_PORT,
            state.clone(),
            dialect,
            events,
        )?;
        Ok(Self { server, state })
    }

    /// Sets the route served for `topic`, overriding registrations.
    pub fn set_route(&self, topic: impl Into<String>, route: TopicRouteData) {
        self.state.lock().explicit.insert(topic.into(), route);
    }

    /// Forgets `topic` entirely (explicit route and registrations): it gets
    /// TOPIC_NOT_EXIST until set or registered again.
    pub fn remove_route(&self, topic: &str) {
        let mut r = self.state.lock();
        r.explicit.remove(topic);
        r.topics.remove(topic);
    }

    /// The route that would be served for `topic` now.
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        self.state.lock().route(topic)
    }

    /// The cluster info that would be served now.
    pub fn cluster_info(&self) -> ClusterInfo {
        self.state.lock().cluster_info()
    }

    /// Registers (or re-addresses) the master of broker `broker_name`.
    pub fn register_broker(&self, cluster: &str, broker_name: &str, addr: &str) {
        let mut r = self.state.lock();
        let entry = r
            .brokers
            .entry(broker_name.to_owned())
            .or_insert_with(|| BrokerData::new(cluster, broker_name));
        entry.cluster = cluster.to_owned();
        entry.broker_addrs.insert(MASTER_ID, addr.to_owned());
    }

    /// Removes a broker and every queue it registered.
    pub fn unregister_broker(&self, broker_name: &str) {
        let mut r = self.state.lock();
        r.brokers.remove(broker_name);
        for queues in r.topics.values_mut() {
            queues.remove(broker_name);
        }
    }

    /// Registers `queue_data.broker_name`'s queues of `topic` (replacing earlier ones).
    pub fn register_topic(&self, topic: &str, queue_data: QueueData) {
        let mut r = self.state.lock();
        r.topics
            .entry(topic.to_owned())
            .or_default()
            .insert(queue_data.broker_name.clone(), queue_data);
    }

    /// Removes one broker's queues of `topic`.
    pub fn unregister_topic(&self, topic: &str, broker_name: &str) {
        if let Some(q) = self.state.lock().topics.get_mut(topic) {
            q.remove(broker_name);
        }
    }

    /// Waits until `ready(self)` holds, re-checking after every event of this server
    /// (requests, connections). Bound it with `tokio::time::timeout`.
    pub async fn wait_until(&self, ready: impl FnMut(&Self) -> bool) {
        wait_on(self.server.events(), self, ready).await;
    }

    /// The underlying server controls (also reachable through `Deref`).
    pub fn server(&self) -> &FakeServer {
        &self.server
    }
}
