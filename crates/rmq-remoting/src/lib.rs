//! `rmq-remoting`: the multiplexed transport of the RocketMQ remoting protocol.
//!
//! One [`Connection`] is one socket owned by a driver task: callers submit requests
//! through a cloneable handle; the driver assigns per-connection opaque ids, coalesces
//! queued frames into few writes, matches responses by opaque, enforces every
//! request's deadline, dispatches server-initiated requests to a
//! [`RequestHandler`], and resolves every waiter on every exit path. Failures say
//! whether the request may have been delivered ([`Delivery`]).
//!
//! A [`Pool`] keeps one connection per address (single-flight connect, reconnect
//! backoff, idle close, in-flight bounds, half-open detection), runs [`RpcHook`]s,
//! handles GO_AWAY, and implements [`Invoke`], the narrow trait the route client and
//! the producer are written against. [`Connector`]s choose the byte stream: TCP,
//! in-memory ([`MemoryNetwork`]) or an address map for fault proxies.
//!
//! This crate is reusable by any RocketMQ tool; it knows nothing about producers.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod acl;
pub mod codec;
mod connection;
pub mod connector;
pub mod error;
pub mod handler;
pub mod hook;
pub mod invoke;
mod pool;
pub mod random;
pub mod stats;
#[cfg(feature = "tls")]
pub mod tls;

pub use codec::RemotingCodec;
pub use connection::{Connection, ConnectionConfig, NotTaken, OnReply};
pub use connector::{
    AddressMap, BoxStream, Connector, MemoryListener, MemoryNetwork, TcpConnector,
};
pub use error::{Delivery, RemotingError};
pub use handler::RequestHandler;
pub use hook::{HookError, RpcHook};
pub use invoke::{BoxFuture, Invoke};
pub use pool::{Pool, PoolConfig};
pub use random::RandomSource;
pub use stats::{ConnectionStats, PoolStats};

/// Locks `m`, recovering the data if a holder panicked (no code path in this crate
/// panics while holding one of its locks, and none is held across an `.await`).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
