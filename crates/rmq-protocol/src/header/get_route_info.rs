//! `GetRouteInfoRequestHeader`: GET_ROUTEINFO_BY_TOPIC (105) to the name server
//! (protocol.md section 8.1).

use super::{CommandHeader, FieldsExt, HeaderError, bool_str};
use crate::ext::ExtFields;

/// The route query header.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GetRouteInfoRequestHeader {
    /// `topic` (required): the topic whose route is wanted.
    pub topic: String,
    /// `acceptStandardJsonOnly` (4.9.4+): ask for standard JSON (quoted integer keys).
    /// Java sends nothing and relies on its version instead.
    pub accept_standard_json_only: Option<bool>,
}

impl GetRouteInfoRequestHeader {
    /// A query for `topic`, with only `topic` set (what Java sends).
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            accept_standard_json_only: None,
        }
    }
}

impl CommandHeader for GetRouteInfoRequestHeader {
    fn write_to(&self, out: &mut ExtFields) {
        out.insert("topic", self.topic.as_str());
        out.insert_opt(
            "acceptStandardJsonOnly",
            self.accept_standard_json_only.map(bool_str),
        );
    }

    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError> {
        Ok(Self {
            topic: fields.required("topic")?.to_owned(),
            accept_standard_json_only: fields.optional_bool("acceptStandardJsonOnly"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::test_util::{assert_missing, pairs, round_trip};

    #[test]
    fn new_sets_only_topic() {
        let h = GetRouteInfoRequestHeader::new("TeZ_Test_Lng");
        let f = round_trip(&h);
        assert_eq!(
            pairs(&f),
            vec![("topic".to_owned(), "TeZ_Test_Lng".to_owned())]
        );
    }

    #[test]
    fn round_trip_with_flag() {
        let h = GetRouteInfoRequestHeader {
            accept_standard_json_only: Some(true),
            ..GetRouteInfoRequestHeader::new("T")
        };
        let f = round_trip(&h);
        assert_eq!(f.get("acceptStandardJsonOnly"), Some("true"));
        let h = GetRouteInfoRequestHeader {
            accept_standard_json_only: Some(false),
            ..h
        };
        round_trip(&h);
    }

    #[test]
    fn missing_topic() {
        assert_missing(&GetRouteInfoRequestHeader::new("T"), "topic");
    }
}
