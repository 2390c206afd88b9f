//! `rmq-fault` — **not implemented yet.**
//!
//! Latency fault tolerance as a small, object-safe, clock-injected `FaultStrategy` trait and the default strategy with the Java 5.x tables. No tokio: a user's own strategy crate depends only on this one.
//!
//! See `docs/architecture.md` in the repository for its place in the layering and
//! the dependencies it may use.
