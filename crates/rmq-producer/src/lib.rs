//! `rmq-producer`: an Apache RocketMQ producer for Rust, over the remoting (TCP)
//! protocol that Java's `DefaultMQProducer` speaks.
//!
//! ```no_run
//! # // no_run: needs a running name server and broker.
//! use rmq_producer::{Message, Producer};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::builder("my_producer_group")
//!     .namesrv("127.0.0.1:9876")
//!     .build()
//!     .await?;
//! let receipt = producer.send(Message::new("TopicTest", "hello")).await?;
//! println!("stored as {} in {}", receipt.msg_id, receipt.message_queue);
//! producer.close(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! What it does for you:
//! - **Routes**: name-server polling (30 s), the last good route kept when name
//!   servers fail, Java's queue order, the TBW102 fallback for new topics.
//! - **Fault tolerance**: slow or failing brokers are isolated (Java 5.x latency
//!   tables, on by default; replaceable through [`FaultStrategy`]).
//! - **One retry engine** for every mode: transport failures go to another broker
//!   at once; flow-control answers back off with jitter; selector and explicit-queue
//!   sends retry the same queue only; one-way sends retry only what surely was not
//!   sent; every retry keeps the UNIQ_KEY; no attempt starts with a spent budget.
//! - **Errors you can act on**: [`SendError::delivery`] tells whether the message
//!   may be stored, [`SendError::into_message`] hands it back.
//! - **Back-pressure** for every mode (10 000 messages / 100 MiB in flight),
//!   compression (zlib level 5 at ≥ 4 KiB; zstd and lz4 selectable), hooks, stats.
//!
//! Dropping a send future: the message may still be stored (the request may have
//! been written), the back-pressure permit is released at once, and the
//! connection's pending entry is removed when the answer arrives or at the
//! deadline; a callback registered with [`Producer::send_with_callback`] fires at
//! most once.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod accumulator;
mod arena;
mod batch;
mod builder;
mod client;
pub mod compress;
pub mod config;
mod detached;
mod error;
pub mod hook;
mod kernel;
mod lifecycle;
mod options;
mod producer;
pub mod request;
pub mod selector;
mod send;
mod stats;
pub mod transaction;

pub use accumulator::AutoBatchStats;
pub use builder::{BuildError, ProducerBuilder};
pub use compress::Compression;
pub use config::{ConfigError, HeaderFormat, ProducerConfig};
pub use error::{Delivery, SendError, SendErrorKind};
pub use lifecycle::CloseReport;
pub use options::{SendOptions, Target};
pub use producer::Producer;
pub use request::RequestError;
pub use stats::{ProducerStats, RouteAge};
pub use transaction::{TransactionProducer, TransactionState};

pub use rmq_fault::{FaultStrategy, LatencyFaultStrategy};
pub use rmq_protocol::ResponseCode;
pub use rmq_protocol::message::send_result::{SendResult, SendStatus};
pub use rmq_protocol::message::sys_flag::CompressionType;
pub use rmq_protocol::message::{Message, MessageQueue};
pub use rmq_remoting::Connector;
