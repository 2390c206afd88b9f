//! Producer configuration: every setting, its default, its valid range, and loading
//! from TOML or environment variables.
//!
//! [`ProducerConfig::new`] gives the defaults (decisions.md "Producer defaults"); set
//! the public fields you need, then [`validate`](ProducerConfig::validate) (the
//! producer's builder does that too). Each field's documentation gives its default
//! and the Java default it keeps or deliberately changes.
//!
//! ```
//! use std::time::Duration;
//! use rmq_producer::config::ProducerConfig;
//!
//! let mut config = ProducerConfig::new("orders-producer");
//! config.namesrv_addrs = vec!["10.0.0.1:9876".into(), "10.0.0.2:9876".into()];
//! config.send_timeout = Duration::from_secs(5);
//! config.validate()?;
//! # Ok::<(), rmq_producer::config::ConfigError>(())
//! ```
//!
//! # TOML
//!
//! Keys are the field names; every key except `group` may be left out. Durations are
//! strings such as `"3s"`, `"500ms"` or `"1m 30s"`. Unknown keys are errors, with a
//! suggestion for typos. [`ProducerConfig::from_toml_str`] and
//! [`from_toml_file`](ProducerConfig::from_toml_file) return a validated config.
//!
//! ```
//! use std::time::Duration;
//! use rmq_producer::config::ProducerConfig;
//!
//! let config = ProducerConfig::from_toml_str(r#"
//!     group = "orders-producer"
//!     namesrv_addrs = "10.0.0.1:9876;10.0.0.2:9876"   # or an array of strings
//!     send_timeout = "5s"
//!     retries = 3
//!
//!     [compression]
//!     kind = "zstd"
//!     level = 3
//! "#)?;
//! assert_eq!(config.send_timeout, Duration::from_secs(5));
//! assert_eq!(config.namesrv_addrs.len(), 2);
//! # Ok::<(), rmq_producer::config::ConfigError>(())
//! ```
//!
//! # Environment
//!
//! [`ProducerConfig::from_env`] reads `RMQ_PRODUCER_<KEY>` with the key upper-cased
//! and `.` replaced by `_` (`RMQ_PRODUCER_SEND_TIMEOUT=5s`,
//! `RMQ_PRODUCER_COMPRESSION_KIND=lz4`, `RMQ_PRODUCER_TLS_CA_FILE=/etc/ca.pem`).
//! `RMQ_PRODUCER_NAMESRV` is short for `RMQ_PRODUCER_NAMESRV_ADDRS`, and Java's
//! `NAMESRV_ADDR` is used when neither is set. Lists are separated by `;` or `,`.
//! An empty value counts as unset. [`ProducerConfig::from_env_vars`] takes the
//! variables as an argument (for tests), and [`ProducerConfig::apply_env_vars`]
//! overlays them on a config loaded from a file.
//!
//! ```
//! use rmq_producer::config::ProducerConfig;
//!
//! let vars = [
//!     ("RMQ_PRODUCER_GROUP", "orders-producer"),
//!     ("NAMESRV_ADDR", "10.0.0.1:9876"),
//!     ("RMQ_PRODUCER_RETRIES", "4"),
//! ];
//! let config = ProducerConfig::from_env_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned())))?;
//! assert_eq!(config.retries, 4);
//! assert_eq!(config.namesrv_addrs, ["10.0.0.1:9876"]);
//! # Ok::<(), rmq_producer::config::ConfigError>(())
//! ```

mod auto_batch;
mod env;
mod error;
mod file;
mod validate;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rmq_protocol::{ResponseCode, SerializeType};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::compress::Compression;

pub use auto_batch::AutoBatchSettings;
pub use env::ENV_PREFIX;
pub use error::ConfigError;

/// The default of every setting, as constants (the same values [`ProducerConfig::new`]
/// uses).
pub mod defaults {
    use std::time::Duration;

    use rmq_protocol::ResponseCode;

