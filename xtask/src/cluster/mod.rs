//! `cargo xtask cluster ...`: a real RocketMQ cluster on loopback, on demand: the
//! rocketmq-rust 1.0.0 name server and two master brokers (`broker-a`, `broker-b`) of
//! cluster `RmqCluster`.
//!
//! ```text
//! cargo xtask cluster up                  [--base-port P] [--state-dir DIR]
//! cargo xtask cluster down                [--base-port P] [--state-dir DIR]
//! cargo xtask cluster status              [--base-port P] [--state-dir DIR]
//! cargo xtask cluster kill|start|pause|resume NODE   (NODE = namesrv | broker-a | broker-b)
//! ```
//!
//! * `up` finds or installs the peer binaries ([`install`]), checks that every port of the
//!   plan is free ([`config`] documents the port scheme), writes the configs, starts the name
//!   server, waits for its port, starts both brokers and waits (at most 30 s) until the name
//!   server's `GET_BROKER_CLUSTER_INFO` lists both at their addresses. It then prints the
//!   addresses. `up` is **not** idempotent: if the state directory records a live process it
//!   fails (non-zero exit) and says how to stop it. Leftover stores of a dead cluster are
//!   wiped, so every `up` starts empty. If startup fails, whatever was started is stopped and
//!   the error shows the tail of the failing node's log.
//! * `down` stops the brokers (SIGTERM, up to 10 s, then SIGKILL), then the name server, and
//!   removes the node directories (stores, homes) and the state file; configs and logs stay.
//! * `status` prints the state file ([`state`]) as JSON with `alive`/`paused` per node; it
//!   exits non-zero if there is no state file.
//! * `kill NODE` is SIGKILL (the store is kept), `start NODE` restarts a node that is not
//!   running on its existing config and store and records the new PID, `pause`/`resume` are
//!   SIGSTOP/SIGCONT.
//!
//! Every PID is checked against `/proc/<pid>/cmdline` before it is signalled
//! ([`process`]), so nothing but the processes this xtask started is ever touched.
//!
//! The state directory is `--state-dir DIR` if given, else `<cache>/cluster-<P>` with
//! `--base-port P`, else `<cache>/cluster-default` (the default ports); `<cache>` is
//! `$RMQ_CACHE_DIR`, `$XDG_CACHE_HOME/rmq` or `~/.cache/rmq`. Only `up` uses the ports of
//! `--base-port`; the other commands read them from the state file and use `--base-port`
//! only to find the default state directory. Each node's stdout and stderr go to
//! `<state-dir>/logs/<node>.log` (appended across restarts).
//!
//! The `cluster` stage of `cargo xtask test` is [`test_stage`].

mod config;
mod default;
mod disk;
mod install;
mod process;
mod stage;
mod state;
mod wire;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use config::{BROKER_A, BROKER_B, NAMESRV, NODES, NodeLayout, PortPlan};
use install::PeerBinaries;
use process::{Detach, Stopped};
use state::{ClusterState, NodeState};

pub(crate) use default::{down_default_cluster, ensure_default_cluster};
pub use stage::test_stage;

/// How long `up` and `start` wait for the brokers to appear in the name server.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node gets to open its listen port.
const PORT_TIMEOUT: Duration = Duration::from_secs(15);
/// SIGTERM grace period before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

const USAGE: &str = "\
usage: cargo xtask cluster <command> [--base-port P] [--state-dir DIR]

commands:
  up             install the peer if needed, start namesrv + broker-a + broker-b, wait until
                 both brokers are registered, print the addresses (fails if already running)
  down           stop the brokers, then the name server; remove stores and the state file
  status         print the state file as JSON, with alive/paused per node
  kill NODE      SIGKILL one node, keeping its store
  start NODE     restart a node that is not running, on its existing config and store
  pause NODE     SIGSTOP one node
  resume NODE    SIGCONT one node
  NODE is namesrv, broker-a or broker-b

options:
  --base-port P  (up) derive every port from P: namesrv P; broker-a P+11 (fast P+9, HA P+12);
                 broker-b P+21 (fast P+19, HA P+22). Default: 9876; 10911/10909/10912;
                 10921/10919/10922. Also selects the default state dir <cache>/cluster-P.
  --state-dir D  where configs, logs, stores and cluster.json live
                 (default <cache>/cluster-default, or <cache>/cluster-P with --base-port P;
                 <cache> = $RMQ_CACHE_DIR | $XDG_CACHE_HOME/rmq | ~/.cache/rmq)

