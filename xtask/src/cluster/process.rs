//! Spawning, identifying and signalling the node processes.
//!
//! A recorded PID is only ever signalled after `/proc/<pid>/cmdline` shows that it is still
//! the process we started: argv\[0\] has the binary's file name and the arguments contain the
//! node's own config path. A PID that was recycled by an unrelated process is left alone.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::state::NodeState;

/// Children spawned by this xtask process, kept so that the ones that exit are reaped (a
/// zombie would otherwise look like a live PID to `kill(pid, 0)`).
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Environment variables that would change how the nodes behave and must not leak in from
/// the caller's environment.
const SCRUBBED_ENV: &[&str] = &[
    "ROCKETMQ_SERIALIZE_TYPE",
    "rocketmq.serialize.type",
    "NAMESRV_ADDR",
    "rocketmq.home.dir",
    "ROCKETMQ_SECURITY_PROFILE",
    "ROCKETMQ_HEALTH_BIND_ADDR",
    "ROCKETMQ_METRICS_ENABLED",
    "ROCKETMQ_METRICS_BIND_ADDR",
];

/// Written to the log before every start; [`log_tail_block`] shows only the lines after the
/// last one.
const START_MARKER: &str = "==== cargo xtask cluster: starting ";

/// Whether the node process should outlive this xtask (its own process group, so a Ctrl-C
/// or a hang-up of the terminal does not reach it) or stay in our process group (the test
/// stage: Ctrl-C stops the private cluster too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detach {
    Yes,
    No,
}

pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Starts `node` with `-c <config>`, `HOME` and `ROCKETMQ_HOME` of its own, stdout and stderr
/// appended to its log file. Returns the PID.
pub(crate) fn spawn(node: &NodeState, detach: Detach) -> Result<u32> {
    for dir in [&node.dir, &node.home] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let Some(store) = &node.store {
        fs::create_dir_all(store).with_context(|| format!("creating {}", store.display()))?;
        super::disk::check_store_fs(&node.name, store)?;
    }
    if let Some(parent) = node.log.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&node.log)
        .with_context(|| format!("opening log file {}", node.log.display()))?;
    writeln!(
        log,
        "{START_MARKER}{} at unix ms {} ====",
        node.name,
        now_unix_ms()
    )
    .with_context(|| format!("writing {}", node.log.display()))?;
    let stdout = log
        .try_clone()
        .with_context(|| format!("duplicating the handle of {}", node.log.display()))?;

    let mut cmd = Command::new(&node.binary);
    cmd.arg("-c")
        .arg(&node.config)
        .current_dir(&node.dir)
        .env("HOME", &node.home)
        .env("ROCKETMQ_HOME", &node.dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    if detach == Detach::Yes {
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {} ({})", node.name, node.binary.display()))?;
    let pid = child.id();
    if let Ok(mut children) = CHILDREN.lock() {
        children.push(child);
    }
    Ok(pid)
}

/// Reaps children of this process that have exited.
fn reap() {
    if let Ok(mut children) = CHILDREN.lock() {
        children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
}

/// The one-letter state of `/proc/<pid>/stat` (R, S, D, T, t, Z, X, ...), if the PID exists.
pub(crate) fn proc_state(pid: u32) -> Option<char> {
    reap();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ..." - comm may contain spaces and parentheses; the state follows the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Whether `pid` is a running (or stopped) process, i.e. exists and is not a zombie.
pub(crate) fn pid_alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// Whether `pid` is stopped (SIGSTOP).
pub(crate) fn pid_paused(pid: u32) -> bool {
    matches!(proc_state(pid), Some('T'))
}

/// Whether `pid` is still the process we started for `node` (see the module docs).
pub(crate) fn is_ours(node: &NodeState, pid: u32) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
    let Some(argv0) = args.first() else {
        return false;
    };
    let Some(exe_name) = node.binary.file_name() else {
        return false;
    };
    let argv0_name = Path::new(OsStr::from_bytes(argv0)).file_name();
    let config = node.config.as_os_str().as_encoded_bytes();
    argv0_name == Some(exe_name) && args.iter().skip(1).any(|a| *a == config)
}

/// The node's recorded PID if that process is alive and ours.
pub(crate) fn live_pid(node: &NodeState) -> Option<u32> {
    node.pid.filter(|&pid| pid_alive(pid) && is_ours(node, pid))
}

/// Sends `sig` to `pid`. Refuses PIDs below 2 (0 and negative values address process groups).
pub(crate) fn send_signal(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p >= 2)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing to signal pid {pid}"),
            )
        })?;
    // SAFETY: kill(2) takes two integers and has no memory-safety preconditions; pid >= 2
    // addresses exactly one process.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `sig` to the node's process after checking it is ours.
pub(crate) fn signal_node(node: &NodeState, sig: libc::c_int, what: &str) -> Result<u32> {
    let Some(pid) = live_pid(node) else {
        bail!(
            "{} is not running (recorded pid: {})",
            node.name,
            node.pid
                .map_or_else(|| "none".to_owned(), |p| p.to_string())
        );
    };
    send_signal(pid, sig)
        .with_context(|| format!("sending {what} to {} (pid {pid})", node.name))?;
    Ok(pid)
}

