use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use rmq_protocol::ResponseCode;
use rmq_protocol::message::CompressionType;
use serde::Deserialize;

use super::*;

pub(super) fn valid() -> ProducerConfig {
    let mut c = ProducerConfig::new("orders-producer");
    c.namesrv_addrs = vec!["127.0.0.1:9876".into()];
    c
}

pub(super) fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every setting written out at its default value: a test that the documented
/// defaults and the code agree.
const DEFAULTS_TOML: &str = r#"
group = "orders-producer"
namesrv_addrs = ["127.0.0.1:9876"]
send_timeout = "3s"
connect_timeout = "3s"
control_timeout = "3s"
retries = 2
retry_backoff_min = "50ms"
retry_backoff_max = "1s"
retryable_codes = [1, 2, 14, 16, 17, 204, 205, 1500]
retry_on_not_stored = false
max_in_flight_messages = 10_000
max_in_flight_bytes = 104_857_600
max_message_size = 4_194_304
default_topic_queue_nums = 4
create_topic_key = "TBW102"
tbw102_fallback = true
latency_fault_tolerance = true
heartbeat_interval = "30s"
route_poll_interval = "30s"
header_format = "binary"
vip_channel = false

[compression]
enabled = true
kind = "zlib"
level = 5
threshold = 4096

[tls]
enabled = false
handshake_timeout = "3s"
danger_accept_invalid_certs = false
"#;

#[test]
fn defaults_are_the_decided_ones() {
    let c = valid();
    assert_eq!(c.send_timeout, Duration::from_secs(3));
    assert_eq!(c.attempt_timeout, None);
    assert_eq!(c.connect_timeout, Duration::from_secs(3));
    assert_eq!(c.control_timeout, Duration::from_secs(3));
    assert_eq!((c.retries, c.max_attempts()), (2, 3));
    assert_eq!(c.retry_backoff_min, Duration::from_millis(50));
    assert_eq!(c.retry_backoff_max, Duration::from_secs(1));
    let codes: Vec<i32> = c.retryable_codes.iter().map(|c| c.0).collect();
    assert_eq!(codes, [1, 2, 14, 16, 17, 204, 205, 1500]);
    assert!(c.is_retryable_code(ResponseCode::SYSTEM_BUSY));
    assert!(!c.is_retryable_code(ResponseCode::FLUSH_DISK_TIMEOUT));
    assert!(!c.retry_on_not_stored);
    assert_eq!(c.max_in_flight_messages, 10_000);
    assert_eq!(c.max_in_flight_bytes, 100 << 20);
    assert_eq!(c.compression, Compression::default());
    assert_eq!(c.max_message_size, 4 << 20);
    assert_eq!(c.default_topic_queue_nums, 4);
    assert_eq!(c.create_topic_key, "TBW102");
    assert!(c.tbw102_fallback && c.latency_fault_tolerance && !c.vip_channel);
    assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
    assert_eq!(c.route_poll_interval, Duration::from_secs(30));
    assert_eq!(c.header_format, HeaderFormat::Binary);
    assert_eq!(c.header_format.serialize_type(), SerializeType::ROCKETMQ);
    assert_eq!(HeaderFormat::Json.serialize_type(), SerializeType::JSON);
    assert_eq!(c.tls, TlsSettings::default());
    assert!(!c.tls.enabled);
    assert!(c.namespace.is_none() && c.instance_name.is_none() && c.client_ip.is_none());
    c.validate().unwrap();
}

#[test]
fn documented_defaults_parse_to_the_defaults() {
    assert_eq!(
        ProducerConfig::from_toml_str(DEFAULTS_TOML).unwrap(),
        valid()
    );
    // And with only the required keys.
    let minimal = "group = \"orders-producer\"\nnamesrv_addrs = \"127.0.0.1:9876\"\n";
    assert_eq!(ProducerConfig::from_toml_str(minimal).unwrap(), valid());
}

