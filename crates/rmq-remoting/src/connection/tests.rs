//! Driver tests over an in-memory duplex with paused time: the peer side is
//! scripted by hand with the sans-IO codec.

use std::time::Duration;

use bytes::BytesMut;
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

use super::*;
use crate::error::Delivery;

/// The broker side of a duplex pair.
pub(super) struct Peer {
    io: DuplexStream,
    buf: BytesMut,
    codec: FrameCodec,
}

impl Peer {
    pub(super) fn new(io: DuplexStream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            codec: FrameCodec::default(),
        }
    }

    /// Writes `cmd` as it is (a request from the broker, say).
    pub(super) async fn send(&mut self, cmd: &RemotingCommand) {
        let mut out = BytesMut::new();
        self.codec.encode(cmd, &mut out).unwrap();
        self.io.write_all(&out).await.unwrap();
    }

    pub(super) async fn read(&mut self) -> Option<RemotingCommand> {
        loop {
            if let Some(cmd) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(cmd);
            }
            if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    pub(super) async fn reply(&mut self, to: &RemotingCommand, code: ResponseCode, remark: &str) {
        let resp = RemotingCommand::response_to(to, code).remark(remark);
        let mut out = BytesMut::new();
        self.codec.encode(&resp, &mut out).unwrap();
        self.io.write_all(&out).await.unwrap();
    }
}

pub(super) fn pair(config: ConnectionConfig) -> (Connection, Peer) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let conn = Connection::spawn(Box::new(client), "broker:10911", config);
    let peer = Peer {
        io: server,
        buf: BytesMut::new(),
        codec: FrameCodec::default(),
    };
    (conn, peer)
}

pub(super) fn request(tag: &str) -> RemotingCommand {
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2).remark(tag)
}

pub(super) fn in_secs(s: u64) -> Instant {
    Instant::now() + Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn out_of_order_replies_reach_the_right_callers() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.invoke(request(&format!("r{i}")), in_secs(3)).await })
        })
        .collect();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(peer.read().await.unwrap());
    }
    let opaques: std::collections::HashSet<_> = got.iter().map(|c| c.opaque).collect();
    assert_eq!(opaques.len(), 5, "opaques are unique per connection");
    for req in got.iter().rev() {
        // echo the request's tag back in the remark, newest first
        let tag = req.remark.clone().unwrap();
        peer.reply(req, ResponseCode::SUCCESS, &tag).await;
    }
    for (i, call) in calls.into_iter().enumerate() {
        let resp = call.await.unwrap().unwrap();
        assert_eq!(resp.remark.as_deref(), Some(format!("r{i}").as_str()));
    }
    assert_eq!(conn.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn timeout_then_late_reply_is_dropped() {
    let counters = Arc::new(Counters::default());
    let (client, server) = tokio::io::duplex(64 * 1024);
    let conn = Connection::spawn_with(
        Box::new(client),
        "b:1".into(),
        ConnectionConfig::default(),
        Arc::default(),
        counters.clone(),
    );
    let mut peer = Peer {
        io: server,
        buf: BytesMut::new(),
        codec: FrameCodec::default(),
    };
    let started = Instant::now();
    let call = tokio::spawn({
        let conn = conn.clone();
        async move {
            conn.invoke(request("slow"), Instant::now() + Duration::from_millis(500))
                .await
        }
    });
    let req = peer.read().await.unwrap();
    let err = call.await.unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.delivery(), Delivery::Indeterminate);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(600),
        "{elapsed:?}"
    );
    assert_eq!(conn.in_flight(), 0);
    peer.reply(&req, ResponseCode::SUCCESS, "late").await;
    // A following request still works and the late reply was counted, not delivered.
    let next = tokio::spawn({
        let conn = conn.clone();
        async move { conn.invoke(request("next"), in_secs(3)).await }
    });
    let req2 = peer.read().await.unwrap();
    peer.reply(&req2, ResponseCode::SUCCESS, "next").await;
    assert_eq!(next.await.unwrap().unwrap().remark.as_deref(), Some("next"));
    assert_eq!(
        counters
            .late_replies
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(conn.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn disconnect_fails_every_waiter_at_once() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.invoke(request(&format!("r{i}")), in_secs(30)).await })
        })
        .collect();
    for _ in 0..10 {
        peer.read().await.unwrap();
    }
    let started = Instant::now();
    drop(peer);
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(err, RemotingError::ConnectionClosed { written: true, .. }),
            "{err:?}"
        );
        assert_eq!(err.delivery(), Delivery::Indeterminate);
    }
    assert!(
        started.elapsed() < Duration::from_millis(10),
        "failed at once"
    );
    assert!(conn.is_closed());
    assert_eq!(conn.in_flight(), 0);
    // After close, new calls fail NotSent without waiting.
    let err = conn.invoke(request("after"), in_secs(3)).await.unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent);
}

