//! [`NullBroker`]: a name server and broker on one TCP port that answers at once
//! and does nothing else, so that a benchmark measures the client's own cost.
//!
//! It answers GET_ROUTEINFO_BY_TOPIC (105) for **every** topic with one broker (itself)
//! holding [`NullBrokerConfig::queues`] read/write queues, HEARTBEAT (34) and
//! UNREGISTER_CLIENT (35) with SUCCESS, and SEND_MESSAGE (10), SEND_MESSAGE_V2 (310)
//! and SEND_BATCH_MESSAGE (320) with a SUCCESS send response (`msgId` with one offset
//! id per message of a batch, the request's `queueId`, a growing `queueOffset`,
//! `MSG_REGION`, `TRACE_ON`). Anything else gets REQUEST_CODE_NOT_SUPPORTED (3).
//! One-way requests get no answer.
//!
//! Answers use the request's header encoding (JSON or ROCKETMQ). A connection reads
//! whatever is there, answers every whole request in it into one buffer and writes
//! that buffer once: pipelined requests get pipelined answers. Requests are not
//! decoded: only the code, opaque, flag, queue id and (for batches) the message
//! count are read from the bytes, and answers are written straight into the output
//! buffer, so a request costs no heap allocation. Nothing is stored.
//!
//! Use it in process (criterion benches) or as the `rmq-null-broker` binary (a
//! single-threaded runtime, so it takes at most one core; `cargo xtask bench
//! compare` runs it that way).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use rmq_testkit::null_broker::NullBroker;
//!
//! let broker = NullBroker::start("127.0.0.1:0").await?;
//! let namesrv = broker.addr().to_string(); // also the broker's address
//! // ... point a producer at `namesrv` and send ...
//! assert_eq!(broker.stats().messages, 0);
//! # let _ = namesrv;
//! # Ok(())
//! # }
//! ```

mod wire;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::{Buf, BytesMut};
use rmq_protocol::route::{BrokerData, MASTER_ID, QueueData, TopicRouteData};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::{JoinHandle, JoinSet};

use wire::{Frame, Reply, Request, Value};

/// GET_ROUTEINFO_BY_TOPIC.
const GET_ROUTE: i32 = 105;
/// HEARTBEAT.
const HEARTBEAT: i32 = 34;
/// UNREGISTER_CLIENT.
const UNREGISTER: i32 = 35;
/// SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE.
const SEND: i32 = 10;
const SEND_V2: i32 = 310;
const SEND_BATCH: i32 = 320;
/// Response codes.
const SUCCESS: i16 = 0;
const NOT_SUPPORTED: i16 = 3;
/// Request codes counted one by one; larger ones are counted together.
const COUNTED_CODES: usize = 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// Settings of a [`NullBroker`].
#[derive(Clone, Debug)]
pub struct NullBrokerConfig {
    /// The broker name in routes. Default `"null-broker"`.
    pub broker_name: String,
    /// The cluster name in routes. Default `"NullCluster"`.
    pub cluster: String,
    /// Read and write queues of every topic. Default 8.
    pub queues: u32,
    /// The address put into routes (the broker's address as clients dial it).
    /// Default: the bound address, with `127.0.0.1` for an unspecified IP.
    pub advertise: Option<SocketAddr>,
    /// Largest accepted frame; a larger one closes the connection. Default 16 MiB.
    pub max_frame: usize,
}

impl Default for NullBrokerConfig {
    fn default() -> Self {
        Self {
            broker_name: "null-broker".to_owned(),
            cluster: "NullCluster".to_owned(),
            queues: 8,
            advertise: None,
            max_frame: rmq_protocol::frame::DEFAULT_MAX_FRAME,
        }
    }
}

/// What a [`NullBroker`] has answered so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NullStats {
    /// Connections accepted.
    pub connections: u64,
    /// Requests by request code (codes ≥ 1024 are counted under 1024).
    pub requests_by_code: BTreeMap<i32, u64>,
    /// Messages acknowledged (a batch counts its messages).
    pub messages: u64,
    /// Connections closed because a frame could not be read.
    pub malformed: u64,
}

#[derive(Debug)]
struct Shared {
    route: Vec<u8>,
    host: [u8; 8],
    max_frame: usize,
    offset: AtomicI64,
    connections: AtomicU64,
    messages: AtomicU64,
    malformed: AtomicU64,
    by_code: Box<[AtomicU64]>,
}

