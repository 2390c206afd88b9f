//! `SendMessageResponseHeader`: the fields of a send response (protocol.md section 3.3).
//!
//! Besides the typed Java fields, brokers add two loose keys to the same map:
//! `MSG_REGION` (the broker's region id) and `TRACE_ON`. They are kept here as raw
//! strings; [`SendMessageResponseHeader::region_id_or_default`] and
//! [`SendMessageResponseHeader::is_trace_on`] apply Java's client-side rules
//! (protocol.md section 3.4).
//!
//! Decoding a response that lacks `msgId`, `queueId` or `queueOffset` fails with
//! [`HeaderError::Missing`] naming the field; callers treat a SUCCESS response like
//! that as malformed (reliability matrix row A12).

use super::{CommandHeader, FieldsExt, HeaderError, I32, I64};
use crate::ext::ExtFields;
use crate::value::FieldValue;

/// Wire key of the broker's region id, an extra key of send responses.
pub const MSG_REGION: &str = "MSG_REGION";
/// Wire key of the broker's trace switch, an extra key of send responses.
pub const TRACE_ON: &str = "TRACE_ON";
/// The region id Java uses when `MSG_REGION` is missing or empty.
pub const DEFAULT_REGION: &str = "DefaultRegion";

/// The send response header (SUCCESS and the three stored-with-warning codes).
///
/// Values are [`FieldValue`]s: the ids and the region fit inline, so decoding a
/// response with [`take_from`](Self::take_from) allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SendMessageResponseHeader {
    /// `msgId` (required): the offset message id; for a batch, all ids comma-separated.
    pub msg_id: FieldValue,
    /// `queueId` (required): the queue the message was stored in.
    pub queue_id: i32,
    /// `queueOffset` (required): consume-queue offset (of the first message of a batch).
    pub queue_offset: i64,
    /// `transactionId`: the stored message's UNIQ_KEY (5.x brokers).
    pub transaction_id: Option<FieldValue>,
    /// `batchUniqId`: set when a batch was stored as one entry (5.x).
    pub batch_uniq_id: Option<FieldValue>,
    /// `recallHandle`: handle for RECALL_MESSAGE (5.3.2+, timer/delay messages).
    pub recall_handle: Option<FieldValue>,
    /// `delayTime`: delivery delay of a timer message, when the broker reports it.
    pub delay_time: Option<i64>,
    /// `MSG_REGION` (extra key): the broker's region id, raw.
    pub region_id: Option<FieldValue>,
    /// `TRACE_ON` (extra key): the broker's trace switch, raw.
    pub trace_on: Option<FieldValue>,
}

impl SendMessageResponseHeader {
    /// The region id as Java's client sees it: `MSG_REGION`, or `"DefaultRegion"` when
    /// it is missing or empty.
    pub fn region_id_or_default(&self) -> &str {
        match self.region_id.as_deref() {
            Some(r) if !r.is_empty() => r,
            _ => DEFAULT_REGION,
        }
    }

    /// Whether tracing is on: anything other than the exact string `"false"` is true.
    pub fn is_trace_on(&self) -> bool {
        self.trace_on.as_deref() != Some("false")
    }
}

impl SendMessageResponseHeader {
    /// Like [`CommandHeader::read_from`], but moves the string values out of
    /// `fields` instead of copying them (the send path's response is consumed).
    /// On an error `fields` may have lost some of its entries.
    pub fn take_from(fields: &mut ExtFields) -> Result<Self, HeaderError> {
        fields.required("msgId")?; // the same error order as `read_from`
        let queue_id = fields.required_num("queueId", I32)?;
        let queue_offset = fields.required_num("queueOffset", I64)?;
        let delay_time = fields.optional_num("delayTime", I64)?;
        let msg_id = fields
            .take("msgId")
            .ok_or(HeaderError::Missing { field: "msgId" })?;
        Ok(Self {
            msg_id,
            queue_id,
            queue_offset,
            transaction_id: fields.take("transactionId"),
            batch_uniq_id: fields.take("batchUniqId"),
            recall_handle: fields.take("recallHandle"),
            delay_time,
            region_id: fields.take(MSG_REGION),
            trace_on: fields.take(TRACE_ON),
        })
    }
}

