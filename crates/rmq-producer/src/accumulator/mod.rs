//! The auto-batch accumulator (opt-in: `auto_batch.enabled`): plain sends are
//! gathered per (topic, queue) and sent as SEND_BATCH_MESSAGE requests through the
//! batch path and the one retry engine; every message still gets its own result.
//!
//! - **Keys.** A send with [`Target::Auto`] joins its topic's *sticky* batch (queue
//!   `None`): every keyless message of the topic goes there until that batch is
//!   sealed, and the batch's queue is picked by the normal fault-aware selection when
//!   it is sent; the next batch then goes to the next queue (Kafka's sticky
//!   partitioner, with the choice made on the freshest fault data). A send to an
//!   explicit queue joins that (topic, queue)'s batch.
//! - **Sealing.** A batch is sealed when its encoded size reaches `max_batch_bytes`
//!   (it never grows past it), when `linger` has passed since its first message (a
//!   timer task per open batch), or at `close`. Each sealed batch is sent by its own
//!   task; no lock is held across an `.await`.
//! - **Memory.** Each queued message holds a permit of its encoded size from a
//!   `max_total_bytes` semaphore until its result is delivered: `send` waits for room
//!   (within its deadline), `try_send` fails with `BufferFull` and hands the
//!   message back. Nothing ever silently bypasses a full accumulator.
//! - **Bypass rules** ([`Accumulator::accepts`]): messages with a selector or a
//!   sharding key, a delay or timer, a transaction or producer-group property, a `%RETRY%` topic,
//!   `WAIT=false`, request-reply messages, bodies at or above the compression
//!   threshold, and messages whose encoded size alone reaches `max_batch_bytes` are
//!   sent on their own, exactly as without auto-batching. One-way sends and
//!   `send_batch` never go through the accumulator.

mod flush;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use rmq_protocol::message::batch::ENTRY_OVERHEAD;
use rmq_protocol::message::properties::{MAX_PROPERTIES_LEN, encoded_properties_len};
use rmq_protocol::message::send_result::SendResult;
use rmq_protocol::message::{Message, MessageQueue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

use crate::config::{AutoBatchSettings, ProducerConfig};
use crate::error::{Delivery, SendError, SendErrorKind};
use crate::options::{SendOptions, Target};
use crate::producer::Inner;

/// What the accumulator did, in [`ProducerStats::auto_batch`](crate::ProducerStats).
/// All zero when auto-batching is off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AutoBatchStats {
    /// Messages queued or in an unanswered batch now.
    pub queued_messages: usize,
    /// Encoded bytes those messages hold (at most `max_total_bytes`).
    pub queued_bytes: usize,
    /// Batches sent (answered or failed).
    pub batches: u64,
    /// Messages those batches carried.
    pub batched_messages: u64,
    /// Batches that failed as a whole (every message got the error back).
    pub failed_batches: u64,
    /// Messages of those batches.
    pub failed_messages: u64,
    /// Batches sealed because they reached `max_batch_bytes`.
    pub sealed_by_size: u64,
    /// Batches sealed because `linger` passed.
    pub sealed_by_linger: u64,
    /// Batches sealed by `close`.
    pub sealed_by_close: u64,
    /// Sends that bypassed the accumulator under its rules (sent on their own).
    pub bypassed: u64,
    /// Sends refused or timed out for lack of room (`BufferFull`).
    pub buffer_full: u64,
}

/// Which batch a message joins.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    topic: String,
    /// `None`: the topic's sticky batch (queue picked when sent, retried elsewhere);
    /// `Some`: an explicit queue (retried on that queue only).
    queue: Option<MessageQueue>,
}

/// Why a batch was sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seal {
    Size,
    Linger,
    Close,
}

/// One queued message and where its result goes.
struct Entry {
    message: Message,
    size: usize,
    started: Instant,
    deadline: Instant,
    retries: u32,
    reply: oneshot::Sender<Result<SendResult, SendError>>,
    /// Its share of `max_total_bytes`, released when the result is delivered.
    _memory: OwnedSemaphorePermit,
}

/// An open batch.
struct Open {
    id: u64,
    bytes: usize,
    entries: Vec<Entry>,
}

/// A batch on its way out.
struct Sealed {
    key: Key,
    why: Seal,
    entries: Vec<Entry>,
    /// `close`'s deadline, which no batch sealed by it may outlive.
    cap: Option<Instant>,
}

#[derive(Default)]
struct State {
    open: HashMap<Key, Open>,
    next_id: u64,
    closed: bool,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    batched_messages: AtomicU64,
    failed_batches: AtomicU64,
    failed_messages: AtomicU64,
    sealed_by_size: AtomicU64,
    sealed_by_linger: AtomicU64,
    sealed_by_close: AtomicU64,
    bypassed: AtomicU64,
    buffer_full: AtomicU64,
}

/// The producer's accumulator (one per producer, never shared through a registry).
pub(crate) struct Accumulator {
    settings: AutoBatchSettings,
    memory: Arc<Semaphore>,
    capacity: usize,
    /// Messages accepted whose result is not delivered yet.
    pending: AtomicUsize,
    state: Mutex<State>,
    counters: Counters,
}

