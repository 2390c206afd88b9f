//! Byte-exact vectors of protocol.md sections 1.12 and 3.2 (derived with
//! `shared/reference/vectors.py`) and encoder edge cases.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::code::{LanguageCode, RequestCode, RpcFlags};
use crate::ext::ExtFields;

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn route_request(st: SerializeType) -> RemotingCommand {
    let mut cmd = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC)
        .opaque(1)
        .serialize_type(st);
    cmd.ext_fields.insert("topic", "TopicTest");
    cmd
}

fn encoded(cmd: &RemotingCommand) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode(cmd, &mut buf).unwrap();
    buf.to_vec()
}

#[test]
fn vector_a_route_request_binary() {
    let expected = hex(
        "00 00 00 2D 01 00 00 29 00 69 0C 01 DF 00 00 00 01 00 00 00 00 \
         00 00 00 00 00 00 00 14 00 05 74 6F 70 69 63 00 00 00 09 54 6F 70 69 63 54 65 73 74",
    );
    let cmd = route_request(SerializeType::ROCKETMQ);
    assert_eq!(encoded(&cmd), expected);
    let mut buf = BytesMut::from(&expected[..]);
    assert_eq!(decode(&mut buf).unwrap(), Some(cmd));
    assert!(buf.is_empty());
}

#[test]
fn vector_b_route_request_json() {
    let json = br#"{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"RUST","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}"#;
    assert_eq!(json.len(), 131);
    let mut expected = hex("00 00 00 87 00 00 00 83");
    expected.extend_from_slice(json);
    let cmd = route_request(SerializeType::JSON);
    assert_eq!(encoded(&cmd), expected);
    let mut buf = BytesMut::from(&expected[..]);
    assert_eq!(decode(&mut buf).unwrap(), Some(cmd));
}

#[test]
fn vector_send_message_v2_binary() {
    let expected = hex(
        "00 00 00 E2 01 00 00 D9 01 36 0C 01 DF 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 C4
        00 01 61 00 00 00 02 50 47
        00 01 62 00 00 00 09 54 6F 70 69 63 54 65 73 74
        00 01 63 00 00 00 06 54 42 57 31 30 32
        00 01 64 00 00 00 01 34   00 01 65 00 00 00 01 30   00 01 66 00 00 00 01 30
        00 01 67 00 00 00 0D 31 37 30 30 30 30 30 30 30 30 30 30 30
        00 01 68 00 00 00 01 30
        00 01 69 00 00 00 34 57 41 49 54 01 74 72 75 65 02 55 4E 49 51 5F 4B 45 59 01
           43 30 41 38 30 30 30 31 33 30 33 39 31 42 36 44 33 35 38 36 30 35 46 35 45 31 30 30 30 30 30 31 02
        00 01 6A 00 00 00 01 30
        00 01 6B 00 00 00 05 66 61 6C 73 65
        00 01 6D 00 00 00 05 66 61 6C 73 65
        00 01 6E 00 00 00 08 62 72 6F 6B 65 72 2D 61
        68 65 6C 6C 6F",
    );
    assert_eq!(expected.len(), 230);
    let ext: ExtFields = [
        ("a", "PG"),
        ("b", "TopicTest"),
        ("c", "TBW102"),
        ("d", "4"),
        ("e", "0"),
        ("f", "0"),
        ("g", "1700000000000"),
        ("h", "0"),
        (
            "i",
            "WAIT\x01true\x02UNIQ_KEY\x01C0A8000130391B6D358605F5E1000001\x02",
        ),
        ("j", "0"),
        ("k", "false"),
        ("m", "false"),
        ("n", "broker-a"),
    ]
    .into_iter()
    .collect();
    let mut cmd = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2)
        .opaque(2)
        .body(Bytes::from_static(b"hello"));
    cmd.ext_fields = ext;
    assert_eq!(encoded(&cmd), expected);
    let mut buf = BytesMut::from(&expected[..]);
    let decoded = decode(&mut buf).unwrap().unwrap();
    assert_eq!(decoded, cmd);
    assert_eq!(decoded.body.as_deref(), Some(&b"hello"[..]));
}

