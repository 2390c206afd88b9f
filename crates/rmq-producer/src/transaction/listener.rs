//! The user-facing vocabulary: [`TransactionState`], [`TransactionListener`] and what
//! it is given ([`LocalTransaction`], [`CheckRequest`]).

use std::any::Any;
use std::fmt;

use rmq_protocol::header::end_transaction::CommitOrRollback;
use rmq_protocol::message::Message;
use rmq_protocol::message::send_result::SendResult;

pub use rmq_remoting::invoke::BoxFuture;

/// The state of a local transaction, and what END_TRANSACTION tells the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// Make the half message visible to consumers (`commitOrRollback=8`).
    Commit,
    /// Discard the half message (`commitOrRollback=12`).
    Rollback,
    /// Not known yet (`commitOrRollback=0`): the broker keeps the half message and
    /// asks again later (CHECK_TRANSACTION_STATE), up to its `transactionCheckMax`
    /// (15 by default), after which it discards the half message.
    Unknown,
}

impl TransactionState {
    /// The END_TRANSACTION `commitOrRollback` value.
    ///
    /// ```
    /// use rmq_producer::TransactionState;
    /// use rmq_protocol::header::end_transaction::CommitOrRollback;
    ///
    /// assert_eq!(TransactionState::Commit.wire(), CommitOrRollback::COMMIT); // 8
    /// assert_eq!(TransactionState::Rollback.wire(), CommitOrRollback::ROLLBACK); // 12
    /// assert_eq!(TransactionState::Unknown.wire(), CommitOrRollback::UNKNOWN); // 0
    /// ```
    pub const fn wire(self) -> CommitOrRollback {
        match self {
            Self::Commit => CommitOrRollback::COMMIT,
            Self::Rollback => CommitOrRollback::ROLLBACK,
            Self::Unknown => CommitOrRollback::UNKNOWN,
        }
    }

    /// `commit`, `rollback` or `unknown`.
    ///
    /// ```
    /// use rmq_producer::TransactionState;
    ///
    /// assert_eq!(TransactionState::Rollback.name(), "rollback");
    /// assert_eq!(TransactionState::Commit.to_string(), "commit"); // Display says the same
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Rollback => "rollback",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`TransactionListener::execute`] is given: the half message that was stored
/// and the caller's argument.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct LocalTransaction<'a> {
    /// The message as sent (with `TRAN_MSG`, `PGROUP` and its `UNIQ_KEY`).
    pub message: &'a Message,
    /// Where the half message was stored.
    pub send_result: &'a SendResult,
    /// The transaction id: the message's `UNIQ_KEY`. A later
    /// [`CheckRequest::transaction_id`] for this transaction carries the same value,
    /// so record it with your local transaction.
    pub transaction_id: &'a str,
    arg: Option<&'a (dyn Any + Send + Sync)>,
}

impl<'a> LocalTransaction<'a> {
    pub(crate) fn new(
        message: &'a Message,
        send_result: &'a SendResult,
        transaction_id: &'a str,
        arg: Option<&'a (dyn Any + Send + Sync)>,
    ) -> Self {
        Self {
            message,
            send_result,
            transaction_id,
            arg,
        }
    }

    /// The argument given to
    /// [`send_in_transaction_with`](super::TransactionProducer::send_in_transaction_with),
    /// if it is an `A` (Java's `arg` object, typed).
    ///
    /// ```
    /// use rmq_producer::transaction::{
    ///     BoxFuture, CheckRequest, LocalTransaction, TransactionListener, TransactionState,
    /// };
    ///
    /// /// The argument is the order's quantity; anything else is a bug: roll back.
    /// struct Orders;
    /// impl TransactionListener for Orders {
    ///     fn execute<'a>(&'a self, tx: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async move {
    ///             match tx.arg::<u32>() {
    ///                 Some(&quantity) if quantity > 0 => TransactionState::Commit,
    ///                 _ => TransactionState::Rollback, // none, zero, or not a u32
    ///             }
    ///         })
    ///     }
    ///     fn check<'a>(&'a self, _: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async { TransactionState::Rollback })
    ///     }
    /// }
    /// ```
    pub fn arg<A: Any>(&self) -> Option<&'a A> {
        self.arg.and_then(|a| (a as &dyn Any).downcast_ref::<A>())
    }
}

