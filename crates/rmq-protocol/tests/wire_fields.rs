//! Header fields in wire form (`ExtFields` without a vector of its own: decoded by
//! `FrameCodec::decode_in`, written by `WireWriter`) behave exactly like the vector
//! form: same lookups, same order, same `take`, same encoded bytes.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rmq_protocol::ext::{FieldSink, WireWriter};
use rmq_protocol::frame::{self, FrameCodec};
use rmq_protocol::{ExtFields, RemotingCommand, RequestCode, SerializeType};

fn text(min: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        // few distinct short keys, so duplicates happen
        3 => "[a-d]{0,2}".prop_filter("length", move |s| s.len() >= min),
        1 => proptest::collection::vec(any::<char>(), min..40).prop_map(String::from_iter),
    ]
}

fn entries(min: usize) -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((text(min), text(min)), 0..40)
}

fn command(st: SerializeType, ext: ExtFields) -> RemotingCommand {
    let mut cmd = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2)
        .opaque(7)
        .serialize_type(st)
        .body(Bytes::from_static(b"body"));
    cmd.ext_fields = ext;
    cmd
}

fn encoded(cmd: &RemotingCommand) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame::encode(cmd, &mut buf).expect("encodable");
    buf.to_vec()
}

/// The map a decoder builds from `pairs` (Java drops empty keys and, in binary
/// headers, empty values; the last of duplicate keys wins).
fn as_map(pairs: &[(String, String)], drop_empty_values: bool) -> ExtFields {
    let mut map = ExtFields::new();
    for (k, v) in pairs {
        if k.is_empty() || (drop_empty_values && v.is_empty()) {
            continue;
        }
        map.insert(k.clone(), v.as_str());
    }
    map
}

fn same(a: &ExtFields, b: &ExtFields) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    prop_assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
    for (k, v) in b.iter() {
        prop_assert_eq!(a.get(k), Some(v));
    }
    prop_assert_eq!(a, b);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Decoding into the arena gives the fields the plain decoder gives, for both
    /// header types, with one arena reused across frames; taking fields out leaves
    /// the same remainder as taking them out of a vector, and encodes the same.
    #[test]
    fn decoded_in_wire_form_equals_the_vector_form(
        pairs in entries(0),
        take in proptest::collection::vec(text(0), 0..6),
        binary in any::<bool>(),
    ) {
        let st = if binary { SerializeType::ROCKETMQ } else { SerializeType::JSON };
        let sent = command(st, as_map(&pairs, binary));
        let bytes = encoded(&sent);
        let codec = FrameCodec::default();
        let mut arena = BytesMut::with_capacity(64);
        for _ in 0..3 {
            let mut plain_src = BytesMut::from(&bytes[..]);
            let mut plain = codec.decode(&mut plain_src).unwrap().unwrap();
            let mut src = BytesMut::from(&bytes[..]);
            let mut wire = codec.decode_in(&mut src, &mut arena).unwrap().unwrap();
            prop_assert!(src.is_empty());
            prop_assert!(wire.ext_fields.is_wire_form() || sent.ext_fields.len() > 32);
            same(&wire.ext_fields, &plain.ext_fields)?;
            same(&wire.ext_fields, &sent.ext_fields)?;
            prop_assert_eq!(&wire, &plain);
            for key in &take {
                prop_assert_eq!(wire.ext_fields.take(key), plain.ext_fields.take(key));
                prop_assert_eq!(wire.ext_fields.get(key), None);
            }
            same(&wire.ext_fields, &plain.ext_fields)?;
            prop_assert_eq!(encoded(&wire), encoded(&plain));
        }
    }

    /// A `WireWriter` holds what inserting the same fields into a map holds, and both
    /// encode to the same bytes in both header types.
    #[test]
    fn written_in_wire_form_equals_inserting(pairs in entries(0)) {
        let keys: Vec<&'static str> = pairs
            .iter()
            .map(|(k, _)| &*Box::leak(k.clone().into_boxed_str()))
            .collect();
        let mut arena = BytesMut::new();
        let mut writer = WireWriter::new(&mut arena);
        let mut map = ExtFields::new();
        for (key, (_, value)) in keys.iter().zip(&pairs) {
            writer.put_str(key, value);
            map.put_str(key, value);
        }
        let wire = writer.finish();
        same(&wire, &map)?;
        for st in [SerializeType::ROCKETMQ, SerializeType::JSON] {
            prop_assert_eq!(encoded(&command(st, wire.clone())), encoded(&command(st, map.clone())));
        }
    }
}

#[test]
fn distinct_fields_stay_in_wire_form_and_others_become_a_vector() {
    let mut arena = BytesMut::with_capacity(1024);
    let mut w = WireWriter::new(&mut arena);
    w.put_str("a", "x");
    w.put_i64("b", -5);
    w.put_str("c", "");
    let fields = w.finish();
    assert!(fields.is_wire_form());
    assert_eq!(fields.get("b"), Some("-5"));
    assert_eq!(fields.get("c"), Some(""));

    let mut w = WireWriter::new(&mut arena);
    w.put_str("a", "1");
    w.put_str("b", "2");
    w.put_str("a", "3");
    let fields = w.finish();
    assert!(!fields.is_wire_form(), "a duplicate key needs the map");
    assert_eq!(fields.iter().collect::<Vec<_>>(), [("a", "3"), ("b", "2")]);

    const KEYS: [&str; 33] = [
        "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "k13",
        "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23", "k24", "k25", "k26",
        "k27", "k28", "k29", "k30", "k31", "k32",
    ];
    let mut w = WireWriter::new(&mut arena);
    for k in &KEYS[..32] {
        w.put_str(k, "v");
    }
    assert!(w.finish().is_wire_form());
    let mut w = WireWriter::new(&mut arena);
    for k in KEYS {
        w.put_str(k, "v");
    }
    let fields = w.finish();
    assert!(!fields.is_wire_form());
    assert_eq!(fields.len(), 33);
    assert_eq!(fields.get("k32"), Some("v"));
}

#[test]
fn a_binary_send_response_is_decoded_without_a_vector_and_changed_into_one() {
    let mut ext = ExtFields::new();
    ext.insert("msgId", "7F0000011F9C18B4AAC2178EFA4F0000");
    ext.insert("queueId", "3");
    let mut resp = command(SerializeType::ROCKETMQ, ext);
    resp.body = None;
    let bytes = encoded(&resp);
    let mut src = BytesMut::from(&bytes[..]);
    let mut arena = BytesMut::new();
    let mut got = FrameCodec::default()
        .decode_in(&mut src, &mut arena)
        .unwrap()
        .unwrap();
    assert!(got.ext_fields.is_wire_form());
    assert_eq!(arena.capacity(), 0, "a binary header needs no arena");
    assert_eq!(got.ext_fields.take("queueId").as_deref(), Some("3"));
    assert_eq!(got.ext_fields.len(), 1);
    got.ext_fields.insert("queueOffset", "9");
    assert!(!got.ext_fields.is_wire_form());
    assert_eq!(
        got.ext_fields.iter().collect::<Vec<_>>(),
        [
            ("msgId", "7F0000011F9C18B4AAC2178EFA4F0000"),
            ("queueOffset", "9")
        ]
    );
}
