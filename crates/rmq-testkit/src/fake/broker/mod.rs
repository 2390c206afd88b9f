//! [`FakeBroker`]: stores what producers send and answers like a RocketMQ broker.

mod handle;
mod reply;
mod send;

pub use reply::ReplyRecord;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use bytes::BytesMut;
use rmq_protocol::header::check_transaction_state::CheckTransactionStateRequestHeader;
use rmq_protocol::id::uniq::{UniqIdGenerator, UniqIdPrefix};
use rmq_protocol::message::properties::keys;
use rmq_protocol::route::{QueueData, perm};
use rmq_protocol::{RemotingCommand, RequestCode};
use tokio::sync::Notify;

use super::clients::{ClientRegistry, EndTransactionRecord, HeartbeatRecord};
use super::dialect::Dialect;
use super::name_server::FakeNameServer;
use super::record::ConnectionId;
use super::server::{FakeServer, PushError, ServerInner, wait_on};
use super::store::{Store, StoredMessage, TopicConfig, encode_stored_dialect};
use super::transport::{Transport, store_host};

/// The port memory brokers are bound at first (then upward).
const BASE_PORT: u16 = 10911;

/// The auto-create key topic.
pub const DEFAULT_TOPIC: &str = "TBW102";

/// The broker's default limit on a message body (and a whole batch): 4 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

#[derive(Debug)]
struct Settings {
    auto_create_topics: bool,
    max_message_size: usize,
    region: String,
    trace_on: bool,
    writable: bool,
}

#[derive(Debug)]
struct BrokerInner {
    store: Store,
    settings: Settings,
    clients: ClientRegistry,
}

/// The broker's state, shared by its handle and its request handler.
#[derive(Debug)]
pub(crate) struct BrokerState {
    name: String,
    cluster: String,
    addr: OnceLock<String>,
    inner: Mutex<BrokerInner>,
    name_servers: Mutex<Vec<FakeNameServer>>,
    uniq: UniqIdGenerator,
    /// The server, for replies pushed to requesters (set at start; weak: the server
    /// owns this state).
    server: OnceLock<Weak<ServerInner>>,
    /// Replies routed to requesters.
    replies: reply::Replies,
}

impl BrokerState {
    fn lock(&self) -> MutexGuard<'_, BrokerInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn addr(&self) -> &str {
        self.addr.get().map_or("127.0.0.1:10911", String::as_str)
    }

    /// Tells every name server about these topics of this broker.
    fn register_topics(&self, topics: &[(String, TopicConfig)]) {
        let servers = self
            .name_servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ns in &servers {
            ns.register_broker(&self.cluster, &self.name, self.addr());
            for (topic, cfg) in topics {
                let mut qd = QueueData::new(
                    &self.name,
                    cfg.read_queue_nums,
                    cfg.write_queue_nums,
                    cfg.perm,
                );
                qd.topic_sys_flag = cfg.topic_sys_flag;
                ns.register_topic(topic, qd);
            }
        }
    }
}

/// Builds a [`FakeBroker`]; see [`FakeBroker::builder`].
#[derive(Debug)]
pub struct FakeBrokerBuilder {
    name: String,
    cluster: String,
    transport: Transport,
    addr: Option<String>,
    dialect: Dialect,
    auto_create_topics: bool,
    name_servers: Vec<FakeNameServer>,
    topics: Vec<(String, u32)>,
    pub(crate) events: Option<Arc<Notify>>,
}

