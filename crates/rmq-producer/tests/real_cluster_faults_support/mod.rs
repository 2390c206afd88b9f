//! Shared by `real_cluster_faults.rs` and `real_cluster_faults_pause.rs`: a topic on both
//! real brokers, a producer whose connections to broker-a go through a `FaultProxy`
//! (via `AddressMap`), an attempt log, and reading the topic back by UNIQ_KEY.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_producer::hook::{AttemptContext, AttemptOutcome, SendHook};
use rmq_producer::{Delivery, HeaderFormat, Message, MessageQueue, Producer, SendOptions};
use rmq_protocol::SerializeType;
use rmq_protocol::message::sys_flag::SysFlag;
use rmq_remoting::{AddressMap, Connector, Pool, PoolConfig, TcpConnector};
use rmq_testkit::proxy::FaultProxy;
use rmq_testkit::real_cluster::{Admin, RealCluster, real_cluster, unique_topic};

pub const T: Duration = Duration::from_secs(10);
pub const QUEUES: i32 = 4;

/// The tests of one binary run one at a time: they share broker-a's health.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One attempt as the hook saw it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub key: String,
    pub attempt: u32,
    pub broker: String,
    /// `None` while running; then `"stored"` or the error kind.
    pub outcome: Option<String>,
    pub delivery: Option<Delivery>,
    pub elapsed: Option<Duration>,
}

/// Logs every attempt of every send.
#[derive(Debug, Default)]
pub struct AttemptLog {
    entries: Mutex<Vec<Attempt>>,
}

impl AttemptLog {
    pub fn of(&self, key: &str) -> Vec<Attempt> {
        let entries = self.entries.lock().unwrap();
        entries.iter().filter(|a| a.key == key).cloned().collect()
    }

    pub fn brokers(&self, key: &str) -> Vec<String> {
        self.of(key).into_iter().map(|a| a.broker).collect()
    }
}

impl SendHook for AttemptLog {
    fn before_attempt(&self, ctx: &AttemptContext<'_>) {
        self.entries.lock().unwrap().push(Attempt {
            key: ctx.message.uniq_key().unwrap_or_default().to_owned(),
            attempt: ctx.attempt,
            broker: ctx.queue.broker_name.to_string(),
            outcome: None,
            delivery: None,
            elapsed: None,
        });
    }

    fn after_attempt(
        &self,
        ctx: &AttemptContext<'_>,
        outcome: AttemptOutcome<'_>,
        elapsed: Duration,
    ) {
        let key = ctx.message.uniq_key().unwrap_or_default();
        let mut entries = self.entries.lock().unwrap();
        if let Some(e) = entries
            .iter_mut()
            .rev()
            .find(|a| a.key == key && a.attempt == ctx.attempt)
        {
            e.elapsed = Some(elapsed);
            match outcome {
                AttemptOutcome::Stored(_) => e.outcome = Some("stored".into()),
                AttemptOutcome::Failed(err) => {
                    e.outcome = Some(format!("{:?}", err.kind()));
                    e.delivery = Some(err.delivery());
                }
            }
        }
    }
}

/// A topic on both brokers, broker-a's address and a proxy in front of it.
pub struct Env {
    pub cluster: RealCluster,
    pub admin: Pool,
    pub serialize: SerializeType,
    pub header: HeaderFormat,
    /// (name, address), sorted: broker-a first.
    pub masters: Vec<(String, String)>,
    pub topic: String,
}

