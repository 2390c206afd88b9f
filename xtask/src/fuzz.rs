//! `cargo xtask fuzz`: libFuzzer runs of the targets in `fuzz/` with
//! `cargo +nightly fuzz`, installing a pinned cargo-fuzz into the cache first.
//! Not part of CI: CI replays the corpus on stable (`fuzz-replay` stage).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use anyhow::{Context, Result, bail};

use crate::install;
use crate::util::{self, UsageError};

/// Usage text of `cargo xtask fuzz`.
pub const USAGE: &str = "\
usage: cargo xtask fuzz --target TARGET|all --duration DURATION [--jobs N]
       cargo xtask fuzz --list

Runs libFuzzer (cargo +nightly fuzz run) on one target, or on every target in
turn, for DURATION each (e.g. 90, 30s, 5m, 1h). --jobs N runs N fuzzing
processes in parallel (libFuzzer -fork=N). cargo-fuzz is installed once into
the cache folder ($RMQ_CACHE_DIR, else $XDG_CACHE_HOME/rmq, else ~/.cache/rmq).
New inputs go to fuzz/target/corpus/TARGET; the checked-in seeds in
fuzz/corpus/TARGET are read, never written. Prints libFuzzer's final stats line
of each run at the end.";

/// The cargo-fuzz release the xtask installs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Print the fuzz targets.
    List,
    /// Fuzz `target` (or every target when `None`) for `seconds` each.
    Run {
        target: Option<String>,
        seconds: u64,
        jobs: u16,
    },
}

/// Entry point of `cargo xtask fuzz <args>`.
pub fn cli(args: Vec<String>) -> Result<()> {
    let request = parse_args(&args)?;
    let fuzz_dir = util::workspace_root().join("fuzz");
    let targets = list_targets(&fuzz_dir)?;
    let (target, seconds, jobs) = match request {
        Request::List => {
            for t in &targets {
                println!("{t}");
            }
            return Ok(());
        }
        Request::Run {
            target,
            seconds,
            jobs,
        } => (target, seconds, jobs),
    };
    let selected = match target {
        None => targets,
        Some(t) if targets.contains(&t) => vec![t],
        Some(t) => {
            return Err(UsageError::new(
                USAGE,
                format!(
                    "unknown fuzz target `{t}` (targets: {})",
                    targets.join(", ")
                ),
            )
            .into());
        }
    };

    let bin_dir = install::ensure("cargo-fuzz", CARGO_FUZZ_VERSION)?;
    let path = prepend_path(&bin_dir)?;
    let mut results = Vec::new();
    for target in &selected {
        println!("\n==> fuzz {target} for {seconds} s");
        let result = run_target(&fuzz_dir, &path, target, seconds, jobs);
        if let Err(e) = &result {
            println!("==> fuzz {target} FAILED: {e:#}");
        }
        results.push((target, result));
    }

    println!("\n==> libFuzzer final stats ({seconds} s per target, {jobs} job(s))");
    for (target, result) in &results {
        match result {
            Ok(Some(line)) => println!("{target}: {line}"),
            Ok(None) => println!("{target}: (no stats line seen)"),
            Err(e) => println!("{target}: FAILED: {e:#}"),
        }
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(t, _)| t.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzzing failed for {} (crash inputs, if any, are under fuzz/artifacts/)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// The fuzz targets: the file stems of `fuzz/fuzz_targets/*.rs`, sorted.
fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut targets = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem()
        {
            targets.push(stem.to_string_lossy().into_owned());
        }
    }
    targets.sort();
    if targets.is_empty() {
        bail!("no fuzz targets in {}", dir.display());
    }
    Ok(targets)
}

/// `PATH` with `dir` in front, so cargo finds the cached `cargo-fuzz`.
fn prepend_path(dir: &Path) -> Result<OsString> {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&old));
    std::env::join_paths(dirs).with_context(|| format!("adding {} to PATH", dir.display()))
}

/// Runs `cargo +nightly fuzz run` on one target, echoing its output, and returns
/// libFuzzer's final stats line.
fn run_target(
    fuzz_dir: &Path,
    path: &OsString,
    target: &str,
    seconds: u64,
    jobs: u16,
) -> Result<Option<String>> {
    // New inputs go to a scratch corpus (ignored by git); the checked-in seeds are only read.
    let work_corpus: PathBuf = fuzz_dir.join("target").join("corpus").join(target);
    let seed_corpus: PathBuf = fuzz_dir.join("corpus").join(target);
    for dir in [&work_corpus, &seed_corpus] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // The rustup proxy `cargo` (not $CARGO, the pinned toolchain's binary) understands +nightly.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(fuzz_dir)
        .args(["+nightly", "fuzz", "run", target])
        .arg(&work_corpus)
        .arg(&seed_corpus)
        .args(["--jobs", &jobs.to_string()])
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let shown = format!("(in fuzz/) {}", util::display(&cmd));
    println!("$ {shown}");
    cmd.env("PATH", path);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let stderr = child.stderr.take().context("stderr was not captured")?;
    // libFuzzer reports on stderr: echo it while remembering the final stats line.
    let reader = thread::spawn(move || -> std::io::Result<StatsTracker> {
        let mut tracker = StatsTracker::default();
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        let mut out = std::io::stderr();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                return Ok(tracker);
            }
            out.write_all(&buf)?;
            tracker.observe(&String::from_utf8_lossy(&buf));
        }
    });
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{shown}`"))?;
    let tracker = match reader.join() {
        Ok(result) => result.context("relaying the fuzzer's output")?,
        Err(_) => bail!("the thread relaying the fuzzer's output panicked"),
    };
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(tracker.final_line())
}

/// Remembers libFuzzer's stats lines: the last `#N DONE ...` line, or failing
/// that the last `#N ... cov: ...` progress line (fork mode prints no DONE line).
#[derive(Debug, Default)]
struct StatsTracker {
    done: Option<String>,
    progress: Option<String>,
}

