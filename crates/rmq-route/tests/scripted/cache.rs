//! `RouteCache`: single flight, last good route (E6, E7), versions, events (E4's
//! route half), TBW102 fallback (E8), eviction, poller.

use std::sync::Arc;
use std::time::Duration;

use rmq_protocol::ResponseCode;
use rmq_protocol::route::{QueueData, TopicRouteData};
use rmq_route::{
    NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig, RouteError, RouteEvent,
};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::Instant;

use crate::fake::{FakeInvoke, Node, Reply, route};

const T: Duration = Duration::from_secs(3);
const A: (&str, &str) = ("broker-a", "10.0.0.1:10911");
const B: (&str, &str) = ("broker-b", "10.0.0.2:10911");

fn setup(config: RouteCacheConfig) -> (FakeInvoke, RouteCache) {
    let fake = FakeInvoke::new();
    fake.set_node("ns1", Node::Up);
    let ns = NameServerClient::new(
        fake.arc(),
        ["ns1"],
        NameServerConfig {
            first_index: Some(0),
            ..NameServerConfig::default()
        },
    );
    (fake, RouteCache::new(ns, config))
}

fn events(rx: &mut tokio::sync::broadcast::Receiver<RouteEvent>) -> Vec<RouteEvent> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("{e:?}"),
        }
    }
}

fn removed(addrs: &[&str]) -> RouteEvent {
    RouteEvent::BrokersRemoved {
        addrs: addrs.iter().map(|a| a.to_string()).collect(),
    }
}

#[tokio::test(start_paused = true)]
async fn single_flight_50_concurrent_gets_one_request() {
    let (fake, cache) = setup(RouteCacheConfig::default());
    fake.set_route("T", route(&[A, B], 4));
    fake.set_delay(Duration::from_millis(100));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("T", T).await })
        })
        .collect();
    let mut infos = Vec::new();
    for t in tasks {
        infos.push(t.await.unwrap().unwrap());
    }
    assert_eq!(
        fake.total_calls(),
        1,
        "one name-server request for 50 first calls"
    );
    assert!(infos.iter().all(|i| Arc::ptr_eq(i, &infos[0])));
    assert_eq!(infos[0].queues().len(), 8);
    // Later calls are served from the cache.
    cache.get("T", T).await.unwrap();
    assert_eq!(fake.total_calls(), 1);
    assert_eq!(cache.version("T"), Some(1));

    // Failed first fetches are shared too, and not cached.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("Missing", T).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap_err().is_topic_not_found());
    }
    // Topic + TBW102 (the fallback is on; TBW102 does not exist here).
    assert_eq!(fake.total_calls(), 3);
    assert!(cache.get("Missing", T).await.is_err());
    assert_eq!(fake.total_calls(), 5, "a failure is not cached");
}

#[tokio::test(start_paused = true)]
async fn abandoned_fetch_is_taken_over_by_a_waiter() {
    let (fake, cache) = setup(RouteCacheConfig::default());
    fake.set_route("T", route(&[A], 2));
    fake.set_delay(Duration::from_secs(2));
    let short = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get("T", Duration::from_secs(1)).await })
    };
    let long = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get("T", Duration::from_secs(10)).await })
    };
    let start = Instant::now();
    let e = short.await.unwrap().unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    long.await.unwrap().unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "the waiter restarted the fetch at 1 s"
    );
    assert_eq!(fake.total_calls(), 2);
}

