//! Detached requests: answered by a callback instead of a waiting caller.
//!
//! A caller that awaits its answer keeps its whole future alive until then; a send
//! issued with a callback needs none of that. A detached request goes to the
//! driver with an [`OnReply`] that the driver calls with the answer (or with the
//! error that ends the request: its deadline, the connection closing, the driver
//! dropping it unwritten), on the driver's task. Only what the callback itself
//! holds stays in memory while the request is in flight.
//!
//! Nothing waits in this path: a request the connection cannot take at once (no
//! in-flight slot or queued-byte room free, connection closing) is handed back,
//! callback included, for the caller to send the ordinary way.

use rmq_protocol::{RemotingCommand, ResponseCode};
use tokio::time::Instant;

use super::envelope::{Envelope, Kind, ReplyTx};
use super::{Connection, estimate_len};
use crate::error::RemotingError;

/// Takes the answer of a detached request, exactly once. It runs on the
/// connection's driver task: it must be quick and must not block (hand longer work
/// to a task of its own).
pub trait OnReply: Send + 'static {
    /// The response, or the error that ended the request.
    fn on_reply(self, answer: Result<RemotingCommand, RemotingError>);
}

/// A detached request the connection (or pool) could not take without waiting,
/// handed back unchanged with its callback, which was not called.
#[derive(Debug)]
pub struct NotTaken<R> {
    /// The request, unsent.
    pub request: RemotingCommand,
    /// The callback, not called.
    pub on_reply: R,
}

type Boxed = Box<dyn FnOnce(Result<RemotingCommand, RemotingError>) + Send>;

/// The driver's end of a detached request: calls its callback once, with the
/// answer, or, if dropped unanswered (the driver ended), with a `ConnectionClosed`
/// error marked as possibly written.
pub(crate) struct Callback(Option<Boxed>);

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("called", &self.0.is_none())
            .finish()
    }
}

impl Callback {
    pub(crate) fn call(mut self, answer: Result<RemotingCommand, RemotingError>) {
        if let Some(f) = self.0.take() {
            f(answer);
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(RemotingError::ConnectionClosed {
                addr: String::new(),
                reason: "connection driver ended unexpectedly".to_owned(),
                written: true,
            }));
        }
    }
}

impl Connection {
    /// Sends `request` with `on_reply` taking its answer, if the connection can take
    /// it without waiting; otherwise hands both back untouched. A GO_AWAY answer
    /// marks the connection draining and reaches `on_reply` as
    /// [`RemotingError::GoAway`] (nothing was processed; safe to send again).
    pub(crate) fn try_invoke_detached<R: OnReply>(
        &self,
        request: RemotingCommand,
        deadline: Instant,
        on_reply: R,
    ) -> Result<(), Box<NotTaken<R>>> {
        let not_taken = |request, on_reply| Err(Box::new(NotTaken { request, on_reply }));
        if self.is_unusable() {
            return not_taken(request, on_reply);
        }
        let Ok(slot) = self.shared.in_flight.clone().try_acquire_owned() else {
            return not_taken(request, on_reply);
        };
        let want = u32::try_from(estimate_len(&request).clamp(1, self.shared.max_queued_bytes))
            .unwrap_or(u32::MAX);
        let Ok(room) = self
            .shared
            .queued_bytes
            .clone()
            .try_acquire_many_owned(want)
        else {
            return not_taken(request, on_reply);
        };
        let conn = self.clone();
        let callback = Callback(Some(Box::new(
            move |answer: Result<RemotingCommand, RemotingError>| {
                drop(slot);
                let answer = match answer {
                    Ok(response) if response.response_code() == ResponseCode::GO_AWAY => {
                        conn.mark_draining();
                        Err(RemotingError::GoAway {
                            addr: conn.addr().to_owned(),
                        })
                    }
                    Ok(response) => Ok(response),
                    Err(e) => Err(conn.with_addr(e)),
                };
                on_reply.on_reply(answer);
            },
        )));
        let envelope = Envelope::new(
            request,
            Kind::Request {
                reply: Some(ReplyTx::Callback(callback)),
                deadline,
                started: Instant::now(),
            },
            room,
        );
        // If the driver is gone, the envelope's Drop answers NotSent through the
        // callback.
        let _ = self.shared.tx.send(envelope);
        Ok(())
    }
}

#[cfg(test)]
#[path = "detached_tests.rs"]
mod tests;
