//! [`Producer`]: the handle users hold, and [`ProducerBuilder`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rmq_fault::{Disabled, FaultStrategy, LatencyFaultStrategy};
use rmq_protocol::SerializeType;
use rmq_protocol::id::uniq::UniqIdGenerator;
use rmq_protocol::message::Message;
use rmq_protocol::message::send_result::SendResult;
use rmq_remoting::acl::{AclCredentials, AclHook};
use rmq_remoting::{Connector, Pool, PoolConfig, RpcHook};
use rmq_route::{NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::client::ClientIdentity;
use crate::config::{ConfigError, HeaderFormat, ProducerConfig};
use crate::error::{Delivery, SendError, SendErrorKind};
use crate::hook::{CheckForbiddenHook, SendHook};
use crate::kernel::Mode;
use crate::options::{SendOptions, Target};
use crate::stats::{Counters, ProducerStats, RouteAge};

/// The producer's shared state. Each part is its own component; this struct only
/// wires them.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: ProducerConfig,
    /// The producer group on the wire (namespace applied).
    pub(crate) group: String,
    pub(crate) header_format: SerializeType,
    pub(crate) pool: Pool,
    pub(crate) routes: RouteCache,
    pub(crate) fault: Arc<dyn FaultStrategy>,
    pub(crate) ids: UniqIdGenerator,
    pub(crate) identity: ClientIdentity,
    pub(crate) hooks: Vec<Arc<dyn SendHook>>,
    pub(crate) forbidden: Vec<Arc<dyn CheckForbiddenHook>>,
    pub(crate) stats: Counters,
    msg_permits: Arc<Semaphore>,
    byte_permits: Arc<Semaphore>,
    max_bytes_permit: usize,
    pub(crate) closed: AtomicBool,
    pub(crate) stop: watch::Sender<bool>,
}

/// Permits held while a send is in flight (back-pressure). Released on drop, also
/// when the send future is dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    _msg: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl Inner {
    /// The address to send to: the VIP (listen − 2) port when configured.
    pub(crate) fn broker_addr(&self, addr: &str) -> String {
        if !self.config.vip_channel {
            return addr.to_owned();
        }
        match addr.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?))) {
            Some((host, port)) if port > 2 => format!("{host}:{}", port - 2),
            _ => addr.to_owned(),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.config.max_in_flight_messages.saturating_sub(self.msg_permits.available_permits())
    }

    /// Takes back-pressure permits: waits up to `deadline`, or fails at once when
    /// `wait` is false.
    pub(crate) async fn admit(&self, bytes: usize, deadline: Instant, wait: bool) -> Result<InFlight, SendError> {
        let want = u32::try_from(bytes.clamp(1, self.max_bytes_permit)).unwrap_or(u32::MAX);
        let full = || {
            SendError::new(
                SendErrorKind::BufferFull,
                Delivery::NotSent,
                format!(
                    "in-flight limit reached ({} messages / {} bytes)",
                    self.config.max_in_flight_messages, self.config.max_in_flight_bytes
                ),
            )
        };
        if !wait {
            let m = self.msg_permits.clone().try_acquire_owned().map_err(|_| full())?;
            let b = self.byte_permits.clone().try_acquire_many_owned(want).map_err(|_| full())?;
            return Ok(InFlight { _msg: m, _bytes: b });
        }
        let acquire = async {
            let m = self.msg_permits.clone().acquire_owned().await;
            let b = self.byte_permits.clone().acquire_many_owned(want).await;
            (m, b)
        };
        match tokio::time::timeout_at(deadline, acquire).await {
            Ok((Ok(m), Ok(b))) => Ok(InFlight { _msg: m, _bytes: b }),
            Ok(_) => Err(SendError::new(SendErrorKind::Shutdown, Delivery::NotSent, "producer closed")),
            Err(_) => Err(SendError::new(
                SendErrorKind::BufferFull,
                Delivery::NotSent,
                "no room in the in-flight limit before the deadline",
            )),
        }
    }
}

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
    pub fn new(group: impl Into<String>) -> Self {
        Self::from_config(ProducerConfig::new(group))
    }

    /// A builder from a complete configuration (e.g. loaded from TOML).
    pub fn from_config(config: ProducerConfig) -> Self {
        Self {
            config,
            connector: None,
            fault: None,
            hooks: Vec::new(),
            forbidden: Vec::new(),
            rpc_hooks: Vec::new(),
        }
    }

    /// Adds a name server (`host:port`; several separated by `;` are accepted).
    pub fn namesrv(mut self, addrs: &str) -> Self {
        self.config
            .namesrv_addrs
            .extend(addrs.split(';').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned));
        self
    }

    /// Edits the configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut ProducerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// The whole-send deadline (default 3 s).
    pub fn send_timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.send_timeout = timeout)
    }

    /// Retries after the first attempt (default 2).
    pub fn retries(self, retries: u32) -> Self {
        self.configure(|c| c.retries = retries)
    }

    /// Replaces the fault strategy (default: [`LatencyFaultStrategy`] with Java 5.x tables).
    pub fn fault_strategy(mut self, strategy: Arc<dyn FaultStrategy>) -> Self {
        self.fault = Some(strategy);
        self
    }

    /// Dials through this connector instead of TCP (tests: an in-memory network).
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Adds a send hook.
    pub fn send_hook(mut self, hook: Arc<dyn SendHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Adds a check-forbidden hook (may veto sends).
    pub fn check_forbidden_hook(mut self, hook: Arc<dyn CheckForbiddenHook>) -> Self {
        self.forbidden.push(hook);
        self
    }

    /// Adds an RPC hook that sees every request (runs before ACL signing).
    pub fn rpc_hook(mut self, hook: Arc<dyn RpcHook>) -> Self {
        self.rpc_hooks.push(hook);
        self
    }

    /// Validates the settings and starts the producer (background route polling and
    /// heartbeats). Needs a tokio runtime. Does not need the cluster to be up.
    pub async fn build(self) -> Result<Producer, BuildError> {
        let config = self.config;
        config.validate()?;
        let connector = match self.connector {
            Some(c) => c,
            None => crate::client::connector(&config).map_err(|e| BuildError::Startup(e.to_string()))?,
        };
        let mut rpc_hooks = self.rpc_hooks;
        if let (Some(ak), Some(sk)) = (&config.access_key, &config.secret_key) {
            let mut creds = AclCredentials::new(ak.clone(), sk.expose());
            if let Some(token) = &config.security_token {
                creds = creds.with_security_token(token.expose());
            }
            rpc_hooks.push(Arc::new(AclHook::new(creds)));
        }
        let pool_config = PoolConfig {
            connect_timeout: config.connect_timeout,
            ..PoolConfig::default()
        };
        let pool = Pool::with_hooks(connector, pool_config, rpc_hooks);
        let ns = NameServerClient::new(Arc::new(pool.clone()), config.namesrv_addrs.iter(), NameServerConfig::default());
        let routes = RouteCache::new(
            ns,
            RouteCacheConfig {
                poll_interval: config.route_poll_interval,
                default_topic_fallback: config.tbw102_fallback,
                default_topic: config.create_topic_key.clone(),
                default_topic_queue_nums: config.default_topic_queue_nums,
                ..RouteCacheConfig::default()
            },
        );
        let fault: Arc<dyn FaultStrategy> = match self.fault {
            Some(f) => f,
            None if config.latency_fault_tolerance => Arc::new(LatencyFaultStrategy::default()),
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
            msg_permits: Arc::new(Semaphore::new(config.max_in_flight_messages.clamp(1, Semaphore::MAX_PERMITS))),
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
            closed: AtomicBool::new(false),
            stop,
            config,
        });
        crate::lifecycle::spawn_background(&inner).map_err(BuildError::Startup)?;
        Ok(Producer { inner })
    }
}

