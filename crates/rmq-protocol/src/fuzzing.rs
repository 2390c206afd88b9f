//! Bodies of the fuzz targets (decisions.md: every target is a plain function in the
//! crate it tests, so a stable `cargo test` replays the checked-in corpus).
//!
//! Each function takes arbitrary bytes, runs one decoder, and **panics only when an
//! invariant is broken** — that panic is the finding. The invariants:
//!
//! * decoders never panic, whatever the input;
//! * `frame_decode`: `Ok(None)` and `Err` leave the buffer untouched; `Ok(Some)`
//!   consumes exactly the declared frame; a decoded frame re-encodes and decodes to
//!   the same command; decoding into an arena (`decode_in`, header fields in wire
//!   form) gives the same result;
//! * header, properties, route and stored-message decoders: what decodes re-encodes
//!   to something that decodes to the same value.
//!
//! Used by `fuzz/fuzz_targets/*.rs` (libFuzzer, nightly) and by
//! `tests/fuzz_replay.rs` (stable). Not part of the public API.
#![allow(clippy::expect_used, clippy::panic)]

use bytes::BytesMut;

use crate::code::SerializeType;
use crate::frame::{self, FrameCodec, FrameLimits};
use crate::message::properties::{decode_properties, encode_properties};
use crate::message::stored::{decode_stored_all, encode_stored};
use crate::route::TopicRouteData;

/// Frame decoding with the default limits and with small limits.
pub fn frame_decode(data: &[u8]) {
    let small = FrameCodec::new(FrameLimits {
        max_frame: 4096,
        max_header: 512,
    });
    let mut arena = BytesMut::new();
    for codec in [FrameCodec::default(), small] {
        let mut buf = BytesMut::from(data);
        let decoded = codec.decode(&mut buf);
        // The arena decoder (header fields in wire form) agrees in every way.
        let mut same_buf = BytesMut::from(data);
        let in_arena = codec.decode_in(&mut same_buf, &mut arena);
        assert_eq!(in_arena, decoded, "decode_in disagrees with decode");
        assert_eq!(same_buf, buf, "decode_in consumed differently");
        match decoded {
            Ok(Some(cmd)) => {
                let declared = data
                    .get(..4)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or_default();
                let consumed = data.len() - buf.len();
                assert_eq!(
                    consumed as i64,
                    4 + i64::from(declared),
                    "consumed != one frame"
                );
                assert_eq!(&buf[..], &data[consumed..], "trailing bytes changed");
                let mut out = BytesMut::new();
                if frame::encode(&cmd, &mut out).is_ok() {
                    let again = frame::decode(&mut out)
                        .expect("re-decode")
                        .expect("whole frame");
                    assert_eq!(again, cmd, "re-encoded frame decodes differently");
                }
            }
            Ok(None) | Err(_) => assert_eq!(&buf[..], data, "buffer changed without a frame"),
        }
    }
}

fn header_round_trip(st: SerializeType, data: &[u8]) {
    if let Ok(cmd) = frame::decode_header_only(st, data) {
        let mut out = BytesMut::new();
        if frame::encode(&cmd, &mut out).is_ok() {
            let again = frame::decode(&mut out)
                .expect("re-decode")
                .expect("whole frame");
            assert_eq!(again, cmd, "header round trip changed the command");
        }
    }
}

/// A JSON header alone.
pub fn json_header(data: &[u8]) {
    header_round_trip(SerializeType::JSON, data);
}

/// A ROCKETMQ binary header alone.
pub fn binary_header(data: &[u8]) {
    header_round_trip(SerializeType::ROCKETMQ, data);
}

/// The properties string codec.
pub fn properties(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let props = decode_properties(s);
    let mut out = String::new();
    if encode_properties(&props, &mut out).is_ok() {
        assert_eq!(decode_properties(&out), props, "properties round trip");
    }
}

/// Name-server route bodies.
pub fn route_parse(data: &[u8]) {
    if let Ok(route) = TopicRouteData::parse(data) {
        for json in [route.to_json(), route.to_java_legacy_json()] {
            let mut again =
                TopicRouteData::parse(json.as_bytes()).expect("our own route JSON parses");
            again.warnings.clone_from(&route.warnings);
            assert_eq!(again, route, "route round trip");
        }
    }
}

/// Stored messages (pull bodies, transaction-check bodies).
pub fn stored_message(data: &[u8]) {
    for msg in decode_stored_all(data) {
        let Ok(msg) = msg else { break };
        let mut out = Vec::new();
        if encode_stored(&msg, &mut out).is_err() {
            continue;
        }
        let mut again = decode_stored_all(&out);
        let mut back = again
            .next()
            .expect("one message")
            .expect("our own encoding decodes");
        // The size depends on the magic (V1 / V2 topic length) we chose to write.
        back.store_size = msg.store_size;
        assert_eq!(back, msg, "stored message round trip");
    }
}
