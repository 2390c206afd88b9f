//! Rows E4 and E6–E10 of the reliability matrix (reference reliability.md section 7)
//! against `rmq-testkit`'s fake name servers and brokers: a real `rmq_remoting::Pool`
//! over the in-memory network (`MemoryNetwork`), paused tokio time, and the route
//! cache / name-server client as a producer uses them. Each test asserts its row's
//! pass criterion; the scripted-`Invoke` versions of the same rows are in
//! `tests/scripted/`.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{BoxFuture, BoxStream, Connector, MemoryNetwork, Pool, PoolConfig};
use rmq_route::detector::probe;
use rmq_route::{
    NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig, RouteError, RouteEvent,
};
use rmq_testkit::fake::{FakeBroker, FakeCluster, FakeNameServer, Transport};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::Instant;

/// Budget of one lookup (Java's `mqClientApiTimeout`).
const T: Duration = Duration::from_secs(3);
/// Java's `pollNameServerInterval`, the cache's default.
const POLL: Duration = Duration::from_secs(30);
const ROUTE: RequestCode = RequestCode::GET_ROUTEINFO_BY_TOPIC;

/// A connector over a memory network that counts dials per address.
#[derive(Debug)]
struct CountingConnector {
    net: MemoryNetwork,
    dials: Mutex<HashMap<String, usize>>,
}

impl CountingConnector {
    fn new(net: &MemoryNetwork) -> Arc<Self> {
        Arc::new(Self {
            net: net.clone(),
            dials: Mutex::new(HashMap::new()),
        })
    }

    fn dials(&self, addr: &str) -> usize {
        self.dials
            .lock()
            .unwrap()
            .get(addr)
            .copied()
            .unwrap_or_default()
    }
}

impl Connector for CountingConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        *self
            .dials
            .lock()
            .unwrap()
            .entry(addr.to_owned())
            .or_default() += 1;
        self.net.connect(addr)
    }
}

/// A cluster of `brokers` with topic `T` (4 queues each) on `net`.
async fn cluster(net: &MemoryNetwork, brokers: &[&str], auto_create: bool) -> FakeCluster {
    FakeCluster::builder()
        .brokers(brokers.iter().copied())
        .transport(Transport::Memory(net.clone()))
        .topic("T", 4)
        .auto_create_topics(auto_create)
        .build()
        .await
        .unwrap()
}

/// A pool dialling through `connector` and a route cache over the name servers
/// `addrs`, the first one tried first.
fn cache_over(
    connector: Arc<dyn Connector>,
    addrs: &[&str],
    config: RouteCacheConfig,
) -> (Pool, RouteCache) {
    let pool = Pool::new(connector, PoolConfig::default());
    let ns = NameServerClient::new(
        Arc::new(pool.clone()),
        addrs.iter().copied(),
        NameServerConfig {
            first_index: Some(0),
            ..NameServerConfig::default()
        },
    );
    (pool, RouteCache::new(ns, config))
}

fn drain(rx: &mut broadcast::Receiver<RouteEvent>) -> Vec<RouteEvent> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// Route requests a fake name server received, as the topics asked for.
fn route_topics(ns: &FakeNameServer) -> Vec<String> {
    ns.requests_with_code(ROUTE)
        .iter()
        .map(|r| r.field("topic").unwrap_or_default().to_owned())
        .collect()
}

