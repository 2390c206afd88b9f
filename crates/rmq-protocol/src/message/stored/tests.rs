//! Tests of the stored-message codec.

use super::*;
use proptest::prelude::*;

const UNIQ: &str = "C0A8000130391B6D358605F5E1000001";

/// Parts of a hand-built record; `raw` writes them field by field, independently of
/// `encode_stored`.
struct Raw {
    magic: u32,
    sys_flag: i32,
    born_ip: Vec<u8>,
    born_port: i32,
    store_ip: Vec<u8>,
    store_port: i32,
    body: Vec<u8>,
    topic: Vec<u8>,
    props: Vec<u8>,
}

impl Raw {
    fn v1() -> Self {
        Self {
            magic: MAGIC_V1,
            sys_flag: 0,
            born_ip: vec![192, 168, 0, 10],
            born_port: 54321,
            store_ip: vec![10, 2, 3, 117],
            store_port: 10911,
            body: b"hello".to_vec(),
            topic: b"TopicTest".to_vec(),
            props: format!("UNIQ_KEY\x01{UNIQ}\x02WAIT\x01true\x02").into_bytes(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let topic_len_size = if self.magic == MAGIC_V2 { 2 } else { 1 };
        let total = 4
            + 4
            + 4
            + 4
            + 4
            + 8
            + 8
            + 4
            + 8
            + self.born_ip.len()
            + 4
            + 8
            + self.store_ip.len()
            + 4
            + 4
            + 8
            + 4
            + self.body.len()
            + topic_len_size
            + self.topic.len()
            + 2
            + self.props.len();
        let mut b = Vec::new();
        b.extend_from_slice(&(total as i32).to_be_bytes());
        b.extend_from_slice(&self.magic.to_be_bytes());
        b.extend_from_slice(&0x1234_5678i32.to_be_bytes()); // BODYCRC
        b.extend_from_slice(&3i32.to_be_bytes()); // QUEUEID
        b.extend_from_slice(&7i32.to_be_bytes()); // FLAG
        b.extend_from_slice(&42i64.to_be_bytes()); // QUEUEOFFSET
        b.extend_from_slice(&32_250_108i64.to_be_bytes()); // PHYSICALOFFSET
        b.extend_from_slice(&self.sys_flag.to_be_bytes());
        b.extend_from_slice(&1_749_883_778_686i64.to_be_bytes()); // BORNTIMESTAMP
        b.extend_from_slice(&self.born_ip);
        b.extend_from_slice(&self.born_port.to_be_bytes());
        b.extend_from_slice(&1_749_883_778_690i64.to_be_bytes()); // STORETIMESTAMP
        b.extend_from_slice(&self.store_ip);
        b.extend_from_slice(&self.store_port.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes()); // RECONSUMETIMES
        b.extend_from_slice(&(-1i64).to_be_bytes()); // PREPARED TRANSACTION OFFSET
        b.extend_from_slice(&(self.body.len() as i32).to_be_bytes());
        b.extend_from_slice(&self.body);
        if self.magic == MAGIC_V2 {
            b.extend_from_slice(&(self.topic.len() as i16).to_be_bytes());
        } else {
            b.push(self.topic.len() as u8);
        }
        b.extend_from_slice(&self.topic);
        b.extend_from_slice(&(self.props.len() as i16).to_be_bytes());
        b.extend_from_slice(&self.props);
        assert_eq!(b.len(), total);
        b
    }
}

/// Offsets of the length fields in a V1 IPv4 record with the `Raw::v1` parts.
const BODYLEN_AT: usize = 84;
const TOPICLEN_AT: usize = 88 + 5;

fn encode(m: &MessageExt) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encode_stored(m, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

#[test]
fn hand_built_v1_ipv4_field_by_field() {
    let raw = Raw::v1().bytes();
    assert_eq!(raw.len(), MIN_STORED_SIZE + 5 + 9 + 52);
    let (m, used) = decode_stored(&raw).unwrap();
    assert_eq!(used, raw.len());
    assert_eq!(m.store_size as usize, raw.len());
    assert_eq!(m.body_crc, 0x1234_5678);
    assert_eq!(m.queue_id, 3);
    assert_eq!(m.message.flag(), 7);
    assert_eq!(m.queue_offset, 42);
    assert_eq!(m.commit_log_offset, 32_250_108);
    assert_eq!(m.sys_flag, SysFlag(0));
    assert_eq!(m.born_timestamp, 1_749_883_778_686);
    assert_eq!(m.born_host, "192.168.0.10:54321".parse().unwrap());
    assert_eq!(m.store_timestamp, 1_749_883_778_690);
    assert_eq!(m.store_host, "10.2.3.117:10911".parse().unwrap());
    assert_eq!(m.reconsume_times, 2);
    assert_eq!(m.prepared_transaction_offset, -1);
    assert_eq!(m.message.body().as_ref(), b"hello");
    assert_eq!(m.message.topic(), "TopicTest");
    assert_eq!(
        m.message.properties().iter().collect::<Vec<_>>(),
        [("UNIQ_KEY", UNIQ), ("WAIT", "true")]
    );
    assert_eq!(m.msg_id(), Some(UNIQ));
    // The real capture of protocol.md §5.2.
    assert_eq!(m.offset_msg_id(), "0A02037500002A9F0000000001EC18FC");
    // Re-encoding gives the same bytes.
    assert_eq!(encode(&m), raw);
}

#[test]
fn properties_without_trailing_separator_and_empty_parts() {
    let mut raw = Raw::v1();
    raw.props = b"TAGS\x01TagA\x02KEYS\x01k".to_vec(); // 4.9 form
    let (m, _) = decode_stored(&raw.bytes()).unwrap();
    assert_eq!(m.message.tags(), Some("TagA"));
    assert_eq!(m.msg_id(), None);

    let mut raw = Raw::v1();
    raw.body.clear();
    raw.topic.clear();
    raw.props.clear();
    let bytes = raw.bytes();
    assert_eq!(bytes.len(), MIN_STORED_SIZE);
    let (m, used) = decode_stored(&bytes).unwrap();
    assert_eq!(used, MIN_STORED_SIZE);
    assert!(m.message.body().is_empty() && m.message.properties().is_empty());
    assert_eq!(encode(&m), bytes);
}

#[test]
fn ipv6_hosts() {
    let v6: Ipv6Addr = "2400:dd02:1008:15::1".parse().unwrap();
    for (sys_flag, born_v6, store_v6) in
        [(0x10, true, false), (0x20, false, true), (0x30, true, true)]
    {
        let mut raw = Raw::v1();
        raw.sys_flag = sys_flag | 0x4;
        if born_v6 {
            raw.born_ip = v6.octets().to_vec();
        }
        if store_v6 {
            raw.store_ip = v6.octets().to_vec();
        }
        let bytes = raw.bytes();
        let (m, used) = decode_stored(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(m.born_host.is_ipv6(), born_v6);
        assert_eq!(m.store_host.is_ipv6(), store_v6);
        if store_v6 {
            assert_eq!(m.store_host, SocketAddr::new(v6.into(), 10911));
            assert_eq!(m.offset_msg_id().len(), 56);
        }
        assert_eq!(m.message.topic(), "TopicTest");
        assert_eq!(m.msg_id(), Some(UNIQ));
        assert_eq!(encode(&m), bytes);
    }
    // A flag that says IPv6 over IPv4 bytes misreads the rest: an error, no panic.
    let mut raw = Raw::v1();
    raw.sys_flag = 0x30;
    assert!(decode_stored(&raw.bytes()).is_err());
}

#[test]
fn v2_magic() {
    let mut raw = Raw::v1();
    raw.magic = MAGIC_V2;
    let bytes = raw.bytes();
    let (m, used) = decode_stored(&bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(m.message.topic(), "TopicTest");
    assert_eq!(m.msg_id(), Some(UNIQ));
    // Short topics are written as V1 again.
    assert_eq!(encode(&m)[4..8], MAGIC_V1.to_be_bytes());

    // Long topics: V2 from 128 bytes.
    for (len, magic) in [(127, MAGIC_V1), (128, MAGIC_V2), (300, MAGIC_V2)] {
        let mut raw = Raw::v1();
        raw.magic = magic;
        raw.topic = vec![b't'; len];
        let bytes = raw.bytes();
        let (m, _) = decode_stored(&bytes).unwrap();
        assert_eq!(m.message.topic().len(), len);
        assert_eq!(encode(&m), bytes, "topic length {len}");
    }
}

#[test]
fn every_truncation_errors() {
    let v6 = Ipv6Addr::LOCALHOST.octets().to_vec();
    let mut raws = vec![Raw::v1(), Raw::v1()];
    raws[1].magic = MAGIC_V2;
    raws[1].sys_flag = 0x30;
    raws[1].born_ip = v6.clone();
    raws[1].store_ip = v6;
    for raw in raws {
        let bytes = raw.bytes();
        for cut in 0..bytes.len() {
            let err = decode_stored(&bytes[..cut]).unwrap_err();
            if cut < 4 {
                assert!(
                    matches!(
                        err,
                        StoredMessageError::Truncated {
                            field: "TOTALSIZE",
                            ..
                        }
                    ),
                    "{err}"
                );
            } else {
                assert_eq!(
                    err,
                    StoredMessageError::TotalSizeExceedsBuffer {
                        total_size: bytes.len(),
                        available: cut
                    }
                );
            }
            assert_eq!(
                decode_stored_all(&bytes[..cut])
                    .filter(Result::is_ok)
                    .count(),
                0
            );
        }
        // The same cuts with TOTALSIZE fixed up to the shorter length: the inner
        // checks must catch every one of them.
        for cut in MIN_STORED_SIZE..bytes.len() {
            let mut short = bytes[..cut].to_vec();
            short[..4].copy_from_slice(&(cut as i32).to_be_bytes());
            assert!(decode_stored(&short).is_err(), "cut {cut}");
        }
    }
}

#[test]
fn total_size_checks() {
    let bytes = Raw::v1().bytes();
    let mut big = bytes.clone();
    big[..4].copy_from_slice(&(bytes.len() as i32 + 1).to_be_bytes());
    assert_eq!(
        decode_stored(&big).unwrap_err(),
        StoredMessageError::TotalSizeExceedsBuffer {
            total_size: bytes.len() + 1,
            available: bytes.len()
        }
    );
    let mut huge = bytes.clone();
    huge[..4].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        decode_stored(&huge),
        Err(StoredMessageError::TotalSizeExceedsBuffer { .. })
    ));
    for bad in [-1, i32::MIN, 0, 90] {
        let mut b = bytes.clone();
        b[..4].copy_from_slice(&bad.to_be_bytes());
        assert_eq!(
            decode_stored(&b).unwrap_err(),
            StoredMessageError::TotalSizeTooSmall {
                total_size: bad,
                min: MIN_STORED_SIZE
            }
        );
    }
    // Slack inside the record (TOTALSIZE larger than the fields) is a mismatch.
    let mut slack = bytes.clone();
    slack.extend_from_slice(&[0, 0]);
    slack[..4].copy_from_slice(&(bytes.len() as i32 + 2).to_be_bytes());
    assert_eq!(
        decode_stored(&slack).unwrap_err(),
        StoredMessageError::SizeMismatch {
            total_size: bytes.len() + 2,
            decoded: bytes.len()
        }
    );
    // Bytes after the record are not looked at.
    let mut after = bytes.clone();
    after.extend_from_slice(b"garbage");
    assert_eq!(decode_stored(&after).unwrap().1, bytes.len());
}

#[test]
fn bad_magic_and_ports() {
    let bytes = Raw::v1().bytes();
    let mut b = bytes.clone();
    b[4..8].copy_from_slice(&0xCBD4_3194u32.to_be_bytes()); // commit-log blank magic
    let err = decode_stored(&b).unwrap_err();
    assert_eq!(err, StoredMessageError::BadMagic { magic: 0xCBD4_3194 });
    assert!(err.to_string().contains("0xCBD43194"), "{err}");

    for port in [-1, 65_536] {
        let mut raw = Raw::v1();
        raw.store_port = port;
        assert_eq!(
            decode_stored(&raw.bytes()).unwrap_err(),
            StoredMessageError::BadPort {
                field: "STOREHOST",
                port
            }
        );
    }
    let mut raw = Raw::v1();
    raw.born_port = i32::MIN;
    assert!(matches!(
        decode_stored(&raw.bytes()),
        Err(StoredMessageError::BadPort {
            field: "BORNHOST",
            ..
        })
    ));
}

#[test]
fn inner_length_checks() {
    let bytes = Raw::v1().bytes();
    let remaining_at_body = bytes.len() - BODYLEN_AT - 4;

    // A body length larger than the record.
    let mut b = bytes.clone();
    b[BODYLEN_AT..BODYLEN_AT + 4].copy_from_slice(&(remaining_at_body as i32 + 1).to_be_bytes());
    assert_eq!(
        decode_stored(&b).unwrap_err(),
        StoredMessageError::LengthExceedsRecord {
            field: "BODY",
            len: remaining_at_body + 1,
            remaining: remaining_at_body
        }
    );
    // Even when the buffer holds more bytes after the record.
    b.extend_from_slice(&[0; 64]);
    assert!(matches!(
        decode_stored(&b),
        Err(StoredMessageError::LengthExceedsRecord { field: "BODY", .. })
    ));
    for len in [i32::MAX, -1, i32::MIN] {
        let mut b = bytes.clone();
        b[BODYLEN_AT..BODYLEN_AT + 4].copy_from_slice(&len.to_be_bytes());
        let err = decode_stored(&b).unwrap_err();
        if len < 0 {
            assert_eq!(
                err,
                StoredMessageError::NegativeLength { field: "BODY", len }
            );
        } else {
            assert!(
                matches!(err, StoredMessageError::LengthExceedsRecord { .. }),
                "{err}"
            );
        }
    }

    // A topic length larger than the record.
    let mut b = bytes.clone();
    b[TOPICLEN_AT] = 255;
    assert!(matches!(
        decode_stored(&b),
        Err(StoredMessageError::LengthExceedsRecord {
            field: "TOPIC",
            len: 255,
            ..
        })
    ));

    // A negative V2 topic length.
    let mut raw = Raw::v1();
    raw.magic = MAGIC_V2;
    let mut b = raw.bytes();
    b[TOPICLEN_AT..TOPICLEN_AT + 2].copy_from_slice(&(-2i16).to_be_bytes());
    assert_eq!(
        decode_stored(&b).unwrap_err(),
        StoredMessageError::NegativeLength {
            field: "TOPIC",
            len: -2
        }
    );

    // Property lengths: negative and too long.
    let prop_len_at = TOPICLEN_AT + 1 + 9;
    let mut b = bytes.clone();
    b[prop_len_at..prop_len_at + 2].copy_from_slice(&(-1i16).to_be_bytes());
    assert_eq!(
        decode_stored(&b).unwrap_err(),
        StoredMessageError::NegativeLength {
            field: "PROPERTIES",
            len: -1
        }
    );
    let mut b = bytes.clone();
    b[prop_len_at..prop_len_at + 2].copy_from_slice(&i16::MAX.to_be_bytes());
    assert!(matches!(
        decode_stored(&b),
        Err(StoredMessageError::LengthExceedsRecord {
            field: "PROPERTIES",
            ..
        })
    ));
}

#[test]
fn invalid_utf8() {
    let mut raw = Raw::v1();
    raw.props = b"TAGS\x01\xFF\xFE\x02".to_vec();
    assert_eq!(
        decode_stored(&raw.bytes()).unwrap_err(),
        StoredMessageError::InvalidUtf8 {
            field: "PROPERTIES",
            valid_up_to: 5
        }
    );
    let mut raw = Raw::v1();
    raw.topic = b"To\xC3".to_vec();
    assert_eq!(
        decode_stored(&raw.bytes()).unwrap_err(),
        StoredMessageError::InvalidUtf8 {
            field: "TOPIC",
            valid_up_to: 2
        }
    );
}

#[test]
fn decode_all_stops_after_first_error() {
    let a = Raw::v1().bytes();
    let mut raw = Raw::v1();
    raw.body = b"second".to_vec();
    let b = raw.bytes();
    let mut buf = a.clone();
    buf.extend_from_slice(&b);

    let mut it = decode_stored_all(&buf);
    assert_eq!(
        it.next().unwrap().unwrap().message.body().as_ref(),
        b"hello"
    );
    assert_eq!(it.offset(), a.len());
    assert_eq!(
        it.next().unwrap().unwrap().message.body().as_ref(),
        b"second"
    );
    assert!(it.next().is_none());
    assert_eq!(it.offset(), buf.len());

    buf.extend_from_slice(&[0xFF; 10]);
    buf.extend_from_slice(&a);
    let results: Vec<_> = decode_stored_all(&buf).collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(matches!(
        results[2],
        Err(StoredMessageError::TotalSizeTooSmall { .. })
    ));

    assert_eq!(decode_stored_all(&[]).count(), 0);
}

#[test]
fn encode_errors() {
    let (mut m, _) = decode_stored(&Raw::v1().bytes()).unwrap();
    let mut props = m.message.properties().clone();
    props.insert("bad", "a\u{1}b");
    m.message = Message::from_parts("TopicTest", "x", 0, props);
    let mut out = Vec::new();
    assert!(matches!(
        encode_stored(&m, &mut out),
        Err(StoredMessageError::Property(
            PropertyError::SeparatorInValue { .. }
        ))
    ));
    assert!(out.is_empty());

    m.message = Message::from_parts("t".repeat(32_768), "x", 0, Default::default());
    assert_eq!(
        encode_stored(&m, &mut out).unwrap_err(),
        StoredMessageError::TooLarge {
            field: "TOPIC",
            len: 32_768,
            max: 32_767
        }
    );
    let props = [("k", "v".repeat(32_765))].into_iter().collect();
    m.message = Message::from_parts("T", "x", 0, props);
    assert!(matches!(
        encode_stored(&m, &mut out),
        Err(StoredMessageError::TooLarge {
            field: "PROPERTIES",
            len: 32_768,
            ..
        })
    ));
    assert!(out.is_empty());
}

#[test]
fn encode_fixes_v6_bits() {
    let (mut m, _) = decode_stored(&Raw::v1().bytes()).unwrap();
    m.sys_flag = SysFlag(0x30 | 0x301);
    let bytes = encode(&m);
    let (d, _) = decode_stored(&bytes).unwrap();
    assert_eq!(d.sys_flag, SysFlag(0x301));
    m.store_host = "[::1]:10911".parse().unwrap();
    let (d, _) = decode_stored(&encode(&m)).unwrap();
    assert_eq!(d.sys_flag, SysFlag(0x321));
    assert_eq!(d.store_host, m.store_host);
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(Ipv4Addr::from(ip).into(), p)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(Ipv6Addr::from(ip).into(), p)),
    ]
}

prop_compose! {
    fn arb_message()(
        topic in "[%|a-zA-Z0-9_-]{0,300}",
        body in proptest::collection::vec(any::<u8>(), 0..300),
        flag in any::<i32>(),
        props in proptest::collection::vec(("[A-Za-z_]{1,12}", "\\PC{1,16}"), 0..6),
    ) -> Message {
        Message::from_parts(topic, body, flag, props.into_iter().collect())
    }
}

prop_compose! {
    fn arb_ext()(
        message in arb_message(),
        ints in any::<(i32, i32, i32, i32)>(),
        longs in any::<(i64, i64, i64, i64, i64)>(),
        born_host in arb_addr(),
        store_host in arb_addr(),
    ) -> MessageExt {
        MessageExt {
            message,
            queue_id: ints.0,
            queue_offset: longs.0,
            commit_log_offset: longs.1,
            sys_flag: SysFlag(ints.1),
            born_timestamp: longs.2,
            born_host,
            store_timestamp: longs.3,
            store_host,
            reconsume_times: ints.2,
            prepared_transaction_offset: longs.4,
            body_crc: ints.3,
            store_size: 0,
        }
    }
}

proptest! {
    #[test]
    fn round_trip(m in arb_ext()) {
        let bytes = encode(&m);
        let (d, used) = decode_stored(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        let mut expected = m.clone();
        expected.store_size = bytes.len() as i32;
        let mut flag = m.sys_flag.without(SysFlag::BORNHOST_V6 | SysFlag::STOREHOST_V6);
        if m.born_host.is_ipv6() { flag = flag.with(SysFlag::BORNHOST_V6); }
        if m.store_host.is_ipv6() { flag = flag.with(SysFlag::STOREHOST_V6); }
        expected.sys_flag = flag;
        prop_assert_eq!(&d, &expected);
        prop_assert_eq!(encode(&d), bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_stored(&bytes);
        let _ = decode_stored_all(&bytes).count();
    }

    #[test]
    fn mutated_records_never_panic(
        m in arb_ext(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = encode(&m);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok((d, used)) = decode_stored(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert!(d.message.body().len() < used);
        }
        let _ = decode_stored_all(&bytes).count();
    }
}