#[test]
fn json_escapes_property_separators_like_java() {
    let mut cmd =
        RemotingCommand::request(RequestCode::SEND_MESSAGE_V2).serialize_type(SerializeType::JSON);
    cmd.ext_fields.insert("i", "TAGS\x01a\x02\"q\\\n");
    let bytes = encoded(&cmd);
    let text = std::str::from_utf8(&bytes[8..]).unwrap();
    assert!(text.contains(r#""i":"TAGS\u0001a\u0002\"q\\\n""#), "{text}");
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(decode(&mut buf).unwrap(), Some(cmd));
}

#[test]
fn json_header_always_carries_required_fields() {
    // peer.md 3.1: the rocketmq-rust servers drop the connection without these.
    let cmd = RemotingCommand::request(RequestCode::HEART_BEAT).serialize_type(SerializeType::JSON);
    let bytes = encoded(&cmd);
    let v: serde_json::Value = serde_json::from_slice(&bytes[8..]).unwrap();
    for key in [
        "code",
        "extFields",
        "flag",
        "language",
        "opaque",
        "serializeTypeCurrentRPC",
        "version",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["language"], "RUST");
    assert_eq!(v["serializeTypeCurrentRPC"], "JSON");
}

#[test]
fn json_decode_is_lenient() {
    let header = br#"{"version":474,"opaque":7,"flag":1,"remark":null,"extFields":{"a":"x","n":null,"q":5,"b":true},"serializeTypeCurrentRPC":"JSON","code":0,"language":"RUST","unknown":[1,2]}"#;
    let cmd = decode_header_only(SerializeType::JSON, header).unwrap();
    assert_eq!(cmd.opaque, 7);
    assert_eq!(cmd.flag, RpcFlags(1));
    assert_eq!(cmd.language, LanguageCode::RUST);
    assert_eq!(cmd.remark, None);
    assert_eq!(
        cmd.ext_fields.iter().collect::<Vec<_>>(),
        vec![("a", "x"), ("q", "5"), ("b", "true")]
    );
}

/// A header field given twice is an error (as serde's derive reported it); an
/// unknown field given twice is skipped like any unknown field.
#[test]
fn json_duplicate_header_fields() {
    for (field, header) in [
        ("code", &br#"{"code":1,"opaque":2,"code":3}"#[..]),
        (
            "extFields",
            &br#"{"extFields":{},"extFields":{"a":"b"}}"#[..],
        ),
    ] {
        let err = decode_header_only(SerializeType::JSON, header).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Json(m) if m.contains(&format!("duplicate field `{field}`"))),
            "{err:?}"
        );
    }
    let cmd = decode_header_only(SerializeType::JSON, br#"{"x":1,"code":4,"x":2}"#).unwrap();
    assert_eq!(cmd.code, 4);
}

#[test]
fn binary_empty_strings_decode_as_null() {
    let mut cmd = RemotingCommand::request(RequestCode(1)).remark("");
    cmd.ext_fields.insert("empty", "");
    cmd.ext_fields.insert("k", "v");
    let bytes = encoded(&cmd);
    let mut buf = BytesMut::from(&bytes[..]);
    let back = decode(&mut buf).unwrap().unwrap();
    assert_eq!(back.remark, None);
    assert_eq!(back.ext_fields.iter().collect::<Vec<_>>(), vec![("k", "v")]);
}

#[test]
fn encoder_rejects_unrepresentable_without_partial_output() {
    let codec = FrameCodec::default();
    let mut buf = BytesMut::from(&b"keep"[..]);
    let cmd = RemotingCommand::request(RequestCode(200_050)); // POP_MESSAGE
    assert_eq!(
        codec.encode(&cmd, &mut buf),
        Err(EncodeError::CodeOutOfRange(200_050))
    );
    assert_eq!(&buf[..], b"keep");
    // The same code is fine in JSON.
    codec
        .encode(&cmd.clone().serialize_type(SerializeType::JSON), &mut buf)
        .unwrap();

    let mut buf = BytesMut::from(&b"keep"[..]);
    let mut cmd = RemotingCommand::request(RequestCode(1));
    cmd.version = 40_000;
    assert_eq!(
        codec.encode(&cmd, &mut buf),
        Err(EncodeError::VersionOutOfRange(40_000))
    );
    assert_eq!(&buf[..], b"keep");

    let small = FrameCodec::new(FrameLimits {
        max_frame: 64,
        max_header: 32,
    });
    let cmd = RemotingCommand::request(RequestCode(1)).body(vec![0u8; 100]);
    assert!(matches!(
        small.encode(&cmd, &mut buf),
        Err(EncodeError::FrameTooLarge { .. })
    ));
    let mut cmd = RemotingCommand::request(RequestCode(1));
    cmd.ext_fields
        .insert("key", "a value that makes the header longer than 32 bytes");
    assert!(matches!(
        small.encode(&cmd, &mut buf),
        Err(EncodeError::HeaderTooLarge { .. })
    ));
    // The body alone fits, header plus body do not.
    let roomy_header = FrameCodec::new(FrameLimits {
        max_frame: 64,
        max_header: 1024,
    });
    let mut cmd = RemotingCommand::request(RequestCode(1)).body(vec![0u8; 30]);
    cmd.ext_fields.insert("k", "v");
    assert_eq!(
        roomy_header.encode(&cmd, &mut buf),
        Err(EncodeError::FrameTooLarge { len: 67, max: 64 })
    );
    assert_eq!(&buf[..], b"keep");

    let mut cmd = RemotingCommand::request(RequestCode(1));
    cmd.ext_fields.insert("k".repeat(40_000), "v");
    assert_eq!(
        codec.encode(&cmd, &mut buf),
        Err(EncodeError::KeyTooLong { len: 40_000 })
    );
    assert_eq!(&buf[..], b"keep");
}

#[test]
fn frame_at_exact_limit_is_accepted_one_more_is_rejected() {
    let cmd = RemotingCommand::request(RequestCode(1));
    let header_len = encoded(&cmd).len() - 8;
    let limit = 8 + header_len + 10;
    let codec = FrameCodec::new(FrameLimits {
        max_frame: limit,
        max_header: 1024,
    });
    let mut buf = BytesMut::new();
    codec
        .encode(&cmd.clone().body(vec![1u8; 10]), &mut buf)
        .unwrap();
    assert_eq!(buf.len(), limit);
    assert!(codec.decode(&mut buf).unwrap().is_some());
    let mut buf = BytesMut::new();
    assert!(
        codec
            .encode(&cmd.clone().body(vec![1u8; 11]), &mut buf)
            .is_err()
    );
    FrameCodec::default()
        .encode(&cmd.body(vec![1u8; 11]), &mut buf)
        .unwrap();
    assert_eq!(
        codec.decode(&mut buf),
        Err(DecodeError::FrameTooLarge {
            len: limit as u64 + 1,
            max: limit
        })
    );
}
