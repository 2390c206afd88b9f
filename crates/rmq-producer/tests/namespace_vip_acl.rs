//! Namespace, VIP channel and ACL end to end through the producer API, checked
//! against the fake cluster's record of requests (the fake's ACL verifier is written
//! independently of the client's signer and checked against the golden vectors of
//! protocol.md section 13.1).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_producer::request::create_reply_message;
use rmq_producer::{Delivery, Message, Producer, ProducerBuilder, ResponseCode, SendErrorKind};
use rmq_protocol::header::heartbeat::HeartbeatData;
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::message::properties::{decode_properties, keys};
use rmq_protocol::{RemotingCommand, RequestCode};
use rmq_remoting::{BoxFuture, BoxStream, Connector};
use rmq_testkit::fake::acl::{AclVerdict, hmac_sha1_base64};
use rmq_testkit::fake::{FakeCluster, StoredMessage, Transport};

const T: Duration = Duration::from_secs(5);

async fn cluster(topics: &[&str]) -> FakeCluster {
    let mut b = FakeCluster::builder()
        .brokers(["broker-a", "broker-b"])
        .transport(Transport::memory());
    for t in topics {
        b = b.topic(*t, 4);
    }
    b.build().await.expect("fake cluster")
}

fn builder(cluster: &FakeCluster, group: &str) -> ProducerBuilder {
    Producer::builder(group)
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
}

fn requests(cluster: &FakeCluster, code: RequestCode) -> Vec<RemotingCommand> {
    cluster
        .brokers()
        .iter()
        .flat_map(|b| b.requests_with_code(code))
        .map(|r| r.command)
        .collect()
}

// ----- namespace -----

#[tokio::test]
async fn namespace_wraps_topic_and_group_on_the_wire_and_unwraps_results() {
    let cluster = cluster(&["ns1%Orders"]).await;
    let producer = builder(&cluster, "billing")
        .configure(|c| c.namespace = Some("ns1".into()))
        .build()
        .await
        .expect("producer");

    let receipt = producer
        .send(Message::new("Orders", "n1"))
        .await
        .expect("sent");
    assert_eq!(
        receipt.message_queue.topic, "Orders",
        "unwrapped for the user"
    );

    // On the wire: the wrapped topic and group, and INSTANCE_ID.
    let sends = requests(&cluster, RequestCode::SEND_MESSAGE_V2);
    assert_eq!(sends.len(), 1);
    let h: SendMessageRequestHeaderV2 = sends[0].decode_header().expect("V2 header");
    assert_eq!(h.topic, "ns1%Orders");
    assert_eq!(h.producer_group, "ns1%billing");
    let props = decode_properties(h.properties.as_deref().unwrap_or(""));
    assert_eq!(props.get(keys::INSTANCE_ID), Some("ns1"));
    let routes = cluster
        .name_server()
        .requests_with_code(RequestCode::GET_ROUTEINFO_BY_TOPIC);
    assert!(
        routes
            .iter()
            .any(|r| r.field("topic") == Some("ns1%Orders")),
        "route asked for the wrapped topic"
    );
    assert!(
        routes.iter().all(|r| r.field("topic") != Some("Orders")),
        "never for the bare one"
    );
    let stored = cluster.messages_for("ns1%Orders");
    assert_eq!(stored.len(), 1);
    assert_eq!(cluster.messages_for("Orders").len(), 0);

    // Heartbeats register the wrapped group.
    tokio::time::timeout(
        T,
        cluster.wait_until(|c| {
            !c.brokers()[0]
                .requests_with_code(RequestCode::HEART_BEAT)
                .is_empty()
        }),
    )
    .await
    .expect("a heartbeat");
    let hb = &requests(&cluster, RequestCode::HEART_BEAT)[0];
    let data = HeartbeatData::from_json(hb.body_bytes()).expect("heartbeat body");
    assert!(
        data.producer_data_set
            .iter()
            .any(|p| p.group_name == "ns1%billing"),
        "{data:?}"
    );

    // Batches and failures are unwrapped too.
    let results = producer
        .send_batch(vec![
            Message::new("Orders", "b1"),
            Message::new("Orders", "b2"),
        ])
        .await;
    for r in &results {
        assert_eq!(r.as_ref().expect("batch").message_queue.topic, "Orders");
    }
    assert_eq!(cluster.messages_for("ns1%Orders").len(), 3);
    cluster.brokers()[0]
        .script(RequestCode::SEND_MESSAGE_V2)
        .reply(ResponseCode::MESSAGE_ILLEGAL);
    cluster.brokers()[1]
        .script(RequestCode::SEND_MESSAGE_V2)
        .reply(ResponseCode::MESSAGE_ILLEGAL);
    let err = producer
        .send(Message::new("Orders", "bad"))
        .await
        .expect_err("rejected");
    assert_eq!(err.message().map(Message::topic), Some("Orders"));
}