/// E7: an error, an invalid body or an empty route after a good one keeps the old
/// route and is counted; version bumps only on a real change.
#[tokio::test(start_paused = true)]
async fn e7_poll_keeps_last_good_route_and_counts_failures() {
    let (fake, cache) = setup(RouteCacheConfig::default());
    fake.set_route("T", route(&[A, B], 4));
    let good = cache.get("T", T).await.unwrap();
    let mut rx = cache.subscribe();

    let bad = [
        Reply::Code(ResponseCode::SYSTEM_ERROR),
        Reply::Body(b"{\"brokerDatas\":[{".to_vec()),
        Reply::Route(TopicRouteData::default()),
        Reply::Route(TopicRouteData {
            queue_datas: vec![QueueData::new("broker-a", 4, 4, 4)],
            ..route(&[A], 4)
        }),
    ];
    for (i, reply) in bad.into_iter().enumerate() {
        fake.set_reply("T", reply);
        let report = cache.poll_once().await;
        assert_eq!(
            (report.topics, report.failed, report.changed),
            (1, 1, 0),
            "{i}"
        );
        let now = cache.get("T", T).await.unwrap();
        assert!(Arc::ptr_eq(&now, &good), "{i}: last good route kept");
        let stats = &cache.snapshot().topics[0];
        assert_eq!(stats.failures, i as u64 + 1);
        assert_eq!(stats.consecutive_failures, i as u32 + 1);
        assert_eq!(stats.version, 1);
        assert_eq!(stats.queues, 8);
    }
    let snap = cache.snapshot();
    let last = snap.topics[0].last_error.clone().unwrap();
    assert_eq!(last, RouteError::NoWritableQueue { topic: "T".into() });
    assert_eq!((snap.polls, snap.failures), (4, 4));
    assert!(events(&mut rx).is_empty(), "no event without a change");

    // The same route again, listed in another order: no new version.
    let mut same = route(&[A, B], 4);
    same.queue_datas.reverse();
    same.broker_datas.reverse();
    fake.set_route("T", same);
    let report = cache.poll_once().await;
    assert_eq!((report.failed, report.changed), (0, 0));
    assert!(Arc::ptr_eq(&cache.get("T", T).await.unwrap(), &good));
    let stats = &cache.snapshot().topics[0];
    assert_eq!(
        (stats.version, stats.consecutive_failures, stats.failures),
        (1, 0, 4)
    );
    assert_eq!(stats.last_error, None);

    // A real change: new version, new snapshot, counter carried over, event.
    good.reset_index(41);
    fake.set_route("T", route(&[A, B], 2));
    let report = cache.poll_once().await;
    assert_eq!(report.changed, 1);
    let new = cache.get("T", T).await.unwrap();
    assert!(!Arc::ptr_eq(&new, &good));
    assert_eq!(new.queues().len(), 4);
    assert_eq!(new.next_index(), 42, "round-robin continues");
    assert_eq!(cache.version("T"), Some(2));
    assert_eq!(
        events(&mut rx),
        [RouteEvent::RouteChanged {
            topic: "T".into(),
            version: 2
        }]
    );
}

/// E6: the name server goes down after routes are cached: the cache keeps serving
/// for several poll intervals while the route age grows; the poller runs every 30 s
/// and stops when its handle is dropped.
#[tokio::test(start_paused = true)]
async fn e6_name_server_down_cache_keeps_serving() {
    let (fake, cache) = setup(RouteCacheConfig::default());
    fake.set_route("T1", route(&[A], 4));
    fake.set_route("T2", route(&[B], 4));
    let t1 = cache.get("T1", T).await.unwrap();
    cache.get("T2", T).await.unwrap();
    let poller = cache.spawn_default_poller().unwrap();

    fake.set_node("ns1", Node::Blackhole);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(95)).await;
    for _ in 0..3 {
        assert!(Arc::ptr_eq(&cache.get("T1", T).await.unwrap(), &t1));
        assert!(cache.get("T2", T).await.is_ok());
    }
    let snap = cache.snapshot();
    assert_eq!(snap.polls, 3, "polls at 30, 60 and 90 s");
    for t in &snap.topics {
        assert_eq!(t.failures, 3, "{t:?}");
        assert_eq!(t.queues, 4);
        assert!(t.age.unwrap() >= Duration::from_secs(90), "{t:?}");
        assert!(t.last_error.as_ref().unwrap().is_unavailable());
    }
    // One round asks one topic (3 s timeout) and skips the other: 3 requests.
    assert_eq!(fake.calls("ns1"), 2 + 3);
    assert!(start.elapsed() >= Duration::from_secs(95));

    drop(poller);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        cache.snapshot().polls,
        3,
        "the poller stopped with its handle"
    );
}

#[tokio::test(start_paused = true)]
async fn poller_shutdown_and_weak_cache() {
    let (fake, cache) = setup(RouteCacheConfig::default());
    fake.set_route("T", route(&[A], 1));
    cache.get("T", T).await.unwrap();
    let poller = cache.spawn_poller(Duration::from_secs(5)).unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(cache.snapshot().polls, 2);
    poller.shutdown().await;

    // A poller whose cache is gone ends by itself.
    let poller = cache.spawn_poller(Duration::from_secs(5)).unwrap();
    drop(cache);
    tokio::time::sleep(Duration::from_secs(6)).await;
    tokio::task::yield_now().await;
    assert!(poller.is_finished());
}

#[test]
fn spawn_poller_outside_a_runtime_is_an_error() {
    let (_fake, cache) = setup(RouteCacheConfig::default());
    assert_eq!(
        cache.spawn_default_poller().unwrap_err(),
        RouteError::NoRuntime
    );
}

