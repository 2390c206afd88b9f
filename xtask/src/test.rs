//! `cargo xtask test [--quick] [--stage NAME]...`: the CI stages, in order, with a
//! summary table of results and wall times at the end.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::util::{self, UsageError};
use crate::{chaos, cluster, examples, layering};

/// Usage text of `cargo xtask test`.
pub const USAGE: &str = "\
usage: cargo xtask test [--quick] [--stage NAME]...

Runs the CI stages in order and prints a summary table (what .ci/run runs).
  --quick        only fmt, clippy and unit
  --stage NAME   only the named stage (repeatable; run in the order below)

stages: fmt clippy doc layering unit examples fuzz-replay chaos-short cluster
Every selected stage runs even after a failure, except that cluster is skipped
when unit failed. The exit status is non-zero when any stage failed.";

/// One CI stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Fmt,
    Clippy,
    Doc,
    Layering,
    Unit,
    Examples,
    FuzzReplay,
    ChaosShort,
    Cluster,
}

impl Stage {
    /// Every stage, in the order they run.
    const ALL: [Stage; 9] = [
        Stage::Fmt,
        Stage::Clippy,
        Stage::Doc,
        Stage::Layering,
        Stage::Unit,
        Stage::Examples,
        Stage::FuzzReplay,
        Stage::ChaosShort,
        Stage::Cluster,
    ];

    /// The stages of `--quick`.
    const QUICK: [Stage; 3] = [Stage::Fmt, Stage::Clippy, Stage::Unit];

    /// The stage's name on the command line and in the summary.
    fn name(self) -> &'static str {
        match self {
            Stage::Fmt => "fmt",
            Stage::Clippy => "clippy",
            Stage::Doc => "doc",
            Stage::Layering => "layering",
            Stage::Unit => "unit",
            Stage::Examples => "examples",
            Stage::FuzzReplay => "fuzz-replay",
            Stage::ChaosShort => "chaos-short",
            Stage::Cluster => "cluster",
        }
    }

    /// The stage with this command-line name.
    fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Runs the stage from the workspace root.
    fn run(self, root: &Path) -> Result<()> {
        match self {
            Stage::Fmt => cargo(root, &["fmt", "--all", "--", "--check"]),
            Stage::Clippy => cargo(
                root,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
            Stage::Doc => {
                let mut flags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
                if !flags.is_empty() {
                    flags.push(' ');
                }
                flags.push_str("-D warnings");
                let mut cmd = util::cargo();
                cmd.current_dir(root).env("RUSTDOCFLAGS", flags).args([
                    "doc",
                    "--workspace",
                    "--no-deps",
                    "--all-features",
                ]);
                util::run(&mut cmd)
            }
            Stage::Layering => layering::check(root),
            Stage::Unit => cargo(root, &["test", "--workspace", "--all-features"]),
            Stage::Examples => examples::run_all(root),
            Stage::FuzzReplay => {
                let test = root.join("crates/rmq-protocol/tests/fuzz_replay.rs");
                if !test.is_file() {
                    bail!(
                        "{} does not exist: the fuzz corpus replay test has not been written yet",
                        test.display()
                    );
                }
                cargo(
                    root,
                    &[
                        "test",
                        "-p",
                        "rmq-protocol",
                        "--test",
                        "fuzz_replay",
                        "--release",
                    ],
                )
            }
            Stage::ChaosShort => chaos::short_stage(),
            Stage::Cluster => cluster::test_stage(root),
        }
    }
}

/// Runs `cargo <args>` in the workspace root.
fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let mut cmd = util::cargo();
    cmd.current_dir(root).args(args);
    util::run(&mut cmd)
}

/// How one stage ended.
#[derive(Debug)]
enum Outcome {
    Passed,
    Failed(String),
    Skipped(&'static str),
}

/// Entry point of `cargo xtask test <args>`.
pub fn cli(args: Vec<String>) -> Result<()> {
    let stages = parse_args(&args)?;
    let root = util::workspace_root();
    let started = Instant::now();
    let results = run_stages(&stages, |stage| stage.run(&root));
    print_summary(&results, started.elapsed());
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, o, _)| matches!(o, Outcome::Failed(_)))
        .map(|(s, _, _)| s.name())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} stages failed: {}",
            failed.len(),
            results.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Runs every stage with `run`, printing a header for each, and keeps going after
/// failures, except that `cluster` is skipped once `unit` has failed.
fn run_stages(
    stages: &[Stage],
    mut run: impl FnMut(Stage) -> Result<()>,
) -> Vec<(Stage, Outcome, Duration)> {
    let mut results: Vec<(Stage, Outcome, Duration)> = Vec::new();
    for (i, &stage) in stages.iter().enumerate() {
        let unit_failed = results
            .iter()
            .any(|(s, o, _)| *s == Stage::Unit && matches!(o, Outcome::Failed(_)));
        if stage == Stage::Cluster && unit_failed {
            println!(
                "\n==> [{}/{}] cluster: skipped because unit failed",
                i + 1,
                stages.len()
            );
            results.push((stage, Outcome::Skipped("unit failed"), Duration::ZERO));
            continue;
        }
        println!("\n==> [{}/{}] {}", i + 1, stages.len(), stage.name());
        let stage_started = Instant::now();
        let outcome = match run(stage) {
            Ok(()) => Outcome::Passed,
            Err(e) => {
                println!("==> {} FAILED: {e:#}", stage.name());
                Outcome::Failed(format!("{e:#}"))
            }
        };
        results.push((stage, outcome, stage_started.elapsed()));
    }
    results
}

