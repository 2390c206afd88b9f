//! [`FakeCluster`]: a name server and brokers wired together.

use std::io;
use std::sync::Arc;

use rmq_protocol::route::TopicRouteData;
use rmq_remoting::Connector;
use tokio::sync::Notify;

use super::broker::FakeBroker;
use super::dialect::Dialect;
use super::name_server::FakeNameServer;
use super::server::wait_on;
use super::store::StoredMessage;
use super::transport::Transport;

/// Builds a [`FakeCluster`]; see [`FakeCluster::builder`].
#[derive(Debug)]
pub struct FakeClusterBuilder {
    brokers: Vec<String>,
    transport: Transport,
    topics: Vec<(String, u32)>,
    auto_create_topics: bool,
    cluster_name: String,
    dialect: Dialect,
}

impl FakeClusterBuilder {
    /// The broker names (default `["broker-a"]`), one master each.
    pub fn brokers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.brokers = names.into_iter().map(Into::into).collect();
        self
    }

    /// The transport of every server (default: a fresh memory network).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Creates `topic` on every broker with `queues_per_broker` queues.
    pub fn topic(mut self, topic: impl Into<String>, queues_per_broker: u32) -> Self {
        self.topics.push((topic.into(), queues_per_broker));
        self
    }

    /// Auto-create of unknown topics from TBW102 on every broker (default off).
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }

    /// The cluster name (default `DefaultCluster`).
    pub fn cluster_name(mut self, name: impl Into<String>) -> Self {
        self.cluster_name = name.into();
        self
    }

    /// The dialect of every server.
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Starts the name server, then the brokers, which register with it.
    pub async fn build(self) -> io::Result<FakeCluster> {
        let events = Arc::new(Notify::new());
        let name_server = FakeNameServer::start_shared(
            &self.transport,
            None,
            self.dialect,
            Some(events.clone()),
        )?;
        let mut brokers = Vec::with_capacity(self.brokers.len());
        for name in &self.brokers {
            let mut b = FakeBroker::builder(name.clone())
                .cluster(self.cluster_name.clone())
                .transport(self.transport.clone())
                .dialect(self.dialect)
                .auto_create_topics(self.auto_create_topics)
                .name_server(&name_server);
            b.events = Some(events.clone());
            for (topic, queues) in &self.topics {
                b = b.topic(topic.clone(), *queues);
            }
            brokers.push(b.start().await?);
        }
        Ok(FakeCluster {
            name_server,
            brokers,
            transport: self.transport,
            events,
        })
    }
}

/// A fake RocketMQ cluster: one [`FakeNameServer`] and master-only [`FakeBroker`]s
/// registered with it, on one [`Transport`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use rmq_testkit::fake::{FakeCluster, Transport};
///
/// let cluster = FakeCluster::builder()
///     .brokers(["broker-a", "broker-b"])
///     .transport(Transport::memory())
///     .topic("T", 4)
///     .build()
///     .await?;
/// let route = cluster.route_for("T").unwrap();
/// assert_eq!(route.queue_datas.len(), 2);
/// let _connector = cluster.connector(); // the producer under test dials through this
/// // ... point the producer at cluster.name_server_addr(), send, then:
/// assert_eq!(cluster.messages_for("T").len(), 0);
/// cluster.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct FakeCluster {
    name_server: FakeNameServer,
    brokers: Vec<FakeBroker>,
    transport: Transport,
    events: Arc<Notify>,
}

impl FakeCluster {
    /// A builder: one broker `broker-a`, memory transport, no topics.
    pub fn builder() -> FakeClusterBuilder {
        FakeClusterBuilder {
            brokers: vec!["broker-a".to_owned()],
            transport: Transport::memory(),
            topics: Vec::new(),
            auto_create_topics: false,
            cluster_name: "DefaultCluster".to_owned(),
            dialect: Dialect::default(),
        }
    }

    /// The name server.
    pub fn name_server(&self) -> &FakeNameServer {
        &self.name_server
    }

    /// The name server's address.
    pub fn name_server_addr(&self) -> &str {
        self.name_server.addr()
    }

    /// The brokers, in builder order.
    pub fn brokers(&self) -> &[FakeBroker] {
        &self.brokers
    }

    /// The broker named `name`.
    pub fn broker(&self, name: &str) -> Option<&FakeBroker> {
        self.brokers.iter().find(|b| b.broker_name() == name)
    }

    /// The broker listening on `addr`.
    pub fn broker_at(&self, addr: &str) -> Option<&FakeBroker> {
        self.brokers.iter().find(|b| b.addr() == addr)
    }

    /// The route the name server serves for `topic`.
    pub fn route_for(&self, topic: &str) -> Option<TopicRouteData> {
        self.name_server.route(topic)
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// A connector that reaches every server of the cluster.
    pub fn connector(&self) -> Arc<dyn Connector> {
        self.transport.connector()
    }

    /// Creates `topic` on every broker with `queues_per_broker` queues.
    pub fn create_topic(&self, topic: &str, queues_per_broker: u32) {
        for b in &self.brokers {
            b.create_topic(topic, queues_per_broker);
        }
    }

    /// The stored messages of `topic` on every broker, broker by broker.
    pub fn messages_for(&self, topic: &str) -> Vec<StoredMessage> {
        self.brokers
            .iter()
            .flat_map(|b| b.messages_for(topic))
            .collect()
    }

    /// Every stored copy of the message with this `UNIQ_KEY`, on any broker.
    pub fn find_by_uniq_key(&self, uniq_key: &str) -> Vec<StoredMessage> {
        self.brokers
            .iter()
            .flat_map(|b| b.find_by_uniq_key(uniq_key))
            .collect()
    }

    /// Waits until `ready(self)` holds, re-checking after every event of any server of
    /// the cluster. Bound it with `tokio::time::timeout`.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &rmq_testkit::fake::FakeCluster) {
    /// use std::time::Duration;
    /// let all_stored = cluster.wait_until(|c| c.messages_for("T").len() >= 100);
    /// tokio::time::timeout(Duration::from_secs(10), all_stored).await.expect("100 messages");
    /// # }
    /// ```
    pub async fn wait_until(&self, ready: impl FnMut(&Self) -> bool) {
        wait_on(&self.events, self, ready).await;
    }

    /// Shuts every server down.
    pub async fn shutdown(&self) {
        for b in &self.brokers {
            b.shutdown().await;
        }
        self.name_server.shutdown().await;
    }
}
