//! Smoke test on real sockets: the same send / receive as the memory-transport tests,
//! through [`TcpConnector`] against the fake broker on loopback TCP. Real time, so
//! only outcomes are asserted, with generous bounds (seconds, never exact deadlines).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SEND, finish, is_protocol_close, send};
use rmq_protocol::header::heartbeat::HeartbeatData;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{BoxFuture, Delivery, Pool, PoolConfig, RequestHandler, TcpConnector};
use rmq_testkit::fake::{FakeCluster, Transport};
use tokio::time::Instant;

const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Echo(Mutex<Vec<i32>>);

impl RequestHandler for Echo {
    fn codes(&self) -> &[RequestCode] {
        &[RequestCode::CHECK_TRANSACTION_STATE]
    }

    fn handle(
        &self,
        _: String,
        request: RemotingCommand,
    ) -> BoxFuture<'static, Option<RemotingCommand>> {
        self.0.lock().unwrap().push(request.opaque);
        Box::pin(async {
            Some(RemotingCommand::request(RequestCode(
                ResponseCode::SUCCESS.0,
            )))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_loopback_send_receive_push_and_faults() {
    let cluster = FakeCluster::builder()
        .transport(Transport::Tcp)
        .topic(common::TOPIC, 4)
        .build()
        .await
        .unwrap();
    let a = cluster.brokers()[0].clone();
    let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
    let deadline = || Instant::now() + BOUND;

    // 20 concurrent calls on one multiplexed connection.
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let (p, addr) = (pool.clone(), a.addr().to_owned());
            tokio::spawn(
                async move { p.invoke_at(&addr, send(&format!("t{i}")), deadline()).await },
            )
        })
        .collect();
    for call in calls {
        let r = call.await.unwrap().expect("send over TCP");
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    }
    assert_eq!(a.connections_accepted(), 1);
    assert_eq!(a.message_count(), 20);

    // A request pushed by the broker, answered by the registered handler.
    let echo = Arc::new(Echo::default());
    pool.register_handler(echo.clone());
    let hb = HeartbeatData::for_producers("tcp-client", ["PG"]);
    let hb = RemotingCommand::request(RequestCode::HEART_BEAT).body(hb.to_json_bytes());
    assert_eq!(
        pool.invoke_at(a.addr(), hb, deadline())
            .await
            .unwrap()
            .response_code(),
        ResponseCode::SUCCESS
    );
    let answer = a
        .push_to_client(
            "tcp-client",
            RemotingCommand::request(RequestCode::CHECK_TRANSACTION_STATE),
            BOUND,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.response_code(), ResponseCode::SUCCESS);
    assert_eq!(echo.0.lock().unwrap().as_slice(), &[answer.opaque]);

    // A reset after the broker read the request: Indeterminate, well before the bound;
    // the next call reconnects.
    a.script(SEND).drop_connection().times(1);
    let start = Instant::now();
    let e = pool
        .invoke_at(a.addr(), send("rst"), deadline())
        .await
        .unwrap_err();
    assert_eq!(e.delivery(), Delivery::Indeterminate, "{e}");
    assert!(
        start.elapsed() < BOUND / 2,
        "failed fast: {:?}",
        start.elapsed()
    );
    let r = pool
        .invoke_at(a.addr(), send("after-rst"), deadline())
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    assert_eq!(a.connections_accepted(), 2);

    // Another protocol's bytes: the connection is closed with a protocol error.
    a.script(SEND)
        .garbage(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..])
        .times(1);
    let e = pool
        .invoke_at(a.addr(), send("h2"), deadline())
        .await
        .unwrap_err();
    assert!(is_protocol_close(&e), "{e}");
    let r = pool
        .invoke_at(a.addr(), send("after-h2"), deadline())
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    assert_eq!(a.connections_accepted(), 3);

    // Nothing listening: refused, NotSent.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let e = pool
        .invoke_at(&closed, send("refused"), deadline())
        .await
        .unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent, "{e}");

    finish(&pool, Some(&cluster)).await;
}
