//! Settings from text: [`ProducerConfig::set`] and the `RMQ_PRODUCER_*`
//! environment variables.

use std::ffi::OsString;
use std::str::FromStr;
use std::time::Duration;

use rmq_protocol::ResponseCode;

use super::{ConfigError, ProducerConfig, Secret, parse_addr_list};

/// The prefix of the producer's environment variables.
pub const ENV_PREFIX: &str = "RMQ_PRODUCER_";

/// Java's environment variable for the name-server list, used when no
/// `RMQ_PRODUCER_NAMESRV(_ADDRS)` is set and no address is configured.
const JAVA_NAMESRV_ENV: &str = "NAMESRV_ADDR";

/// Short environment names: `RMQ_PRODUCER_<alias>` sets `key`.
const ENV_ALIASES: [(&str, &str); 2] = [
    ("NAMESRV", "namesrv_addrs"),
    ("COMPRESSION_TYPE", "compression.kind"),
];

fn duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v)
        .map_err(|e| format!("expected a duration such as 3s, 500ms or 1m 30s ({e})"))
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// An integer; `_` separators are allowed as in TOML (`10_000`).
fn number<T: FromStr>(v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.replace('_', "")
        .parse()
        .map_err(|e| format!("expected an integer ({e})"))
}

fn codes(v: &str) -> Result<Vec<ResponseCode>, String> {
    v.split([',', ';', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| number::<i32>(s).map(ResponseCode))
        .collect::<Result<_, _>>()
        .map_err(|_| "expected a list of integer response codes such as 1,2,14".into())
}

fn parsed<T: FromStr>(v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e: T::Err| e.to_string())
}

