//! Reliability matrix rows F1–F7 (reliability.md section 7) and the "dropping a
//! send future" rule of decisions.md: back-pressure, deadlines, close, drop,
//! connection churn, response/timeout races. In memory, paused time (except the
//! runtime-drop test, which builds its own paused runtime).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    MS, SECOND, TOPIC, alive_tasks, assert_settled, attempts_for, broker, builder, cluster,
    eventually, producer, sends,
};
use rmq_producer::{Delivery, Message, SendErrorKind, SendOptions};
use rmq_protocol::RequestCode;
use tokio::task::JoinSet;
use tokio::time::Instant;

const SEND: RequestCode = RequestCode::SEND_MESSAGE_V2;

/// F1: with `max_in_flight_messages = 2` and every send black-holed, `try_send`
/// fails at once with `BufferFull` and hands the message back; `send` waits at most
/// its deadline, then fails `BufferFull` (or `Timeout` if room opened and the
/// attempt then timed out); never more than 2 requests are out.
#[tokio::test(start_paused = true)]
async fn f1_in_flight_limit_gives_buffer_full() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).black_hole().forever();
    }
    let p = builder(&cluster)
        .configure(|c| c.max_in_flight_messages = 2)
        .build()
        .await
        .unwrap();
    let mut holders = JoinSet::new();
    for i in 0..2 {
        let p = p.clone();
        holders.spawn(async move { p.send(Message::new(TOPIC, format!("holder {i}"))).await });
    }
    assert!(
        eventually(SECOND, || p.stats().in_flight == 2).await,
        "the two holders took the permits"
    );
    assert!(eventually(SECOND, || sends(&cluster) == 2).await);

    let mut msg = Message::new(TOPIC, "no room");
    p.assign_uniq_key(&mut msg);
    let original = msg.clone();
    let started = Instant::now();
    let err = p.try_send(msg).await.expect_err("full");
    assert_eq!(started.elapsed(), Duration::ZERO, "at once");
    assert_eq!(err.kind(), SendErrorKind::BufferFull);
    assert_eq!(err.delivery(), Delivery::NotSent);
    assert_eq!(err.into_message(), Some(original), "handed back");

    let started = Instant::now();
    let err = p
        .send_with(
            Message::new(TOPIC, "waits"),
            SendOptions::default().timeout(500 * MS),
        )
        .await
        .expect_err("no room before its deadline");
    assert_eq!(err.kind(), SendErrorKind::BufferFull);
    assert_eq!(started.elapsed(), 500 * MS, "waited exactly its deadline");
    assert_eq!(
        sends(&cluster),
        2,
        "memory bounded: only the two admitted sends went out"
    );

    // A default-deadline send waits for room (the holders give up at their own
    // deadline) and then fails by its deadline as well.
    let started = Instant::now();
    let err = p
        .send(Message::new(TOPIC, "waits long"))
        .await
        .expect_err("black hole");
    assert!(
        matches!(
            err.kind(),
            SendErrorKind::BufferFull | SendErrorKind::Timeout
        ),
        "{err}"
    );
    assert!(started.elapsed() <= 3 * SECOND, "{:?}", started.elapsed());
    while let Some(r) = holders.join_next().await {
        assert_eq!(
            r.unwrap().expect_err("black hole").kind(),
            SendErrorKind::Timeout
        );
    }
    assert!(p.stats().in_flight <= 2);
    tokio::time::sleep(4 * SECOND).await;
    assert_settled(&p);
}

