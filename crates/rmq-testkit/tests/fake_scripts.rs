//! Scripted broker behaviour, observed from a raw client. Timing tests run on the
//! memory transport with paused time; socket-level faults also run on TCP.

mod common;

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use common::{RawClient, send_v2, with_header};
use rmq_protocol::header::pull_message::PullMessageRequestHeader;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_testkit::fake::{FakeBroker, FakeCluster, Transport};
use tokio::time::Instant;

const SEND: RequestCode = RequestCode::SEND_MESSAGE_V2;
const LONG: Duration = Duration::from_secs(3600);

async fn setup(transport: Transport) -> (FakeCluster, FakeBroker, RawClient) {
    let cluster = FakeCluster::builder()
        .transport(transport.clone())
        .topic("T", 4)
        .build()
        .await
        .unwrap();
    let broker = cluster.brokers()[0].clone();
    let client = RawClient::connect(&transport, broker.addr()).await.unwrap();
    (cluster, broker, client)
}

fn send(uniq: &str) -> RemotingCommand {
    send_v2("T", 0, uniq, b"body", SerializeType::ROCKETMQ)
}

#[tokio::test(start_paused = true)]
async fn reply_twice_then_normal() {
    let (_c, broker, mut client) = setup(Transport::memory()).await;
    broker
        .script(SEND)
        .reply_with(ResponseCode::SYSTEM_BUSY, "[TIMEOUT_CLEAN_QUEUE]busy")
        .times(2);
    let codes: Vec<ResponseCode> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(
                client
                    .call(send(&format!("K{i}")))
                    .await
                    .unwrap()
                    .response_code(),
            );
        }
        v
    };
    assert_eq!(
        codes,
        [
            ResponseCode::SYSTEM_BUSY,
            ResponseCode::SYSTEM_BUSY,
            ResponseCode::SUCCESS
        ]
    );
    assert_eq!(broker.message_count(), 1, "scripted replies store nothing");
    let scripted: Vec<bool> = broker.requests().iter().map(|r| r.scripted).collect();
    assert_eq!(scripted, [true, true, false]);
    assert_eq!(broker.scripts_pending(), 0);
    // Other codes were never affected.
    broker.script(SEND).go_away();
    let r = client.call(send("G")).await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::GO_AWAY);
    broker.clear_scripts();
    assert_eq!(
        client.call(send("G2")).await.unwrap().response_code(),
        ResponseCode::SUCCESS
    );
}

