//! Reply slots: how the driver hands a request's answer to the caller waiting for it.
//!
//! A slot works like `tokio::sync::oneshot` (the sender answers at most once; a
//! sender dropped without answering resolves the receiver to [`Closed`], which is how
//! an envelope's `Drop` and a dying driver reach every waiter), but a slot is not
//! freed after use: the receiver that took the answer puts it back in its
//! connection's [`SlotPool`], so a warm connection answers requests without a heap
//! allocation each (issue #9; a `oneshot` allocated 264 bytes per request).
//!
//! A slot is recycled only when the receiver holds the last reference (the sender
//! released its own before waking the receiver), so no one can still write to it.
//! A receiver dropped before the answer, or a slot still referenced elsewhere, is
//! simply freed with its last reference.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Slots kept per connection at most: a burst of replies in flight beyond this
/// allocates, and its extra slots are freed afterwards.
const POOL_CAP: usize = 256;

enum State<T> {
    /// No answer yet; the receiver's waker, once it polled.
    Waiting(Option<Waker>),
    /// The answer, not taken yet.
    Ready(T),
    /// The sender was dropped without answering.
    Closed,
    /// The receiver took the answer (or the closed state).
    Done,
}

struct Slot<T> {
    state: Mutex<State<T>>,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No code path panics while holding the lock; recover the state anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sender was dropped without answering (tokio's `RecvError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// A connection's free reply slots.
pub(crate) struct SlotPool<T> {
    free: Mutex<Vec<Arc<Slot<T>>>>,
}

impl<T> std::fmt::Debug for SlotPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let free = self.free.lock().map_or(0, |v| v.len());
        f.debug_struct("SlotPool").field("free", &free).finish()
    }
}

impl<T> Default for SlotPool<T> {
    fn default() -> Self {
        Self {
            free: Mutex::new(Vec::new()),
        }
    }
}

impl<T> SlotPool<T> {
    /// A sender and its receiver, on a recycled slot when one is free.
    pub(crate) fn channel(self: &Arc<Self>) -> (Sender<T>, Receiver<T>) {
        let recycled = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let slot = recycled.unwrap_or_else(|| {
            Arc::new(Slot {
                state: Mutex::new(State::Waiting(None)),
            })
        });
        (
            Sender {
                slot: Some(slot.clone()),
            },
            Receiver {
                slot: Some(slot),
                pool: self.clone(),
            },
        )
    }

    fn put_back(&self, slot: Arc<Slot<T>>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < POOL_CAP {
            free.push(slot);
        }
    }

    #[cfg(test)]
    fn free_len(&self) -> usize {
        self.free.lock().map_or(0, |v| v.len())
    }
}

/// Answers once; dropping it unanswered closes the slot.
pub(crate) struct Sender<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("reply::Sender").finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    /// Whether the receiver is gone (its caller gave up): an answer would be dropped.
    pub(crate) fn is_closed(&self) -> bool {
        self.slot
            .as_ref()
            .is_none_or(|slot| matches!(*slot.lock(), State::Done))
    }

    /// Answers the receiver. A receiver that is gone drops the answer (as a
    /// `oneshot` whose receiver was dropped would hand it back, unused).
    pub(crate) fn send(mut self, value: T) {
        self.settle(State::Ready(value));
    }

    /// Puts `outcome` in a slot still waiting and wakes its receiver; a slot already
    /// settled (the receiver left: `Done`) keeps its state and `outcome` is dropped.
    /// Our reference is released before the wake-up, so the woken receiver holds the
    /// only one and can recycle the slot.
    fn settle(&mut self, outcome: State<T>) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let waker = {
            let mut state = slot.lock();
            if let State::Waiting(waker) = &mut *state {
                let waker = waker.take();
                *state = outcome;
                waker
            } else {
                None
            }
        };
        drop(slot);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.settle(State::Closed);
    }
}