fn full() -> ProducerConfig {
    let mut c = valid();
    c.namesrv_addrs = vec!["a:9876".into(), "[::1]:9876".into()];
    c.namespace = Some("ns1".into());
    c.attempt_timeout = Some(Duration::from_millis(1500));
    c.retryable_codes = vec![ResponseCode::SYSTEM_BUSY, ResponseCode(9999)];
    c.compression.kind = CompressionType::Lz4;
    c.header_format = HeaderFormat::Json;
    c.instance_name = Some("pid#1".into());
    c.unit_name = Some("unit".into());
    c.client_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
    c.access_key = Some("ak".into());
    c.secret_key = Some(Secret::new("sk"));
    c.security_token = Some(Secret::new("t0ken-value"));
    c.tls = TlsSettings {
        enabled: cfg!(feature = "tls"),
        ca_file: Some("/etc/ca.pem".into()),
        system_roots: Some(true),
        client_cert_file: Some("/etc/c.pem".into()),
        client_key_file: Some("/etc/c.key".into()),
        server_name: Some("broker.example".into()),
        handshake_timeout: Duration::from_secs(5),
        danger_accept_invalid_certs: false,
    };
    c
}

#[test]
fn toml_round_trip() {
    for c in [valid(), full()] {
        let value = toml::Value::try_from(&c).unwrap();
        assert_eq!(ProducerConfig::deserialize(value.clone()).unwrap(), c);
        // Durations are written in human form.
        assert_eq!(
            value.get("send_timeout").and_then(|v| v.as_str()),
            Some("3s")
        );
        // Every key written is a known key, and a fully set config writes them all.
        let mut written = Vec::new();
        if let toml::Value::Table(t) = &value {
            for (k, v) in t {
                match v {
                    toml::Value::Table(inner) => {
                        written.extend(inner.keys().map(|i| format!("{k}.{i}")))
                    }
                    _ => written.push(k.clone()),
                }
            }
        }
        for k in &written {
            assert!(ProducerConfig::KEYS.contains(&k.as_str()), "{k}");
        }
        if c == full() {
            assert_eq!(written.len(), ProducerConfig::KEYS.len(), "{written:?}");
        }
    }
}

#[test]
fn debug_redacts_secrets() {
    let dbg = format!("{:?}", full());
    assert!(dbg.contains("access_key: Some(\"ak\")"), "{dbg}");
    assert!(!dbg.contains("\"sk\"") && !dbg.contains("t0ken"), "{dbg}");
    assert!(dbg.contains("secret_key: Some(<redacted>)"), "{dbg}");
}

#[test]
fn unknown_keys_are_rejected_with_a_suggestion() {
    let e = ProducerConfig::from_toml_str("group = \"g\"\nsend_timout = \"3s\"\n").unwrap_err();
    assert!(
        matches!(&e, ConfigError::UnknownKey { key, suggestion }
        if key == "send_timout" && suggestion.as_deref() == Some("send_timeout")),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "unknown setting send_timout (did you mean send_timeout?)"
    );
    let e = ProducerConfig::from_toml_str("group = \"g\"\n[compression]\nlevl = 3\n").unwrap_err();
    assert_eq!(e.key(), Some("compression.levl"));
    assert_eq!(
        e.to_string(),
        "unknown setting compression.levl (did you mean compression.level?)"
    );
    let e = ProducerConfig::from_toml_str("group = \"g\"\n[tls]\nca = \"x\"\n").unwrap_err();
    assert_eq!(e.key(), Some("tls.ca"));
    let e = ProducerConfig::from_toml_str("group = \"g\"\n[compresion]\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown setting compresion (did you mean compression?)"
    );
    let e = ProducerConfig::from_toml_str("group = \"g\"\ncolour = 1\n").unwrap_err();
    assert_eq!(e.to_string(), "unknown setting colour");
}