environment:
  RMQ_PEER_BIN=DIR  use DIR/rocketmq-namesrv-rust and DIR/rocketmq-broker-rust instead of
                    installing rocketmq-namesrv/rocketmq-broker 1.0.0 into <cache>/peer-1.0.0";

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Up,
    Down,
    Status,
    Kill(String),
    Start(String),
    Pause(String),
    Resume(String),
    Help,
}

#[derive(Debug)]
struct Options {
    action: Action,
    base_port: Option<u16>,
    state_dir: Option<PathBuf>,
}

/// A bad command line (`main` prints it with [`USAGE`] and exits with 2).
fn usage(message: String) -> anyhow::Error {
    crate::util::UsageError::new(USAGE, message).into()
}

fn parse_args(args: Vec<String>) -> Result<Options> {
    let mut positional = Vec::new();
    let mut base_port = None;
    let mut state_dir = None;
    let mut help = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--base-port" | "--state-dir" => {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| usage(format!("{flag} needs a value")))?,
                };
                if flag == "--base-port" {
                    let port: u16 = value
                        .parse()
                        .map_err(|_| usage(format!("--base-port {value}: not a port number")))?;
                    PortPlan::from_base(port).map_err(|e| usage(e.to_string()))?;
                    base_port = Some(port);
                } else {
                    state_dir = Some(PathBuf::from(value));
                }
            }
            "-h" | "--help" => help = true,
            f if f.starts_with('-') => return Err(usage(format!("unknown option {f}"))),
            _ => positional.push(arg),
        }
    }
    if help {
        return Ok(Options {
            action: Action::Help,
            base_port,
            state_dir,
        });
    }
    let mut positional = positional.into_iter();
    let command = positional.next().unwrap_or_else(|| "help".to_owned());
    let takes_node = matches!(command.as_str(), "kill" | "start" | "pause" | "resume");
    let node = if takes_node { positional.next() } else { None };
    if let Some(extra) = positional.next() {
        return Err(usage(format!("unexpected argument `{extra}`")));
    }
    let action = match command.as_str() {
        "help" => Action::Help,
        "up" => Action::Up,
        "down" => Action::Down,
        "status" => Action::Status,
        "kill" | "start" | "pause" | "resume" => {
            let node = node.ok_or_else(|| {
                usage(format!(
                    "`{command}` needs a NODE (namesrv, broker-a, broker-b)"
                ))
            })?;
            if !NODES.contains(&node.as_str()) {
                return Err(usage(format!(
                    "unknown node `{node}`: expected one of namesrv, broker-a, broker-b"
                )));
            }
            match command.as_str() {
                "kill" => Action::Kill(node),
                "start" => Action::Start(node),
                "pause" => Action::Pause(node),
                _ => Action::Resume(node),
            }
        }
        other => return Err(usage(format!("unknown cluster command `{other}`"))),
    };
    Ok(Options {
        action,
        base_port,
        state_dir,
    })
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(env::current_dir()
            .context("reading the current directory")?
            .join(path))
    }
}

fn resolve_state_dir(opts: &Options) -> Result<PathBuf> {
    match (&opts.state_dir, opts.base_port) {
        (Some(dir), _) => absolute(dir),
        (None, Some(port)) => absolute(&crate::util::cache_dir()?.join(format!("cluster-{port}"))),
        (None, None) => absolute(&crate::util::cache_dir()?.join("cluster-default")),
    }
}

