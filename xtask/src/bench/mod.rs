//! `cargo xtask bench compare`: rmq against rocketmq-client-rust 1.0.0 (the peer,
//! `benches/peer`), run alternately in pairs (rmq, then the peer) with the same
//! workload, against the null broker (`rmq-null-broker`) and a real cluster.
//!
//! Each run is a separate process measured from outside ([`run::measure`]): its own
//! `rmq.bench/1` JSON gives msgs/s and latency; `wait4` gives CPU seconds and peak RSS.
//! The report ([`report`]) gives medians over pairs and the median of the per-pair
//! ratios, and is written between markers in docs/benchmarks.md with an SVG chart.

mod report;
mod run;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util::{self, UsageError};
use report::Case;
use run::{NullBrokerProcess, Sample};

/// Usage text of `cargo xtask bench`.
pub const USAGE: &str = "\
usage: cargo xtask bench compare [options]

Runs `rmq bench` and the peer harness (benches/peer: rocketmq-client-rust 1.0.0 with the
same workload and decisions.md's fairness settings) alternately, pair by pair, against the
null broker and/or a real cluster; reports msgs/s, p50/p99 latency, CPU seconds per million
messages and peak RSS (measured from outside with wait4), absolute and as rmq/peer ratios;
writes the section between <!-- bench-compare:start/end --> in docs/benchmarks.md and
docs/bench-compare.svg.

options:
  --pairs N           pairs per case (default 5)
  --messages N        messages per run (default 100000; sync with 1 in flight runs a quarter;
                      fewer make process start-up a large part of the CPU figures)
  --modes LIST        comma-separated from sync1, sync64, async, batch (default all)
  --sizes LIST        body sizes in bytes (default 128,4096)
  --target T          null, real or both (default both)
  --namesrv ADDR      the real cluster to use (default: start a private one with
                      `cargo xtask cluster up --base-port P`, stopped at the end)
  --base-port P       base port of that private cluster (default 24000, below the
                      ephemeral range, where a client socket may hold a port)
  --header H          binary or json request headers, on both clients (default binary)
  --no-build          use the binaries already built
  --no-write          print the report, do not touch docs/";

/// A workload shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModeSpec {
    key: &'static str,
    mode: &'static str,
    concurrency: usize,
    display: &'static str,
}

const MODES: [ModeSpec; 4] = [
    ModeSpec {
        key: "sync1",
        mode: "sync",
        concurrency: 1,
        display: "sync, 1 in flight",
    },
    ModeSpec {
        key: "sync64",
        mode: "sync",
        concurrency: 64,
        display: "sync, 64 in flight",
    },
    ModeSpec {
        key: "async",
        mode: "async",
        concurrency: 64,
        display: "async, 64 in flight",
    },
    ModeSpec {
        key: "batch",
        mode: "batch",
        concurrency: 64,
        display: "batch of 16, 64 in flight",
    },
];

/// Messages per `send_batch` in batch mode (`rmq bench`'s default).
const BATCH_SIZE: usize = 16;

#[derive(Debug)]
struct Options {
    pairs: usize,
    messages: u64,
    modes: Vec<ModeSpec>,
    sizes: Vec<usize>,
    null: bool,
    real: bool,
    namesrv: Option<String>,
    base_port: u16,
    header: String,
    build: bool,
    write: bool,
}

fn usage(message: String) -> anyhow::Error {
    UsageError::new(USAGE, message).into()
}

