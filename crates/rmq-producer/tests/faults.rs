//! Reliability matrix rows C1, C3, C4, C6 (retry halves) and E1–E3, E5
//! (reliability.md section 7): transport and cluster faults under the producer. In
//! memory, paused time.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{
    AttemptLog, CountingConnector, MS, SECOND, TOPIC, alive_tasks, assert_settled, attempts_for,
    broker, builder, cluster, cluster_of, producer, sends_to,
};
use rmq_producer::{Delivery, Message, MessageQueue, Producer, SendErrorKind, SendOptions};
use rmq_protocol::RequestCode;
use rmq_remoting::MemoryNetwork;
use tokio::time::Instant;

const SEND: RequestCode = RequestCode::SEND_MESSAGE_V2;

/// C1: broker-a refuses connections → every send succeeds on broker-b, each
/// stored exactly once (0 duplicates). Positive control: the producer did try
/// broker-a. With no retries, a send pinned to broker-a fails `NotSent` well
/// before the deadline.
#[tokio::test(start_paused = true)]
async fn c1_connection_refused_fails_over_without_duplicates() {
    let cluster = cluster().await;
    broker(&cluster, "broker-a").down().await;
    let log = AttemptLog::new();
    let p = builder(&cluster)
        .send_hook(log.clone())
        .build()
        .await
        .unwrap();
    let mut keys = Vec::new();
    for i in 0..8 {
        let started = Instant::now();
        let r = p
            .send(Message::new(TOPIC, format!("c1 {i}")))
            .await
            .expect("fails over to broker-b");
        assert_eq!(r.message_queue.broker_name, "broker-b");
        assert!(
            started.elapsed() < 100 * MS,
            "a refused connect costs no waiting"
        );
        keys.push(r.msg_id);
    }
    for k in &keys {
        assert_eq!(cluster.find_by_uniq_key(k).len(), 1, "0 duplicates");
    }
    let tried_a = keys
        .iter()
        .any(|k| log.brokers(k).iter().any(|b| b == "broker-a"));
    assert!(tried_a, "positive control: some attempt went to broker-a");
    assert!(p.stats().transport.connect_failures >= 1);

    let pinned = SendOptions::default()
        .queue(MessageQueue::new(TOPIC, "broker-a", 0))
        .retries(0);
    let started = Instant::now();
    let err = p
        .send_with(Message::new(TOPIC, "pinned to a"), pinned)
        .await
        .expect_err("broker-a is down");
    assert!(
        started.elapsed() < 100 * MS,
        "well before the deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(err.delivery(), Delivery::NotSent);
    assert_eq!(err.kind(), SendErrorKind::AllBrokersUnavailable, "{err}");
    assert_settled(&p);
}

/// C3: the broker resets the connection right after reading the request. The
/// pending call fails at once (not at the deadline), the retry carries the same
/// UNIQ_KEY, and stored − acked ≤ attempts − 1. Two variants: the broker dies
/// before storing (`drop_connection`), and after storing (`reset_after(0)`: the
/// duplicate case).
#[tokio::test(start_paused = true)]
async fn c3_reset_after_read_retries_with_the_same_uniq_key() {
    for stored_first in [false, true] {
        let cluster = cluster().await;
        let a = broker(&cluster, "broker-a");
        if stored_first {
            a.script(SEND).reset_after(0).times(1);
        } else {
            a.script(SEND).drop_connection().times(1);
        }
        let log = AttemptLog::new();
        let p = builder(&cluster)
            .send_hook(log.clone())
            .build()
            .await
            .unwrap();
        // Send until one send has hit the scripted reset on broker-a.
        let mut hit = None;
        for i in 0..16 {
            let mut msg = Message::new(TOPIC, format!("c3 {i}"));
            let key = p.assign_uniq_key(&mut msg).to_owned();
            let started = Instant::now();
            p.send(msg).await.expect("retried after the reset");
            if a.scripts_pending() == 0 {
                hit = Some((key, started.elapsed()));
                break;
            }
        }
        let (key, elapsed) = hit.expect("positive control: one send hit the reset");
        assert!(
            elapsed < 100 * MS,
            "failed at once and retried, not at the deadline: {elapsed:?}"
        );
        let attempts = attempts_for(&cluster, &key);
        assert!(attempts.len() >= 2, "retried: {attempts:?}");
        assert!(
            attempts
                .iter()
                .all(|(_, r)| common::uniq_key_of(r).as_deref() == Some(key.as_str()))
        );
        let brokers = log.brokers(&key);
        assert_eq!(brokers[0], "broker-a");
        assert_ne!(brokers[1], "broker-a", "the retry went elsewhere");
        let stored = cluster.find_by_uniq_key(&key).len();
        let acked = 1;
        assert!(stored >= acked, "the acked message is stored");
        assert!(
            stored - acked < attempts.len(),
            "stored − acked ≤ attempts − 1"
        );
        assert_eq!(
            stored,
            if stored_first { 2 } else { 1 },
            "variant stored_first={stored_first}"
        );
        assert_settled(&p);
    }
}

/// C4: broker-a reads sends and never answers. A send that lands there fails over
/// after its attempt's budget (deadline − 2 × 200 ms reserve) and is stored on
/// broker-b within the deadline; the written attempt is counted, and the next sends
/// avoid broker-a.
#[tokio::test(start_paused = true)]
async fn c4_black_holed_broker_fails_over_within_the_deadline() {
    let cluster = cluster().await;
    let a = broker(&cluster, "broker-a");
    a.script(SEND).black_hole().forever();
    let log = AttemptLog::new();
    let p = builder(&cluster)
        .send_hook(log.clone())
        .build()
        .await
        .unwrap();
    let mut hit = None;
    for i in 0..16 {
        let mut msg = Message::new(TOPIC, format!("c4 {i}"));
        let key = p.assign_uniq_key(&mut msg).to_owned();
        let started = Instant::now();
        let r = p.send(msg).await.expect("stored on broker-b in time");
        assert_eq!(r.message_queue.broker_name, "broker-b");
        if sends_to(&cluster, "broker-a") > 0 {
            hit = Some((key, started.elapsed()));
            break;
        }
    }
    let (key, elapsed) = hit.expect("positive control: a send hit the black hole");
    assert!(
        elapsed >= Duration::from_millis(2600),
        "waited its attempt's budget: {elapsed:?}"
    );
    assert!(elapsed < 3 * SECOND, "within the deadline: {elapsed:?}");
    assert_eq!(log.brokers(&key), ["broker-a", "broker-b"]);
    assert_eq!(log.of(&key)[0].outcome.as_deref(), Some("Timeout"));
    assert_eq!(cluster.find_by_uniq_key(&key).len(), 1);
    assert!(p.stats().isolated_brokers.contains(&"broker-a".to_owned()));

    for i in 0..8 {
        let started = Instant::now();
        let r = p
            .send(Message::new(TOPIC, format!("after {i}")))
            .await
            .unwrap();
        assert_eq!(
            r.message_queue.broker_name, "broker-b",
            "next sends go elsewhere"
        );
        assert!(started.elapsed() < 100 * MS);
    }
    assert_eq!(sends_to(&cluster, "broker-a"), 1);
    assert_settled(&p);
}

/// C6: with fault tolerance on, one 2 s reply from broker-a isolates it (Java 5.x:
/// 2 000 ms latency → 5 s); the next sends all land on broker-b; after the isolation
/// window (11 s of paused time) broker-a is used again.
#[tokio::test(start_paused = true)]
async fn c6_slow_broker_is_avoided_then_used_again_after_its_window() {
    let cluster = cluster().await;
    broker(&cluster, "broker-a")
        .script(SEND)
        .delay(2 * SECOND)
        .forever();
    let p = producer(&cluster).await;
    assert!(p.config().latency_fault_tolerance);
    let mut slow = None;
    for i in 0..16 {
        let started = Instant::now();
        let r = p
            .send(Message::new(TOPIC, format!("c6 {i}")))
            .await
            .unwrap();
        if r.message_queue.broker_name == "broker-a" {
            slow = Some(started.elapsed());
            break;
        }
    }
    let slow = slow.expect("positive control: one send landed on the slow broker");
    assert!(slow >= 2 * SECOND, "{slow:?}");

    let mut landed: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..20 {
        let r = p
            .send(Message::new(TOPIC, format!("avoid {i}")))
            .await
            .unwrap();
        *landed
            .entry(r.message_queue.broker_name.into_string())
            .or_default() += 1;
    }
    assert_eq!(
        landed.get("broker-b"),
        Some(&20),
        "all prefer the healthy broker: {landed:?}"
    );
    assert!(p.stats().isolated_brokers.contains(&"broker-a".to_owned()));

    tokio::time::sleep(11 * SECOND).await;
    assert!(
        p.stats().isolated_brokers.is_empty(),
        "the window has passed: {:?}",
        p.stats().isolated_brokers
    );
    let mut back = false;
    for i in 0..8 {
        let r = p
            .send(Message::new(TOPIC, format!("back {i}")))
            .await
            .unwrap();
        if r.message_queue.broker_name == "broker-a" {
            back = true;
            break;
        }
    }
    assert!(
        back,
        "the slow broker is used again after its isolation window"
    );
    assert_settled(&p);
}

/// E1: 1 of 3 brokers killed during steady sync sends (4 concurrent senders,
/// broker-c answering after 20 ms so requests are in flight when it dies): every
/// send succeeds within its deadline; every acked message is stored (loss = 0); a
/// message is stored at most twice (one duplicate), copies sharing the UNIQ_KEY.
/// Positive controls: broker-c had stored messages and had a request in flight
/// when killed.
#[tokio::test(start_paused = true)]
async fn e1_one_of_three_brokers_killed_during_sends_loses_nothing() {
    let cluster = cluster_of(&["broker-a", "broker-b", "broker-c"]).await;
    let c = broker(&cluster, "broker-c").clone();
    c.script(SEND).delay(20 * MS).forever();
    let p = producer(&cluster).await;
    let killed = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..4 {
        let p = p.clone();
        let killed = killed.clone();
        senders.spawn(async move {
            let mut out = Vec::new();
            for i in 0..60 {
                let started = Instant::now();
                let after_kill = killed.load(Ordering::SeqCst);
                let r = p.send(Message::new(TOPIC, format!("e1 {s}/{i}"))).await;
                out.push((r.map(|r| r.msg_id), started.elapsed(), after_kill));
            }
            out
        });
    }
    // Kill broker-c once it has stored a few messages and holds an unanswered one.
    let in_flight_on_c =
        |c: &rmq_testkit::fake::FakeBroker| c.requests_with_code(SEND).len() > c.message_count();
    tokio::time::timeout(
        10 * SECOND,
        c.wait_until(|c| c.message_count() >= 5 && in_flight_on_c(c)),
    )
    .await
    .expect("broker-c took traffic");
    assert!(
        in_flight_on_c(&c),
        "positive control: a request was in flight on broker-c"
    );
    let stored_on_c_before = c.message_count();
    killed.store(true, Ordering::SeqCst);
    c.down().await;

    let mut acked = Vec::new();
    let mut after_kill = 0;
    while let Some(results) = senders.join_next().await {
        for (r, elapsed, late) in results.unwrap() {
            let key = r.unwrap_or_else(|e| panic!("every send succeeds: {e}"));
            assert!(elapsed <= 3 * SECOND, "within the deadline: {elapsed:?}");
            after_kill += usize::from(late);
            acked.push(key);
        }
    }
    assert!(
        stored_on_c_before > 0,
        "positive control: broker-c had messages before the kill"
    );
    assert!(after_kill > 0, "sends continued after the kill");
    assert_eq!(acked.len(), 240);
    tokio::time::sleep(SECOND).await; // let broker-c's delayed handlers finish
    let mut dups = 0;
    for key in &acked {
        let copies = cluster.find_by_uniq_key(key);
        assert!(!copies.is_empty(), "acked {key} is stored");
        assert!(
            copies.len() <= 2,
            "at most one duplicate of {key}: {}",
            copies.len()
        );
        assert!(
            copies
                .iter()
                .all(|m| m.uniq_key.as_deref() == Some(key.as_str()))
        );
        dups += copies.len() - 1;
    }
    eprintln!(
        "e1: {} acked, {stored_on_c_before} on broker-c before the kill, {dups} duplicates",
        acked.len()
    );
    assert_settled(&p);
}

/// E2: all brokers down → `AllBrokersUnavailable` (or `Timeout`), `NotSent`, by the
/// deadline; 10 s of sends every 10 ms make a bounded number of connects per broker
/// (reconnect backoff, no storm); once the brokers are back a send succeeds within
/// one backoff period (the 10 s cap).
#[tokio::test(start_paused = true)]
async fn e2_all_brokers_down_fails_fast_without_a_reconnect_storm_and_recovers() {
    let cluster = cluster().await;
    let counting = CountingConnector::new(cluster.connector());
    let p = common::builder(&cluster)
        .connector(counting.clone())
        .build()
        .await
        .unwrap();
    p.send(Message::new(TOPIC, "before"))
        .await
        .expect("cluster up");
    for b in cluster.brokers() {
        b.down().await;
    }
    let addrs: Vec<String> = cluster
        .brokers()
        .iter()
        .map(|b| b.addr().to_owned())
        .collect();
    let connects_before: Vec<usize> = addrs.iter().map(|a| counting.count(a)).collect();

    let window = 10 * SECOND;
    let started = Instant::now();
    let mut failures = 0;
    while started.elapsed() < window {
        let t = Instant::now();
        let err = p
            .send(Message::new(TOPIC, "down"))
            .await
            .expect_err("all brokers are down");
        assert!(
            t.elapsed() <= 3 * SECOND + 200 * MS,
            "by the deadline: {:?}",
            t.elapsed()
        );
        assert!(
            matches!(
                err.kind(),
                SendErrorKind::AllBrokersUnavailable | SendErrorKind::Timeout
            ),
            "{err}"
        );
        assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
        failures += 1;
        tokio::time::sleep(10 * MS).await;
    }
    assert!(
        failures >= 900,
        "positive control: the producer kept trying ({failures} sends)"
    );
    for (addr, before) in addrs.iter().zip(&connects_before) {
        let n = counting.count(addr) - before;
        assert!(n >= 1, "positive control: {addr} was dialled");
        assert!(
            n <= 12,
            "{addr}: {n} connects in 10 s for {failures} sends (backoff 100 ms doubling to 10 s)"
        );
    }

    for b in cluster.brokers() {
        b.up().await.unwrap();
    }
    let back = Instant::now();
    loop {
        if p.send(Message::new(TOPIC, "after")).await.is_ok() {
            break;
        }
        assert!(
            back.elapsed() <= 10 * SECOND + 500 * MS,
            "recovered within one backoff period"
        );
        tokio::time::sleep(10 * MS).await;
    }
    eprintln!(
        "e2: recovered {:?} after the brokers returned",
        back.elapsed()
    );
    assert_settled(&p);
}

/// E3: the only broker restarts on the same address: sends succeed after the
/// restart, on a new connection, and the producer holds one connection to it again.
#[tokio::test(start_paused = true)]
async fn e3_broker_restart_on_the_same_address() {
    let cluster = cluster_of(&["broker-a"]).await;
    let a = broker(&cluster, "broker-a");
    let p = producer(&cluster).await;
    for i in 0..5 {
        p.send(Message::new(TOPIC, format!("before {i}")))
            .await
            .unwrap();
    }
    let connections_before = p.stats().transport.connections.len();
    let accepted_before = a.connections_accepted();
    a.restart().await.unwrap();
    for i in 0..5 {
        let started = Instant::now();
        p.send(Message::new(TOPIC, format!("after {i}")))
            .await
            .expect("sends succeed after the restart");
        assert!(started.elapsed() < SECOND);
    }
    assert_eq!(a.message_count(), 10);
    assert_eq!(
        a.connections_accepted(),
        accepted_before + 1,
        "one reconnect"
    );
    assert_eq!(a.connection_count(), 1);
    assert_eq!(
        p.stats().transport.connections.len(),
        connections_before,
        "open connections back to baseline"
    );
    assert_settled(&p);
}

/// E5: no name server listens and no route is cached: a send fails with `NoRoute`
/// or `Timeout`, `NotSent`, within its deadline, without panicking; building the
/// producer does not need the name server.
#[tokio::test(start_paused = true)]
async fn e5_name_server_down_at_start() {
    let baseline = alive_tasks();
    let p = Producer::builder("test_producer_group")
        .namesrv("127.0.0.1:9876")
        .connector(Arc::new(MemoryNetwork::new()))
        .build()
        .await
        .expect("build does not need the name server");
    for timeout in [3 * SECOND, 700 * MS] {
        let started = Instant::now();
        let err = p
            .send_with(
                Message::new(TOPIC, "no ns"),
                SendOptions::default().timeout(timeout),
            )
            .await
            .expect_err("no route");
        let elapsed = started.elapsed();
        assert!(
            matches!(err.kind(), SendErrorKind::NoRoute | SendErrorKind::Timeout),
            "{err}"
        );
        assert_eq!(err.delivery(), Delivery::NotSent);
        assert!(
            elapsed <= timeout,
            "within the deadline: {elapsed:?} > {timeout:?}"
        );
        assert!(err.into_message().is_some());
        eprintln!("e5: {timeout:?} → failed after {elapsed:?}");
    }
    let r = p.close(SECOND).await;
    assert_eq!(r.abandoned, 0);
    tokio::time::sleep(5 * SECOND).await;
    assert_eq!(alive_tasks(), baseline, "no task left behind");
}

/// E6 (producer half): the name server goes down after the route was cached →
/// sends keep succeeding through ≥ 3 poll intervals on the last good route, whose
/// age grows (it was not refreshed: positive control that the name server really is
/// unreachable); every acked message is stored once. The route half is
/// `rmq-route/tests/testkit_rows.rs::e6_*`.
#[tokio::test(start_paused = true)]
async fn e6_name_server_down_after_caching_sends_keep_working() {
    const POLL: Duration = Duration::from_secs(30);
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    assert_eq!(p.config().route_poll_interval, POLL);
    p.send(Message::new(TOPIC, "e6 warm-up"))
        .await
        .expect("route cached");
    cluster.name_server().down().await;
    let start = Instant::now();
    let mut keys = Vec::new();
    let mut last_age = Duration::ZERO;
    for round in 1..=4u32 {
        // Just after the poll of round × 30 s.
        tokio::time::sleep_until(start + POLL * round + SECOND).await;
        for i in 0..3 {
            let r = p
                .send(Message::new(TOPIC, format!("e6 {round}.{i}")))
                .await
                .expect("the cached route keeps serving with the name server down");
            keys.push(r.msg_id);
        }
        let stats = p.stats();
        let age = stats
            .routes
            .iter()
            .find(|r| r.topic == TOPIC)
            .and_then(|r| r.age)
            .expect("the topic's route is cached");
        assert!(
            age >= POLL * round,
            "round {round}: not refreshed, age {age:?}"
        );
        assert!(
            age > last_age,
            "route age grows: {age:?} after {last_age:?}"
        );
        last_age = age;
    }
    assert!(
        last_age > 3 * POLL,
        "through ≥ 3 poll intervals: {last_age:?}"
    );
    for k in &keys {
        assert_eq!(cluster.find_by_uniq_key(k).len(), 1, "{k} stored once");
    }
    assert_settled(&p);
}
