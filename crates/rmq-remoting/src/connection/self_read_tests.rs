//! A fast-path caller reads its own answer (`read_side.rs`): without the driver
//! task, and leaving everything else it reads, and the reading itself, to the
//! driver afterwards. Paused time, an in-memory duplex, the peer scripted by hand.

use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;

use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use tokio::time::Instant;

use super::tests::{Peer, in_secs, pair, request};
use super::*;

/// Polls `fut` once without a runtime turn in between (the driver cannot run).
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(fut).poll(&mut cx)
}

fn counted(config: ConnectionConfig) -> (Connection, Peer, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let (client, server) = tokio::io::duplex(64 * 1024);
    let conn = Connection::spawn_with(
        Box::new(client),
        "b:1".into(),
        config,
        Arc::default(),
        counters.clone(),
    );
    (conn, Peer::new(server), counters)
}

/// A request from the broker that the client does not handle (the driver answers
/// REQUEST_CODE_NOT_SUPPORTED).
fn server_request(opaque: i32) -> RemotingCommand {
    let mut cmd = RemotingCommand::request(RequestCode(9_999)).remark("from the broker");
    cmd.opaque = opaque;
    cmd
}

/// A call sent alone on `conn` after the driver's first turn, so that it takes the
/// idle fast path: written by its first poll, not answered; with the request as the
/// peer read it.
async fn sent_alone<'c>(
    conn: &'c Connection,
    peer: &mut Peer,
    tag: &str,
) -> (
    Pin<Box<dyn Future<Output = Result<RemotingCommand, RemotingError>> + 'c>>,
    RemotingCommand,
) {
    tokio::time::sleep(Duration::from_millis(1)).await;
    let mut call: Pin<Box<dyn Future<Output = _>>> =
        Box::pin(conn.invoke(request(tag), in_secs(5)));
    assert!(poll_once(&mut call).is_pending());
    let req = peer.read().await.unwrap();
    (call, req)
}

#[tokio::test(start_paused = true)]
async fn a_lone_request_is_answered_in_its_caller_without_the_driver() {
    for caller_reads in [true, false] {
        let config = ConnectionConfig {
            caller_reads,
            ..ConnectionConfig::default()
        };
        let (conn, mut peer, counters) = counted(config);
        // The driver's first turn: it waits for the socket to be readable.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut call = Box::pin(conn.invoke(request("alone"), in_secs(5)));
        assert!(poll_once(&mut call).is_pending(), "written, not answered");
        // The peer reads and answers without the test task yielding: the driver
        // task gets no turn before the second poll.
        let req = peer.read().await.unwrap();
        peer.reply(&req, ResponseCode::SUCCESS, "direct").await;
        let second = poll_once(&mut call);
        if !caller_reads {
            // Positive control: the answer waits for the driver.
            assert!(second.is_pending(), "caller_reads off: read by the driver");
            assert_eq!(call.await.unwrap().remark.as_deref(), Some("direct"));
            continue;
        }
        let Poll::Ready(answer) = second else {
            panic!("the caller read its own answer on its second poll")
        };
        assert_eq!(answer.unwrap().remark.as_deref(), Some("direct"));
        assert_eq!(conn.in_flight(), 0);
        assert_eq!(counters.requests.load(Relaxed), 1);
        assert_eq!(counters.responses.load(Relaxed), 1);
        assert!(counters.bytes_in.load(Relaxed) > 0);
        // The next one works the same (the registration and slot were cleaned up).
        let mut call = Box::pin(conn.invoke(request("again"), in_secs(5)));
        assert!(poll_once(&mut call).is_pending());
        let req = peer.read().await.unwrap();
        peer.reply(&req, ResponseCode::SUCCESS, "direct 2").await;
        let Poll::Ready(answer) = poll_once(&mut call) else {
            panic!("second request answered in its caller too")
        };
        assert_eq!(answer.unwrap().remark.as_deref(), Some("direct 2"));
        // The caller handed reading back to the driver: a broker request that comes
        // later, with no caller waiting, is answered.
        peer.send(&server_request(9)).await;
        let refused = tokio::time::timeout(Duration::from_secs(5), peer.read())
            .await
            .expect("the driver reads again")
            .unwrap();
        assert_eq!(refused.opaque, 9);
    }
}