#[tokio::test]
async fn namespace_request_reply_round_trip() {
    let cluster = cluster(&["ns1%Ask"]).await;
    let reply_topic = cluster.brokers()[0].reply_topic();
    cluster.create_topic(&reply_topic, 1);
    let requester = builder(&cluster, "asker")
        .configure(|c| c.namespace = Some("ns1".into()))
        .build()
        .await
        .expect("requester");
    let responder = builder(&cluster, "answerer")
        .build()
        .await
        .expect("responder");
    let c2 = cluster.clone();
    tokio::spawn(async move {
        c2.wait_until(|c| !c.messages_for("ns1%Ask").is_empty())
            .await;
        let s: StoredMessage = c2.messages_for("ns1%Ask").remove(0);
        let request = Message::from_parts(s.topic, s.body, s.flag, s.properties);
        let reply = create_reply_message(&request, "yes").expect("reply");
        responder.send(reply).await.expect("reply sent");
    });
    let reply = requester
        .request(Message::new("Ask", "?"), T)
        .await
        .expect("reply");
    assert_eq!(reply.body().as_ref(), b"yes");
    // The reply topic is a system topic: never wrapped.
    assert_eq!(reply.topic(), reply_topic);
    assert_eq!(requester.stats().pending_requests, 0);
}

// ----- VIP channel -----

/// Records every address dialed and maps the VIP port (listen − 2) to the broker's
/// listen port, since a fake broker listens on one address.
#[derive(Debug)]
struct VipMap {
    inner: Arc<dyn Connector>,
    brokers: Vec<String>,
    dialed: Mutex<Vec<String>>,
}

impl Connector for VipMap {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        self.dialed.lock().unwrap().push(addr.to_owned());
        let mapped = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some(format!("{h}:{}", p.parse::<u16>().ok()? + 2)))
            .filter(|a| self.brokers.contains(a))
            .unwrap_or_else(|| addr.to_owned());
        Box::pin(async move { self.inner.connect(&mapped).await })
    }
}

#[tokio::test]
async fn vip_channel_sends_to_port_minus_two_and_heartbeats_to_the_listen_port() {
    let cluster = cluster(&["VipTopic"]).await;
    let brokers: Vec<String> = cluster
        .brokers()
        .iter()
        .map(|b| b.addr().to_owned())
        .collect();
    let vip = |addr: &str| {
        let (h, p) = addr.rsplit_once(':').unwrap();
        format!("{h}:{}", p.parse::<u16>().unwrap() - 2)
    };
    let connector = Arc::new(VipMap {
        inner: cluster.connector(),
        brokers: brokers.clone(),
        dialed: Mutex::new(Vec::new()),
    });
    let producer = Producer::builder("vip_group")
        .namesrv(cluster.name_server_addr())
        .connector(connector.clone())
        .configure(|c| c.vip_channel = true)
        .build()
        .await
        .expect("producer");
    for i in 0..8 {
        producer
            .send(Message::new("VipTopic", format!("v{i}")))
            .await
            .expect("sent");
    }
    tokio::time::timeout(
        T,
        cluster.wait_until(|c| {
            c.brokers()
                .iter()
                .all(|b| !b.requests_with_code(RequestCode::HEART_BEAT).is_empty())
        }),
    )
    .await
    .expect("heartbeats");
    let dialed = connector.dialed.lock().unwrap().clone();
    for addr in &brokers {
        assert!(
            dialed.contains(&vip(addr)),
            "sends dial {} ({dialed:?})",
            vip(addr)
        );
        assert!(dialed.contains(addr), "heartbeats dial {addr} ({dialed:?})");
    }
    // On each broker, sends and heartbeats came on different connections.
    for b in cluster.brokers() {
        let send_conns: Vec<_> = b
            .requests_with_code(RequestCode::SEND_MESSAGE_V2)
            .iter()
            .map(|r| r.connection)
            .collect();
        let hb_conns: Vec<_> = b
            .requests_with_code(RequestCode::HEART_BEAT)
            .iter()
            .map(|r| r.connection)
            .collect();
        assert!(!send_conns.is_empty(), "{} got sends", b.name());
        assert!(
            send_conns.iter().all(|c| !hb_conns.contains(c)),
            "{}: sends on the VIP connection only",
            b.name()
        );
    }
    assert_eq!(cluster.messages_for("VipTopic").len(), 8);

    // Control: without the VIP channel no port − 2 is dialed.
    let plain = Arc::new(VipMap {
        inner: cluster.connector(),
        brokers: brokers.clone(),
        dialed: Mutex::new(Vec::new()),
    });
    let producer = Producer::builder("plain_group")
        .namesrv(cluster.name_server_addr())
        .connector(plain.clone())
        .build()
        .await
        .expect("producer");
    producer
        .send(Message::new("VipTopic", "plain"))
        .await
        .expect("sent");
    let dialed = plain.dialed.lock().unwrap().clone();
    assert!(
        brokers.iter().all(|a| !dialed.contains(&vip(a))),
        "{dialed:?}"
    );
}

