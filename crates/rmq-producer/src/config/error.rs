//! [`ConfigError`]: what is wrong with a configuration, naming the setting.

use std::io;
use std::path::PathBuf;

/// A configuration that cannot be loaded or is not valid. Every variant names the
/// setting ([`key`](Self::key)) when there is one.
///
/// ```
/// use std::time::Duration;
/// use rmq_producer::config::{ConfigError, ProducerConfig};
///
/// let mut config = ProducerConfig::new("orders-producer");
/// config.namesrv_addrs = vec!["127.0.0.1:9876".into()];
/// config.send_timeout = Duration::ZERO;
/// let err = config.validate().unwrap_err();
/// assert_eq!(err.key(), Some("send_timeout"));
/// assert_eq!(err.to_string(), "send_timeout must be > 0, got 0s");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting has a value outside its valid range, or settings contradict each
    /// other.
    #[error("{key} {reason}, got {value}")]
    Invalid {
        /// The setting (TOML key, nested keys joined with `.`).
        key: String,
        /// The value, as written in a config (`<redacted>` for secrets).
        value: String,
        /// The rule, e.g. "must be > 0".
        reason: String,
    },
    /// A required setting is missing (only `group` is required).
    #[error("missing required setting {key}")]
    Missing {
        /// The setting, or its environment variable.
        key: String,
    },
    /// A key that is not a setting (typos are errors, not ignored).
    #[error("unknown setting {key}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownKey {
        /// The key (or environment variable) as written.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<String>,
    },
    /// A value could not be parsed (environment variables and
    /// [`ProducerConfig::set`](super::ProducerConfig::set)).
    #[error("cannot parse {key} = {value:?}: {reason}")]
    Parse {
        /// The setting or environment variable.
        key: String,
        /// The text given (`<redacted>` for secrets).
        value: String,
        /// Why, e.g. "expected a duration such as 3s or 500ms".
        reason: String,
    },
    /// The TOML text is malformed or a value has the wrong type. The message has the
    /// line, column and a snippet.
    #[error("invalid TOML configuration{}: {message}", key.as_ref().map(|k| format!(" at {k}")).unwrap_or_default())]
    Toml {
        /// The key the error is at, when it can be told.
        key: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An error in a configuration file.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    /// The setting (or environment variable) the error is about, if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::new("orders-producer");
    /// assert_eq!(config.validate().unwrap_err().key(), Some("namesrv_addrs"));
    /// config.namesrv_addrs = vec!["10.0.0.1:9876".into()];
    /// config.send_timeout = Duration::ZERO;
    /// assert_eq!(config.validate().unwrap_err().key(), Some("send_timeout"));
    /// ```
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. }
            | Self::Missing { key }
            | Self::UnknownKey { key, .. }
            | Self::Parse { key, .. } => Some(key),
            Self::Toml { key, .. } => key.as_deref(),
            Self::File { source, .. } => source.key(),
            Self::Io { .. } => None,
        }
    }

    pub(crate) fn invalid(
        key: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            key: key.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// An unknown key, with the closest of `known` as a suggestion when it is close.
    pub(crate) fn unknown<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Self {
        Self::UnknownKey {
            key: key.to_owned(),
            suggestion: closest(key, known),
        }
    }
}

/// The candidate nearest to `key` by edit distance (case-insensitive), if it is
/// within a third of the key's length (at least 1, at most 3 edits).
fn closest<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let key = key.to_ascii_lowercase();
    let limit = (key.chars().count() / 3).clamp(1, 3);
    known
        .into_iter()
        .map(|k| (edit_distance(&key, &k.to_ascii_lowercase()), k))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k.to_owned())
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = ["send_timeout", "connect_timeout", "retries", "group"];
        assert_eq!(closest("send_timout", known), Some("send_timeout".into()));
        assert_eq!(closest("SEND_TIMEOUT", known), Some("send_timeout".into()));
        assert_eq!(closest("retires", known), Some("retries".into()));
        assert_eq!(closest("colour", known), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn display_and_key() {
        let e = ConfigError::unknown("retires", ["retries"]);
        assert_eq!(
            e.to_string(),
            "unknown setting retires (did you mean retries?)"
        );
        assert_eq!(e.key(), Some("retires"));
        let e = ConfigError::unknown("zzz", ["retries"]);
        assert_eq!(e.to_string(), "unknown setting zzz");
        let e = ConfigError::Toml {
            key: None,
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "invalid TOML configuration: bad");
        assert_eq!(e.key(), None);
        let e = ConfigError::File {
            path: "/x.toml".into(),
            source: Box::new(ConfigError::Missing {
                key: "group".into(),
            }),
        };
        assert_eq!(e.to_string(), "/x.toml: missing required setting group");
        assert_eq!(e.key(), Some("group"));
    }
}