impl fmt::Debug for LocalTransaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTransaction")
            .field("topic", &self.message.topic())
            .field("transaction_id", &self.transaction_id)
            .field("has_arg", &self.arg.is_some())
            .finish()
    }
}

/// A broker's CHECK_TRANSACTION_STATE: it holds a half message whose transaction was
/// not ended (or whose END_TRANSACTION was lost, or answered `Unknown`) and asks for
/// its state.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckRequest {
    /// The half message as the broker stored it: the real topic (namespace removed),
    /// the body (decompressed), the properties (`UNIQ_KEY`, `PGROUP`,
    /// `TRANSACTION_CHECK_TIMES` ...).
    pub message: Message,
    /// The transaction id: the message's `UNIQ_KEY` (as
    /// [`LocalTransaction::transaction_id`]).
    pub transaction_id: String,
    /// The broker that asks (`bname`), when it said.
    pub broker_name: Option<String>,
    /// The address of the connection the check came on (the answer goes there).
    pub broker_addr: String,
    /// The half message's commit-log offset (`commitLogOffset`).
    pub commit_log_offset: i64,
    /// The half message's queue offset (`tranStateTableOffset`).
    pub tran_state_table_offset: i64,
}

impl CheckRequest {
    /// How often the broker has checked this half message before
    /// (`TRANSACTION_CHECK_TIMES`), when it says.
    ///
    /// ```
    /// use rmq_producer::transaction::{
    ///     BoxFuture, CheckRequest, LocalTransaction, TransactionListener, TransactionState,
    /// };
    ///
    /// /// Local transactions that may take a while: give them five checks, then give up.
    /// struct Patient;
    /// impl TransactionListener for Patient {
    ///     fn execute<'a>(&'a self, _: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async { TransactionState::Unknown }) // finishes in the background
    ///     }
    ///     fn check<'a>(&'a self, check: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
    ///         Box::pin(async move {
    ///             match check.check_times() {
    ///                 Some(n) if n >= 5 => TransactionState::Rollback,
    ///                 _ => TransactionState::Unknown, // the broker asks again later
    ///             }
    ///         })
    ///     }
    /// }
    /// ```
    pub fn check_times(&self) -> Option<u32> {
        self.message
            .property(rmq_protocol::message::properties::keys::TRANSACTION_CHECK_TIMES)
            .and_then(|v| v.parse().ok())
    }
}

/// Runs local transactions and answers the broker's checks (Java's
/// `TransactionListener`, async).
///
/// Both methods return boxed futures so that the trait can be used as
/// `Arc<dyn TransactionListener>`; write them as `Box::pin(async move { ... })`.
/// A panic in either is caught: the state becomes [`TransactionState::Unknown`] and
/// the panic text is sent as the END_TRANSACTION remark (Java does the same with an
/// exception).
///
/// ```
/// use rmq_producer::transaction::{
///     BoxFuture, CheckRequest, LocalTransaction, TransactionListener, TransactionState,
/// };
///
/// struct Orders; // e.g. a database handle
///
/// impl TransactionListener for Orders {
///     fn execute<'a>(&'a self, tx: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
///         Box::pin(async move {
///             // insert the order together with tx.transaction_id, in one local transaction
///             let _ = tx.transaction_id;
///             TransactionState::Commit
///         })
///     }
///
///     fn check<'a>(&'a self, check: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
///         Box::pin(async move {
///             // look the transaction id up: committed → Commit; never ran → Rollback
///             let _ = &check.transaction_id;
///             TransactionState::Rollback
///         })
///     }
/// }
/// ```
pub trait TransactionListener: Send + Sync + 'static {
    /// Runs the local transaction of a half message that the broker stored, and
    /// returns its outcome. `Unknown` leaves the decision to a later check.
    fn execute<'a>(&'a self, tx: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState>;

    /// Answers a broker's check of a transaction this process does not remember (see
    /// the [module docs](super) for the ones it answers itself). A transaction whose
    /// local part never ran (no record of its id) should get `Rollback`.
    fn check<'a>(&'a self, check: &'a CheckRequest) -> BoxFuture<'a, TransactionState>;
}
