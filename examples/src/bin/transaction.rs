//! Transactional messages: a `TransactionProducer` with an async listener stores a
//! half message, runs the local transaction and commits or rolls back; a broker
//! check of an undecided transaction is answered through the listener. The
//! begin / commit handle does the same without a listener.
//!
//! Against the fake cluster (the default) the example plays the broker's check
//! itself; against a real cluster (`--namesrv ADDR`) the broker checks the `unknown`
//! transaction after its `transactionTimeout` (6 s by default, then every
//! `transactionCheckInterval`), so the example waits up to 90 s for it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::Message;
use rmq_producer::transaction::{
    BoxFuture, CheckRequest, LocalTransaction, TransactionListener, TransactionState,
};
use rmq_testkit::fake::HALF_TOPIC;

/// The "local database": orders whose local transaction committed.
#[derive(Default)]
struct Orders {
    committed: Mutex<HashSet<String>>,
}

impl TransactionListener for Orders {
    fn execute<'a>(&'a self, tx: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
        Box::pin(async move {
            let body = String::from_utf8_lossy(tx.message.body()).into_owned();
            if body.contains("declined") {
                return TransactionState::Rollback;
            }
            // Record the order with its transaction id, in one local transaction.
            self.committed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(tx.transaction_id.to_owned());
            if body.contains("slow") {
                // Pretend the local commit's outcome is not known yet.
                return TransactionState::Unknown;
            }
            TransactionState::Commit
        })
    }

    fn check<'a>(&'a self, check: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
        Box::pin(async move {
            let known = self
                .committed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&check.transaction_id);
            println!(
                "broker {} asks about {}: {}",
                check.broker_name.as_deref().unwrap_or("?"),
                check.transaction_id,
                if known { "committed" } else { "no record" }
            );
            if known {
                TransactionState::Commit
            } else {
                TransactionState::Rollback
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let producer = target
        .builder("transaction_example_group")
        .transactional()
        .listener(Arc::new(Orders::default()))
        .build()
        .await?;

    let mut slow_id = None;
    for order in ["order 1", "order 2 declined", "order 3 slow"] {
        let receipt = producer
            .send_in_transaction(Message::new(TOPIC, order))
            .await?;
        println!(
            "{order}: half message {} in {}, ended {}",
            receipt.transaction_id, receipt.send_result.message_queue, receipt.state
        );
        if receipt.state == TransactionState::Unknown {
            slow_id = Some(receipt.transaction_id);
        }
    }

    // Without a listener callback: begin, run the local work, commit.
    let tx = producer.begin(Message::new(TOPIC, "order 4")).await?;
    println!("order 4: begun as {}", tx.transaction_id());
    tx.commit().await?;

    // The broker checks the undecided transaction back.
    let slow_id = slow_id.ok_or("order 3 should be undecided")?;
    if let Some(fake) = &target.fake {
        // A fake broker checks when told to: wait for the heartbeat that registers the
        // group, then ask about the half message, as a real broker would.
        let (broker, half) = fake
            .brokers()
            .iter()
            .find_map(|b| {
                b.messages_for(HALF_TOPIC)
                    .into_iter()
                    .find(|m| m.uniq_key.as_deref() == Some(slow_id.as_str()))
                    .map(|m| (b.clone(), m))
            })
            .ok_or("the half message of order 3")?;
        broker
            .wait_until(|b| {
                b.producer_groups()
                    .contains_key("transaction_example_group")
            })
            .await;
        broker.check_transaction_state(&half).await?;
        let found = tokio::time::timeout(
            Duration::from_secs(10),
            fake.wait_until(|c| {
                c.messages_for(TOPIC)
                    .iter()
                    .any(|m| m.uniq_key.as_deref() == Some(slow_id.as_str()))
            }),
        )
        .await;
        if found.is_err() {
            return Err("order 3 was not committed by its check".into());
        }
        let visible: Vec<String> = fake
            .messages_for(TOPIC)
            .iter()
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .collect();
        println!("visible to consumers: {visible:?}");
        if visible.iter().any(|b| b.contains("declined")) || visible.len() != 3 {
            return Err("expected orders 1, 3 and 4 only".into());
        }
    } else {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while producer.check_stats().answered == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!("check handler: {:?}", producer.check_stats());
    }
    producer.close(Duration::from_secs(5)).await;
    Ok(())
}
