//! The JSON header (serialize type 0), protocol.md section 1.2 and peer.md 3.1.
//!
//! Written like fastjson writes it (keys in alphabetical order, null fields
//! omitted, control characters escaped as `\u0001`), always with every field the
//! strict rocketmq-rust servers require: `code`, `extFields`, `flag`, `language`,
//! `opaque`, `serializeTypeCurrentRPC`, `version`. Read leniently: any key order,
//! missing fields default to zero, unknown fields are ignored, `null`s are
//! accepted, and ext values that are numbers or booleans are kept as text.

use std::fmt;

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use super::DecodeError;
use crate::code::{LanguageCode, RpcFlags, SerializeType};
use crate::command::RemotingCommand;
use crate::ext::{ExtFields, WireWriter};
use crate::value::FieldValue;

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

/// Decodes a JSON header. The body is attached by the caller.
pub(super) fn decode_header(header: &[u8]) -> Result<RemotingCommand, DecodeError> {
    decode_header_in(header, None)
}

/// Decodes a JSON header; with an `arena`, the ext fields are written there in wire
/// form (see [`WireWriter`]) instead of into a vector of their own.
pub(super) fn decode_header_in(
    header: &[u8],
    arena: Option<&mut BytesMut>,
) -> Result<RemotingCommand, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(header);
    let cmd = HeaderSeed { arena }
        .deserialize(&mut de)
        .and_then(|cmd| de.end().map(|()| cmd))
        .map_err(|e| DecodeError::Json(e.to_string()))?;
    Ok(cmd)
}

/// Reads a JSON header object leniently: any key order, missing fields zero,
/// unknown fields ignored, a field given twice is an error.
struct HeaderSeed<'a> {
    arena: Option<&'a mut BytesMut>,
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = RemotingCommand;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RemotingCommand, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_> {
    type Value = RemotingCommand;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a remoting command header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RemotingCommand, A::Error> {
        let mut arena = self.arena;
        let mut cmd = RemotingCommand {
            code: 0,
            language: LanguageCode::OTHER,
            version: 0,
            opaque: 0,
            flag: RpcFlags(0),
            remark: None,
            ext_fields: ExtFields::new(),
            body: None,
            serialize_type: SerializeType::JSON,
        };
        let mut seen = 0u8;
        while let Some(key) = map.next_key::<HeaderKey>()? {
            let bit = 1u8 << (key as u8);
            if key != HeaderKey::Other {
                if seen & bit != 0 {
                    return Err(de::Error::duplicate_field(key.name()));
                }
                seen |= bit;
            }
            match key {
                HeaderKey::Code => cmd.code = map.next_value()?,
                HeaderKey::Language => {
                    let language: Option<JsonLanguage> = map.next_value()?;
                    cmd.language = language.map_or(LanguageCode::OTHER, |l| l.0);
                }
                HeaderKey::Version => cmd.version = map.next_value()?,
                HeaderKey::Opaque => cmd.opaque = map.next_value()?,
                HeaderKey::Flag => cmd.flag = RpcFlags(map.next_value()?),
                HeaderKey::Remark => cmd.remark = map.next_value()?,
                HeaderKey::ExtFields => {
                    if let Some(ext) = map.next_value_seed(ExtSeed {
                        arena: arena.as_deref_mut(),
                    })? {
                        cmd.ext_fields = ext;
                    }
                }
                HeaderKey::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(cmd)
    }
}

/// The header keys read; everything else is skipped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HeaderKey {
    Code,
    Language,
    Version,
    Opaque,
    Flag,
    Remark,
    ExtFields,
    Other,
}

/// The header keys read, by name (both directions use this one table).
const HEADER_KEYS: [(&str, HeaderKey); 7] = [
    ("code", HeaderKey::Code),
    ("language", HeaderKey::Language),
    ("version", HeaderKey::Version),
    ("opaque", HeaderKey::Opaque),
    ("flag", HeaderKey::Flag),
    ("remark", HeaderKey::Remark),
    ("extFields", HeaderKey::ExtFields),
];

impl HeaderKey {
    fn name(self) -> &'static str {
        HEADER_KEYS
            .iter()
            .find(|(_, key)| *key == self)
            .map_or("", |(name, _)| name)
    }
}

impl<'de> Deserialize<'de> for HeaderKey {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(HeaderKeyVisitor)
    }
}

struct HeaderKeyVisitor;

