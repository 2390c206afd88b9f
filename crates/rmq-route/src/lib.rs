//! `rmq-route`: topic routes for a RocketMQ producer.
//!
//! * [`NameServerClient`]: GET_ROUTEINFO_BY_TOPIC (and any other request) to a list
//!   of name servers: random first server, sticky on the one that answers, failover
//!   within the call's time budget, exponential backoff of failed servers, address
//!   list replaceable at run time.
//! * [`TopicPublishInfo`]: a route turned into publish queues exactly as Java's
//!   `topicRouteData2TopicPublishInfo` does (same queues, same order, so a
//!   Java-compatible hash selector picks the queue a Java producer picks), the
//!   master address of each broker, and an overflow-safe round-robin counter.
//! * [`RouteCache`]: `topic → Arc<TopicPublishInfo>` with single-flight fetches,
//!   the TBW102 default-topic fallback (on by default), a poller, idle eviction,
//!   last-good-route retention, route versions, stats and [`RouteEvent`]s.
//! * [`namespace`]: namespace v1 wrapping (`ns%topic`).
//! * [`detector`]: reachability probes (GET_MAX_OFFSET) for the latency-fault
//!   detector.
//!
//! The crate owns no sockets: every request goes through the remoting
//! [`Invoke`](rmq_remoting::Invoke) trait (the producer's connection pool, or a
//! scripted fake in tests). It never reads the process environment except in
//! [`NameServerClient::from_env`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rmq_remoting::{Pool, PoolConfig, TcpConnector};
//! use rmq_route::{NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig};
//!
//! let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
//! let ns = NameServerClient::from_addr_list(Arc::new(pool), "127.0.0.1:9876", NameServerConfig::default());
//! let cache = RouteCache::new(ns, RouteCacheConfig::default());
//! let poller = cache.spawn_default_poller()?;
//! let info = cache.get("TopicTest", Duration::from_secs(3)).await?;
//! for q in info.queues() {
//!     println!("{q} -> {:?}", info.broker_addr(&q.broker_name));
//! }
//! poller.shutdown().await;
//! # Ok(()) }
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod cache;
pub mod detector;
mod error;
mod name_server;
pub mod namespace;
mod poller;
mod publish_info;

pub use cache::{
    DEFAULT_TOPIC, DEFAULT_TOPIC_QUEUE_NUMS, PollReport, RouteCache, RouteCacheConfig,
    RouteCacheSnapshot, RouteEvent, TopicRouteStats,
};
pub use error::RouteError;
pub use name_server::{
    NAMESRV_ADDR_ENV, NameServerClient, NameServerConfig, NameServerStats, parse_name_server_addrs,
};
pub use poller::PollerHandle;
pub use publish_info::{INDEX_MASK, TopicPublishInfo};

/// A random `u64` from OS entropy, for callers without a [`rmq_remoting::RandomSource`]
/// of their own (a standalone [`TopicPublishInfo`], a [`NameServerClient`] without
/// `first_index`): spreading clients matters here, cryptographic quality does not.
pub(crate) fn random_u64() -> u64 {
    rmq_remoting::RandomSource::entropy_u64()
}
