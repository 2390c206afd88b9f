//! Stored messages in the commit-log format (protocol.md §12.2; Java
//! `MessageDecoder.decode` / `encode`, `MessageExtEncoder`).
//!
//! This is the layout of PULL_MESSAGE response bodies (records back to back), of the
//! CHECK_TRANSACTION_STATE body (one record) and of the broker's commit-log files.
//! All integers are big-endian:
//!
//! | size | field |
//! |---|---|
//! | 4 | TOTALSIZE (the whole record, these 4 bytes included) |
//! | 4 | MAGICCODE: [`MAGIC_V1`] (1-byte topic length) or [`MAGIC_V2`] (2-byte topic length) |
//! | 4 | BODYCRC |
//! | 4 | QUEUEID |
//! | 4 | FLAG |
//! | 8 | QUEUEOFFSET |
//! | 8 | PHYSICALOFFSET (commit-log offset) |
//! | 4 | SYSFLAG |
//! | 8 | BORNTIMESTAMP |
//! | 8 or 20 | BORNHOST: 4- or 16-byte IP (16 when SYSFLAG has 0x10) + int32 port |
//! | 8 | STORETIMESTAMP |
//! | 8 or 20 | STOREHOST: 4- or 16-byte IP (16 when SYSFLAG has 0x20) + int32 port |
//! | 4 | RECONSUMETIMES |
//! | 8 | PREPARED TRANSACTION OFFSET |
//! | 4 + n | BODYLEN, BODY |
//! | 1 + t or 2 + t | TOPICLEN, TOPIC |
//! | 2 + p | PROPLEN (int16), PROPERTIES |
//!
//! The decoder is strict and bounded: TOTALSIZE must cover at least the fixed part and
//! at most the bytes given; every inner length is checked against what remains of *its*
//! record before anything is sliced or allocated; negative lengths, bad ports, unknown
//! magic codes, invalid UTF-8 and a TOTALSIZE that disagrees with the fields are typed
//! errors. It never panics.
//!
//! A compressed body (SYSFLAG bit 0x1) is returned as stored: this crate has no
//! compressor; the caller decompresses.

use std::iter::FusedIterator;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes};

use super::Message;
use super::properties::{
    MAX_PROPERTIES_LEN, PropertyError, decode_properties, encode_properties, keys,
};
use super::sys_flag::SysFlag;
use crate::id::offset::OffsetMessageId;

/// Magic code of the V1 record format (1-byte topic length): `0xDAA320A7`.
pub const MAGIC_V1: u32 = 0xDAA3_20A7;
/// Magic code of the V2 record format (2-byte topic length): `0xDAA320AB`.
pub const MAGIC_V2: u32 = 0xDAA3_20AB;

/// The smallest possible record: V1, IPv4 hosts, empty body, topic and properties.
pub const MIN_STORED_SIZE: usize = 91;

/// The longest topic [`encode_stored`] writes with [`MAGIC_V1`]. Java reads the V1 topic
/// length as a *signed* byte, and the broker switches to V2 above `Byte.MAX_VALUE`.
pub const MAX_V1_TOPIC_LEN: usize = 127;

/// A message as stored by the broker: the message plus its storage metadata
/// (Java `MessageExt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    /// Topic, body (as stored, possibly compressed), user flag and properties.
    pub message: Message,
    /// Queue id.
    pub queue_id: i32,
    /// Offset in the consume queue.
    pub queue_offset: i64,
    /// Physical offset in the commit log (PHYSICALOFFSET).
    pub commit_log_offset: i64,
    /// The sysFlag. Its bits 0x10 / 0x20 say whether the born / store host is IPv6.
    pub sys_flag: SysFlag,
    /// When the producer created the message, epoch ms.
    pub born_timestamp: i64,
    /// The producer's address.
    pub born_host: SocketAddr,
    /// When the broker stored the message, epoch ms.
    pub store_timestamp: i64,
    /// The broker's address.
    pub store_host: SocketAddr,
    /// How often the message was consumed again.
    pub reconsume_times: i32,
    /// The prepared (half) message's offset for transactional messages.
    pub prepared_transaction_offset: i64,
    /// CRC of the body, as stored.
    pub body_crc: i32,
    /// TOTALSIZE of the record. [`encode_stored`] ignores it and writes the real size.
    pub store_size: i32,
}