#[test]
fn toml_type_errors_name_the_key() {
    let cases = [
        ("send_timeout = 5", "send_timeout", "expected a duration"),
        (
            "send_timeout = \"5 parsecs\"",
            "send_timeout",
            "expected a duration",
        ),
        ("retries = -1", "retries", "u32"),
        (
            "header_format = \"xml\"",
            "header_format",
            "unknown header format \"xml\"",
        ),
        ("client_ip = \"nope\"", "client_ip", "IP address"),
        ("namesrv_addrs = 5", "namesrv_addrs", "host:port"),
        ("[compression]\nlevel = \"x\"", "compression.level", "i32"),
        ("[compression]\nkind = \"gzip\"", "compression.kind", "gzip"),
        ("[tls]\nenabled = \"yes\"", "tls.enabled", "bool"),
    ];
    for (line, key, fragment) in cases {
        let input = format!("group = \"g\"\nnamesrv_addrs = [\"a:1\"]\n{line}\n");
        let input = if key == "namesrv_addrs" {
            format!("group = \"g\"\n{line}\n")
        } else {
            input
        };
        let e = ProducerConfig::from_toml_str(&input).unwrap_err();
        assert!(matches!(e, ConfigError::Toml { .. }), "{line}: {e:?}");
        assert_eq!(e.key(), Some(key), "{line}: {e}");
        let text = e.to_string();
        assert!(
            text.contains(fragment) && text.contains(&format!("at {key}:")),
            "{line}: {text}"
        );
    }
    let e = ProducerConfig::from_toml_str("group = ").unwrap_err();
    assert!(matches!(e, ConfigError::Toml { .. }), "{e:?}");
}

