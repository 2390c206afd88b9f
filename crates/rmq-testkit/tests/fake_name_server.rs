//! The fake name server, seen from a raw client over memory and TCP.

mod common;

use common::{RawClient, transports};
use rmq_protocol::code::version;
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::route::{BrokerData, ClusterInfo, QueueData, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_testkit::fake::{
    Dialect, FakeCluster, FakeNameServer, ResponseHeader, RouteJson, Transport,
};

fn route_request(topic: &str, st: SerializeType) -> RemotingCommand {
    RemotingCommand::with_header(
        RequestCode::GET_ROUTEINFO_BY_TOPIC,
        &GetRouteInfoRequestHeader::new(topic),
    )
    .serialize_type(st)
}

#[tokio::test]
async fn route_lookup_in_both_dialects_over_both_transports() {
    for transport in transports() {
        let cluster = FakeCluster::builder()
            .brokers(["broker-a", "broker-b"])
            .transport(transport.clone())
            .topic("T", 4)
            .build()
            .await
            .unwrap();
        let ns = cluster.name_server();
        let mut client = RawClient::connect(&transport, ns.addr()).await.unwrap();

        // Standard JSON, to a binary request; the response header is JSON (server default).
        let r = client
            .call(route_request("T", SerializeType::ROCKETMQ))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
        assert_eq!(r.serialize_type, SerializeType::JSON);
        let body = std::str::from_utf8(r.body_bytes()).unwrap().to_owned();
        assert!(body.contains(r#""brokerAddrs":{"0":"#), "{body}");
        let route = TopicRouteData::parse(r.body_bytes()).unwrap();
        assert_eq!(route, cluster.route_for("T").unwrap());
        let mut names: Vec<_> = route
            .queue_datas
            .iter()
            .map(|q| q.broker_name.as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["broker-a", "broker-b"]);
        for b in cluster.brokers() {
            let data = route.broker_data(b.broker_name()).unwrap();
            assert_eq!(data.master_addr(), Some(b.addr()));
            assert_eq!(data.cluster, "DefaultCluster");
        }
        assert!(
            route
                .queue_datas
                .iter()
                .all(|q| q.write_queue_nums == 4 && q.perm == 6)
        );

        // Legacy Java JSON: bare integer keys and topicSynFlag; still parses.
        ns.set_dialect(Dialect {
            route_json: RouteJson::JavaLegacy,
            ..Dialect::default()
        });
        let r = client
            .call(route_request("T", SerializeType::JSON))
            .await
            .unwrap();
        let body = std::str::from_utf8(r.body_bytes()).unwrap().to_owned();
        assert!(body.contains(r#""brokerAddrs":{0:"#), "{body}");
        assert!(body.contains("topicSynFlag"), "{body}");
        assert_eq!(TopicRouteData::parse(r.body_bytes()).unwrap(), route);

        // By request version: old clients get the legacy form, new ones standard JSON.
        ns.set_dialect(Dialect {
            route_json: RouteJson::ByRequestVersion,
            ..Dialect::default()
        });
        let mut old = route_request("T", SerializeType::JSON);
        old.version = 373;
        let r = client.call(old).await.unwrap();
        assert!(r.body_bytes().windows(4).any(|w| w == b"{0:\""));
        let mut new = route_request("T", SerializeType::JSON);
        new.version = version::V4_9_4;
        let r = client.call(new).await.unwrap();
        assert!(r.body_bytes().windows(5).any(|w| w == b"{\"0\":"));

        // Unknown topic.
        let r = client
            .call(route_request("nope", SerializeType::ROCKETMQ))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::TOPIC_NOT_EXIST);
        assert!(r.remark.as_deref().unwrap().contains("nope"));
        assert!(r.body.is_none());

        // Cluster info.
        let info = client
            .call(RemotingCommand::request(
                RequestCode::GET_BROKER_CLUSTER_INFO,
            ))
            .await
            .unwrap();
        assert_eq!(info.response_code(), ResponseCode::SUCCESS);
        let info = ClusterInfo::parse(info.body_bytes()).unwrap();
        assert_eq!(info.brokers_in_cluster("DefaultCluster").count(), 2);

        // Anything else.
        let r = client
            .call(RemotingCommand::request(RequestCode::SEND_MESSAGE_V2))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::REQUEST_CODE_NOT_SUPPORTED);

        assert_eq!(
            ns.requests_with_code(RequestCode::GET_ROUTEINFO_BY_TOPIC)
                .len(),
            5
        );
        assert_eq!(ns.connections_accepted(), 1);
        cluster.shutdown().await;
    }
}

#[tokio::test]
async fn explicit_routes_win_and_can_be_removed() {
    let transport = Transport::memory();
    let ns = FakeNameServer::start(&transport).await.unwrap();
    let mut client = RawClient::connect(&transport, ns.addr()).await.unwrap();
    let route = TopicRouteData {
        queue_datas: vec![QueueData::new("broker-x", 2, 2, 6)],
        broker_datas: vec![BrokerData::new("C", "broker-x").with_addr(0, "10.0.0.9:10911")],
        ..TopicRouteData::default()
    };
    ns.set_route("X", route.clone());
    let r = client
        .call(route_request("X", SerializeType::JSON))
        .await
        .unwrap();
    assert_eq!(TopicRouteData::parse(r.body_bytes()).unwrap(), route);
    ns.remove_route("X");
    let r = client
        .call(route_request("X", SerializeType::JSON))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::TOPIC_NOT_EXIST);
}

#[tokio::test]
async fn binary_response_headers_and_tbw102_route_on_auto_create() {
    let transport = Transport::Tcp;
    let cluster = FakeCluster::builder()
        .transport(transport.clone())
        .auto_create_topics(true)
        .dialect(Dialect {
            response_header: ResponseHeader::Binary,
            ..Dialect::rocketmq_rust()
        })
        .build()
        .await
        .unwrap();
    let mut client = RawClient::connect(&transport, cluster.name_server_addr())
        .await
        .unwrap();
    let r = client
        .call(route_request("TBW102", SerializeType::JSON))
        .await
        .unwrap();
    assert_eq!(r.serialize_type, SerializeType::ROCKETMQ);
    assert_eq!(r.language, rmq_protocol::LanguageCode::RUST);
    assert_eq!(r.version, 474);
    let route = TopicRouteData::parse(r.body_bytes()).unwrap();
    assert_eq!(route.queue_datas[0].perm, 7);
    assert_eq!(route.queue_datas[0].write_queue_nums, 8);
}