/// Resolves to the answer, or to [`Closed`] when the sender was dropped unanswered.
pub(crate) struct Receiver<T> {
    slot: Option<Arc<Slot<T>>>,
    pool: Arc<SlotPool<T>>,
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("reply::Receiver").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Puts the slot back when no one else holds it (the sender answered or closed
    /// and released its reference).
    fn recycle(&mut self) {
        if let Some(slot) = self.slot.take()
            && Arc::strong_count(&slot) == 1
        {
            *slot.lock() = State::Waiting(None);
            self.pool.put_back(slot);
        }
    }
}

impl<T> Receiver<T> {
    /// Gives up the answer without waiting for it (the caller got it another way):
    /// the sender's drop then wakes no one. Polling afterwards gives [`Closed`].
    pub(crate) fn close(&mut self) {
        if let Some(slot) = &self.slot {
            let mut state = slot.lock();
            if matches!(*state, State::Waiting(_)) {
                *state = State::Done;
            }
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(slot) = &this.slot else {
            // Polled after it resolved.
            return Poll::Ready(Err(Closed));
        };
        let out = {
            let mut state = slot.lock();
            match std::mem::replace(&mut *state, State::Done) {
                State::Ready(value) => Ok(value),
                State::Closed | State::Done => Err(Closed),
                State::Waiting(waker) => {
                    let waker = match waker {
                        Some(w) if w.will_wake(cx.waker()) => w,
                        _ => cx.waker().clone(),
                    };
                    *state = State::Waiting(Some(waker));
                    return Poll::Pending;
                }
            }
        };
        this.recycle();
        Poll::Ready(out)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            // Gone before the answer: forget the waker; a later answer is dropped with
            // the slot's last reference. Answered but not taken: drop the answer.
            let mut state = slot.lock();
            if matches!(*state, State::Waiting(_) | State::Ready(_)) {
                *state = State::Done;
            }
        }
        self.recycle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_and_recycles_the_slot() {
        let pool = Arc::new(SlotPool::<u32>::default());
        let (tx, rx) = pool.channel();
        tx.send(7);
        assert_eq!(rx.await, Ok(7));
        assert_eq!(pool.free_len(), 1, "the slot went back to the pool");
        // The next channel reuses it, clean.
        let (tx, rx) = pool.channel();
        assert_eq!(pool.free_len(), 0);
        tx.send(8);
        assert_eq!(rx.await, Ok(8));
        assert_eq!(pool.free_len(), 1);
    }

    #[tokio::test]
    async fn a_sender_dropped_unanswered_closes_the_receiver() {
        let pool = Arc::new(SlotPool::<u32>::default());
        let (tx, rx) = pool.channel();
        let waiter = tokio::spawn(rx);
        tokio::task::yield_now().await;
        drop(tx);
        assert_eq!(waiter.await.unwrap(), Err(Closed));
        assert_eq!(pool.free_len(), 1, "a closed slot is recycled too");
    }

    #[tokio::test]
    async fn an_answer_after_the_receiver_left_is_dropped_and_nothing_leaks() {
        let pool = Arc::new(SlotPool::<Arc<()>>::default());
        let token = Arc::new(());
        let (tx, rx) = pool.channel();
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed(), "the sender sees that the caller gave up");
        tx.send(token.clone());
        assert_eq!(Arc::strong_count(&token), 1, "the late answer was dropped");
        // The slot was still referenced by the sender when the receiver left: freed,
        // not pooled (nobody could reset it safely then).
        assert_eq!(pool.free_len(), 0);
        // An answered, never-polled receiver drops its answer too.
        let (tx, rx) = pool.channel();
        tx.send(token.clone());
        drop(rx);
        assert_eq!(Arc::strong_count(&token), 1);
        assert_eq!(pool.free_len(), 1);
    }

    #[tokio::test]
    async fn the_waiting_task_is_woken_by_the_answer() {
        let pool = Arc::new(SlotPool::<&'static str>::default());
        let (tx, rx) = pool.channel();
        let waiter = tokio::spawn(rx);
        tokio::task::yield_now().await;
        std::thread::spawn(move || tx.send("from another thread"))
            .join()
            .unwrap();
        assert_eq!(waiter.await.unwrap(), Ok("from another thread"));
    }

    #[test]
    fn the_pool_is_bounded() {
        let pool = Arc::new(SlotPool::<u8>::default());
        let pairs: Vec<_> = (0..POOL_CAP + 10).map(|_| pool.channel()).collect();
        for (tx, mut rx) in pairs {
            tx.send(1);
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            assert_eq!(Pin::new(&mut rx).poll(&mut cx), Poll::Ready(Ok(1)));
        }
        assert_eq!(pool.free_len(), POOL_CAP);
    }
}
