//! What the transactional producer remembers: transactions open in this process,
//! recent decisions, and the checks running now (for de-duplication). Behind one
//! plain mutex that is never held across an `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::listener::{TransactionListener, TransactionState};

/// Settings of the transactional producer (set through
/// [`TransactionProducerBuilder`](super::TransactionProducerBuilder)).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub(crate) max_concurrent_checks: usize,
    pub(crate) check_queue_capacity: usize,
    pub(crate) check_timeout: Duration,
    pub(crate) unresolved_check_answer: TransactionState,
    pub(crate) remembered_decisions: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_concurrent_checks: 4,
            check_queue_capacity: 2000,
            check_timeout: Duration::from_secs(30),
            unresolved_check_answer: TransactionState::Unknown,
            remembered_decisions: 10_000,
        }
    }
}

#[derive(Debug, Default)]
struct Memory {
    /// Transactions whose half message is being sent or whose local part runs now
    /// (a check for them is answered `Unknown`).
    open: HashMap<String, usize>,
    /// Commit / rollback decisions of this process, newest last (bounded).
    decided: HashMap<String, TransactionState>,
    order: VecDeque<String>,
    /// Transaction ids with a check running now.
    checking: HashSet<String>,
}

/// Counters of the check handler.
#[derive(Debug, Default)]
pub(crate) struct CheckCounters {
    pub(crate) received: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) deduplicated: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) listener_calls: AtomicU64,
}

/// Shared by the producer handle, its [`Transaction`](super::Transaction)s and the
/// check handler.
pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) listener: Option<Arc<dyn TransactionListener>>,
    memory: Mutex<Memory>,
    pub(crate) running: Arc<Semaphore>,
    pub(crate) queued: Arc<Semaphore>,
    pub(crate) counters: CheckCounters,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

/// Where an answer to a check comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// The transaction is still open in this process.
    Open,
    /// This process decided it.
    Decided(TransactionState),
}

impl Shared {
    pub(crate) fn new(options: Options, listener: Option<Arc<dyn TransactionListener>>) -> Self {
        Self {
            running: Arc::new(Semaphore::new(
                options
                    .max_concurrent_checks
                    .clamp(1, Semaphore::MAX_PERMITS),
            )),
            queued: Arc::new(Semaphore::new(
                options
                    .check_queue_capacity
                    .clamp(1, Semaphore::MAX_PERMITS),
            )),
            options,
            listener,
            memory: Mutex::default(),
            counters: CheckCounters::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `id` open until the guard is dropped.
    pub(crate) fn open(self: &Arc<Self>, id: &str) -> OpenGuard {
        *self.lock().open.entry(id.to_owned()).or_insert(0) += 1;
        OpenGuard {
            shared: self.clone(),
            id: id.to_owned(),
        }
    }

    /// Remembers a commit or rollback decision (`Unknown` is not remembered).
    pub(crate) fn decide(&self, id: &str, state: TransactionState) {
        if state == TransactionState::Unknown || self.options.remembered_decisions == 0 {
            return;
        }
        let mut m = self.lock();
        if m.decided.insert(id.to_owned(), state).is_none() {
            m.order.push_back(id.to_owned());
        }
        while m.order.len() > self.options.remembered_decisions {
            if let Some(old) = m.order.pop_front() {
                m.decided.remove(&old);
            }
        }
    }

    /// What this process knows about transaction `id`.
    pub(crate) fn known(&self, id: &str) -> Option<Known> {
        let m = self.lock();
        if m.open.contains_key(id) {
            return Some(Known::Open);
        }
        m.decided.get(id).copied().map(Known::Decided)
    }

    /// Starts a check of `id`; `None` when one is already running (de-duplicated).
    pub(crate) fn begin_check(self: &Arc<Self>, id: &str) -> Option<CheckGuard> {
        if !self.lock().checking.insert(id.to_owned()) {
            return None;
        }
        Some(CheckGuard {
            shared: self.clone(),
            id: id.to_owned(),
        })
    }
}

/// Keeps a transaction open (see [`Shared::open`]).
#[derive(Debug)]
pub(crate) struct OpenGuard {
    shared: Arc<Shared>,
    id: String,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut m = self.shared.lock();
        if let Some(n) = m.open.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                m.open.remove(&self.id);
            }
        }
    }
}

/// Marks a check running (see [`Shared::begin_check`]); removed when dropped, also
/// when the check's task is cancelled.
#[derive(Debug)]
pub(crate) struct CheckGuard {
    shared: Arc<Shared>,
    id: String,
}

impl Drop for CheckGuard {
    fn drop(&mut self) {
        self.shared.lock().checking.remove(&self.id);
    }
}

/// Bumps a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Runs `fut`, turning a panic into `Err(panic text)`.
pub(crate) async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, String> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-text panic payload".to_owned());
                Poll::Ready(Err(text))
            }
        }
    })
    .await
}
