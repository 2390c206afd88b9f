//! Helpers shared by the xtask commands: the workspace root, the cache folder,
//! running child processes, and the error type for bad command-line arguments.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The workspace root: the parent of xtask's own manifest folder.
pub fn workspace_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// The cache folder for tools the xtask installs (kept outside the repository):
/// `$RMQ_CACHE_DIR`, else `$XDG_CACHE_HOME/rmq`, else `~/.cache/rmq`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = non_empty_env("RMQ_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty_env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("rmq"));
    }
    match non_empty_env("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("rmq")),
        None => bail!("cannot choose a cache folder: set RMQ_CACHE_DIR, XDG_CACHE_HOME or HOME"),
    }
}

/// The value of an environment variable, or `None` when it is unset or empty.
fn non_empty_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// A `cargo` command using the same cargo that runs the xtask (`$CARGO`), so the
/// pinned toolchain is used for every stage.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// A shell-like rendering of a command for log lines: `KEY=value program args...`.
pub fn display(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), quote(v))))
        .collect();
    // Show `cargo`, not the full path of the toolchain's binary.
    let program = Path::new(cmd.get_program());
    let program = match program.file_name() {
        Some(name) if name == "cargo" => "cargo".to_string(),
        _ => program.display().to_string(),
    };
    parts.push(program);
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

/// Quotes one argument for display when it contains spaces or is empty.
fn quote(arg: &std::ffi::OsStr) -> String {
    let arg = arg.to_string_lossy();
    if arg.is_empty() || arg.contains(char::is_whitespace) {
        format!("\"{arg}\"")
    } else {
        arg.into_owned()
    }
}

/// Prints the command, runs it with inherited stdin/stdout/stderr, and fails
/// when it cannot be started or exits unsuccessfully.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Formats a duration for the summary table: `0.4s`, `12.3s`, `4m 05s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

/// A bad command line: `main` prints the message and the command's usage and exits with 2.
#[derive(Debug)]
pub struct UsageError {
    /// What was wrong with the arguments.
    pub message: String,
    /// The usage text of the command that rejected them.
    pub usage: &'static str,
}

impl UsageError {
    /// A usage error for the command whose usage text is `usage`.
    pub fn new(usage: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            usage,
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short_and_readable() {
        assert_eq!(format_duration(Duration::from_millis(420)), "0.4s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m 05s");
    }

    #[test]
    fn display_shows_env_and_quotes_spaces() {
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--format", "{p}"]);
        assert_eq!(
            display(&cmd),
            "RUSTDOCFLAGS=\"-D warnings\" cargo doc --format {p}"
        );
    }
}
