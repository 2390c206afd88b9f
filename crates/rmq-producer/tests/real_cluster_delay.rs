//! Delay levels and timer messages against the real rocketmq-rust cluster (its broker
//! has a timer wheel): a delayed message is not readable right after the send, while
//! an ordinary message sent at the same time is (the positive control), and it becomes
//! readable once its time has come.

mod real_cluster_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use real_cluster_support::{create_topic, pull_all};
use rmq_producer::{HeaderFormat, Message, Producer};
use rmq_remoting::{Pool, PoolConfig, TcpConnector};
use rmq_testkit::real_cluster::{real_cluster, unique_topic};
use tokio::time::Instant;

/// The UNIQ_KEYs readable in `topic` now.
async fn readable(pool: &Pool, masters: &[(String, String)], topic: &str) -> Vec<String> {
    pull_all(pool, masters, topic, "rmq_it_delay_cg")
        .await
        .into_keys()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_delayed_messages_become_readable_only_after_their_time() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
    let topic = unique_topic("RmqDelay");
    let masters = create_topic(&pool, &cluster, &topic).await;
    let producer = Producer::builder("rmq_it_delay")
        .namesrv(&cluster.namesrv)
        .configure(|c| {
            c.header_format = if cluster.use_json_header() {
                HeaderFormat::Json
            } else {
                HeaderFormat::Binary
            }
        })
        .build()
        .await
        .expect("producer");

    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    };
    // (name, delay) of every delayed form; the control is sent at the same time.
    let forms: Vec<(&str, Duration, Message)> = vec![
        ("level 1 (1 s)", Duration::from_secs(1), {
            let mut m = Message::new(&topic, "level-1");
            m.set_delay_level(1);
            m
        }),
        ("delay 4 s", Duration::from_secs(4), {
            let mut m = Message::new(&topic, "sec-4");
            m.set_delay_secs(4);
            m
        }),
        ("delay 3500 ms", Duration::from_millis(3500), {
            let mut m = Message::new(&topic, "ms-3500");
            m.set_delay_ms(3500);
            m
        }),
        ("deliver at +5 s", Duration::from_secs(5), {
            let mut m = Message::new(&topic, "at-5000");
            m.set_deliver_time_ms(now_ms() + 5000);
            m
        }),
    ];
    let sent_at = Instant::now();
    let control = producer
        .send(Message::new(&topic, "control"))
        .await
        .expect("control sent")
        .msg_id
        .into_string();
    let mut delayed: HashMap<String, (&str, Duration)> = HashMap::new();
    for (name, delay, m) in forms {
        let r = producer.send(m).await.expect(name);
        delayed.insert(r.msg_id.into_string(), (name, delay));
    }

    // Right after the sends: the control is readable, no delayed message is.
    let now = readable(&pool, &masters, &topic).await;
    let checked_after = sent_at.elapsed();
    assert!(now.contains(&control), "positive control: {now:?}");
    for (key, (name, _)) in &delayed {
        assert!(
            !now.contains(key),
            "{name} readable {checked_after:?} after the send"
        );
    }
    assert!(
        checked_after < Duration::from_millis(900),
        "the early check itself took {checked_after:?}; too slow to mean anything"
    );

    // Later: each becomes readable, not before its time (200 ms of clock tolerance).
    let mut seen: HashMap<String, Duration> = HashMap::new();
    let give_up = sent_at + Duration::from_secs(40);
    while seen.len() < delayed.len() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(250)).await;
        for key in readable(&pool, &masters, &topic).await {
            if delayed.contains_key(&key) {
                seen.entry(key).or_insert_with(|| sent_at.elapsed());
            }
        }
    }
    for (key, (name, delay)) in &delayed {
        let at = seen
            .get(key)
            .unwrap_or_else(|| panic!("{name} never became readable within 40 s"));
        eprintln!("{name}: readable after {at:?} (delay {delay:?})");
        assert!(
            *at + Duration::from_millis(200) >= *delay,
            "{name} readable after {at:?}, before its delay {delay:?}"
        );
    }
    producer.close(Duration::from_secs(2)).await;
}
