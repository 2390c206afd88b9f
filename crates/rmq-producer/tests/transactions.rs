//! Transactional messages against the fake cluster (in memory, paused time): the
//! half message on the wire, END_TRANSACTION commit / rollback / unknown, the
//! broker's CHECK_TRANSACTION_STATE answered through the listener (de-duplicated,
//! bounded), the begin / commit / rollback handle and its answers to checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use rmq_producer::transaction::{
    BoxFuture, CheckRequest, LocalTransaction, TransactionError, TransactionListener,
    TransactionProducer, TransactionState,
};
use rmq_producer::{Delivery, Message};
use rmq_protocol::header::check_transaction_state::CheckTransactionStateRequestHeader;
use rmq_protocol::header::end_transaction::{CommitOrRollback, EndTransactionRequestHeader};
use rmq_protocol::message::properties::keys;
use rmq_protocol::message::stored::encode_stored;
use rmq_protocol::message::sys_flag::SysFlag;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::MemoryNetwork;
use rmq_testkit::fake::{
    EndTransactionOutcome, FakeBroker, FakeCluster, HALF_TOPIC, StoredMessage, Transport,
};
use tokio::sync::Notify;

const TOPIC: &str = "TxTopic";
const GROUP: &str = "tx_group";

async fn cluster() -> FakeCluster {
    FakeCluster::builder()
        .brokers(["broker-a"])
        .transport(Transport::Memory(MemoryNetwork::new()))
        .topic(TOPIC, 4)
        .build()
        .await
        .expect("fake cluster")
}

fn broker(c: &FakeCluster) -> FakeBroker {
    c.brokers()[0].clone()
}

/// A listener whose `execute` answers the `TransactionState` argument (Unknown
/// without one) and whose `check` answers `check_answer`, optionally waiting for a
/// release, counting calls and the peak of concurrent checks.
#[derive(Default)]
struct Scripted {
    check_answer: Option<TransactionState>,
    hold: Option<Arc<Notify>>,
    hold_for: Option<Duration>,
    panic_in_execute: bool,
    executes: AtomicUsize,
    checks: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl TransactionListener for Scripted {
    fn execute<'a>(&'a self, tx: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
        self.executes.fetch_add(1, Ordering::SeqCst);
        let state = tx
            .arg::<TransactionState>()
            .copied()
            .unwrap_or(TransactionState::Unknown);
        let panic = self.panic_in_execute;
        Box::pin(async move {
            assert!(!panic, "local transaction failed");
            state
        })
    }

    fn check<'a>(&'a self, check: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
        Box::pin(async move {
            self.checks.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            assert_eq!(
                check.message.topic(),
                TOPIC,
                "the check carries the real topic"
            );
            if let Some(n) = &self.hold {
                n.notified().await;
            }
            if let Some(d) = self.hold_for {
                tokio::time::sleep(d).await;
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.check_answer.unwrap_or(TransactionState::Unknown)
        })
    }
}

async fn producer(
    c: &FakeCluster,
    listener: Option<Arc<Scripted>>,
    edit: impl FnOnce(
        rmq_producer::transaction::TransactionProducerBuilder,
    ) -> rmq_producer::transaction::TransactionProducerBuilder,
) -> TransactionProducer {
    let mut b = TransactionProducer::builder(GROUP).producer(|b| {
        b.namesrv(c.name_server_addr())
            .connector(c.connector())
            .send_timeout(Duration::from_secs(2))
    });
    if let Some(l) = listener {
        b = b.listener(l);
    }
    edit(b).build().await.expect("transaction producer")
}

/// Waits until the group is registered by heartbeat (checks need it).
async fn registered(b: &FakeBroker) {
    b.wait_until(|b| b.producer_groups().contains_key(GROUP))
        .await;
}

fn half_by_key(b: &FakeBroker, key: &str) -> StoredMessage {
    b.messages_for(HALF_TOPIC)
        .into_iter()
        .find(|m| m.uniq_key.as_deref() == Some(key))
        .expect("the half message is stored")
}

fn visible(b: &FakeBroker, key: &str) -> usize {
    b.messages_for(TOPIC)
        .iter()
        .filter(|m| m.uniq_key.as_deref() == Some(key))
        .count()
}

