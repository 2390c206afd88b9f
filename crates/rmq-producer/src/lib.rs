//! `rmq-producer`: placeholder.
//!
//! This crate is part of the `rmq` workspace. It is planned but not implemented yet;
//! see `docs/architecture.md` for its role and the rules it will follow.
