//! Delay levels and timer messages against the real rocketmq-rust cluster (its broker
//! has a timer wheel): a delayed message is not readable right after the send, while
//! an ordinary message sent at the same time is (the positive control), and it becomes
//! readable once its time has come.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rmq_producer::{HeaderFormat, Message, Producer};
use rmq_protocol::header::create_topic::CreateTopicRequestHeader;
use rmq_protocol::header::pull_message::PullMessageRequestHeader;
use rmq_protocol::message::stored::decode_stored_all;
use rmq_protocol::route::ClusterInfo;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{Invoke, Pool, PoolConfig, TcpConnector};
use rmq_testkit::real_cluster::{RealCluster, real_cluster, unique_topic};
use tokio::time::Instant;

const T: Duration = Duration::from_secs(10);
const QUEUES: i32 = 4;

/// Creates `topic` on every master; returns (broker name, address).
async fn create_topic(pool: &Pool, cluster: &RealCluster, topic: &str) -> Vec<(String, String)> {
    let info = pool
        .invoke(
            &cluster.namesrv,
            RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO),
            T,
        )
        .await
        .expect("cluster info");
    let info = ClusterInfo::parse(info.body_bytes()).expect("cluster info body");
    let masters: Vec<(String, String)> = info
        .broker_addr_table
        .values()
        .filter_map(|b| Some((b.broker_name.clone(), b.master_addr()?.to_owned())))
        .collect();
    for (_, addr) in &masters {
        let req = RemotingCommand::with_header(
            RequestCode::UPDATE_AND_CREATE_TOPIC,
            &CreateTopicRequestHeader::new(topic, QUEUES),
        );
        let resp = pool.invoke(addr, req, T).await.expect("create topic");
        assert_eq!(resp.response_code(), ResponseCode::SUCCESS);
    }
    masters
}

/// The UNIQ_KEYs readable in `topic` now (every queue of every master, from offset 0).
async fn readable(pool: &Pool, masters: &[(String, String)], topic: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for (name, addr) in masters {
        for queue in 0..QUEUES {
            let mut offset = 0;
            loop {
                let mut h =
                    PullMessageRequestHeader::one_shot("rmq_it_delay_cg", topic, queue, offset, 32);
                h.bname = Some(name.clone());
                let req = RemotingCommand::with_header(RequestCode::PULL_MESSAGE, &h);
                let resp = pool.invoke(addr, req, T).await.expect("pull");
                if resp.response_code() != ResponseCode::SUCCESS {
                    break;
                }
                let mut n = 0;
                for m in decode_stored_all(resp.body_bytes()) {
                    let m = m.expect("stored message");
                    n += 1;
                    offset = offset.max(m.queue_offset + 1);
                    keys.push(m.msg_id().unwrap_or_default().to_owned());
                }
                if n == 0 {
                    break;
                }
            }
        }
    }
    keys
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
        .msg_id;
    let mut delayed: HashMap<String, (&str, Duration)> = HashMap::new();
    for (name, delay, m) in forms {
        let r = producer.send(m).await.expect(name);
        delayed.insert(r.msg_id, (name, delay));
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
