//! Body compression as a Java producer does it (protocol.md section 7).
//!
//! A single message whose body has **at least** [`Compression::threshold`] bytes is
//! compressed with [`Compression::kind`] and sent with `sysFlag |= COMPRESSED | type
//! bits` (zlib: `0x301`). The compressed bytes are used even when they are larger than
//! the input, as Java does, so that a consumer never has to guess. Batches and half
//! messages are never compressed (that rule lives in the send path, not here).
//!
//! | kind | format | level | cargo feature |
//! |---|---|---|---|
//! | [`Zlib`](CompressionType::Zlib) (default) | zlib stream: header + deflate + Adler-32 | 0..=9 (default 5) | `zlib` |
//! | [`Zstd`](CompressionType::Zstd) | zstd frame | zstd's range, e.g. 1..=22 | `zstd` |
//! | [`Lz4`](CompressionType::Lz4) | LZ4 **frame** (magic `04 22 4D 18`), not a raw block | ignored | `lz4` |
//!
//! Only zlib can be read by consumers older than RocketMQ 4.9.4; choose another kind
//! only when every consumer is newer.
//!
//! [`decompress`] is the reverse, for tools and tests: it picks the codec from the type
//! bits of a `sysFlag` (type 0 means zlib, as older clients sent no type) and refuses to
//! produce more than `max_len` bytes, so a small hostile body cannot expand into
//! gigabytes.
//!
//! ```
//! use rmq_producer::compress::{Compression, decompress};
//! use rmq_protocol::message::{CompressionType, SysFlag};
//!
//! let compression = Compression::default(); // zlib, level 5, at >= 4096 bytes
//! assert!(compression.compress(b"small")?.is_none());
//!
//! let body = vec![b'x'; 10_000];
//! let (compressed, bits) = compression.compress(&body)?.expect("over the threshold");
//! assert_eq!(bits, 0x301); // COMPRESSED | ZLIB, as a Java producer sends
//! let flag = SysFlag::default().with(bits);
//! assert_eq!(decompress(flag, &compressed, 1 << 20)?, body);
//! # Ok::<(), rmq_producer::compress::CompressError>(())
//! ```

#[cfg(any(feature = "zlib", feature = "lz4"))]
use std::io::Write;
use std::io::{self, Read};

use bytes::Bytes;
use rmq_protocol::message::sys_flag::UnknownCompressionType;
use rmq_protocol::message::{CompressionType, SysFlag};
use serde::{Deserialize, Serialize};

/// The default compression threshold in bytes: bodies of **4096 bytes or more** are
/// compressed (Java `compressMsgBodyOverHowmuch`, compared with `>=`).
pub const DEFAULT_THRESHOLD: usize = 4096;

/// The default compression level: 5 (Java `compressLevel`).
pub const DEFAULT_LEVEL: i32 = 5;

/// The valid zlib levels: 0 (store) to 9 (best).
pub const ZLIB_LEVELS: std::ops::RangeInclusive<i32> = 0..=9;

/// The first bytes of an LZ4 frame (magic number 0x184D2204, little-endian).
pub const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4D, 0x18];