#[tokio::test(start_paused = true)]
async fn queued_requests_come_back_not_sent() {
    // A peer that never reads: the duplex buffer fills, the write buffer passes its
    // soft limit and later requests stay queued. Closing fails them NotSent.
    let config = ConnectionConfig {
        write_buffer_soft_limit: 1024,
        ..ConnectionConfig::default()
    };
    let (client, server) = tokio::io::duplex(1024);
    let conn = Connection::spawn(Box::new(client), "b:1", config);
    let body = bytes::Bytes::from(vec![7u8; 4096]);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let conn = conn.clone();
            let body = body.clone();
            tokio::spawn(async move { conn.invoke(request("big").body(body), in_secs(30)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    conn.close();
    let mut not_sent = 0;
    let mut indeterminate = 0;
    for call in calls {
        match call.await.unwrap().unwrap_err().delivery() {
            Delivery::NotSent => not_sent += 1,
            Delivery::Indeterminate => indeterminate += 1,
        }
    }
    assert!(
        not_sent >= 15,
        "not_sent={not_sent} indeterminate={indeterminate}"
    );
    assert!(
        indeterminate <= 1,
        "only a frame fully handed to the socket is indeterminate"
    );
    drop(server);
    assert_eq!(conn.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn oneway_resolves_when_written_and_unknown_server_request_is_refused() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    conn.invoke_oneway(
        RemotingCommand::request(RequestCode::END_TRANSACTION),
        in_secs(3),
    )
    .await
    .unwrap();
    let got = peer.read().await.unwrap();
    assert!(got.is_oneway());
    // A server request nobody handles gets REQUEST_CODE_NOT_SUPPORTED ...
    let mut out = BytesMut::new();
    let check = RemotingCommand::request(RequestCode(9999)).opaque(77);
    peer.codec.encode(&check, &mut out).unwrap();
    // ... unless it is one-way: then nothing is sent back.
    let oneway = RemotingCommand::request(RequestCode::CHECK_TRANSACTION_STATE)
        .opaque(78)
        .oneway();
    peer.codec.encode(&oneway, &mut out).unwrap();
    peer.io.write_all(&out).await.unwrap();
    let resp = peer.read().await.unwrap();
    assert!(resp.is_response());
    assert_eq!(resp.opaque, 77);
    assert_eq!(
        resp.response_code(),
        ResponseCode::REQUEST_CODE_NOT_SUPPORTED
    );
    let nothing = tokio::time::timeout(Duration::from_secs(1), peer.read()).await;
    assert!(nothing.is_err(), "no answer to a one-way request");
}

#[tokio::test(start_paused = true)]
async fn consecutive_timeouts_close_a_half_open_connection() {
    let config = ConnectionConfig {
        max_consecutive_timeouts: 3,
        ..ConnectionConfig::default()
    };
    let (conn, mut peer) = pair(config);
    for i in 0..3 {
        let err = conn
            .invoke(
                request(&format!("t{i}")),
                Instant::now() + Duration::from_millis(100),
            )
            .await
            .unwrap_err();
        assert!(err.is_timeout());
        peer.read().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !conn.is_closed(),
        "a late reply may still come: not closed yet"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        conn.is_closed(),
        "closed after 3 timeouts in a row and 1 s of silence"
    );
}

#[tokio::test(start_paused = true)]
async fn replies_later_than_short_deadlines_keep_the_connection() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let c = conn.clone();
            tokio::spawn(async move {
                c.invoke(
                    request(&format!("s{i}")),
                    Instant::now() + Duration::from_millis(80),
                )
                .await
            })
        })
        .collect();
    let mut reqs = Vec::new();
    for _ in 0..5 {
        reqs.push(peer.read().await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // every deadline passed
    for r in &reqs {
        peer.reply(r, ResponseCode::SUCCESS, "late").await;
    }
    for call in calls {
        assert!(call.await.unwrap().unwrap_err().is_timeout());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!conn.is_closed(), "late replies prove the peer alive");
    let next = tokio::spawn({
        let c = conn.clone();
        async move { c.invoke(request("next"), in_secs(3)).await }
    });
    let r = peer.read().await.unwrap();
    peer.reply(&r, ResponseCode::SUCCESS, "ok").await;
    assert!(next.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn idle_connection_closes_and_dropped_handles_stop_the_driver() {
    let config = ConnectionConfig {
        idle_timeout: Duration::from_secs(120),
        ..ConnectionConfig::default()
    };
    let (conn, mut peer) = pair(config);
    tokio::time::sleep(Duration::from_secs(121)).await;
    assert!(conn.is_closed());
    assert!(peer.read().await.is_none(), "socket closed");

    let (conn, mut peer) = pair(ConnectionConfig::default());
    drop(conn);
    assert!(
        peer.read().await.is_none(),
        "dropping every handle closes the socket"
    );
}

#[tokio::test(start_paused = true)]
async fn in_flight_bound_makes_callers_wait_then_time_out_not_sent() {
    let config = ConnectionConfig {
        max_in_flight: 2,
        ..ConnectionConfig::default()
    };
    let (conn, mut peer) = pair(config);
    let a = tokio::spawn({
        let c = conn.clone();
        async move { c.invoke(request("a"), in_secs(10)).await }
    });
    let b = tokio::spawn({
        let c = conn.clone();
        async move { c.invoke(request("b"), in_secs(10)).await }
    });
    peer.read().await.unwrap();
    peer.read().await.unwrap();
    let err = conn
        .invoke(request("c"), Instant::now() + Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemotingError::Timeout { written: false, .. }),
        "{err:?}"
    );
    assert_eq!(conn.in_flight(), 2);
    drop(peer);
    let _ = (a.await, b.await);
    assert_eq!(conn.in_flight(), 0);
}

/// Polls `fut` once without a runtime turn in between (the driver cannot run).
fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(fut).poll(&mut cx)
}

/// Bytes the peer can read right now, without yielding to the runtime.
fn readable_now(peer: &mut Peer) -> usize {
    let mut raw = [0u8; 4096];
    let mut buf = tokio::io::ReadBuf::new(&mut raw);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut peer.io), &mut cx, &mut buf) {
        std::task::Poll::Ready(Ok(())) => {
            let n = buf.filled().len();
            peer.buf.extend_from_slice(buf.filled());
            n
        }
        _ => 0,
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_writes_in_the_caller_and_a_busy_one_queues_to_the_driver() {
    let counters = Arc::new(Counters::default());
    let (client, server) = tokio::io::duplex(64 * 1024);
    let conn = Connection::spawn_with(
        Box::new(client),
        "b:1".into(),
        ConnectionConfig::default(),
        Arc::default(),
        counters.clone(),
    );
    let mut peer = Peer {
        io: server,
        buf: BytesMut::new(),
        codec: FrameCodec::default(),
    };
    // Idle: the first poll of the call already put the frame on the wire, before the
    // driver task had any chance to run.
    let mut first = Box::pin(conn.invoke(request("alone"), in_secs(5)));
    assert!(poll_once(&mut first).is_pending());
    assert!(
        readable_now(&mut peer) > 0,
        "the caller wrote its own frame"
    );
    let req = peer.read().await.unwrap();
    assert_eq!(req.remark.as_deref(), Some("alone"));
    // Busy (positive control): with `first` in flight, a second call is queued to
    // the driver; nothing reaches the wire until the driver runs.
    let mut second = Box::pin(conn.invoke(request("queued"), in_secs(5)));
    assert!(poll_once(&mut second).is_pending());
    assert_eq!(
        readable_now(&mut peer),
        0,
        "queued to the driver, not written"
    );
    let (a, b) = tokio::join!(first, async {
        let req2 = peer.read().await.unwrap();
        assert_eq!(req2.remark.as_deref(), Some("queued"));
        assert_ne!(req2.opaque, req.opaque, "one opaque counter for both paths");
        peer.reply(&req, ResponseCode::SUCCESS, "r1").await;
        peer.reply(&req2, ResponseCode::SUCCESS, "r2").await;
        second.await
    });
    assert_eq!(a.unwrap().remark.as_deref(), Some("r1"));
    assert_eq!(b.unwrap().remark.as_deref(), Some("r2"));
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(
        counters.requests.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        counters
            .responses
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_path_write_the_socket_cannot_take_at_once_is_finished_by_the_driver() {
    // A 1 KiB pipe and an 8 KiB frame: the caller writes what fits, the driver the rest.
    let (client, server) = tokio::io::duplex(1024);
    let conn = Connection::spawn(Box::new(client), "b:1", ConnectionConfig::default());
    let mut peer = Peer {
        io: server,
        buf: BytesMut::new(),
        codec: FrameCodec::default(),
    };
    let body = bytes::Bytes::from(vec![5u8; 8 * 1024]);
    let call = tokio::spawn({
        let conn = conn.clone();
        let body = body.clone();
        async move { conn.invoke(request("big").body(body), in_secs(5)).await }
    });
    let req = peer.read().await.unwrap();
    assert_eq!(req.body.as_deref(), Some(&body[..]));
    peer.reply(&req, ResponseCode::SUCCESS, "ok").await;
    assert_eq!(call.await.unwrap().unwrap().remark.as_deref(), Some("ok"));
}

#[tokio::test(start_paused = true)]
async fn a_fast_path_request_half_written_when_the_peer_vanishes_is_not_sent() {
    // The peer never reads: only 1 KiB of the frame leaves; closing must classify
    // the request NotSent (its frame was never completely written).
    let (client, server) = tokio::io::duplex(1024);
    let conn = Connection::spawn(Box::new(client), "b:1", ConnectionConfig::default());
    let call = tokio::spawn({
        let conn = conn.clone();
        async move {
            conn.invoke(request("big").body(vec![1u8; 8 * 1024]), in_secs(30))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(conn.in_flight(), 1);
    drop(server);
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.delivery(), Delivery::NotSent, "{err:?}");
    // Positive control: a frame that was fully written is Indeterminate.
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.invoke(request("small"), in_secs(30)).await }
    });
    peer.read().await.unwrap();
    drop(peer);
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.delivery(), Delivery::Indeterminate, "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_fast_path_call_is_swept_at_its_deadline() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let mut call = Box::pin(conn.invoke(
        request("dropped"),
        Instant::now() + Duration::from_millis(100),
    ));
    assert!(poll_once(&mut call).is_pending());
    peer.read().await.unwrap();
    assert_eq!(conn.in_flight(), 1);
    drop(call);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        conn.in_flight(),
        0,
        "the driver swept the abandoned request"
    );
}
