//! The auto-batch accumulator against the fake cluster (in memory, paused time):
//! linger, the byte limit, memory back-pressure, per-message results and errors,
//! retries, bypass rules, flush on close, stats and configuration.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TOPIC, broker, builder, cluster};
use rmq_producer::selector::{JavaHashSelector, SelectorArg};
use rmq_producer::{
    Message, MessageQueue, Producer, ProducerConfig, SendError, SendErrorKind, SendOptions,
    SendResult,
};
use rmq_protocol::message::batch::decode_batch;
use rmq_protocol::{RequestCode, ResponseCode};
use rmq_testkit::fake::FakeCluster;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const BATCH: RequestCode = RequestCode::SEND_BATCH_MESSAGE;
const SINGLE: RequestCode = RequestCode::SEND_MESSAGE_V2;

/// A producer with auto-batching on: `linger`, `max_batch_bytes`, `max_total_bytes`.
async fn batching(cluster: &FakeCluster, linger: Duration, batch: usize, total: usize) -> Producer {
    builder(cluster)
        .configure(|c| {
            c.auto_batch.enabled = true;
            c.auto_batch.linger = linger;
            c.auto_batch.max_batch_bytes = batch;
            c.auto_batch.max_total_bytes = total;
        })
        .build()
        .await
        .expect("producer")
}

fn count(cluster: &FakeCluster, code: RequestCode) -> usize {
    cluster
        .brokers()
        .iter()
        .map(|b| b.requests_with_code(code).len())
        .sum()
}

/// Every SEND_BATCH_MESSAGE body the cluster received, decoded.
fn batches(cluster: &FakeCluster) -> Vec<Vec<Message>> {
    cluster
        .brokers()
        .iter()
        .flat_map(|b| b.requests_with_code(BATCH))
        .map(|r| decode_batch(&Bytes::copy_from_slice(r.body())).expect("batch body"))
        .collect()
}

fn spawn_send(p: &Producer, m: Message) -> JoinHandle<Result<SendResult, SendError>> {
    let p = p.clone();
    tokio::spawn(async move { p.send(m).await })
}

/// A message with its UNIQ_KEY assigned; returns the key too.
fn keyed(p: &Producer, body: impl Into<Bytes>) -> (Message, String) {
    let mut m = Message::new(TOPIC, body.into());
    let id = p.assign_uniq_key(&mut m).to_owned();
    (m, id)
}

/// The result points at the stored message that carries this UNIQ_KEY.
fn assert_stored_as(cluster: &FakeCluster, id: &str, r: &SendResult) {
    assert_eq!(r.msg_id, id);
    let stored = cluster.find_by_uniq_key(id);
    assert_eq!(stored.len(), 1, "{id} stored once");
    assert_eq!(stored[0].queue_id, r.message_queue.queue_id, "{id}");
    assert_eq!(stored[0].queue_offset, r.queue_offset, "{id}");
    assert_eq!(
        stored[0].properties.get("UNIQ_KEY"),
        Some(id),
        "the stored message keeps its own UNIQ_KEY"
    );
}

