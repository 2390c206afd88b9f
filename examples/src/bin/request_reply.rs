//! Request-reply: `Producer::request` sends a message and waits for the responder's
//! reply, which the broker pushes back to this client.
//!
//! Against the fake cluster (the default) a second producer plays the responder: it
//! reads each request as a consumer would (here from the fake broker's store), builds
//! the reply with `create_reply_message` and sends it. With `--namesrv ADDR` the
//! requests go to a real cluster and a responder of your own must answer them (for
//! example a Java consumer calling `MessageUtil.createReplyMessage`).

use std::collections::HashSet;
use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::request::{RequestError, create_reply_message};
use rmq_producer::{Message, Producer};
use rmq_testkit::fake::FakeCluster;

/// Answers every request stored in `TOPIC` with its body upper-cased.
fn spawn_responder(fake: FakeCluster, responder: Producer) {
    tokio::spawn(async move {
        let mut answered = HashSet::new();
        loop {
            let seen = answered.len();
            fake.wait_until(|c| c.messages_for(TOPIC).len() > seen)
                .await;
            for stored in fake.messages_for(TOPIC) {
                if !answered.insert(stored.offset_msg_id.clone()) {
                    continue;
                }
                let request = Message::from_parts(
                    stored.topic,
                    stored.body.clone(),
                    stored.flag,
                    stored.properties,
                );
                let answer = String::from_utf8_lossy(&stored.body).to_uppercase();
                match create_reply_message(&request, answer) {
                    Ok(reply) => {
                        if let Err(e) = responder.send(reply).await {
                            eprintln!("responder: reply failed: {e}");
                        }
                    }
                    Err(e) => eprintln!("responder: not a request: {e}"),
                }
            }
        }
    });
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    let requester = target.builder("requester_group").build().await?;
    if let Some(fake) = &target.fake {
        // Replies go to `<cluster>_REPLY_TOPIC`; a Java broker creates it at start.
        fake.create_topic(&fake.brokers()[0].reply_topic(), 1);
        let responder = target.builder("responder_group").build().await?;
        spawn_responder(fake.clone(), responder);
    }
    for question in ["ping", "how are you?", "bye"] {
        match requester
            .request(Message::new(TOPIC, question), Duration::from_secs(3))
            .await
        {
            Ok(reply) => println!(
                "{question:?} -> {:?} (correlation id {})",
                String::from_utf8_lossy(reply.body()),
                reply.correlation_id().unwrap_or("?")
            ),
            Err(RequestError::Timeout { sent, .. }) => {
                println!(
                    "{question:?}: no reply in time (request stored as {})",
                    sent.msg_id
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(requester.stats().pending_requests, 0);
    requester.close(Duration::from_secs(5)).await;
    Ok(())
}
