//! Port plan, on-disk layout and the TOML configs of the three nodes.
//!
//! # Port scheme
//!
//! Without `--base-port` the cluster uses the RocketMQ defaults:
//!
//! | node     | listen | fast (listen−2) | HA    |
//! |----------|--------|-----------------|-------|
//! | namesrv  | 9876   |                 |       |
//! | broker-a | 10911  | 10909           | 10912 |
//! | broker-b | 10921  | 10919           | 10922 |
//!
//! With `--base-port P` every port is derived from `P`, keeping the same shape with the
//! brokers moved next to the name server: namesrv `P`; broker-a listen `P+11`, fast `P+9`,
//! HA `P+12`; broker-b listen `P+21`, fast `P+19`, HA `P+22`. The seven offsets
//! {0, 9, 11, 12, 19, 21, 22} are distinct, so no two ports collide, and the whole cluster
//! lives in `P..=P+22`.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// `brokerClusterName` of both brokers.
pub(crate) const CLUSTER_NAME: &str = "RmqCluster";
/// Node names, in start order (brokers are stopped in the reverse order).
pub(crate) const NAMESRV: &str = "namesrv";
pub(crate) const BROKER_A: &str = "broker-a";
pub(crate) const BROKER_B: &str = "broker-b";
pub(crate) const NODES: [&str; 3] = [NAMESRV, BROKER_A, BROKER_B];

/// The highest offset from `--base-port` that the plan uses.
pub(crate) const BASE_SPAN: u16 = 22;

/// Ports of one broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BrokerPorts {
    /// `broker.listenPort`: the remoting port clients use.
    pub(crate) listen: u16,
    /// The fast ("VIP") listener, always `listen - 2`; it is bound too, so it must be free.
    pub(crate) fast: u16,
    /// `store.haListenPort`.
    pub(crate) ha: u16,
}

/// Every port the cluster binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PortPlan {
    pub(crate) namesrv: u16,
    pub(crate) broker_a: BrokerPorts,
    pub(crate) broker_b: BrokerPorts,
}

impl PortPlan {
    /// The RocketMQ default ports (9876, 10911/10909/10912, 10921/10919/10922).
    pub(crate) fn defaults() -> Self {
        PortPlan {
            namesrv: 9876,
            broker_a: BrokerPorts {
                listen: 10911,
                fast: 10909,
                ha: 10912,
            },
            broker_b: BrokerPorts {
                listen: 10921,
                fast: 10919,
                ha: 10922,
            },
        }
    }

    /// All ports derived from one base (see the module docs).
    pub(crate) fn from_base(base: u16) -> Result<Self> {
        if base < 1024 || base.checked_add(BASE_SPAN).is_none() {
            bail!(
                "--base-port {base} is out of range: it must be at least 1024 and at most {} \
                 (the cluster uses ports base..=base+{BASE_SPAN})",
                u16::MAX - BASE_SPAN
            );
        }
        Ok(PortPlan {
            namesrv: base,
            broker_a: BrokerPorts {
                listen: base + 11,
                fast: base + 9,
                ha: base + 12,
            },
            broker_b: BrokerPorts {
                listen: base + 21,
                fast: base + 19,
                ha: base + 22,
            },
        })
    }

    /// The ports of one broker node.
    pub(crate) fn broker(&self, name: &str) -> Option<BrokerPorts> {
        match name {
            BROKER_A => Some(self.broker_a),
            BROKER_B => Some(self.broker_b),
            _ => None,
        }
    }

    /// Every port of one node, labelled (`"broker-a fast"`, ...).
    pub(crate) fn node_ports(&self, name: &str) -> Vec<(String, u16)> {
        match self.broker(name) {
            Some(b) => vec![
                (format!("{name} listen"), b.listen),
                (format!("{name} fast (listen-2)"), b.fast),
                (format!("{name} HA"), b.ha),
            ],
            None => vec![(format!("{name} listen"), self.namesrv)],
        }
    }

    /// Every port of the cluster, labelled.
    pub(crate) fn all(&self) -> Vec<(String, u16)> {
        NODES.iter().flat_map(|n| self.node_ports(n)).collect()
    }

    /// The name server address clients use.
    pub(crate) fn namesrv_addr(&self) -> String {
        format!("127.0.0.1:{}", self.namesrv)
    }
}

/// Fails, naming every busy port, unless each of `ports` can be bound on 127.0.0.1 right now.
pub(crate) fn check_ports_free(ports: &[(String, u16)]) -> Result<()> {
    let busy: Vec<String> = ports
        .iter()
        .filter(|(_, p)| !port_free(*p))
        .map(|(label, p)| format!("{p} ({label})"))
        .collect();
    if !busy.is_empty() {
        bail!(
            "port(s) already in use on 127.0.0.1: {}. Another cluster may be running; pick other \
             ports with --base-port P (uses P..=P+{BASE_SPAN}) or stop it",
            busy.join(", ")
        );
    }
    Ok(())
}

