//! Message ids: the client `UNIQ_KEY` and the broker's offset message id.

pub mod offset;
pub mod uniq;