/// How single-message bodies are compressed: which codec, at which level, from which
/// size on.
///
/// The default keeps Java's: zlib, level 5, bodies of at least 4096 bytes (when
/// the `zlib` feature is off, the default is disabled). Setting
/// `enabled = false` turns compression off (every body is sent as is).
///
/// In a TOML configuration this is the `[compression]` table; `kind` is `"zlib"`,
/// `"zstd"` or `"lz4"` (any case):
///
/// ```toml
/// [compression]
/// kind = "zstd"
/// level = 3
/// threshold = 8192
/// ```
///
/// ```
/// use rmq_producer::compress::Compression;
/// use rmq_protocol::message::CompressionType;
///
/// let zstd = Compression { kind: CompressionType::Zstd, level: 3, ..Compression::default() };
/// zstd.validate()?;
/// let (body, bits) = zstd.compress(&[0u8; 5000])?.expect("5000 >= 4096");
/// assert_eq!(bits, 0x201);
/// assert!(body.len() < 5000);
/// # Ok::<(), rmq_producer::compress::CompressError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Compression {
    /// Whether bodies are compressed at all. Default `true` (Java always compresses
    /// bodies over the threshold) when the `zlib` feature is on, `false` without it.
    pub enabled: bool,
    /// The codec. Default [`CompressionType::Zlib`], the only one consumers older than
    /// 4.9.4 can read (Java default `ZLIB`).
    #[serde(with = "kind_serde", alias = "type")]
    pub kind: CompressionType,
    /// The level. Default 5 (Java `compressLevel`). zlib: 0..=9; zstd: its own range
    /// (negative "fast" levels to 22); ignored by LZ4, as in Java.
    pub level: i32,
    /// Bodies of at least this many bytes are compressed. Default 4096 (Java
    /// `compressMsgBodyOverHowmuch`, compared with `>=`).
    pub threshold: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Self {
            enabled: is_supported(CompressionType::Zlib),
            kind: CompressionType::Zlib,
            level: DEFAULT_LEVEL,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl Compression {
    /// No compression: every body is sent as it is.
    ///
    /// ```
    /// use rmq_producer::compress::Compression;
    ///
    /// let off = Compression::disabled();
    /// assert!(!off.applies_to(1 << 20));
    /// assert!(off.compress(&vec![b'x'; 1 << 20])?.is_none());
    /// # Ok::<(), rmq_producer::compress::CompressError>(())
    /// ```
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Whether a body of `len` bytes would be compressed (`enabled && len >= threshold`).
    ///
    /// ```
    /// use rmq_producer::compress::Compression;
    ///
    /// let c = Compression { threshold: 1024, ..Compression::default() };
    /// assert!(!c.applies_to(1023));
    /// assert!(c.applies_to(1024)); // compared with >=, as Java does
    /// ```
    pub fn applies_to(&self, len: usize) -> bool {
        self.enabled && len >= self.threshold
    }

    /// Checks that the codec is compiled in and the level is in its range.
    ///
    /// # Errors
    ///
    /// [`CompressError::Unsupported`] when the codec's cargo feature is off,
    /// [`CompressError::InvalidLevel`] when the level is out of range.
    ///
    /// ```
    /// use rmq_producer::compress::{CompressError, Compression};
    /// use rmq_protocol::message::CompressionType;
    ///
    /// assert!(Compression::default().validate().is_ok());
    /// let too_high = Compression { kind: CompressionType::Zlib, level: 10, ..Compression::default() };
    /// assert!(matches!(
    ///     too_high.validate(),
    ///     Err(CompressError::InvalidLevel { level: 10, min: 0, max: 9, .. })
    /// ));
    /// // LZ4 ignores the level.
    /// assert!(Compression { kind: CompressionType::Lz4, level: 99, ..Compression::default() }
    ///     .validate()
    ///     .is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), CompressError> {
        if !is_supported(self.kind) {
            return Err(CompressError::Unsupported { kind: self.kind });
        }
        match level_range(self.kind) {
            Some(range) if !range.contains(&self.level) => Err(CompressError::InvalidLevel {
                kind: self.kind,
                level: self.level,
                min: *range.start(),
                max: *range.end(),
            }),
            _ => Ok(()),
        }
    }

    /// Compresses `body` if it is large enough.
    ///
    /// Returns `Ok(None)` when compression is disabled or `body.len() < threshold`; the
    /// caller then sends the body unchanged. Otherwise returns the compressed bytes and
    /// the `sysFlag` bits to OR into the message's flag: `COMPRESSED | type bits`
    /// (0x101 LZ4, 0x201 zstd, 0x301 zlib). The output is used even if it is larger
    /// than the input (as Java). `body` is never modified, so a retry can compress the
    /// original again or reuse the result.
    ///
    /// # Errors
    ///
    /// [`CompressError::Unsupported`] when the codec's cargo feature is off,
    /// [`CompressError::InvalidLevel`] for an out-of-range level, and
    /// [`CompressError::Codec`] if the codec fails (Java then sends the body
    /// uncompressed; the caller decides).
    ///
    /// ```
    /// use rmq_producer::compress::{Compression, LZ4_MAGIC};
    /// use rmq_protocol::message::CompressionType;
    ///
    /// let lz4 = Compression { kind: CompressionType::Lz4, ..Compression::default() };
    /// assert!(lz4.compress(&[7u8; 4095])?.is_none()); // under the threshold
    /// let (body, bits) = lz4.compress(&[7u8; 4096])?.expect("at the threshold");
    /// assert_eq!(bits, 0x101); // COMPRESSED | LZ4
    /// assert_eq!(body[..4], LZ4_MAGIC); // an LZ4 frame, not a raw block
    /// # Ok::<(), rmq_producer::compress::CompressError>(())
    /// ```
    pub fn compress(&self, body: &[u8]) -> Result<Option<(Bytes, i32)>, CompressError> {
        if !self.applies_to(body.len()) {
            return Ok(None);
        }
        self.validate()?;
        let out = match self.kind {
            CompressionType::Zlib => zlib_compress(body, self.level),
            CompressionType::Zstd => zstd_compress(body, self.level),
            CompressionType::Lz4 => lz4_compress(body),
        }
        .map_err(|source| CompressError::Codec {
            kind: self.kind,
            source,
        })?;
        Ok(Some((
            Bytes::from(out),
            SysFlag::COMPRESSED | self.kind.bits(),
        )))
    }
}

