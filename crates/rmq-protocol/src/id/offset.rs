//! The offset message id (`offsetMsgId`, the `msgId` of a send response; protocol.md
//! §5.2; Java `MessageDecoder.createMessageId` / `decodeMessageId`).
//!
//! Raw layout, big-endian, written as **uppercase** hex:
//!
//! | bytes | field |
//! |---|---|
//! | 4 or 16 | store host IP (the broker) |
//! | 4 | store host port (int32) |
//! | 8 | physical commit-log offset of the message (int64) |
//!
//! 32 hex characters for an IPv4 broker, 56 for IPv6. A transactional producer decodes
//! it to get the `commitLogOffset` for END_TRANSACTION. Batch send responses carry a
//! comma-joined list ([`decode_offset_id_list`]).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::{IdError, be_bytes, decode_id_hex, push_hex_upper, split_ip};

/// A decoded offset message id: where the message is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OffsetMessageId {
    /// The store host (broker) address.
    pub addr: SocketAddr,
    /// The physical commit-log offset of the message.
    pub offset: i64,
}

impl OffsetMessageId {
    /// An id for a message stored at `offset` by the broker at `addr`.
    pub fn new(addr: SocketAddr, offset: i64) -> Self {
        Self { addr, offset }
    }

    /// The id as uppercase hex: 32 characters for IPv4, 56 for IPv6.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(56);
        self.encode_into(&mut out);
        out
    }

    /// Appends the id to `out` as uppercase hex.
    pub fn encode_into(&self, out: &mut String) {
        match self.addr.ip() {
            IpAddr::V4(ip) => push_hex_upper(out, &ip.octets()),
            IpAddr::V6(ip) => push_hex_upper(out, &ip.octets()),
        }
        push_hex_upper(out, &u32::from(self.addr.port()).to_be_bytes());
        push_hex_upper(out, &self.offset.to_be_bytes());
    }

    /// Parses an id: 32 hex characters (either case) mean IPv4, 56 mean IPv6; any
    /// other length, a non-hex character or a port field above 65535 is an error.
    pub fn decode(id: &str) -> Result<Self, IdError> {
        let mut raw = [0u8; 28];
        let n = decode_id_hex(id, &mut raw)?;
        let (ip, rest) = split_ip(&raw, n);
        let port = u32::from_be_bytes(be_bytes(rest, 0));
        let offset = i64::from_be_bytes(be_bytes(rest, 4));
        let port = u16::try_from(port).map_err(|_| IdError::PortOutOfRange {
            id: id.to_owned(),
            port,
        })?;
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            offset,
        })
    }
}

impl fmt::Display for OffsetMessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for OffsetMessageId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::decode(s)
    }
}

/// Decodes a comma-joined list of offset ids, as in the `msgId` of a batch send
/// response. Each element is trimmed of surrounding spaces; any bad element fails the
/// whole list. A single id (no comma) gives a list of one.
pub fn decode_offset_id_list(ids: &str) -> Result<Vec<OffsetMessageId>, IdError> {
    ids.split(',')
        .map(|id| OffsetMessageId::decode(id.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_vector() {
        let id = OffsetMessageId::new("192.168.0.1:10911".parse().unwrap(), 0x1234);
        assert_eq!(id.encode(), "C0A8000100002A9F0000000000001234");
        assert_eq!(id.to_string(), "C0A8000100002A9F0000000000001234");
        assert_eq!(OffsetMessageId::decode(&id.encode()), Ok(id));
    }

    #[test]
    fn real_capture() {
        let id: OffsetMessageId = "0A02037500002A9F0000000001EC18FC".parse().unwrap();
        assert_eq!(id.addr, "10.2.3.117:10911".parse::<SocketAddr>().unwrap());
        assert_eq!(id.offset, 32_250_108);
        assert_eq!(id.encode(), "0A02037500002A9F0000000001EC18FC");
        // Lowercase is accepted on input.
        assert_eq!(
            OffsetMessageId::decode("0a02037500002a9f0000000001ec18fc"),
            Ok(id)
        );
    }

    #[test]
    fn ipv6_is_56_chars() {
        let addr: SocketAddr = "[2400:dd02:1008:15::1]:10911".parse().unwrap();
        let id = OffsetMessageId::new(addr, i64::MAX);
        let s = id.encode();
        assert_eq!(s.len(), 56);
        assert_eq!(
            s,
            "2400DD0210080015000000000000000100002A9F7FFFFFFFFFFFFFFF"
        );
        assert_eq!(OffsetMessageId::decode(&s), Ok(id));
    }

    #[test]
    fn negative_offset_round_trips() {
        let id = OffsetMessageId::new("127.0.0.1:1".parse().unwrap(), -1);
        assert_eq!(id.encode(), "7F00000100000001FFFFFFFFFFFFFFFF");
        assert_eq!(OffsetMessageId::decode(&id.encode()), Ok(id));
    }

    #[test]
    fn rejects_bad_ids() {
        for bad in [
            "",
            "0A020375",
            "0A02037500002A9F0000000001EC18F",
            "0A02037500002A9F0000000001EC18FC0",
        ] {
            assert!(
                matches!(OffsetMessageId::decode(bad), Err(IdError::BadLength { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            OffsetMessageId::decode("0A02037500002A9F0000000001EC18F-"),
            Err(IdError::NotHex {
                index: 31,
                ch: '-',
                ..
            })
        ));
        assert!(matches!(
            OffsetMessageId::decode("0A020375FFFFFFFF0000000001EC18FC"),
            Err(IdError::PortOutOfRange {
                port: 0xFFFF_FFFF,
                ..
            })
        ));
        assert!(matches!(
            OffsetMessageId::decode("0A020375000100000000000001EC18FC"),
            Err(IdError::PortOutOfRange { port: 0x1_0000, .. })
        ));
    }

    #[test]
    fn comma_joined_list() {
        let list = decode_offset_id_list(
            "C0A8000100002A9F0000000000001234,0A02037500002A9F0000000001EC18FC",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].offset, 0x1234);
        assert_eq!(list[1].offset, 32_250_108);
        assert_eq!(
            decode_offset_id_list("C0A8000100002A9F0000000000001234")
                .unwrap()
                .len(),
            1
        );
        assert!(decode_offset_id_list("C0A8000100002A9F0000000000001234,").is_err());
        assert!(decode_offset_id_list("").is_err());
    }
}
