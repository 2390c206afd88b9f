//! Sends with a callback that hold no task while the broker answers.
//!
//! [`Producer::send_with_callback`](crate::Producer::send_with_callback) used to
//! spawn a task per send whose future (about 2.8 KB) lived until the answer came:
//! with 10 000 sends in flight, 28 MB of futures. Here the attempt is made without
//! a task holding it: the send's state (its message, the prepared request data, the
//! permits and the callback, about 500 bytes) waits in the connection as a
//! [`rmq_remoting::OnReply`]. The answer is settled on the connection's driver task
//! by the kernel's own [`Inner::settle_attempt`]: a stored message or a final
//! failure calls the callback there; anything that needs another attempt continues
//! on a task running the kernel's retry loop from where the first attempt left off.
//!
//! When nothing has to wait (route cached, permits free, connection up with room)
//! the first attempt is made at once, on the caller's thread ([`try_send`]).
//! Otherwise a small task ([`send_after_waits`], under 1 KB) waits for the permits,
//! the route and the connection, then detaches the same way and ends. Sends with
//! send hooks, RPC hooks or auto-batching take the ordinary path (a task around
//! `send_one`), before anything was done to the message.
//!
//! Logging keeps the kernel's `rmq.send` / `rmq.attempt` spans: they are entered
//! while attempt 1 is submitted and again while its answer is settled (not kept in
//! between, which would cost every send in flight a span), and a retry runs under
//! an `rmq.send` span on its task.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use rmq_protocol::message::{Message, MessageQueue};
use rmq_remoting::{OnReply, RemotingError};
use rmq_route::TopicPublishInfo;
use tokio::time::Instant;
use tracing::span::EnteredSpan;
use tracing::{Instrument, error};

use crate::error::SendError;
use crate::kernel::{AttemptResult, Attempts, Mode, Prepared, Step, attempt_span, send_span};
use crate::lifecycle::CallbackGuard;
use crate::options::Target;
use crate::producer::{InFlight, Inner};
use rmq_protocol::message::send_result::SendResult;

/// One send with a callback, from its first attempt on.
pub(crate) struct DetachedSend<F: FnOnce(Result<SendResult, SendError>)> {
    inner: Arc<Inner>,
    message: Message,
    /// The body as it goes on the wire (compressed once) and its sys-flag bits. The
    /// rest of the prepared send (topics, encoded properties, UNIQ_KEY) is derived
    /// from the message when needed, not kept: 176 bytes less per send in flight.
    body: Bytes,
    sys_flag: i32,
    guard: CallbackGuard<F>,
    permit: InFlight,
    started: Instant,
    deadline: Instant,
    retries: u32,
    /// The queue of the attempt in flight (the route it was picked from, 16 bytes
    /// where a copy of the queue took 88), and when it was sent.
    queue: Option<RouteQueue>,
    attempt_started: Instant,
}

/// A queue of a route: the route (shared) and the queue's index in it.
#[derive(Clone)]
struct RouteQueue {
    info: Arc<TopicPublishInfo>,
    index: u32,
}

impl RouteQueue {
    /// `info.queues()[index]`; the constructor checked the index.
    fn get(&self) -> &MessageQueue {
        &self.info.queues()[self.index as usize]
    }
}

/// Sends `message` with `guard`'s callback on the fast path when nothing has to
/// wait; hands both back untouched otherwise.
#[allow(
    clippy::result_large_err,
    reason = "handed back only on the slow path, to be moved into a task"
)]
pub(crate) fn try_send<F>(
    inner: &Arc<Inner>,
    message: Message,
    guard: CallbackGuard<F>,
) -> Result<(), (Message, CallbackGuard<F>)>
where
    F: FnOnce(Result<SendResult, SendError>) + Send + 'static,
{
    if !applies(inner) {
        return Err((message, guard));
    }
    let Some(info) = inner.routes.get_cached(&inner.wire_topic(message.topic())) else {
        return Err((message, guard));
    };
    // An invalid message is reported by the ordinary path, which checks it again.
    if inner.check(&message).is_err() {
        return Err((message, guard));
    }
    let Some(permit) = inner.try_admit(message.body().len()) else {
        return Err((message, guard));
    };
    let started = Instant::now();
    let deadline = started + inner.config.send_timeout;
    if let Some((send, prepared)) =
        DetachedSend::prepare(inner, started, deadline, message, guard, permit)
    {
        send.first_attempt(&prepared, info);
    }
    Ok(())
}

