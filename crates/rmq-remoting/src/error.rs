//! [`RemotingError`] and its delivery classification.

use std::time::Duration;

use rmq_protocol::frame::{DecodeError, EncodeError};

/// Whether a failed request may have reached the peer.
///
/// This is the one question a caller needs answered before retrying: a
/// [`NotSent`](Delivery::NotSent) request can be retried anywhere without risking a
/// duplicate; an [`Indeterminate`](Delivery::Indeterminate) one may have been
/// processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// The request's bytes never left this process (or the peer refused it unread,
    /// e.g. GO_AWAY): safe to retry anywhere.
    NotSent,
    /// The request was written to the socket and no answer came: the peer may have
    /// processed it.
    Indeterminate,
}

/// A transport failure, ordered by when it happens (before any I/O, while
/// connecting, after writing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemotingError {
    /// The request cannot be encoded (too large, code out of range ...).
    #[error("request to {addr} cannot be encoded: {source}")]
    Encode {
        /// Peer address.
        addr: String,
        /// Why.
        source: EncodeError,
    },
    /// An RPC hook refused the request before it was sent.
    #[error("request to {addr} rejected by an RPC hook: {reason}")]
    Hook {
        /// Peer address.
        addr: String,
        /// The hook's reason.
        reason: String,
    },
    /// The pool or connection has been closed by its owner.
    #[error("transport to {addr} is shut down")]
    Shutdown {
        /// Peer address.
        addr: String,
    },
    /// Connecting failed (refused, unreachable, TLS handshake failure ...), or the
    /// address is in reconnect backoff after recent failures.
    #[error("connect to {addr} failed: {reason}")]
    Connect {
        /// Peer address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The request could not be sent within its time budget: connecting, waiting for
    /// room on a busy connection, or waiting for the answer.
    #[error("request to {addr} timed out after {elapsed:?} ({})", if *.written { "written, no answer" } else { "not sent" })]
    Timeout {
        /// Peer address.
        addr: String,
        /// How long the call ran.
        elapsed: Duration,
        /// Whether the request was (or will be) written to the socket.
        written: bool,
    },
    /// The connection closed while the request was queued or in flight.
    #[error("connection to {addr} closed ({reason}) {}", if *.written { "after the request was written" } else { "before the request was written" })]
    ConnectionClosed {
        /// Peer address.
        addr: String,
        /// Why the connection closed.
        reason: String,
        /// Whether the request had been written.
        written: bool,
    },
    /// The peer sent bytes that are not a valid frame; the connection was closed.
    #[error("protocol error from {addr}: {source}")]
    Protocol {
        /// Peer address.
        addr: String,
        /// The decode failure.
        source: DecodeError,
    },
    /// The peer is shutting down and refused the request unprocessed (GO_AWAY, 1500),
    /// even after one retry on a fresh connection.
    #[error("{addr} is shutting down (GO_AWAY) and refused the request")]
    GoAway {
        /// Peer address.
        addr: String,
    },
}

impl RemotingError {
    /// Whether the request may have reached the peer.
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::Timeout { written: true, .. }
            | Self::ConnectionClosed { written: true, .. }
            | Self::Protocol { .. } => Delivery::Indeterminate,
            _ => Delivery::NotSent,
        }
    }

    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The peer address the error concerns.
    pub fn addr(&self) -> &str {
        match self {
            Self::Encode { addr, .. }
            | Self::Hook { addr, .. }
            | Self::Shutdown { addr }
            | Self::Connect { addr, .. }
            | Self::Timeout { addr, .. }
            | Self::ConnectionClosed { addr, .. }
            | Self::Protocol { addr, .. }
            | Self::GoAway { addr } => addr,
        }
    }
}
