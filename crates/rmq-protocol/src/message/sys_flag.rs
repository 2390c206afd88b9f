//! The message `sysFlag` word and the compression type it carries (protocol.md section 7).
//!
//! ```
//! use rmq_protocol::message::sys_flag::{CompressionType, SysFlag};
//!
//! // A Java producer's zlib-compressed single message.
//! let flag = SysFlag::default().with_compression(CompressionType::Zlib);
//! assert_eq!(flag.0, 0x301);
//! assert_eq!(flag.compression_type(), Ok(Some(CompressionType::Zlib)));
//! ```

use std::fmt;
use std::str::FromStr;

/// The `sysFlag` of a message: an open bit set (any `i32` is representable).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SysFlag(pub i32);

impl SysFlag {
    /// The body is compressed (client).
    pub const COMPRESSED: i32 = 0x1;
    /// Topic filter type MULTI_TAG (broker).
    pub const MULTI_TAGS: i32 = 0x2;
    /// Not a transactional message (transaction field 0).
    pub const TRANSACTION_NOT_TYPE: i32 = 0;
    /// A transactional half message (client; property `TRAN_MSG=true`).
    pub const TRANSACTION_PREPARED: i32 = 0x4;
    /// Transaction commit (END_TRANSACTION value; stored final message).
    pub const TRANSACTION_COMMIT: i32 = 0x8;
    /// Transaction rollback (END_TRANSACTION value).
    pub const TRANSACTION_ROLLBACK: i32 = 0xC;
    /// The mask of the transaction field (`flag & 0xC`).
    pub const TRANSACTION_MASK: i32 = 0xC;
    /// The born host is IPv6 (broker).
    pub const BORNHOST_V6: i32 = 0x10;
    /// The store host is IPv6 (broker).
    pub const STOREHOST_V6: i32 = 0x20;
    /// Inner batch: needs unwrapping (broker).
    pub const NEED_UNWRAP: i32 = 0x40;
    /// Inner batch (broker).
    pub const INNER_BATCH: i32 = 0x80;
    /// Compression type LZ4 (bits 8–10 = 1).
    pub const COMPRESSION_LZ4: i32 = 0x100;
    /// Compression type ZSTD (bits 8–10 = 2).
    pub const COMPRESSION_ZSTD: i32 = 0x200;
    /// Compression type ZLIB (bits 8–10 = 3).
    pub const COMPRESSION_ZLIB: i32 = 0x300;
    /// The mask of the compression type field (bits 8–10).
    pub const COMPRESSION_TYPE_MASK: i32 = 0x700;

    /// Whether every bit of `bits` is set.
    pub const fn contains(self, bits: i32) -> bool {
        self.0 & bits == bits
    }

    /// This flag with `bits` set.
    #[must_use]
    pub const fn with(self, bits: i32) -> Self {
        Self(self.0 | bits)
    }

    /// This flag with `bits` cleared.
    #[must_use]
    pub const fn without(self, bits: i32) -> Self {
        Self(self.0 & !bits)
    }

    /// Whether the [`COMPRESSED`](Self::COMPRESSED) bit is set.
    pub const fn is_compressed(self) -> bool {
        self.0 & Self::COMPRESSED != 0
    }

    /// The transaction field (`flag & 0xC`).
    pub const fn transaction_type(self) -> TransactionType {
        TransactionType::from_bits(self.0)
    }

    /// This flag with the transaction field replaced.
    #[must_use]
    pub const fn with_transaction_type(self, t: TransactionType) -> Self {
        Self((self.0 & !Self::TRANSACTION_MASK) | t.bits())
    }

    /// Whether the born host is IPv6.
    pub const fn born_host_v6(self) -> bool {
        self.0 & Self::BORNHOST_V6 != 0
    }

    /// Whether the store host is IPv6.
    pub const fn store_host_v6(self) -> bool {
        self.0 & Self::STOREHOST_V6 != 0
    }

    /// The compression type: `Ok(None)` when the body is not compressed. Type bits 0
    /// mean zlib (clients before 4.9.4 did not set them); 4–7 are an error.
    pub const fn compression_type(self) -> Result<Option<CompressionType>, UnknownCompressionType> {
        if !self.is_compressed() {
            return Ok(None);
        }
        match CompressionType::from_bits(self.0) {
            Ok(t) => Ok(Some(t)),
            Err(e) => Err(e),
        }
    }

