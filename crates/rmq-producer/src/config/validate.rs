//! [`ProducerConfig::validate`]: every range and consistency rule.

use std::time::Duration;

use rmq_protocol::ResponseCode;
use rmq_protocol::validate::{is_name_char, validate_group, validate_topic};

use super::{ConfigError, ProducerConfig};
use crate::compress::CompressError;

/// The longest timeout or backoff accepted: 1 hour (also keeps deadline arithmetic
/// far from overflow).
pub(super) const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest route poll interval: 24 hours.
pub(super) const MAX_POLL_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Brokers drop a client whose last heartbeat is older than this.
pub(super) const BROKER_CLIENT_EXPIRY: Duration = Duration::from_secs(120);
/// The most retries.
pub(super) const MAX_RETRIES: u32 = 16;
/// The largest `max_message_size`: 128 MiB.
pub(super) const MAX_MESSAGE_SIZE_LIMIT: usize = 128 * 1024 * 1024;
/// The most queues for `default_topic_queue_nums`.
pub(super) const MAX_TOPIC_QUEUE_NUMS: u32 = 1024;
/// The longest instance or unit name.
pub(super) const MAX_NAME_LEN: usize = 255;
/// The most in-flight permits a semaphore can hold.
const MAX_PERMITS: usize = tokio::sync::Semaphore::MAX_PERMITS;

fn d(v: Duration) -> String {
    humantime::format_duration(v).to_string()
}

fn positive_at_most(key: &str, v: Duration, max: Duration) -> Result<(), ConfigError> {
    if v.is_zero() {
        return Err(ConfigError::invalid(key, d(v), "must be > 0"));
    }
    if v > max {
        return Err(ConfigError::invalid(
            key,
            d(v),
            format!("must be ≤ {}", d(max)),
        ));
    }
    Ok(())
}

/// A client-id part (instance or unit name): not blank, no `@`, no whitespace or
/// control characters, at most 255 characters.
fn client_id_part(key: &str, v: Option<&str>) -> Result<(), ConfigError> {
    let Some(v) = v else { return Ok(()) };
    let bad = |reason: &str| Err(ConfigError::invalid(key, format!("{v:?}"), reason));
    if v.is_empty() {
        return bad("must not be empty (leave it out for the default)");
    }
    if v.chars()
        .any(|c| c == '@' || c.is_whitespace() || c.is_control())
    {
        return bad("must not contain '@', whitespace or control characters");
    }
    if v.chars().count() > MAX_NAME_LEN {
        return bad("must be at most 255 characters");
    }
    Ok(())
}

/// `host:port` or `[v6]:port`, port 1..=65535, host without whitespace.
fn check_addr(addr: &str) -> Result<(), &'static str> {
    if addr.contains("://") {
        return Err("must be host:port without a scheme");
    }
    let (host, port) = addr.rsplit_once(':').ok_or("must be host:port")?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or("IPv6 hosts are written [addr]:port")?,
        None if host.contains(':') => return Err("IPv6 hosts are written [addr]:port"),
        None => host,
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '[' || c == ']')
    {
        return Err("must be host:port with a host name or IP address");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("must end with a port 1..=65535"),
    }
}

