//! Finding the real RocketMQ cluster that integration tests run against, and the
//! admin requests they need on it ([`Admin`]: masters, topic creation, routing,
//! reading a topic back).
//!
//! `cargo xtask test --stage cluster` starts a private cluster (a name server and two master
//! brokers, `broker-a` and `broker-b`) and runs every test whose name contains
//! `real_cluster` with these environment variables:
//!
//! | variable | meaning |
//! |---|---|
//! | `RMQ_IT_NAMESRV` | the name server, `127.0.0.1:<port>` |
//! | `RMQ_IT_REQUIRED` | `1`: a missing `RMQ_IT_NAMESRV` fails the test instead of skipping it |
//! | `RMQ_IT_HEADER` | `rocketmq` or `json`: the request header type the suite should use (each run uses one) |
//! | `RMQ_IT_CLUSTER_STATE` | the cluster's state file, for tests that kill, restart or pause nodes ([`RealCluster::control`]) |
//! | `RMQ_IT_XTASK` | the xtask binary that manages the cluster (optional; `cargo xtask` otherwise) |
//!
//! To run such a test by hand: `cargo xtask cluster up`, then
//! `RMQ_IT_NAMESRV=127.0.0.1:9876 cargo test real_cluster`, then `cargo xtask cluster down`.

mod admin;

pub use admin::{Admin, AdminError, StoredByKey};