impl Shared {
    fn count(&self, code: i32) {
        let i = usize::try_from(code).map_or(COUNTED_CODES, |c| c.min(COUNTED_CODES));
        if let Some(c) = self.by_code.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A running null name server + broker. Dropping it (or [`shutdown`](Self::shutdown))
/// stops accepting and closes every connection.
#[derive(Debug)]
pub struct NullBroker {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl NullBroker {
    /// Binds `addr` (port 0 picks a free port) and serves on the current Tokio
    /// runtime with the default [`NullBrokerConfig`].
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::start_with(addr, NullBrokerConfig::default()).await
    }

    /// Binds `addr` and serves with `config`.
    ///
    /// # Errors
    /// The address cannot be bound, or the advertised address is not IPv4 (offset
    /// message ids hold an IPv4 address).
    pub async fn start_with(
        addr: impl ToSocketAddrs,
        config: NullBrokerConfig,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let advertise = config.advertise.unwrap_or_else(|| {
            let ip = if local.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                local.ip()
            };
            SocketAddr::new(ip, local.port())
        });
        let IpAddr::V4(v4) = advertise.ip() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("null broker: advertised address {advertise} is not IPv4"),
            ));
        };
        let mut host = [0u8; 8];
        host[..4].copy_from_slice(&v4.octets());
        host[4..].copy_from_slice(&u32::from(advertise.port()).to_be_bytes());
        let shared = Arc::new(Shared {
            route: route_json(&config, advertise).into_bytes(),
            host,
            max_frame: config.max_frame,
            offset: AtomicI64::new(0),
            connections: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            by_code: (0..=COUNTED_CODES).map(|_| AtomicU64::new(0)).collect(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self {
            addr: advertise,
            shared,
            accept,
        })
    }

    /// The address to give clients as the name server; routes point at it too.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts so far.
    pub fn stats(&self) -> NullStats {
        let s = &self.shared;
        NullStats {
            connections: s.connections.load(Ordering::Relaxed),
            requests_by_code: s
                .by_code
                .iter()
                .enumerate()
                .filter_map(|(code, n)| {
                    let n = n.load(Ordering::Relaxed);
                    (n > 0).then(|| (i32::try_from(code).unwrap_or(i32::MAX), n))
                })
                .collect(),
            messages: s.messages.load(Ordering::Relaxed),
            malformed: s.malformed.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(self) {
        // Drop does it.
    }
}

impl Drop for NullBroker {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts the connections.
        self.accept.abort();
    }
}

fn route_json(config: &NullBrokerConfig, advertise: SocketAddr) -> String {
    TopicRouteData {
        order_topic_conf: None,
        queue_datas: vec![QueueData {
            broker_name: config.broker_name.clone(),
            read_queue_nums: config.queues,
            write_queue_nums: config.queues,
            perm: 6,
            topic_sys_flag: 0,
        }],
        broker_datas: vec![BrokerData {
            cluster: config.cluster.clone(),
            broker_name: config.broker_name.clone(),
            broker_addrs: BTreeMap::from([(MASTER_ID, advertise.to_string())]),
            ..BrokerData::default()
        }],
        warnings: Vec::new(),
    }
    .to_json()
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(serve(stream, shared.clone()));
                }
                // EMFILE and the like: keep serving the connections we have.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one connection until it closes or sends something unreadable.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    loop {
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut consumed = 0;
        loop {
            match wire::frame(&input[consumed..], shared.max_frame) {
                Ok(Some(frame)) => {
                    if handle(&frame, &shared, &mut out).is_err() {
                        shared.malformed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    consumed += frame.len;
                }
                Ok(None) => break,
                Err(_) => {
                    shared.malformed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        input.advance(consumed);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        // Room for the rest of a partly read frame, or the next read.
        let need = declared_len(&input).map_or(READ_CHUNK, |n| n.saturating_sub(input.len()));
        input.reserve(need.max(READ_CHUNK / 4));
    }
}

/// The whole length of the frame starting `buf`, once its prefix is there.
fn declared_len(buf: &[u8]) -> Option<usize> {
    let p = buf.get(..4)?;
    usize::try_from(i32::from_be_bytes([p[0], p[1], p[2], p[3]]))
        .ok()
        .map(|n| n + 4)
}

fn handle(frame: &Frame<'_>, shared: &Shared, out: &mut BytesMut) -> Result<(), wire::Malformed> {
    let req: Request = frame.request()?;
    if req.response {
        return Ok(());
    }
    shared.count(req.code);
    let ext_buf: [(&str, Value<'_>); 5];
    let reply = match req.code {
        GET_ROUTE => Reply {
            code: SUCCESS,
            remark: "",
            ext: &[],
            body: &shared.route,
        },
        HEARTBEAT | UNREGISTER => Reply {
            code: SUCCESS,
            remark: "",
            ext: &[],
            body: &[],
        },
        SEND | SEND_V2 | SEND_BATCH => {
            let n = if req.code == SEND_BATCH {
                frame.batch_len()
            } else {
                1
            };
            let n64 = u64::try_from(n).unwrap_or(u64::MAX);
            shared.messages.fetch_add(n64, Ordering::Relaxed);
            let offset = shared
                .offset
                .fetch_add(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
            let queue = frame.ext_int(&[b"queueId", b"e"]).unwrap_or(0);
            ext_buf = [
                (
                    "msgId",
                    Value::MsgIds {
                        host: shared.host,
                        offset,
                        count: n,
                    },
                ),
                ("queueId", Value::Int(queue)),
                ("queueOffset", Value::Int(offset)),
                ("MSG_REGION", Value::Str("DefaultRegion")),
                ("TRACE_ON", Value::Str("true")),
            ];
            Reply {
                code: SUCCESS,
                remark: "",
                ext: &ext_buf,
                body: &[],
            }
        }
        _ => Reply {
            code: NOT_SUPPORTED,
            remark: "request code not supported by the null broker",
            ext: &[],
            body: &[],
        },
    };
    if !req.oneway {
        wire::write_reply(out, &req, &reply);
    }
    Ok(())
}