fn parse_args(args: Vec<String>) -> Result<Options> {
    let mut it = args.into_iter();
    match it.next().as_deref() {
        Some("compare") => {}
        Some(other) => return Err(usage(format!("unknown bench command `{other}`"))),
        None => return Err(usage("expected `compare`".to_owned())),
    }
    let mut o = Options {
        pairs: 5,
        messages: 100_000,
        modes: MODES.to_vec(),
        sizes: vec![128, 4096],
        null: true,
        real: true,
        namesrv: None,
        // Below Linux's ephemeral range (32768..): at 34000 the cluster's ports
        // collided with client sockets of the null-broker runs just before.
        base_port: 24_000,
        header: "binary".to_owned(),
        build: true,
        write: true,
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--no-build" => o.build = false,
            "--no-write" => o.write = false,
            _ => {
                let value = it
                    .next()
                    .ok_or_else(|| usage(format!("{flag} needs a value")))?;
                let bad = |what: &str| usage(format!("{flag} {value}: {what}"));
                match flag.as_str() {
                    "--pairs" => {
                        o.pairs = value
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad("expected a positive integer"))?;
                    }
                    "--messages" => {
                        o.messages = value
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad("expected a positive integer"))?;
                    }
                    "--modes" => {
                        o.modes = value
                            .split(',')
                            .map(|k| MODES.iter().find(|m| m.key == k).copied())
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| bad("expected sync1, sync64, async, batch"))?;
                    }
                    "--sizes" => {
                        o.sizes = value
                            .split(',')
                            .map(|s| s.parse().ok().filter(|n| *n > 0 && *n <= 4 << 20))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| bad("expected sizes between 1 and 4194304"))?;
                    }
                    "--target" => {
                        (o.null, o.real) = match value.as_str() {
                            "null" => (true, false),
                            "real" => (false, true),
                            "both" => (true, true),
                            _ => return Err(bad("expected null, real or both")),
                        };
                    }
                    "--namesrv" => o.namesrv = Some(value),
                    "--base-port" => o.base_port = value.parse().map_err(|_| bad("not a port"))?,
                    "--header" => {
                        if value != "binary" && value != "json" {
                            return Err(bad("expected binary or json"));
                        }
                        o.header = value;
                    }
                    _ => return Err(usage(format!("unknown option {flag}"))),
                }
            }
        }
    }
    Ok(o)
}

/// Where the peer harness is built (outside the repository; its build is long).
fn peer_target_dir() -> Result<PathBuf> {
    Ok(util::cache_dir()?.join("peer-bench-target"))
}

fn build(root: &Path) -> Result<()> {
    let mut cmd = util::cargo();
    cmd.current_dir(root).args([
        "build",
        "--release",
        "-p",
        "rmq-cli",
        "--bin",
        "rmq",
        "-p",
        "rmq-testkit",
        "--bin",
        "rmq-null-broker",
    ]);
    util::run(&mut cmd)?;
    let mut cmd = util::cargo();
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--manifest-path",
            "benches/peer/Cargo.toml",
            "--target-dir",
        ])
        .arg(peer_target_dir()?);
    util::run(&mut cmd)
}

/// Stops the private cluster when dropped.
struct ClusterGuard {
    state_dir: PathBuf,
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut cmd = Command::new(exe);
        cmd.args(["cluster", "down", "--state-dir"])
            .arg(&self.state_dir);
        if let Err(e) = util::run(&mut cmd) {
            eprintln!("bench: stopping the private cluster: {e:#}");
        }
    }
}