/// E4: a broker replaced by one with the same name at a new address. After the next
/// poll the publish info points at the new address, `BrokersRemoved { [old] }` is
/// broadcast (the producer closes its connections on it), and no lookup — nor any
/// request sent through one — reaches the old address any more.
#[tokio::test(start_paused = true)]
async fn e4_broker_replaced_at_a_new_address() {
    let net = MemoryNetwork::new();
    let cluster = cluster(&net, &["broker-a", "broker-b"], false).await;
    let (pool, cache) = cache_over(
        cluster.connector(),
        &[cluster.name_server_addr()],
        RouteCacheConfig::default(),
    );
    let old = cluster.broker("broker-a").unwrap().clone();
    let old_addr = old.addr().to_owned();
    let b_addr = cluster.broker("broker-b").unwrap().addr().to_owned();

    let info = cache.get("T", T).await.unwrap();
    assert_eq!(info.broker_addr("broker-a"), Some(old_addr.as_str()));
    // A request through the route: the pool now holds a connection to the old broker.
    assert!(probe(&pool, &old_addr, "T", T).await);
    assert_eq!(old.connection_count(), 1);
    let mut rx = cache.subscribe();

    // The replacement registers itself (same name, new address) with the name server,
    // which now serves the new address for broker-a.
    let new = FakeBroker::builder("broker-a")
        .transport(Transport::Memory(net.clone()))
        .name_server(cluster.name_server())
        .topic("T", 4)
        .start()
        .await
        .unwrap();
    let new_addr = new.addr().to_owned();
    assert_ne!(new_addr, old_addr);
    assert_eq!(
        cluster
            .route_for("T")
            .unwrap()
            .broker_datas
            .iter()
            .find(|b| b.broker_name == "broker-a")
            .and_then(BrokerData::master_addr),
        Some(new_addr.as_str())
    );
    // Until the poll the cache serves the old route.
    assert_eq!(
        cache.get("T", T).await.unwrap().broker_addr("broker-a"),
        Some(old_addr.as_str())
    );

    let report = cache.poll_once().await;
    assert_eq!((report.topics, report.changed, report.failed), (1, 1, 0));
    let events = drain(&mut rx);
    assert_eq!(
        events,
        [
            RouteEvent::RouteChanged {
                topic: "T".into(),
                version: 2
            },
            RouteEvent::BrokersRemoved {
                addrs: vec![old_addr.clone()]
            }
        ]
    );
    // The producer's reaction to the event: close the connections to those addresses.
    for e in &events {
        if let RouteEvent::BrokersRemoved { addrs } = e {
            for a in addrs {
                pool.close(a);
            }
        }
    }
    tokio::time::timeout(
        Duration::from_secs(1),
        old.wait_until(|s| s.connection_count() == 0),
    )
    .await
    .expect("old connection closed");
    assert!(!pool.connected_addrs().contains(&old_addr));

    // Every lookup after the poll gives the new address; requests follow.
    let info = cache.get("T", T).await.unwrap();
    assert_eq!(info.broker_addr("broker-a"), Some(new_addr.as_str()));
    assert_eq!(info.broker_addr("broker-b"), Some(b_addr.as_str()));
    assert_eq!(info.queues().len(), 8);
    old.clear_requests();
    for _ in 0..16 {
        let q = info.next_queue().unwrap();
        let addr = info.broker_addr(&q.broker_name).unwrap();
        assert_ne!(addr, old_addr, "{q}");
        assert!(probe(&pool, addr, "T", T).await, "{q} at {addr}");
    }
    assert!(
        old.requests().is_empty(),
        "no request reached the old address after the poll"
    );
    assert_eq!(new.requests_with_code(RequestCode::GET_MAX_OFFSET).len(), 8);
    assert_eq!(
        old.connections_accepted(),
        1,
        "the old broker was not dialled again"
    );
    // Later polls do not bring the old address back.
    cache.poll_once().await;
    assert_eq!(
        cache.get("T", T).await.unwrap().broker_addr("broker-a"),
        Some(new_addr.as_str())
    );
    assert!(drain(&mut rx).is_empty(), "no event without a change");

    pool.close_all();
    new.shutdown().await;
    cluster.shutdown().await;
}

