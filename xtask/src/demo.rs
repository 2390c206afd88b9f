//! `cargo xtask demo [--down] [-- ARGS...]`: the README's first command.
//!
//! 1. Brings the default-port cluster up (`cargo xtask cluster up`: installing the
//!    rocketmq-rust 1.0.0 name server and broker on first use), or reuses it when it is
//!    already running.
//! 2. Runs `cargo run -p rmq-cli --bin rmq -- demo --namesrv <its name server> ARGS...`:
//!    a fresh topic on both brokers, 120 messages sent sync, async, in batches,
//!    compressed with each codec and in order, read back and checked.
//! 3. Leaves the cluster running (`cargo xtask cluster down` stops it), or stops it with
//!    `--down`.
//!
//! The exit status is the demo's: non-zero when any message did not arrive intact.

use anyhow::{Context, Result};

use crate::cluster;
use crate::util::{self, UsageError};

/// Usage text of `cargo xtask demo`.
pub const USAGE: &str = "\
usage: cargo xtask demo [--down] [-- RMQ_DEMO_ARGS...]

Starts the default-port RocketMQ cluster on loopback (name server 127.0.0.1:9876,
brokers broker-a and broker-b; installed on first use, reused when already running),
runs `rmq demo` against it (sync, async, batch, compressed and ordered sends, read back
and checked), and leaves the cluster running.

options:
  --down            stop the cluster afterwards (`cargo xtask cluster down`)
  -- ARGS...        more arguments for `rmq demo`, e.g. `-- --header json`";

/// Parsed arguments: whether to stop the cluster, and what to pass on.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    down: bool,
    help: bool,
    forward: Vec<String>,
}

fn parse_args(args: Vec<String>) -> Result<Options> {
    let mut opts = Options {
        down: false,
        help: false,
        forward: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--down" => opts.down = true,
            "-h" | "--help" => opts.help = true,
            "--" => {
                opts.forward.extend(it.by_ref());
            }
            other => {
                return Err(
                    UsageError::new(USAGE, format!("unexpected argument `{other}`")).into(),
                );
            }
        }
    }
    Ok(opts)
}

/// Entry point of `cargo xtask demo <args>`.
pub fn cli(args: Vec<String>) -> Result<()> {
    let opts = parse_args(args)?;
    if opts.help {
        println!("{USAGE}");
        return Ok(());
    }
    let namesrv = cluster::ensure_default_cluster().context("starting the demo cluster")?;
    let mut cmd = util::cargo();
    cmd.current_dir(util::workspace_root())
        .args([
            "run",
            "-p",
            "rmq-cli",
            "--bin",
            "rmq",
            "--",
            "demo",
            "--namesrv",
        ])
        .arg(&namesrv)
        .args(&opts.forward);
    let result = util::run(&mut cmd);
    if opts.down {
        cluster::down_default_cluster().context("stopping the demo cluster")?;
    } else {
        println!(
            "\nThe cluster is still running (name server {namesrv}); read the demo topic again with\n  cargo run -p rmq-cli --bin rmq -- --namesrv {namesrv} pull --topic <the topic above>\nand stop the cluster with `cargo xtask cluster down`."
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_down_and_forwarded_arguments() {
        let o = parse_args(args("--down -- --header json")).unwrap();
        assert!(o.down);
        assert_eq!(o.forward, ["--header", "json"]);
        let o = parse_args(vec![]).unwrap();
        assert!(!o.down && !o.help && o.forward.is_empty());
        assert!(parse_args(args("--bogus")).is_err());
        assert!(parse_args(args("--help")).unwrap().help);
    }
}