/// Entry point of `cargo xtask bench <args>`.
pub fn cli(args: Vec<String>) -> Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let opts = parse_args(args)?;
    let root = util::workspace_root();
    if opts.build {
        build(&root)?;
    }
    let rmq = root.join("target/release/rmq");
    let null_bin = root.join("target/release/rmq-null-broker");
    let peer = peer_target_dir()?.join("release/rmq-peer-bench");
    for bin in [&rmq, &null_bin, &peer] {
        if !bin.is_file() {
            bail!("{} is missing: run without --no-build", bin.display());
        }
    }
    let machine = machine_description();
    let started = Instant::now();
    let mut cases = Vec::new();
    if opts.null {
        let broker = NullBrokerProcess::start(&null_bin)?;
        println!(
            "bench: null broker at {} (pid {})",
            broker.addr,
            broker.pid()
        );
        let bins = Bins {
            rmq: &rmq,
            peer: &peer,
        };
        cases.extend(run_target(
            &opts,
            &bins,
            "null",
            &broker.addr,
            "BenchNull",
            Some(broker.pid()),
        )?);
    }
    if opts.real {
        let mut _guard = None;
        let namesrv = match &opts.namesrv {
            Some(n) => n.clone(),
            None => {
                let state_dir =
                    util::cache_dir()?.join(format!("bench-cluster-{}", opts.base_port));
                let mut cmd =
                    Command::new(std::env::current_exe().context("finding the xtask binary")?);
                cmd.args([
                    "cluster",
                    "up",
                    "--base-port",
                    &opts.base_port.to_string(),
                    "--state-dir",
                ])
                .arg(&state_dir);
                util::run(&mut cmd).context("starting the private cluster")?;
                _guard = Some(ClusterGuard { state_dir });
                format!("127.0.0.1:{}", opts.base_port)
            }
        };
        let topic = format!("BenchCompare{}", std::process::id());
        let mut cmd = Command::new(&rmq);
        cmd.args([
            "--namesrv",
            &namesrv,
            "topic",
            "create",
            "--topic",
            &topic,
            "--queues",
            "4",
        ]);
        util::run(&mut cmd).context("creating the benchmark topic")?;
        let bins = Bins {
            rmq: &rmq,
            peer: &peer,
        };
        cases.extend(run_target(&opts, &bins, "real", &namesrv, &topic, None)?);
    }
    let section = render(&opts, &cases, &machine, started.elapsed().as_secs_f64());
    println!("\n{section}");
    let out_dir = root.join("target/bench-compare");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    std::fs::write(out_dir.join("report.md"), &section)?;
    if opts.write {
        let doc_path = root.join("docs/benchmarks.md");
        let doc = std::fs::read_to_string(&doc_path)
            .with_context(|| format!("reading {}", doc_path.display()))?;
        std::fs::write(&doc_path, report::splice(&doc, &section))
            .with_context(|| format!("writing {}", doc_path.display()))?;
        std::fs::write(
            root.join("docs/bench-compare.svg"),
            report::svg_chart(&cases),
        )?;
        println!(
            "bench: wrote docs/benchmarks.md (between the bench-compare markers) and docs/bench-compare.svg"
        );
    }
    Ok(())
}

struct Bins<'a> {
    rmq: &'a Path,
    peer: &'a Path,
}

fn run_target(
    opts: &Options,
    bins: &Bins<'_>,
    target: &'static str,
    namesrv: &str,
    topic: &str,
    server_pid: Option<u32>,
) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for mode in &opts.modes {
        for &size in &opts.sizes {
            let count = if mode.concurrency == 1 {
                (opts.messages / 4).max(1000)
            } else {
                opts.messages
            };
            let mut case = Case {
                target,
                mode: mode.display.to_owned(),
                size,
                pairs: Vec::new(),
            };
            for pair in 0..opts.pairs {
                let mut a = rmq_command(bins.rmq, opts, mode, namesrv, topic, size, count);
                let (ra, _) = run::measure(&mut a, server_pid)?;
                let mut b = peer_command(bins.peer, opts, mode, namesrv, topic, size, count);
                let (rb, _) = run::measure(&mut b, server_pid)?;
                println!(
                    "bench: {target} {} {size} B pair {}: rmq {:.0} msgs/s {:.2} CPU s/M {:.1} MiB {:.1} s | peer {:.0} msgs/s {:.2} CPU s/M {:.1} MiB {:.1} s",
                    mode.display,
                    pair + 1,
                    ra.msgs_per_s,
                    ra.cpu_per_million(),
                    ra.max_rss as f64 / 1048576.0,
                    ra.wall_s,
                    rb.msgs_per_s,
                    rb.cpu_per_million(),
                    rb.max_rss as f64 / 1048576.0,
                    rb.wall_s,
                );
                case.pairs.push((ra, rb));
            }
            cases.push(case);
        }
    }
    Ok(cases)
}

fn common_env(cmd: &mut Command) {
    // Same (absent) log settings for both clients; neither installs a subscriber.
    cmd.env_remove("RUST_LOG");
}

