//! Message properties: an ordered string map and its `name 0x01 value 0x02` text form
//! (protocol.md section 4).
//!
//! [`encode_properties`] writes the 5.2+ form, which keeps the trailing `0x02`;
//! [`decode_properties`] accepts both the 5.2+ form and the 4.9 / 5.0–5.1 form without it,
//! and is as lenient as Java's `MessageDecoder.string2messageProperties`.
//!
//! Neither side escapes anything, so a name or value that contains `0x01` or `0x02`
//! would corrupt the map. The encoder refuses such entries with a [`PropertyError`].
//!
//! ```
//! use rmq_protocol::message::properties::{Properties, decode_properties, encode_properties};
//!
//! let mut props = Properties::new();
//! props.insert("TAGS", "TagA");
//! let mut text = String::new();
//! encode_properties(&props, &mut text)?;
//! assert_eq!(text.as_bytes(), b"TAGS\x01TagA\x02");
//! assert_eq!(decode_properties(&text), props);
//! # Ok::<(), rmq_protocol::message::properties::PropertyError>(())
//! ```

mod map;

pub use map::Properties;

/// Separates a property's name from its value (`NAME_VALUE_SEPARATOR`, char 1).
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';

/// Ends each property entry (`PROPERTY_SEPARATOR`, char 2).
pub const PROPERTY_SEPARATOR: char = '\u{2}';

/// The largest serialized property text the broker accepts, in UTF-8 bytes
/// (`Short.MAX_VALUE`). The broker counts its own additions too, so stay well below it.
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;

