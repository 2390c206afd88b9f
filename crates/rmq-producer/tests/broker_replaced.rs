//! E4 (producer half): a broker replaced at a new address. After the next route poll
//! the producer sends to the new address and closes its connection to the old one
//! (the route cache's `BrokersRemoved` event); nothing more reaches the old address.

mod common;

use std::time::Duration;

use common::{TOPIC, cluster};
use rmq_producer::{Message, MessageQueue, SendOptions};
use rmq_protocol::RequestCode;
use rmq_testkit::fake::{FakeBroker, Transport};

#[tokio::test(start_paused = true)]
async fn e4_sends_move_to_the_new_address_and_the_old_connection_closes() {
    let cluster = cluster().await;
    let Transport::Memory(net) = cluster.transport().clone() else {
        unreachable!("memory cluster")
    };
    let p = common::producer(&cluster).await;
    let old = cluster.broker("broker-a").expect("broker-a").clone();
    let to_a = || SendOptions::default().queue(MessageQueue::new(TOPIC, "broker-a", 0));
    p.send_with(Message::new(TOPIC, "before"), to_a())
        .await
        .expect("send to the old broker-a");
    assert_eq!(
        old.connection_count(),
        1,
        "positive control: connected to the old address"
    );

    let new = FakeBroker::builder("broker-a")
        .transport(Transport::Memory(net))
        .name_server(cluster.name_server())
        .topic(TOPIC, 4)
        .start()
        .await
        .expect("replacement broker");
    assert_ne!(new.addr(), old.addr());

    // The next poll (30 s) picks the new address up and closes the old connection.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let before = old.requests_with_code(RequestCode::SEND_MESSAGE_V2).len();
    let r = p
        .send_with(Message::new(TOPIC, "after"), to_a())
        .await
        .expect("send to the new broker-a");
    assert_eq!(
        new.find_by_uniq_key(&r.msg_id).len(),
        1,
        "stored at the new address"
    );
    assert_eq!(
        old.requests_with_code(RequestCode::SEND_MESSAGE_V2).len(),
        before,
        "nothing more reaches the old address"
    );
    assert_eq!(
        old.connection_count(),
        0,
        "the connection to the old address was closed"
    );
}