    /// This flag with [`COMPRESSED`](Self::COMPRESSED) and the type bits of `t` set
    /// (any previous type bits are replaced).
    #[must_use]
    pub const fn with_compression(self, t: CompressionType) -> Self {
        Self((self.0 & !Self::COMPRESSION_TYPE_MASK) | Self::COMPRESSED | t.bits())
    }

    /// This flag with [`COMPRESSED`](Self::COMPRESSED) and the type bits cleared.
    #[must_use]
    pub const fn without_compression(self) -> Self {
        self.without(Self::COMPRESSED | Self::COMPRESSION_TYPE_MASK)
    }
}

impl fmt::Debug for SysFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SysFlag({:#x}", self.0)?;
        if self.is_compressed() {
            match self.compression_type() {
                Ok(Some(t)) => write!(f, " COMPRESSED({})", t.java_name())?,
                _ => f.write_str(" COMPRESSED(?)")?,
            }
        }
        let names = [
            (Self::MULTI_TAGS, " MULTI_TAGS"),
            (Self::BORNHOST_V6, " BORNHOST_V6"),
            (Self::STOREHOST_V6, " STOREHOST_V6"),
            (Self::NEED_UNWRAP, " NEED_UNWRAP"),
            (Self::INNER_BATCH, " INNER_BATCH"),
        ];
        match self.transaction_type() {
            TransactionType::NotType => {}
            t => write!(f, " {t:?}")?,
        }
        for (bit, name) in names {
            if self.0 & bit != 0 {
                f.write_str(name)?;
            }
        }
        f.write_str(")")
    }
}

impl From<i32> for SysFlag {
    fn from(v: i32) -> Self {
        Self(v)
    }
}

impl From<SysFlag> for i32 {
    fn from(v: SysFlag) -> i32 {
        v.0
    }
}

/// The transaction field of a `sysFlag` (bits 2–3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionType {
    /// 0: not transactional (also "unknown" in END_TRANSACTION).
    NotType,
    /// 0x4: half message.
    Prepared,
    /// 0x8: commit.
    Commit,
    /// 0xC: rollback.
    Rollback,
}

impl TransactionType {
    /// The field's bits (0, 0x4, 0x8 or 0xC).
    pub const fn bits(self) -> i32 {
        match self {
            Self::NotType => SysFlag::TRANSACTION_NOT_TYPE,
            Self::Prepared => SysFlag::TRANSACTION_PREPARED,
            Self::Commit => SysFlag::TRANSACTION_COMMIT,
            Self::Rollback => SysFlag::TRANSACTION_ROLLBACK,
        }
    }

    /// The field read from a whole flag word (`flag & 0xC`).
    pub const fn from_bits(flag: i32) -> Self {
        match flag & SysFlag::TRANSACTION_MASK {
            SysFlag::TRANSACTION_PREPARED => Self::Prepared,
            SysFlag::TRANSACTION_COMMIT => Self::Commit,
            SysFlag::TRANSACTION_ROLLBACK => Self::Rollback,
            _ => Self::NotType,
        }
    }
}

/// A body compression algorithm (Java `CompressionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompressionType {
    /// LZ4 **frame** format (type value 1).
    Lz4,
    /// Zstandard frame (type value 2).
    Zstd,
    /// zlib stream with header and Adler-32 (type value 3). The only type consumers
    /// older than 4.9.4 can read.
    Zlib,
}

impl CompressionType {
    /// Java's type value: 1, 2 or 3.
    pub const fn value(self) -> i32 {
        match self {
            Self::Lz4 => 1,
            Self::Zstd => 2,
            Self::Zlib => 3,
        }
    }

    /// The type for Java's type value; 0 is zlib (pre-4.9.4 clients), 4–7 and others are unknown.
    pub const fn from_value(value: i32) -> Result<Self, UnknownCompressionType> {
        match value {
            1 => Ok(Self::Lz4),
            2 => Ok(Self::Zstd),
            0 | 3 => Ok(Self::Zlib),
            v => Err(UnknownCompressionType(v)),
        }
    }

    /// The `sysFlag` type bits: 0x100, 0x200 or 0x300.
    pub const fn bits(self) -> i32 {
        self.value() << 8
    }

    /// The type stored in a whole flag word (`(flag & 0x700) >> 8`), whether or not the
    /// COMPRESSED bit is set. 0 means zlib; 4–7 are an error.
    pub const fn from_bits(flag: i32) -> Result<Self, UnknownCompressionType> {
        Self::from_value((flag & SysFlag::COMPRESSION_TYPE_MASK) >> 8)
    }