/// Whether the codec for `kind` is compiled in (its cargo feature is on).
///
/// ```
/// use rmq_producer::compress::{Compression, is_supported};
/// use rmq_protocol::message::CompressionType;
///
/// // A codec left out of the build is refused by `validate` (and by the builder).
/// for kind in [CompressionType::Zlib, CompressionType::Zstd, CompressionType::Lz4] {
///     let c = Compression { kind, level: 1, ..Compression::default() };
///     assert_eq!(c.validate().is_ok(), is_supported(kind));
/// }
/// ```
pub const fn is_supported(kind: CompressionType) -> bool {
    match kind {
        CompressionType::Zlib => cfg!(feature = "zlib"),
        CompressionType::Zstd => cfg!(feature = "zstd"),
        CompressionType::Lz4 => cfg!(feature = "lz4"),
    }
}

/// The valid levels for `kind`, or `None` when the level is ignored (LZ4) or the
/// codec is not compiled in.
///
/// ```
/// use rmq_producer::compress::level_range;
/// use rmq_protocol::message::CompressionType;
///
/// assert_eq!(level_range(CompressionType::Zlib), Some(0..=9));
/// assert_eq!(level_range(CompressionType::Lz4), None);
/// if let Some(zstd) = level_range(CompressionType::Zstd) {
///     assert!(zstd.contains(&3) && zstd.contains(&22));
/// }
/// ```
pub fn level_range(kind: CompressionType) -> Option<std::ops::RangeInclusive<i32>> {
    match kind {
        CompressionType::Zlib => Some(ZLIB_LEVELS),
        #[cfg(feature = "zstd")]
        CompressionType::Zstd => Some(zstd::compression_level_range()),
        #[cfg(not(feature = "zstd"))]
        CompressionType::Zstd => None,
        CompressionType::Lz4 => None,
    }
}

/// Why a body could not be compressed or decompressed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressError {
    /// The codec's cargo feature (`zlib`, `zstd` or `lz4`) is disabled.
    #[error(
        "{kind} compression is not available: enable the `{}` feature of rmq-producer",
        feature_name(*kind)
    )]
    Unsupported {
        /// The codec asked for.
        kind: CompressionType,
    },
    /// The level is outside the codec's range.
    #[error("compression level {level} for {kind} must be in {min}..={max}")]
    InvalidLevel {
        /// The codec.
        kind: CompressionType,
        /// The level given.
        level: i32,
        /// The lowest valid level.
        min: i32,
        /// The highest valid level.
        max: i32,
    },
    /// The codec failed while compressing, or the compressed input is corrupt or
    /// truncated.
    #[error("{kind} codec failed: {source}")]
    Codec {
        /// The codec.
        kind: CompressionType,
        /// The codec's error.
        #[source]
        source: io::Error,
    },
    /// The decompressed body would be larger than the limit given to [`decompress`].
    #[error("the {kind}-decompressed body is larger than the limit of {max_len} bytes")]
    TooLarge {
        /// The codec.
        kind: CompressionType,
        /// The limit.
        max_len: usize,
    },
    /// The `sysFlag` names a compression type other than 0–3.
    #[error(transparent)]
    UnknownType(#[from] UnknownCompressionType),
}

