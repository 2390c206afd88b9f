//! Sends in the background with a callback per message (called exactly once), and
//! waits for all of them.

use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let producer = target.builder("callbacks_group").build().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..10 {
        let tx = tx.clone();
        producer.send_with_callback(
            Message::new(TOPIC, format!("async message {i}")),
            move |result| {
                let _ = tx.send((i, result));
            },
        );
    }
    drop(tx);
    let mut ok = 0;
    while let Some((i, result)) = rx.recv().await {
        match result {
            Ok(r) => {
                ok += 1;
                println!("message {i}: stored as {} on {}", r.msg_id, r.message_queue);
            }
            Err(e) => println!(
                "message {i}: failed ({:?}, may be stored: {:?})",
                e.kind(),
                e.delivery()
            ),
        }
    }
    println!("{ok}/10 stored");
    producer.close(Duration::from_secs(5)).await;
    if ok == 10 {
        Ok(())
    } else {
        Err("not every message was stored".into())
    }
}
