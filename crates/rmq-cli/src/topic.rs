//! `rmq topic` (not implemented yet).

use std::process::ExitCode;

use crate::args::{Common, TopicArgs};

/// Runs `rmq topic`.
pub async fn run(_common: &Common, _args: TopicArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rmq topic is not implemented yet")
}
