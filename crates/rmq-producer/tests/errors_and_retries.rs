//! Reliability matrix rows A12 and D1–D6 (reliability.md section 7): how the
//! producer classifies and retries broker answers. In memory, paused time.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    AttemptLog, MS, RawBroker, SECOND, TOPIC, assert_settled, attempts_for, builder, cluster,
    producer, sends, success_with,
};
use rmq_producer::{Delivery, Message, SendErrorKind, SendStatus};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use tokio::time::Instant;

const SEND: RequestCode = RequestCode::SEND_MESSAGE_V2;

/// A12: a SUCCESS answer missing `msgId`, `queueId` or `queueOffset` (or with a
/// non-numeric one) is a typed `MalformedResponse`, treated as Indeterminate (the
/// broker said it stored the message), not retried, and nothing panics. Positive
/// control: the same raw broker with a complete header gives `Ok`.
#[tokio::test(start_paused = true)]
async fn a12_success_without_required_fields_is_malformed_and_indeterminate() {
    let cluster = cluster().await;
    let variant: Arc<Mutex<&'static str>> = Arc::new(Mutex::new("complete"));
    let v = variant.clone();
    let respond = Arc::new(move |req: &RemotingCommand| {
        if req.request_code() != SEND {
            return Some(RemotingCommand::response_to(req, ResponseCode::SUCCESS));
        }
        let fields: &[(&'static str, &str)] = match *v.lock().unwrap() {
            "complete" => &[
                ("msgId", "0A00000100002A9F0000000000000000"),
                ("queueId", "1"),
                ("queueOffset", "7"),
            ],
            "no msgId" => &[("queueId", "1"), ("queueOffset", "7")],
            "no queueId" => &[
                ("msgId", "0A00000100002A9F0000000000000000"),
                ("queueOffset", "7"),
            ],
            "no queueOffset" => &[
                ("msgId", "0A00000100002A9F0000000000000000"),
                ("queueId", "1"),
            ],
            "queueId not a number" => &[("msgId", "X"), ("queueId", "one"), ("queueOffset", "7")],
            "nothing" => &[],
            other => unreachable!("{other}"),
        };
        Some(success_with(req, fields))
    });
    let raw = RawBroker::start(
        &cluster,
        "broker-raw",
        "127.0.0.1:30911",
        "A12Topic",
        respond,
    );
    let p = producer(&cluster).await;

    for case in [
        "no msgId",
        "no queueId",
        "no queueOffset",
        "queueId not a number",
        "nothing",
    ] {
        *variant.lock().unwrap() = case;
        let before = raw.sends();
        let err = p
            .send(Message::new("A12Topic", "a12"))
            .await
            .expect_err(case);
        assert_eq!(
            err.kind(),
            SendErrorKind::MalformedResponse,
            "{case}: {err}"
        );
        assert_eq!(err.delivery(), Delivery::Indeterminate, "{case}");
        assert_eq!(err.response_code(), Some(ResponseCode::SUCCESS), "{case}");
        assert_eq!(err.attempts(), 1, "{case}");
        assert_eq!(
            raw.sends() - before,
            1,
            "{case}: a malformed SUCCESS is not resent"
        );
        assert!(
            err.into_message().is_some(),
            "{case}: the message is handed back"
        );
    }

    *variant.lock().unwrap() = "complete";
    let ok = p
        .send(Message::new("A12Topic", "a12 ok"))
        .await
        .expect("complete header");
    assert_eq!(ok.status, SendStatus::SendOk);
    assert_eq!((ok.message_queue.queue_id, ok.queue_offset), (1, 7));
    assert_eq!(ok.message_queue.broker_name, raw.name);
    assert_settled(&p);
}

/// D1: SYSTEM_BUSY twice → retried after a backoff, inside the deadline, with at
/// most 1 + retries attempts; busy forever → the final error carries code 2.
#[tokio::test(start_paused = true)]
async fn d1_system_busy_is_retried_with_backoff_then_reported_with_code_2() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND)
            .reply_with(ResponseCode::SYSTEM_BUSY, "[PCBUSY_CLEAN_QUEUE]")
            .times(1);
    }
    let p = producer(&cluster).await;
    let mut msg = Message::new(TOPIC, "busy twice");
    let key = p.assign_uniq_key(&mut msg).to_owned();
    let started = Instant::now();
    let r = p.send(msg).await.expect("third attempt is stored");
    let elapsed = started.elapsed();
    assert_eq!(r.status, SendStatus::SendOk);
    let attempts = attempts_for(&cluster, &key);
    assert_eq!(
        attempts.len(),
        3,
        "busy, busy, stored: 3 attempts = 1 + retries"
    );
    assert_ne!(
        attempts[0].0, attempts[1].0,
        "the retry went to the other broker"
    );
    // Backoff: min 50 ms doubling, jittered in [d/2, d]: ≥ 25 ms then ≥ 50 ms.
    assert!(
        attempts[1].1.at - attempts[0].1.at >= Duration::from_millis(25),
        "backoff before retry 1"
    );
    assert!(
        attempts[2].1.at - attempts[1].1.at >= Duration::from_millis(50),
        "backoff before retry 2"
    );
    assert!(elapsed < 3 * SECOND, "inside the deadline: {elapsed:?}");
    assert_eq!(cluster.find_by_uniq_key(&key).len(), 1);

    // Busy forever.
    for b in cluster.brokers() {
        b.script(SEND)
            .reply_with(ResponseCode::SYSTEM_BUSY, "[TIMEOUT_CLEAN_QUEUE]")
            .forever();
    }
    let started = Instant::now();
    let before = sends(&cluster);
    let err = p
        .send(Message::new(TOPIC, "busy forever"))
        .await
        .expect_err("always busy");
    assert_eq!(err.kind(), SendErrorKind::Rejected);
    assert_eq!(err.delivery(), Delivery::Rejected);
    assert_eq!(err.response_code(), Some(ResponseCode::SYSTEM_BUSY));
    assert!(err.is_retryable());
    assert!(err.attempts() <= 3, "{}", err.attempts());
    assert_eq!(sends(&cluster) - before, err.attempts() as usize);
    assert!(started.elapsed() <= 3 * SECOND);
    assert_settled(&p);
}