/// F2: a deadline shorter than the broker's answer time fails by the deadline,
/// `Indeterminate` (the request was written), and no attempt starts with a spent
/// budget: with 500 ms one attempt is made; with 1 s the second attempt still has
/// ≥ 200 ms; never a third.
#[tokio::test(start_paused = true)]
async fn f2_deadline_shorter_than_one_rtt() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).delay(2 * SECOND).forever();
    }
    let p = producer(&cluster).await;
    for (timeout, expect_attempts) in [(500 * MS, 1), (SECOND, 2)] {
        let mut msg = Message::new(TOPIC, format!("rtt {timeout:?}"));
        let key = p.assign_uniq_key(&mut msg).to_owned();
        let started = Instant::now();
        let err = p
            .send_with(msg, SendOptions::default().timeout(timeout))
            .await
            .expect_err("too short");
        let elapsed = started.elapsed();
        assert_eq!(elapsed, timeout, "fails exactly at its deadline");
        assert_eq!(err.kind(), SendErrorKind::Timeout, "{err}");
        assert_eq!(err.delivery(), Delivery::Indeterminate);
        assert_eq!(err.attempts(), expect_attempts);
        let attempts = attempts_for(&cluster, &key);
        assert_eq!(attempts.len(), expect_attempts as usize, "{timeout:?}");
        for (_, r) in &attempts {
            let budget = (started + timeout).saturating_duration_since(r.at);
            assert!(
                budget >= 200 * MS,
                "an attempt started with only {budget:?} left"
            );
        }
    }
    tokio::time::sleep(3 * SECOND).await;
    assert_settled(&p);
}

/// F3: a user timeout of 700 ms is honoured, per call and as the producer's
/// `send_timeout`: the failing call takes 700 ms, not the 3 s default.
#[tokio::test(start_paused = true)]
async fn f3_user_timeout_is_honoured() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).black_hole().forever();
    }
    let p = producer(&cluster).await;
    let started = Instant::now();
    let err = p
        .send_with(
            Message::new(TOPIC, "700"),
            SendOptions::default().timeout(700 * MS),
        )
        .await
        .expect_err("black hole");
    assert_eq!(started.elapsed(), 700 * MS);
    assert_eq!(err.kind(), SendErrorKind::Timeout);

    let p = builder(&cluster)
        .send_timeout(700 * MS)
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    let err = p
        .send(Message::new(TOPIC, "700 default"))
        .await
        .expect_err("black hole");
    assert_eq!(started.elapsed(), 700 * MS);
    assert_eq!(err.kind(), SendErrorKind::Timeout);
    assert_eq!(err.delivery(), Delivery::Indeterminate);
}

/// F4: `close(1 s)` with 1 000 callback sends and 20 awaited sends in flight
/// against a broker that answers after 5 s returns within 1 s + ε; every future
/// and callback resolves, each callback exactly once; new sends fail `Shutdown`.
#[tokio::test(start_paused = true)]
async fn f4_close_with_many_in_flight_resolves_everything() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).delay(5 * SECOND).forever();
    }
    let p = producer(&cluster).await;
    let calls: Arc<Mutex<HashMap<usize, usize>>> = Arc::default();
    let outcomes: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    for i in 0..1000 {
        let calls = calls.clone();
        let outcomes = outcomes.clone();
        p.send_with_callback(Message::new(TOPIC, format!("cb {i}")), move |r| {
            *calls.lock().unwrap().entry(i).or_default() += 1;
            let what = match r {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("{:?}", e.kind()),
            };
            *outcomes.lock().unwrap().entry(what).or_default() += 1;
        });
    }
    let mut futures = JoinSet::new();
    for i in 0..20 {
        let p = p.clone();
        futures.spawn(async move { p.send(Message::new(TOPIC, format!("fut {i}"))).await });
    }
    assert!(
        eventually(SECOND, || p.stats().in_flight == 1020).await,
        "all in flight: {}",
        p.stats().in_flight
    );

    let started = Instant::now();
    let report = p.close(SECOND).await;
    let took = started.elapsed();
    assert!(took <= SECOND + 200 * MS, "close returned after {took:?}");
    assert_eq!(report.in_flight_at_close, 1020);

    let mut resolved = 0;
    let all = async {
        while let Some(r) = futures.join_next().await {
            r.expect("no panic")
                .expect_err("nothing was answered in time");
            resolved += 1;
        }
    };
    tokio::time::timeout(100 * MS, all)
        .await
        .expect("every future resolves right after close");
    assert_eq!(resolved, 20);
    assert!(
        eventually(100 * MS, || calls.lock().unwrap().len() == 1000).await,
        "every callback fired: {}",
        calls.lock().unwrap().len()
    );
    tokio::time::sleep(10 * SECOND).await;
    assert!(
        calls.lock().unwrap().values().all(|&n| n == 1),
        "each callback exactly once"
    );
    eprintln!(
        "f4: close took {took:?}, {report:?}, callbacks {:?}",
        outcomes.lock().unwrap()
    );

    let err = p
        .send(Message::new(TOPIC, "after close"))
        .await
        .expect_err("closed");
    assert_eq!(err.kind(), SendErrorKind::Shutdown);
    let err = p
        .try_send(Message::new(TOPIC, "after close"))
        .await
        .expect_err("closed");
    assert_eq!(err.kind(), SendErrorKind::Shutdown);
    let (tx, rx) = tokio::sync::oneshot::channel();
    p.send_with_callback(Message::new(TOPIC, "after close"), move |r| {
        let _ = tx.send(r.map(|_| ()).map_err(|e| e.kind()));
    });
    assert_eq!(rx.await.unwrap(), Err(SendErrorKind::Shutdown));
    assert_eq!(p.stats().in_flight, 0);
}

