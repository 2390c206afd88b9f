//! The body of SEND_BATCH_MESSAGE (320): concatenated message entries (protocol.md
//! section 6.1).
//!
//! Each entry is `TOTALSIZE i32 | MAGIC i32 = 0 | BODYCRC i32 = 0 | FLAG i32 |
//! BODYLEN i32 | BODY | PROPLEN i16 | PROPERTIES`, big-endian, where TOTALSIZE counts the
//! whole entry including itself. Batch bodies are never compressed, and the topic is
//! not part of an entry (it travels in the request header).
//!
//! Unlike Java, which casts PROPLEN with `(short)` and silently overflows, the encoder
//! refuses properties longer than 32767 bytes.

use bytes::{BufMut, Bytes, BytesMut};

use super::Message;
use super::properties::{MAX_PROPERTIES_LEN, PropertyError, decode_properties, encode_properties};

/// The fixed part of an entry: five `i32` fields and the `i16` PROPLEN.
pub const ENTRY_OVERHEAD: usize = 4 * 5 + 2;

/// Why a batch could not be encoded or decoded. `index` is the message's position in
/// the batch, `offset` the entry's first byte in the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A property of a message cannot be encoded.
    #[error("batch message {index}: {source}")]
    Property {
        /// The message's position.
        index: usize,
        /// What is wrong with the property.
        #[source]
        source: PropertyError,
    },
    /// The encoded properties do not fit the int16 PROPLEN.
    #[error(
        "batch message {index}: properties are {len} bytes, more than the 32767 an int16 PROPLEN holds"
    )]
    PropertiesTooLong {
        /// The message's position.
        index: usize,
        /// The encoded length in bytes.
        len: usize,
    },
    /// The entry does not fit the int32 TOTALSIZE.
    #[error(
        "batch message {index}: the entry would be {len} bytes, more than an int32 TOTALSIZE holds"
    )]
    EntryTooLong {
        /// The message's position.
        index: usize,
        /// The entry's length in bytes (saturated).
        len: usize,
    },
    /// The body ends inside an entry.
    #[error(
        "batch message {index} at byte {offset}: {field} needs {needed} bytes but only {remaining} remain"
    )]
    Truncated {
        /// The message's position.
        index: usize,
        /// The entry's first byte.
        offset: usize,
        /// The field being read.
        field: &'static str,
        /// The bytes the field needs.
        needed: usize,
        /// The bytes left (in the entry, or in the body for TOTALSIZE).
        remaining: usize,
    },
    /// A length field is negative.
    #[error("batch message {index} at byte {offset}: {field} is negative ({value})")]
    NegativeLength {
        /// The message's position.
        index: usize,
        /// The entry's first byte.
        offset: usize,
        /// The field.
        field: &'static str,
        /// The value read.
        value: i32,
    },
    /// TOTALSIZE does not match the fields it covers.
    #[error(
        "batch message {index} at byte {offset}: TOTALSIZE is {total_size} but the fields take {actual} bytes"
    )]
    SizeMismatch {
        /// The message's position.
        index: usize,
        /// The entry's first byte.
        offset: usize,
        /// TOTALSIZE as read.
        total_size: i32,
        /// `22 + BODYLEN + PROPLEN`.
        actual: usize,
    },
    /// The properties are not UTF-8.
    #[error("batch message {index} at byte {offset}: the properties are not valid UTF-8")]
    InvalidUtf8 {
        /// The message's position.
        index: usize,
        /// The entry's first byte.
        offset: usize,
    },
}

/// Appends the batch encoding of `messages` to `out` (the topic of each message is not
/// encoded and not checked here). On error `out` is left as it was.
///
/// Batch-level rules (same topic, no delay, every message with its own `UNIQ_KEY`,
/// total size ≤ 4 MiB) are the caller's; see protocol.md section 6.3.
pub fn encode_batch(messages: &[Message], out: &mut BytesMut) -> Result<(), BatchError> {
    let start = out.len();
    let mut props = String::new();
    for (index, msg) in messages.iter().enumerate() {
        if let Err(e) = encode_entry(index, msg, &mut props, out) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}

fn encode_entry(
    index: usize,
    msg: &Message,
    props: &mut String,
    out: &mut BytesMut,
) -> Result<(), BatchError> {
    props.clear();
    encode_properties(msg.properties(), props)
        .map_err(|source| BatchError::Property { index, source })?;
    let prop_len = props.len();
    let prop_len_i16 = i16::try_from(prop_len)
        .ok()
        .filter(|_| prop_len <= MAX_PROPERTIES_LEN)
        .ok_or(BatchError::PropertiesTooLong {
            index,
            len: prop_len,
        })?;
    let body = msg.body();
    let len = ENTRY_OVERHEAD
        .saturating_add(body.len())
        .saturating_add(prop_len);
    let too_long = BatchError::EntryTooLong { index, len };
    let total = i32::try_from(len).map_err(|_| too_long.clone())?;
    let body_len = i32::try_from(body.len()).map_err(|_| too_long)?;
    out.reserve(len);
    out.put_i32(total);
    out.put_i32(0); // MAGICCODE
    out.put_i32(0); // BODYCRC
    out.put_i32(msg.flag());
    out.put_i32(body_len);
    out.put_slice(body);
    out.put_i16(prop_len_i16);
    out.put_slice(props.as_bytes());
    Ok(())
}

/// A bounds-checked reader over one entry.
struct Reader<'a> {
    buf: &'a [u8],
    index: usize,
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], BatchError> {
        match self.buf.split_at_checked(n) {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(head)
            }
            None => Err(BatchError::Truncated {
                index: self.index,
                offset: self.offset,
                field,
                needed: n,
                remaining: self.buf.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], BatchError> {
        match self.buf.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(*head)
            }
            None => Err(BatchError::Truncated {
                index: self.index,
                offset: self.offset,
                field,
                needed: N,
                remaining: self.buf.len(),
            }),
        }
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, BatchError> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, BatchError> {
        self.array(field).map(i16::from_be_bytes)
    }

    fn len(&self, value: i32, field: &'static str) -> Result<usize, BatchError> {
        usize::try_from(value).map_err(|_| BatchError::NegativeLength {
            index: self.index,
            offset: self.offset,
            field,
            value,
        })
    }
}

