//! Sends with a callback on a warm producer wait for their answer in the
//! connection, not in a task per send (issue #9: memory per send in flight), and
//! keep every behaviour of the ordinary path: one call each, retries, deadlines,
//! the message handed back, and a panicking callback harming nothing else.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TOPIC, attempts_for, broker, builder, cluster, cluster_of};
use rmq_producer::hook::SendHook;
use rmq_producer::{Delivery, Message, Producer, SendError, SendErrorKind, SendResult};
use rmq_protocol::{RequestCode, ResponseCode};
use rmq_testkit::fake::FakeCluster;
use tokio::sync::mpsc;

type Outcome = Result<SendResult, SendError>;

fn send_all(p: &Producer, n: usize, tag: &str) -> mpsc::UnboundedReceiver<Outcome> {
    let (tx, rx) = mpsc::unbounded_channel();
    for i in 0..n {
        let tx = tx.clone();
        p.send_with_callback(Message::new(TOPIC, format!("{tag} {i}")), move |r| {
            let _ = tx.send(r);
        });
    }
    rx
}

async fn warm(p: &Producer) {
    // Every queue of both brokers: routes cached, both connections up.
    for i in 0..16 {
        p.send(Message::new(TOPIC, format!("warm {i}")))
            .await
            .expect("warm-up send");
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// A hook that does nothing; installing one sends callbacks the ordinary way.
#[derive(Debug)]
struct Noop;
impl SendHook for Noop {}

#[tokio::test(start_paused = true)]
async fn callback_sends_hold_no_task_while_in_flight_warm_or_cold() {
    const N: usize = 200;
    let mut task_growth = Vec::new();
    // (warm, with a send hook): warm; cold (route and connections made by the sends
    // themselves, in small tasks that end once the send is detached); the ordinary
    // path, forced by a hook (the positive control).
    for (warmed, with_hook) in [(true, false), (false, false), (true, true)] {
        let cluster = cluster().await;
        let b = builder(&cluster);
        let p = if with_hook {
            b.send_hook(Arc::new(Noop))
        } else {
            b
        }
        .build()
        .await
        .expect("producer");
        if warmed {
            warm(&p).await;
        }
        for name in ["broker-a", "broker-b"] {
            broker(&cluster, name)
                .script(RequestCode::SEND_MESSAGE_V2)
                .delay_reply(Duration::from_secs(1))
                .forever()
                .install();
        }
        let before = alive_tasks();
        let mut rx = send_all(&p, N, "held");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(p.stats().in_flight, N, "all in flight at once");
        task_growth.push(alive_tasks().saturating_sub(before));
        for _ in 0..N {
            rx.recv().await.expect("called").expect("stored");
        }
        assert_eq!(p.stats().in_flight, 0);
    }
    let (warm, cold, ordinary) = (task_growth[0], task_growth[1], task_growth[2]);
    println!("tasks added while in flight: warm {warm}, cold {cold}, ordinary {ordinary}");
    // The fake broker's own tasks grow alike in every run; the ordinary path adds
    // one task per send.
    assert!(
        ordinary >= warm + N * 9 / 10,
        "tasks added while {N} sends were in flight: {warm} with callbacks waiting \
         in the connection, {ordinary} the ordinary way"
    );
    assert!(
        cold <= warm + 8,
        "cold sends left tasks behind: {cold} added, {warm} when warm"
    );
}

/// A warm producer on one broker that refuses the next send (SYSTEM_ERROR, retried).
async fn refusing_the_next_send() -> (FakeCluster, Producer) {
    let cluster = cluster_of(&["broker-a"]).await;
    let p = builder(&cluster).build().await.expect("producer");
    warm(&p).await;
    broker(&cluster, "broker-a")
        .script(RequestCode::SEND_MESSAGE_V2)
        .reply(ResponseCode::SYSTEM_ERROR)
        .times(1)
        .install();
    (cluster, p)
}

/// Sends `message` with a callback and waits for the call: the stored result, and a
/// count of the callback's calls (which keeps counting).
async fn stored_via_callback(p: &Producer, message: Message) -> (SendResult, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let counter = calls.clone();
    p.send_with_callback(message, move |r| {
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(r);
    });
    let result = rx
        .recv()
        .await
        .expect("called")
        .expect("stored on the retry");
    (result, calls)
}

#[tokio::test(start_paused = true)]
async fn a_failed_first_attempt_is_retried_on_a_task_and_calls_back_once() {
    let (cluster, p) = refusing_the_next_send().await;
    let (result, calls) = stored_via_callback(&p, Message::new(TOPIC, "retried")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(attempts_for(&cluster, &result.msg_id).len(), 2);
    assert_eq!(
        cluster.find_by_uniq_key(&result.msg_id).len(),
        1,
        "stored once"
    );
    assert_eq!(p.stats().retried, 1);
}

/// A callback send keeps only the wire body while in flight and derives the rest of
/// the request again for a retry: the retry must carry what attempt 1 carried (the
/// compressed body and its flag, properties, topic, group, flag), compressed once.
#[tokio::test(start_paused = true)]
async fn a_retried_callback_send_repeats_attempt_one_exactly() {
    let (cluster, p) = refusing_the_next_send().await;
    let body = "compressible ".repeat(800); // 10 400 bytes: over the 4 KiB threshold
    let mut message = Message::new(TOPIC, body.clone())
        .with_tags("TagA")
        .expect("tag");
    message.set_keys(["order-42"]).expect("keys");
    message.put_user_property("tenant", "t1").expect("property");
    message.set_flag(7);
    let (result, _) = stored_via_callback(&p, message).await;
    let attempts = attempts_for(&cluster, &result.msg_id);
    assert_eq!(attempts.len(), 2, "attempt 1 refused, attempt 2 stored");
    let (first, second) = (&attempts[0].1, &attempts[1].1);
    assert!(first.body().len() < body.len(), "attempt 1 was compressed");
    assert!(
        first.body() == second.body(),
        "attempt 2 did not repeat attempt 1's compressed body ({} vs {} bytes)",
        first.body().len(),
        second.body().len()
    );
    for key in ["a", "b", "c", "f", "h", "i", "j", "m"] {
        // group, topic, default topic, sys flag, flag, properties, reconsume times, batch
        assert_eq!(first.field(key), second.field(key), "header field {key}");
    }
    let stored = cluster.find_by_uniq_key(&result.msg_id);
    assert_eq!(stored.len(), 1, "stored once");
    let sys_flag = rmq_protocol::message::SysFlag(stored[0].sys_flag);
    let unpacked = rmq_producer::compress::decompress(sys_flag, &stored[0].body, 1 << 20)
        .expect("a compressed body");
    assert_eq!(unpacked.as_ref(), body.as_bytes(), "decompressed intact");
    assert_eq!(stored[0].property("TAGS"), Some("TagA"));
    assert_eq!(stored[0].property("tenant"), Some("t1"));
    assert_eq!(stored[0].flag, 7);
}

#[tokio::test(start_paused = true)]
async fn a_silent_broker_fails_the_callback_at_the_deadline_with_the_message_back() {
    let cluster = cluster_of(&["broker-a"]).await;
    let p = builder(&cluster)
        .send_timeout(Duration::from_secs(2))
        .retries(0)
        .build()
        .await
        .expect("producer");
    warm(&p).await;
    broker(&cluster, "broker-a")
        .script(RequestCode::SEND_MESSAGE_V2)
        .black_hole()
        .forever()
        .install();
    let started = tokio::time::Instant::now();
    let mut rx = send_all(&p, 1, "lost");
    let err = rx.recv().await.expect("called").expect_err("no answer");
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), SendErrorKind::Timeout, "{err}");
    assert_eq!(err.delivery(), Delivery::Indeterminate, "it was written");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2100),
        "{elapsed:?}"
    );
    let message = err.into_message().expect("handed back");
    assert_eq!(message.body().as_ref(), b"lost 0");
    assert_eq!(p.stats().failed, 1);
    assert_eq!(p.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_callback_harms_no_other_send() {
    let cluster = cluster().await;
    let p = builder(&cluster).build().await.expect("producer");
    warm(&p).await;
    let connects = p.stats().transport.connects;
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 0..8 {
        let tx = tx.clone();
        p.send_with_callback(Message::new(TOPIC, format!("p {i}")), move |r| {
            let _ = tx.send(r.is_ok());
            if i % 2 == 0 {
                panic!("a user callback panics");
            }
        });
    }
    for _ in 0..8 {
        assert!(rx.recv().await.expect("called"), "stored");
    }
    let mut rx = send_all(&p, 8, "after");
    for _ in 0..8 {
        rx.recv().await.expect("called").expect("stored");
    }
    p.send(Message::new(TOPIC, "sync after"))
        .await
        .expect("stored");
    assert_eq!(
        p.stats().transport.connects,
        connects,
        "no connection was lost to the panics"
    );
}
