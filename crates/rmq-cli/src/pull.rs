//! `rmq pull` (not implemented yet).

use std::process::ExitCode;

use crate::args::{Common, PullArgs};

/// Runs `rmq pull`.
pub async fn run(_common: &Common, _args: PullArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rmq pull is not implemented yet")
}