impl StatsTracker {
    /// Looks at one output line.
    fn observe(&mut self, line: &str) {
        let line = line.trim();
        if !line.starts_with('#') {
            return;
        }
        if line.contains("DONE") {
            self.done = Some(line.to_string());
        } else if line.contains("cov:") {
            self.progress = Some(line.to_string());
        }
    }

    /// The line to report.
    fn final_line(self) -> Option<String> {
        self.done.or(self.progress)
    }
}

/// Parses the arguments of `cargo xtask fuzz`.
fn parse_args(args: &[String]) -> Result<Request, UsageError> {
    let usage = |msg: String| UsageError::new(USAGE, msg);
    let mut list = false;
    let mut target = None;
    let mut duration = None;
    let mut jobs: u16 = 1;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag {
            "--list" => list = true,
            "--target" => target = Some(value()?),
            "--duration" => duration = Some(parse_duration(&value()?).map_err(usage)?),
            "--jobs" => {
                let v = value()?;
                jobs =
                    v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        usage(format!("--jobs needs a positive number, got `{v}`"))
                    })?;
            }
            other => return Err(usage(format!("unknown argument `{other}`"))),
        }
    }
    if list {
        if target.is_some() || duration.is_some() {
            return Err(usage("--list takes no other arguments".into()));
        }
        return Ok(Request::List);
    }
    let target = target.ok_or_else(|| usage("--target is required".into()))?;
    let seconds = duration.ok_or_else(|| usage("--duration is required".into()))?;
    Ok(Request::Run {
        target: (target != "all").then_some(target),
        seconds,
        jobs,
    })
}

/// Parses a duration like `90`, `30s`, `5m` or `1h` into whole seconds (at least 1).
fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("bad duration `{text}`: write it like 90, 30s, 5m or 1h");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|&s| s > 0)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Request, UsageError> {
        parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h"), Ok(3600));
        for bad in [
            "",
            "0",
            "0s",
            "m",
            "5x",
            "1h30m",
            "-5s",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_and_list_requests() {
        assert_eq!(
            parse(&["--target", "frame_decode", "--duration=5m", "--jobs", "2"]).unwrap(),
            Request::Run {
                target: Some("frame_decode".into()),
                seconds: 300,
                jobs: 2
            }
        );
        assert_eq!(
            parse(&["--target=all", "--duration", "30s"]).unwrap(),
            Request::Run {
                target: None,
                seconds: 30,
                jobs: 1
            }
        );
        assert_eq!(parse(&["--list"]).unwrap(), Request::List);
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for args in [
            &["--target", "x"][..],
            &["--duration", "5m"],
            &["--target"],
            &["--target", "x", "--duration", "5m", "--jobs", "0"],
            &["--list", "--target", "x"],
            &["--bogus"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn stats_prefer_the_done_line() {
        let mut t = StatsTracker::default();
        for line in [
            "INFO: Seed: 1",
            "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#1024\tpulse  cov: 50 ft: 60 corp: 9/90b lim: 14 exec/s: 512 rss: 40Mb",
            "#5000\tDONE   cov: 55 ft: 66 corp: 10/99b lim: 48 exec/s: 2500 rss: 41Mb",
            "Done 5000 runs in 2 second(s)",
        ] {
            t.observe(line);
        }
        assert_eq!(
            t.final_line().as_deref(),
            Some("#5000\tDONE   cov: 55 ft: 66 corp: 10/99b lim: 48 exec/s: 2500 rss: 41Mb")
        );
    }

    #[test]
    fn stats_fall_back_to_the_last_progress_line() {
        let mut t = StatsTracker::default();
        t.observe("#100: cov: 5 ft: 6 corp: 3 exec/s 50 oom/timeout/crash: 0/0/0 time: 2s\n");
        t.observe("INFO: exiting: 0 time: 3s\n");
        assert!(t.final_line().unwrap().starts_with("#100: cov: 5"));
        assert_eq!(StatsTracker::default().final_line(), None);
    }
}
