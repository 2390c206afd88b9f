//! Sending sealed batches and handing each message its own outcome.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rmq_protocol::message::Message;
use rmq_protocol::message::send_result::SendResult;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span};

use super::{Accumulator, Entry, Key, Seal, Sealed};
use crate::error::{Delivery, SendError, SendErrorKind};
use crate::kernel::Mode;
use crate::options::Target;
use crate::producer::Inner;

/// Starts the linger timer of batch `id` of `key`: when it fires and the batch is
/// still open, the batch is sealed and sent. A batch sealed earlier (size, close)
/// makes the timer a no-op.
pub(super) fn spawn_linger(inner: &Arc<Inner>, linger: Duration, key: Key, id: u64) {
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        tokio::time::sleep(linger).await;
        let Some(acc) = inner.auto_batch.as_ref() else {
            return;
        };
        if let Some(batch) = acc.seal_if(&key, id) {
            spawn(&inner, batch);
        }
    });
}

/// Sends a sealed batch in its own task.
pub(super) fn spawn(inner: &Arc<Inner>, batch: Sealed) {
    let inner = Arc::clone(inner);
    tokio::spawn(async move { send(&inner, batch).await });
}

/// Sends one batch: the earliest deadline of its messages (and `close`'s cap), the
/// fewest retries any of them allows; the sticky batch goes through the normal
/// queue selection and retries on another broker, an explicit-queue batch retries
/// on its queue only (the same rules as single sends). Every message gets its own
/// result, or the batch's error with the message handed back.
async fn send(inner: &Inner, batch: Sealed) {
    let Sealed {
        key,
        why,
        entries,
        cap,
    } = batch;
    let Some(acc) = inner.auto_batch.as_ref() else {
        return;
    };
    let counter = match why {
        Seal::Size => &acc.counters.sealed_by_size,
        Seal::Linger => &acc.counters.sealed_by_linger,
        Seal::Close => &acc.counters.sealed_by_close,
    };
    counter.fetch_add(1, Relaxed);
    let n = entries.len();
    let mut deadline = entries.iter().map(|e| e.deadline).min();
    if let (Some(d), Some(c)) = (deadline, cap) {
        deadline = Some(d.min(c));
    }
    let Some(deadline) = deadline else { return };
    let retries = entries.iter().map(|e| e.retries).min().unwrap_or(0);
    let (target, mode) = match &key.queue {
        None => (Target::Auto, Mode::Auto),
        Some(q) => (Target::Queue(q.clone()), Mode::Pinned),
    };
    let (messages, tails): (Vec<Message>, Vec<Tail>) = entries
        .into_iter()
        .map(|e: Entry| {
            (
                e.message,
                Tail {
                    started: e.started,
                    reply: e.reply,
                    _memory: e._memory,
                },
            )
        })
        .unzip();
    let outcome = inner
        .send_chunk_to(&messages, &target, mode, retries, deadline)
        .instrument(debug_span!("rmq.auto_batch", topic = %key.topic, messages = n, ?why))
        .await;
    acc.counters.batches.fetch_add(1, Relaxed);
    acc.counters
        .batched_messages
        .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Relaxed);
    match outcome {
        Ok(results) if results.len() == n => {
            for (tail, result) in tails.into_iter().zip(results) {
                inner.stats.record_ok(tail.started.elapsed());
                tail.finish(acc, Ok(result));
            }
        }
        Ok(results) => {
            // Cannot happen (one result per message); fail loudly rather than guess.
            let e = SendError::new(
                SendErrorKind::MalformedResponse,
                Delivery::Indeterminate,
                format!(
                    "a batch of {n} messages produced {} results; the batch may be stored",
                    results.len()
                ),
            );
            fail(inner, acc, tails, messages, &e);
        }
        Err(e) => {
            debug!(error = %e, messages = n, "auto-batch failed");
            fail(inner, acc, tails, messages, &e);
        }
    }
}

fn fail(inner: &Inner, acc: &Accumulator, tails: Vec<Tail>, messages: Vec<Message>, e: &SendError) {
    acc.counters.failed_batches.fetch_add(1, Relaxed);
    acc.counters
        .failed_messages
        .fetch_add(u64::try_from(tails.len()).unwrap_or(u64::MAX), Relaxed);
    for (tail, m) in tails.into_iter().zip(messages) {
        inner.stats.record_failure(e.kind());
        tail.finish(acc, Err(e.replicate().with_message(m)));
    }
}

/// What is left of an entry once its message went into the request.
struct Tail {
    started: Instant,
    reply: oneshot::Sender<Result<SendResult, SendError>>,
    _memory: OwnedSemaphorePermit,
}

impl Tail {
    /// Delivers the outcome (ignored if the caller stopped waiting), then releases
    /// the message's room and pending count.
    fn finish(self, acc: &Accumulator, outcome: Result<SendResult, SendError>) {
        let Tail { reply, _memory, .. } = self;
        drop(_memory);
        acc.pending.fetch_sub(1, Relaxed);
        let _ = reply.send(outcome);
    }
}
