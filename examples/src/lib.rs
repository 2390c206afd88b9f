//! Runnable examples for the `rmq` workspace. Each example is a binary in
//! `examples/src/bin/`; `cargo xtask test --stage examples` runs them all.
