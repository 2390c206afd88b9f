//! `rmq-protocol`: the Apache RocketMQ remoting protocol, sans-IO.
//!
//! This crate contains **no networking code and no async runtime**. It turns bytes
//! into typed values and back: frames ([`frame`]), wire codes ([`code`]), typed
//! headers ([`header`]), the message model and its encodings ([`message`]), message
//! ids ([`id`]), name-server route data ([`route`]) and client-side validation
//! ([`validate`]). Every length or count read from the wire is bounded before
//! anything is allocated, and every decoder returns a typed error instead of
//! panicking. The transport (`rmq-remoting`) and the producer build on it.
//!
//! ```
//! use bytes::BytesMut;
//! use rmq_protocol::{RemotingCommand, RequestCode, frame};
//! use rmq_protocol::header::{CommandHeader, get_route_info::GetRouteInfoRequestHeader};
//!
//! let header = GetRouteInfoRequestHeader::new("TopicTest");
//! let request = RemotingCommand::with_header(RequestCode::GET_ROUTEINFO_BY_TOPIC, &header).opaque(1);
//! let mut buf = BytesMut::new();
//! frame::encode(&request, &mut buf)?;
//! let decoded = frame::decode(&mut buf)?.expect("one whole frame");
//! assert_eq!(decoded, request);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod code;
pub mod command;
pub mod ext;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod id;
pub mod message;
mod ordered_map;
pub mod route;
pub mod validate;
pub mod value;

pub use code::{LanguageCode, RequestCode, ResponseCode, RpcFlags, SerializeType};
pub use command::RemotingCommand;
pub use ext::ExtFields;
pub use value::FieldValue;
