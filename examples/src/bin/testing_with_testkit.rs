//! Testing your own code with `rmq-testkit`: a fake cluster in memory, a scripted
//! fault (the broker is busy twice), and assertions on what the broker stored.

use std::time::Duration;

use rmq_producer::{Message, Producer};
use rmq_protocol::{RequestCode, ResponseCode};
use rmq_remoting::MemoryNetwork;
use rmq_testkit::fake::{FakeCluster, Transport};

/// The code under test: publishes an order event.
async fn publish_order(
    producer: &Producer,
    order_id: u32,
) -> Result<String, Box<dyn std::error::Error>> {
    let message = Message::new("Orders", format!("{{\"order\":{order_id}}}"))
        .with_keys([format!("order-{order_id}")])?;
    Ok(producer.send(message).await?.msg_id.into_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = FakeCluster::builder()
        .brokers(["broker-a"])
        .transport(Transport::Memory(MemoryNetwork::new()))
        .topic("Orders", 4)
        .build()
        .await?;
    let broker = cluster.broker("broker-a").ok_or("broker")?;
    // The broker answers SYSTEM_BUSY twice; the producer backs off and retries.
    broker
        .script(RequestCode::SEND_MESSAGE_V2)
        .reply(ResponseCode::SYSTEM_BUSY)
        .times(2);

    let producer = Producer::builder("orders_service")
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
        .build()
        .await?;
    let id = publish_order(&producer, 42).await?;

    let stored = cluster.find_by_uniq_key(&id);
    assert_eq!(stored.len(), 1, "stored exactly once despite the retries");
    assert_eq!(
        broker
            .requests_with_code(RequestCode::SEND_MESSAGE_V2)
            .len(),
        3
    );
    println!(
        "order event {id} stored after 2 busy answers; {} requests seen",
        broker.requests().len()
    );
    producer.close(Duration::from_secs(1)).await;
    Ok(())
}