impl FakeBrokerBuilder {
    /// The cluster name (default `DefaultCluster`).
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = cluster.into();
        self
    }

    /// The transport (default: a fresh memory network).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// A fixed memory address (ignored on TCP). Default: the first free
    /// `127.0.0.1:<port>` from 10911.
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = Some(addr.into());
        self
    }

    /// The wire dialect.
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Whether a send to an unknown topic creates it from TBW102 (default off). On:
    /// the broker hosts TBW102 (8 queues, perm 7) and registers it.
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }

    /// Registers with this name server (the broker and every topic it creates).
    pub fn name_server(mut self, ns: &FakeNameServer) -> Self {
        self.name_servers.push(ns.clone());
        self
    }

    /// Creates `topic` with `queues` read-write queues at start.
    pub fn topic(mut self, topic: impl Into<String>, queues: u32) -> Self {
        self.topics.push((topic.into(), queues));
        self
    }

    /// Starts the broker.
    pub async fn start(self) -> io::Result<FakeBroker> {
        let host = store_host(self.addr.as_deref().unwrap_or("")).ip();
        let hash = self.name.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let state = Arc::new(BrokerState {
            name: self.name.clone(),
            cluster: self.cluster,
            addr: OnceLock::new(),
            inner: Mutex::new(BrokerInner {
                store: Store::default(),
                settings: Settings {
                    auto_create_topics: false,
                    max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                    region: "DefaultRegion".to_owned(),
                    trace_on: true,
                    writable: true,
                },
                clients: ClientRegistry::default(),
            }),
            name_servers: Mutex::new(self.name_servers),
            uniq: UniqIdGenerator::new(UniqIdPrefix::new(host, std::process::id(), hash)),
            server: OnceLock::new(),
            replies: reply::Replies::default(),
        });
        let server = FakeServer::start(
            &self.name,
            &self.transport,
            self.addr.as_deref(),
            BASE_PORT,
            state.clone(),
            self.dialect,
            self.events,
        )?;
        let _ = state.addr.set(server.addr().to_owned());
        let _ = state.server.set(Arc::downgrade(&server.inner));
        let broker = FakeBroker { server, state };
        broker.state.register_topics(&[]);
        broker.set_auto_create_topics(self.auto_create_topics);
        for (topic, queues) in self.topics {
            broker.create_topic(&topic, queues);
        }
        Ok(broker)
    }
}

/// A fake broker.
///
/// Handles SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320; a batch
/// when the header says `batch`/`m`), PULL_MESSAGE (11), UPDATE_AND_CREATE_TOPIC (17),
/// GET_MAX_OFFSET (30), HEART_BEAT (34), UNREGISTER_CLIENT (35), END_TRANSACTION
/// (37) and SEND_REPLY_MESSAGE (324/325, routed to the requester: see
/// [`replies`](Self::replies)); other codes get REQUEST_CODE_NOT_SUPPORTED (3) unless one-way. Sends are
/// validated like a real broker (unknown topic → TOPIC_NOT_EXIST unless auto-create,
/// queue id out of range → SYSTEM_ERROR, body over 4 MiB → MESSAGE_ILLEGAL) and every
/// accepted message is kept in a queryable store. Dereferences to [`FakeServer`] for
/// scripts, records, ACL and lifecycle.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use rmq_testkit::fake::{FakeBroker, FakeNameServer, Transport};
///
/// let transport = Transport::memory();
/// let ns = FakeNameServer::start(&transport).await?;
/// let broker = FakeBroker::builder("broker-a")
///     .transport(transport.clone())
///     .name_server(&ns)
///     .topic("T", 4)
///     .start()
///     .await?;
/// let route = ns.route("T").unwrap();
/// assert_eq!(route.broker_datas[0].master_addr(), Some(broker.addr()));
/// assert!(broker.messages_for("T").is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct FakeBroker {
    server: FakeServer,
    state: Arc<BrokerState>,
}

impl Deref for FakeBroker {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeBroker {
    /// A builder for a broker named `name` (cluster `DefaultCluster`, memory transport).
    pub fn builder(name: impl Into<String>) -> FakeBrokerBuilder {
        FakeBrokerBuilder {
            name: name.into(),
            cluster: "DefaultCluster".to_owned(),
            transport: Transport::memory(),
            addr: None,
            dialect: Dialect::default(),
            auto_create_topics: false,
            name_servers: Vec::new(),
            topics: Vec::new(),
            events: None,
        }
    }

    /// Starts a broker named `name` on `transport` with default settings.
    pub async fn start(name: impl Into<String>, transport: &Transport) -> io::Result<Self> {
        Self::builder(name)
            .transport(transport.clone())
            .start()
            .await
    }

    /// The broker name.
    pub fn broker_name(&self) -> &str {
        &self.state.name
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.state.cluster
    }

    /// Waits until `ready(self)` holds, re-checking after every event of this broker
    /// (requests, stored messages, heartbeats, connections). Bound it with
    /// `tokio::time::timeout`.
    ///
    /// ```no_run
    /// # async fn demo(broker: &rmq_testkit::fake::FakeBroker) {
    /// use std::time::Duration;
    /// tokio::time::timeout(Duration::from_secs(5), broker.wait_until(|b| b.message_count() >= 3))
    ///     .await
    ///     .expect("three messages stored");
    /// # }
    /// ```
    pub async fn wait_until(&self, ready: impl FnMut(&Self) -> bool) {
        wait_on(self.server.events(), self, ready).await;
    }

