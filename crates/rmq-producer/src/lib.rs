//! `rmq-producer` — **not implemented yet.**
//!
//! The crate users depend on: the builder, the send kernel with retries, compression, hooks, back-pressure and lifecycle. It re-exports what users need.
//!
//! See `docs/architecture.md` in the repository for its place in the layering and
//! the dependencies it may use.
