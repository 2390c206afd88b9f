//! `GetMaxOffsetRequestHeader`: GET_MAX_OFFSET (30). The 5.x latency detector uses
//! it as its reachability probe (protocol.md section 11.3); GET_MIN_OFFSET (31)
//! takes the same fields.

use super::{CommandHeader, FieldsExt, HeaderError, I32, bool_str};
use crate::ext::ExtFields;

/// The max-offset query header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetMaxOffsetRequestHeader {
    /// `topic` (required): the topic.
    pub topic: String,
    /// `queueId` (required): the queue.
    pub queue_id: i32,
    /// `committed`: always written (a Java primitive, default `true`): ask for the
    /// committed rather than the in-flight max offset. Absent decodes as `true`.
    pub committed: bool,
    /// `bname` (inherited): the broker name; the detector leaves it unset.
    pub bname: Option<String>,
}

impl GetMaxOffsetRequestHeader {
    /// A query for `(topic, queue_id)` with `committed = true` and no broker name,
    /// i.e. the detector probe's header.
    pub fn new(topic: impl Into<String>, queue_id: i32) -> Self {
        Self {
            topic: topic.into(),
            queue_id,
            committed: true,
            bname: None,
        }
    }
}

impl Default for GetMaxOffsetRequestHeader {
    /// An empty topic, queue 0, `committed = true`.
    fn default() -> Self {
        Self::new(String::new(), 0)
    }
}

impl CommandHeader for GetMaxOffsetRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("topic", self.topic.as_str());
        out.insert("queueId", self.queue_id.to_string());
        out.insert("committed", bool_str(self.committed));
        out.insert_opt("bname", self.bname.as_deref());
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: fields.required("topic")?.to_owned(),
            queue_id: fields.required_num("queueId", I32)?,
            committed: fields.bool_or("committed", true),
            bname: fields.optional_string("bname"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_invalid, assert_missing, pairs, round_trip};

    #[test]
    fn probe_header_keys() {
        let f = round_trip(&GetMaxOffsetRequestHeader::new("T", 0));
        let expected: Vec<(String, String)> =
            [("topic", "T"), ("queueId", "0"), ("committed", "true")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(pairs(&f), expected);
    }

    #[test]
    fn round_trip_and_defaults() {
        round_trip(&GetMaxOffsetRequestHeader {
            committed: false,
            bname: Some("broker-a".into()),
            ..GetMaxOffsetRequestHeader::new("T", 3)
        });
        assert!(GetMaxOffsetRequestHeader::default().committed);
        let f: ExtFields = [("topic", "T"), ("queueId", "1")].into_iter().collect();
        assert!(GetMaxOffsetRequestHeader::read_from(&f).unwrap().committed);
    }

    #[test]
    fn missing_and_invalid() {
        let h = GetMaxOffsetRequestHeader::new("T", 0);
        assert_missing(&h, "topic");
        assert_missing(&h, "queueId");
        assert_invalid(&h, "queueId", "q");
    }
}
