//! HEART_BEAT (34): an empty header and a JSON body, [`HeartbeatData`]
//! (protocol.md section 9.1).
//!
//! The body's keys follow Java's names and fastjson's alphabetical order:
//! `clientID`, `consumerDataSet`, `heartbeatFingerprint`, `producerDataSet`,
//! `withoutSub`. A producer lists its groups in `producerDataSet`; the broker uses
//! them to route CHECK_TRANSACTION_STATE, and the client id to route replies.

use serde::{Deserialize, Serialize};

use super::{CommandHeader, HeaderError};
use crate::ext::ExtFields;

/// The (empty) HEART_BEAT request header. It writes no fields and reads any map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HeartbeatRequestHeader;

impl CommandHeader for HeartbeatRequestHeader {
    fn write_to(&self, _out: &mut ExtFields) {}

    fn read_from(_fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self)
    }
}

/// One producer group registered by a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ProducerData {
    /// `groupName`: the producer group.
    #[serde(rename = "groupName")]
    pub group_name: String,
}

impl ProducerData {
    /// Producer data for `group_name`.
    pub fn new(group_name: impl Into<String>) -> Self {
        Self {
            group_name: group_name.into(),
        }
    }
}

/// The HEART_BEAT body.
///
/// Fields are declared in fastjson's (alphabetical) key order so that the encoded
/// JSON matches a Java client's byte for byte. Missing keys decode to their defaults
/// (4.9.x clients send only `clientID`, `producerDataSet` and `consumerDataSet`);
/// unknown keys are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatData {
    /// `clientID`: the client id (`ip@instance…`, protocol.md section 9.2).
    #[serde(rename = "clientID", alias = "clientId", default)]
    pub client_id: String,
    /// `consumerDataSet`: consumer registrations, kept as raw JSON (a producer sends none).
    #[serde(default)]
    pub consumer_data_set: Vec<serde_json::Value>,
    /// `heartbeatFingerprint` (5.x, a Java `int`): `0` selects the classic heartbeat path.
    #[serde(default)]
    pub heartbeat_fingerprint: i32,
    /// `producerDataSet`: the producer groups of this client.
    #[serde(default)]
    pub producer_data_set: Vec<ProducerData>,
    /// `withoutSub` (5.x): whether subscriptions were left out (V2 heartbeat only).
    #[serde(default)]
    pub without_sub: bool,
}

/// A HEART_BEAT body that is not valid `HeartbeatData` JSON.
#[derive(Debug, thiserror::Error)]
#[error("invalid heartbeat body: {0}")]
pub struct HeartbeatBodyError(#[from] serde_json::Error);

impl HeartbeatData {
    /// A classic heartbeat for a producer-only client: `client_id` and one
    /// [`ProducerData`] per group, no consumers, fingerprint 0.
    pub fn for_producers<I, G>(client_id: impl Into<String>, groups: I) -> Self
    where
        I: IntoIterator<Item = G>,
        G: Into<String>,
    {
        Self {
            client_id: client_id.into(),
            producer_data_set: groups.into_iter().map(ProducerData::new).collect(),
            ..Self::default()
        }
    }

    /// The body as compact JSON.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing strings, numbers, booleans and `serde_json::Value`s cannot fail
        // (no maps with non-string keys), so the fallback is unreachable in practice.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, HeartbeatBodyError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAVA_BODY: &str = concat!(
        r#"{"clientID":"10.0.0.5@12345#86423167854321","consumerDataSet":[],"heartbeatFingerprint":0,"#,
        r#""producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"},{"groupName":"my_producer_group"}],"#,
        r#""withoutSub":false}"#
    );

    #[test]
    fn encodes_like_java() {
        let h = HeartbeatData::for_producers(
            "10.0.0.5@12345#86423167854321",
            ["CLIENT_INNER_PRODUCER", "my_producer_group"],
        );
        assert_eq!(String::from_utf8(h.to_json_bytes()).unwrap(), JAVA_BODY);
        assert_eq!(HeartbeatData::from_json(JAVA_BODY.as_bytes()).unwrap(), h);
    }

    #[test]
    fn decodes_4_9_body_and_consumers() {
        let body = br#"{"clientID":"c","producerDataSet":[{"groupName":"g"}],
            "consumerDataSet":[{"groupName":"cg","consumeType":"CONSUME_PASSIVELY","subscriptionDataSet":[]}],
            "unknown":1}"#;
        let h = HeartbeatData::from_json(body).unwrap();
        assert_eq!(h.client_id, "c");
        assert_eq!(h.producer_data_set, vec![ProducerData::new("g")]);
        assert_eq!(h.consumer_data_set.len(), 1);
        assert_eq!(h.consumer_data_set[0]["groupName"], "cg");
        assert_eq!((h.heartbeat_fingerprint, h.without_sub), (0, false));
        // Round trip keeps the consumer data.
        assert_eq!(HeartbeatData::from_json(&h.to_json_bytes()).unwrap(), h);
    }

    #[test]
    fn rejects_bad_json() {
        let err = HeartbeatData::from_json(b"{\"clientID\":").unwrap_err();
        assert!(err.to_string().starts_with("invalid heartbeat body"));
        assert!(HeartbeatData::from_json(br#"{"heartbeatFingerprint":"x"}"#).is_err());
    }

    #[test]
    fn header_is_empty() {
        let mut f = ExtFields::new();
        HeartbeatRequestHeader.write_to(&mut f);
        assert!(f.is_empty());
        assert_eq!(
            HeartbeatRequestHeader::read_from(&f),
            Ok(HeartbeatRequestHeader)
        );
    }
}
