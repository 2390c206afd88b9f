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

/// Checks a message before it is sent: topic, body (against `max_body`, uncompressed)
/// and properties.
pub fn validate_message(msg: &Message, max_body: usize) -> Result<(), ValidationError> {
    validate_topic(msg.topic())?;
    validate_body(msg.body().len(), max_body)?;
    let props = msg.properties();
    for (key, value) in props.iter() {
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
