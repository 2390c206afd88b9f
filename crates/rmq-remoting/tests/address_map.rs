//! `AddressMap` routes a logical broker address to another dialled address (how a
//! test puts a fault proxy between the client and a broker), and can change at run
//! time.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{AddressMap, Delivery, MemoryNetwork, Pool, PoolConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every request with SUCCESS and `remark = name`.
fn serve(net: &MemoryNetwork, addr: &str, name: &'static str) {
    let mut listener = net.bind(addr).unwrap();
    tokio::spawn(async move {
        while let Some((mut io, _)) = listener.accept().await {
            tokio::spawn(async move {
                let codec = FrameCodec::default();
                let mut buf = BytesMut::new();
                while io.read_buf(&mut buf).await.unwrap_or(0) > 0 {
                    while let Ok(Some(req)) = codec.decode(&mut buf) {
                        let mut out = BytesMut::new();
                        codec
                            .encode(
                                &RemotingCommand::response_to(&req, ResponseCode::SUCCESS)
                                    .remark(name),
                                &mut out,
                            )
                            .unwrap();
                        if io.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
}

#[tokio::test(start_paused = true)]
async fn logical_address_is_dialled_through_the_map() {
    let net = MemoryNetwork::new();
    serve(&net, "proxy:1", "proxy");
    let map = Arc::new(AddressMap::new(Arc::new(net.clone())));
    map.insert("broker-a:10911", "proxy:1");
    let pool = Pool::new(map.clone(), PoolConfig::default());
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(1);
    let resp = pool
        .invoke_at(
            "broker-a:10911",
            RemotingCommand::request(RequestCode::SEND_MESSAGE_V2),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(
        resp.remark.as_deref(),
        Some("proxy"),
        "reached through the mapped address"
    );
    assert_eq!(
        pool.connected_addrs(),
        vec!["broker-a:10911".to_owned()],
        "keyed by the logical address"
    );

    // Without the mapping (and with the connection closed) the logical address itself
    // is dialled: nothing listens there.
    map.remove("broker-a:10911");
    pool.close("broker-a:10911");
    let err = pool
        .invoke_at(
            "broker-a:10911",
            RemotingCommand::request(RequestCode::SEND_MESSAGE_V2),
            deadline(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent);
}
