//! Transactional messages: [`TransactionProducer`] (Java's `TransactionMQProducer`).
//!
//! A transactional message is sent in two phases. The producer first stores a
//! **half message** (sysFlag `TRANSACTION_PREPARED`, properties `TRAN_MSG=true` and
//! `PGROUP=<group>`), which consumers cannot see. It then runs the local transaction
//! and sends **END_TRANSACTION** with commit (the message becomes visible), rollback
//! (it is discarded) or unknown. When the end is missing or unknown, the broker asks
//! the producer group with a **CHECK_TRANSACTION_STATE** request on a connection that
//! heartbeated with the group; the producer answers with another END_TRANSACTION.
//!
//! Two ways to run the local transaction:
//! - with a [`TransactionListener`]: [`TransactionProducer::send_in_transaction`]
//!   stores the half message, calls [`TransactionListener::execute`] and ends the
//!   transaction with its answer; [`TransactionListener::check`] answers checks;
//! - by hand: [`TransactionProducer::begin`] stores the half message and returns a
//!   [`Transaction`] to [`commit`](Transaction::commit) or
//!   [`rollback`](Transaction::rollback). No listener is needed.
//!
//! **Answering checks.** Checks arrive on the producer's connections as one-way
//! requests and are answered one-way to the address they came from, with
//! `fromTransactionCheck=true`. In this order:
//! 1. a transaction still open in this process (its half message being sent, its
//!    `execute` running, or its [`Transaction`] not ended) is answered `Unknown`:
//!    its outcome is not known yet, and asking the listener could roll back a
//!    transaction about to commit;
//! 2. a transaction this process committed or rolled back (the last 10 000
//!    decisions) gets that decision again: this repairs a lost END_TRANSACTION. A
//!    half message whose send failed with an indeterminate outcome counts as rolled
//!    back, since its local transaction never ran;
//! 3. otherwise the listener's `check` decides;
//! 4. without a listener, the **unresolved-check answer** applies:
//!    [`TransactionState::Unknown`] by default (the broker asks again, up to its
//!    `transactionCheckMax`, 15 by default, then discards the half message); set it
//!    with [`TransactionProducerBuilder::unresolved_check_answer`].
//!
//! Checks are de-duplicated per transaction id (a check that arrives while one for
//! the same transaction runs is dropped; the broker asks again), at most
//! [`max_concurrent_checks`](TransactionProducerBuilder::max_concurrent_checks) (4)
//! listener calls run at once, at most
//! [`check_queue_capacity`](TransactionProducerBuilder::check_queue_capacity)
//! (2000, Java's `checkRequestHoldMax`) wait or run, and a listener call that takes
//! longer than [`check_timeout`](TransactionProducerBuilder::check_timeout) (30 s)
//! is abandoned without an answer. The transaction id is the message's `UNIQ_KEY`
//! from the check's body (else the header's `transactionId` or `msgId`); the
//! header's `offsetMsgId` is never used (the rocketmq-rust broker leaves it empty).
//!
//! **Half messages** are never compressed (a compressed half message cannot be
//! resumed by some brokers' checks, apache/rocketmq#9953), cannot be batched or
//! delayed (`DELAY` is removed, as in Java), and go as SEND_MESSAGE_V2. Java retries
//! a half message on another broker like any sync send; this producer retries it only
//! while no attempt may have stored it (connect failures, retryable broker answers),
//! so that one transaction never has two half messages whose checks could both be
//! answered `Commit`. A half message stored with a warning status
//! (`FLUSH_DISK_TIMEOUT` ...) is rolled back without running the local transaction,
//! as in Java.
//!
//! **END_TRANSACTION** is one-way, as in Java: brokers do not answer it. What can be
//! reported is whether it was written: a failure to write it is an error
//! ([`TransactionError::End`], or the `Err` of [`Transaction::commit`]), with
//! [`crate::Delivery`] telling whether it may still have reached the
//! broker. Either way the broker checks the transaction back, and this producer
//! answers from its memory of the decision (rule 2 above), so a lost end is repaired
//! as long as the producer runs.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let cluster = rmq_testkit::fake::FakeCluster::builder()
//! #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
//! #     .topic("Orders", 4).build().await?;
//! use std::sync::Arc;
//! use rmq_producer::Message;
//! use rmq_producer::transaction::{
//!     BoxFuture, CheckRequest, LocalTransaction, TransactionListener, TransactionProducer,
//!     TransactionState,
//! };
//!
//! struct Orders;
//! impl TransactionListener for Orders {
//!     fn execute<'a>(&'a self, tx: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
//!         Box::pin(async move {
//!             match tx.arg::<u32>() {
//!                 Some(&qty) if qty > 0 => TransactionState::Commit, // stored the order
//!                 _ => TransactionState::Rollback,
//!             }
//!         })
//!     }
//!     fn check<'a>(&'a self, _check: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
//!         Box::pin(async { TransactionState::Rollback }) // no record of it
//!     }
//! }
//!
//! let producer = TransactionProducer::builder("orders_tx")
//!     .producer(|b| b.namesrv(cluster.name_server_addr())
//! #       .connector(cluster.connector())
//!     )
//!     .listener(Arc::new(Orders))
//!     .build()
//!     .await?;
//! let receipt = producer
//!     .send_in_transaction_with(Message::new("Orders", "order 42"), &3u32)
//!     .await?;
//! assert_eq!(receipt.state, TransactionState::Commit);
//! producer.close(std::time::Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```

