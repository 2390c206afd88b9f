//! Client-side validation of topics, producer groups, bodies and messages
//! (protocol.md section 10; Java `Validators`, `TopicValidator`,
//! `DefaultMQProducerImpl.checkConfig`).
//!
//! The rules, checked in Java's order:
//!
//! * **Topic**: not blank; only `[%|a-zA-Z0-9_-]`; at most [`MAX_TOPIC_LEN`] (127)
//!   characters; not one of the [`FORBIDDEN_SEND_TOPICS`]. The length applies to the
//!   topic as sent, i.e. after a namespace prefix is added.
//! * **Body**: not empty and at most the producer's maximum message size
//!   ([`DEFAULT_MAX_MESSAGE_SIZE`] = 4 MiB by default), measured **before**
//!   compression.
//! * **Producer group**: not blank; the same character set; at most
//!   [`MAX_GROUP_LEN`] (255) characters; not [`DEFAULT_PRODUCER_GROUP`].
//! * **Properties**: every entry can be encoded (no empty name, no `0x01`/`0x02`), the
//!   encoded text fits the broker's 32767-byte limit, and `INNER_MULTI_DISPATCH`
//!   contains no `/` (5.x).
//! * **Delay** ([`validate_delay`]): at most one of `DELAY`, `TIMER_DELIVER_MS`,
//!   `TIMER_DELAY_MS`, `TIMER_DELAY_SEC`; each a non-negative integer; a level in
//!   `1..=`[`MAX_DELAY_LEVEL`] (0 means not delayed); a timer delay at most
//!   [`MAX_TIMER_DELAY_MS`] (3 days, the broker's `timerMaxDelaySec`) ahead; no delay
//!   on a transactional half message (`TRAN_MSG=true`).
//!
//! ```
//! use rmq_protocol::validate::{ValidationError, validate_topic};
//!
//! assert_eq!(validate_topic("TopicTest"), Ok(()));
//! assert_eq!(
//!     validate_topic("a b"),
//!     Err(ValidationError::TopicIllegalChar { topic: "a b".into(), ch: ' ' })
//! );
//! ```

use crate::message::Message;
use crate::message::properties::{
    MAX_PROPERTIES_LEN, PropertyError, check_encodable, encoded_properties_len, keys,
};

/// The default largest body a producer sends, in bytes (4 MiB, Java `maxMessageSize`).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The longest topic name, in characters.
pub const MAX_TOPIC_LEN: usize = 127;

/// The longest producer group name, in characters (4.9.x–5.3.3; HEAD lowered it to 120).
pub const MAX_GROUP_LEN: usize = 255;

/// The default producer group name, which must be changed (Java `MixAll.DEFAULT_PRODUCER_GROUP`).
pub const DEFAULT_PRODUCER_GROUP: &str = "DEFAULT_PRODUCER";

/// System topics a producer may not send to (Java `TopicValidator.isNotAllowedSendTopic`).
pub const FORBIDDEN_SEND_TOPICS: [&str; 6] = [
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
];

/// The highest delay level of a default broker (`messageDelayLevel` =
/// `1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h`).
pub const MAX_DELAY_LEVEL: u32 = 18;

/// The furthest a timer message may be delayed, in ms: 3 days, the default of the
/// 5.x broker's `timerMaxDelaySec` (a broker rejects more).
pub const MAX_TIMER_DELAY_MS: u64 = 3 * 24 * 3600 * 1000;

/// The limits [`validate_delay`] checks against: the broker's highest delay level and
/// its longest timer delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayLimits {
    /// The highest delay level (default [`MAX_DELAY_LEVEL`]).
    pub max_level: u32,
    /// The longest timer delay in ms (default [`MAX_TIMER_DELAY_MS`]).
    pub max_delay_ms: u64,
}

impl DelayLimits {
    /// The defaults of an unconfigured broker.
    pub const DEFAULT: Self = Self {
        max_level: MAX_DELAY_LEVEL,
        max_delay_ms: MAX_TIMER_DELAY_MS,
    };
}

