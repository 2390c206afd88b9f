//! `rmq bench` (not implemented yet).

use std::process::ExitCode;

use crate::args::{Common, BenchArgs};

/// Runs `rmq bench`.
pub async fn run(_common: &Common, _args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rmq bench is not implemented yet")
}
