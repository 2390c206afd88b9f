//! Tests of route parsing, limits and serialization.

use proptest::prelude::*;

use super::*;

/// protocol.md §8.2: a real 5.2.0 name-server response, on one line.
const CAPTURE_520: &str = concat!(
    r#"{"brokerDatas":[{"brokerAddrs":{"0":"10.2.3.117:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"#,
    r#""filterServerTable":{},"#,
    r#""queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}]}"#
);

/// peer.md §3.2: the rocketmq-rust 1.0.0 name server's route, with nulls.
const PEER_RUST: &str = concat!(
    r#"{"orderTopicConf":null,"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],"#,
    r#""brokerDatas":[{"cluster":"TestCluster","brokerName":"broker-a","brokerAddrs":{"0":"127.0.0.1:10911"},"zoneName":null,"enableActingMaster":false}],"#,
    r#""filterServerTable":{},"topicQueueMappingInfo":null}"#
);

fn capture_route() -> TopicRouteData {
    TopicRouteData {
        queue_datas: vec![QueueData::new("broker-a", 8, 8, 6)],
        broker_datas: vec![
            BrokerData::new("DefaultCluster", "broker-a").with_addr(0, "10.2.3.117:10911"),
        ],
        ..TopicRouteData::default()
    }
}

fn parse(s: &str) -> Result<TopicRouteData, RouteError> {
    TopicRouteData::parse(s.as_bytes())
}

fn small_limits() -> RouteLimits {
    RouteLimits {
        max_body_bytes: 1 << 20,
        max_brokers: 3,
        max_queue_datas: 3,
        max_queue_nums_per_broker: 16,
        max_addrs_per_broker: 2,
    }
}

/// `{"brokerDatas":[` + `n` brokers + `]}`.
fn many_brokers(n: usize) -> String {
    let mut s = String::from(r#"{"queueDatas":[],"brokerDatas":["#);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"cluster":"c","brokerName":"broker-{i}","brokerAddrs":{{"0":"10.0.0.1:10911"}}}}"#
        ));
    }
    s.push_str("]}");
    s
}

#[test]
fn parses_520_capture() {
    assert_eq!(parse(CAPTURE_520).unwrap(), capture_route());
    // As printed in protocol.md, with line breaks and indentation.
    let printed = CAPTURE_520.replace(r#""filterServerTable""#, "\n \"filterServerTable\"");
    assert_eq!(parse(&printed).unwrap(), capture_route());
}

#[test]
fn to_json_reproduces_520_capture() {
    assert_eq!(capture_route().to_json(), CAPTURE_520);
}

#[test]
fn parses_rocketmq_rust_output_with_nulls() {
    let route = parse(PEER_RUST).unwrap();
    assert_eq!(route.order_topic_conf, None);
    assert_eq!(route.queue_datas, [QueueData::new("broker-a", 4, 4, 6)]);
    let broker = BrokerData::new("TestCluster", "broker-a").with_addr(0, "127.0.0.1:10911");
    assert_eq!(route.broker_datas, [broker]);
    assert!(route.warnings.is_empty());
    assert_eq!(
        route.broker_datas[0].master_socket_addr(),
        "127.0.0.1:10911".parse().ok()
    );
}

#[test]
fn bare_integer_keys_give_broker_ids() {
    let body = r#"{"brokerDatas":[{"brokerAddrs":{0:"a:1",1:"b:2"},"brokerName":"bn","cluster":"c"}],"queueDatas":[]}"#;
    let route = parse(body).unwrap();
    let addrs = &route.broker_datas[0].broker_addrs;
    assert_eq!(addrs.keys().copied().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(addrs[&0], "a:1");
    assert_eq!(addrs[&1], "b:2");
    assert_eq!(route.broker_datas[0].master_addr(), Some("a:1"));
    // With whitespace and a multi-digit key, as pretty-printed fastjson would write it.
    let body =
        "{\"brokerDatas\":[{\"brokerAddrs\":{ 0 : \"a:1\" ,\n 12:\"b:2\"},\"brokerName\":\"bn\"}]}";
    let route = parse(body).unwrap();
    assert_eq!(
        route.broker_datas[0]
            .broker_addrs
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [0, 12]
    );
}

#[test]
fn accepts_topic_syn_flag() {
    let body = r#"{"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,"topicSynFlag":3,"writeQueueNums":4}],"brokerDatas":[]}"#;
    assert_eq!(parse(body).unwrap().queue_datas[0].topic_sys_flag, 3);
    // Both spellings: the current one wins, whatever the order.
    let both = r#"{"queueDatas":[{"brokerName":"b","topicSysFlag":1,"topicSynFlag":2}]}"#;
    assert_eq!(parse(both).unwrap().queue_datas[0].topic_sys_flag, 1);
}

#[test]
fn ignores_unknown_fields_in_any_order() {
    let body = r#"{"future":{"a":[1,{"b":null}],"c":"{0:1}"},"queueDatas":[{"x":1,"writeQueueNums":2,"brokerName":"b",
        "perm":2,"nested":{"deep":[[[]]]}}],"topicQueueMappingByBroker":{"b":{"k":1}},
        "brokerDatas":[{"brokerName":"b","brokerAddrs":{"0":"h:1"},"weird":true}],"filterServerTable":{"h:1":["f:1"]}}"#;
    let route = parse(body).unwrap();
    assert_eq!(route.queue_datas, [QueueData::new("b", 0, 2, 2)]);
    assert_eq!(
        route.broker_datas,
        [BrokerData::new("", "b").with_addr(0, "h:1")]
    );
}

