//! Frames: the length-prefixed envelope of every remoting command.
//!
//! ```text
//! +--------+--------+----------------------+---------------------+
//! | int32  | int32  | header (H bytes)     | body (B bytes)      |
//! | LEN    | HDR    |                      |                     |
//! +--------+--------+----------------------+---------------------+
//! LEN = 4 + H + B (not counting itself); HDR = serializeType << 24 | H
//! ```
//!
//! The decoder follows tokio-util's contract: `Ok(None)` means "need more bytes"
//! and leaves the buffer untouched; `Ok(Some(cmd))` consumes exactly one frame and
//! leaves any following bytes in place. The declared frame length, the serialize
//! type and the header length are all checked as soon as the first 8 bytes are
//! there, before anything is allocated, so a hostile length prefix costs nothing.
//! On an error the buffer is left untouched too; the stream is then unusable and
//! the caller should close the connection.
//!
//! Each frame is decoded by its own serialize-type byte: servers commonly answer
//! a binary request with a JSON response (protocol.md section 1.8).

mod binary;
mod json;

use bytes::{BufMut, BytesMut};

use crate::code::{RpcFlags, SerializeType};
use crate::command::RemotingCommand;
use crate::ext::{ExtFields, WireFields};

/// Default limit on a whole frame, length prefix included (Java's
/// `com.rocketmq.remoting.frameMaxLength`): 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Default limit on a header. Real headers are a few hundred bytes; message
/// properties are limited to 32 KiB by the broker. 1 MiB leaves ample room while
/// bounding what a hostile peer can make us parse.
pub const DEFAULT_MAX_HEADER: usize = 1024 * 1024;

/// The largest header length the 24-bit field can express.
pub const HEADER_LENGTH_FIELD_MAX: usize = 0x00FF_FFFF;

/// Size limits applied by [`FrameCodec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// Maximum size of a whole frame including its 4-byte length prefix.
    pub max_frame: usize,
    /// Maximum header size in bytes (never more than [`HEADER_LENGTH_FIELD_MAX`]).
    pub max_header: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            max_header: DEFAULT_MAX_HEADER,
        }
    }
}

/// A frame could not be decoded. The stream is unusable afterwards.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix is below 4 (it must at least cover the header-length word).
    #[error("frame length {len} is too small (minimum 4)")]
    FrameTooSmall {
        /// The declared LEN.
        len: i32,
    },
    /// The declared frame is larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Declared frame size including the length prefix.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// The serialize-type byte is neither JSON (0) nor ROCKETMQ (1).
    #[error("unsupported serialize type {0} (expected 0 = JSON or 1 = ROCKETMQ)")]
    UnsupportedSerializeType(u8),
    /// The header length is larger than the frame.
    #[error("header length {header} exceeds the frame's {available} bytes")]
    HeaderLengthExceedsFrame {
        /// Declared header length.
        header: usize,
        /// Bytes available for header and body.
        available: usize,
    },
    /// The header is larger than the configured limit.
    #[error("header of {len} bytes exceeds the limit of {max} bytes")]
    HeaderTooLarge {
        /// Declared header length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The JSON header is not valid.
    #[error("invalid JSON header: {0}")]
    Json(String),
    /// The binary header is not valid.
    #[error("invalid ROCKETMQ binary header: {0}")]
    Binary(BinaryHeaderError),
}

/// What is wrong with a binary header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BinaryHeaderError {
    /// The header ends before its fixed part or a declared field.
    #[error("truncated at {field}: need {need} bytes, {have} left")]
    Truncated {
        /// What was being read.
        field: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// A length field is negative.
    #[error("negative length {len} for {field}")]
    NegativeLength {
        /// What the length was for.
        field: &'static str,
        /// The value read.
        len: i64,
    },
    /// A string field is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which field.
        field: &'static str,
    },
}

