//! [`ProducerBuilder`]: settings, hooks and strategies in; a started [`Producer`] out.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rmq_fault::{Disabled, FaultStrategy, LatencyFaultStrategy};
use rmq_protocol::SerializeType;
use rmq_protocol::id::uniq::UniqIdGenerator;
use rmq_remoting::acl::{AclCredentials, AclHook};
use rmq_remoting::{Connector, Pool, PoolConfig, RandomSource, RpcHook};
use rmq_route::{NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig};
use tokio::sync::{Semaphore, watch};

use crate::client::ClientIdentity;
use crate::config::{ConfigError, HeaderFormat, ProducerConfig};
use crate::hook::{CheckForbiddenHook, SendHook};
use crate::stats::Counters;

use crate::producer::{Inner, Producer};

/// Builds a [`Producer`]: `Producer::builder("my_group").namesrv("127.0.0.1:9876").build().await?`.
#[derive(Debug)]
#[must_use]
pub struct ProducerBuilder {
    config: ProducerConfig,
    connector: Option<Arc<dyn Connector>>,
    fault: Option<Arc<dyn FaultStrategy>>,
    hooks: Vec<Arc<dyn SendHook>>,
    forbidden: Vec<Arc<dyn CheckForbiddenHook>>,
    rpc_hooks: Vec<Arc<dyn RpcHook>>,
    fail_compression: bool,
    random_seed: Option<u64>,
}

/// Building a producer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Start-up failed (I/O, TLS material ...).
    #[error("producer start-up failed: {0}")]
    Startup(String),
}

impl ProducerBuilder {
    /// A builder with every default of [`ProducerConfig`] and this group.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// use rmq_producer::ProducerBuilder;
    /// let producer = ProducerBuilder::new("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .build()
    ///     .await?;
    /// assert_eq!(producer.config().group, "orders");
    /// # Ok(()) }
    /// ```
    pub fn new(group: impl Into<String>) -> Self {
        Self::from_config(ProducerConfig::new(group))
    }

