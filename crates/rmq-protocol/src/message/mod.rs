//! The message model: [`Message`], [`MessageQueue`], properties, batches, sysFlag,
//! stored messages and send results.
//!
//! ```
//! use rmq_protocol::message::{Message, keys};
//!
//! let msg = Message::new("TopicTest", "hello")
//!     .with_tags("TagA")?
//!     .with_keys(["order-1", "user-7"])?
//!     .with_property("region", "eu")?;
//! assert_eq!(msg.tags(), Some("TagA"));
//! assert_eq!(msg.keys().collect::<Vec<_>>(), ["order-1", "user-7"]);
//! assert!(msg.wait_store_msg_ok());
//! // Reserved names are for the client and the broker.
//! assert!(msg.clone().with_property(keys::UNIQ_KEY, "x").is_err());
//! # Ok::<(), rmq_protocol::message::PropertyError>(())
//! ```

use std::fmt;

use bytes::Bytes;

use crate::value::FieldValue;

pub mod batch;
pub mod properties;
pub mod send_result;
pub mod stored;
pub mod sys_flag;

pub use batch::{BatchError, decode_batch, encode_batch};
pub use properties::{
    Properties, PropertyError, decode_properties, encode_properties, encoded_properties_len, keys,
};
pub use send_result::{SendResult, SendStatus};
pub use sys_flag::{CompressionType, SysFlag};

/// A message to send: topic, body, user flag and properties (Java `Message`).
///
/// Setters that take text check it, so that a property can always be encoded: no
/// name or value may contain the separators `0x01`/`0x02` (protocol.md section 4.1).
/// [`Message::new`] sets `WAIT=true`, as every Java `Message` constructor does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    topic: FieldValue,
    body: Bytes,
    flag: i32,
    properties: Properties,
}

fn check_system(key: &str, value: &str) -> Result<(), PropertyError> {
    properties::check_encodable(key, value)?;
    if value.is_empty() {
        return Err(PropertyError::BlankValue {
            key: key.to_owned(),
        });
    }
    Ok(())
}

fn check_user(key: &str, value: &str) -> Result<(), PropertyError> {
    if key.trim().is_empty() {
        return Err(PropertyError::BlankKey {
            key: key.to_owned(),
        });
    }
    if value.trim().is_empty() {
        return Err(PropertyError::BlankValue {
            key: key.to_owned(),
        });
    }
    if keys::is_reserved(key) {
        return Err(PropertyError::Reserved {
            key: key.to_owned(),
        });
    }
    check_system(key, value)
}

