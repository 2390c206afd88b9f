//! `SendMessageRequestHeaderV2`: the send header with single-letter keys `a` … `n`.
//!
//! Used by SEND_MESSAGE_V2 (310, the Java default), SEND_BATCH_MESSAGE (320) and
//! SEND_REPLY_MESSAGE_V2 (325). [`CommandHeader::write_to`] emits the keys in the
//! fixed order `a` … `n`, skipping `None`s, exactly like Java's binary fast encoding;
//! byte-exact golden vectors (protocol.md section 3.2) depend on that order.
//!
//! The V2 header has no namespace fields: converting a V1 header with `ns`/`nsd`
//! into V2 drops them (Java does the same), and the broker name travels in `n`.

use super::send_message::SendMessageRequestHeader;
use super::{CommandHeader, FieldsExt, HeaderError, I32, I64, bool_str};
use crate::ext::ExtFields;
use crate::ext::FieldSink;
use crate::value::FieldValue;

/// The V2 send request header (protocol.md section 3.1). Field names are the V1
/// meanings; each field's doc names its wire key.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SendMessageRequestHeaderV2 {
    /// `a` (required): producer group.
    pub producer_group: String,
    /// `b` (required): topic.
    pub topic: String,
    /// `c` (required): default (auto-create key) topic, normally `"TBW102"`.
    pub default_topic: String,
    /// `d` (required): queue count for an auto-created topic, normally 4.
    pub default_topic_queue_nums: i32,
    /// `e` (required): queue id; the broker picks one when negative.
    pub queue_id: i32,
    /// `f` (required): sysFlag (compression and transaction bits).
    pub sys_flag: i32,
    /// `g` (required): born timestamp, milliseconds since the epoch.
    pub born_timestamp: i64,
    /// `h` (required): the message's user flag.
    pub flag: i32,
    /// `i`: encoded message properties.
    pub properties: Option<FieldValue>,
    /// `j`: reconsume times; Java always sends `0` for normal sends.
    pub reconsume_times: Option<i32>,
    /// `k`: unit mode. Always written; absent decodes as `false`.
    pub unit_mode: bool,
    /// `l`: max reconsume times (only for `%RETRY%` topics).
    pub max_reconsume_times: Option<i32>,
    /// `m`: batch. Always written; `true` for SEND_BATCH_MESSAGE. Absent decodes as `false`.
    pub batch: bool,
    /// `n`: broker name of the target queue (4.9.5+).
    pub broker_name: Option<String>,
}

/// [`SendMessageRequestHeaderV2`] with borrowed strings, for the send path: it
/// writes exactly the same fields in the same order without first cloning the
/// producer group, topic, properties and broker name into an owned header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendMessageRequestHeaderV2Ref<'a> {
    /// `a`: producer group.
    pub producer_group: &'a str,
    /// `b`: topic.
    pub topic: &'a str,
    /// `c`: default (auto-create key) topic.
    pub default_topic: &'a str,
    /// `d`: queue count for an auto-created topic.
    pub default_topic_queue_nums: i32,
    /// `e`: queue id.
    pub queue_id: i32,
    /// `f`: sysFlag.
    pub sys_flag: i32,
    /// `g`: born timestamp, milliseconds since the epoch.
    pub born_timestamp: i64,
    /// `h`: the message's user flag.
    pub flag: i32,
    /// `i`: encoded message properties (a shared [`FieldValue`]: writing the header
    /// clones it without copying the text).
    pub properties: Option<&'a FieldValue>,
    /// `j`: reconsume times.
    pub reconsume_times: Option<i32>,
    /// `k`: unit mode.
    pub unit_mode: bool,
    /// `l`: max reconsume times.
    pub max_reconsume_times: Option<i32>,
    /// `m`: batch.
    pub batch: bool,
    /// `n`: broker name of the target queue.
    pub broker_name: Option<&'a str>,
}

