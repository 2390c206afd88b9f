//! Background work and shutdown: route polling, heartbeats, the detector, closing connections to
//! brokers that left every route, `close(deadline)`, and the exactly-once callback
//! guard.
//!
//! Background tasks hold only a `Weak` reference to the producer and a stop
//! signal, so dropping every `Producer` handle without `close` ends them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rmq_protocol::header::heartbeat::HeartbeatData;
use rmq_protocol::header::unregister_client::UnregisterClientRequestHeader;
use rmq_protocol::message::send_result::SendResult;
use rmq_protocol::{RemotingCommand, RequestCode};
use rmq_route::RouteEvent;
use tokio::time::Instant;
use tracing::debug;

use crate::error::{Delivery, SendError, SendErrorKind};
use crate::producer::{Inner, Producer};

/// How often isolated brokers are probed (Java's detector: 3 s).
const DETECT_INTERVAL: Duration = Duration::from_secs(3);

/// Timeout of one probe (Java's `detectTimeout`: 200 ms).
const DETECT_TIMEOUT: Duration = Duration::from_millis(200);

/// The inner producer group every Java client also registers.
const CLIENT_INNER_PRODUCER: &str = "CLIENT_INNER_PRODUCER";

pub(crate) fn spawn_background(inner: &Arc<Inner>) -> Result<(), String> {
    let poller = inner
        .routes
        .spawn_poller(inner.config.route_poll_interval)
        .map_err(|e| format!("cannot start the route poller: {e}"))?;
    let mut stop = inner.stop.subscribe();
    tokio::spawn(async move {
        // Ends when close() signals or the producer is dropped (sender gone).
        let _ = stop.wait_for(|s| *s).await;
        poller.stop();
    });

    let weak = Arc::downgrade(inner);
    let mut stop = inner.stop.subscribe();
    let interval = inner.config.heartbeat_interval;
    tokio::spawn(async move {
        let mut next = Instant::now() + Duration::from_secs(1).min(interval);
        loop {
            tokio::select! {
                // biased: a fixed polling order keeps seeded runs reproducible
                biased;
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            inner.heartbeat_all().await;
            next = Instant::now() + interval;
        }
    });

    // Detector: probe isolated or unreachable brokers (GET_MAX_OFFSET, 200 ms) every
    // 3 s and tell the fault strategy, which may bring them back earlier.
    let weak = Arc::downgrade(inner);
    let mut stop = inner.stop.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                // biased: a fixed polling order keeps seeded runs reproducible
                biased;
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(DETECT_INTERVAL) => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            inner.detect().await;
        }
    });

    let weak: Weak<Inner> = Arc::downgrade(inner);
    let mut events = inner.routes.subscribe();
    let mut stop = inner.stop.subscribe();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                // biased: a fixed polling order keeps seeded runs reproducible
                biased;
                _ = stop.wait_for(|s| *s) => return,
                e = events.recv() => e,
            };
            match event {
                Ok(RouteEvent::BrokersRemoved { addrs }) => {
                    let Some(inner) = weak.upgrade() else { return };
                    for addr in addrs {
                        debug!(%addr, "broker left every route; closing its connection");
                        inner.pool.close(&addr);
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(())
}

impl Inner {
    /// Master addresses of every broker in the cached routes.
    fn known_brokers(&self) -> Vec<String> {
        let mut addrs: Vec<String> = self
            .routes
            .topics()
            .iter()
            .filter_map(|t| self.routes.cached(t))
            .flat_map(|info| {
                info.brokers()
                    .map(|(_, addr)| addr.to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// Probes the brokers the fault strategy wants checked and reports the results.
    pub(crate) async fn detect(&self) {
        let wanted = self.fault.brokers_to_probe(crate::kernel::fault_now());
        if wanted.is_empty() {
            return;
        }
        let mut targets = Vec::new();
        let mut topic = None;
        for t in self.routes.topics() {
            if let Some(info) = self.routes.cached(&t) {
                for (name, addr) in info.brokers() {
                    if wanted.iter().any(|w| w == name)
                        && !targets.iter().any(|(n, _): &(String, String)| n == name)
                    {
                        targets.push((name.to_owned(), self.broker_addr(addr).into_owned()));
                        topic.get_or_insert_with(|| t.clone());
                    }
                }
            }
        }
        let Some(topic) = topic else { return };
        let results =
            rmq_route::detector::probe_all(&self.pool, &targets, &topic, DETECT_TIMEOUT).await;
        let now = crate::kernel::fault_now();
        for (broker, reachable) in results {
            debug!(%broker, reachable, "detector probe");
            self.fault.on_probe(&broker, reachable, now);
        }
    }

    /// Sends a heartbeat to every known master (Java: every 30 s). Failures are
    /// logged; the next round tries again.
    pub(crate) async fn heartbeat_all(&self) {
        let body = HeartbeatData::for_producers(
            self.identity.client_id.clone(),
            [self.group.as_str(), CLIENT_INNER_PRODUCER],
        )
        .to_json_bytes();
        let body = bytes::Bytes::from(body);
        let calls = self.known_brokers().into_iter().map(|addr| {
            let mut cmd = RemotingCommand::request(RequestCode::HEART_BEAT).body(body.clone());
            cmd.serialize_type = self.header_format;
            cmd.language = rmq_protocol::LanguageCode::RUST;
            let pool = self.pool.clone();
            let timeout = self.config.control_timeout;
            tokio::spawn(async move {
                let deadline = Instant::now() + timeout;
                if let Err(e) = pool.invoke_at(&addr, cmd, deadline).await {
                    debug!(%addr, error = %e, "heartbeat failed");
                }
            })
        });
        for call in calls.collect::<Vec<_>>() {
            let _ = call.await;
        }
    }

    async fn unregister_all(&self, deadline: Instant) {
        let header = UnregisterClientRequestHeader::for_producer(
            self.identity.client_id.clone(),
            self.group.clone(),
        );
        let calls = self.known_brokers().into_iter().map(|addr| {
            let cmd = RemotingCommand::with_header(RequestCode::UNREGISTER_CLIENT, &header)
                .serialize_type(self.header_format);
            let pool = self.pool.clone();
            let deadline = deadline.min(Instant::now() + self.config.control_timeout);
            tokio::spawn(async move {
                if let Err(e) = pool.invoke_at(&addr, cmd, deadline).await {
                    debug!(%addr, error = %e, "unregister failed");
                }
            })
        });
        for call in calls.collect::<Vec<_>>() {
            let _ = call.await;
        }
    }
}

/// What [`Producer::close`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// Sends in flight when `close` was called.
    pub in_flight_at_close: usize,
    /// Of those, sends still in flight at the deadline; they fail with
    /// [`SendErrorKind::Shutdown`] or a transport error (their futures resolve).
    pub abandoned: usize,
    /// Auto-batched messages queued or in unanswered batches when `close` was
    /// called; `close` sends the open batches at once.
    pub batched_at_close: usize,
    /// Of those, messages whose batch failed or had no answer by the deadline; each
    /// sender gets the error with its message handed back (an unanswered batch fails
    /// when the connections close).
    pub batched_unsent: usize,
}

impl Producer {
    /// Stops intake (new sends fail with [`SendErrorKind::Shutdown`]), sends the open
    /// auto-batches at once, waits until the sends and batches in flight finish or
    /// `deadline` passes, unregisters from the brokers,
    /// stops the background tasks and closes every connection.
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
    /// use rmq_producer::{Message, SendErrorKind};
    /// let report = producer.close(Duration::from_secs(5)).await;
    /// assert_eq!(report.abandoned, 0);
    /// let err = producer.send(Message::new("TopicTest", "too late")).await.unwrap_err();
    /// assert_eq!(err.kind(), SendErrorKind::Shutdown);
    /// # Ok(()) }
    /// ```
    pub async fn close(&self, deadline: Duration) -> CloseReport {
        let inner = &self.inner;
        let deadline = Instant::now() + deadline;
        inner.closed.store(true, Ordering::Release);
        let in_flight_at_close = inner.in_flight();
        let batches = inner
            .auto_batch
            .as_ref()
            .map(|acc| (acc, crate::accumulator::close(inner, acc, deadline)));
        let batched = || batches.map_or(0, |(acc, _)| acc.pending());
        while (inner.in_flight() > 0 || batched() > 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let abandoned = inner.in_flight();
        let batched_at_close = batches.map_or(0, |(_, mark)| mark.queued);
        let batched_unsent = batches.map_or(0, |(acc, mark)| acc.unsent_since(mark));
        inner.unregister_all(deadline).await;
        let _ = inner.stop.send(true);
        inner.pool.close_all();
        CloseReport {
            in_flight_at_close,
            abandoned,
            batched_at_close,
            batched_unsent,
        }
    }
}

/// Calls its callback exactly once: with the result, or with a `Shutdown` error if
/// dropped first (the task was cancelled, e.g. the runtime shut down). The callback
/// is held inline (no box per send).
pub(crate) struct CallbackGuard<F: FnOnce(Result<SendResult, SendError>)>(Option<F>);

impl<F: FnOnce(Result<SendResult, SendError>)> CallbackGuard<F> {
    pub(crate) fn new(f: F) -> Self {
        Self(Some(f))
    }

    pub(crate) fn call(mut self, result: Result<SendResult, SendError>) {
        if let Some(f) = self.0.take() {
            f(result);
        }
    }
}

impl<F: FnOnce(Result<SendResult, SendError>)> Drop for CallbackGuard<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(SendError::new(
                SendErrorKind::Shutdown,
                Delivery::Indeterminate,
                "the send was cancelled before it completed (runtime or task shut down)",
            )));
        }
    }
}
