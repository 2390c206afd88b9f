//! The producer against the real rocketmq-rust name server and brokers
//! (`cargo xtask test --stage cluster`, once per header type): every send mode, all
//! three codecs (pulled back and decompressed by their sysFlag), and the ordered send.

mod real_cluster_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use real_cluster_support::{create_topic, pull_all};
use rmq_producer::selector::{JavaHashSelector, SelectorArg};
use rmq_producer::{CompressionType, HeaderFormat, Message, Producer, SendOptions, SendStatus};
use rmq_protocol::message::sys_flag::SysFlag;
use rmq_remoting::{Pool, PoolConfig, TcpConnector};
use rmq_testkit::real_cluster::{real_cluster, unique_topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_every_send_mode_and_codec_round_trips() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
    let topic = unique_topic("RmqProducer");
    let masters = create_topic(&pool, &cluster, &topic).await;
    assert!(masters.len() >= 2);
    let header = if cluster.use_json_header() {
        HeaderFormat::Json
    } else {
        HeaderFormat::Binary
    };
    let p = Producer::builder("rmq_it_producer")
        .namesrv(&cluster.namesrv)
        .configure(|c| c.header_format = header)
        .build()
        .await
        .expect("producer");

    let mut expected: HashMap<String, Vec<u8>> = HashMap::new();
    // sync, small and compressible-large
    for i in 0..6 {
        let body = if i % 2 == 0 {
            format!("sync {i}").into_bytes()
        } else {
            format!("sync-large {i} ").repeat(800).into_bytes()
        };
        let r = p
            .send(Message::new(&topic, body.clone()).with_tags("T1").unwrap())
            .await
            .expect("sync send");
        assert_eq!(r.status, SendStatus::SendOk);
        expected.insert(r.msg_id.into_string(), body);
    }
    // async with callback
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..6 {
        let body = format!("async {i}").into_bytes();
        let tx = tx.clone();
        let b = body.clone();
        p.send_with_callback(Message::new(&topic, body), move |r| {
            let _ = tx.send((r.map(|r| r.msg_id.into_string()), b));
        });
    }
    for _ in 0..6 {
        let (r, body) = rx.recv().await.expect("callback");
        expected.insert(r.expect("async send"), body);
    }
    // one-way (its UNIQ_KEY is assigned before the send)
    for i in 0..3 {
        let mut m = Message::new(&topic, format!("oneway {i}"));
        let key = p.assign_uniq_key(&mut m).to_owned();
        p.send_oneway(m).await.expect("one-way send");
        expected.insert(key, format!("oneway {i}").into_bytes());
    }
    // batch
    let batch: Vec<Message> = (0..5)
        .map(|i| Message::new(&topic, format!("batch {i}")))
        .collect();
    for (i, r) in p.send_batch(batch).await.into_iter().enumerate() {
        expected.insert(
            r.expect("batch send").msg_id.into_string(),
            format!("batch {i}").into_bytes(),
        );
    }
    // every codec, with its own producer
    for kind in [
        CompressionType::Zlib,
        CompressionType::Zstd,
        CompressionType::Lz4,
    ] {
        let pc = Producer::builder("rmq_it_producer_codec")
            .namesrv(&cluster.namesrv)
            .configure(|c| {
                c.header_format = header;
                c.compression.kind = kind;
            })
            .build()
            .await
            .expect("producer");
        let body = format!("{kind:?} compressed body ")
            .repeat(500)
            .into_bytes();
        let r = pc
            .send(Message::new(&topic, body.clone()))
            .await
            .expect("compressed send");
        expected.insert(r.msg_id.into_string(), body);
        pc.close(Duration::from_secs(5)).await;
    }
    // ordered: same key → same queue, order kept
    let selector = Arc::new(JavaHashSelector);
    let mut ordered = Vec::new();
    for i in 0..8 {
        let opts =
            SendOptions::default().selector(selector.clone(), SelectorArg::Str("order-7".into()));
        let r = p
            .send_with(Message::new(&topic, format!("ordered {i}")), opts)
            .await
            .expect("ordered send");
        expected.insert(r.msg_id.to_string(), format!("ordered {i}").into_bytes());
        ordered.push(r);
    }
    assert!(
        ordered
            .windows(2)
            .all(|w| w[0].message_queue == w[1].message_queue)
    );
    assert!(
        ordered
            .windows(2)
            .all(|w| w[1].queue_offset > w[0].queue_offset)
    );

    // Read everything back (one-way sends may land a moment later).
    let mut stored = HashMap::new();
    for _ in 0..50 {
        stored = pull_all(&pool, &masters, &topic, "rmq_it_producer_cg").await;
        if expected.keys().all(|k| stored.contains_key(k)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut codecs_seen = Vec::new();
    for (key, body) in &expected {
        let copies = stored
            .get(key)
            .unwrap_or_else(|| panic!("message {key} not stored"));
        assert_eq!(copies.len(), 1, "message {key} stored once");
        let m = &copies[0].1;
        let flag = SysFlag(m.sys_flag.0);
        let plain = if flag.is_compressed() {
            codecs_seen.push(flag.compression_type().unwrap());
            rmq_producer::compress::decompress(flag, m.message.body(), 1 << 22).expect("decompress")
        } else {
            m.message.body().clone()
        };
        assert_eq!(plain.as_ref(), body.as_slice(), "body of {key}");
    }
    for kind in [
        CompressionType::Zlib,
        CompressionType::Zstd,
        CompressionType::Lz4,
    ] {
        assert!(
            codecs_seen.contains(&Some(kind)),
            "{kind:?} seen on a stored message"
        );
    }
    // The ordered messages are stored in send order in their queue.
    let queue = &ordered[0].message_queue;
    let mut in_queue: Vec<_> = ordered
        .iter()
        .map(|r| {
            let (broker, m) = &stored[r.msg_id.as_str()][0];
            assert_eq!(
                (broker.as_str(), m.queue_id),
                (queue.broker_name.as_str(), queue.queue_id)
            );
            (
                m.queue_offset,
                String::from_utf8_lossy(m.message.body()).into_owned(),
            )
        })
        .collect();
    in_queue.sort();
    let bodies: Vec<_> = in_queue.into_iter().map(|(_, b)| b).collect();
    assert_eq!(
        bodies,
        (0..8).map(|i| format!("ordered {i}")).collect::<Vec<_>>()
    );
    let report = p.close(Duration::from_secs(5)).await;
    assert_eq!(report.abandoned, 0);
    pool.close_all();
}
