//! Send modes against the fake cluster (in memory, paused time): sync, callback,
//! one-way, batch, selector, explicit queue, compression, UNIQ_KEY handling.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TOPIC, broker, cluster, producer, sends};
use rmq_producer::selector::{JavaHashSelector, SelectorArg};
use rmq_producer::{Message, SendOptions, SendStatus};
use rmq_protocol::message::sys_flag::SysFlag;

#[tokio::test(start_paused = true)]
async fn sync_send_is_stored_with_its_uniq_key() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let mut msg = Message::new(TOPIC, "hello").with_tags("TagA").unwrap();
    let key = p.assign_uniq_key(&mut msg).to_owned();
    let r = p.send(msg).await.unwrap();
    assert_eq!(r.status, SendStatus::SendOk);
    assert_eq!(
        r.msg_id, key,
        "the UNIQ_KEY known before the send is the result's id"
    );
    let stored = cluster.find_by_uniq_key(&key);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body.as_ref(), b"hello");
    assert_eq!(stored[0].properties.get("TAGS"), Some("TagA"));
    assert_eq!(stored[0].queue_id, r.message_queue.queue_id);
    assert!(!r.offset_msg_id.is_empty());
    assert_eq!(p.stats().sent, 1);
    p.close(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn round_robin_spreads_over_both_brokers() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    for i in 0..16 {
        p.send(Message::new(TOPIC, format!("m{i}"))).await.unwrap();
    }
    assert!(broker(&cluster, "broker-a").message_count() >= 4);
    assert!(broker(&cluster, "broker-b").message_count() >= 4);
}

#[tokio::test(start_paused = true)]
async fn callback_is_called_exactly_once() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let c = calls.clone();
    p.send_with_callback(Message::new(TOPIC, "cb"), move |r| {
        c.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(r.map(|r| r.msg_id));
    });
    let id = rx.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cluster.find_by_uniq_key(&id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn oneway_send_is_stored() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    p.send_oneway(Message::new(TOPIC, "fire and forget"))
        .await
        .unwrap();
    cluster
        .wait_until(|c| c.messages_for(TOPIC).len() == 1)
        .await;
    assert_eq!(
        cluster.messages_for(TOPIC)[0].body.as_ref(),
        b"fire and forget"
    );
}

#[tokio::test(start_paused = true)]
async fn batch_reports_each_message_and_stores_its_own_key() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let msgs: Vec<Message> = (0..5)
        .map(|i| Message::new(TOPIC, format!("b{i}")))
        .collect();
    let results = p.send_batch(msgs).await;
    assert_eq!(results.len(), 5);
    let mut offsets = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let r = r.as_ref().unwrap();
        let stored = cluster.find_by_uniq_key(&r.msg_id);
        assert_eq!(stored.len(), 1, "message {i} stored once under its own key");
        assert_eq!(stored[0].body.as_ref(), format!("b{i}").as_bytes());
        offsets.push(r.queue_offset);
    }
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive offsets {offsets:?}"
    );
    assert_eq!(sends(&cluster), 1, "one request for the whole batch");
}

#[tokio::test(start_paused = true)]
async fn batch_with_an_invalid_message_fails_only_that_one() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let results = p
        .send_batch(vec![
            Message::new(TOPIC, "ok"),
            Message::new(TOPIC, ""),
            Message::new(TOPIC, "ok2"),
        ])
        .await;
    assert!(results[0].is_ok());
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), rmq_producer::SendErrorKind::InvalidMessage);
    assert!(results[2].is_ok());
}

#[tokio::test(start_paused = true)]
async fn batch_is_split_at_the_size_limit() {
    let cluster = cluster().await;
    let p = common::builder(&cluster)
        .configure(|c| c.max_message_size = 10_000)
        .build()
        .await
        .unwrap();
    let msgs: Vec<Message> = (0..10)
        .map(|_| Message::new(TOPIC, vec![b'x'; 3000]))
        .collect();
    let results = p.send_batch(msgs).await;
    assert!(results.iter().all(Result::is_ok));
    assert!(
        sends(&cluster) >= 4,
        "10 × 3000 B cannot fit in fewer than 4 requests of 10 000 B"
    );
    assert_eq!(cluster.messages_for(TOPIC).len(), 10);
}

#[tokio::test(start_paused = true)]
async fn selector_sends_the_same_key_to_the_same_queue_in_order() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let selector = Arc::new(JavaHashSelector);
    let mut queues = Vec::new();
    for i in 0..6 {
        let opts =
            SendOptions::default().selector(selector.clone(), SelectorArg::Str("order-42".into()));
        let r = p
            .send_with(Message::new(TOPIC, format!("step{i}")), opts)
            .await
            .unwrap();
        queues.push(r.message_queue);
    }
    assert!(queues.windows(2).all(|w| w[0] == w[1]), "{queues:?}");
    let stored: Vec<_> = cluster
        .messages_for(TOPIC)
        .into_iter()
        .filter(|m| m.queue_id == queues[0].queue_id)
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    assert_eq!(
        stored,
        (0..6).map(|i| format!("step{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn explicit_queue_is_honoured() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let q = rmq_producer::MessageQueue::new(TOPIC, "broker-b", 3);
    let r = p
        .send_with(
            Message::new(TOPIC, "pinned"),
            SendOptions::default().queue(q.clone()),
        )
        .await
        .unwrap();
    assert_eq!(r.message_queue, q);
    assert_eq!(
        broker(&cluster, "broker-b").messages_for(TOPIC)[0].queue_id,
        3
    );
}

/// B3: a large body is compressed once on the wire with the type bits set; the
/// caller's message is untouched.
#[tokio::test(start_paused = true)]
async fn b3_large_body_is_compressed_on_the_wire_only() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let body = "compress me ".repeat(1000);
    let msg = Message::new(TOPIC, body.clone());
    let original = msg.clone();
    let r = p.send(msg).await.unwrap();
    let stored = &cluster.find_by_uniq_key(&r.msg_id)[0];
    assert_eq!(stored.sys_flag, 0x301, "zlib type bits and COMPRESSED");
    assert!(stored.body.len() < body.len());
    let back = rmq_producer::compress::decompress(SysFlag(stored.sys_flag), &stored.body, 1 << 20)
        .unwrap();
    assert_eq!(back.as_ref(), body.as_bytes());
    assert_eq!(original.body().as_ref(), body.as_bytes());
}

#[test]
fn producer_is_clone_send_sync_and_sends_take_shared_references() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<rmq_producer::Producer>();
    // `send` takes `&self`: a shared reference can be used from many tasks.
    fn _sends_from_a_shared_reference(p: &rmq_producer::Producer) -> impl std::future::Future + '_ {
        p.send(Message::new(TOPIC, "x"))
    }
}