    /// The underlying server controls (also reachable through `Deref`).
    pub fn server(&self) -> &FakeServer {
        &self.server
    }

    /// Registers the broker and its topics with `ns`, and every topic created later.
    pub fn register_with(&self, ns: &FakeNameServer) {
        self.state
            .name_servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ns.clone());
        let topics: Vec<_> = self.topics().into_iter().collect();
        self.state.register_topics(&topics);
    }

    // ----- topics and settings -----

    /// Creates (or replaces) `topic` with `queues` read-write queues and registers it.
    pub fn create_topic(&self, topic: &str, queues: u32) {
        self.set_topic_config(topic, TopicConfig::new(queues));
    }

    /// Creates (or replaces) `topic` with `config` and registers it.
    pub fn set_topic_config(&self, topic: &str, config: TopicConfig) {
        self.state
            .lock()
            .store
            .topics
            .insert(topic.to_owned(), config);
        self.state.register_topics(&[(topic.to_owned(), config)]);
    }

    /// Deletes a topic's configuration (its messages stay) and its registrations.
    pub fn delete_topic(&self, topic: &str) {
        self.state.lock().store.topics.remove(topic);
        let servers = self
            .state
            .name_servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ns in servers {
            ns.unregister_topic(topic, &self.state.name);
        }
    }

    /// A topic's configuration.
    pub fn topic(&self, topic: &str) -> Option<TopicConfig> {
        self.state.lock().store.topics.get(topic).copied()
    }

    /// Every topic configuration.
    pub fn topics(&self) -> BTreeMap<String, TopicConfig> {
        self.state.lock().store.topics.clone()
    }

    /// Turns auto-create on or off. On: TBW102 is created (8 queues, perm 7) if
    /// missing, and sends to unknown topics create them from it.
    pub fn set_auto_create_topics(&self, on: bool) {
        self.state.lock().settings.auto_create_topics = on;
        if on && self.topic(DEFAULT_TOPIC).is_none() {
            let mut cfg = TopicConfig::new(8);
            cfg.perm |= perm::INHERIT;
            self.set_topic_config(DEFAULT_TOPIC, cfg);
        }
    }

    /// The largest accepted body (default 4 MiB); larger ones get MESSAGE_ILLEGAL (13).
    pub fn set_max_message_size(&self, bytes: usize) {
        self.state.lock().settings.max_message_size = bytes;
    }

    /// Whether the broker accepts sends at all (a read-only broker answers
    /// NO_PERMISSION 16).
    pub fn set_writable(&self, writable: bool) {
        self.state.lock().settings.writable = writable;
    }

    /// The `MSG_REGION` and `TRACE_ON` values of send responses.
    pub fn set_region(&self, region: impl Into<String>, trace_on: bool) {
        let mut inner = self.state.lock();
        inner.settings.region = region.into();
        inner.settings.trace_on = trace_on;
    }

    // ----- the store -----

