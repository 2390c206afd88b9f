//! `EndTransactionRequestHeader`: END_TRANSACTION (37), one-way, commits or rolls
//! back a half message (protocol.md sections 12.1 and 12.2).

use std::fmt;

use super::{CommandHeader, FieldsExt, HeaderError, I32, I64, bool_str};
use crate::ext::ExtFields;

/// The `commitOrRollback` value. Open: any `i32` is representable, the broker
/// rejects values other than the three constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommitOrRollback(pub i32);

impl CommitOrRollback {
    /// `0` (`TRANSACTION_NOT_TYPE`): state unknown; the broker will check later.
    pub const UNKNOWN: Self = Self(0);
    /// `8` (`TRANSACTION_COMMIT_TYPE`): commit the half message.
    pub const COMMIT: Self = Self(8);
    /// `12` (`TRANSACTION_ROLLBACK_TYPE`): roll the half message back.
    pub const ROLLBACK: Self = Self(12);

    /// Whether this is one of the three values a broker accepts.
    pub const fn is_known(self) -> bool {
        matches!(self.0, 0 | 8 | 12)
    }
}

impl fmt::Debug for CommitOrRollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("UNKNOWN(0)"),
            8 => f.write_str("COMMIT(8)"),
            12 => f.write_str("ROLLBACK(12)"),
            v => write!(f, "CommitOrRollback({v})"),
        }
    }
}

impl From<i32> for CommitOrRollback {
    fn from(v: i32) -> Self {
        Self(v)
    }
}

impl From<CommitOrRollback> for i32 {
    fn from(v: CommitOrRollback) -> i32 {
        v.0
    }
}

/// The end-transaction header.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EndTransactionRequestHeader {
    /// `producerGroup` (required): the producer group (the half message's `PGROUP`).
    pub producer_group: String,
    /// `tranStateTableOffset` (required): the half message's queue offset.
    pub tran_state_table_offset: i64,
    /// `commitLogOffset` (required): the half message's commit-log offset.
    pub commit_log_offset: i64,
    /// `commitOrRollback` (required): 8 commit, 12 rollback, 0 unknown.
    pub commit_or_rollback: CommitOrRollback,
    /// `fromTransactionCheck`: always written; `true` when answering a broker check.
    /// Absent decodes as `false`.
    pub from_transaction_check: bool,
    /// `msgId` (required): the message's UNIQ_KEY.
    pub msg_id: String,
    /// `transactionId`: the transaction id from the send result or the check.
    pub transaction_id: Option<String>,
    /// `topic`: the message topic (or the check's topic).
    pub topic: Option<String>,
    /// `bname` (inherited): the broker name.
    pub bname: Option<String>,
}

impl CommandHeader for EndTransactionRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("producerGroup", self.producer_group.as_str());
        out.insert(
            "tranStateTableOffset",
            self.tran_state_table_offset.to_string(),
        );
        out.insert("commitLogOffset", self.commit_log_offset.to_string());
        out.insert("commitOrRollback", self.commit_or_rollback.0.to_string());
        out.insert(
            "fromTransactionCheck",
            bool_str(self.from_transaction_check),
        );
        out.insert("msgId", self.msg_id.as_str());
        out.insert_opt("transactionId", self.transaction_id.as_deref());
        out.insert_opt("topic", self.topic.as_deref());
        out.insert_opt("bname", self.bname.as_deref());
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            producer_group: fields.required("producerGroup")?.to_owned(),
            tran_state_table_offset: fields.required_num("tranStateTableOffset", I64)?,
            commit_log_offset: fields.required_num("commitLogOffset", I64)?,
            commit_or_rollback: CommitOrRollback(fields.required_num("commitOrRollback", I32)?),
            from_transaction_check: fields.bool_or("fromTransactionCheck", false),
            msg_id: fields.required("msgId")?.to_owned(),
            transaction_id: fields.optional_string("transactionId"),
            topic: fields.optional_string("topic"),
            bname: fields.optional_string("bname"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, round_trip};

    fn sample() -> EndTransactionRequestHeader {
        EndTransactionRequestHeader {
            producer_group: "PG".into(),
            tran_state_table_offset: 12,
            commit_log_offset: 123_456_789_012,
            commit_or_rollback: CommitOrRollback::COMMIT,
            from_transaction_check: true,
            msg_id: "C0A8000130391B6D358605F5E1000001".into(),
            transaction_id: Some("C0A8000130391B6D358605F5E1000001".into()),
            topic: Some("RMQ_SYS_TRANS_HALF_TOPIC".into()),
            bname: Some("broker-a".into()),
        }
    }

    #[test]
    fn round_trip_full_and_minimal() {
        let f = round_trip(&sample());
        assert_eq!(f.get("commitOrRollback"), Some("8"));
        assert_eq!(f.get("fromTransactionCheck"), Some("true"));
        let minimal = EndTransactionRequestHeader {
            commit_or_rollback: CommitOrRollback::ROLLBACK,
            from_transaction_check: false,
            transaction_id: None,
            topic: None,
            bname: None,
            ..sample()
        };
        let f = round_trip(&minimal);
        assert_eq!(f.len(), 6);
        assert_eq!(f.get("commitOrRollback"), Some("12"));
        assert_eq!(f.get("fromTransactionCheck"), Some("false"));
    }

    #[test]
    fn commit_or_rollback_values() {
        assert_eq!(CommitOrRollback::default(), CommitOrRollback::UNKNOWN);
        assert!(CommitOrRollback::UNKNOWN.is_known());
        assert!(!CommitOrRollback(4).is_known());
        assert_eq!(format!("{:?}", CommitOrRollback::ROLLBACK), "ROLLBACK(12)");
        assert_eq!(format!("{:?}", CommitOrRollback(3)), "CommitOrRollback(3)");
        assert_eq!(i32::from(CommitOrRollback::from(8)), 8);
        // An unknown value decodes; judging it is the receiver's business.
        round_trip(&EndTransactionRequestHeader {
            commit_or_rollback: CommitOrRollback(5),
            ..sample()
        });
    }

    #[test]
    fn missing_required_fields() {
        for key in [
            "producerGroup",
            "tranStateTableOffset",
            "commitLogOffset",
            "commitOrRollback",
            "msgId",
        ] {
            assert_missing(&sample(), key);
        }
    }

    #[test]
    fn invalid_numbers() {
        assert_invalid(&sample(), "tranStateTableOffset", "x");
        assert_invalid(&sample(), "commitLogOffset", "18446744073709551616");
        assert_invalid(&sample(), "commitOrRollback", "COMMIT");
    }
}
