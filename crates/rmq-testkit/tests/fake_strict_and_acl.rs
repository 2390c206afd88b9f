//! Strict JSON headers (peer.md section 3.1) and ACL 1.0 signatures (protocol.md
//! section 13.1), observed from a raw client.

mod common;

use bytes::{BufMut, BytesMut};
use common::{RawClient, transports};
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_testkit::fake::{AclVerdict, Dialect, FakeCluster, FakeNameServer, Transport};

/// A raw frame with a hand-written JSON header.
fn json_frame(header: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_i32(4 + i32::try_from(header.len()).unwrap());
    out.put_i32(i32::try_from(header.len()).unwrap());
    out.put_slice(header.as_bytes());
    out.to_vec()
}

const GOOD: &str = r#"{"code":105,"language":"JAVA","version":479,"opaque":5,"flag":0,"serializeTypeCurrentRPC":"JSON","extFields":{"topic":"TBW102"}}"#;

#[tokio::test]
async fn strict_json_headers_close_without_reply() {
    for transport in transports() {
        let ns = FakeNameServer::start(&transport).await.unwrap();
        // The Java shape is answered.
        let mut c = RawClient::connect(&transport, ns.addr()).await.unwrap();
        c.send_raw(&json_frame(GOOD)).await.unwrap();
        let r = c.read().await.unwrap().unwrap();
        assert_eq!(
            (r.opaque, r.response_code()),
            (5, ResponseCode::TOPIC_NOT_EXIST)
        );

        let bad = [
            GOOD.replace(r#","serializeTypeCurrentRPC":"JSON""#, ""),
            GOOD.replace(r#""language":"JAVA""#, r#""language":"java""#),
            GOOD.replace(r#""language":"JAVA""#, r#""language":0"#),
            GOOD.replace(r#""topic":"TBW102""#, r#""topic":1"#),
            GOOD.replace(r#""flag":0,"#, ""),
        ];
        for header in &bad {
            let mut c = RawClient::connect(&transport, ns.addr()).await.unwrap();
            c.send_raw(&json_frame(header)).await.unwrap();
            let r = c.read().await;
            assert!(
                matches!(r, Ok(None) | Err(_)),
                "closed without a reply for {header}: {r:?}"
            );
        }
        let rejected = ns.rejected_frames();
        assert_eq!(rejected.len(), bad.len());
        assert!(
            rejected[0].reason.contains("serializeTypeCurrentRPC"),
            "{}",
            rejected[0].reason
        );
        assert_eq!(ns.requests().len(), 1, "rejected frames are not requests");

        // A lenient (Java 4.8) server answers the same frame.
        ns.set_dialect(Dialect::java_4_8());
        let mut c = RawClient::connect(&transport, ns.addr()).await.unwrap();
        c.send_raw(&json_frame(&bad[0])).await.unwrap();
        assert!(c.read().await.unwrap().is_some());
    }
}

#[tokio::test]
async fn not_a_frame_closes_the_connection() {
    let transport = Transport::memory();
    let ns = FakeNameServer::start(&transport).await.unwrap();
    let mut c = RawClient::connect(&transport, ns.addr()).await.unwrap();
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(c.read().await.unwrap().is_none());
    assert_eq!(ns.rejected_frames().len(), 1);
}

fn route_probe(signature: Option<&str>) -> RemotingCommand {
    let mut cmd = RemotingCommand::with_header(
        RequestCode::GET_ROUTEINFO_BY_TOPIC,
        &GetRouteInfoRequestHeader::new("TBW102"),
    );
    cmd.ext_fields.insert("AccessKey", "rocketmq2");
    if let Some(s) = signature {
        cmd.ext_fields.insert("Signature", s);
    }
    cmd
}

#[tokio::test]
async fn acl_accepts_the_probe_vector_and_rejects_the_rest() {
    for transport in transports() {
        let cluster = FakeCluster::builder()
            .transport(transport.clone())
            .auto_create_topics(true)
            .build()
            .await
            .unwrap();
        let ns = cluster.name_server();
        ns.require_acl("rocketmq2", "12345678");
        let mut c = RawClient::connect(&transport, ns.addr()).await.unwrap();

        // protocol.md 13.1 probe: topic=TBW102, AccessKey=rocketmq2, secret 12345678.
        for st in [SerializeType::ROCKETMQ, SerializeType::JSON] {
            let r = c
                .call(route_probe(Some("/u5P/wZUbhjanu4LM/UzEdo2u2I=")).serialize_type(st))
                .await
                .unwrap();
            assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{:?}", r.remark);
        }
        let r = c
            .call(route_probe(Some("/u5P/wZUbhjanu4LM/UzEdo2u2J=")))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NO_PERMISSION);
        let r = c.call(route_probe(None)).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::NO_PERMISSION);
        let r = c
            .call(RemotingCommand::with_header(
                RequestCode::GET_ROUTEINFO_BY_TOPIC,
                &GetRouteInfoRequestHeader::new("TBW102"),
            ))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NO_PERMISSION);

        let verdicts: Vec<AclVerdict> = ns.requests().into_iter().map(|r| r.acl.unwrap()).collect();
        assert!(verdicts[0].is_accepted() && verdicts[1].is_accepted());
        assert!(
            matches!(verdicts[2], AclVerdict::BadSignature { ref expected, .. } if expected == "/u5P/wZUbhjanu4LM/UzEdo2u2I=")
        );
        assert!(matches!(verdicts[3], AclVerdict::MissingSignature { .. }));
        assert_eq!(verdicts[4], AclVerdict::MissingAccessKey);

        // ACL 2.0-like rejection code.
        ns.set_acl_reject_code(ResponseCode::USER_NOT_EXIST);
        let mut other = route_probe(Some("x"));
        other.ext_fields.insert("AccessKey", "stranger");
        assert_eq!(
            c.call(other).await.unwrap().response_code(),
            ResponseCode::USER_NOT_EXIST
        );
        ns.disable_acl();
        assert_eq!(
            c.call(route_probe(None)).await.unwrap().response_code(),
            ResponseCode::SUCCESS
        );
    }
}

#[tokio::test]
async fn acl_signs_the_body_derived_vector() {
    let transport = Transport::memory();
    let cluster = FakeCluster::builder()
        .transport(transport.clone())
        .build()
        .await
        .unwrap();
    let broker = &cluster.brokers()[0];
    broker.require_acl("rocketmq2", "12345678");
    let mut c = RawClient::connect(&transport, broker.addr()).await.unwrap();
    // protocol.md 13.1 derived: {a:"PG", b:"TopicTest", AccessKey:"rocketmq2", SecurityToken:"tok"} + "hello".
    let make = |sig: &str, body: &'static [u8]| {
        let mut cmd = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2).body(body);
        for (k, v) in [
            ("a", "PG"),
            ("b", "TopicTest"),
            ("AccessKey", "rocketmq2"),
            ("SecurityToken", "tok"),
            ("Signature", sig),
        ] {
            cmd.ext_fields.insert(k, v);
        }
        cmd
    };
    // Accepted: the request then fails header validation, not ACL.
    let r = c
        .call(make("OVduRKF2Ld/6EH1Tth0EvdXBk5E=", b"hello"))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::INVALID_PARAMETER);
    // The same signature over another body is rejected.
    let r = c
        .call(make("OVduRKF2Ld/6EH1Tth0EvdXBk5E=", b"hellO"))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::NO_PERMISSION);
    let verdicts: Vec<bool> = broker
        .requests()
        .iter()
        .map(|r| r.acl.as_ref().unwrap().is_accepted())
        .collect();
    assert_eq!(verdicts, [true, false]);
    assert_eq!(broker.message_count(), 0);
}
