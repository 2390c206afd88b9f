//! Runnable examples for the `rmq` workspace. Each example is a binary in
//! `examples/src/bin/`; `cargo xtask test --stage examples` runs them all against an
//! in-process fake cluster (`rmq-testkit`). Pass `--namesrv HOST:PORT` to run one
//! against a real cluster instead (e.g. the one `cargo xtask cluster up` starts; the
//! topic must exist or the brokers must auto-create it).
//!
//! This module is the only shared piece: it decides where the examples send.

use rmq_producer::{Producer, ProducerBuilder};
use rmq_remoting::MemoryNetwork;
use rmq_testkit::fake::{FakeCluster, Transport};

/// The topic every example sends to.
pub const TOPIC: &str = "ExampleTopic";

/// Where the examples send: a real name server, or a fake cluster kept alive here.
#[derive(Debug)]
pub struct Target {
    /// The fake cluster, when no `--namesrv` was given.
    pub fake: Option<FakeCluster>,
    namesrv: Option<String>,
}

impl Target {
    /// Reads `--namesrv ADDR` from the command line; without it, starts a fake
    /// cluster of two brokers with [`TOPIC`] (4 queues each) in memory.
    pub async fn from_args() -> Result<Self, Box<dyn std::error::Error>> {
        let args: Vec<String> = std::env::args().collect();
        let namesrv = args
            .windows(2)
            .find(|w| w[0] == "--namesrv")
            .map(|w| w[1].clone());
        let fake = match namesrv {
            Some(_) => None,
            None => Some(
                FakeCluster::builder()
                    .brokers(["broker-a", "broker-b"])
                    .transport(Transport::Memory(MemoryNetwork::new()))
                    .topic(TOPIC, 4)
                    .build()
                    .await?,
            ),
        };
        Ok(Self { fake, namesrv })
    }

    /// A producer builder aimed at this target.
    pub fn builder(&self, group: &str) -> ProducerBuilder {
        match (&self.namesrv, &self.fake) {
            (Some(addr), _) => Producer::builder(group).namesrv(addr),
            (None, Some(fake)) => Producer::builder(group)
                .namesrv(fake.name_server_addr())
                .connector(fake.connector()),
            (None, None) => Producer::builder(group),
        }
    }
}
