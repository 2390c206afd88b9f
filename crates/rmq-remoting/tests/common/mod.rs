//! Shared helpers of the transport fault tests (reliability matrix rows A2, A7, C1–C10,
//! H4, H6): a fake cluster on an in-memory network, pools, requests, a counting
//! connector, a raw (hostile) peer, and the end-of-test checks every row requires:
//! every call resolved, the response tables empty, no task left running.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{
    BoxFuture, BoxStream, Connector, MemoryListener, MemoryNetwork, Pool, PoolConfig, RemotingError,
};
use rmq_testkit::fake::{FakeCluster, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

/// The topic every fake broker hosts.
pub const TOPIC: &str = "T";
/// The request code of [`send`].
pub const SEND: RequestCode = RequestCode::SEND_MESSAGE_V2;
/// Scheduling slack of the matrix (reliability.md section 7).
pub const EPS: Duration = Duration::from_millis(200);
/// "Forever" for a paused-time bound: a call not resolved by then is a hang.
pub const HANG: Duration = Duration::from_secs(24 * 3600);

/// A fake cluster with `brokers` on a fresh memory network (topic [`TOPIC`], 4 queues
/// per broker), and the network.
pub async fn memory_cluster(brokers: &[&str]) -> (FakeCluster, MemoryNetwork) {
    let net = MemoryNetwork::new();
    let cluster = FakeCluster::builder()
        .brokers(brokers.iter().copied())
        .transport(Transport::Memory(net.clone()))
        .topic(TOPIC, 4)
        .build()
        .await
        .expect("fake cluster");
    (cluster, net)
}

/// A pool with default settings dialling through `connector`.
pub fn pool(connector: Arc<dyn Connector>) -> Pool {
    Pool::new(connector, PoolConfig::default())
}

/// A SEND_MESSAGE_V2 of `body` to [`TOPIC`] queue 0 with UNIQ_KEY `uniq` (binary header).
pub fn send_body(uniq: &str, body: impl Into<bytes::Bytes>) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        producer_group: "PG".into(),
        topic: TOPIC.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(format!("UNIQ_KEY\u{1}{uniq}\u{2}WAIT\u{1}true\u{2}").into()),
        reconsume_times: Some(0),
        unit_mode: false,
        max_reconsume_times: None,
        batch: false,
        broker_name: None,
    };
    RemotingCommand::with_header(SEND, &header)
        .serialize_type(rmq_protocol::SerializeType::ROCKETMQ)
        .body(body)
}

/// A small SEND_MESSAGE_V2 with UNIQ_KEY `uniq`.
pub fn send(uniq: &str) -> RemotingCommand {
    send_body(uniq, format!("body of {uniq}").into_bytes())
}

/// `now + d`.
pub fn after(d: Duration) -> Instant {
    Instant::now() + d
}

/// Awaits `fut`, failing the test if it does not resolve within [`HANG`] (a waiter
/// that is never resolved).
pub async fn resolved<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, fut)
        .await
        .expect("a call was never resolved")
}

/// Calls `addr` and checks the broker answered SUCCESS.
pub async fn call_ok(pool: &Pool, addr: &str, uniq: &str) -> RemotingCommand {
    let r = resolved(pool.invoke_at(addr, send(uniq), after(Duration::from_secs(3))))
        .await
        .unwrap_or_else(|e| panic!("call {uniq} to {addr} failed: {e}"));
    assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{uniq}: {r:?}");
    r
}

/// Whether `e` is a connection close caused by a protocol (decode) error.
pub fn is_protocol_close(e: &RemotingError) -> bool {
    match e {
        RemotingError::ConnectionClosed { reason, .. } => reason.contains("protocol error"),
        RemotingError::Protocol { .. } => true,
        _ => false,
    }
}