fn rmq_command(
    bin: &Path,
    o: &Options,
    m: &ModeSpec,
    namesrv: &str,
    topic: &str,
    size: usize,
    count: u64,
) -> Command {
    let mut cmd = Command::new(bin);
    common_env(&mut cmd);
    cmd.args([
        "--namesrv",
        namesrv,
        "--header",
        &o.header,
        "--timeout",
        "3s",
        "bench",
        "--topic",
        topic,
    ])
    .args([
        "--mode",
        m.mode,
        "--concurrency",
        &m.concurrency.to_string(),
    ])
    .args(["--size", &size.to_string(), "--count", &count.to_string()])
    .args([
        "--batch-size",
        &BATCH_SIZE.to_string(),
        "--compress",
        "none",
        "--json",
    ]);
    cmd
}

fn peer_command(
    bin: &Path,
    o: &Options,
    m: &ModeSpec,
    namesrv: &str,
    topic: &str,
    size: usize,
    count: u64,
) -> Command {
    let mut cmd = Command::new(bin);
    common_env(&mut cmd);
    cmd.env("org.apache.rocketmq.client.sendSmartMsg", "true")
        .env(
            "ROCKETMQ_SERIALIZE_TYPE",
            if o.header == "binary" {
                "ROCKETMQ"
            } else {
                "JSON"
            },
        )
        .args([
            "--namesrv",
            namesrv,
            "--header",
            &o.header,
            "--timeout-ms",
            "3000",
            "--topic",
            topic,
        ])
        .args([
            "--mode",
            m.mode,
            "--concurrency",
            &m.concurrency.to_string(),
        ])
        .args(["--size", &size.to_string(), "--count", &count.to_string()])
        .args(["--batch-size", &BATCH_SIZE.to_string(), "--json"]);
    cmd
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine_description() -> String {
    let cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
    format!(
        "{} × {}, {} GiB RAM, Linux {}, {}; load average before the run: {}",
        sh("nproc"),
        cpu.trim(),
        sh("free -g | awk '/Mem:/ {print $2}'"),
        sh("uname -r"),
        sh("rustc --version"),
        sh("cut -d' ' -f1-3 /proc/loadavg"),
    )
}

/// Part 4's targets, checked on the medians of the per-pair ratios.
fn targets(cases: &[Case]) -> String {
    let mut s = String::new();
    for c in cases {
        let t = c.ratio(|x| x.msgs_per_s);
        let cpu = c.ratio(Sample::cpu_per_million);
        let line = if c.target == "null" && c.size != 128 && !c.mode.contains(", 1 in flight") {
            // Part 4 sets the targets on 128 B bodies; other sizes are for reference.
            format!(
                "- null · {} {} B (the targets are set for 128 B bodies; for reference): throughput {t:.2}×, CPU per message {cpu:.2}×\n",
                c.mode, c.size
            )
        } else if c.target == "null" && !c.mode.contains(", 1 in flight") {
            let ok = t >= 2.0 && cpu <= 0.5;
            format!(
                "- null · {} {} B: throughput {t:.2}× (target ≥ 2×), CPU per message {cpu:.2}× (target ≤ 0.5×): **{}**\n",
                c.mode,
                c.size,
                if ok { "holds" } else { "does not hold" }
            )
        } else if c.target == "real" {
            format!(
                "- real · {} {} B: throughput {t:.2}× (target ≥ 1×): **{}**\n",
                c.mode,
                c.size,
                if t >= 1.0 { "holds" } else { "does not hold" }
            )
        } else {
            format!(
                "- null · {} {} B (no target; latency-bound): throughput {t:.2}×, CPU per message {cpu:.2}×\n",
                c.mode, c.size
            )
        };
        s.push_str(&line);
    }
    s
}

fn render(o: &Options, cases: &[Case], machine: &str, secs: f64) -> String {
    let commit = sh("git rev-parse --short HEAD");
    let dirty = if sh("git status --porcelain --untracked-files=no").is_empty() {
        ""
    } else {
        " + uncommitted changes"
    };
    let modes: Vec<&str> = o.modes.iter().map(|m| m.key).collect();
    let sizes: Vec<String> = o.sizes.iter().map(usize::to_string).collect();
    let target = match (o.null, o.real) {
        (true, true) => "both",
        (true, false) => "null",
        _ => "real",
    };
    format!(
        "## rmq vs rocketmq-client-rust 1.0.0 (`cargo xtask bench compare`)

Generated by `cargo xtask bench compare --pairs {pairs} --messages {messages} --modes {modes} --sizes {sizes} --target {target} --header {header}`{namesrv}
({secs:.0} s); do not edit by hand, rerun it.

- Commit: `{commit}`{dirty}. Machine: {machine}.
- Each case runs `rmq bench` then the peer harness (`benches/peer`, rocketmq-client-rust
  =1.0.0), {pairs} pairs, alternately, each run a fresh process with `--count` messages
  (sync with 1 in flight: a quarter). Both: SEND_MESSAGE_V2 (`org.apache.rocketmq.client.sendSmartMsg=true`
  for the peer), {header} headers (`ROCKETMQ_SERIALIZE_TYPE`), compression off, 2 retries,
  3 s send timeout, the same in-flight bound (64 sync workers / a 64-permit async window /
  64 batch workers of {batch}), one multi-thread Tokio runtime with one worker per CPU, no
  tracing subscriber, no `RUST_LOG`.
- msgs/s and latency (p50/p99, µs, HdrHistogram, per request) are each client's own report.
  CPU is user + system seconds of the whole process from `wait4(2)` (start-up and shutdown
  included), per million acked messages; peak RSS is `ru_maxrss`. Ratios are rmq ÷ peer within
  each pair; the table gives the medians over pairs (of the values and of the ratios).
- Null target: `rmq-null-broker` (rmq-testkit), one thread, answers at once; its CPU per run is
  in the per-pair table. Real target: rocketmq-rust 1.0.0 name server and two brokers on the same
  2 cores as the client, so it measures the broker as much as the client.

{summary}
![rmq ÷ peer ratios](bench-compare.svg)

Part 4 targets (issue #9), on the median per-pair ratios above:

{targets}
<details><summary>Every pair</summary>

{pairs_table}
</details>
",
        pairs = o.pairs,
        messages = o.messages,
        modes = modes.join(","),
        sizes = sizes.join(","),
        header = o.header,
        namesrv = o.namesrv.as_deref().map(|n| format!(" --namesrv {n}")).unwrap_or_default(),
        batch = BATCH_SIZE,
        summary = report::summary_table(cases),
        targets = targets(cases),
        pairs_table = report::pairs_table(cases),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_the_short_run_options() {
        let o = parse_args(args("compare --pairs 3 --messages 5000 --modes sync64,batch --sizes 128 --target null --no-build")).unwrap();
        assert_eq!(
            (o.pairs, o.messages, o.null, o.real, o.build),
            (3, 5000, true, false, false)
        );
        assert_eq!(
            o.modes.iter().map(|m| m.key).collect::<Vec<_>>(),
            ["sync64", "batch"]
        );
        assert_eq!(o.sizes, [128]);
        let o = parse_args(args("compare")).unwrap();
        assert_eq!(
            (o.pairs, o.modes.len(), o.sizes.len(), o.null && o.real),
            (5, 4, 2, true)
        );
        for bad in [
            "",
            "run",
            "compare --modes oneway",
            "compare --pairs 0",
            "compare --target x",
            "compare --sizes 0",
            "compare --header yaml",
        ] {
            assert!(parse_args(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_clients_get_the_same_workload() {
        let o = parse_args(args("compare --header json")).unwrap();
        let m = &MODES[3];
        let a = rmq_command(Path::new("rmq"), &o, m, "n:1", "T", 4096, 100);
        let b = peer_command(Path::new("peer"), &o, m, "n:1", "T", 4096, 100);
        let shown_a = util::display(&a);
        let shown_b = util::display(&b);
        for part in [
            "--mode batch",
            "--concurrency 64",
            "--size 4096",
            "--count 100",
            "--batch-size 16",
            "--header json",
        ] {
            assert!(
                shown_a.contains(part) && shown_b.contains(part),
                "{part}: {shown_a} / {shown_b}"
            );
        }
        assert!(shown_b.contains("ROCKETMQ_SERIALIZE_TYPE=JSON"));
        assert!(shown_b.contains("org.apache.rocketmq.client.sendSmartMsg=true"));
    }
}
