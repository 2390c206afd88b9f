//! Quickstart: build a producer, send one message, read the receipt, close.

use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let producer = target.builder("quickstart_group").build().await?;

    let message = Message::new(TOPIC, "Hello, RocketMQ!")
        .with_tags("greeting")?
        .with_keys(["order-1"])?;
    let receipt = producer.send(message).await?;
    println!(
        "stored: msg_id={} queue={} offset={} status={:?}",
        receipt.msg_id, receipt.message_queue, receipt.queue_offset, receipt.status
    );

    let report = producer.close(Duration::from_secs(5)).await;
    println!("closed: {report:?}");
    Ok(())
}
