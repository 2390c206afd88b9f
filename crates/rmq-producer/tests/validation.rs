//! Reliability matrix rows B1–B6 (reliability.md section 7): what the producer
//! refuses before any I/O, compression on the wire only, and hooks. In memory,
//! paused time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{AttemptLog, TOPIC, assert_settled, attempts_for, builder, cluster, producer, sends};
use rmq_producer::compress::decompress;
use rmq_producer::hook::{AttemptContext, AttemptOutcome, CheckForbiddenHook, SendHook};
use rmq_producer::{
    BuildError, Compression, Delivery, Message, Producer, SendErrorKind, SendStatus,
};
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::message::Properties;
use rmq_protocol::message::sys_flag::SysFlag;
use rmq_protocol::{RequestCode, ResponseCode};

const SEND: RequestCode = RequestCode::SEND_MESSAGE_V2;
const MAX: usize = 4 * 1024 * 1024;

/// B1: a body of exactly `max_message_size` (default 4 MiB) is accepted and
/// stored; max + 1 and an empty body fail with `InvalidMessage` before any I/O —
/// no broker sees a send request — and the message is handed back.
#[tokio::test(start_paused = true)]
async fn b1_body_size_limits_are_checked_before_io() {
    let cluster = cluster().await;
    // Compression off so the 4 MiB body goes to the broker as is (the limit is on
    // the uncompressed size either way; validate_message checks it first).
    let p = builder(&cluster)
        .configure(|c| c.compression = Compression::disabled())
        .build()
        .await
        .unwrap();
    assert_eq!(p.config().max_message_size, MAX, "the default limit");

    for (name, body) in [("max + 1", vec![b'x'; MAX + 1]), ("empty", Vec::new())] {
        let msg = Message::new(TOPIC, body);
        let original = msg.clone();
        let err = p.send(msg).await.expect_err(name);
        assert_eq!(err.kind(), SendErrorKind::InvalidMessage, "{name}: {err}");
        assert_eq!(err.delivery(), Delivery::NotSent, "{name}");
        assert_eq!(err.attempts(), 0, "{name}");
        assert_eq!(
            err.into_message().as_ref(),
            Some(&original),
            "{name}: handed back unchanged"
        );
        assert_eq!(sends(&cluster), 0, "{name}: no broker saw a send");
    }

    let r = p
        .send(Message::new(TOPIC, vec![b'm'; MAX]))
        .await
        .expect("exactly max is accepted");
    let stored = cluster.find_by_uniq_key(&r.msg_id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body.len(), MAX);
    assert_eq!(sends(&cluster), 1);
    assert_settled(&p);
}

/// B2: blank, 128-character, illegal-character and forbidden system topics fail at
/// once with `InvalidMessage` and no request; a group over 255 characters fails at
/// build with `BuildError::Config`. Positive controls: a 127-character topic and a
/// 255-character group are accepted.
#[tokio::test(start_paused = true)]
async fn b2_bad_topics_and_groups_fail_without_io() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let long = "t".repeat(128);
    for topic in [
        "",
        "   ",
        long.as_str(),
        "bad topic",
        "bad/topic",
        "主题",
        "SCHEDULE_TOPIC_XXXX",
        "RMQ_SYS_TRANS_HALF_TOPIC",
    ] {
        let err = p.send(Message::new(topic, "x")).await.expect_err(topic);
        assert_eq!(
            err.kind(),
            SendErrorKind::InvalidMessage,
            "{topic:?}: {err}"
        );
        assert_eq!(err.delivery(), Delivery::NotSent);
        assert_eq!(err.attempts(), 0);
        let err = p
            .send_oneway(Message::new(topic, "x"))
            .await
            .expect_err(topic);
        assert_eq!(
            err.kind(),
            SendErrorKind::InvalidMessage,
            "one-way {topic:?}"
        );
        let err = p.try_send(Message::new(topic, "x")).await.expect_err(topic);
        assert_eq!(
            err.kind(),
            SendErrorKind::InvalidMessage,
            "try_send {topic:?}"
        );
    }
    assert_eq!(sends(&cluster), 0, "no request for any bad topic");
    let routes_asked = cluster
        .name_server()
        .requests_with_code(RequestCode::GET_ROUTEINFO_BY_TOPIC)
        .len();
    assert_eq!(routes_asked, 0, "not even a route lookup");

    // A 127-character topic is valid.
    let ok_topic = "t".repeat(127);
    cluster.create_topic(&ok_topic, 2);
    p.send(Message::new(ok_topic.as_str(), "x"))
        .await
        .expect("127 characters is the limit");

    let long_group = "g".repeat(256);
    let err = Producer::builder(long_group)
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
        .build()
        .await
        .expect_err("group > 255 characters");
    assert!(matches!(err, BuildError::Config(_)), "{err:?}");
    for group in ["", "bad group", "DEFAULT_PRODUCER"] {
        let err = Producer::builder(group)
            .namesrv(cluster.name_server_addr())
            .build()
            .await
            .expect_err(group);
        assert!(matches!(err, BuildError::Config(_)), "{group:?}: {err:?}");
    }
    Producer::builder("g".repeat(255))
        .namesrv(cluster.name_server_addr())
        .connector(cluster.connector())
        .build()
        .await
        .expect("255 characters is the limit");
    assert_settled(&p);
}