/// Well-known property names (Java `MessageConst`, protocol.md section 4.2) and the
/// reserved set that [`Message::put_user_property`](super::Message::put_user_property) refuses.
pub mod keys {
    /// Business keys, separated by a single space ([`KEY_SEPARATOR`]).
    pub const KEYS: &str = "KEYS";
    /// The message tag.
    pub const TAGS: &str = "TAGS";
    /// Wait for the store before answering: `"true"` / `"false"`. Java's `Message`
    /// constructors set it to `"true"`.
    pub const WAIT: &str = "WAIT";
    /// Delay level 1..N; when present it overrides the `TIMER_*` properties.
    pub const DELAY: &str = "DELAY";
    /// Retry topic (broker).
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// The original topic of a rewritten message (broker).
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// The original queue id of a rewritten message (broker).
    pub const REAL_QID: &str = "REAL_QID";
    /// `"true"` on a transactional half message.
    pub const TRAN_MSG: &str = "TRAN_MSG";
    /// The producer group of a transactional half message.
    pub const PGROUP: &str = "PGROUP";
    /// Minimum offset (broker).
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    /// Maximum offset (broker).
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    /// Buyer id (legacy).
    pub const BUYER_ID: &str = "BUYER_ID";
    /// Origin message id (legacy).
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    /// Transfer flag (legacy).
    pub const TRANSFER_FLAG: &str = "TRANSFER_FLAG";
    /// Correction flag (legacy).
    pub const CORRECTION_FLAG: &str = "CORRECTION_FLAG";
    /// MQ2 flag (legacy).
    pub const MQ2_FLAG: &str = "MQ2_FLAG";
    /// Reconsume count (consumer send-back).
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    /// Region id (broker response field; sometimes stored).
    pub const MSG_REGION: &str = "MSG_REGION";
    /// Trace switch (broker response field; sometimes stored).
    pub const TRACE_ON: &str = "TRACE_ON";
    /// The client message id (protocol.md section 5.1).
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    /// Extended unique-id info (broker).
    pub const EXTEND_UNIQ_INFO: &str = "EXTEND_UNIQ_INFO";
    /// Maximum reconsume times (consumer send-back).
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    /// Consume start timestamp (consumer).
    pub const CONSUME_START_TIME: &str = "CONSUME_START_TIME";
    /// Number of inner messages (broker, batch consume queue).
    pub const INNER_NUM: &str = "INNER_NUM";
    /// Base offset of inner messages (broker, batch consume queue).
    pub const INNER_BASE: &str = "INNER_BASE";
    /// Duplication info (broker).
    pub const DUP_INFO: &str = "DUP_INFO";
    /// Transaction check immunity time in seconds.
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    /// Queue offset of the half message (broker).
    pub const TRAN_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    /// The transaction id of a half message; added after the half send. Not reserved.
    pub const TRANSACTION_ID: &str = "__transactionId__";
    /// Number of transaction checks so far (broker).
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    /// The namespace (v1) when one is configured.
    pub const INSTANCE_ID: &str = "INSTANCE_ID";
    /// Request-reply correlation id.
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    /// Request-reply: the requester's client id.
    pub const REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    /// Request-reply: request timeout in ms.
    pub const TTL: &str = "TTL";
    /// Request-reply: arrival time of the reply.
    pub const ARRIVE_TIME: &str = "ARRIVE_TIME";
    /// Request-reply: time the broker pushed the reply.
    pub const PUSH_REPLY_TIME: &str = "PUSH_REPLY_TIME";
    /// Cluster name (broker); the reply topic is built from it.
    pub const CLUSTER: &str = "CLUSTER";
    /// `"reply"` on a reply message.
    pub const MSG_TYPE: &str = "MSG_TYPE";
    /// The value of [`MSG_TYPE`] on reply messages.
    pub const MSG_TYPE_REPLY: &str = "reply";
    /// POP checkpoint (broker).
    pub const POP_CK: &str = "POP_CK";
    /// POP checkpoint offset (broker).
    pub const POP_CK_OFFSET: &str = "POP_CK_OFFSET";
    /// First POP time (broker).
    pub const FIRST_POP_TIME: &str = "1ST_POP_TIME";
    /// 5.x ordering key used by the proxy. Not reserved.
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    /// Forward queue id (broker).
    pub const FORWARD_QUEUE_ID: &str = "PROPERTY_FORWARD_QUEUE_ID";
    /// Redirect (broker).
    pub const REDIRECT: &str = "REDIRECT";
    /// Multi-dispatch targets (broker, LMQ).
    pub const INNER_MULTI_DISPATCH: &str = "INNER_MULTI_DISPATCH";
    /// Multi-dispatch queue offsets (broker, LMQ).
    pub const INNER_MULTI_QUEUE_OFFSET: &str = "INNER_MULTI_QUEUE_OFFSET";
    /// Trace context.
    pub const TRACE_CONTEXT: &str = "TRACE_CONTEXT";
    /// Relative delay in seconds (5.x). Broker precedence: DELAY_SEC, DELAY_MS, DELIVER_MS.
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    /// Relative delay in milliseconds (5.x).
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// Absolute delivery time, epoch milliseconds (5.x).
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    /// Timer enqueue time (broker).
    pub const TIMER_ENQUEUE_MS: &str = "TIMER_ENQUEUE_MS";
    /// Timer dequeue time (broker).
    pub const TIMER_DEQUEUE_MS: &str = "TIMER_DEQUEUE_MS";
    /// Timer roll count (broker).
    pub const TIMER_ROLL_TIMES: &str = "TIMER_ROLL_TIMES";
    /// Timer fire time (broker).
    pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
    /// Timer delete unique key (broker).
    pub const TIMER_DEL_UNIQKEY: &str = "TIMER_DEL_UNIQKEY";
    /// Timer delete time (broker).
    pub const TIMER_DEL_MS: &str = "TIMER_DEL_MS";
    /// Timer delay level (broker).
    pub const TIMER_DELAY_LEVEL: &str = "TIMER_DELAY_LEVEL";
    /// Born host (broker).
    pub const BORN_HOST: &str = "__BORNHOST";
    /// Born timestamp (broker).
    pub const BORN_TIMESTAMP: &str = "BORN_TIMESTAMP";
    /// Commit-log CRC (5.2+ broker); appended after the last separator.
    pub const CRC32: &str = "__CRC32#";
    /// Dead-letter origin topic (broker).
    pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
    /// Dead-letter origin message id (broker).
    pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
    /// OpenMessaging start-deliver time: **not interpreted** by the open-source broker.
    pub const START_DELIVER_TIME: &str = "__STARTDELIVERTIME";
    /// Prefix of transient properties, which the broker does not store.
    pub const TRANSIENT_PREFIX: &str = "__RMQ.TRANSIENT.";

