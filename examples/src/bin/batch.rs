//! Batches: many messages of one topic in as few requests as the size limit allows,
//! with an outcome per message.

use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let producer = target.builder("batch_group").build().await?;
    let messages: Vec<Message> = (0..20)
        .map(|i| Message::new(TOPIC, format!("batched {i}")))
        .collect();
    let results = producer.send_batch(messages).await;
    let stored = results.iter().filter(|r| r.is_ok()).count();
    for (i, r) in results.iter().enumerate().take(3) {
        match r {
            Ok(r) => println!("message {i}: {} at offset {}", r.msg_id, r.queue_offset),
            Err(e) => println!("message {i}: {e}"),
        }
    }
    println!("{stored}/20 stored");
    producer.close(Duration::from_secs(5)).await;
    if stored == 20 {
        Ok(())
    } else {
        Err("batch incomplete".into())
    }
}
