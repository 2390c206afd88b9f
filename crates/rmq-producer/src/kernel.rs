//! The send kernel: one retry engine for every mode.
//!
//! A [`Prepared`] send (validated, UNIQ_KEY set, body compressed once) goes through
//! [`Inner::deliver`]: pick a queue, rebuild the header for the attempt, send
//! through the pool within the attempt's budget, report the latency to the fault
//! strategy, and decide from the outcome whether to retry (another broker for
//! automatic sends; the same queue for pinned ones; only `NotSent` failures for
//! one-way sends). No attempt starts with a spent budget.

use std::time::Duration;

use bytes::Bytes;
use rmq_fault::{AttemptReport, Outcome, select_index};
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2Ref;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::message::MessageQueue;
use rmq_protocol::message::send_result::{SendResult, SendStatus};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{Delivery as WireDelivery, RemotingError};
use rmq_route::{RouteError, TopicPublishInfo};
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span};

use crate::error::{Delivery, SendError, SendErrorKind};
use crate::hook::{self, AttemptContext, AttemptOutcome};
use crate::options::Target;
use crate::producer::Inner;

/// Time kept back for each attempt still allowed, so one black-holed broker cannot
/// eat the whole deadline (decisions.md: per attempt, remaining − reserve × attempts
/// left).
const ATTEMPT_RESERVE: Duration = Duration::from_millis(200);

/// How the queue was chosen, which decides how a failure may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Producer-chosen queue: retry on another broker.
    Auto,
    /// Explicit queue or selector: retry on the same queue only.
    Pinned,
    /// One-way: retry only what was surely not sent; no answer is awaited.
    Oneway,
}

/// A send ready for the wire.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Topic as the user named it (inline when short: no allocation per send).
    pub(crate) topic: rmq_protocol::FieldValue,
    /// Topic on the wire (namespace applied).
    pub(crate) wire_topic: rmq_protocol::FieldValue,
    /// Body on the wire (compressed, or an encoded batch).
    pub(crate) body: Bytes,
    pub(crate) sys_flag: i32,
    pub(crate) flag: i32,
    /// Encoded properties: inline, or one allocation every attempt shares.
    pub(crate) properties: rmq_protocol::FieldValue,
    pub(crate) code: RequestCode,
    pub(crate) batch: bool,
    /// UNIQ_KEY (comma-joined for a batch; inline when short).
    pub(crate) msg_id: rmq_protocol::FieldValue,
}

/// The queue an attempt goes to: borrowed from the route (automatic choice), or a
/// pinned copy (selector, explicit queue). 16 bytes in the send future, where a
/// `Cow<MessageQueue>` took 88.
pub(crate) enum Picked<'i> {
    Route(&'i MessageQueue),
    Owned(Box<MessageQueue>),
}

impl std::ops::Deref for Picked<'_> {
    type Target = MessageQueue;

    fn deref(&self) -> &MessageQueue {
        match self {
            Self::Route(q) => q,
            Self::Owned(q) => q,
        }
    }
}

/// Where a delivery stands between attempts.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    /// Attempts made so far.
    pub(crate) attempt: u32,
    /// Boxed (only selector and explicit-queue sends pin): inline, its 80 bytes
    /// would be held by every send in flight.
    pinned: Option<Box<MessageQueue>>,
    /// The broker of the last failed attempt, avoided by the next automatic pick.
    last_broker: Option<rmq_protocol::FieldValue>,
    last_error: Option<SendError>,
    /// Some attempt may have reached the broker.
    any_written: bool,
    /// The latest attempt stored with a warning status that was retried
    /// (`retry_on_not_stored`): the message is stored, so if the retries fail this
    /// is the outcome, as Java returns its earlier non-OK SendResult. Boxed: rare,
    /// and inline it would add its size to every send in flight.
    stored: Option<Box<SendResult>>,
    /// Wait this long before the next attempt (flow control).
    backoff: Option<Duration>,
}

/// How one attempt went: its latency and the answer (`None` for a one-way send,
/// which gets none), or the transport error.
pub(crate) struct AttemptResult {
    pub(crate) latency: Duration,
    pub(crate) response: Result<Option<RemotingCommand>, RemotingError>,
}

/// What to do after an attempt (see [`Inner::settle_attempt`]).
#[allow(
    clippy::large_enum_variant,
    reason = "a return value, never held across an await: boxing would allocate per send"
)]
pub(crate) enum Step {
    /// Stored: the send's result.
    Done(SendResult),
    /// A failure returned as is, whatever attempts are left.
    Fail(SendError),
    /// Another attempt, if any is left.
    Next,
    /// No more attempts: [`Inner::give_up`].
    GiveUp,
}