/// The checks every row ends with: no request left in any response table, then (after
/// closing the pool and the cluster) no task left running on the runtime.
pub async fn finish(pool: &Pool, cluster: Option<&FakeCluster>) {
    assert_eq!(pool.stats().in_flight(), 0, "response tables not empty");
    // Positive control for the task count below: the servers' tasks are alive now.
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(
        cluster.is_none() || alive > 0,
        "task metrics see no task at all"
    );
    pool.close_all();
    if let Some(c) = cluster {
        c.shutdown().await;
    }
    no_leaked_tasks().await;
}

/// Waits (up to 10 s of tokio time) until no spawned task is alive on this runtime:
/// connection drivers, handler tasks and fake-server tasks all ended.
pub async fn no_leaked_tasks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let start = Instant::now();
    while metrics.num_alive_tasks() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} task(s) still alive 10 s after closing everything",
            metrics.num_alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lets every ready task run without moving paused time meaningfully.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// A connector that counts dials and how many are in progress at once.
#[derive(Debug)]
pub struct CountingConnector {
    inner: Arc<dyn Connector>,
    dials: AtomicUsize,
    in_progress: Arc<AtomicUsize>,
    max_in_progress: AtomicUsize,
}

impl CountingConnector {
    pub fn new(inner: Arc<dyn Connector>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            dials: AtomicUsize::new(0),
            in_progress: Arc::default(),
            max_in_progress: AtomicUsize::new(0),
        })
    }

    /// Connect attempts so far.
    pub fn dials(&self) -> usize {
        self.dials.load(Ordering::SeqCst)
    }

    /// The most connect attempts that were in progress at the same time.
    pub fn max_in_progress(&self) -> usize {
        self.max_in_progress.load(Ordering::SeqCst)
    }

    /// Connect attempts in progress now (a cancelled attempt counts as ended).
    pub fn in_progress(&self) -> usize {
        self.in_progress.load(Ordering::SeqCst)
    }
}

/// Decrements the in-progress count when a connect ends or is cancelled.
struct InProgress(Arc<AtomicUsize>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connector for CountingConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        self.dials.fetch_add(1, Ordering::SeqCst);
        let now = self.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_progress.fetch_max(now, Ordering::SeqCst);
        let guard = InProgress(self.in_progress.clone());
        Box::pin(async move {
            let _guard = guard;
            self.inner.connect(addr).await
        })
    }
}

/// A hand-driven peer on the memory network: it reads the client's frames and writes
/// whatever bytes the test wants (bad lengths, other protocols, hostile frames).
#[derive(Debug)]
pub struct RawPeer {
    listener: MemoryListener,
}

impl RawPeer {
    pub fn bind(net: &MemoryNetwork, addr: &str) -> Self {
        Self {
            listener: net.bind(addr).expect("bind raw peer"),
        }
    }

    /// The next connection from the client.
    pub async fn accept(&mut self) -> RawConn {
        let (io, _) = resolved(self.listener.accept())
            .await
            .expect("memory network gone");
        RawConn {
            io,
            buf: BytesMut::new(),
            codec: FrameCodec::default(),
        }
    }
}

/// One accepted connection of a [`RawPeer`].
#[derive(Debug)]
pub struct RawConn {
    io: DuplexStream,
    buf: BytesMut,
    codec: FrameCodec,
}

impl RawConn {
    /// The next request frame the client wrote; `None` at end of stream.
    pub async fn read(&mut self) -> Option<RemotingCommand> {
        loop {
            if let Some(cmd) = self.codec.decode(&mut self.buf).expect("client frame") {
                return Some(cmd);
            }
            if self.io.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    /// Writes bytes as they are.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Writes one encoded command.
    pub async fn write_cmd(&mut self, cmd: &RemotingCommand) -> io::Result<()> {
        let mut out = BytesMut::new();
        self.codec.encode(cmd, &mut out).expect("encode");
        self.write_raw(&out).await
    }

    /// Waits until the client closed the connection (end of stream or an error),
    /// discarding anything else it writes.
    pub async fn closed_by_client(&mut self) {
        let mut sink = [0u8; 4096];
        loop {
            match resolved(self.io.read(&mut sink)).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}