impl MessageExt {
    /// The client message id: the `UNIQ_KEY` property, if present.
    pub fn msg_id(&self) -> Option<&str> {
        self.message.property(keys::UNIQ_KEY)
    }

    /// The offset message id computed from the store host and the commit-log offset.
    pub fn offset_msg_id(&self) -> String {
        OffsetMessageId::new(self.store_host, self.commit_log_offset).encode()
    }
}

/// Why a stored message could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredMessageError {
    /// A fixed-size field runs past the end of the record (or of the buffer, for TOTALSIZE).
    #[error("stored message truncated: {field} needs {needed} bytes, {remaining} remain")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// TOTALSIZE is smaller than the smallest possible record (or negative).
    #[error("stored message TOTALSIZE {total_size} is smaller than the minimum {min}")]
    TotalSizeTooSmall {
        /// The TOTALSIZE field.
        total_size: i32,
        /// The minimum record size ([`MIN_STORED_SIZE`]).
        min: usize,
    },
    /// TOTALSIZE is larger than the bytes available.
    #[error("stored message TOTALSIZE {total_size} exceeds the {available} bytes available")]
    TotalSizeExceedsBuffer {
        /// The TOTALSIZE field.
        total_size: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// The magic code is neither V1 nor V2.
    #[error(
        "stored message has unknown magic code {magic:#010X} (expected 0xDAA320A7 or 0xDAA320AB)"
    )]
    BadMagic {
        /// The magic code read.
        magic: u32,
    },
    /// A length field is negative.
    #[error("stored message {field} is negative: {len}")]
    NegativeLength {
        /// The length field.
        field: &'static str,
        /// Its value.
        len: i32,
    },
    /// A length field is larger than what remains of the record.
    #[error("stored message {field} is {len} bytes but only {remaining} remain in the record")]
    LengthExceedsRecord {
        /// The length field.
        field: &'static str,
        /// Its value.
        len: usize,
        /// Bytes left in the record.
        remaining: usize,
    },
    /// A host's port field is outside `0..=65535`.
    #[error("stored message {field} has port {port}, outside 0..=65535")]
    BadPort {
        /// BORNHOST or STOREHOST.
        field: &'static str,
        /// The port field.
        port: i32,
    },
    /// The topic or the properties are not valid UTF-8.
    #[error("stored message {field} is not valid UTF-8 (valid up to byte {valid_up_to})")]
    InvalidUtf8 {
        /// TOPIC or PROPERTIES.
        field: &'static str,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// TOTALSIZE disagrees with where the fields end.
    #[error("stored message TOTALSIZE is {total_size} but its fields end at byte {decoded}")]
    SizeMismatch {
        /// The TOTALSIZE field.
        total_size: usize,
        /// Where the last field ends.
        decoded: usize,
    },
    /// Encoding: a part is too long for its length field.
    #[error("cannot encode stored message: {field} is {len} bytes, more than the maximum {max}")]
    TooLarge {
        /// The part (BODY, TOPIC, PROPERTIES or TOTALSIZE).
        field: &'static str,
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Encoding: a property cannot be written.
    #[error("cannot encode stored message: {0}")]
    Property(#[from] PropertyError),
}

type Result<T> = std::result::Result<T, StoredMessageError>;

/// A bounds-checked big-endian reader over one record.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        let truncated = || StoredMessageError::Truncated {
            field,
            needed: n,
            remaining: self.remaining(),
        };
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let s = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, field)?;
        s.try_into().map_err(|_| StoredMessageError::Truncated {
            field,
            needed: N,
            remaining: s.len(),
        })
    }

    fn i16(&mut self, field: &'static str) -> Result<i16> {
        self.array(field).map(i16::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64> {
        self.array(field).map(i64::from_be_bytes)
    }

    fn host(&mut self, v6: bool, field: &'static str) -> Result<SocketAddr> {
        let ip: IpAddr = if v6 {
            Ipv6Addr::from(self.array::<16>(field)?).into()
        } else {
            Ipv4Addr::from(self.array::<4>(field)?).into()
        };
        let port = self.i32(field)?;
        let port = u16::try_from(port).map_err(|_| StoredMessageError::BadPort { field, port })?;
        Ok(SocketAddr::new(ip, port))
    }

    /// A variable part whose length was read from the wire.
    fn sized(&mut self, len: i32, field: &'static str) -> Result<&'a [u8]> {
        let Ok(n) = usize::try_from(len) else {
            return Err(StoredMessageError::NegativeLength { field, len });
        };
        let remaining = self.remaining();
        if n > remaining {
            return Err(StoredMessageError::LengthExceedsRecord {
                field,
                len: n,
                remaining,
            });
        }
        self.take(n, field)
    }
}

fn utf8<'a>(b: &'a [u8], field: &'static str) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|e| StoredMessageError::InvalidUtf8 {
        field,
        valid_up_to: e.valid_up_to(),
    })
}