/// A command cannot be represented as a frame. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The binary header stores the code as an i16.
    #[error("code {0} does not fit the binary header's 16-bit code field; use the JSON header")]
    CodeOutOfRange(i32),
    /// The binary header stores the version as an i16.
    #[error("version {0} does not fit the binary header's 16-bit version field")]
    VersionOutOfRange(i32),
    /// A key longer than 32767 bytes cannot be written in the binary header.
    #[error("ext field key of {len} bytes is longer than the binary header allows (32767)")]
    KeyTooLong {
        /// Key length in bytes.
        len: usize,
    },
    /// The serialize type is neither JSON nor ROCKETMQ.
    #[error("cannot encode with serialize type {0}")]
    UnsupportedSerializeType(u8),
    /// The encoded header is larger than the limit.
    #[error("encoded header of {len} bytes exceeds the limit of {max} bytes")]
    HeaderTooLarge {
        /// Encoded header length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame is larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Frame size including the length prefix.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Encodes and decodes frames within [`FrameLimits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCodec {
    limits: FrameLimits,
}

impl FrameCodec {
    /// A codec with the given limits (the header limit is capped at what the 24-bit
    /// field can express).
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            limits: FrameLimits {
                max_frame: limits.max_frame,
                max_header: limits.max_header.min(HEADER_LENGTH_FIELD_MAX),
            },
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// Checks the 8-byte prefix of a frame. Returns `(frame_len_with_prefix,
    /// serialize_type, header_len)`, or `None` when fewer than 8 bytes (or 4, for
    /// the length check) are available.
    fn check_prefix(
        &self,
        src: &[u8],
    ) -> Result<Option<(usize, SerializeType, usize)>, DecodeError> {
        let Some(len_bytes) = src.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        if len < 4 {
            return Err(DecodeError::FrameTooSmall { len });
        }
        let total = 4u64 + len as u64;
        if total > self.limits.max_frame as u64 {
            return Err(DecodeError::FrameTooLarge {
                len: total,
                max: self.limits.max_frame,
            });
        }
        let Some(hdr_bytes) = src.get(4..8) else {
            return Ok(None);
        };
        let hdr = u32::from_be_bytes([hdr_bytes[0], hdr_bytes[1], hdr_bytes[2], hdr_bytes[3]]);
        let st = (hdr >> 24) as u8;
        if st != SerializeType::JSON.0 && st != SerializeType::ROCKETMQ.0 {
            return Err(DecodeError::UnsupportedSerializeType(st));
        }
        let header_len = (hdr & 0x00FF_FFFF) as usize;
        let available = len as usize - 4;
        if header_len > available {
            return Err(DecodeError::HeaderLengthExceedsFrame {
                header: header_len,
                available,
            });
        }
        if header_len > self.limits.max_header {
            return Err(DecodeError::HeaderTooLarge {
                len: header_len,
                max: self.limits.max_header,
            });
        }
        Ok(Some((total as usize, SerializeType(st), header_len)))
    }

    /// Decodes one frame from the front of `src`.
    ///
    /// `Ok(None)`: more bytes are needed and `src` is unchanged. `Ok(Some(_))`:
    /// exactly one frame was removed from `src`. `Err(_)`: the stream is broken;
    /// `src` is unchanged.
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, DecodeError> {
        self.decode_frame(src, None)
    }

    /// Like [`decode`](Self::decode), keeping the header fields in wire form (see
    /// [`ExtFields`]) without a vector of their own: a binary
    /// header's fields are a slice of the frame, a JSON header's are written into
    /// `arena` and split off it (a reference count on its buffer; the arena
    /// allocates only when its buffer is full). For a connection's read loop, which
    /// keeps one arena: no allocation per frame for its header fields.
    pub fn decode_in(
        &self,
        src: &mut BytesMut,
        arena: &mut BytesMut,
    ) -> Result<Option<RemotingCommand>, DecodeError> {
        self.decode_frame(src, Some(arena))
    }

