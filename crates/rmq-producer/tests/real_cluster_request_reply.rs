//! Request-reply against the real rocketmq-rust cluster. No consumer exists in this
//! workspace, so the responder is a second producer that reads the request with
//! PULL_MESSAGE (as a consumer would), builds the reply with `create_reply_message`
//! and sends it; a message with `MSG_TYPE=reply` goes out as SEND_REPLY_MESSAGE_V2
//! (325). The broker that receives it pushes it to the requester with
//! PUSH_REPLY_MESSAGE_TO_CLIENT (326).

mod real_cluster_support;

use std::sync::Arc;
use std::time::Duration;

use rmq_producer::request::{RequestError, create_reply_message};
use rmq_producer::{HeaderFormat, Message, Producer};
use rmq_protocol::header::pull_message::PullMessageRequestHeader;
use rmq_protocol::message::properties::keys;
use rmq_protocol::message::stored::decode_stored_all;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{Invoke, Pool, PoolConfig, TcpConnector};
use rmq_testkit::real_cluster::{RealCluster, real_cluster, unique_topic};
use tokio::time::Instant;

use real_cluster_support::T;
const QUEUES: i32 = 2;

async fn create_topic(pool: &Pool, cluster: &RealCluster, topic: &str) -> Vec<(String, String)> {
    real_cluster_support::create_topic_with_queues(pool, cluster, topic, QUEUES).await
}

/// Pulls `topic` until `n` messages are readable (or `T` passes); returns them as the
/// broker stored them (with `CLUSTER`).
async fn pull_requests(
    pool: &Pool,
    masters: &[(String, String)],
    topic: &str,
    n: usize,
) -> Vec<Message> {
    let give_up = Instant::now() + T;
    loop {
        let mut out = Vec::new();
        for (name, addr) in masters {
            for queue in 0..QUEUES {
                let mut h =
                    PullMessageRequestHeader::one_shot("rmq_it_reply_cg", topic, queue, 0, 32);
                h.bname = Some(name.clone());
                let req = RemotingCommand::with_header(RequestCode::PULL_MESSAGE, &h);
                let resp = pool.invoke(addr, req, T).await.expect("pull");
                if resp.response_code() == ResponseCode::SUCCESS {
                    for m in decode_stored_all(resp.body_bytes()) {
                        out.push(m.expect("stored message").message);
                    }
                }
            }
        }
        if out.len() >= n || Instant::now() >= give_up {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn producer(cluster: &RealCluster, group: &str) -> Producer {
    Producer::builder(group)
        .namesrv(&cluster.namesrv)
        .configure(|c| {
            c.header_format = if cluster.use_json_header() {
                HeaderFormat::Json
            } else {
                HeaderFormat::Binary
            }
        })
        .build()
        .await
        .expect("producer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_request_gets_a_reply_from_a_second_client() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
    let topic = unique_topic("RmqRequest");
    let masters = create_topic(&pool, &cluster, &topic).await;
    let requester = producer(&cluster, "rmq_it_requester").await;
    let responder = producer(&cluster, "rmq_it_responder").await;

    let responder_task = {
        let (pool, masters, topic) = (pool.clone(), masters.clone(), topic.clone());
        tokio::spawn(async move {
            let requests = pull_requests(&pool, &masters, &topic, 1).await;
            let request = requests.first().expect("the request is readable");
            let cluster_name = request.property(keys::CLUSTER).map(str::to_owned);
            let reply = create_reply_message(request, "pong").expect("reply message");
            let sent = responder.send(reply).await;
            (cluster_name, sent.map(|r| r.message_queue))
        })
    };
    let result = requester
        .request(Message::new(&topic, "ping"), Duration::from_secs(8))
        .await;
    let (cluster_name, reply_send) = responder_task.await.expect("responder");
    eprintln!("CLUSTER={cluster_name:?}; reply send: {reply_send:?}; request: {result:?}");
    let reply_queue = reply_send.expect("the broker accepted the reply (SEND_REPLY_MESSAGE_V2)");
    assert_eq!(
        reply_queue.topic,
        format!(
            "{}_REPLY_TOPIC",
            cluster_name.as_deref().unwrap_or_default()
        )
    );
    let reply = match result {
        Ok(reply) => reply,
        Err(RequestError::Timeout { .. }) => {
            panic!("the broker accepted the reply but never pushed it to the requester")
        }
        Err(e) => panic!("request failed: {e}"),
    };
    assert_eq!(reply.body().as_ref(), b"pong");
    assert!(reply.correlation_id().is_some());
    assert_eq!(requester.stats().pending_requests, 0);
    requester.close(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_namespaced_request_round_trip() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let pool = Pool::new(Arc::new(TcpConnector), PoolConfig::default());
    let bare = unique_topic("RmqNsRequest");
    let wrapped = format!("itns%{bare}");
    let masters = create_topic(&pool, &cluster, &wrapped).await;
    let requester = Producer::builder("rmq_it_ns_requester")
        .namesrv(&cluster.namesrv)
        .configure(|c| {
            c.namespace = Some("itns".into());
            c.header_format = if cluster.use_json_header() {
                HeaderFormat::Json
            } else {
                HeaderFormat::Binary
            }
        })
        .build()
        .await
        .expect("requester");
    let responder = producer(&cluster, "rmq_it_ns_responder").await;

    // A plain send: stored under the wrapped topic, reported under the bare one.
    let receipt = requester
        .send(Message::new(&bare, "plain"))
        .await
        .expect("send");
    assert_eq!(receipt.message_queue.topic, bare);
    let stored = pull_requests(&pool, &masters, &wrapped, 1).await;
    assert_eq!(stored.len(), 1, "stored under {wrapped}");
    assert_eq!(stored[0].property(keys::INSTANCE_ID), Some("itns"));

    let responder_task = {
        let (pool, masters, wrapped) = (pool.clone(), masters.clone(), wrapped.clone());
        tokio::spawn(async move {
            let requests = pull_requests(&pool, &masters, &wrapped, 2).await;
            let request = requests
                .iter()
                .find(|m| m.correlation_id().is_some())
                .expect("the request is readable");
            let reply = create_reply_message(request, "ns-pong").expect("reply");
            responder.send(reply).await.expect("reply sent");
        })
    };
    let reply = requester
        .request(Message::new(&bare, "ns-ping"), Duration::from_secs(8))
        .await
        .expect("reply");
    responder_task.await.expect("responder");
    assert_eq!(reply.body().as_ref(), b"ns-pong");
    assert_eq!(requester.stats().pending_requests, 0);
    requester.close(Duration::from_secs(2)).await;
}
