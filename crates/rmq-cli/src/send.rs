//! `rmq send` (not implemented yet).

use std::process::ExitCode;

use crate::args::{Common, SendArgs};

/// Runs `rmq send`.
pub async fn run(_common: &Common, _args: SendArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rmq send is not implemented yet")
}