/// A RocketMQ producer. Cheap to clone (clones share everything); `Send + Sync`;
/// every send takes `&self`.
#[derive(Clone, Debug)]
pub struct Producer {
    pub(crate) inner: Arc<Inner>,
}

impl Producer {
    /// A builder for the producer group `group`.
    pub fn builder(group: impl Into<String>) -> ProducerBuilder {
        ProducerBuilder::new(group)
    }

    /// The configuration in force.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// This client's id as brokers see it (`ip@instance`).
    pub fn client_id(&self) -> &str {
        &self.inner.identity.client_id
    }

    /// Sets the message's UNIQ_KEY now (if it has none) and returns it, so the
    /// application can record the id before sending. Sends keep an existing key.
    pub fn assign_uniq_key<'m>(&self, message: &'m mut Message) -> &'m str {
        if message.uniq_key().is_none() {
            let id = self.inner.ids.next(crate::client::now_ms());
            let _ = message.set_uniq_key(id);
        }
        message.uniq_key().unwrap_or_default()
    }

    /// Sends a message and waits until the broker stored it (or the send failed).
    pub async fn send(&self, message: Message) -> Result<SendResult, SendError> {
        self.send_with(message, SendOptions::default()).await
    }

    /// Sends with per-call options (deadline, target queue or selector, retries).
    pub async fn send_with(&self, message: Message, options: SendOptions) -> Result<SendResult, SendError> {
        let mode = match options.target {
            Target::Auto => Mode::Auto,
            _ => Mode::Pinned,
        };
        self.inner.send_one(message, options, mode, true).await
    }

    /// Like [`send`](Self::send), but fails at once with
    /// [`SendErrorKind::BufferFull`] (handing the message back) when the in-flight
    /// limit is reached, instead of waiting for room.
    pub async fn try_send(&self, message: Message) -> Result<SendResult, SendError> {
        self.inner.send_one(message, SendOptions::default(), Mode::Auto, false).await
    }

    /// Sends in the background and calls `callback` exactly once with the outcome
    /// (also when the producer or the runtime shuts down first).
    pub fn send_with_callback<F>(&self, message: Message, callback: F)
    where
        F: FnOnce(Result<SendResult, SendError>) + Send + 'static,
    {
        let guard = crate::lifecycle::CallbackGuard::new(callback);
        let producer = self.clone();
        tokio::spawn(async move {
            let result = producer.send(message).await;
            guard.call(result);
        });
    }

    /// Sends without waiting for the broker's answer: resolves once the request was
    /// written. Retried only when it surely was not sent.
    pub async fn send_oneway(&self, message: Message) -> Result<(), SendError> {
        self.inner
            .send_one(message, SendOptions::default(), Mode::Oneway, true)
            .await
            .map(|_| ())
    }

    /// A snapshot of the producer's counters.
    pub fn stats(&self) -> ProducerStats {
        let inner = &self.inner;
        let routes = inner
            .routes
            .snapshot()
            .topics
            .into_iter()
            .map(|t| RouteAge {
                topic: t.topic,
                age: t.age,
                version: t.version,
            })
            .collect();
        inner.stats.snapshot(
            inner.in_flight(),
            inner.fault.snapshot(std::time::Instant::now()),
            routes,
            inner.pool.stats(),
        )
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}
