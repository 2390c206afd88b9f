//! What a fake server saw: every request, every rejected frame, every connection.

use rmq_protocol::header::{CommandHeader, HeaderError};
use rmq_protocol::{RemotingCommand, RequestCode};
use tokio::time::Instant;

use super::acl::AclVerdict;

/// Identifies one accepted connection of a fake server (unique per server).
pub type ConnectionId = u64;

/// One request a fake server received, in arrival order.
///
/// ```no_run
/// # async fn demo(broker: &rmq_testkit::fake::FakeBroker) {
/// use rmq_protocol::RequestCode;
/// use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
///
/// for r in broker.requests_with_code(RequestCode::SEND_MESSAGE_V2) {
///     let header: SendMessageRequestHeaderV2 = r.header().unwrap();
///     println!("#{} on connection {}: topic {} queue {}", r.seq, r.connection, header.topic, header.queue_id);
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Position among all requests this server received (from 0; not reset by
    /// [`clear_requests`](super::FakeServer::clear_requests)).
    pub seq: u64,
    /// The connection it came on.
    pub connection: ConnectionId,
    /// The peer's address (`ip:port`, or `memory-client:N` in memory).
    pub peer: String,
    /// When it was read (tokio time, so paused-time tests can assert on it).
    pub at: Instant,
    /// The decoded request: code, header fields, body, opaque, flags.
    pub command: RemotingCommand,
    /// The ACL decision, when the server requires ACL.
    pub acl: Option<AclVerdict>,
    /// Whether a script rule handled it (instead of, or before, the normal handler).
    pub scripted: bool,
}

impl RecordedRequest {
    /// The request code.
    pub fn code(&self) -> RequestCode {
        self.command.request_code()
    }

    /// One header field.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.command.ext_fields.get(key)
    }

    /// The typed header.
    pub fn header<H: CommandHeader>(&self) -> Result<H, HeaderError> {
        self.command.decode_header()
    }

    /// The body (empty when there is none).
    pub fn body(&self) -> &[u8] {
        self.command.body_bytes()
    }

    /// Whether it was a one-way request.
    pub fn is_oneway(&self) -> bool {
        self.command.is_oneway()
    }
}

/// A frame that made a fake server close the connection without a reply: a JSON
/// header the strict check rejects, or bytes that are not a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedFrame {
    /// The connection, which was closed.
    pub connection: ConnectionId,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Instant,
}

/// A connection a fake server accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Its id.
    pub id: ConnectionId,
    /// The peer's address.
    pub peer: String,
    /// When it was accepted.
    pub accepted_at: Instant,
}