fn parse_java_bool(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

/// The four ways of delaying a message; the setters keep at most one of them.
const DELAY_KEYS: [&str; 4] = [
    keys::DELAY,
    keys::TIMER_DELIVER_MS,
    keys::TIMER_DELAY_MS,
    keys::TIMER_DELAY_SEC,
];

impl Message {
    /// A message with `WAIT=true` and no other property.
    ///
    /// A topic of up to 38 bytes is kept inline (no heap allocation).
    pub fn new(topic: impl Into<FieldValue>, body: impl Into<Bytes>) -> Self {
        let mut properties = Properties::with_capacity(4);
        properties.insert(keys::WAIT, "true");
        Self {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties,
        }
    }

    /// A message from its parts, unchecked and without defaults: for decoders
    /// (batches, stored messages) that read the parts off the wire.
    pub fn from_parts(
        topic: impl Into<FieldValue>,
        body: impl Into<Bytes>,
        flag: i32,
        properties: Properties,
    ) -> Self {
        Self {
            topic: topic.into(),
            body: body.into(),
            flag,
            properties,
        }
    }

    /// The parts: topic, body, flag and properties.
    pub fn into_parts(self) -> (FieldValue, Bytes, i32, Properties) {
        (self.topic, self.body, self.flag, self.properties)
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic as the message keeps it, for callers that need a
    /// [`FieldValue`] (no conversion from `&str`).
    ///
    /// ```
    /// use rmq_protocol::message::Message;
    ///
    /// let message = Message::new("TopicTest", "x");
    /// assert_eq!(message.topic_value().as_str(), message.topic());
    /// ```
    pub fn topic_value(&self) -> &crate::FieldValue {
        &self.topic
    }

    /// Replaces the topic (checked when sent, not here).
    pub fn set_topic(&mut self, topic: impl Into<FieldValue>) {
        self.topic = topic.into();
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }

    /// The user flag (opaque to RocketMQ; not the sysFlag).
    pub fn flag(&self) -> i32 {
        self.flag
    }

    /// Replaces the user flag.
    pub fn set_flag(&mut self, flag: i32) {
        self.flag = flag;
    }

    /// The properties.
    pub fn properties(&self) -> &Properties {
        &self.properties
    }

    /// One property's value.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key)
    }

    /// The properties in their 5.2+ text form (header field `i` / `properties`).
    pub fn encode_properties(&self) -> Result<String, PropertyError> {
        let mut s = String::new();
        encode_properties(&self.properties, &mut s)?;
        Ok(s)
    }

    /// [`encode_properties`](Self::encode_properties) as a [`FieldValue`]: inline or
    /// one shared allocation that clones share ([`properties::encode_properties_value`]).
    pub fn encode_properties_value(&self) -> Result<FieldValue, PropertyError> {
        properties::encode_properties_value(&self.properties)
    }

    /// Sets a user property. Refuses reserved names ([`keys::RESERVED`]), blank names
    /// or values, and separators, like Java's `putUserProperty` (which does not check
    /// separators).
    pub fn put_user_property(
        &mut self,
        key: impl Into<FieldValue>,
        value: impl Into<FieldValue>,
    ) -> Result<(), PropertyError> {
        let (key, value): (FieldValue, FieldValue) = (key.into(), value.into());
        check_user(&key, &value)?;
        self.properties.insert(key, value);
        Ok(())
    }

    /// Sets any property, reserved names included: for the producer itself (UNIQ_KEY,
    /// TRAN_MSG, PGROUP, INSTANCE_ID, request-reply fields …) and for users who know what a
    /// system property does. Refuses empty names or values and separators.
    pub fn put_system_property(
        &mut self,
        key: impl Into<FieldValue>,
        value: impl Into<FieldValue>,
    ) -> Result<(), PropertyError> {
        let (key, value): (FieldValue, FieldValue) = (key.into(), value.into());
        check_system(&key, &value)?;
        self.properties.insert(key, value);
        Ok(())
    }

    /// Removes a property, returning its value.
    pub fn remove_property(&mut self, key: &str) -> Option<String> {
        self.properties.remove(key)
    }

    fn put_checked(
        &mut self,
        key: &'static str,
        value: impl Into<crate::value::FieldValue>,
    ) -> Result<(), PropertyError> {
        let value = value.into();
        check_system(key, &value)?;
        self.properties.insert(key, value);
        Ok(())
    }

    /// The tag (`TAGS`).
    pub fn tags(&self) -> Option<&str> {
        self.properties.get(keys::TAGS)
    }

    /// Sets the tag; it must be non-empty and free of separators.
    pub fn set_tags(&mut self, tags: impl Into<FieldValue>) -> Result<(), PropertyError> {
        self.put_checked(keys::TAGS, tags)
    }

    /// The business keys (`KEYS`, split on single spaces; empty pieces skipped).
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.properties
            .get(keys::KEYS)
            .unwrap_or_default()
            .split(keys::KEY_SEPARATOR)
            .filter(|k| !k.is_empty())
    }

    /// Sets the business keys, joined with a space (a key that itself contains spaces
    /// reads back as several keys). Empty keys are skipped; at least one must remain.
    pub fn set_keys<I>(&mut self, keys: I) -> Result<(), PropertyError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut joined = String::new();
        for k in keys {
            let k = k.as_ref();
            if k.is_empty() {
                continue;
            }
            if !joined.is_empty() {
                joined.push(keys::KEY_SEPARATOR);
            }
            joined.push_str(k);
        }
        self.put_checked(keys::KEYS, joined)
    }

    /// Whether the broker should answer only after storing (`WAIT`): true when absent
    /// or `"true"` in any case, as Java.
    pub fn wait_store_msg_ok(&self) -> bool {
        self.properties.get(keys::WAIT).is_none_or(parse_java_bool)
    }

    /// Sets `WAIT`.
    pub fn set_wait_store_msg_ok(&mut self, wait: bool) {
        self.properties
            .insert(keys::WAIT, if wait { "true" } else { "false" });
    }

    /// The delay level (`DELAY`); 0 when absent or not a number (not delayed).
    pub fn delay_level(&self) -> u32 {
        self.properties
            .get(keys::DELAY)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn set_delay_property(&mut self, key: &'static str, value: u64) {
        for k in DELAY_KEYS {
            self.properties.remove(k);
        }
        self.properties.insert(key, value.to_string());
    }

    /// Sets the delay level (1..N, broker levels `1s 5s 10s 30s 1m … 2h`); 0 clears it.
    /// Like every delay setter, it removes any other delay property (DELAY,
    /// TIMER_DELIVER_MS, TIMER_DELAY_MS, TIMER_DELAY_SEC): the last call wins.
    /// A send checks the delay ([`validate_delay`](crate::validate::validate_delay)):
    /// levels above 18 and timer delays over 3 days are refused.
    pub fn set_delay_level(&mut self, level: u32) {
        if level == 0 {
            self.properties.remove(keys::DELAY);
        } else {
            self.set_delay_property(keys::DELAY, u64::from(level));
        }
    }

    /// The absolute delivery time in epoch ms (`TIMER_DELIVER_MS`, 5.x brokers).
    pub fn deliver_time_ms(&self) -> Option<u64> {
        self.properties.get(keys::TIMER_DELIVER_MS)?.parse().ok()
    }

    /// Sets the absolute delivery time in epoch ms (5.x brokers); removes other delays.
    pub fn set_deliver_time_ms(&mut self, epoch_ms: u64) {
        self.set_delay_property(keys::TIMER_DELIVER_MS, epoch_ms);
    }

    /// The relative delay in ms (`TIMER_DELAY_MS`, 5.x brokers).
    pub fn delay_ms(&self) -> Option<u64> {
        self.properties.get(keys::TIMER_DELAY_MS)?.parse().ok()
    }

    /// Sets a relative delay in ms (5.x brokers); removes other delays.
    pub fn set_delay_ms(&mut self, ms: u64) {
        self.set_delay_property(keys::TIMER_DELAY_MS, ms);
    }

    /// The relative delay in seconds (`TIMER_DELAY_SEC`, 5.x brokers).
    pub fn delay_secs(&self) -> Option<u64> {
        self.properties.get(keys::TIMER_DELAY_SEC)?.parse().ok()
    }

    /// Sets a relative delay in seconds (5.x brokers); removes other delays.
    pub fn set_delay_secs(&mut self, secs: u64) {
        self.set_delay_property(keys::TIMER_DELAY_SEC, secs);
    }

    /// Removes every delay property.
    pub fn clear_delay(&mut self) {
        for k in DELAY_KEYS {
            self.properties.remove(k);
        }
    }

    /// Whether any delay property is set (DELAY > 0 or a TIMER_* delay).
    pub fn is_delayed(&self) -> bool {
        self.delay_level() > 0 || self.properties.count_keys(&DELAY_KEYS[1..]) > 0
    }

    /// The client message id (`UNIQ_KEY`).
    pub fn uniq_key(&self) -> Option<&str> {
        self.properties.get(keys::UNIQ_KEY)
    }

    /// Sets the client message id.
    pub fn set_uniq_key(
        &mut self,
        id: impl Into<crate::value::FieldValue>,
    ) -> Result<(), PropertyError> {
        self.put_checked(keys::UNIQ_KEY, id)
    }

    /// Whether this is a transactional half message (`TRAN_MSG` is `"true"`, any case).
    pub fn is_transaction_prepared(&self) -> bool {
        self.properties
            .get(keys::TRAN_MSG)
            .is_some_and(parse_java_bool)
    }

    /// The producer group of a half message (`PGROUP`).
    pub fn producer_group(&self) -> Option<&str> {
        self.properties.get(keys::PGROUP)
    }

    /// The transaction id (`__transactionId__`).
    pub fn transaction_id(&self) -> Option<&str> {
        self.properties.get(keys::TRANSACTION_ID)
    }

    /// The request-reply correlation id (`CORRELATION_ID`).
    pub fn correlation_id(&self) -> Option<&str> {
        self.properties.get(keys::CORRELATION_ID)
    }

    /// The 5.x ordering key (`__SHARDINGKEY`).
    pub fn sharding_key(&self) -> Option<&str> {
        self.properties.get(keys::SHARDING_KEY)
    }

    /// Sets the 5.x ordering key.
    pub fn set_sharding_key(&mut self, key: impl Into<FieldValue>) -> Result<(), PropertyError> {
        self.put_checked(keys::SHARDING_KEY, key)
    }

    /// Builder form of [`set_tags`](Self::set_tags).
    pub fn with_tags(mut self, tags: impl Into<FieldValue>) -> Result<Self, PropertyError> {
        self.set_tags(tags)?;
        Ok(self)
    }

    /// Builder form of [`set_keys`](Self::set_keys).
    pub fn with_keys<I>(mut self, keys: I) -> Result<Self, PropertyError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.set_keys(keys)?;
        Ok(self)
    }

    /// Builder form of [`put_user_property`](Self::put_user_property).
    pub fn with_property(
        mut self,
        key: impl Into<FieldValue>,
        value: impl Into<FieldValue>,
    ) -> Result<Self, PropertyError> {
        self.put_user_property(key, value)?;
        Ok(self)
    }

    /// Builder form of [`set_flag`](Self::set_flag).
    #[must_use]
    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }
}

