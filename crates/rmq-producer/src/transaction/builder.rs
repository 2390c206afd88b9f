//! [`TransactionProducerBuilder`]: the producer's settings plus the listener and
//! the check handler's limits.

use std::sync::Arc;
use std::time::Duration;

use super::state::{Options, Shared};
use super::{TransactionListener, TransactionProducer, TransactionState, check};
use crate::builder::{BuildError, ProducerBuilder};

/// Builds a [`TransactionProducer`]: `TransactionProducer::builder(group)` or
/// `Producer::builder(group)....transactional()`.
#[must_use]
pub struct TransactionProducerBuilder {
    producer: ProducerBuilder,
    listener: Option<Arc<dyn TransactionListener>>,
    options: Options,
}

impl std::fmt::Debug for TransactionProducerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionProducerBuilder")
            .field("producer", &self.producer)
            .field("listener", &self.listener.is_some())
            .field("options", &self.options)
            .finish()
    }
}

impl ProducerBuilder {
    /// Turns this builder into a [`TransactionProducerBuilder`] with every producer
    /// setting made so far.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// let producer = rmq_producer::Producer::builder("orders_tx")
    ///     .namesrv(cluster.name_server_addr())
    /// #   .connector(cluster.connector())
    ///     .transactional()
    ///     .build()
    ///     .await?;
    /// assert_eq!(producer.producer().config().group, "orders_tx");
    /// # Ok(()) }
    /// ```
    pub fn transactional(self) -> TransactionProducerBuilder {
        TransactionProducerBuilder {
            producer: self,
            listener: None,
            options: Options::default(),
        }
    }
}

impl TransactionProducerBuilder {
    /// Edits the underlying [`ProducerBuilder`] (name servers, timeouts, hooks ...).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// use std::time::Duration;
    /// let producer = rmq_producer::transaction::TransactionProducer::builder("orders_tx")
    ///     .producer(|b| b.namesrv(cluster.name_server_addr()).send_timeout(Duration::from_secs(5))
    /// #       .connector(cluster.connector())
    ///     )
    ///     .build()
    ///     .await?;
    /// assert_eq!(producer.producer().config().send_timeout, Duration::from_secs(5));
    /// # Ok(()) }
    /// ```
    pub fn producer(mut self, f: impl FnOnce(ProducerBuilder) -> ProducerBuilder) -> Self {
        self.producer = f(self.producer);
        self
    }

    /// The listener that runs local transactions and answers checks. Without one,
    /// only [`begin`](TransactionProducer::begin) works.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// use std::sync::Arc;
    /// use rmq_producer::transaction::*;
    /// struct AlwaysCommit;
    /// impl TransactionListener for AlwaysCommit {
    ///     fn execute<'a>(&'a self, _: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async { TransactionState::Commit })
    ///     }
    ///     fn check<'a>(&'a self, _: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async { TransactionState::Commit })
    ///     }
    /// }
    /// let producer = TransactionProducer::builder("orders_tx")
    ///     .producer(|b| b.namesrv(cluster.name_server_addr())
    /// #       .connector(cluster.connector())
    ///     )
    ///     .listener(Arc::new(AlwaysCommit))
    ///     .build()
    ///     .await?;
    /// let receipt = producer.send_in_transaction(rmq_producer::Message::new("Orders", "o")).await?;
    /// assert_eq!(receipt.state, TransactionState::Commit);
    /// # Ok(()) }
    /// ```
    pub fn listener(mut self, listener: Arc<dyn TransactionListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// How many listener checks run at once (default 4; at least 1).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// let producer = rmq_producer::transaction::TransactionProducer::builder("orders_tx")
    ///     .producer(|b| b.namesrv(cluster.name_server_addr())
    /// #       .connector(cluster.connector())
    ///     )
    ///     .max_concurrent_checks(1) // one at a time, as Java's default pool
    ///     .build()
    ///     .await?;
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub fn max_concurrent_checks(mut self, n: usize) -> Self {
        self.options.max_concurrent_checks = n.max(1);
        self
    }

    /// How many checks may wait or run at once before new ones are dropped (the
    /// broker asks again later). Default 2000 (Java's `checkRequestHoldMax`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// let producer = rmq_producer::transaction::TransactionProducer::builder("orders_tx")
    ///     .producer(|b| b.namesrv(cluster.name_server_addr())
    /// #       .connector(cluster.connector())
    ///     )
    ///     .check_queue_capacity(100)
    ///     .build()
    ///     .await?;
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub fn check_queue_capacity(mut self, n: usize) -> Self {
        self.options.check_queue_capacity = n.max(1);
        self
    }

    /// How long one listener check may take before it is abandoned without an
    /// answer (default 30 s).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// let producer = rmq_producer::transaction::TransactionProducer::builder("orders_tx")
    ///     .producer(|b| b.namesrv(cluster.name_server_addr())
    /// #       .connector(cluster.connector())
    ///     )
    ///     .check_timeout(std::time::Duration::from_secs(5))
    ///     .build()
    ///     .await?;
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.options.check_timeout = timeout;
        self
    }

    /// The answer to a check of a transaction that this process does not know and
    /// no listener can answer (default [`TransactionState::Unknown`]: the broker asks
    /// again, then discards the half message after its `transactionCheckMax`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// use rmq_producer::transaction::{TransactionProducer, TransactionState};
    /// // Orphans (e.g. of a process that crashed between begin and commit) are rolled back.
    /// let producer = TransactionProducer::builder("orders_tx")
    ///     .producer(|b| b.namesrv(cluster.name_server_addr())
    /// #       .connector(cluster.connector())
    ///     )
    ///     .unresolved_check_answer(TransactionState::Rollback)
    ///     .build()
    ///     .await?;
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub fn unresolved_check_answer(mut self, state: TransactionState) -> Self {
        self.options.unresolved_check_answer = state;
        self
    }

    /// Starts the producer and registers the CHECK_TRANSACTION_STATE handler on its
    /// connections. Checks reach it once a heartbeat registered the group with a
    /// broker (at start-up after 1 s, then every heartbeat interval).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// let producer = rmq_producer::transaction::TransactionProducer::builder("orders_tx")
    ///     .producer(|b| b.namesrv(cluster.name_server_addr())
    /// #       .connector(cluster.connector())
    ///     )
    ///     .build()
    ///     .await?;
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<TransactionProducer, BuildError> {
        let producer = self.producer.build().await?;
        let shared = Arc::new(Shared::new(self.options, self.listener));
        producer
            .inner
            .pool
            .register_handler(Arc::new(check::CheckHandler {
                inner: Arc::downgrade(&producer.inner),
                shared: shared.clone(),
            }));
        Ok(TransactionProducer { producer, shared })
    }
}