mod builder;
mod check;
mod half;
mod handle;
mod listener;
mod state;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use rmq_protocol::message::Message;
use rmq_protocol::message::send_result::SendResult;

pub use builder::TransactionProducerBuilder;
pub use handle::Transaction;
pub use listener::{
    BoxFuture, CheckRequest, LocalTransaction, TransactionListener, TransactionState,
};

use crate::error::{Delivery, SendError, SendErrorKind};
use crate::lifecycle::CloseReport;
use crate::producer::Producer;
use state::{Shared, catch_panic};

/// What [`TransactionProducer::send_in_transaction`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TransactionReceipt {
    /// Where the half message was stored.
    pub send_result: SendResult,
    /// The transaction id (the message's `UNIQ_KEY`).
    pub transaction_id: String,
    /// The state sent with END_TRANSACTION.
    pub state: TransactionState,
    /// Why the state is not the listener's answer: the listener panicked (the state
    /// is then `Unknown`) or the half message was stored with a warning status (the
    /// state is then `Rollback`, and the listener was not called).
    pub note: Option<String>,
}

/// A transactional send failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The half message was not stored, or its outcome is unknown
    /// ([`SendError::delivery`]); the local transaction was **not** run. A half
    /// message that was stored after all is rolled back when the broker checks it.
    #[error("the half message was not stored: {0}")]
    Send(#[source] SendError),
    /// The local transaction ran and decided `receipt.state`, but END_TRANSACTION
    /// could not be written (see `error.delivery()`). The broker checks the
    /// transaction back and this producer answers with the same decision while it
    /// runs.
    #[error("transaction {} decided {} but its end was not delivered: {error}", receipt.transaction_id, receipt.state)]
    End {
        /// What was decided.
        receipt: Box<TransactionReceipt>,
        /// Why the end was not delivered.
        #[source]
        error: SendError,
    },
    /// [`send_in_transaction`](TransactionProducer::send_in_transaction) needs a
    /// listener; use [`begin`](TransactionProducer::begin) without one. Nothing was
    /// sent.
    #[error("send_in_transaction needs a TransactionListener (or use begin/commit)")]
    NoListener,
}

impl TransactionError {
    /// Whether the local transaction ran (only for [`End`](Self::End)).
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
    /// use rmq_producer::transaction::TransactionError;
    /// // This producer has no listener: nothing is sent, nothing ran.
    /// let err = producer.send_in_transaction(Message::new("Orders", "o")).await.unwrap_err();
    /// assert!(matches!(err, TransactionError::NoListener));
    /// assert!(!err.local_transaction_ran());
    /// # Ok(()) }
    /// ```
    pub fn local_transaction_ran(&self) -> bool {
        matches!(self, Self::End { .. })
    }
}

/// Counters of the CHECK_TRANSACTION_STATE handler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckStats {
    /// Checks received.
    pub received: u64,
    /// Checks answered (END_TRANSACTION written).
    pub answered: u64,
    /// Checks dropped because one for the same transaction was running.
    pub deduplicated: u64,
    /// Checks dropped otherwise (undecodable, another group, queue full, listener
    /// timeout).
    pub dropped: u64,
    /// Calls of [`TransactionListener::check`].
    pub listener_calls: u64,
}

/// A producer of transactional messages. Cheap to clone (clones share everything).
/// See the [module docs](self) for the protocol and the choices made.
///
/// It wraps a [`Producer`] of the same group ([`producer`](Self::producer)), which
/// sends ordinary messages too, as Java's `TransactionMQProducer` extends
/// `DefaultMQProducer`. It is a type of its own, not a builder option, because it
/// owns what ordinary producers do not have: the listener and the answers to
/// broker checks, which must stay registered for as long as half messages of the
/// group may be pending.
#[derive(Clone)]
pub struct TransactionProducer {
    producer: Producer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TransactionProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionProducer")
            .field("producer", &self.producer)
            .field("shared", &self.shared)
            .finish()
    }
}

