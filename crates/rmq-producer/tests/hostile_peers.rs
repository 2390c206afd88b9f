//! Rows H5 and H6 against the name-server client, the route cache and the producer:
//! a hostile name server (thousands of brokers, 2^31 queues, unusable addresses,
//! deep JSON, wrong types, garbage) and a hostile broker (a flood of frames with
//! opaques the client never used, an over-limit frame). Each case asserts the typed
//! error within the deadline, no panic, and a positive control that a sane answer
//! from the same peer works.
//!
//! The hostile peers are hand-written servers on the in-memory network; the
//! well-behaved broker is `rmq-testkit`'s fake. Paused time, so deadlines are exact.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use rmq_producer::{Delivery, Message, Producer, SendErrorKind};
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{MemoryNetwork, Pool, PoolConfig};
use rmq_route::{NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig, RouteError};
use rmq_testkit::fake::{FakeBroker, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const NS: &str = "hostile-ns:9876";
const GOOD: &str = "broker-good:10911";
const SECOND: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// A name server that answers GET_ROUTEINFO_BY_TOPIC with the raw body set for the
/// topic (TOPIC_NOT_EXIST when none is set) and SUCCESS to anything else.
#[derive(Clone, Default)]
struct HostileNameServer {
    bodies: Arc<Mutex<HashMap<String, Bytes>>>,
    route_requests: Arc<AtomicUsize>,
}

impl HostileNameServer {
    fn start(net: &MemoryNetwork) -> Self {
        let me = Self::default();
        let mut listener = net.bind(NS).expect("bind the hostile name server");
        let server = me.clone();
        tokio::spawn(async move {
            while let Some((mut io, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let codec = FrameCodec::default();
                    let mut buf = BytesMut::new();
                    loop {
                        while let Ok(Some(req)) = codec.decode(&mut buf) {
                            let reply = server.answer(&req);
                            let mut out = BytesMut::new();
                            if codec.encode(&reply, &mut out).is_err()
                                || io.write_all(&out).await.is_err()
                            {
                                return;
                            }
                        }
                        if io.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                    }
                });
            }
        });
        me
    }

    fn answer(&self, req: &RemotingCommand) -> RemotingCommand {
        if req.request_code() != RequestCode::GET_ROUTEINFO_BY_TOPIC {
            return RemotingCommand::response_to(req, ResponseCode::SUCCESS);
        }
        self.route_requests.fetch_add(1, SeqCst);
        let topic = req.ext_fields.get("topic").unwrap_or_default().to_owned();
        match self.bodies.lock().unwrap().get(&topic) {
            Some(body) => {
                RemotingCommand::response_to(req, ResponseCode::SUCCESS).body(body.clone())
            }
            None => RemotingCommand::response_to(req, ResponseCode::TOPIC_NOT_EXIST),
        }
    }

    fn set(&self, topic: &str, body: impl Into<Bytes>) {
        self.bodies
            .lock()
            .unwrap()
            .insert(topic.to_owned(), body.into());
    }
}

fn queue_data(broker: &str, queues: &str) -> String {
    format!(
        r#"{{"brokerName":"{broker}","readQueueNums":{queues},"writeQueueNums":{queues},"perm":6,"topicSysFlag":0}}"#
    )
}

fn broker_data(broker: &str, addr: &str) -> String {
    format!(r#"{{"cluster":"c","brokerName":"{broker}","brokerAddrs":{{"0":"{addr}"}}}}"#)
}

fn route(queues: &[String], brokers: &[String]) -> String {
    format!(
        r#"{{"queueDatas":[{}],"brokerDatas":[{}]}}"#,
        queues.join(","),
        brokers.join(",")
    )
}

/// A route with `n` brokers, each with 4 queues.
fn many_brokers(n: usize) -> String {
    let names: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
    let q: Vec<String> = names.iter().map(|b| queue_data(b, "4")).collect();
    let b: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, b)| broker_data(b, &format!("10.{}.{}.1:10911", i / 256 % 256, i % 256)))
        .collect();
    route(&q, &b)
}

/// The sane route: one broker at [`GOOD`] with 4 queues.
fn good_route() -> String {
    route(
        &[queue_data("broker-good", "4")],
        &[broker_data("broker-good", GOOD)],
    )
}

