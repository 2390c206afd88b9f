//! Pool behaviour against the fake broker (memory transport, paused time): row C10
//! (single-flight connect), GO_AWAY (row D5's transport half), row H4 (ACL signing per
//! attempt, checked by the fake's independent verifier) and requests the broker
//! pushes to the client.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    CountingConnector, EPS, SEND, after, call_ok, finish, memory_cluster, pool, resolved, send,
    settle,
};
use rmq_protocol::header::heartbeat::HeartbeatData;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::acl::{AclCredentials, AclHook, SIGNATURE};
use rmq_remoting::{
    BoxFuture, Delivery, HookError, Pool, PoolConfig, RemotingError, RequestHandler, RpcHook,
};
use rmq_testkit::fake::AclVerdict;
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn c10_fifty_concurrent_first_calls_share_one_connection() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let dialer = CountingConnector::new(Arc::new(net));
    let pool = pool(dialer.clone());

    let calls: Vec<_> = (0..50)
        .map(|i| {
            let (p, addr) = (pool.clone(), a.addr().to_owned());
            tokio::spawn(async move {
                p.invoke_at(&addr, send(&format!("m{i}")), after(3 * SECOND))
                    .await
            })
        })
        .collect();
    for call in calls {
        let r = resolved(call)
            .await
            .expect("join")
            .expect("every call succeeds");
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    }
    assert_eq!(
        a.connections_accepted(),
        1,
        "exactly one connection (apache/rocketmq#1108)"
    );
    assert_eq!(dialer.dials(), 1);
    assert_eq!(pool.stats().connects, 1);
    assert_eq!(a.message_count(), 50);
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn go_away_once_is_retried_on_a_second_connection() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    a.script(SEND).go_away().times(1);

    let r = call_ok(&pool, a.addr(), "g").await;
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    let seen = a.requests_with_code(SEND);
    assert_eq!(seen.len(), 2);
    assert_ne!(
        seen[0].connection, seen[1].connection,
        "retried on a new connection"
    );
    assert_eq!(a.connections_accepted(), 2);
    assert_eq!(a.message_count(), 1, "stored once");
    assert_eq!(pool.stats().go_aways, 1);
    // The GO_AWAY'd connection drains (nothing in flight) and closes.
    resolved(a.wait_until(|b| b.connection_count() == 1)).await;
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn go_away_forever_fails_after_exactly_two_attempts() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    a.script(SEND).go_away();

    let start = Instant::now();
    let e = pool
        .invoke_at(a.addr(), send("g"), after(10 * SECOND))
        .await
        .unwrap_err();
    assert!(matches!(e, RemotingError::GoAway { .. }), "{e}");
    assert_eq!(
        e.delivery(),
        Delivery::NotSent,
        "GO_AWAY refuses unprocessed"
    );
    assert!(
        start.elapsed() < EPS,
        "bounded: no retry loop up to the deadline"
    );
    assert_eq!(a.requests_with_code(SEND).len(), 2, "exactly two attempts");
    assert_eq!(a.connections_accepted(), 2);
    assert_eq!(a.message_count(), 0);
    assert_eq!(pool.stats().go_aways, 2);

    a.clear_scripts();
    call_ok(&pool, a.addr(), "after").await;
    assert_eq!(a.connections_accepted(), 3);
    finish(&pool, Some(&cluster)).await;
}

/// Puts the attempt number in an ext field, so each attempt's signed content differs.
#[derive(Debug, Default)]
struct AttemptField(AtomicUsize);

impl RpcHook for AttemptField {
    fn before_request(&self, _: &str, request: &mut RemotingCommand) -> Result<(), HookError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        request.ext_fields.insert("attempt", n.to_string());
        Ok(())
    }
}

fn acl_pool(net: &rmq_remoting::MemoryNetwork, ak: &str, sk: &str) -> Pool {
    let hooks: Vec<Arc<dyn RpcHook>> = vec![
        Arc::new(AttemptField::default()),
        Arc::new(AclHook::new(AclCredentials::new(ak, sk))), // signs last
    ];
    Pool::with_hooks(Arc::new(net.clone()), PoolConfig::default(), hooks)
}

