//! One-way sends: no answer awaited (logs, metrics); the UNIQ_KEY is assigned first
//! so the application still knows each message's id.

use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let producer = target.builder("oneway_group").build().await?;
    for i in 0..5 {
        let mut message = Message::new(TOPIC, format!("log line {i}"));
        let id = producer.assign_uniq_key(&mut message).to_owned();
        producer.send_oneway(message).await?;
        println!("sent one-way {id}");
    }
    producer.close(Duration::from_secs(5)).await;
    Ok(())
}