impl Default for DelayLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What is wrong with a message's delay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelayError {
    /// More than one delay property is set; a message takes exactly one form.
    #[error("the message has several delay properties ({keys:?}); set only one")]
    Conflicting {
        /// The delay properties present.
        keys: Vec<&'static str>,
    },
    /// A delay property is not a non-negative integer.
    #[error("delay property {key} = {value:?} is not a non-negative integer")]
    NotANumber {
        /// The property.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// The delay level is above the broker's highest level.
    #[error("delay level {level} is out of range 1..={max} (0 means not delayed)")]
    LevelOutOfRange {
        /// The level.
        level: u64,
        /// The highest level.
        max: u32,
    },
    /// The timer delay is further ahead than the broker accepts.
    #[error("{key} delays the message by {delay_ms} ms, more than the maximum {max_ms} ms")]
    TooFar {
        /// The property.
        key: &'static str,
        /// The delay from now, in ms.
        delay_ms: u64,
        /// The maximum.
        max_ms: u64,
    },
    /// A transactional half message cannot be delayed.
    #[error("a transactional message cannot be delayed (remove {key})")]
    InTransaction {
        /// The delay property.
        key: &'static str,
    },
}

/// What is wrong with a topic, group, body or message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The topic is empty or only whitespace.
    #[error("the topic is blank")]
    TopicBlank,
    /// The topic has a character outside `[%|a-zA-Z0-9_-]`.
    #[error("topic {topic:?} contains the illegal character {ch:?}; allowed are %|a-zA-Z0-9_-")]
    TopicIllegalChar {
        /// The topic.
        topic: String,
        /// The first illegal character.
        ch: char,
    },
    /// The topic is longer than [`MAX_TOPIC_LEN`].
    #[error("topic {topic:?} has {len} characters, more than the maximum {max}")]
    TopicTooLong {
        /// The topic.
        topic: String,
        /// Its length in characters.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The topic is a system topic producers may not send to ([`FORBIDDEN_SEND_TOPICS`]).
    #[error("topic {topic:?} is a system topic; sending to it is not allowed")]
    ForbiddenTopic {
        /// The topic.
        topic: String,
    },
    /// The body is empty.
    #[error("the message body is empty")]
    BodyEmpty,
    /// The body is larger than the maximum message size.
    #[error("the message body has {len} bytes, more than the maximum message size {max}")]
    BodyTooLarge {
        /// Body length in bytes (uncompressed).
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The producer group is empty or only whitespace.
    #[error("the producer group is blank")]
    GroupBlank,
    /// The producer group has a character outside `[%|a-zA-Z0-9_-]`.
    #[error(
        "producer group {group:?} contains the illegal character {ch:?}; allowed are %|a-zA-Z0-9_-"
    )]
    GroupIllegalChar {
        /// The group.
        group: String,
        /// The first illegal character.
        ch: char,
    },
    /// The producer group is longer than [`MAX_GROUP_LEN`].
    #[error("producer group {group:?} has {len} characters, more than the maximum {max}")]
    GroupTooLong {
        /// The group.
        group: String,
        /// Its length in characters.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The producer group is the default name `DEFAULT_PRODUCER`, which must be changed.
    #[error("the producer group is the default name \"DEFAULT_PRODUCER\"; set a group of your own")]
    GroupIsDefault,
    /// A property cannot be encoded (empty name, or a `0x01`/`0x02` separator).
    #[error("message property cannot be sent: {0}")]
    Property(#[from] PropertyError),
    /// The encoded properties are longer than the broker accepts.
    #[error(
        "the encoded message properties have {len} bytes, more than the broker's maximum {max}"
    )]
    PropertiesTooLong {
        /// Encoded length in bytes.
        len: usize,
        /// The maximum ([`MAX_PROPERTIES_LEN`]).
        max: usize,
    },
    /// The delay properties are invalid (see [`DelayError`]).
    #[error("invalid delay: {0}")]
    Delay(#[from] DelayError),
    /// `INNER_MULTI_DISPATCH` contains the path separator `/` (rejected by 5.x clients).
    #[error("property INNER_MULTI_DISPATCH {value:?} must not contain '/'")]
    MultiDispatchPathSeparator {
        /// The property value.
        value: String,
    },
}

/// Whether `ch` may appear in a topic or group name: `[%|a-zA-Z0-9_-]`.
pub fn is_name_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '%' | '|' | '_' | '-')
}