#[tokio::test(start_paused = true)]
async fn h4_acl_signed_per_attempt_and_verified_by_the_fake() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    a.require_acl("rocketmq2", "12345678");
    let pool = acl_pool(&net, "rocketmq2", "12345678");
    let accepted = |v: &Option<AclVerdict>| matches!(v, Some(AclVerdict::Accepted { .. }));

    // Plain call.
    call_ok(&pool, a.addr(), "plain").await;
    assert!(accepted(&a.requests()[0].acl));

    // GO_AWAY: the pool's own retry is signed again (new attempt field, new signature).
    a.clear_requests();
    a.script(SEND).go_away().times(1);
    call_ok(&pool, a.addr(), "go-away").await;
    let seen = a.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| accepted(&r.acl)), "{seen:?}");
    assert_ne!(seen[0].field("attempt"), seen[1].field("attempt"));
    assert_ne!(
        seen[0].field(SIGNATURE),
        seen[1].field(SIGNATURE),
        "re-signed"
    );

    // Dropped connection: the caller's retry goes out on a new connection, re-signed.
    a.clear_requests();
    a.script(SEND).drop_connection().times(1);
    let e = pool
        .invoke_at(a.addr(), send("dropped"), after(3 * SECOND))
        .await
        .unwrap_err();
    assert_eq!(e.delivery(), Delivery::Indeterminate);
    call_ok(&pool, a.addr(), "dropped").await;
    let seen = a.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| accepted(&r.acl)), "{seen:?}");
    assert_ne!(seen[0].connection, seen[1].connection);
    assert_ne!(seen[0].field(SIGNATURE), seen[1].field(SIGNATURE));
    assert_eq!(a.message_count(), 3);

    // Wrong secret: rejected by the fake's verifier, nothing stored.
    a.clear_requests();
    let wrong = acl_pool(&net, "rocketmq2", "not-the-secret");
    let r = wrong
        .invoke_at(a.addr(), send("wrong"), after(3 * SECOND))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::NO_PERMISSION);
    assert!(matches!(
        a.requests()[0].acl,
        Some(AclVerdict::BadSignature { .. })
    ));
    // No credentials at all.
    let none = pool_without_hooks(&net);
    let r = none
        .invoke_at(a.addr(), send("anon"), after(3 * SECOND))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::NO_PERMISSION);
    assert_eq!(a.requests()[1].acl, Some(AclVerdict::MissingAccessKey));
    assert_eq!(a.message_count(), 3);

    for other in [&wrong, &none] {
        assert_eq!(other.stats().in_flight(), 0);
        other.close_all();
    }
    finish(&pool, Some(&cluster)).await;
}

fn pool_without_hooks(net: &rmq_remoting::MemoryNetwork) -> Pool {
    pool(Arc::new(net.clone()))
}

/// Answers CHECK_TRANSACTION_STATE and records what it was given.
#[derive(Debug, Default)]
struct Recorder {
    /// (opaque, one-way) of every request handled.
    seen: Mutex<Vec<(i32, bool)>>,
}

impl RequestHandler for Recorder {
    fn codes(&self) -> &[RequestCode] {
        &[RequestCode::CHECK_TRANSACTION_STATE]
    }

    fn handle(
        &self,
        _addr: String,
        request: RemotingCommand,
    ) -> BoxFuture<'static, Option<RemotingCommand>> {
        self.seen
            .lock()
            .unwrap()
            .push((request.opaque, request.is_oneway()));
        let remark = format!("handled {}", request.opaque);
        Box::pin(async move {
            Some(RemotingCommand::request(RequestCode(ResponseCode::SUCCESS.0)).remark(remark))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn server_initiated_requests_answered_by_handler_or_not_supported() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net));
    let recorder = Arc::new(Recorder::default());
    pool.register_handler(recorder.clone());