    /// Separates the business keys inside [`KEYS`].
    pub const KEY_SEPARATOR: char = ' ';

    /// The reserved names (Java `MessageConst.STRING_HASH_SET`, the HEAD superset of
    /// the 4.9.8 set): user properties may not use them.
    pub const RESERVED: &[&str] = &[
        TRACE_ON,
        MSG_REGION,
        KEYS,
        TAGS,
        WAIT,
        DELAY,
        RETRY_TOPIC,
        REAL_TOPIC,
        REAL_QID,
        TRAN_MSG,
        PGROUP,
        MIN_OFFSET,
        MAX_OFFSET,
        BUYER_ID,
        ORIGIN_MESSAGE_ID,
        TRANSFER_FLAG,
        CORRECTION_FLAG,
        MQ2_FLAG,
        RECONSUME_TIME,
        UNIQ_KEY,
        MAX_RECONSUME_TIMES,
        CONSUME_START_TIME,
        POP_CK,
        POP_CK_OFFSET,
        FIRST_POP_TIME,
        TRAN_PREPARED_QUEUE_OFFSET,
        DUP_INFO,
        EXTEND_UNIQ_INFO,
        INSTANCE_ID,
        CORRELATION_ID,
        REPLY_TO_CLIENT,
        TTL,
        ARRIVE_TIME,
        PUSH_REPLY_TIME,
        CLUSTER,
        MSG_TYPE,
        INNER_MULTI_QUEUE_OFFSET,
        TIMER_DELAY_MS,
        TIMER_DELAY_SEC,
        TIMER_DELIVER_MS,
        TIMER_ENQUEUE_MS,
        TIMER_DEQUEUE_MS,
        TIMER_ROLL_TIMES,
        TIMER_OUT_MS,
        TIMER_DEL_UNIQKEY,
        TIMER_DEL_MS,
        TIMER_DELAY_LEVEL,
        BORN_HOST,
        BORN_TIMESTAMP,
        DLQ_ORIGIN_TOPIC,
        DLQ_ORIGIN_MESSAGE_ID,
        CRC32,
    ];

    /// Whether `key` is in the [`RESERVED`] set.
    pub fn is_reserved(key: &str) -> bool {
        RESERVED.contains(&key)
    }
}

/// Why a property was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    /// The name is empty (or, for user properties, only whitespace).
    #[error("property name {key:?} is empty or blank")]
    BlankKey {
        /// The offending name.
        key: String,
    },
    /// The value is empty (or, for user properties, only whitespace).
    #[error("property {key:?}: the value is empty or blank")]
    BlankValue {
        /// The property name.
        key: String,
    },
    /// The name contains `0x01` or `0x02`.
    #[error("property name {key:?} contains a separator character (0x01 or 0x02)")]
    SeparatorInKey {
        /// The offending name.
        key: String,
    },
    /// The value contains `0x01` or `0x02`.
    #[error("property {key:?}: the value contains a separator character (0x01 or 0x02)")]
    SeparatorInValue {
        /// The property name.
        key: String,
    },
    /// The name is reserved for the client or the broker ([`keys::RESERVED`]).
    #[error("property name {key:?} is reserved for system use")]
    Reserved {
        /// The offending name.
        key: String,
    },
}

impl PropertyError {
    /// The property name the error is about.
    pub fn key(&self) -> &str {
        match self {
            Self::BlankKey { key }
            | Self::BlankValue { key }
            | Self::SeparatorInKey { key }
            | Self::SeparatorInValue { key }
            | Self::Reserved { key } => key,
        }
    }
}

