//! The `cluster` stage of `cargo xtask test`: a private cluster on free ports, every
//! `real_cluster*` test once per header type, always torn down.

use super::*;

/// `cargo` arguments that build and run the integration tests: the whole workspace but
/// xtask (it has no real-cluster tests), or only the packages named in `RMQ_IT_PACKAGES`
/// (space- or comma-separated; for iterating on one crate). Doc tests are excluded.
fn test_args() -> Vec<String> {
    let mut args: Vec<String> = vec!["test".into()];
    let packages = env::var("RMQ_IT_PACKAGES").unwrap_or_default();
    let packages: Vec<&str> = packages
        .split([' ', ','])
        .filter(|p| !p.is_empty())
        .collect();
    if packages.is_empty() {
        args.extend(["--workspace", "--exclude", "xtask"].map(String::from));
    } else {
        for p in packages {
            args.extend(["-p".to_owned(), p.to_owned()]);
        }
    }
    args.extend(["--all-features", "--tests"].map(String::from));
    args
}
/// The name filter: every test whose name contains it runs against the cluster.
const TEST_FILTER: &str = "real_cluster";

/// The header types the suite runs with (decisions.md: once with each).
const HEADERS: [&str; 2] = ["rocketmq", "json"];

/// Tears the private test cluster down when dropped (test pass, failure or panic).
struct ClusterGuard {
    state_dir: PathBuf,
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let started = Instant::now();
        // re-reads the state file: tests may have restarted nodes under new PIDs
        match down(&self.state_dir) {
            Ok(_) => eprintln!(
                "cluster: test cluster down in {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => eprintln!("cluster: tearing down the test cluster failed: {e:#}"),
        }
    }
}

/// A port plan whose ports are all free right now. Bases are taken below the Linux
/// ephemeral range (32768..) and spread by PID so that concurrent runs rarely race.
fn find_free_plan() -> Result<PortPlan> {
    const LOW: u32 = 12_000;
    const STRIDE: u32 = 30; // > BASE_SPAN: candidate plans never overlap
    const SLOTS: u32 = (32_000 - LOW) / STRIDE;
    let first = std::process::id().wrapping_mul(7919) % SLOTS;
    for i in 0..SLOTS {
        let base = LOW + ((first + i) % SLOTS) * STRIDE;
        let plan = PortPlan::from_base(u16::try_from(base)?)?;
        if config::plan_free(&plan) {
            return Ok(plan);
        }
    }
    bail!("no free port range found for the test cluster in {LOW}..32000")
}

/// Restarts nodes a test left killed, resumes paused ones, and waits until both brokers are
/// registered again.
fn ensure_healthy(state_dir: &Path) -> Result<()> {
    let state = ClusterState::load_required(state_dir)?;
    let mut restart_brokers = false;
    for name in NODES {
        let node = state.node(name)?;
        let live = process::live_pid(node);
        if let Some(pid) = live.filter(|&pid| process::pid_paused(pid)) {
            eprintln!("cluster: {name} was left paused; resuming it");
            process::send_signal(pid, libc::SIGCONT)
                .with_context(|| format!("SIGCONT to {name}"))?;
        }
        match live {
            Some(pid) if restart_brokers => {
                // a restarted name server only learns of a running broker at its next
                // 30 s heartbeat; a restarted broker registers at once
                eprintln!("cluster: restarting {name} (pid {pid}) to register it at once");
                stop_one(node)?;
                start_node(state_dir, name, Detach::No)?;
            }
            Some(_) => {}
            None => {
                eprintln!("cluster: {name} was left stopped; restarting it");
                start_node(state_dir, name, Detach::No)?;
                restart_brokers |= name == NAMESRV;
            }
        }
    }
    wait_registered(
        &ClusterState::load_required(state_dir)?,
        &[BROKER_A, BROKER_B],
    )
}

/// Stops one node (SIGTERM, then SIGKILL after the grace period).
fn stop_one(node: &NodeState) -> Result<()> {
    for (name, result) in process::stop_all(&[node], STOP_GRACE) {
        result.with_context(|| format!("stopping {name}"))?;
    }
    Ok(())
}

/// The `cluster` stage of `cargo xtask test`: a private cluster on free ports with its state
/// in `<root>/target/rmq-it-cluster`, the real-cluster integration tests against it once per
/// header type, and always a teardown (also on failure or panic).
///
/// **Which tests run:** `cargo test --workspace --exclude xtask --all-features --tests --
/// real_cluster` (built once with `--no-run` before the cluster starts), i.e. every test
/// whose *name* contains `real_cluster`. A test's name is its path inside its test crate
/// (`module::fn`); the file name of an integration test does not count, so name the test
/// function (or a module around it) `real_cluster_*`. Their environment:
///
/// * `RMQ_IT_NAMESRV=127.0.0.1:<port>`: the name server.
/// * `RMQ_IT_REQUIRED=1`: a missing cluster fails instead of skipping.
/// * `RMQ_IT_HEADER=rocketmq` on the first run, `json` on the second.
/// * `RMQ_IT_CLUSTER_STATE=<state-dir>/cluster.json` and `RMQ_IT_XTASK=<this xtask binary>`,
///   so that serial fault tests can run
///   `$RMQ_IT_XTASK cluster kill broker-a --state-dir <dir of RMQ_IT_CLUSTER_STATE>`
///   (or `cargo xtask cluster ...`).
///
/// Nodes a test left killed or paused are restarted/resumed before the second run.
/// `RMQ_IT_PACKAGES="rmq-protocol rmq-producer"` limits the build and run to those packages.
pub fn test_stage(workspace_root: &Path) -> Result<()> {
    let workspace_root = absolute(workspace_root)?;
    let state_dir = workspace_root.join("target").join("rmq-it-cluster");
    let bins = install::ensure_binaries()?;

    // A previous run that was interrupted (Ctrl-C, crash) may have left its cluster running:
    // it is ours (same state dir under target/), so stop it.
    if let Err(e) = down(&state_dir) {
        eprintln!("cluster: cleaning up the previous test cluster: {e:#}");
    }

    // Build the tests before starting anything: a compile error is reported once, and the
    // cluster does not sit idle through the build.
    let cargo = crate::util::cargo().get_program().to_owned();
    let build_started = Instant::now();
    eprintln!("cluster: building the tests");
    let status = Command::new(&cargo)
        .current_dir(&workspace_root)
        .args(test_args())
        .arg("--no-run")
        .status()
        .with_context(|| format!("running {} test --no-run", Path::new(&cargo).display()))?;
    if !status.success() {
        bail!("building the tests failed ({status}); the cluster was not started");
    }
    let build = build_started.elapsed();

    let plan = find_free_plan()?;
    let started = Instant::now();
    let guard = ClusterGuard {
        state_dir: state_dir.clone(),
    };
    let state = up(&state_dir, plan, &bins, Detach::No)?;
    let startup = started.elapsed();
    eprintln!(
        "cluster: test cluster up in {:.1} s: namesrv {}, brokers {} and {}",
        startup.as_secs_f64(),
        state.namesrv_addr,
        state.node(BROKER_A)?.addr,
        state.node(BROKER_B)?.addr
    );

    let xtask_exe = env::current_exe().context("finding the xtask executable")?;
    let mut failures = Vec::new();
    let mut timings = Vec::new();
    for (i, header) in HEADERS.iter().enumerate() {
        if i > 0 {
            ensure_healthy(&state_dir)?;
        }
        eprintln!("cluster: running the real_cluster tests with RMQ_IT_HEADER={header}");
        let t = Instant::now();
        let status = Command::new(&cargo)
            .current_dir(&workspace_root)
            .args(test_args())
            // Every test binary runs even after one fails: a failure must not hide the
            // rest of this header's results.
            .arg("--no-fail-fast")
            .args(["--", TEST_FILTER])
            .env("RMQ_IT_NAMESRV", &state.namesrv_addr)
            .env("RMQ_IT_REQUIRED", "1")
            .env("RMQ_IT_HEADER", header)
            .env("RMQ_IT_CLUSTER_STATE", ClusterState::path(&state_dir))
            .env("RMQ_IT_XTASK", &xtask_exe)
            .status()
            .with_context(|| format!("running {} test", Path::new(&cargo).display()))?;
        timings.push(format!(
            "{header} header {:.1} s",
            t.elapsed().as_secs_f64()
        ));
        if !status.success() {
            failures.push(format!("RMQ_IT_HEADER={header}: cargo test {status}"));
        }
    }
    drop(guard);
    eprintln!(
        "cluster: build {:.1} s; cluster startup {:.1} s; tests: {}",
        build.as_secs_f64(),
        startup.as_secs_f64(),
        timings.join(", ")
    );
    if !failures.is_empty() {
        bail!(
            "real-cluster tests failed ({}); node logs are in {}",
            failures.join("; "),
            state_dir.join("logs").display()
        );
    }
    Ok(())
}
