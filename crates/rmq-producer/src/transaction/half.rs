//! Sending a half message and ending its transaction (protocol.md section 12.1).

use rmq_protocol::header::end_transaction::EndTransactionRequestHeader;
use rmq_protocol::id::offset::OffsetMessageId;
use rmq_protocol::message::Message;
use rmq_protocol::message::properties::keys;
use rmq_protocol::message::send_result::SendResult;
use rmq_protocol::message::sys_flag::SysFlag;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::Delivery as WireDelivery;
use tokio::time::Instant;
use tracing::debug;

use crate::error::{Delivery, SendError, SendErrorKind};
use crate::kernel::{Attempts, Mode, Prepared};
use crate::options::Target;
use crate::producer::Inner;

use super::listener::TransactionState;

fn invalid(e: impl std::fmt::Display) -> SendError {
    SendError::new(
        SendErrorKind::InvalidMessage,
        Delivery::NotSent,
        e.to_string(),
    )
}

impl Inner {
    /// Marks `message` as a half message of this group and sets its UNIQ_KEY (the
    /// transaction id), which is returned. Nothing is sent.
    pub(crate) fn stamp_half(&self, message: &mut Message) -> Result<String, SendError> {
        self.check(message)?;
        // As Java: a half message cannot be delayed.
        message.remove_property(keys::DELAY);
        message
            .put_system_property(keys::TRAN_MSG, "true")
            .map_err(invalid)?;
        message
            .put_system_property(keys::PGROUP, self.group.clone())
            .map_err(invalid)?;
        self.stamp(message)
            .map(rmq_protocol::FieldValue::into_string)
    }

    /// Sends a stamped half message: never compressed, sysFlag TRANSACTION_PREPARED,
    /// SEND_MESSAGE_V2. Retried (on the broker the fault strategy picks) only while no
    /// attempt may have stored it, so that one transaction never has two half
    /// messages.
    pub(crate) async fn send_half(
        &self,
        message: &Message,
        msg_id: &str,
    ) -> Result<SendResult, SendError> {
        let started = Instant::now();
        let deadline = started + self.config.send_timeout;
        let result = async {
            let _permit = self.admit(message.body().len(), deadline, true).await?;
            let prepared = Prepared {
                topic: message.topic().into(),
                wire_topic: self.wire_topic(message.topic()),
                body: message.body().clone(),
                sys_flag: SysFlag::TRANSACTION_PREPARED,
                flag: message.flag(),
                properties: self
                    .arena
                    .properties(message.properties())
                    .map_err(invalid)?,
                code: RequestCode::SEND_MESSAGE_V2,
                batch: false,
                msg_id: msg_id.into(),
            };
            let max_attempts = self.config.retries.saturating_add(1);
            let mut attempts = 0;
            loop {
                attempts += 1;
                let attempt_deadline =
                    self.attempt_deadline(Instant::now(), deadline, attempts, max_attempts);
                let outcome = self
                    .deliver(
                        &prepared,
                        Some(message),
                        &Target::Auto,
                        Mode::Auto,
                        0,
                        attempt_deadline,
                        Attempts::default(),
                    )
                    .await;
                match outcome {
                    Ok(d) => return Ok(d.result),
                    Err(e)
                        if attempts < max_attempts
                            && e.delivery() != Delivery::Indeterminate
                            && e.is_retryable()
                            && Instant::now() < deadline =>
                    {
                        debug!(error = %e, attempts, "half message not stored; retrying");
                        if e.response_code().is_some_and(|c| {
                            matches!(c, ResponseCode::SYSTEM_BUSY | ResponseCode::FLOW_CONTROL)
                        }) {
                            let pause = self.config.retry_backoff_min;
                            if Instant::now() + pause >= deadline {
                                return Err(e.with_attempts(attempts));
                            }
                            tokio::time::sleep(pause).await;
                        }
                    }
                    Err(e) => return Err(e.with_attempts(attempts)),
                }
            }
        }
        .await;
        match &result {
            Ok(_) => self.stats.record_ok(started.elapsed()),
            Err(e) => self.stats.record_failure(e.kind()),
        }
        result
    }