/// What one delivery produced.
pub(crate) struct Delivered {
    pub(crate) result: SendResult,
}

/// "Now" for the fault strategy: the runtime's clock (tokio's `Instant`) as a std
/// `Instant`. Latencies are measured on the runtime's clock, so isolation windows
/// must be too: reading `std::time::Instant` here would freeze every window under
/// paused tokio time (tests) while latencies still advance, and mix two clocks.
/// Outside paused time both clocks are the same.
pub(crate) fn fault_now() -> std::time::Instant {
    Instant::now().into_std()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Codes that mean "slow down": retried after a jittered backoff, not at once.
fn is_flow_control(code: ResponseCode) -> bool {
    matches!(code, ResponseCode::SYSTEM_BUSY | ResponseCode::FLOW_CONTROL)
}

fn outcome_of(e: &RemotingError) -> Outcome {
    match e {
        RemotingError::Connect { .. } => Outcome::ConnectError,
        RemotingError::Timeout { .. } => Outcome::Timeout,
        _ => Outcome::TransportError,
    }
}

/// The span of one send (`rmq.send`), on every send path.
pub(crate) fn send_span(topic: &str, uniq_key: &str) -> tracing::Span {
    debug_span!("rmq.send", topic = %topic, uniq_key = %uniq_key)
}

/// The span of one attempt (`rmq.attempt`); `opaque` is `Empty` until the answer
/// names it.
pub(crate) fn attempt_span(
    topic: &str,
    queue: &MessageQueue,
    attempt: u32,
    opaque: impl tracing::Value,
) -> tracing::Span {
    debug_span!(
        "rmq.attempt",
        topic = %topic,
        broker = %queue.broker_name,
        queue = queue.queue_id,
        attempt,
        opaque
    )
}

impl Inner {
    /// The route of a wire topic, as a typed send error on failure.
    pub(crate) async fn route(
        &self,
        wire_topic: &str,
        deadline: Instant,
    ) -> Result<std::sync::Arc<TopicPublishInfo>, SendError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(SendError::new(
                SendErrorKind::Timeout,
                Delivery::NotSent,
                "deadline passed before a route was found",
            ));
        }
        self.routes.get(wire_topic, remaining).await.map_err(|e| {
            let kind = match &e {
                RouteError::TopicNotFound { .. } => SendErrorKind::TopicNotFound,
                RouteError::Timeout { .. } => SendErrorKind::Timeout,
                _ => SendErrorKind::NoRoute,
            };
            SendError::new(
                kind,
                Delivery::NotSent,
                format!("no route for topic {wire_topic}: {e}"),
            )
            .with_source(e)
        })
    }

    /// The automatic choice of a queue (round robin, avoiding `avoid` and brokers the
    /// fault strategy isolates): its index in `info.queues()`.
    pub(crate) fn pick_auto(
        &self,
        info: &TopicPublishInfo,
        avoid: Option<&str>,
    ) -> Result<usize, SendError> {
        let queues = info.queues();
        select_index(
            queues.len(),
            info.next_index(),
            |i| queues[i].broker_name.as_str(),
            self.fault.as_ref(),
            avoid,
            fault_now(),
        )
        .filter(|&i| i < queues.len())
        .ok_or_else(|| {
            SendError::new(
                SendErrorKind::NoRoute,
                Delivery::NotSent,
                format!("topic {} has no writable queue", info.topic()),
            )
        })
    }

    /// Picks the queue of one attempt.
    /// Borrowed from the route for automatic sends (no copy per attempt).
    pub(crate) fn pick_queue<'i>(
        &self,
        info: &'i TopicPublishInfo,
        target: &Target,
        msg: Option<&rmq_protocol::message::Message>,
        pinned: &mut Option<Box<MessageQueue>>,
        avoid: Option<&str>,
    ) -> Result<Picked<'i>, SendError> {
        if let Some(q) = pinned {
            return Ok(Picked::Owned(q.clone()));
        }
        let queues = info.queues();
        let no_queue = || {
            SendError::new(
                SendErrorKind::NoRoute,
                Delivery::NotSent,
                format!("topic {} has no writable queue", info.topic()),
            )
        };
        let chosen = match target {
            Target::Auto => {
                let idx = self.pick_auto(info, avoid)?;
                return queues.get(idx).map(Picked::Route).ok_or_else(no_queue);
            }
            Target::Queue(q) => q.clone(),
            Target::Selector(selector, arg) => {
                let msg = msg.ok_or_else(|| {
                    SendError::new(
                        SendErrorKind::InvalidMessage,
                        Delivery::NotSent,
                        "a selector needs a single message",
                    )
                })?;
                let idx = selector.select(queues, msg, arg).ok_or_else(|| {
                    SendError::new(
                        SendErrorKind::NoRoute,
                        Delivery::NotSent,
                        format!("selector {selector:?} chose no queue"),
                    )
                })?;
                queues.get(idx).cloned().ok_or_else(|| {
                    SendError::new(
                        SendErrorKind::NoRoute,
                        Delivery::NotSent,
                        format!("selector chose queue index {idx} of {}", queues.len()),
                    )
                })?
            }
        };
        let chosen = Box::new(chosen);
        *pinned = Some(chosen.clone());
        Ok(Picked::Owned(chosen))
    }

    /// The deadline of attempt `attempt` (1-based) of `max_attempts`: a reserve is
    /// left for the attempts still allowed, but never so much that this one starves;
    /// capped by `attempt_timeout`.
    pub(crate) fn attempt_deadline(
        &self,
        now: Instant,
        deadline: Instant,
        attempt: u32,
        max_attempts: u32,
    ) -> Instant {
        let left = max_attempts.saturating_sub(attempt);
        let reserve = ATTEMPT_RESERVE.saturating_mul(left);
        let attempt_deadline = if deadline.saturating_duration_since(now) > reserve * 2 {
            deadline - reserve
        } else {
            deadline
        };
        match self.config.attempt_timeout {
            Some(cap) => attempt_deadline.min(now + cap),
            None => attempt_deadline,
        }
    }

    /// The request of one attempt of `p` to `queue`. Its header is written straight
    /// from borrowed fields, in wire form, into the header arena: no owned header is
    /// cloned together and no map is allocated per attempt.
    pub(crate) fn request_for(&self, p: &Prepared, queue: &MessageQueue) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(p.code)
            .serialize_type(self.header_format)
            .body(p.body.clone());
        cmd.ext_fields = self.arena.fields(|w| {
            SendMessageRequestHeaderV2Ref {
                producer_group: &self.group,
                topic: &p.wire_topic,
                default_topic: &self.config.create_topic_key,
                default_topic_queue_nums: i32::try_from(self.config.default_topic_queue_nums)
                    .unwrap_or(4),
                queue_id: queue.queue_id,
                sys_flag: p.sys_flag,
                born_timestamp: now_ms(),
                flag: p.flag,
                properties: Some(&p.properties),
                reconsume_times: Some(0),
                unit_mode: false,
                max_reconsume_times: None,
                batch: p.batch,
                broker_name: Some(&queue.broker_name),
            }
            .write_to(w);
        });
        cmd
    }

    /// Sends `p` until it is stored, rejected, or out of attempts or time, starting
    /// from `st` (a fresh [`Attempts`], or where a callback send's first attempt
    /// left off).
    ///
    /// A plain `fn` returning one `async move` block: an `async fn` would keep its
    /// arguments twice in every send future in flight.
    #[allow(
        clippy::manual_async_fn,
        clippy::too_many_arguments,
        reason = "an `async fn` would store the arguments twice per send in flight"
    )]
    pub(crate) fn deliver<'a>(
        &'a self,
        p: &'a Prepared,
        msg: Option<&'a rmq_protocol::message::Message>,
        target: &'a Target,
        mode: Mode,
        retries: u32,
        deadline: Instant,
        mut st: Attempts,
    ) -> impl Future<Output = Result<Delivered, SendError>> + Send + 'a {
        async move {
            let max_attempts = retries.saturating_add(1);
            while st.attempt < max_attempts {
                if let Some(backoff) = st.backoff.take() {
                    tokio::time::sleep(backoff).await;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st.attempt += 1;
                let attempt = st.attempt;
                let info = match self.route(&p.wire_topic, deadline).await {
                    Ok(info) => info,
                    Err(e) => {
                        st.last_error = Some(e);
                        break;
                    }
                };
                let queue = self.pick_queue(
                    &info,
                    target,
                    msg,
                    &mut st.pinned,
                    st.last_broker.as_deref(),
                )?;
                let Some(addr) = info
                    .broker_addr(&queue.broker_name)
                    .map(|a| self.broker_addr(a))
                else {
                    st.last_error = Some(SendError::new(
                        SendErrorKind::NoRoute,
                        Delivery::NotSent,
                        format!("no master address for broker {}", queue.broker_name),
                    ));
                    st.last_broker = Some(queue.broker_name.clone());
                    continue;
                };
                let attempt_deadline = self.attempt_deadline(now, deadline, attempt, max_attempts);
                let ctx = msg.map(|m| AttemptContext {
                    message: m,
                    queue: &queue,
                    broker_addr: &addr,
                    attempt,
                });
                if let Some(ctx) = &ctx {
                    hook::run_before(&self.hooks, ctx);
                }
                let span = attempt_span(&p.topic, &queue, attempt, tracing::field::Empty);
                let started = Instant::now();
                if attempt > 1 {
                    self.stats.record_retry();
                }
                // The request is a temporary, not a local: a local would be kept in
                // the send future across the `.await`.
                let outcome = if mode == Mode::Oneway {
                    self.pool
                        .invoke_oneway_at(&addr, self.request_for(p, &queue), attempt_deadline)
                        .instrument(span.clone())
                        .await
                        .map(|()| None)
                } else {
                    self.pool
                        .invoke_at(&addr, self.request_for(p, &queue), attempt_deadline)
                        .instrument(span.clone())
                        .await
                        .map(Some)
                };
                if let Ok(Some(response)) = &outcome {
                    // The opaque is assigned by the connection; the answer carries it.
                    span.record("opaque", response.opaque);
                }
                let outcome = AttemptResult {
                    latency: started.elapsed(),
                    response: outcome,
                };
                match self.settle_attempt(
                    &p.msg_id,
                    &p.topic,
                    &queue,
                    ctx.as_ref(),
                    mode,
                    max_attempts,
                    deadline,
                    outcome,
                    &mut st,
                ) {
                    Step::Done(result) => return Ok(Delivered { result }),
                    Step::Fail(err) => return Err(err),
                    Step::Next => {}
                    Step::GiveUp => break,
                }
            }
            self.give_up(st, deadline)
        }
    }

    /// What the outcome of one attempt means: the result, a failure to return as
    /// is, another attempt (after `st.backoff`, if set), or no more attempts. `st`
    /// records what later attempts and [`give_up`](Self::give_up) need.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn settle_attempt(
        &self,
        msg_id: &rmq_protocol::FieldValue,
        topic: &rmq_protocol::FieldValue,
        queue: &MessageQueue,
        ctx: Option<&AttemptContext<'_>>,
        mode: Mode,
        max_attempts: u32,
        deadline: Instant,
        outcome: AttemptResult,
        st: &mut Attempts,
    ) -> Step {
        let AttemptResult { latency, response } = outcome;
        let attempt = st.attempt;
        let now_std = fault_now();
        // `last_broker` is set only where another attempt follows (a success
        // returns): no broker-name copy on the common path.
        let mut response = match response {
            Ok(None) => {
                // One-way: written; there is no answer to wait for.
                self.fault
                    .on_result(&queue.broker_name, AttemptReport::success(latency), now_std);
                return Step::Done(SendResult {
                    status: SendStatus::SendOk,
                    msg_id: msg_id.clone(),
                    offset_msg_id: rmq_protocol::FieldValue::new(),
                    message_queue: MessageQueue::new(topic, &queue.broker_name, queue.queue_id),
                    queue_offset: -1,
                    transaction_id: None,
                    region_id: rmq_protocol::message::send_result::DEFAULT_REGION.into(),
                    trace_on: true,
                    recall_handle: None,
                });
            }
            Ok(Some(response)) => response,
            Err(e) => {
                self.fault.on_result(
                    &queue.broker_name,
                    AttemptReport::new(latency, outcome_of(&e)),
                    now_std,
                );
                let written = e.delivery() == WireDelivery::Indeterminate;
                st.any_written |= written;
                let kind = if e.is_timeout() {
                    SendErrorKind::Timeout
                } else {
                    SendErrorKind::AllBrokersUnavailable
                };
                let err = SendError::new(
                    kind,
                    if written {
                        Delivery::Indeterminate
                    } else {
                        Delivery::NotSent
                    },
                    e.to_string(),
                )
                .with_broker(&queue.broker_name)
                .with_source(e);
                if let Some(ctx) = ctx {
                    hook::run_after(&self.hooks, ctx, &AttemptOutcome::Failed(&err), latency);
                }
                debug!(error = %err, attempt, "attempt failed");
                st.last_error = Some(err);
                st.last_broker = Some(queue.broker_name.clone());
                if mode == Mode::Oneway && written {
                    return Step::GiveUp; // a one-way request may have been processed: never resend it
                }
                return Step::Next;
            }
        };
        let code = response.response_code();
        if let Some(status) = SendStatus::from_response_code(code) {
            self.fault
                .on_result(&queue.broker_name, AttemptReport::success(latency), now_std);
            // The response is consumed here: move its strings, do not copy them.
            let header = match SendMessageResponseHeader::take_from(&mut response.ext_fields) {
                Ok(h) => h,
                Err(e) => {
                    let err = SendError::new(
                        SendErrorKind::MalformedResponse,
                        Delivery::Indeterminate,
                        format!(
                            "broker {} answered {code} with a malformed header: {e}",
                            queue.broker_name
                        ),
                    )
                    .with_code(code)
                    .with_broker(&queue.broker_name)
                    .with_attempts(attempt)
                    .with_source(e);
                    if let Some(ctx) = ctx {
                        hook::run_after(&self.hooks, ctx, &AttemptOutcome::Failed(&err), latency);
                    }
                    return Step::Fail(err);
                }
            };
            let result =
                SendResult::from_response(status, msg_id, topic, &queue.broker_name, header);
            if let Some(ctx) = ctx {
                hook::run_after(&self.hooks, ctx, &AttemptOutcome::Stored(&result), latency);
            }
            if status != SendStatus::SendOk
                && self.config.retry_on_not_stored
                && mode == Mode::Auto
                && attempt < max_attempts
            {
                debug!(
                    ?status,
                    "stored with a warning status; retrying on another broker as configured"
                );
                st.stored = Some(Box::new(result));
                st.last_broker = Some(queue.broker_name.clone());
                return Step::Next;
            }
            return Step::Done(result);
        }
        self.fault.on_result(
            &queue.broker_name,
            AttemptReport::new(latency, Outcome::BrokerError(code)),
            now_std,
        );
        let err = SendError::new(
            SendErrorKind::Rejected,
            Delivery::Rejected,
            format!(
                "broker {} rejected the message: {}",
                queue.broker_name,
                response.remark.as_deref().unwrap_or("")
            ),
        )
        .with_code(code)
        .with_broker(&queue.broker_name);
        if let Some(ctx) = ctx {
            hook::run_after(&self.hooks, ctx, &AttemptOutcome::Failed(&err), latency);
        }
        let retryable = self.config.retryable_codes.contains(&code);
        debug!(error = %err, attempt, retryable, "attempt rejected by the broker");
        st.last_error = Some(err);
        st.last_broker = Some(queue.broker_name.clone());
        if !retryable || mode == Mode::Oneway {
            return Step::GiveUp;
        }
        if is_flow_control(code) {
            let backoff = self.backoff(attempt);
            if Instant::now() + backoff >= deadline {
                return Step::GiveUp;
            }
            st.backoff = Some(backoff);
        }
        Step::Next
    }

    /// The outcome once no attempt is left: a stored-with-warning result, or the
    /// last error (a timeout when the deadline passed), marked Indeterminate if any
    /// attempt may have stored the message.
    pub(crate) fn give_up(&self, st: Attempts, deadline: Instant) -> Result<Delivered, SendError> {
        if let Some(result) = st.stored {
            return Ok(Delivered { result: *result });
        }
        let attempts = st.attempt;
        let err = match st.last_error {
            Some(e)
                if Instant::now() < deadline
                    || e.kind() != SendErrorKind::AllBrokersUnavailable =>
            {
                e
            }
            Some(e) => SendError::new(
                SendErrorKind::Timeout,
                e.delivery(),
                format!("deadline passed after {attempts} attempt(s); last: {e}"),
            )
            .with_broker(e.broker().unwrap_or_default()),
            None => SendError::new(
                SendErrorKind::Timeout,
                Delivery::NotSent,
                "deadline passed before the first attempt",
            ),
        };
        // If any attempt may have stored the message, say so whatever the last one did.
        let err = if st.any_written && err.delivery() != Delivery::Indeterminate {
            err.into_delivery(Delivery::Indeterminate)
        } else {
            err
        };
        Err(err.with_attempts(attempts))
    }

    /// Jittered exponential backoff for flow-control answers.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .retry_backoff_min
            .saturating_mul(1 << attempt.saturating_sub(1).min(10));
        let cap = base.min(self.config.retry_backoff_max);
        let half = cap / 2;
        let span = u64::try_from(half.as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        half + Duration::from_micros(self.random.below(span))
    }
}