impl TransactionProducer {
    /// A builder for the producer group `group`.
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
    pub fn builder(group: impl Into<String>) -> TransactionProducerBuilder {
        Producer::builder(group).transactional()
    }

    /// The underlying producer (ordinary sends, stats, configuration).
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
    /// producer.producer().send(rmq_producer::Message::new("Orders", "not transactional")).await?;
    /// # Ok(()) }
    /// ```
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Stores `message` as a half message, runs the listener's
    /// [`execute`](TransactionListener::execute) and ends the transaction with its
    /// answer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// use std::sync::Arc;
    /// use rmq_producer::transaction::*;
    /// struct Decline;
    /// impl TransactionListener for Decline {
    ///     fn execute<'a>(&'a self, _: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async { TransactionState::Rollback })
    ///     }
    ///     fn check<'a>(&'a self, _: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async { TransactionState::Rollback })
    ///     }
    /// }
    /// # let producer = TransactionProducer::builder("tx_group")
    /// #     .producer(|b| b.namesrv(cluster.name_server_addr()).connector(cluster.connector()))
    /// #     .listener(Arc::new(Decline)).build().await?;
    /// let receipt = producer.send_in_transaction(rmq_producer::Message::new("Orders", "o")).await?;
    /// assert_eq!(receipt.state, TransactionState::Rollback); // never visible
    /// # Ok(()) }
    /// ```
    pub async fn send_in_transaction(
        &self,
        message: Message,
    ) -> Result<TransactionReceipt, TransactionError> {
        self.run(message, None).await
    }

    /// Like [`send_in_transaction`](Self::send_in_transaction), passing `arg` to the
    /// listener ([`LocalTransaction::arg`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("Orders", 4).build().await?;
    /// use std::sync::Arc;
    /// use rmq_producer::transaction::*;
    /// struct ByArg;
    /// impl TransactionListener for ByArg {
    ///     fn execute<'a>(&'a self, tx: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
    ///         let state = *tx.arg::<TransactionState>().unwrap_or(&TransactionState::Unknown);
    ///         Box::pin(async move { state })
    ///     }
    ///     fn check<'a>(&'a self, _: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async { TransactionState::Rollback })
    ///     }
    /// }
    /// # let producer = TransactionProducer::builder("tx_group")
    /// #     .producer(|b| b.namesrv(cluster.name_server_addr()).connector(cluster.connector()))
    /// #     .listener(Arc::new(ByArg)).build().await?;
    /// let message = rmq_producer::Message::new("Orders", "o");
    /// let receipt = producer.send_in_transaction_with(message, &TransactionState::Commit).await?;
    /// assert_eq!(receipt.state, TransactionState::Commit);
    /// # Ok(()) }
    /// ```
    pub async fn send_in_transaction_with<A: Any + Send + Sync>(
        &self,
        message: Message,
        arg: &A,
    ) -> Result<TransactionReceipt, TransactionError> {
        self.run(message, Some(arg)).await
    }

    async fn run(
        &self,
        mut message: Message,
        arg: Option<&(dyn Any + Send + Sync)>,
    ) -> Result<TransactionReceipt, TransactionError> {
        let Some(listener) = self.shared.listener.clone() else {
            return Err(TransactionError::NoListener);
        };
        let inner = &self.producer.inner;
        let id = inner
            .stamp_half(&mut message)
            .map_err(|e| TransactionError::Send(e.with_message(message.clone())))?;
        let open = self.shared.open(&id);
        let sent = match inner.send_half(&message, &id).await {
            Ok(sent) => sent,
            Err(e) => return Err(self.half_failed(&id, e, message)),
        };
        let (state, note) = if !sent.status.is_ok() {
            (
                TransactionState::Rollback,
                Some(format!(
                    "half message stored with status {}; rolled back as Java does",
                    sent.status.java_name()
                )),
            )
        } else {
            let tx = LocalTransaction::new(&message, &sent, &id, arg);
            match catch_panic(listener.execute(tx)).await {
                Ok(state) => (state, None),
                Err(panic) => (
                    TransactionState::Unknown,
                    Some(format!("executeLocalTransactionBranch panicked: {panic}")),
                ),
            }
        };
        self.shared.decide(&id, state);
        drop(open);
        let end = inner.end_sent(&sent, state, note.clone()).await;
        let receipt = TransactionReceipt {
            send_result: sent,
            transaction_id: id,
            state,
            note,
        };
        match end {
            Ok(()) => Ok(receipt),
            Err(error) => Err(TransactionError::End {
                receipt: Box::new(receipt),
                error,
            }),
        }
    }

