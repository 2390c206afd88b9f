//! Rows A1–A9 of the fault / bad-input matrix (shared/reference/reliability.md
//! section 7), decode-level halves. Each test is named after its row and asserts the
//! row's pass criterion.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use rmq_protocol::frame::{
    self, BinaryHeaderError, DecodeError, EncodeError, FrameCodec, FrameLimits,
};
use rmq_protocol::{
    ExtFields, LanguageCode, RemotingCommand, RequestCode, RpcFlags, SerializeType,
};

/// Any command the given serialization can represent exactly.
fn command(st: SerializeType) -> impl Strategy<Value = RemotingCommand> {
    let binary = st == SerializeType::ROCKETMQ;
    let code = if binary {
        (i16::MIN as i32..=i16::MAX as i32).boxed()
    } else {
        any::<i32>().boxed()
    };
    let version = if binary {
        (i16::MIN as i32..=i16::MAX as i32).boxed()
    } else {
        any::<i32>().boxed()
    };
    let language = if binary {
        any::<u8>().prop_map(LanguageCode).boxed()
    } else {
        (0u8..=13).prop_map(LanguageCode).boxed()
    };
    // Binary cannot carry empty strings (they decode as null), JSON can.
    let min = usize::from(binary);
    let text =
        move || proptest::collection::vec(any::<char>(), min..12).prop_map(String::from_iter);
    let remark = proptest::option::of(text());
    let ext = proptest::collection::vec(
        (
            text().prop_filter("non-empty key", |k| !k.is_empty()),
            text(),
        ),
        0..8,
    );
    let body = proptest::option::of(proptest::collection::vec(any::<u8>(), 1..300));
    (
        code,
        language,
        version,
        any::<i32>(),
        any::<i32>(),
        remark,
        ext,
        body,
    )
        .prop_map(
            move |(code, language, version, opaque, flag, remark, ext, body)| RemotingCommand {
                code,
                language,
                version,
                opaque,
                flag: RpcFlags(flag),
                remark,
                ext_fields: ext.into_iter().collect::<ExtFields>(),
                body: body.map(Bytes::from),
                serialize_type: st,
            },
        )
}

fn any_command() -> impl Strategy<Value = RemotingCommand> {
    prop_oneof![
        command(SerializeType::ROCKETMQ),
        command(SerializeType::JSON)
    ]
}

fn encode(cmd: &RemotingCommand) -> BytesMut {
    let mut buf = BytesMut::new();
    frame::encode(cmd, &mut buf).expect("encodable");
    buf
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// A1: every strict prefix of a valid frame is `Ok(None)` and leaves the buffer unchanged.
    #[test]
    fn a1_every_strict_prefix_is_incomplete_and_untouched(cmd in any_command()) {
        let bytes = encode(&cmd);
        for n in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..n]);
            let capacity = buf.capacity();
            prop_assert_eq!(frame::decode(&mut buf), Ok(None));
            prop_assert_eq!(&buf[..], &bytes[..n]);
            prop_assert_eq!(buf.capacity(), capacity, "decoder must not allocate for a partial frame");
        }
    }

    /// A8: two frames back to back: exactly one consumed per call, the rest intact;
    /// the same frames come out when the stream arrives split at any byte.
    #[test]
    fn a8_back_to_back_frames_and_any_split(a in any_command(), b in any_command(), split in any::<prop::sample::Index>()) {
        let mut stream = encode(&a);
        let first_len = stream.len();
        stream.extend_from_slice(&encode(&b));
        let all = stream.clone();

        let mut buf = stream.clone();
        prop_assert_eq!(frame::decode(&mut buf).unwrap(), Some(a.clone()));
        prop_assert_eq!(&buf[..], &all[first_len..]);
        prop_assert_eq!(frame::decode(&mut buf).unwrap(), Some(b.clone()));
        prop_assert!(buf.is_empty());

        let at = split.index(all.len() + 1);
        let mut buf = BytesMut::from(&all[..at]);
        let mut out = Vec::new();
        while let Some(cmd) = frame::decode(&mut buf).unwrap() { out.push(cmd); }
        buf.extend_from_slice(&all[at..]);
        while let Some(cmd) = frame::decode(&mut buf).unwrap() { out.push(cmd); }
        prop_assert_eq!(out, vec![a, b]);
    }

    /// A9: `decode(encode(c)) == c` for both serializations.
    #[test]
    fn a9_round_trip(cmd in any_command()) {
        let mut buf = encode(&cmd);
        prop_assert_eq!(frame::decode(&mut buf).unwrap(), Some(cmd));
        prop_assert!(buf.is_empty());
    }

    /// A9: codes beyond i16 are rejected by the binary encoder without partial output.
    #[test]
    fn a9_binary_encoder_rejects_wide_codes(code in prop_oneof![i32::MIN..-32768, 32768..i32::MAX]) {
        let mut buf = BytesMut::from(&b"prefix"[..]);
        let cmd = RemotingCommand::request(RequestCode(code));
        prop_assert_eq!(frame::encode(&cmd, &mut buf), Err(EncodeError::CodeOutOfRange(code)));
        prop_assert_eq!(&buf[..], b"prefix");
    }

    /// A10 (bounded random part): arbitrary bytes never panic, and on success exactly
    /// one frame's worth of bytes is consumed.
    #[test]
    fn a10_arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut buf = BytesMut::from(&data[..]);
        match frame::decode(&mut buf) {
            Ok(Some(_)) => {
                let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
                prop_assert_eq!(buf.len(), data.len() - 4 - len);
            }
            Ok(None) | Err(_) => prop_assert_eq!(&buf[..], &data[..]),
        }
    }
}