/// E6: the name server goes down after the routes were cached. `get` keeps returning
/// the cached routes through three poll intervals and beyond, the snapshot's route
/// age grows past 3 × 30 s, and every failed refresh is counted; the first poll after
/// the name server returns confirms the route again.
#[tokio::test(start_paused = true)]
async fn e6_name_server_down_cache_keeps_serving() {
    let net = MemoryNetwork::new();
    let cluster = cluster(&net, &["broker-a", "broker-b"], false).await;
    cluster.create_topic("T2", 2);
    let (pool, cache) = cache_over(
        cluster.connector(),
        &[cluster.name_server_addr()],
        RouteCacheConfig::default(),
    );
    let t1 = cache.get("T", T).await.unwrap();
    let t2 = cache.get("T2", T).await.unwrap();
    assert_eq!((t1.queues().len(), t2.queues().len()), (8, 4));
    let poller = cache.spawn_default_poller().unwrap();

    let ns = cluster.name_server();
    ns.down().await;
    let requests_before = ns.requests().len();
    let start = Instant::now();
    let mut max_age = Duration::ZERO;
    for round in 1..=4u64 {
        // Just after the poll at round × 30 s.
        tokio::time::sleep_until(start + POLL * round as u32 + Duration::from_secs(1)).await;
        for _ in 0..3 {
            assert!(Arc::ptr_eq(&cache.get("T", T).await.unwrap(), &t1));
            assert!(Arc::ptr_eq(&cache.get("T2", T).await.unwrap(), &t2));
        }
        let snap = cache.snapshot();
        assert_eq!(snap.polls, round, "one poll per interval");
        assert_eq!(snap.failures, 2 * round);
        for t in &snap.topics {
            assert_eq!(
                (t.failures, t.consecutive_failures),
                (round, round as u32),
                "{t:?}"
            );
            assert_eq!(t.version, 1);
            assert!(t.last_error.as_ref().unwrap().is_unavailable(), "{t:?}");
            let age = t.age.unwrap();
            assert!(age >= POLL * round as u32, "{t:?}");
            assert!(age > max_age, "route age grows: {t:?}");
        }
        let ages = snap.topics.iter().filter_map(|t| t.age);
        max_age = ages.max().unwrap();
        assert!(snap.name_servers[0].failures >= 1);
    }
    assert!(max_age > 3 * POLL, "{max_age:?}");
    assert_eq!(ns.requests().len(), requests_before, "nothing reached it");

    // Back up: the next poll confirms the (unchanged) routes.
    ns.up().await.unwrap();
    tokio::time::sleep_until(start + POLL * 5 + Duration::from_secs(1)).await;
    let snap = cache.snapshot();
    assert_eq!(snap.polls, 5);
    for t in &snap.topics {
        assert_eq!((t.failures, t.consecutive_failures), (4, 0), "{t:?}");
        assert!(t.age.unwrap() <= Duration::from_secs(1), "{t:?}");
        assert_eq!(t.last_error, None);
        assert_eq!(t.version, 1);
    }
    assert!(Arc::ptr_eq(&cache.get("T", T).await.unwrap(), &t1));

    poller.shutdown().await;
    pool.close_all();
    cluster.shutdown().await;
}

/// E6 with a hung name server (`pause()`: connections stay open, nothing is
/// answered): every poll's refresh runs into its 3 s budget. `get` keeps answering
/// from the cache at once, even while a poll is waiting, and each timed-out refresh
/// is counted with a `Timeout` error (it was not, before the fix in `run_flight`).
#[tokio::test(start_paused = true)]
async fn e6_hung_name_server_timeouts_are_counted() {
    let net = MemoryNetwork::new();
    let cluster = cluster(&net, &["broker-a", "broker-b"], false).await;
    cluster.create_topic("T2", 2);
    let (pool, cache) = cache_over(
        cluster.connector(),
        &[cluster.name_server_addr()],
        RouteCacheConfig::default(),
    );
    let t1 = cache.get("T", T).await.unwrap();
    let t2 = cache.get("T2", T).await.unwrap();
    let poller = cache.spawn_default_poller().unwrap();

    let ns = cluster.name_server();
    ns.pause();
    let start = Instant::now();
    let mut max_age = Duration::ZERO;
    for round in 1..=3u32 {
        // In the middle of the poll at round × 30 s: served from the cache at once.
        tokio::time::sleep_until(start + POLL * round + Duration::from_secs(1)).await;
        let asked = Instant::now();
        assert!(Arc::ptr_eq(&cache.get("T", T).await.unwrap(), &t1));
        assert!(Arc::ptr_eq(&cache.get("T2", T).await.unwrap(), &t2));
        assert_eq!(asked.elapsed(), Duration::ZERO);
        // After it: one more failure per topic.
        tokio::time::sleep_until(start + POLL * round + T + Duration::from_secs(1)).await;
        let snap = cache.snapshot();
        assert_eq!(snap.polls, u64::from(round));
        assert_eq!(snap.failures, 2 * u64::from(round), "{snap:#?}");
        for t in &snap.topics {
            assert_eq!(
                (t.failures, t.consecutive_failures),
                (u64::from(round), round),
                "{t:?}"
            );
            assert!(
                matches!(t.last_error, Some(RouteError::Timeout { .. })),
                "{t:?}"
            );
            assert!(t.age.unwrap() > max_age, "route age grows: {t:?}");
        }
        max_age = snap.topics.iter().filter_map(|t| t.age).max().unwrap();
    }
    assert!(max_age > 3 * POLL, "{max_age:?}");
    assert!(Arc::ptr_eq(&cache.get("T", T).await.unwrap(), &t1));

    poller.shutdown().await;
    pool.close_all();
    ns.resume();
    cluster.shutdown().await;
}

