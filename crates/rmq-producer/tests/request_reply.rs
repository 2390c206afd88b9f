//! Request-reply against the fake cluster: the requester's wire properties, the
//! responder's SEND_REPLY_MESSAGE_V2, the broker's push to the requester's connection,
//! correlation under concurrency, timeouts, dropped futures, late and misrouted
//! replies, compressed replies and shutdown. Every test ends with no pending request.

use std::collections::HashSet;
use std::time::Duration;

use rmq_producer::request::{RequestError, create_reply_message};
use rmq_producer::{Message, Producer, SendErrorKind};
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::message::properties::{decode_properties, keys};
use rmq_protocol::{RequestCode, ResponseCode};
use rmq_testkit::fake::{FakeCluster, StoredMessage, Transport};

const TOPIC: &str = "RequestTopic";
const T: Duration = Duration::from_secs(5);

async fn cluster() -> FakeCluster {
    let cluster = FakeCluster::builder()
        .brokers(["broker-a", "broker-b"])
        .transport(Transport::memory())
        .topic(TOPIC, 4)
        .build()
        .await
        .expect("fake cluster");
    let reply_topic = cluster.brokers()[0].reply_topic();
    cluster.create_topic(&reply_topic, 1);
    cluster
}

async fn producer(cluster: &FakeCluster, group: &str) -> Producer {
    Producer::builder(group)
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
        .build()
        .await
        .expect("producer")
}

fn as_message(s: &StoredMessage) -> Message {
    Message::from_parts(
        s.topic.clone(),
        s.body.clone(),
        s.flag,
        s.properties.clone(),
    )
}

/// Answers every request stored in [`TOPIC`] with `re:<body>` until `replies_wanted`
/// messages (requests or not) were seen.
fn spawn_responder(cluster: &FakeCluster, responder: Producer, replies_wanted: usize) {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let mut answered = HashSet::new();
        while answered.len() < replies_wanted {
            let seen = answered.len();
            cluster
                .wait_until(|c| c.messages_for(TOPIC).len() > seen)
                .await;
            let mut fresh: Vec<StoredMessage> = cluster
                .messages_for(TOPIC)
                .into_iter()
                .filter(|m| !answered.contains(&m.offset_msg_id))
                .collect();
            // Answer in reverse arrival order: correlation, not order, matches replies.
            fresh.reverse();
            for m in fresh {
                answered.insert(m.offset_msg_id.clone());
                if m.property(keys::CORRELATION_ID).is_none() {
                    continue; // not a request
                }
                let mut body = b"re:".to_vec();
                body.extend_from_slice(&m.body);
                let reply = create_reply_message(&as_message(&m), body).expect("reply");
                responder.send(reply).await.expect("reply sent");
            }
        }
    });
}

#[tokio::test]
async fn request_gets_its_reply_through_the_broker() {
    let cluster = cluster().await;
    let requester = producer(&cluster, "requester_group").await;
    let responder = producer(&cluster, "responder_group").await;
    spawn_responder(&cluster, responder.clone(), 1);

    let reply = requester
        .request(Message::new(TOPIC, "ping"), T)
        .await
        .expect("reply");
    assert_eq!(reply.body().as_ref(), b"re:ping");
    assert_eq!(reply.topic(), "DefaultCluster_REPLY_TOPIC");
    assert_eq!(reply.property(keys::MSG_TYPE), Some("reply"));
    assert!(reply.property(keys::ARRIVE_TIME).is_some());
    assert!(reply.property(keys::PUSH_REPLY_TIME).is_some());
    assert_eq!(requester.stats().pending_requests, 0);

    // The request on the wire: correlation id, the requester's client id, TTL.
    let stored = cluster.messages_for(TOPIC);
    assert_eq!(stored.len(), 1);
    let req = &stored[0];
    let cid = req.property(keys::CORRELATION_ID).expect("CORRELATION_ID");
    assert_eq!(reply.correlation_id(), Some(cid));
    assert_eq!(
        req.property(keys::REPLY_TO_CLIENT),
        Some(requester.client_id())
    );
    assert_eq!(req.property(keys::TTL), Some("5000"));

    // The requester heartbeated before its request (so the broker could find it).
    for b in cluster.brokers() {
        assert!(
            b.clients().contains_key(requester.client_id()),
            "{}",
            b.name()
        );
    }

    // The reply went out as SEND_REPLY_MESSAGE_V2 and was routed successfully. The
    // broker records a routed reply once the requester acknowledged the push, so the
    // requester may hold its reply a moment before the record exists.
    let routed = || -> Vec<_> { cluster.brokers().iter().flat_map(|b| b.replies()).collect() };
    tokio::time::timeout(T, cluster.wait_until(|_| !routed().is_empty()))
        .await
        .expect("the routed reply is recorded");
    let routed = routed();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].outcome, Ok(()));
    assert_eq!(routed[0].correlation_id.as_deref(), Some(cid));
    let reply_sends: usize = cluster
        .brokers()
        .iter()
        .map(|b| {
            b.requests_with_code(RequestCode::SEND_REPLY_MESSAGE_V2)
                .len()
        })
        .sum();
    assert_eq!(reply_sends, 1);
    let header: SendMessageRequestHeaderV2 = cluster
        .brokers()
        .iter()
        .flat_map(|b| b.requests_with_code(RequestCode::SEND_REPLY_MESSAGE_V2))
        .next()
        .expect("reply request")
        .header()
        .expect("V2 header");
    let props = decode_properties(header.properties.as_deref().unwrap_or(""));
    assert_eq!(props.get(keys::CORRELATION_ID), Some(cid));
    // Ordinary sends still use SEND_MESSAGE_V2.
    assert!(cluster.brokers().iter().any(|b| {
        !b.requests_with_code(RequestCode::SEND_MESSAGE_V2)
            .is_empty()
    }));
}

