//! `rmq`: try the rmq producer against a RocketMQ cluster, and operate one.
//!
//! Subcommands: `send`, `bench`, `route`, `topic create`, `pull`, `demo`. Every
//! `--json` output is a versioned schema documented in `docs/cli.md`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = rmq_cli::Cli::parse();
    match rmq_cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rmq: {e:#}");
            ExitCode::from(2)
        }
    }
}