    fn decode_frame(
        &self,
        src: &mut BytesMut,
        arena: Option<&mut BytesMut>,
    ) -> Result<Option<RemotingCommand>, DecodeError> {
        let Some((total, st, header_len)) = self.check_prefix(src)? else {
            return Ok(None);
        };
        if src.len() < total {
            return Ok(None);
        }
        let header_end = 8 + header_len;
        let header = src.get(8..header_end).unwrap_or_default();
        let (mut cmd, wire) = if st == SerializeType::ROCKETMQ {
            binary::decode_header_lazy(header).map_err(DecodeError::Binary)?
        } else {
            (json::decode_header_in(header, arena)?, None)
        };
        let frame = src.split_to(total).freeze();
        if let Some((range, count)) = wire {
            let ext = frame.slice(8 + range.start..8 + range.end);
            cmd.ext_fields = ExtFields::from_wire(WireFields::from_checked(ext, count));
        }
        cmd.body = (frame.len() > header_end).then(|| frame.slice(header_end..));
        Ok(Some(cmd))
    }

    /// Appends `cmd` as one frame to `dst`, with the header serialization named by
    /// `cmd.serialize_type`. On error nothing is appended.
    pub fn encode(&self, cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_as(cmd, cmd.opaque, cmd.flag, dst)
    }

    /// Like [`encode`](Self::encode), with `opaque` and `flag` in place of the
    /// command's own: a transport assigns them at send time without changing (or
    /// copying) the caller's command.
    pub fn encode_as(
        &self,
        cmd: &RemotingCommand,
        opaque: i32,
        flag: RpcFlags,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let start = dst.len();
        let result = self.encode_inner(cmd, opaque, flag, dst, start);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn encode_inner(
        &self,
        cmd: &RemotingCommand,
        opaque: i32,
        flag: RpcFlags,
        dst: &mut BytesMut,
        start: usize,
    ) -> Result<(), EncodeError> {
        let body_len = cmd.body.as_ref().map_or(0, |b| b.len());
        // Fail fast on a body that can never fit, before encoding the header.
        if body_len.saturating_add(8) > self.limits.max_frame {
            return Err(EncodeError::FrameTooLarge {
                len: body_len.saturating_add(8),
                max: self.limits.max_frame,
            });
        }
        dst.put_u64(0); // LEN and HDR, patched below
        match cmd.serialize_type {
            SerializeType::ROCKETMQ => binary::encode_header(cmd, opaque, flag, dst)?,
            SerializeType::JSON => json::encode_header(cmd, opaque, flag, dst),
            other => return Err(EncodeError::UnsupportedSerializeType(other.0)),
        }
        let header_len = dst.len() - start - 8;
        if header_len > self.limits.max_header {
            return Err(EncodeError::HeaderTooLarge {
                len: header_len,
                max: self.limits.max_header,
            });
        }
        let total = 8 + header_len + body_len;
        if total > self.limits.max_frame {
            return Err(EncodeError::FrameTooLarge {
                len: total,
                max: self.limits.max_frame,
            });
        }
        if let Some(body) = &cmd.body {
            dst.extend_from_slice(body);
        }
        // Both values are bounded by max_frame / max_header (<= 0xFFFFFF), checked above.
        let len_word = (total - 4) as u32;
        let hdr_word = (u32::from(cmd.serialize_type.0) << 24) | header_len as u32;
        let prefix = &mut dst[start..start + 8];
        prefix[..4].copy_from_slice(&len_word.to_be_bytes());
        prefix[4..].copy_from_slice(&hdr_word.to_be_bytes());
        Ok(())
    }
}

/// Decodes one frame with the default limits. See [`FrameCodec::decode`].
pub fn decode(src: &mut BytesMut) -> Result<Option<RemotingCommand>, DecodeError> {
    FrameCodec::default().decode(src)
}

/// Encodes one frame with the default limits. See [`FrameCodec::encode`].
pub fn encode(cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
    FrameCodec::default().encode(cmd, dst)
}

/// Decodes only a header (no length prefix), for fuzzing and tests.
#[doc(hidden)]
pub fn decode_header_only(
    st: SerializeType,
    header: &[u8],
) -> Result<RemotingCommand, DecodeError> {
    if st == SerializeType::ROCKETMQ {
        binary::decode_header(header).map_err(DecodeError::Binary)
    } else {
        json::decode_header(header)
    }
}

#[cfg(test)]
mod tests;
