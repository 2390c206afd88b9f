//! PULL_MESSAGE (11): [`PullMessageRequestHeader`] and [`PullMessageResponseHeader`].
//!
//! A producer never pulls; these exist so tests can read back what was sent
//! (peer.md section 2.2). The response body is the concatenated stored messages.

use super::{CommandHeader, FieldsExt, HeaderError, I32, I64};
use crate::ext::ExtFields;

/// Pull `sysFlag` bit: commit the consumer offset given in `commitOffset`.
pub const FLAG_COMMIT_OFFSET: i32 = 0x1;
/// Pull `sysFlag` bit: long polling (hold the request up to `suspendTimeoutMillis`).
pub const FLAG_SUSPEND: i32 = 0x2;
/// Pull `sysFlag` bit: the request carries `subscription`. Required by the
/// rocketmq-rust broker, which otherwise answers "subscription not exist".
pub const FLAG_SUBSCRIPTION: i32 = 0x4;
/// Pull `sysFlag` bit: class filter mode.
pub const FLAG_CLASS_FILTER: i32 = 0x8;

/// The pull request header.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PullMessageRequestHeader {
    /// `consumerGroup` (required): the consumer group (auto-created by the broker).
    pub consumer_group: String,
    /// `topic` (required).
    pub topic: String,
    /// `queueId` (required).
    pub queue_id: i32,
    /// `queueOffset` (required): the first consume-queue offset to read.
    pub queue_offset: i64,
    /// `maxMsgNums` (required): at most this many messages.
    pub max_msg_nums: i32,
    /// `sysFlag` (required): `FLAG_*` bits.
    pub sys_flag: i32,
    /// `commitOffset` (required): the consumer offset to commit (with [`FLAG_COMMIT_OFFSET`]).
    pub commit_offset: i64,
    /// `suspendTimeoutMillis` (required): long-polling hold time; 0 for none.
    pub suspend_timeout_millis: i64,
    /// `subscription`: the filter expression, e.g. `"*"`.
    pub subscription: Option<String>,
    /// `subVersion` (required): subscription version.
    pub sub_version: i64,
    /// `expressionType`: `"TAG"` or `"SQL92"`.
    pub expression_type: Option<String>,
    /// `maxMsgBytes`: at most this many bytes.
    pub max_msg_bytes: Option<i32>,
    /// `bname` (inherited): the broker name.
    pub bname: Option<String>,
}

impl PullMessageRequestHeader {
    /// A one-shot pull of up to `max_msg_nums` messages from `queue_offset`, matching
    /// every tag: sysFlag [`FLAG_SUBSCRIPTION`], subscription `"*"`, expression type
    /// `"TAG"`, no suspension, commit offset 0, subVersion 0.
    pub fn one_shot(
        consumer_group: impl Into<String>,
        topic: impl Into<String>,
        queue_id: i32,
        queue_offset: i64,
        max_msg_nums: i32,
    ) -> Self {
        Self {
            consumer_group: consumer_group.into(),
            topic: topic.into(),
            queue_id,
            queue_offset,
            max_msg_nums,
            sys_flag: FLAG_SUBSCRIPTION,
            commit_offset: 0,
            suspend_timeout_millis: 0,
            subscription: Some("*".to_owned()),
            sub_version: 0,
            expression_type: Some("TAG".to_owned()),
            max_msg_bytes: None,
            bname: None,
        }
    }
}

impl CommandHeader for PullMessageRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("consumerGroup", self.consumer_group.as_str());
        out.insert("topic", self.topic.as_str());
        out.insert("queueId", self.queue_id.to_string());
        out.insert("queueOffset", self.queue_offset.to_string());
        out.insert("maxMsgNums", self.max_msg_nums.to_string());
        out.insert("sysFlag", self.sys_flag.to_string());
        out.insert("commitOffset", self.commit_offset.to_string());
        out.insert(
            "suspendTimeoutMillis",
            self.suspend_timeout_millis.to_string(),
        );
        out.insert_opt("subscription", self.subscription.as_deref());
        out.insert("subVersion", self.sub_version.to_string());
        out.insert_opt("expressionType", self.expression_type.as_deref());
        out.insert_opt("maxMsgBytes", self.max_msg_bytes.map(|v| v.to_string()));
        out.insert_opt("bname", self.bname.as_deref());
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            consumer_group: fields.required("consumerGroup")?.to_owned(),
            topic: fields.required("topic")?.to_owned(),
            queue_id: fields.required_num("queueId", I32)?,
            queue_offset: fields.required_num("queueOffset", I64)?,
            max_msg_nums: fields.required_num("maxMsgNums", I32)?,
            sys_flag: fields.required_num("sysFlag", I32)?,
            commit_offset: fields.required_num("commitOffset", I64)?,
            suspend_timeout_millis: fields.required_num("suspendTimeoutMillis", I64)?,
            subscription: fields.optional_string("subscription"),
            sub_version: fields.required_num("subVersion", I64)?,
            expression_type: fields.optional_string("expressionType"),
            max_msg_bytes: fields.optional_num("maxMsgBytes", I32)?,
            bname: fields.optional_string("bname"),
        })
    }
}

