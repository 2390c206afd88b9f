//! Auto-batching: many concurrent plain `send` calls gathered into a few batch
//! requests, each call still getting its own result; `close` flushes what is queued.

use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let producer = target
        .builder("auto_batch_group")
        .configure(|c| {
            c.auto_batch.enabled = true;
            c.auto_batch.linger = Duration::from_millis(5);
        })
        .build()
        .await?;
    // 200 concurrent sends, as a busy service would make them.
    let sends: Vec<_> = (0..200)
        .map(|i| {
            let producer = producer.clone();
            tokio::spawn(async move {
                producer
                    .send(Message::new(TOPIC, format!("auto {i}")))
                    .await
            })
        })
        .collect();
    let mut stored = 0;
    for (i, send) in sends.into_iter().enumerate() {
        match send.await? {
            Ok(r) if i < 3 => {
                println!(
                    "message {i}: {} in {} at offset {}",
                    r.msg_id, r.message_queue, r.queue_offset
                );
                stored += 1;
            }
            Ok(_) => stored += 1,
            Err(e) => println!("message {i}: {e}"),
        }
    }
    // Messages still queued when closing are sent at once, not dropped.
    let last = producer.clone();
    let tail = tokio::spawn(async move { last.send(Message::new(TOPIC, "last")).await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = producer.close(Duration::from_secs(5)).await;
    let last_ok = tail.await?.is_ok();
    let stats = producer.stats().auto_batch;
    println!(
        "{stored}/200 stored in {} batches (sealed: {} by size, {} by linger, {} by close); \
         close flushed {} message(s), {} unsent",
        stats.batches,
        stats.sealed_by_size,
        stats.sealed_by_linger,
        stats.sealed_by_close,
        report.batched_at_close,
        report.batched_unsent
    );
    if stored == 200 && last_ok && stats.batches < 200 {
        Ok(())
    } else {
        Err("auto-batching did not store every message in fewer requests".into())
    }
}