/// B3: a body over the threshold goes on the wire compressed once with the type
/// bits; every retry carries the same compressed body (never compressed twice);
/// the caller's message is identical afterwards whether the send succeeds, fails
/// or is retried 3×.
#[tokio::test(start_paused = true)]
async fn b3_compressed_once_on_the_wire_and_the_message_is_untouched() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let body = "compress me please ".repeat(500);
    let wire_check = |key: &str, expect_requests: usize| {
        let attempts = attempts_for(&cluster, key);
        assert_eq!(attempts.len(), expect_requests);
        for (_, r) in &attempts {
            let h: SendMessageRequestHeaderV2 = r.header().unwrap();
            assert_eq!(
                h.sys_flag & 0x701,
                0x301,
                "COMPRESSED and the zlib type bits"
            );
            let back = decompress(SysFlag(h.sys_flag), r.body(), 1 << 20).expect("one zlib layer");
            assert_eq!(
                back.as_ref(),
                body.as_bytes(),
                "decompressing once gives the body back"
            );
            assert_eq!(
                r.body(),
                attempts[0].1.body(),
                "every attempt carries the same wire body"
            );
        }
    };

    // Success.
    let mut msg = Message::new(TOPIC, body.clone()).with_tags("T").unwrap();
    let key = p.assign_uniq_key(&mut msg).to_owned();
    let original = msg.clone();
    let r = p.send(msg.clone()).await.unwrap();
    assert_eq!(msg, original);
    wire_check(&key, 1);
    let stored = &cluster.find_by_uniq_key(&r.msg_id)[0];
    assert_eq!(
        decompress(SysFlag(stored.sys_flag), &stored.body, 1 << 20)
            .unwrap()
            .as_ref(),
        body.as_bytes()
    );

    // Retried 3× (busy, busy, busy): the handed-back message is the caller's.
    for b in cluster.brokers() {
        b.script(SEND).reply(ResponseCode::SYSTEM_BUSY).times(2);
    }
    let mut msg = Message::new(TOPIC, body.clone()).with_tags("T").unwrap();
    let key = p.assign_uniq_key(&mut msg).to_owned();
    let original = msg.clone();
    let err = p.send(msg).await.expect_err("busy 3 times");
    assert_eq!(err.attempts(), 3);
    wire_check(&key, 3);
    assert_eq!(
        err.into_message(),
        Some(original),
        "uncompressed, unchanged after 3 attempts"
    );

    // Retried then stored: stored once, compressed once.
    for b in cluster.brokers() {
        b.clear_scripts();
        b.script(SEND).reply(ResponseCode::SYSTEM_BUSY).times(1);
    }
    let mut msg = Message::new(TOPIC, body.clone()).with_tags("T").unwrap();
    let key = p.assign_uniq_key(&mut msg).to_owned();
    p.send(msg).await.expect("busy twice, then stored");
    wire_check(&key, 3);
    let stored = cluster.find_by_uniq_key(&key);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        decompress(SysFlag(stored[0].sys_flag), &stored[0].body, 1 << 20)
            .unwrap()
            .as_ref(),
        body.as_bytes()
    );

    // Failure (rejected): handed back unchanged.
    for b in cluster.brokers() {
        b.clear_scripts();
        b.script(SEND).reply(ResponseCode::MESSAGE_ILLEGAL).times(1);
    }
    let mut msg = Message::new(TOPIC, body.clone()).with_tags("T").unwrap();
    let key = p.assign_uniq_key(&mut msg).to_owned();
    let original = msg.clone();
    let err = p.send(msg).await.expect_err("rejected");
    wire_check(&key, 1);
    assert_eq!(err.into_message(), Some(original));
    assert_settled(&p);
}

