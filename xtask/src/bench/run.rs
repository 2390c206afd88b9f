//! Running one benchmark process and measuring it from outside: wall time, the
//! `rmq.bench/1` JSON it prints, and its CPU time and peak RSS from `wait4(2)`'s
//! rusage, so both clients are measured the same way.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// What one client run produced.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Acked messages per second (the client's own figure).
    pub msgs_per_s: f64,
    /// Latency percentiles, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Messages acked.
    pub acked: u64,
    /// Messages failed.
    pub failed: u64,
    /// user + system CPU seconds of the whole process (start-up and shutdown included).
    pub cpu_s: f64,
    /// Peak resident set, bytes.
    pub max_rss: u64,
    /// Wall time of the process.
    pub wall_s: f64,
    /// CPU seconds the null broker used during the run (`None` on a real cluster).
    pub server_cpu_s: Option<f64>,
}

impl Sample {
    /// CPU seconds per million acked messages.
    pub fn cpu_per_million(&self) -> f64 {
        if self.acked == 0 {
            f64::NAN
        } else {
            self.cpu_s / self.acked as f64 * 1e6
        }
    }
}

/// Runs `cmd` to completion, measuring it. Fails when it prints no JSON document or
/// exits with neither 0 nor 1 (1: some sends failed).
pub fn measure(cmd: &mut Command, server_pid: Option<u32>) -> Result<(Sample, Value)> {
    let shown = crate::util::display(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server_before = server_pid.and_then(proc_cpu_s);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    let err_pipe = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = err_pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)
            .with_context(|| format!("reading the output of `{shown}`"))?;
    }
    let (status, usage) = wait4(&child)?;
    let wall = started.elapsed();
    if let Ok(s) = err_reader.join() {
        stderr = s;
    }
    let server_cpu_s = match (server_before, server_pid.and_then(proc_cpu_s)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let doc: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| {
            format!("`{shown}` printed no JSON document (exit status {status}); stderr:\n{stderr}")
        })?;
    // 1: the run completed but some sends failed (counted in the sample).
    if status != 0 && status != 1 {
        bail!("`{shown}` exited with status {status}: {doc}\nstderr:\n{stderr}");
    }
    let num = |k: &str| doc.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let int = |k: &str| doc.get(k).and_then(Value::as_u64).unwrap_or(0);
    let sample = Sample {
        msgs_per_s: num("msgs_per_s"),
        p50_us: num("p50_us"),
        p99_us: num("p99_us"),
        acked: int("acked"),
        failed: int("failed"),
        cpu_s: usage.0,
        max_rss: usage.1,
        wall_s: wall.as_secs_f64(),
        server_cpu_s,
    };
    Ok((sample, doc))
}

/// Reaps `child` with `wait4`: (exit code or 128+signal, (CPU seconds, peak RSS bytes)).
fn wait4(child: &Child) -> Result<(i32, (f64, u64))> {
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, exclusively borrowed out-pointers, and
        // `pid` is our own unreaped child.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4 on a benchmark process");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    // Linux reports ru_maxrss in KiB.
    let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    Ok((code, (cpu, rss)))
}

/// user + system CPU seconds of a live process, from `/proc/<pid>/stat`.
pub fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks / hz as f64)
}

/// The null broker, running as its own process for the whole comparison.
pub struct NullBrokerProcess {
    child: Child,
    /// The name server address it printed.
    pub addr: String,
}

impl NullBrokerProcess {
    /// Starts `bin` on a free loopback port and waits for its `listening on` line.
    pub fn start(bin: &Path) -> Result<Self> {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("could not start {}", bin.display()))?;
        let out = child.stdout.take().context("null broker stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the null broker did not start (printed {line:?})");
        };
        Ok(Self {
            addr: addr.to_owned(),
            child,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NullBrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_measured_from_outside() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo '{\"msgs_per_s\":5,\"acked\":10,\"failed\":0,\"p50_us\":1,\"p99_us\":2}'",
        ]);
        let (s, doc) = measure(&mut cmd, Some(std::process::id())).unwrap();
        assert_eq!(doc["acked"], 10);
        assert_eq!(s.acked, 10);
        assert!(s.cpu_s > 0.0, "{s:?}");
        assert!(s.max_rss > 100 * 1024, "{s:?}");
        assert!(s.server_cpu_s.is_some());
        assert!((s.cpu_per_million() - s.cpu_s * 1e5).abs() < 1e-6);
    }

    #[test]
    fn a_failing_child_is_an_error() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo '{\"failed\":1}'; exit 2"]);
        assert!(measure(&mut cmd, None).is_err());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo not json"]);
        assert!(measure(&mut cmd, None).is_err());
    }
}