const fn feature_name(kind: CompressionType) -> &'static str {
    match kind {
        CompressionType::Zlib => "zlib",
        CompressionType::Zstd => "zstd",
        CompressionType::Lz4 => "lz4",
    }
}

/// Decompresses a message body according to its `sysFlag`, producing at most
/// `max_len` bytes.
///
/// If the COMPRESSED bit (0x1) is not set, the body is returned unchanged. Otherwise
/// the codec is taken from the type bits (`(flag & 0x700) >> 8`: 1 LZ4, 2 zstd, 3 or
/// 0 zlib — 0 is what clients before 4.9.4 send). The output is read through a
/// bounded reader, so a "decompression bomb" fails with
/// [`CompressError::TooLarge`] after at most `max_len + 1` bytes of output instead of
/// exhausting memory. zstd frames that ask for a window larger than
/// `max(max_len, 8 MiB)` (rounded up to a power of two, at most 128 MiB) are
/// rejected for the same reason.
///
/// # Errors
///
/// [`CompressError::UnknownType`] for type bits 4–7, [`CompressError::Unsupported`]
/// when the codec is not compiled in, [`CompressError::Codec`] for corrupt or
/// truncated input, [`CompressError::TooLarge`] when the output exceeds `max_len`.
///
/// ```
/// use rmq_producer::compress::{CompressError, Compression, decompress};
/// use rmq_protocol::message::SysFlag;
///
/// let (body, bits) = Compression::default().compress(&[0u8; 1 << 20])?.expect("compressed");
/// let flag = SysFlag(bits);
/// assert_eq!(decompress(flag, &body, 1 << 20)?.len(), 1 << 20);
/// assert!(matches!(decompress(flag, &body, 1000), Err(CompressError::TooLarge { .. })));
/// # Ok::<(), CompressError>(())
/// ```
pub fn decompress(sys_flag: SysFlag, body: &[u8], max_len: usize) -> Result<Bytes, CompressError> {
    let Some(kind) = sys_flag.compression_type()? else {
        return Ok(Bytes::copy_from_slice(body));
    };
    if !is_supported(kind) {
        return Err(CompressError::Unsupported { kind });
    }
    // Every codec's output starts with a header, so an empty body is corrupt. The LZ4
    // decoder reads a body that ends right after the magic as "no frames", and skips
    // what it does not recognise; insist on the magic and a whole frame header.
    let lz4_bad = kind == CompressionType::Lz4 && (body.len() < 7 || !body.starts_with(&LZ4_MAGIC));
    if body.is_empty() || lz4_bad {
        let source = io::Error::new(io::ErrorKind::InvalidData, "not a compressed frame");
        return Err(CompressError::Codec { kind, source });
    }
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max_len));
    let read = match kind {
        CompressionType::Zlib => {
            zlib_reader(body).and_then(|r| r.take(limit).read_to_end(&mut out))
        }
        CompressionType::Zstd => {
            zstd_reader(body, max_len).and_then(|r| r.take(limit).read_to_end(&mut out))
        }
        CompressionType::Lz4 => lz4_reader(body).and_then(|r| r.take(limit).read_to_end(&mut out)),
    };
    read.map_err(|source| CompressError::Codec { kind, source })?;
    if out.len() > max_len {
        return Err(CompressError::TooLarge { kind, max_len });
    }
    Ok(Bytes::from(out))
}

#[cfg(feature = "zlib")]
fn zlib_compress(body: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let level = u32::try_from(level).map_err(|_| io::Error::other("negative zlib level"))?;
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(body.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(body)?;
    enc.finish()
}

#[cfg(not(feature = "zlib"))]
fn zlib_compress(_body: &[u8], _level: i32) -> io::Result<Vec<u8>> {
    Err(unsupported())
}

#[cfg(feature = "zlib")]
fn zlib_reader(body: &[u8]) -> io::Result<impl Read + '_> {
    Ok(flate2::read::ZlibDecoder::new(body))
}

#[cfg(not(feature = "zlib"))]
fn zlib_reader(_body: &[u8]) -> io::Result<io::Empty> {
    Err(unsupported())
}

