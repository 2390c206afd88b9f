//! Auto-batching against the real rocketmq-rust name server and brokers (once per
//! header type): every batched message is stored once, with its own UNIQ_KEY, at the
//! queue and offset its result names; `close` flushes what is still queued.

mod real_cluster_support;

use std::sync::Arc;
use std::time::Duration;

use real_cluster_support::{create_topic, pull_all};
use rmq_producer::{HeaderFormat, Message, MessageQueue, Producer, SendOptions, SendResult};
use rmq_remoting::{Pool, PoolConfig, TcpConnector};
use rmq_testkit::real_cluster::{real_cluster, unique_topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_every_batched_message_is_stored_with_its_uniq_key() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
    let topic = unique_topic("RmqAutoBatch");
    let masters = create_topic(&pool, &cluster, &topic).await;
    assert!(masters.len() >= 2);
    let header = if cluster.use_json_header() {
        HeaderFormat::Json
    } else {
        HeaderFormat::Binary
    };
    let p = Producer::builder("rmq_it_auto_batch")
        .namesrv(&cluster.namesrv)
        .configure(|c| {
            c.header_format = header;
            c.auto_batch.enabled = true;
            c.auto_batch.linger = Duration::from_millis(20);
            c.auto_batch.max_batch_bytes = 4096;
        })
        .build()
        .await
        .expect("producer");

    // 300 concurrent keyless sends, 20 to an explicit queue, in the same run.
    let pinned_queue = MessageQueue::new(&topic, &masters[0].0, 2);
    let mut tasks = Vec::new();
    for i in 0..320 {
        let p = p.clone();
        let body = format!("auto-batched {i} ").repeat(1 + i % 7);
        let options = if i % 16 == 0 {
            SendOptions::default().queue(pinned_queue.clone())
        } else {
            SendOptions::default()
        };
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let r = p
                .send_with(Message::new(&topic, body.clone()), options)
                .await;
            (body, r)
        }));
    }
    let mut expected: Vec<(String, SendResult)> = Vec::new();
    for t in tasks {
        let (body, r) = t.await.expect("task");
        expected.push((body, r.expect("batched send stored")));
    }
    // A message still queued at close is flushed, not lost.
    let tail = {
        let p = p.clone();
        let topic = topic.clone();
        tokio::spawn(async move { p.send(Message::new(&topic, "queued at close")).await })
    };
    tokio::time::sleep(Duration::from_millis(2)).await;
    let stats = p.stats().auto_batch;
    let report = p.close(Duration::from_secs(10)).await;
    assert_eq!(report.batched_unsent, 0, "{report:?}");
    expected.push((
        "queued at close".to_owned(),
        tail.await.expect("task").expect("flushed by close"),
    ));

    assert_eq!(stats.batched_messages, 320, "{stats:?}");
    assert!(
        stats.batches < 160,
        "batches carried several messages each: {stats:?}"
    );
    let stored = pull_all(&pool, &masters, &topic, "rmq_it_auto_batch_cg").await;
    assert_eq!(
        stored.len(),
        expected.len(),
        "every message stored, nothing else"
    );
    for (body, r) in &expected {
        let copies = stored
            .get(r.msg_id.as_str())
            .unwrap_or_else(|| panic!("{} not stored", r.msg_id));
        assert_eq!(copies.len(), 1, "{} stored once", r.msg_id);
        let (broker, m) = &copies[0];
        assert_eq!(m.message.body().as_ref(), body.as_bytes(), "{}", r.msg_id);
        assert_eq!(broker, &r.message_queue.broker_name, "{}", r.msg_id);
        assert_eq!(m.queue_id, r.message_queue.queue_id, "{}", r.msg_id);
        assert_eq!(
            m.queue_offset, r.queue_offset,
            "{}: base offset + index",
            r.msg_id
        );
    }
    for (body, r) in &expected {
        if body.starts_with("auto-batched 0 ") || body.starts_with("auto-batched 16 ") {
            assert_eq!(r.message_queue, pinned_queue, "explicit queue kept");
        }
    }
}
