//! Listener and connection lifecycle: down/up, restart, never_accept, kill.

mod common;

use std::io;
use std::time::Duration;

use common::{RawClient, send_v2, transports};
use rmq_protocol::{RequestCode, ResponseCode, SerializeType};
use rmq_testkit::fake::{CloseMode, FakeCluster, Transport};

#[tokio::test]
async fn down_refuses_up_listens_again_and_keeps_the_store() {
    for transport in transports() {
        let cluster = FakeCluster::builder()
            .transport(transport.clone())
            .topic("T", 4)
            .build()
            .await
            .unwrap();
        let broker = &cluster.brokers()[0];
        let addr = broker.addr().to_owned();
        let mut client = RawClient::connect(&transport, &addr).await.unwrap();
        let r = client
            .call(send_v2("T", 0, "K1", b"one", SerializeType::ROCKETMQ))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);

        broker.down().await;
        assert!(!broker.is_up());
        assert_eq!(broker.connection_count(), 0);
        // The open connection is gone ...
        let gone = client
            .call_within(
                send_v2("T", 0, "K2", b"two", SerializeType::ROCKETMQ),
                Duration::from_secs(10),
            )
            .await;
        assert!(gone.is_err());
        // ... and connects are refused.
        let refused = RawClient::connect(&transport, &addr).await.err().unwrap();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);

        broker.up().await.unwrap();
        assert_eq!(broker.addr(), addr);
        let mut client = RawClient::connect(&transport, &addr).await.unwrap();
        let r = client
            .call(send_v2("T", 0, "K3", b"three", SerializeType::ROCKETMQ))
            .await
            .unwrap();
        let h: rmq_protocol::header::send_response::SendMessageResponseHeader =
            r.decode_header().unwrap();
        assert_eq!(h.queue_offset, 1, "the store survived");
        assert_eq!(broker.message_count(), 2);
        assert_eq!(broker.find_by_uniq_key("K1").len(), 1);
        assert!(broker.find_by_uniq_key("K2").is_empty());

        broker.restart().await.unwrap();
        let mut client = RawClient::connect(&transport, &addr).await.unwrap();
        let r = client
            .call(send_v2("T", 0, "K4", b"four", SerializeType::ROCKETMQ))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
        assert_eq!(broker.connections_accepted(), 3);
        cluster.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn never_accept_in_memory_hangs_connects() {
    let transport = Transport::memory();
    let cluster = FakeCluster::builder()
        .transport(transport.clone())
        .build()
        .await
        .unwrap();
    let broker = &cluster.brokers()[0];
    let mut open = RawClient::connect(&transport, broker.addr()).await.unwrap();
    broker.never_accept().await;
    let hung = tokio::time::timeout(
        Duration::from_secs(60),
        RawClient::connect(&transport, broker.addr()),
    )
    .await;
    assert!(hung.is_err(), "the connect never completes");
    // The open connection is unaffected.
    let r = open
        .call(rmq_protocol::RemotingCommand::request(RequestCode(9999)))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::REQUEST_CODE_NOT_SUPPORTED);
    broker.accept_again().await;
    RawClient::connect(&transport, broker.addr()).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(1),
        broker.wait_until(|b| b.connections_accepted() == 2),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn never_accept_over_tcp_serves_nothing_new() {
    let transport = Transport::Tcp;
    let cluster = FakeCluster::builder()
        .transport(transport.clone())
        .build()
        .await
        .unwrap();
    let broker = &cluster.brokers()[0];
    broker.never_accept().await;
    assert!(broker.is_up());
    // The kernel may complete the handshake, but nothing is ever answered.
    if let Ok(mut c) = RawClient::connect(&transport, broker.addr()).await {
        let r = c
            .call_within(
                rmq_protocol::RemotingCommand::request(RequestCode(9999)),
                Duration::from_millis(300),
            )
            .await;
        assert!(r.is_err());
    }
    assert_eq!(broker.connections_accepted(), 0);
    broker.accept_again().await;
    let mut c = RawClient::connect(&transport, broker.addr()).await.unwrap();
    let r = c
        .call(rmq_protocol::RemotingCommand::request(RequestCode(9999)))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::REQUEST_CODE_NOT_SUPPORTED);
}

#[tokio::test]
async fn kill_connections_resets_clients_but_keeps_listening() {
    for transport in transports() {
        let cluster = FakeCluster::builder()
            .transport(transport.clone())
            .build()
            .await
            .unwrap();
        let ns = cluster.name_server();
        let mut a = RawClient::connect(&transport, ns.addr()).await.unwrap();
        let mut b = RawClient::connect(&transport, ns.addr()).await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            ns.wait_until(|s| s.connection_count() == 2),
        )
        .await
        .unwrap();
        ns.kill_connections().await;
        assert_eq!(ns.connection_count(), 0);
        for c in [&mut a, &mut b] {
            let r = c.read().await;
            assert!(matches!(r, Ok(None) | Err(_)), "{r:?}");
        }
        let mut c = RawClient::connect(&transport, ns.addr()).await.unwrap();
        let id = {
            tokio::time::timeout(
                Duration::from_secs(10),
                ns.wait_until(|s| s.connection_count() == 1),
            )
            .await
            .unwrap();
            ns.connections()[0].id
        };
        ns.close_connection(id, CloseMode::Graceful).await;
        assert!(c.read().await.unwrap().is_none());
        assert_eq!(ns.connections_accepted(), 3);
    }
}

#[tokio::test]
async fn dropping_every_handle_stops_the_server() {
    let transport = Transport::memory();
    let cluster = FakeCluster::builder()
        .transport(transport.clone())
        .build()
        .await
        .unwrap();
    let addr = cluster.name_server_addr().to_owned();
    let mut client = RawClient::connect(&transport, &addr).await.unwrap();
    drop(cluster);
    // The connection ends and the address is free again.
    assert!(
        tokio::time::timeout(Duration::from_secs(10), client.read())
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = RawClient::connect(&transport, &addr).await;
    assert_eq!(
        r.err().map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionRefused)
    );
}

#[tokio::test]
async fn reset_while_the_client_is_mid_write() {
    for transport in transports() {
        let cluster = FakeCluster::builder()
            .transport(transport.clone())
            .topic("T", 1)
            .build()
            .await
            .unwrap();
        let broker = &cluster.brokers()[0];
        broker.set_reset_mid_request(Some(64 * 1024));
        let mut client = RawClient::connect(&transport, broker.addr()).await.unwrap();
        let big =
            send_v2("T", 0, "BIG", b"", SerializeType::ROCKETMQ).body(vec![0u8; 3 * 1024 * 1024]);
        let mut frame = bytes::BytesMut::new();
        rmq_protocol::frame::encode(&big, &mut frame).unwrap();
        let failed = match client.send_raw(&frame).await {
            Err(_) => true,
            Ok(()) => !matches!(client.read().await, Ok(Some(_))),
        };
        assert!(
            failed,
            "the connection was reset before the request completed"
        );
        tokio::time::timeout(
            Duration::from_secs(10),
            broker.wait_until(|b| b.connection_count() == 0),
        )
        .await
        .unwrap();
        assert!(broker.rejected_frames()[0].reason.contains("mid-request"));
        assert!(broker.requests().is_empty());
        assert_eq!(broker.message_count(), 0);

        // Off again: a small request works.
        broker.set_reset_mid_request(None);
        let mut client = RawClient::connect(&transport, broker.addr()).await.unwrap();
        let r = client
            .call(send_v2("T", 0, "S", b"s", SerializeType::ROCKETMQ))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    }
}