    /// Java's enum name: `"LZ4"`, `"ZSTD"` or `"ZLIB"`.
    pub const fn java_name(self) -> &'static str {
        match self {
            Self::Lz4 => "LZ4",
            Self::Zstd => "ZSTD",
            Self::Zlib => "ZLIB",
        }
    }
}

impl fmt::Display for CompressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.java_name())
    }
}

impl FromStr for CompressionType {
    type Err = UnknownCompressionName;

    /// Parses `LZ4`, `ZSTD` or `ZLIB`, case-insensitively (as Java's
    /// `rocketmq.message.compressType`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Lz4, Self::Zstd, Self::Zlib]
            .into_iter()
            .find(|t| t.java_name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCompressionName(s.to_owned()))
    }
}

/// A compression type value other than 0–3 in a `sysFlag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression type value {0} in sysFlag")]
pub struct UnknownCompressionType(pub i32);

/// A compression type name other than `LZ4`, `ZSTD` or `ZLIB`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression type {0:?} (expected LZ4, ZSTD or ZLIB)")]
pub struct UnknownCompressionName(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_zlib_single_message_is_769() {
        let f = SysFlag::default().with_compression(CompressionType::Zlib);
        assert_eq!(f.0, 769);
        assert_eq!(f, SysFlag(SysFlag::COMPRESSED | SysFlag::COMPRESSION_ZLIB));
        assert!(f.is_compressed());
        assert_eq!(f.compression_type(), Ok(Some(CompressionType::Zlib)));
        // Half message, compressed with zlib.
        let half = SysFlag(SysFlag::TRANSACTION_PREPARED).with_compression(CompressionType::Zlib);
        assert_eq!(half.0, 0x305);
        assert_eq!(half.transaction_type(), TransactionType::Prepared);
    }

    #[test]
    fn compression_types() {
        for t in [
            CompressionType::Lz4,
            CompressionType::Zstd,
            CompressionType::Zlib,
        ] {
            let f = SysFlag(SysFlag::TRANSACTION_PREPARED).with_compression(t);
            assert_eq!(f.compression_type(), Ok(Some(t)));
            assert_eq!(CompressionType::from_bits(t.bits()), Ok(t));
            assert_eq!(
                t.java_name().to_lowercase().parse::<CompressionType>(),
                Ok(t)
            );
            assert_eq!(
                f.without_compression(),
                SysFlag(SysFlag::TRANSACTION_PREPARED)
            );
        }
        assert_eq!(SysFlag::default().with(SysFlag::COMPRESSION_LZ4).0, 0x100);
        assert_eq!(
            SysFlag(0x201).compression_type(),
            Ok(Some(CompressionType::Zstd))
        );
        // Old clients: compressed without type bits means zlib.
        assert_eq!(
            SysFlag(0x1).compression_type(),
            Ok(Some(CompressionType::Zlib))
        );
        // Not compressed: no type, whatever the bits say.
        assert_eq!(SysFlag(0x700).compression_type(), Ok(None));
        for v in 4..=7 {
            let f = SysFlag((v << 8) | 1);
            assert_eq!(f.compression_type(), Err(UnknownCompressionType(v)));
        }
        // Replacing the type.
        let f = SysFlag(0x101).with_compression(CompressionType::Zstd);
        assert_eq!(f.0, 0x201);
        assert!("gzip".parse::<CompressionType>().is_err());
    }

    #[test]
    fn bits() {
        let f = SysFlag(SysFlag::BORNHOST_V6 | SysFlag::STOREHOST_V6 | SysFlag::TRANSACTION_COMMIT);
        assert!(f.born_host_v6() && f.store_host_v6() && !f.is_compressed());
        assert_eq!(f.transaction_type(), TransactionType::Commit);
        assert_eq!(
            f.with_transaction_type(TransactionType::Rollback).0,
            SysFlag::BORNHOST_V6 | SysFlag::STOREHOST_V6 | 0xC
        );
        assert_eq!(SysFlag(0).transaction_type(), TransactionType::NotType);
        assert!(SysFlag(0xC).contains(SysFlag::TRANSACTION_COMMIT));
        assert!(!SysFlag(0x4).contains(SysFlag::TRANSACTION_ROLLBACK));
        assert_eq!(SysFlag(0x7).without(SysFlag::COMPRESSED).0, 0x6);
        let dbg = format!("{:?}", SysFlag(0x305 | SysFlag::BORNHOST_V6));
        assert_eq!(dbg, "SysFlag(0x315 COMPRESSED(ZLIB) Prepared BORNHOST_V6)");
    }
}