    /// A failed half send: a half message that may be stored is remembered as
    /// rolled back (its local transaction never runs).
    fn half_failed(&self, id: &str, e: SendError, message: Message) -> TransactionError {
        if e.delivery() == Delivery::Indeterminate {
            self.shared.decide(id, TransactionState::Rollback);
        }
        TransactionError::Send(e.with_message(message))
    }

    /// Stores `message` as a half message and returns the [`Transaction`] to end by
    /// hand (no listener needed). If the send fails, nothing is left to end: a half
    /// message stored after all (an `Indeterminate` error) is rolled back when the
    /// broker checks it.
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
    /// let id = tx.transaction_id().to_owned(); // record it with the local transaction
    /// // ... run the local transaction ...
    /// tx.commit().await?;
    /// # assert!(!id.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self, mut message: Message) -> Result<Transaction, SendError> {
        let inner = &self.producer.inner;
        let id = inner
            .stamp_half(&mut message)
            .map_err(|e| e.with_message(message.clone()))?;
        let open = self.shared.open(&id);
        match inner.send_half(&message, &id).await {
            Ok(sent) => Ok(Transaction {
                inner: inner.clone(),
                shared: self.shared.clone(),
                sent,
                id,
                open: Some(open),
            }),
            Err(e) => match self.half_failed(&id, e, message) {
                TransactionError::Send(e) => Err(e),
                other => Err(SendError::new(
                    SendErrorKind::InvalidMessage,
                    Delivery::NotSent,
                    other.to_string(),
                )),
            },
        }
    }

    /// Counters of the check handler.
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
    /// let stats = producer.check_stats();
    /// assert_eq!(stats.received, 0);
    /// # Ok(()) }
    /// ```
    pub fn check_stats(&self) -> CheckStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.shared.counters;
        CheckStats {
            received: c.received.load(Relaxed),
            answered: c.answered.load(Relaxed),
            deduplicated: c.deduplicated.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            listener_calls: c.listener_calls.load(Relaxed),
        }
    }

    /// Closes the producer ([`Producer::close`]): checks are no longer answered.
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
    /// let report = producer.close(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(report.abandoned, 0);
    /// # Ok(()) }
    /// ```
    pub async fn close(&self, deadline: Duration) -> CloseReport {
        self.producer.close(deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::state::Options;
    use super::*;

    #[test]
    fn states_map_to_wire_values() {
        use rmq_protocol::header::end_transaction::CommitOrRollback;
        assert_eq!(TransactionState::Commit.wire(), CommitOrRollback::COMMIT);
        assert_eq!(
            TransactionState::Rollback.wire(),
            CommitOrRollback::ROLLBACK
        );
        assert_eq!(TransactionState::Unknown.wire(), CommitOrRollback::UNKNOWN);
        assert_eq!(TransactionState::Rollback.to_string(), "rollback");
    }

    #[test]
    fn memory_answers_open_then_decided_and_forgets_oldest() {
        let shared = Arc::new(Shared::new(
            Options {
                remembered_decisions: 2,
                ..Options::default()
            },
            None,
        ));
        let open = shared.open("a");
        assert_eq!(shared.known("a"), Some(state::Known::Open));
        shared.decide("a", TransactionState::Commit);
        assert_eq!(shared.known("a"), Some(state::Known::Open)); // still open
        drop(open);
        assert_eq!(
            shared.known("a"),
            Some(state::Known::Decided(TransactionState::Commit))
        );
        shared.decide("b", TransactionState::Unknown); // not remembered
        assert_eq!(shared.known("b"), None);
        shared.decide("b", TransactionState::Rollback);
        shared.decide("c", TransactionState::Commit);
        assert_eq!(shared.known("a"), None, "oldest decision forgotten");
        assert!(shared.known("b").is_some() && shared.known("c").is_some());
    }

    #[test]
    fn checks_are_deduplicated_until_the_guard_drops() {
        let shared = Arc::new(Shared::new(Options::default(), None));
        let g = shared.begin_check("t").expect("first check runs");
        assert!(shared.begin_check("t").is_none());
        assert!(shared.begin_check("u").is_some());
        drop(g);
        assert!(shared.begin_check("t").is_some());
    }

    #[tokio::test]
    async fn panics_are_caught() {
        let r = catch_panic(async { panic!("boom") }).await;
        assert_eq!(r.unwrap_err(), "boom");
        let ok: Result<u8, String> = catch_panic(async { 7 }).await;
        assert_eq!(ok.unwrap(), 7);
    }
}
