//! Shared set-up of the real-cluster tests: a route cache over a TCP pool, the
//! cluster's masters, and a topic created on every master.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use rmq_protocol::SerializeType;
use rmq_remoting::{Pool, PoolConfig, TcpConnector};
use rmq_route::{
    NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig, TopicPublishInfo,
};
use rmq_testkit::real_cluster::{Admin, RealCluster};

pub const T: Duration = Duration::from_secs(10);

pub struct Setup {
    pub pool: Pool,
    pub cache: RouteCache,
    /// `(broker name, master address)`, sorted by name.
    pub masters: Vec<(String, String)>,
    pub header: SerializeType,
}

pub async fn setup(cluster: &RealCluster) -> Setup {
    let header = if cluster.use_json_header() {
        SerializeType::JSON
    } else {
        SerializeType::ROCKETMQ
    };
    let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
    let ns = NameServerClient::new(
        Arc::new(pool.clone()),
        [cluster.namesrv.as_str()],
        NameServerConfig {
            serialize_type: header,
            ..NameServerConfig::default()
        },
    );
    let masters = Admin::new(&pool, &cluster.namesrv)
        .serialize(header)
        .budget(T)
        .masters()
        .await
        .expect("cluster info");
    assert!(masters.len() >= 2, "two brokers expected: {masters:?}");
    let cache = RouteCache::new(
        ns,
        RouteCacheConfig {
            // The tests create their topics; a borrowed TBW102 route would hide a
            // missing registration.
            default_topic_fallback: false,
            ..RouteCacheConfig::default()
        },
    );
    Setup {
        pool,
        cache,
        masters,
        header,
    }
}

impl Setup {
    /// Creates `topic` with `queues` queues on every master.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        Admin::new(&self.pool, "")
            .serialize(self.header)
            .budget(T)
            .create_topic(&self.masters, topic, queues)
            .await
            .expect("create topic");
    }

    /// Polls until `ready` holds for `topic`'s publish info, for at most `limit`.
    pub async fn wait_for(
        &self,
        topic: &str,
        limit: Duration,
        mut ready: impl FnMut(&TopicPublishInfo) -> bool,
    ) -> Option<Arc<TopicPublishInfo>> {
        let start = tokio::time::Instant::now();
        loop {
            if let Ok(info) = self.cache.get(topic, T).await {
                if ready(&info) {
                    return Some(info);
                }
                self.cache.poll_once().await;
                if let Some(info) = self.cache.cached(topic)
                    && ready(&info)
                {
                    return Some(info);
                }
            }
            if start.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The Java order for `queues` queues on every master.
    pub fn java_order(&self, topic: &str, queues: i32) -> Vec<String> {
        self.masters
            .iter()
            .flat_map(|(name, _)| (0..queues).map(move |q| format!("{topic}@{name}:{q}")))
            .collect()
    }
}

pub fn queue_names(info: &TopicPublishInfo) -> Vec<String> {
    info.queues().iter().map(ToString::to_string).collect()
}
