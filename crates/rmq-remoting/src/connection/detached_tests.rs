//! Detached requests: the callback gets exactly one answer on every path, the
//! in-flight slot is released with it, and what cannot be taken at once comes back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_protocol::{RemotingCommand, ResponseCode};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::super::tests::{pair, request};
use super::*;
use crate::connection::ConnectionConfig;
use crate::error::Delivery;

/// Hands the answer to a oneshot and counts calls.
struct ToChannel {
    tx: Option<oneshot::Sender<Result<RemotingCommand, RemotingError>>>,
    calls: Arc<Mutex<u32>>,
}

impl OnReply for ToChannel {
    fn on_reply(mut self, answer: Result<RemotingCommand, RemotingError>) {
        *self.calls.lock().unwrap() += 1;
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(answer);
        }
    }
}

fn callback() -> (
    ToChannel,
    oneshot::Receiver<Result<RemotingCommand, RemotingError>>,
    Arc<Mutex<u32>>,
) {
    let (tx, rx) = oneshot::channel();
    let calls = Arc::new(Mutex::new(0));
    let cb = ToChannel {
        tx: Some(tx),
        calls: calls.clone(),
    };
    (cb, rx, calls)
}

#[tokio::test(start_paused = true)]
async fn the_answer_reaches_the_callback_and_frees_the_slot() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let (cb, rx, calls) = callback();
    let deadline = Instant::now() + Duration::from_secs(3);
    assert!(
        conn.try_invoke_detached(request("d1"), deadline, cb)
            .is_ok()
    );
    let req = peer.read().await.unwrap();
    assert_eq!(req.remark.as_deref(), Some("d1"));
    assert_eq!(conn.in_flight(), 1);
    peer.reply(&req, ResponseCode::SUCCESS, "stored").await;
    let resp = rx.await.unwrap().unwrap();
    assert_eq!(resp.remark.as_deref(), Some("stored"));
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(
        conn.shared.in_flight.available_permits(),
        conn.shared.max_in_flight
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_times_the_callback_out_at_the_deadline_as_written() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let (cb, rx, calls) = callback();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(400);
    assert!(
        conn.try_invoke_detached(request("slow"), deadline, cb)
            .is_ok()
    );
    let _req = peer.read().await.unwrap();
    let err = rx.await.unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.delivery(), Delivery::Indeterminate);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(500),
        "{elapsed:?}"
    );
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(
        conn.shared.in_flight.available_permits(),
        conn.shared.max_in_flight
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_closing_under_a_request_fails_its_callback_with_the_address() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let (cb, rx, calls) = callback();
    assert!(
        conn.try_invoke_detached(request("x"), Instant::now() + Duration::from_secs(3), cb)
            .is_ok()
    );
    let _req = peer.read().await.unwrap();
    drop(peer); // the broker goes away with the request unanswered
    let err = rx.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, RemotingError::ConnectionClosed { addr, .. } if addr == "broker:10911"),
        "{err:?}"
    );
    assert_eq!(err.delivery(), Delivery::Indeterminate, "it was written");
    assert_eq!(*calls.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn go_away_marks_the_connection_draining_and_fails_as_not_processed() {
    let (conn, mut peer) = pair(ConnectionConfig::default());
    let (cb, rx, _) = callback();
    assert!(
        conn.try_invoke_detached(request("x"), Instant::now() + Duration::from_secs(3), cb)
            .is_ok()
    );
    let req = peer.read().await.unwrap();
    peer.reply(&req, ResponseCode::GO_AWAY, "").await;
    let err = rx.await.unwrap().unwrap_err();
    assert!(matches!(err, RemotingError::GoAway { .. }), "{err:?}");
    assert!(conn.is_unusable());
}

#[tokio::test(start_paused = true)]
async fn a_full_connection_hands_the_request_and_callback_back_uncalled() {
    let config = ConnectionConfig {
        max_in_flight: 1,
        ..ConnectionConfig::default()
    };
    let (conn, mut peer) = pair(config);
    let (first, rx1, _) = callback();
    let deadline = Instant::now() + Duration::from_secs(3);
    assert!(
        conn.try_invoke_detached(request("first"), deadline, first)
            .is_ok()
    );
    let (second, _rx2, calls2) = callback();
    let back = conn
        .try_invoke_detached(request("second"), deadline, second)
        .expect_err("no in-flight slot is free");
    assert_eq!(back.request.remark.as_deref(), Some("second"));
    assert_eq!(*calls2.lock().unwrap(), 0, "not called");
    // Positive control: once the first is answered, the slot is free again.
    let req = peer.read().await.unwrap();
    peer.reply(&req, ResponseCode::SUCCESS, "").await;
    rx1.await.unwrap().unwrap();
    let (third, rx3, _) = callback();
    assert!(
        conn.try_invoke_detached(request("third"), deadline, third)
            .is_ok()
    );
    let req = peer.read().await.unwrap();
    assert_eq!(req.remark.as_deref(), Some("third"));
    peer.reply(&req, ResponseCode::SUCCESS, "").await;
    rx3.await.unwrap().unwrap();

    conn.close();
    let (after_close, _rx, calls) = callback();
    assert!(
        conn.try_invoke_detached(request("late"), deadline, after_close)
            .is_err()
    );
    assert_eq!(*calls.lock().unwrap(), 0);
}
