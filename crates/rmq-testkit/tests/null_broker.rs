//! The null broker seen from a raw client over TCP: every answer decodes with the real
//! codec, in the request's header encoding; pipelined requests get pipelined answers.

mod common;

use bytes::BytesMut;
use common::{RawClient, batch_message, send_v2, v2_header, with_header};
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::id::offset::decode_offset_id_list;
use rmq_protocol::message::batch::encode_batch;
use rmq_protocol::route::TopicRouteData;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_testkit::fake::Transport;
use rmq_testkit::null_broker::{NullBroker, NullBrokerConfig};
use tokio::io::AsyncWriteExt;

fn route_request(topic: &str, st: SerializeType) -> RemotingCommand {
    with_header(
        RequestCode::GET_ROUTEINFO_BY_TOPIC,
        &GetRouteInfoRequestHeader {
            topic: topic.into(),
            ..Default::default()
        },
    )
    .serialize_type(st)
}

#[tokio::test]
async fn routes_sends_batches_and_control_requests_are_answered_in_both_encodings() {
    let config = NullBrokerConfig {
        queues: 3,
        ..NullBrokerConfig::default()
    };
    let broker = NullBroker::start_with("127.0.0.1:0", config).await.unwrap();
    let addr = broker.addr().to_string();
    for st in [SerializeType::JSON, SerializeType::ROCKETMQ] {
        let mut client = RawClient::connect(&Transport::Tcp, &addr).await.unwrap();

        // Any topic has a route to the broker itself.
        let r = client.call(route_request("AnyTopic", st)).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
        assert_eq!(r.serialize_type, st);
        let route = TopicRouteData::parse(r.body_bytes()).unwrap();
        assert_eq!(route.queue_datas.len(), 1);
        assert_eq!(route.queue_datas[0].write_queue_nums, 3);
        assert_eq!(route.queue_datas[0].perm, 6);
        assert_eq!(
            route.broker_datas[0].broker_addrs.get(&0),
            Some(&addr),
            "the route points at the null broker"
        );

        // A single send: the request's queue comes back, with one offset id.
        let r = client
            .call(send_v2("T", 2, "U1", b"body", st))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{:?}", r.remark);
        assert_eq!(r.serialize_type, st);
        let h: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!(h.queue_id, 2);
        let ids = decode_offset_id_list(&h.msg_id).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].addr, broker.addr());

        // A batch of three: three offset ids, consecutive offsets.
        let mut body = BytesMut::new();
        encode_batch(
            &[
                batch_message(b"m1", "B1"),
                batch_message(b"m2", "B2"),
                batch_message(b"m3", "B3"),
            ],
            &mut body,
        )
        .unwrap();
        let mut hb = v2_header("T", 1, &[("WAIT", "true")].into_iter().collect());
        hb.batch = true;
        let cmd = with_header(RequestCode::SEND_BATCH_MESSAGE, &hb)
            .body(body.freeze())
            .serialize_type(st);
        let r = client.call(cmd).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
        let h: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!(h.queue_id, 1);
        let ids = decode_offset_id_list(&h.msg_id).unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[1].offset, ids[0].offset + 1);

        // Heartbeat and unregister: SUCCESS; an unknown code: not supported.
        for code in [RequestCode::HEART_BEAT, RequestCode::UNREGISTER_CLIENT] {
            let r = client
                .call(RemotingCommand::request(code).serialize_type(st))
                .await
                .unwrap();
            assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{code:?}");
        }
        let r = client
            .call(RemotingCommand::request(RequestCode::PULL_MESSAGE).serialize_type(st))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::REQUEST_CODE_NOT_SUPPORTED);
        assert!(r.remark.is_some());

        // A one-way send gets no answer; the next call is answered.
        client
            .send(&send_v2("T", 0, "OW", b"x", st).oneway())
            .await
            .unwrap();
        let r = client.call(route_request("T", st)).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    }
    let stats = broker.stats();
    assert_eq!(stats.connections, 2);
    assert_eq!(stats.requests_by_code.get(&310), Some(&4)); // 2 calls + 2 one-way
    assert_eq!(stats.requests_by_code.get(&320), Some(&2));
    assert_eq!(stats.requests_by_code.get(&105), Some(&4));
    assert_eq!(stats.messages, 2 * (1 + 3 + 1));
    assert_eq!(stats.malformed, 0);
}

#[tokio::test]
async fn pipelined_requests_get_every_answer_in_order() {
    let broker = NullBroker::start("127.0.0.1:0").await.unwrap();
    let addr = broker.addr().to_string();
    let mut client = RawClient::connect(&Transport::Tcp, &addr).await.unwrap();
    // 500 requests written at once, both encodings mixed.
    let codec = rmq_protocol::frame::FrameCodec::default();
    let mut all = BytesMut::new();
    for i in 0..500 {
        let st = if i % 2 == 0 {
            SerializeType::JSON
        } else {
            SerializeType::ROCKETMQ
        };
        let mut cmd = send_v2("T", i % 8, "P", b"pipelined", st);
        cmd.opaque = i + 1;
        codec.encode(&cmd, &mut all).unwrap();
    }
    client.send_raw(&all).await.unwrap();
    for i in 0..500 {
        let r = client.read().await.unwrap().expect("an answer per request");
        assert_eq!(r.opaque, i + 1);
        let h: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!(h.queue_id, i % 8);
    }
    assert_eq!(broker.stats().messages, 500);
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    let broker = NullBroker::start("127.0.0.1:0").await.unwrap();
    let addr = broker.addr().to_string();
    let mut good = RawClient::connect(&Transport::Tcp, &addr).await.unwrap();
    let mut bad = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Serialize type 9 does not exist.
    bad.write_all(&[0, 0, 0, 8, 9, 0, 0, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut bad, &mut rest),
    )
    .await
    .expect("the bad connection is closed")
    .unwrap_or(0);
    assert_eq!(n, 0, "nothing is answered to garbage");
    let r = good
        .call(route_request("T", SerializeType::ROCKETMQ))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    assert_eq!(broker.stats().malformed, 1);
    // After shutdown nothing answers.
    broker.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        good.call_within(
            route_request("T", SerializeType::ROCKETMQ),
            std::time::Duration::from_secs(5)
        )
        .await
        .is_err()
    );
}