/// The pull response header (SUCCESS, PULL_NOT_FOUND and the retry codes).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PullMessageResponseHeader {
    /// `suggestWhichBrokerId` (required): the broker id to pull from next time.
    pub suggest_which_broker_id: i64,
    /// `nextBeginOffset` (required): the offset to pull from next.
    pub next_begin_offset: i64,
    /// `minOffset` (required): the queue's min offset.
    pub min_offset: i64,
    /// `maxOffset` (required): the queue's max offset.
    pub max_offset: i64,
    /// `offsetDelta`.
    pub offset_delta: Option<i64>,
    /// `topicSysFlag`.
    pub topic_sys_flag: Option<i32>,
    /// `groupSysFlag`.
    pub group_sys_flag: Option<i32>,
    /// `forbiddenType`.
    pub forbidden_type: Option<i32>,
}

impl CommandHeader for PullMessageResponseHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert(
            "suggestWhichBrokerId",
            self.suggest_which_broker_id.to_string(),
        );
        out.insert("nextBeginOffset", self.next_begin_offset.to_string());
        out.insert("minOffset", self.min_offset.to_string());
        out.insert("maxOffset", self.max_offset.to_string());
        out.insert_opt("offsetDelta", self.offset_delta.map(|v| v.to_string()));
        out.insert_opt("topicSysFlag", self.topic_sys_flag.map(|v| v.to_string()));
        out.insert_opt("groupSysFlag", self.group_sys_flag.map(|v| v.to_string()));
        out.insert_opt("forbiddenType", self.forbidden_type.map(|v| v.to_string()));
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            suggest_which_broker_id: fields.required_num("suggestWhichBrokerId", I64)?,
            next_begin_offset: fields.required_num("nextBeginOffset", I64)?,
            min_offset: fields.required_num("minOffset", I64)?,
            max_offset: fields.required_num("maxOffset", I64)?,
            offset_delta: fields.optional_num("offsetDelta", I64)?,
            topic_sys_flag: fields.optional_num("topicSysFlag", I32)?,
            group_sys_flag: fields.optional_num("groupSysFlag", I32)?,
            forbidden_type: fields.optional_num("forbiddenType", I32)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, pairs, round_trip};

    #[test]
    fn one_shot_matches_peer_doc() {
        let f = round_trip(&PullMessageRequestHeader::one_shot("CG", "T", 2, 0, 32));
        let expected: Vec<(String, String)> = [
            ("consumerGroup", "CG"),
            ("topic", "T"),
            ("queueId", "2"),
            ("queueOffset", "0"),
            ("maxMsgNums", "32"),
            ("sysFlag", "4"),
            ("commitOffset", "0"),
            ("suspendTimeoutMillis", "0"),
            ("subscription", "*"),
            ("subVersion", "0"),
            ("expressionType", "TAG"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(pairs(&f), expected);
    }

    #[test]
    fn request_round_trip_and_errors() {
        let h = PullMessageRequestHeader {
            max_msg_bytes: Some(1 << 20),
            bname: Some("broker-a".into()),
            sys_flag: FLAG_SUBSCRIPTION | FLAG_SUSPEND | FLAG_COMMIT_OFFSET,
            suspend_timeout_millis: 15_000,
            ..PullMessageRequestHeader::one_shot("CG", "T", 0, 100, 16)
        };
        round_trip(&h);
        round_trip(&PullMessageRequestHeader {
            subscription: None,
            expression_type: None,
            ..h.clone()
        });
        for key in [
            "consumerGroup",
            "topic",
            "queueId",
            "queueOffset",
            "maxMsgNums",
            "sysFlag",
            "commitOffset",
            "suspendTimeoutMillis",
            "subVersion",
        ] {
            assert_missing(&h, key);
        }
        assert_invalid(&h, "queueOffset", "first");
        assert_invalid(&h, "maxMsgBytes", "1MB");
    }

    fn response() -> PullMessageResponseHeader {
        PullMessageResponseHeader {
            suggest_which_broker_id: 0,
            next_begin_offset: 32,
            min_offset: 0,
            max_offset: 40,
            offset_delta: Some(1),
            topic_sys_flag: Some(0),
            group_sys_flag: Some(0),
            forbidden_type: Some(1),
        }
    }

    #[test]
    fn response_round_trip_and_errors() {
        round_trip(&response());
        let f = round_trip(&PullMessageResponseHeader {
            offset_delta: None,
            topic_sys_flag: None,
            group_sys_flag: None,
            forbidden_type: None,
            ..response()
        });
        assert_eq!(f.len(), 4);
        for key in [
            "suggestWhichBrokerId",
            "nextBeginOffset",
            "minOffset",
            "maxOffset",
        ] {
            assert_missing(&response(), key);
        }
        assert_invalid(&response(), "nextBeginOffset", "n/a");
        assert_invalid(&response(), "forbiddenType", "yes");
    }
}
