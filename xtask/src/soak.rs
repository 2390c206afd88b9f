//! `cargo xtask soak [--messages N]`: builds and runs the release-mode soak program
//! (`benches/src/bin/soak.rs`): async sends against the fake cluster over loopback
//! TCP with periodic connection kills, then asserts that response tables, live heap
//! bytes and file descriptors are back to their baseline. Not part of CI.

use anyhow::Result;

use crate::util::{self, UsageError};

/// Usage text of `cargo xtask soak`.
pub const USAGE: &str = "\
usage: cargo xtask soak [--messages N] [--in-flight K] [--kill-every M]

Runs the soak program in release mode (cargo run --release -p rmq-benches --bin soak):
the producer sends N messages (default 1000000) asynchronously, at most K in flight
(default 512), to rmq-testkit's fake cluster over loopback TCP, resetting one broker's
connections every M sends (default 10000). It then closes everything and fails unless
every acked message is stored, the pending tables are empty, and live heap bytes and
open file descriptors are back to their baseline.";

/// Entry point of `cargo xtask soak <args>`.
pub fn cli(args: Vec<String>) -> Result<()> {
    let forwarded = parse_args(&args)?;
    let mut cmd = util::cargo();
    cmd.current_dir(util::workspace_root()).args([
        "run",
        "--release",
        "-p",
        "rmq-benches",
        "--bin",
        "soak",
        "--",
    ]);
    cmd.args(&forwarded);
    util::run(&mut cmd)
}

/// Checks the arguments and returns them as the soak program takes them.
fn parse_args(args: &[String]) -> Result<Vec<String>, UsageError> {
    let mut out = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        if !matches!(name, "--messages" | "--in-flight" | "--kill-every") {
            return Err(UsageError::new(USAGE, format!("unknown argument `{arg}`")));
        }
        let value = match value {
            Some(v) => v,
            None => args
                .next()
                .cloned()
                .ok_or_else(|| UsageError::new(USAGE, format!("{name} needs a number")))?,
        };
        match value.parse::<u64>() {
            Ok(n) if n > 0 => {}
            _ => {
                return Err(UsageError::new(
                    USAGE,
                    format!("{name}: `{value}` is not a positive number"),
                ));
            }
        }
        out.push(name.to_owned());
        out.push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Vec<String>, UsageError> {
        parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn forwards_checked_numbers() {
        assert_eq!(parse(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            parse(&["--messages", "1000", "--kill-every=50"]).unwrap(),
            ["--messages", "1000", "--kill-every", "50"]
        );
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        assert!(parse(&["--messages"]).is_err());
        assert!(parse(&["--messages", "0"]).is_err());
        assert!(parse(&["--messages", "many"]).is_err());
        assert!(parse(&["--seed", "1"]).is_err());
    }
}