#[tokio::test(start_paused = true)]
async fn what_a_reading_caller_finds_for_others_and_later_frames_reach_the_driver() {
    let (conn, mut peer, counters) = counted(ConnectionConfig::default());
    let (mut call, req) = sent_alone(&conn, &mut peer, "mine").await;
    // A broker request arrives just before the answer, in the same read.
    peer.send(&server_request(77)).await;
    peer.reply(&req, ResponseCode::SUCCESS, "answer").await;
    let Poll::Ready(answer) = poll_once(&mut call) else {
        panic!("the caller read its own answer")
    };
    assert_eq!(answer.unwrap().remark.as_deref(), Some("answer"));
    // The broker request it read on the way went to the driver, which answers it.
    let refused = tokio::time::timeout(Duration::from_secs(5), peer.read())
        .await
        .expect("the driver answered the broker request")
        .unwrap();
    assert_eq!(refused.opaque, 77);
    assert_eq!(
        refused.response_code(),
        ResponseCode::REQUEST_CODE_NOT_SUPPORTED
    );
    // Reading is the driver's again: a broker request with no caller waiting.
    peer.send(&server_request(78)).await;
    let refused = tokio::time::timeout(Duration::from_secs(5), peer.read())
        .await
        .expect("the driver reads once the caller is done")
        .unwrap();
    assert_eq!(refused.opaque, 78);
    assert_eq!(counters.server_requests.load(Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn a_reading_caller_that_is_dropped_leaves_reading_to_the_driver() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let (mut call, req) = sent_alone(&conn, &mut peer, "dropped").await;
    // Its second poll registers it as the reader (nothing to read yet).
    assert!(poll_once(&mut call).is_pending());
    drop(call);
    // The driver reads again: it answers a broker request, and counts the
    // abandoned request's answer as late.
    peer.send(&server_request(5)).await;
    let refused = tokio::time::timeout(Duration::from_secs(5), peer.read())
        .await
        .expect("the driver reads after the caller left")
        .unwrap();
    assert_eq!(refused.opaque, 5);
    peer.reply(&req, ResponseCode::SUCCESS, "late").await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(conn.in_flight(), 0);
    assert!(!conn.is_closed());
}

/// Answers every request from the client, after `delay`.
fn answer_all(mut peer: Peer, delay: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(req) = peer.read().await {
            tokio::time::sleep(delay).await;
            peer.reply(&req, ResponseCode::SUCCESS, "ok").await;
        }
    })
}

#[tokio::test(start_paused = true)]
async fn answers_read_by_callers_keep_the_connection_from_idling_out() {
    let config = ConnectionConfig {
        idle_timeout: Duration::from_secs(1),
        ..ConnectionConfig::default()
    };
    let (conn, peer, _) = counted(config);
    let _peer = answer_all(peer, Duration::from_millis(1));
    // A request every 300 ms for 3 s, each answered in its caller.
    for _ in 0..10 {
        conn.invoke(request("busy"), in_secs(5))
            .await
            .expect("answered");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!conn.is_closed(), "in use for 3 s with a 1 s idle timeout");
    // Positive control: left alone, it does idle out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(conn.is_closed(), "idle for 2 s");
}

