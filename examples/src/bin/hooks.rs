//! Hooks: a send hook that sees every attempt (here: counts and logs them) and a
//! check-forbidden hook that vetoes messages before anything is sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::hook::{AttemptContext, AttemptOutcome, CheckForbiddenHook, SendHook};
use rmq_producer::{Message, SendErrorKind};

#[derive(Debug, Default)]
struct Metrics {
    attempts: AtomicU32,
}

impl SendHook for Metrics {
    fn before_attempt(&self, ctx: &AttemptContext<'_>) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        println!(
            "attempt {} of {} to {}",
            ctx.attempt,
            ctx.message.uniq_key().unwrap_or("?"),
            ctx.broker_addr
        );
    }

    fn after_attempt(
        &self,
        _ctx: &AttemptContext<'_>,
        outcome: AttemptOutcome<'_>,
        elapsed: Duration,
    ) {
        match outcome {
            AttemptOutcome::Stored(r) => println!("  stored in {elapsed:?} at {}", r.message_queue),
            AttemptOutcome::Failed(e) => println!("  failed in {elapsed:?}: {e}"),
        }
    }
}

#[derive(Debug)]
struct NoSecrets;

impl CheckForbiddenHook for NoSecrets {
    fn check(&self, message: &Message) -> Result<(), String> {
        if message.body().windows(8).any(|w| w == b"PASSWORD") {
            return Err("message body contains a password".into());
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let metrics = Arc::new(Metrics::default());
    let producer = target
        .builder("hooks_group")
        .send_hook(metrics.clone())
        .check_forbidden_hook(Arc::new(NoSecrets))
        .build()
        .await?;
    producer
        .send(Message::new(TOPIC, "an ordinary message"))
        .await?;
    let vetoed = producer
        .send(Message::new(TOPIC, "PASSWORD=hunter2"))
        .await
        .expect_err("vetoed");
    assert_eq!(vetoed.kind(), SendErrorKind::HookVeto);
    let back = vetoed
        .into_message()
        .ok_or("the vetoed message is handed back")?;
    println!("vetoed and handed back: {} bytes", back.body().len());
    println!(
        "attempts seen by the hook: {}",
        metrics.attempts.load(Ordering::Relaxed)
    );
    producer.close(Duration::from_secs(5)).await;
    Ok(())
}