/// A queue of a topic on one broker. `Display` is `topic@broker:queue`.
///
/// Ordered by topic, then broker name, then queue id (as Java's `compareTo`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageQueue {
    /// The topic (without namespace in results shown to users); inline up to 38 bytes.
    pub topic: FieldValue,
    /// The broker name; inline up to 38 bytes.
    pub broker_name: FieldValue,
    /// The queue id on that broker.
    pub queue_id: i32,
}

impl MessageQueue {
    /// A queue.
    pub fn new(
        topic: impl Into<FieldValue>,
        broker_name: impl Into<FieldValue>,
        queue_id: i32,
    ) -> Self {
        Self {
            topic: topic.into(),
            broker_name: broker_name.into(),
            queue_id,
        }
    }
}

impl fmt::Display for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.topic, self.broker_name, self.queue_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sets_wait() {
        let m = Message::new("T", "b");
        assert_eq!(
            m.properties().iter().collect::<Vec<_>>(),
            [("WAIT", "true")]
        );
        assert!(m.wait_store_msg_ok());
        assert_eq!(m.topic(), "T");
        assert_eq!(m.body().as_ref(), b"b");
        assert_eq!(m.flag(), 0);
        let m = Message::from_parts("T", Bytes::new(), 3, Properties::new());
        assert!(m.wait_store_msg_ok(), "absent WAIT means true");
    }

    #[test]
    fn wait_parsing() {
        let mut m = Message::new("T", "b");
        m.set_wait_store_msg_ok(false);
        assert!(!m.wait_store_msg_ok());
        assert_eq!(m.property(keys::WAIT), Some("false"));
        m.put_system_property(keys::WAIT, "TRUE").unwrap();
        assert!(m.wait_store_msg_ok());
        m.put_system_property(keys::WAIT, "yes").unwrap();
        assert!(!m.wait_store_msg_ok());
    }

    #[test]
    fn tags_and_keys() {
        let mut m = Message::new("T", "b");
        assert_eq!(m.tags(), None);
        assert_eq!(m.keys().count(), 0);
        m.set_tags("TagA").unwrap();
        assert_eq!(m.tags(), Some("TagA"));
        assert_eq!(
            m.set_tags("a\u{2}b"),
            Err(PropertyError::SeparatorInValue { key: "TAGS".into() })
        );
        assert!(m.set_tags("").is_err());
        assert_eq!(m.tags(), Some("TagA"));

        m.set_keys(["k1", "", "k2"]).unwrap();
        assert_eq!(m.property(keys::KEYS), Some("k1 k2"));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["k1", "k2"]);
        assert!(m.set_keys(["ok", "bad\u{1}"]).is_err());
        assert!(m.set_keys(Vec::<String>::new()).is_err());
        assert_eq!(m.keys().collect::<Vec<_>>(), ["k1", "k2"]);
        m.put_system_property(keys::KEYS, "a  b ").unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn user_properties() {
        let mut m = Message::new("T", "b");
        m.put_user_property("k", "v").unwrap();
        assert_eq!(m.property("k"), Some("v"));
        m.put_user_property(keys::TRANSACTION_ID, "tx").unwrap();
        assert_eq!(m.transaction_id(), Some("tx"));
        m.put_user_property(keys::SHARDING_KEY, "s").unwrap();
        assert_eq!(m.sharding_key(), Some("s"));
        let reserved = [
            keys::UNIQ_KEY,
            keys::TAGS,
            keys::WAIT,
            keys::TIMER_DELIVER_MS,
            "__CRC32#",
        ];
        for key in reserved {
            assert_eq!(
                m.put_user_property(key, "x"),
                Err(PropertyError::Reserved { key: key.into() })
            );
        }
        assert!(matches!(
            m.put_user_property(" ", "x"),
            Err(PropertyError::BlankKey { .. })
        ));
        assert!(matches!(
            m.put_user_property("k", " \t"),
            Err(PropertyError::BlankValue { .. })
        ));
        assert!(matches!(
            m.put_user_property("k\u{1}", "x"),
            Err(PropertyError::SeparatorInKey { .. })
        ));
        assert!(matches!(
            m.put_user_property("k", "x\u{2}"),
            Err(PropertyError::SeparatorInValue { .. })
        ));
        let err = m.put_user_property("k", "x\u{2}").unwrap_err();
        assert!(err.to_string().contains("\"k\""), "{err}");

        // System properties: reserved allowed, separators and empties not.
        m.put_system_property(keys::PGROUP, "PG").unwrap();
        assert_eq!(m.producer_group(), Some("PG"));
        m.put_system_property(keys::TRAN_MSG, "true").unwrap();
        assert!(m.is_transaction_prepared());
        m.put_system_property(keys::CORRELATION_ID, "c-1").unwrap();
        assert_eq!(m.correlation_id(), Some("c-1"));
        assert!(m.put_system_property("", "x").is_err());
        assert!(m.put_system_property("k", "").is_err());
        assert!(m.put_system_property("k", "a\u{1}b").is_err());
        assert_eq!(m.remove_property("k").as_deref(), Some("v"));
        m.encode_properties().unwrap();
    }

    #[test]
    fn delays_last_call_wins() {
        let mut m = Message::new("T", "b");
        assert_eq!(m.delay_level(), 0);
        assert!(!m.is_delayed());
        m.set_delay_level(3);
        assert_eq!(m.delay_level(), 3);
        assert!(m.is_delayed());
        m.set_deliver_time_ms(1_700_000_000_000);
        assert_eq!(m.delay_level(), 0);
        assert_eq!(m.deliver_time_ms(), Some(1_700_000_000_000));
        assert_eq!(m.property(keys::TIMER_DELIVER_MS), Some("1700000000000"));
        m.set_delay_ms(1500);
        assert_eq!((m.deliver_time_ms(), m.delay_ms()), (None, Some(1500)));
        m.set_delay_secs(10);
        assert_eq!((m.delay_ms(), m.delay_secs()), (None, Some(10)));
        m.set_delay_level(2);
        assert_eq!((m.delay_secs(), m.delay_level()), (None, 2));
        m.set_delay_level(0);
        assert!(!m.is_delayed());
        m.set_delay_ms(5);
        m.clear_delay();
        assert!(!m.is_delayed());
        m.put_system_property(keys::DELAY, "x").unwrap();
        assert_eq!(m.delay_level(), 0);
    }

    #[test]
    fn builders_and_uniq_key() {
        let m = Message::new("T", "b")
            .with_tags("t")
            .and_then(|m| m.with_keys(["a"]))
            .and_then(|m| m.with_property("p", "q"))
            .unwrap()
            .with_flag(7);
        assert_eq!(m.flag(), 7);
        assert_eq!(
            m.encode_properties().unwrap(),
            "WAIT\x01true\x02TAGS\x01t\x02KEYS\x01a\x02p\x01q\x02"
        );
        let mut m = m;
        m.set_uniq_key("C0A8000130391B6D358605F5E1000001").unwrap();
        assert_eq!(m.uniq_key(), Some("C0A8000130391B6D358605F5E1000001"));
        assert!(m.set_uniq_key("").is_err());
        m.set_topic("U");
        m.set_body(vec![1u8, 2]);
        m.set_flag(1);
        let (topic, body, flag, props) = m.into_parts();
        assert_eq!(
            (topic.as_str(), body.as_ref(), flag),
            ("U", &[1u8, 2][..], 1)
        );
        assert_eq!(props.len(), 5);
    }

    #[test]
    fn message_queue() {
        let a = MessageQueue::new("T", "broker-a", 3);
        assert_eq!(a.to_string(), "T@broker-a:3");
        let b = MessageQueue::new("T", "broker-a", 10);
        let c = MessageQueue::new("T", "broker-b", 0);
        let mut v = vec![c.clone(), b.clone(), a.clone()];
        v.sort();
        assert_eq!(v, [a.clone(), b, c]);
        let set: std::collections::HashSet<_> = [a.clone(), a].into_iter().collect();
        assert_eq!(set.len(), 1);
    }
}