impl ProducerConfig {
    /// Checks every setting; the error names the first bad one, its value and the
    /// rule.
    ///
    /// The rules: `group` as Java's `Validators.checkGroup` (also after the
    /// namespace is added); at least one `namesrv_addrs` entry, each `host:port`;
    /// `namespace` of `[|a-zA-Z0-9_-]`; timeouts > 0 and ≤ 1 h, `attempt_timeout` ≤
    /// `send_timeout`; `retries` ≤ 16; `retry_backoff_min` ≤ `retry_backoff_max` ≤ 1 h;
    /// `retryable_codes` without 0, 10, 11, 12; `max_in_flight_messages` ≥ 1;
    /// `max_in_flight_bytes` ≥ `max_message_size`; the compression codec compiled
    /// in and its level in range; `max_message_size` in 1 B..=128 MiB;
    /// `default_topic_queue_nums` in 1..=1024; `create_topic_key` a valid topic;
    /// `heartbeat_interval` in (0, 120 s); `route_poll_interval` in (0, 24 h];
    /// instance and unit names without `@` or whitespace; `client_ip` not
    /// unspecified; `access_key` and `secret_key` together, `security_token` only with
    /// them; TLS settings only with `tls.enabled`, which needs the `tls` feature,
    /// client certificate and key together; with `auto_batch.enabled`,
    /// `auto_batch.linger` in (0, 30 s], `auto_batch.max_batch_bytes` in 1 B..=2 MiB
    /// and ≤ `max_message_size`, `auto_batch.max_total_bytes` ≥ `max_batch_bytes`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for the first rule broken.
    ///
    /// ```
    /// use rmq_producer::config::{ConfigError, ProducerConfig, Secret};
    ///
    /// let mut config = ProducerConfig::new("orders-producer");
    /// config.namesrv_addrs = vec!["10.0.0.1:9876".into()];
    /// config.validate()?;
    /// // A secret key without its access key breaks a rule.
    /// config.secret_key = Some(Secret::new("s3cr3t"));
    /// assert!(matches!(config.validate(), Err(ConfigError::Invalid { .. })));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_identity()?;
        self.validate_timing()?;
        self.validate_limits()?;
        self.auto_batch.validate(self.max_message_size)?;
        self.validate_security()
    }

    fn validate_identity(&self) -> Result<(), ConfigError> {
        let group_err = |e: rmq_protocol::validate::ValidationError| {
            ConfigError::invalid(
                "group",
                format!("{:?}", self.group),
                format!("is not valid: {e}"),
            )
        };
        validate_group(&self.group).map_err(group_err)?;
        if let Some(ns) = &self.namespace {
            if ns.trim().is_empty() || ns.chars().any(|c| c == '%' || !is_name_char(c)) {
                return Err(ConfigError::invalid(
                    "namespace",
                    format!("{ns:?}"),
                    "must be non-empty and only contain [|a-zA-Z0-9_-]",
                ));
            }
            // Java wraps the group at start: the wrapped name must still be valid.
            validate_group(&format!("{ns}%{}", self.group)).map_err(group_err)?;
        }
        if self.namesrv_addrs.is_empty() {
            return Err(ConfigError::invalid(
                "namesrv_addrs",
                "[]",
                "must list at least one name server (host:port)",
            ));
        }
        for addr in &self.namesrv_addrs {
            check_addr(addr)
                .map_err(|why| ConfigError::invalid("namesrv_addrs", format!("{addr:?}"), why))?;
        }
        client_id_part("instance_name", self.instance_name.as_deref())?;
        client_id_part("unit_name", self.unit_name.as_deref())?;
        if let Some(ip) = self.client_ip
            && ip.is_unspecified()
        {
            return Err(ConfigError::invalid(
                "client_ip",
                ip,
                "must be an address this host is reached by, not unspecified",
            ));
        }
        validate_topic(&self.create_topic_key).map_err(|e| {
            ConfigError::invalid(
                "create_topic_key",
                format!("{:?}", self.create_topic_key),
                format!("is not a valid topic: {e}"),
            )
        })
    }

    fn validate_timing(&self) -> Result<(), ConfigError> {
        positive_at_most("send_timeout", self.send_timeout, MAX_TIMEOUT)?;
        if let Some(t) = self.attempt_timeout {
            positive_at_most("attempt_timeout", t, self.send_timeout).map_err(|_| {
                ConfigError::invalid(
                    "attempt_timeout",
                    d(t),
                    format!("must be > 0 and ≤ send_timeout ({})", d(self.send_timeout)),
                )
            })?;
        }
        positive_at_most("connect_timeout", self.connect_timeout, MAX_TIMEOUT)?;
        positive_at_most("control_timeout", self.control_timeout, MAX_TIMEOUT)?;
        if self.retries > MAX_RETRIES {
            return Err(ConfigError::invalid(
                "retries",
                self.retries,
                "must be ≤ 16",
            ));
        }
        if self.retry_backoff_max > MAX_TIMEOUT {
            return Err(ConfigError::invalid(
                "retry_backoff_max",
                d(self.retry_backoff_max),
                "must be ≤ 1h",
            ));
        }
        if self.retry_backoff_min > self.retry_backoff_max {
            return Err(ConfigError::invalid(
                "retry_backoff_min",
                d(self.retry_backoff_min),
                format!(
                    "must be ≤ retry_backoff_max ({})",
                    d(self.retry_backoff_max)
                ),
            ));
        }
        for &code in &self.retryable_codes {
            let reason = match code {
                ResponseCode::SUCCESS => "must not contain 0 (SUCCESS)",
                ResponseCode::FLUSH_DISK_TIMEOUT
                | ResponseCode::SLAVE_NOT_AVAILABLE
                | ResponseCode::FLUSH_SLAVE_TIMEOUT => {
                    "must not contain 10, 11 or 12: those messages are stored; use retry_on_not_stored"
                }
                _ => continue,
            };
            return Err(ConfigError::invalid("retryable_codes", code.0, reason));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= BROKER_CLIENT_EXPIRY {
            return Err(ConfigError::invalid(
                "heartbeat_interval",
                d(self.heartbeat_interval),
                "must be > 0 and < 2m (brokers drop clients silent for 2 minutes)",
            ));
        }
        positive_at_most(
            "route_poll_interval",
            self.route_poll_interval,
            MAX_POLL_INTERVAL,
        )
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.max_in_flight_messages == 0 || self.max_in_flight_messages > MAX_PERMITS {
            return Err(ConfigError::invalid(
                "max_in_flight_messages",
                self.max_in_flight_messages,
                format!("must be ≥ 1 and ≤ {MAX_PERMITS}"),
            ));
        }
        if self.max_message_size == 0 || self.max_message_size > MAX_MESSAGE_SIZE_LIMIT {
            return Err(ConfigError::invalid(
                "max_message_size",
                self.max_message_size,
                format!("must be ≥ 1 and ≤ {MAX_MESSAGE_SIZE_LIMIT} (128 MiB)"),
            ));
        }
        if self.max_in_flight_bytes < self.max_message_size
            || self.max_in_flight_bytes > MAX_PERMITS
        {
            return Err(ConfigError::invalid(
                "max_in_flight_bytes",
                self.max_in_flight_bytes,
                format!(
                    "must be ≥ max_message_size ({}) so that any message fits, and ≤ {MAX_PERMITS}",
                    self.max_message_size
                ),
            ));
        }
        if self.compression.enabled {
            let c = &self.compression;
            match c.validate() {
                Ok(()) => {}
                Err(CompressError::InvalidLevel { kind, min, max, .. }) => {
                    return Err(ConfigError::invalid(
                        "compression.level",
                        c.level,
                        format!(
                            "for {} must be in {min}..={max}",
                            kind.java_name().to_ascii_lowercase()
                        ),
                    ));
                }
                Err(e) => {
                    return Err(ConfigError::invalid(
                        "compression.kind",
                        c.kind.java_name().to_ascii_lowercase(),
                        e.to_string(),
                    ));
                }
            }
        }
        if self.default_topic_queue_nums == 0
            || self.default_topic_queue_nums > MAX_TOPIC_QUEUE_NUMS
        {
            return Err(ConfigError::invalid(
                "default_topic_queue_nums",
                self.default_topic_queue_nums,
                "must be in 1..=1024",
            ));
        }
        Ok(())
    }

    fn validate_security(&self) -> Result<(), ConfigError> {
        match (&self.access_key, &self.secret_key) {
            (Some(ak), Some(sk)) => {
                if ak.is_empty() {
                    return Err(ConfigError::invalid(
                        "access_key",
                        "\"\"",
                        "must not be empty",
                    ));
                }
                if sk.expose().is_empty() {
                    return Err(ConfigError::invalid(
                        "secret_key",
                        "\"\"",
                        "must not be empty",
                    ));
                }
            }
            (None, None) => {
                if self.security_token.is_some() {
                    return Err(ConfigError::invalid(
                        "security_token",
                        "<redacted>",
                        "needs access_key and secret_key",
                    ));
                }
            }
            (Some(ak), None) => {
                return Err(ConfigError::invalid(
                    "secret_key",
                    "none",
                    format!("must be set with access_key {ak:?}"),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "access_key",
                    "none",
                    "must be set with secret_key",
                ));
            }
        }
        let tls = &self.tls;
        if !tls.enabled {
            let set = [
                ("tls.ca_file", tls.ca_file.is_some()),
                ("tls.system_roots", tls.system_roots.is_some()),
                ("tls.client_cert_file", tls.client_cert_file.is_some()),
                ("tls.client_key_file", tls.client_key_file.is_some()),
                ("tls.server_name", tls.server_name.is_some()),
                (
                    "tls.danger_accept_invalid_certs",
                    tls.danger_accept_invalid_certs,
                ),
            ];
            if let Some((key, _)) = set.iter().find(|(_, on)| *on) {
                return Err(ConfigError::invalid(
                    *key,
                    "set",
                    "has no effect unless tls.enabled = true",
                ));
            }
            return Ok(());
        }
        if !cfg!(feature = "tls") {
            return Err(ConfigError::invalid(
                "tls.enabled",
                true,
                "needs the `tls` feature of rmq-producer",
            ));
        }
        if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
            let (key, other) = if tls.client_cert_file.is_some() {
                ("tls.client_key_file", "tls.client_cert_file")
            } else {
                ("tls.client_cert_file", "tls.client_key_file")
            };
            return Err(ConfigError::invalid(
                key,
                "none",
                format!("must be set with {other}"),
            ));
        }
        if let Some(name) = &tls.server_name
            && (name.is_empty() || name.chars().any(char::is_whitespace))
        {
            return Err(ConfigError::invalid(
                "tls.server_name",
                format!("{name:?}"),
                "must be a DNS name or IP address",
            ));
        }
        positive_at_most("tls.handshake_timeout", tls.handshake_timeout, MAX_TIMEOUT)?;
        Ok(())
    }
}
