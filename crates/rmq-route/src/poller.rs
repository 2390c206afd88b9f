//! The route poller: a task that runs [`RouteCache::poll_once`] periodically.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::debug;

use crate::cache::RouteCache;
use crate::error::RouteError;

impl RouteCache {
    /// Starts a task that calls [`poll_once`](Self::poll_once) every `interval`
    /// (first after one interval: [`get`](Self::get) fetches on first use). The task
    /// stops when the returned handle is dropped or [`stopped`](PollerHandle::stop),
    /// or when every clone of the cache is gone.
    ///
    /// # Errors
    ///
    /// [`RouteError::NoRuntime`] when not called within a Tokio runtime.
    pub fn spawn_poller(&self, interval: Duration) -> Result<PollerHandle, RouteError> {
        let (stop, stop_rx) = watch::channel(false);
        let task = self.spawn_poller_until(interval, stop_rx)?;
        Ok(PollerHandle { stop, task })
    }

    /// [`spawn_poller`](Self::spawn_poller) with
    /// [`poll_interval`](crate::RouteCacheConfig::poll_interval).
    ///
    /// # Errors
    ///
    /// [`RouteError::NoRuntime`] when not called within a Tokio runtime.
    pub fn spawn_default_poller(&self) -> Result<PollerHandle, RouteError> {
        self.spawn_poller(self.config().poll_interval)
    }

    /// Starts the poller with a shutdown signal owned by the caller: the task ends
    /// when `stop` holds `true` or its sender is dropped (a poll in progress is
    /// abandoned), or when every clone of the cache is gone.
    ///
    /// # Errors
    ///
    /// [`RouteError::NoRuntime`] when not called within a Tokio runtime.
    pub fn spawn_poller_until(
        &self,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, RouteError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RouteError::NoRuntime)?;
        let interval = interval.max(Duration::from_millis(1));
        let weak = self.downgrade();
        Ok(runtime.spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                if *stop.borrow_and_update() {
                    break;
                }
                tokio::select! {
                    // biased: a fixed polling order keeps seeded runs reproducible
                    biased;
                    changed = stop.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    _ = ticker.tick() => {
                        let Some(cache) = weak.upgrade() else { break };
                        tokio::select! {
                            // biased: a fixed polling order keeps seeded runs reproducible
                            biased;
                            changed = stop.changed() => {
                                if changed.is_err() {
                                    break;
                                }
                            }
                            _ = cache.poll_once() => {}
                        }
                    }
                }
            }
            debug!("route poller stopped");
        }))
    }
}

/// The route poller's task ([`RouteCache::spawn_poller`]): dropping the handle
/// stops it.
#[derive(Debug)]
pub struct PollerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PollerHandle {
    /// Asks the task to stop (a poll in progress is abandoned); returns at once.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the task and waits until it has ended.
    pub async fn shutdown(self) {
        self.stop();
        // A panic in the task cannot happen (nothing in it panics); a join error
        // only means it is gone, which is what was asked.
        let _ = self.task.await;
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}