fn ends(b: &FakeBroker) -> Vec<(EndTransactionRequestHeader, EndTransactionOutcome, bool)> {
    b.end_transactions()
        .into_iter()
        .map(|r| {
            (
                r.header.expect("decodable END_TRANSACTION"),
                r.outcome,
                r.oneway,
            )
        })
        .collect()
}

/// Waits until `n` END_TRANSACTIONs arrived.
async fn ends_reach(b: &FakeBroker, n: usize) {
    b.wait_until(move |b| b.end_transactions().len() >= n).await;
}

/// A CHECK_TRANSACTION_STATE as the rocketmq-rust broker sends it: `offsetMsgId=""`.
async fn push_check_like_rocketmq_rust(b: &FakeBroker, half: &StoredMessage) {
    let header = CheckTransactionStateRequestHeader {
        topic: Some(HALF_TOPIC.into()),
        tran_state_table_offset: half.queue_offset,
        commit_log_offset: half.commit_log_offset,
        msg_id: half.uniq_key.clone(),
        transaction_id: half.uniq_key.clone(),
        offset_msg_id: Some(String::new()),
        bname: Some(b.broker_name().to_owned()),
    };
    let mut ext = half.to_message_ext();
    ext.message.set_topic(half.target_topic());
    let mut body = BytesMut::new();
    encode_stored(&ext, &mut body).expect("encode the half message");
    let request = RemotingCommand::with_header(RequestCode::CHECK_TRANSACTION_STATE, &header)
        .body(body.freeze())
        .oneway();
    b.push_to_group(GROUP, request, Duration::ZERO)
        .await
        .expect("check pushed");
}

