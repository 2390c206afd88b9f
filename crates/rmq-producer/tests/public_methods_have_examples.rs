//! Keeps the project's rule that every public method of the producer crate shows an
//! example in its documentation: scans `src/` for `pub fn` (also `const` / `async`)
//! whose doc comment has no code block. `#[doc(hidden)]` items are exempt.
//!
//! A text scan, not a rustdoc pass: it sees `pub fn` in a private module too, which
//! is fine here (such functions are `pub(crate)` in this crate).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The name of the function a line declares, if it is `pub [const|async|unsafe] fn`.
fn public_fn_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start().strip_prefix("pub ")?;
    loop {
        rest = match rest.split_once(' ') {
            Some(("const" | "async" | "unsafe", tail)) => tail,
            _ => break,
        };
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// `file:line: name` of each public function without an example.
fn missing_examples(file: &Path, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut missing = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = public_fn_name(line) else {
            continue;
        };
        // The doc comment and attributes right above the declaration.
        let above = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim_start())
            .take_while(|l| l.starts_with("///") || l.starts_with("#["));
        let (mut example, mut hidden) = (false, false);
        for l in above {
            example |= l.starts_with("/// ```");
            hidden |= l.contains("doc(hidden)");
        }
        if !example && !hidden {
            missing.push(format!("{}:{}: {name}", file.display(), i + 1));
        }
    }
    missing
}

#[test]
fn every_public_method_has_an_example() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "found only {} files under src/",
        files.len()
    );
    let mut missing = Vec::new();
    let mut checked = 0;
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(file).expect("source file");
        checked += text.lines().filter(|l| public_fn_name(l).is_some()).count();
        let shown = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(file);
        missing.extend(missing_examples(shown, &text));
    }
    assert!(checked > 100, "found only {checked} public functions");
    assert!(
        missing.is_empty(),
        "public functions without an example in their docs:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_finds_a_missing_example_and_accepts_a_present_one() {
    let text = "\
/// Documented, with an example.
///
/// ```
/// assert!(true);
/// ```
#[must_use]
pub fn shown() {}

/// Documented, no example.
pub const fn not_shown() {}

#[doc(hidden)]
pub fn hidden() {}

pub(crate) fn internal() {}
";
    assert_eq!(
        missing_examples(Path::new("x.rs"), text),
        ["x.rs:10: not_shown"]
    );
    assert_eq!(public_fn_name("    pub async fn send(&self)"), Some("send"));
    assert_eq!(public_fn_name("pub(crate) fn f()"), None);
    assert_eq!(public_fn_name("pub struct S;"), None);
}