    /// Send deadline, from the call to the response, retries included: 3 s (Java
    /// `sendMsgTimeout`, also a total budget).
    pub const SEND_TIMEOUT: Duration = Duration::from_secs(3);
    /// Connect timeout: 3 s (Java `connectTimeoutMillis`).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    /// Timeout of route, heartbeat and unregister requests: 3 s (Java `mqClientApiTimeout`).
    pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(3);
    /// Retries after the first attempt: 2 (Java `retryTimesWhenSendFailed`).
    pub const RETRIES: u32 = 2;
    /// Shortest backoff before retrying after a flow-control answer: 50 ms (Java: none).
    pub const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(50);
    /// Longest backoff before retrying after a flow-control answer: 1 s (Java: none).
    pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);
    /// Broker codes that are retried: Java 5.3.1+'s `retryResponseCodes`
    /// {1, 2, 14, 16, 17, 204, 205, 1500}.
    pub const RETRYABLE_CODES: [ResponseCode; 8] = [
        ResponseCode::SYSTEM_ERROR,
        ResponseCode::SYSTEM_BUSY,
        ResponseCode::SERVICE_NOT_AVAILABLE,
        ResponseCode::NO_PERMISSION,
        ResponseCode::TOPIC_NOT_EXIST,
        ResponseCode::NO_BUYER_ID,
        ResponseCode::NOT_IN_CURRENT_UNIT,
        ResponseCode::GO_AWAY,
    ];
    /// Messages in flight: 10 000 (Java 5.0–5.3.3 `backPressureForAsyncSendNum`, off by default there).
    pub const MAX_IN_FLIGHT_MESSAGES: usize = 10_000;
    /// Body bytes in flight: 100 MiB (Java `backPressureForAsyncSendSize`).
    pub const MAX_IN_FLIGHT_BYTES: usize = 100 * 1024 * 1024;
    /// Largest body, before compression: 4 MiB (Java `maxMessageSize`).
    pub const MAX_MESSAGE_SIZE: usize = rmq_protocol::validate::DEFAULT_MAX_MESSAGE_SIZE;
    /// Queues of a topic created through the TBW102 path: 4 (Java `defaultTopicQueueNums`).
    pub const DEFAULT_TOPIC_QUEUE_NUMS: u32 = 4;
    /// The topic whose route new topics borrow: `"TBW102"` (Java `createTopicKey`).
    pub const CREATE_TOPIC_KEY: &str = "TBW102";
    /// Heartbeat period: 30 s (Java `heartbeatBrokerInterval`).
    pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
    /// Route refresh period: 30 s (Java `pollNameServerInterval`).
    pub const ROUTE_POLL_INTERVAL: Duration = Duration::from_secs(30);
    /// TLS handshake timeout: 3 s.
    pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
}

