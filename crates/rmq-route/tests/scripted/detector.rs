//! Reachability probes (the detector's asynchronous half).

use std::time::Duration;

use rmq_protocol::{RequestCode, ResponseCode};
use rmq_route::detector::{DEFAULT_PROBE_TIMEOUT, probe, probe_all};
use tokio::time::Instant;

use crate::fake::{FakeInvoke, Node};

#[tokio::test(start_paused = true)]
async fn probe_is_get_max_offset_and_needs_success() {
    let fake = FakeInvoke::new();
    fake.set_node("b1", Node::Up);
    assert!(probe(&fake, "b1", "T", DEFAULT_PROBE_TIMEOUT).await);
    let (_, req) = fake.log().pop().unwrap();
    assert_eq!(req.request_code(), RequestCode::GET_MAX_OFFSET);
    let fields: Vec<(&str, &str)> = req.ext_fields.iter().collect();
    assert_eq!(
        fields,
        [("topic", "T"), ("queueId", "0"), ("committed", "true")]
    );

    fake.set_probe_code("b1", ResponseCode::SYSTEM_ERROR);
    assert!(!probe(&fake, "b1", "T", DEFAULT_PROBE_TIMEOUT).await);
    fake.set_node("b2", Node::Down);
    assert!(!probe(&fake, "b2", "T", DEFAULT_PROBE_TIMEOUT).await);
}

#[tokio::test(start_paused = true)]
async fn probe_all_runs_concurrently_in_order() {
    let fake = FakeInvoke::new();
    fake.set_node("a", Node::Blackhole);
    fake.set_node("b", Node::Up);
    fake.set_node("c", Node::Blackhole);
    fake.set_node("d", Node::Down);
    let targets: Vec<(String, String)> = ["a", "b", "c", "d"]
        .iter()
        .map(|x| (format!("broker-{x}"), x.to_string()))
        .collect();
    let start = Instant::now();
    let results = probe_all(&fake, &targets, "T", Duration::from_millis(200)).await;
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(200),
        "probes overlap"
    );
    assert_eq!(
        results,
        [
            ("broker-a".to_string(), false),
            ("broker-b".to_string(), true),
            ("broker-c".to_string(), false),
            ("broker-d".to_string(), false)
        ]
    );
    assert!(
        probe_all(&fake, &[], "T", Duration::from_millis(200))
            .await
            .is_empty()
    );
}
