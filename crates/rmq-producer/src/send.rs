//! Preparing one message for the wire and running it through the kernel.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use rmq_protocol::RequestCode;
use rmq_protocol::message::send_result::SendResult;
use rmq_protocol::message::{Message, keys};
use rmq_protocol::validate;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{Delivery, SendError, SendErrorKind};
use crate::kernel::{Attempts, Mode, Prepared};
use crate::options::SendOptions;
use crate::producer::Inner;

impl Inner {
    /// The topic on the wire: wrapped in the namespace when one is configured.
    pub(crate) fn wire_topic(&self, topic: &str) -> rmq_protocol::FieldValue {
        match &self.config.namespace {
            Some(ns) => rmq_route::namespace::wrap(ns, topic).into(),
            None => topic.into(),
        }
    }

    /// Checks a message before anything is sent (nothing leaves the process on failure).
    pub(crate) fn check(&self, message: &Message) -> Result<(), SendError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SendError::new(
                SendErrorKind::Shutdown,
                Delivery::NotSent,
                "the producer is closed",
            ));
        }
        let invalid = |e: validate::ValidationError| {
            SendError::new(
                SendErrorKind::InvalidMessage,
                Delivery::NotSent,
                e.to_string(),
            )
            .with_source(e)
        };
        validate::validate_message(message, self.config.max_message_size).map_err(invalid)?;
        match &self.config.namespace {
            // Without a namespace the wire topic is the topic: no copy to check it.
            None => validate::validate_topic(message.topic()),
            Some(_) => validate::validate_topic(&self.wire_topic(message.topic())),
        }
        .map_err(invalid)?;
        crate::hook::check_forbidden(&self.forbidden, message)
            .map_err(|reason| SendError::new(SendErrorKind::HookVeto, Delivery::NotSent, reason))?;
        Ok(())
    }

    /// Sets the UNIQ_KEY (kept if present, so retries and resends share it) and the
    /// namespace instance id.
    pub(crate) fn stamp(
        &self,
        message: &mut Message,
    ) -> Result<rmq_protocol::FieldValue, SendError> {
        if let Some(ns) = &self.config.namespace {
            message
                .put_system_property(keys::INSTANCE_ID, ns.clone())
                .map_err(|e| {
                    SendError::new(
                        SendErrorKind::InvalidMessage,
                        Delivery::NotSent,
                        e.to_string(),
                    )
                })?;
        }
        if let Some(id) = message.uniq_key() {
            return Ok(id.into());
        }
        let id = self.ids.next_value(crate::client::now_ms());
        message.set_uniq_key(id.clone()).map_err(|e| {
            SendError::new(
                SendErrorKind::InvalidMessage,
                Delivery::NotSent,
                e.to_string(),
            )
        })?;
        Ok(id)
    }

    /// Compresses (once) and encodes what goes on the wire. The message is not changed.
    pub(crate) fn prepare(
        &self,
        message: &Message,
        msg_id: rmq_protocol::FieldValue,
    ) -> Result<Prepared, SendError> {
        self.prepare_wire(message, msg_id, || self.wire_body(message))
    }

    /// The body `message` goes on the wire with (compressed when it is large enough)
    /// and the sys-flag bits that say so.
    pub(crate) fn wire_body(&self, message: &Message) -> (Bytes, i32) {
        let compressed = if self.fail_compression {
            Err(crate::compress::CompressError::Codec {
                kind: self.config.compression.kind,
                source: std::io::Error::other("failpoint: compression forced to fail"),
            })
        } else {
            self.config.compression.compress(message.body())
        };
        match compressed {
            Ok(Some((compressed, bits))) => (compressed, bits),
            Ok(None) => (message.body().clone(), 0),
            Err(e) => {
                // As Java: a compression failure sends the body uncompressed.
                tracing::debug!(error = %e, "compression failed; sending uncompressed");
                (message.body().clone(), 0)
            }
        }
    }

    /// `message` ready for the wire, its body and sys-flag bits from `body` (called
    /// once the properties encoded, so a message that fails is never compressed): a
    /// callback send keeps the body [`wire_body`](Self::wire_body) made while in
    /// flight and derives the rest again for a retry.
    pub(crate) fn prepare_wire(
        &self,
        message: &Message,
        msg_id: rmq_protocol::FieldValue,
        body: impl FnOnce() -> (Bytes, i32),
    ) -> Result<Prepared, SendError> {
        let properties = self.arena.properties(message.properties()).map_err(|e| {
            SendError::new(
                SendErrorKind::InvalidMessage,
                Delivery::NotSent,
                e.to_string(),
            )
        })?;
        let (body, sys_flag) = body();
        Ok(Prepared {
            topic: message.topic().into(),
            wire_topic: self.wire_topic(message.topic()),
            body,
            sys_flag,
            flag: message.flag(),
            properties,
            // As Java: a reply (MSG_TYPE=reply) goes out as SEND_REPLY_MESSAGE_V2.
            code: if crate::request::is_reply(message) {
                RequestCode::SEND_REPLY_MESSAGE_V2
            } else {
                RequestCode::SEND_MESSAGE_V2
            },
            batch: false,
            msg_id,
        })
    }

    /// One message, any mode: validate, stamp, take permits, prepare, deliver.
    ///
    /// A plain `fn` returning one `async move` block rather than an `async fn`: an
    /// `async fn` keeps its arguments twice in its state (as arguments and as
    /// locals), and this future is held by every send in flight.
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` would store the arguments twice per send in flight"
    )]
    pub(crate) fn send_one(
        &self,
        mut message: Message,
        options: SendOptions,
        mode: Mode,
        wait_for_room: bool,
    ) -> impl Future<Output = Result<SendResult, SendError>> {
        async move {
            let started = Instant::now();
            let deadline = started + options.timeout.unwrap_or(self.config.send_timeout);
            let result = async {
                self.check(&message)?;
                let msg_id = self.stamp(&mut message)?;
                let _permit = self
                    .admit(message.body().len(), deadline, wait_for_room)
                    .await?;
                let prepared = self.prepare(&message, msg_id)?;
                let retries = options.retries.unwrap_or(self.config.retries);
                self.deliver(
                    &prepared,
                    Some(&message),
                    &options.target,
                    mode,
                    retries,
                    deadline,
                    Attempts::default(),
                )
                .instrument(crate::kernel::send_span(message.topic(), &prepared.msg_id))
                .await
            }
            .await;
            match result {
                Ok(d) => {
                    self.stats.record_ok(started.elapsed());
                    Ok(d.result)
                }
                Err(e) => {
                    self.stats.record_failure(e.kind());
                    Err(e.with_message(message))
                }
            }
        }
    }
}
