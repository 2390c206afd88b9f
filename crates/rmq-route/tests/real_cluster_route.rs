//! The route cache against a real cluster (`cargo xtask test --stage cluster`): a
//! topic created on both brokers gives 8 publish queues in Java order.

#[path = "support/real.rs"]
mod real;

use std::time::Duration;

use rmq_route::detector::{probe, probe_all};
use rmq_testkit::real_cluster::{real_cluster, unique_topic};

use real::{queue_names, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_route_java_order_on_both_brokers() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let s = setup(&cluster).await;
    let topic = unique_topic("RmqRoute");
    s.create_topic(&topic, 4).await;

    let expected = s.java_order(&topic, 4);
    assert_eq!(expected.len(), 8);
    assert!(
        expected[0].ends_with("@broker-a:0") && expected[4].ends_with("@broker-b:0"),
        "{expected:?}"
    );
    let info = s
        .wait_for(&topic, Duration::from_secs(20), |i| i.queues().len() == 8)
        .await
        .unwrap_or_else(|| panic!("route of {topic} with 8 queues: {:?}", s.cache.snapshot()));
    assert_eq!(queue_names(&info), expected);
    for (name, addr) in &s.masters {
        assert_eq!(info.broker_addr(name), Some(addr.as_str()));
    }
    assert!(!info.is_from_default_topic());
    let snap = s.cache.snapshot();
    let stats = snap.topics.iter().find(|t| t.topic == topic).unwrap();
    assert!(stats.version >= 1);

    // An unchanged route keeps its version.
    let version = s.cache.version(&topic);
    let report = s.cache.poll_once().await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(s.cache.version(&topic), version);

    // Both masters answer the detector's probe; a closed port does not.
    let probes = probe_all(&s.pool, &s.masters, &topic, Duration::from_secs(2)).await;
    assert!(probes.iter().all(|(_, ok)| *ok), "{probes:?}");
    assert!(!probe(&s.pool, "127.0.0.1:1", &topic, Duration::from_secs(1)).await);

    // An unknown topic is typed with the fallback off.
    let missing = unique_topic("RmqRouteMissing");
    let e = s.cache.get(&missing, real::T).await.unwrap_err();
    assert!(e.is_topic_not_found(), "{e:?}");
    s.pool.close_all();
}
