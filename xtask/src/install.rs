//! Installs pinned cargo tools into the xtask's cache folder (outside the
//! repository), reusing an earlier install of the same version.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::util;

/// Makes sure `krate` at exactly `version` is installed under the cache folder
/// and returns the folder holding its binaries (to put on `PATH`).
///
/// Runs `cargo install --locked <krate>@<version> --root <cache> --target-dir
/// <cache>/build` when that version is not installed yet, retrying once on
/// failure (a network hiccup should not fail a whole run).
pub fn ensure(krate: &str, version: &str) -> Result<PathBuf> {
    let root = util::cache_dir()?;
    let bin_dir = root.join("bin");
    if is_installed(&root, krate, version) && bin_dir.is_dir() {
        println!("{krate} {version}: already installed in {}", root.display());
        return Ok(bin_dir);
    }
    std::fs::create_dir_all(&root)
        .with_context(|| format!("creating the cache folder {}", root.display()))?;
    let install = || {
        let mut cmd = util::cargo();
        cmd.current_dir(&root)
            .args(["install", "--locked", &format!("{krate}@{version}")])
            .arg("--root")
            .arg(&root)
            .arg("--target-dir")
            .arg(root.join("build"));
        util::run(&mut cmd)
    };
    if let Err(first) = install() {
        println!("installing {krate} {version} failed ({first:#}); retrying once");
        install().with_context(|| format!("installing {krate} {version} (second attempt)"))?;
    }
    Ok(bin_dir)
}

/// Whether cargo's install record under `root` lists `krate` at `version`.
fn is_installed(root: &Path, krate: &str, version: &str) -> bool {
    std::fs::read_to_string(root.join(".crates.toml"))
        .is_ok_and(|record| records_version(&record, krate, version))
}

/// Whether a `.crates.toml` install record names `krate` at `version`
/// (its keys look like `"cargo-fuzz 0.13.2 (registry+https://...)"`).
fn records_version(record: &str, krate: &str, version: &str) -> bool {
    record.contains(&format!("\"{krate} {version} ("))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_record_matches_exact_version() {
        let record = "[v1]\n\"cargo-fuzz 0.13.2 (registry+https://example.invalid/index)\" = [\"cargo-fuzz\"]\n";
        assert!(records_version(record, "cargo-fuzz", "0.13.2"));
        assert!(!records_version(record, "cargo-fuzz", "0.13.1"));
        assert!(!records_version(record, "fuzz", "0.13.2"));
    }
}