/// Entry point of `cargo xtask cluster <args>`.
pub fn cli(args: Vec<String>) -> Result<()> {
    let opts = parse_args(args)?;
    if opts.action == Action::Help {
        println!("{USAGE}");
        return Ok(());
    }
    let state_dir = resolve_state_dir(&opts)?;
    match &opts.action {
        Action::Help => {}
        Action::Up => {
            let plan = match opts.base_port {
                Some(p) => PortPlan::from_base(p)?,
                None => PortPlan::defaults(),
            };
            let bins = install::ensure_binaries()?;
            let started = Instant::now();
            let state = up(&state_dir, plan, &bins, Detach::Yes)?;
            print_summary(&state);
            eprintln!("cluster: up in {:.1} s", started.elapsed().as_secs_f64());
        }
        Action::Down => {
            let started = Instant::now();
            if down(&state_dir)? {
                eprintln!("cluster: down in {:.1} s", started.elapsed().as_secs_f64());
            }
        }
        Action::Status => {
            let state = ClusterState::load_required(&state_dir)?;
            println!("{}", serde_json::to_string_pretty(&status_json(&state)?)?);
        }
        Action::Kill(node) => kill_node(&state_dir, node)?,
        Action::Start(node) => {
            let started = Instant::now();
            start_node(&state_dir, node, Detach::Yes)?;
            eprintln!(
                "cluster: {node} started in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Action::Pause(node) => {
            let state = ClusterState::load_required(&state_dir)?;
            let pid = process::signal_node(state.node(node)?, libc::SIGSTOP, "SIGSTOP")?;
            eprintln!("cluster: paused {node} (pid {pid})");
        }
        Action::Resume(node) => {
            let state = ClusterState::load_required(&state_dir)?;
            let pid = process::signal_node(state.node(node)?, libc::SIGCONT, "SIGCONT")?;
            eprintln!("cluster: resumed {node} (pid {pid})");
        }
    }
    Ok(())
}

fn print_summary(state: &ClusterState) {
    println!(
        "cluster {} is up (state: {})",
        state.cluster_name,
        ClusterState::path(&state.state_dir).display()
    );
    for node in &state.nodes {
        let pid = node.pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
        println!(
            "  {:<9} {:<16} pid {:<8} log {}",
            node.name,
            node.addr,
            pid,
            node.log.display()
        );
    }
    println!("RMQ_IT_NAMESRV={}", state.namesrv_addr);
}

/// The state as JSON with `alive` and `paused` added to every node.
fn status_json(state: &ClusterState) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(state)?;
    if let Some(nodes) = value.get_mut("nodes").and_then(|n| n.as_array_mut()) {
        for (json, node) in nodes.iter_mut().zip(&state.nodes) {
            let live = process::live_pid(node);
            if let Some(obj) = json.as_object_mut() {
                obj.insert("alive".into(), live.is_some().into());
                obj.insert(
                    "paused".into(),
                    live.is_some_and(process::pid_paused).into(),
                );
            }
        }
    }
    Ok(value)
}

/// The node records of a fresh cluster (no PIDs yet).
fn plan_nodes(
    state_dir: &Path,
    store_root: Option<&Path>,
    plan: &PortPlan,
    bins: &PeerBinaries,
) -> Vec<NodeState> {
    NODES
        .iter()
        .map(|&name| {
            let layout = NodeLayout::new(state_dir, name, store_root);
            let (binary, port) = match plan.broker(name) {
                Some(b) => (bins.broker.clone(), b.listen),
                None => (bins.namesrv.clone(), plan.namesrv),
            };
            NodeState {
                name: name.to_owned(),
                binary,
                config: layout.config,
                dir: layout.dir,
                home: layout.home,
                store: layout.store,
                log: layout.log,
                addr: format!("127.0.0.1:{port}"),
                pid: None,
                started_unix_ms: None,
            }
        })
        .collect()
}

/// Starts a fresh cluster in `state_dir`. On failure, stops whatever it started.
fn up(
    state_dir: &Path,
    plan: PortPlan,
    bins: &PeerBinaries,
    detach: Detach,
) -> Result<ClusterState> {
    match ClusterState::load(state_dir) {
        Ok(Some(old)) => {
            let live: Vec<String> = old
                .nodes
                .iter()
                .filter_map(|n| process::live_pid(n).map(|pid| format!("{} pid {pid}", n.name)))
                .collect();
            if !live.is_empty() {
                bail!(
                    "a cluster is already running from {} (name server {}; {}). Stop it first with \
                     `cargo xtask cluster down --state-dir {}`, or use another --state-dir/--base-port",
                    state_dir.display(),
                    old.namesrv_addr,
                    live.join(", "),
                    state_dir.display()
                );
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("cluster: ignoring an unreadable old state file: {e:#}"),
    }
    config::check_ports_free(&plan.all())?;

    fs::create_dir_all(state_dir.join("logs"))
        .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
    let store_root = disk::store_root(state_dir);
    if let Some(root) = &store_root {
        eprintln!("cluster: broker stores under {}", root.display());
    }
    let nodes = plan_nodes(state_dir, store_root.as_deref(), &plan, bins);
    let mut state = ClusterState::new(state_dir, plan, nodes);
    for node in &state.nodes {
        // a fresh cluster: wipe stores and homes left by a cluster that died without `down`,
        // and start fresh logs
        remove_node_dirs(node)?;
        match fs::remove_file(&node.log) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", node.log.display()));
            }
            _ => {}
        }
        let layout = NodeLayout::new(state_dir, &node.name, store_root.as_deref());
        let text = if node.name == NAMESRV {
            config::namesrv_toml(&layout, &plan)?
        } else {
            config::broker_toml(&node.name, &layout, &plan)?
        };
        fs::write(&node.config, text)
            .with_context(|| format!("writing {}", node.config.display()))?;
    }
    state.save()?;

    let result = start_all(&mut state, detach);
    if let Err(e) = result {
        eprintln!("cluster: startup failed; stopping what was started");
        match stop_cluster(&state) {
            Ok(()) => {
                for node in &state.nodes {
                    let _ = remove_node_dirs(node);
                }
                let _ = fs::remove_file(ClusterState::path(state_dir));
            }
            // keep the state file so that `down` can retry
            Err(stop_error) => eprintln!("cluster: {stop_error:#}"),
        }
        return Err(e);
    }
    Ok(state)
}

