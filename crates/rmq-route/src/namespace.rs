//! Namespace v1 (protocol.md section 13.2): `namespace%name` resource names.
//!
//! A producer with a namespace wraps its group and every topic on the wire
//! ([`wrap`]) and removes the namespace again from what it shows the user
//! ([`unwrap`]): the topic of a `SendResult`, of a returned message, of a
//! `MessageQueue`. This module mirrors Java's `NamespaceUtil`:
//!
//! * the separator is `%`: `wrap("ns", "T") == "ns%T"`;
//! * `%RETRY%` and `%DLQ%` prefixes stay in front: `%RETRY%ns%group`;
//! * system topics (`TBW102`, `RMQ_SYS_*`, `rmq_sys_*`, ...) and system groups
//!   (`CID_RMQ_SYS_*`) are never wrapped, and neither are names already wrapped with
//!   the same namespace;
//! * an empty namespace or name is returned unchanged.
//!
//! Namespace v2 (`ns` / `nsd` ext fields, names not rewritten) needs nothing here.
//!
//! ```
//! use rmq_route::namespace::{unwrap, wrap};
//!
//! assert_eq!(wrap("MQ_INST_1", "orders"), "MQ_INST_1%orders");
//! assert_eq!(wrap("MQ_INST_1", "%RETRY%group"), "%RETRY%MQ_INST_1%group");
//! assert_eq!(wrap("MQ_INST_1", "MQ_INST_1%orders"), "MQ_INST_1%orders");
//! assert_eq!(wrap("MQ_INST_1", "TBW102"), "TBW102");
//! assert_eq!(unwrap("MQ_INST_1", "MQ_INST_1%orders"), "orders");
//! assert_eq!(unwrap("MQ_INST_1", "%DLQ%MQ_INST_1%group"), "%DLQ%group");
//! assert_eq!(unwrap("other", "MQ_INST_1%orders"), "MQ_INST_1%orders");
//! ```

use std::borrow::Cow;

/// The separator between namespace and name (`NamespaceUtil.NAMESPACE_SEPARATOR`).
pub const SEPARATOR: char = '%';

/// The prefix of retry topics (`MixAll.RETRY_GROUP_TOPIC_PREFIX`).
pub const RETRY_PREFIX: &str = "%RETRY%";

/// The prefix of dead-letter topics (`MixAll.DLQ_GROUP_TOPIC_PREFIX`).
pub const DLQ_PREFIX: &str = "%DLQ%";

/// The prefix of system topics (`TopicValidator.SYSTEM_TOPIC_PREFIX`).
pub const SYSTEM_TOPIC_PREFIX: &str = "rmq_sys_";

/// The prefix of system consumer groups (`MixAll.CID_RMQ_SYS_PREFIX`).
pub const SYSTEM_GROUP_PREFIX: &str = "CID_RMQ_SYS_";

/// The system topics of `TopicValidator.SYSTEM_TOPIC_SET` (Java HEAD), never
/// wrapped.
pub const SYSTEM_TOPICS: [&str; 16] = [
    "TBW102",
    "SCHEDULE_TOPIC_XXXX",
    "BenchmarkTest",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRACE_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
    "CHECKPOINT_TOPIC",
    "RMQ_SYS_TOPIC_CONFIG_SYNC",
    "RMQ_SYS_CONSUMER_OFFSET_SYNC",
    "RMQ_SYS_DELAY_OFFSET_SYNC",
    "RMQ_SYS_SUBSCRIPTION_GROUP_SYNC",
    "RMQ_SYS_MESSAGE_MODE_SYNC",
    "RMQ_SYS_TIMER_METRICS_SYNC",
];

/// Whether `name` is a system topic or a system consumer group
/// (`NamespaceUtil.isSystemResource`): such names are never wrapped or unwrapped.
pub fn is_system_resource(name: &str) -> bool {
    SYSTEM_TOPICS.contains(&name)
        || name.starts_with(SYSTEM_TOPIC_PREFIX)
        || name.starts_with(SYSTEM_GROUP_PREFIX)
}

