//! The producer's detector: a broker isolated after a failure is probed with
//! GET_MAX_OFFSET every 3 s, and probes stop once it is healthy again; dropping the
//! producer stops the background tasks (no more heartbeats or probes).

mod common;

use std::time::Duration;

use common::{TOPIC, broker, cluster, producer};
use rmq_producer::Message;
use rmq_protocol::RequestCode;

#[tokio::test(start_paused = true)]
async fn isolated_broker_is_probed_then_background_stops_on_drop() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let a = broker(&cluster, "broker-a");
    // Every send to broker-a fails at the transport: it gets isolated.
    a.script(RequestCode::SEND_MESSAGE_V2)
        .drop_connection()
        .times(3);
    for i in 0..6 {
        p.send(Message::new(TOPIC, format!("m{i}")))
            .await
            .expect("sends fail over to broker-b");
    }
    assert!(
        p.stats().isolated_brokers.contains(&"broker-a".to_owned()),
        "{:?}",
        p.stats().isolated_brokers
    );
    tokio::time::sleep(Duration::from_secs(7)).await;
    let probes = a.requests_with_code(RequestCode::GET_MAX_OFFSET).len();
    assert!(probes >= 1, "the isolated broker was probed");
    assert!(
        broker(&cluster, "broker-b")
            .requests_with_code(RequestCode::GET_MAX_OFFSET)
            .is_empty(),
        "healthy brokers are not probed"
    );

    // Heartbeats reach the brokers of the routes in use.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let heartbeats = a.requests_with_code(RequestCode::HEART_BEAT).len();
    assert!(heartbeats >= 1);
    drop(p);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_drop = a.requests_with_code(RequestCode::HEART_BEAT).len();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        a.requests_with_code(RequestCode::HEART_BEAT).len(),
        after_drop,
        "no heartbeat after the producer was dropped"
    );
}
