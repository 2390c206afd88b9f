//! `CreateTopicRequestHeader`: UPDATE_AND_CREATE_TOPIC (17), sent to a broker to
//! create or update a topic (peer.md section 2.1). The rocketmq-rust broker
//! requires `topic`, `defaultTopic`, `readQueueNums`, `writeQueueNums`, `perm`,
//! `topicFilterType` and `order`, all as strings.

use super::{CommandHeader, FieldsExt, HeaderError, I32, bool_str};
use crate::ext::ExtFields;

/// `perm` value for a readable and writable topic (`PERM_READ | PERM_WRITE`).
pub const PERM_READ_WRITE: i32 = 6;
/// The usual `topicFilterType`.
pub const SINGLE_TAG: &str = "SINGLE_TAG";
/// The auto-create key topic.
pub const DEFAULT_TOPIC: &str = "TBW102";

/// The create-topic header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTopicRequestHeader {
    /// `topic` (required): the topic to create or update.
    pub topic: String,
    /// `defaultTopic` (required): normally `"TBW102"`.
    pub default_topic: String,
    /// `readQueueNums` (required).
    pub read_queue_nums: i32,
    /// `writeQueueNums` (required).
    pub write_queue_nums: i32,
    /// `perm` (required): permission bits (4 read, 2 write, 1 inherit).
    pub perm: i32,
    /// `topicFilterType` (required): `"SINGLE_TAG"` or `"MULTI_TAG"`.
    pub topic_filter_type: String,
    /// `topicSysFlag`: topic system flag bits.
    pub topic_sys_flag: Option<i32>,
    /// `order`: always written (Java default `false`); absent decodes as `false`.
    pub order: bool,
    /// `attributes`: topic attributes, e.g. `"+message.type=NORMAL"`.
    pub attributes: Option<String>,
    /// `force`: force the update (5.x).
    pub force: Option<bool>,
}

impl CreateTopicRequestHeader {
    /// A topic with `queue_nums` read and write queues, perm 6 (read/write),
    /// `SINGLE_TAG`, not ordered, default topic `TBW102`.
    pub fn new(topic: impl Into<String>, queue_nums: i32) -> Self {
        Self {
            topic: topic.into(),
            default_topic: DEFAULT_TOPIC.to_owned(),
            read_queue_nums: queue_nums,
            write_queue_nums: queue_nums,
            perm: PERM_READ_WRITE,
            topic_filter_type: SINGLE_TAG.to_owned(),
            topic_sys_flag: None,
            order: false,
            attributes: None,
            force: None,
        }
    }
}

impl CommandHeader for CreateTopicRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("topic", self.topic.as_str());
        out.insert("defaultTopic", self.default_topic.as_str());
        out.insert("readQueueNums", self.read_queue_nums.to_string());
        out.insert("writeQueueNums", self.write_queue_nums.to_string());
        out.insert("perm", self.perm.to_string());
        out.insert("topicFilterType", self.topic_filter_type.as_str());
        out.insert_opt("topicSysFlag", self.topic_sys_flag.map(|v| v.to_string()));
        out.insert("order", bool_str(self.order));
        out.insert_opt("attributes", self.attributes.as_deref());
        out.insert_opt("force", self.force.map(bool_str));
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: fields.required("topic")?.to_owned(),
            default_topic: fields.required("defaultTopic")?.to_owned(),
            read_queue_nums: fields.required_num("readQueueNums", I32)?,
            write_queue_nums: fields.required_num("writeQueueNums", I32)?,
            perm: fields.required_num("perm", I32)?,
            topic_filter_type: fields.required("topicFilterType")?.to_owned(),
            topic_sys_flag: fields.optional_num("topicSysFlag", I32)?,
            order: fields.bool_or("order", false),
            attributes: fields.optional_string("attributes"),
            force: fields.optional_bool("force"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, pairs, round_trip};

    #[test]
    fn new_writes_what_the_broker_requires() {
        let f = round_trip(&CreateTopicRequestHeader::new("T", 8));
        let expected: Vec<(String, String)> = [
            ("topic", "T"),
            ("defaultTopic", "TBW102"),
            ("readQueueNums", "8"),
            ("writeQueueNums", "8"),
            ("perm", "6"),
            ("topicFilterType", "SINGLE_TAG"),
            ("order", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(pairs(&f), expected);
    }

    #[test]
    fn round_trip_all_fields() {
        round_trip(&CreateTopicRequestHeader {
            read_queue_nums: 16,
            topic_sys_flag: Some(0),
            order: true,
            attributes: Some("+message.type=NORMAL".into()),
            force: Some(false),
            ..CreateTopicRequestHeader::new("T", 4)
        });
    }

    #[test]
    fn missing_and_invalid() {
        let h = CreateTopicRequestHeader::new("T", 4);
        for key in [
            "topic",
            "defaultTopic",
            "readQueueNums",
            "writeQueueNums",
            "perm",
            "topicFilterType",
        ] {
            assert_missing(&h, key);
        }
        assert_invalid(&h, "readQueueNums", "eight");
        assert_invalid(&h, "perm", "rw");
        assert_invalid(&h, "topicSysFlag", "x");
    }
}
