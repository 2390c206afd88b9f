//! `SendMessageRequestHeader`: the V1 send header with long field names.
//!
//! Used by SEND_MESSAGE (10) and SEND_REPLY_MESSAGE (324). The Java default is the
//! V2 header ([`super::send_message_v2`]); both carry the same data and convert into
//! each other with `From` (protocol.md section 3.1).

use super::{CommandHeader, FieldsExt, HeaderError, I32, I64, bool_str};
use crate::ext::ExtFields;

/// The V1 send request header (protocol.md section 3.1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SendMessageRequestHeader {
    /// `producerGroup` (required): the producer group.
    pub producer_group: String,
    /// `topic` (required): the target topic.
    pub topic: String,
    /// `defaultTopic` (required): the auto-create key topic, normally `"TBW102"`.
    pub default_topic: String,
    /// `defaultTopicQueueNums` (required): queue count for an auto-created topic, normally 4.
    pub default_topic_queue_nums: i32,
    /// `queueId` (required): the target queue; the broker picks one when negative.
    pub queue_id: i32,
    /// `sysFlag` (required): compression and transaction bits.
    pub sys_flag: i32,
    /// `bornTimestamp` (required): milliseconds since the epoch when the header was built.
    pub born_timestamp: i64,
    /// `flag` (required): the message's user flag.
    pub flag: i32,
    /// `properties`: the encoded message properties.
    pub properties: Option<crate::value::FieldValue>,
    /// `reconsumeTimes`: `0` for normal sends.
    pub reconsume_times: Option<i32>,
    /// `unitMode`: always written (Java default `false`); absent decodes as `false`.
    pub unit_mode: bool,
    /// `maxReconsumeTimes`: only for `%RETRY%` topics.
    pub max_reconsume_times: Option<i32>,
    /// `batch`: always written; `true` for a batch body. Absent decodes as `false`.
    pub batch: bool,
    /// `bname` (inherited `RpcRequestHeader` field): the target broker name.
    pub bname: Option<String>,
    /// `ns` (inherited): the namespace, when namespace v2 is used.
    pub ns: Option<String>,
    /// `nsd` (inherited): whether the names are already namespaced.
    pub nsd: Option<bool>,
}

impl CommandHeader for SendMessageRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("producerGroup", self.producer_group.as_str());
        out.insert("topic", self.topic.as_str());
        out.insert("defaultTopic", self.default_topic.as_str());
        out.insert(
            "defaultTopicQueueNums",
            crate::value::FieldValue::from_i64(self.default_topic_queue_nums.into()),
        );
        out.insert(
            "queueId",
            crate::value::FieldValue::from_i64(self.queue_id.into()),
        );
        out.insert(
            "sysFlag",
            crate::value::FieldValue::from_i64(self.sys_flag.into()),
        );
        out.insert(
            "bornTimestamp",
            crate::value::FieldValue::from_i64(self.born_timestamp),
        );
        out.insert("flag", crate::value::FieldValue::from_i64(self.flag.into()));
        out.insert_opt("properties", self.properties.clone());
        out.insert_opt(
            "reconsumeTimes",
            self.reconsume_times
                .map(|v| crate::value::FieldValue::from_i64(v.into())),
        );
        out.insert("unitMode", bool_str(self.unit_mode));
        out.insert_opt(
            "maxReconsumeTimes",
            self.max_reconsume_times
                .map(|v| crate::value::FieldValue::from_i64(v.into())),
        );
        out.insert("batch", bool_str(self.batch));
        out.insert_opt("bname", self.bname.as_deref());
        out.insert_opt("ns", self.ns.as_deref());
        out.insert_opt("nsd", self.nsd.map(bool_str));
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            producer_group: fields.required("producerGroup")?.to_owned(),
            topic: fields.required("topic")?.to_owned(),
            default_topic: fields.required("defaultTopic")?.to_owned(),
            default_topic_queue_nums: fields.required_num("defaultTopicQueueNums", I32)?,
            queue_id: fields.required_num("queueId", I32)?,
            sys_flag: fields.required_num("sysFlag", I32)?,
            born_timestamp: fields.required_num("bornTimestamp", I64)?,
            flag: fields.required_num("flag", I32)?,
            properties: fields.get("properties").map(crate::value::FieldValue::from),
            reconsume_times: fields.optional_num("reconsumeTimes", I32)?,
            unit_mode: fields.bool_or("unitMode", false),
            max_reconsume_times: fields.optional_num("maxReconsumeTimes", I32)?,
            batch: fields.bool_or("batch", false),
            bname: fields.optional_string("bname"),
            ns: fields.optional_string("ns"),
            nsd: fields.optional_bool("nsd"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, round_trip};

    fn sample() -> SendMessageRequestHeader {
        SendMessageRequestHeader {
            producer_group: "PG".into(),
            topic: "TopicTest".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 3,
            sys_flag: 0x4,
            born_timestamp: 1_700_000_000_000,
            flag: 7,
            properties: Some("WAIT\u{1}true\u{2}".into()),
            reconsume_times: Some(0),
            unit_mode: false,
            max_reconsume_times: Some(16),
            batch: true,
            bname: Some("broker-a".into()),
            ns: Some("ns1".into()),
            nsd: Some(true),
        }
    }

    #[test]
    fn round_trip_full_and_minimal() {
        let f = round_trip(&sample());
        assert_eq!(f.get("producerGroup"), Some("PG"));
        assert_eq!(f.get("bornTimestamp"), Some("1700000000000"));
        assert_eq!(f.get("batch"), Some("true"));
        assert_eq!(f.get("nsd"), Some("true"));

        let minimal = SendMessageRequestHeader {
            properties: None,
            reconsume_times: None,
            max_reconsume_times: None,
            batch: false,
            bname: None,
            ns: None,
            nsd: None,
            ..sample()
        };
        let f = round_trip(&minimal);
        // The two primitive-like booleans are always present; `None`s are omitted.
        assert_eq!(f.get("unitMode"), Some("false"));
        assert_eq!(f.get("batch"), Some("false"));
        for k in [
            "properties",
            "reconsumeTimes",
            "maxReconsumeTimes",
            "bname",
            "ns",
            "nsd",
        ] {
            assert!(!f.contains_key(k), "{k} must be omitted");
        }
        assert_eq!(f.len(), 10);
    }

    #[test]
    fn missing_required_fields() {
        for key in [
            "producerGroup",
            "topic",
            "defaultTopic",
            "defaultTopicQueueNums",
            "queueId",
            "sysFlag",
            "bornTimestamp",
            "flag",
        ] {
            assert_missing(&sample(), key);
        }
    }

    #[test]
    fn absent_booleans_default_to_false() {
        let mut f = ExtFields::new();
        sample().write_to(&mut f);
        f.remove("unitMode");
        f.remove("batch");
        let h = SendMessageRequestHeader::read_from(&f).unwrap();
        assert!(!h.unit_mode);
        assert!(!h.batch);
    }

    #[test]
    fn invalid_numbers() {
        assert_invalid(&sample(), "queueId", "x");
        assert_invalid(&sample(), "bornTimestamp", "1.5");
        assert_invalid(&sample(), "defaultTopicQueueNums", "99999999999");
        assert_invalid(&sample(), "reconsumeTimes", "");
        assert_invalid(&sample(), "maxReconsumeTimes", "-");
    }
}
