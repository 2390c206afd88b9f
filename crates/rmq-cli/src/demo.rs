//! `rmq demo` (not implemented yet).

use std::process::ExitCode;

use crate::args::{Common, DemoArgs};

/// Runs `rmq demo`.
pub async fn run(_common: &Common, _args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rmq demo is not implemented yet")
}
