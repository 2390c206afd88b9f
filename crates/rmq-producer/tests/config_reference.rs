//! The configuration reference in the repository's README lists every setting with its
//! default; this test checks each documented default against `ProducerConfig::new`.

use std::collections::BTreeMap;

use rmq_producer::ProducerConfig;

/// `key → default` as TOML text, flattened with dotted keys.
fn defaults() -> BTreeMap<String, String> {
    let value = toml::Value::try_from(ProducerConfig::new("my_group")).expect("config serializes");
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out);
    out
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), render(other));
        }
    }
}

/// TOML spelling of a scalar or array.
fn render(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(a) => {
            format!("[{}]", a.iter().map(render).collect::<Vec<_>>().join(", "))
        }
        toml::Value::Datetime(d) => format!("{d:?}"),
        toml::Value::Table(_) => "{...}".to_owned(),
    }
}

/// Rows `| `key` | `default` | ... |` between the README's config markers.
fn documented() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme
        .find("<!-- config-reference:start -->")
        .expect("start marker");
    let end = readme
        .find("<!-- config-reference:end -->")
        .expect("end marker");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].trim_matches('`').to_owned(),
            )
        })
        .collect()
}

#[test]
fn readme_documents_every_default_as_the_code_has_it() {
    let code = defaults();
    if std::env::var_os("RMQ_PRINT_CONFIG_DEFAULTS").is_some() {
        for (k, v) in &code {
            println!("| `{k}` | `{v}` |");
        }
    }
    let docs = documented();
    for (key, value) in &code {
        if key == "group" {
            continue; // required, no default
        }
        let doc = docs
            .get(key)
            .unwrap_or_else(|| panic!("README does not document `{key}` (default {value})"));
        assert_eq!(doc, value, "README's default for `{key}`");
    }
    let settable = rmq_producer::config::ProducerConfig::KEYS;
    for (key, value) in &docs {
        if value == "(unset)" {
            assert!(
                settable.contains(&key.as_str()),
                "README documents `{key}`, which the code does not have"
            );
            assert!(
                !code.contains_key(key),
                "`{key}` has a default in the code, but README says unset"
            );
        } else {
            assert!(
                code.contains_key(key),
                "README documents `{key}`, which the code does not have"
            );
        }
    }
}