/// Every setting of a producer. See the [module docs](self) for loading.
///
/// The fields are public; the struct is `#[non_exhaustive]`, so outside this crate it
/// is made with [`ProducerConfig::new`] (or loaded) and then changed field by field.
/// [`validate`](Self::validate) checks every rule; the error names the setting.
///
/// `Debug` never shows `secret_key` or `security_token`. `Serialize` writes them
/// (a config must round-trip), so do not log a serialized config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default = "ProducerConfig::unnamed", deny_unknown_fields)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// The producer group. **Required**; `[%|a-zA-Z0-9_-]`, at most 255 characters,
    /// not `DEFAULT_PRODUCER` (Java's default, which must be changed). Transaction
    /// checks find the producer by it.
    pub group: String,
    /// Name-server addresses, `host:port` (`[v6]:port` for IPv6). Required (at least
    /// one). In TOML an array or a `;`-separated string, as Java's `namesrvAddr`.
    /// Default: empty (Java: `-Drocketmq.namesrv.addr` or `NAMESRV_ADDR`, which
    /// [`from_env`](Self::from_env) also reads; no HTTP lookup).
    #[serde(deserialize_with = "addr_list", alias = "namesrv")]
    pub namesrv_addrs: Vec<String>,
    /// Namespace (v1, Java `namespace`): the group and topics are sent as
    /// `namespace%name`. Default: none. `[|a-zA-Z0-9_-]` (no `%`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Deadline of a send, from the call until the response, retries and waiting for
    /// back-pressure included. Default 3 s (Java `sendMsgTimeout`, same meaning).
    /// Range: > 0 and ≤ 1 h.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// Cap on one attempt's share of the deadline. Default: none (each attempt gets
    /// what is left minus a reserve for the remaining attempts). Java 5.3.3+
    /// `sendMsgMaxTimeoutPerRequest`, off by default too. Range: > 0 and ≤
    /// `send_timeout`.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub attempt_timeout: Option<Duration>,
    /// Longest wait for a TCP (and TLS) connection; also never more than the
    /// attempt's budget. Default 3 s (Java 3 s). Range: > 0 and ≤ 1 h.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Timeout of control requests: route lookups, heartbeats, unregister. Default
    /// 3 s (Java `mqClientApiTimeout`). Range: > 0 and ≤ 1 h.
    #[serde(with = "humantime_serde")]
    pub control_timeout: Duration,
    /// Retries after the first attempt, in every mode that retries (sync, async,
    /// batch). Default 2, i.e. 3 attempts (Java `retryTimesWhenSendFailed`; Java's
    /// async mode retries only transport errors, this producer applies one rule).
    /// Range: 0..=16.
    pub retries: u32,
    /// Shortest jittered backoff before a retry after a flow-control code such as
    /// SYSTEM_BUSY. Default 50 ms (Java retries immediately, which adds load to a
    /// busy broker). Transport errors are retried at once on another broker.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_min: Duration,
    /// Longest such backoff. Default 1 s. Range: ≥ `retry_backoff_min`, ≤ 1 h.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    /// Broker response codes that are retried. Default Java 5.3.1+'s set
    /// {1, 2, 14, 16, 17, 204, 205, 1500}. May not contain 0 (SUCCESS) or the
    /// "stored" codes 10, 11, 12 (see `retry_on_not_stored`). In TOML an array of
    /// integers.
    #[serde(with = "codes_serde")]
    pub retryable_codes: Vec<ResponseCode>,
    /// Retry on another broker when the broker answers FLUSH_DISK_TIMEOUT,
    /// FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE. Those messages **are stored**, so
    /// a retry duplicates them. Default `false`: they are returned as statuses (Java
    /// `retryAnotherBrokerWhenNotStoreOK`, also false).
    pub retry_on_not_stored: bool,
    /// Back-pressure: the most messages in flight (sent, not yet answered) in every
    /// send mode. Default 10 000 (Java's async back-pressure is off by default;
    /// this producer is always bounded). Range: ≥ 1.
    pub max_in_flight_messages: usize,
    /// Back-pressure: the most body bytes in flight. Default 100 MiB (Java
    /// `backPressureForAsyncSendSize`). Range: ≥ `max_message_size`, so that any
    /// valid message can be sent.
    pub max_in_flight_bytes: usize,
    /// Body compression of single messages. Default zlib level 5 for bodies of at
    /// least 4096 bytes (Java's; off when built without the `zlib` feature).
    /// Batches and half messages are never compressed.
    pub compression: Compression,
    /// The largest body, measured before compression. Default 4 MiB (Java
    /// `maxMessageSize`; brokers reject more by default). Range: 1 B..=128 MiB.
    pub max_message_size: usize,
    /// Queues of a topic the broker creates on first use (TBW102 path). Default 4
    /// (Java `defaultTopicQueueNums`). Range: 1..=1024.
    pub default_topic_queue_nums: u32,
    /// The topic whose route a missing topic borrows. Default `"TBW102"` (Java
    /// `createTopicKey`). A valid topic name.
    pub create_topic_key: String,
    /// When the name server has no route for a topic, send through the route of
    /// `create_topic_key` and let the broker auto-create the topic (if it allows
    /// that). Default `true`, as Java. Turn off to fail fast on unknown topics.
    pub tbw102_fallback: bool,
    /// Avoid brokers that were slow or failing (Java 5.x latency tables). Default
    /// `true` (Java `sendLatencyEnable` defaults to false).
    pub latency_fault_tolerance: bool,
    /// Heartbeat period to every master broker. Default 30 s (Java
    /// `heartbeatBrokerInterval`). Range: > 0 and < 120 s (brokers drop clients
    /// silent for 120 s).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Route refresh period for every topic sent to. Default 30 s (Java
    /// `pollNameServerInterval`). Range: > 0 and ≤ 24 h.
    #[serde(with = "humantime_serde")]
    pub route_poll_interval: Duration,
    /// Header encoding of requests. Default [`HeaderFormat::Binary`] (ROCKETMQ;
    /// Java's default is JSON). Responses are decoded by their own format either way.
    pub header_format: HeaderFormat,
    /// Send to the broker's VIP port (port − 2). Default `false` (Java
    /// `vipChannelEnabled`, false since 4.x).
    pub vip_channel: bool,
    /// Instance name in the client id `ip@instance[@unit]`. Default: none, meaning
    /// `pid#millis#random` — unique per producer, so two producers of one process
    /// never receive each other's reply pushes or transaction checks (Java replaces
    /// `"DEFAULT"` with `pid#nanoTime`). No `@`, no whitespace, at most 255 characters.
    /// Producers given the same name share a client id, as in Java.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// Unit name appended to the client id. Default: none (Java: none). Same
    /// character rules as `instance_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_name: Option<String>,
    /// The IP put into the client id and message ids. Default: detected (a
    /// non-loopback IPv4 preferred, as Java). Must not be unspecified (`0.0.0.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// ACL 1.0 access key. Default: none (no signing). Needs `secret_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// ACL 1.0 secret key. Default: none. Needs `access_key`. Never shown by `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<Secret>,
    /// ACL security token (STS). Default: none. Needs the keys. Never shown by `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_token: Option<Secret>,
    /// TLS to name servers and brokers. Default: off (Java `tls.enable` false).
    /// When on, certificates are verified by default (Java's test mode trusts any).
    pub tls: TlsSettings,
    /// Auto-batching of plain sends (the `[auto_batch]` table). Default: off, as
    /// Java's `autoBatch`.
    pub auto_batch: AutoBatchSettings,
}

