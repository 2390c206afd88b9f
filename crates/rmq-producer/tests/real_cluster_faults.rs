//! Transport faults against the real brokers (reliability matrix rows C2, C4, C6–C9):
//! the producer's connections to broker-a go through an in-process `FaultProxy`
//! (`rmq_testkit::proxy`), routed there by an `AddressMap` connector, while broker-b is
//! reached directly. Only this producer sees the faults, so the shared cluster is not
//! disturbed; the tests of this binary still run one at a time (`SERIAL`). Every test
//! uses its own topic and reads it back by the UNIQ_KEYs it produced.
//!
//! Bounds are real-socket bounds (seconds); exact deadlines are asserted on the
//! in-memory transport in `faults.rs`. Half-open brokers through `cluster pause` are in
//! `real_cluster_faults_pause.rs`.

#[path = "real_cluster_faults_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use rmq_producer::{Delivery, Message, Producer, SendError, SendErrorKind, SendResult};
use rmq_testkit::proxy::{Accept, Direction, LinkFaults};

use support::{AttemptLog, Env, SERIAL, noise, pinned};

/// The default send deadline.
const DEADLINE: Duration = Duration::from_secs(3);
/// Slack on real sockets with other builds on the machine.
const SLACK: Duration = Duration::from_secs(1);

/// Sends `make(i)` until a send's first attempt went to broker-a (at most 16 sends);
/// returns that send's UNIQ_KEY (from the log), outcome and duration, and the results
/// of the sends before it.
async fn send_until_broker_a(
    p: &Producer,
    log: &AttemptLog,
    make: impl Fn(usize) -> Message,
) -> (
    String,
    Result<SendResult, SendError>,
    Duration,
    Vec<SendResult>,
) {
    let mut before = Vec::new();
    for i in 0..16 {
        let mut m = make(i);
        let key = p.assign_uniq_key(&mut m).to_owned();
        let start = Instant::now();
        let r = p.send(m).await;
        let took = start.elapsed();
        if log.brokers(&key).first().map(String::as_str) == Some("broker-a") {
            return (key, r, took, before);
        }
        before.push(r.unwrap_or_else(|e| panic!("send {i} (first attempt on broker-b): {e}")));
    }
    panic!("16 sends never chose broker-a first");
}