    /// Every stored message, in store order.
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.state.lock().store.messages.clone()
    }

    /// The stored messages of `topic` (half messages are in
    /// [`HALF_TOPIC`](super::HALF_TOPIC)).
    pub fn messages_for(&self, topic: &str) -> Vec<StoredMessage> {
        let inner = self.state.lock();
        inner
            .store
            .messages
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// Every stored message with this `UNIQ_KEY` (more than one: duplicates).
    pub fn find_by_uniq_key(&self, uniq_key: &str) -> Vec<StoredMessage> {
        let inner = self.state.lock();
        inner
            .store
            .messages
            .iter()
            .filter(|m| m.uniq_key.as_deref() == Some(uniq_key))
            .cloned()
            .collect()
    }

    /// How many messages are stored.
    pub fn message_count(&self) -> usize {
        self.state.lock().store.messages.len()
    }

    /// How many messages of `topic` are stored.
    pub fn message_count_for(&self, topic: &str) -> usize {
        let inner = self.state.lock();
        inner
            .store
            .messages
            .iter()
            .filter(|m| m.topic == topic)
            .count()
    }

    /// `UNIQ_KEY` → how often it is stored (values above 1 are duplicates).
    pub fn uniq_key_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for m in &self.state.lock().store.messages {
            if let Some(k) = &m.uniq_key {
                *counts.entry(k.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The next offset (message count) of a queue.
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.state.lock().store.max_offset(topic, queue_id)
    }

    // ----- clients -----

    /// Every HEART_BEAT received.
    pub fn heartbeats(&self) -> Vec<HeartbeatRecord> {
        self.state.lock().clients.heartbeats.clone()
    }

    /// Client ids with a live registration, and their connections.
    pub fn clients(&self) -> BTreeMap<String, ConnectionId> {
        self.state.lock().clients.by_client.clone()
    }

    /// Producer groups with a live registration, and their (latest) connections.
    pub fn producer_groups(&self) -> BTreeMap<String, ConnectionId> {
        self.state.lock().clients.by_group.clone()
    }

    /// Every reply (SEND_REPLY_MESSAGE / _V2) this broker routed to a requester, in
    /// order of completion. The broker stores each reply in its topic (queue 0) and
    /// pushes it with PUSH_REPLY_MESSAGE_TO_CLIENT to the connection that registered
    /// the reply's `REPLY_TO_CLIENT` by heartbeat; the responder's send is answered
    /// SUCCESS when the requester acknowledged the push, SYSTEM_ERROR otherwise.
    pub fn replies(&self) -> Vec<ReplyRecord> {
        self.state
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The reply topic of this broker's cluster, `<cluster>_REPLY_TOPIC`, to which
    /// responders send replies (create it with [`create_topic`](Self::create_topic)
    /// so that responders find a route).
    pub fn reply_topic(&self) -> String {
        format!("{}_REPLY_TOPIC", self.state.cluster)
    }

    /// Every END_TRANSACTION received.
    pub fn end_transactions(&self) -> Vec<EndTransactionRecord> {
        self.state.lock().clients.end_transactions.clone()
    }

    /// Sends `request` to the connection of client `client_id` (from its heartbeats);
    /// see [`FakeServer::send_request`].
    pub async fn push_to_client(
        &self,
        client_id: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<Option<RemotingCommand>, PushError> {
        let conn = self.clients().get(client_id).copied();
        let conn = conn.ok_or_else(|| PushError::NotRegistered(client_id.to_owned()))?;
        self.server.send_request(conn, request, timeout).await
    }

    /// Sends `request` to the latest connection that registered producer `group`.
    pub async fn push_to_group(
        &self,
        group: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<Option<RemotingCommand>, PushError> {
        let conn = self.producer_groups().get(group).copied();
        let conn = conn.ok_or_else(|| PushError::NotRegistered(group.to_owned()))?;
        self.server.send_request(conn, request, timeout).await
    }

    /// Asks the producer group of `half` (its `PGROUP` property) for the transaction's
    /// state: a one-way CHECK_TRANSACTION_STATE (39) like a real broker's, with the
    /// message (real topic and queue) in the body. Returns the connection used.
    pub async fn check_transaction_state(
        &self,
        half: &StoredMessage,
    ) -> Result<ConnectionId, PushError> {
        let group = half.property(keys::PGROUP).unwrap_or(&half.producer_group);
        let conn = self.producer_groups().get(group).copied();
        let conn = conn.ok_or_else(|| PushError::NotRegistered(group.to_owned()))?;
        let header = CheckTransactionStateRequestHeader {
            topic: Some(half.topic.clone()),
            tran_state_table_offset: half.queue_offset,
            commit_log_offset: half.commit_log_offset,
            msg_id: half.uniq_key.clone(),
            transaction_id: half.uniq_key.clone(),
            offset_msg_id: Some(half.offset_msg_id.clone()),
            bname: Some(self.state.name.clone()),
        };
        let mut ext = half.to_message_ext();
        ext.message.set_topic(half.target_topic());
        if let Some(q) = half.property(keys::REAL_QID).and_then(|q| q.parse().ok()) {
            ext.queue_id = q;
        }
        let mut body = BytesMut::new();
        let trailing = self.server.dialect().properties_trailing_separator;
        encode_stored_dialect(&ext, trailing, &mut body)
            .map_err(|e| PushError::Encode(e.to_string()))?;
        let request = RemotingCommand::with_header(RequestCode::CHECK_TRANSACTION_STATE, &header)
            .body(body.freeze())
            .oneway();
        self.server
            .send_request(conn, request, Duration::ZERO)
            .await?;
        Ok(conn)
    }
}

/// The address a fake broker reports for a peer: the peer itself when it is
/// `ip:port`, else `127.0.0.1:<n>` for a memory peer `memory-client:<n>`.
fn born_host(peer: &str) -> std::net::SocketAddr {
    peer.parse().unwrap_or_else(|_| {
        let port = peer
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .unwrap_or(0);
        std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    })
}
