//! What handles send to the driver, with a `Drop` that answers `NotSent` if the
//! driver never took the request.

use rmq_protocol::RemotingCommand;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use crate::error::RemotingError;

/// A successful request/response: the response and the request it answers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) response: RemotingCommand,
    pub(crate) request: RemotingCommand,
}

/// Where a request's answer goes: the slot its caller waits on, or (a detached
/// request) the callback that takes it.
#[derive(Debug)]
pub(crate) enum ReplyTx {
    Waiter(super::reply::Sender<Result<RemotingCommand, RemotingError>>),
    Callback(super::detached::Callback),
}

impl ReplyTx {
    /// Answers the request with its response (a caller that gave up drops it).
    pub(crate) fn send(self, answer: Result<RemotingCommand, RemotingError>) {
        match self {
            Self::Waiter(tx) => tx.send(answer),
            Self::Callback(cb) => cb.call(answer),
        }
    }

    /// Whether nobody takes the answer any more (a waiting caller gave up); a
    /// callback always does.
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Self::Waiter(tx) => tx.is_closed(),
            Self::Callback(_) => false,
        }
    }
}
pub(crate) type DoneTx = oneshot::Sender<Result<(), RemotingError>>;

#[derive(Debug)]
pub(crate) enum Kind {
    /// Request/response.
    Request {
        reply: Option<ReplyTx>,
        deadline: Instant,
        started: Instant,
    },
    /// One-way request.
    Oneway {
        done: Option<DoneTx>,
        deadline: Instant,
        started: Instant,
    },
    /// A response to a server-initiated request.
    Response,
}

#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) cmd: Option<RemotingCommand>,
    pub(crate) kind: Kind,
    /// Queued-bytes permit, released once the frame has been written.
    pub(crate) room: Option<OwnedSemaphorePermit>,
}

impl Envelope {
    pub(crate) fn new(cmd: RemotingCommand, kind: Kind, room: OwnedSemaphorePermit) -> Self {
        Self {
            cmd: Some(cmd),
            kind,
            room: Some(room),
        }
    }

    pub(crate) fn response(cmd: RemotingCommand) -> Self {
        Self {
            cmd: Some(cmd),
            kind: Kind::Response,
            room: None,
        }
    }
}

/// The error a request gets when the driver drops it unsent.
pub(crate) fn not_sent(reason: &str) -> RemotingError {
    RemotingError::ConnectionClosed {
        addr: String::new(),
        reason: reason.to_owned(),
        written: false,
    }
}

impl Drop for Envelope {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Request { reply, .. } => {
                if let Some(tx) = reply.take() {
                    tx.send(Err(not_sent(
                        "connection closed before the request was written",
                    )));
                }
            }
            Kind::Oneway { done, .. } => {
                if let Some(tx) = done.take() {
                    let _ = tx.send(Err(not_sent(
                        "connection closed before the request was written",
                    )));
                }
            }
            Kind::Response => {}
        }
    }
}