fn prefix(len: i32, hdr: u32) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i32(len);
    b.put_u32(hdr);
    b
}

/// A2: frame lengths 0..3, negative, above the limit and i32::MAX are rejected
/// from the length prefix alone, before any body bytes arrive or are allocated.
#[test]
fn a2_bad_frame_lengths_rejected_before_allocation() {
    for len in [0, 1, 2, 3, -1, i32::MIN] {
        let mut buf = BytesMut::new();
        buf.put_i32(len);
        assert_eq!(
            frame::decode(&mut buf),
            Err(DecodeError::FrameTooSmall { len })
        );
    }
    for len in [16 * 1024 * 1024 - 3, i32::MAX] {
        let mut buf = BytesMut::with_capacity(4);
        buf.put_i32(len);
        let cap = buf.capacity();
        assert!(matches!(
            frame::decode(&mut buf),
            Err(DecodeError::FrameTooLarge { .. })
        ));
        assert_eq!(buf.capacity(), cap);
        assert_eq!(buf.len(), 4);
    }
    // Exactly at the limit (16 MiB including the prefix) is only "incomplete".
    let mut buf = prefix(16 * 1024 * 1024 - 4, 0x0100_0015);
    assert_eq!(frame::decode(&mut buf), Ok(None));
}

/// A3: a header longer than the frame, or longer than the header limit, is an
/// error before the header is read.
#[test]
fn a3_header_length_checks() {
    let mut buf = prefix(100, 0x0100_0000 | 97);
    assert_eq!(
        frame::decode(&mut buf),
        Err(DecodeError::HeaderLengthExceedsFrame {
            header: 97,
            available: 96
        })
    );
    let codec = FrameCodec::new(FrameLimits {
        max_frame: 1 << 20,
        max_header: 64,
    });
    let mut buf = prefix(1000, 0x0100_0000 | 65);
    assert_eq!(
        codec.decode(&mut buf),
        Err(DecodeError::HeaderTooLarge { len: 65, max: 64 })
    );
}

/// A4: serialize-type bytes other than 0 and 1 are rejected.
#[test]
fn a4_unknown_serialize_type() {
    for st in 2u8..=255 {
        let mut buf = prefix(30, (u32::from(st) << 24) | 21);
        assert_eq!(
            frame::decode(&mut buf),
            Err(DecodeError::UnsupportedSerializeType(st))
        );
    }
}

fn binary_frame(header: &[u8]) -> BytesMut {
    let mut b = prefix(4 + header.len() as i32, 0x0100_0000 | header.len() as u32);
    b.extend_from_slice(header);
    b
}

fn fixed(remark_len: i32) -> Vec<u8> {
    let mut h = vec![0, 10, 12, 1, 0xDF, 0, 0, 0, 1, 0, 0, 0, 0];
    h.extend_from_slice(&remark_len.to_be_bytes());
    h
}