#[test]
fn group_is_required() {
    let e = ProducerConfig::from_toml_str("namesrv_addrs = [\"a:1\"]\n").unwrap_err();
    assert!(
        matches!(&e, ConfigError::Missing { key } if key == "group"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "missing required setting group");
    // Present but blank is a validation error.
    let e = ProducerConfig::from_toml_str("group = \"\"\nnamesrv_addrs = \"a:1\"\n").unwrap_err();
    assert_eq!(e.key(), Some("group"));
    assert!(e.to_string().contains("blank"), "{e}");
}

#[test]
fn toml_files() {
    let dir = std::env::temp_dir().join(format!("rmq-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("producer.toml");
    std::fs::write(&path, DEFAULTS_TOML).unwrap();
    assert_eq!(ProducerConfig::from_toml_file(&path).unwrap(), valid());
    std::fs::write(
        &path,
        "group = \"g\"\nnamesrv_addrs = \"a:1\"\nretries = 17\n",
    )
    .unwrap();
    let e = ProducerConfig::from_toml_file(&path).unwrap_err();
    assert!(
        matches!(&e, ConfigError::File { path: p, .. } if *p == path),
        "{e:?}"
    );
    assert_eq!(e.key(), Some("retries"));
    assert!(
        e.to_string().ends_with("retries must be ≤ 16, got 17"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let e = ProducerConfig::from_toml_file(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("cannot read configuration file"),
        "{e}"
    );
}

#[test]
fn namesrv_list_forms() {
    for form in [
        "\"a:9876;b:9876\"",
        "\"a:9876 ; b:9876;\"",
        "[\"a:9876\", \"b:9876\"]",
        "[\"a:9876;b:9876\"]",
    ] {
        let c = ProducerConfig::from_toml_str(&format!("group = \"g\"\nnamesrv_addrs = {form}\n"))
            .unwrap();
        assert_eq!(c.namesrv_addrs, ["a:9876", "b:9876"], "{form}");
    }
    let c = ProducerConfig::from_toml_str("group = \"g\"\nnamesrv = \"a:1\"\n").unwrap();
    assert_eq!(c.namesrv_addrs, ["a:1"]);
}

/// Each rule: a change to a valid config, the key named, and the message.
#[test]
fn every_validation_rule() {
    type Case = (fn(&mut ProducerConfig), &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            |c| c.group = String::new(),
            "group",
            "group is not valid: the producer group is blank, got \"\"",
        ),
        (|c| c.group = "a b".into(), "group", "illegal character ' '"),
        (
            |c| c.group = "g".repeat(256),
            "group",
            "more than the maximum 255",
        ),
        (
            |c| c.group = "DEFAULT_PRODUCER".into(),
            "group",
            "default name",
        ),
        (
            |c| c.namespace = Some(String::new()),
            "namespace",
            "must be non-empty",
        ),
        (
            |c| c.namespace = Some("a%b".into()),
            "namespace",
            "only contain",
        ),
        (
            |c| c.namespace = Some("n".repeat(250)),
            "group",
            "more than the maximum 255",
        ),
        (
            |c| c.namesrv_addrs.clear(),
            "namesrv_addrs",
            "at least one name server (host:port), got []",
        ),
        (
            |c| c.namesrv_addrs = vec!["a".into()],
            "namesrv_addrs",
            "must be host:port, got \"a\"",
        ),
        (
            |c| c.namesrv_addrs = vec!["a:0".into()],
            "namesrv_addrs",
            "port 1..=65535",
        ),
        (
            |c| c.namesrv_addrs = vec!["a:99999".into()],
            "namesrv_addrs",
            "port",
        ),
        (
            |c| c.namesrv_addrs = vec![":9876".into()],
            "namesrv_addrs",
            "host name",
        ),
        (
            |c| c.namesrv_addrs = vec!["::1:9876".into()],
            "namesrv_addrs",
            "[addr]:port",
        ),
        (
            |c| c.namesrv_addrs = vec!["http://a:80".into()],
            "namesrv_addrs",
            "without a scheme",
        ),
        (
            |c| c.send_timeout = Duration::ZERO,
            "send_timeout",
            "send_timeout must be > 0, got 0s",
        ),
        (
            |c| c.send_timeout = Duration::from_secs(3601),
            "send_timeout",
            "must be ≤ 1h, got 1h 1s",
        ),
        (
            |c| c.attempt_timeout = Some(Duration::from_secs(4)),
            "attempt_timeout",
            "≤ send_timeout (3s), got 4s",
        ),
        (
            |c| c.attempt_timeout = Some(Duration::ZERO),
            "attempt_timeout",
            "must be > 0",
        ),
        (
            |c| c.connect_timeout = Duration::ZERO,
            "connect_timeout",
            "must be > 0",
        ),
        (
            |c| c.control_timeout = Duration::ZERO,
            "control_timeout",
            "must be > 0",
        ),
        (
            |c| c.retries = 17,
            "retries",
            "retries must be ≤ 16, got 17",
        ),
        (
            |c| c.retry_backoff_min = Duration::from_secs(2),
            "retry_backoff_min",
            "≤ retry_backoff_max (1s), got 2s",
        ),
        (
            |c| c.retry_backoff_max = Duration::from_secs(3601),
            "retry_backoff_max",
            "≤ 1h",
        ),
        (
            |c| c.retryable_codes.push(ResponseCode::SUCCESS),
            "retryable_codes",
            "SUCCESS",
        ),
        (
            |c| c.retryable_codes.push(ResponseCode::FLUSH_DISK_TIMEOUT),
            "retryable_codes",
            "retry_on_not_stored, got 10",
        ),
        (
            |c| c.max_in_flight_messages = 0,
            "max_in_flight_messages",
            "max_in_flight_messages must be ≥ 1",
        ),
        (
            |c| c.max_in_flight_bytes = (4 << 20) - 1,
            "max_in_flight_bytes",
            "≥ max_message_size (4194304)",
        ),
        (|c| c.max_message_size = 0, "max_message_size", "≥ 1"),
        (
            |c| c.max_message_size = (128 << 20) + 1,
            "max_message_size",
            "128 MiB",
        ),
        (
            |c| c.compression.level = 10,
            "compression.level",
            "compression.level for zlib must be in 0..=9, got 10",
        ),
        (|c| c.compression.level = -1, "compression.level", "0..=9"),
        (
            |c| {
                c.compression.kind = CompressionType::Zstd;
                c.compression.level = 23;
            },
            "compression.level",
            "for zstd must be in",
        ),
        (
            |c| c.default_topic_queue_nums = 0,
            "default_topic_queue_nums",
            "1..=1024",
        ),
        (
            |c| c.default_topic_queue_nums = 1025,
            "default_topic_queue_nums",
            "1..=1024",
        ),
        (
            |c| c.create_topic_key = "a b".into(),
            "create_topic_key",
            "not a valid topic",
        ),
        (
            |c| c.heartbeat_interval = Duration::ZERO,
            "heartbeat_interval",
            "> 0 and < 2m",
        ),
        (
            |c| c.heartbeat_interval = Duration::from_secs(120),
            "heartbeat_interval",
            "got 2m",
        ),
        (
            |c| c.route_poll_interval = Duration::ZERO,
            "route_poll_interval",
            "> 0",
        ),
        (
            |c| c.route_poll_interval = Duration::from_secs(86401),
            "route_poll_interval",
            "≤ 1day",
        ),
        (
            |c| c.instance_name = Some("a@b".into()),
            "instance_name",
            "'@'",
        ),
        (
            |c| c.instance_name = Some(String::new()),
            "instance_name",
            "not be empty",
        ),
        (
            |c| c.unit_name = Some("a b".into()),
            "unit_name",
            "whitespace",
        ),
        (|c| c.unit_name = Some("u".repeat(256)), "unit_name", "255"),
        (
            |c| c.client_ip = Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            "client_ip",
            "unspecified, got 0.0.0.0",
        ),
        (
            |c| c.access_key = Some("ak".into()),
            "secret_key",
            "must be set with access_key \"ak\"",
        ),
        (
            |c| c.secret_key = Some("sk".into()),
            "access_key",
            "must be set with secret_key",
        ),
        (
            |c| c.security_token = Some("t".into()),
            "security_token",
            "needs access_key and secret_key, got <redacted>",
        ),
        (
            |c| {
                c.access_key = Some(String::new());
                c.secret_key = Some("sk".into());
            },
            "access_key",
            "must not be empty",
        ),
        (
            |c| {
                c.access_key = Some("ak".into());
                c.secret_key = Some("".into());
            },
            "secret_key",
            "must not be empty",
        ),
        (
            |c| c.tls.ca_file = Some("x".into()),
            "tls.ca_file",
            "unless tls.enabled = true",
        ),
        (
            |c| c.tls.danger_accept_invalid_certs = true,
            "tls.danger_accept_invalid_certs",
            "tls.enabled",
        ),
    ];
    for (change, key, fragment) in cases {
        let mut c = valid();
        change(&mut c);
        let e = c.validate().unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { .. }), "{e:?}");
        assert_eq!(e.key(), Some(key), "{e}");
        assert!(e.to_string().contains(fragment), "{key}: {e}");
    }
}

#[test]
fn edge_values_that_are_valid() {
    let mut c = valid();
    c.retries = 16;
    c.retry_backoff_min = Duration::ZERO;
    c.retry_backoff_max = Duration::ZERO;
    c.attempt_timeout = Some(c.send_timeout);
    c.max_in_flight_messages = 1;
    c.max_in_flight_bytes = c.max_message_size;
    c.compression.level = 0;
    c.compression.threshold = 0;
    c.heartbeat_interval = Duration::from_millis(119_999);
    c.namesrv_addrs = vec![
        "[::1]:9876".into(),
        "host-1.example:1".into(),
        "10.0.0.1:65535".into(),
    ];
    c.namespace = Some("MQ_INST_1|x".into());
    c.client_ip = Some("::1".parse().unwrap());
    c.validate().unwrap();
    // Disabled compression is not checked.
    c.compression = Compression {
        enabled: false,
        level: 99,
        ..Compression::default()
    };
    c.validate().unwrap();
    c.compression = Compression {
        kind: CompressionType::Lz4,
        level: 99,
        ..Compression::default()
    };
    c.validate().unwrap();
}

#[cfg(feature = "tls")]
#[test]
fn tls_rules() {
    let mut c = valid();
    c.tls.enabled = true;
    c.validate().unwrap();
    c.tls.client_cert_file = Some("c.pem".into());
    assert_eq!(c.validate().unwrap_err().key(), Some("tls.client_key_file"));
    c.tls.client_key_file = Some("c.key".into());
    c.validate().unwrap();
    c.tls.server_name = Some(String::new());
    assert_eq!(c.validate().unwrap_err().key(), Some("tls.server_name"));
    c.tls.server_name = Some("broker.example".into());
    c.tls.handshake_timeout = Duration::ZERO;
    assert_eq!(
        c.validate().unwrap_err().key(),
        Some("tls.handshake_timeout")
    );
    c.tls.handshake_timeout = Duration::from_secs(1);
    let tls = c.tls.to_tls_config();
    assert_eq!(tls.server_name_override(), Some("broker.example"));
    assert_eq!(tls.handshake_timeout(), Duration::from_secs(1));
    assert!(!tls.accepts_invalid_certs());
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_needs_the_feature() {
    let mut c = valid();
    c.tls.enabled = true;
    let e = c.validate().unwrap_err();
    assert_eq!(e.key(), Some("tls.enabled"));
    assert!(e.to_string().contains("`tls` feature"), "{e}");
}

/// A valid text value for every key (as `set` and the environment take them).
pub(super) fn sample_value(key: &str) -> &'static str {
    match key {
        "group" | "namespace" | "instance_name" | "unit_name" | "access_key" | "secret_key"
        | "security_token" => "x1",
        "namesrv_addrs" => "a:1;b:2",
        "create_topic_key" => "TBW103",
        "retryable_codes" => "1, 2",
        "compression.kind" => "ZSTD",
        "header_format" => "JSON",
        "client_ip" => "10.1.2.3",
        "tls.server_name" => "h",
        "auto_batch.linger" => "7ms",
        // The booleans that default to true.
        "compression.enabled" | "tbw102_fallback" | "latency_fault_tolerance" => "off",
        k if k.ends_with("_file") => "/tmp/f.pem",
        k if k.ends_with("timeout") || k.ends_with("interval") || k.contains("backoff") => "7s",
        k if k.ends_with("enabled")
            || k.ends_with("fallback")
            || k.ends_with("tolerance")
            || k.ends_with("channel")
            || k.ends_with("not_stored")
            || k.ends_with("roots")
            || k.ends_with("certs") =>
        {
            "yes"
        }
        _ => "1_000",
    }
}

#[test]
fn set_accepts_every_key() {
    let mut c = valid();
    for key in ProducerConfig::KEYS {
        let before = c.clone();
        c.set(key, sample_value(key))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_ne!(c, before, "{key} changed nothing");
    }
    assert_eq!(c.send_timeout, Duration::from_secs(7));
    assert_eq!(c.retryable_codes, [ResponseCode(1), ResponseCode(2)]);
    assert_eq!(c.max_in_flight_messages, 1000);
    assert_eq!(c.compression.kind, CompressionType::Zstd);
    assert_eq!(c.tls.ca_file, Some(PathBuf::from("/tmp/f.pem")));
    let e = c.set("retries", "many").unwrap_err();
    assert!(
        matches!(&e, ConfigError::Parse { key, .. } if key == "retries"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("cannot parse retries = \"many\": expected an integer"),
        "{e}"
    );
    assert!(c.set("nope", "1").is_err());
}

#[test]
fn header_format_names() {
    for (s, f) in [
        ("binary", HeaderFormat::Binary),
        ("ROCKETMQ", HeaderFormat::Binary),
        ("Json", HeaderFormat::Json),
    ] {
        assert_eq!(s.parse::<HeaderFormat>(), Ok(f));
    }
    assert!("xml".parse::<HeaderFormat>().is_err());
    assert_eq!(HeaderFormat::Json.to_string(), "json");
    assert_eq!(parse_addr_list(";;"), Vec::<String>::new());
}