fn start_all(state: &mut ClusterState, detach: Detach) -> Result<()> {
    let ns = state.node_mut(NAMESRV)?;
    let pid = launch(ns, detach)?;
    let ns = ns.clone();
    state.save()?;
    eprintln!("cluster: started namesrv (pid {pid}) on {}", ns.addr);
    process::wait_port(&ns, pid, &ns.addr, PORT_TIMEOUT)?;
    for name in [BROKER_A, BROKER_B] {
        let node = state.node_mut(name)?;
        let pid = launch(node, detach)?;
        eprintln!("cluster: started {name} (pid {pid}) on {}", node.addr);
        state.save()?;
    }
    wait_registered(state, &[BROKER_A, BROKER_B])
}

/// Spawns a node and records its PID in `node`.
fn launch(node: &mut NodeState, detach: Detach) -> Result<u32> {
    let pid = process::spawn(node, detach)?;
    node.pid = Some(pid);
    node.started_unix_ms = Some(process::now_unix_ms());
    Ok(pid)
}

/// Waits until every broker in `names` is registered at the name server under its address.
fn wait_registered(state: &ClusterState, names: &[&str]) -> Result<()> {
    let started = Instant::now();
    let deadline = started + REGISTER_TIMEOUT;
    let mut last;
    loop {
        for name in names {
            let node = state.node(name)?;
            let pid = node.pid.with_context(|| format!("{name} has no PID"))?;
            if !process::pid_alive(pid) {
                bail!(
                    "{name} (pid {pid}) exited during startup{}{}",
                    process::log_tail_block(&node.log),
                    config_check(node)
                );
            }
        }
        match wire::broker_addr_table(&state.namesrv_addr, Duration::from_secs(2)) {
            Ok(table) => {
                let missing: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|name| {
                        let want = state
                            .node(name)
                            .map(|n| n.addr.as_str())
                            .unwrap_or_default();
                        table
                            .get(*name)
                            .and_then(|addrs| addrs.get("0"))
                            .map(String::as_str)
                            != Some(want)
                    })
                    .collect();
                if missing.is_empty() {
                    eprintln!(
                        "cluster: {} registered at {} after {:.1} s",
                        names.join(" and "),
                        state.namesrv_addr,
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                last = format!(
                    "name server lists {table:?}; missing {}",
                    missing.join(", ")
                );
            }
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            let logs: String = names
                .iter()
                .filter_map(|n| state.node(n).ok())
                .map(|n| process::log_tail_block(&n.log))
                .collect();
            bail!(
                "the brokers did not register at the name server {} within {} s ({last}){logs}",
                state.namesrv_addr,
                REGISTER_TIMEOUT.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// For a broker that died at startup: the broker's own validation of its config
/// (`-m`), because a bad config only logs an opaque `core.service.failed`.
fn config_check(node: &NodeState) -> String {
    if node.name == NAMESRV {
        return String::new();
    }
    match Command::new(&node.binary)
        .arg("-m")
        .arg("-c")
        .arg(&node.config)
        .current_dir(&node.dir)
        .env("HOME", &node.home)
        .env("ROCKETMQ_HOME", &node.dir)
        .output()
    {
        Ok(out) if out.status.success() => String::new(),
        Ok(out) => format!(
            "\n--- `{} -m -c {}` (config validation) ---\n{}{}",
            node.binary.display(),
            node.config.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => String::new(),
    }
}

/// Stops the brokers, then the name server. Errors name the nodes that could not be stopped.
fn stop_cluster(state: &ClusterState) -> Result<()> {
    let brokers: Vec<&NodeState> = state.nodes.iter().filter(|n| n.name != NAMESRV).collect();
    let namesrv: Vec<&NodeState> = state.nodes.iter().filter(|n| n.name == NAMESRV).collect();
    let mut failures = Vec::new();
    for group in [brokers, namesrv] {
        for (name, result) in process::stop_all(&group, STOP_GRACE) {
            match result {
                Ok(Stopped::NotRunning) => eprintln!("cluster: {name} was not running"),
                Ok(Stopped::Terminated(pid)) => eprintln!("cluster: {name} (pid {pid}) stopped"),
                Ok(Stopped::Killed(pid)) => {
                    eprintln!(
                        "cluster: {name} (pid {pid}) ignored SIGTERM for {} s; killed",
                        STOP_GRACE.as_secs()
                    );
                }
                Err(e) => failures.push(format!("{name}: {e:#}")),
            }
        }
    }
    if !failures.is_empty() {
        bail!("could not stop every node: {}", failures.join("; "));
    }
    Ok(())
}

/// Removes a node's directory and its store; a store outside the node's directory (on a
/// tmpfs, see [`disk`]) takes its `<root>/<node>` directory and, once empty, the root along.
fn remove_node_dirs(node: &NodeState) -> Result<()> {
    remove_dir_if_exists(&node.dir)?;
    if let Some(store) = node.store.as_deref().filter(|s| !s.starts_with(&node.dir)) {
        let node_root = store.parent().unwrap_or(store);
        remove_dir_if_exists(node_root)?;
        if let Some(root) = node_root.parent() {
            // fails while the other broker's store is still there: fine
            let _ = fs::remove_dir(root);
        }
    }
    Ok(())
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// `down`: stops the cluster recorded in `state_dir`, removes stores, homes and the state
/// file. Returns `false` if there was no state file.
fn down(state_dir: &Path) -> Result<bool> {
    let Some(state) = ClusterState::load(state_dir)? else {
        eprintln!(
            "cluster: no cluster state at {}; nothing to stop",
            ClusterState::path(state_dir).display()
        );
        return Ok(false);
    };
    stop_cluster(&state)?;
    for node in &state.nodes {
        remove_node_dirs(node)?;
    }
    let path = ClusterState::path(state_dir);
    fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    eprintln!(
        "cluster: stopped; stores removed; logs kept in {}",
        state_dir.join("logs").display()
    );
    Ok(true)
}

fn kill_node(state_dir: &Path, name: &str) -> Result<()> {
    let state = ClusterState::load_required(state_dir)?;
    let node = state.node(name)?;
    let Some(pid) = process::live_pid(node) else {
        eprintln!("cluster: {name} is not running; nothing to kill");
        return Ok(());
    };
    process::send_signal(pid, libc::SIGKILL)
        .with_context(|| format!("SIGKILL to {name} (pid {pid})"))?;
    if !process::wait_gone(node, pid, Duration::from_secs(5)) {
        bail!("{name} (pid {pid}) is still alive 5 s after SIGKILL");
    }
    eprintln!(
        "cluster: killed {name} (pid {pid}); its store is kept (`cargo xtask cluster start {name}` restarts it)"
    );
    Ok(())
}

/// Restarts a node that is not running, on its existing config and store.
fn start_node(state_dir: &Path, name: &str, detach: Detach) -> Result<()> {
    let mut state = ClusterState::load_required(state_dir)?;
    if let Some(pid) = process::live_pid(state.node(name)?) {
        bail!("{name} is already running (pid {pid})");
    }
    let ports = state.ports.node_ports(name);
    config::check_ports_free(&ports)?;
    let node = state.node_mut(name)?;
    let pid = launch(node, detach)?;
    let node = node.clone();
    state.save()?;
    eprintln!("cluster: started {name} (pid {pid}) on {}", node.addr);
    process::wait_port(&node, pid, &node.addr, PORT_TIMEOUT)?;
    let namesrv_alive = process::live_pid(state.node(NAMESRV)?).is_some();
    if name != NAMESRV && namesrv_alive {
        wait_registered(&state, &[name])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_commands_and_options() {
        let o = parse_args(args("up --base-port 20000 --state-dir /tmp/x")).unwrap();
        assert_eq!(o.action, Action::Up);
        assert_eq!(o.base_port, Some(20000));
        assert_eq!(o.state_dir, Some(PathBuf::from("/tmp/x")));
        let o = parse_args(args("--state-dir=/tmp/y kill broker-a")).unwrap();
        assert_eq!(o.action, Action::Kill("broker-a".into()));
        assert_eq!(o.state_dir, Some(PathBuf::from("/tmp/y")));
        assert_eq!(parse_args(vec![]).unwrap().action, Action::Help);
        assert!(parse_args(args("kill")).is_err());
        assert!(parse_args(args("kill broker-c")).is_err());
        assert!(parse_args(args("up extra")).is_err());
        assert!(parse_args(args("up --base-port 70000")).is_err());
        assert!(parse_args(args("up --bogus")).is_err());
    }
}