/// A5: binary header lengths that are negative or exceed what remains are errors.
#[test]
fn a5_binary_header_lengths() {
    let err = |h: &[u8]| match frame::decode(&mut binary_frame(h)) {
        Err(DecodeError::Binary(e)) => e,
        other => panic!("expected a binary header error, got {other:?}"),
    };
    assert!(matches!(
        err(&[0, 1, 2]),
        BinaryHeaderError::Truncated { .. }
    ));
    assert!(matches!(
        err(&fixed(-5)),
        BinaryHeaderError::NegativeLength {
            field: "remark",
            ..
        }
    ));
    let mut h = fixed(50);
    h.extend_from_slice(b"short");
    assert!(matches!(
        err(&h),
        BinaryHeaderError::Truncated {
            field: "remark",
            ..
        }
    ));
    let mut h = fixed(0);
    h.extend_from_slice(&1000i32.to_be_bytes());
    assert!(matches!(
        err(&h),
        BinaryHeaderError::Truncated {
            field: "ext fields",
            ..
        }
    ));
    let mut h = fixed(0);
    h.extend_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(err(&h), BinaryHeaderError::NegativeLength { .. }));
    // ext entry: key length larger than the map, negative key length, value too long
    for entry in [
        vec![0x7f, 0xff, b'k'],
        vec![0xff, 0xff, b'k'],
        vec![0, 1, b'k', 0, 0, 0, 9, b'v'],
        vec![0, 1, b'k', 0xff, 0xff, 0xff, 0xff],
        vec![0, 1, b'k', 0, 0],
    ] {
        let mut h = fixed(0);
        h.extend_from_slice(&(entry.len() as i32).to_be_bytes());
        h.extend_from_slice(&entry);
        let e = err(&h);
        assert!(
            matches!(
                e,
                BinaryHeaderError::Truncated { .. } | BinaryHeaderError::NegativeLength { .. }
            ),
            "{entry:?}: {e:?}"
        );
    }
    // invalid UTF-8 in an ext key
    let mut h = fixed(0);
    let entry = [0, 1, 0xff, 0, 0, 0, 1, b'v'];
    h.extend_from_slice(&(entry.len() as i32).to_be_bytes());
    h.extend_from_slice(&entry);
    assert_eq!(err(&h), BinaryHeaderError::InvalidUtf8 { field: "ext key" });
}

fn json_frame(header: &[u8]) -> BytesMut {
    let mut b = prefix(4 + header.len() as i32, header.len() as u32);
    b.extend_from_slice(header);
    b
}

/// A6: malformed JSON headers give an error in bounded time.
#[test]
fn a6_bad_json_headers() {
    let deep = "[".repeat(100_000);
    let cases: Vec<&[u8]> = vec![
        b"\xff\xfe{}",
        br#"{"code":0,"extFields":{"a":"b""#,
        deep.as_bytes(),
        br#"{"code":"ten"}"#,
        br#"{"code":1,"code":2}"#,
        br#"{"opaque":99999999999999999999}"#,
        br#"{"extFields":{"a":{"nested":1}}}"#,
        br#"{"extFields":[1,2]}"#,
        b"",
        b"null",
    ];
    let start = std::time::Instant::now();
    for case in cases {
        let mut buf = json_frame(case);
        let before = buf.clone();
        assert!(
            matches!(frame::decode(&mut buf), Err(DecodeError::Json(_))),
            "{:?}",
            String::from_utf8_lossy(case)
        );
        assert_eq!(buf, before);
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

/// A7: bytes from other protocols are rejected cleanly from their first 8 bytes.
#[test]
fn a7_non_rocketmq_bytes() {
    let tls_client_hello = [
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ];
    let tls_alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28, 0, 0];
    let cases: Vec<&[u8]> = vec![
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &tls_client_hello,
        &tls_alert,
        b"\x00\x00\x00\x10\x07\x00\x00\x05garbage!",
    ];
    for case in cases {
        let mut buf = BytesMut::from(case);
        let cap = buf.capacity();
        let result = frame::decode(&mut buf);
        assert!(result.is_err(), "{case:?} -> {result:?}");
        assert_eq!(buf.capacity(), cap, "no allocation for hostile input");
    }
}