impl ProducerConfig {
    /// Every key of the TOML format (nested keys with `.`), in declaration order.
    /// `RMQ_PRODUCER_` + the key upper-cased with `.` → `_` is its environment name.
    pub const KEYS: &'static [&'static str] = &[
        "group",
        "namesrv_addrs",
        "namespace",
        "send_timeout",
        "attempt_timeout",
        "connect_timeout",
        "control_timeout",
        "retries",
        "retry_backoff_min",
        "retry_backoff_max",
        "retryable_codes",
        "retry_on_not_stored",
        "max_in_flight_messages",
        "max_in_flight_bytes",
        "compression.enabled",
        "compression.kind",
        "compression.level",
        "compression.threshold",
        "max_message_size",
        "default_topic_queue_nums",
        "create_topic_key",
        "tbw102_fallback",
        "latency_fault_tolerance",
        "heartbeat_interval",
        "route_poll_interval",
        "header_format",
        "vip_channel",
        "instance_name",
        "unit_name",
        "client_ip",
        "access_key",
        "secret_key",
        "security_token",
        "tls.enabled",
        "tls.ca_file",
        "tls.system_roots",
        "tls.client_cert_file",
        "tls.client_key_file",
        "tls.server_name",
        "tls.handshake_timeout",
        "tls.danger_accept_invalid_certs",
        "auto_batch.enabled",
        "auto_batch.linger",
        "auto_batch.max_batch_bytes",
        "auto_batch.max_total_bytes",
    ];

    /// The defaults, with `group` set (not validated: call
    /// [`validate`](Self::validate)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::new("orders-producer");
    /// assert_eq!(config.send_timeout, Duration::from_secs(3));
    /// assert_eq!(config.retries, 2);
    /// assert!(config.validate().is_err()); // no name server yet
    /// config.namesrv_addrs = vec!["10.0.0.1:9876".into()];
    /// config.validate()?;
    /// # Ok::<(), rmq_producer::config::ConfigError>(())
    /// ```
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            ..Self::unnamed()
        }
    }

    /// The defaults with an empty group: the base serde fills in.
    fn unnamed() -> Self {
        Self {
            group: String::new(),
            namesrv_addrs: Vec::new(),
            namespace: None,
            send_timeout: defaults::SEND_TIMEOUT,
            attempt_timeout: None,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            control_timeout: defaults::CONTROL_TIMEOUT,
            retries: defaults::RETRIES,
            retry_backoff_min: defaults::RETRY_BACKOFF_MIN,
            retry_backoff_max: defaults::RETRY_BACKOFF_MAX,
            retryable_codes: defaults::RETRYABLE_CODES.to_vec(),
            retry_on_not_stored: false,
            max_in_flight_messages: defaults::MAX_IN_FLIGHT_MESSAGES,
            max_in_flight_bytes: defaults::MAX_IN_FLIGHT_BYTES,
            compression: Compression::default(),
            max_message_size: defaults::MAX_MESSAGE_SIZE,
            default_topic_queue_nums: defaults::DEFAULT_TOPIC_QUEUE_NUMS,
            create_topic_key: defaults::CREATE_TOPIC_KEY.to_owned(),
            tbw102_fallback: true,
            latency_fault_tolerance: true,
            heartbeat_interval: defaults::HEARTBEAT_INTERVAL,
            route_poll_interval: defaults::ROUTE_POLL_INTERVAL,
            header_format: HeaderFormat::Binary,
            vip_channel: false,
            instance_name: None,
            unit_name: None,
            client_ip: None,
            access_key: None,
            secret_key: None,
            security_token: None,
            tls: TlsSettings::default(),
            auto_batch: AutoBatchSettings::default(),
        }
    }

    /// Whether a broker response code is retried (it is in `retryable_codes`).
    ///
    /// ```
    /// use rmq_producer::ResponseCode;
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::new("g");
    /// assert!(config.is_retryable_code(ResponseCode::SYSTEM_BUSY));
    /// assert!(!config.is_retryable_code(ResponseCode::MESSAGE_ILLEGAL));
    /// config.retryable_codes.retain(|c| *c != ResponseCode::SYSTEM_BUSY);
    /// assert!(!config.is_retryable_code(ResponseCode::SYSTEM_BUSY));
    /// ```
    pub fn is_retryable_code(&self, code: ResponseCode) -> bool {
        self.retryable_codes.contains(&code)
    }

    /// Total attempts: `retries + 1`.
    ///
    /// ```
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::new("g");
    /// assert_eq!(config.max_attempts(), 3); // Java's retryTimesWhenSendFailed = 2
    /// config.retries = u32::MAX;
    /// assert_eq!(config.max_attempts(), u32::MAX); // saturates
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }
}

