//! The `layering` stage of `cargo xtask test`: every workspace crate may depend
//! (directly, normal dependencies) only on the crates its layer allows, and no
//! crate but xtask itself depends on xtask.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util;

/// Allowed direct normal dependencies of each layered crate, by crates.io name.
///
/// This table mirrors the "Dependencies" section of `shared/decisions.md`; change
/// both together. Crates listed here that are not (yet) workspace members are
/// skipped; workspace members not listed here (xtask, examples, benches) are only
/// checked for not depending on xtask.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "rmq-protocol",
        &["bytes", "serde", "serde_json", "thiserror"],
    ),
    ("rmq-fault", &["rmq-protocol"]),
    (
        "rmq-remoting",
        &[
            "rmq-protocol",
            "tokio",
            "tokio-util",
            "bytes",
            "tracing",
            "thiserror",
            "rand",
            "hmac",
            "sha1",
            "base64",
            "tokio-rustls",
            "rustls",
            "rustls-pemfile",
            "rustls-native-certs",
            "dashmap",
        ],
    ),
    (
        "rmq-route",
        &[
            "rmq-protocol",
            "rmq-remoting",
            "tokio",
            "tracing",
            "thiserror",
        ],
    ),
    (
        "rmq-producer",
        &[
            "rmq-protocol",
            "rmq-remoting",
            "rmq-route",
            "rmq-fault",
            "flate2",
            "zstd",
            "lz4_flex",
            "serde",
            "toml",
            "humantime",
            "humantime-serde",
            "tracing",
            "tokio",
            "bytes",
            "thiserror",
        ],
    ),
    // Never rmq-producer: tests that use the testkit must not see two copies of it.
    // Beyond decisions.md's list: serde_json (the strict JSON-header check the real
    // rocketmq-rust servers apply) and hmac + sha1 + base64 (an ACL verifier written
    // independently of rmq-remoting's signer); all four are already in the tree.
    (
        "rmq-testkit",
        &[
            "rmq-protocol",
            "rmq-remoting",
            "tokio",
            "bytes",
            "tracing",
            "serde_json",
            "hmac",
            "sha1",
            "base64",
        ],
    ),
    (
        "rmq-cli",
        &[
            "rmq-producer",
            "rmq-protocol",
            "rmq-remoting",
            "rmq-route",
            "clap",
            "indicatif",
            "serde",
            "serde_json",
            "hdrhistogram",
            "tokio",
            "anyhow",
            "bytes",
        ],
    ),
];

/// The one crate nothing else in the workspace may depend on.
const XTASK: &str = "xtask";

/// One workspace crate and the names of its direct dependencies, as `cargo tree` printed them.
#[derive(Debug, PartialEq, Eq)]
struct CrateDeps {
    name: String,
    deps: Vec<String>,
}

/// Runs the layering check from the workspace root; fails listing every violation.
pub fn check(root: &Path) -> Result<()> {
    let normal = parse_tree(&cargo_tree(root, "normal")?)?;
    // Dev and build edges too: no crate may reach xtask in any way.
    let any_kind = parse_tree(&cargo_tree(root, "normal,build,dev")?)?;

    let mut violations = allowed_list_violations(&normal);
    violations.extend(xtask_violations(&any_kind));

    for (name, _) in ALLOWED {
        if !normal.iter().any(|c| c.name == *name) {
            println!("layering: {name} is not a workspace member yet, skipped");
        }
    }
    let edges: usize = normal.iter().map(|c| c.deps.len()).sum();
    println!(
        "layering: checked {} workspace crates, {edges} direct normal dependencies",
        normal.len()
    );
    if violations.is_empty() {
        println!("layering: ok");
        return Ok(());
    }
    for v in &violations {
        println!("layering violation: {v}");
    }
    bail!(
        "{} layering violation(s); the allowed lists are in shared/decisions.md \
         and xtask/src/layering.rs",
        violations.len()
    )
}