/// B4: a compression failure must fall back to an uncompressed send. With real
/// codecs the failure cannot be provoked from the public API: `compress` fails only
/// for an unsupported codec or an out-of-range level (both refused when the
/// producer is built, shown here) or an I/O error writing into a `Vec` (which does
/// not happen). The fallback itself is `send.rs::prepare` (`Err(_)` → body as is,
/// sysFlag 0); this test pins the build-time half and the threshold edge.
#[tokio::test(start_paused = true)]
async fn b4_compression_cannot_fail_at_send_time_and_small_bodies_go_uncompressed() {
    let cluster = cluster().await;
    let err = builder(&cluster)
        .configure(|c| c.compression.level = 42)
        .build()
        .await
        .expect_err("zlib level 42");
    assert!(matches!(err, BuildError::Config(_)), "{err:?}");
    let p = producer(&cluster).await;
    let threshold = p.config().compression.threshold;
    let below = p
        .send(Message::new(TOPIC, vec![b'a'; threshold - 1]))
        .await
        .unwrap();
    let at = p
        .send(Message::new(TOPIC, vec![b'a'; threshold]))
        .await
        .unwrap();
    let stored_below = &cluster.find_by_uniq_key(&below.msg_id)[0];
    let stored_at = &cluster.find_by_uniq_key(&at.msg_id)[0];
    assert_eq!(
        stored_below.sys_flag & 0x1,
        0,
        "below the threshold: flag not set"
    );
    assert_eq!(stored_below.body.len(), threshold - 1);
    assert_eq!(
        stored_at.sys_flag & 0x1,
        0x1,
        "at the threshold: compressed"
    );
}

/// A hook that panics before and after every attempt, and counts its calls.
#[derive(Debug, Default)]
struct PanickingHook {
    before: AtomicUsize,
    after: AtomicUsize,
}

impl SendHook for PanickingHook {
    fn before_attempt(&self, _ctx: &AttemptContext<'_>) {
        self.before.fetch_add(1, Ordering::SeqCst);
        panic!("before_attempt panics (B5)");
    }

    fn after_attempt(
        &self,
        _ctx: &AttemptContext<'_>,
        _o: AttemptOutcome<'_>,
        _e: std::time::Duration,
    ) {
        self.after.fetch_add(1, Ordering::SeqCst);
        panic!("after_attempt panics (B5)");
    }
}

#[derive(Debug)]
struct Veto(Mutex<Vec<String>>);

impl CheckForbiddenHook for Veto {
    fn check(&self, message: &Message) -> Result<(), String> {
        self.0.lock().unwrap().push(message.topic().to_owned());
        if message.property("forbidden").is_some() {
            Err("forbidden by policy".to_owned())
        } else {
            Ok(())
        }
    }
}

#[derive(Debug)]
struct PanickingVeto;

impl CheckForbiddenHook for PanickingVeto {
    fn check(&self, _message: &Message) -> Result<(), String> {
        panic!("check panics (B5)")
    }
}