/// The header encoding of requests (the response's own type byte decides how a
/// response is decoded).
///
/// In TOML and the environment: `"binary"` (also `"rocketmq"`) or `"json"`, any case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderFormat {
    /// The ROCKETMQ binary header (serialize type 1). The default: smaller and
    /// cheaper to encode; every server since 4.x reads it.
    #[default]
    Binary,
    /// The JSON header (serialize type 0), Java's default.
    Json,
}

impl HeaderFormat {
    /// The wire serialize type.
    ///
    /// ```
    /// use rmq_producer::HeaderFormat;
    /// use rmq_protocol::SerializeType;
    ///
    /// assert_eq!(HeaderFormat::default().serialize_type(), SerializeType::ROCKETMQ);
    /// assert_eq!(HeaderFormat::Json.serialize_type(), SerializeType::JSON);
    /// ```
    pub fn serialize_type(self) -> SerializeType {
        match self {
            Self::Binary => SerializeType::ROCKETMQ,
            Self::Json => SerializeType::JSON,
        }
    }

    /// The name used in configuration: `"binary"` or `"json"`.
    ///
    /// ```
    /// use rmq_producer::HeaderFormat;
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::new("g");
    /// config.set("header_format", HeaderFormat::Json.as_str())?;
    /// assert_eq!(config.header_format, HeaderFormat::Json);
    /// assert_eq!(HeaderFormat::Binary.to_string(), "binary");
    /// # Ok::<(), rmq_producer::config::ConfigError>(())
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Binary => "binary",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for HeaderFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HeaderFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("binary") || s.eq_ignore_ascii_case("rocketmq") {
            Ok(Self::Binary)
        } else if s.eq_ignore_ascii_case("json") {
            Ok(Self::Json)
        } else {
            Err(format!(
                "unknown header format {s:?}, expected \"binary\" or \"json\""
            ))
        }
    }
}

