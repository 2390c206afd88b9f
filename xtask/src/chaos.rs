//! `cargo xtask chaos --duration D [--seed S] [--seeds N]`: a long seeded chaos run
//! (reliability matrix G1, G2) against the fake cluster, in release mode. The short
//! run is the `chaos-short` stage of `cargo xtask test`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::util::{self, UsageError};

/// Usage text of `cargo xtask chaos`.
pub const USAGE: &str = "\
usage: cargo xtask chaos --duration D [--seed S] [--seeds N]

Runs crates/rmq-producer/tests/chaos.rs (G1 and G2: kills, restarts, stalls, pauses,
slow brokers, SYSTEM_BUSY and route changes while sync and async sends run) against
the in-memory fake cluster with paused time, in release mode.
  --duration D   virtual time of faults and traffic per seed: 90, 30s, 5m, 1h
  --seed S       the first seed (default: one drawn from the clock, printed)
  --seeds N      how many consecutive seeds (default 1)

A failure prints the seed, the fault schedule and the replay command; replay with
  cargo xtask chaos --seed S --duration D";

/// What `cargo xtask chaos` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    duration: Duration,
    seed: Option<u64>,
    seeds: u64,
}

/// Entry point of `cargo xtask chaos <args>`.
pub fn cli(args: Vec<String>) -> Result<()> {
    let req = parse_args(&args)?;
    let seed = req.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    println!(
        "chaos: seeds {seed}..={} with {}s of virtual time each",
        seed + req.seeds - 1,
        req.duration.as_secs()
    );
    let mut cmd = env_command(seed, req.seeds, req.duration, true);
    util::run(&mut cmd)
}

/// `cargo test` of the chaos test with its environment (`release`: optimized).
pub fn env_command(
    seed: u64,
    seeds: u64,
    duration: Duration,
    release: bool,
) -> std::process::Command {
    let mut cmd = util::cargo();
    cmd.current_dir(util::workspace_root())
        .env("RMQ_CHAOS_SEED", seed.to_string())
        .env("RMQ_CHAOS_SEEDS", seeds.to_string())
        .env("RMQ_CHAOS_DURATION", format!("{}ms", duration.as_millis()))
        .args(["test", "-p", "rmq-producer", "--test", "chaos"]);
    if release {
        cmd.arg("--release");
    }
    cmd.args(["--", "--nocapture"]);
    cmd
}

/// The `chaos-short` stage: a few fixed seeds, seconds of virtual time each.
pub fn short_stage() -> Result<()> {
    let mut cmd = env_command(1, 3, Duration::from_secs(8), false);
    util::run(&mut cmd)
}

fn parse_args(args: &[String]) -> Result<Request, UsageError> {
    let usage = |m: String| UsageError::new(USAGE, m);
    let (mut duration, mut seed, mut seeds) = (None, None, 1);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag {
            "--duration" => duration = Some(parse_duration(&value()?).map_err(usage)?),
            "--seed" => {
                let v = value()?;
                seed = Some(v.parse().map_err(|_| usage(format!("bad seed `{v}`")))?);
            }
            "--seeds" => {
                let v = value()?;
                seeds = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| usage(format!("bad seed count `{v}`")))?;
            }
            other => return Err(usage(format!("unknown argument `{other}`"))),
        }
    }
    let duration = duration.ok_or_else(|| usage("--duration is required".into()))?;
    Ok(Request {
        duration,
        seed,
        seeds,
    })
}

/// Parses `90`, `30s`, `5m` or `1h` (at least 1 s).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration `{text}`: write it like 90, 30s, 5m or 1h");
    let (num, mult) = match text.chars().last() {
        Some('s') => (&text[..text.len() - 1], 1),
        Some('m') => (&text[..text.len() - 1], 60),
        Some('h') => (&text[..text.len() - 1], 3600),
        _ => (text, 1),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    match n.checked_mul(mult) {
        Some(s) if s >= 1 => Ok(Duration::from_secs(s)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Request, UsageError> {
        parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse(&["--duration", "5m", "--seed=7"]).unwrap(),
            Request {
                duration: Duration::from_secs(300),
                seed: Some(7),
                seeds: 1
            }
        );
        assert_eq!(parse(&["--duration=90", "--seeds", "3"]).unwrap().seeds, 3);
        for bad in [
            &[][..],
            &["--seed", "1"],
            &["--duration", "0"],
            &["--duration", "5x"],
            &["--duration", "5m", "--seeds", "0"],
            &["--duration", "5m", "--seed"],
            &["--duration", "5m", "extra"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_command_carries_the_seed_and_duration() {
        let shown = util::display(&env_command(42, 2, Duration::from_secs(90), true));
        for part in [
            "RMQ_CHAOS_SEED=42",
            "RMQ_CHAOS_SEEDS=2",
            "RMQ_CHAOS_DURATION=90000ms",
            "test -p rmq-producer --test chaos --release -- --nocapture",
        ] {
            assert!(shown.contains(part), "{shown}");
        }
    }
}