/// Splits a `%RETRY%` or `%DLQ%` prefix off `name`: `(prefix, rest)`.
fn split_retry_dlq(name: &str) -> (&str, &str) {
    if let Some(rest) = name.strip_prefix(RETRY_PREFIX) {
        (RETRY_PREFIX, rest)
    } else if let Some(rest) = name.strip_prefix(DLQ_PREFIX) {
        (DLQ_PREFIX, rest)
    } else {
        ("", name)
    }
}

/// `rest` without a leading `namespace%`, if it has one.
fn strip_namespace<'a>(rest: &'a str, namespace: &str) -> Option<&'a str> {
    rest.strip_prefix(namespace)?.strip_prefix(SEPARATOR)
}

/// Whether `name` already carries `namespace` (after any `%RETRY%` / `%DLQ%`
/// prefix) (`NamespaceUtil.isAlreadyWithNamespace`). False for an empty namespace
/// or name and for system resources.
pub fn is_wrapped(namespace: &str, name: &str) -> bool {
    if namespace.is_empty() || name.is_empty() || is_system_resource(name) {
        return false;
    }
    strip_namespace(split_retry_dlq(name).1, namespace).is_some()
}

/// The wire name of `name` in `namespace` (`NamespaceUtil.wrapNamespace`):
/// `namespace%name`, with a `%RETRY%` / `%DLQ%` prefix kept in front. Empty
/// namespaces or names, system resources and names already wrapped are returned
/// unchanged (borrowed).
pub fn wrap<'a>(namespace: &str, name: &'a str) -> Cow<'a, str> {
    if namespace.is_empty()
        || name.is_empty()
        || is_system_resource(name)
        || is_wrapped(namespace, name)
    {
        return Cow::Borrowed(name);
    }
    let (prefix, rest) = split_retry_dlq(name);
    let mut out = String::with_capacity(prefix.len() + namespace.len() + 1 + rest.len());
    out.push_str(prefix);
    out.push_str(namespace);
    out.push(SEPARATOR);
    out.push_str(rest);
    Cow::Owned(out)
}

/// `name` without `namespace` (`NamespaceUtil.withoutNamespace(resource, namespace)`):
/// `ns%T` → `T`, `%RETRY%ns%G` → `%RETRY%G`. Names that do not carry this namespace,
/// system resources and empty inputs are returned unchanged (borrowed).
pub fn unwrap<'a>(namespace: &str, name: &'a str) -> Cow<'a, str> {
    if namespace.is_empty() || name.is_empty() || is_system_resource(name) {
        return Cow::Borrowed(name);
    }
    let (prefix, rest) = split_retry_dlq(name);
    match strip_namespace(rest, namespace) {
        Some(bare) if prefix.is_empty() => Cow::Borrowed(bare),
        Some(bare) => Cow::Owned(format!("{prefix}{bare}")),
        None => Cow::Borrowed(name),
    }
}

