//! `rmq send --transaction` against the real cluster (transaction timeout 3 s, check
//! interval 5 s): a committed message is pulled back first (positive control), a
//! rolled-back one never is, and an unknown one is checked back during `--linger`
//! and committed by `--check-result commit`.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::*;
use rmq_testkit::real_cluster::{RealCluster, real_cluster, unique_topic};
use serde_json::Value;

fn run(cluster: &RealCluster, group: &str, args: &[&str]) -> Run {
    let header = if cluster.use_json_header() {
        "json"
    } else {
        "binary"
    };
    let mut all = vec![
        "--namesrv",
        cluster.namesrv.as_str(),
        "--header",
        header,
        "--group",
        group,
    ];
    all.extend_from_slice(args);
    rmq(&all)
}

fn msg_id(r: &Run) -> String {
    r.expect_code(0);
    let doc = r.json();
    assert!(doc["error"].is_null(), "{doc}");
    doc["msg_id"].as_str().expect("msg_id").to_owned()
}

/// UNIQ_KEYs readable in `topic`, polling until `want` are all there (at most `limit`).
fn pulled(
    cluster: &RealCluster,
    group: &str,
    topic: &str,
    want: &[&str],
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let r = run(cluster, group, &["pull", "--topic", topic, "--json"]);
        r.expect_code(0);
        let doc: Value = r.json();
        let have: Vec<String> = doc["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["msg_id"].as_str().map(str::to_owned))
            .collect();
        if want.iter().all(|w| have.iter().any(|h| h == w)) || Instant::now() > deadline {
            return have;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn real_cluster_cli_transactions() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let topic = unique_topic("RmqCliTx");
    // A group of its own: checks of other runs' half messages never reach it.
    let group = unique_topic("rmq_cli_tx");
    run(
        &cluster,
        &group,
        &[
            "topic", "create", "--topic", &topic, "--queues", "4", "--json",
        ],
    )
    .expect_code(0);
    let send = |state: &str, extra: &[&str]| {
        let mut a = vec![
            "send",
            "--topic",
            topic.as_str(),
            "--transaction",
            state,
            "--json",
        ];
        a.extend_from_slice(extra);
        run(&cluster, &group, &a)
    };
    let committed = msg_id(&send("commit", &[]));
    let rolled_back = msg_id(&send("rollback", &[]));
    // Positive control first.
    let have = pulled(
        &cluster,
        &group,
        &topic,
        &[&committed],
        Duration::from_secs(30),
    );
    assert!(
        have.contains(&committed),
        "committed message readable: {have:?}"
    );
    // Unknown: the broker checks back within ~10 s; the CLI answers commit.
    let r = send("unknown", &["--check-result", "commit", "--linger", "25s"]);
    let unknown = msg_id(&r);
    assert!(
        !r.stderr.contains("; 0 transaction check(s) answered"),
        "the broker checked back during --linger: {r:#?}"
    );
    let have = pulled(
        &cluster,
        &group,
        &topic,
        &[&committed, &unknown],
        Duration::from_secs(30),
    );
    assert!(
        have.contains(&unknown),
        "the checked-back transaction was committed: {have:?}"
    );
    assert!(
        !have.contains(&rolled_back),
        "a rolled-back message is never readable: {have:?}"
    );
}