/// Whether `port` can be bound on 127.0.0.1.
pub(crate) fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Whether every port of `plan` is free, all held at the same time while checking.
pub(crate) fn plan_free(plan: &PortPlan) -> bool {
    let mut held = Vec::new();
    for (_, port) in plan.all() {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => held.push(listener),
            Err(_) => return false,
        }
    }
    true
}

/// Paths of one node under the state directory:
///
/// ```text
/// <state-dir>/<node>.toml          config (kept by `down`)
/// <state-dir>/logs/<node>.log      stdout+stderr, appended across restarts (kept by `down`)
/// <state-dir>/<node>/              ROCKETMQ_HOME and working directory (removed by `down`)
/// <state-dir>/<node>/home/         HOME of the process (removed by `down`)
/// <state-dir>/<node>/store/        broker store, both storePathRootDir keys (removed by `down`),
///                                  or <store-root>/<node>/store (see [`super::disk`])
/// ```
#[derive(Clone, Debug)]
pub(crate) struct NodeLayout {
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) store: Option<PathBuf>,
}

impl NodeLayout {
    /// `store_root`: where the stores go if not under the node's directory.
    pub(crate) fn new(state_dir: &Path, name: &str, store_root: Option<&Path>) -> Self {
        let dir = state_dir.join(name);
        let store = match store_root {
            Some(root) => root.join(name).join("store"),
            None => dir.join("store"),
        };
        NodeLayout {
            config: state_dir.join(format!("{name}.toml")),
            log: state_dir.join("logs").join(format!("{name}.log")),
            home: dir.join("home"),
            store: (name != NAMESRV).then_some(store),
            dir,
        }
    }
}

/// A TOML basic string for `s`.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str().map(toml_str).with_context(|| {
        format!(
            "path {} is not valid UTF-8; use another --state-dir",
            p.display()
        )
    })
}

/// The name server's TOML config.
pub(crate) fn namesrv_toml(layout: &NodeLayout, plan: &PortPlan) -> Result<String> {
    let dir = &layout.dir;
    Ok(format!(
        "# Written by `cargo xtask cluster up` (rewritten on every `up`).\n\
         rocketmqHome = {home}\n\
         kvConfigPath = {kv}\n\
         configStorePath = {props}\n\
         listenPort = {port}\n\
         bindAddress = \"127.0.0.1\"\n",
        home = path_str(dir)?,
        kv = path_str(&dir.join("kvConfig.json"))?,
        props = path_str(&dir.join("namesrv.properties"))?,
        port = plan.namesrv,
    ))
}

/// A broker's TOML config (a master-only broker, brokerId 0, small store).
pub(crate) fn broker_toml(name: &str, layout: &NodeLayout, plan: &PortPlan) -> Result<String> {
    let ports = plan
        .broker(name)
        .with_context(|| format!("{name} is not a broker"))?;
    let store = layout
        .store
        .as_deref()
        .with_context(|| format!("{name} has no store directory"))?;
    let store = path_str(store)?;
    Ok(format!(
        r#"# Written by `cargo xtask cluster up` (rewritten on every `up`).
# Every table denies unknown keys: validate edits with `rocketmq-broker-rust -m -c <file>`.
[broker]
listenPort = {listen}
brokerIp1 = "127.0.0.1"
namesrvAddr = "127.0.0.1:{ns}"
storePathRootDir = {store}
autoCreateTopicEnable = true
# shortened transaction check-back (defaults 6000 / 30000 ms) for the transaction tests
transactionTimeout = 3000
transactionCheckInterval = 5000

[broker.brokerIdentity]
brokerName = "{name}"
brokerClusterName = "{cluster}"
brokerId = 0

[broker.brokerServerConfig]
bindAddress = "127.0.0.1"

[store]
storePathRootDir = {store}
brokerRole = "ASYNC_MASTER"
flushDiskType = "ASYNC_FLUSH"
haListenAddress = "127.0.0.1"
haListenPort = {ha}
# small, really allocated (fallocate) files instead of 1 GiB / 6 MB / ~420 MB defaults
mappedFileSizeCommitLog = 16777216
mappedFileSizeConsumeQueue = 120000
maxHashSlotNum = 1000
maxIndexNum = 4000
# default true: a 50 us micro-batch wait that costs ~1.4 ms per send
commitLogMicroBatchEnabled = false
"#,
        listen = ports.listen,
        ns = plan.namesrv,
        ha = ports.ha,
        cluster = CLUSTER_NAME,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ports_never_collide() {
        for plan in [PortPlan::defaults(), PortPlan::from_base(20000).unwrap()] {
            let mut ports: Vec<u16> = plan.all().into_iter().map(|(_, p)| p).collect();
            for b in [plan.broker_a, plan.broker_b] {
                assert_eq!(b.fast, b.listen - 2);
            }
            ports.sort_unstable();
            ports.dedup();
            assert_eq!(ports.len(), 7);
        }
        let plan = PortPlan::from_base(20000).unwrap();
        assert!(
            plan.all()
                .iter()
                .all(|(_, p)| (20000..=20000 + BASE_SPAN).contains(p))
        );
        assert!(PortPlan::from_base(u16::MAX - BASE_SPAN + 1).is_err());
        assert!(PortPlan::from_base(80).is_err());
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
