//! Delayed and timer messages: a delay level (1..=18, the broker's `1s 5s 10s 30s
//! 1m … 2h`), a relative delay in ms or s, or an absolute delivery time. One form per
//! message (each setter replaces the others); invalid delays fail before any I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmq_examples::{TOPIC, Target};
use rmq_producer::{Message, SendErrorKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let producer = target.builder("delayed_group").build().await?;

    let mut level = Message::new(TOPIC, "in 10 s (level 3)");
    level.set_delay_level(3);
    let mut secs = Message::new(TOPIC, "in 5 s");
    secs.set_delay_secs(5);
    let mut ms = Message::new(TOPIC, "in 1500 ms");
    ms.set_delay_ms(1500);
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let mut at = Message::new(TOPIC, "at now + 1 min");
    at.set_deliver_time_ms(now_ms + 60_000);
    for message in [level, secs, ms, at] {
        let what = String::from_utf8_lossy(message.body()).into_owned();
        let receipt = producer.send(message).await?;
        println!("{what}: stored as {}", receipt.msg_id);
    }

    // Level 19 is beyond a default broker's 18 levels: refused, nothing sent.
    let mut bad = Message::new(TOPIC, "never");
    bad.set_delay_level(19);
    let err = producer.send(bad).await.expect_err("refused");
    assert_eq!(err.kind(), SendErrorKind::InvalidMessage);
    println!("level 19 refused: {err}");

    producer.close(Duration::from_secs(5)).await;
    Ok(())
}