#[test]
fn bare_key_text_inside_strings_is_not_altered() {
    // The bare key in brokerAddrs forces the lenient pass; the strings must survive it.
    let body = r#"{"orderTopicConf":"{0:\"x\",1:2}","brokerDatas":[{"brokerAddrs":{0:"{1:\"a\"}"},"brokerName":"n, 7:","cluster":"\\"}]}"#;
    let route = parse(body).unwrap();
    assert_eq!(route.order_topic_conf.as_deref(), Some(r#"{0:"x",1:2}"#));
    let broker = &route.broker_datas[0];
    assert_eq!(broker.broker_addrs[&0], r#"{1:"a"}"#);
    assert_eq!(broker.broker_name, "n, 7:");
    assert_eq!(broker.cluster, "\\");
}

#[test]
fn empty_and_null_lists() {
    for body in [
        r#"{"queueDatas":[],"brokerDatas":[]}"#,
        r#"{"queueDatas":null,"brokerDatas":null,"orderTopicConf":null}"#,
        "{}",
    ] {
        assert_eq!(parse(body).unwrap(), TopicRouteData::default(), "{body}");
    }
    let route =
        parse(r#"{"brokerDatas":[{"brokerName":"b","brokerAddrs":{},"cluster":null}]}"#).unwrap();
    assert_eq!(route.broker_datas[0].master_addr(), None);
    let route = parse(r#"{"brokerDatas":[{"brokerName":"b","brokerAddrs":{"0":null,"1":"s:1"}}]}"#)
        .unwrap();
    assert_eq!(route.broker_datas[0].broker_addrs.len(), 1);
}

#[test]
fn rejects_100_000_brokers() {
    let body = many_brokers(100_000);
    // With the default limits such a body is already too large to look at ...
    assert_eq!(
        parse(&body),
        Err(RouteError::TooLarge {
            len: body.len(),
            max: RouteLimits::DEFAULT.max_body_bytes
        })
    );
    // ... and with a large body limit the broker count stops it.
    let limits = RouteLimits {
        max_body_bytes: 64 << 20,
        ..RouteLimits::DEFAULT
    };
    assert_eq!(
        TopicRouteData::parse_with_limits(body.as_bytes(), &limits),
        Err(RouteError::TooManyBrokers { max: 1024 })
    );
    // Minimal entries fit in the default body limit and are rejected by count.
    let small = format!(
        r#"{{"brokerDatas":[{}]}}"#,
        vec![r#"{"brokerName":"b"}"#; 100_000].join(",")
    );
    assert!(small.len() < RouteLimits::DEFAULT.max_body_bytes);
    assert_eq!(parse(&small), Err(RouteError::TooManyBrokers { max: 1024 }));
}

#[test]
fn broker_list_parse_stops_at_the_limit() {
    // 1025 valid brokers, then a syntax error. A parser that read the whole list
    // before checking the count would report the syntax error; the bounded one
    // stops at element 1025.
    let valid = many_brokers(1025);
    let broken = format!(
        "{}, {{\"brokerName\": ]}}",
        valid.strip_suffix("]}").unwrap()
    );
    assert_eq!(
        parse(&broken),
        Err(RouteError::TooManyBrokers { max: 1024 })
    );
    // Exactly at the limit is fine.
    assert_eq!(parse(&many_brokers(1024)).unwrap().broker_datas.len(), 1024);
}

#[test]
fn other_list_limits() {
    let limits = small_limits();
    let queues = r#"{"queueDatas":[{"brokerName":"a"},{"brokerName":"b"},{"brokerName":"c"},{"brokerName":"d"}]}"#;
    assert_eq!(
        TopicRouteData::parse_with_limits(queues.as_bytes(), &limits),
        Err(RouteError::TooManyQueueDatas { max: 3 })
    );
    let addrs =
        r#"{"brokerDatas":[{"brokerName":"a","brokerAddrs":{"0":"h:1","1":"h:2","2":"h:3"}}]}"#;
    assert_eq!(
        TopicRouteData::parse_with_limits(addrs.as_bytes(), &limits),
        Err(RouteError::TooManyAddrs { max: 2 })
    );
    let bare = r#"{"brokerDatas":[{"brokerName":"a","brokerAddrs":{0:"h:1",1:"h:2",2:"h:3"}}]}"#;
    assert_eq!(
        TopicRouteData::parse_with_limits(bare.as_bytes(), &limits),
        Err(RouteError::TooManyAddrs { max: 2 })
    );
    let brokers = many_brokers(4);
    assert_eq!(
        TopicRouteData::parse_with_limits(brokers.as_bytes(), &limits),
        Err(RouteError::TooManyBrokers { max: 3 })
    );
}

#[test]
fn body_too_large_is_rejected_before_parsing() {
    let limits = RouteLimits {
        max_body_bytes: 10,
        ..RouteLimits::DEFAULT
    };
    // Not even JSON: the size check comes first.
    assert_eq!(
        TopicRouteData::parse_with_limits(&[b'x'; 11], &limits),
        Err(RouteError::TooLarge { len: 11, max: 10 })
    );
    assert_eq!(
        ClusterInfo::parse_with_limits(&[b'x'; 11], &limits),
        Err(RouteError::TooLarge { len: 11, max: 10 })
    );
    assert_eq!(
        TopicRouteData::parse_with_limits(b"{}", &limits),
        Ok(TopicRouteData::default())
    );
}

#[test]
fn huge_queue_nums_are_capped() {
    let body = r#"{"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":2147483647,"writeQueueNums":2147483647}]}"#;
    let route = parse(body).unwrap();
    let cap = RouteLimits::DEFAULT.max_queue_nums_per_broker;
    assert_eq!(route.queue_datas[0].write_queue_nums, cap);
    assert_eq!(route.queue_datas[0].read_queue_nums, cap);
    assert_eq!(
        route.warnings,
        [
            RouteWarning::QueueNumsCapped {
                broker_name: "b".into(),
                field: "readQueueNums",
                value: 2_147_483_647,
                cap
            },
            RouteWarning::QueueNumsCapped {
                broker_name: "b".into(),
                field: "writeQueueNums",
                value: 2_147_483_647,
                cap
            },
        ]
    );
    assert_eq!(
        route.warnings[1].to_string(),
        "broker \"b\": writeQueueNums 2147483647 capped to 1024"
    );
    // Beyond i32 and i64, and integral floats.
    for (raw, value) in [
        ("2147483648", 2_147_483_648),
        ("18446744073709551615", i64::MAX),
        ("1e30", i64::MAX),
        ("17.0", 17),
    ] {
        let body = format!(r#"{{"queueDatas":[{{"brokerName":"b","writeQueueNums":{raw}}}]}}"#);
        let route = TopicRouteData::parse_with_limits(body.as_bytes(), &small_limits()).unwrap();
        assert_eq!(route.queue_datas[0].write_queue_nums, 16, "{raw}");
        assert_eq!(
            route.warnings,
            [RouteWarning::QueueNumsCapped {
                broker_name: "b".into(),
                field: "writeQueueNums",
                value,
                cap: 16
            }],
            "{raw}"
        );
    }
    // Non-integral numbers and strings are type errors.
    for raw in ["1.5", "\"8\"", "true", "[]"] {
        let body = format!(r#"{{"queueDatas":[{{"brokerName":"b","writeQueueNums":{raw}}}]}}"#);
        assert!(
            matches!(parse(&body), Err(RouteError::Json { .. })),
            "{raw}"
        );
    }
}

#[test]
fn negative_queue_nums_become_zero() {
    let body = r#"{"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":-1,"writeQueueNums":-2147483648}]}"#;
    let route = parse(body).unwrap();
    assert_eq!(route.queue_datas[0].read_queue_nums, 0);
    assert_eq!(route.queue_datas[0].write_queue_nums, 0);
    assert_eq!(
        route.warnings[1],
        RouteWarning::NegativeQueueNums {
            broker_name: "b".into(),
            field: "writeQueueNums",
            value: -2_147_483_648
        }
    );
}

#[test]
fn perm_bits() {
    assert_eq!(
        (perm::PRIORITY, perm::READ, perm::WRITE, perm::INHERIT),
        (8, 4, 2, 1)
    );
    assert!(perm::is_writeable(6) && perm::is_readable(6) && !perm::is_inherited(6));
    assert!(perm::is_writeable(7) && perm::is_inherited(7));
    assert!(!perm::is_writeable(4) && !perm::is_writeable(0) && !perm::is_readable(2));
    assert!(perm::is_priority(8) && !perm::is_priority(7));
    assert!(QueueData::new("b", 1, 1, 2).is_writeable());
    assert!(!QueueData::new("b", 1, 1, 4).is_writeable());
    // perm 0 and odd perms are kept as sent.
    let route =
        parse(r#"{"queueDatas":[{"brokerName":"b","perm":0},{"brokerName":"c","perm":-1}]}"#)
            .unwrap();
    assert_eq!(route.queue_datas[0].perm, 0);
    assert_eq!(route.queue_datas[1].perm, -1);
}

#[test]
fn addresses_are_kept_and_checked_on_demand() {
    assert_eq!(
        split_host_port("10.2.3.117:10911"),
        Some(("10.2.3.117", 10911))
    );
    assert_eq!(
        split_host_port("broker.example:1"),
        Some(("broker.example", 1))
    );
    assert_eq!(split_host_port("[::1]:10911"), Some(("::1", 10911)));
    assert_eq!(split_host_port("::1:10911"), Some(("::1", 10911)));
    for bad in [
        "", ":", "h", "h:", ":1", "h:0", "h:65536", "h:+1", "h: 1", "h:1x", "[]:1", "h:999999",
    ] {
        assert_eq!(split_host_port(bad), None, "{bad:?}");
    }
    let route = parse(
        r#"{"brokerDatas":[{"brokerName":"b","brokerAddrs":{"0":"not an address","1":"h:1"}}]}"#,
    )
    .unwrap();
    let broker = &route.broker_datas[0];
    assert_eq!(broker.master_addr(), Some("not an address"));
    assert_eq!(broker.master_host_port(), None);
    assert_eq!(broker.master_socket_addr(), None);
    let named = BrokerData::new("c", "b").with_addr(MASTER_ID, "broker-a:10911");
    assert_eq!(named.master_host_port(), Some(("broker-a", 10911)));
    assert_eq!(named.master_socket_addr(), None);
    assert_eq!(
        BrokerData::new("c", "b")
            .with_addr(0, "[::1]:9")
            .master_socket_addr(),
        "[::1]:9".parse().ok()
    );
}

#[test]
fn structural_errors() {
    // Missing brokerName.
    let err = parse(r#"{"queueDatas":[{"perm":6}]}"#).unwrap_err();
    assert!(
        matches!(&err, RouteError::Json { message, .. } if message.contains("brokerName")),
        "{err}"
    );
    let err = parse(r#"{"brokerDatas":[{"brokerName":null}]}"#).unwrap_err();
    assert!(
        matches!(&err, RouteError::Json { message, .. } if message.contains("brokerName")),
        "{err}"
    );
    // Broker id not an integer.
    assert!(matches!(
        parse(r#"{"brokerDatas":[{"brokerName":"b","brokerAddrs":{"master":"h:1"}}]}"#),
        Err(RouteError::Json { .. })
    ));
    // perm out of the i32 range.
    assert!(matches!(
        parse(r#"{"queueDatas":[{"brokerName":"b","perm":4294967296}]}"#),
        Err(RouteError::Json { .. })
    ));
    // Position and message are reported separately.
    let err = parse("{\"queueDatas\":\n  [1]}").unwrap_err();
    let RouteError::Json {
        message,
        line,
        column,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*line, *column), (2, 4));
    assert!(
        message.starts_with("invalid type: integer `1`"),
        "{message}"
    );
    assert!(!message.contains("line"), "{message}");
    // Long messages are bounded.
    let long = format!(
        r#"{{"queueDatas":[{{"brokerName":"b","perm":"{}"}}]}}"#,
        "x".repeat(10_000)
    );
    let RouteError::Json { message, .. } = parse(&long).unwrap_err() else {
        panic!("not a JSON error")
    };
    assert!(message.len() <= 200);
}

#[test]
fn garbage_and_truncated_input_are_errors() {
    for body in [
        "",
        " ",
        "null",
        "[]",
        "1",
        "\"route\"",
        "{",
        "}",
        "{0:}",
        "{\"queueDatas\":{}}",
        "{\"brokerDatas\":[1]}",
        "{\"queueDatas\":[]}x",
        "{\"queueDatas\":[]}{}",
        "\u{feff}{}",
        "{\"a\":1,}",
        "{,}",
    ] {
        assert!(
            matches!(parse(body), Err(RouteError::Json { .. })),
            "{body:?}"
        );
    }
    // A bare-key object that is otherwise a route: the unknown key "0" is ignored.
    assert_eq!(parse("{0:1}"), Ok(TopicRouteData::default()));
    assert!(matches!(
        TopicRouteData::parse(&[0xff, 0xfe, b'{']),
        Err(RouteError::Json { .. })
    ));
    // Every strict prefix of the real captures, standard and legacy.
    let legacy = capture_route().to_java_legacy_json();
    for full in [CAPTURE_520, PEER_RUST, legacy.as_str()] {
        for end in 0..full.len() {
            assert!(
                TopicRouteData::parse(&full.as_bytes()[..end]).is_err(),
                "{end}: {full}"
            );
        }
    }
    // Deep nesting: serde_json skips ignored values iteratively (no recursion), and
    // nesting in known fields is a type error at the first level.
    let deep = format!("{{\"x\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse(&deep), Ok(TopicRouteData::default()));
    let deep = format!(
        "{{\"queueDatas\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(matches!(parse(&deep), Err(RouteError::Json { .. })));
}

#[test]
fn legacy_json_shape_and_round_trip() {
    let legacy = capture_route().to_java_legacy_json();
    assert_eq!(
        legacy,
        concat!(
            r#"{"brokerDatas":[{"brokerAddrs":{0:"10.2.3.117:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"#,
            r#""filterServerTable":{},"#,
            r#""queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSynFlag":0,"writeQueueNums":8}]}"#
        )
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(&legacy).is_err(),
        "legacy output is not standard JSON"
    );
    assert_eq!(parse(&legacy).unwrap(), capture_route());
}

#[test]
fn full_route_round_trips() {
    let route = TopicRouteData {
        order_topic_conf: Some("broker-a:4;broker-b:8".into()),
        queue_datas: vec![
            QueueData::new("broker-a", 4, 4, 6),
            QueueData {
                topic_sys_flag: 7,
                ..QueueData::new("broker-b", 8, 2, 7)
            },
        ],
        broker_datas: vec![
            BrokerData::new("c", "broker-a")
                .with_addr(0, "10.0.0.1:10911")
                .with_addr(1, "10.0.0.2:10911"),
            BrokerData {
                enable_acting_master: true,
                zone_name: Some("zone-1".into()),
                ..BrokerData::new("c", "broker-b")
                    .with_addr(2, "[::1]:10911")
                    .with_addr(-1, "x")
            },
        ],
        warnings: Vec::new(),
    };
    assert_eq!(parse(&route.to_json()).unwrap(), route);
    assert_eq!(parse(&route.to_java_legacy_json()).unwrap(), route);
    assert_eq!(
        route
            .broker_data("broker-b")
            .map(|b| b.zone_name.as_deref()),
        Some(Some("zone-1"))
    );
    assert_eq!(route.broker_data("broker-z"), None);
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9:.\\-]{0,12}",
        "[{}\\[\\]:,\"\\\\0-9 a\u{1}\u{e9}]{0,12}",
        any::<String>(),
    ]
}

fn queue_data() -> impl Strategy<Value = QueueData> {
    (text(), 0u32..=1024, 0u32..=1024, any::<i32>(), any::<i32>()).prop_map(|(name, r, w, p, f)| {
        QueueData {
            broker_name: name,
            read_queue_nums: r,
            write_queue_nums: w,
            perm: p,
            topic_sys_flag: f,
        }
    })
}

fn broker_data() -> impl Strategy<Value = BrokerData> {
    (
        text(),
        text(),
        prop::collection::btree_map(any::<i64>(), text(), 0..4),
        any::<bool>(),
        prop::option::of(text()),
    )
        .prop_map(|(cluster, name, addrs, acting, zone)| BrokerData {
            cluster,
            broker_name: name,
            broker_addrs: addrs,
            enable_acting_master: acting,
            zone_name: zone,
        })
}

fn route() -> impl Strategy<Value = TopicRouteData> {
    (
        prop::option::of(text()),
        prop::collection::vec(queue_data(), 0..4),
        prop::collection::vec(broker_data(), 0..4),
    )
        .prop_map(|(conf, queues, brokers)| TopicRouteData {
            order_topic_conf: conf,
            queue_datas: queues,
            broker_datas: brokers,
            warnings: Vec::new(),
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = TopicRouteData::parse(&bytes);
        let _ = ClusterInfo::parse(&bytes);
        let _ = quote_bare_integer_keys(&bytes);
    }

    #[test]
    fn json_like_text_never_panics(s in "[{}\\[\\]:,\"0-9a-zA-Z \\\\\\-.]{0,128}") {
        let _ = TopicRouteData::parse(s.as_bytes());
        let _ = ClusterInfo::parse(s.as_bytes());
    }

    #[test]
    fn mutated_capture_never_panics(pos in 0usize..400, byte in any::<u8>()) {
        let mut body = capture_route().to_java_legacy_json().into_bytes();
        let len = body.len();
        body[pos % len] = byte;
        let _ = TopicRouteData::parse(&body);
    }

    #[test]
    fn serialization_round_trips(route in route()) {
        prop_assert_eq!(&TopicRouteData::parse(route.to_json().as_bytes()).unwrap(), &route);
        prop_assert_eq!(&TopicRouteData::parse(route.to_java_legacy_json().as_bytes()).unwrap(), &route);
    }
}
