//! A fake cluster (two brokers, in memory) and a producer wired to it, plus the
//! helpers the fault-matrix tests share: per-UNIQ_KEY request records, settle
//! checks, a connect-counting connector and a raw broker for hand-made answers.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rmq_producer::hook::{AttemptContext, AttemptOutcome, SendHook};
use rmq_producer::{Producer, ProducerBuilder};
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::message::properties::decode_properties;
use rmq_protocol::route::{QueueData, perm};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::invoke::BoxFuture;
use rmq_remoting::{BoxStream, Connector, MemoryNetwork};
use rmq_testkit::fake::{FakeBroker, FakeCluster, RecordedRequest, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const TOPIC: &str = "TopicTest";

pub async fn cluster() -> FakeCluster {
    cluster_of(&["broker-a", "broker-b"]).await
}

/// A cluster of these brokers (in memory), each with [`TOPIC`] on 4 queues.
pub async fn cluster_of(names: &[&str]) -> FakeCluster {
    FakeCluster::builder()
        .brokers(names.iter().copied())
        .transport(Transport::Memory(MemoryNetwork::new()))
        .topic(TOPIC, 4)
        .build()
        .await
        .expect("fake cluster")
}

pub fn builder(cluster: &FakeCluster) -> ProducerBuilder {
    Producer::builder("test_producer_group")
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
}

pub async fn producer(cluster: &FakeCluster) -> Producer {
    builder(cluster).build().await.expect("producer")
}

pub fn broker<'a>(cluster: &'a FakeCluster, name: &str) -> &'a FakeBroker {
    cluster.broker(name).expect("broker")
}

pub fn sends(cluster: &FakeCluster) -> usize {
    cluster
        .brokers()
        .iter()
        .map(|b| {
            b.requests_with_code(rmq_protocol::RequestCode::SEND_MESSAGE_V2)
                .len()
                + b.requests_with_code(rmq_protocol::RequestCode::SEND_BATCH_MESSAGE)
                    .len()
        })
        .sum()
}

/// SEND_MESSAGE_V2 requests one broker received.
pub fn sends_to(cluster: &FakeCluster, name: &str) -> usize {
    broker(cluster, name)
        .requests_with_code(RequestCode::SEND_MESSAGE_V2)
        .len()
}

/// The UNIQ_KEY a recorded send request carried.
pub fn uniq_key_of(r: &RecordedRequest) -> Option<String> {
    let header: SendMessageRequestHeaderV2 = r.header().ok()?;
    decode_properties(header.properties.as_deref()?)
        .get("UNIQ_KEY")
        .map(str::to_owned)
}

/// Every SEND_MESSAGE_V2 request carrying `key`, on any broker, as (broker name,
/// request), in arrival order: the attempts of one send.
pub fn attempts_for(cluster: &FakeCluster, key: &str) -> Vec<(String, RecordedRequest)> {
    let mut out: Vec<(String, RecordedRequest)> = cluster
        .brokers()
        .iter()
        .flat_map(|b| {
            b.requests_with_code(RequestCode::SEND_MESSAGE_V2)
                .into_iter()
                .filter(|r| uniq_key_of(r).as_deref() == Some(key))
                .map(|r| (b.broker_name().to_owned(), r))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_by_key(|(_, r)| r.at);
    out
}

/// The row-wide invariants once a test's sends have finished: no permit held and
/// the transport's pending tables empty.
pub fn assert_settled(p: &Producer) {
    let s = p.stats();
    assert_eq!(s.in_flight, 0, "back-pressure permits still held: {s:?}");
    assert_eq!(
        s.transport.in_flight(),
        0,
        "response-table entries left: {:?}",
        s.transport.connections
    );
}

/// Tasks alive on the current runtime (for "no leaked task" checks).
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Polls `cond` every millisecond of (paused) time until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    cond()
}

/// A connector that counts connect attempts per address, then delegates.
#[derive(Debug)]
pub struct CountingConnector {
    inner: Arc<dyn Connector>,
    counts: Mutex<HashMap<String, usize>>,
}

impl CountingConnector {
    pub fn new(inner: Arc<dyn Connector>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Connect attempts to `addr` so far.
    pub fn count(&self, addr: &str) -> usize {
        self.counts.lock().unwrap().get(addr).copied().unwrap_or(0)
    }
}

impl Connector for CountingConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(addr.to_owned())
            .or_default() += 1;
        self.inner.connect(addr)
    }
}

/// What a [`RawBroker`] answers to one request (`None`: no answer).
pub type Responder = dyn Fn(&RemotingCommand) -> Option<RemotingCommand> + Send + Sync;

/// A hand-written broker on the memory network: decodes each request frame and
/// writes whatever `respond` builds, so a test can send answers the fake broker
/// would never produce (e.g. a SUCCESS without `msgId`).
#[derive(Debug)]
pub struct RawBroker {
    pub addr: String,
    pub name: String,
    sends: Arc<AtomicUsize>,
}

