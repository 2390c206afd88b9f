//! Namespace and ACL: one setting each. With `namespace = "tenant_a"` the topic and the
//! producer group go on the wire as `tenant_a%name` while the application (and every
//! result) keeps the plain names; with `access_key` + `secret_key` every request is
//! signed (ACL 1.0). The fake cluster here checks every signature and rejects a wrong
//! secret; on a real cluster without ACL the signature is ignored. `vip_channel = true`
//! (not shown: the fake has no VIP port) sends to the broker's listen port − 2.

use std::time::Duration;

use rmq_examples::{TOPIC, Target};
use rmq_producer::config::Secret;
use rmq_producer::{Delivery, Message, SendErrorKind};

const NAMESPACE: &str = "tenant_a";
const ACCESS_KEY: &str = "example_ak";
const SECRET_KEY: &str = "example_sk";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_args().await?;
    if let Some(fake) = &target.fake {
        // The namespaced topic exists on the wire under its wrapped name.
        fake.create_topic(&format!("{NAMESPACE}%{TOPIC}"), 4);
        fake.name_server().require_acl(ACCESS_KEY, SECRET_KEY);
        for broker in fake.brokers() {
            broker.require_acl(ACCESS_KEY, SECRET_KEY);
        }
    }

    let producer = target
        .builder("orders")
        .configure(|c| {
            c.namespace = Some(NAMESPACE.to_owned());
            c.access_key = Some(ACCESS_KEY.to_owned());
            c.secret_key = Some(Secret::new(SECRET_KEY));
        })
        .build()
        .await?;
    let receipt = producer
        .send(Message::new(TOPIC, "signed, namespaced"))
        .await?;
    // The application sees its own topic name, not `tenant_a%ExampleTopic`.
    assert_eq!(receipt.message_queue.topic, TOPIC);
    println!("stored {} in {}", receipt.msg_id, receipt.message_queue);

    if let Some(fake) = &target.fake {
        let stored = fake.find_by_uniq_key(&receipt.msg_id);
        println!(
            "on the wire the topic was {:?}",
            stored.first().map(|m| &m.topic)
        );

        // A wrong secret: refused by the broker, typed, not retried, message handed back.
        let forged = target
            .builder("orders")
            .configure(|c| {
                c.namespace = Some(NAMESPACE.to_owned());
                c.access_key = Some(ACCESS_KEY.to_owned());
                c.secret_key = Some(Secret::new("wrong"));
                c.tbw102_fallback = false;
            })
            .build()
            .await?;
        let err = forged
            .send(Message::new(TOPIC, "forged"))
            .await
            .expect_err("a wrong secret is refused");
        println!("wrong secret: {err}");
        assert!(matches!(
            err.kind(),
            SendErrorKind::Rejected | SendErrorKind::NoRoute
        ));
        assert_ne!(err.delivery(), Delivery::Indeterminate);
        forged.close(Duration::from_secs(5)).await;
    }
    producer.close(Duration::from_secs(5)).await;
    Ok(())
}
