//! A scriptable fake RocketMQ cluster: an in-process name server and brokers that
//! speak the real remoting protocol (through `rmq-protocol`'s codec), store what
//! producers send, record every request, and misbehave on demand.
//!
//! Designed after librdkafka's mock cluster (reliability.md section 3.2): tests
//! script faults per request code, take brokers down and up, and then assert on
//! exactly what the servers received and stored.
//!
//! * [`FakeCluster`]: a [`FakeNameServer`] plus master-only [`FakeBroker`]s registered
//!   with it, built in one call.
//! * [`FakeServer`]: the controls both kinds share (they dereference to it):
//!   [`script`](FakeServer::script) rules, the request record
//!   ([`requests`](FakeServer::requests)), connection counts, lifecycle
//!   ([`down`](FakeServer::down), [`up`](FakeServer::up),
//!   [`never_accept`](FakeServer::never_accept),
//!   [`kill_connections`](FakeServer::kill_connections),
//!   [`pause`](FakeServer::pause)), ACL ([`require_acl`](FakeServer::require_acl)) and
//!   the wire [`Dialect`].
//! * [`Transport`]: every server listens on an in-memory
//!   [`MemoryNetwork`](rmq_remoting::MemoryNetwork) address (use it with paused tokio
//!   time for deadline tests) or on loopback TCP.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use rmq_protocol::{RequestCode, ResponseCode};
//! use rmq_testkit::fake::{FakeCluster, Transport};
//!
//! let cluster = FakeCluster::builder()
//!     .brokers(["broker-a", "broker-b"])
//!     .transport(Transport::memory())
//!     .topic("T", 4)
//!     .build()
//!     .await?;
//! let a = cluster.broker("broker-a").unwrap();
//! // The next two sends to broker-a are answered SYSTEM_BUSY, then it behaves.
//! a.script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::SYSTEM_BUSY).times(2);
//! // broker-b answers everything half a second late.
//! cluster.broker("broker-b").unwrap().script_all().delay(Duration::from_millis(500));
//!
//! // ... run the producer under test against cluster.name_server_addr() with
//! // cluster.connector(), then assert:
//! assert_eq!(a.requests_with_code(RequestCode::SEND_MESSAGE_V2).len(), 0);
//! assert!(cluster.messages_for("T").is_empty());
//! # Ok(()) }
//! ```
//!
//! Server-side strictness follows the rocketmq-rust servers (peer.md section 3.1): a
//! JSON request header without `code`, `language` (a known upper-case name),
//! `version`, `opaque`, `flag` or `serializeTypeCurrentRPC`, or with a non-string
//! `extFields` value, makes the server close the connection without replying
//! (see [`check_strict_json_header`]; off in [`Dialect::java_4_8`]).
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod acl;
mod broker;
mod clients;
mod cluster;
mod connection;
mod dialect;
mod name_server;
mod record;
mod script;
mod server;
mod store;
mod transport;
mod wire;

pub use acl::AclVerdict;
pub use broker::{
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_TOPIC, FakeBroker, FakeBrokerBuilder, ReplyRecord,
};
pub use clients::{EndTransactionOutcome, EndTransactionRecord, HeartbeatRecord};
pub use cluster::{FakeCluster, FakeClusterBuilder};
pub use dialect::{Dialect, ResponseHeader, RouteJson};
pub use name_server::FakeNameServer;
pub use record::{ConnectionId, ConnectionInfo, RecordedRequest, RejectedFrame};
pub use script::ScriptBuilder;
pub use server::{FakeServer, PushError};
pub use store::{HALF_TOPIC, StoredMessage, TopicConfig, TransactionState};
pub use transport::{CloseMode, Transport};
pub use wire::{REQUIRED_JSON_KEYS, check_strict_json_header};