impl CommandHeader for SendMessageResponseHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("msgId", self.msg_id.clone());
        out.insert(
            "queueId",
            crate::value::FieldValue::from_i64(self.queue_id.into()),
        );
        out.insert(
            "queueOffset",
            crate::value::FieldValue::from_i64(self.queue_offset),
        );
        out.insert_opt("transactionId", self.transaction_id.clone());
        out.insert_opt("batchUniqId", self.batch_uniq_id.clone());
        out.insert_opt("recallHandle", self.recall_handle.clone());
        out.insert_opt(
            "delayTime",
            self.delay_time.map(crate::value::FieldValue::from_i64),
        );
        out.insert_opt(MSG_REGION, self.region_id.clone());
        out.insert_opt(TRACE_ON, self.trace_on.clone());
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            msg_id: fields.required("msgId")?.into(),
            queue_id: fields.required_num("queueId", I32)?,
            queue_offset: fields.required_num("queueOffset", I64)?,
            transaction_id: fields.get("transactionId").map(FieldValue::from),
            batch_uniq_id: fields.get("batchUniqId").map(FieldValue::from),
            recall_handle: fields.get("recallHandle").map(FieldValue::from),
            delay_time: fields.optional_num("delayTime", I64)?,
            region_id: fields.get(MSG_REGION).map(FieldValue::from),
            trace_on: fields.get(TRACE_ON).map(FieldValue::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, round_trip};

    fn sample() -> SendMessageResponseHeader {
        SendMessageResponseHeader {
            msg_id: "0A02037500002A9F0000000001EC18FC".into(),
            queue_id: 2,
            queue_offset: 41,
            transaction_id: Some("2400DD02100800152B2B7D0419D6DD5E9EFC18B4AAC246212A7D0000".into()),
            batch_uniq_id: Some("B".into()),
            recall_handle: Some("R".into()),
            delay_time: Some(5000),
            region_id: Some("DefaultRegion".into()),
            trace_on: Some("true".into()),
        }
    }

    #[test]
    fn take_from_matches_read_from() {
        let mut f = ExtFields::new();
        sample().write_to(&mut f);
        let read = SendMessageResponseHeader::read_from(&f).unwrap();
        assert_eq!(SendMessageResponseHeader::take_from(&mut f).unwrap(), read);
        let mut missing = ExtFields::new();
        missing.insert("queueId", "1");
        missing.insert("queueOffset", "2");
        assert_eq!(
            SendMessageResponseHeader::take_from(&mut missing),
            Err(HeaderError::Missing { field: "msgId" })
        );
    }

    #[test]
    fn round_trip_full_and_minimal() {
        round_trip(&sample());
        let minimal = SendMessageResponseHeader {
            msg_id: "X".into(),
            queue_id: 0,
            queue_offset: 0,
            ..Default::default()
        };
        let f = round_trip(&minimal);
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn java_capture_decodes() {
        // Real 5.2.0 capture, protocol.md section 3.3 (key order as captured).
        let f: ExtFields = [
            ("queueId", "0"),
            (
                "transactionId",
                "2400DD02100800152B2B7D0419D6DD5E9EFC18B4AAC246212A7D0000",
            ),
            ("msgId", "0A02037500002A9F0000000001EC18FC"),
            ("TRACE_ON", "true"),
            ("MSG_REGION", "DefaultRegion"),
            ("queueOffset", "0"),
        ]
        .into_iter()
        .collect();
        let h = SendMessageResponseHeader::read_from(&f).unwrap();
        assert_eq!(h.msg_id, "0A02037500002A9F0000000001EC18FC");
        assert_eq!((h.queue_id, h.queue_offset), (0, 0));
        assert_eq!(h.region_id_or_default(), "DefaultRegion");
        assert!(h.is_trace_on());
        assert_eq!(h.batch_uniq_id, None);
    }

    #[test]
    fn region_and_trace_rules() {
        let mut h = sample();
        h.region_id = None;
        assert_eq!(h.region_id_or_default(), DEFAULT_REGION);
        h.region_id = Some(FieldValue::new());
        assert_eq!(h.region_id_or_default(), DEFAULT_REGION);
        h.region_id = Some("eu".into());
        assert_eq!(h.region_id_or_default(), "eu");

        h.trace_on = None;
        assert!(h.is_trace_on());
        h.trace_on = Some("FALSE".into());
        assert!(
            h.is_trace_on(),
            "only the exact string \"false\" disables tracing"
        );
        h.trace_on = Some("false".into());
        assert!(!h.is_trace_on());
    }

    /// Reliability matrix row A12 (decode half): each required field, when absent,
    /// yields `Missing` naming it.
    #[test]
    fn missing_required_fields_a12() {
        assert_missing(&sample(), "msgId");
        assert_missing(&sample(), "queueId");
        assert_missing(&sample(), "queueOffset");
        // An empty map (e.g. a SUCCESS with no extFields) names the first one.
        assert_eq!(
            SendMessageResponseHeader::read_from(&ExtFields::new()),
            Err(HeaderError::Missing { field: "msgId" })
        );
    }

    #[test]
    fn invalid_numbers() {
        assert_invalid(&sample(), "queueId", "zero");
        assert_invalid(&sample(), "queueOffset", "-");
        assert_invalid(&sample(), "delayTime", "soon");
    }
}
