//! Seeded chaos against the [fake cluster](crate::fake): a fault [`Schedule`] that
//! is a pure function of a seed, a [`ChaosDriver`] that applies it at virtual times,
//! and a [`check`] of what every run must satisfy (reliability matrix rows G1, G2).
//!
//! Run it on a current-thread runtime with paused time and
//! [`Transport::Memory`](crate::fake::Transport::Memory): the fault timeline and the
//! workload are then reproduced exactly by the seed. (Whether the client's own
//! choices are too depends on the client: `rmq-producer` replays a run exactly when
//! it is also given the seed with `ProducerBuilder::random_seed`, which fixes its
//! first name server, round-robin starts, retry and reconnect jitter; without it
//! those come from OS entropy, and two runs of one seed see the same faults at the
//! same instants but may route some sends differently.)
//!
//! * [`ChaosRng`]: SplitMix64, our own, so seeds mean the same everywhere.
//! * [`Schedule::generate`]: kills, restarts, stalls, pauses, slow handling, busy
//!   codes and route changes (broker removed from the route, queue count changed,
//!   topic moved away) every 200 ms – 2 s, lasting 200 ms – 2 s; every kind at least
//!   once while the span allows; one broker always healthy.
//! * [`ChaosDriver`]: applies and undoes each event, and records evidence that it
//!   hit traffic ([`FaultLog`]).
//! * [`Ledger`] + [`check`]: the client records every call ([`SendRecord`]); the
//!   checker compares that with what the brokers stored ([`stored_copies`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use rmq_testkit::chaos::{ChaosDriver, Ledger, Schedule, ScheduleConfig, check, stored_copies};
//! use rmq_testkit::fake::{FakeCluster, Transport};
//!
//! let names = ["broker-a", "broker-b", "broker-c"];
//! let cluster = FakeCluster::builder()
//!     .brokers(names)
//!     .transport(Transport::memory())
//!     .topic("T", 4)
//!     .build()
//!     .await?;
//! let schedule = Schedule::generate(42, &ScheduleConfig::new(names, Duration::from_secs(5)));
//! let driver = ChaosDriver::new(cluster.clone(), "T", 4);
//! let ledger = Ledger::new();
//! let faults = tokio::spawn({
//!     let (driver, schedule) = (driver.clone(), schedule.clone());
//!     async move { driver.run(&schedule).await }
//! });
//! // ... run senders that push a SendRecord per call into `ledger` ...
//! let log = faults.await.expect("driver");
//! driver.restore().await;
//! let report = check(&ledger.records(), &stored_copies(&cluster, "T"), Duration::from_millis(20));
//! assert!(report.passed(), "{schedule}{log}{report}");
//! # Ok(()) }
//! ```

mod check;
mod driver;
mod rng;
mod schedule;

pub use check::{
    CheckReport, FailedDelivery, Ledger, SendMode, SendOutcome, SendRecord, StoredCopy, check,
    stored_copies,
};
pub use driver::{ChaosDriver, FaultLog, FiredFault};
pub use rng::ChaosRng;
pub use schedule::{FaultEvent, FaultKind, Schedule, ScheduleConfig};