/// Decodes the record at the start of `buf`, returning it and its length (TOTALSIZE).
/// Bytes after the record are not looked at.
pub fn decode_stored(buf: &[u8]) -> Result<(MessageExt, usize)> {
    let mut head = Reader { buf, pos: 0 };
    let store_size = head.i32("TOTALSIZE")?;
    let total = usize::try_from(store_size)
        .ok()
        .filter(|&n| n >= MIN_STORED_SIZE)
        .ok_or(StoredMessageError::TotalSizeTooSmall {
            total_size: store_size,
            min: MIN_STORED_SIZE,
        })?;
    let entry = buf
        .get(..total)
        .ok_or(StoredMessageError::TotalSizeExceedsBuffer {
            total_size: total,
            available: buf.len(),
        })?;
    let mut r = Reader { buf: entry, pos: 4 };

    let magic = u32::from_be_bytes(r.array("MAGICCODE")?);
    if magic != MAGIC_V1 && magic != MAGIC_V2 {
        return Err(StoredMessageError::BadMagic { magic });
    }
    let body_crc = r.i32("BODYCRC")?;
    let queue_id = r.i32("QUEUEID")?;
    let flag = r.i32("FLAG")?;
    let queue_offset = r.i64("QUEUEOFFSET")?;
    let commit_log_offset = r.i64("PHYSICALOFFSET")?;
    let sys_flag = SysFlag(r.i32("SYSFLAG")?);
    let born_timestamp = r.i64("BORNTIMESTAMP")?;
    let born_host = r.host(sys_flag.contains(SysFlag::BORNHOST_V6), "BORNHOST")?;
    let store_timestamp = r.i64("STORETIMESTAMP")?;
    let store_host = r.host(sys_flag.contains(SysFlag::STOREHOST_V6), "STOREHOST")?;
    let reconsume_times = r.i32("RECONSUMETIMES")?;
    let prepared_transaction_offset = r.i64("PREPAREDTRANSACTIONOFFSET")?;

    let body_len = r.i32("BODYLEN")?;
    let body = r.sized(body_len, "BODY")?;
    let topic_len = if magic == MAGIC_V1 {
        // Read unsigned: Java's signed byte would reject 128..=255, never misread.
        let [len] = r.array::<1>("TOPICLEN")?;
        i32::from(len)
    } else {
        i32::from(r.i16("TOPICLEN")?)
    };
    let topic = utf8(r.sized(topic_len, "TOPIC")?, "TOPIC")?;
    let prop_len = r.i16("PROPLEN")?;
    let props = utf8(r.sized(i32::from(prop_len), "PROPERTIES")?, "PROPERTIES")?;
    if r.pos != total {
        return Err(StoredMessageError::SizeMismatch {
            total_size: total,
            decoded: r.pos,
        });
    }

    let message = Message::from_parts(
        topic,
        Bytes::copy_from_slice(body),
        flag,
        decode_properties(props),
    );
    let ext = MessageExt {
        message,
        queue_id,
        queue_offset,
        commit_log_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body_crc,
        store_size,
    };
    Ok((ext, total))
}

/// Decodes records back to back (a PULL_MESSAGE body). The iterator yields each
/// record, stops at the end of `buf` and stops after the first error.
pub fn decode_stored_all(buf: &[u8]) -> StoredMessages<'_> {
    StoredMessages {
        buf,
        pos: 0,
        failed: false,
    }
}

