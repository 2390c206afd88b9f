//! Sending from synchronous code (no `async fn main`): build one runtime for the
//! whole program and keep the producer on it, then either
//!
//! 1. enter the runtime and use `send_with_callback`, collecting results on a std
//!    channel — the sending thread never blocks per message, and the answers are
//!    handled on the runtime's workers; or
//! 2. call `Runtime::block_on(producer.send(..))` for a message whose result the code
//!    needs before going on. Simple, but each call parks this thread until the answer
//!    and pays a thread wake-up for it (docs/benchmarks.md: 40–65 µs on a small VM,
//!    against about 7 µs for a send awaited inside a task), so do not use it in a loop
//!    over many messages.
//!
//! Never create a runtime per send, and never call `block_on` from inside the
//! runtime (for example from a callback): that panics.

use std::sync::mpsc;
use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One runtime for the program's lifetime; the producer's connections and
    // background tasks live on it.
    let rt = tokio::runtime::Runtime::new()?;
    let (target, producer) = rt.block_on(async {
        let target = Target::from_args().await?;
        let producer = target.builder("from_sync_group").build().await?;
        Ok::<_, Box<dyn std::error::Error>>((target, producer))
    })?;

    // 1. Many messages: callbacks, results on a std channel.
    let (tx, rx) = mpsc::channel();
    {
        // `send_with_callback` spawns onto the current runtime: enter it.
        let _entered = rt.enter();
        for i in 0..20 {
            let tx = tx.clone();
            producer.send_with_callback(
                Message::new(TOPIC, format!("from sync code {i}")),
                move |result| {
                    let _ = tx.send((i, result.map(|r| r.msg_id.into_string())));
                },
            );
        }
    }
    drop(tx);
    let mut stored = 0;
    for (i, result) in rx {
        match result {
            Ok(id) => {
                stored += 1;
                println!("message {i}: stored as {id}");
            }
            Err(e) => println!("message {i}: failed: {e}"),
        }
    }
    println!("{stored}/20 stored through callbacks");

    // 2. One message whose result this code waits for.
    let receipt = rt.block_on(producer.send(Message::new(TOPIC, "one that must be stored")))?;
    println!(
        "the blocking send was stored as {} in {}",
        receipt.msg_id, receipt.message_queue
    );

    rt.block_on(producer.close(Duration::from_secs(5)));
    drop(target);
    if stored == 20 {
        Ok(())
    } else {
        Err("not every message was stored".into())
    }
}
