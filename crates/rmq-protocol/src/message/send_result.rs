//! The outcome of a stored send: [`SendStatus`] and [`SendResult`] (protocol.md
//! sections 2.3 and 3.4).
//!
//! Codes 10, 11 and 12 mean the message **was stored**; they are statuses, not errors
//! (protocol.md section 15, pitfall 9).

use std::fmt;

use crate::code::ResponseCode;
use crate::value::FieldValue;

use super::MessageQueue;
use crate::header::send_response::SendMessageResponseHeader;

/// The region id used when the broker sends none (or an empty one).
pub use crate::header::send_response::DEFAULT_REGION;

/// How a stored message was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Stored (SUCCESS, 0).
    SendOk,
    /// Stored, but the disk flush timed out (FLUSH_DISK_TIMEOUT, 10).
    FlushDiskTimeout,
    /// Stored on the master, but the slave sync timed out (FLUSH_SLAVE_TIMEOUT, 12).
    FlushSlaveTimeout,
    /// Stored on the master, no slave available (SLAVE_NOT_AVAILABLE, 11).
    SlaveNotAvailable,
}

impl SendStatus {
    /// The status for a send response code: 0, 10, 12 and 11; `None` for any other
    /// code (those are errors).
    pub fn from_response_code(code: ResponseCode) -> Option<Self> {
        match code {
            ResponseCode::SUCCESS => Some(Self::SendOk),
            ResponseCode::FLUSH_DISK_TIMEOUT => Some(Self::FlushDiskTimeout),
            ResponseCode::FLUSH_SLAVE_TIMEOUT => Some(Self::FlushSlaveTimeout),
            ResponseCode::SLAVE_NOT_AVAILABLE => Some(Self::SlaveNotAvailable),
            _ => None,
        }
    }

    /// The response code this status comes from.
    pub fn response_code(self) -> ResponseCode {
        match self {
            Self::SendOk => ResponseCode::SUCCESS,
            Self::FlushDiskTimeout => ResponseCode::FLUSH_DISK_TIMEOUT,
            Self::FlushSlaveTimeout => ResponseCode::FLUSH_SLAVE_TIMEOUT,
            Self::SlaveNotAvailable => ResponseCode::SLAVE_NOT_AVAILABLE,
        }
    }

    /// Java's enum name, e.g. `"SEND_OK"`.
    pub const fn java_name(self) -> &'static str {
        match self {
            Self::SendOk => "SEND_OK",
            Self::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
            Self::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
            Self::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
        }
    }

    /// Whether this is [`SendOk`](Self::SendOk).
    pub const fn is_ok(self) -> bool {
        matches!(self, Self::SendOk)
    }
}

impl fmt::Display for SendStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.java_name())
    }
}

/// The result of a send the broker stored (Java `SendResult`).
///
/// The text fields are [`FieldValue`]s (they deref to `str`): ids, names and the region
/// fit inline, so a result costs no heap allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendResult {
    /// How the message was stored.
    pub status: SendStatus,
    /// The message id users know: the message's `UNIQ_KEY`; for a batch the inner
    /// `UNIQ_KEY`s joined by `,`.
    pub msg_id: FieldValue,
    /// The broker's offset message id (response header `msgId`); comma-joined for a batch.
    pub offset_msg_id: FieldValue,
    /// The queue the message went to (topic without namespace).
    pub message_queue: MessageQueue,
    /// The queue offset (for a batch: the first message's).
    pub queue_offset: i64,
    /// The transaction id (5.x brokers only).
    pub transaction_id: Option<FieldValue>,
    /// The region id; [`DEFAULT_REGION`] when the broker sends none.
    pub region_id: FieldValue,
    /// The trace switch: true unless the broker sent exactly `"false"`.
    pub trace_on: bool,
    /// The recall handle of a delay message (5.3.2+).
    pub recall_handle: Option<FieldValue>,
}

impl SendResult {
    /// Builds the result of a single send (protocol.md section 3.4) from the decoded
    /// response header: `msg_id` is the message's UNIQ_KEY, `topic` the topic as the
    /// user named it (without namespace), `broker_name` the broker the client chose.
    pub fn from_response(
        status: SendStatus,
        msg_id: impl Into<FieldValue>,
        topic: impl Into<FieldValue>,
        broker_name: impl Into<FieldValue>,
        header: SendMessageResponseHeader,
    ) -> Self {
        let trace_on = header.is_trace_on();
        let region_id = match header.region_id {
            Some(r) if !r.is_empty() => r,
            _ => FieldValue::from(DEFAULT_REGION),
        };
        Self {
            status,
            msg_id: msg_id.into(),
            offset_msg_id: header.msg_id,
            message_queue: MessageQueue {
                topic: topic.into(),
                broker_name: broker_name.into(),
                queue_id: header.queue_id,
            },
            queue_offset: header.queue_offset,
            transaction_id: header.transaction_id,
            region_id,
            trace_on,
            recall_handle: header.recall_handle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_code() {
        let cases = [
            (0, Some(SendStatus::SendOk), "SEND_OK"),
            (10, Some(SendStatus::FlushDiskTimeout), "FLUSH_DISK_TIMEOUT"),
            (
                12,
                Some(SendStatus::FlushSlaveTimeout),
                "FLUSH_SLAVE_TIMEOUT",
            ),
            (
                11,
                Some(SendStatus::SlaveNotAvailable),
                "SLAVE_NOT_AVAILABLE",
            ),
        ];
        for (code, status, name) in cases {
            let s = SendStatus::from_response_code(ResponseCode(code));
            assert_eq!(s, status);
            let s = s.unwrap();
            assert_eq!(s.java_name(), name);
            assert_eq!(s.to_string(), name);
            assert_eq!(s.response_code(), ResponseCode(code));
        }
        for code in [1, 2, 13, 14, 17, 1500, -1] {
            assert_eq!(SendStatus::from_response_code(ResponseCode(code)), None);
        }
        assert!(SendStatus::SendOk.is_ok() && !SendStatus::FlushDiskTimeout.is_ok());
    }

    #[test]
    fn region_and_trace() {
        let header = |region: Option<&str>, trace: Option<&str>| SendMessageResponseHeader {
            msg_id: "0A02037500002A9F0000000001EC18FC".into(),
            queue_id: 3,
            queue_offset: 9,
            region_id: region.map(FieldValue::from),
            trace_on: trace.map(FieldValue::from),
            ..Default::default()
        };
        let build = |h| SendResult::from_response(SendStatus::SendOk, "UNIQ", "T", "broker-a", h);
        let r = build(header(None, None));
        assert_eq!(r.region_id, "DefaultRegion");
        assert!(r.trace_on);
        assert_eq!(r.offset_msg_id, "0A02037500002A9F0000000001EC18FC");
        assert_eq!(r.message_queue, MessageQueue::new("T", "broker-a", 3));
        assert_eq!(r.queue_offset, 9);
        assert_eq!(build(header(Some(""), Some(""))).region_id, "DefaultRegion");
        assert_eq!(
            build(header(Some("cn-hz"), Some("False"))).region_id,
            "cn-hz"
        );
        assert!(build(header(None, Some("False"))).trace_on);
        assert!(!build(header(None, Some("false"))).trace_on);
    }
}