/// Whether callback sends of this producer can wait in the connection: not with
/// send hooks (their context borrows from the attempt), auto-batching (the
/// accumulator owns the send) or RPC hooks (they run on the awaiting path only).
pub(crate) fn applies(inner: &Inner) -> bool {
    inner.auto_batch.is_none() && inner.hooks.is_empty() && !inner.pool.has_hooks()
}

/// The slow path of a callback send: waits (in a small task, not holding the
/// kernel's send future) for the route, the permits and the connection, then makes
/// the first attempt detached and ends. Any failure on the way is left to the
/// kernel's retry loop, which reports it as an ordinary send would.
///
/// Kept small on purpose: at start-up every send in flight waits here for the
/// route at once. A plain `fn` returning an `async move` block (an `async fn`
/// would keep its arguments twice); the send's own state is built in a plain
/// function and only a cold connection's wait is boxed.
#[allow(
    clippy::manual_async_fn,
    reason = "an `async fn` would store the arguments twice per send waiting"
)]
pub(crate) fn send_after_waits<F>(
    inner: Arc<Inner>,
    message: Message,
    guard: CallbackGuard<F>,
) -> impl Future<Output = ()> + Send
where
    F: FnOnce(Result<SendResult, SendError>) + Send + 'static,
{
    async move {
        let started = Instant::now();
        let deadline = started + inner.config.send_timeout;
        if let Err(e) = inner.check(&message) {
            return finish(&inner, started, message, guard, None, Err(e));
        }
        // Errors are left to the retry loop (after the permits), which reports them.
        let info = inner
            .route(&inner.wire_topic(message.topic()), deadline)
            .await
            .ok();
        let permit = match inner.admit(message.body().len(), deadline, true).await {
            Ok(p) => p,
            Err(e) => return finish(&inner, started, message, guard, None, Err(e)),
        };
        let waits = start(&inner, started, deadline, message, guard, permit, info);
        if let Some(connect_then_send) = waits {
            connect_then_send.await;
        }
    }
}

/// What is left of a send that waits for its broker's connection.
type ConnectThenSend = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Stamps and prepares the message and makes attempt 1 detached; returns the wait
/// for the connection when it is not up yet. Without a route or a queue, the send
/// continues in the retry loop on a task.
fn start<F>(
    inner: &Arc<Inner>,
    started: Instant,
    deadline: Instant,
    message: Message,
    guard: CallbackGuard<F>,
    permit: InFlight,
    info: Option<Arc<rmq_route::TopicPublishInfo>>,
) -> Option<ConnectThenSend>
where
    F: FnOnce(Result<SendResult, SendError>) + Send + 'static,
{
    let (send, prepared) = DetachedSend::prepare(inner, started, deadline, message, guard, permit)?;
    let Some((queue, addr)) = info.and_then(|info| send.pick(info)) else {
        send.continue_on_task(Attempts::default());
        return None;
    };
    let request = inner.request_for(&prepared, queue.get());
    let send = match send.try_attempt(queue, &addr, request) {
        Ok(()) => return None,
        Err(send) => send,
    };
    Some(Box::pin(async move {
        let inner = send.inner.clone();
        let Some(queue) = send.queue.clone() else {
            return send.continue_on_task(Attempts::default());
        };
        let attempt_deadline = inner.attempt_deadline(
            Instant::now(),
            send.deadline,
            1,
            send.retries.saturating_add(1),
        );
        match inner.pool.connection(&addr, attempt_deadline).await {
            Ok(_) => {
                let request = inner.request_for(&prepared, queue.get());
                if let Err(send) = send.try_attempt(queue, &addr, request) {
                    send.continue_on_task(Attempts::default());
                }
            }
            Err(_) => send.continue_on_task(Attempts::default()),
        }
    }))
}

