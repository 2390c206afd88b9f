//! Typed headers, one module each, converted to and from [`ExtFields`] by hand.
//!
//! Each header is a plain struct implementing [`CommandHeader`]. `write_to` emits
//! the fields Java emits (null fields omitted, booleans as `"true"`/`"false"`,
//! numbers in decimal); `read_from` accepts what Java and the rocketmq-rust servers
//! send and fails with a [`HeaderError`] naming the field that is missing or
//! malformed. Booleans are parsed like Java's `Boolean.parseBoolean` (case-insensitive
//! `"true"`, anything else false).

use std::str::FromStr;

use crate::ext::ExtFields;

/// A typed header that lives in a command's `extFields`.
pub trait CommandHeader: Sized {
    /// Writes the header's fields into `out`.
    fn write_to(&self, out: &mut ExtFields);
    /// Reads the header from `fields`.
    fn read_from(fields: &ExtFields) -> Result<Self, HeaderError>;
}

/// A header field is missing or cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required field is absent.
    #[error("header field `{field}` is missing")]
    Missing {
        /// The wire name of the field.
        field: &'static str,
    },
    /// A field is present but its value is not valid.
    #[error("header field `{field}` has invalid value {value:?}: expected {expected}")]
    Invalid {
        /// The wire name of the field.
        field: &'static str,
        /// The value received (truncated to 64 bytes).
        value: String,
        /// What was expected, e.g. "an i32".
        expected: &'static str,
    },
}

impl HeaderError {
    /// An `Invalid` error, truncating long values so errors stay small.
    pub fn invalid(field: &'static str, value: &str, expected: &'static str) -> Self {
        let mut end = value.len().min(64);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Self::Invalid {
            field,
            value: value[..end].to_owned(),
            expected,
        }
    }
}

/// Field access helpers for header implementations.
pub(crate) trait FieldsExt {
    fn required(&self, field: &'static str) -> Result<&str, HeaderError>;
    fn required_num<T: FromStr>(
        &self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<T, HeaderError>;
    fn optional_num<T: FromStr>(
        &self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, HeaderError>;
    fn optional_string(&self, field: &'static str) -> Option<String>;
    fn bool_or(&self, field: &'static str, default: bool) -> bool;
    fn optional_bool(&self, field: &'static str) -> Option<bool>;
}

impl FieldsExt for ExtFields {
    fn required(&self, field: &'static str) -> Result<&str, HeaderError> {
        self.get(field).ok_or(HeaderError::Missing { field })
    }

    fn required_num<T: FromStr>(
        &self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<T, HeaderError> {
        let v = self.required(field)?;
        v.trim()
            .parse()
            .map_err(|_| HeaderError::invalid(field, v, expected))
    }

    fn optional_num<T: FromStr>(
        &self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, HeaderError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| HeaderError::invalid(field, v, expected)),
        }
    }

    fn optional_string(&self, field: &'static str) -> Option<String> {
        self.get(field).map(str::to_owned)
    }

    fn bool_or(&self, field: &'static str, default: bool) -> bool {
        self.get(field).map_or(default, parse_java_bool)
    }

    fn optional_bool(&self, field: &'static str) -> Option<bool> {
        self.get(field).map(parse_java_bool)
    }
}

/// Java's `Boolean.parseBoolean`: `"true"` in any case is true, anything else false.
pub fn parse_java_bool(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// The wire spelling of a boolean.
pub(crate) fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Expected-type texts used in [`HeaderError::Invalid`].
pub(crate) const I32: &str = "an i32";
/// See [`I32`].
pub(crate) const I64: &str = "an i64";

#[cfg(test)]
pub(crate) mod test_util {
    //! Shared assertions for the header modules' unit tests.

    use std::fmt::Debug;

    use super::{CommandHeader, HeaderError};
    use crate::ext::ExtFields;

    /// Writes `h`, reads it back, asserts equality and returns the written fields.
    pub(crate) fn round_trip<H: CommandHeader + Debug + PartialEq>(h: &H) -> ExtFields {
        let mut f = ExtFields::new();
        h.write_to(&mut f);
        let back = H::read_from(&f).expect("round trip decodes");
        assert_eq!(&back, h);
        f
    }

    /// Writes `h`, removes `key`, and asserts that reading fails with `Missing { field: key }`.
    pub(crate) fn assert_missing<H: CommandHeader + Debug>(h: &H, key: &'static str) {
        let mut f = ExtFields::new();
        h.write_to(&mut f);
        assert!(f.remove(key).is_some(), "{key} was not written");
        let err = H::read_from(&f).expect_err("decoding must fail");
        assert_eq!(err, HeaderError::Missing { field: key });
    }

    /// Writes `h`, sets `key` to `value`, and asserts that reading fails with
    /// `Invalid` naming `key`.
    pub(crate) fn assert_invalid<H: CommandHeader + Debug>(h: &H, key: &'static str, value: &str) {
        let mut f = ExtFields::new();
        h.write_to(&mut f);
        f.insert(key, value);
        match H::read_from(&f) {
            Err(HeaderError::Invalid {
                field, value: v, ..
            }) => {
                assert_eq!(field, key);
                assert_eq!(v, value);
            }
            other => panic!("expected Invalid for {key}, got {other:?}"),
        }
    }

    /// The `(key, value)` pairs of `f`, in order, as owned strings.
    pub(crate) fn pairs(f: &ExtFields) -> Vec<(String, String)> {
        f.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

pub mod check_transaction_state;
pub mod create_topic;
pub mod end_transaction;
pub mod get_max_offset;
pub mod get_route_info;
pub mod heartbeat;
pub mod pull_message;
pub mod push_reply_message;
pub mod send_message;
pub mod send_message_v2;
pub mod send_response;
pub mod unregister_client;