/// D2: MESSAGE_ILLEGAL → exactly one request, `Rejected` with code 13.
#[tokio::test(start_paused = true)]
async fn d2_message_illegal_is_not_retried() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND)
            .reply_with(ResponseCode::MESSAGE_ILLEGAL, "body too long")
            .forever();
    }
    let p = producer(&cluster).await;
    let err = p
        .send(Message::new(TOPIC, "illegal"))
        .await
        .expect_err("rejected");
    assert_eq!(sends(&cluster), 1, "exactly one request");
    assert_eq!(err.kind(), SendErrorKind::Rejected);
    assert_eq!(err.delivery(), Delivery::Rejected);
    assert_eq!(err.response_code(), Some(ResponseCode::MESSAGE_ILLEGAL));
    assert_eq!(err.attempts(), 1);
    assert!(!err.is_retryable());
    assert!(cluster.messages_for(TOPIC).is_empty());
    assert_settled(&p);
}

/// D3: each default retryable code (1, 2, 14, 16, 17, 204, 205) is retried on
/// the other broker, with at most 3 attempts. Each broker answers the code once,
/// so the third attempt (back on the first broker) is stored.
#[tokio::test(start_paused = true)]
async fn d3_each_retryable_code_is_retried_on_another_broker() {
    let codes = [
        ResponseCode::SYSTEM_ERROR,
        ResponseCode::SYSTEM_BUSY,
        ResponseCode::SERVICE_NOT_AVAILABLE,
        ResponseCode::NO_PERMISSION,
        ResponseCode::TOPIC_NOT_EXIST,
        ResponseCode::NO_BUYER_ID,
        ResponseCode::NOT_IN_CURRENT_UNIT,
    ];
    let cluster = cluster().await;
    for code in codes {
        for b in cluster.brokers() {
            b.script(SEND).reply(code).times(1);
        }
        // A fresh producer: no isolation carried over from the previous code.
        let log = AttemptLog::new();
        let p = builder(&cluster)
            .send_hook(log.clone())
            .build()
            .await
            .unwrap();
        let mut msg = Message::new(TOPIC, format!("code {code}"));
        let key = p.assign_uniq_key(&mut msg).to_owned();
        let started = Instant::now();
        let r = p
            .send(msg)
            .await
            .unwrap_or_else(|e| panic!("code {code}: {e}"));
        assert_eq!(r.status, SendStatus::SendOk, "code {code}");
        assert_eq!(
            attempts_for(&cluster, &key).len(),
            3,
            "code {code}: 1 + retries attempts"
        );
        let brokers = log.brokers(&key);
        assert_eq!(brokers.len(), 3, "code {code}");
        assert_ne!(brokers[0], brokers[1], "code {code}: another broker");
        assert_ne!(brokers[1], brokers[2], "code {code}: another broker again");
        assert_eq!(r.message_queue.broker_name, brokers[2]);
        assert!(started.elapsed() < 3 * SECOND);
        assert_eq!(cluster.find_by_uniq_key(&key).len(), 1, "code {code}");
        assert_settled(&p);
        p.close(SECOND).await;
        for b in cluster.brokers() {
            assert_eq!(b.scripts_pending(), 0);
        }
    }
}