    /// Sends END_TRANSACTION for a half message this producer stored: one-way (as
    /// Java; brokers do not answer it) to the master of the broker that stored it.
    /// `Ok` means the request was written.
    pub(crate) async fn end_sent(
        &self,
        sent: &SendResult,
        state: TransactionState,
        remark: Option<String>,
    ) -> Result<(), SendError> {
        let broker = &sent.message_queue.broker_name;
        let fail = |kind, delivery, detail: String| {
            SendError::new(kind, delivery, detail).with_broker(broker.clone())
        };
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(fail(
                SendErrorKind::Shutdown,
                Delivery::NotSent,
                "the producer is closed; the broker will check the transaction back".into(),
            ));
        }
        let deadline = Instant::now() + self.config.send_timeout;
        // Java decodes the offset id for the commit-log offset (falling back to msgId).
        let offset = OffsetMessageId::decode(&sent.offset_msg_id)
            .map(|id| id.offset)
            .map_err(|e| {
                fail(
                    SendErrorKind::MalformedResponse,
                    Delivery::NotSent,
                    format!(
                        "cannot end transaction {}: the send answer's offset message id {:?} \
                         does not decode ({e}); the broker will check the transaction back",
                        sent.msg_id, sent.offset_msg_id
                    ),
                )
            })?;
        let wire_topic = self.wire_topic(sent.message_queue.topic.as_str());
        let info = match self.routes.cached(&wire_topic) {
            Some(info) => info,
            None => self
                .routes
                .get(
                    &wire_topic,
                    deadline.saturating_duration_since(Instant::now()),
                )
                .await
                .map_err(|e| {
                    fail(
                        SendErrorKind::NoRoute,
                        Delivery::NotSent,
                        format!("no route for {wire_topic} to end the transaction: {e}"),
                    )
                })?,
        };
        // END_TRANSACTION uses the normal port, never the VIP channel (as Java).
        let addr = info.broker_addr(broker).map(str::to_owned).ok_or_else(|| {
            fail(
                SendErrorKind::NoRoute,
                Delivery::NotSent,
                format!("no master address for broker {broker} to end the transaction"),
            )
        })?;
        let header = EndTransactionRequestHeader {
            producer_group: self.group.clone(),
            tran_state_table_offset: sent.queue_offset,
            commit_log_offset: offset,
            commit_or_rollback: state.wire(),
            from_transaction_check: false,
            msg_id: sent.msg_id.to_string(),
            transaction_id: sent.transaction_id.as_deref().map(str::to_owned),
            topic: Some(wire_topic.into_string()),
            bname: Some(broker.to_string()),
        };
        self.end_oneway(&addr, &header, remark, deadline)
            .await
            .map_err(|e| e.with_broker(broker.clone()))
    }

    /// Writes one END_TRANSACTION (one-way) to `addr`.
    pub(crate) async fn end_oneway(
        &self,
        addr: &str,
        header: &EndTransactionRequestHeader,
        remark: Option<String>,
        deadline: Instant,
    ) -> Result<(), SendError> {
        let mut cmd = RemotingCommand::with_header(RequestCode::END_TRANSACTION, header)
            .serialize_type(self.header_format)
            .oneway();
        if let Some(r) = remark {
            cmd = cmd.remark(r);
        }
        self.pool
            .invoke_oneway_at(addr, cmd, deadline)
            .await
            .map_err(|e| {
                let delivery = match e.delivery() {
                    WireDelivery::Indeterminate => Delivery::Indeterminate,
                    _ => Delivery::NotSent,
                };
                let kind = if e.is_timeout() {
                    SendErrorKind::Timeout
                } else {
                    SendErrorKind::AllBrokersUnavailable
                };
                SendError::new(
                    kind,
                    delivery,
                    format!(
                        "END_TRANSACTION ({:?}) for {} to {addr} failed: {e}; the broker will \
                         check the transaction back",
                        header.commit_or_rollback, header.msg_id
                    ),
                )
                .with_source(e)
            })
    }
}
