//! `cargo xtask cluster ...`: a real RocketMQ cluster (rocketmq-rust name server and
//! brokers) on loopback. Placeholder until the cluster issue lands.

use std::path::Path;

/// Entry point of `cargo xtask cluster <args>`.
pub fn cli(_args: Vec<String>) -> anyhow::Result<()> {
    anyhow::bail!("cargo xtask cluster is not implemented yet")
}

/// The `cluster` stage of `cargo xtask test`: a private cluster, the integration
/// tests against it, and always a teardown.
pub fn test_stage(_workspace_root: &Path) -> anyhow::Result<()> {
    anyhow::bail!("the cluster stage is not implemented yet")
}
