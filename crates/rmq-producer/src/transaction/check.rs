//! Serving the broker's CHECK_TRANSACTION_STATE (39): a one-way request on the
//! connection that heartbeated with the producer group (protocol.md section 12.2).
//! The answer is an END_TRANSACTION with `fromTransactionCheck=true`, one-way, to the
//! address the check came from. No response frame is ever sent for the check.

use std::sync::{Arc, Weak};

use rmq_protocol::header::check_transaction_state::CheckTransactionStateRequestHeader;
use rmq_protocol::header::end_transaction::EndTransactionRequestHeader;
use rmq_protocol::message::Message;
use rmq_protocol::message::properties::keys;
use rmq_protocol::message::stored::decode_stored;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::RequestHandler;
use rmq_remoting::invoke::BoxFuture;
use tokio::time::Instant;
use tracing::debug;

use super::listener::{CheckRequest, TransactionState};
use super::state::{Known, Shared, bump, catch_panic};
use crate::producer::Inner;

/// Java answers a check with a 3 s one-way END_TRANSACTION.
const END_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

const CODES: [RequestCode; 1] = [RequestCode::CHECK_TRANSACTION_STATE];

/// The handler registered on the producer's pool. Holds the producer weakly (the
/// pool holds the handler).
pub(crate) struct CheckHandler {
    pub(crate) inner: Weak<Inner>,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for CheckHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckHandler").finish_non_exhaustive()
    }
}

impl RequestHandler for CheckHandler {
    fn codes(&self) -> &[RequestCode] {
        &CODES
    }

    fn handle(
        &self,
        addr: String,
        request: RemotingCommand,
    ) -> BoxFuture<'static, Option<RemotingCommand>> {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            // Brokers send checks one-way; should one expect an answer, it gets SUCCESS.
            let ack = (!request.is_oneway())
                .then(|| RemotingCommand::response_to(&request, ResponseCode::SUCCESS));
            bump(&shared.counters.received);
            if let Some(inner) = inner.upgrade() {
                answer(&inner, &shared, addr, &request).await;
            }
            ack
        })
    }
}

/// A check, decoded.
struct Decoded {
    header: CheckTransactionStateRequestHeader,
    /// The stored half message, when the body decodes.
    message: Option<Message>,
    /// UNIQ_KEY of the body, else the header's `transactionId`, else its `msgId`.
    /// Never `offsetMsgId` (the rocketmq-rust broker leaves it empty).
    transaction_id: String,
    /// `msgId` for the answer: the body's UNIQ_KEY, else the header's `msgId`.
    msg_id: String,
}

fn decode(inner: &Inner, request: &RemotingCommand) -> Result<Decoded, String> {
    let header: CheckTransactionStateRequestHeader = request
        .decode_header()
        .map_err(|e| format!("bad CHECK_TRANSACTION_STATE header: {e}"))?;
    let message = match decode_stored(request.body_bytes()) {
        Ok((ext, _)) => {
            let mut m = ext.message;
            if let Some(ns) = &inner.config.namespace {
                let bare = rmq_route::namespace::unwrap(ns, m.topic()).into_owned();
                m.set_topic(bare);
            }
            if ext.sys_flag.is_compressed() {
                match crate::compress::decompress(
                    ext.sys_flag,
                    m.body(),
                    inner.config.max_message_size,
                ) {
                    Ok(body) => m.set_body(body),
                    Err(e) => debug!(error = %e, "check: cannot decompress the half message body"),
                }
            }
            Some(m)
        }
        Err(e) => {
            debug!(error = %e, "check: the body is not a stored message");
            None
        }
    };
    let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    let uniq = nonempty(message.as_ref().and_then(|m| m.property(keys::UNIQ_KEY)));
    let msg_id = uniq
        .clone()
        .or_else(|| nonempty(header.msg_id.as_deref()))
        .ok_or("check names no message id (no UNIQ_KEY, no msgId)")?;
    let transaction_id = uniq
        .or_else(|| nonempty(header.transaction_id.as_deref()))
        .unwrap_or_else(|| msg_id.clone());
    if let Some(group) = message.as_ref().and_then(|m| m.property(keys::PGROUP))
        && group != inner.group
    {
        return Err(format!(
            "check for producer group {group}, not this producer's {}",
            inner.group
        ));
    }
    Ok(Decoded {
        header,
        message,
        transaction_id,
        msg_id,
    })
}

async fn answer(inner: &Inner, shared: &Arc<Shared>, addr: String, request: &RemotingCommand) {
    let d = match decode(inner, request) {
        Ok(d) => d,
        Err(e) => {
            debug!(%addr, error = %e, "transaction check ignored");
            bump(&shared.counters.dropped);
            return;
        }
    };
    let Some(_running) = shared.begin_check(&d.transaction_id) else {
        debug!(%addr, id = %d.transaction_id, "a check of this transaction is running; duplicate dropped");
        bump(&shared.counters.deduplicated);
        return;
    };
    let (state, remark) = match shared.known(&d.transaction_id) {
        Some(Known::Open) => (TransactionState::Unknown, None),
        Some(Known::Decided(s)) => (s, None),
        None => match (&shared.listener, d.message) {
            (Some(listener), Some(message)) => {
                // Bounded: at most `check_queue_capacity` waiting or running, of
                // which `max_concurrent_checks` run; beyond that the broker asks again.
                let Ok(_queued) = shared.queued.clone().try_acquire_owned() else {
                    debug!(%addr, id = %d.transaction_id, "check queue full; check dropped");
                    bump(&shared.counters.dropped);
                    return;
                };
                let Ok(_permit) = shared.running.clone().acquire_owned().await else {
                    return;
                };
                let check = CheckRequest {
                    message,
                    transaction_id: d.transaction_id.clone(),
                    broker_name: d.header.bname.clone(),
                    broker_addr: addr.clone(),
                    commit_log_offset: d.header.commit_log_offset,
                    tran_state_table_offset: d.header.tran_state_table_offset,
                };
                bump(&shared.counters.listener_calls);
                let run = tokio::time::timeout(
                    shared.options.check_timeout,
                    catch_panic(listener.check(&check)),
                );
                match run.await {
                    Ok(Ok(state)) => (state, None),
                    Ok(Err(panic)) => (
                        TransactionState::Unknown,
                        Some(format!("checkLocalTransaction panicked: {panic}")),
                    ),
                    Err(_) => {
                        debug!(%addr, id = %d.transaction_id, "listener check timed out; no answer");
                        bump(&shared.counters.dropped);
                        return;
                    }
                }
            }
            _ => (shared.options.unresolved_check_answer, None),
        },
    };
    let header = EndTransactionRequestHeader {
        producer_group: inner.group.clone(),
        tran_state_table_offset: d.header.tran_state_table_offset,
        commit_log_offset: d.header.commit_log_offset,
        commit_or_rollback: state.wire(),
        from_transaction_check: true,
        msg_id: d.msg_id,
        transaction_id: d
            .header
            .transaction_id
            .clone()
            .filter(|t| !t.is_empty())
            .or(Some(d.transaction_id.clone())),
        topic: d.header.topic.clone(),
        bname: d.header.bname.clone(),
    };
    match inner
        .end_oneway(&addr, &header, remark, Instant::now() + END_TIMEOUT)
        .await
    {
        Ok(()) => {
            debug!(%addr, id = %d.transaction_id, %state, "transaction check answered");
            bump(&shared.counters.answered);
        }
        Err(e) => debug!(%addr, error = %e, "transaction check answer failed"),
    }
}
