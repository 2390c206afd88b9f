//! The `rmq` command line, as a library so its pieces (notably `pull`) can be reused
//! by the demo and the integration tests.
//!
//! * [`pull::pull_topic`] reads a topic back from its brokers (every queue from offset 0).
//! * [`topic::create_on_masters`] creates a topic on every master broker.
//! * [`admin::Admin`] asks the name servers for routes and cluster info.
//! * [`output`] holds the JSON conventions (schemas, the `error` object, exit codes).
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod args;
pub mod bench;
pub mod demo;
pub mod output;
pub mod pull;
pub mod route;
pub mod send;
pub mod topic;

use std::process::ExitCode;

pub use args::{Cli, Command};

/// Runs one parsed command line; the exit code is non-zero when anything failed.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Send(a) => send::run(&cli.common, a).await,
        Command::Bench(a) => bench::run(&cli.common, a).await,
        Command::Route(a) => route::run(&cli.common, a).await,
        Command::Topic(a) => topic::run(&cli.common, a).await,
        Command::Pull(a) => pull::run(&cli.common, a).await,
        Command::Demo(a) => demo::run(&cli.common, a).await,
    }
}