impl Env {
    /// `None` when no cluster is configured (the test is skipped).
    pub async fn new(prefix: &str) -> Option<Env> {
        let cluster = real_cluster()?;
        let (serialize, header) = if cluster.use_json_header() {
            (SerializeType::JSON, HeaderFormat::Json)
        } else {
            (SerializeType::ROCKETMQ, HeaderFormat::Binary)
        };
        let admin = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
        let mut env = Env {
            cluster,
            admin,
            serialize,
            header,
            masters: Vec::new(),
            topic: unique_topic(prefix),
        };
        env.masters = env.masters().await;
        let names: Vec<&str> = env.masters.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["broker-a", "broker-b"], "{:?}", env.masters);
        env.create_topic().await;
        Some(env)
    }

    fn admin(&self) -> Admin<'_> {
        Admin::new(&self.admin, &self.cluster.namesrv)
            .serialize(self.serialize)
            .budget(T)
    }

    async fn masters(&self) -> Vec<(String, String)> {
        self.admin().masters().await.expect("cluster info")
    }

    pub fn addr_of(&self, broker: &str) -> &str {
        &self
            .masters
            .iter()
            .find(|(n, _)| n == broker)
            .expect("broker")
            .1
    }

    async fn create_topic(&self) {
        let admin = self.admin();
        admin
            .create_topic(&self.masters, &self.topic, QUEUES)
            .await
            .expect("create the topic");
        admin
            .wait_routed(&self.topic, self.masters.len())
            .await
            .expect("the route names both brokers");
    }

    /// A proxy in front of broker-a and a connector that dials it for broker-a.
    pub async fn proxy_a(&self) -> (FaultProxy, Arc<dyn Connector>) {
        let a = self.addr_of("broker-a").to_owned();
        let proxy = FaultProxy::start(a.clone()).await.expect("start the proxy");
        let map = AddressMap::new(Arc::new(TcpConnector));
        map.insert(a, proxy.addr().to_string());
        (proxy, Arc::new(map))
    }

    /// A producer through `connector`, logging attempts into the returned log.
    pub async fn producer(
        &self,
        group: &str,
        connector: Arc<dyn Connector>,
    ) -> (Producer, Arc<AttemptLog>) {
        let log = Arc::new(AttemptLog::default());
        let header = self.header;
        let p = Producer::builder(group)
            .namesrv(&self.cluster.namesrv)
            .connector(connector)
            .send_hook(log.clone())
            .configure(|c| c.header_format = header)
            .build()
            .await
            .expect("producer");
        (p, log)
    }

    /// A queue of the topic on `broker`.
    pub fn queue(&self, broker: &str, id: i32) -> MessageQueue {
        MessageQueue::new(&self.topic, broker, id)
    }

    /// Every stored message of the topic: UNIQ_KEY → [(broker, plain body)].
    pub async fn stored(&self) -> HashMap<String, Vec<(String, Vec<u8>)>> {
        let stored = self
            .admin()
            .pull_all(&self.masters, &self.topic, QUEUES, "rmq_it_faults_cg")
            .await
            .expect("pull the topic");
        stored
            .into_iter()
            .map(|(key, copies)| {
                let copies = copies
                    .into_iter()
                    .map(|(broker, m)| {
                        let flag = SysFlag(m.sys_flag.0);
                        let body = if flag.is_compressed() {
                            rmq_producer::compress::decompress(flag, m.message.body(), 1 << 23)
                                .expect("decompress")
                                .to_vec()
                        } else {
                            m.message.body().to_vec()
                        };
                        (broker, body)
                    })
                    .collect();
                (key, copies)
            })
            .collect()
    }

    /// Sends small messages until one of them went to both brokers' queues once each
    /// (connections, routes and fault state warmed up). Panics on a failed send.
    pub async fn warm_up(&self, p: &Producer, log: &AttemptLog) -> Vec<String> {
        let mut keys = Vec::new();
        let mut seen = Vec::new();
        for i in 0..16 {
            let r = p
                .send(Message::new(&self.topic, format!("warm-up {i}")))
                .await
                .unwrap_or_else(|e| panic!("warm-up send {i}: {e}"));
            seen.push(r.message_queue.broker_name.clone());
            assert_eq!(log.of(&r.msg_id).len(), 1, "warm-up send {i} was retried");
            keys.push(r.msg_id.into_string());
            if seen.iter().any(|b| b == "broker-a") && seen.iter().any(|b| b == "broker-b") {
                return keys;
            }
        }
        panic!("16 warm-up sends did not reach both brokers: {seen:?}");
    }
}

/// A body of `len` bytes that zlib cannot shrink (xorshift).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Options pinning a send to one queue with its own deadline and no retries.
pub fn pinned(queue: MessageQueue, timeout: Duration) -> SendOptions {
    SendOptions::default()
        .queue(queue)
        .timeout(timeout)
        .retries(0)
}
