//! Rows C1–C5 and C7–C9 of the reliability matrix (single-broker transport faults),
//! through a [`Pool`] against the fake broker on the memory transport with paused
//! time, so every deadline is asserted exactly (ε = 200 ms).
//!
//! What the transport guarantees about delivery (C3, C4, C9): a request counts as
//! *written* once its whole frame has been handed to the socket. A failure before that
//! is `NotSent` (the peer cannot have decoded it); after that it is `Indeterminate`,
//! even if the peer in fact never read it all — the client cannot tell.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    CountingConnector, EPS, SEND, after, call_ok, finish, memory_cluster, pool, resolved, send,
    send_body, settle,
};
use rmq_protocol::header::pull_message::PullMessageRequestHeader;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{Delivery, RemotingError};
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn c1_refused_connect_fails_not_sent_at_once_and_backoff_limits_dials() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let dialer = CountingConnector::new(Arc::new(net));
    let pool = pool(dialer.clone());

    // Nothing listens on the address.
    let start = Instant::now();
    let e = pool
        .invoke_at("127.0.0.1:1", send("nobody"), after(3 * SECOND))
        .await
        .unwrap_err();
    assert!(matches!(e, RemotingError::Connect { .. }), "{e}");
    assert_eq!(e.delivery(), Delivery::NotSent);
    assert!(
        start.elapsed() < Duration::from_millis(30),
        "≪ the 3 s deadline"
    );

    // The broker goes down under an open connection.
    call_ok(&pool, a.addr(), "before").await;
    a.down().await;
    settle().await;
    let dials = dialer.dials();

    // A burst of 100 concurrent calls: one dial, 100 NotSent errors, all at once.
    let start = Instant::now();
    let burst: Vec<_> = (0..100)
        .map(|i| {
            let (p, addr) = (pool.clone(), a.addr().to_owned());
            tokio::spawn(async move {
                p.invoke_at(&addr, send(&format!("b{i}")), after(3 * SECOND))
                    .await
            })
        })
        .collect();
    for call in burst {
        let e = resolved(call).await.expect("join").unwrap_err();
        assert!(matches!(e, RemotingError::Connect { .. }), "{e}");
        assert_eq!(e.delivery(), Delivery::NotSent);
    }
    assert!(start.elapsed() < Duration::from_millis(30));
    assert_eq!(dialer.dials() - dials, 1, "a burst dials once");

    // 100 more calls spread over one second: the backoff (100 ms doubling, jittered to
    // [d/2, d]) lets through at most 4 more dials (at ≥ 50, 150, 350, 750 ms) and at
    // least 3 (by 110, 320, 730 ms).
    for i in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let start = Instant::now();
        let e = pool
            .invoke_at(a.addr(), send(&format!("s{i}")), after(3 * SECOND))
            .await
            .unwrap_err();
        assert_eq!(e.delivery(), Delivery::NotSent, "{e}");
        assert!(start.elapsed() < Duration::from_millis(30));
    }
    let spread = dialer.dials() - dials - 1;
    assert!((3..=4).contains(&spread), "{spread} dials in one second");
    assert_eq!(pool.stats().connect_failures, 1 + 1 + spread as u64);
    assert_eq!(
        a.requests().len(),
        1,
        "0 duplicates: only the call before the outage"
    );

    // Back up: the next call after the backoff reconnects.
    a.up().await.unwrap();
    tokio::time::sleep(10 * SECOND).await;
    call_ok(&pool, a.addr(), "after").await;
    assert_eq!(pool.stats().reconnects, 1);
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn c2_black_holed_connect_fails_by_min_of_connect_timeout_and_deadline() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    a.never_accept().await; // memory: the dial hangs like a dropped SYN
    let dialer = CountingConnector::new(Arc::new(net));
    let pool = pool(dialer.clone()); // connect_timeout 3 s

    // Deadline beyond the connect timeout: the connect timeout wins.
    let start = Instant::now();
    let e = pool
        .invoke_at(a.addr(), send("long"), after(10 * SECOND))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, RemotingError::Connect { .. }), "{e}");
    assert_eq!(e.delivery(), Delivery::NotSent);
    assert!(took >= 3 * SECOND && took <= 3 * SECOND + EPS, "{took:?}");
    tokio::time::sleep(SECOND).await; // past the first backoff (≤ 100 ms)

    // Deadline before the connect timeout: the deadline wins.
    let start = Instant::now();
    let e = pool
        .invoke_at(a.addr(), send("short"), after(SECOND))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(e, RemotingError::Timeout { written: false, .. }),
        "{e}"
    );
    assert_eq!(e.delivery(), Delivery::NotSent);
    assert!(took >= SECOND && took <= SECOND + EPS, "{took:?}");
    tokio::time::sleep(SECOND).await; // past the second backoff (≤ 200 ms)

    // 50 concurrent callers with deadlines 1.00 s .. 1.49 s: one dial in flight at a
    // time, one dial in all, every caller answered by its own bound.
    let dials = dialer.dials();
    let start = Instant::now();
    let calls: Vec<_> = (0..50u32)
        .map(|i| {
            let (p, addr) = (pool.clone(), a.addr().to_owned());
            let bound = SECOND + Duration::from_millis(10) * i;
            tokio::spawn(async move {
                let r = p
                    .invoke_at(&addr, send(&format!("c{i}")), start + bound)
                    .await;
                (r, start.elapsed(), bound)
            })
        })
        .collect();
    settle().await;
    assert_eq!(
        dialer.in_progress(),
        1,
        "single flight while the dial hangs"
    );
    for call in calls {
        let (r, took, bound) = resolved(call).await.expect("join");
        let e = r.unwrap_err();
        assert_eq!(e.delivery(), Delivery::NotSent, "{e}");
        assert!(
            took <= bound.min(3 * SECOND) + EPS,
            "{took:?} > {bound:?}: {e}"
        );
    }
    assert_eq!(dialer.max_in_progress(), 1);
    assert_eq!(dialer.dials() - dials, 1);
    assert_eq!(dialer.in_progress(), 0, "no connect attempt left behind");
    assert!(a.requests().is_empty());

    // Accepting again: the next call after the backoff connects.
    a.accept_again().await;
    tokio::time::sleep(10 * SECOND).await;
    call_ok(&pool, a.addr(), "after").await;
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn c3_reset_after_read_fails_pending_call_at_once_as_indeterminate() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    a.script(SEND).drop_connection().times(1);

    let start = Instant::now();
    let e = pool
        .invoke_at(a.addr(), send("rst"), after(10 * SECOND))
        .await
        .unwrap_err();
    assert!(
        matches!(e, RemotingError::ConnectionClosed { written: true, .. }),
        "{e}"
    );
    assert_eq!(e.delivery(), Delivery::Indeterminate);
    assert!(
        start.elapsed() < EPS,
        "immediately, not at the 10 s deadline"
    );
    assert_eq!(a.requests().len(), 1, "the broker read it");
    assert_eq!(a.message_count(), 0, "and reset before handling it");

    // The next call opens a new connection.
    call_ok(&pool, a.addr(), "next").await;
    assert_eq!(a.connections_accepted(), 2);
    assert_eq!(pool.stats().reconnects, 1);
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn c4_half_open_times_out_indeterminate_then_connection_is_recycled() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net)); // max_consecutive_timeouts 3
    call_ok(&pool, a.addr(), "before").await;
    a.pause(); // reads nothing, answers nothing, the connection stays up

    for i in 0..3 {
        let start = Instant::now();
        let e = pool
            .invoke_at(a.addr(), send(&format!("stalled{i}")), after(2 * SECOND))
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(e, RemotingError::Timeout { written: true, .. }),
            "{e}"
        );
        assert_eq!(e.delivery(), Delivery::Indeterminate);
        assert!(took >= 2 * SECOND && took <= 2 * SECOND + EPS, "{took:?}");
        settle().await;
        assert!(pool.connected_addrs().contains(&a.addr().to_owned()));
    }
    // Three timeouts in a row, then `half_open_grace` (1 s) of silence: recycled, not
    // earlier (a reply merely later than the deadlines could still clear it).
    let open = || pool.connected_addrs().contains(&a.addr().to_owned());
    tokio::time::sleep(SECOND / 2).await;
    assert!(open(), "still within the grace period");
    tokio::time::sleep(SECOND / 2 + EPS).await;
    assert!(
        !open(),
        "recycled after 3 timeouts in a row and 1 s of silence"
    );
    assert_eq!(pool.stats().timeouts, 3);
    assert_eq!(pool.stats().connections_closed, 1);

    a.resume();
    // Positive control: the three timed-out requests were delivered (Indeterminate was
    // the right answer): the resumed broker handles them from the old socket.
    resolved(a.wait_until(|b| b.message_count() == 4)).await;
    call_ok(&pool, a.addr(), "after").await;
    assert_eq!(
        pool.stats().connects,
        2,
        "the next call used a new connection"
    );
    assert_eq!(a.connections_accepted(), 2);
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn c4_a_slow_but_live_broker_keeps_its_connection() {
    // Deadlines shorter than the broker's answer time: a streak of timeouts, but the
    // late replies prove the peer alive, so the connection is not recycled and the
    // calls with longer deadlines on it succeed.
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    call_ok(&pool, a.addr(), "before").await;
    a.script(SEND).delay_reply(Duration::from_millis(100));
    let calls: Vec<_> = (0..20u64)
        .map(|i| {
            let (p, addr) = (pool.clone(), a.addr().to_owned());
            let deadline = after(Duration::from_millis(if i < 10 { 50 + i } else { 300 }));
            tokio::spawn(async move { p.invoke_at(&addr, send(&format!("s{i}")), deadline).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let r = resolved(call).await.expect("join");
        match r {
            Err(e) if i < 10 => assert_eq!(e.delivery(), Delivery::Indeterminate, "{e}"),
            Ok(r) if i >= 10 => assert_eq!(r.response_code(), ResponseCode::SUCCESS),
            other => panic!("call {i}: {other:?}"),
        }
    }
    tokio::time::sleep(2 * SECOND).await;
    assert_eq!(pool.stats().timeouts, 10);
    assert_eq!(pool.stats().late_replies, 10);
    assert_eq!(pool.stats().connections_closed, 0);
    assert_eq!(a.connections_accepted(), 1);
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn c5_late_response_is_dropped_and_counted_once() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    a.script(SEND).delay(5 * SECOND).times(1);

    let start = Instant::now();
    let e = pool
        .invoke_at(a.addr(), send("late"), after(2 * SECOND))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(e, RemotingError::Timeout { written: true, .. }),
        "{e}"
    );
    assert!(took >= 2 * SECOND && took <= 2 * SECOND + EPS, "{took:?}");
    assert_eq!(
        pool.stats().in_flight(),
        0,
        "removed from the table at its deadline"
    );

    // The answer comes at 5 s: dropped and counted, nobody completed twice.
    tokio::time::sleep(4 * SECOND).await;
    let stats = pool.stats();
    assert_eq!(stats.late_replies, 1);
    assert_eq!(stats.responses, 0);
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.in_flight(), 0);
    assert_eq!(
        a.message_count(),
        1,
        "the late request was processed (Indeterminate)"
    );

    // The connection is healthy: the next call uses it.
    call_ok(&pool, a.addr(), "next").await;
    assert_eq!(pool.stats().responses, 1);
    assert_eq!(pool.stats().late_replies, 1);
    assert_eq!(a.connections_accepted(), 1);
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn c7_response_in_one_byte_writes_decodes_within_the_fragment_pauses() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    let pause = Duration::from_millis(1);
    a.script(SEND).fragment_with_pause(1, pause).times(3);
    a.script(SEND).fragment(1).times(1);

    for i in 0..4 {
        let bytes_in = pool.stats().bytes_in;
        let start = Instant::now();
        let r = call_ok(&pool, a.addr(), &format!("frag{i}")).await;
        let took = start.elapsed();
        let h: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!(h.queue_offset, i64::from(i));
        assert_eq!(
            h.transaction_id.as_deref(),
            Some(format!("frag{i}").as_str())
        );
        let n = u32::try_from(pool.stats().bytes_in - bytes_in).unwrap();
        assert!(n > 50, "a whole response frame was read ({n} bytes)");
        // One write per byte, `pause` between writes (none for the last rule).
        let pauses = if i < 3 {
            pause * (n - 1)
        } else {
            Duration::ZERO
        };
        assert!(
            took >= pauses && took <= pauses + EPS,
            "{took:?} for {n} bytes"
        );
    }
    assert_eq!(a.connections_accepted(), 1);
    finish(&pool, Some(&cluster)).await;
}

fn pull() -> RemotingCommand {
    RemotingCommand::with_header(
        RequestCode::PULL_MESSAGE,
        &PullMessageRequestHeader::one_shot("CG", common::TOPIC, 0, 0, 1),
    )
}

#[tokio::test(start_paused = true)]
async fn c8_bandwidth_limit_completes_or_times_out_at_the_deadline_never_after() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    // A 1 MiB request, then its message pulled back through a 10 KB/s link (~105 s).
    let body = vec![b'x'; 1 << 20];
    let r = pool
        .invoke_at(a.addr(), send_body("big", body), after(10 * SECOND))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    a.script(RequestCode::PULL_MESSAGE).bandwidth(10_000);

    // A deadline the link can meet: completes, before the deadline.
    let deadline = after(300 * SECOND);
    let start = Instant::now();
    let r = pool.invoke_at(a.addr(), pull(), deadline).await.unwrap();
    let took = start.elapsed();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    let len = r.body_bytes().len();
    assert!(len > 1 << 20, "the message came back ({len} bytes)");
    // Positive control: the link really was slow (the shaper sleeps after each
    // 1/20 s slice, so the last bytes land one slice early).
    let wire = Duration::from_secs_f64(len as f64 / 10_000.0);
    assert!(
        took + Duration::from_millis(100) >= wire,
        "{took:?} for {len} bytes"
    );
    assert!(Instant::now() <= deadline);

    // A deadline it cannot meet: Timeout at the deadline, not a moment after.
    let start = Instant::now();
    let e = pool
        .invoke_at(a.addr(), pull(), after(30 * SECOND))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(e, RemotingError::Timeout { written: true, .. }),
        "{e}"
    );
    assert_eq!(e.delivery(), Delivery::Indeterminate);
    assert!(took >= 30 * SECOND && took <= 30 * SECOND + EPS, "{took:?}");
    assert_eq!(pool.stats().in_flight(), 0);

    // The rest of that answer still arrives and is dropped as a late reply.
    tokio::time::sleep(wire).await;
    assert_eq!(pool.stats().late_replies, 1);
    assert_eq!(
        a.connections_accepted(),
        1,
        "a slow link is not a dead connection"
    );
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn c9_reset_mid_write_is_not_sent_unless_the_frame_was_fully_written() {
    // The memory socket buffers 256 KiB per direction; the broker resets as soon as it
    // holds 16 KiB of an incomplete request frame.
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    a.set_reset_mid_request(Some(16 * 1024));

    // 1 MiB frame: most of it was never handed to the socket → NotSent.
    let start = Instant::now();
    let e = pool
        .invoke_at(
            a.addr(),
            send_body("huge", vec![1u8; 1 << 20]),
            after(10 * SECOND),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, RemotingError::ConnectionClosed { written: false, .. }),
        "{e}"
    );
    assert_eq!(e.delivery(), Delivery::NotSent);
    assert!(start.elapsed() < EPS);
    let sent = pool.stats().bytes_out;
    assert!(sent < 1 << 20, "only part of the frame left ({sent} bytes)");

    // 64 KiB frame: handed to the socket whole, then the broker reset while reading it
    // → Indeterminate (the client cannot know how far the broker got).
    let e = pool
        .invoke_at(
            a.addr(),
            send_body("mid", vec![2u8; 64 * 1024]),
            after(10 * SECOND),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, RemotingError::ConnectionClosed { written: true, .. }),
        "{e}"
    );
    assert_eq!(e.delivery(), Delivery::Indeterminate);

    assert!(
        a.requests().is_empty(),
        "neither frame was ever decoded by the broker"
    );
    assert_eq!(a.rejected_frames().len(), 2);
    assert_eq!(a.message_count(), 0);

    // No reuse of a connection with a partial frame on it: a fresh one per call.
    a.set_reset_mid_request(None);
    call_ok(&pool, a.addr(), "after").await;
    assert_eq!(a.connections_accepted(), 3);
    assert_eq!(pool.stats().connects, 3);
    finish(&pool, Some(&cluster)).await;
}