    // Register the connection under a client id, as a producer's heartbeat does.
    let hb = HeartbeatData::for_producers("client-1", ["PG"]);
    let r = pool
        .invoke_at(
            a.addr(),
            RemotingCommand::request(RequestCode::HEART_BEAT).body(hb.to_json_bytes()),
            after(3 * SECOND),
        )
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    let frames = || pool.stats().frames_written;
    let push = |code: RequestCode, oneway: bool| {
        let mut cmd = RemotingCommand::request(code);
        if oneway {
            cmd = cmd.oneway();
        }
        let a = a.clone();
        async move { a.push_to_client("client-1", cmd, 5 * SECOND).await }
    };

    // A registered code: the handler's answer comes back with the request's opaque.
    let before = frames();
    let answer = push(RequestCode::CHECK_TRANSACTION_STATE, false)
        .await
        .expect("answered")
        .expect("a response");
    let (opaque, oneway) = recorder.seen.lock().unwrap()[0];
    assert!(!oneway);
    assert_eq!(answer.opaque, opaque);
    assert!(answer.is_response());
    assert_eq!(answer.response_code(), ResponseCode::SUCCESS);
    assert_eq!(
        answer.remark.as_deref(),
        Some(format!("handled {opaque}").as_str())
    );
    assert_eq!(frames() - before, 1);

    // An unregistered code: REQUEST_CODE_NOT_SUPPORTED, same opaque matching.
    let before = frames();
    let answer = push(RequestCode::GET_CONSUMER_RUNNING_INFO, false)
        .await
        .expect("answered")
        .expect("a response");
    assert_eq!(
        answer.response_code(),
        ResponseCode::REQUEST_CODE_NOT_SUPPORTED
    );
    assert_eq!(frames() - before, 1);

    // One-way requests, handled or not: never answered.
    let before = frames();
    assert_eq!(
        push(RequestCode::CHECK_TRANSACTION_STATE, true).await,
        Ok(None)
    );
    assert_eq!(
        push(RequestCode::GET_CONSUMER_RUNNING_INFO, true).await,
        Ok(None)
    );
    resolved(async {
        while recorder.seen.lock().unwrap().len() < 2 {
            settle().await;
        }
    })
    .await;
    assert!(
        recorder.seen.lock().unwrap()[1].1,
        "the handler saw it as one-way"
    );
    tokio::time::sleep(SECOND).await;
    assert_eq!(frames(), before, "nothing written for one-way requests");
    assert_eq!(pool.stats().server_requests, 4);
    finish(&pool, Some(&cluster)).await;
}

/// Sends the answer of a detached request into a channel.
struct Answer(tokio::sync::oneshot::Sender<Result<RemotingCommand, RemotingError>>);

impl rmq_remoting::OnReply for Answer {
    fn on_reply(self, answer: Result<RemotingCommand, RemotingError>) {
        let _ = self.0.send(answer);
    }
}

#[tokio::test(start_paused = true)]
async fn detached_requests_go_only_to_a_live_connection_of_a_pool_without_hooks() {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let pool = pool(Arc::new(net.clone()));
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let back = pool
        .try_invoke_detached(a.addr(), send("cold"), after(3 * SECOND), Answer(tx))
        .expect_err("no connection yet: nothing waits for a connect here");
    assert_eq!(back.request.body, send("cold").body, "handed back unsent");
    // Connected by an ordinary call, the pool takes detached requests.
    call_ok(&pool, a.addr(), "warm").await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    assert!(
        pool.try_invoke_detached(a.addr(), send("detached"), after(3 * SECOND), Answer(tx))
            .is_ok()
    );
    let resp = rx.await.expect("answered").expect("stored");
    assert_eq!(resp.response_code(), ResponseCode::SUCCESS);
    assert_eq!(a.message_count(), 2);
    finish(&pool, Some(&cluster)).await;

    // A pool with RPC hooks (here ACL signing) never sends detached: its hooks run
    // on the awaiting path only.
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let a = cluster.brokers()[0].clone();
    let signed = acl_pool(&net, "ak", "sk");
    let _ = signed
        .invoke_at(a.addr(), send("warm"), after(3 * SECOND))
        .await;
    let (tx, _rx) = tokio::sync::oneshot::channel();
    assert!(
        signed
            .try_invoke_detached(a.addr(), send("x"), after(3 * SECOND), Answer(tx))
            .is_err()
    );
    finish(&signed, Some(&cluster)).await;
}