/// E7: after a good route, the name server answers a failure code, SUCCESS with no
/// body, SUCCESS with a body that is not JSON, an empty route and a route without a
/// master. Each time the last good route is kept (same snapshot, same version, no
/// event) and the failure is counted; the good route again is not a change.
#[tokio::test(start_paused = true)]
async fn e7_empty_or_invalid_route_keeps_the_last_good_one() {
    let net = MemoryNetwork::new();
    let cluster = cluster(&net, &["broker-a", "broker-b"], false).await;
    let (pool, cache) = cache_over(
        cluster.connector(),
        &[cluster.name_server_addr()],
        RouteCacheConfig::default(),
    );
    let ns = cluster.name_server();
    let good_route = ns.route("T").unwrap();
    let good = cache.get("T", T).await.unwrap();
    let mut rx = cache.subscribe();

    // Each bad answer is installed for the next poll's request only.
    type Bad = Box<dyn Fn(&FakeNameServer)>;
    let bad: Vec<(&str, Bad)> = vec![
        (
            "SYSTEM_ERROR",
            Box::new(|ns: &FakeNameServer| {
                ns.script(ROUTE)
                    .reply_with(ResponseCode::SYSTEM_ERROR, "name server not ready")
                    .times(1);
            }),
        ),
        (
            "SUCCESS without a body",
            Box::new(|ns: &FakeNameServer| {
                ns.script(ROUTE).reply(ResponseCode::SUCCESS).times(1);
            }),
        ),
        (
            "SUCCESS with a truncated JSON body",
            Box::new(|ns: &FakeNameServer| {
                // A well-formed response frame answering the next request on the
                // connection (opaques count up from 1 per connection).
                let last = ns.requests().last().unwrap().command.clone();
                let response = RemotingCommand::response_to(&last, ResponseCode::SUCCESS)
                    .opaque(last.opaque + 1)
                    .body(&b"{\"brokerDatas\":[{"[..]);
                let mut frame = Default::default();
                rmq_protocol::frame::encode(&response, &mut frame).unwrap();
                ns.script(ROUTE).garbage(frame.freeze()).times(1);
            }),
        ),
        (
            "empty route",
            Box::new(|ns: &FakeNameServer| ns.set_route("T", TopicRouteData::default())),
        ),
        (
            "route without a master",
            Box::new(|ns: &FakeNameServer| {
                ns.set_route(
                    "T",
                    TopicRouteData {
                        queue_datas: vec![QueueData::new("broker-a", 4, 4, 6)],
                        broker_datas: vec![
                            BrokerData::new("DefaultCluster", "broker-a")
                                .with_addr(1, "127.0.0.1:1"),
                        ],
                        ..TopicRouteData::default()
                    },
                );
            }),
        ),
    ];
    let mut errors = Vec::new();
    for (i, (what, install)) in bad.iter().enumerate() {
        install(ns);
        let report = cache.poll_once().await;
        assert_eq!(
            (report.topics, report.failed, report.changed),
            (1, 1, 0),
            "{what}"
        );
        let now = cache.get("T", T).await.unwrap();
        assert!(Arc::ptr_eq(&now, &good), "{what}: last good route kept");
        let snap = cache.snapshot();
        let t = &snap.topics[0];
        assert_eq!(
            (t.failures, t.consecutive_failures),
            (i as u64 + 1, i as u32 + 1),
            "{what}"
        );
        assert_eq!((t.version, t.queues), (1, 8), "{what}");
        assert_eq!(snap.failures, i as u64 + 1);
        errors.push(t.last_error.clone().unwrap());
        assert_eq!(
            ns.scripts_pending(),
            0,
            "{what}: the scripted answer was used"
        );
    }
    assert!(
        matches!(&errors[0], RouteError::NameServer { code, .. } if *code == ResponseCode::SYSTEM_ERROR),
        "{errors:?}"
    );
    assert!(
        matches!(errors[1], RouteError::InvalidRoute { .. }),
        "{errors:?}"
    );
    assert!(
        matches!(errors[2], RouteError::InvalidRoute { .. }),
        "{errors:?}"
    );
    assert_eq!(errors[3], RouteError::NoWritableQueue { topic: "T".into() });
    assert_eq!(
        errors[4],
        RouteError::NoMaster {
            topic: "T".into(),
            brokers: vec!["broker-a".into()]
        }
    );
    assert!(drain(&mut rx).is_empty(), "no event without a change");
    assert_eq!(ns.requests_with_code(ROUTE).len(), 1 + bad.len());
    // Answers, not transport failures: the name server is not put in backoff.
    let stats = &cache.snapshot().name_servers[0];
    assert_eq!((stats.failures, stats.backoff_remaining), (0, None));

    // The good route again: confirmed, not a change.
    ns.set_route("T", good_route);
    let report = cache.poll_once().await;
    assert_eq!((report.failed, report.changed), (0, 0));
    assert!(Arc::ptr_eq(&cache.get("T", T).await.unwrap(), &good));
    let t = &cache.snapshot().topics[0];
    assert_eq!((t.version, t.consecutive_failures, t.failures), (1, 0, 5));
    assert_eq!(t.last_error, None);
    assert!(drain(&mut rx).is_empty());

    pool.close_all();
    cluster.shutdown().await;
}