impl<F> DetachedSend<F>
where
    F: FnOnce(Result<SendResult, SendError>) + Send + 'static,
{
    /// Stamps and prepares `message` for the wire; a failure (an invalid property)
    /// ends the send here, calling back with the message handed back. The prepared
    /// form is returned for attempt 1's request, not kept.
    fn prepare(
        inner: &Arc<Inner>,
        started: Instant,
        deadline: Instant,
        mut message: Message,
        guard: CallbackGuard<F>,
        permit: InFlight,
    ) -> Option<(Self, Prepared)> {
        match inner
            .stamp(&mut message)
            .and_then(|msg_id| inner.prepare(&message, msg_id))
        {
            Ok(prepared) => Some((
                Self {
                    inner: inner.clone(),
                    message,
                    body: prepared.body.clone(),
                    sys_flag: prepared.sys_flag,
                    guard,
                    permit,
                    started,
                    deadline,
                    retries: inner.config.retries,
                    queue: None,
                    attempt_started: started,
                },
                prepared,
            )),
            Err(e) => {
                finish(inner, started, message, guard, Some(permit), Err(e));
                None
            }
        }
    }

    /// The queue and broker address of attempt 1 (the kernel's own choice).
    fn pick(&self, info: Arc<TopicPublishInfo>) -> Option<(RouteQueue, String)> {
        let index = self.inner.pick_auto(&info, None).ok()?;
        let index = u32::try_from(index).ok()?;
        let addr = info
            .broker_addr(&info.queues().get(index as usize)?.broker_name)
            .map(|a| self.inner.broker_addr(a).into_owned())?;
        Some((RouteQueue { info, index }, addr))
    }

    /// Sends attempt 1 (`prepared`) detached, or (no queue, no master address,
    /// connection not up or full) hands the whole send to the retry loop on a task.
    fn first_attempt(self, prepared: &Prepared, info: Arc<TopicPublishInfo>) {
        match self.pick(info) {
            Some((queue, addr)) => self.attempt(prepared, queue, &addr),
            None => self.continue_on_task(Attempts::default()),
        }
    }

    /// Sends attempt 1 to `queue` at `addr`, detached; if the connection cannot
    /// take it at once, the send continues on a task instead.
    fn attempt(self, prepared: &Prepared, queue: RouteQueue, addr: &str) {
        let request = self.inner.request_for(prepared, queue.get());
        if let Err(send) = self.try_attempt(queue, addr, request) {
            send.continue_on_task(Attempts::default());
        }
    }

    /// Sends `request`, attempt 1 to `queue` at `addr`, detached; hands the send
    /// back (with `queue` kept) when the connection is not up or cannot take it
    /// at once.
    #[allow(
        clippy::result_large_err,
        reason = "the send itself comes back, to be moved on; boxing it would allocate"
    )]
    fn try_attempt(
        mut self,
        queue: RouteQueue,
        addr: &str,
        request: rmq_protocol::RemotingCommand,
    ) -> Result<(), Self> {
        let inner = self.inner.clone();
        let now = Instant::now();
        let attempt_deadline =
            inner.attempt_deadline(now, self.deadline, 1, self.retries.saturating_add(1));
        let msg_id = self.message.uniq_key().unwrap_or_default();
        let _spans = self.enter_spans(msg_id, queue.get(), tracing::field::Empty);
        self.queue = Some(queue);
        self.attempt_started = now;
        inner
            .pool
            .try_invoke_detached(addr, request, attempt_deadline, self)
            .map_err(|back| back.on_reply)
    }

    /// Enters the kernel's `rmq.send` and `rmq.attempt` spans for attempt 1 (to
    /// `queue`), while it is submitted or its answer settled. Not kept in between: a
    /// span is 40 bytes more per send in flight; the fields tell the two apart.
    fn enter_spans(
        &self,
        msg_id: &str,
        queue: &MessageQueue,
        opaque: impl tracing::Value,
    ) -> (EnteredSpan, EnteredSpan) {
        let topic = self.message.topic();
        let send = send_span(topic, msg_id).entered();
        let attempt = attempt_span(topic, queue, 1, opaque).entered();
        // Exited inner first (a tuple drops its first element first).
        (attempt, send)
    }

    /// The message's UNIQ_KEY, which `prepare` stamped (inline: 32 characters).
    fn msg_id(&self) -> rmq_protocol::FieldValue {
        self.message.uniq_key().unwrap_or_default().into()
    }

    /// The prepared send again, for attempts after the first: the kept wire body,
    /// the rest derived from the message as `prepare` did (no second compression).
    fn prepared(&self) -> Result<Prepared, SendError> {
        self.inner.prepare_wire(&self.message, self.msg_id(), || {
            (self.body.clone(), self.sys_flag)
        })
    }

    /// Ends the send with `result` (see [`finish`]).
    fn end(self, result: Result<SendResult, SendError>) {
        let Self {
            inner,
            message,
            guard,
            permit,
            started,
            ..
        } = self;
        finish(&inner, started, message, guard, Some(permit), result);
    }

    /// Runs the kernel's retry loop from `st` on a task, then calls back.
    fn continue_on_task(self, st: Attempts) {
        // The answer may come while the runtime shuts down (its driver dropped with
        // the request pending): with no runtime left, the send ends here; a task
        // spawned during shutdown is dropped, and its guard reports `Shutdown`.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.end(Err(SendError::new(
                crate::error::SendErrorKind::Shutdown,
                crate::error::Delivery::Indeterminate,
                "the runtime shut down before the send completed",
            )));
        };
        runtime.spawn(async move {
            let prepared = self.prepared();
            let Self {
                inner,
                message,
                guard,
                permit,
                started,
                deadline,
                retries,
                ..
            } = self;
            let prepared = match prepared {
                Ok(p) => p,
                Err(e) => return finish(&inner, started, message, guard, Some(permit), Err(e)),
            };
            let target = Target::Auto;
            let span = send_span(message.topic(), &prepared.msg_id);
            let result = inner
                .deliver(
                    &prepared,
                    Some(&message),
                    &target,
                    Mode::Auto,
                    retries,
                    deadline,
                    st,
                )
                .instrument(span)
                .await
                .map(|d| d.result);
            finish(&inner, started, message, guard, Some(permit), result);
        });
    }
}

