//! `NameServerClient`: request shape, error mapping, failover and backoff (E9),
//! address list changes (E10), name server down (E5).

use std::time::Duration;

use rmq_protocol::{RequestCode, ResponseCode, SerializeType};
use rmq_remoting::{Delivery, RemotingError};
use rmq_route::{NameServerClient, NameServerConfig, RouteError, parse_name_server_addrs};
use tokio::time::Instant;

use crate::fake::{FakeInvoke, Node, Reply, route};

const T: Duration = Duration::from_secs(3);

fn client(fake: &FakeInvoke, addrs: &[&str]) -> NameServerClient {
    NameServerClient::new(
        fake.arc(),
        addrs.iter().copied(),
        NameServerConfig {
            first_index: Some(0),
            ..NameServerConfig::default()
        },
    )
}

#[tokio::test(start_paused = true)]
async fn get_route_request_and_parse() {
    let fake = FakeInvoke::new();
    fake.set_node("ns1", Node::Up);
    let r = route(&[("broker-a", "10.0.0.1:10911")], 4);
    fake.set_route("T", r.clone());
    let ns = client(&fake, &["ns1"]);
    let got = ns.get_route("T", T).await.unwrap();
    assert_eq!(got, r);

    let log = fake.log();
    assert_eq!(log.len(), 1);
    let (addr, req) = &log[0];
    assert_eq!(addr, "ns1");
    assert_eq!(req.request_code(), RequestCode::GET_ROUTEINFO_BY_TOPIC);
    assert_eq!(req.ext_fields.get("topic"), Some("T"));
    assert_eq!(req.ext_fields.get("acceptStandardJsonOnly"), Some("true"));
    assert_eq!(req.serialize_type, SerializeType::ROCKETMQ);
    assert!(req.version >= 401, "standard JSON needs version >= 401");

    let json = NameServerClient::new(
        fake.arc(),
        ["ns1"],
        NameServerConfig {
            serialize_type: SerializeType::JSON,
            ..NameServerConfig::default()
        },
    );
    json.get_route("T", T).await.unwrap();
    assert_eq!(fake.log()[1].1.serialize_type, SerializeType::JSON);
}

#[tokio::test(start_paused = true)]
async fn error_mapping() {
    let fake = FakeInvoke::new();
    fake.set_node("ns1", Node::Up);
    let ns = client(&fake, &["ns1"]);

    assert_eq!(
        ns.get_route("Nope", T).await.unwrap_err(),
        RouteError::TopicNotFound {
            topic: "Nope".into()
        }
    );

    fake.set_reply("Busy", Reply::Code(ResponseCode::SYSTEM_ERROR));
    match ns.get_route("Busy", T).await.unwrap_err() {
        RouteError::NameServer { addr, code, remark } => {
            assert_eq!(addr, "ns1");
            assert_eq!(code, ResponseCode::SYSTEM_ERROR);
            assert_eq!(remark.as_deref(), Some("scripted error"));
        }
        e => panic!("{e:?}"),
    }

    fake.set_reply("Bad", Reply::Body(b"{\"queueDatas\":[".to_vec()));
    let e = ns.get_route("Bad", T).await.unwrap_err();
    assert!(
        matches!(&e, RouteError::InvalidRoute { topic, addr, .. } if topic == "Bad" && addr == "ns1"),
        "{e:?}"
    );
    assert!(std::error::Error::source(&e).is_some());

    // Legacy fastjson bodies (bare integer keys) are accepted.
    let legacy = route(&[("broker-a", "10.0.0.1:10911")], 2);
    fake.set_reply(
        "Legacy",
        Reply::Body(legacy.to_java_legacy_json().into_bytes()),
    );
    assert_eq!(ns.get_route("Legacy", T).await.unwrap(), legacy);

    // Transport errors keep their source.
    fake.set_node("ns1", Node::Down);
    let e = ns.get_route("T", T).await.unwrap_err();
    match &e {
        RouteError::Transport {
            addr,
            source: RemotingError::Connect { .. },
        } => assert_eq!(addr, "ns1"),
        e => panic!("{e:?}"),
    }
    assert!(e.is_unavailable());
    assert_eq!(e.delivery(), Some(Delivery::NotSent));
    assert!(std::error::Error::source(&e).is_some());

    let empty = NameServerClient::new(
        fake.arc(),
        Vec::<String>::new(),
        NameServerConfig::default(),
    );
    assert_eq!(
        empty.get_route("T", T).await.unwrap_err(),
        RouteError::NoNameServer
    );
}