    /// A builder from a complete configuration (e.g. loaded from TOML).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// use rmq_producer::{ProducerBuilder, ProducerConfig};
    /// let toml = format!(
    ///     "group = \"orders\"\nsend_timeout = \"5s\"\nnamesrv_addrs = [\"{}\"]\n",
    ///     cluster.name_server_addr()
    /// );
    /// let config = ProducerConfig::from_toml_str(&toml)?;
    /// let producer = ProducerBuilder::from_config(config)
    /// #   .connector(cluster.connector())
    ///     .build()
    ///     .await?;
    /// assert_eq!(producer.config().send_timeout, std::time::Duration::from_secs(5));
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: ProducerConfig) -> Self {
        Self {
            config,
            connector: None,
            fault: None,
            hooks: Vec::new(),
            forbidden: Vec::new(),
            rpc_hooks: Vec::new(),
            fail_compression: false,
            random_seed: None,
        }
    }

    /// Seeds the producer's own random choices: the first name server, where each
    /// topic's round-robin over queues starts, and the jitter of retry and reconnect
    /// backoffs. **For deterministic tests** (a seeded chaos run replays exactly);
    /// production code leaves it unset, so that clients spread over name servers and
    /// queues.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// let mut queues = Vec::new();
    /// for _ in 0..2 {
    ///     let producer = rmq_producer::Producer::builder("orders")
    ///         .namesrv(cluster.name_server_addr())
    /// #       .connector(cluster.connector())
    ///         .random_seed(42)
    ///         .build()
    ///         .await?;
    ///     let sent = producer.send(rmq_producer::Message::new("TopicTest", "x")).await?;
    ///     queues.push(sent.message_queue);
    ///     producer.close(std::time::Duration::from_secs(1)).await;
    /// }
    /// assert_eq!(queues[0], queues[1], "one seed, one first queue");
    /// # Ok(()) }
    /// ```
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.random_seed = Some(seed);
        self
    }

    /// Test-only failpoint (feature `__failpoints`, not part of the API): every
    /// compression of this producer fails, to exercise the uncompressed fallback.
    #[cfg(feature = "__failpoints")]
    #[doc(hidden)]
    pub fn __fail_compression(mut self) -> Self {
        self.fail_compression = true;
        self
    }

    /// Adds a name server (`host:port`; several separated by `;` are accepted).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(&format!("{};127.0.0.1:1", cluster.name_server_addr())) // two name servers
    /// #   .connector(cluster.connector())
    ///     .build()
    ///     .await?;
    /// assert_eq!(producer.config().namesrv_addrs.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn namesrv(mut self, addrs: &str) -> Self {
        self.config.namesrv_addrs.extend(
            addrs
                .split(';')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
        );
        self
    }

    /// Edits the configuration in place.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .configure(|c| {
    ///         c.max_in_flight_messages = 1_000;
    ///         c.compression.threshold = 16 * 1024;
    ///     })
    ///     .build()
    ///     .await?;
    /// assert_eq!(producer.config().max_in_flight_messages, 1_000);
    /// # Ok(()) }
    /// ```
    pub fn configure(mut self, f: impl FnOnce(&mut ProducerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// The whole-send deadline (default 3 s).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// use std::time::Duration;
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .send_timeout(Duration::from_secs(10))
    ///     .build()
    ///     .await?;
    /// assert_eq!(producer.config().send_timeout, Duration::from_secs(10));
    /// # Ok(()) }
    /// ```
    pub fn send_timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.send_timeout = timeout)
    }

    /// Retries after the first attempt (default 2).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .retries(4)
    ///     .build()
    ///     .await?;
    /// assert_eq!(producer.config().retries, 4);
    /// # Ok(()) }
    /// ```
    pub fn retries(self, retries: u32) -> Self {
        self.configure(|c| c.retries = retries)
    }

    /// Replaces the fault strategy (default: [`LatencyFaultStrategy`] with Java 5.x tables).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// use std::sync::Arc;
    /// use rmq_producer::LatencyFaultStrategy;
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .fault_strategy(Arc::new(LatencyFaultStrategy::java_4_9()))
    ///     .build()
    ///     .await?;
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub fn fault_strategy(mut self, strategy: Arc<dyn FaultStrategy>) -> Self {
        self.fault = Some(strategy);
        self
    }

    /// Dials through this connector instead of TCP (tests: an in-memory network).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// // Route every connection through the fake cluster's in-memory network.
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    ///     .connector(cluster.connector())
    ///     .build()
    ///     .await?;
    /// producer.send(rmq_producer::Message::new("TopicTest", "via memory")).await?;
    /// # Ok(()) }
    /// ```
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Adds a send hook.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// use std::sync::Arc;
    /// use rmq_producer::hook::{AttemptContext, SendHook};
    /// #[derive(Debug)]
    /// struct Log;
    /// impl SendHook for Log {
    ///     fn before_attempt(&self, ctx: &AttemptContext<'_>) {
    ///         println!("attempt {} to {}", ctx.attempt, ctx.queue);
    ///     }
    /// }
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .send_hook(Arc::new(Log))
    ///     .build()
    ///     .await?;
    /// producer.send(rmq_producer::Message::new("TopicTest", "logged")).await?;
    /// # Ok(()) }
    /// ```
    pub fn send_hook(mut self, hook: Arc<dyn SendHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Adds a check-forbidden hook (may veto sends).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// use std::sync::Arc;
    /// use rmq_producer::{Message, SendErrorKind};
    /// use rmq_producer::hook::CheckForbiddenHook;
    /// #[derive(Debug)]
    /// struct NoEmptyTags;
    /// impl CheckForbiddenHook for NoEmptyTags {
    ///     fn check(&self, m: &Message) -> Result<(), String> {
    ///         m.tags().map(|_| ()).ok_or_else(|| "every message needs a tag".into())
    ///     }
    /// }
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .check_forbidden_hook(Arc::new(NoEmptyTags))
    ///     .build()
    ///     .await?;
    /// let err = producer.send(Message::new("TopicTest", "untagged")).await.unwrap_err();
    /// assert_eq!(err.kind(), SendErrorKind::HookVeto);
    /// # Ok(()) }
    /// ```
    pub fn check_forbidden_hook(mut self, hook: Arc<dyn CheckForbiddenHook>) -> Self {
        self.forbidden.push(hook);
        self
    }

    /// Adds an RPC hook that sees every request (runs before ACL signing).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// use std::sync::Arc;
    /// use rmq_protocol::RemotingCommand;
    /// use rmq_remoting::{HookError, RpcHook};
    /// #[derive(Debug)]
    /// struct Zone;
    /// impl RpcHook for Zone {
    ///     fn before_request(&self, _addr: &str, request: &mut RemotingCommand) -> Result<(), HookError> {
    ///         request.ext_fields.insert("__ZONE_NAME", "zone-a");
    ///         Ok(())
    ///     }
    /// }
    /// let producer = rmq_producer::Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .rpc_hook(Arc::new(Zone))
    ///     .build()
    ///     .await?;
    /// producer.send(rmq_producer::Message::new("TopicTest", "zoned")).await?;
    /// # Ok(()) }
    /// ```
    pub fn rpc_hook(mut self, hook: Arc<dyn RpcHook>) -> Self {
        self.rpc_hooks.push(hook);
        self
    }

    /// Validates the settings and starts the producer (background route polling and
    /// heartbeats). Needs a tokio runtime. Does not need the cluster to be up.
    /// Without any configured name server, `NAMESRV_ADDR` (`;`-separated) is used, as
    /// in Java.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// use rmq_producer::{BuildError, Producer};
    /// // A bad setting is a ConfigError, before any I/O.
    /// let err = Producer::builder("orders").configure(|c| c.max_in_flight_messages = 0).build().await.unwrap_err();
    /// assert!(matches!(err, BuildError::Config(_)));
    /// let producer = Producer::builder("orders")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .build()
    ///     .await?;
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<Producer, BuildError> {
        let mut config = self.config;
        if config.namesrv_addrs.is_empty()
            && let Ok(list) = std::env::var("NAMESRV_ADDR")
        {
            // As Java: without configured name servers, NAMESRV_ADDR names them.
            config.namesrv_addrs = rmq_route::parse_name_server_addrs(&list);
        }
        config.validate()?;
        let connector = match self.connector {
            Some(c) => c,
            None => {
                crate::client::connector(&config).map_err(|e| BuildError::Startup(e.to_string()))?
            }
        };
        let mut rpc_hooks = self.rpc_hooks;
        if let (Some(ak), Some(sk)) = (&config.access_key, &config.secret_key) {
            let mut creds = AclCredentials::new(ak.clone(), sk.expose());
            if let Some(token) = &config.security_token {
                creds = creds.with_security_token(token.expose());
            }
            rpc_hooks.push(Arc::new(AclHook::new(creds)));
        }
        let random = match self.random_seed {
            Some(seed) => RandomSource::seeded(seed),
            None => RandomSource::from_entropy(),
        };
        let mut pool_config = PoolConfig {
            connect_timeout: config.connect_timeout,
            random: random.derive(1),
            ..PoolConfig::default()
        };
        // The producer bounds its sends in flight itself (`max_in_flight_messages`): a
        // lower per-connection bound would only make sends to one broker wait in
        // tasks. The headroom keeps room for heartbeats and route requests.
        pool_config.connection.max_in_flight = pool_config
            .connection
            .max_in_flight
            .max(config.max_in_flight_messages.saturating_add(256));
        let pool = Pool::with_hooks(connector, pool_config, rpc_hooks);
        let requests = crate::request::Requests::default();
        pool.register_handler(requests.handler(config.max_message_size));
        let ns = NameServerClient::new(
            Arc::new(pool.clone()),
            config.namesrv_addrs.iter(),
            NameServerConfig {
                first_index: Some(random.next_u64() as usize),
                ..NameServerConfig::default()
            },
        );
        let routes = RouteCache::new(
            ns,
            RouteCacheConfig {
                request_timeout: config.control_timeout,
                poll_interval: config.route_poll_interval,
                default_topic_fallback: config.tbw102_fallback,
                default_topic: config.create_topic_key.clone(),
                default_topic_queue_nums: config.default_topic_queue_nums,
                random: random.derive(2),
                ..RouteCacheConfig::default()
            },
        );
        let fault: Arc<dyn FaultStrategy> = match self.fault {
            Some(f) => f,
            None if config.latency_fault_tolerance => {
                Arc::new(LatencyFaultStrategy::default().with_detector(true))
            }
            None => Arc::new(Disabled),
        };
        let identity = ClientIdentity::detect(&config);
        let group = match &config.namespace {
            Some(ns) => rmq_route::namespace::wrap(ns, &config.group).into_owned(),
            None => config.group.clone(),
        };
        let (stop, _) = watch::channel(false);
        let max_bytes_permit = config.max_in_flight_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let inner = Arc::new(Inner {
            header_format: match config.header_format {
                HeaderFormat::Json => SerializeType::JSON,
                _ => SerializeType::ROCKETMQ,
            },
            ids: UniqIdGenerator::new(identity.uniq_prefix()),
            msg_permits: Arc::new(Semaphore::new(
                config
                    .max_in_flight_messages
                    .clamp(1, Semaphore::MAX_PERMITS),
            )),
            byte_permits: Arc::new(Semaphore::new(max_bytes_permit)),
            max_bytes_permit,
            group,
            pool,
            routes,
            fault,
            identity,
            hooks: self.hooks,
            forbidden: self.forbidden,
            stats: Counters::default(),
            requests,
            auto_batch: crate::accumulator::Accumulator::new(&config),
            closed: AtomicBool::new(false),
            stop,
            fail_compression: self.fail_compression,
            random: random.derive(3),
            arena: crate::arena::HeaderArena::new(),
            config,
        });
        crate::lifecycle::spawn_background(&inner).map_err(BuildError::Startup)?;
        Ok(Producer { inner })
    }
}
