//! Rows A2 and A7, broker-facing half: a broker that answers with a bad length prefix
//! or with bytes of another protocol. The connection is closed, every call in flight
//! on it fails at once (Indeterminate: the broker had read them), and another broker's
//! connection in the same pool keeps working. The decode half (errors from the prefix
//! alone, no allocation) is in `rmq-protocol/tests/decode_matrix.rs`.
//!
//! Memory transport, paused time.

mod common;

use std::time::Duration;

use common::{
    EPS, SEND, after, call_ok, finish, is_protocol_close, memory_cluster, pool, resolved, send,
};
use rmq_protocol::ResponseCode;
use rmq_protocol::frame::DEFAULT_MAX_FRAME;
use rmq_remoting::{Delivery, Pool};
use rmq_testkit::fake::FakeBroker;
use tokio::time::Instant;

/// Scripts `hostile` to read one request unanswered, then answer the next one with
/// `payload`; checks both calls fail at once as protocol closes (Indeterminate), the
/// hostile connection is closed, and a call to `good` in flight meanwhile succeeds.
async fn hostile_reply(pool: &Pool, hostile: &FakeBroker, good: &FakeBroker, payload: &[u8]) {
    let label = format!("{:02x?}", &payload[..payload.len().min(8)]);
    hostile.clear_requests();
    hostile.script(SEND).black_hole().times(1);
    hostile.script(SEND).garbage(payload.to_vec()).times(1);
    // A call to the healthy broker, in flight while the hostile one misbehaves.
    good.script(SEND).delay(Duration::from_millis(100)).times(1);
    let on_good = {
        let (p, addr) = (pool.clone(), good.addr().to_owned());
        tokio::spawn(async move {
            p.invoke_at(&addr, send("good"), after(Duration::from_secs(10)))
                .await
        })
    };

    let deadline = after(Duration::from_secs(10));
    let first = {
        let (p, addr) = (pool.clone(), hostile.addr().to_owned());
        tokio::spawn(async move { p.invoke_at(&addr, send("first"), deadline).await })
    };
    // The first request has been read (and is black-holed) before the second goes out.
    resolved(hostile.wait_until(|b| !b.requests().is_empty())).await;
    let start = Instant::now();
    let second = pool
        .invoke_at(hostile.addr(), send("second"), deadline)
        .await;
    let first = resolved(first).await.expect("join");
    for (name, result) in [("first", first), ("second", second)] {
        let e = result.expect_err(&label);
        assert!(is_protocol_close(&e), "{label} {name}: {e}");
        assert_eq!(e.delivery(), Delivery::Indeterminate, "{label} {name}: {e}");
    }
    assert!(
        start.elapsed() < EPS,
        "{label}: failed fast, not at the deadline"
    );
    assert_eq!(hostile.requests().len(), 2, "{label}");
    // Closed: the pool dropped it and the broker saw the client go away.
    assert!(
        !pool.connected_addrs().contains(&hostile.addr().to_owned()),
        "{label}"
    );
    resolved(hostile.wait_until(|b| b.connection_count() == 0)).await;

    let r = resolved(on_good)
        .await
        .expect("join")
        .expect("healthy broker unaffected");
    assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{label}");
    assert_eq!(pool.stats().in_flight(), 0, "{label}");
}

/// A length prefix followed by a few bytes.
fn prefix(len: i32) -> Vec<u8> {
    let mut v = len.to_be_bytes().to_vec();
    v.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    v
}

#[tokio::test(start_paused = true)]
async fn a2_bad_frame_length_closes_only_that_connection() {
    let (cluster, net) = memory_cluster(&["broker-a", "broker-b"]).await;
    let (a, b) = (cluster.brokers()[0].clone(), cluster.brokers()[1].clone());
    let pool = pool(std::sync::Arc::new(net));
    call_ok(&pool, b.addr(), "b-before").await;

    let over_max = i32::try_from(DEFAULT_MAX_FRAME).unwrap(); // + 4-byte prefix = max + 4
    for len in [0, 1, 2, 3, -1, i32::MIN, over_max, i32::MAX] {
        hostile_reply(&pool, &a, &b, &prefix(len)).await;
    }

    // The hostile broker gets a fresh connection per case; the healthy one kept its one.
    assert_eq!(a.connections_accepted(), 8);
    assert_eq!(b.connections_accepted(), 1);
    call_ok(&pool, a.addr(), "a-after").await;
    call_ok(&pool, b.addr(), "b-after").await;
    assert_eq!(b.connections_accepted(), 1);
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn a7_other_protocols_close_only_that_connection() {
    let (cluster, net) = memory_cluster(&["broker-a", "broker-b"]).await;
    let (a, b) = (cluster.brokers()[0].clone(), cluster.brokers()[1].clone());
    let pool = pool(std::sync::Arc::new(net));
    call_ok(&pool, b.addr(), "b-before").await;

    let payloads: [&[u8]; 6] = [
        // HTTP/2 client preface: LEN = "PRI " = 1 347 569 952 (apache/rocketmq#8086).
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        // An HTTP/1.1 answer.
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        // TLS alert (handshake_failure), as a TLS server answers plaintext.
        &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
        // TLS ServerHello record header and the start of its body.
        &[
            0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03,
        ],
        // A plausible length, then serialize type 7.
        &[
            0, 0, 0, 16, 7, 0, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ],
        // A plausible length, JSON header of 8 bytes that is not JSON.
        &[
            0, 0, 0, 12, 0, 0, 0, 8, 0xff, 0xfe, b'{', b'"', 0x00, 0x01, 0x02, 0x03,
        ],
    ];
    for payload in payloads {
        hostile_reply(&pool, &a, &b, payload).await;
    }

    assert_eq!(a.connections_accepted(), payloads.len() as u64);
    call_ok(&pool, a.addr(), "a-after").await;
    call_ok(&pool, b.addr(), "b-after").await;
    assert_eq!(
        b.connections_accepted(),
        1,
        "the healthy connection was never touched"
    );
    finish(&pool, Some(&cluster)).await;
}
