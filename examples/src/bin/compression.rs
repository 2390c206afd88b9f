//! Compression: bodies of 4 KiB and more are compressed on the wire (zlib level 5 by
//! default; zstd and lz4 selectable). The message you pass is never changed.

use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::{CompressionType, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    for kind in [
        CompressionType::Zlib,
        CompressionType::Zstd,
        CompressionType::Lz4,
    ] {
        let producer = target
            .builder("compression_group")
            .configure(|c| {
                c.compression.kind = kind;
                c.compression.threshold = 4096;
            })
            .build()
            .await?;
        let body = "a fairly repetitive JSON document ".repeat(400);
        let r = producer.send(Message::new(TOPIC, body.clone())).await?;
        println!("{kind:?}: {} bytes sent as {}", body.len(), r.msg_id);
        if let Some(fake) = &target.fake {
            let stored = &fake.find_by_uniq_key(&r.msg_id)[0];
            println!(
                "   stored {} bytes with sysFlag {:#x}",
                stored.body.len(),
                stored.sys_flag
            );
        }
        producer.close(Duration::from_secs(5)).await;
    }
    Ok(())
}