/// F5: a producer dropped without `close` stops its background work: heartbeats
/// stop reaching the brokers, its connections close, and its tasks end (the
/// runtime's task count returns to what it was before the producer was built).
#[tokio::test(start_paused = true)]
async fn f5_dropped_producer_stops_background_tasks() {
    let cluster = cluster().await;
    let baseline = alive_tasks();
    let p = builder(&cluster)
        .configure(|c| c.heartbeat_interval = 5 * SECOND)
        .build()
        .await
        .unwrap();
    p.send(Message::new(TOPIC, "hello")).await.unwrap();
    let heartbeats = || -> usize {
        cluster
            .brokers()
            .iter()
            .map(|b| b.requests_with_code(RequestCode::HEART_BEAT).len())
            .sum()
    };
    tokio::time::sleep(12 * SECOND).await;
    assert!(
        heartbeats() >= 2,
        "positive control: heartbeats were flowing ({})",
        heartbeats()
    );
    assert!(
        alive_tasks() > baseline,
        "positive control: the producer runs tasks"
    );

    drop(p);
    tokio::time::sleep(SECOND).await;
    let after_drop = heartbeats();
    tokio::time::sleep(120 * SECOND).await;
    assert_eq!(heartbeats(), after_drop, "no heartbeat after the drop");
    for b in cluster.brokers() {
        assert_eq!(
            b.connection_count(),
            0,
            "{} still has a connection from the dropped producer",
            b.broker_name()
        );
    }
    assert_eq!(
        cluster.name_server().connection_count(),
        0,
        "name-server connection closed"
    );
    assert_eq!(alive_tasks(), baseline, "every producer task ended");
}

/// F6 (short): 2 000 sends in waves of 100 while one broker's connections are
/// killed in each wave: every send resolves exactly once, every `Ok` is stored,
/// and afterwards no permit, no response-table entry and no extra connection is
/// left.
#[tokio::test(start_paused = true)]
async fn f6_connection_kills_leave_no_leaks() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let mut ok = Vec::new();
    let mut failed = HashMap::<String, usize>::new();
    let mut resolved = 0;
    let mut rss_after_warmup = 0;
    for wave in 0..100 {
        if wave == 20 {
            rss_after_warmup = rss_bytes();
        }
        let mut set = JoinSet::new();
        for i in 0..100 {
            let p = p.clone();
            set.spawn(async move {
                let mut msg = Message::new(TOPIC, format!("f6 {wave}/{i}"));
                let key = p.assign_uniq_key(&mut msg).to_owned();
                (key, p.send(msg).await)
            });
        }
        for _ in 0..(wave % 5 + 1) {
            tokio::task::yield_now().await;
        }
        let victim = &cluster.brokers()[wave % 2];
        victim.kill_connections().await;
        for b in cluster.brokers() {
            b.clear_requests(); // the fake's request log is not the client's memory
        }
        while let Some(r) = set.join_next().await {
            let (key, r) = r.expect("no panic");
            resolved += 1;
            match r {
                Ok(r) => {
                    assert_eq!(r.msg_id, key);
                    ok.push(key);
                }
                Err(e) => {
                    assert_ne!(e.delivery(), Delivery::Rejected, "{e}");
                    *failed
                        .entry(format!("{:?}/{:?}", e.kind(), e.delivery()))
                        .or_default() += 1;
                }
            }
        }
    }
    assert_eq!(resolved, 10_000);
    let growth = rss_bytes().saturating_sub(rss_after_warmup);
    eprintln!(
        "f6: RSS growth over the last 8 000 sends: {} KiB",
        growth / 1024
    );
    assert!(
        growth < 32 * 1024 * 1024,
        "memory stable across 8 000 sends with connection kills (grew {growth} bytes; the fake's message store accounts for a few MiB)"
    );
    eprintln!(
        "f6: {} ok, failed {failed:?}, stats {:?}",
        ok.len(),
        p.stats().transport
    );
    assert!(
        ok.len() >= 9_500,
        "retries absorb the kills: {} ok",
        ok.len()
    );
    for key in &ok {
        assert!(
            !cluster.find_by_uniq_key(key).is_empty(),
            "acked {key} is stored"
        );
    }
    tokio::time::sleep(5 * SECOND).await;
    assert_settled(&p);
    let s = p.stats();
    assert!(
        s.transport.connections.len() <= 3,
        "ns + 2 brokers: {:?}",
        s.transport.connections
    );
    assert!(
        s.transport.reconnects >= 10,
        "positive control: the kills forced reconnects ({})",
        s.transport.reconnects
    );
    for b in cluster.brokers() {
        assert!(
            b.connection_count() <= 1,
            "{}: {}",
            b.broker_name(),
            b.connection_count()
        );
    }
}