/// Whether `topic` is a system topic producers may not send to.
pub fn is_forbidden_send_topic(topic: &str) -> bool {
    FORBIDDEN_SEND_TOPICS.contains(&topic)
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn first_illegal_char(s: &str) -> Option<char> {
    s.chars().find(|&c| !is_name_char(c))
}

/// Checks a topic name as sent (after any namespace prefix is added).
pub fn validate_topic(topic: &str) -> Result<(), ValidationError> {
    if is_blank(topic) {
        return Err(ValidationError::TopicBlank);
    }
    if let Some(ch) = first_illegal_char(topic) {
        return Err(ValidationError::TopicIllegalChar {
            topic: topic.to_owned(),
            ch,
        });
    }
    // Only ASCII is left, so bytes = characters = Java UTF-16 units.
    if topic.len() > MAX_TOPIC_LEN {
        return Err(ValidationError::TopicTooLong {
            topic: topic.to_owned(),
            len: topic.len(),
            max: MAX_TOPIC_LEN,
        });
    }
    if is_forbidden_send_topic(topic) {
        return Err(ValidationError::ForbiddenTopic {
            topic: topic.to_owned(),
        });
    }
    Ok(())
}

/// Checks a body length (uncompressed) against the maximum message size `max`:
/// empty is an error, `len > max` is an error, `len == max` is fine.
pub fn validate_body(len: usize, max: usize) -> Result<(), ValidationError> {
    if len == 0 {
        return Err(ValidationError::BodyEmpty);
    }
    if len > max {
        return Err(ValidationError::BodyTooLarge { len, max });
    }
    Ok(())
}

/// Checks a producer group name.
pub fn validate_group(group: &str) -> Result<(), ValidationError> {
    if is_blank(group) {
        return Err(ValidationError::GroupBlank);
    }
    if let Some(ch) = first_illegal_char(group) {
        return Err(ValidationError::GroupIllegalChar {
            group: group.to_owned(),
            ch,
        });
    }
    if group.len() > MAX_GROUP_LEN {
        return Err(ValidationError::GroupTooLong {
            group: group.to_owned(),
            len: group.len(),
            max: MAX_GROUP_LEN,
        });
    }
    if group == DEFAULT_PRODUCER_GROUP {
        return Err(ValidationError::GroupIsDefault);
    }
    Ok(())
}

/// The delay properties, in the order [`DelayError::Conflicting`] lists them.
const DELAY_KEYS: [&str; 4] = [
    keys::DELAY,
    keys::TIMER_DELIVER_MS,
    keys::TIMER_DELAY_MS,
    keys::TIMER_DELAY_SEC,
];

/// Checks a message's delay properties at `now_ms` (epoch ms) against `limits`:
/// at most one form; integers; a level in `1..=max_level` (`DELAY=0` is no delay);
/// `TIMER_DELAY_MS`/`TIMER_DELAY_SEC`, and `TIMER_DELIVER_MS` minus now, at most
/// `max_delay_ms` (a delivery time in the past is allowed: the broker delivers at
/// once); not on a transactional half message.
///
/// ```
/// use rmq_protocol::message::Message;
/// use rmq_protocol::validate::{DelayError, DelayLimits, validate_delay};
///
/// let now = 1_700_000_000_000;
/// let mut m = Message::new("T", "b");
/// m.set_delay_level(3);
/// assert_eq!(validate_delay(&m, now, &DelayLimits::DEFAULT), Ok(()));
/// m.set_delay_level(19);
/// assert_eq!(
///     validate_delay(&m, now, &DelayLimits::DEFAULT),
///     Err(DelayError::LevelOutOfRange { level: 19, max: 18 })
/// );
/// m.set_deliver_time_ms(now + 4 * 24 * 3600 * 1000); // four days ahead
/// assert!(matches!(validate_delay(&m, now, &DelayLimits::DEFAULT), Err(DelayError::TooFar { .. })));
/// ```
pub fn validate_delay(msg: &Message, now_ms: u64, limits: &DelayLimits) -> Result<(), DelayError> {
    validate_delay_at(msg, || now_ms, limits)
}

/// [`validate_delay`] with the clock read only when a `TIMER_DELIVER_MS` needs it
/// (most messages carry no delay property at all).
fn validate_delay_at(
    msg: &Message,
    now_ms: impl FnOnce() -> u64,
    limits: &DelayLimits,
) -> Result<(), DelayError> {
    let props = msg.properties();
    // One pass for the usual case, a message with no delay property.
    if props.count_keys(&DELAY_KEYS) == 0 {
        return Ok(());
    }
    let mut present = DELAY_KEYS.into_iter().filter(|k| props.contains_key(k));
    let Some(key) = present.next() else {
        return Ok(());
    };
    if present.next().is_some() {
        return Err(DelayError::Conflicting {
            keys: DELAY_KEYS
                .into_iter()
                .filter(|k| props.contains_key(k))
                .collect(),
        });
    }
    let raw = props.get(key).unwrap_or_default();
    let value: u64 = raw.trim().parse().map_err(|_| DelayError::NotANumber {
        key,
        value: raw.to_owned(),
    })?;
    let delay_ms = match key {
        keys::DELAY => {
            if value > u64::from(limits.max_level) {
                return Err(DelayError::LevelOutOfRange {
                    level: value,
                    max: limits.max_level,
                });
            }
            0
        }
        keys::TIMER_DELIVER_MS => value.saturating_sub(now_ms()),
        keys::TIMER_DELAY_SEC => value.saturating_mul(1000),
        _ => value,
    };
    if delay_ms > limits.max_delay_ms {
        return Err(DelayError::TooFar {
            key,
            delay_ms,
            max_ms: limits.max_delay_ms,
        });
    }
    let delayed = key != keys::DELAY || value > 0;
    if delayed && msg.is_transaction_prepared() {
        return Err(DelayError::InTransaction { key });
    }
    Ok(())
}

fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Checks a message before it is sent: topic, body (against `max_body`, uncompressed),
/// properties, and delay ([`validate_delay`] with [`DelayLimits::DEFAULT`] at the
/// system clock's now).
pub fn validate_message(msg: &Message, max_body: usize) -> Result<(), ValidationError> {
    validate_topic(msg.topic())?;
    validate_body(msg.body().len(), max_body)?;
    let props = msg.properties();
    if let Some((key, value)) = props.first_unencodable() {
        check_encodable(key, value)?;
    }
    let len = encoded_properties_len(props);
    if len > MAX_PROPERTIES_LEN {
        return Err(ValidationError::PropertiesTooLong {
            len,
            max: MAX_PROPERTIES_LEN,
        });
    }
    if let Some(value) = props.get(keys::INNER_MULTI_DISPATCH)
        && value.contains('/')
    {
        return Err(ValidationError::MultiDispatchPathSeparator {
            value: value.to_owned(),
        });
    }
    validate_delay_at(msg, system_now_ms, &DelayLimits::DEFAULT)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::properties::Properties;

    #[test]
    fn topic_ok() {
        for t in ["TopicTest", "a", "%RETRY%group", "a|b", "A-Z_0-9", "TBW102"] {
            assert_eq!(validate_topic(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn topic_blank() {
        for t in ["", " ", "\t\n"] {
            assert_eq!(validate_topic(t), Err(ValidationError::TopicBlank), "{t:?}");
        }
    }

    #[test]
    fn topic_illegal_chars() {
        for (t, ch) in [
            ("a b", ' '),
            (" a", ' '),
            ("a.b", '.'),
            ("a/b", '/'),
            ("tópico", 'ó'),
            ("a\u{1}", '\u{1}'),
            ("a#", '#'),
        ] {
            assert_eq!(
                validate_topic(t),
                Err(ValidationError::TopicIllegalChar {
                    topic: t.into(),
                    ch
                }),
                "{t:?}"
            );
        }
    }

    #[test]
    fn topic_length_boundary() {
        let ok = "t".repeat(MAX_TOPIC_LEN);
        assert_eq!(validate_topic(&ok), Ok(()));
        let long = "t".repeat(MAX_TOPIC_LEN + 1);
        let err = validate_topic(&long).unwrap_err();
        assert_eq!(
            err,
            ValidationError::TopicTooLong {
                topic: long.clone(),
                len: 128,
                max: 127
            }
        );
        assert!(err.to_string().contains("128") && err.to_string().contains("127"));
    }

    #[test]
    fn forbidden_topics() {
        for t in FORBIDDEN_SEND_TOPICS {
            assert_eq!(
                validate_topic(t),
                Err(ValidationError::ForbiddenTopic { topic: t.into() })
            );
        }
        // Other system topics are not checked on the send path.
        assert_eq!(validate_topic("RMQ_SYS_TRACE_TOPIC"), Ok(()));
        assert_eq!(validate_topic("schedule_topic_xxxx"), Ok(()));
    }

    #[test]
    fn body_rules() {
        assert_eq!(validate_body(0, 10), Err(ValidationError::BodyEmpty));
        assert_eq!(validate_body(1, 10), Ok(()));
        assert_eq!(validate_body(10, 10), Ok(()));
        let err = validate_body(11, 10).unwrap_err();
        assert_eq!(err, ValidationError::BodyTooLarge { len: 11, max: 10 });
        assert!(err.to_string().contains("11") && err.to_string().contains("10"));
        assert_eq!(
            validate_body(DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_MESSAGE_SIZE),
            Ok(())
        );
        assert_eq!(
            validate_body(DEFAULT_MAX_MESSAGE_SIZE + 1, DEFAULT_MAX_MESSAGE_SIZE),
            Err(ValidationError::BodyTooLarge {
                len: 4_194_305,
                max: 4_194_304
            })
        );
    }

    #[test]
    fn group_rules() {
        assert_eq!(validate_group("PG"), Ok(()));
        assert_eq!(validate_group("please_rename_unique_group_name"), Ok(()));
        assert_eq!(validate_group(""), Err(ValidationError::GroupBlank));
        assert_eq!(validate_group("  "), Err(ValidationError::GroupBlank));
        assert_eq!(
            validate_group("my group"),
            Err(ValidationError::GroupIllegalChar {
                group: "my group".into(),
                ch: ' '
            })
        );
        assert_eq!(validate_group(&"g".repeat(MAX_GROUP_LEN)), Ok(()));
        let long = "g".repeat(MAX_GROUP_LEN + 1);
        assert_eq!(
            validate_group(&long),
            Err(ValidationError::GroupTooLong {
                group: long.clone(),
                len: 256,
                max: 255
            })
        );
        assert_eq!(
            validate_group(DEFAULT_PRODUCER_GROUP),
            Err(ValidationError::GroupIsDefault)
        );
        assert_eq!(validate_group("default_producer"), Ok(()));
    }

    #[test]
    fn message_ok_and_topic_body() {
        let m = Message::new("TopicTest", "hello");
        assert_eq!(validate_message(&m, DEFAULT_MAX_MESSAGE_SIZE), Ok(()));
        assert_eq!(
            validate_message(&Message::new("TopicTest", ""), 10),
            Err(ValidationError::BodyEmpty)
        );
        assert_eq!(
            validate_message(&Message::new("TopicTest", "hello"), 4),
            Err(ValidationError::BodyTooLarge { len: 5, max: 4 })
        );
        assert_eq!(
            validate_message(&Message::new("TopicTest", "hello"), 5),
            Ok(())
        );
        assert_eq!(
            validate_message(&Message::new("bad topic", "x"), 10),
            Err(ValidationError::TopicIllegalChar {
                topic: "bad topic".into(),
                ch: ' '
            })
        );
        assert!(matches!(
            validate_message(&Message::new("SELF_TEST_TOPIC", "x"), 10),
            Err(ValidationError::ForbiddenTopic { .. })
        ));
    }

    #[test]
    fn delay_rules() {
        let now = 1_700_000_000_000u64;
        let lim = DelayLimits::DEFAULT;
        let check = |m: &Message| validate_delay(m, now, &lim);
        let mut m = Message::new("T", "b");
        assert_eq!(check(&m), Ok(()));
        for level in [1, 18] {
            m.set_delay_level(level);
            assert_eq!(check(&m), Ok(()), "{level}");
        }
        m.set_delay_level(19);
        assert_eq!(
            check(&m),
            Err(DelayError::LevelOutOfRange { level: 19, max: 18 })
        );
        let custom = DelayLimits {
            max_level: 24,
            ..DelayLimits::DEFAULT
        };
        assert_eq!(validate_delay(&m, now, &custom), Ok(()));
        m.put_system_property(keys::DELAY, "0").unwrap();
        assert_eq!(check(&m), Ok(()), "level 0: not delayed");
        m.put_system_property(keys::DELAY, "-1").unwrap();
        assert!(matches!(check(&m), Err(DelayError::NotANumber { .. })));
        m.put_system_property(keys::DELAY, "soon").unwrap();
        assert!(matches!(check(&m), Err(DelayError::NotANumber { .. })));

        let max = MAX_TIMER_DELAY_MS;
        m.set_deliver_time_ms(now + max);
        assert_eq!(check(&m), Ok(()), "exactly the maximum");
        m.set_deliver_time_ms(now + max + 1);
        assert_eq!(
            check(&m),
            Err(DelayError::TooFar {
                key: keys::TIMER_DELIVER_MS,
                delay_ms: max + 1,
                max_ms: max
            })
        );
        m.set_deliver_time_ms(now - 5_000);
        assert_eq!(check(&m), Ok(()), "in the past: delivered at once");
        m.set_delay_ms(max);
        assert_eq!(check(&m), Ok(()));
        m.set_delay_ms(max + 1);
        assert!(matches!(check(&m), Err(DelayError::TooFar { .. })));
        m.set_delay_secs(max / 1000);
        assert_eq!(check(&m), Ok(()));
        m.set_delay_secs(max / 1000 + 1);
        assert!(matches!(check(&m), Err(DelayError::TooFar { .. })));
        m.set_delay_secs(u64::MAX);
        assert!(matches!(check(&m), Err(DelayError::TooFar { .. })));

        m.set_delay_secs(3);
        m.put_system_property(keys::DELAY, "2").unwrap();
        assert_eq!(
            check(&m),
            Err(DelayError::Conflicting {
                keys: vec![keys::DELAY, keys::TIMER_DELAY_SEC]
            })
        );
        m.clear_delay();
        m.set_delay_ms(10);
        m.put_system_property(keys::TRAN_MSG, "true").unwrap();
        assert_eq!(
            check(&m),
            Err(DelayError::InTransaction {
                key: keys::TIMER_DELAY_MS
            })
        );
        m.put_system_property(keys::DELAY, "0").unwrap();
        m.remove_property(keys::TIMER_DELAY_MS);
        assert_eq!(check(&m), Ok(()), "level 0 with a transaction is no delay");
        // validate_message runs the delay check.
        let mut m = Message::new("T", "b");
        m.set_delay_level(40);
        assert!(matches!(
            validate_message(&m, 100),
            Err(ValidationError::Delay(DelayError::LevelOutOfRange { .. }))
        ));
    }

    #[test]
    fn message_properties() {
        // Unencodable entries can only come in through from_parts.
        let props: Properties = [("k", "a\u{2}b")].into_iter().collect();
        let m = Message::from_parts("T", "x", 0, props);
        assert_eq!(
            validate_message(&m, 10),
            Err(ValidationError::Property(PropertyError::SeparatorInValue {
                key: "k".into()
            }))
        );
        let props: Properties = [("", "v")].into_iter().collect();
        let m = Message::from_parts("T", "x", 0, props);
        assert!(matches!(
            validate_message(&m, 10),
            Err(ValidationError::Property(PropertyError::BlankKey { .. }))
        ));

        // Length limit: exactly 32767 encoded bytes pass, one more fails.
        let value_len = MAX_PROPERTIES_LEN - 3; // "k" 0x01 value 0x02
        let props: Properties = [("k", "v".repeat(value_len))].into_iter().collect();
        let m = Message::from_parts("T", "x", 0, props);
        assert_eq!(validate_message(&m, 10), Ok(()));
        let props: Properties = [("k", "v".repeat(value_len + 1))].into_iter().collect();
        let m = Message::from_parts("T", "x", 0, props);
        assert_eq!(
            validate_message(&m, 10),
            Err(ValidationError::PropertiesTooLong {
                len: 32_768,
                max: 32_767
            })
        );

        let mut m = Message::new("T", "x");
        m.put_system_property(keys::INNER_MULTI_DISPATCH, "%LMQ%a,%LMQ%b")
            .unwrap();
        assert_eq!(validate_message(&m, 10), Ok(()));
        m.put_system_property(keys::INNER_MULTI_DISPATCH, "%LMQ%../a/b")
            .unwrap();
        assert_eq!(
            validate_message(&m, 10),
            Err(ValidationError::MultiDispatchPathSeparator {
                value: "%LMQ%../a/b".into()
            })
        );
    }
}