impl RawBroker {
    /// Listens on `addr` of the cluster's memory network and registers itself with
    /// the cluster's name server as the master of `name`, with `topic` on 4 queues.
    pub fn start(
        cluster: &FakeCluster,
        name: &str,
        addr: &str,
        topic: &str,
        respond: Arc<Responder>,
    ) -> Self {
        let Transport::Memory(net) = cluster.transport() else {
            panic!("raw brokers need the memory transport")
        };
        let mut listener = net.bind(addr).expect("bind raw broker");
        let sends = Arc::new(AtomicUsize::new(0));
        let counter = sends.clone();
        tokio::spawn(async move {
            while let Some((mut stream, _peer)) = listener.accept().await {
                let respond = respond.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let codec = FrameCodec::default();
                    let mut buf = BytesMut::new();
                    loop {
                        match codec.decode(&mut buf) {
                            Ok(Some(cmd)) => {
                                if cmd.is_response() {
                                    continue;
                                }
                                if cmd.request_code() == RequestCode::SEND_MESSAGE_V2 {
                                    counter.fetch_add(1, Ordering::SeqCst);
                                }
                                if let Some(reply) = respond(&cmd) {
                                    let mut out = BytesMut::new();
                                    codec.encode(&reply, &mut out).expect("encode raw reply");
                                    if stream.write_all(&out).await.is_err() {
                                        return;
                                    }
                                }
                                continue;
                            }
                            Ok(None) => {}
                            Err(_) => return,
                        }
                        match stream.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        let ns = cluster.name_server();
        ns.register_broker("DefaultCluster", name, addr);
        ns.register_topic(topic, QueueData::new(name, 4, 4, perm::READ | perm::WRITE));
        Self {
            addr: addr.to_owned(),
            name: name.to_owned(),
            sends,
        }
    }

    /// SEND_MESSAGE_V2 requests received.
    pub fn sends(&self) -> usize {
        self.sends.load(Ordering::SeqCst)
    }
}

/// A SUCCESS answer to `request` with exactly these ext fields.
pub fn success_with(request: &RemotingCommand, fields: &[(&'static str, &str)]) -> RemotingCommand {
    let mut r = RemotingCommand::response_to(request, ResponseCode::SUCCESS);
    for (k, v) in fields {
        r.ext_fields.insert(*k, *v);
    }
    r
}

/// One attempt as a [`AttemptLog`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub key: String,
    pub attempt: u32,
    pub broker: String,
    /// `None` until the attempt finished; then "stored" or the error kind.
    pub outcome: Option<String>,
}

/// A send hook that logs every attempt in the producer's own order (recorded
/// requests on different brokers can carry the same paused instant).
#[derive(Debug, Default)]
pub struct AttemptLog {
    entries: Mutex<Vec<Attempt>>,
}

impl AttemptLog {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The attempts of the send with this UNIQ_KEY, in order.
    pub fn of(&self, key: &str) -> Vec<Attempt> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.key == key)
            .cloned()
            .collect()
    }

    /// The brokers the attempts of this send went to, in order.
    pub fn brokers(&self, key: &str) -> Vec<String> {
        self.of(key).into_iter().map(|a| a.broker).collect()
    }
}

impl SendHook for AttemptLog {
    fn before_attempt(&self, ctx: &AttemptContext<'_>) {
        self.entries.lock().unwrap().push(Attempt {
            key: ctx.message.uniq_key().unwrap_or_default().to_owned(),
            attempt: ctx.attempt,
            broker: ctx.queue.broker_name.to_string(),
            outcome: None,
        });
    }

    fn after_attempt(
        &self,
        ctx: &AttemptContext<'_>,
        outcome: AttemptOutcome<'_>,
        _elapsed: Duration,
    ) {
        let key = ctx.message.uniq_key().unwrap_or_default();
        let mut entries = self.entries.lock().unwrap();
        let entry = entries
            .iter_mut()
            .rev()
            .find(|a| a.key == key && a.attempt == ctx.attempt)
            .expect("after_attempt without before_attempt");
        assert!(
            entry.outcome.is_none(),
            "after_attempt called twice for attempt {}",
            ctx.attempt
        );
        entry.outcome = Some(match outcome {
            AttemptOutcome::Stored(_) => "stored".to_owned(),
            AttemptOutcome::Failed(e) => format!("{:?}", e.kind()),
        });
    }
}

pub const SECOND: Duration = Duration::from_secs(1);
pub const MS: Duration = Duration::from_millis(1);

/// A tracing field visitor that appends ` name=value` for every field to a line
/// (the capturing subscribers of the logging tests).
pub struct Fields<'a>(pub &'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}
