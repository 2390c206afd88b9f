//! Finding or installing the peer binaries (`rocketmq-namesrv` and `rocketmq-broker` 1.0.0).
//!
//! * `RMQ_PEER_BIN=<dir>`: use `<dir>/rocketmq-namesrv-rust` and `<dir>/rocketmq-broker-rust`.
//! * Otherwise `<cache>/peer-1.0.0/bin/` (cache = `$RMQ_CACHE_DIR`, else `$XDG_CACHE_HOME/rmq`,
//!   else `~/.cache/rmq`). If either binary is missing there, both are installed with
//!   `cargo install --locked --root <cache>/peer-1.0.0 --target-dir <cache>/peer-1.0.0/build
//!   rocketmq-namesrv@1.0.0 rocketmq-broker@1.0.0` (about 20 minutes on 2 cores), with the
//!   output shown and appended to `<cache>/peer-1.0.0/install.log`, retried once.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The peer version the cluster runs.
pub(crate) const PEER_VERSION: &str = "1.0.0";
pub(crate) const NAMESRV_EXE: &str = "rocketmq-namesrv-rust";
pub(crate) const BROKER_EXE: &str = "rocketmq-broker-rust";

/// Paths of the two peer executables.
#[derive(Clone, Debug)]
pub(crate) struct PeerBinaries {
    pub(crate) namesrv: PathBuf,
    pub(crate) broker: PathBuf,
}

fn non_empty_env(var: &str) -> Option<PathBuf> {
    env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `<cache>/peer-1.0.0`.
pub(crate) fn peer_root() -> Result<PathBuf> {
    Ok(crate::util::cache_dir()?.join(format!("peer-{PEER_VERSION}")))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn binaries_in(dir: &Path) -> PeerBinaries {
    PeerBinaries {
        namesrv: dir.join(NAMESRV_EXE),
        broker: dir.join(BROKER_EXE),
    }
}

fn both_present(b: &PeerBinaries) -> bool {
    is_executable(&b.namesrv) && is_executable(&b.broker)
}

/// Finds the peer binaries, installing them into the cache if needed.
pub(crate) fn ensure_binaries() -> Result<PeerBinaries> {
    if let Some(dir) = non_empty_env("RMQ_PEER_BIN") {
        let bins = binaries_in(&dir);
        for exe in [&bins.namesrv, &bins.broker] {
            if !is_executable(exe) {
                bail!(
                    "RMQ_PEER_BIN={} but {} is missing or not executable (unset RMQ_PEER_BIN to \
                     install the peer into the cache)",
                    dir.display(),
                    exe.display()
                );
            }
        }
        return Ok(bins);
    }
    let root = peer_root()?;
    let bins = binaries_in(&root.join("bin"));
    if both_present(&bins) {
        return Ok(bins);
    }
    install(&root)?;
    if !both_present(&bins) {
        bail!(
            "cargo install finished but {} and {} are not both there",
            bins.namesrv.display(),
            bins.broker.display()
        );
    }
    Ok(bins)
}

/// Runs the install command, retrying once.
fn install(root: &Path) -> Result<()> {
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let log_path = root.join("install.log");
    let cargo = crate::util::cargo().get_program().to_owned();
    let args: Vec<String> = vec![
        "install".into(),
        "--locked".into(),
        "--root".into(),
        root.display().to_string(),
        "--target-dir".into(),
        root.join("build").display().to_string(),
        format!("rocketmq-namesrv@{PEER_VERSION}"),
        format!("rocketmq-broker@{PEER_VERSION}"),
    ];
    let shown = format!("{} {}", Path::new(&cargo).display(), args.join(" "));
    eprintln!(
        "cluster: the peer binaries are not in {}; installing them (about 20 min on 2 cores):\n  {shown}\n  \
         (log: {})",
        root.join("bin").display(),
        log_path.display()
    );
    let mut last_error = None;
    for attempt in 1..=2 {
        match run_logged(&cargo, &args, &log_path, attempt) {
            Ok(()) => return Ok(()),
            Err(e) => {
                eprintln!("cluster: install attempt {attempt} of 2 failed: {e:#}");
                last_error = Some(e);
            }
        }
    }
    let cause = last_error.map(|e| format!("{e:#}")).unwrap_or_default();
    bail!(
        "installing the RocketMQ peer failed twice ({cause}).\n  command: {shown}\n  log: {}\n\
         Fix the cause and rerun, or point RMQ_PEER_BIN at a directory holding {NAMESRV_EXE} and {BROKER_EXE}.",
        log_path.display()
    )
}

/// Runs `cargo args`, copying its stderr (where cargo reports progress) to our stderr and
/// appending it to `log_path`.
fn run_logged(
    cargo: &std::ffi::OsStr,
    args: &[String],
    log_path: &Path,
    attempt: u32,
) -> Result<()> {
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    writeln!(
        log,
        "==== cargo xtask cluster: install attempt {attempt}: cargo {} ====",
        args.join(" ")
    )?;
    let mut child = Command::new(cargo)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", Path::new(cargo).display()))?;
    if let Some(stderr) = child.stderr.take() {
        let mut out = std::io::stderr();
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(mut line) = line else { break };
            line.push(b'\n');
            // Progress display and log are best effort; the exit status decides.
            let _ = out.write_all(&line);
            let _ = log.write_all(&line);
        }
    }
    let status = child.wait().context("waiting for cargo install")?;
    if !status.success() {
        bail!("cargo install exited with {status}");
    }
    Ok(())
}
