//! Sends with a callback that hold no task while the broker answers.
//!
//! [`Producer::send_with_callback`](crate::Producer::send_with_callback) used to
//! spawn a task per send whose future (about 2.8 KB) lived until the answer came:
//! with 10 000 sends in flight, 28 MB of futures. Here the first attempt is made
//! at once, without waiting for anything, and the send's state (its message, the
//! prepared request data, the permits and the callback, about 500 bytes) waits in
//! the connection as a [`rmq_remoting::OnReply`]. The answer is settled on the
//! connection's driver task by the kernel's own [`Inner::settle_attempt`]: a stored
//! message or a final failure calls the callback there; anything that needs
//! another attempt continues on a task running the kernel's retry loop from where
//! the first attempt left off.
//!
//! The fast path applies when nothing would have to wait: the route is cached,
//! the in-flight permits are free, the connection to the broker is up and has
//! room, and there are no send hooks, RPC hooks or auto-batching. Otherwise the
//! send takes the ordinary path (a task around `send_one`), before anything was
//! done to the message; once permits are taken, every later fallback continues
//! the same send on a task instead.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use rmq_protocol::message::{Message, MessageQueue};
use rmq_remoting::{OnReply, RemotingError};
use tokio::time::Instant;
use tracing::error;

use crate::error::SendError;
use crate::kernel::{AttemptResult, Attempts, Mode, Prepared, Step};
use crate::lifecycle::CallbackGuard;
use crate::options::Target;
use crate::producer::{InFlight, Inner};
use rmq_protocol::message::send_result::SendResult;

/// One send with a callback, from its first attempt on.
pub(crate) struct DetachedSend<F: FnOnce(Result<SendResult, SendError>)> {
    inner: Arc<Inner>,
    message: Message,
    prepared: Prepared,
    guard: CallbackGuard<F>,
    permit: InFlight,
    started: Instant,
    deadline: Instant,
    retries: u32,
    /// The queue of the attempt in flight, and when it was sent.
    queue: Option<MessageQueue>,
    attempt_started: Instant,
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
    if inner.auto_batch.is_some() || !inner.hooks.is_empty() {
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
    let mut message = message;
    let prepared = match inner
        .stamp(&mut message)
        .and_then(|msg_id| inner.prepare(&message, msg_id))
    {
        Ok(p) => p,
        Err(e) => {
            finish(inner, started, message, guard, permit, Err(e));
            return Ok(());
        }
    };
    let send = DetachedSend {
        inner: inner.clone(),
        message,
        prepared,
        guard,
        permit,
        started,
        deadline,
        retries: inner.config.retries,
        queue: None,
        attempt_started: started,
    };
    send.first_attempt(&info);
    Ok(())
}

impl<F> DetachedSend<F>
where
    F: FnOnce(Result<SendResult, SendError>) + Send + 'static,
{
    /// Sends attempt 1 detached, or (no queue, no master address, connection not
    /// up or full) hands the whole send to the retry loop on a task.
    fn first_attempt(mut self, info: &rmq_route::TopicPublishInfo) {
        let inner = self.inner.clone();
        let picked = inner
            .pick_queue(info, &Target::Auto, Some(&self.message), &mut None, None)
            .ok()
            .map(|q| (*q).clone());
        let Some(queue) = picked else {
            return self.continue_on_task(Attempts::default());
        };
        let Some(addr) = info
            .broker_addr(&queue.broker_name)
            .map(|a| inner.broker_addr(a))
        else {
            return self.continue_on_task(Attempts::default());
        };
        let now = Instant::now();
        let attempt_deadline =
            inner.attempt_deadline(now, self.deadline, 1, self.retries.saturating_add(1));
        let request = inner.request_for(&self.prepared, &queue);
        self.queue = Some(queue);
        self.attempt_started = now;
        if let Err(back) = inner
            .pool
            .try_invoke_detached(&addr, request, attempt_deadline, self)
        {
            // Not sent: the request is dropped and the send starts over on a task.
            let mut send = back.on_reply;
            send.queue = None;
            send.continue_on_task(Attempts::default());
        }
    }

    /// Runs the kernel's retry loop from `st` on a task, then calls back.
    fn continue_on_task(self, st: Attempts) {
        tokio::spawn(async move {
            let Self {
                inner,
                message,
                prepared,
                guard,
                permit,
                started,
                deadline,
                retries,
                ..
            } = self;
            let target = Target::Auto;
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
                .await
                .map(|d| d.result);
            finish(&inner, started, message, guard, permit, result);
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
        let outcome = AttemptResult {
            latency,
            response: answer.map(Some),
        };
        let step = self.inner.settle_attempt(
            &self.prepared,
            &queue,
            None,
            Mode::Auto,
            self.retries.saturating_add(1),
            self.deadline,
            outcome,
            &mut st,
        );
        let result = match step {
            Step::Done(result) => Ok(result),
            Step::Fail(e) => Err(e),
            Step::GiveUp => self.inner.give_up(st, self.deadline).map(|d| d.result),
            Step::Next => return self.continue_on_task(st),
        };
        let Self {
            inner,
            message,
            guard,
            permit,
            started,
            ..
        } = self;
        finish(&inner, started, message, guard, permit, result);
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
    permit: InFlight,
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
