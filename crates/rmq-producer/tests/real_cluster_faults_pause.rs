//! A half-open real broker (matrix row C4 with `cluster pause` = SIGSTOP): broker-a's
//! process stops while its TCP connections stay up; the kernel still accepts the
//! producer's bytes, nothing answers. The send that hits it must time out as
//! `Indeterminate` within its attempt budget, be retried on broker-b within the
//! deadline, and broker-a must be isolated; after `cluster resume` the paused broker
//! processes what it had buffered (the positive control that `Indeterminate` was
//! truthful: the copies share the UNIQ_KEY).
//!
//! Runs alone in its own test binary (it pauses a broker of the cluster, which every
//! client of that cluster sees): `cargo xtask test --stage cluster` gives it a private
//! cluster (`RMQ_IT_CLUSTER_STATE`). Never run it against a shared cluster.

#[path = "real_cluster_faults_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use rmq_producer::{Delivery, Message};
use rmq_remoting::TcpConnector;
use rmq_testkit::real_cluster::{NodeAction, RealCluster, real_cluster};

use support::{Env, SERIAL};

/// Resumes broker-a if the test ends (or panics) while it is paused.
struct Resume<'a> {
    cluster: &'a RealCluster,
    armed: bool,
}

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = self.cluster.control(NodeAction::Resume, "broker-a")
        {
            eprintln!("could not resume broker-a: {e}");
        }
    }
}

async fn control(cluster: &RealCluster, action: NodeAction, node: &'static str) {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || cluster.control(action, node))
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cluster {} {node}: {e}", action.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_c4_paused_broker_a_times_out_indeterminate_and_fails_over() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = real_cluster() else {
        return;
    };
    if cluster.state_file().is_none() {
        let required = std::env::var("RMQ_IT_REQUIRED").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "RMQ_IT_CLUSTER_STATE is needed to pause a broker"
        );
        eprintln!("SKIPPED: real_cluster_c4_paused_broker_a: RMQ_IT_CLUSTER_STATE not set");
        return;
    }
    let Some(env) = Env::new("RmqFaultPause").await else {
        return;
    };
    let (p, log) = env
        .producer("rmq_it_faults_pause", std::sync::Arc::new(TcpConnector))
        .await;
    let warm = env.warm_up(&p, &log).await;

    let mut resume = Resume {
        cluster: &env.cluster,
        armed: true,
    };
    control(&env.cluster, NodeAction::Pause, "broker-a").await;
    let paused_at = Instant::now();

    // Send until one send's first attempt goes to the paused broker.
    let mut hit = None;
    let mut before = Vec::new();
    for i in 0..16 {
        let mut m = Message::new(&env.topic, format!("pause {i}"));
        let key = p.assign_uniq_key(&mut m).to_owned();
        let start = Instant::now();
        let r = p.send(m).await;
        let took = start.elapsed();
        if log.brokers(&key).first().map(String::as_str) == Some("broker-a") {
            hit = Some((key, r, took));
            break;
        }
        before.push(r.unwrap_or_else(|e| panic!("send {i} on broker-b: {e}")));
    }
    let (key, r, took) = hit.expect("16 sends never chose broker-a first");
    let attempts = log.of(&key);
    let r = r
        .unwrap_or_else(|e| panic!("the send that hit the paused broker failed: {e} {attempts:?}"));
    assert_eq!(r.message_queue.broker_name, "broker-b");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].broker, "broker-a");
    assert_eq!(
        attempts[0].outcome.as_deref(),
        Some("Timeout"),
        "{attempts:?}"
    );
    assert_eq!(
        attempts[0].delivery,
        Some(Delivery::Indeterminate),
        "{attempts:?}"
    );
    assert_eq!(attempts[1].broker, "broker-b");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(
        p.stats().isolated_brokers.contains(&"broker-a".to_owned()),
        "{:?}",
        p.stats()
    );
    // The next sends go to broker-b at once.
    for i in 0..8 {
        let start = Instant::now();
        let r = p
            .send(Message::new(&env.topic, format!("while paused {i}")))
            .await
            .unwrap_or_else(|e| panic!("send {i} while broker-a is paused: {e}"));
        assert_eq!(log.brokers(&r.msg_id), ["broker-b"], "send {i}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        before.push(r);
    }
    eprintln!("broker-a paused for {:?}", paused_at.elapsed());
    control(&env.cluster, NodeAction::Resume, "broker-a").await;
    resume.armed = false;

    // After the resume, broker-a reads the request it had buffered: 1 or 2 copies, all
    // with the same UNIQ_KEY (pulled by it), one of them on broker-b.
    let mut copies = Vec::new();
    for _ in 0..50 {
        let stored = env.stored().await;
        copies = stored.get(&key).cloned().unwrap_or_default();
        if copies.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let brokers: Vec<&str> = copies.iter().map(|c| c.0.as_str()).collect();
    eprintln!("the timed-out message is stored on {brokers:?}");
    assert!(brokers.contains(&"broker-b"), "{brokers:?}");
    assert!(copies.len() <= 2, "{brokers:?}");
    let stored = env.stored().await;
    for k in warm
        .iter()
        .map(String::as_str)
        .chain(before.iter().map(|r| r.msg_id.as_str()))
    {
        assert_eq!(stored.get(k).map(Vec::len), Some(1), "{k}");
    }
    // broker-a serves again once its isolation ends.
    let r = p
        .send_with(
            Message::new(&env.topic, "after resume"),
            support::pinned(env.queue("broker-a", 0), Duration::from_secs(10)),
        )
        .await
        .expect("broker-a after the resume");
    assert_eq!(r.message_queue.broker_name, "broker-a");
    p.close(Duration::from_secs(5)).await;
}