/// The namespace encoded in an Aliyun-style name-server address
/// (`NameServerAddressUtils.parseInstanceIdFromEndpoint`), used by Java when no
/// namespace is configured: for an address matching `^(\w+://|)MQ_INST_\w+_\w+\..*`
/// the instance id between the last `/` and the first `.` after it.
///
/// ```
/// use rmq_route::namespace::namespace_from_name_server_addr;
///
/// assert_eq!(
///     namespace_from_name_server_addr("http://MQ_INST_123_abc.cn-hz.mq.example.com:80"),
///     Some("MQ_INST_123_abc")
/// );
/// assert_eq!(namespace_from_name_server_addr("127.0.0.1:9876"), None);
/// ```
pub fn namespace_from_name_server_addr(addr: &str) -> Option<&str> {
    let rest = match addr.find("://") {
        Some(i) if i > 0 && addr[..i].bytes().all(is_word_byte) => &addr[i + 3..],
        Some(_) => return None,
        None => addr,
    };
    let body = rest.strip_prefix("MQ_INST_")?;
    let dot = body.find('.')?;
    let words = &body[..dot];
    // `\w+_\w+`: word characters only, with an underscore that is neither first nor last.
    let inner = words.get(1..words.len().saturating_sub(1)).unwrap_or("");
    if !inner.contains('_') || !words.bytes().all(is_word_byte) {
        return None;
    }
    Some(&rest[.."MQ_INST_".len() + dot])
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_like_java() {
        assert_eq!(wrap("ns", "T"), "ns%T");
        assert_eq!(wrap("ns", "%RETRY%G"), "%RETRY%ns%G");
        assert_eq!(wrap("ns", "%DLQ%G"), "%DLQ%ns%G");
        assert_eq!(wrap("ns", "ns%T"), "ns%T");
        assert_eq!(wrap("ns", "%RETRY%ns%G"), "%RETRY%ns%G");
        assert_eq!(wrap("ns", "other%T"), "ns%other%T");
        assert_eq!(wrap("", "T"), "T");
        assert_eq!(wrap("ns", ""), "");
        for sys in [
            "TBW102",
            "RMQ_SYS_TRACE_TOPIC",
            "rmq_sys_x",
            "CID_RMQ_SYS_G",
            "SCHEDULE_TOPIC_XXXX",
        ] {
            assert_eq!(wrap("ns", sys), sys);
            assert!(matches!(wrap("ns", sys), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn unwrap_like_java() {
        assert_eq!(unwrap("ns", "ns%T"), "T");
        assert_eq!(unwrap("ns", "%RETRY%ns%G"), "%RETRY%G");
        assert_eq!(unwrap("ns", "%DLQ%ns%G"), "%DLQ%G");
        assert_eq!(unwrap("ns", "T"), "T");
        assert_eq!(unwrap("ns", "nsx%T"), "nsx%T");
        assert_eq!(unwrap("ns", "other%T"), "other%T");
        assert_eq!(unwrap("", "ns%T"), "ns%T");
        assert_eq!(unwrap("ns", "TBW102"), "TBW102");
        for name in ["T", "%RETRY%G", "%DLQ%G", "a%b"] {
            assert_eq!(unwrap("ns", &wrap("ns", name)), name);
        }
    }

    #[test]
    fn is_wrapped_cases() {
        assert!(is_wrapped("ns", "ns%T"));
        assert!(is_wrapped("ns", "%RETRY%ns%T"));
        assert!(!is_wrapped("ns", "T"));
        assert!(!is_wrapped("", "ns%T"));
        assert!(!is_wrapped("ns", "TBW102"));
    }

    #[test]
    fn namespace_from_addr() {
        assert_eq!(
            namespace_from_name_server_addr("MQ_INST_1_x.host:80"),
            Some("MQ_INST_1_x")
        );
        assert_eq!(
            namespace_from_name_server_addr("https://MQ_INST_1_x.host:80"),
            Some("MQ_INST_1_x")
        );
        assert_eq!(namespace_from_name_server_addr("MQ_INST_1.host:80"), None);
        assert_eq!(namespace_from_name_server_addr("MQ_INST_1_.host:80"), None);
        assert_eq!(
            namespace_from_name_server_addr("MQ_INST_a_b_.host:80"),
            Some("MQ_INST_a_b_")
        );
        assert_eq!(namespace_from_name_server_addr("MQ_INST_1_x:80"), None);
        assert_eq!(namespace_from_name_server_addr("://MQ_INST_1_x.h"), None);
        assert_eq!(namespace_from_name_server_addr("a-b://MQ_INST_1_x.h"), None);
        assert_eq!(namespace_from_name_server_addr(""), None);
    }
}
