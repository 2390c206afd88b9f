//! `rmq-route` — **not implemented yet.**
//!
//! The name-server client, route cache and polling, and `TopicPublishInfo`. It owns no sockets: it talks through the remoting `Invoke` trait.
//!
//! See `docs/architecture.md` in the repository for its place in the layering and
//! the dependencies it may use.
