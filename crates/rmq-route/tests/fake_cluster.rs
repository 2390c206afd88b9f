//! The route cache against `rmq-testkit`'s fake name server and brokers, through a
//! real `rmq_remoting::Pool` over the in-memory network, in both route dialects
//! (standard JSON and the legacy Java form with bare integer keys).

use std::sync::Arc;
use std::time::Duration;

use rmq_protocol::{RequestCode, SerializeType};
use rmq_remoting::{Pool, PoolConfig};
use rmq_route::detector::probe_all;
use rmq_route::{NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig, RouteEvent};
use rmq_testkit::fake::{Dialect, FakeCluster, RouteJson, Transport};

const T: Duration = Duration::from_secs(3);

async fn cluster(dialect: Dialect) -> FakeCluster {
    FakeCluster::builder()
        .brokers(["broker-b", "broker-a"])
        .transport(Transport::memory())
        .topic("T", 4)
        .auto_create_topics(true)
        .dialect(dialect)
        .build()
        .await
        .unwrap()
}

fn cache_for(cluster: &FakeCluster, header: SerializeType) -> (Pool, RouteCache) {
    let pool = Pool::new(cluster.connector(), PoolConfig::default());
    let ns = NameServerClient::new(
        Arc::new(pool.clone()),
        [cluster.name_server_addr()],
        NameServerConfig {
            serialize_type: header,
            ..NameServerConfig::default()
        },
    );
    (pool, RouteCache::new(ns, RouteCacheConfig::default()))
}

async fn run_dialect(dialect: Dialect, header: SerializeType) {
    let cluster = cluster(dialect).await;
    let (pool, cache) = cache_for(&cluster, header);
    let a = cluster.broker("broker-a").unwrap().addr().to_owned();
    let b = cluster.broker("broker-b").unwrap().addr().to_owned();

    // Java order whatever the name server's order: broker-a 0..3, broker-b 0..3.
    let info = cache.get("T", T).await.unwrap();
    let queues: Vec<String> = info.queues().iter().map(ToString::to_string).collect();
    assert_eq!(
        queues,
        [
            "T@broker-a:0",
            "T@broker-a:1",
            "T@broker-a:2",
            "T@broker-a:3",
            "T@broker-b:0",
            "T@broker-b:1",
            "T@broker-b:2",
            "T@broker-b:3"
        ]
    );
    assert_eq!(info.broker_addr("broker-a"), Some(a.as_str()));
    assert_eq!(info.broker_addr("broker-b"), Some(b.as_str()));
    let requests = cluster
        .name_server()
        .requests_with_code(RequestCode::GET_ROUTEINFO_BY_TOPIC);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].field("acceptStandardJsonOnly"), Some("true"));
    assert_eq!(requests[0].command.serialize_type, header);

    // TBW102 fallback: the brokers auto-create topics, so TBW102 (8 queues) exists;
    // the new topic borrows 4 queues per broker.
    let new = cache.get("NewTopic", T).await.unwrap();
    assert!(new.is_from_default_topic());
    assert_eq!(new.queues().len(), 8);
    assert!(new.queues().iter().all(|q| q.topic == "NewTopic"));

    // Probes reach both brokers.
    let targets = vec![
        ("broker-a".to_owned(), a.clone()),
        ("broker-b".to_owned(), b.clone()),
    ];
    let probes = probe_all(&pool, &targets, "T", Duration::from_secs(1)).await;
    assert!(probes.iter().all(|(_, ok)| *ok), "{probes:?}");

    // broker-b leaves: the next poll drops its queues and announces its address
    // (NewTopic's borrowed TBW102 route loses it too).
    let mut rx = cache.subscribe();
    cluster.name_server().unregister_broker("broker-b");
    let report = cache.poll_once().await;
    assert_eq!(report.changed, 2, "{report:?}");
    let info = cache.get("T", T).await.unwrap();
    assert_eq!(info.queues().len(), 4);
    assert!(info.queues().iter().all(|q| q.broker_name == "broker-a"));
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(
        events.contains(&RouteEvent::BrokersRemoved {
            addrs: vec![b.clone()]
        }),
        "{events:?}"
    );

    // The name server goes down: the cache keeps serving, failures are counted.
    cluster.name_server().down().await;
    let report = cache.poll_once().await;
    assert_eq!(report.failed, 2, "{report:?}");
    assert!(Arc::ptr_eq(&cache.get("T", T).await.unwrap(), &info));
    assert!(cache.snapshot().topics.iter().all(|t| t.failures == 1));

    pool.close_all();
    cluster.shutdown().await;
}

#[tokio::test]
async fn fake_cluster_standard_json_routes() {
    let dialect = Dialect::default();
    assert_eq!(dialect.route_json, RouteJson::Standard);
    run_dialect(dialect, SerializeType::ROCKETMQ).await;
}

#[tokio::test]
async fn fake_cluster_standard_json_routes_json_header() {
    run_dialect(Dialect::default(), SerializeType::JSON).await;
}

#[tokio::test]
async fn fake_cluster_legacy_java_routes() {
    let dialect = Dialect::java_4_8();
    assert_eq!(dialect.route_json, RouteJson::JavaLegacy);
    run_dialect(dialect, SerializeType::ROCKETMQ).await;
}
