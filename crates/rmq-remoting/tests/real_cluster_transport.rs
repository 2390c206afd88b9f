//! Route, send and pull through `rmq-remoting` against the real rocketmq-rust name
//! server and brokers (`cargo xtask test --stage cluster`), with both header types,
//! including 64 sends in flight on one multiplexed connection.

use std::time::Duration;

use bytes::Bytes;
use rmq_protocol::header::create_topic::CreateTopicRequestHeader;
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::header::pull_message::PullMessageRequestHeader;
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::message::stored::decode_stored_all;
use rmq_protocol::route::{ClusterInfo, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_remoting::{Invoke, Pool, PoolConfig, TcpConnector};
use rmq_testkit::real_cluster::{real_cluster, unique_topic};

const T: Duration = Duration::from_secs(10);

fn send_request(
    topic: &str,
    broker: &str,
    queue: i32,
    uniq: &str,
    st: SerializeType,
) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        producer_group: "rmq_it_remoting".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: queue,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(format!("UNIQ_KEY\u{1}{uniq}\u{2}WAIT\u{1}true\u{2}").into()),
        reconsume_times: Some(0),
        unit_mode: false,
        max_reconsume_times: None,
        batch: false,
        broker_name: Some(broker.into()),
    };
    RemotingCommand::with_header(RequestCode::SEND_MESSAGE_V2, &header)
        .serialize_type(st)
        .body(Bytes::from(format!("body of {uniq}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_route_send_pull_through_pool() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let pool = Pool::new(std::sync::Arc::new(TcpConnector), PoolConfig::default());
    let topic = unique_topic("RmqRemoting");

    let info = pool
        .invoke(
            &cluster.namesrv,
            RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO),
            T,
        )
        .await
        .expect("cluster info");
    assert_eq!(info.response_code(), ResponseCode::SUCCESS);
    let info = ClusterInfo::parse(info.body_bytes()).expect("cluster info body");
    let masters: Vec<(String, String)> = info
        .broker_addr_table
        .values()
        .filter_map(|b| Some((b.broker_name.clone(), b.master_addr()?.to_owned())))
        .collect();
    assert!(masters.len() >= 2, "two brokers expected: {masters:?}");

    for (_, addr) in &masters {
        let create = RemotingCommand::with_header(
            RequestCode::UPDATE_AND_CREATE_TOPIC,
            &CreateTopicRequestHeader::new(&topic, 4),
        );
        let resp = pool.invoke(addr, create, T).await.expect("create topic");
        assert_eq!(
            resp.response_code(),
            ResponseCode::SUCCESS,
            "{:?}",
            resp.remark
        );
    }
    let mut route = None;
    for _ in 0..50 {
        let req = RemotingCommand::with_header(
            RequestCode::GET_ROUTEINFO_BY_TOPIC,
            &GetRouteInfoRequestHeader::new(&topic),
        );
        let resp = pool.invoke(&cluster.namesrv, req, T).await.expect("route");
        if resp.response_code() == ResponseCode::SUCCESS {
            let r = TopicRouteData::parse(resp.body_bytes()).expect("route body");
            if r.queue_datas.len() >= 2 {
                route = Some(r);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let route = route.expect("route with both brokers");

    // 64 sends in flight per broker, alternating header types, one connection each.
    let mut sent = Vec::new();
    let mut calls = Vec::new();
    for (name, addr) in &masters {
        assert!(route.broker_data(name).is_some());
        for i in 0..64 {
            let st = if i % 2 == 0 {
                SerializeType::ROCKETMQ
            } else {
                SerializeType::JSON
            };
            let uniq = format!(
                "{:032X}",
                (name.len() as u128) << 64 | i as u128 | 0xAB << 100
            );
            sent.push(uniq.clone());
            let req = send_request(&topic, name, i % 4, &uniq, st);
            let pool = pool.clone();
            let addr = addr.clone();
            calls.push(tokio::spawn(
                async move { pool.invoke(&addr, req, T).await },
            ));
        }
    }
    for call in calls {
        let resp = call.await.unwrap().expect("send");
        assert_eq!(
            resp.response_code(),
            ResponseCode::SUCCESS,
            "{:?}",
            resp.remark
        );
        let h: SendMessageResponseHeader = resp.decode_header().expect("send response header");
        assert!((0..4).contains(&h.queue_id));
    }
    let stats = pool.stats();
    assert_eq!(
        stats.connections.len(),
        3,
        "one connection per address: {stats:?}"
    );
    assert_eq!(stats.in_flight(), 0);

    // Pull every queue back.
    let mut found = Vec::new();
    for (name, addr) in &masters {
        for queue in 0..4 {
            let mut header =
                PullMessageRequestHeader::one_shot("rmq_it_remoting_cg", &topic, queue, 0, 64);
            header.bname = Some(name.clone());
            let req = RemotingCommand::with_header(RequestCode::PULL_MESSAGE, &header);
            let resp = pool.invoke(addr, req, T).await.expect("pull");
            if resp.response_code() != ResponseCode::SUCCESS {
                continue;
            }
            for msg in decode_stored_all(resp.body_bytes()) {
                let msg = msg.expect("stored message decodes");
                let uniq = msg.msg_id().expect("UNIQ_KEY").to_owned();
                assert_eq!(
                    msg.message.body().as_ref(),
                    format!("body of {uniq}").as_bytes()
                );
                found.push(uniq);
            }
        }
    }
    found.sort();
    sent.sort();
    assert_eq!(found, sent, "every sent message pulled back exactly once");
    pool.close_all();
}