/// F7: 600 sends, started two per millisecond against brokers that answer in
/// exactly 100 ms (broker-a stores at once and answers late; broker-b stores late).
/// One in ten has a 100 ms deadline — its timer and its answer fall on the same
/// paused instant — one in ten 99 ms (times out), the rest 101–108 ms. Each send
/// resolves exactly once and by its deadline; every `Ok` is stored; every `NotSent`
/// error is not stored (an `Indeterminate` one may be). Positive control: both
/// outcomes occur. (Most deadlines are above the RTT so answers keep arriving: a
/// burst of timeouts trips the transport's half-open detection, see
/// `f7_short_deadlines_do_not_fail_answered_requests`.)
#[tokio::test(start_paused = true)]
async fn f7_responses_racing_timeouts_resolve_exactly_once_and_truthfully() {
    let cluster = cluster().await;
    broker(&cluster, "broker-a")
        .script(SEND)
        .delay_reply(100 * MS)
        .forever();
    broker(&cluster, "broker-b")
        .script(SEND)
        .delay(100 * MS)
        .forever();
    let p = producer(&cluster).await;
    p.send(Message::new(TOPIC, "warm up")).await.unwrap();
    let mut set = JoinSet::new();
    for i in 0..600u64 {
        let p = p.clone();
        set.spawn(async move {
            tokio::time::sleep(Duration::from_millis(i / 2)).await;
            let mut msg = Message::new(TOPIC, format!("f7 {i}"));
            let key = p.assign_uniq_key(&mut msg).to_owned();
            let timeout = Duration::from_millis(match i % 10 {
                0 => 100,
                1 => 99,
                k => 99 + k,
            });
            let started = Instant::now();
            let r = p
                .send_with(msg, SendOptions::default().timeout(timeout))
                .await;
            assert!(started.elapsed() <= timeout, "resolved by its deadline");
            (key, r)
        });
    }
    let mut results = HashMap::new();
    while let Some(r) = set.join_next().await {
        let (key, r) = r.expect("no panic");
        assert!(results.insert(key, r).is_none(), "one outcome per send");
    }
    assert_eq!(results.len(), 600);
    tokio::time::sleep(SECOND).await; // every delayed store and reply has happened
    let (mut ok, mut not_sent, mut indeterminate) = (0, 0, 0);
    for (key, r) in &results {
        let stored = cluster.find_by_uniq_key(key).len();
        match r {
            Ok(_) => {
                ok += 1;
                assert!(stored >= 1, "{key}: Ok but not stored");
            }
            Err(e) => match e.delivery() {
                Delivery::NotSent => {
                    not_sent += 1;
                    assert_eq!(stored, 0, "{key}: NotSent but stored: {e}");
                }
                Delivery::Indeterminate => indeterminate += 1,
                Delivery::Rejected => panic!("{key}: {e}"),
            },
        }
    }
    let t = p.stats().transport;
    eprintln!(
        "f7: {ok} ok, {indeterminate} indeterminate, {not_sent} not sent; timeouts {}, late replies {}, connections closed {}",
        t.timeouts, t.late_replies, t.connections_closed
    );
    assert!(
        ok > 0 && indeterminate > 0,
        "positive control: the race went both ways"
    );
    assert_settled(&p);
}