/// D3 (1500): GO_AWAY is retried once by the transport on a fresh connection to the
/// same broker, then by the kernel on the other broker.
#[tokio::test(start_paused = true)]
async fn d3_go_away_is_retried_by_the_transport_then_the_kernel() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).go_away().times(2);
    }
    let log = AttemptLog::new();
    let p = builder(&cluster)
        .send_hook(log.clone())
        .build()
        .await
        .unwrap();
    let mut msg = Message::new(TOPIC, "go away");
    let key = p.assign_uniq_key(&mut msg).to_owned();
    let r = p
        .send(msg)
        .await
        .expect("stored on the third kernel attempt");
    // Kernel attempts: X, Y, X (stored); each GO_AWAY'd attempt was sent twice.
    let brokers = log.brokers(&key);
    assert_eq!(brokers.len(), 3, "{brokers:?}");
    assert_ne!(brokers[0], brokers[1]);
    assert_eq!(brokers[2], brokers[0]);
    assert_eq!(r.message_queue.broker_name, brokers[2]);
    let on = |name: &str| {
        attempts_for(&cluster, &key)
            .into_iter()
            .filter(|(b, _)| b == name)
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
    };
    let first = on(&brokers[0]);
    let second = on(&brokers[1]);
    assert_eq!(
        (first.len(), second.len()),
        (3, 2),
        "X: go-away, go-away, stored; Y: go-away, go-away"
    );
    assert_ne!(
        first[0].connection, first[1].connection,
        "the transport retry uses a new connection"
    );
    assert_ne!(
        second[0].connection, second[1].connection,
        "the transport retry uses a new connection"
    );
    assert_eq!(p.stats().transport.go_aways, 4);
    assert_eq!(cluster.find_by_uniq_key(&key).len(), 1);
    assert_settled(&p);
}

/// D4: FLUSH_DISK_TIMEOUT / SLAVE_NOT_AVAILABLE / FLUSH_SLAVE_TIMEOUT are stored
/// results: `Ok` with that status after one request by default.
#[tokio::test(start_paused = true)]
async fn d4_stored_with_warning_is_ok_with_that_status_and_not_retried() {
    let cases = [
        (
            ResponseCode::FLUSH_DISK_TIMEOUT,
            SendStatus::FlushDiskTimeout,
        ),
        (
            ResponseCode::SLAVE_NOT_AVAILABLE,
            SendStatus::SlaveNotAvailable,
        ),
        (
            ResponseCode::FLUSH_SLAVE_TIMEOUT,
            SendStatus::FlushSlaveTimeout,
        ),
    ];
    let cluster = cluster().await;
    let p = producer(&cluster).await;
    for (code, status) in cases {
        for b in cluster.brokers() {
            b.clear_scripts();
            b.script(SEND).handle_with_code(code).forever();
        }
        let mut msg = Message::new(TOPIC, format!("{code}"));
        let key = p.assign_uniq_key(&mut msg).to_owned();
        let r = p.send(msg).await.unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(r.status, status);
        assert_eq!(attempts_for(&cluster, &key).len(), 1, "{code}: one request");
        assert_eq!(
            cluster.find_by_uniq_key(&key).len(),
            1,
            "{code}: stored once"
        );
    }
    assert_settled(&p);
}