/// B5: send hooks that panic before and after do not change the outcome (stored,
/// retried, rejected alike); the after-hook runs once per attempt with that
/// attempt's outcome; a check-forbidden hook returning `Err` vetoes with `HookVeto`,
/// no request, and the message handed back; a panicking check-forbidden hook is a
/// veto too (fail closed, documented in `hook.rs`).
#[tokio::test(start_paused = true)]
async fn b5_hooks_cannot_change_outcomes_and_a_veto_sends_nothing() {
    let cluster = cluster().await;
    let panicking = Arc::new(PanickingHook::default());
    let log = AttemptLog::new();
    let veto = Arc::new(Veto(Mutex::new(Vec::new())));
    let p = builder(&cluster)
        .send_hook(panicking.clone())
        .send_hook(log.clone())
        .check_forbidden_hook(veto.clone())
        .build()
        .await
        .unwrap();

    // Stored at once.
    let r = p
        .send(Message::new(TOPIC, "hooked"))
        .await
        .expect("panicking hooks do not fail a send");
    assert_eq!(r.status, SendStatus::SendOk);
    assert_eq!(cluster.find_by_uniq_key(&r.msg_id).len(), 1);
    let attempts = log.of(&r.msg_id);
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].outcome.as_deref(),
        Some("stored"),
        "later hooks still run after a panicking one"
    );

    // Busy on both brokers once: three attempts, the hooks see each one once.
    for b in cluster.brokers() {
        b.script(SEND).reply(ResponseCode::SYSTEM_BUSY).times(1);
    }
    let r = p
        .send(Message::new(TOPIC, "hooked retry"))
        .await
        .expect("third attempt stored");
    let outcomes: Vec<_> = log
        .of(&r.msg_id)
        .into_iter()
        .map(|a| (a.attempt, a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, Some("Rejected".into())),
            (2, Some("Rejected".into())),
            (3, Some("stored".into()))
        ],
        "after-hook once per attempt, with the attempt's outcome"
    );

    // Rejected: still Rejected with the hooks panicking.
    for b in cluster.brokers() {
        b.script(SEND).reply(ResponseCode::MESSAGE_ILLEGAL).times(1);
    }
    let err = p
        .send(Message::new(TOPIC, "hooked reject"))
        .await
        .expect_err("rejected");
    assert_eq!(
        (err.kind(), err.response_code()),
        (SendErrorKind::Rejected, Some(ResponseCode::MESSAGE_ILLEGAL))
    );
    let total_attempts = 1 + 3 + 1;
    assert_eq!(panicking.before.load(Ordering::SeqCst), total_attempts);
    assert_eq!(panicking.after.load(Ordering::SeqCst), total_attempts);

    // Veto.
    let before = sends(&cluster);
    let msg = Message::new(TOPIC, "vetoed")
        .with_property("forbidden", "yes")
        .unwrap();
    let original = msg.clone();
    let err = p.send(msg).await.expect_err("vetoed");
    assert_eq!(err.kind(), SendErrorKind::HookVeto);
    assert_eq!(err.delivery(), Delivery::NotSent);
    assert_eq!(err.attempts(), 0);
    assert_eq!(
        err.into_message(),
        Some(original),
        "the vetoed message is handed back"
    );
    assert_eq!(sends(&cluster), before, "a vetoed message is never sent");
    assert_eq!(
        veto.0.lock().unwrap().len(),
        4,
        "the veto hook saw every send once"
    );

    // A panicking veto hook fails closed.
    let p2 = builder(&cluster)
        .check_forbidden_hook(Arc::new(PanickingVeto))
        .build()
        .await
        .unwrap();
    let err = p2
        .send(Message::new(TOPIC, "veto panics"))
        .await
        .expect_err("fail closed");
    assert_eq!(err.kind(), SendErrorKind::HookVeto);
    assert_eq!(sends(&cluster), before);
    assert_settled(&p);
    assert_settled(&p2);
}

/// B6: the property separators (U+0001 between key and value, U+0002 between
/// pairs) in a key or value are refused by the setters; a message built from raw
/// parts with them is refused by the send before any I/O, so the properties string
/// is never corrupted on the wire.
#[tokio::test(start_paused = true)]
async fn b6_separators_in_properties_never_reach_the_wire() {
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    let bad = [
        ("k\u{1}ey", "v"),
        ("k\u{2}ey", "v"),
        ("key", "va\u{1}lue"),
        ("key", "va\u{2}lue"),
    ];
    for (k, v) in bad {
        let mut m = Message::new(TOPIC, "x");
        assert!(
            m.put_user_property(k, v).is_err(),
            "put_user_property({k:?}, {v:?})"
        );
        assert!(
            m.put_system_property(k, v).is_err(),
            "put_system_property({k:?}, {v:?})"
        );
        assert!(Message::new(TOPIC, "x").with_property(k, v).is_err());

        let mut props = Properties::with_capacity(2);
        props.insert(k, v);
        let raw = Message::from_parts(TOPIC, "x", 0, props);
        let original = raw.clone();
        let err = p.send(raw).await.expect_err("separator in a property");
        assert_eq!(
            err.kind(),
            SendErrorKind::InvalidMessage,
            "{k:?}={v:?}: {err}"
        );
        assert_eq!(err.delivery(), Delivery::NotSent);
        assert_eq!(err.into_message(), Some(original));
    }
    let mut tags = Message::new(TOPIC, "x");
    assert!(tags.set_tags("a\u{2}b").is_err());
    assert!(tags.set_keys(["a\u{1}b"]).is_err());
    assert_eq!(sends(&cluster), 0, "nothing reached the wire");

    // Positive control: ordinary properties travel intact.
    let m = Message::new(TOPIC, "x")
        .with_property("color", "blue")
        .unwrap();
    let r = p.send(m).await.unwrap();
    assert_eq!(
        cluster.find_by_uniq_key(&r.msg_id)[0]
            .properties
            .get("color"),
        Some("blue")
    );
    assert_settled(&p);
}