/// Hostile route bodies that must be refused as a whole (`InvalidRoute`).
fn invalid_bodies() -> Vec<(&'static str, Bytes)> {
    let deep = format!(
        r#"{{"queueDatas":{}{},"brokerDatas":[]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut binary = BytesMut::new();
    for i in 0..4096u32 {
        binary.put_u32(i.wrapping_mul(2_654_435_761));
    }
    vec![
        ("100 000 brokers", Bytes::from(many_brokers(100_000))),
        ("2 000 brokers", Bytes::from(many_brokers(2_000))),
        ("100 000-deep nesting", Bytes::from(deep)),
        (
            "writeQueueNums is a string",
            Bytes::from(route(
                &[queue_data("broker-good", "\"eight\"")],
                &[broker_data("broker-good", GOOD)],
            )),
        ),
        (
            "brokerAddrs is a list",
            Bytes::from(
                r#"{"queueDatas":[],"brokerDatas":[{"cluster":"c","brokerName":"b","brokerAddrs":["x"]}]}"#,
            ),
        ),
        ("a JSON string", Bytes::from(r#""route""#)),
        ("truncated", Bytes::from(good_route()[..40].to_owned())),
        ("binary garbage", binary.freeze()),
    ]
}

fn pool(net: &MemoryNetwork) -> Pool {
    Pool::new(Arc::new(net.clone()), PoolConfig::default())
}

fn ns_client(pool: &Pool) -> NameServerClient {
    NameServerClient::new(Arc::new(pool.clone()), [NS], NameServerConfig::default())
}

async fn good_broker(net: &MemoryNetwork, topics: &[(&str, u32)]) -> FakeBroker {
    let mut b = FakeBroker::builder("broker-good")
        .transport(Transport::Memory(net.clone()))
        .addr(GOOD);
    for (t, q) in topics {
        b = b.topic(*t, *q);
    }
    b.start().await.expect("fake broker")
}

async fn producer(net: &MemoryNetwork) -> Producer {
    Producer::builder("hostile_peers_group")
        .namesrv(NS)
        .connector(Arc::new(net.clone()))
        .build()
        .await
        .expect("producer")
}

/// H5, name-server client and route cache: each hostile body is refused with
/// `InvalidRoute` (the whole route, nothing half-parsed), at once (paused clock: no
/// time passes, so no timeout hides a hang), and a route cache given one after a good
/// route keeps the good one. Positive control: the same server's sane route parses.
#[tokio::test(start_paused = true)]
async fn h5_hostile_routes_are_refused_by_the_name_server_client_and_cache() {
    let net = MemoryNetwork::new();
    let ns = HostileNameServer::start(&net);
    let pool = pool(&net);
    let client = ns_client(&pool);
    ns.set("Good", good_route());
    let good = client.get_route("Good", 3 * SECOND).await.expect("control");
    assert_eq!(good.broker_datas.len(), 1);
    for (i, (what, body)) in invalid_bodies().into_iter().enumerate() {
        let topic = format!("T{i}");
        ns.set(&topic, body);
        let started = Instant::now();
        let err = client.get_route(&topic, 3 * SECOND).await.expect_err(what);
        assert!(
            matches!(err, RouteError::InvalidRoute { .. }),
            "{what}: {err}"
        );
        assert!(started.elapsed() < SECOND, "{what}: answered at once");
    }
    // The cache: good route first, then every hostile body on a poll.
    let cache = RouteCache::new(ns_client(&pool), RouteCacheConfig::default());
    ns.set("Cached", good_route());
    let first = cache.get("Cached", 3 * SECOND).await.expect("good route");
    for (what, body) in invalid_bodies() {
        ns.set("Cached", body);
        let report = cache.poll_once().await;
        assert_eq!(report.failed, 1, "{what}");
        let now = cache.get("Cached", 3 * SECOND).await.expect(what);
        assert!(Arc::ptr_eq(&now, &first), "{what}: last good route kept");
    }
    pool.close_all();
}

/// H5, producer: a send to a topic whose route is hostile fails with a typed error
/// (`NoRoute`, `NotSent`, the message handed back) within its deadline and nothing
/// reaches any broker; a topic with a sane route on the same name server is stored.
#[tokio::test(start_paused = true)]
async fn h5_producer_sends_fail_typed_on_hostile_routes() {
    let net = MemoryNetwork::new();
    let ns = HostileNameServer::start(&net);
    let broker = good_broker(&net, &[("Good", 4)]).await;
    ns.set("Good", good_route());
    let p = producer(&net).await;
    for (i, (what, body)) in invalid_bodies().into_iter().enumerate() {
        let topic = format!("Hostile{i}");
        ns.set(&topic, body);
        let started = Instant::now();
        let err = p
            .send(Message::new(topic.as_str(), "x"))
            .await
            .expect_err(what);
        assert_eq!(err.kind(), SendErrorKind::NoRoute, "{what}: {err}");
        assert_eq!(err.delivery(), Delivery::NotSent, "{what}");
        assert!(err.message().is_some(), "{what}: message handed back");
        assert!(started.elapsed() <= 3 * SECOND, "{what}: by the deadline");
    }
    assert_eq!(broker.message_count(), 0, "nothing sent anywhere");
    p.send(Message::new("Good", "control"))
        .await
        .expect("positive control: a sane route on the same name server");
    assert_eq!(broker.message_count(), 1);
    p.close(SECOND).await;
}

/// H5: `writeQueueNums` = 2^31 − 1 is capped (1024 queues) instead of allocating
/// two billion queue entries, and sends work; broker entries whose addresses are
/// not addresses (garbage, out-of-range octets and port, empty) are tried, fail to
/// connect (`NotSent`), and every send fails over to the one usable broker.
#[tokio::test(start_paused = true)]
async fn h5_huge_queue_counts_are_capped_and_bad_addresses_fail_over() {
    let net = MemoryNetwork::new();
    let ns = HostileNameServer::start(&net);
    let broker = good_broker(&net, &[("Huge", 1024), ("BadAddrs", 4)]).await;
    ns.set(
        "Huge",
        route(
            &[queue_data("broker-good", "2147483647")],
            &[broker_data("broker-good", GOOD)],
        ),
    );
    let bad = [
        ("bad-1", "not an address"),
        ("bad-2", "999.999.999.999:99999"),
        ("bad-3", ""),
        ("bad-4", ":::::"),
    ];
    let mut queues: Vec<String> = bad.iter().map(|(b, _)| queue_data(b, "4")).collect();
    let mut brokers: Vec<String> = bad.iter().map(|(b, a)| broker_data(b, a)).collect();
    queues.push(queue_data("broker-good", "4"));
    brokers.push(broker_data("broker-good", GOOD));
    ns.set("BadAddrs", route(&queues, &brokers));

    ns.set(
        "Beyond",
        route(
            &[queue_data("broker-good", "123456789012345678901234567890")],
            &[broker_data("broker-good", GOOD)],
        ),
    );
    let pool = pool(&net);
    for (topic, what) in [("Huge", "2^31 − 1"), ("Beyond", "a count beyond i64")] {
        let raw = ns_client(&pool)
            .get_route(topic, 3 * SECOND)
            .await
            .expect(what);
        assert_eq!(raw.queue_datas[0].write_queue_nums, 1024, "{what}");
        assert_eq!(
            raw.warnings.len(),
            2,
            "{what}: both counts reported as capped"
        );
        let cache = RouteCache::new(ns_client(&pool), RouteCacheConfig::default());
        let info = cache.get(topic, 3 * SECOND).await.expect("capped route");
        assert_eq!(info.queues().len(), 1024, "{what} queues capped at 1024");
    }
    pool.close_all();

    let p = producer(&net).await;
    let mut queue_ids = Vec::new();
    for i in 0..50 {
        let r = p
            .send(Message::new("Huge", format!("h{i}")))
            .await
            .expect("sends to a capped route work");
        queue_ids.push(r.message_queue.queue_id);
    }
    assert!(queue_ids.iter().all(|&q| (0..1024).contains(&q)));
    // 4 of the 5 brokers are unusable and a send has 3 attempts: until the fault
    // strategy has isolated them a send may fail, typed and at once; afterwards
    // every send goes to the usable broker.
    let mut ok = 0;
    for i in 0..30 {
        let started = Instant::now();
        match p.send(Message::new("BadAddrs", format!("b{i}"))).await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(i < 10, "send {i} after the bad brokers were isolated: {e}");
                assert_eq!(e.kind(), SendErrorKind::AllBrokersUnavailable, "{e}");
                assert_eq!(e.delivery(), Delivery::NotSent, "{e}");
                assert!(e.broker().is_some_and(|b| b.starts_with("bad-")), "{e}");
            }
        }
        assert!(
            started.elapsed() < 100 * MS,
            "connect failures are immediate"
        );
    }
    assert!(ok >= 20, "{ok} of 30 stored");
    assert_eq!(broker.message_count(), 50 + ok);
    p.close(SECOND).await;
}

/// What the hostile broker does after reading a send request.
#[derive(Clone, Copy)]
enum Flood {
    /// Writes `count` in-limit frames of `size` bytes with opaques never used, and no
    /// answer.
    UnknownOpaques { count: usize, size: usize },
    /// Writes the length prefix of a frame above the 16 MiB limit.
    OverLimit,
}

/// A broker at `addr` that floods as told after each request; counts requests.
fn hostile_broker(net: &MemoryNetwork, addr: &str, flood: Flood) -> Arc<AtomicUsize> {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let mut listener = net.bind(addr).expect("bind the hostile broker");
    tokio::spawn(async move {
        while let Some((mut io, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let codec = FrameCodec::default();
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(req)) = codec.decode(&mut buf) {
                        if req.request_code() != RequestCode::SEND_MESSAGE_V2 {
                            let ok = RemotingCommand::response_to(&req, ResponseCode::SUCCESS);
                            let mut out = BytesMut::new();
                            let _ = codec.encode(&ok, &mut out);
                            if io.write_all(&out).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        seen.fetch_add(1, SeqCst);
                        let ok = match flood {
                            Flood::UnknownOpaques { count, size } => {
                                let mut ok = true;
                                for k in 0..count {
                                    let junk =
                                        RemotingCommand::response_to(&req, ResponseCode::SUCCESS)
                                            .opaque(i32::MAX - i32::try_from(k).unwrap_or(0))
                                            .body(vec![0u8; size]);
                                    let mut out = BytesMut::new();
                                    let _ = codec.encode(&junk, &mut out);
                                    ok &= io.write_all(&out).await.is_ok();
                                }
                                ok
                            }
                            Flood::OverLimit => {
                                let mut out = BytesMut::new();
                                out.put_i32(16 * 1024 * 1024 + 1);
                                out.put_u32(0x0100_0000);
                                io.write_all(&out).await.is_ok()
                            }
                        };
                        if !ok {
                            return;
                        }
                    }
                    if io.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            });
        }
    });
    requests
}

