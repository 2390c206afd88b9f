//! `CheckTransactionStateRequestHeader`: CHECK_TRANSACTION_STATE (39), a one-way
//! request from the broker asking for a half message's state (protocol.md
//! section 12.2). The body is the full stored message.
//!
//! Only the two offsets are required, as in Java. `topic` is optional although
//! current brokers send it (`RMQ_SYS_TRANS_HALF_TOPIC`): Java does not require it,
//! and refusing a check would leave the transaction unresolved. The rocketmq-rust
//! broker sends `offsetMsgId=""`, which decodes as `Some("")`.

use super::{CommandHeader, FieldsExt, HeaderError, I64};
use crate::ext::ExtFields;

/// The transaction check header.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CheckTransactionStateRequestHeader {
    /// `topic`: the topic of the half-queue copy (not the user topic, which is in the body).
    pub topic: Option<String>,
    /// `tranStateTableOffset` (required): the half message's queue offset.
    pub tran_state_table_offset: i64,
    /// `commitLogOffset` (required): the half message's commit-log offset.
    pub commit_log_offset: i64,
    /// `msgId`: the message's UNIQ_KEY.
    pub msg_id: Option<String>,
    /// `transactionId`: the transaction id (equal to `msgId` on Java brokers).
    pub transaction_id: Option<String>,
    /// `offsetMsgId`: the offset message id (may be empty, see the module docs).
    pub offset_msg_id: Option<String>,
    /// `bname` (inherited): the broker name.
    pub bname: Option<String>,
}

impl CommandHeader for CheckTransactionStateRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert_opt("topic", self.topic.as_deref());
        out.insert(
            "tranStateTableOffset",
            self.tran_state_table_offset.to_string(),
        );
        out.insert("commitLogOffset", self.commit_log_offset.to_string());
        out.insert_opt("msgId", self.msg_id.as_deref());
        out.insert_opt("transactionId", self.transaction_id.as_deref());
        out.insert_opt("offsetMsgId", self.offset_msg_id.as_deref());
        out.insert_opt("bname", self.bname.as_deref());
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: fields.optional_string("topic"),
            tran_state_table_offset: fields.required_num("tranStateTableOffset", I64)?,
            commit_log_offset: fields.required_num("commitLogOffset", I64)?,
            msg_id: fields.optional_string("msgId"),
            transaction_id: fields.optional_string("transactionId"),
            offset_msg_id: fields.optional_string("offsetMsgId"),
            bname: fields.optional_string("bname"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, round_trip};

    fn sample() -> CheckTransactionStateRequestHeader {
        CheckTransactionStateRequestHeader {
            topic: Some("RMQ_SYS_TRANS_HALF_TOPIC".into()),
            tran_state_table_offset: 7,
            commit_log_offset: 4096,
            msg_id: Some("U".into()),
            transaction_id: Some("U".into()),
            offset_msg_id: Some("7F00000100002A9F0000000000001000".into()),
            bname: Some("broker-a".into()),
        }
    }

    #[test]
    fn round_trip_full_and_minimal() {
        round_trip(&sample());
        let f = round_trip(&CheckTransactionStateRequestHeader {
            tran_state_table_offset: 1,
            commit_log_offset: 2,
            ..Default::default()
        });
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn rocketmq_rust_broker_check_decodes() {
        // What the rocketmq-rust 1.0.0 broker sends (peer.md section 3.5).
        let f: ExtFields = [
            ("bname", "broker-a"),
            ("commitLogOffset", "1234"),
            ("msgId", "U1"),
            ("transactionId", "U1"),
            ("tranStateTableOffset", "3"),
            ("topic", "RMQ_SYS_TRANS_HALF_TOPIC"),
            ("offsetMsgId", ""),
        ]
        .into_iter()
        .collect();
        let h = CheckTransactionStateRequestHeader::read_from(&f).unwrap();
        assert_eq!(h.offset_msg_id.as_deref(), Some(""));
        assert_eq!((h.tran_state_table_offset, h.commit_log_offset), (3, 1234));
        assert_eq!(h.topic.as_deref(), Some("RMQ_SYS_TRANS_HALF_TOPIC"));
    }

    #[test]
    fn missing_required_fields() {
        assert_missing(&sample(), "tranStateTableOffset");
        assert_missing(&sample(), "commitLogOffset");
    }

    #[test]
    fn invalid_numbers() {
        assert_invalid(&sample(), "tranStateTableOffset", "");
        assert_invalid(&sample(), "commitLogOffset", "0x10");
    }
}
