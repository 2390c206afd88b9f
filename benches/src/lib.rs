//! Cross-crate end-to-end benchmarks. Per-crate criterion benches live in each
//! crate's `benches/`; this package will hold the send-path benches once
//! `rmq-producer` exists.
