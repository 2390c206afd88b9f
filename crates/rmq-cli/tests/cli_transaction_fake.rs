//! `rmq send --transaction` against the fake cluster over loopback TCP (the built
//! binary runs as a child process): commit, rollback, and an unknown transaction
//! that the broker checks back during `--linger` and the CLI answers with
//! `--check-result`.

mod cli_support;

use std::time::Duration;

use cli_support::*;
use rmq_protocol::header::end_transaction::CommitOrRollback;
use rmq_testkit::fake::{EndTransactionOutcome, FakeCluster, HALF_TOPIC, Transport};

const GROUP: &str = "cli_tx_group";

async fn cluster(topic: &str) -> FakeCluster {
    FakeCluster::builder()
        .brokers(["broker-a"])
        .transport(Transport::Tcp)
        .topic(topic, 4)
        .build()
        .await
        .expect("fake cluster")
}

fn args(c: &FakeCluster, rest: &[&str]) -> Vec<String> {
    let mut all = argv(&["--namesrv", c.name_server_addr(), "--group", GROUP]);
    all.extend(argv(rest));
    all
}

fn visible(c: &FakeCluster, topic: &str) -> Vec<String> {
    c.messages_for(topic)
        .into_iter()
        .filter_map(|m| m.uniq_key)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_rollback_lines_and_store() {
    let c = cluster("CliTx").await;
    let r = rmq_async(args(
        &c,
        &[
            "send",
            "--topic",
            "CliTx",
            "--transaction",
            "commit",
            "--count",
            "2",
            "--json",
        ],
    ))
    .await;
    r.expect_code(0);
    let docs = r.json_lines();
    assert_eq!(docs.len(), 2);
    let mut committed = Vec::new();
    for d in &docs {
        assert_eq!(d["schema"], "rmq.send/1");
        assert_eq!(d["transaction"], "commit");
        assert_eq!(d["status"], "SEND_OK");
        assert!(d["error"].is_null());
        committed.push(d["msg_id"].as_str().expect("msg_id").to_owned());
    }
    let r = rmq_async(args(
        &c,
        &["send", "--topic", "CliTx", "--transaction", "rollback"],
    ))
    .await;
    r.expect_code(0);
    assert!(r.stdout.contains("transaction rollback"), "{r:#?}");
    let rolled = r
        .stdout
        .split_whitespace()
        .nth(1)
        .expect("msg id in the text line")
        .to_owned();
    // Positive control: both committed are visible; the rolled-back one is not.
    let seen = visible(&c, "CliTx");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(committed.iter().all(|k| seen.contains(k)));
    assert!(!seen.contains(&rolled));
    assert_eq!(c.messages_for(HALF_TOPIC).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_is_checked_back_during_linger_and_answered() {
    let c = cluster("CliTxCheck").await;
    let broker = c.brokers()[0].clone();
    let checker = tokio::spawn(async move {
        broker
            .wait_until(|b| {
                !b.messages_for(HALF_TOPIC).is_empty() && b.producer_groups().contains_key(GROUP)
            })
            .await;
        let half = broker.messages_for(HALF_TOPIC).remove(0);
        broker.check_transaction_state(&half).await.expect("check");
        broker.wait_until(|b| b.end_transactions().len() >= 2).await;
        broker.end_transactions()
    });
    let r = rmq_async(args(
        &c,
        &[
            "send",
            "--topic",
            "CliTxCheck",
            "--transaction",
            "unknown",
            "--check-result",
            "commit",
            "--linger",
            "4s",
            "--json",
        ],
    ))
    .await;
    r.expect_code(0);
    let doc = r.json();
    assert_eq!(doc["transaction"], "unknown");
    let id = doc["msg_id"].as_str().expect("msg_id").to_owned();
    let ends = tokio::time::timeout(Duration::from_secs(10), checker)
        .await
        .expect("the check was answered")
        .expect("join");
    let first = ends[0].header.as_ref().expect("header");
    assert_eq!(first.commit_or_rollback, CommitOrRollback::UNKNOWN);
    let answer = ends[1].header.as_ref().expect("header");
    assert!(answer.from_transaction_check);
    assert_eq!(answer.commit_or_rollback, CommitOrRollback::COMMIT);
    assert_eq!(ends[1].outcome, EndTransactionOutcome::Committed);
    assert_eq!(visible(&c, "CliTxCheck"), vec![id]);
    assert!(
        r.stderr.contains("1 transaction check(s) answered"),
        "{r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_needs_sync_mode_and_check_result_needs_transaction() {
    let c = cluster("CliTxUsage").await;
    let r = rmq_async(args(
        &c,
        &[
            "send",
            "--topic",
            "CliTxUsage",
            "--transaction",
            "commit",
            "--mode",
            "async",
        ],
    ))
    .await;
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("--mode sync"), "{r:#?}");
    let r = rmq_async(args(
        &c,
        &["send", "--topic", "CliTxUsage", "--check-result", "commit"],
    ))
    .await;
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(c.messages_for("CliTxUsage").is_empty());
    assert!(c.messages_for(HALF_TOPIC).is_empty());
}