impl SendMessageRequestHeaderV2Ref<'_> {
    /// Writes the header's fields into `out` (an [`ExtFields`] map, or a
    /// [`WireWriter`](crate::ext::WireWriter) for a header without a vector of its
    /// own), in the order `a` … `n`.
    pub fn write_to(&self, out: &mut impl FieldSink) {
        // Order matters: a, b, c, …, n (binary golden vectors).
        out.put_str("a", self.producer_group);
        out.put_str("b", self.topic);
        out.put_str("c", self.default_topic);
        out.put_i64("d", self.default_topic_queue_nums.into());
        out.put_i64("e", self.queue_id.into());
        out.put_i64("f", self.sys_flag.into());
        out.put_i64("g", self.born_timestamp);
        out.put_i64("h", self.flag.into());
        if let Some(p) = self.properties {
            out.put_value("i", p);
        }
        if let Some(v) = self.reconsume_times {
            out.put_i64("j", v.into());
        }
        out.put_str("k", bool_str(self.unit_mode));
        if let Some(v) = self.max_reconsume_times {
            out.put_i64("l", v.into());
        }
        out.put_str("m", bool_str(self.batch));
        if let Some(b) = self.broker_name {
            out.put_str("n", b);
        }
    }
}

impl SendMessageRequestHeaderV2 {
    /// A borrowed view of this header (same fields, same wire form).
    pub fn borrowed(&self) -> SendMessageRequestHeaderV2Ref<'_> {
        SendMessageRequestHeaderV2Ref {
            producer_group: &self.producer_group,
            topic: &self.topic,
            default_topic: &self.default_topic,
            default_topic_queue_nums: self.default_topic_queue_nums,
            queue_id: self.queue_id,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            flag: self.flag,
            properties: self.properties.as_ref(),
            reconsume_times: self.reconsume_times,
            unit_mode: self.unit_mode,
            max_reconsume_times: self.max_reconsume_times,
            batch: self.batch,
            broker_name: self.broker_name.as_deref(),
        }
    }
}

impl CommandHeader for SendMessageRequestHeaderV2 {
    fn write_to(&self, out: &mut ExtFields) {
        self.borrowed().write_to(out);
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            producer_group: fields.required("a")?.to_owned(),
            topic: fields.required("b")?.to_owned(),
            default_topic: fields.required("c")?.to_owned(),
            default_topic_queue_nums: fields.required_num("d", I32)?,
            queue_id: fields.required_num("e", I32)?,
            sys_flag: fields.required_num("f", I32)?,
            born_timestamp: fields.required_num("g", I64)?,
            flag: fields.required_num("h", I32)?,
            properties: fields.get("i").map(FieldValue::from),
            reconsume_times: fields.optional_num("j", I32)?,
            unit_mode: fields.bool_or("k", false),
            max_reconsume_times: fields.optional_num("l", I32)?,
            batch: fields.bool_or("m", false),
            broker_name: fields.optional_string("n"),
        })
    }
}

impl From<SendMessageRequestHeader> for SendMessageRequestHeaderV2 {
    /// V1 → V2. `bname` becomes `n`; `ns` and `nsd` have no V2 key and are dropped.
    fn from(v1: SendMessageRequestHeader) -> Self {
        Self {
            producer_group: v1.producer_group,
            topic: v1.topic,
            default_topic: v1.default_topic,
            default_topic_queue_nums: v1.default_topic_queue_nums,
            queue_id: v1.queue_id,
            sys_flag: v1.sys_flag,
            born_timestamp: v1.born_timestamp,
            flag: v1.flag,
            properties: v1.properties,
            reconsume_times: v1.reconsume_times,
            unit_mode: v1.unit_mode,
            max_reconsume_times: v1.max_reconsume_times,
            batch: v1.batch,
            broker_name: v1.bname,
        }
    }
}

