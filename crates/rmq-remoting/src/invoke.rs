//! [`Invoke`]: the narrow, object-safe calling interface other crates are written
//! against (the route client, the producer, tests with a scripted fake).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rmq_protocol::RemotingCommand;

use crate::error::RemotingError;

/// A boxed, `Send` future (object-safe traits return these).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends requests to addresses and returns their responses.
///
/// Implemented by [`Pool`](crate::Pool). `timeout` bounds the whole call:
/// connecting, waiting for room on a busy connection, writing and waiting for the
/// answer. The opaque of `request` is assigned by the transport; callers leave it 0.
pub trait Invoke: Send + Sync {
    /// Request / response.
    fn invoke<'a>(
        &'a self,
        addr: &'a str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<RemotingCommand, RemotingError>>;

    /// One-way request: the peer does not answer. Resolves once the request has been
    /// handed to the connection's writer (or failed to be).
    fn invoke_oneway<'a>(
        &'a self,
        addr: &'a str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RemotingError>>;
}