#[tokio::test(start_paused = true)]
async fn commit_and_rollback_through_the_listener() {
    let c = cluster().await;
    let b = broker(&c);
    let listener = Arc::new(Scripted::default());
    let p = producer(&c, Some(listener.clone()), |b| b).await;

    // A body above the compression threshold: half messages are never compressed.
    let body = "x".repeat(8 * 1024);
    let committed = p
        .send_in_transaction_with(Message::new(TOPIC, body.clone()), &TransactionState::Commit)
        .await
        .expect("committed");
    assert_eq!(committed.state, TransactionState::Commit);
    assert_eq!(committed.transaction_id, committed.send_result.msg_id);
    let rolled_back = p
        .send_in_transaction_with(Message::new(TOPIC, "no"), &TransactionState::Rollback)
        .await
        .expect("rolled back");
    assert_eq!(rolled_back.state, TransactionState::Rollback);
    assert_eq!(listener.executes.load(Ordering::SeqCst), 2);
    ends_reach(&b, 2).await;

    // The half message on the wire.
    let half = half_by_key(&b, &committed.transaction_id);
    assert_eq!(
        half.sys_flag & SysFlag::TRANSACTION_MASK,
        SysFlag::TRANSACTION_PREPARED
    );
    assert_eq!(half.sys_flag & SysFlag::COMPRESSED, 0, "never compressed");
    assert_eq!(half.body.len(), body.len());
    assert_eq!(half.property(keys::TRAN_MSG), Some("true"));
    assert_eq!(half.property(keys::PGROUP), Some(GROUP));
    let sends = b.requests_with_code(RequestCode::SEND_MESSAGE_V2);
    assert_eq!(sends.len(), 2, "one send per half message, no other code");

    // END_TRANSACTION: one-way, from the send path, with the half's offsets.
    let e = ends(&b);
    let (h, outcome, oneway) = &e[0];
    assert!(oneway);
    assert_eq!(*outcome, EndTransactionOutcome::Committed);
    assert_eq!(h.commit_or_rollback, CommitOrRollback::COMMIT);
    assert!(!h.from_transaction_check);
    assert_eq!(h.producer_group, GROUP);
    assert_eq!(h.msg_id, committed.transaction_id);
    assert_eq!(h.commit_log_offset, half.commit_log_offset);
    assert_eq!(h.tran_state_table_offset, half.queue_offset);
    assert_eq!(h.bname.as_deref(), Some("broker-a"));
    assert_eq!(e[1].1, EndTransactionOutcome::RolledBack);
    assert_eq!(e[1].0.commit_or_rollback, CommitOrRollback::ROLLBACK);

    // Positive control first: the committed one is visible; the rolled-back one never.
    assert_eq!(visible(&b, &committed.transaction_id), 1);
    assert_eq!(visible(&b, &rolled_back.transaction_id), 0);
    assert_eq!(b.messages_for(TOPIC).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn unknown_is_checked_back_through_the_listener_then_committed() {
    let c = cluster().await;
    let b = broker(&c);
    let listener = Arc::new(Scripted {
        check_answer: Some(TransactionState::Commit),
        ..Scripted::default()
    });
    let p = producer(&c, Some(listener.clone()), |b| b).await;
    let r = p
        .send_in_transaction(Message::new(TOPIC, "later"))
        .await
        .expect("sent, unknown");
    assert_eq!(r.state, TransactionState::Unknown);
    ends_reach(&b, 1).await;
    assert_eq!(ends(&b)[0].1, EndTransactionOutcome::Ignored);
    assert_eq!(
        visible(&b, &r.transaction_id),
        0,
        "not visible before the check"
    );

    registered(&b).await;
    let half = half_by_key(&b, &r.transaction_id);
    // As the rocketmq-rust broker sends it: offsetMsgId is empty.
    push_check_like_rocketmq_rust(&b, &half).await;
    ends_reach(&b, 2).await;
    let (h, outcome, oneway) = ends(&b).remove(1);
    assert!(oneway, "the answer is one-way");
    assert!(h.from_transaction_check);
    assert_eq!(h.commit_or_rollback, CommitOrRollback::COMMIT);
    assert_eq!(h.msg_id, r.transaction_id);
    assert_eq!(h.transaction_id.as_deref(), Some(r.transaction_id.as_str()));
    assert_eq!(h.topic.as_deref(), Some(HALF_TOPIC));
    assert_eq!(h.bname.as_deref(), Some("broker-a"));
    assert_eq!(outcome, EndTransactionOutcome::Committed);
    assert_eq!(visible(&b, &r.transaction_id), 1);
    assert_eq!(listener.checks.load(Ordering::SeqCst), 1);
    // The producer counts the answer once its one-way END_TRANSACTION is written, so
    // the broker may have recorded that END_TRANSACTION a moment before.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while p.check_stats().answered < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = p.check_stats();
    assert_eq!(
        (stats.received, stats.answered, stats.listener_calls),
        (1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn checks_are_deduplicated_per_transaction() {
    let c = cluster().await;
    let b = broker(&c);
    let release = Arc::new(Notify::new());
    let listener = Arc::new(Scripted {
        check_answer: Some(TransactionState::Rollback),
        hold: Some(release.clone()),
        ..Scripted::default()
    });
    let p = producer(&c, Some(listener.clone()), |b| b).await;
    let r = p
        .send_in_transaction(Message::new(TOPIC, "dup"))
        .await
        .expect("sent");
    registered(&b).await;
    let half = half_by_key(&b, &r.transaction_id);
    b.check_transaction_state(&half).await.expect("check 1");
    b.check_transaction_state(&half).await.expect("check 2");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while p.check_stats().received < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(p.check_stats().deduplicated, 1, "{:?}", p.check_stats());
    assert_eq!(listener.checks.load(Ordering::SeqCst), 1);
    release.notify_one();
    ends_reach(&b, 2).await; // the Unknown end of the send, and one answer
    let e = ends(&b);
    assert_eq!(e.len(), 2);
    assert_eq!(e[1].1, EndTransactionOutcome::RolledBack);
    // Once the first check finished, a new one is served again.
    b.check_transaction_state(&half).await.expect("check 3");
    release.notify_one();
    ends_reach(&b, 3).await;
    assert_eq!(listener.checks.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn listener_checks_are_bounded() {
    let c = cluster().await;
    let b = broker(&c);
    let listener = Arc::new(Scripted {
        check_answer: Some(TransactionState::Commit),
        hold_for: Some(Duration::from_millis(100)),
        ..Scripted::default()
    });
    let p = producer(&c, Some(listener.clone()), |b| b.max_concurrent_checks(2)).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = p
            .send_in_transaction(Message::new(TOPIC, format!("m{i}")))
            .await
            .expect("sent");
        ids.push(r.transaction_id);
    }
    registered(&b).await;
    for id in &ids {
        b.check_transaction_state(&half_by_key(&b, id))
            .await
            .expect("check");
    }
    ends_reach(&b, 12).await;
    assert_eq!(listener.checks.load(Ordering::SeqCst), 6);
    let peak = listener.peak.load(Ordering::SeqCst);
    assert!(peak == 2, "peak of concurrent checks {peak}, limit 2");
    for id in &ids {
        assert_eq!(visible(&b, id), 1, "{id} committed by its check");
    }
}

#[tokio::test(start_paused = true)]
async fn handle_without_listener_and_its_answers_to_checks() {
    let c = cluster().await;
    let b = broker(&c);
    let p = producer(&c, None, |b| b).await;

    // No listener: send_in_transaction refuses before sending anything.
    let err = p
        .send_in_transaction(Message::new(TOPIC, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransactionError::NoListener));
    assert!(
        b.requests_with_code(RequestCode::SEND_MESSAGE_V2)
            .is_empty()
    );

    let open = p.begin(Message::new(TOPIC, "open")).await.expect("begin");
    let committed = p.begin(Message::new(TOPIC, "commit")).await.expect("begin");
    let rolled = p
        .begin(Message::new(TOPIC, "rollback"))
        .await
        .expect("begin");
    let orphan = p.begin(Message::new(TOPIC, "orphan")).await.expect("begin");
    let (c_id, r_id, o_id) = (
        committed.transaction_id().to_owned(),
        rolled.transaction_id().to_owned(),
        orphan.transaction_id().to_owned(),
    );
    committed.commit().await.expect("commit written");
    rolled.rollback().await.expect("rollback written");
    drop(orphan); // never ended: the broker will ask
    ends_reach(&b, 2).await;
    assert_eq!(
        visible(&b, &c_id),
        1,
        "positive control: committed is visible"
    );
    assert_eq!(visible(&b, &r_id), 0);

    registered(&b).await;
    // An open transaction is answered Unknown.
    b.check_transaction_state(&half_by_key(&b, open.transaction_id()))
        .await
        .expect("check");
    ends_reach(&b, 3).await;
    assert_eq!(ends(&b)[2].0.commit_or_rollback, CommitOrRollback::UNKNOWN);
    // A decided one is answered from memory (a lost END_TRANSACTION is repaired).
    b.check_transaction_state(&half_by_key(&b, &c_id))
        .await
        .expect("check");
    ends_reach(&b, 4).await;
    let (h, _, _) = ends(&b).remove(3);
    assert!(h.from_transaction_check);
    assert_eq!(h.commit_or_rollback, CommitOrRollback::COMMIT);
    // An orphan without a listener gets the unresolved-check answer: Unknown.
    b.check_transaction_state(&half_by_key(&b, &o_id))
        .await
        .expect("check");
    ends_reach(&b, 5).await;
    let (h, outcome, _) = ends(&b).remove(4);
    assert_eq!(h.commit_or_rollback, CommitOrRollback::UNKNOWN);
    assert_eq!(outcome, EndTransactionOutcome::Ignored);
    assert_eq!(visible(&b, &o_id), 0);
    // Ending the open one now commits it.
    let open_id = open.transaction_id().to_owned();
    open.commit().await.expect("commit");
    ends_reach(&b, 6).await;
    assert_eq!(visible(&b, &open_id), 1);
}

#[tokio::test(start_paused = true)]
async fn unresolved_check_answer_is_configurable() {
    let c = cluster().await;
    let b = broker(&c);
    let p = producer(&c, None, |b| {
        b.unresolved_check_answer(TransactionState::Rollback)
    })
    .await;
    let tx = p.begin(Message::new(TOPIC, "orphan")).await.expect("begin");
    let id = tx.transaction_id().to_owned();
    drop(tx);
    registered(&b).await;
    b.check_transaction_state(&half_by_key(&b, &id))
        .await
        .expect("check");
    ends_reach(&b, 1).await;
    let (h, outcome, _) = ends(&b).remove(0);
    assert_eq!(h.commit_or_rollback, CommitOrRollback::ROLLBACK);
    assert_eq!(outcome, EndTransactionOutcome::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_local_transaction_ends_unknown_with_a_remark() {
    let c = cluster().await;
    let b = broker(&c);
    let listener = Arc::new(Scripted {
        panic_in_execute: true,
        ..Scripted::default()
    });
    let p = producer(&c, Some(listener), |b| b).await;
    let r = p
        .send_in_transaction_with(Message::new(TOPIC, "boom"), &TransactionState::Commit)
        .await
        .expect("the end was written");
    assert_eq!(r.state, TransactionState::Unknown);
    assert!(
        r.note
            .as_deref()
            .unwrap_or("")
            .contains("local transaction failed")
    );
    ends_reach(&b, 1).await;
    let rec = b.end_transactions().remove(0);
    assert!(rec.remark.unwrap_or_default().contains("panicked"));
    assert_eq!(visible(&b, &r.transaction_id), 0);
}

#[tokio::test(start_paused = true)]
async fn a_half_message_is_retried_only_while_surely_not_stored() {
    let c = FakeCluster::builder()
        .brokers(["broker-a", "broker-b"])
        .transport(Transport::Memory(MemoryNetwork::new()))
        .topic(TOPIC, 4)
        .build()
        .await
        .expect("fake cluster");
    let listener = Arc::new(Scripted::default());
    let p = producer(&c, Some(listener.clone()), |b| b).await;
    let total_halves = || {
        c.brokers()
            .iter()
            .map(|b| b.message_count_for(HALF_TOPIC))
            .sum::<usize>()
    };
    // Busy (not stored): retried, stored once.
    for b in c.brokers() {
        b.script(RequestCode::SEND_MESSAGE_V2)
            .reply(ResponseCode::SYSTEM_BUSY)
            .times(1);
    }
    let r = p
        .send_in_transaction_with(Message::new(TOPIC, "busy"), &TransactionState::Commit)
        .await
        .expect("stored after a retry");
    assert_eq!(r.state, TransactionState::Commit);
    assert_eq!(total_halves(), 1);

    // Stored but answered too late: not retried, the local transaction does not run.
    for b in c.brokers() {
        b.script(RequestCode::SEND_MESSAGE_V2)
            .delay_reply(Duration::from_secs(10))
            .times(1);
    }
    let err = p
        .send_in_transaction_with(Message::new(TOPIC, "late"), &TransactionState::Commit)
        .await
        .unwrap_err();
    let TransactionError::Send(e) = &err else {
        panic!("expected a send error, got {err}");
    };
    assert_eq!(e.delivery(), Delivery::Indeterminate);
    assert!(!err.local_transaction_ran());
    assert_eq!(listener.executes.load(Ordering::SeqCst), 1);
    assert_eq!(
        total_halves(),
        2,
        "one half message for the late transaction"
    );

    // Its check is answered Rollback from memory: the local transaction never ran.
    let key = e
        .message()
        .and_then(|m| m.uniq_key())
        .expect("uniq key")
        .to_owned();
    let (owner, half) = c
        .brokers()
        .iter()
        .find_map(|b| {
            b.messages_for(HALF_TOPIC)
                .into_iter()
                .find(|m| m.uniq_key.as_deref() == Some(key.as_str()))
                .map(|m| (b.clone(), m))
        })
        .expect("the late half message");
    registered(&owner).await;
    let before = owner.end_transactions().len();
    owner.check_transaction_state(&half).await.expect("check");
    ends_reach(&owner, before + 1).await;
    let rec = owner.end_transactions().pop().expect("answer");
    assert_eq!(
        rec.header.expect("header").commit_or_rollback,
        CommitOrRollback::ROLLBACK
    );
    assert_eq!(rec.outcome, EndTransactionOutcome::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn a_half_stored_with_a_warning_is_rolled_back_without_running_the_listener() {
    let c = cluster().await;
    let b = broker(&c);
    let listener = Arc::new(Scripted::default());
    let p = producer(&c, Some(listener.clone()), |b| b).await;
    b.script(RequestCode::SEND_MESSAGE_V2)
        .handle_with_code(ResponseCode::FLUSH_DISK_TIMEOUT)
        .times(1);
    let r = p
        .send_in_transaction_with(Message::new(TOPIC, "w"), &TransactionState::Commit)
        .await
        .expect("ended");
    assert_eq!(r.state, TransactionState::Rollback);
    assert!(r.note.is_some());
    assert_eq!(listener.executes.load(Ordering::SeqCst), 0);
    ends_reach(&b, 1).await;
    assert_eq!(ends(&b)[0].1, EndTransactionOutcome::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn ending_after_close_is_reported() {
    let c = cluster().await;
    let p = producer(&c, None, |b| b).await;
    let tx = p.begin(Message::new(TOPIC, "late")).await.expect("begin");
    p.close(Duration::from_secs(1)).await;
    let err = tx.commit().await.unwrap_err();
    assert_eq!(err.kind(), rmq_producer::SendErrorKind::Shutdown);
    assert_eq!(err.delivery(), Delivery::NotSent);
}