impl<F> OnReply for DetachedSend<F>
where
    F: FnOnce(Result<SendResult, SendError>) + Send + 'static,
{
    /// The answer of attempt 1, on the connection's driver task: settled by the
    /// kernel; a result or a final failure calls back here, another attempt
    /// continues on a task.
    fn on_reply(mut self, answer: Result<rmq_protocol::RemotingCommand, RemotingError>) {
        let latency = self.attempt_started.elapsed();
        let Some(queue) = self.queue.take() else {
            // Never sent without a queue; start over rather than guess.
            return self.continue_on_task(Attempts::default());
        };
        let mut st = Attempts::default();
        st.attempt = 1;
        // Looked up once: for the spans and the result.
        let msg_id = self.msg_id();
        let opaque = answer.as_ref().ok().map(|r| r.opaque);
        let spans = self.enter_spans(&msg_id, queue.get(), opaque);
        let outcome = AttemptResult {
            latency,
            response: answer.map(Some),
        };
        let step = self.inner.settle_attempt(
            &msg_id,
            self.message.topic_value(),
            queue.get(),
            None,
            Mode::Auto,
            self.retries.saturating_add(1),
            self.deadline,
            outcome,
            &mut st,
        );
        // The callback runs outside the send's spans, as on the kernel's path.
        drop(spans);
        let result = match step {
            Step::Done(result) => Ok(result),
            Step::Fail(e) => Err(e),
            Step::GiveUp => self.inner.give_up(st, self.deadline).map(|d| d.result),
            Step::Next => return self.continue_on_task(st),
        };
        self.end(result);
    }
}

/// Ends a send: releases its permits, counts it, hands the message back on failure
/// and calls back. A panicking callback is logged, not propagated: it may run on a
/// connection's driver task, which serves every other request on the connection.
fn finish<F>(
    inner: &Inner,
    started: Instant,
    message: Message,
    guard: CallbackGuard<F>,
    permit: Option<InFlight>,
    result: Result<SendResult, SendError>,
) where
    F: FnOnce(Result<SendResult, SendError>),
{
    drop(permit);
    let result = match result {
        Ok(r) => {
            inner.stats.record_ok(started.elapsed());
            Ok(r)
        }
        Err(e) => {
            inner.stats.record_failure(e.kind());
            Err(e.with_message(message))
        }
    };
    if std::panic::catch_unwind(AssertUnwindSafe(|| guard.call(result))).is_err() {
        error!("a send callback panicked; the panic was caught and the send is complete");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a callback send holds while in flight is this state (plus the callback's
    /// own captures and the connection's 24-byte wrapper): memory per send in flight,
    /// issue #9. Measured 272 bytes with a plain `fn` callback (448 while it kept
    /// the whole prepared send besides the message, 504 when it also kept a copy of
    /// its queue); a field added here is paid by every send in flight: keep it
    /// small, or raise the bound knowingly.
    #[test]
    fn the_state_of_a_send_in_flight_stays_small() {
        type Callback = fn(Result<SendResult, SendError>);
        let size = std::mem::size_of::<DetachedSend<Callback>>();
        println!("DetachedSend: {size} bytes");
        assert!(size <= 280, "DetachedSend grew to {size} bytes (bound 280)");
    }
}