/// A round stops asking when the name servers are unreachable: one timeout per
/// round, every topic counted as failed.
#[tokio::test(start_paused = true)]
async fn poll_round_is_bounded_when_name_servers_are_unreachable() {
    let (fake, cache) = setup(RouteCacheConfig::default());
    for t in ["T1", "T2", "T3"] {
        fake.set_route(t, route(&[A], 1));
        cache.get(t, T).await.unwrap();
    }
    fake.set_node("ns1", Node::Blackhole);
    let start = Instant::now();
    let report = cache.poll_once().await;
    assert_eq!(start.elapsed(), T);
    assert_eq!((report.topics, report.failed), (3, 3));
    assert!(cache.snapshot().topics.iter().all(|t| t.failures == 1));
}

/// E8: TOPIC_NOT_EXIST is typed with the fallback off; with it on the TBW102 route
/// is borrowed (capped at 4 queues per broker) until the real route appears.
#[tokio::test(start_paused = true)]
async fn e8_topic_not_exist_and_tbw102_fallback() {
    let off = RouteCacheConfig {
        default_topic_fallback: false,
        ..RouteCacheConfig::default()
    };
    let (fake, cache) = setup(off);
    fake.set_route("TBW102", route(&[A, B], 8));
    assert_eq!(
        cache.get("New", T).await.unwrap_err(),
        RouteError::TopicNotFound {
            topic: "New".into()
        }
    );
    assert_eq!(fake.route_requests(), [("ns1".into(), "New".into())]);

    let (fake, cache) = setup(RouteCacheConfig::default());
    fake.set_route("TBW102", route(&[B, A], 8));
    let info = cache.get("New", T).await.unwrap();
    assert!(info.is_from_default_topic());
    let queues: Vec<String> = info.queues().iter().map(|q| q.to_string()).collect();
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
    assert_eq!(
        fake.route_requests(),
        [
            ("ns1".into(), "New".into()),
            ("ns1".into(), "TBW102".into())
        ]
    );
    let stats = &cache.snapshot().topics[0];
    assert!(stats.from_default_topic);

    // Still unknown at the next poll: the borrowed route stays (unchanged version).
    cache.poll_once().await;
    assert_eq!(cache.version("New"), Some(1));
    // The broker created the topic: the real route replaces the borrowed one.
    fake.set_route("New", route(&[A], 2));
    cache.poll_once().await;
    let info = cache.get("New", T).await.unwrap();
    assert!(!info.is_from_default_topic());
    assert_eq!(info.queues().len(), 2);
    assert_eq!(cache.version("New"), Some(2));

    // A topic with its own route that disappears keeps it (no switch to TBW102).
    fake.remove_route("New");
    let report = cache.poll_once().await;
    assert_eq!(report.failed, 1);
    assert!(!cache.get("New", T).await.unwrap().is_from_default_topic());
    assert!(
        cache.snapshot().topics[0]
            .last_error
            .as_ref()
            .unwrap()
            .is_topic_not_found()
    );

    // Fallback on but no TBW102 either: typed, for the user's topic.
    fake.remove_route("TBW102");
    assert_eq!(
        cache.get("Other", T).await.unwrap_err(),
        RouteError::TopicNotFound {
            topic: "Other".into()
        }
    );
}

/// E4 (route half): a broker that leaves every cached route is announced, once no
/// topic uses it; an address change announces the old address.
#[tokio::test(start_paused = true)]
async fn e4_brokers_removed_events() {
    let (fake, cache) = setup(RouteCacheConfig::default());
    fake.set_route("T1", route(&[A, B], 4));
    fake.set_route("T2", route(&[A], 4));
    cache.get("T1", T).await.unwrap();
    cache.get("T2", T).await.unwrap();
    let mut rx = cache.subscribe();

    // broker-b leaves T1, the only route that had it.
    fake.set_route("T1", route(&[A], 4));
    cache.poll_once().await;
    let ev = events(&mut rx);
    assert!(ev.contains(&removed(&[B.1])), "{ev:?}");
    assert!(
        cache
            .get("T1", T)
            .await
            .unwrap()
            .broker_addr("broker-b")
            .is_none()
    );

    // broker-a leaves T1 but T2 still uses it: nothing to close.
    fake.set_route("T1", route(&[B], 4));
    cache.poll_once().await;
    let ev = events(&mut rx);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, RouteEvent::BrokersRemoved { .. })),
        "{ev:?}"
    );

    // broker-a moves to a new address in both routes.
    let moved = ("broker-a", "10.0.0.9:10911");
    fake.set_route("T1", route(&[moved, B], 4));
    fake.set_route("T2", route(&[moved], 4));
    cache.poll_once().await;
    let ev = events(&mut rx);
    assert_eq!(
        ev.iter().filter(|e| **e == removed(&[A.1])).count(),
        1,
        "{ev:?}"
    );
    assert_eq!(
        cache.get("T2", T).await.unwrap().broker_addr("broker-a"),
        Some("10.0.0.9:10911")
    );

    // Removing a topic announces the brokers only it used.
    fake.set_route("T1", route(&[moved, B], 4));
    assert!(cache.remove("T1"));
    assert_eq!(events(&mut rx), [removed(&[B.1])]);
    assert!(!cache.remove("T1"));
}

