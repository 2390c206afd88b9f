//! Loading a [`ProducerConfig`] from TOML.

use std::path::Path;

use super::{ConfigError, ProducerConfig};

/// Table names and aliases accepted besides [`ProducerConfig::KEYS`], for suggestions.
const EXTRA_NAMES: [&str; 3] = ["compression", "tls", "namesrv"];

impl ProducerConfig {
    /// Parses a TOML configuration and [validates](Self::validate) it.
    ///
    /// Every key except `group` may be left out and keeps its default. See the
    /// [module docs](super) for the format.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownKey`] for a key that is not a setting (with a
    /// suggestion), [`ConfigError::Missing`] without `group`, [`ConfigError::Toml`]
    /// for malformed TOML or a value of the wrong type (with the key when it can be
    /// told), and the errors of [`validate`](Self::validate).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// let config = ProducerConfig::from_toml_str(r#"
    ///     group = "orders-producer"
    ///     namesrv_addrs = ["10.0.0.1:9876"]
    ///     attempt_timeout = "800ms"
    /// "#)?;
    /// assert_eq!(config.attempt_timeout, Some(Duration::from_millis(800)));
    /// // A typo is an error with the key it is about.
    /// let err = ProducerConfig::from_toml_str("group = \"g\"\nsend_timout = \"1s\"").unwrap_err();
    /// assert_eq!(err.key(), Some("send_timout"));
    /// # Ok::<(), rmq_producer::config::ConfigError>(())
    /// ```
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(toml).map_err(|e| toml_error(toml, &e))?;
        if config.group.is_empty() && !has_top_level_key(toml, "group") {
            return Err(ConfigError::Missing {
                key: "group".into(),
            });
        }
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML configuration file, as
    /// [`from_toml_str`](Self::from_toml_str).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] if the file cannot be read; otherwise
    /// [`ConfigError::File`] around the error of `from_toml_str`.
    ///
    /// ```
    /// use rmq_producer::config::{ConfigError, ProducerConfig};
    ///
    /// let path = std::env::temp_dir().join(format!("rmq-doc-{}.toml", std::process::id()));
    /// std::fs::write(&path, "group = \"g\"\nnamesrv_addrs = \"10.0.0.1:9876\"\nretries = 4\n").unwrap();
    /// let config = ProducerConfig::from_toml_file(&path)?;
    /// assert_eq!(config.retries, 4);
    /// std::fs::remove_file(&path).unwrap();
    /// // A missing file is an I/O error naming the path.
    /// assert!(matches!(ProducerConfig::from_toml_file(&path), Err(ConfigError::Io { .. })));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }
}

fn has_top_level_key(toml: &str, key: &str) -> bool {
    toml::from_str::<toml::Table>(toml).is_ok_and(|t| t.contains_key(key))
}

/// Turns a TOML error into a [`ConfigError`] naming the key where possible.
fn toml_error(input: &str, e: &toml::de::Error) -> ConfigError {
    let path = e.span().and_then(|span| key_path_at(input, span.start));
    if let Some(field) = unknown_field(e.message()) {
        // The span points at the unknown key; `path` is it with its table prefix.
        let key = path.unwrap_or_else(|| field.to_owned());
        let known = ProducerConfig::KEYS
            .iter()
            .chain(EXTRA_NAMES.iter())
            .copied();
        return ConfigError::unknown(&key, known);
    }
    ConfigError::Toml {
        key: path,
        message: e.to_string().trim_end().to_owned(),
    }
}

/// The field name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// The dotted key path of the `key = value` line (or `[table]` header) containing
/// byte `pos`: the last table header before it, then the key. `None` inside
/// multi-line values.
fn key_path_at(input: &str, pos: usize) -> Option<String> {
    let mut table = String::new();
    let mut start = 0;
    for line in input.split_inclusive('\n') {
        let end = start + line.len();
        let text = line.trim();
        if let Some(header) = text.strip_prefix('[') {
            let name = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("");
            table = normalize_key(name);
            if pos < end {
                return Some(table).filter(|t| !t.is_empty());
            }
        } else if pos < end {
            let (key, _) = text.split_once('=')?;
            let key = normalize_key(key);
            return match (key.is_empty(), table.is_empty()) {
                (true, _) => None,
                (false, true) => Some(key),
                (false, false) => Some(format!("{table}.{key}")),
            };
        }
        start = end;
    }
    None
}

/// `a . "b"` → `a.b`.
fn normalize_key(key: &str) -> String {
    key.split('.')
        .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths() {
        let input = "group = \"g\"\nsend_timeout = 5\n\n[compression]\nlevel = \"x\"\n[tls]\n\"ca_file\" = 1\n";
        let at = |needle: &str| key_path_at(input, input.find(needle).unwrap());
        assert_eq!(at("\"g\""), Some("group".into()));
        assert_eq!(at("5"), Some("send_timeout".into()));
        assert_eq!(at("\"x\""), Some("compression.level".into()));
        assert_eq!(at("[tls]"), Some("tls".into()));
        assert_eq!(at("1\n"), Some("tls.ca_file".into()));
        assert_eq!(key_path_at(input, input.len() + 5), None);
        assert_eq!(key_path_at("a = [\n  1,\n  2\n]\n", 10), None);
        assert_eq!(normalize_key(" a . \"b\" "), "a.b");
        assert_eq!(
            unknown_field("unknown field `x_y`, expected one of `a`"),
            Some("x_y")
        );
        assert_eq!(unknown_field("invalid type"), None);
    }
}