/// Decodes a batch body into its messages (for test brokers and tools).
///
/// The messages have an empty topic (the topic is in the request header; set it with
/// [`Message::set_topic`]), and their properties are parsed leniently with
/// [`decode_properties`]. Every length is checked against the bytes that remain before
/// anything is copied; TOTALSIZE must equal `22 + BODYLEN + PROPLEN`. MAGICCODE and
/// BODYCRC are ignored, as the broker does. Never panics.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Message>, BatchError> {
    let mut messages = Vec::new();
    let mut offset = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let index = messages.len();
        let mut head = Reader {
            buf: rest,
            index,
            offset,
        };
        let total_size = head.i32("TOTALSIZE")?;
        let entry_len = head.len(total_size, "TOTALSIZE")?;
        let Some((entry, tail)) = rest.split_at_checked(entry_len) else {
            return Err(BatchError::Truncated {
                index,
                offset,
                field: "entry",
                needed: entry_len,
                remaining: rest.len(),
            });
        };
        let mut r = Reader {
            buf: entry,
            index,
            offset,
        };
        r.take(12, "TOTALSIZE, MAGICCODE and BODYCRC")?;
        let flag = r.i32("FLAG")?;
        let body_len = r.i32("BODYLEN")?;
        let body_len = r.len(body_len, "BODYLEN")?;
        let msg_body = r.take(body_len, "BODY")?;
        let prop_len = r.i16("PROPLEN")?;
        let prop_len = r.len(i32::from(prop_len), "PROPLEN")?;
        let props = r.take(prop_len, "PROPERTIES")?;
        if !r.buf.is_empty() {
            return Err(BatchError::SizeMismatch {
                index,
                offset,
                total_size,
                actual: ENTRY_OVERHEAD + body_len + prop_len,
            });
        }
        let props =
            std::str::from_utf8(props).map_err(|_| BatchError::InvalidUtf8 { index, offset })?;
        messages.push(Message::from_parts(
            String::new(),
            Bytes::copy_from_slice(msg_body),
            flag,
            decode_properties(props),
        ));
        offset += entry_len;
        rest = tail;
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::keys;
    use crate::message::properties::Properties;
    use proptest::prelude::*;

    const GOLDEN: &str = "
        00 00 00 30 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 6D 31 00 18
        57 41 49 54 01 74 72 75 65 02 55 4E 49 51 5F 4B 45 59 01 41 41 41 41 02
        00 00 00 30 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 6D 32 00 18
        57 41 49 54 01 74 72 75 65 02 55 4E 49 51 5F 4B 45 59 01 42 42 42 42 02";

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn golden_messages() -> Vec<Message> {
        [("m1", "AAAA"), ("m2", "BBBB")]
            .into_iter()
            .map(|(body, id)| {
                let mut m = Message::new("TopicTest", body);
                m.set_uniq_key(id).unwrap();
                m
            })
            .collect()
    }

    #[test]
    fn golden_two_messages() {
        let mut out = BytesMut::new();
        encode_batch(&golden_messages(), &mut out).unwrap();
        assert_eq!(out.len(), 96);
        assert_eq!(&out[..], &hex(GOLDEN)[..]);

        let decoded = decode_batch(&out).unwrap();
        assert_eq!(decoded.len(), 2);
        for (mut d, m) in decoded.into_iter().zip(golden_messages()) {
            assert_eq!(d.topic(), "");
            d.set_topic("TopicTest");
            assert_eq!(d, m);
            assert_eq!(
                d.properties().iter().next(),
                Some((keys::WAIT, "true")),
                "order kept"
            );
        }
    }

    #[test]
    fn empty_batch() {
        let mut out = BytesMut::new();
        encode_batch(&[], &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(decode_batch(&[]).unwrap(), Vec::new());
    }

    #[test]
    fn properties_length_limit() {
        let entry_len = |n: usize| {
            // "k" 0x01 value 0x02 → 3 + value bytes
            let props: Properties = [("k", "v".repeat(n - 3))].into_iter().collect();
            Message::from_parts("T", "b", 0, props)
        };
        let mut out = BytesMut::from(&b"xy"[..]);
        let ok = entry_len(MAX_PROPERTIES_LEN);
        encode_batch(std::slice::from_ref(&ok), &mut out).unwrap();
        assert_eq!(out.len(), 2 + ENTRY_OVERHEAD + 1 + MAX_PROPERTIES_LEN);
        let mut decoded = decode_batch(&out[2..]).unwrap();
        decoded[0].set_topic("T");
        assert_eq!(decoded, std::slice::from_ref(&ok));

        let mut out = BytesMut::from(&b"xy"[..]);
        let err = encode_batch(&[ok, entry_len(MAX_PROPERTIES_LEN + 1)], &mut out).unwrap_err();
        assert_eq!(
            err,
            BatchError::PropertiesTooLong {
                index: 1,
                len: 32768
            }
        );
        assert_eq!(&out[..], b"xy", "nothing partial");
    }

    #[test]
    fn bad_property_names_the_message() {
        let good = Message::new("T", "a");
        let bad = Message::from_parts("T", "b", 0, [("K", "v\u{1}")].into_iter().collect());
        let mut out = BytesMut::new();
        let err = encode_batch(&[good, bad], &mut out).unwrap_err();
        assert_eq!(
            err,
            BatchError::Property {
                index: 1,
                source: PropertyError::SeparatorInValue { key: "K".into() }
            }
        );
        assert!(err.to_string().starts_with("batch message 1: "), "{err}");
        assert!(out.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = hex(GOLDEN);
        for cut in 1..bytes.len() {
            let r = decode_batch(&bytes[..cut]);
            if cut == 48 {
                assert_eq!(r.unwrap().len(), 1);
            } else {
                assert!(
                    matches!(r, Err(BatchError::Truncated { .. })),
                    "{cut}: {r:?}"
                );
            }
        }
        match decode_batch(&bytes[..60]) {
            Err(BatchError::Truncated { index, offset, .. }) => {
                assert_eq!((index, offset), (1, 48))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_entries() {
        let good = hex(GOLDEN);
        // Negative TOTALSIZE.
        let mut b = good.clone();
        b[0] = 0x80;
        assert!(matches!(
            decode_batch(&b),
            Err(BatchError::NegativeLength {
                field: "TOTALSIZE",
                ..
            })
        ));
        // TOTALSIZE smaller than its fields: body runs past the entry.
        let mut b = good.clone();
        b[3] = 0x20;
        assert!(matches!(
            decode_batch(&b),
            Err(BatchError::Truncated { .. })
        ));
        // Negative BODYLEN.
        let mut b = good.clone();
        b[16] = 0xFF;
        assert!(matches!(
            decode_batch(&b),
            Err(BatchError::NegativeLength {
                field: "BODYLEN",
                ..
            })
        ));
        // Negative PROPLEN (what Java's (short) overflow produces).
        let mut b = good.clone();
        b[22] = 0x80;
        assert!(matches!(
            decode_batch(&b),
            Err(BatchError::NegativeLength {
                field: "PROPLEN",
                ..
            })
        ));
        // TOTALSIZE larger than the fields: the gap is an error, not skipped.
        let mut b = good[..48].to_vec();
        b[3] = 0x31;
        b.push(0);
        assert_eq!(
            decode_batch(&b),
            Err(BatchError::SizeMismatch {
                index: 0,
                offset: 0,
                total_size: 0x31,
                actual: 48
            })
        );
        // Huge lengths are bounded by the input, not allocated.
        let mut b = good[..48].to_vec();
        b[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_batch(&b),
            Err(BatchError::Truncated { field: "BODY", .. })
        ));
        // Invalid UTF-8 in the properties.
        let mut b = good[..48].to_vec();
        b[24] = 0xFF;
        assert_eq!(
            decode_batch(&b),
            Err(BatchError::InvalidUtf8 {
                index: 0,
                offset: 0
            })
        );
    }

    fn message() -> impl Strategy<Value = Message> {
        let text = "[^\u{1}\u{2}]{1,10}";
        (
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<i32>(),
            proptest::collection::vec((text, text), 0..6),
        )
            .prop_map(|(body, flag, props)| {
                Message::from_parts(String::new(), body, flag, props.into_iter().collect())
            })
    }

    proptest! {
        #[test]
        fn round_trip(messages in proptest::collection::vec(message(), 0..6)) {
            let mut out = BytesMut::new();
            encode_batch(&messages, &mut out).unwrap();
            prop_assert_eq!(decode_batch(&out).unwrap(), messages);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_batch(&bytes);
        }

        #[test]
        fn decode_never_panics_near_valid(cut in 0usize..96, pos in 0usize..96, byte in any::<u8>()) {
            let mut b = hex(GOLDEN);
            b[pos] = byte;
            let _ = decode_batch(&b[..cut]);
            let _ = decode_batch(&b);
        }
    }
}