impl From<SendMessageRequestHeaderV2> for SendMessageRequestHeader {
    /// V2 → V1. `n` becomes `bname`; `ns` and `nsd` are `None`.
    fn from(v2: SendMessageRequestHeaderV2) -> Self {
        Self {
            producer_group: v2.producer_group,
            topic: v2.topic,
            default_topic: v2.default_topic,
            default_topic_queue_nums: v2.default_topic_queue_nums,
            queue_id: v2.queue_id,
            sys_flag: v2.sys_flag,
            born_timestamp: v2.born_timestamp,
            flag: v2.flag,
            properties: v2.properties,
            reconsume_times: v2.reconsume_times,
            unit_mode: v2.unit_mode,
            max_reconsume_times: v2.max_reconsume_times,
            batch: v2.batch,
            bname: v2.broker_name,
            ns: None,
            nsd: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, pairs, round_trip};

    const PROPS: &str = "WAIT\x01true\x02UNIQ_KEY\x01C0A8000130391B6D358605F5E1000001\x02";

    /// The inputs of protocol.md section 3.2.
    fn vector_inputs() -> SendMessageRequestHeaderV2 {
        SendMessageRequestHeaderV2 {
            producer_group: "PG".into(),
            topic: "TopicTest".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            flag: 0,
            properties: Some(PROPS.into()),
            reconsume_times: Some(0),
            unit_mode: false,
            max_reconsume_times: None,
            batch: false,
            broker_name: Some("broker-a".into()),
        }
    }

    #[test]
    fn protocol_3_2_key_sequence() {
        let mut f = ExtFields::new();
        vector_inputs().write_to(&mut f);
        let expected: Vec<(String, String)> = [
            ("a", "PG"),
            ("b", "TopicTest"),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", "0"),
            ("f", "0"),
            ("g", "1700000000000"),
            ("h", "0"),
            ("i", PROPS),
            ("j", "0"),
            ("k", "false"),
            ("m", "false"),
            ("n", "broker-a"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(pairs(&f), expected);
    }

    /// The ext-map section of the section 3.2 frame, rebuilt from the fields with the
    /// binary layout (`i16 keyLen, key, i32 valLen, value`), matches the golden bytes.
    #[test]
    fn protocol_3_2_ext_map_bytes() {
        let mut f = ExtFields::new();
        vector_inputs().write_to(&mut f);
        let mut bytes = Vec::new();
        for (k, v) in f.iter() {
            bytes.extend_from_slice(&(k.len() as i16).to_be_bytes());
            bytes.extend_from_slice(k.as_bytes());
            bytes.extend_from_slice(&(v.len() as i32).to_be_bytes());
            bytes.extend_from_slice(v.as_bytes());
        }
        let golden_hex = "
            00 01 61 00 00 00 02 50 47
            00 01 62 00 00 00 09 54 6F 70 69 63 54 65 73 74
            00 01 63 00 00 00 06 54 42 57 31 30 32
            00 01 64 00 00 00 01 34   00 01 65 00 00 00 01 30   00 01 66 00 00 00 01 30
            00 01 67 00 00 00 0D 31 37 30 30 30 30 30 30 30 30 30 30 30
            00 01 68 00 00 00 01 30
            00 01 69 00 00 00 34 57 41 49 54 01 74 72 75 65 02 55 4E 49 51 5F 4B 45 59 01
            43 30 41 38 30 30 30 31 33 30 33 39 31 42 36 44 33 35 38 36 30 35 46 35 45 31 30 30 30 30 30 31 02
            00 01 6A 00 00 00 01 30
            00 01 6B 00 00 00 05 66 61 6C 73 65
            00 01 6D 00 00 00 05 66 61 6C 73 65
            00 01 6E 00 00 00 08 62 72 6F 6B 65 72 2D 61";
        let hex: String = golden_hex.chars().filter(|c| !c.is_whitespace()).collect();
        let golden: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(golden.len(), 0xC4, "extLen of the vector");
        assert_eq!(bytes, golden);

        // Written in wire form (no vector), the fields are these bytes themselves.
        let mut arena = bytes::BytesMut::new();
        let mut w = crate::ext::WireWriter::new(&mut arena);
        vector_inputs().borrowed().write_to(&mut w);
        let wire = w.finish();
        assert!(wire.is_wire_form());
        assert_eq!(wire.wire_bytes(), Some(&golden[..]));
        assert_eq!(wire, f);
    }

    #[test]
    fn round_trip_and_optional_l() {
        round_trip(&vector_inputs());
        let retry = SendMessageRequestHeaderV2 {
            max_reconsume_times: Some(16),
            reconsume_times: Some(3),
            batch: true,
            ..vector_inputs()
        };
        let f = round_trip(&retry);
        let keys: String = f.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, "abcdefghijklmn");

        let bare = SendMessageRequestHeaderV2 {
            properties: None,
            reconsume_times: None,
            broker_name: None,
            ..vector_inputs()
        };
        let f = round_trip(&bare);
        let keys: String = f.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, "abcdefghkm");
    }

    #[test]
    fn missing_required_fields() {
        for key in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            assert_missing(&vector_inputs(), key);
        }
    }

