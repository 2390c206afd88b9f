//! A fake cluster (two brokers, in memory) and a producer wired to it.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use rmq_producer::{Producer, ProducerBuilder};
use rmq_remoting::MemoryNetwork;
use rmq_testkit::fake::{FakeBroker, FakeCluster, Transport};

pub const TOPIC: &str = "TopicTest";

pub async fn cluster() -> FakeCluster {
    FakeCluster::builder()
        .brokers(["broker-a", "broker-b"])
        .transport(Transport::Memory(MemoryNetwork::new()))
        .topic(TOPIC, 4)
        .build()
        .await
        .expect("fake cluster")
}

pub fn builder(cluster: &FakeCluster) -> ProducerBuilder {
    Producer::builder("test_producer_group")
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
}

pub async fn producer(cluster: &FakeCluster) -> Producer {
    builder(cluster).build().await.expect("producer")
}

pub fn broker<'a>(cluster: &'a FakeCluster, name: &str) -> &'a FakeBroker {
    cluster.broker(name).expect("broker")
}

pub fn sends(cluster: &FakeCluster) -> usize {
    cluster
        .brokers()
        .iter()
        .map(|b| {
            b.requests_with_code(rmq_protocol::RequestCode::SEND_MESSAGE_V2)
                .len()
                + b.requests_with_code(rmq_protocol::RequestCode::SEND_BATCH_MESSAGE)
                    .len()
        })
        .sum()
}

pub const SECOND: Duration = Duration::from_secs(1);