/// Whether `s` holds `0x01` or `0x02`. Both are ASCII, so a byte scan is exact on
/// UTF-8 (they never occur inside a multi-byte sequence); the scan has no early exit
/// so that it vectorises: `str::contains` with a char array decoded every char and was
/// ~12 % of a batch send's instructions (callgrind, docs/benchmarks.md).
fn has_separator(s: &str) -> bool {
    const _: () = assert!(NAME_VALUE_SEPARATOR as u32 == 1 && PROPERTY_SEPARATOR as u32 == 2);
    s.bytes()
        .fold(false, |hit, b| hit | (b.wrapping_sub(1) < 2))
}

/// Checks that an entry can be encoded: the name is non-empty and neither name nor
/// value contains a separator. Empty values pass (Java writes them; decoders drop them).
pub fn check_encodable(key: &str, value: &str) -> Result<(), PropertyError> {
    if key.is_empty() {
        return Err(PropertyError::BlankKey { key: String::new() });
    }
    if has_separator(key) {
        return Err(PropertyError::SeparatorInKey {
            key: key.to_owned(),
        });
    }
    if has_separator(value) {
        return Err(PropertyError::SeparatorInValue {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// Appends the 5.2+ text form of `props` to `out`: `name 0x01 value 0x02` per entry,
/// in insertion order, **with** the trailing `0x02`.
///
/// Fails when a name is empty or a name or value contains `0x01`/`0x02`; `out` is then
/// left as it was. The length limit ([`MAX_PROPERTIES_LEN`]) is not checked here.
pub fn encode_properties(props: &Properties, out: &mut String) -> Result<(), PropertyError> {
    let start = out.len();
    out.reserve(encoded_properties_len(props));
    encode_pieces(props, |piece| out.push_str(piece)).inspect_err(|_| out.truncate(start))
}

/// The text form's pieces in order (`name`, `0x01`, `value`, `0x02` per entry), each
/// entry checked with [`check_encodable`] before its pieces are handed to `put`.
fn encode_pieces(props: &Properties, mut put: impl FnMut(&str)) -> Result<(), PropertyError> {
    const NAME_VALUE: &str = "\u{1}";
    const END: &str = "\u{2}";
    if let Some(text) = props.text() {
        // Every entry was checked when it was inserted.
        put(text);
        return Ok(());
    }
    for (k, v) in props.iter() {
        check_encodable(k, v)?;
        put(k);
        put(NAME_VALUE);
        put(v);
        put(END);
    }
    Ok(())
}

/// Encoded texts up to this length are built on the stack by [`encode_properties_value`].
const STACK_TEXT: usize = 1024;

/// [`encode_properties`] as a [`FieldValue`](crate::FieldValue): inline when the text
/// fits, else in one shared allocation ([`FieldValue::shared`](crate::FieldValue::shared)),
/// which every attempt of a send then shares. Texts up to 1 KiB are assembled on the
/// stack first, so a send's properties cost one allocation (or none), not a `String`
/// and its copy. Fails as [`encode_properties`] does.
///
/// ```
/// use rmq_protocol::message::properties::{Properties, encode_properties_value};
/// let p: Properties = [("WAIT", "true"), ("TAGS", "A")].into_iter().collect();
/// let v = encode_properties_value(&p)?;
/// assert_eq!(&*v, "WAIT\u{1}true\u{2}TAGS\u{1}A\u{2}");
/// assert!(v.is_inline());
/// # Ok::<(), rmq_protocol::message::PropertyError>(())
/// ```
pub fn encode_properties_value(
    props: &Properties,
) -> Result<crate::value::FieldValue, PropertyError> {
    let len = encoded_properties_len(props);
    if len <= STACK_TEXT {
        let mut buf = [0u8; STACK_TEXT];
        let mut n = 0;
        encode_pieces(props, |piece| {
            buf[n..n + piece.len()].copy_from_slice(piece.as_bytes());
            n += piece.len();
        })?;
        // Whole `&str`s and ASCII separators: always UTF-8; the fallback below is
        // only there so that no path can panic.
        if let Ok(text) = std::str::from_utf8(&buf[..n]) {
            return Ok(crate::value::FieldValue::shared(text));
        }
    }
    let mut s = String::with_capacity(len);
    encode_properties(props, &mut s)?;
    Ok(crate::value::FieldValue::shared(&s))
}

/// Like [`encode_properties_value`], with a text longer than the inline capacity
/// written into `arena` and split off it (a reference count on the arena's buffer)
/// instead of an allocation of its own: for a sender that keeps one arena, no
/// allocation per message for its encoded properties.
///
/// ```
/// use bytes::BytesMut;
/// use rmq_protocol::message::properties::{Properties, encode_properties_in};
/// let mut p = Properties::new();
/// p.insert("UNIQ_KEY", "7F0000011F9C18B4AAC2178EFA4F0000");
/// p.insert("WAIT", "true");
/// let mut arena = BytesMut::with_capacity(4096);
/// let v = encode_properties_in(&p, &mut arena)?;
/// assert_eq!(&*v, "UNIQ_KEY\u{1}7F0000011F9C18B4AAC2178EFA4F0000\u{2}WAIT\u{1}true\u{2}");
/// assert!(!v.is_inline());
/// # Ok::<(), rmq_protocol::message::PropertyError>(())
/// ```
pub fn encode_properties_in(
    props: &Properties,
    arena: &mut bytes::BytesMut,
) -> Result<crate::value::FieldValue, PropertyError> {
    let len = encoded_properties_len(props);
    if len <= crate::value::INLINE_CAPACITY {
        return encode_properties_value(props);
    }
    arena.clear();
    arena.reserve(len);
    let written = encode_pieces(props, |piece| arena.extend_from_slice(piece.as_bytes()));
    let text = arena.split().freeze();
    written?;
    // Whole `&str`s and ASCII separators: always UTF-8; the fallback is only there so
    // that no path can panic.
    match crate::value::FieldValue::from_utf8_bytes(text) {
        Ok(v) => Ok(v),
        Err(_) => encode_properties_value(props),
    }
}

/// The length in bytes of [`encode_properties`]'s output for `props` (when it succeeds).
pub fn encoded_properties_len(props: &Properties) -> usize {
    if let Some(text) = props.text() {
        return text.len();
    }
    props.iter().map(|(k, v)| k.len() + v.len() + 2).sum()
}

/// Parses the text form, leniently like Java `string2messageProperties`; never fails.
///
/// The text is split on `0x02`; in each segment the name runs up to the first `0x01`.
/// Segments without a `0x01`, with an empty name or with an empty value are skipped
/// (this also covers Java's "shorter than 3 characters" rule). Both the 5.2+ form
/// (trailing `0x02`) and the older form (none) are accepted. A later duplicate name
/// replaces an earlier one. A value may contain `0x01` (everything after the first one).
pub fn decode_properties(s: &str) -> Properties {
    let mut props = Properties::new();
    for segment in s.split(PROPERTY_SEPARATOR) {
        if let Some((key, value)) = segment.split_once(NAME_VALUE_SEPARATOR)
            && !key.is_empty()
            && !value.is_empty()
        {
            props.insert(key, value);
        }
    }
    props
}

/// [`decode_properties`] for raw bytes: invalid UTF-8 is replaced with U+FFFD, as
/// Java's `new String(bytes, UTF_8)` does.
pub fn decode_properties_bytes(bytes: &[u8]) -> Properties {
    decode_properties(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(p: &Properties) -> Result<String, PropertyError> {
        let mut s = String::new();
        encode_properties(p, &mut s).map(|()| s)
    }

    #[test]
    fn tags_vector() {
        let p: Properties = [("TAGS", "TagA")].into_iter().collect();
        let s = encode(&p).unwrap();
        assert_eq!(
            s.as_bytes(),
            &[0x54, 0x41, 0x47, 0x53, 0x01, 0x54, 0x61, 0x67, 0x41, 0x02]
        );
        assert_eq!(encoded_properties_len(&p), s.len());
    }

    #[test]
    fn insertion_order_is_kept() {
        let mut p = Properties::new();
        p.insert("KEYS", "k1 k2");
        p.insert("TAGS", "TagA");
        p.insert("WAIT", "true");
        assert_eq!(p.insert("KEYS", "k3"), Some("k1 k2".to_owned()));
        assert_eq!(
            encode(&p).unwrap(),
            "KEYS\x01k3\x02TAGS\x01TagA\x02WAIT\x01true\x02"
        );
        assert_eq!(p.remove("TAGS").as_deref(), Some("TagA"));
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [("KEYS", "k3"), ("WAIT", "true")]
        );
    }

    #[test]
    fn decode_accepts_both_trailing_forms() {
        let new = decode_properties("KEYS\x01k1 k2\x02TAGS\x01TagA\x02WAIT\x01true\x02");
        let old = decode_properties("KEYS\x01k1 k2\x02TAGS\x01TagA\x02WAIT\x01true");
        assert_eq!(new, old);
        assert_eq!(new.len(), 3);
        assert_eq!(new.get("KEYS"), Some("k1 k2"));
        assert_eq!(new.get("WAIT"), Some("true"));
    }

    #[test]
    fn decode_is_lenient() {
        assert!(decode_properties("").is_empty());
        assert!(decode_properties("\x02\x02\x01\x02").is_empty());
        // Empty value dropped, empty key dropped, no separator dropped.
        let p = decode_properties("A\x01\x02\x01v\x02junk\x02B\x01b\x02ab");
        assert_eq!(p.iter().collect::<Vec<_>>(), [("B", "b")]);
        // Value keeps later 0x01; duplicates: last wins, first position kept.
        let p = decode_properties("K\x01a\x01b\x02X\x01x\x02K\x01c");
        assert_eq!(p.iter().collect::<Vec<_>>(), [("K", "c"), ("X", "x")]);
        let p = decode_properties("K\x01a\x01b");
        assert_eq!(p.get("K"), Some("a\x01b"));
        // Short segments with one-char key and value are kept.
        assert_eq!(decode_properties("a\x01b").get("a"), Some("b"));
        // Multi-byte characters.
        assert_eq!(
            decode_properties("ключ\x01значение\x02").get("ключ"),
            Some("значение")
        );
        assert_eq!(
            decode_properties_bytes(b"A\x01\xff\x02").get("A"),
            Some("\u{fffd}")
        );
    }

    #[test]
    fn separator_scan_is_exact_on_multibyte_text() {
        // The byte scan must agree with a char scan: 0x01/0x02 never occur inside a
        // multi-byte UTF-8 sequence, and chars whose code points end in 01/02 are not
        // separators.
        let cases = [
            ("", false),
            ("plain", false),
            ("\u{101}\u{102}\u{201}", false),
            ("é\u{1}", true),
            ("日本\u{2}語", true),
            ("\u{1}", true),
            ("\u{3}\u{0}\u{7f}", false),
            (&*"x".repeat(100), false),
            (&*format!("{}\u{2}", "ü".repeat(40)), true),
        ];
        for (s, want) in cases {
            assert_eq!(has_separator(s), want, "{s:?}");
            assert_eq!(
                has_separator(s),
                s.contains([NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR])
            );
        }
    }

    #[test]
    fn encode_value_matches_encode_and_refuses_the_same() {
        let short: Properties = [("WAIT", "true")].into_iter().collect();
        let usual: Properties = [
            ("WAIT", "true"),
            ("UNIQ_KEY", "7F0000011F9C18B4AAC2178EFA4F0000"),
        ]
        .into_iter()
        .collect();
        let long: Properties = [("K", "é".repeat(700))].into_iter().collect();
        for p in [&short, &usual, &long, &Properties::new()] {
            let mut s = String::new();
            encode_properties(p, &mut s).unwrap();
            let v = encode_properties_value(p).unwrap();
            assert_eq!(&*v, s);
            assert_eq!(v.is_inline(), s.len() <= crate::value::INLINE_CAPACITY);
        }
        let bad: Properties = [("A", "a"), ("B", "b\x02")].into_iter().collect();
        assert_eq!(
            encode_properties_value(&bad),
            Err(PropertyError::SeparatorInValue { key: "B".into() })
        );
        let bad_long: Properties = [
            ("A".to_owned(), "x".repeat(2000)),
            ("B\x01".to_owned(), "b".to_owned()),
        ]
        .into_iter()
        .collect();
        assert!(matches!(
            encode_properties_value(&bad_long),
            Err(PropertyError::SeparatorInKey { .. })
        ));
    }

    #[test]
    fn keys_and_values_are_inline() {
        let mut p = Properties::new();
        p.insert(keys::UNIQ_KEY, "7F0000011F9C18B4AAC2178EFA4F0000");
        assert_eq!(p.get("UNIQ_KEY"), Some("7F0000011F9C18B4AAC2178EFA4F0000"));
        assert_eq!(
            p.insert(String::from("UNIQ_KEY"), "b"),
            Some("7F0000011F9C18B4AAC2178EFA4F0000".to_owned())
        );
        assert_eq!(p.iter().collect::<Vec<_>>(), [("UNIQ_KEY", "b")]);
    }

    #[test]
    fn encode_rejects_without_partial_output() {
        let mut out = String::from("prefix");
        let p: Properties = [("A", "a"), ("B", "b\x02")].into_iter().collect();
        let err = encode_properties(&p, &mut out).unwrap_err();
        assert_eq!(err, PropertyError::SeparatorInValue { key: "B".into() });
        assert_eq!(err.key(), "B");
        assert_eq!(out, "prefix");

        let p: Properties = [("A\x01", "a")].into_iter().collect();
        assert!(matches!(
            encode_properties(&p, &mut out),
            Err(PropertyError::SeparatorInKey { .. })
        ));
        let p: Properties = [("", "a")].into_iter().collect();
        assert!(matches!(
            encode_properties(&p, &mut out),
            Err(PropertyError::BlankKey { .. })
        ));
        assert_eq!(out, "prefix");
        // Empty values are written (Java does), and dropped on decode.
        let p: Properties = [("A", "")].into_iter().collect();
        encode_properties(&p, &mut out).unwrap();
        assert_eq!(out, "prefixA\x01\x02");
    }

    #[test]
    fn reserved_set() {
        assert!(keys::is_reserved(keys::UNIQ_KEY));
        assert!(keys::is_reserved(keys::TIMER_DELIVER_MS));
        assert!(keys::is_reserved(keys::WAIT));
        assert!(!keys::is_reserved(keys::TRANSACTION_ID));
        assert!(!keys::is_reserved(keys::SHARDING_KEY));
        assert!(!keys::is_reserved("myKey"));
        let mut sorted = keys::RESERVED.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), keys::RESERVED.len());
    }

    fn entry() -> impl Strategy<Value = (String, String)> {
        let text = "[^\u{1}\u{2}]{1,12}";
        (text, text)
    }

    proptest! {
        #[test]
        fn round_trip(entries in proptest::collection::vec(entry(), 0..8)) {
            let p: Properties = entries.into_iter().collect();
            let s = encode(&p).unwrap();
            prop_assert_eq!(s.len(), encoded_properties_len(&p));
            prop_assert_eq!(decode_properties(&s), p.clone());
            // The 4.9 form without the trailing separator decodes the same.
            let old = s.strip_suffix(PROPERTY_SEPARATOR).unwrap_or(&s);
            prop_assert_eq!(decode_properties(old), p);
        }

        #[test]
        fn decode_never_panics(s in "[a-c\u{1}\u{2}é]{0,40}") {
            let p = decode_properties(&s);
            for (k, v) in p.iter() {
                prop_assert!(!k.is_empty() && !v.is_empty());
                prop_assert!(!has_separator(k) && !v.contains(PROPERTY_SEPARATOR));
            }
        }
    }
}