#[tokio::test(start_paused = true)]
async fn linger_is_honoured_and_each_message_gets_its_own_result() {
    let cluster = cluster().await;
    let p = batching(&cluster, Duration::from_millis(10), 32 * 1024, 1 << 20).await;
    // Positive control: a send that bypasses the accumulator (a selector) is answered
    // at once, so the wait below is the linger and nothing else.
    let started = Instant::now();
    let ordered =
        SendOptions::default().selector(Arc::new(JavaHashSelector), SelectorArg::from("k"));
    p.send_with(Message::new(TOPIC, "direct"), ordered)
        .await
        .expect("direct send");
    assert!(
        started.elapsed() < Duration::from_millis(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(count(&cluster, SINGLE), 1);
    cluster.brokers().iter().for_each(|b| b.clear_requests());

    let started = Instant::now();
    let mut sends = Vec::new();
    for i in 0..3 {
        let (m, id) = keyed(&p, format!("m{i}"));
        sends.push((id, spawn_send(&p, m)));
    }
    tokio::time::sleep(Duration::from_millis(9)).await;
    assert_eq!(
        count(&cluster, BATCH) + count(&cluster, SINGLE),
        0,
        "nothing sent before the linger"
    );
    assert_eq!(p.stats().auto_batch.queued_messages, 3);
    assert!(p.stats().auto_batch.queued_bytes > 0);
    let mut results = Vec::new();
    for (id, h) in sends {
        let r = h.await.expect("task").expect("stored");
        results.push((id, r));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(10) && elapsed < Duration::from_millis(15),
        "sent when the linger passed: {elapsed:?}"
    );
    assert_eq!(count(&cluster, BATCH), 1, "one batch");
    assert_eq!(count(&cluster, SINGLE), 0);
    assert_eq!(batches(&cluster)[0].len(), 3);
    let first = &results[0].1;
    for (i, (id, r)) in results.iter().enumerate() {
        assert_stored_as(&cluster, id, r);
        assert_eq!(r.message_queue, first.message_queue, "one batch, one queue");
        assert_eq!(
            r.queue_offset,
            first.queue_offset + i as i64,
            "base offset + index"
        );
    }
    let stats = p.stats();
    assert_eq!(stats.sent, 4, "per-message counters: 3 batched + 1 direct");
    let stats = stats.auto_batch;
    assert_eq!((stats.batches, stats.batched_messages), (1, 3));
    assert_eq!((stats.sealed_by_linger, stats.sealed_by_size), (1, 0));
    assert_eq!(stats.bypassed, 1, "the selector send");
    assert_eq!((stats.queued_messages, stats.queued_bytes), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn the_byte_limit_splits_batches_and_the_sticky_queue_moves() {
    let cluster = cluster().await;
    let limit = 1024;
    let p = batching(&cluster, Duration::from_millis(10), limit, 1 << 20).await;
    let mut sends = Vec::new();
    for i in 0..7 {
        let (m, id) = keyed(&p, vec![b'a' + i as u8; 300]);
        sends.push((id, spawn_send(&p, m)));
    }
    let mut queues = Vec::new();
    for (id, h) in sends {
        let r = h.await.expect("task").expect("stored");
        assert_stored_as(&cluster, &id, &r);
        queues.push(r.message_queue.clone());
    }
    let sent = batches(&cluster);
    assert_eq!(sent.iter().map(Vec::len).sum::<usize>(), 7);
    assert!(sent.len() >= 3, "{} batches", sent.len());
    for b in cluster.brokers() {
        for r in b.requests_with_code(BATCH) {
            assert!(r.body().len() <= limit, "batch of {} bytes", r.body().len());
        }
    }
    // Sticky: each batch went to one queue, and consecutive batches moved on.
    queues.dedup();
    assert!(
        queues.len() >= 3,
        "batches went to different queues: {queues:?}"
    );
    let stats = p.stats().auto_batch;
    assert!(stats.sealed_by_size >= 2, "{stats:?}");
    assert_eq!(stats.batches, sent.len() as u64);
}

#[tokio::test(start_paused = true)]
async fn a_full_buffer_makes_send_wait_and_try_send_hand_the_message_back() {
    let cluster = cluster().await;
    // Room for two 300-byte messages; the linger holds them for 1 s.
    let p = batching(&cluster, Duration::from_secs(1), 1024, 1024).await;
    let held: Vec<_> = (0..2)
        .map(|i| spawn_send(&p, Message::new(TOPIC, vec![i as u8 + 1; 300])))
        .collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(p.stats().auto_batch.queued_messages, 2);

    let body = Bytes::from(vec![7u8; 300]);
    let err = p
        .try_send(Message::new(TOPIC, body.clone()))
        .await
        .expect_err("no room");
    assert_eq!(err.kind(), SendErrorKind::BufferFull);
    assert!(err.to_string().contains("auto-batch buffer full"), "{err}");
    assert_eq!(err.into_message().expect("handed back").body(), &body);

    let started = Instant::now();
    let quick = SendOptions::default().timeout(Duration::from_millis(100));
    let err = p
        .send_with(Message::new(TOPIC, body.clone()), quick)
        .await
        .expect_err("still no room at the deadline");
    assert_eq!(err.kind(), SendErrorKind::BufferFull);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100),
        "waited up to its deadline"
    );
    assert_eq!(err.into_message().expect("handed back").body(), &body);
    assert_eq!(
        count(&cluster, BATCH) + count(&cluster, SINGLE),
        0,
        "never bypassed"
    );

    // A waiting send gets room once the held batch is answered (after the linger).
    let started = Instant::now();
    let waiting = spawn_send(&p, Message::new(TOPIC, body.clone()));
    for h in held {
        h.await.expect("task").expect("held messages stored");
    }
    let r = waiting
        .await
        .expect("task")
        .expect("stored after room was freed");
    assert!(
        started.elapsed() >= Duration::from_millis(899),
        "{:?}",
        started.elapsed()
    );
    assert!(!r.msg_id.is_empty());
    let stats = p.stats().auto_batch;
    assert_eq!(stats.buffer_full, 2);
    assert_eq!((stats.queued_messages, stats.queued_bytes), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn an_invalid_message_fails_alone_and_the_rest_are_stored() {
    let cluster = cluster().await;
    let p = batching(&cluster, Duration::from_millis(10), 32 * 1024, 1 << 20).await;
    let (good1, id1) = keyed(&p, "good 1");
    let (good2, id2) = keyed(&p, "good 2");
    let h1 = spawn_send(&p, good1);
    let bad = p
        .send(Message::new(TOPIC, Bytes::new()))
        .await
        .expect_err("empty body");
    assert_eq!(bad.kind(), SendErrorKind::InvalidMessage);
    assert!(bad.into_message().is_some(), "handed back");
    let h2 = spawn_send(&p, good2);
    let r1 = h1.await.expect("task").expect("stored");
    let r2 = h2.await.expect("task").expect("stored");
    assert_stored_as(&cluster, &id1, &r1);
    assert_stored_as(&cluster, &id2, &r2);
    assert_eq!(count(&cluster, BATCH), 1);
    assert_eq!(batches(&cluster)[0].len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_batch_hands_every_message_back() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(BATCH)
            .reply_with(ResponseCode::MESSAGE_ILLEGAL, "no")
            .forever();
    }
    let p = batching(&cluster, Duration::from_millis(10), 32 * 1024, 1 << 20).await;
    let bodies: Vec<Bytes> = (0..3).map(|i| Bytes::from(format!("doomed {i}"))).collect();
    let sends: Vec<_> = bodies
        .iter()
        .map(|b| spawn_send(&p, Message::new(TOPIC, b.clone())))
        .collect();
    for (h, body) in sends.into_iter().zip(&bodies) {
        let err = h.await.expect("task").expect_err("rejected");
        assert_eq!(err.kind(), SendErrorKind::Rejected);
        assert_eq!(err.response_code(), Some(ResponseCode::MESSAGE_ILLEGAL));
        assert_eq!(err.into_message().expect("handed back").body(), body);
    }
    assert_eq!(count(&cluster, BATCH), 1, "MESSAGE_ILLEGAL is not retried");
    let stats = p.stats();
    assert_eq!(stats.failed, 3);
    assert_eq!(
        (
            stats.auto_batch.failed_batches,
            stats.auto_batch.failed_messages
        ),
        (1, 3)
    );
    assert_eq!(stats.auto_batch.queued_messages, 0);
}

#[tokio::test(start_paused = true)]
async fn sticky_batches_retry_on_another_broker_explicit_queues_only_on_theirs() {
    let cluster = cluster().await;
    broker(&cluster, "broker-a")
        .script(BATCH)
        .reply(ResponseCode::SYSTEM_ERROR)
        .forever();
    let p = batching(&cluster, Duration::from_millis(10), 32 * 1024, 1 << 20).await;
    // Ten sticky batches, one after the other: round robin over the 8 queues makes
    // some of them start on broker-a.
    for i in 0..10 {
        let (m, id) = keyed(&p, format!("sticky {i}"));
        let r = p.send(m).await.expect("stored on broker-b");
        assert_eq!(r.message_queue.broker_name, "broker-b");
        assert_stored_as(&cluster, &id, &r);
    }
    assert!(
        !broker(&cluster, "broker-a")
            .requests_with_code(BATCH)
            .is_empty(),
        "positive control: some batch was tried on broker-a first"
    );
    // An explicit queue on broker-a: retried there only, then failed.
    broker(&cluster, "broker-a").clear_requests();
    let b_before = broker(&cluster, "broker-b").requests_with_code(BATCH).len();
    let pinned = SendOptions::default().queue(MessageQueue::new(TOPIC, "broker-a", 1));
    let err = p
        .send_with(Message::new(TOPIC, "pinned"), pinned)
        .await
        .expect_err("broker-a refuses");
    assert_eq!(err.response_code(), Some(ResponseCode::SYSTEM_ERROR));
    assert_eq!(err.attempts(), 3);
    assert!(err.into_message().is_some());
    assert_eq!(
        broker(&cluster, "broker-a").requests_with_code(BATCH).len(),
        3
    );
    assert_eq!(
        broker(&cluster, "broker-b").requests_with_code(BATCH).len(),
        b_before
    );
}

#[tokio::test(start_paused = true)]
async fn messages_outside_the_rules_bypass_the_accumulator() {
    let cluster = cluster().await;
    let p = batching(&cluster, Duration::from_secs(5), 32 * 1024, 1 << 20).await;
    let mut delayed = Message::new(TOPIC, "later");
    delayed.set_delay_level(2);
    let big = Message::new(TOPIC, vec![b'x'; 8192]); // ≥ the compression threshold
    let mut no_wait = Message::new(TOPIC, "no wait");
    no_wait.set_wait_store_msg_ok(false);
    let started = Instant::now();
    for m in [delayed, big, no_wait] {
        p.send(m).await.expect("sent on its own");
    }
    p.send_oneway(Message::new(TOPIC, "oneway"))
        .await
        .expect("one-way");
    assert!(
        started.elapsed() < Duration::from_millis(1),
        "no linger: {:?}",
        started.elapsed()
    );
    assert_eq!(count(&cluster, SINGLE), 4);
    assert_eq!(count(&cluster, BATCH), 0);
    assert_eq!(
        p.stats().auto_batch.bypassed,
        3,
        "one-way sends never reach the accumulator"
    );
}

#[tokio::test(start_paused = true)]
async fn close_flushes_queued_messages_at_once() {
    let cluster = cluster().await;
    let p = batching(&cluster, Duration::from_secs(10), 32 * 1024, 1 << 20).await;
    let mut sends = Vec::new();
    for i in 0..3 {
        let (m, id) = keyed(&p, format!("closing {i}"));
        sends.push((id, spawn_send(&p, m)));
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let started = Instant::now();
    let report = p.close(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "did not wait for the linger"
    );
    assert_eq!((report.batched_at_close, report.batched_unsent), (3, 0));
    for (id, h) in sends {
        let r = h.await.expect("task").expect("flushed by close");
        assert_stored_as(&cluster, &id, &r);
    }
    assert_eq!(p.stats().auto_batch.sealed_by_close, 1);
    let err = p
        .send(Message::new(TOPIC, "late"))
        .await
        .expect_err("closed");
    assert_eq!(err.kind(), SendErrorKind::Shutdown);
    assert!(err.into_message().is_some());
}

#[tokio::test(start_paused = true)]
async fn close_reports_the_batched_messages_it_could_not_send() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(BATCH).black_hole().forever();
    }
    let p = batching(&cluster, Duration::from_secs(10), 1000, 1000).await;
    let sends: Vec<_> = (0..2)
        .map(|i| spawn_send(&p, Message::new(TOPIC, format!("stuck {i}"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    // A send waiting for room is released by close, not left to its deadline.
    let p2 = p.clone();
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let r = p2.send(Message::new(TOPIC, vec![b'w'; 900])).await;
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = p.close(Duration::from_millis(300)).await;
    assert_eq!((report.batched_at_close, report.batched_unsent), (2, 2));
    let (r, waited) = waiting.await.expect("task");
    let err = r.expect_err("closed while waiting");
    assert_eq!(err.kind(), SendErrorKind::Shutdown);
    assert!(waited < Duration::from_millis(2), "{waited:?}");
    assert!(err.into_message().is_some());
    for h in sends {
        let err = h.await.expect("task").expect_err("never answered");
        assert!(err.into_message().is_some(), "handed back");
    }
    assert_eq!(
        count(&cluster, BATCH),
        1,
        "positive control: the batch was written"
    );
}

#[test]
fn settings_load_from_toml_and_env_and_are_validated() {
    let c = ProducerConfig::from_toml_str(
        "group = \"g\"\nnamesrv_addrs = \"a:1\"\n[auto_batch]\nenabled = true\nlinger = \"5ms\"\nmax_batch_bytes = 65536\n",
    )
    .expect("toml");
    assert!(c.auto_batch.enabled);
    assert_eq!(c.auto_batch.linger, Duration::from_millis(5));
    assert_eq!(c.auto_batch.max_batch_bytes, 65536);
    assert_eq!(c.auto_batch.max_total_bytes, 32 << 20, "default");
    let vars = [
        ("RMQ_PRODUCER_GROUP", "g"),
        ("NAMESRV_ADDR", "a:1"),
        ("RMQ_PRODUCER_AUTO_BATCH_ENABLED", "true"),
        ("RMQ_PRODUCER_AUTO_BATCH_MAX_TOTAL_BYTES", "1_048_576"),
    ];
    let c = ProducerConfig::from_env_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned())))
        .expect("env");
    assert!(c.auto_batch.enabled);
    assert_eq!(c.auto_batch.max_total_bytes, 1 << 20);
    assert_eq!(c.auto_batch.linger, Duration::from_millis(10), "default");

    let mut c = ProducerConfig::new("g");
    c.namesrv_addrs = vec!["a:1".into()];
    c.auto_batch.linger = Duration::ZERO;
    c.validate().expect("ranges are checked only when enabled");
    c.auto_batch.enabled = true;
    assert_eq!(c.validate().unwrap_err().key(), Some("auto_batch.linger"));
    c.auto_batch.linger = Duration::from_millis(10);
    c.auto_batch.max_batch_bytes = 8 << 20;
    assert_eq!(
        c.validate().unwrap_err().key(),
        Some("auto_batch.max_batch_bytes")
    );
    c.auto_batch.max_batch_bytes = 4096;
    c.auto_batch.max_total_bytes = 1024;
    assert_eq!(
        c.validate().unwrap_err().key(),
        Some("auto_batch.max_total_bytes")
    );
}
