//! `ReplyMessageRequestHeader`: PUSH_REPLY_MESSAGE_TO_CLIENT (326), the broker
//! pushing a reply to the requester (protocol.md section 12.3). The body is the
//! reply body; the requester must answer SUCCESS.
//!
//! Required fields follow Java's `@CFNotNull` annotations; `properties`,
//! `reconsumeTimes` and `unitMode` are optional.

use super::{CommandHeader, FieldsExt, HeaderError, I32, I64, bool_str};
use crate::ext::ExtFields;

/// The reply push header.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReplyMessageRequestHeader {
    /// `producerGroup` (required): the replying producer's group.
    pub producer_group: String,
    /// `topic` (required): the reply topic (`<CLUSTER>_REPLY_TOPIC`).
    pub topic: String,
    /// `defaultTopic` (required): the auto-create key topic.
    pub default_topic: String,
    /// `defaultTopicQueueNums` (required).
    pub default_topic_queue_nums: i32,
    /// `queueId` (required).
    pub queue_id: i32,
    /// `sysFlag` (required): bit 0x1 means the body is compressed.
    pub sys_flag: i32,
    /// `bornTimestamp` (required): milliseconds since the epoch.
    pub born_timestamp: i64,
    /// `flag` (required): the reply message's user flag.
    pub flag: i32,
    /// `properties`: encoded properties (carries `CORRELATION_ID`, `PUSH_REPLY_TIME`, …).
    pub properties: Option<String>,
    /// `reconsumeTimes`.
    pub reconsume_times: Option<i32>,
    /// `unitMode`: always written; absent decodes as `false`.
    pub unit_mode: bool,
    /// `bornHost` (required): `"ip:port"` of the replying producer.
    pub born_host: String,
    /// `storeHost` (required): `"ip:port"` of the broker.
    pub store_host: String,
    /// `storeTimestamp` (required): milliseconds since the epoch.
    pub store_timestamp: i64,
}

impl CommandHeader for ReplyMessageRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("producerGroup", self.producer_group.as_str());
        out.insert("topic", self.topic.as_str());
        out.insert("defaultTopic", self.default_topic.as_str());
        out.insert(
            "defaultTopicQueueNums",
            self.default_topic_queue_nums.to_string(),
        );
        out.insert("queueId", self.queue_id.to_string());
        out.insert("sysFlag", self.sys_flag.to_string());
        out.insert("bornTimestamp", self.born_timestamp.to_string());
        out.insert("flag", self.flag.to_string());
        out.insert_opt("properties", self.properties.as_deref());
        out.insert_opt(
            "reconsumeTimes",
            self.reconsume_times.map(|v| v.to_string()),
        );
        out.insert("unitMode", bool_str(self.unit_mode));
        out.insert("bornHost", self.born_host.as_str());
        out.insert("storeHost", self.store_host.as_str());
        out.insert("storeTimestamp", self.store_timestamp.to_string());
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
            properties: fields.optional_string("properties"),
            reconsume_times: fields.optional_num("reconsumeTimes", I32)?,
            unit_mode: fields.bool_or("unitMode", false),
            born_host: fields.required("bornHost")?.to_owned(),
            store_host: fields.required("storeHost")?.to_owned(),
            store_timestamp: fields.required_num("storeTimestamp", I64)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, round_trip};

    fn sample() -> ReplyMessageRequestHeader {
        ReplyMessageRequestHeader {
            producer_group: "responder".into(),
            topic: "DefaultCluster_REPLY_TOPIC".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 1,
            sys_flag: 1,
            born_timestamp: 1_700_000_000_000,
            flag: 0,
            properties: Some("CORRELATION_ID\u{1}abc\u{2}MSG_TYPE\u{1}reply\u{2}".into()),
            reconsume_times: Some(0),
            unit_mode: false,
            born_host: "10.0.0.5:50000".into(),
            store_host: "10.0.0.1:10911".into(),
            store_timestamp: 1_700_000_000_123,
        }
    }

    #[test]
    fn round_trip_full_and_minimal() {
        round_trip(&sample());
        let f = round_trip(&ReplyMessageRequestHeader {
            properties: None,
            reconsume_times: None,
            ..sample()
        });
        assert_eq!(f.len(), 12);
        // A sender that omits unitMode (e.g. an Option<bool> left unset) still decodes.
        let mut f = f;
        f.remove("unitMode");
        assert!(!ReplyMessageRequestHeader::read_from(&f).unwrap().unit_mode);
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
            "bornHost",
            "storeHost",
            "storeTimestamp",
        ] {
            assert_missing(&sample(), key);
        }
    }

    #[test]
    fn invalid_numbers() {
        assert_invalid(&sample(), "sysFlag", "compressed");
        assert_invalid(&sample(), "storeTimestamp", "now");
        assert_invalid(&sample(), "reconsumeTimes", "x");
    }
}