/// `cargo tree` for the whole workspace, depth 1, one package per line prefixed
/// by its depth, every platform, every feature, without de-duplication.
fn cargo_tree(root: &Path, edges: &str) -> Result<String> {
    let mut cmd = util::cargo();
    cmd.current_dir(root)
        .args(["tree", "--workspace", "--all-features", "--target", "all"])
        .args(["-e", edges, "--depth", "1", "--no-dedupe"])
        .args(["--prefix", "depth", "--format", "{p}"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    capture(&mut cmd)
}

/// Runs a command, returning its stdout; fails on a non-zero exit.
fn capture(cmd: &mut Command) -> Result<String> {
    let shown = util::display(cmd);
    println!("$ {shown}");
    let out = cmd
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !out.status.success() {
        bail!("`{shown}` failed ({})", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{shown}` printed non-UTF-8 output"))
}

/// Parses `cargo tree --prefix depth --format {p} --depth 1` output: a `0name vX (path)`
/// line opens a workspace crate, the `1name vY` lines after it are its direct dependencies.
fn parse_tree(output: &str) -> Result<Vec<CrateDeps>> {
    let mut crates: Vec<CrateDeps> = Vec::new();
    for (index, line) in output.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let depth: usize = line[..digits]
            .parse()
            .with_context(|| format!("cargo tree line {}: no depth prefix: {line:?}", index + 1))?;
        let name = line[digits..]
            .split_whitespace()
            .next()
            .with_context(|| format!("cargo tree line {}: no package name: {line:?}", index + 1))?
            .to_string();
        match (depth, crates.last_mut()) {
            (0, _) => crates.push(CrateDeps {
                name,
                deps: Vec::new(),
            }),
            (1, Some(current)) => {
                if !current.deps.contains(&name) {
                    current.deps.push(name);
                }
            }
            (1, None) => bail!(
                "cargo tree line {}: a dependency before any crate: {line:?}",
                index + 1
            ),
            _ => bail!(
                "cargo tree line {}: depth {depth} deeper than asked for: {line:?}",
                index + 1
            ),
        }
    }
    Ok(crates)
}

/// Dependencies of listed crates that their allowed list does not name.
fn allowed_list_violations(crates: &[CrateDeps]) -> Vec<String> {
    let mut out = Vec::new();
    for krate in crates {
        let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| *name == krate.name) else {
            continue;
        };
        for dep in &krate.deps {
            if !allowed.contains(&dep.as_str()) {
                out.push(format!(
                    "{} -> {dep} (not allowed: allowed are {})",
                    krate.name,
                    allowed.join(", ")
                ));
            }
        }
    }
    out
}

/// Workspace crates other than xtask that depend on xtask (any edge kind).
fn xtask_violations(crates: &[CrateDeps]) -> Vec<String> {
    crates
        .iter()
        .filter(|c| c.name != XTASK && c.deps.iter().any(|d| d == XTASK))
        .map(|c| {
            format!(
                "{} -> {XTASK} (not allowed: no crate may depend on xtask)",
                c.name
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
0rmq-fault v0.1.0 (/w/crates/rmq-fault)
1rmq-protocol v0.1.0 (/w/crates/rmq-protocol)

0rmq-protocol v0.1.0 (/w/crates/rmq-protocol)
1bytes v1.12.1
1serde v1.0.229
1serde_json v1.0.154
1thiserror v2.0.21
1serde v1.0.229 (*)

0rmq-route v0.1.0 (/w/crates/rmq-route)
1rmq-remoting v0.1.0 (/w/crates/rmq-remoting)
1anyhow v1.0.104
1xtask v0.1.0 (/w/xtask)

0xtask v0.1.0 (/w/xtask)
1anyhow v1.0.104
";

    fn parsed() -> Vec<CrateDeps> {
        parse_tree(SAMPLE).unwrap()
    }

    #[test]
    fn parser_groups_dependencies_under_their_crate() {
        let crates = parsed();
        let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["rmq-fault", "rmq-protocol", "rmq-route", "xtask"]);
        assert_eq!(crates[0].deps, ["rmq-protocol"]);
        // Duplicates (e.g. one crate under two renames, or `(*)` markers) count once.
        assert_eq!(
            crates[1].deps,
            ["bytes", "serde", "serde_json", "thiserror"]
        );
        assert_eq!(crates[3].deps, ["anyhow"]);
    }

    #[test]
    fn parser_handles_crates_without_dependencies_and_empty_output() {
        let crates = parse_tree("0rmq-fault v0.1.0 (/w)\n\n0xtask v0.1.0 (/w/xtask)\n").unwrap();
        assert!(crates.iter().all(|c| c.deps.is_empty()));
        assert_eq!(crates.len(), 2);
        assert!(parse_tree("").unwrap().is_empty());
    }

    #[test]
    fn parser_rejects_unexpected_lines() {
        assert!(
            parse_tree("1bytes v1.0.0\n").is_err(),
            "dependency before a crate"
        );
        assert!(
            parse_tree("rmq-fault v0.1.0\n").is_err(),
            "missing depth prefix"
        );
        assert!(parse_tree("0a v1\n2b v1\n").is_err(), "deeper than depth 1");
    }

    #[test]
    fn violations_name_crate_dependency_and_allowed_list() {
        let v = allowed_list_violations(&parsed());
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(
            v[0],
            "rmq-route -> anyhow (not allowed: allowed are rmq-protocol, rmq-remoting, \
             tokio, tracing, thiserror)"
        );
        assert!(v[1].starts_with("rmq-route -> xtask (not allowed"));
    }

    #[test]
    fn only_xtask_may_depend_on_xtask() {
        assert_eq!(
            xtask_violations(&parsed()),
            ["rmq-route -> xtask (not allowed: no crate may depend on xtask)"]
        );
    }

    #[test]
    fn table_has_unique_crates_and_testkit_never_uses_the_producer() {
        for (i, (name, allowed)) in ALLOWED.iter().enumerate() {
            assert!(
                ALLOWED[i + 1..].iter().all(|(n, _)| n != name),
                "{name} twice"
            );
            assert!(!allowed.contains(&XTASK), "{name} may not use xtask");
        }
        let testkit = ALLOWED.iter().find(|(n, _)| *n == "rmq-testkit").unwrap();
        assert!(!testkit.1.contains(&"rmq-producer"));
    }
}
