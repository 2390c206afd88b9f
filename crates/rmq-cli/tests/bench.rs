//! `rmq bench` against the fake cluster over loopback TCP (no real cluster needed):
//! the JSON summary parses and its numbers are consistent, every mode stores what it
//! reports as acked, the acked log lists exactly the acked UNIQ_KEYs, and failures are
//! counted by reason with a non-zero exit code.

use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::Duration;

use rmq_protocol::{RequestCode, ResponseCode};
use rmq_testkit::fake::{FakeCluster, Transport};
use serde_json::Value;

const TOPIC: &str = "BenchTopic";

async fn cluster(brokers: &[&str]) -> FakeCluster {
    FakeCluster::builder()
        .brokers(brokers.iter().copied())
        .transport(Transport::Tcp)
        .topic(TOPIC, 4)
        .build()
        .await
        .expect("fake cluster")
}

/// Runs the built `rmq` with `args` (on a blocking thread, so the fake cluster keeps
/// serving on the runtime).
async fn rmq(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rmq"))
            .args(&args)
            .env_remove("NAMESRV_ADDR")
            .output()
            .expect("run rmq")
    })
    .await
    .expect("join")
}

fn bench_args(cluster: &FakeCluster, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--namesrv",
        cluster.name_server_addr(),
        "bench",
        "--topic",
        TOPIC,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// The invariants every summary keeps.
fn check_consistent(v: &Value) {
    assert_eq!(v["schema"], "rmq.bench/1");
    let (sent, acked, failed) = (u(v, "sent"), u(v, "acked"), u(v, "failed"));
    assert_eq!(acked + failed, sent, "{v}");
    let by_reason: u64 = v["failed_by_reason"]
        .as_object()
        .expect("failed_by_reason is an object")
        .values()
        .map(|n| n.as_u64().expect("count"))
        .sum();
    assert_eq!(by_reason, failed, "{v}");
    if acked > 0 {
        let p: Vec<u64> = ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"]
            .iter()
            .map(|k| u(v, k))
            .collect();
        assert!(
            p.windows(2).all(|w| w[0] <= w[1]),
            "percentiles not ordered: {p:?}"
        );
        assert!(p[0] >= 1);
        assert!(v["msgs_per_s"].as_f64().expect("msgs_per_s") > 0.0);
        assert!(v["mb_per_s"].as_f64().expect("mb_per_s") > 0.0);
    } else {
        assert!(v["p50_us"].is_null());
    }
    assert!(v["elapsed_s"].as_f64().expect("elapsed_s") > 0.0);
}

fn temp_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rmq-bench-test-{}-{name}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_json_numbers_are_consistent_and_the_acked_log_matches_the_store() {
    let cluster = cluster(&["broker-a", "broker-b"]).await;
    let log = temp_file("acked.log");
    let out = rmq(bench_args(
        &cluster,
        &[
            "--count",
            "200",
            "--concurrency",
            "16",
            "--json",
            "--acked-log",
            log.to_str().expect("utf-8 path"),
        ],
    ))
    .await;
    let v = json(&out);
    assert!(out.status.success(), "{v}");
    check_consistent(&v);
    assert_eq!(u(&v, "sent"), 200);
    assert_eq!(u(&v, "acked"), 200);
    assert_eq!(u(&v, "failed"), 0);
    assert_eq!(u(&v, "requests"), 200);
    assert_eq!(v["mode"], "async");
    assert_eq!(u(&v, "size"), 128);
    assert_eq!(u(&v, "concurrency"), 16);
    assert_eq!(u(&v, "count"), 200);
    assert!(v["duration_s"].is_null());

    let text = std::fs::read_to_string(&log).expect("acked log");
    let _ = std::fs::remove_file(&log);
    let keys: Vec<&str> = text.lines().collect();
    assert_eq!(keys.len(), 200);
    let distinct: HashSet<&str> = keys.iter().copied().collect();
    assert_eq!(distinct.len(), 200, "UNIQ_KEYs repeat");
    let stored = cluster.messages_for(TOPIC);
    assert_eq!(stored.len(), 200);
    let stored_keys: HashSet<String> = stored
        .iter()
        .filter_map(|m| m.properties.get("UNIQ_KEY").map(str::to_owned))
        .collect();
    for k in &keys {
        assert!(stored_keys.contains(*k), "acked {k} not stored");
    }
    assert!(stored.iter().all(|m| m.body.len() == 128));
    // Both brokers took a share.
    for b in cluster.brokers() {
        assert!(
            !b.messages_for(TOPIC).is_empty(),
            "{} got nothing",
            b.broker_name()
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_every_mode_stores_what_it_acks() {
    for (mode, extra) in [
        ("sync", &["--concurrency", "4"][..]),
        ("oneway", &["--concurrency", "4"][..]),
        ("batch", &["--concurrency", "2", "--batch-size", "16"][..]),
        ("async", &["--concurrency", "1"][..]),
    ] {
        let cluster = cluster(&["broker-a", "broker-b"]).await;
        let mut args = vec!["--count", "200", "--mode", mode, "--json"];
        args.extend_from_slice(extra);
        let out = rmq(bench_args(&cluster, &args)).await;
        let v = json(&out);
        assert!(out.status.success(), "{mode}: {v}");
        check_consistent(&v);
        assert_eq!(v["mode"], mode);
        assert_eq!(u(&v, "acked"), 200, "{mode}: {v}");
        if mode == "batch" {
            // 12 batches of 16 and one of 8.
            assert_eq!(u(&v, "requests"), 13, "{v}");
            assert_eq!(u(&v, "batch_size"), 16);
            let batches: usize = cluster
                .brokers()
                .iter()
                .map(|b| b.requests_with_code(RequestCode::SEND_BATCH_MESSAGE).len())
                .sum();
            assert_eq!(batches, 13);
        } else {
            assert_eq!(u(&v, "requests"), 200, "{v}");
        }
        // One-way sends are acked when written; the broker stores them shortly after.
        let stored = tokio::time::timeout(
            Duration::from_secs(10),
            cluster.wait_until(|c| c.messages_for(TOPIC).len() >= 200),
        )
        .await;
        assert!(
            stored.is_ok(),
            "{mode}: {} stored",
            cluster.messages_for(TOPIC).len()
        );
        assert_eq!(cluster.messages_for(TOPIC).len(), 200, "{mode}");
        cluster.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_counts_failures_by_reason_and_exits_1() {
    let cluster = cluster(&["broker-a"]).await;
    cluster.brokers()[0]
        .script(RequestCode::SEND_MESSAGE_V2)
        .reply(ResponseCode::MESSAGE_ILLEGAL)
        .times(3);
    let log = temp_file("failures.log");
    let out = rmq(bench_args(
        &cluster,
        &[
            "--count",
            "50",
            "--mode",
            "sync",
            "--concurrency",
            "4",
            "--json",
            "--acked-log",
            log.to_str().expect("utf-8 path"),
        ],
    ))
    .await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    check_consistent(&v);
    assert_eq!(u(&v, "sent"), 50);
    assert_eq!(u(&v, "failed"), 3, "{v}");
    assert_eq!(u(&v, "acked"), 47);
    assert_eq!(v["failed_by_reason"]["Rejected:MESSAGE_ILLEGAL"], 3, "{v}");
    let text = std::fs::read_to_string(&log).expect("acked log");
    let _ = std::fs::remove_file(&log);
    assert_eq!(text.lines().count(), 47);
    assert_eq!(cluster.messages_for(TOPIC).len(), 47);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_duration_and_human_summary() {
    let cluster = cluster(&["broker-a", "broker-b"]).await;
    let out = rmq(bench_args(
        &cluster,
        &["--duration", "1s", "--mode", "sync", "--concurrency", "2"],
    ))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for needle in [
        "sent", "acked", "failed", "msgs/s", "MB/s", "p50", "p99.9", "max",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from {stdout}");
    }
    // No progress bar when stderr is not a terminal.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = rmq(bench_args(&cluster, &["--duration", "1s", "--json"])).await;
    let v = json(&out);
    assert!(out.status.success(), "{v}");
    check_consistent(&v);
    assert_eq!(v["duration_s"].as_f64(), Some(1.0));
    let elapsed = v["elapsed_s"].as_f64().expect("elapsed_s");
    assert!((1.0..10.0).contains(&elapsed), "{v}");
    assert!(u(&v, "acked") > 0);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_usage_errors_exit_2() {
    let out = rmq(vec![
        "bench".into(),
        "--topic".into(),
        TOPIC.into(),
        "--count".into(),
        "1".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = cluster(&["broker-a"]).await;
    for bad in [
        &["--size", "0", "--count", "1"][..],
        &["--concurrency", "0", "--count", "1"][..],
        &["--count", "0"][..],
        &["--mode", "batch", "--batch-size", "0", "--count", "1"][..],
    ] {
        let out = rmq(bench_args(&cluster, bad)).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    assert!(cluster.messages_for(TOPIC).is_empty());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_auto_batch_gathers_sends_into_batches_and_stores_what_it_acks() {
    let cluster = cluster(&["broker-a", "broker-b"]).await;
    let args = [
        "--count",
        "400",
        "--mode",
        "async",
        "--concurrency",
        "400",
        "--auto-batch",
        "--json",
    ];
    let out = rmq(bench_args(&cluster, &args)).await;
    let v = json(&out);
    assert!(out.status.success(), "{v}");
    check_consistent(&v);
    assert_eq!(u(&v, "acked"), 400, "{v}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auto-batch: "), "{stderr}");
    let count = |code| -> usize {
        cluster
            .brokers()
            .iter()
            .map(|b| b.requests_with_code(code).len())
            .sum()
    };
    let batches = count(RequestCode::SEND_BATCH_MESSAGE);
    assert!(batches > 0 && batches < 400, "{batches} batches: {stderr}");
    assert_eq!(
        count(RequestCode::SEND_MESSAGE_V2),
        0,
        "every send was batched"
    );
    assert_eq!(cluster.messages_for(TOPIC).len(), 400);
    cluster.shutdown().await;
}