/// D4 with `retry_on_not_stored = true`: a warning status is retried on another
/// broker (duplicates share the UNIQ_KEY); the clean third attempt is returned.
#[tokio::test(start_paused = true)]
async fn d4_opt_in_retries_a_warning_status_on_another_broker() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND)
            .handle_with_code(ResponseCode::FLUSH_DISK_TIMEOUT)
            .times(1);
    }
    let log = AttemptLog::new();
    let p = builder(&cluster)
        .configure(|c| c.retry_on_not_stored = true)
        .send_hook(log.clone())
        .build()
        .await
        .unwrap();
    let mut msg = Message::new(TOPIC, "retry on not stored");
    let key = p.assign_uniq_key(&mut msg).to_owned();
    let r = p.send(msg).await.unwrap();
    assert_eq!(r.status, SendStatus::SendOk);
    assert_eq!(attempts_for(&cluster, &key).len(), 3);
    let brokers = log.brokers(&key);
    assert_ne!(brokers[0], brokers[1], "retried on another broker");
    assert_ne!(brokers[1], brokers[2], "retried on another broker");
    let copies = cluster.find_by_uniq_key(&key);
    assert_eq!(
        copies.len(),
        3,
        "each warning status was stored: the retries duplicate"
    );
    assert!(
        copies
            .iter()
            .all(|c| c.uniq_key.as_deref() == Some(key.as_str()))
    );
    assert_settled(&p);
}

/// D4 with the opt-in: when the retry after a warning status fails, the message
/// is still stored by the earlier attempt, so the caller gets that earlier result
/// (Java returns an earlier non-OK SendResult, protocol.md 2.4) — never an error
/// that says "Rejected: not stored".
#[tokio::test(start_paused = true)]
async fn d4_opt_in_retry_failure_returns_the_earlier_stored_result() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND)
            .handle_with_code(ResponseCode::FLUSH_DISK_TIMEOUT)
            .times(1);
        b.script(SEND)
            .reply(ResponseCode::MESSAGE_ILLEGAL)
            .forever();
    }
    let p = builder(&cluster)
        .configure(|c| c.retry_on_not_stored = true)
        .build()
        .await
        .unwrap();
    let mut msg = Message::new(TOPIC, "stored then rejected");
    let key = p.assign_uniq_key(&mut msg).to_owned();
    let outcome = p.send(msg).await;
    let stored = cluster.find_by_uniq_key(&key).len();
    assert!(
        stored >= 1,
        "positive control: the warning attempt stored it"
    );
    let r = outcome
        .unwrap_or_else(|e| panic!("stored {stored}× yet reported as {:?}: {e}", e.delivery()));
    assert_eq!(r.status, SendStatus::FlushDiskTimeout);
    assert!(attempts_for(&cluster, &key).len() <= 3);
    assert_settled(&p);
}

/// D5: GO_AWAY forever → an error by the deadline with bounded attempts (3 kernel
/// attempts, each retried once by the transport) and bounded reconnects.
#[tokio::test(start_paused = true)]
async fn d5_go_away_forever_is_bounded() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).go_away().forever();
    }
    let p = producer(&cluster).await;
    let accepted_before: u64 = cluster
        .brokers()
        .iter()
        .map(|b| b.connections_accepted())
        .sum();
    let started = Instant::now();
    let err = p
        .send(Message::new(TOPIC, "go away forever"))
        .await
        .expect_err("never accepted");
    assert!(started.elapsed() <= 3 * SECOND);
    assert_eq!(err.kind(), SendErrorKind::AllBrokersUnavailable, "{err}");
    assert_eq!(
        err.delivery(),
        Delivery::NotSent,
        "GO_AWAY: refused unprocessed"
    );
    assert_eq!(err.attempts(), 3);
    assert!(
        sends(&cluster) <= 6,
        "≤ 2 requests per kernel attempt: {}",
        sends(&cluster)
    );
    let accepted: u64 = cluster
        .brokers()
        .iter()
        .map(|b| b.connections_accepted())
        .sum();
    assert!(
        accepted - accepted_before <= 6,
        "reconnects bounded: {}",
        accepted - accepted_before
    );
    assert!(cluster.messages_for(TOPIC).is_empty());
    assert_settled(&p);
}

/// D6: an unknown code (9999) → `Rejected` with 9999, one request, no retry.
#[tokio::test(start_paused = true)]
async fn d6_unknown_code_is_rejected_without_retry() {
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.script(SEND).reply(ResponseCode(9999)).forever();
    }
    let p = producer(&cluster).await;
    let err = p
        .send(Message::new(TOPIC, "unknown"))
        .await
        .expect_err("rejected");
    assert_eq!(err.kind(), SendErrorKind::Rejected);
    assert_eq!(err.delivery(), Delivery::Rejected);
    assert_eq!(err.response_code(), Some(ResponseCode(9999)));
    assert_eq!(sends(&cluster), 1);
    assert_eq!(err.attempts(), 1);
    tokio::time::sleep(10 * MS).await;
    assert_settled(&p);
}