/// F7 (burst): 500 sends at once with deadlines of 80–120 ms against brokers that
/// answer every request in 100 ms. The sends whose deadline is above the RTT are
/// answered: the transport's half-open detection (3 timeouts in a row) waits for a
/// grace period of silence before closing, so replies that merely come later than a
/// short deadline keep the connection (the reconnect churn of apache/rocketmq#3513
/// does not happen).
#[tokio::test(start_paused = true)]
async fn f7_short_deadlines_do_not_fail_answered_requests() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).delay_reply(100 * MS).forever();
    }
    let p = producer(&cluster).await;
    p.send(Message::new(TOPIC, "warm up")).await.unwrap();
    let mut set = JoinSet::new();
    for i in 0..500u64 {
        let p = p.clone();
        set.spawn(async move {
            let timeout = Duration::from_millis(80 + i % 41);
            (
                timeout,
                p.send_with(
                    Message::new(TOPIC, format!("burst {i}")),
                    SendOptions::default().timeout(timeout),
                )
                .await,
            )
        });
    }
    let (mut answered_in_time, mut failed_in_time) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (timeout, r) = r.expect("no panic");
        if timeout > 100 * MS {
            match r {
                Ok(_) => answered_in_time += 1,
                Err(_) => failed_in_time += 1,
            }
        }
    }
    assert_eq!(
        failed_in_time, 0,
        "{answered_in_time} answered, {failed_in_time} failed although the answer came in time"
    );
}

/// Dropping a `send` future mid-flight (decisions.md "Producer defaults"): the
/// permit is released at once; the connection's pending entry is gone by the
/// deadline; the message may be stored (not asserted).
#[tokio::test(start_paused = true)]
async fn dropped_send_future_releases_its_permit() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).delay(SECOND).forever();
    }
    let p = producer(&cluster).await;
    let mut dropped = 0;
    for i in 0..10 {
        tokio::select! {
            r = p.send(Message::new(TOPIC, format!("dropped {i}"))) => panic!("answered early: {r:?}"),
            () = tokio::time::sleep(50 * MS) => dropped += 1,
        }
        assert_eq!(
            p.stats().in_flight,
            0,
            "the permit is released when the future is dropped"
        );
    }
    assert_eq!(dropped, 10);
    assert!(
        p.stats().transport.in_flight() > 0,
        "positive control: requests were on the wire"
    );
    tokio::time::sleep(3 * SECOND).await;
    assert_settled(&p);
    // The producer still works.
    for b in cluster.brokers() {
        b.clear_scripts();
    }
    p.send(Message::new(TOPIC, "after")).await.unwrap();
}

/// A callback whose task is dropped (the runtime shuts down mid-send) fires exactly
/// once, with `Shutdown`; one whose send finished is not called again.
#[test]
fn callback_fires_at_most_once_when_the_runtime_drops_the_send() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let kinds: Arc<Mutex<Vec<Option<SendErrorKind>>>> = Arc::default();
    rt.block_on(async {
        let cluster = cluster().await;
        let p = producer(&cluster).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let c = calls.clone();
        let k = kinds.clone();
        p.send_with_callback(Message::new(TOPIC, "done"), move |r| {
            c.fetch_add(1, Ordering::SeqCst);
            k.lock().unwrap().push(r.err().map(|e| e.kind()));
            let _ = tx.send(());
        });
        rx.await.unwrap();
        for b in cluster.brokers() {
            b.script(SEND).delay(10 * SECOND).forever();
        }
        let c = calls.clone();
        let k = kinds.clone();
        p.send_with_callback(Message::new(TOPIC, "pending"), move |r| {
            c.fetch_add(1, Ordering::SeqCst);
            k.lock().unwrap().push(r.err().map(|e| e.kind()));
        });
        tokio::time::sleep(100 * MS).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the pending callback has not fired yet"
        );
    });
    drop(rt);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the pending callback fired once on shutdown"
    );
    assert_eq!(
        *kinds.lock().unwrap(),
        vec![None, Some(SendErrorKind::Shutdown)]
    );
}

/// Resident set size of this process, from /proc (0 where unavailable).
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}
