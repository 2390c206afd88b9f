//! `rmq route` (not implemented yet).

use std::process::ExitCode;

use crate::args::{Common, RouteArgs};

/// Runs `rmq route`.
pub async fn run(_common: &Common, _args: RouteArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rmq route is not implemented yet")
}