impl ProducerConfig {
    /// Sets one setting from text, by its key (a name from [`KEYS`](Self::KEYS),
    /// e.g. `"send_timeout"` or `"compression.level"`). Values are written as in the
    /// environment: durations `3s`, booleans `true`/`false` (also `1`/`0`, `yes`/`no`,
    /// `on`/`off`), lists separated by `;` or `,`. Does not validate: call
    /// [`validate`](Self::validate) when done.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::new("g");
    /// config.set("send_timeout", "1m 30s")?;
    /// config.set("compression.kind", "lz4")?;
    /// assert_eq!(config.send_timeout, Duration::from_secs(90));
    /// assert!(config.set("send_timeout", "soon").is_err());
    /// # Ok::<(), rmq_producer::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownKey`] for an unknown key, [`ConfigError::Parse`] for a
    /// value that does not parse.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.set_named(key, key, value)
    }

    /// [`set`](Self::set), reporting errors under `name` (the environment variable).
    fn set_named(&mut self, name: &str, key: &str, value: &str) -> Result<(), ConfigError> {
        match self.assign(key, value) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ConfigError::unknown(name, Self::KEYS.iter().copied())),
            Err(reason) => Err(ConfigError::Parse {
                key: name.to_owned(),
                value: value.to_owned(),
                reason,
            }),
        }
    }

    /// Parses and stores one value: `Ok(false)` for an unknown key.
    fn assign(&mut self, key: &str, v: &str) -> Result<bool, String> {
        let tls = &mut self.tls;
        match key {
            "group" => self.group = v.to_owned(),
            "namesrv_addrs" => self.namesrv_addrs = parse_addr_list(v),
            "namespace" => self.namespace = Some(v.to_owned()),
            "send_timeout" => self.send_timeout = duration(v)?,
            "attempt_timeout" => self.attempt_timeout = Some(duration(v)?),
            "connect_timeout" => self.connect_timeout = duration(v)?,
            "control_timeout" => self.control_timeout = duration(v)?,
            "retries" => self.retries = number(v)?,
            "retry_backoff_min" => self.retry_backoff_min = duration(v)?,
            "retry_backoff_max" => self.retry_backoff_max = duration(v)?,
            "retryable_codes" => self.retryable_codes = codes(v)?,
            "retry_on_not_stored" => self.retry_on_not_stored = boolean(v)?,
            "max_in_flight_messages" => self.max_in_flight_messages = number(v)?,
            "max_in_flight_bytes" => self.max_in_flight_bytes = number(v)?,
            "compression.enabled" => self.compression.enabled = boolean(v)?,
            "compression.kind" => self.compression.kind = parsed(v)?,
            "compression.level" => self.compression.level = number(v)?,
            "compression.threshold" => self.compression.threshold = number(v)?,
            "max_message_size" => self.max_message_size = number(v)?,
            "default_topic_queue_nums" => self.default_topic_queue_nums = number(v)?,
            "create_topic_key" => self.create_topic_key = v.to_owned(),
            "tbw102_fallback" => self.tbw102_fallback = boolean(v)?,
            "latency_fault_tolerance" => self.latency_fault_tolerance = boolean(v)?,
            "heartbeat_interval" => self.heartbeat_interval = duration(v)?,
            "route_poll_interval" => self.route_poll_interval = duration(v)?,
            "header_format" => self.header_format = parsed(v)?,
            "vip_channel" => self.vip_channel = boolean(v)?,
            "instance_name" => self.instance_name = Some(v.to_owned()),
            "unit_name" => self.unit_name = Some(v.to_owned()),
            "client_ip" => self.client_ip = Some(parsed(v)?),
            "access_key" => self.access_key = Some(v.to_owned()),
            "secret_key" => self.secret_key = Some(Secret::new(v)),
            "security_token" => self.security_token = Some(Secret::new(v)),
            "tls.enabled" => tls.enabled = boolean(v)?,
            "tls.ca_file" => tls.ca_file = Some(v.into()),
            "tls.system_roots" => tls.system_roots = Some(boolean(v)?),
            "tls.client_cert_file" => tls.client_cert_file = Some(v.into()),
            "tls.client_key_file" => tls.client_key_file = Some(v.into()),
            "tls.server_name" => tls.server_name = Some(v.to_owned()),
            "tls.handshake_timeout" => tls.handshake_timeout = duration(v)?,
            "tls.danger_accept_invalid_certs" => tls.danger_accept_invalid_certs = boolean(v)?,
            "auto_batch.enabled" => self.auto_batch.enabled = boolean(v)?,
            "auto_batch.linger" => self.auto_batch.linger = duration(v)?,
            "auto_batch.max_batch_bytes" => self.auto_batch.max_batch_bytes = number(v)?,
            "auto_batch.max_total_bytes" => self.auto_batch.max_total_bytes = number(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Overlays `RMQ_PRODUCER_*` variables from `vars` on this config (for example
    /// one loaded from a file), and Java's `NAMESRV_ADDR` when no name server is
    /// set. Other variables are ignored; empty values count as unset. Does not
    /// validate: call [`validate`](Self::validate) when done.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownKey`] for an `RMQ_PRODUCER_*` variable that is not a
    /// setting (typos are not ignored), [`ConfigError::Parse`] for a value that does
    /// not parse (naming the variable), [`ConfigError::Invalid`] if both
    /// `RMQ_PRODUCER_NAMESRV` and `RMQ_PRODUCER_NAMESRV_ADDRS` are set.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// // A file sets the group and the timeout; the deployment overrides the timeout.
    /// let mut config = ProducerConfig::from_toml_str(r#"
    ///     group = "orders-producer"
    ///     namesrv_addrs = "10.0.0.1:9876"
    ///     send_timeout = "5s"
    /// "#)?;
    /// let vars = [("RMQ_PRODUCER_SEND_TIMEOUT", "2s"), ("PATH", "/usr/bin")];
    /// config.apply_env_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned())))?;
    /// config.validate()?;
    /// assert_eq!(config.send_timeout, Duration::from_secs(2));
    /// // A misspelt variable is an error naming it, not silently ignored.
    /// let typo = [("RMQ_PRODUCER_SEND_TIMOUT".to_owned(), "2s".to_owned())];
    /// let err = config.apply_env_vars(typo).unwrap_err();
    /// assert_eq!(err.key(), Some("RMQ_PRODUCER_SEND_TIMOUT"));
    /// # Ok::<(), rmq_producer::config::ConfigError>(())
    /// ```
    pub fn apply_env_vars(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut java_namesrv = None;
        let mut ours: Vec<(String, String)> = Vec::new();
        for (name, value) in vars {
            if value.trim().is_empty() {
                continue;
            }
            if name == JAVA_NAMESRV_ENV {
                java_namesrv = Some(value);
            } else if name.starts_with(ENV_PREFIX) {
                ours.push((name, value));
            }
        }
        // Apply in a fixed order, whatever order the environment lists them in.
        ours.sort();
        let mut namesrv_from = None::<String>;
        for (name, value) in &ours {
            let key = env_key(name).ok_or_else(|| {
                let known = Self::KEYS.iter().map(|k| env_name(k));
                let known: Vec<String> = known
                    .chain(ENV_ALIASES.iter().map(|(a, _)| format!("{ENV_PREFIX}{a}")))
                    .collect();
                ConfigError::unknown(name, known.iter().map(String::as_str))
            })?;
            if key == "namesrv_addrs" {
                if let Some(first) = &namesrv_from {
                    return Err(ConfigError::invalid(
                        name.as_str(),
                        format!("{value:?}"),
                        format!("conflicts with {first}; set only one of them"),
                    ));
                }
                namesrv_from = Some(name.clone());
            }
            self.set_named(name, key, value.trim())?;
        }
        if let Some(addrs) = java_namesrv
            && namesrv_from.is_none()
            && self.namesrv_addrs.is_empty()
        {
            self.namesrv_addrs = parse_addr_list(&addrs);
        }
        Ok(())
    }

    /// A config from `RMQ_PRODUCER_*` variables (and `NAMESRV_ADDR`) in `vars`, over
    /// the defaults, validated. Tests pass the variables in; [`from_env`](Self::from_env)
    /// reads the process environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] without `RMQ_PRODUCER_GROUP`, the errors of
    /// [`apply_env_vars`](Self::apply_env_vars) and of [`validate`](Self::validate).
    ///
    /// ```
    /// use rmq_producer::config::{ConfigError, ProducerConfig};
    ///
    /// let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
    ///     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    /// };
    /// let config = ProducerConfig::from_env_vars(vars(&[
    ///     ("RMQ_PRODUCER_GROUP", "orders-producer"),
    ///     ("RMQ_PRODUCER_NAMESRV", "10.0.0.1:9876;10.0.0.2:9876"),
    ///     ("RMQ_PRODUCER_COMPRESSION_TYPE", "zstd"),
    /// ]))?;
    /// assert_eq!(config.namesrv_addrs.len(), 2);
    /// // The group is required.
    /// let err = ProducerConfig::from_env_vars(vars(&[("NAMESRV_ADDR", "10.0.0.1:9876")]));
    /// assert!(matches!(err, Err(ConfigError::Missing { .. })));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_env_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::unnamed();
        config.apply_env_vars(vars)?;
        if config.group.is_empty() {
            return Err(ConfigError::Missing {
                key: env_name("group"),
            });
        }
        config.validate()?;
        Ok(config)
    }

    /// [`from_env_vars`](Self::from_env_vars) over the process environment.
    ///
    /// # Errors
    ///
    /// As `from_env_vars`; also [`ConfigError::Parse`] for a relevant variable whose
    /// value is not UTF-8.
    ///
    /// ```no_run
    /// // With RMQ_PRODUCER_GROUP=orders-producer and NAMESRV_ADDR=10.0.0.1:9876 set:
    /// let config = rmq_producer::config::ProducerConfig::from_env()?;
    /// assert_eq!(config.group, "orders-producer");
    /// # Ok::<(), rmq_producer::config::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_vars(process_env()?)
    }

    /// [`apply_env_vars`](Self::apply_env_vars) with the process environment.
    ///
    /// # Errors
    ///
    /// As `apply_env_vars`; also [`ConfigError::Parse`] for a relevant variable whose
    /// value is not UTF-8.
    ///
    /// ```no_run
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// // The file holds the defaults of every deployment; the environment overrides.
    /// let mut config = ProducerConfig::from_toml_file("/etc/orders/producer.toml")?;
    /// config.apply_env()?;
    /// config.validate()?;
    /// # Ok::<(), rmq_producer::config::ConfigError>(())
    /// ```
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        self.apply_env_vars(process_env()?)
    }
}

