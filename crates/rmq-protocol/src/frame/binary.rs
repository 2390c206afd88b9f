//! The ROCKETMQ binary header (serialize type 1), protocol.md section 1.3.
//!
//! ```text
//! code i16 | language u8 | version i16 | opaque i32 | flag i32 |
//! remarkLen i32 | remark | extLen i32 | (keyLen i16, key, valLen i32, val)*
//! ```
//! A zero-length string decodes as null: an empty remark becomes `None` and an
//! entry with an empty key or value is dropped, as in Java.

use std::ops::Range;

use bytes::{BufMut, BytesMut};

use super::{BinaryHeaderError, EncodeError};
use crate::code::{LanguageCode, RpcFlags, SerializeType};
use crate::command::RemotingCommand;
use crate::ext::{ExtFields, WireFields};

/// Size of the fixed part (code .. remarkLen).
const FIXED: usize = 2 + 1 + 2 + 4 + 4 + 4;

/// A bounds-checked big-endian reader over a header slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], BinaryHeaderError> {
        if self.buf.len() < n {
            return Err(BinaryHeaderError::Truncated {
                field,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], BinaryHeaderError> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, BinaryHeaderError> {
        self.array(field).map(i16::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, BinaryHeaderError> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, BinaryHeaderError> {
        self.array::<1>(field).map(|a| a[0])
    }

    /// A length field followed by that many bytes; negative lengths are errors.
    fn bytes_with_len(
        &mut self,
        len: i64,
        field: &'static str,
    ) -> Result<&'a [u8], BinaryHeaderError> {
        if len < 0 {
            return Err(BinaryHeaderError::NegativeLength { field, len });
        }
        let n = usize::try_from(len).map_err(|_| BinaryHeaderError::Truncated {
            field,
            need: usize::MAX,
            have: self.buf.len(),
        })?;
        self.take(n, field)
    }
}

fn utf8<'a>(b: &'a [u8], field: &'static str) -> Result<&'a str, BinaryHeaderError> {
    std::str::from_utf8(b).map_err(|_| BinaryHeaderError::InvalidUtf8 { field })
}

/// Decodes a binary header. The body is attached by the caller.
pub(super) fn decode_header(header: &[u8]) -> Result<RemotingCommand, BinaryHeaderError> {
    let (mut cmd, wire) = decode_header_lazy(header)?;
    if let Some((range, count)) = wire {
        let bytes = bytes::Bytes::copy_from_slice(&header[range]);
        cmd.ext_fields = ExtFields::from_wire(WireFields::from_checked(bytes, count));
    }
    Ok(cmd)
}

/// An ext section left in wire form: its range in the header and its entry count.
pub(super) type WireSection = (Range<usize>, u8);

/// Decodes a binary header, except an ext section that can stay in wire form: then
/// `ext_fields` is left empty and its range in `header` and entry count are
/// returned, for the caller to attach a slice of the frame (no copy).
pub(super) fn decode_header_lazy(
    header: &[u8],
) -> Result<(RemotingCommand, Option<WireSection>), BinaryHeaderError> {
    let mut r = Reader { buf: header };
    if header.len() < FIXED {
        return Err(BinaryHeaderError::Truncated {
            field: "fixed header",
            need: FIXED,
            have: header.len(),
        });
    }
    let code = i32::from(r.i16("code")?);
    let language = LanguageCode(r.u8("language")?);
    let version = i32::from(r.i16("version")?);
    let opaque = r.i32("opaque")?;
    let flag = RpcFlags(r.i32("flag")?);
    let remark_len = r.i32("remark length")?;
    let remark_bytes = r.bytes_with_len(i64::from(remark_len), "remark")?;
    // A broken remark must not hide the response code: decode it lossily.
    let remark =
        (!remark_bytes.is_empty()).then(|| String::from_utf8_lossy(remark_bytes).into_owned());
    let ext_len = r.i32("ext fields length")?;
    let ext_bytes = r.bytes_with_len(i64::from(ext_len), "ext fields")?;
    let ext_start = header.len() - r.buf.len() - ext_bytes.len();
    let (ext_fields, wire) = match crate::ext::check_wire(ext_bytes) {
        Some(count) => (
            ExtFields::new(),
            Some((ext_start..ext_start + ext_bytes.len(), count)),
        ),
        None => (decode_ext(ext_bytes)?, None),
    };
    let cmd = RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body: None,
        serialize_type: SerializeType::ROCKETMQ,
    };
    Ok((cmd, wire))
}

fn decode_ext(buf: &[u8]) -> Result<ExtFields, BinaryHeaderError> {
    let mut r = Reader { buf };
    // Each entry takes at least 6 bytes, which bounds the initial capacity.
    let mut fields = ExtFields::with_capacity((buf.len() / 6).min(32));
    while !r.buf.is_empty() {
        let key_len = r.i16("ext key length")?;
        let key = r.bytes_with_len(i64::from(key_len), "ext key")?;
        let val_len = r.i32("ext value length")?;
        let val = r.bytes_with_len(i64::from(val_len), "ext value")?;
        if key.is_empty() || val.is_empty() {
            continue; // zero-length strings are null in Java; null entries are skipped
        }
        fields.insert(
            crate::ext::intern(utf8(key, "ext key")?),
            utf8(val, "ext value")?,
        );
    }
    Ok(fields)
}

/// Appends the binary header of `cmd` to `dst`.
pub(super) fn encode_header(
    cmd: &RemotingCommand,
    opaque: i32,
    flag: RpcFlags,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let code = i16::try_from(cmd.code).map_err(|_| EncodeError::CodeOutOfRange(cmd.code))?;
    let version =
        i16::try_from(cmd.version).map_err(|_| EncodeError::VersionOutOfRange(cmd.version))?;
    let remark = cmd.remark.as_deref().unwrap_or("");
    let wire = cmd.ext_fields.wire_bytes();
    let mut ext_len = wire.map_or(0, <[u8]>::len);
    if wire.is_none() {
        for (k, v) in cmd.ext_fields.iter() {
            if k.len() > i16::MAX as usize {
                return Err(EncodeError::KeyTooLong { len: k.len() });
            }
            ext_len += 2 + k.len() + 4 + v.len();
        }
    }
    let too_large = |len| EncodeError::HeaderTooLarge {
        len,
        max: super::HEADER_LENGTH_FIELD_MAX,
    };
    let total = FIXED + remark.len() + 4 + ext_len;
    if total > super::HEADER_LENGTH_FIELD_MAX {
        return Err(too_large(total));
    }
    dst.reserve(total);
    dst.put_i16(code);
    dst.put_u8(cmd.language.0);
    dst.put_i16(version);
    dst.put_i32(opaque);
    dst.put_i32(flag.0);
    // Lengths below are bounded by HEADER_LENGTH_FIELD_MAX (checked above).
    dst.put_i32(remark.len() as i32);
    dst.put_slice(remark.as_bytes());
    dst.put_i32(ext_len as i32);
    if let Some(wire) = wire {
        // Already laid out as this section is (`WireWriter`, or a decoded frame).
        dst.put_slice(wire);
        return Ok(());
    }
    for (k, v) in cmd.ext_fields.iter() {
        dst.put_i16(k.len() as i16);
        dst.put_slice(k.as_bytes());
        dst.put_i32(v.len() as i32);
        dst.put_slice(v.as_bytes());
    }
    Ok(())
}