#[tokio::test]
async fn concurrent_requests_are_matched_by_correlation_id() {
    let cluster = cluster().await;
    let requester = producer(&cluster, "requester_group").await;
    let responder = producer(&cluster, "responder_group").await;
    const N: usize = 20;
    spawn_responder(&cluster, responder, N);
    let calls = (0..N).map(|i| {
        let p = requester.clone();
        tokio::spawn(async move { (i, p.request(Message::new(TOPIC, format!("q{i}")), T).await) })
    });
    for call in futures_join(calls.collect()).await {
        let (i, reply) = call;
        let reply = reply.expect("reply");
        assert_eq!(reply.body().as_ref(), format!("re:q{i}").as_bytes());
    }
    assert_eq!(requester.stats().pending_requests, 0);
}

async fn futures_join<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn no_reply_times_out_at_the_deadline_and_cleans_up() {
    let cluster = cluster().await;
    let requester = producer(&cluster, "requester_group").await;
    let started = tokio::time::Instant::now();
    let err = requester
        .request(Message::new(TOPIC, "anyone?"), Duration::from_millis(800))
        .await
        .expect_err("nobody answers");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_millis(850),
        "{waited:?}"
    );
    match &err {
        RequestError::Timeout {
            correlation_id,
            timeout,
            sent,
        } => {
            assert_eq!(*timeout, Duration::from_millis(800));
            assert!(!sent.msg_id.is_empty());
            let stored = cluster.messages_for(TOPIC);
            assert_eq!(stored.len(), 1, "the request itself was stored");
            assert_eq!(
                stored[0].property(keys::CORRELATION_ID),
                Some(correlation_id.as_str())
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.is_timeout() && err.is_retryable());
    assert_eq!(requester.stats().pending_requests, 0);
}

#[tokio::test]
async fn dropping_the_request_future_removes_the_pending_entry() {
    let cluster = cluster().await;
    let requester = producer(&cluster, "requester_group").await;
    let p = requester.clone();
    let task = tokio::spawn(async move { p.request(Message::new(TOPIC, "slow"), T).await });
    tokio::time::timeout(T, cluster.wait_until(|c| !c.messages_for(TOPIC).is_empty()))
        .await
        .expect("request stored");
    // Positive control: the request waits for its reply.
    assert_eq!(requester.stats().pending_requests, 1);
    task.abort();
    let _ = task.await;
    assert_eq!(requester.stats().pending_requests, 0);
}

#[tokio::test]
async fn a_late_reply_is_acknowledged_and_dropped() {
    let cluster = cluster().await;
    let requester = producer(&cluster, "requester_group").await;
    let responder = producer(&cluster, "responder_group").await;
    let err = requester
        .request(Message::new(TOPIC, "late"), Duration::from_millis(200))
        .await
        .expect_err("no reply in time");
    assert!(matches!(err, RequestError::Timeout { .. }));
    // The responder answers after the requester gave up.
    let request = as_message(&cluster.messages_for(TOPIC)[0]);
    let reply = create_reply_message(&request, "too late").expect("reply");
    responder.send(reply).await.expect("the broker pushed it");
    let routed: Vec<_> = cluster.brokers().iter().flat_map(|b| b.replies()).collect();
    assert_eq!(routed.len(), 1);
    assert_eq!(
        routed[0].outcome,
        Ok(()),
        "the requester acknowledged the push"
    );
    assert_eq!(requester.stats().pending_requests, 0);
    // The requester still works.
    spawn_responder(&cluster, responder, 2);
    let reply = requester
        .request(Message::new(TOPIC, "again"), T)
        .await
        .expect("reply");
    assert_eq!(reply.body().as_ref(), b"re:again");
}

#[tokio::test]
async fn a_reply_for_an_unknown_client_fails_the_responders_send() {
    let cluster = cluster().await;
    let responder = producer(&cluster, "responder_group").await;
    let mut request = Message::new(TOPIC, "orphan");
    for (k, v) in [
        (keys::CLUSTER, "DefaultCluster"),
        (keys::CORRELATION_ID, "c-orphan"),
        (keys::REPLY_TO_CLIENT, "10.9.9.9@gone"),
    ] {
        request.put_system_property(k, v).unwrap();
    }
    let reply = create_reply_message(&request, "x").unwrap();
    let err = responder.send(reply).await.expect_err("nobody to push to");
    assert_eq!(err.kind(), SendErrorKind::Rejected);
    assert_eq!(err.response_code(), Some(ResponseCode::SYSTEM_ERROR));
    let routed: Vec<_> = cluster.brokers().iter().flat_map(|b| b.replies()).collect();
    assert!(!routed.is_empty());
    assert!(
        routed
            .iter()
            .all(|r| r.outcome.is_err() && r.pushed_to.is_none())
    );
}

#[tokio::test]
async fn a_compressed_reply_arrives_decompressed() {
    let cluster = cluster().await;
    let requester = producer(&cluster, "requester_group").await;
    let responder = Producer::builder("responder_group")
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
        .configure(|c| c.compression.threshold = 16)
        .build()
        .await
        .expect("responder");
    let big = "x".repeat(64 * 1024);
    let c2 = cluster.clone();
    let body = big.clone();
    tokio::spawn(async move {
        c2.wait_until(|c| !c.messages_for(TOPIC).is_empty()).await;
        let request = as_message(&c2.messages_for(TOPIC)[0]);
        let reply = create_reply_message(&request, body).unwrap();
        responder.send(reply).await.unwrap();
    });
    let reply = requester
        .request(Message::new(TOPIC, "big please"), T)
        .await
        .expect("reply");
    assert_eq!(reply.body().len(), big.len());
    assert_eq!(reply.body().as_ref(), big.as_bytes());
    // Positive control: it really travelled compressed.
    let header: SendMessageRequestHeaderV2 = cluster
        .brokers()
        .iter()
        .flat_map(|b| b.requests_with_code(RequestCode::SEND_REPLY_MESSAGE_V2))
        .next()
        .unwrap()
        .header()
        .unwrap();
    assert_ne!(header.sys_flag & 0x1, 0, "compressed flag");
}

#[tokio::test]
async fn a_request_that_cannot_be_sent_is_a_send_error() {
    let cluster = cluster().await;
    let requester = Producer::builder("requester_group")
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
        .configure(|c| c.tbw102_fallback = false)
        .build()
        .await
        .expect("producer");
    let err = requester
        .request(Message::new("NoSuchTopic", "x"), Duration::from_secs(1))
        .await
        .expect_err("no route");
    let send = err.send_error().expect("a send error");
    assert_eq!(send.kind(), SendErrorKind::TopicNotFound);
    assert_eq!(requester.stats().pending_requests, 0);
    // A reply message is not a request.
    let mut reply = Message::new(TOPIC, "x");
    reply.put_system_property(keys::MSG_TYPE, "reply").unwrap();
    let err = requester.request(reply, T).await.expect_err("refused");
    assert_eq!(
        err.send_error().map(|e| e.kind()),
        Some(SendErrorKind::InvalidMessage)
    );
}

#[tokio::test]
async fn closing_the_producer_ends_a_waiting_request() {
    let cluster = cluster().await;
    let requester = producer(&cluster, "requester_group").await;
    let p = requester.clone();
    let task = tokio::spawn(async move { p.request(Message::new(TOPIC, "bye"), T).await });
    tokio::time::timeout(T, cluster.wait_until(|c| !c.messages_for(TOPIC).is_empty()))
        .await
        .expect("request stored");
    requester.close(Duration::from_secs(1)).await;
    let err = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("ends before its deadline")
        .expect("task")
        .expect_err("shut down");
    assert!(matches!(err, RequestError::Shutdown { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(requester.stats().pending_requests, 0);
}

#[tokio::test]
async fn a_request_after_plain_sends_heartbeats_before_it_is_sent() {
    let cluster = cluster().await;
    let requester = producer(&cluster, "requester_group").await;
    let responder = producer(&cluster, "responder_group").await;
    // A plain send caches the route long before the periodic heartbeat (1 s) runs.
    requester
        .send(Message::new(TOPIC, "plain"))
        .await
        .expect("plain send");
    let before: usize = cluster
        .brokers()
        .iter()
        .map(|b| b.requests_with_code(RequestCode::HEART_BEAT).len())
        .sum();
    assert_eq!(before, 0, "positive control: no heartbeat yet");
    spawn_responder(&cluster, responder, 2);
    let reply = requester
        .request(Message::new(TOPIC, "after"), T)
        .await
        .expect("reply");
    assert_eq!(reply.body().as_ref(), b"re:after");
    // Every broker of the route saw a heartbeat before the request's send.
    for b in cluster.brokers() {
        let hb = b.requests_with_code(RequestCode::HEART_BEAT);
        let first_hb = hb.first().map(|r| r.seq).expect("heartbeated");
        if let Some(req) = b
            .requests_with_code(RequestCode::SEND_MESSAGE_V2)
            .iter()
            .find(|r| r.body() == b"after")
        {
            assert!(first_hb < req.seq, "{}: heartbeat first", b.name());
        }
    }
}
