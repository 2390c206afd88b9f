//! [`Transaction`]: a half message whose transaction the caller ends by hand
//! (`begin` → `commit` / `rollback`), for code without a local-transaction callback.

use std::sync::Arc;

use rmq_protocol::message::send_result::SendResult;

use super::listener::TransactionState;
use super::state::{OpenGuard, Shared};
use crate::error::SendError;
use crate::producer::Inner;

/// A stored half message waiting for [`commit`](Self::commit) or
/// [`rollback`](Self::rollback); made by
/// [`TransactionProducer::begin`](super::TransactionProducer::begin).
///
/// While it exists, a broker check of this transaction is answered `Unknown` (the
/// local transaction is still running). Dropping it without ending it sends nothing:
/// the broker checks the transaction back and the producer answers through its
/// listener, or with the unresolved-check answer (default `Unknown`; see the
/// [module docs](super)).
#[derive(Debug)]
#[must_use = "a transaction must be committed or rolled back; dropping it leaves the decision to a broker check"]
pub struct Transaction {
    pub(crate) inner: Arc<Inner>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) sent: SendResult,
    pub(crate) id: String,
    pub(crate) open: Option<OpenGuard>,
}

impl Transaction {
    /// Where the half message was stored. A status other than `SendOk` means it was
    /// stored with a warning (Java rolls such transactions back).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// # let producer = rmq_producer::transaction::TransactionProducer::builder("tx_group")
    /// #     .producer(|b| b.namesrv(cluster.name_server_addr()).connector(cluster.connector()))
    /// #     .build().await?;
    /// use rmq_producer::{Message, SendStatus};
    /// let tx = producer.begin(Message::new("Orders", "order 42")).await?;
    /// if tx.send_result().status == SendStatus::SendOk {
    ///     tx.commit().await?;
    /// } else {
    ///     tx.rollback().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn send_result(&self) -> &SendResult {
        &self.sent
    }

    /// The transaction id: the half message's `UNIQ_KEY`, as a later
    /// [`CheckRequest::transaction_id`](super::CheckRequest::transaction_id) names it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// # let producer = rmq_producer::transaction::TransactionProducer::builder("tx_group")
    /// #     .producer(|b| b.namesrv(cluster.name_server_addr()).connector(cluster.connector()))
    /// #     .build().await?;
    /// use rmq_producer::Message;
    /// let tx = producer.begin(Message::new("Orders", "order 42")).await?;
    /// // Record the id with the local work, so that a later check can be answered.
    /// let id = tx.transaction_id().to_owned();
    /// assert_eq!(id, tx.send_result().msg_id.as_str());
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub fn transaction_id(&self) -> &str {
        &self.id
    }

    /// Commits: the message becomes visible to consumers. `Ok` means the one-way
    /// END_TRANSACTION was written; should it be lost, the broker checks back and
    /// this producer answers `Commit` from memory.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// # let producer = rmq_producer::transaction::TransactionProducer::builder("tx_group")
    /// #     .producer(|b| b.namesrv(cluster.name_server_addr()).connector(cluster.connector()))
    /// #     .build().await?;
    /// let tx = producer.begin(rmq_producer::Message::new("Orders", "order 42")).await?;
    /// tx.commit().await?;
    /// # cluster.brokers()[0].wait_until(|b| b.message_count_for("Orders") == 1).await;
    /// # Ok(()) }
    /// ```
    pub async fn commit(self) -> Result<(), SendError> {
        self.end(TransactionState::Commit).await
    }

    /// Rolls back: the half message is discarded and never visible.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// # let producer = rmq_producer::transaction::TransactionProducer::builder("tx_group")
    /// #     .producer(|b| b.namesrv(cluster.name_server_addr()).connector(cluster.connector()))
    /// #     .build().await?;
    /// let tx = producer.begin(rmq_producer::Message::new("Orders", "order 43")).await?;
    /// tx.rollback().await?;
    /// # Ok(()) }
    /// ```
    pub async fn rollback(self) -> Result<(), SendError> {
        self.end(TransactionState::Rollback).await
    }

    /// Ends with `state`. `Unknown` tells the broker to check back later (as Java
    /// sends it); a check that arrives after this call goes to the listener, or gets
    /// the unresolved-check answer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// # let producer = rmq_producer::transaction::TransactionProducer::builder("tx_group")
    /// #     .producer(|b| b.namesrv(cluster.name_server_addr()).connector(cluster.connector()))
    /// #     .build().await?;
    /// use rmq_producer::transaction::TransactionState;
    /// let tx = producer.begin(rmq_producer::Message::new("Orders", "order 44")).await?;
    /// let decided = if tx.send_result().status.is_ok() { TransactionState::Commit } else { TransactionState::Rollback };
    /// tx.end(decided).await?;
    /// # Ok(()) }
    /// ```
    pub async fn end(mut self, state: TransactionState) -> Result<(), SendError> {
        self.shared.decide(&self.id, state);
        drop(self.open.take());
        self.inner.end_sent(&self.sent, state, None).await
    }
}
