//! The JSON state file, `<state-dir>/cluster.json`.
//!
//! ```json
//! {
//!   "format": 1,
//!   "cluster_name": "RmqCluster",
//!   "state_dir": "/abs/state-dir",
//!   "namesrv_addr": "127.0.0.1:9876",
//!   "ports": { "namesrv": 9876,
//!              "broker_a": { "listen": 10911, "fast": 10909, "ha": 10912 },
//!              "broker_b": { "listen": 10921, "fast": 10919, "ha": 10922 } },
//!   "nodes": [
//!     { "name": "namesrv", "binary": "/abs/bin/rocketmq-namesrv-rust",
//!       "config": "/abs/state-dir/namesrv.toml", "dir": "/abs/state-dir/namesrv",
//!       "home": "/abs/state-dir/namesrv/home", "store": null,
//!       "log": "/abs/state-dir/logs/namesrv.log", "addr": "127.0.0.1:9876",
//!       "pid": 12345, "started_unix_ms": 1760000000000 },
//!     { "name": "broker-a", ... "store": "/abs/state-dir/broker-a/store", ... },
//!     { "name": "broker-b", ... }
//!   ]
//! }
//! ```
//!
//! `pid` is the last PID started for the node (it stays after `kill`, so `status` can
//! report it dead). `status` prints this document with `"alive"` and `"paused"` added to
//! each node.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::config::PortPlan;

/// The state file's name inside the state directory.
pub(crate) const STATE_FILE: &str = "cluster.json";
const FORMAT: u32 = 1;

/// The whole cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ClusterState {
    pub(crate) format: u32,
    pub(crate) cluster_name: String,
    pub(crate) state_dir: PathBuf,
    pub(crate) namesrv_addr: String,
    pub(crate) ports: PortPlan,
    pub(crate) nodes: Vec<NodeState>,
}

/// One process of the cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NodeState {
    /// `namesrv`, `broker-a` or `broker-b`.
    pub(crate) name: String,
    /// The executable; its file name must appear as argv\[0\] of the PID before it is signalled.
    pub(crate) binary: PathBuf,
    /// The `-c` config; it must appear in the PID's command line before it is signalled.
    pub(crate) config: PathBuf,
    /// `ROCKETMQ_HOME` and working directory.
    pub(crate) dir: PathBuf,
    /// `HOME`.
    pub(crate) home: PathBuf,
    /// The broker store (`None` for the name server).
    pub(crate) store: Option<PathBuf>,
    /// stdout and stderr, appended.
    pub(crate) log: PathBuf,
    /// `127.0.0.1:<listen port>`.
    pub(crate) addr: String,
    /// The last PID started, if any.
    pub(crate) pid: Option<u32>,
    /// When that PID was started.
    pub(crate) started_unix_ms: Option<u64>,
}

impl ClusterState {
    pub(crate) fn new(state_dir: &Path, ports: PortPlan, nodes: Vec<NodeState>) -> Self {
        ClusterState {
            format: FORMAT,
            cluster_name: super::config::CLUSTER_NAME.to_owned(),
            state_dir: state_dir.to_owned(),
            namesrv_addr: ports.namesrv_addr(),
            ports,
            nodes,
        }
    }

    pub(crate) fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(STATE_FILE)
    }

    /// Reads the state file; `Ok(None)` if there is none.
    pub(crate) fn load(state_dir: &Path) -> Result<Option<Self>> {
        let path = Self::path(state_dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state: ClusterState = serde_json::from_str(&text)
            .with_context(|| format!("parsing the cluster state file {}", path.display()))?;
        if state.format != FORMAT {
            bail!(
                "{} has format {} but this xtask understands format {FORMAT}",
                path.display(),
                state.format
            );
        }
        Ok(Some(state))
    }

    /// Like [`load`](Self::load) but a missing file is an error.
    pub(crate) fn load_required(state_dir: &Path) -> Result<Self> {
        Self::load(state_dir)?.with_context(|| {
            format!(
                "no cluster state at {} (start one with `cargo xtask cluster up`, and pass the \
                 same --state-dir/--base-port to every command)",
                Self::path(state_dir).display()
            )
        })
    }

    /// Writes the state file atomically (temp file + rename).
    pub(crate) fn save(&self) -> Result<()> {
        let path = Self::path(&self.state_dir);
        let tmp = self
            .state_dir
            .join(format!(".{STATE_FILE}.{}.tmp", std::process::id()));
        let text = serde_json::to_string_pretty(self).context("serializing the cluster state")?;
        fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    }

    pub(crate) fn node(&self, name: &str) -> Result<&NodeState> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .with_context(|| format!("the state file has no node named {name}"))
    }

    pub(crate) fn node_mut(&mut self, name: &str) -> Result<&mut NodeState> {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .with_context(|| format!("the state file has no node named {name}"))
    }
}