#[cfg(feature = "zstd")]
fn zstd_compress(body: &[u8], level: i32) -> io::Result<Vec<u8>> {
    zstd::bulk::compress(body, level)
}

#[cfg(not(feature = "zstd"))]
fn zstd_compress(_body: &[u8], _level: i32) -> io::Result<Vec<u8>> {
    Err(unsupported())
}

/// The smallest and largest zstd window (log2) a decoder accepts: 8 MiB covers every
/// level up to 19 with an unknown content size; 27 (128 MiB) is zstd's own default cap.
#[cfg(feature = "zstd")]
const ZSTD_WINDOW_LOG_MIN: u32 = 23;
#[cfg(feature = "zstd")]
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

#[cfg(feature = "zstd")]
fn zstd_reader(body: &[u8], max_len: usize) -> io::Result<impl Read + '_> {
    // ceil(log2(max_len)), clamped: the window memory a frame may make us allocate.
    let needed = usize::BITS - max_len.saturating_sub(1).leading_zeros();
    let window_log = needed.clamp(ZSTD_WINDOW_LOG_MIN, ZSTD_WINDOW_LOG_MAX);
    let mut dec = zstd::stream::read::Decoder::with_buffer(body)?;
    dec.window_log_max(window_log)?;
    Ok(dec)
}

#[cfg(not(feature = "zstd"))]
fn zstd_reader(_body: &[u8], _max_len: usize) -> io::Result<io::Empty> {
    Err(unsupported())
}

#[cfg(feature = "lz4")]
fn lz4_compress(body: &[u8]) -> io::Result<Vec<u8>> {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    // Independent blocks and no content checksum, like lz4-java's LZ4FrameOutputStream.
    // `Auto` picks 64 KiB, 256 KiB or 4 MiB blocks from the single write below; every
    // LZ4 frame decoder (lz4-java included) accepts those sizes.
    let info = FrameInfo::new()
        .block_mode(BlockMode::Independent)
        .block_size(BlockSize::Auto);
    let mut enc = FrameEncoder::with_frame_info(info, Vec::with_capacity(body.len() / 2 + 64));
    enc.write_all(body)?;
    enc.finish().map_err(io::Error::from)
}

#[cfg(not(feature = "lz4"))]
fn lz4_compress(_body: &[u8]) -> io::Result<Vec<u8>> {
    Err(unsupported())
}

#[cfg(feature = "lz4")]
fn lz4_reader(body: &[u8]) -> io::Result<impl Read + '_> {
    Ok(lz4_flex::frame::FrameDecoder::new(body))
}

#[cfg(not(feature = "lz4"))]
fn lz4_reader(_body: &[u8]) -> io::Result<io::Empty> {
    Err(unsupported())
}

#[cfg(not(all(feature = "zlib", feature = "zstd", feature = "lz4")))]
fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "codec not compiled in")
}

/// Serde for [`CompressionType`]: lowercase names out, any case in.
mod kind_serde {
    use rmq_protocol::message::CompressionType;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(
        kind: &CompressionType,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&kind.java_name().to_ascii_lowercase())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<CompressionType, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(|_| {
            D::Error::custom(format!(
                "unknown compression kind {name:?}, expected \"zlib\", \"zstd\" or \"lz4\""
            ))
        })
    }
}

#[cfg(all(test, not(all(feature = "zlib", feature = "zstd", feature = "lz4"))))]
mod tests_without_codecs {
    use super::*;

    #[test]
    fn missing_codecs_are_unsupported() {
        for kind in [
            CompressionType::Zlib,
            CompressionType::Zstd,
            CompressionType::Lz4,
        ] {
            if is_supported(kind) {
                continue;
            }
            let c = Compression {
                enabled: true,
                kind,
                ..Compression::default()
            };
            assert!(matches!(
                c.validate(),
                Err(CompressError::Unsupported { .. })
            ));
            assert!(matches!(
                c.compress(&[0; 5000]),
                Err(CompressError::Unsupported { .. })
            ));
            let err =
                decompress(SysFlag(1 | kind.bits()), &[1, 2, 3, 4, 5, 6, 7, 8], 100).unwrap_err();
            assert!(err.to_string().contains("feature"), "{err}");
        }
    }
}

#[cfg(all(test, feature = "zlib", feature = "zstd", feature = "lz4"))]
mod tests;
