//! Admin requests that real-cluster tests need and no producer API offers: listing
//! the masters, creating a topic on each of them, waiting until the name server
//! routes it, and reading a topic back with raw PULL_MESSAGE requests (this
//! workspace has no consumer).
//!
//! Every request goes through an [`Invoke`] (a `Pool`, usually), with the header
//! serialization and time budget the test chose. Failures are [`AdminError`]s that
//! name the request and the address; nothing here panics on what a broker sends.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use rmq_remoting::{Pool, PoolConfig, TcpConnector};
//! use rmq_testkit::real_cluster::{Admin, unique_topic};
//!
//! let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
//! let admin = Admin::new(&pool, "127.0.0.1:9876");
//! let masters = admin.masters().await?;
//! let topic = unique_topic("doc");
//! admin.create_topic(&masters, &topic, 4).await?;
//! admin.wait_routed(&topic, masters.len()).await?;
//! // ... send ...
//! let stored = admin.pull_all(&masters, &topic, 4, "doc_group").await?;
//! println!("{} messages stored", stored.len());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use rmq_protocol::header::create_topic::CreateTopicRequestHeader;
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::header::pull_message::PullMessageRequestHeader;
use rmq_protocol::message::stored::{MessageExt, decode_stored_all};
use rmq_protocol::route::{ClusterInfo, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_remoting::Invoke;

/// An admin request failed: which request, to which address, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError(String);

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AdminError {}

/// Stored messages of a topic by UNIQ_KEY: every copy, with the name of the broker
/// that stores it.
pub type StoredByKey = HashMap<String, Vec<(String, MessageExt)>>;

/// Admin requests against one real cluster (see the module documentation).
pub struct Admin<'a> {
    invoke: &'a dyn Invoke,
    namesrv: String,
    serialize: SerializeType,
    budget: Duration,
}

impl fmt::Debug for Admin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("namesrv", &self.namesrv)
            .field("serialize", &self.serialize)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl<'a> Admin<'a> {
    /// Admin requests through `invoke` to the cluster whose name server is `namesrv`:
    /// binary headers, 10 s per request.
    pub fn new(invoke: &'a dyn Invoke, namesrv: &str) -> Self {
        Self {
            invoke,
            namesrv: namesrv.to_owned(),
            serialize: SerializeType::ROCKETMQ,
            budget: Duration::from_secs(10),
        }
    }

    /// The header serialization of every request (a test run's `RMQ_IT_HEADER`).
    #[must_use]
    pub fn serialize(mut self, serialize: SerializeType) -> Self {
        self.serialize = serialize;
        self
    }

    /// The time budget of each request, and of [`wait_routed`](Self::wait_routed).
    #[must_use]
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    async fn call(
        &self,
        what: &str,
        addr: &str,
        cmd: RemotingCommand,
    ) -> Result<RemotingCommand, AdminError> {
        self.invoke
            .invoke(addr, cmd.serialize_type(self.serialize), self.budget)
            .await
            .map_err(|e| AdminError(format!("{what} at {addr}: {e}")))
    }

    /// Every master as (broker name, address), sorted by name (GET_BROKER_CLUSTER_INFO).
    pub async fn masters(&self) -> Result<Vec<(String, String)>, AdminError> {
        let what = "cluster info";
        let resp = self
            .call(
                what,
                &self.namesrv,
                RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO),
            )
            .await?;
        if resp.response_code() != ResponseCode::SUCCESS {
            return Err(AdminError(format!(
                "{what} at {}: code {} ({:?})",
                self.namesrv, resp.code, resp.remark
            )));
        }
        let info = ClusterInfo::parse(resp.body_bytes())
            .map_err(|e| AdminError(format!("{what} at {}: bad body: {e}", self.namesrv)))?;
        let mut masters: Vec<(String, String)> = info
            .broker_addr_table
            .values()
            .filter_map(|b| Some((b.broker_name.clone(), b.master_addr()?.to_owned())))
            .collect();
        masters.sort();
        Ok(masters)
    }

    /// Creates `topic` with `queues` read and write queues on every one of `masters`
    /// (UPDATE_AND_CREATE_TOPIC); each must answer SUCCESS.
    pub async fn create_topic(
        &self,
        masters: &[(String, String)],
        topic: &str,
        queues: i32,
    ) -> Result<(), AdminError> {
        for (name, addr) in masters {
            let what = format!("create topic {topic} on {name}");
            let req = RemotingCommand::with_header(
                RequestCode::UPDATE_AND_CREATE_TOPIC,
                &CreateTopicRequestHeader::new(topic, queues),
            );
            let resp = self.call(&what, addr, req).await?;
            if resp.response_code() != ResponseCode::SUCCESS {
                return Err(AdminError(format!(
                    "{what} at {addr}: code {} ({:?})",
                    resp.code, resp.remark
                )));
            }
        }
        Ok(())
    }

    /// Waits (up to three budgets) until the name server's route of `topic` names at
    /// least `brokers` brokers: a topic just created reaches the name server with the
    /// brokers' next registration.
    pub async fn wait_routed(&self, topic: &str, brokers: usize) -> Result<(), AdminError> {
        let give_up = Instant::now() + self.budget * 3;
        let what = format!("route of {topic}");
        loop {
            let req = RemotingCommand::with_header(
                RequestCode::GET_ROUTEINFO_BY_TOPIC,
                &GetRouteInfoRequestHeader::new(topic),
            );
            let resp = self.call(&what, &self.namesrv, req).await?;
            let named = if resp.response_code() == ResponseCode::SUCCESS {
                TopicRouteData::parse(resp.body_bytes()).map_or(0, |r| r.queue_datas.len())
            } else {
                0
            };
            if named >= brokers {
                return Ok(());
            }
            if Instant::now() >= give_up {
                return Err(AdminError(format!(
                    "{what}: names {named} brokers, not {brokers}, after {:?}",
                    self.budget * 3
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every message readable in `topic` now (queues `0..queues` of every master, from
    /// offset 0, 32 per pull), by UNIQ_KEY. `group` is the consumer group named in the
    /// pulls. A queue that answers anything but SUCCESS (no message yet, no such queue)
    /// reads as empty.
    pub async fn pull_all(
        &self,
        masters: &[(String, String)],
        topic: &str,
        queues: i32,
        group: &str,
    ) -> Result<StoredByKey, AdminError> {
        let mut out = StoredByKey::new();
        for (name, addr) in masters {
            for queue in 0..queues {
                let what = format!("pull {topic}@{name}:{queue}");
                let mut offset = 0;
                loop {
                    let mut h = PullMessageRequestHeader::one_shot(group, topic, queue, offset, 32);
                    h.bname = Some(name.clone());
                    let req = RemotingCommand::with_header(RequestCode::PULL_MESSAGE, &h);
                    let resp = self.call(&what, addr, req).await?;
                    if resp.response_code() != ResponseCode::SUCCESS {
                        break;
                    }
                    let mut n = 0;
                    for m in decode_stored_all(resp.body_bytes()) {
                        let m = m.map_err(|e| {
                            AdminError(format!("{what} at {addr}: bad stored message: {e}"))
                        })?;
                        n += 1;
                        offset = offset.max(m.queue_offset + 1);
                        let key = m.msg_id().unwrap_or_default().to_owned();
                        out.entry(key).or_default().push((name.clone(), m));
                    }
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}