/// H6, producer: the first broker of the route answers every send with a flood of
/// 1 MiB frames carrying opaques the client never used (and never the answer), or
/// with the prefix of a frame above the limit. The send that hits it fails over and
/// is stored on the sane broker within its deadline; the junk frames are dropped and
/// counted as late replies; the over-limit frame closes that connection at once
/// (the retry does not wait for the deadline). Positive control: the hostile broker
/// did receive sends.
#[tokio::test(start_paused = true)]
async fn h6_hostile_broker_floods_are_survived_by_failover() {
    for (label, flood) in [
        (
            "unknown opaques",
            Flood::UnknownOpaques {
                count: 8,
                size: 1024 * 1024,
            },
        ),
        ("over-limit frame", Flood::OverLimit),
    ] {
        let net = MemoryNetwork::new();
        let ns = HostileNameServer::start(&net);
        let broker = good_broker(&net, &[("T", 4)]).await;
        let hostile = hostile_broker(&net, "broker-hostile:10911", flood);
        ns.set(
            "T",
            route(
                &[
                    queue_data("broker-hostile", "4"),
                    queue_data("broker-good", "4"),
                ],
                &[
                    broker_data("broker-hostile", "broker-hostile:10911"),
                    broker_data("broker-good", GOOD),
                ],
            ),
        );
        let p = producer(&net).await;
        for i in 0..6 {
            let started = Instant::now();
            let r = p
                .send(Message::new("T", format!("{label} {i}")))
                .await
                .unwrap_or_else(|e| panic!("{label}: send {i} fails over: {e}"));
            assert!(!r.msg_id.is_empty());
            let took = started.elapsed();
            assert!(
                took <= 3 * SECOND,
                "{label}: within the deadline ({took:?})"
            );
            if matches!(flood, Flood::OverLimit) {
                assert!(took < SECOND, "{label}: the close is immediate ({took:?})");
            }
        }
        assert!(
            hostile.load(SeqCst) >= 1,
            "{label}: positive control: the hostile broker got a send"
        );
        assert_eq!(broker.message_count(), 6, "{label}");
        let stats = p.stats();
        eprintln!(
            "h6 {label}: {} sends reached the hostile broker, {} late replies, {} connections closed",
            hostile.load(SeqCst),
            stats.transport.late_replies,
            stats.transport.connections_closed
        );
        if matches!(flood, Flood::UnknownOpaques { .. }) {
            assert!(
                stats.transport.late_replies >= 8,
                "{label}: junk frames dropped and counted ({})",
                stats.transport.late_replies
            );
        }
        if matches!(flood, Flood::OverLimit) {
            assert!(
                stats.transport.connections_closed >= 1,
                "{label}: the connection was closed by policy"
            );
        }
        p.close(SECOND).await;
    }
}
