//! Kills broker-b of the real cluster and checks that the next polls drop its
//! queues (and announce its address), then restarts it. Runs alone in this test
//! binary: the cluster is shared and this test changes it.

#[path = "support/real.rs"]
mod real;

use std::time::Duration;

use rmq_route::RouteEvent;
use rmq_route::detector::probe;
use rmq_testkit::real_cluster::{NodeAction, RealCluster, real_cluster, unique_topic};

use real::{queue_names, setup};

/// Restarts broker-b if the test ends (or panics) while it is down.
struct Restart<'a> {
    cluster: &'a RealCluster,
    armed: bool,
}

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = self.cluster.control(NodeAction::Start, "broker-b")
        {
            eprintln!("could not restart broker-b: {e}");
        }
    }
}

async fn control(cluster: &RealCluster, action: NodeAction, node: &'static str) {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || cluster.control(action, node))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cluster {} {node}: {e}", action.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_broker_kill_drops_its_queues() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    if cluster.state_file().is_none() {
        let required = std::env::var("RMQ_IT_REQUIRED").is_ok_and(|v| v == "1");
        assert!(!required, "RMQ_IT_CLUSTER_STATE is needed to kill a broker");
        eprintln!("SKIPPED: real_cluster_broker_kill: RMQ_IT_CLUSTER_STATE not set");
        return;
    }
    let s = setup(&cluster).await;
    let topic = unique_topic("RmqRouteKill");
    s.create_topic(&topic, 4).await;
    let before = s
        .wait_for(&topic, Duration::from_secs(20), |i| i.queues().len() == 8)
        .await
        .expect("route on both brokers");
    assert_eq!(queue_names(&before), s.java_order(&topic, 4));
    let b_addr = before
        .broker_addr("broker-b")
        .expect("broker-b master")
        .to_owned();
    let version = s.cache.version(&topic).unwrap();
    let mut rx = s.cache.subscribe();

    let mut restart = Restart {
        cluster: &cluster,
        armed: true,
    };
    control(&cluster, NodeAction::Kill, "broker-b").await;
    assert!(!probe(&s.pool, &b_addr, &topic, Duration::from_secs(1)).await);

    let without_b = s
        .wait_for(&topic, Duration::from_secs(40), |i| {
            i.queues().iter().all(|q| q.broker_name != "broker-b")
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "broker-b still in the route after 40 s: {:?}",
                s.cache.snapshot()
            )
        });
    let expected: Vec<String> = (0..4).map(|q| format!("{topic}@broker-a:{q}")).collect();
    assert_eq!(queue_names(&without_b), expected);
    assert!(s.cache.version(&topic).unwrap() > version);
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(
        events.contains(&RouteEvent::BrokersRemoved {
            addrs: vec![b_addr.clone()]
        }),
        "{events:?}"
    );

    control(&cluster, NodeAction::Start, "broker-b").await;
    restart.armed = false;
    let back = s
        .wait_for(&topic, Duration::from_secs(60), |i| i.queues().len() == 8)
        .await
        .unwrap_or_else(|| panic!("broker-b not back after 60 s: {:?}", s.cache.snapshot()));
    assert_eq!(queue_names(&back), s.java_order(&topic, 4));
    assert!(probe(&s.pool, &b_addr, &topic, Duration::from_secs(2)).await);
    s.pool.close_all();
}
