//! Memory per send in flight (issue #9): every send in flight holds its send
//! future (for `send_with_callback`, inside one task), so the future's size is
//! memory per send. These tests pin an upper bound on it and check that the
//! callback path keeps its behaviour after being flattened (auto-batching, errors
//! with the message handed back, exactly one call).
//!
//! The bounds are the sizes measured in the test profile after the send path was
//! flattened (docs/benchmarks.md, "Memory per send in flight"), plus a small
//! margin; before, `send` was 3 696 bytes and `send_oneway` 2 912. A new field held
//! across an `.await` on the send path, or a large rarely used state inlined into
//! it, fails them: box it, or raise the bound knowingly.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TOPIC, builder, cluster, producer};
use rmq_producer::{Delivery, Message, SendErrorKind};

/// `Producer::send`'s future, test profile (measured: 2 704 bytes; 2 808 since the
/// message's topic is an inline `FieldValue`: `Message` grew from 88 to 104 bytes and
/// the send path holds it in six places, in exchange for no topic allocation; the
/// picked queue went from an 88-byte `Cow` to a 16-byte reference; 2 824 with the
/// encoded properties as a shared `FieldValue`; 2 968 when header fields could be held
/// in wire form (`ExtFields` grew from 24 to 40 bytes and the send path holds nine
/// `RemotingCommand`s, in exchange for the 896-byte field vector each request kept on
/// the heap while in flight, and its allocation); back to 2 824 once the kernel's
/// `deliver` stopped storing its arguments twice; 2 664 since the connection's
/// driver keeps no copy of a request and hands it to the driver from a plain `fn`;
/// 2 760 since a message's `Properties` are its wire text with each entry's bounds,
/// 40 bytes where the vector was 32, in exchange for the 320-byte entry vector each
/// message kept on the heap).
const SEND_FUTURE_MAX: usize = 2_780;
/// `Producer::send_oneway`'s future, test profile (measured: 2 352, then 2 360, then
/// 2 376, 2 520, 2 376 and 2 216 bytes).
const ONEWAY_FUTURE_MAX: usize = 2_300;

#[tokio::test(start_paused = true)]
async fn send_futures_stay_within_their_size_bounds() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let send = p.send(Message::new(TOPIC, "x"));
    let send_size = std::mem::size_of_val(&send);
    drop(send);
    let oneway = p.send_oneway(Message::new(TOPIC, "x"));
    let oneway_size = std::mem::size_of_val(&oneway);
    drop(oneway);
    println!("send future: {send_size} bytes, send_oneway future: {oneway_size} bytes");
    // Positive control: the measure sees what a future holds across an await.
    let big = async {
        let buf = [0u8; 4096];
        tokio::task::yield_now().await;
        buf.len()
    };
    assert!(std::mem::size_of_val(&big) >= 4096);
    assert!(
        send_size <= SEND_FUTURE_MAX,
        "the send future grew to {send_size} bytes (bound {SEND_FUTURE_MAX})"
    );
    assert!(
        oneway_size <= ONEWAY_FUTURE_MAX,
        "the one-way send future grew to {oneway_size} bytes (bound {ONEWAY_FUTURE_MAX})"
    );
}

#[tokio::test(start_paused = true)]
async fn callbacks_with_auto_batching_go_through_the_accumulator_once_each() {
    let cluster = cluster().await;
    let p = builder(&cluster)
        .configure(|c| {
            c.auto_batch.enabled = true;
            c.auto_batch.linger = Duration::from_millis(5);
        })
        .build()
        .await
        .expect("producer");
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..20 {
        let calls = calls.clone();
        let tx = tx.clone();
        p.send_with_callback(Message::new(TOPIC, format!("m{i}")), move |r| {
            calls.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(r.map(|r| r.msg_id));
        });
    }
    drop(tx);
    let mut ids = Vec::new();
    while let Some(r) = rx.recv().await {
        ids.push(r.expect("stored"));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 20, "one call per send");
    assert_eq!(ids.len(), 20);
    for id in &ids {
        assert_eq!(cluster.find_by_uniq_key(id).len(), 1, "{id} stored once");
    }
    let stats = p.stats().auto_batch;
    assert_eq!(
        stats.batched_messages, 20,
        "every callback send was batched"
    );
    assert!(stats.batches < 20, "they shared batches: {stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_callback_send_hands_the_message_back() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    // An empty body is invalid: nothing is sent.
    p.send_with_callback(Message::new(TOPIC, ""), move |r| {
        let _ = tx.send(r);
    });
    let err = rx.await.expect("called").expect_err("invalid");
    assert_eq!(err.kind(), SendErrorKind::InvalidMessage);
    assert_eq!(err.delivery(), Delivery::NotSent);
    let message = err.into_message().expect("handed back");
    assert_eq!(message.topic(), TOPIC);
}