/// E8: TOPIC_NOT_EXIST. With the fallback off: a typed `TopicNotFound`, one request,
/// no wait, the name server not in backoff. With it on and the brokers
/// auto-creating (TBW102 registered): the TBW102 route is used (4 queues per broker),
/// until the topic gets its own route. With it on but no TBW102: `TopicNotFound`.
#[tokio::test(start_paused = true)]
async fn e8_topic_not_exist_typed_error_and_tbw102_fallback() {
    let net = MemoryNetwork::new();
    let cluster = cluster(&net, &["broker-a", "broker-b"], true).await;
    let ns = cluster.name_server();
    assert!(
        ns.route("TBW102").is_some(),
        "auto-creating brokers host TBW102"
    );

    // Fallback off.
    let off = RouteCacheConfig {
        default_topic_fallback: false,
        ..RouteCacheConfig::default()
    };
    let (pool, cache) = cache_over(cluster.connector(), &[cluster.name_server_addr()], off);
    let start = Instant::now();
    let e = cache.get("New", T).await.unwrap_err();
    assert_eq!(
        e,
        RouteError::TopicNotFound {
            topic: "New".into()
        }
    );
    assert!(e.is_topic_not_found() && !e.is_unavailable());
    assert_eq!(start.elapsed(), Duration::ZERO, "an answer, not a timeout");
    assert_eq!(route_topics(ns), ["New"]);
    let snap = cache.snapshot();
    assert_eq!(snap.topics[0].last_error, Some(e));
    assert_eq!(snap.name_servers[0].consecutive_failures, 0);
    assert!(snap.name_servers[0].backoff_remaining.is_none());
    pool.close_all();
    ns.clear_requests();

    // Fallback on (the default).
    let (pool, cache) = cache_over(
        cluster.connector(),
        &[cluster.name_server_addr()],
        RouteCacheConfig::default(),
    );
    let info = cache.get("New", T).await.unwrap();
    assert!(info.is_from_default_topic());
    let queues: Vec<String> = info.queues().iter().map(ToString::to_string).collect();
    assert_eq!(
        queues,
        [
            "New@broker-a:0",
            "New@broker-a:1",
            "New@broker-a:2",
            "New@broker-a:3",
            "New@broker-b:0",
            "New@broker-b:1",
            "New@broker-b:2",
            "New@broker-b:3"
        ]
    );
    for b in cluster.brokers() {
        assert_eq!(info.broker_addr(b.broker_name()), Some(b.addr()));
    }
    assert_eq!(route_topics(ns), ["New", "TBW102"]);
    assert!(cache.snapshot().topics[0].from_default_topic);
    // Still unknown at the next poll: the borrowed route stays.
    let report = cache.poll_once().await;
    assert_eq!((report.changed, report.failed), (0, 0));
    assert!(Arc::ptr_eq(&cache.get("New", T).await.unwrap(), &info));
    // The brokers create the topic: its own route replaces the borrowed one.
    cluster.create_topic("New", 2);
    let report = cache.poll_once().await;
    assert_eq!(report.changed, 1);
    let own = cache.get("New", T).await.unwrap();
    assert!(!own.is_from_default_topic());
    assert_eq!(own.queues().len(), 4);
    assert_eq!(cache.version("New"), Some(2));
    pool.close_all();

    // Fallback on, but no broker auto-creates (no TBW102): TopicNotFound.
    let plain = cluster_without_tbw102().await;
    let (pool, cache) = cache_over(
        plain.connector(),
        &[plain.name_server_addr()],
        RouteCacheConfig::default(),
    );
    assert_eq!(
        cache.get("New", T).await.unwrap_err(),
        RouteError::TopicNotFound {
            topic: "New".into()
        }
    );
    assert_eq!(route_topics(plain.name_server()), ["New", "TBW102"]);

    pool.close_all();
    plain.shutdown().await;
    cluster.shutdown().await;
}