/// Polls `cond` every 10 ms until it holds or `limit` passes. For the proxy's
/// counters: it counts a chunk after writing it and a reset after the RST, so the
/// producer may see either a moment before it is counted.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// `n` sends right after a fault hit broker-a: all stored on broker-b at once.
async fn next_sends_avoid_broker_a(env: &Env, p: &Producer, log: &AttemptLog, n: usize) {
    for i in 0..n {
        let start = Instant::now();
        let r = p
            .send(Message::new(&env.topic, format!("after {i}")))
            .await
            .unwrap_or_else(|e| panic!("send {i} after the fault: {e}"));
        assert_eq!(
            log.brokers(&r.msg_id),
            ["broker-b"],
            "send {i} after the fault must go to broker-b only"
        );
        assert!(start.elapsed() < SLACK, "send {i}: {:?}", start.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_c2_black_holed_connect_to_broker_a_fails_over_as_not_sent() {
    let _serial = SERIAL.lock().await;
    let Some(env) = Env::new("RmqFaultC2").await else {
        return;
    };
    let (proxy, connector) = env.proxy_a().await;
    // Connects to broker-a hang (SYNs dropped) from the start.
    proxy
        .set_accept(Accept::BlackHole)
        .await
        .expect("black hole");
    let (p, log) = env.producer("rmq_it_faults_c2", connector).await;

    let (key, r, took, before) =
        send_until_broker_a(&p, &log, |i| Message::new(&env.topic, format!("c2 {i}"))).await;
    let attempts = log.of(&key);
    let r = r.unwrap_or_else(|e| panic!("the send that dialled broker-a failed: {e} {attempts:?}"));
    assert_eq!(r.message_queue.broker_name, "broker-b");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].broker, "broker-a");
    assert_eq!(
        attempts[0].delivery,
        Some(Delivery::NotSent),
        "a connect that never completed sent nothing: {attempts:?}"
    );
    assert_eq!(attempts[1].broker, "broker-b");
    // The connect waited min(connect timeout 3 s, attempt budget 2.6 s), then failed over
    // within the send's deadline.
    assert!(
        took >= Duration::from_secs(2),
        "the connect gave up early: {took:?}"
    );
    assert!(took < DEADLINE + SLACK, "{took:?}");
    assert!(
        p.stats().isolated_brokers.contains(&"broker-a".to_owned()),
        "{:?}",
        p.stats()
    );
    next_sends_avoid_broker_a(&env, &p, &log, 8).await;
    assert_eq!(proxy.stats().accepted, 0, "no connect reached the proxy");

    // 0 duplicates: each acked key is stored once, on broker-b.
    let stored = env.stored().await;
    let mut keys: Vec<String> = before.into_iter().map(|r| r.msg_id.into_string()).collect();
    keys.push(key);
    for k in &keys {
        let copies = stored.get(k).map_or(0, Vec::len);
        assert_eq!(copies, 1, "{k} stored {copies} times");
        assert_eq!(stored[k][0].0, "broker-b");
    }
    assert_eq!(p.stats().in_flight, 0);
    p.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_c4_black_holed_broker_a_times_out_indeterminate_and_fails_over() {
    let _serial = SERIAL.lock().await;
    let Some(env) = Env::new("RmqFaultC4").await else {
        return;
    };
    let (proxy, connector) = env.proxy_a().await;
    let (p, log) = env.producer("rmq_it_faults_c4", connector).await;
    let warm = env.warm_up(&p, &log).await;
    // broker-a's last warm-up answer may be read before the proxy counts it.
    eventually(SLACK, || proxy.stats().to_client > 0).await;
    assert!(
        proxy.stats().to_client > 0,
        "broker-a answered through the proxy"
    );

    // The connection stays up; nothing gets through either way (half-open).
    proxy.set_black_hole(true);
    let (key, r, took, before) =
        send_until_broker_a(&p, &log, |i| Message::new(&env.topic, format!("c4 {i}"))).await;
    let attempts = log.of(&key);
    let r = r.unwrap_or_else(|e| panic!("the send that hit broker-a failed: {e} {attempts:?}"));
    assert_eq!(r.message_queue.broker_name, "broker-b");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].broker, "broker-a");
    assert_eq!(
        attempts[0].outcome.as_deref(),
        Some("Timeout"),
        "{attempts:?}"
    );
    assert_eq!(
        attempts[0].delivery,
        Some(Delivery::Indeterminate),
        "the request was written: {attempts:?}"
    );
    // Attempt budget: 3 s − 2 × 200 ms reserve.
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < DEADLINE + SLACK, "{took:?}");
    assert!(proxy.stats().dropped_to_upstream > 0);
    assert!(p.stats().isolated_brokers.contains(&"broker-a".to_owned()));
    next_sends_avoid_broker_a(&env, &p, &log, 8).await;

    // The black hole swallowed the request: stored once, on broker-b, with the key.
    let stored = env.stored().await;
    assert_eq!(stored.get(&key).map(Vec::len), Some(1), "{key}");
    assert_eq!(stored[&key][0].0, "broker-b");
    for k in warm
        .iter()
        .map(String::as_str)
        .chain(before.iter().map(|r| r.msg_id.as_str()))
    {
        assert_eq!(stored.get(k).map(Vec::len), Some(1), "{k}");
    }
    proxy.set_black_hole(false);
    p.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_c6_slow_broker_a_no_spurious_timeout_then_avoided_then_used_again() {
    let _serial = SERIAL.lock().await;
    let Some(env) = Env::new("RmqFaultC6").await else {
        return;
    };
    let (proxy, connector) = env.proxy_a().await;
    let (p, log) = env.producer("rmq_it_faults_c6", connector).await;
    env.warm_up(&p, &log).await;

    // Answers from broker-a arrive 1.9 s late: below the 2.6 s attempt budget, above
    // Java's 1.8 s step (5 s isolation).
    let slow = Duration::from_millis(1900);
    proxy.set(Direction::ToClient, LinkFaults::latency(slow));
    let (key, r, took, _) =
        send_until_broker_a(&p, &log, |i| Message::new(&env.topic, format!("c6 {i}"))).await;
    let r = r.unwrap_or_else(|e| panic!("slow but in time, yet failed: {e} {:?}", log.of(&key)));
    assert_eq!(
        log.brokers(&key),
        ["broker-a"],
        "no spurious timeout, no retry"
    );
    assert_eq!(r.message_queue.broker_name, "broker-a");
    assert!(took >= slow, "{took:?}");
    assert!(took < DEADLINE, "{took:?}");
    assert!(
        p.stats().isolated_brokers.contains(&"broker-a".to_owned()),
        "a 1.9 s answer isolates broker-a: {:?}",
        p.stats()
    );
    next_sends_avoid_broker_a(&env, &p, &log, 10).await;

    // Fast again; after its isolation window broker-a takes sends again.
    proxy.clear();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(p.stats().isolated_brokers.is_empty(), "{:?}", p.stats());
    let (key, r, _, _) = send_until_broker_a(&p, &log, |i| {
        Message::new(&env.topic, format!("c6 back {i}"))
    })
    .await;
    let r = r.expect("broker-a again");
    assert_eq!(log.brokers(&key), ["broker-a"]);
    assert_eq!(r.message_queue.broker_name, "broker-a");
    p.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_c7_sliced_requests_and_responses_are_reassembled() {
    let _serial = SERIAL.lock().await;
    let Some(env) = Env::new("RmqFaultC7").await else {
        return;
    };
    let (proxy, connector) = env.proxy_a().await;
    let (p, log) = env.producer("rmq_it_faults_c7", connector).await;
    env.warm_up(&p, &log).await;

    let gap = Duration::from_millis(1);
    proxy.set(Direction::ToUpstream, LinkFaults::slice(3, gap));
    proxy.set(Direction::ToClient, LinkFaults::slice(1, gap));
    let before = proxy.stats();
    let mut sent = Vec::new();
    for i in 0..5 {
        let body = format!("sliced {i} ").repeat(40 + i * 7).into_bytes();
        let start = Instant::now();
        let r = p
            .send_with(
                Message::new(&env.topic, body.clone()),
                pinned(env.queue("broker-a", i as i32 % 4), Duration::from_secs(10)),
            )
            .await
            .unwrap_or_else(|e| panic!("sliced send {i}: {e}"));
        let took = start.elapsed();
        // The answer alone is > 100 one-byte pieces 1 ms apart.
        assert!(
            took >= Duration::from_millis(100),
            "slicing was active: {took:?}"
        );
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert_eq!(log.brokers(&r.msg_id), ["broker-a"]);
        sent.push((r.msg_id.into_string(), body));
    }
    let after = proxy.stats();
    assert!(after.to_client - before.to_client > 500, "{after:?}");
    assert_eq!(after.accepted, before.accepted, "one connection throughout");
    let stored = env.stored().await;
    for (k, body) in &sent {
        let copies = &stored[k];
        assert_eq!(copies.len(), 1, "{k}");
        assert_eq!(copies[0].0, "broker-a");
        assert_eq!(&copies[0].1, body, "body of {k}");
    }
    p.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_c8_bandwidth_limit_completes_or_times_out_by_the_deadline() {
    let _serial = SERIAL.lock().await;
    let Some(env) = Env::new("RmqFaultC8").await else {
        return;
    };
    let (proxy, connector) = env.proxy_a().await;
    let (p, log) = env.producer("rmq_it_faults_c8", connector).await;
    env.warm_up(&p, &log).await;
    proxy.set(Direction::ToUpstream, LinkFaults::bandwidth(100_000));

    // 200 KB at 100 KB/s (~2 s) with a 10 s deadline: completes.
    let body = noise(200_000, 8);
    let start = Instant::now();
    let ok = p
        .send_with(
            Message::new(&env.topic, body.clone()),
            pinned(env.queue("broker-a", 0), Duration::from_secs(10)),
        )
        .await
        .expect("a slow link within the deadline");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // 500 KB (~5 s) with a 2 s deadline: fails at the deadline, never after.
    let mut m = Message::new(&env.topic, noise(500_000, 9));
    let key = p.assign_uniq_key(&mut m).to_owned();
    let start = Instant::now();
    let err = p
        .send_with(m, pinned(env.queue("broker-a", 1), Duration::from_secs(2)))
        .await
        .expect_err("5 s of transfer in a 2 s deadline");
    let took = start.elapsed();
    assert_eq!(err.kind(), SendErrorKind::Timeout, "{err}");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(2) + SLACK, "{took:?}");
    assert_ne!(err.delivery(), Delivery::Rejected, "{err}");

    // The link drains; whatever the broker got of the timed-out one, it stored at most
    // one copy, and only if the client called it Indeterminate.
    proxy.clear();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stored = env.stored().await;
    assert_eq!(stored.get(ok.msg_id.as_str()).map(Vec::len), Some(1));
    assert_eq!(stored[ok.msg_id.as_str()][0].1, body);
    let copies = stored.get(&key).map_or(0, Vec::len);
    assert!(copies <= 1, "{copies}");
    if copies == 1 {
        assert_eq!(
            err.delivery(),
            Delivery::Indeterminate,
            "stored, so not NotSent"
        );
    }
    eprintln!(
        "c8: timed-out send classified {:?}, stored {copies} times",
        err.delivery()
    );
    p.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_c9_reset_mid_frame_retried_on_broker_b_with_the_same_uniq_key() {
    let _serial = SERIAL.lock().await;
    let Some(env) = Env::new("RmqFaultC9").await else {
        return;
    };
    let (proxy, connector) = env.proxy_a().await;
    let (p, log) = env.producer("rmq_it_faults_c9", connector).await;
    env.warm_up(&p, &log).await;
    let accepted = proxy.stats().accepted;

    // The next 64 KiB to broker-a pass, then its connection is reset mid-frame.
    proxy.set(Direction::ToUpstream, LinkFaults::reset_after(64 * 1024));
    let bodies: Vec<Vec<u8>> = (0..16).map(|i| noise(1 << 20, 100 + i)).collect();
    let (key, r, took, _) =
        send_until_broker_a(&p, &log, |i| Message::new(&env.topic, bodies[i].clone())).await;
    let attempts = log.of(&key);
    let r = r.unwrap_or_else(|e| panic!("the reset send failed: {e} {attempts:?}"));
    // The proxy counts the reset just after the RST the producer reacted to.
    eventually(SLACK, || proxy.stats().resets == 1).await;
    assert_eq!(proxy.stats().resets, 1, "the fault fired");
    assert_eq!(r.message_queue.broker_name, "broker-b");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].broker, "broker-a");
    assert_ne!(attempts[0].outcome.as_deref(), Some("stored"));
    assert!(
        matches!(
            attempts[0].delivery,
            Some(Delivery::NotSent | Delivery::Indeterminate)
        ),
        "{attempts:?}"
    );
    assert_eq!(attempts[1].broker, "broker-b");
    assert!(
        took < DEADLINE,
        "a reset fails at once, not at the deadline: {took:?}"
    );

    // A fresh connection to broker-a carries a whole frame again.
    let again = p
        .send_with(
            Message::new(&env.topic, noise(1 << 20, 999)),
            pinned(env.queue("broker-a", 2), Duration::from_secs(10)),
        )
        .await
        .expect("broker-a after the reset");
    assert_eq!(again.message_queue.broker_name, "broker-a");
    assert_eq!(proxy.stats().accepted, accepted + 1, "one new connection");

    // The cut frame was never stored; the retry kept the UNIQ_KEY and stored it once.
    let stored = env.stored().await;
    let copies = &stored[&key];
    assert_eq!(
        copies.len(),
        1,
        "{key}: {:?}",
        copies.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    assert_eq!(copies[0].0, "broker-b");
    assert_eq!(stored[again.msg_id.as_str()].len(), 1);
    p.close(Duration::from_secs(5)).await;
}