// ----- ACL -----

const AK: &str = "rocketmq2";
const SK: &str = "12345678";

fn require_acl_everywhere(cluster: &FakeCluster) {
    cluster.name_server().require_acl(AK, SK);
    for b in cluster.brokers() {
        b.require_acl(AK, SK);
    }
}

#[tokio::test]
async fn acl_signed_requests_are_accepted_by_the_verifier() {
    // The verifier's anchor: the public probe vector of protocol.md 13.1.
    assert_eq!(
        hmac_sha1_base64(SK, b"rocketmq2TBW102"),
        "/u5P/wZUbhjanu4LM/UzEdo2u2I="
    );
    let cluster = cluster(&["AclTopic"]).await;
    require_acl_everywhere(&cluster);
    let producer = builder(&cluster, "acl_group")
        .configure(|c| {
            c.access_key = Some(AK.into());
            c.secret_key = Some(SK.into());
            c.security_token = Some("tok".into());
        })
        .build()
        .await
        .expect("producer");
    for i in 0..4 {
        let m = Message::new("AclTopic", format!("signed {i}"))
            .with_tags("T")
            .unwrap();
        producer.send(m).await.expect("accepted");
    }
    producer
        .send_oneway(Message::new("AclTopic", "one-way"))
        .await
        .expect("one-way");
    let results = producer
        .send_batch(vec![
            Message::new("AclTopic", "b1"),
            Message::new("AclTopic", "b2"),
        ])
        .await;
    assert!(results.iter().all(Result::is_ok));
    tokio::time::timeout(
        T,
        cluster.wait_until(|c| c.messages_for("AclTopic").len() == 7),
    )
    .await
    .expect("all stored");
    // Every request any server saw (route, heartbeat, sends) passed the verifier.
    let mut seen: HashMap<RequestCode, usize> = HashMap::new();
    let servers = std::iter::once(cluster.name_server().requests())
        .chain(cluster.brokers().iter().map(|b| b.requests()));
    for r in servers.flatten() {
        *seen.entry(r.code()).or_default() += 1;
        assert_eq!(
            r.acl,
            Some(AclVerdict::Accepted {
                access_key: AK.into()
            }),
            "{:?}",
            r.code()
        );
        assert_eq!(r.field("SecurityToken"), Some("tok"));
    }
    for code in [
        RequestCode::GET_ROUTEINFO_BY_TOPIC,
        RequestCode::SEND_MESSAGE_V2,
        RequestCode::SEND_BATCH_MESSAGE,
    ] {
        assert!(seen.get(&code).copied().unwrap_or(0) > 0, "{code:?} seen");
    }
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_with_a_typed_non_retryable_error() {
    let cluster = cluster(&["AclTopic"]).await;
    for b in cluster.brokers() {
        b.require_acl(AK, SK);
    }
    let producer = builder(&cluster, "acl_group")
        .configure(|c| {
            c.access_key = Some(AK.into());
            c.secret_key = Some("not-the-secret".into());
        })
        .build()
        .await
        .expect("producer");
    let err = producer
        .send(Message::new("AclTopic", "forged"))
        .await
        .expect_err("rejected");
    assert_eq!(err.kind(), SendErrorKind::Rejected);
    assert_eq!(err.response_code(), Some(ResponseCode::NO_PERMISSION));
    assert_eq!(err.delivery(), Delivery::Rejected);
    assert!(!err.is_retryable());
    assert_eq!(
        err.message().map(|m| m.body().as_ref()),
        Some(&b"forged"[..])
    );
    assert!(cluster.messages_for("AclTopic").is_empty());
    let verdicts: Vec<_> = cluster
        .brokers()
        .iter()
        .flat_map(|b| b.requests_with_code(RequestCode::SEND_MESSAGE_V2))
        .filter_map(|r| r.acl)
        .collect();
    assert!(!verdicts.is_empty());
    assert!(
        verdicts
            .iter()
            .all(|v| matches!(v, AclVerdict::BadSignature { access_key, .. } if access_key == AK)),
        "{verdicts:?}"
    );

    // Positive control: the right secret on the same cluster is accepted.
    let good = builder(&cluster, "acl_group")
        .configure(|c| {
            c.access_key = Some(AK.into());
            c.secret_key = Some(SK.into());
        })
        .build()
        .await
        .expect("producer");
    good.send(Message::new("AclTopic", "genuine"))
        .await
        .expect("accepted");
    assert_eq!(cluster.messages_for("AclTopic").len(), 1);

    // A name server that requires ACL refuses the route: nothing is sent.
    cluster.name_server().require_acl(AK, SK);
    let err = producer
        .send(Message::new("UnroutedTopic", "forged"))
        .await
        .expect_err("no route");
    assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
    assert_eq!(err.attempts(), 1, "{err}");
}