/// The environment variable for a key: `compression.level` → `RMQ_PRODUCER_COMPRESSION_LEVEL`.
pub(super) fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

/// The key an `RMQ_PRODUCER_*` variable sets, if any.
fn env_key(name: &str) -> Option<&'static str> {
    let suffix = name.strip_prefix(ENV_PREFIX)?;
    if let Some((_, key)) = ENV_ALIASES.iter().find(|(alias, _)| *alias == suffix) {
        return Some(key);
    }
    ProducerConfig::KEYS
        .iter()
        .copied()
        .find(|k| k.len() == suffix.len() && env_name(k).ends_with(suffix))
}

/// The relevant process variables as UTF-8 (irrelevant non-UTF-8 ones are skipped).
fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let relevant = |k: &str| k.starts_with(ENV_PREFIX) || k == JAVA_NAMESRV_ENV;
    let mut out = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Ok(k) = k.into_string() else { continue };
        if !relevant(&k) {
            continue;
        }
        let v = v.into_string().map_err(|v: OsString| ConfigError::Parse {
            key: k.clone(),
            value: v.to_string_lossy().into_owned(),
            reason: "not valid UTF-8".into(),
        })?;
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(all(test, feature = "zlib", feature = "zstd", feature = "lz4"))]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use rmq_protocol::message::CompressionType;

    use super::super::tests::{sample_value, valid, vars};
    use super::super::{HeaderFormat, Secret};
    use super::*;

    #[test]
    fn env_overrides() {
        let c = ProducerConfig::from_env_vars(vars(&[
            ("RMQ_PRODUCER_GROUP", "orders-producer"),
            ("RMQ_PRODUCER_NAMESRV", "a:9876;b:9876"),
            ("RMQ_PRODUCER_SEND_TIMEOUT", "5s"),
            ("RMQ_PRODUCER_RETRIES", " 4 "),
            ("RMQ_PRODUCER_COMPRESSION_KIND", "lz4"),
            ("RMQ_PRODUCER_COMPRESSION_THRESHOLD", "8_192"),
            ("RMQ_PRODUCER_HEADER_FORMAT", "json"),
            ("RMQ_PRODUCER_TBW102_FALLBACK", "off"),
            ("RMQ_PRODUCER_NAMESPACE", ""),
            ("NAMESRV_ADDR", "ignored:1"),
            ("PATH", "/bin"),
            ("RMQ_OTHER", "x"),
        ]))
        .unwrap();
        assert_eq!(c.group, "orders-producer");
        assert_eq!(c.namesrv_addrs, ["a:9876", "b:9876"]);
        assert_eq!(c.send_timeout, Duration::from_secs(5));
        assert_eq!(c.retries, 4);
        assert_eq!(c.compression.kind, CompressionType::Lz4);
        assert_eq!(c.compression.threshold, 8192);
        assert_eq!(c.header_format, HeaderFormat::Json);
        assert!(!c.tbw102_fallback);
        assert_eq!(c.namespace, None, "empty means unset");
        // Everything else keeps its default.
        let mut expected = ProducerConfig::new("orders-producer");
        expected.namesrv_addrs = c.namesrv_addrs.clone();
        expected.send_timeout = c.send_timeout;
        expected.retries = 4;
        expected.compression.kind = CompressionType::Lz4;
        expected.compression.threshold = 8192;
        expected.header_format = HeaderFormat::Json;
        expected.tbw102_fallback = false;
        assert_eq!(c, expected);
    }

    #[test]
    fn env_every_key_by_its_name() {
        let mut list = vec![("RMQ_PRODUCER_GROUP".to_owned(), "g1".to_owned())];
        for key in ProducerConfig::KEYS.iter().filter(|k| **k != "group") {
            list.push((env_name(key), sample_value(key).to_owned()));
        }
        let mut c = valid();
        c.apply_env_vars(list).unwrap();
        assert_eq!(c.group, "g1");
        assert_eq!(c.route_poll_interval, Duration::from_secs(7));
        assert_eq!(c.tls.client_key_file, Some(PathBuf::from("/tmp/f.pem")));
        assert_eq!(c.security_token.as_ref().map(Secret::expose), Some("x1"));
        assert_eq!(
            env_name("compression.level"),
            "RMQ_PRODUCER_COMPRESSION_LEVEL"
        );
    }

    #[test]
    fn java_namesrv_addr_is_a_fallback() {
        let base = [("RMQ_PRODUCER_GROUP", "g")];
        let c =
            ProducerConfig::from_env_vars(vars(&[base[0], ("NAMESRV_ADDR", "j1:9876;j2:9876")]))
                .unwrap();
        assert_eq!(c.namesrv_addrs, ["j1:9876", "j2:9876"]);
        let c = ProducerConfig::from_env_vars(vars(&[
            ("NAMESRV_ADDR", "j:9876"),
            base[0],
            ("RMQ_PRODUCER_NAMESRV_ADDRS", "r:9876"),
        ]))
        .unwrap();
        assert_eq!(c.namesrv_addrs, ["r:9876"]);
        // A file's addresses win over NAMESRV_ADDR, RMQ_PRODUCER_NAMESRV over the file.
        let mut c = valid();
        c.apply_env_vars(vars(&[("NAMESRV_ADDR", "j:9876")]))
            .unwrap();
        assert_eq!(c.namesrv_addrs, ["127.0.0.1:9876"]);
        c.apply_env_vars(vars(&[("RMQ_PRODUCER_NAMESRV", "r:1")]))
            .unwrap();
        assert_eq!(c.namesrv_addrs, ["r:1"]);
        let e = ProducerConfig::from_env_vars(vars(&[
            base[0],
            ("RMQ_PRODUCER_NAMESRV", "a:1"),
            ("RMQ_PRODUCER_NAMESRV_ADDRS", "b:1"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("set only one of them"), "{e}");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = ProducerConfig::from_env_vars(vars(&[("NAMESRV_ADDR", "a:1")])).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Missing { key } if key == "RMQ_PRODUCER_GROUP"),
            "{e:?}"
        );
        let e = ProducerConfig::from_env_vars(vars(&[
            ("RMQ_PRODUCER_GROUP", "g"),
            ("RMQ_PRODUCER_SEND_TIMEOUT", "5"),
        ]))
        .unwrap_err();
        assert_eq!(e.key(), Some("RMQ_PRODUCER_SEND_TIMEOUT"));
        assert!(
            e.to_string().contains("expected a duration such as 3s"),
            "{e}"
        );
        let e = ProducerConfig::from_env_vars(vars(&[
            ("RMQ_PRODUCER_GROUP", "g"),
            ("RMQ_PRODUCER_SEND_TIMOUT", "5s"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown setting RMQ_PRODUCER_SEND_TIMOUT (did you mean RMQ_PRODUCER_SEND_TIMEOUT?)"
        );
        let e = ProducerConfig::from_env_vars(vars(&[
            ("RMQ_PRODUCER_GROUP", "g"),
            ("RMQ_PRODUCER_VIP_CHANNEL", "maybe"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("expected true or false"), "{e}");
        // Values are validated after parsing; no name server at all is an error.
        let e = ProducerConfig::from_env_vars(vars(&[("RMQ_PRODUCER_GROUP", "g")])).unwrap_err();
        assert_eq!(e.key(), Some("namesrv_addrs"));
        let e = ProducerConfig::from_env_vars(vars(&[
            ("RMQ_PRODUCER_GROUP", "g"),
            ("NAMESRV_ADDR", "a:1"),
            ("RMQ_PRODUCER_RETRIES", "99"),
        ]))
        .unwrap_err();
        assert_eq!(e.to_string(), "retries must be ≤ 16, got 99");
    }
}