#[tokio::test(start_paused = true)]
async fn answers_read_by_callers_end_a_timeout_streak() {
    let config = ConnectionConfig {
        max_consecutive_timeouts: 1,
        half_open_grace: Duration::from_secs(1),
        ..ConnectionConfig::default()
    };
    let (conn, mut peer, counters) = counted(config);
    // One request the peer never answers: the streak starts.
    let lost = tokio::spawn({
        let conn = conn.clone();
        async move {
            conn.invoke(request("lost"), Instant::now() + Duration::from_millis(100))
                .await
        }
    });
    peer.read().await.unwrap();
    assert!(lost.await.unwrap().is_err());
    assert_eq!(counters.timeouts.load(Relaxed), 1);
    // Then answers keep coming, each read by its caller, for longer than the grace.
    let _peer = answer_all(peer, Duration::from_millis(1));
    for _ in 0..10 {
        conn.invoke(request("fine"), in_secs(5))
            .await
            .expect("answered");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        !conn.is_closed(),
        "answers arrived: not a half-open connection"
    );
}

#[tokio::test(start_paused = true)]
async fn a_go_away_read_by_its_caller_drains_the_connection() {
    let (conn, mut peer, counters) = counted(ConnectionConfig::default());
    let mut call = Box::pin(conn.invoke(request("bye"), in_secs(5)));
    assert!(poll_once(&mut call).is_pending());
    let req = peer.read().await.unwrap();
    peer.reply(&req, ResponseCode::GO_AWAY, "going").await;
    let Poll::Ready(answer) = poll_once(&mut call) else {
        panic!("read by the caller")
    };
    assert_eq!(
        answer.unwrap().response_code(),
        ResponseCode::GO_AWAY,
        "the connection hands the answer up; the pool retries elsewhere"
    );
    assert!(conn.is_unusable(), "draining after GO_AWAY");
    assert_eq!(counters.go_aways.load(Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn the_peer_closing_while_a_caller_reads_fails_the_call_indeterminate() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let mut call = Box::pin(conn.invoke(request("cut"), in_secs(5)));
    assert!(poll_once(&mut call).is_pending());
    peer.read().await.unwrap();
    assert!(
        poll_once(&mut call).is_pending(),
        "the caller is the reader"
    );
    drop(peer);
    let err = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("resolved well before its deadline")
        .unwrap_err();
    assert_eq!(
        err.delivery(),
        crate::error::Delivery::Indeterminate,
        "{err:?}"
    );
    assert!(conn.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_reading_caller_stops_reading_once_it_found_frames_for_others() {
    let (conn, mut peer, counters) = counted(ConnectionConfig::default());
    let (mut call, req) = sent_alone(&conn, &mut peer, "mine").await;
    // A broker request: the caller reads it, for the driver, and stops reading.
    peer.send(&server_request(1)).await;
    assert!(poll_once(&mut call).is_pending());
    let read_by_caller = counters.bytes_in.load(Relaxed);
    assert!(read_by_caller > 0, "the caller read the broker request");
    // Then a flood, and the answer behind it. The driver has had no turn yet: a
    // caller still reading would take all of it into memory, for the driver,
    // and its own answer with it.
    for opaque in 2..=40 {
        peer.send(&server_request(opaque)).await;
    }
    peer.reply(&req, ResponseCode::SUCCESS, "behind the flood")
        .await;
    assert!(
        poll_once(&mut call).is_pending(),
        "the caller no longer reads: its answer waits for the driver"
    );
    assert_eq!(
        counters.bytes_in.load(Relaxed),
        read_by_caller,
        "nothing more was read"
    );
    {
        let rs = crate::lock(&conn.shared.rs);
        assert_eq!(rs.inbox.len(), 1, "what it holds for the driver: one read");
    }
    // The driver reads the rest: the answer reaches the caller, every broker
    // request is refused.
    let answer = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("answered through the driver")
        .unwrap();
    assert_eq!(answer.remark.as_deref(), Some("behind the flood"));
    for opaque in 1..=40 {
        let refused = tokio::time::timeout(Duration::from_secs(2), peer.read())
            .await
            .expect("the driver refused each broker request")
            .unwrap();
        assert_eq!(refused.opaque, opaque);
    }
    assert_eq!(counters.server_requests.load(Relaxed), 40);
}
