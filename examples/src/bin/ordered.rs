//! Ordered messages: every event of one order goes to the same queue, chosen by the
//! Java-compatible hash of the order id (a Java producer picks the same queue).

use std::sync::Arc;
use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::selector::{JavaHashSelector, SelectorArg};
use rmq_producer::{Message, SendOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let producer = target.builder("ordered_group").build().await?;
    let selector = Arc::new(JavaHashSelector);
    for order in ["order-1001", "order-1002"] {
        let mut queue = None;
        for step in ["created", "paid", "shipped"] {
            let options = SendOptions::default()
                .selector(selector.clone(), SelectorArg::Str(order.to_owned()));
            let r = producer
                .send_with(Message::new(TOPIC, format!("{order}: {step}")), options)
                .await?;
            println!(
                "{order} {step:>8} -> {} offset {}",
                r.message_queue, r.queue_offset
            );
            if queue.get_or_insert_with(|| r.message_queue.clone()) != &r.message_queue {
                return Err("an order's events went to different queues".into());
            }
        }
    }
    producer.close(Duration::from_secs(5)).await;
    Ok(())
}