/// E5: name server down at start, no cache: a typed error within the deadline.
#[tokio::test(start_paused = true)]
async fn e5_blackholed_name_server_fails_within_the_deadline() {
    let fake = FakeInvoke::new();
    fake.set_node("ns1", Node::Blackhole);
    fake.set_node("ns2", Node::Blackhole);
    let ns = client(&fake, &["ns1", "ns2"]);
    let start = Instant::now();
    let e = ns.get_route("T", T).await.unwrap_err();
    assert!(start.elapsed() <= T, "{:?}", start.elapsed());
    assert!(e.is_unavailable(), "{e:?}");
    assert!(e.transport().is_some_and(RemotingError::is_timeout));
    assert_eq!(fake.calls("ns1"), 1);
    assert_eq!(
        fake.calls("ns2"),
        1,
        "the budget is shared: both servers were tried"
    );
}

/// E9: two name servers, one black-holed: failover within the call, and the failed
/// one is not retried on every call.
#[tokio::test(start_paused = true)]
async fn e9_failover_sticky_and_backoff() {
    let fake = FakeInvoke::new();
    fake.set_node("ns1", Node::Blackhole);
    fake.set_node("ns2", Node::Up);
    fake.set_route("T", route(&[("a", "1.1.1.1:1")], 1));
    let ns = client(&fake, &["ns1", "ns2"]);
    assert_eq!(ns.current().as_deref(), Some("ns1"));

    let start = Instant::now();
    ns.get_route("T", T).await.unwrap();
    // ns1 got half the budget, then ns2 answered.
    assert_eq!(start.elapsed(), T / 2);
    assert_eq!((fake.calls("ns1"), fake.calls("ns2")), (1, 1));
    assert_eq!(
        ns.current().as_deref(),
        Some("ns2"),
        "sticky on the server that works"
    );

    for _ in 0..10 {
        let start = Instant::now();
        ns.get_route("T", T).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
    assert_eq!(
        fake.calls("ns1"),
        1,
        "the black-holed server is not retried on every call"
    );
    assert_eq!(fake.calls("ns2"), 11);

    let stats = ns.stats();
    assert_eq!(stats[0].addr, "ns1");
    assert_eq!(stats[0].consecutive_failures, 1);
    assert_eq!(stats[0].failures, 1);
    assert!(stats[0].backoff_remaining.is_some());
    assert!(
        stats[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("timed out"))
    );
    assert!(stats[1].current);

    // Later, ns2 dies and ns1 has recovered: the next call fails over back to ns1.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ns.stats()[0].backoff_remaining.is_none(), "backoff ended");
    fake.set_node("ns2", Node::Down);
    fake.set_node("ns1", Node::Up);
    ns.get_route("T", T).await.unwrap();
    assert_eq!(fake.calls("ns1"), 2);
    assert_eq!(ns.current().as_deref(), Some("ns1"));
    assert_eq!(ns.stats()[0].consecutive_failures, 0);
}

/// A server in backoff is skipped while another works, tried as a last resort
/// when all others fail, and its backoff grows while it keeps failing.
#[tokio::test(start_paused = true)]
async fn backoff_skip_last_resort_and_growth() {
    let fake = FakeInvoke::new();
    fake.set_node("ns1", Node::Down);
    fake.set_node("ns2", Node::Down);
    fake.set_route("T", route(&[("a", "1.1.1.1:1")], 1));
    let ns = client(&fake, &["ns1", "ns2"]);

    // Both fail: both in backoff (1 s), current stays ns1.
    assert!(ns.get_route("T", T).await.unwrap_err().is_unavailable());
    assert_eq!((fake.calls("ns1"), fake.calls("ns2")), (1, 1));

    // Within the backoff, both are still tried as last resorts (nothing else is
    // left), and a recovered one answers at once.
    fake.set_node("ns2", Node::Up);
    ns.get_route("T", T).await.unwrap();
    assert_eq!((fake.calls("ns1"), fake.calls("ns2")), (2, 2));
    let s = ns.stats();
    assert_eq!(s[0].consecutive_failures, 2);
    assert_eq!(
        s[0].backoff_remaining,
        Some(Duration::from_secs(2)),
        "1 s doubled"
    );

    // While ns2 works, ns1 is never asked.
    for _ in 0..5 {
        ns.get_route("T", T).await.unwrap();
    }
    assert_eq!(fake.calls("ns1"), 2);
}

/// A server answering an error code (not a transport failure) is passed over but
/// not put in backoff.
#[tokio::test(start_paused = true)]
async fn error_code_fails_over_without_backoff() {
    let fake = FakeInvoke::new();
    fake.set_node("ns1", Node::Up);
    fake.set_node("ns2", Node::Up);
    let r = route(&[("a", "1.1.1.1:1")], 1);
    fake.set_route("T", r.clone());
    fake.set_reply_at("ns1", "T", Reply::Code(ResponseCode::SYSTEM_ERROR));
    let ns = client(&fake, &["ns1", "ns2"]);
    assert_eq!(ns.get_route("T", T).await.unwrap(), r);
    assert_eq!((fake.calls("ns1"), fake.calls("ns2")), (1, 1));
    assert!(ns.stats()[0].backoff_remaining.is_none());
    assert_eq!(ns.current().as_deref(), Some("ns2"));

    // Both answering errors: the last one tried (ns2 is current, then ns1) is reported.
    fake.set_reply_at("ns2", "T", Reply::Body(b"[]".to_vec()));
    let e = ns.get_route("T", T).await.unwrap_err();
    assert!(
        matches!(e, RouteError::NameServer { ref addr, .. } if addr == "ns1"),
        "{e:?}"
    );
    assert_eq!((fake.calls("ns1"), fake.calls("ns2")), (2, 2));
}

/// E10: removed name servers are no longer used, not even by a call in progress.
#[tokio::test(start_paused = true)]
async fn e10_set_addresses_removes_servers() {
    let fake = FakeInvoke::new();
    for a in ["ns1", "ns2"] {
        fake.set_node(a, Node::Up);
    }
    fake.set_route("T", route(&[("a", "1.1.1.1:1")], 1));
    let ns = client(&fake, &["ns1", "ns2"]);
    ns.get_route("T", T).await.unwrap();
    assert_eq!(fake.calls("ns1"), 1);

    let removed = ns.set_addresses(["ns2", " ns3 ", "ns2", ""]);
    assert_eq!(removed, ["ns1"]);
    assert_eq!(ns.addresses(), ["ns2", "ns3"]);
    assert_ne!(ns.current().as_deref(), Some("ns1"));
    fake.set_node("ns2", Node::Down);
    fake.set_node("ns3", Node::Down);
    for _ in 0..3 {
        assert!(ns.get_route("T", T).await.is_err());
    }
    assert_eq!(fake.calls("ns1"), 1, "removed server never used again");
    assert!(ns.stats().iter().all(|s| s.addr != "ns1"));

    // A call in progress does not fail over to a server removed meanwhile.
    ns.set_addresses(["nsA", "nsB"]);
    fake.set_node("nsA", Node::Blackhole);
    fake.set_node("nsB", Node::Up);
    let call = {
        let ns = ns.clone();
        tokio::spawn(async move { ns.get_route("T", T).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        (fake.calls("nsA"), fake.calls("nsB")),
        (1, 0),
        "nsA (index 0) first"
    );
    ns.set_addresses(["nsC"]);
    let e = call.await.unwrap().unwrap_err();
    assert!(
        e.transport().is_some_and(RemotingError::is_timeout),
        "{e:?}"
    );
    assert_eq!(fake.calls("nsB"), 0, "nsB was removed before the failover");
}

#[test]
fn addr_list_parsing() {
    assert_eq!(parse_name_server_addrs("a:1;b:2"), ["a:1", "b:2"]);
    assert_eq!(parse_name_server_addrs(" ; ;"), Vec::<String>::new());
    let fake = FakeInvoke::new();
    let ns =
        NameServerClient::from_addr_list(fake.arc(), "x:1; y:2 ;x:1", NameServerConfig::default());
    assert_eq!(ns.addresses(), ["x:1", "y:2"]);
    // The random first server is one of the list.
    assert!(ns.current().is_some_and(|c| c == "x:1" || c == "y:2"));
}

#[tokio::test(start_paused = true)]
async fn generic_invoke_fails_over() {
    let fake = FakeInvoke::new();
    fake.set_node("ns1", Node::Down);
    fake.set_node("ns2", Node::Up);
    let ns = client(&fake, &["ns1", "ns2"]);
    let req = rmq_protocol::RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO);
    let (addr, resp) = ns.invoke(req, T).await.unwrap();
    assert_eq!(addr, "ns2");
    assert_eq!(
        resp.response_code(),
        ResponseCode::REQUEST_CODE_NOT_SUPPORTED
    );
}
