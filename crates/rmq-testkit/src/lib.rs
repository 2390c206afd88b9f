//! `rmq-testkit`: test support for `rmq` and for code built on it.
//!
//! Today this crate holds the **real-cluster support** ([`real_cluster`](mod@real_cluster)): integration
//! tests that need a real RocketMQ name server and brokers find them through environment
//! variables set by `cargo xtask test --stage cluster`, and skip (or, in CI, fail) when none
//! is configured.
//!
//! The **fake cluster** ([`fake`]) is an in-process name server and brokers whose answers and
//! faults a test scripts: they listen in memory (for paused-time tests) or on loopback TCP,
//! speak the real protocol, store every accepted message and record every request. See
//! [`fake::FakeCluster`].
//!
//! The **null broker** ([`null_broker::NullBroker`]) answers routes, heartbeats and
//! sends at once without storing anything, so benchmarks measure the client's own cost
//! (also the `rmq-null-broker` binary).
//!
//! **Seeded chaos** ([`chaos`]) drives the fake cluster through a fault schedule
//! generated from a seed while the code under test sends, then checks that nothing
//! acknowledged was lost, duplicates came only from retries, and every call resolved
//! by its deadline.
//!
//! The **fault proxy** ([`proxy::FaultProxy`]) sits between a client and a real TCP server
//! (e.g. a real broker, routed through it with `rmq_remoting::AddressMap`) and injects
//! latency, bandwidth limits, slicing, black holes, resets and refused or hanging connects.
//!
//! ```no_run
//! use rmq_testkit::real_cluster::{real_cluster, unique_topic};
//!
//! #[test]
//! fn real_cluster_send_something() {
//!     let Some(cluster) = real_cluster() else { return }; // skipped: no cluster configured
//!     let topic = unique_topic("send_something");
//!     // ... connect to cluster.namesrv, create `topic`, send, read back ...
//!     # let _ = (cluster, topic);
//! }
//! ```
//!
//! Naming rule: `cargo xtask test --stage cluster` runs every test whose name contains
//! `real_cluster`, once with each header type. The name is the test's path inside its
//! test crate (`module::fn`), not the file name: call the function (or a module around
//! it) `real_cluster_*`.

pub mod chaos;
pub mod fake;
pub mod null_broker;
pub mod proxy;
pub mod real_cluster;

pub use fake::{FakeBroker, FakeCluster, FakeNameServer, Transport};
pub use real_cluster::{HeaderChoice, RealCluster, real_cluster, unique_topic};
