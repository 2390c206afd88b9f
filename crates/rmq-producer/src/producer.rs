//! [`Producer`]: the handle users hold, and the state it shares (`Inner`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmq_fault::FaultStrategy;
use rmq_protocol::SerializeType;
use rmq_protocol::id::uniq::UniqIdGenerator;
use rmq_protocol::message::Message;
use rmq_protocol::message::send_result::SendResult;
use rmq_remoting::{Pool, RandomSource};
use rmq_route::RouteCache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::builder::ProducerBuilder;
use crate::client::ClientIdentity;
use crate::config::ProducerConfig;
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
    /// Requests waiting for a reply (request-reply).
    pub(crate) requests: crate::request::Requests,
    /// The auto-batch accumulator, when `auto_batch.enabled`.
    pub(crate) auto_batch: Option<crate::accumulator::Accumulator>,
    pub(crate) msg_permits: Arc<Semaphore>,
    pub(crate) byte_permits: Arc<Semaphore>,
    pub(crate) max_bytes_permit: usize,
    pub(crate) closed: AtomicBool,
    pub(crate) stop: watch::Sender<bool>,
    /// Failpoint (feature `__failpoints`): every compression fails.
    pub(crate) fail_compression: bool,
    /// Retry backoff jitter.
    pub(crate) random: RandomSource,
    /// Where request header fields and encoded properties are written (no
    /// allocation per send for them).
    pub(crate) arena: crate::arena::HeaderArena,
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
    pub(crate) fn broker_addr<'a>(&self, addr: &'a str) -> std::borrow::Cow<'a, str> {
        if !self.config.vip_channel {
            return std::borrow::Cow::Borrowed(addr);
        }
        match addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        {
            Some((host, port)) if port > 2 => format!("{host}:{}", port - 2).into(),
            _ => std::borrow::Cow::Borrowed(addr),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.config
            .max_in_flight_messages
            .saturating_sub(self.msg_permits.available_permits())
    }

    /// Takes back-pressure permits if they are free now.
    pub(crate) fn try_admit(&self, bytes: usize) -> Option<InFlight> {
        let want = u32::try_from(bytes.clamp(1, self.max_bytes_permit)).unwrap_or(u32::MAX);
        let m = self.msg_permits.clone().try_acquire_owned().ok()?;
        let b = self
            .byte_permits
            .clone()
            .try_acquire_many_owned(want)
            .ok()?;
        Some(InFlight { _msg: m, _bytes: b })
    }

    /// Takes back-pressure permits: waits up to `deadline`, or fails at once when
    /// `wait` is false.
    pub(crate) async fn admit(
        &self,
        bytes: usize,
        deadline: Instant,
        wait: bool,
    ) -> Result<InFlight, SendError> {
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
            return self.try_admit(bytes).ok_or_else(full);
        }
        let acquire = async {
            let m = self.msg_permits.clone().acquire_owned().await;
            let b = self.byte_permits.clone().acquire_many_owned(want).await;
            (m, b)
        };
        match tokio::time::timeout_at(deadline, acquire).await {
            Ok((Ok(m), Ok(b))) => Ok(InFlight { _msg: m, _bytes: b }),
            Ok(_) => Err(SendError::new(
                SendErrorKind::Shutdown,
                Delivery::NotSent,
                "producer closed",
            )),
            Err(_) => Err(SendError::new(
                SendErrorKind::BufferFull,
                Delivery::NotSent,
                "no room in the in-flight limit before the deadline",
            )),
        }
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
    ///     .build()
    ///     .await?;
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub fn builder(group: impl Into<String>) -> ProducerBuilder {
        ProducerBuilder::new(group)
    }

    /// The configuration in force.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// assert_eq!(producer.config().retries, 2);
    /// assert_eq!(producer.config().send_timeout, std::time::Duration::from_secs(3));
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// This client's id as brokers see it (`ip@instance`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// assert!(producer.client_id().contains('@'));
    /// # Ok(()) }
    /// ```
    pub fn client_id(&self) -> &str {
        &self.inner.identity.client_id
    }

    /// Sets the message's UNIQ_KEY now (if it has none) and returns it, so the
    /// application can record the id before sending. Sends keep an existing key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::Message;
    /// let mut message = Message::new("TopicTest", "payload");
    /// let id = producer.assign_uniq_key(&mut message).to_owned();
    /// // record `id` in your database, then send: the receipt carries the same id
    /// let receipt = producer.send(message).await?;
    /// assert_eq!(receipt.msg_id, id);
    /// # Ok(()) }
    /// ```
    pub fn assign_uniq_key<'m>(&self, message: &'m mut Message) -> &'m str {
        if message.uniq_key().is_none() {
            let id = self.inner.ids.next_value(crate::client::now_ms());
            let _ = message.set_uniq_key(id);
        }
        message.uniq_key().unwrap_or_default()
    }

    /// Sends a message and waits until the broker stored it (or the send failed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, SendStatus};
    /// let receipt = producer.send(Message::new("TopicTest", "hello").with_tags("TagA")?).await?;
    /// assert_eq!(receipt.status, SendStatus::SendOk);
    /// println!("{} stored in {} at offset {}", receipt.msg_id, receipt.message_queue, receipt.queue_offset);
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, message: Message) -> Result<SendResult, SendError> {
        self.send_with(message, SendOptions::default()).await
    }

    /// Sends with per-call options (deadline, target queue or selector, retries).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use std::time::Duration;
    /// use rmq_producer::{Message, MessageQueue, SendOptions};
    /// let options = SendOptions::default()
    ///     .timeout(Duration::from_millis(500))
    ///     .queue(MessageQueue::new("TopicTest", "broker-a", 2));
    /// let receipt = producer.send_with(Message::new("TopicTest", "pinned"), options).await?;
    /// assert_eq!(receipt.message_queue.queue_id, 2);
    /// # Ok(()) }
    /// ```
    pub async fn send_with(
        &self,
        message: Message,
        options: SendOptions,
    ) -> Result<SendResult, SendError> {
        if let Some(acc) = &self.inner.auto_batch
            && acc.accepts(&self.inner.config, &message, &options)
        {
            return crate::accumulator::send(&self.inner, acc, message, options, true).await;
        }
        let mode = match options.target {
            Target::Auto => Mode::Auto,
            _ => Mode::Pinned,
        };
        self.inner.send_one(message, options, mode, true).await
    }

    /// Like [`send`](Self::send), but fails at once with
    /// [`SendErrorKind::BufferFull`] (handing the message back) when the in-flight
    /// limit is reached, instead of waiting for room.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, SendErrorKind};
    /// match producer.try_send(Message::new("TopicTest", "maybe")).await {
    ///     Ok(receipt) => println!("stored {}", receipt.msg_id),
    ///     Err(e) if e.kind() == SendErrorKind::BufferFull => {
    ///         let message = e.into_message().expect("handed back");
    ///         println!("full; parked {} bytes for later", message.body().len());
    ///     }
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_send(&self, message: Message) -> Result<SendResult, SendError> {
        if let Some(acc) = &self.inner.auto_batch
            && acc.accepts(&self.inner.config, &message, &SendOptions::default())
        {
            let options = SendOptions::default();
            return crate::accumulator::send(&self.inner, acc, message, options, false).await;
        }
        self.inner
            .send_one(message, SendOptions::default(), Mode::Auto, false)
            .await
    }

    /// Sends in the background and calls `callback` exactly once with the outcome
    /// (also when the producer or the runtime shuts down first). Must be called
    /// within a tokio runtime.
    ///
    /// No task waits for the answer: the send waits in its connection (about
    /// 0.5 KB per send in flight, where a task took 2.8 KB), and the callback
    /// usually runs **on the connection's I/O task** when the answer arrives (on a
    /// task of its own when the send had to be retried, or waited for a route,
    /// permits or a connection). So keep the callback short and never block in
    /// it: hand longer work to a channel or `tokio::spawn`; a blocking callback
    /// delays every other answer on that connection. A panicking callback is
    /// caught and logged. With send hooks, RPC hooks or auto-batching configured,
    /// every send runs on a task of its own instead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::Message;
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// producer.send_with_callback(Message::new("TopicTest", "in the background"), move |result| {
    ///     let _ = tx.send(result.map(|r| r.msg_id));
    /// });
    /// let id = rx.await??;
    /// assert!(!id.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn send_with_callback<F>(&self, message: Message, callback: F)
    where
        F: FnOnce(Result<SendResult, SendError>) + Send + 'static,
    {
        let guard = crate::lifecycle::CallbackGuard::new(callback);
        // Nothing to wait for: the send waits for its answer in the connection, with
        // no task (crate::detached).
        let (message, guard) = match crate::detached::try_send(&self.inner, message, guard) {
            Ok(()) => return,
            Err(back) => back,
        };
        let inner = self.inner.clone();
        if crate::detached::applies(&inner) {
            // Waits in a small task, then detaches the same way.
            tokio::spawn(crate::detached::send_after_waits(inner, message, guard));
            return;
        }
        // The task holds the send's own future and nothing more (no `send` /
        // `send_with` layers around it): its size is the memory of each async send
        // in flight.
        tokio::spawn(async move {
            let options = SendOptions::default();
            let result = match &inner.auto_batch {
                Some(acc) if acc.accepts(&inner.config, &message, &options) => {
                    crate::accumulator::send(&inner, acc, message, options, true).await
                }
                _ => inner.send_one(message, options, Mode::Auto, true).await,
            };
            guard.call(result);
        });
    }

    /// Sends without waiting for the broker's answer: resolves once the request was
    /// written. Retried only when it surely was not sent.
    ///
    /// Nothing tells whether the broker stored it. rocketmq-rust 1.0 brokers drop one-way
    /// requests they have read but not yet stored when the connection closes, so a
    /// [`close`](Self::close) right after a burst of one-way sends can lose some (a few in
    /// a thousand in docs/reliability.md's runs; none when the process waited 200 ms
    /// first). Use [`send`](Self::send) or [`send_with_callback`](Self::send_with_callback)
    /// where loss matters.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// producer.send_oneway(rmq_producer::Message::new("TopicTest", "fire and forget")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_oneway(&self, message: Message) -> Result<(), SendError> {
        self.inner
            .send_one(message, SendOptions::default(), Mode::Oneway, true)
            .await
            .map(|_| ())
    }

    /// A snapshot of the producer's counters.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// producer.send(rmq_producer::Message::new("TopicTest", "counted")).await?;
    /// let stats = producer.stats();
    /// assert_eq!(stats.sent, 1);
    /// assert_eq!(stats.in_flight, 0);
    /// println!("p50 {:?}, isolated brokers {:?}", stats.latency_p50, stats.isolated_brokers);
    /// # Ok(()) }
    /// ```
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
        let mut stats = inner.stats.snapshot(
            inner.in_flight(),
            inner.fault.snapshot(crate::kernel::fault_now()),
            routes,
            inner.pool.stats(),
        );
        stats.pending_requests = inner.requests.pending();
        stats.auto_batch = inner
            .auto_batch
            .as_ref()
            .map(crate::accumulator::Accumulator::stats)
            .unwrap_or_default();
        stats
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// assert!(!producer.is_closed());
    /// producer.close(std::time::Duration::from_secs(1)).await;
    /// assert!(producer.is_closed());
    /// # Ok(()) }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}
