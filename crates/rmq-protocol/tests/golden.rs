//! Golden vectors: frames captured from Java clients and servers (see the
//! provenance lines at the top of each file in `tests/fixtures/`) decode to the
//! expected fields.

use bytes::BytesMut;
use rmq_protocol::frame;
use rmq_protocol::{LanguageCode, RemotingCommand, RequestCode, ResponseCode, SerializeType};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let digits: Vec<u8> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.bytes())
        .filter(u8::is_ascii_hexdigit)
        .collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn decode_whole(name: &str) -> RemotingCommand {
    let bytes = fixture(name);
    let mut buf = BytesMut::from(&bytes[..]);
    let cmd = frame::decode(&mut buf).unwrap().expect("a whole frame");
    assert!(buf.is_empty(), "{name}: trailing bytes");
    cmd
}

#[test]
fn java520_route_request() {
    let cmd = decode_whole("java520_get_route_request.hex");
    assert_eq!(cmd.request_code(), RequestCode::GET_ROUTEINFO_BY_TOPIC);
    assert_eq!(cmd.language, LanguageCode::JAVA);
    assert_eq!(cmd.version, 453);
    assert_eq!(cmd.opaque, 0);
    assert!(!cmd.is_response());
    assert_eq!(cmd.serialize_type, SerializeType::JSON);
    assert_eq!(cmd.ext_fields.get("topic"), Some("TeZ_Test_Lng"));
    assert_eq!(cmd.body, None);
}

#[test]
fn java520_namesrv_route_response() {
    let cmd = decode_whole("java520_namesrv_route_response.hex");
    assert!(cmd.is_response());
    assert_eq!(cmd.response_code(), ResponseCode::SUCCESS);
    assert_eq!(cmd.version, 453);
    assert!(cmd.ext_fields.is_empty());
    let body = cmd.body.expect("route body");
    assert_eq!(body.len(), 263);
    assert!(body.starts_with(br#"{"brokerDatas":"#));
}

#[test]
fn java_binary_response_v373() {
    let cmd = decode_whole("java_binary_response_v373.hex");
    assert_eq!(cmd.serialize_type, SerializeType::ROCKETMQ);
    assert_eq!(cmd.response_code(), ResponseCode::SUCCESS);
    assert_eq!(cmd.language, LanguageCode::JAVA);
    assert_eq!(cmd.version, 373);
    assert_eq!(cmd.opaque, 1575);
    assert!(cmd.is_response());
    assert_eq!(cmd.remark, None);
    assert!(cmd.ext_fields.is_empty());
    assert_eq!(cmd.body, None);
}

#[test]
fn java_binary_send_response_with_five_ext_fields() {
    let cmd = decode_whole("java_binary_send_response_5ext.hex");
    assert_eq!(cmd.opaque, 1576);
    assert_eq!(cmd.version, 373);
    let fields: Vec<_> = cmd.ext_fields.iter().collect();
    assert_eq!(
        fields,
        vec![
            ("queueId", "6"),
            ("TRACE_ON", "true"),
            ("MSG_REGION", "DefaultRegion"),
            ("msgId", "0A090F2800002A9F0000229E897CF382"),
            ("queueOffset", "6379881"),
        ]
    );
}

#[test]
fn fixtures_reencode_byte_for_byte() {
    // Our encoder writes the same bytes for frames whose field order we reproduce.
    for name in [
        "java520_get_route_request.hex",
        "java_binary_response_v373.hex",
        "java_binary_send_response_5ext.hex",
    ] {
        let bytes = fixture(name);
        let cmd = decode_whole(name);
        let mut out = BytesMut::new();
        frame::encode(&cmd, &mut out).unwrap();
        assert_eq!(&out[..], &bytes[..], "{name}");
    }
}

#[test]
fn java_binary_send_response_decodes_to_typed_header() {
    use rmq_protocol::header::send_response::SendMessageResponseHeader;
    let cmd = decode_whole("java_binary_send_response_5ext.hex");
    let h: SendMessageResponseHeader = cmd.decode_header().unwrap();
    assert_eq!(h.msg_id, "0A090F2800002A9F0000229E897CF382");
    assert_eq!(h.queue_id, 6);
    assert_eq!(h.queue_offset, 6_379_881);
    assert_eq!(h.region_id_or_default(), "DefaultRegion");
    assert!(h.is_trace_on());
    let offset_id = rmq_protocol::id::offset::OffsetMessageId::decode(&h.msg_id).unwrap();
    assert_eq!(offset_id.addr.to_string(), "10.9.15.40:10911");
}

#[test]
fn java520_route_body_parses() {
    use rmq_protocol::route::TopicRouteData;
    let cmd = decode_whole("java520_namesrv_route_response.hex");
    let route = TopicRouteData::parse(cmd.body_bytes()).unwrap();
    assert_eq!(route.broker_datas.len(), 1);
    assert_eq!(
        route.broker_datas[0].master_addr(),
        Some("10.2.3.117:10911")
    );
    assert_eq!(route.queue_datas[0].write_queue_nums, 8);
    assert_eq!(route.queue_datas[0].perm, 6);
    assert!(route.warnings.is_empty());
    // Our standard JSON output reproduces the captured body byte for byte.
    assert_eq!(route.to_json().as_bytes(), cmd.body_bytes());
}

#[test]
fn java520_send_response_extfields_quote() {
    // protocol.md 3.3: extFields of a real 5.2.0 broker send response (envelope ours).
    use rmq_protocol::header::send_response::SendMessageResponseHeader;
    let header = br#"{"code":0,"extFields":{"queueId":"0","transactionId":"2400DD02100800152B2B7D0419D6DD5E9EFC18B4AAC246212A7D0000","msgId":"0A02037500002A9F0000000001EC18FC","TRACE_ON":"true","MSG_REGION":"DefaultRegion","queueOffset":"0"},"flag":1,"language":"JAVA","opaque":5,"serializeTypeCurrentRPC":"JSON","version":453}"#;
    let cmd = frame::decode_header_only(SerializeType::JSON, header).unwrap();
    let h: SendMessageResponseHeader = cmd.decode_header().unwrap();
    assert_eq!(
        h.transaction_id.as_deref(),
        Some("2400DD02100800152B2B7D0419D6DD5E9EFC18B4AAC246212A7D0000")
    );
    let uniq = rmq_protocol::id::uniq::parse_uniq_id(h.transaction_id.as_deref().unwrap()).unwrap();
    assert_eq!(uniq.counter, 0);
    assert_eq!(uniq.pid, 0x9EFC);
}