async fn cluster_without_tbw102() -> FakeCluster {
    let c = cluster(&MemoryNetwork::new(), &["broker-a"], false).await;
    assert!(c.name_server().route("TBW102").is_none());
    c
}

/// Two name servers serving the same routes on one memory network; both brokers of
/// `cluster` register with the second one too.
async fn second_name_server(cluster: &FakeCluster) -> FakeNameServer {
    let ns2 = FakeNameServer::start(cluster.transport()).await.unwrap();
    assert_ne!(ns2.addr(), cluster.name_server_addr());
    for b in cluster.brokers() {
        b.register_with(&ns2);
    }
    assert_eq!(ns2.route("T"), cluster.route_for("T"));
    ns2
}

/// E9: two name servers, the first one black-holed (connects hang). A lookup fails
/// over to the second within the connect timeout and succeeds; the client sticks to
/// the second, and the black-holed one is not dialled again on later calls (10 polls
/// over 5 minutes, more topics); it is used again once it is back and the other fails.
#[tokio::test(start_paused = true)]
async fn e9_black_holed_name_server_failover_within_connect_timeout() {
    let net = MemoryNetwork::new();
    let cluster = cluster(&net, &["broker-a", "broker-b"], false).await;
    cluster.create_topic("T2", 2);
    let ns1 = cluster.name_server();
    let ns2 = second_name_server(&cluster).await;
    let (a1, a2) = (ns1.addr().to_owned(), ns2.addr().to_owned());
    net.set_black_hole(&a1, true);

    let connector = CountingConnector::new(&net);
    let (pool, cache) = cache_over(connector.clone(), &[&a1, &a2], RouteCacheConfig::default());
    let connect_timeout = PoolConfig::default().connect_timeout;
    let start = Instant::now();
    let info = cache.get("T", T).await.unwrap();
    let took = start.elapsed();
    assert!(took <= connect_timeout, "{took:?}");
    // ns1 had half of the 3 s budget.
    assert_eq!(took, T / 2);
    assert_eq!(info.queues().len(), 8);
    assert_eq!((connector.dials(&a1), connector.dials(&a2)), (1, 1));
    assert_eq!(route_topics(&ns2), ["T"]);
    assert!(ns1.requests().is_empty());
    let ns = cache.name_server();
    assert_eq!(
        ns.current().as_deref(),
        Some(a2.as_str()),
        "sticky on the server that answered"
    );
    let stats = ns.stats();
    assert_eq!((stats[0].failures, stats[0].consecutive_failures), (1, 1));
    assert!(stats[0].backoff_remaining.is_some());

    // Later calls: more topics and 10 polls over 5 minutes, each answered at once.
    let poller = cache.spawn_default_poller().unwrap();
    for topic in ["T2", "Unknown"] {
        let start = Instant::now();
        let r = cache.get(topic, T).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "{topic}: {r:?}");
    }
    tokio::time::sleep(POLL * 10 + Duration::from_secs(1)).await;
    let snap = cache.snapshot();
    assert_eq!(snap.polls, 10);
    assert!(
        snap.topics
            .iter()
            .filter(|t| t.topic != "Unknown")
            .all(|t| t.failures == 0),
        "{snap:?}"
    );
    assert_eq!(
        connector.dials(&a1),
        1,
        "the black-holed server is not retried on every call"
    );
    assert_eq!(connector.dials(&a2), 1, "one connection to the good one");
    // 3 lookups (T, T2, and Unknown with its TBW102 fallback = 2 requests) + 10
    // polls × 3 topics (the unknown one: 2 requests each).
    assert_eq!(ns2.requests_with_code(ROUTE).len(), 4 + 10 * 4);
    assert!(ns1.requests().is_empty());
    poller.shutdown().await;

    // ns1 comes back and ns2 dies: the next lookup fails over to ns1 at once.
    net.set_black_hole(&a1, false);
    ns2.down().await;
    let start = Instant::now();
    ns.get_route("T", T).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(connector.dials(&a1), 2);
    assert_eq!(ns.current().as_deref(), Some(a1.as_str()));
    assert_eq!(route_topics(ns1), ["T"]);

    pool.close_all();
    ns2.shutdown().await;
    cluster.shutdown().await;
}

