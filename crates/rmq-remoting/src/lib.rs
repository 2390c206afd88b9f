//! `rmq-remoting` — **not implemented yet.**
//!
//! The multiplexed transport for the RocketMQ remoting protocol: one driver task per connection, opaque-matched request/response, server-initiated requests, a connection pool, RPC hooks (ACL signing) and TLS. Reusable by any RocketMQ tool.
//!
//! See `docs/architecture.md` in the repository for its place in the layering and
//! the dependencies it may use.
