//! Delay levels and timer messages through the producer, against the fake cluster:
//! each form reaches the broker as its property, and invalid delays fail before any
//! I/O with a typed, non-retryable error (positive control: a valid one is sent).

use std::error::Error as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmq_producer::{Delivery, Message, Producer, SendError, SendErrorKind};
use rmq_protocol::message::properties::keys;
use rmq_protocol::validate::{DelayError, MAX_TIMER_DELAY_MS, ValidationError};
use rmq_testkit::fake::{FakeCluster, Transport};

const TOPIC: &str = "DelayTopic";

/// A case name, the setter that delays the message, and the property value expected.
type SetCase = (&'static str, Box<dyn Fn(&mut Message)>, String);
/// A message with an invalid delay and the check of its error.
type BadCase = (Message, fn(&DelayError) -> bool);

async fn setup() -> (FakeCluster, Producer) {
    let cluster = FakeCluster::builder()
        .transport(Transport::memory())
        .topic(TOPIC, 4)
        .build()
        .await
        .expect("fake cluster");
    let producer = Producer::builder("delay_group")
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
        .build()
        .await
        .expect("producer");
    (cluster, producer)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The delay error inside a send error.
fn delay_error(e: &SendError) -> Option<&DelayError> {
    match e.source()?.downcast_ref::<ValidationError>()? {
        ValidationError::Delay(d) => Some(d),
        _ => None,
    }
}

#[tokio::test]
async fn every_delay_form_reaches_the_broker_as_its_property() {
    let (cluster, producer) = setup().await;
    let at = now_ms() + 60_000;
    let cases: [SetCase; 4] = [
        ("level", Box::new(|m| m.set_delay_level(3)), "3".into()),
        (
            "deliver-at",
            Box::new(move |m| m.set_deliver_time_ms(at)),
            at.to_string(),
        ),
        ("ms", Box::new(|m| m.set_delay_ms(4_500)), "4500".into()),
        ("sec", Box::new(|m| m.set_delay_secs(5)), "5".into()),
    ];
    let keys_by_case = [
        keys::DELAY,
        keys::TIMER_DELIVER_MS,
        keys::TIMER_DELAY_MS,
        keys::TIMER_DELAY_SEC,
    ];
    for ((name, set, want), key) in cases.iter().zip(keys_by_case) {
        let mut m = Message::new(TOPIC, *name);
        set(&mut m);
        let receipt = producer.send(m).await.expect("sent");
        let stored = cluster.find_by_uniq_key(&receipt.msg_id);
        assert_eq!(stored.len(), 1, "{name}");
        assert_eq!(stored[0].property(key), Some(want.as_str()), "{name}");
        for other in keys_by_case.iter().filter(|k| **k != key) {
            assert_eq!(stored[0].property(other), None, "{name}: only one form");
        }
    }
}

#[tokio::test]
async fn invalid_delays_fail_before_any_io_with_typed_errors() {
    let (cluster, producer) = setup().await;
    let now = now_ms();
    let mut level = Message::new(TOPIC, "level 19");
    level.set_delay_level(19);
    let mut far = Message::new(TOPIC, "four days");
    far.set_deliver_time_ms(now + 4 * 24 * 3600 * 1000);
    let mut far_ms = Message::new(TOPIC, "too long");
    far_ms.set_delay_ms(MAX_TIMER_DELAY_MS + 1);
    let mut both = Message::new(TOPIC, "two forms");
    both.set_delay_secs(5);
    both.put_system_property(keys::DELAY, "2").unwrap();
    let mut nan = Message::new(TOPIC, "nan");
    nan.put_system_property(keys::TIMER_DELAY_SEC, "soon")
        .unwrap();
    let mut tx = Message::new(TOPIC, "transactional");
    tx.set_delay_level(1);
    tx.put_system_property(keys::TRAN_MSG, "true").unwrap();

    let cases: Vec<BadCase> = vec![
        (level, |d| {
            matches!(d, DelayError::LevelOutOfRange { level: 19, max: 18 })
        }),
        (
            far,
            |d| matches!(d, DelayError::TooFar { key, .. } if *key == keys::TIMER_DELIVER_MS),
        ),
        (
            far_ms,
            |d| matches!(d, DelayError::TooFar { key, .. } if *key == keys::TIMER_DELAY_MS),
        ),
        (
            both,
            |d| matches!(d, DelayError::Conflicting { keys } if keys.len() == 2),
        ),
        (nan, |d| matches!(d, DelayError::NotANumber { .. })),
        (tx, |d| matches!(d, DelayError::InTransaction { .. })),
    ];
    for (message, expected) in cases {
        let body = String::from_utf8_lossy(message.body()).into_owned();
        let err = producer.send(message).await.expect_err(&body);
        assert_eq!(err.kind(), SendErrorKind::InvalidMessage, "{body}");
        assert_eq!(err.delivery(), Delivery::NotSent, "{body}");
        assert!(!err.is_retryable(), "{body}");
        assert_eq!(err.attempts(), 0, "{body}");
        let d = delay_error(&err).unwrap_or_else(|| panic!("{body}: no DelayError in {err:?}"));
        assert!(expected(d), "{body}: {d:?}");
        assert!(err.message().is_some(), "{body}: the message comes back");
    }
    assert_eq!(cluster.messages_for(TOPIC).len(), 0, "nothing was sent");

    // Positive control: the limits themselves pass.
    let mut ok = Message::new(TOPIC, "level 18");
    ok.set_delay_level(18);
    producer.send(ok).await.expect("level 18");
    let mut ok = Message::new(TOPIC, "two days");
    ok.set_deliver_time_ms(now + 2 * 24 * 3600 * 1000);
    producer.send(ok).await.expect("two days ahead");
    let mut ok = Message::new(TOPIC, "in the past");
    ok.set_deliver_time_ms(now - 10_000);
    producer
        .send(ok)
        .await
        .expect("a past delivery time is delivered at once");
    assert_eq!(cluster.messages_for(TOPIC).len(), 3);
}

#[tokio::test]
async fn delayed_messages_cannot_be_batched_and_requests_check_delays_too() {
    let (cluster, producer) = setup().await;
    let mut delayed = Message::new(TOPIC, "d");
    delayed.set_delay_level(2);
    let results = producer
        .send_batch(vec![Message::new(TOPIC, "a"), delayed])
        .await;
    assert!(results[0].is_ok(), "the undelayed message is sent");
    let err = results[1].as_ref().expect_err("no delay levels in batches");
    assert_eq!(err.kind(), SendErrorKind::InvalidMessage);
    let mut bad = Message::new(TOPIC, "bad");
    bad.set_delay_level(99);
    let err = producer
        .request(bad, Duration::from_secs(1))
        .await
        .expect_err("invalid delay");
    let send = err.send_error().expect("send error");
    assert!(delay_error(send).is_some(), "{send:?}");
    assert_eq!(
        cluster.messages_for(TOPIC).len(),
        1,
        "only the batch's valid message"
    );
}