/// Prints the table of stages with their results and wall times, the total, and
/// the reason of every failure.
fn print_summary(results: &[(Stage, Outcome, Duration)], total: Duration) {
    println!("\n==> summary");
    println!("{:<12} {:<8} {:>9}", "stage", "result", "time");
    for (stage, outcome, time) in results {
        let (result, time) = match outcome {
            Outcome::Passed => ("pass", util::format_duration(*time)),
            Outcome::Failed(_) => ("FAIL", util::format_duration(*time)),
            Outcome::Skipped(_) => ("skipped", "-".to_string()),
        };
        println!("{:<12} {result:<8} {time:>9}", stage.name());
    }
    println!(
        "{:<12} {:<8} {:>9}",
        "total",
        "",
        util::format_duration(total)
    );
    for (stage, outcome, _) in results {
        match outcome {
            Outcome::Failed(reason) => println!("{}: {reason}", stage.name()),
            Outcome::Skipped(reason) => println!("{}: skipped: {reason}", stage.name()),
            Outcome::Passed => {}
        }
    }
}

/// Parses the arguments of `cargo xtask test` into the stages to run, in run order.
fn parse_args(args: &[String]) -> Result<Vec<Stage>, UsageError> {
    let mut quick = false;
    let mut named: Vec<Stage> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--stage" => {
                let name = args
                    .next()
                    .ok_or_else(|| UsageError::new(USAGE, "--stage needs a stage name"))?;
                named.push(stage_named(name)?);
            }
            other => match other.strip_prefix("--stage=") {
                Some(name) => named.push(stage_named(name)?),
                None => {
                    return Err(UsageError::new(
                        USAGE,
                        format!("unknown argument `{other}`"),
                    ));
                }
            },
        }
    }
    if quick && !named.is_empty() {
        return Err(UsageError::new(
            USAGE,
            "--quick and --stage cannot be combined",
        ));
    }
    let selected: &[Stage] = if quick {
        &Stage::QUICK
    } else if named.is_empty() {
        &Stage::ALL
    } else {
        &named
    };
    Ok(Stage::ALL
        .into_iter()
        .filter(|s| selected.contains(s))
        .collect())
}

/// The stage called `name`, or a usage error listing the stage names.
fn stage_named(name: &str) -> Result<Stage, UsageError> {
    Stage::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        UsageError::new(
            USAGE,
            format!("unknown stage `{name}` (stages: {})", names.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Vec<Stage>, UsageError> {
        parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn no_flags_runs_every_stage_in_order() {
        assert_eq!(parse(&[]).unwrap(), Stage::ALL);
    }

    #[test]
    fn quick_runs_fmt_clippy_unit() {
        assert_eq!(
            parse(&["--quick"]).unwrap(),
            [Stage::Fmt, Stage::Clippy, Stage::Unit]
        );
    }

    #[test]
    fn named_stages_run_once_in_canonical_order() {
        assert_eq!(
            parse(&["--stage", "cluster", "--stage=fmt", "--stage", "fmt"]).unwrap(),
            [Stage::Fmt, Stage::Cluster]
        );
        assert_eq!(
            parse(&["--stage", "fuzz-replay"]).unwrap(),
            [Stage::FuzzReplay]
        );
        assert_eq!(
            parse(&[
                "--stage",
                "cluster",
                "--stage",
                "chaos-short",
                "--stage",
                "fuzz-replay"
            ])
            .unwrap(),
            [Stage::FuzzReplay, Stage::ChaosShort, Stage::Cluster]
        );
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        assert!(parse(&["--stage"]).is_err());
        assert!(parse(&["--stage", "chaos-long"]).is_err());
        assert!(parse(&["--quick", "--stage", "fmt"]).is_err());
        assert!(parse(&["fmt"]).is_err());
    }

    #[test]
    fn failures_do_not_stop_the_run_but_a_failed_unit_skips_cluster() {
        let mut ran = Vec::new();
        let results = run_stages(&Stage::ALL, |stage| {
            ran.push(stage);
            match stage {
                Stage::Clippy | Stage::Unit => bail!("{} broke", stage.name()),
                _ => Ok(()),
            }
        });
        assert_eq!(ran, &Stage::ALL[..8], "everything but cluster ran");
        let summary: Vec<String> = results
            .iter()
            .map(|(s, o, _)| format!("{} {o:?}", s.name()))
            .collect();
        assert_eq!(summary[1], "clippy Failed(\"clippy broke\")");
        assert_eq!(summary[5], "examples Passed");
        assert_eq!(summary[7], "chaos-short Passed");
        assert_eq!(summary[8], "cluster Skipped(\"unit failed\")");
    }

    #[test]
    fn cluster_runs_when_unit_passed_or_was_not_selected() {
        let results = run_stages(&[Stage::Cluster], |_| Ok(()));
        assert!(matches!(results[0].1, Outcome::Passed));
        let results = run_stages(&[Stage::Unit, Stage::Cluster], |_| Ok(()));
        assert!(matches!(results[1].1, Outcome::Passed));
    }

    #[test]
    fn names_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.name()), Some(stage));
        }
    }
}