/// E10: the name-server list changes. After `set_addresses` removes a server it
/// receives no further request and is not dialled, from lookups or polls, even when
/// the remaining server fails; a call in progress does not fail over to a server
/// removed meanwhile.
#[tokio::test(start_paused = true)]
async fn e10_removed_name_server_gets_no_further_requests() {
    let net = MemoryNetwork::new();
    let cluster = cluster(&net, &["broker-a", "broker-b"], false).await;
    cluster.create_topic("T2", 2);
    let ns1 = cluster.name_server();
    let ns2 = second_name_server(&cluster).await;
    let (a1, a2) = (ns1.addr().to_owned(), ns2.addr().to_owned());
    let connector = CountingConnector::new(&net);
    let (pool, cache) = cache_over(connector.clone(), &[&a1, &a2], RouteCacheConfig::default());
    let ns = cache.name_server().clone();

    cache.get("T", T).await.unwrap();
    assert_eq!(route_topics(ns1), ["T"]);
    assert!(ns2.requests().is_empty());

    let removed = ns.set_addresses([a2.as_str()]);
    assert_eq!(removed, [a1.as_str()]);
    // What the producer does with the removed addresses.
    for a in &removed {
        pool.close(a);
    }
    tokio::time::timeout(
        Duration::from_secs(1),
        ns1.wait_until(|s| s.connection_count() == 0),
    )
    .await
    .expect("connection to the removed server closed");
    assert_eq!(ns.current().as_deref(), Some(a2.as_str()));
    assert!(ns.stats().iter().all(|s| s.addr != a1));

    // Lookups and polls all go to ns2.
    cache.get("T2", T).await.unwrap();
    let poller = cache.spawn_default_poller().unwrap();
    tokio::time::sleep(POLL * 3 + Duration::from_secs(1)).await;
    assert_eq!(cache.snapshot().polls, 3);
    assert_eq!(route_topics(&ns2), ["T2", "T", "T2", "T", "T2", "T", "T2"]);
    // ns2 fails too: still nothing for ns1.
    ns2.down().await;
    tokio::time::sleep(POLL * 3).await;
    assert!(cache.snapshot().topics.iter().all(|t| t.failures == 3));
    assert!(ns.get_route("T", T).await.unwrap_err().is_unavailable());
    poller.shutdown().await;
    assert_eq!(route_topics(ns1), ["T"], "removed server never asked again");
    assert_eq!(connector.dials(&a1), 1, "nor dialled");
    ns2.up().await.unwrap();

    // A call in progress (a new client of ns1 and ns2 on the same pool, ns1 first):
    // ns1 black-holes the request; ns2 is removed before the call would fail over.
    let ns3 = FakeNameServer::start(cluster.transport()).await.unwrap();
    let client = NameServerClient::new(
        Arc::new(pool.clone()),
        [a1.as_str(), a2.as_str()],
        NameServerConfig {
            first_index: Some(0),
            ..NameServerConfig::default()
        },
    );
    ns1.script(ROUTE).black_hole();
    ns2.clear_requests();
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.get_route("T", T).await })
    };
    tokio::time::timeout(Duration::from_secs(1), ns1.wait_for_requests(ROUTE, 2))
        .await
        .expect("the call reached ns1");
    assert_eq!(client.set_addresses([ns3.addr()]).len(), 2);
    let e = call.await.unwrap().unwrap_err();
    assert!(e.transport().is_some_and(|t| t.is_timeout()), "{e:?}");
    assert!(
        ns2.requests().is_empty(),
        "ns2 was removed before the failover"
    );
    assert!(ns3.requests().is_empty(), "ns3 was not in the call's plan");

    pool.close_all();
    ns3.shutdown().await;
    ns2.shutdown().await;
    cluster.shutdown().await;
}