/// Iterator over the records in a buffer; see [`decode_stored_all`].
#[derive(Debug, Clone)]
pub struct StoredMessages<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl StoredMessages<'_> {
    /// Bytes consumed by the records decoded so far.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl Iterator for StoredMessages<'_> {
    type Item = Result<MessageExt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        match decode_stored(rest) {
            Ok((msg, used)) => {
                self.pos = self.pos.saturating_add(used);
                Some(Ok(msg))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for StoredMessages<'_> {}

fn host_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() { 8 } else { 20 }
}

fn put_host(out: &mut impl BufMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
    out.put_i32(i32::from(addr.port()));
}

fn len_i32(field: &'static str, len: usize, max: usize) -> Result<i32> {
    if len > max {
        return Err(StoredMessageError::TooLarge { field, len, max });
    }
    i32::try_from(len).map_err(|_| StoredMessageError::TooLarge { field, len, max })
}

/// Appends `msg` in the commit-log layout to `out` and returns the record length.
///
/// The magic is [`MAGIC_V1`] unless the topic is longer than [`MAX_V1_TOPIC_LEN`] bytes,
/// then [`MAGIC_V2`]. The written TOTALSIZE is the real record length (`store_size` is
/// ignored), and the SYSFLAG's bits 0x10 / 0x20 are set or cleared to match the
/// address families of `born_host` / `store_host`. Properties are written in the 5.2+
/// form (trailing `0x02`). Fails, writing nothing, when a part is too long for its
/// length field or a property cannot be encoded.
pub fn encode_stored(msg: &MessageExt, out: &mut impl BufMut) -> Result<usize> {
    let mut props = String::new();
    encode_properties(msg.message.properties(), &mut props)?;
    let topic = msg.message.topic().as_bytes();
    let body = msg.message.body();
    let prop_len = len_i32("PROPERTIES", props.len(), MAX_PROPERTIES_LEN)?;
    let topic_len = len_i32("TOPIC", topic.len(), i16::MAX as usize)?;
    let body_len = len_i32("BODY", body.len(), i32::MAX as usize)?;
    let v2 = topic.len() > MAX_V1_TOPIC_LEN;

    // Every term is bounded (body ≤ 2^31, topic and properties ≤ 2^15), so this cannot
    // overflow a usize; it is still checked against i32 below.
    let total = (MIN_STORED_SIZE - 16)
        .saturating_add(host_len(&msg.born_host))
        .saturating_add(host_len(&msg.store_host))
        .saturating_add(usize::from(v2))
        .saturating_add(body.len())
        .saturating_add(topic.len())
        .saturating_add(props.len());
    let total_i32 = len_i32("TOTALSIZE", total, i32::MAX as usize)?;

    let mut sys_flag = msg
        .sys_flag
        .without(SysFlag::BORNHOST_V6 | SysFlag::STOREHOST_V6);
    if msg.born_host.is_ipv6() {
        sys_flag = sys_flag.with(SysFlag::BORNHOST_V6);
    }
    if msg.store_host.is_ipv6() {
        sys_flag = sys_flag.with(SysFlag::STOREHOST_V6);
    }

    out.put_i32(total_i32);
    out.put_u32(if v2 { MAGIC_V2 } else { MAGIC_V1 });
    out.put_i32(msg.body_crc);
    out.put_i32(msg.queue_id);
    out.put_i32(msg.message.flag());
    out.put_i64(msg.queue_offset);
    out.put_i64(msg.commit_log_offset);
    out.put_i32(sys_flag.0);
    out.put_i64(msg.born_timestamp);
    put_host(out, &msg.born_host);
    out.put_i64(msg.store_timestamp);
    put_host(out, &msg.store_host);
    out.put_i32(msg.reconsume_times);
    out.put_i64(msg.prepared_transaction_offset);
    out.put_i32(body_len);
    out.put_slice(body);
    if v2 {
        out.put_i16(i16::try_from(topic_len).unwrap_or(i16::MAX));
    } else {
        out.put_u8(u8::try_from(topic_len).unwrap_or(u8::MAX));
    }
    out.put_slice(topic);
    out.put_i16(i16::try_from(prop_len).unwrap_or(i16::MAX));
    out.put_slice(props.as_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests;
