//! RPC hooks: code that sees every request before it is sent and every response
//! after it arrives (ACL signing, namespaces, metrics).

use rmq_protocol::RemotingCommand;

/// A hook refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// Runs around every request sent through a [`Pool`](crate::Pool).
///
/// Hooks run in registration order before each **attempt** (so a retry is signed
/// again) and must be cheap and non-blocking. A signing hook must run last, over
/// exactly the fields that are sent.
pub trait RpcHook: Send + Sync + std::fmt::Debug {
    /// Called before the request is sent; may add fields or refuse it.
    fn before_request(&self, addr: &str, request: &mut RemotingCommand) -> Result<(), HookError>;

    /// Called with the response of a request/response call. `request` is the
    /// request as the hooks left it (its opaque is assigned on the wire only).
    fn after_response(&self, addr: &str, request: &RemotingCommand, response: &RemotingCommand) {
        let _ = (addr, request, response);
    }
}