impl std::fmt::Debug for Accumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accumulator")
            .field("settings", &self.settings)
            .field("pending", &self.pending.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// The encoded size of a message as a batch entry.
fn entry_size(m: &Message) -> usize {
    ENTRY_OVERHEAD + m.body().len() + encoded_properties_len(m.properties())
}

impl Accumulator {
    /// The accumulator the configuration asks for, if any.
    pub(crate) fn new(config: &ProducerConfig) -> Option<Self> {
        let settings = config.auto_batch.clone();
        if !settings.enabled {
            return None;
        }
        let capacity = settings.max_total_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Some(Self {
            memory: Arc::new(Semaphore::new(capacity)),
            capacity,
            settings,
            pending: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            counters: Counters::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a send may be batched (before it is stamped; the size rule is checked
    /// again after). Counts a bypass when not.
    pub(crate) fn accepts(
        &self,
        config: &ProducerConfig,
        message: &Message,
        options: &SendOptions,
    ) -> bool {
        let ok = matches!(options.target, Target::Auto | Target::Queue(_))
            && !message.is_delayed()
            && !message.is_transaction_prepared()
            && message.producer_group().is_none()
            && message.correlation_id().is_none()
            && message.sharding_key().is_none()
            && !crate::request::is_reply(message)
            && !message.topic().starts_with("%RETRY%")
            && message.wait_store_msg_ok()
            && !(config.compression.enabled
                && message.body().len() >= config.compression.threshold)
            && entry_size(message) < self.settings.max_batch_bytes;
        if !ok {
            self.counters.bypassed.fetch_add(1, Relaxed);
        }
        ok
    }

    /// Messages accepted whose result is not delivered yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Relaxed)
    }

    pub(crate) fn stats(&self) -> AutoBatchStats {
        let c = &self.counters;
        AutoBatchStats {
            queued_messages: self.pending(),
            queued_bytes: self.capacity - self.memory.available_permits(),
            batches: c.batches.load(Relaxed),
            batched_messages: c.batched_messages.load(Relaxed),
            failed_batches: c.failed_batches.load(Relaxed),
            failed_messages: c.failed_messages.load(Relaxed),
            sealed_by_size: c.sealed_by_size.load(Relaxed),
            sealed_by_linger: c.sealed_by_linger.load(Relaxed),
            sealed_by_close: c.sealed_by_close.load(Relaxed),
            bypassed: c.bypassed.load(Relaxed),
            buffer_full: c.buffer_full.load(Relaxed),
        }
    }

    /// Room for `size` bytes: waits up to `deadline`, or fails at once if `!wait`.
    async fn reserve(
        &self,
        size: usize,
        deadline: Instant,
        wait: bool,
    ) -> Result<OwnedSemaphorePermit, SendError> {
        let want = u32::try_from(size.clamp(1, self.capacity)).unwrap_or(u32::MAX);
        let full = |detail: String| {
            self.counters.buffer_full.fetch_add(1, Relaxed);
            SendError::new(SendErrorKind::BufferFull, Delivery::NotSent, detail)
        };
        if !wait {
            return self
                .memory
                .clone()
                .try_acquire_many_owned(want)
                .map_err(|_| {
                    full(format!(
                        "auto-batch buffer full ({} of {} bytes held by queued messages); \
                         nothing was sent, retry later",
                        self.capacity - self.memory.available_permits(),
                        self.capacity
                    ))
                });
        }
        match tokio::time::timeout_at(deadline, self.memory.clone().acquire_many_owned(want)).await
        {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(SendError::new(
                SendErrorKind::Shutdown,
                Delivery::NotSent,
                "the producer closed while the send waited for auto-batch room",
            )),
            Err(_) => Err(full(format!(
                "no room in the auto-batch buffer ({} bytes) before the deadline; nothing was sent",
                self.capacity
            ))),
        }
    }

    /// Adds an entry to its batch. Returns the batches it sealed and, when it opened
    /// a batch, that batch's id (for its linger timer); or the entry back when closed.
    fn push(&self, key: Key, entry: Entry) -> Result<(Vec<Sealed>, Option<u64>), Box<Entry>> {
        let max = self.settings.max_batch_bytes;
        let mut st = self.lock();
        if st.closed {
            return Err(Box::new(entry));
        }
        let mut sealed = Vec::new();
        let full = st
            .open
            .get(&key)
            .is_some_and(|o| !o.entries.is_empty() && o.bytes + entry.size > max);
        if full && let Some(o) = st.open.remove(&key) {
            sealed.push(Sealed {
                key: key.clone(),
                why: Seal::Size,
                entries: o.entries,
                cap: None,
            });
        }
        let mut opened = None;
        if !st.open.contains_key(&key) {
            let id = st.next_id;
            st.next_id += 1;
            st.open.insert(
                key.clone(),
                Open {
                    id,
                    bytes: 0,
                    entries: Vec::new(),
                },
            );
            opened = Some(id);
        }
        let now_full = match st.open.get_mut(&key) {
            Some(o) => {
                o.bytes += entry.size;
                o.entries.push(entry);
                o.bytes >= max
            }
            None => false,
        };
        self.pending.fetch_add(1, Relaxed);
        if now_full && let Some(o) = st.open.remove(&key) {
            sealed.push(Sealed {
                key,
                why: Seal::Size,
                entries: o.entries,
                cap: None,
            });
            opened = None;
        }
        Ok((sealed, opened))
    }

    /// Seals the batch `id` of `key` if it is still open (its linger passed).
    fn seal_if(&self, key: &Key, id: u64) -> Option<Sealed> {
        let mut st = self.lock();
        if st.open.get(key).is_none_or(|o| o.id != id) {
            return None;
        }
        let o = st.open.remove(key)?;
        Some(Sealed {
            key: key.clone(),
            why: Seal::Linger,
            entries: o.entries,
            cap: None,
        })
    }

    /// Stops intake and seals every open batch, each capped at `deadline`. Sends
    /// waiting for room fail at once with `Shutdown`.
    fn seal_all(&self, deadline: Instant) -> Vec<Sealed> {
        self.memory.close();
        let mut st = self.lock();
        st.closed = true;
        st.open
            .drain()
            .map(|(key, o)| Sealed {
                key,
                why: Seal::Close,
                entries: o.entries,
                cap: Some(deadline),
            })
            .collect()
    }
}

/// A batched send: validate and stamp, take room, join a batch, await the result.
/// Called by `send_with`/`try_send` after [`Accumulator::accepts`].
pub(crate) async fn send(
    inner: &Arc<Inner>,
    acc: &Accumulator,
    mut message: Message,
    options: SendOptions,
    wait: bool,
) -> Result<SendResult, SendError> {
    let started = Instant::now();
    let deadline = started + options.timeout.unwrap_or(inner.config.send_timeout);
    let checked = inner
        .check(&message)
        .and_then(|()| inner.stamp(&mut message).map(|_| ()));
    if let Err(e) = checked {
        inner.stats.record_failure(e.kind());
        return Err(e.with_message(message));
    }
    let size = entry_size(&message);
    let props_len = encoded_properties_len(message.properties());
    if size >= acc.settings.max_batch_bytes || props_len > MAX_PROPERTIES_LEN {
        // Too big to share a batch (its UNIQ_KEY tipped it over): sent on its own.
        acc.counters.bypassed.fetch_add(1, Relaxed);
        let mode = match options.target {
            Target::Auto => crate::kernel::Mode::Auto,
            _ => crate::kernel::Mode::Pinned,
        };
        // Boxed: this rare path would otherwise make every auto-batched (and
        // every plain) send future as big as a whole unbatched send.
        return Box::pin(inner.send_one(message, options, mode, wait)).await;
    }
    let memory = match acc.reserve(size, deadline, wait).await {
        Ok(p) => p,
        Err(e) => {
            inner.stats.record_failure(e.kind());
            return Err(e.with_message(message));
        }
    };
    let key = Key {
        topic: message.topic().to_owned(),
        queue: match options.target {
            Target::Queue(q) => Some(q),
            _ => None,
        },
    };
    let (tx, rx) = oneshot::channel();
    let entry = Entry {
        message,
        size,
        started,
        deadline,
        retries: options.retries.unwrap_or(inner.config.retries),
        reply: tx,
        _memory: memory,
    };
    match acc.push(key.clone(), entry) {
        Ok((sealed, opened)) => {
            for batch in sealed {
                flush::spawn(inner, batch);
            }
            if let Some(id) = opened {
                flush::spawn_linger(inner, acc.settings.linger, key, id);
            }
        }
        Err(entry) => {
            let e = SendError::new(
                SendErrorKind::Shutdown,
                Delivery::NotSent,
                "the producer is closed",
            );
            inner.stats.record_failure(e.kind());
            return Err(e.with_message(entry.message));
        }
    }
    rx.await.unwrap_or_else(|_| {
        Err(SendError::new(
            SendErrorKind::Shutdown,
            Delivery::Indeterminate,
            "the batch holding this message was dropped before it completed \
             (runtime shut down); it may have been stored",
        ))
    })
}

/// What `close` needs to report on the accumulator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CloseMark {
    /// Messages queued or in unanswered batches when `close` began.
    pub(crate) queued: usize,
    failed_before: u64,
}

impl Accumulator {
    /// Messages of `mark` without a result now or whose batch failed since.
    pub(crate) fn unsent_since(&self, mark: CloseMark) -> usize {
        let failed = self.counters.failed_messages.load(Relaxed) - mark.failed_before;
        self.pending()
            .saturating_add(usize::try_from(failed).unwrap_or(usize::MAX))
    }
}

/// `close`: stops intake and seals every open batch, each sent within `deadline`.
pub(crate) fn close(inner: &Arc<Inner>, acc: &Accumulator, deadline: Instant) -> CloseMark {
    let failed_before = acc.counters.failed_messages.load(Relaxed);
    let queued = acc.pending();
    for batch in acc.seal_all(deadline) {
        flush::spawn(inner, batch);
    }
    CloseMark {
        queued,
        failed_before,
    }
}
