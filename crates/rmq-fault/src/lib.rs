//! Latency fault tolerance for RocketMQ producers: which brokers to avoid.
//!
//! * [`FaultStrategy`] is the policy as a small, object-safe trait. The producer
//!   holds it as `Arc<dyn FaultStrategy>`, reports every send attempt to it and
//!   asks it which brokers are usable. It is pure policy: it never blocks, never
//!   reads the clock (every call gets `now`), has no lifecycle and no tokio. A
//!   custom strategy lives in a crate that depends on `rmq-fault` alone.
//! * [`LatencyFaultStrategy`] is the default (on by default in the producer):
//!   Java 5.x's latency-to-isolation tables, or Java 4.9's with
//!   [`LatencyFaultStrategy::java_4_9`], or custom tables.
//! * [`Disabled`] turns fault tolerance off: every broker is always usable.
//! * [`select_index`] is the queue selection the producer runs over a topic's
//!   queue list with a strategy (Java 5.x `QueueFilter` order).
//!
//! Background probing of isolated brokers is not done here: a detector task owned
//! by the producer asks [`FaultStrategy::brokers_to_probe`] and reports through
//! [`FaultStrategy::on_probe`].
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use rmq_fault::{select_index, AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
//!
//! let strategy: Arc<dyn FaultStrategy> = Arc::new(LatencyFaultStrategy::default());
//! let queues = ["broker-a", "broker-a", "broker-b", "broker-b"];
//! let t0 = Instant::now();
//!
//! let pick = select_index(queues.len(), 0, |i| queues[i], &*strategy, None, t0);
//! assert_eq!(pick, Some(0));
//! strategy.on_result("broker-a", AttemptReport::new(Duration::from_millis(3000), Outcome::Timeout), t0);
//!
//! // broker-a is isolated for 10 s: the retry goes to broker-b.
//! let retry = select_index(queues.len(), 1, |i| queues[i], &*strategy, Some("broker-a"), t0);
//! assert_eq!(retry, Some(2));
//! ```
//!
//! See `docs/architecture.md` in the repository for its place in the layering.

mod latency;
mod select;
mod strategy;

pub use latency::{
    DEFAULT_MAX_BROKERS, DEFAULT_PROBE_INTERVAL, LatencyFaultStrategy, MAX_ISOLATION, TableError,
    UpdateRule,
};
pub use rmq_protocol::ResponseCode;
pub use select::select_index;
pub use strategy::{AttemptReport, BrokerFaultState, Disabled, FaultStrategy, Outcome};