use std::env;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The request header serialization a real-cluster test run should use (`RMQ_IT_HEADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderChoice {
    /// The ROCKETMQ binary header (`RMQ_IT_HEADER=rocketmq`, and the default when unset).
    RocketMq,
    /// The JSON header (`RMQ_IT_HEADER=json`).
    Json,
}

impl HeaderChoice {
    /// Parses an `RMQ_IT_HEADER` value (case-insensitive); `None` for an unknown value.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "rocketmq" => Some(HeaderChoice::RocketMq),
            "json" => Some(HeaderChoice::Json),
            _ => None,
        }
    }
}

/// A node-level fault the cluster harness can inject (see [`RealCluster::control`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    /// SIGKILL the node; its store is kept.
    Kill,
    /// Restart a node that is not running, on its existing config and store.
    Start,
    /// SIGSTOP the node.
    Pause,
    /// SIGCONT the node.
    Resume,
}

impl NodeAction {
    /// The `cargo xtask cluster` subcommand.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeAction::Kill => "kill",
            NodeAction::Start => "start",
            NodeAction::Pause => "pause",
            NodeAction::Resume => "resume",
        }
    }
}

/// The real cluster a test runs against, from the environment.
#[derive(Debug, Clone)]
pub struct RealCluster {
    /// The name server address (`RMQ_IT_NAMESRV`), e.g. `127.0.0.1:9876`.
    pub namesrv: String,
    /// The request header type this run should use (`RMQ_IT_HEADER`).
    pub header: HeaderChoice,
    state_file: Option<PathBuf>,
}

impl RealCluster {
    /// Whether this run should send JSON request headers (`RMQ_IT_HEADER=json`).
    pub fn use_json_header(&self) -> bool {
        self.header == HeaderChoice::Json
    }

    /// The cluster's state file (`RMQ_IT_CLUSTER_STATE`), if the harness provided one.
    pub fn state_file(&self) -> Option<&Path> {
        self.state_file.as_deref()
    }

    /// Kills, restarts, pauses or resumes one node (`namesrv`, `broker-a` or `broker-b`)
    /// by running `cargo xtask cluster <action> <node> --state-dir <dir>` (or
    /// `$RMQ_IT_XTASK cluster ...`) and waiting for it. `Start` returns once the node is
    /// serving again (a restarted broker is registered at the name server).
    ///
    /// Only for tests that run serially in their own test binary: the cluster is shared.
    ///
    /// # Errors
    ///
    /// Fails when there is no state file (`RMQ_IT_CLUSTER_STATE` unset), when the command
    /// cannot be started, or when it exits unsuccessfully.
    pub fn control(&self, action: NodeAction, node: &str) -> io::Result<()> {
        let state_file = self.state_file.as_deref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "RMQ_IT_CLUSTER_STATE is not set: node control needs the cluster harness (cargo xtask test --stage cluster)",
            )
        })?;
        let state_dir = state_file.parent().unwrap_or(Path::new("."));
        let mut cmd = match env::var_os("RMQ_IT_XTASK").filter(|v| !v.is_empty()) {
            Some(xtask) => Command::new(xtask),
            None => {
                let mut cmd =
                    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
                cmd.arg("xtask");
                cmd
            }
        };
        cmd.args(["cluster", action.as_str(), node])
            .arg("--state-dir")
            .arg(state_dir);
        let status = cmd.status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "`cluster {} {node}` failed ({status})",
                action.as_str()
            )))
        }
    }
}

/// The real cluster configured for this test run, or `None` (after printing a `SKIPPED`
/// line to stderr) when there is none.
///
/// Reads `RMQ_IT_NAMESRV`, `RMQ_IT_HEADER` and `RMQ_IT_CLUSTER_STATE`.
///
/// # Panics
///
/// When `RMQ_IT_NAMESRV` is unset and `RMQ_IT_REQUIRED=1` (the cluster stage of `cargo
/// xtask test` sets it, so a missing cluster fails the test instead of passing silently),
/// and when `RMQ_IT_HEADER` has a value other than `rocketmq` or `json`.
pub fn real_cluster() -> Option<RealCluster> {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let namesrv = env::var("RMQ_IT_NAMESRV")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let Some(namesrv) = namesrv else {
        let required =
            env::var("RMQ_IT_REQUIRED").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        assert!(
            !required,
            "{test}: RMQ_IT_REQUIRED=1 but RMQ_IT_NAMESRV is not set: this test needs a real RocketMQ cluster \
             (run `cargo xtask test --stage cluster`, or `cargo xtask cluster up` and set RMQ_IT_NAMESRV)"
        );
        eprintln!(
            "SKIPPED: {test}: no real cluster (set RMQ_IT_NAMESRV or run cargo xtask test --stage cluster)"
        );
        return None;
    };
    let header_value = env::var("RMQ_IT_HEADER").unwrap_or_default();
    let Some(header) = HeaderChoice::parse(&header_value) else {
        panic!("{test}: RMQ_IT_HEADER={header_value:?} is not one of `rocketmq`, `json`");
    };
    let state_file = env::var_os("RMQ_IT_CLUSTER_STATE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    Some(RealCluster {
        namesrv: namesrv.trim().to_owned(),
        header,
        state_file,
    })
}

/// A topic name no other test (or earlier run) uses: `<prefix>-<pid>-<nanos>-<counter>`.
///
/// Characters of `prefix` outside the topic charset (`A-Z a-z 0-9 _ -`) become `_`, and the
/// prefix is cut to 64 characters, so the result is always a valid topic of at most 127
/// characters.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix: String = prefix
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_topics_are_valid_and_distinct() {
        let a = unique_topic("wire test/ä");
        let b = unique_topic("wire test/ä");
        assert_ne!(a, b);
        for t in [&a, &b, &unique_topic(&"x".repeat(500))] {
            assert!(t.len() <= 127, "{t}");
            assert!(
                t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{t}"
            );
        }
        assert!(a.starts_with("wire_test__-"));
    }

    #[test]
    fn header_choice_parses() {
        assert_eq!(HeaderChoice::parse("JSON"), Some(HeaderChoice::Json));
        assert_eq!(
            HeaderChoice::parse("rocketmq"),
            Some(HeaderChoice::RocketMq)
        );
        assert_eq!(HeaderChoice::parse(""), Some(HeaderChoice::RocketMq));
        assert_eq!(HeaderChoice::parse("xml"), None);
    }
}