impl Visitor<'_> for HeaderKeyVisitor {
    type Value = HeaderKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<HeaderKey, E> {
        Ok(HEADER_KEYS
            .iter()
            .find(|(name, _)| *name == v)
            .map_or(HeaderKey::Other, |(_, key)| *key))
    }
}

/// `extFields` (or `null`): into a vector, or in wire form into the arena.
struct ExtSeed<'a> {
    arena: Option<&'a mut BytesMut>,
}

impl<'de> DeserializeSeed<'de> for ExtSeed<'_> {
    type Value = Option<ExtFields>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<ExtFields>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ExtSeed<'_> {
    type Value = Option<ExtFields>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<ExtFields>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<ExtFields>, E> {
        Ok(None)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<ExtFields>, D::Error> {
        match self.arena {
            Some(arena) => d.deserialize_map(WireExtVisitor { arena }).map(Some),
            None => d.deserialize_map(VecExtVisitor).map(Some),
        }
    }
}

/// `extFields` into a vector, kept in wire order, `null` values dropped; well-known
/// keys borrowed, short values inline.
struct VecExtVisitor;

impl<'de> Visitor<'de> for VecExtVisitor {
    type Value = ExtFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtFields, A::Error> {
        // serde_json gives no size hint; a send response has about 6 fields.
        let mut out = ExtFields::with_capacity(map.size_hint().unwrap_or(8).min(32));
        while let Some(Text(key)) = map.next_key()? {
            if let Some(value) = map.next_value::<Option<ScalarText<'de>>>()? {
                let key = match crate::ext::known_key(&key) {
                    Some(known) => Cow::Borrowed(known),
                    None => Cow::Owned(key.into_owned()),
                };
                out.insert(key, value.into_value());
            }
        }
        Ok(out)
    }
}

/// `extFields` written in wire form into an arena (no vector, no `String` per
/// field for text without escapes), `null` values dropped.
struct WireExtVisitor<'a> {
    arena: &'a mut BytesMut,
}

impl<'de> Visitor<'de> for WireExtVisitor<'_> {
    type Value = ExtFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtFields, A::Error> {
        let mut out = WireWriter::new(self.arena);
        while let Some(Text(key)) = map.next_key()? {
            if let Some(value) = map.next_value::<Option<ScalarText<'de>>>()? {
                out.put(&key, value.as_str());
            }
        }
        Ok(out.finish())
    }
}

/// A string, borrowed from the header when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// An ext value as text: a string (borrowed when it has no escapes), or a number
/// or boolean written as Java would print it.
enum ScalarText<'de> {
    Text(Cow<'de, str>),
    Number(FieldValue),
}

impl ScalarText<'_> {
    fn as_str(&self) -> &str {
        match self {
            Self::Text(t) => t,
            Self::Number(n) => n,
        }
    }

    /// The value to keep (an owned `String` is moved, not copied).
    fn into_value(self) -> FieldValue {
        match self {
            Self::Text(t) => t.into(),
            Self::Number(n) => n,
        }
    }
}

impl<'de> Deserialize<'de> for ScalarText<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarTextVisitor)
    }
}

struct ScalarTextVisitor;

impl<'de> Visitor<'de> for ScalarTextVisitor {
    type Value = ScalarText<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As the vector decoder says it (an ext value may also be null there).
        f.write_str("a string, number, boolean or null")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<ScalarText<'de>, E> {
        Ok(ScalarText::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText<'de>, E> {
        Ok(ScalarText::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<ScalarText<'de>, E> {
        Ok(ScalarText::Text(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText<'de>, E> {
        Ok(ScalarText::Number(FieldValue::from_i64(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText<'de>, E> {
        Ok(ScalarText::Number(v.to_string().into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText<'de>, E> {
        Ok(ScalarText::Number(v.to_string().into()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText<'de>, E> {
        Ok(ScalarText::Number(if v { "true" } else { "false" }.into()))
    }
}

/// Appends the JSON header of `cmd` to `dst`.
pub(super) fn encode_header(
    cmd: &RemotingCommand,
    opaque: i32,
    flag: RpcFlags,
    dst: &mut BytesMut,
) {
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
    dst.put_slice(fmt_i32(&mut num, flag.0));
    dst.put_slice(b",\"language\":\"");
    dst.put_slice(cmd.language.json_name().as_bytes());
    dst.put_slice(b"\",\"opaque\":");
    dst.put_slice(fmt_i32(&mut num, opaque));
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
