//! `UnregisterClientRequestHeader`: UNREGISTER_CLIENT (35), sent on shutdown
//! (protocol.md section 9.3). No body.

use super::{CommandHeader, FieldsExt, HeaderError};
use crate::ext::ExtFields;

/// The unregister header.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UnregisterClientRequestHeader {
    /// `clientID` (required): the client id used in heartbeats.
    pub client_id: String,
    /// `producerGroup`: the producer group to unregister.
    pub producer_group: Option<String>,
    /// `consumerGroup`: the consumer group to unregister (`None` for a producer).
    pub consumer_group: Option<String>,
}

impl UnregisterClientRequestHeader {
    /// What a Java producer sends: the client id and its producer group.
    pub fn for_producer(client_id: impl Into<String>, producer_group: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            producer_group: Some(producer_group.into()),
            consumer_group: None,
        }
    }
}

impl CommandHeader for UnregisterClientRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("clientID", self.client_id.as_str());
        out.insert_opt("producerGroup", self.producer_group.as_deref());
        out.insert_opt("consumerGroup", self.consumer_group.as_deref());
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            client_id: fields.required("clientID")?.to_owned(),
            producer_group: fields.optional_string("producerGroup"),
            consumer_group: fields.optional_string("consumerGroup"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_missing, pairs, round_trip};

    #[test]
    fn producer_form() {
        let h = UnregisterClientRequestHeader::for_producer("10.0.0.5@1#2", "PG");
        let f = round_trip(&h);
        assert_eq!(
            pairs(&f),
            vec![
                ("clientID".to_owned(), "10.0.0.5@1#2".to_owned()),
                ("producerGroup".to_owned(), "PG".to_owned()),
            ]
        );
    }

    #[test]
    fn round_trip_all_fields() {
        round_trip(&UnregisterClientRequestHeader {
            client_id: "c".into(),
            producer_group: Some("p".into()),
            consumer_group: Some("g".into()),
        });
        round_trip(&UnregisterClientRequestHeader {
            client_id: "c".into(),
            ..Default::default()
        });
    }

    #[test]
    fn missing_client_id() {
        assert_missing(
            &UnregisterClientRequestHeader::for_producer("c", "p"),
            "clientID",
        );
    }
}