    #[test]
    fn invalid_numbers() {
        assert_invalid(&vector_inputs(), "d", "four");
        assert_invalid(&vector_inputs(), "e", "0x1");
        assert_invalid(&vector_inputs(), "g", "");
        assert_invalid(&vector_inputs(), "j", "abc");
        assert_invalid(&vector_inputs(), "l", "1e3");
    }

    #[test]
    fn java_capture_decodes() {
        // NewLife capture of a Java 5.2.0 client (protocol.md section 3.1), properties shortened.
        let f: ExtFields = [
            ("a", "R01_producer_123"),
            ("b", "TeZ_Test_Lng"),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", "0"),
            ("f", "0"),
            ("g", "1749883778686"),
            ("h", "0"),
            ("i", "WAIT\u{1}true\u{2}TAGS\u{1}*\u{2}"),
            ("j", "0"),
            ("k", "false"),
            ("m", "false"),
            ("n", "broker-a"),
        ]
        .into_iter()
        .collect();
        let h = SendMessageRequestHeaderV2::read_from(&f).unwrap();
        assert_eq!(h.producer_group, "R01_producer_123");
        assert_eq!(h.born_timestamp, 1_749_883_778_686);
        assert_eq!(h.broker_name.as_deref(), Some("broker-a"));
        assert!(!h.batch && !h.unit_mode);
        // Java's Boolean.parseBoolean ignores case.
        let mut f2 = f.clone();
        f2.insert("m", "TRUE");
        assert!(SendMessageRequestHeaderV2::read_from(&f2).unwrap().batch);
    }

    #[test]
    fn v1_v2_conversions() {
        let v2 = SendMessageRequestHeaderV2 {
            max_reconsume_times: Some(16),
            unit_mode: true,
            batch: true,
            ..vector_inputs()
        };
        let v1 = SendMessageRequestHeader::from(v2.clone());
        assert_eq!(v1.producer_group, "PG");
        assert_eq!(v1.bname.as_deref(), Some("broker-a"));
        assert_eq!(v1.max_reconsume_times, Some(16));
        assert!(v1.unit_mode && v1.batch);
        assert_eq!((v1.ns.as_deref(), v1.nsd), (None, None));
        assert_eq!(SendMessageRequestHeaderV2::from(v1.clone()), v2);

        // The same data under V1 names and V2 letters.
        let (mut f1, mut f2) = (ExtFields::new(), ExtFields::new());
        v1.write_to(&mut f1);
        v2.write_to(&mut f2);
        for (long, letter) in [
            ("producerGroup", "a"),
            ("topic", "b"),
            ("defaultTopic", "c"),
            ("defaultTopicQueueNums", "d"),
            ("queueId", "e"),
            ("sysFlag", "f"),
            ("bornTimestamp", "g"),
            ("flag", "h"),
            ("properties", "i"),
            ("reconsumeTimes", "j"),
            ("unitMode", "k"),
            ("maxReconsumeTimes", "l"),
            ("batch", "m"),
            ("bname", "n"),
        ] {
            assert_eq!(f1.get(long), f2.get(letter), "{long} vs {letter}");
        }

        // ns/nsd are dropped going to V2.
        let with_ns = SendMessageRequestHeader {
            ns: Some("x".into()),
            nsd: Some(true),
            ..v1
        };
        assert_eq!(SendMessageRequestHeaderV2::from(with_ns), v2);
    }
}