/// Waits until the node's process is gone (or no longer ours); `false` on timeout.
pub(crate) fn wait_gone(node: &NodeState, pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !(pid_alive(pid) && is_ours(node, pid)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// What [`stop_all`] did to one node.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// No live process of ours was recorded.
    NotRunning,
    /// Exited after SIGTERM.
    Terminated(u32),
    /// Did not exit within the grace period; SIGKILLed.
    Killed(u32),
}

/// SIGTERMs every node's process (resuming it first if paused), waits up to `grace` for all
/// of them, then SIGKILLs the ones still running. Nodes are handled together, so pass the
/// brokers and the name server in separate calls to stop brokers first.
pub(crate) fn stop_all(nodes: &[&NodeState], grace: Duration) -> Vec<(String, Result<Stopped>)> {
    let mut pending = Vec::new();
    let mut results = Vec::new();
    for node in nodes {
        match live_pid(node) {
            None => results.push((node.name.clone(), Ok(Stopped::NotRunning))),
            Some(pid) => {
                let sent =
                    send_signal(pid, libc::SIGTERM).and_then(|()| send_signal(pid, libc::SIGCONT));
                match sent {
                    Ok(()) => pending.push((*node, pid)),
                    // it exited between the check and the signal
                    Err(_) if !pid_alive(pid) => {
                        results.push((node.name.clone(), Ok(Stopped::Terminated(pid))));
                    }
                    Err(e) => results.push((
                        node.name.clone(),
                        Err(anyhow::Error::new(e)
                            .context(format!("SIGTERM to {} (pid {pid})", node.name))),
                    )),
                }
            }
        }
    }
    let deadline = Instant::now() + grace;
    for (node, pid) in pending {
        let left = deadline.saturating_duration_since(Instant::now());
        if wait_gone(node, pid, left) {
            results.push((node.name.clone(), Ok(Stopped::Terminated(pid))));
            continue;
        }
        let killed = send_signal(pid, libc::SIGKILL)
            .with_context(|| format!("SIGKILL to {} (pid {pid})", node.name))
            .and_then(|()| {
                if wait_gone(node, pid, Duration::from_secs(5)) {
                    Ok(Stopped::Killed(pid))
                } else {
                    bail!("{} (pid {pid}) is still alive 5 s after SIGKILL", node.name)
                }
            });
        results.push((node.name.clone(), killed));
    }
    results
}

/// Waits until something accepts TCP connections on `addr`, failing early if the node's
/// process exits.
pub(crate) fn wait_port(node: &NodeState, pid: u32, addr: &str, timeout: Duration) -> Result<()> {
    let sock: SocketAddr = addr
        .parse()
        .with_context(|| format!("bad address {addr}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&sock, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if !pid_alive(pid) {
            bail!(
                "{} (pid {pid}) exited during startup{}",
                node.name,
                log_tail_block(&node.log)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "{} (pid {pid}) did not accept connections on {addr} within {} s{}",
                node.name,
                timeout.as_secs(),
                log_tail_block(&node.log)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The lines a log file got since the node's latest start (at most its last 64 KiB), ANSI
/// colour codes stripped.
fn latest_log_section(path: &Path) -> io::Result<Vec<String>> {
    const MAX: u64 = 64 * 1024;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(MAX)))?;
    let mut raw = Vec::new();
    file.read_to_end(&mut raw)?;
    let text = strip_ansi(&String::from_utf8_lossy(&raw));
    let all: Vec<&str> = text.lines().collect();
    let start = all
        .iter()
        .rposition(|l| l.starts_with(START_MARKER))
        .unwrap_or(0);
    Ok(all[start..].iter().map(|l| (*l).to_owned()).collect())
}

/// A block for error messages: the node's WARN/ERROR lines since its latest start (the
/// cause is often far above the shutdown noise at the end), then the last lines.
pub(crate) fn log_tail_block(path: &Path) -> String {
    const TAIL: usize = 30;
    const PROBLEMS: usize = 10;
    let lines = match latest_log_section(path) {
        Ok(lines) => lines,
        Err(e) => return format!("\n(could not read {}: {e})", path.display()),
    };
    let tail_start = lines.len().saturating_sub(TAIL);
    let problems: Vec<&str> = lines[..tail_start]
        .iter()
        .filter(|l| l.contains(" ERROR ") || l.starts_with("ERROR") || l.contains(" WARN "))
        .filter(|l| !l.contains("file not exist"))
        .map(String::as_str)
        .collect();
    let mut out = String::new();
    if !problems.is_empty() {
        out.push_str(&format!(
            "\n--- earlier warnings and errors in {} ---\n{}",
            path.display(),
            problems[problems.len().saturating_sub(PROBLEMS)..].join("\n")
        ));
    }
    out.push_str(&format!(
        "\n--- last lines of {} ---\n{}\n--- end of log ---",
        path.display(),
        lines[tail_start..].join("\n")
    ));
    out
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // parameters and intermediates, then one final byte in '@'..='~'
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m x"),
            "2026  INFO x"
        );
    }

    #[test]
    fn own_process_is_alive_and_pid_1_is_refused() {
        assert!(pid_alive(std::process::id()));
        assert!(send_signal(1, 0).is_err());
        assert!(send_signal(0, 0).is_err());
    }
}
