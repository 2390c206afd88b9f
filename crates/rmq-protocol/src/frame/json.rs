//! The JSON header (serialize type 0), protocol.md section 1.2 and peer.md 3.1.
//!
//! Written like fastjson writes it (keys in alphabetical order, null fields
//! omitted, control characters escaped as `\u0001`), always with every field the
//! strict rocketmq-rust servers require: `code`, `extFields`, `flag`, `language`,
//! `opaque`, `serializeTypeCurrentRPC`, `version`. Read leniently: any key order,
//! missing fields default to zero, unknown fields are ignored, `null`s are
//! accepted, and ext values that are numbers or booleans are kept as text.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::DecodeError;
use crate::code::{LanguageCode, RpcFlags, SerializeType};
use crate::command::RemotingCommand;
use crate::ext::ExtFields;

#[derive(Deserialize)]
struct JsonHeader {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    language: Option<JsonLanguage>,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default, rename = "extFields")]
    ext_fields: Option<JsonExt>,
}

/// `language`, mapped straight to its code (no `String` per frame; serde never borrows
/// into an `Option<Cow<str>>`). Unknown names are `OTHER`, as before.
struct JsonLanguage(LanguageCode);

impl<'de> Deserialize<'de> for JsonLanguage {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(JsonLanguageVisitor)
    }
}

struct JsonLanguageVisitor;

impl Visitor<'_> for JsonLanguageVisitor {
    type Value = JsonLanguage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a language name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonLanguage, E> {
        Ok(JsonLanguage(
            LanguageCode::from_json_name(v).unwrap_or(LanguageCode::OTHER),
        ))
    }
}

/// `extFields`, kept in wire order, `null` values dropped.
struct JsonExt(ExtFields);

impl<'de> Deserialize<'de> for JsonExt {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ExtVisitor)
    }
}

struct ExtVisitor;

impl<'de> Visitor<'de> for ExtVisitor {
    type Value = JsonExt;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonExt, A::Error> {
        // serde_json gives no size hint; a send response has about 6 fields.
        let mut out = ExtFields::with_capacity(map.size_hint().unwrap_or(8).min(32));
        while let Some(ExtKey(key)) = map.next_key()? {
            let ExtValue(value) = map.next_value()?;
            if let Some(v) = value {
                out.insert(key, v);
            }
        }
        Ok(JsonExt(out))
    }
}

/// An ext key: borrowed when it is a well-known key (no allocation per key).
struct ExtKey(std::borrow::Cow<'static, str>);

impl<'de> Deserialize<'de> for ExtKey {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ExtKeyVisitor)
    }
}

struct ExtKeyVisitor;

impl Visitor<'_> for ExtKeyVisitor {
    type Value = ExtKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ExtKey, E> {
        Ok(ExtKey(crate::ext::intern(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<ExtKey, E> {
        Ok(ExtKey(match crate::ext::known_key(&v) {
            Some(k) => std::borrow::Cow::Borrowed(k),
            None => std::borrow::Cow::Owned(v),
        }))
    }
}

/// One ext value: a string, or a scalar kept as its text; `null` is `None`.
struct ExtValue(Option<crate::value::FieldValue>);

impl<'de> Deserialize<'de> for ExtValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExtValueVisitor)
    }
}

struct ExtValueVisitor;

impl Visitor<'_> for ExtValueVisitor {
    type Value = ExtValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ExtValue, E> {
        // short values stay inline: no allocation per field
        Ok(ExtValue(Some(v.into())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<ExtValue, E> {
        Ok(ExtValue(Some(v.into())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExtValue, E> {
        Ok(ExtValue(Some(crate::value::FieldValue::from_i64(v))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExtValue, E> {
        Ok(ExtValue(Some(v.to_string().into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ExtValue, E> {
        Ok(ExtValue(Some(v.to_string().into())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ExtValue, E> {
        Ok(ExtValue(Some(if v { "true" } else { "false" }.into())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<ExtValue, E> {
        Ok(ExtValue(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<ExtValue, E> {
        Ok(ExtValue(None))
    }
}

/// Decodes a JSON header. The body is attached by the caller.
pub(super) fn decode_header(header: &[u8]) -> Result<RemotingCommand, DecodeError> {
    let h: JsonHeader =
        serde_json::from_slice(header).map_err(|e| DecodeError::Json(e.to_string()))?;
    let language = h.language.map_or(LanguageCode::OTHER, |l| l.0);
    Ok(RemotingCommand {
        code: h.code,
        language,
        version: h.version,
        opaque: h.opaque,
        flag: RpcFlags(h.flag),
        remark: h.remark,
        ext_fields: h.ext_fields.map(|e| e.0).unwrap_or_default(),
        body: None,
        serialize_type: SerializeType::JSON,
    })
}

/// Appends the JSON header of `cmd` to `dst`.
pub(super) fn encode_header(cmd: &RemotingCommand, dst: &mut BytesMut) {
    let mut num = itoa_buf();
    dst.put_slice(b"{\"code\":");
    dst.put_slice(fmt_i32(&mut num, cmd.code));
    dst.put_slice(b",\"extFields\":{");
    for (i, (k, v)) in cmd.ext_fields.iter().enumerate() {
        if i > 0 {
            dst.put_u8(b',');
        }
        write_json_str(dst, k);
        dst.put_u8(b':');
        write_json_str(dst, v);
    }
    dst.put_slice(b"},\"flag\":");
    dst.put_slice(fmt_i32(&mut num, cmd.flag.0));
    dst.put_slice(b",\"language\":\"");
    dst.put_slice(cmd.language.json_name().as_bytes());
    dst.put_slice(b"\",\"opaque\":");
    dst.put_slice(fmt_i32(&mut num, cmd.opaque));
    if let Some(remark) = &cmd.remark {
        dst.put_slice(b",\"remark\":");
        write_json_str(dst, remark);
    }
    dst.put_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    dst.put_slice(fmt_i32(&mut num, cmd.version));
    dst.put_u8(b'}');
}

fn itoa_buf() -> [u8; 11] {
    [0u8; 11]
}

/// Formats an i32 in decimal into `buf`, returning the digits.
fn fmt_i32(buf: &mut [u8; 11], v: i32) -> &[u8] {
    let mut n = i64::from(v).unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Writes `s` as a JSON string literal, escaping `"`, `\` and control characters
/// (as `\uXXXX`, like fastjson, except the short forms for \n \r \t \b \f).
fn write_json_str(dst: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    dst.reserve(s.len() + 2);
    dst.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0x00..=0x1f => None,
            _ => continue,
        };
        dst.put_slice(&bytes[start..i]);
        match escape {
            Some(e) => dst.put_slice(e),
            None => dst.put_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
    }
    dst.put_slice(&bytes[start..]);
    dst.put_u8(b'"');
}
