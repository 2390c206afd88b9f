//! Requests the server sends to the client (CHECK_TRANSACTION_STATE,
//! PUSH_REPLY_MESSAGE_TO_CLIENT, ...).

use rmq_protocol::{RemotingCommand, RequestCode};

use crate::invoke::BoxFuture;

/// Handles server-initiated requests of the codes it registers for.
///
/// Called on its own task, never on the connection's driver. For a request that is
/// not one-way, the returned command is sent back as the response (its opaque and
/// response flag are set by the transport); for a one-way request the return value is
/// ignored. Requests with codes no handler claims are answered with
/// REQUEST_CODE_NOT_SUPPORTED (unless one-way).
pub trait RequestHandler: Send + Sync + std::fmt::Debug {
    /// The codes this handler serves.
    fn codes(&self) -> &[RequestCode];

    /// Handles one request from `addr`.
    fn handle(
        &self,
        addr: String,
        request: RemotingCommand,
    ) -> BoxFuture<'static, Option<RemotingCommand>>;
}
