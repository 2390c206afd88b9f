//! Running the built `rmq` binary and checking its JSON documents (shared by the
//! fake-cluster and real-cluster CLI tests).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// What a run of `rmq` produced.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Every non-empty stdout line parsed as JSON.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{self:#?}"))
            })
            .collect()
    }

    /// The single JSON document on stdout.
    pub fn json(&self) -> Value {
        let mut lines = self.json_lines();
        assert_eq!(lines.len(), 1, "expected one JSON document: {self:#?}");
        lines.remove(0)
    }

    /// Asserts the exit code.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code: {self:#?}");
        self
    }
}

/// Runs `rmq <args>` (blocking) without NAMESRV_ADDR from the test's environment.
pub fn rmq(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .output()
        .expect("running the rmq binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `rmq <args>` on a blocking thread (for tests whose fake cluster lives on the
/// test's tokio runtime).
pub async fn rmq_async(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        rmq(&refs)
    })
    .await
    .expect("join")
}

/// Owned argument list.
pub fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Asserts that `v` is an object with exactly these keys (every key present, nulls
/// explicit, nothing undocumented).
pub fn assert_keys(v: &Value, keys: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let have: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(have, want, "keys of {v}");
}

/// The keys of `rmq.send/1`.
pub const SEND_KEYS: &[&str] = &[
    "schema",
    "index",
    "topic",
    "mode",
    "msg_id",
    "offset_msg_id",
    "broker",
    "queue_id",
    "queue_offset",
    "status",
    "error",
];
/// The keys of the error object.
pub const ERROR_KEYS: &[&str] = &["kind", "delivery", "code", "message"];
/// The keys of `rmq.route/1`.
pub const ROUTE_KEYS: &[&str] = &[
    "schema",
    "topic",
    "order_topic_conf",
    "brokers",
    "queue_datas",
    "publish_queues",
    "publish_error",
    "error",
];
/// The keys of a route broker.
pub const ROUTE_BROKER_KEYS: &[&str] = &["broker", "cluster", "master", "addrs", "zone"];
/// The keys of a route queue-data entry.
pub const ROUTE_QUEUE_DATA_KEYS: &[&str] = &[
    "broker",
    "read_queue_nums",
    "write_queue_nums",
    "perm",
    "perm_name",
    "topic_sys_flag",
];
/// The keys of `rmq.topic.create/1`.
pub const CREATE_KEYS: &[&str] = &[
    "schema",
    "topic",
    "queues",
    "perm",
    "perm_name",
    "brokers",
    "route_visible",
    "error",
];
/// The keys of a broker of `rmq.topic.create/1`.
pub const CREATE_BROKER_KEYS: &[&str] = &["cluster", "broker", "addr", "ok", "error"];
/// The keys of `rmq.pull/1`.
pub const PULL_KEYS: &[&str] = &[
    "schema",
    "topic",
    "queues",
    "count",
    "messages",
    "acked_log",
    "error",
];
/// The keys of a queue of `rmq.pull/1`.
pub const PULL_QUEUE_KEYS: &[&str] = &[
    "broker",
    "queue_id",
    "min_offset",
    "max_offset",
    "next_offset",
    "messages",
];
/// The keys of a message of `rmq.pull/1`.
pub const PULL_MESSAGE_KEYS: &[&str] = &[
    "msg_id",
    "offset_msg_id",
    "broker",
    "queue_id",
    "queue_offset",
    "commit_log_offset",
    "sys_flag",
    "compression",
    "flag",
    "born_timestamp",
    "store_timestamp",
    "tags",
    "keys",
    "properties",
    "stored_body_size",
    "body_size",
    "body",
    "body_error",
];
/// The keys of the acked-log check of `rmq.pull/1`.
pub const ACKED_LOG_KEYS: &[&str] = &[
    "path",
    "listed",
    "found",
    "missing",
    "duplicated",
    "unlisted",
];

/// Checks a `rmq.send/1` line: keys, schema, and (for a success) a status and id.
pub fn check_send_line(v: &Value) {
    assert_keys(v, SEND_KEYS);
    assert_eq!(v["schema"], "rmq.send/1");
    assert!(v["msg_id"].is_string(), "{v}");
    match &v["error"] {
        Value::Null => assert!(v["status"].is_string(), "{v}"),
        e => {
            assert_keys(e, ERROR_KEYS);
            assert!(v["status"].is_null(), "{v}");
        }
    }
}

/// Checks a whole `rmq.pull/1` document's shape.
pub fn check_pull_doc(v: &Value) {
    assert_keys(v, PULL_KEYS);
    assert_eq!(v["schema"], "rmq.pull/1");
    for q in v["queues"].as_array().into_iter().flatten() {
        assert_keys(q, PULL_QUEUE_KEYS);
    }
    for m in v["messages"].as_array().into_iter().flatten() {
        assert_keys(m, PULL_MESSAGE_KEYS);
    }
    if !v["acked_log"].is_null() {
        assert_keys(&v["acked_log"], ACKED_LOG_KEYS);
    }
    if !v["error"].is_null() {
        assert_keys(&v["error"], ERROR_KEYS);
    }
}