impl Serialize for HeaderFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HeaderFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// TLS settings, as plain data (paths, not loaded certificates). In TOML the `[tls]`
/// table; every field may be left out.
///
/// ```toml
/// [tls]
/// enabled = true
/// ca_file = "/etc/rocketmq/ca.pem"
/// client_cert_file = "/etc/rocketmq/client.pem"
/// client_key_file = "/etc/rocketmq/client.key"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsSettings {
    /// Use TLS. Default `false`. Needs the `tls` cargo feature.
    pub enabled: bool,
    /// PEM file of the CA certificates to trust. Default: none (the system roots).
    /// Giving one replaces the system roots unless `system_roots` is `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Trust the system roots: default "exactly when no `ca_file` is given".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_roots: Option<bool>,
    /// Client certificate chain (PEM) for mutual TLS. Default: none. Needs
    /// `client_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of the client certificate. Default:
    /// none. Needs `client_cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// Verify every server certificate against this name instead of the dialled
    /// host (brokers are addressed by IP). Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Handshake timeout. Default 3 s. Range: > 0 and ≤ 1 h.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// **Accept any server certificate.** Anyone on the path can then impersonate
    /// the broker. Default `false`; for tests only (Java's default test mode is
    /// this insecure; this producer is not).
    pub danger_accept_invalid_certs: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            ca_file: None,
            system_roots: None,
            client_cert_file: None,
            client_key_file: None,
            server_name: None,
            handshake_timeout: defaults::TLS_HANDSHAKE_TIMEOUT,
            danger_accept_invalid_certs: false,
        }
    }
}

impl TlsSettings {
    /// The transport's TLS configuration for these settings (files are read when the
    /// connector is built).
    ///
    /// ```
    /// use rmq_producer::config::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::new("g");
    /// config.tls.enabled = true;
    /// config.tls.server_name = Some("broker.internal".into());
    /// let tls = config.tls.to_tls_config(); // what the builder gives its TLS connector
    /// assert!(format!("{tls:?}").contains("broker.internal"));
    /// ```
    #[cfg(feature = "tls")]
    pub fn to_tls_config(&self) -> rmq_remoting::tls::TlsConfig {
        let mut c =
            rmq_remoting::tls::TlsConfig::new().with_handshake_timeout(self.handshake_timeout);
        if let Some(ca) = &self.ca_file {
            c = c.with_ca_file(ca.clone());
        }
        if let Some(on) = self.system_roots {
            c = c.with_system_roots(on);
        }
        if let (Some(cert), Some(key)) = (&self.client_cert_file, &self.client_key_file) {
            c = c.with_client_cert_files(cert.clone(), key.clone());
        }
        if let Some(name) = &self.server_name {
            c = c.with_server_name_override(name.clone());
        }
        if self.danger_accept_invalid_certs {
            c = c.danger_accept_invalid_certs();
        }
        c
    }
}

/// A secret string (a key or token): `Debug` and `Display` print `<redacted>`.
/// Serializes as the plain string, so that configs round-trip.
///
/// ```
/// use rmq_producer::config::Secret;
///
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    ///
    /// ```
    /// use rmq_producer::config::{ProducerConfig, Secret};
    ///
    /// let mut config = ProducerConfig::new("g");
    /// config.access_key = Some("AK".into());
    /// config.secret_key = Some(Secret::new("s3cr3t"));
    /// assert!(!format!("{config:?}").contains("s3cr3t")); // never printed
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself.
    ///
    /// ```
    /// use rmq_producer::config::Secret;
    ///
    /// let token = Secret::new("t0ken");
    /// assert_eq!(token.expose(), "t0ken"); // only when it must be used
    /// ```
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Splits a Java-style name-server list: `;` or `,` separated, blanks trimmed, empty
/// entries dropped.
///
/// ```
/// assert_eq!(
///     rmq_producer::config::parse_addr_list(" a:9876; b:9876,c:9876;"),
///     ["a:9876", "b:9876", "c:9876"]
/// );
/// ```
pub fn parse_addr_list(s: &str) -> Vec<String> {
    s.split([';', ','])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `namesrv_addrs`: an array of strings or one `;`-separated string.
fn addr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of \"host:port\" strings or one \";\"-separated string")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(parse_addr_list(s))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.extend(parse_addr_list(&s));
            }
            Ok(out)
        }
    }

    d.deserialize_any(Visitor)
}

/// Response codes as plain integers.
mod codes_serde {
    use rmq_protocol::ResponseCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        codes: &[ResponseCode],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(codes.iter().map(|c| c.0))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<ResponseCode>, D::Error> {
        Ok(Vec::<i32>::deserialize(d)?
            .into_iter()
            .map(ResponseCode)
            .collect())
    }
}

// The tests use every codec.
#[cfg(all(test, feature = "zlib", feature = "zstd", feature = "lz4"))]
mod tests;
