//! The `examples` stage of `cargo xtask test`: builds the example packages
//! (`rmq-examples` and the standalone example crates under `examples/`) and runs
//! each of their binaries with a time limit.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util;

/// The packages holding runnable examples.
const PACKAGES: &[&str] = &["rmq-examples", "custom-fault-strategy"];

/// How long one example may run before it is killed and counted as failed.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Builds every example binary, then runs each one; fails when any exits non-zero
/// or outlives [`TIMEOUT`]. Every example runs even after one fails.
pub fn run_all(root: &Path) -> Result<()> {
    let binaries = build(root)?;
    if binaries.is_empty() {
        bail!("{} built no binaries", PACKAGES.join(", "));
    }
    let mut failed = Vec::new();
    for binary in &binaries {
        let name = binary.file_name().map_or_else(
            || binary.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        println!("--- example {name}");
        let mut cmd = Command::new(binary);
        cmd.current_dir(root).stdin(Stdio::null());
        let started = Instant::now();
        match run_with_timeout(&mut cmd, TIMEOUT) {
            Ok(()) => println!(
                "--- example {name}: ok ({})",
                util::format_duration(started.elapsed())
            ),
            Err(e) => {
                println!("--- example {name}: FAILED: {e:#}");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} examples failed: {}",
            failed.len(),
            binaries.len(),
            failed.join(", ")
        );
    }
    println!("all {} example(s) passed", binaries.len());
    Ok(())
}

/// Builds the example binaries and returns their paths, read from cargo's JSON
/// messages (so a custom target folder is honoured). Diagnostics go to stderr as usual.
fn build(root: &Path) -> Result<Vec<PathBuf>> {
    let mut cmd = util::cargo();
    cmd.current_dir(root)
        .arg("build")
        .args(PACKAGES.iter().flat_map(|p| ["--package", p]))
        .arg("--bins")
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let shown = util::display(&cmd);
    println!("$ {shown}");
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let stdout = child
        .stdout
        .take()
        .context("cargo's stdout was not captured")?;
    let mut binaries = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.with_context(|| format!("reading the output of `{shown}`"))?;
        if line.contains(r#""reason":"compiler-artifact""#)
            && let Some(exe) = json_string_field(&line, "executable")
        {
            binaries.push(PathBuf::from(exe));
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    binaries.sort();
    binaries.dedup();
    Ok(binaries)
}

/// Runs a command with inherited output; kills it when it is still running after
/// `timeout`. Fails on a non-zero exit or on the timeout.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<()> {
    let shown = util::display(cmd);
    println!("$ {shown}");
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for `{shown}`"))?
        {
            if status.success() {
                return Ok(());
            }
            bail!("`{shown}` failed ({status})");
        }
        if started.elapsed() >= timeout {
            // Kill errors only mean it exited meanwhile; wait() reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{shown}` did not finish within {} s and was killed",
                timeout.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The string value of `"key":"..."` in one line of compact JSON (as cargo prints
/// it), with escapes decoded; `None` when the key is absent or not a string.
fn json_string_field(line: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":\"");
    let start = line.find(&needle)? + needle.len();
    let mut out = String::new();
    let mut chars = line[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other), // \" \\ \/
            },
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_path_is_read_from_cargo_json() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["bin"]},"executable":"/w/target/debug/frame_roundtrip","fresh":true}"#;
        assert_eq!(
            json_string_field(line, "executable").as_deref(),
            Some("/w/target/debug/frame_roundtrip")
        );
    }

    #[test]
    fn libraries_have_no_executable() {
        let line = r#"{"reason":"compiler-artifact","executable":null,"fresh":true}"#;
        assert_eq!(json_string_field(line, "executable"), None);
        assert_eq!(json_string_field("{}", "executable"), None);
    }

    #[test]
    fn escapes_are_decoded() {
        let line = r#"{"executable":"C:\\t\"x\"\u00e9\/y"}"#;
        assert_eq!(
            json_string_field(line, "executable").as_deref(),
            Some("C:\\t\"x\"é/y")
        );
    }

    #[test]
    fn a_child_that_outlives_the_timeout_is_killed() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let started = Instant::now();
        let err = run_with_timeout(&mut cmd, Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("killed"), "{err:#}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn exit_codes_decide_success() {
        assert!(run_with_timeout(&mut Command::new("true"), TIMEOUT).is_ok());
        assert!(run_with_timeout(&mut Command::new("false"), TIMEOUT).is_err());
    }
}