#[tokio::test(start_paused = true)]
async fn idle_topics_are_evicted() {
    let (fake, cache) = setup(RouteCacheConfig {
        idle_eviction: Duration::from_secs(600),
        ..RouteCacheConfig::default()
    });
    fake.set_route("Busy", route(&[A], 1));
    fake.set_route("Idle", route(&[B], 1));
    cache.get("Busy", T).await.unwrap();
    cache.get("Idle", T).await.unwrap();
    let mut rx = cache.subscribe();

    tokio::time::sleep(Duration::from_secs(300)).await;
    cache.get("Busy", T).await.unwrap();
    assert_eq!(cache.poll_once().await.evicted, 0);
    tokio::time::sleep(Duration::from_secs(301)).await;
    assert_eq!(cache.snapshot().topics[1].idle, Duration::from_secs(601));
    let report = cache.poll_once().await;
    assert_eq!((report.evicted, report.topics), (1, 1));
    assert_eq!(cache.topics(), ["Busy"]);
    assert_eq!(events(&mut rx), [removed(&[B.1])]);
    assert_eq!(cache.snapshot().evictions, 1);
    assert!(cache.cached("Idle").is_none());
    // Polls do not count as use.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(200)).await;
        cache.poll_once().await;
    }
    assert!(cache.topics().is_empty());

    // An evicted topic is fetched again on its next use.
    fake.reset_calls();
    cache.get("Idle", T).await.unwrap();
    assert_eq!(fake.total_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_first_fetch_is_retried_by_the_poll() {
    let (fake, cache) = setup(RouteCacheConfig {
        default_topic_fallback: false,
        ..RouteCacheConfig::default()
    });
    fake.set_node("ns1", Node::Down);
    assert!(cache.get("T", T).await.unwrap_err().is_unavailable());
    assert_eq!(cache.version("T"), Some(0));
    fake.set_node("ns1", Node::Up);
    fake.set_route("T", route(&[A], 2));
    let report = cache.poll_once().await;
    assert_eq!(report.changed, 1);
    assert_eq!(cache.cached("T").unwrap().queues().len(), 2);
    let stats = &cache.snapshot().topics[0];
    assert_eq!(
        (stats.failures, stats.consecutive_failures, stats.version),
        (1, 0, 1)
    );
}

/// A fetch abandoned by its caller (its future dropped) neither blocks eviction nor
/// later fetches.
#[tokio::test(start_paused = true)]
async fn abandoned_fetch_does_not_pin_the_topic() {
    let (fake, cache) = setup(RouteCacheConfig {
        idle_eviction: Duration::from_secs(60),
        ..RouteCacheConfig::default()
    });
    fake.set_route("T", route(&[A], 1));
    fake.set_delay(Duration::from_secs(2));
    let abandoned = tokio::time::timeout(Duration::from_secs(1), cache.get("T", T)).await;
    assert!(abandoned.is_err());
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(cache.poll_once().await.evicted, 1);
    assert!(cache.topics().is_empty());
    fake.set_delay(Duration::ZERO);
    cache.get("T", T).await.unwrap();
}

/// `get_cached` never fetches, and marks a cached topic as used as `get` does (a
/// topic used only by callback sends is not evicted as idle); `cached` does not.
#[tokio::test(start_paused = true)]
async fn get_cached_does_not_fetch_and_keeps_the_topic_in_use() {
    let (fake, cache) = setup(RouteCacheConfig {
        idle_eviction: Duration::from_secs(60),
        ..RouteCacheConfig::default()
    });
    fake.set_route("T", route(&[A], 1));
    fake.set_route("U", route(&[A], 1));
    assert!(cache.get_cached("T").is_none(), "nothing cached yet");
    assert!(cache.topics().is_empty(), "and nothing fetched or added");
    cache.get("T", T).await.unwrap();
    cache.get("U", T).await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(40)).await;
        assert!(cache.get_cached("T").is_some());
        assert!(cache.cached("U").is_some());
    }
    // 120 s: T was used every 40 s, U only looked at.
    assert_eq!(cache.poll_once().await.evicted, 1);
    assert_eq!(cache.topics(), ["T"]);
}