#[tokio::test(start_paused = true)]
async fn delay_then_handle_and_delay_reply() {
    let (_c, broker, mut client) = setup(Transport::memory()).await;
    broker
        .script(SEND)
        .delay(Duration::from_millis(500))
        .times(1);
    let start = Instant::now();
    let early = client
        .call_within(send("D1"), Duration::from_millis(400))
        .await;
    assert_eq!(early.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert_eq!(broker.message_count(), 0, "not handled before the delay");
    // The response to the first call arrives at 500 ms.
    let r = client.read().await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    assert_eq!(broker.message_count(), 1);

    broker
        .script(SEND)
        .delay_reply(Duration::from_secs(2))
        .times(1);
    let start = Instant::now();
    let early = client.call_within(send("D2"), Duration::from_secs(1)).await;
    assert!(early.is_err());
    assert_eq!(
        broker.message_count(),
        2,
        "handled at once, reply held back"
    );
    let r = client.read().await.unwrap().unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn black_hole_reads_and_never_answers() {
    let (_c, broker, mut client) = setup(Transport::memory()).await;
    broker.script(SEND).black_hole().times(1);
    let r = client.call_within(send("BH"), LONG).await;
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert_eq!(broker.requests_with_code(SEND).len(), 1);
    assert_eq!(broker.message_count(), 0);
    // The connection still works.
    assert_eq!(
        client.call(send("after")).await.unwrap().response_code(),
        ResponseCode::SUCCESS
    );
    assert_eq!(broker.connections_accepted(), 1);
}

#[tokio::test]
async fn drop_and_close_after_read_over_tcp() {
    let (_c, broker, mut client) = setup(Transport::Tcp).await;
    broker.script(SEND).drop_connection().times(1);
    let r = client.call_within(send("X"), Duration::from_secs(10)).await;
    let kind = r.unwrap_err().kind();
    assert!(
        matches!(
            kind,
            io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
        ),
        "{kind:?}"
    );
    assert_eq!(broker.requests().len(), 1);
    assert_eq!(broker.message_count(), 0);

    broker.script(SEND).close_after_read().times(1);
    let mut client = RawClient::connect(&Transport::Tcp, broker.addr())
        .await
        .unwrap();
    client.send(&send("Y")).await.unwrap();
    assert!(
        client.read().await.unwrap().is_none(),
        "orderly end of stream, no reply"
    );
    tokio::time::timeout(
        Duration::from_secs(10),
        broker.wait_until(|b| b.connection_count() == 0),
    )
    .await
    .unwrap();
    assert_eq!(broker.connections_accepted(), 2);
    assert_eq!(broker.message_count(), 0);
}

#[tokio::test]
async fn garbage_instead_of_a_reply() {
    for transport in [Transport::memory(), Transport::Tcp] {
        let (_c, broker, mut client) = setup(transport).await;
        let junk = &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..];
        broker.script(SEND).garbage(junk).times(1);
        client.send(&send("G")).await.unwrap();
        let mut got = Vec::new();
        while got.len() < junk.len() {
            got.extend(client.read_chunk().await.unwrap());
        }
        assert_eq!(got, junk);
        assert_eq!(broker.message_count(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn fragmented_reply_arrives_byte_by_byte() {
    let (_c, broker, mut client) = setup(Transport::memory()).await;
    broker
        .script(SEND)
        .fragment_with_pause(1, Duration::from_millis(10))
        .times(1);
    let start = Instant::now();
    client.send(&send("F").opaque(7)).await.unwrap();
    let mut all = BytesMut::new();
    let mut chunks = 0;
    let response = loop {
        let chunk = client.read_chunk().await.unwrap();
        assert_eq!(chunk.len(), 1, "one byte per write");
        chunks += 1;
        all.extend_from_slice(&chunk);
        if let Some(cmd) = rmq_protocol::frame::decode(&mut all).unwrap() {
            break cmd;
        }
    };
    assert_eq!(response.opaque, 7);
    assert_eq!(response.response_code(), ResponseCode::SUCCESS);
    assert_eq!(start.elapsed(), Duration::from_millis(10) * (chunks - 1));
    assert_eq!(broker.message_count(), 1);
}

#[tokio::test]
async fn fragmented_reply_decodes_over_tcp() {
    let (_c, broker, mut client) = setup(Transport::Tcp).await;
    broker.script(SEND).fragment(3);
    for i in 0..3 {
        let r = client.call(send(&format!("F{i}"))).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
        let h: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!(h.queue_offset, i);
    }
}

#[tokio::test(start_paused = true)]
async fn bandwidth_limit_slows_a_large_reply() {
    let (_c, broker, mut client) = setup(Transport::memory()).await;
    let body = vec![b'x'; 20_000];
    let r = client.call(send("BIG").body(body)).await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    broker.script(RequestCode::PULL_MESSAGE).bandwidth(10_000);
    let pull = with_header(
        RequestCode::PULL_MESSAGE,
        &PullMessageRequestHeader::one_shot("CG", "T", 0, 0, 1),
    );
    let start = Instant::now();
    let r = client.call(pull).await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2200),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn reset_after_n_bytes_cuts_the_reply() {
    for transport in [Transport::memory(), Transport::Tcp] {
        let (_c, broker, mut client) = setup(transport).await;
        broker.script(SEND).reset_after(10).times(1);
        client.send(&send("R")).await.unwrap();
        let (bytes, _result) = client.read_to_end().await;
        assert_eq!(
            bytes.len(),
            10,
            "exactly 10 bytes of the reply, then the reset"
        );
        assert_eq!(broker.message_count(), 1, "the request itself was handled");
    }
}

#[tokio::test(start_paused = true)]
async fn stored_with_a_warning_code() {
    let (_c, broker, mut client) = setup(Transport::memory()).await;
    broker
        .script(SEND)
        .handle_with_code(ResponseCode::FLUSH_DISK_TIMEOUT)
        .times(1);
    let r = client.call(send("W")).await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::FLUSH_DISK_TIMEOUT);
    let h: SendMessageResponseHeader = r.decode_header().unwrap();
    assert_eq!(h.transaction_id.as_deref(), Some("W"));
    assert_eq!(broker.message_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn pause_holds_everything_until_resume() {
    let (_c, broker, mut client) = setup(Transport::memory()).await;
    broker.pause();
    let r = client.call_within(send("P"), Duration::from_secs(30)).await;
    assert!(r.is_err());
    assert_eq!(broker.requests().len(), 0, "nothing is read while paused");
    broker.resume();
    let r = client.read().await.unwrap().unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    assert_eq!(broker.message_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn catch_all_rule_and_order() {
    let (_c, broker, mut client) = setup(Transport::memory()).await;
    broker
        .script_all()
        .reply(ResponseCode::SERVICE_NOT_AVAILABLE)
        .times(1);
    broker
        .script(SEND)
        .reply(ResponseCode::SYSTEM_ERROR)
        .times(1);
    let a = client.call(send("A")).await.unwrap().response_code();
    let b = client.call(send("B")).await.unwrap().response_code();
    let c = client.call(send("C")).await.unwrap().response_code();
    assert_eq!(
        [a, b, c],
        [
            ResponseCode::SERVICE_NOT_AVAILABLE,
            ResponseCode::SYSTEM_ERROR,
            ResponseCode::SUCCESS
        ]
    );
}
