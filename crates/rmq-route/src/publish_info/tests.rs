//! Conversion tests: Java's queue order, permission and master filters,
//! orderTopicConf, the TBW102 cap, the round-robin counter.

use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData, perm};

use super::*;

fn broker(name: &str, addr: &str) -> BrokerData {
    BrokerData::new("DefaultCluster", name).with_addr(0, addr)
}

fn ids(info: &TopicPublishInfo) -> Vec<String> {
    info.queues()
        .iter()
        .map(|q| format!("{}:{}", q.broker_name, q.queue_id))
        .collect()
}

fn route(queue_datas: Vec<QueueData>, broker_datas: Vec<BrokerData>) -> TopicRouteData {
    TopicRouteData {
        queue_datas,
        broker_datas,
        ..TopicRouteData::default()
    }
}

#[test]
fn java_order_from_unsorted_input() {
    // The name server lists brokers in hash order; Java sorts queue data by name.
    let r = route(
        vec![
            QueueData::new("broker-c", 2, 2, 6),
            QueueData::new("broker-a", 3, 3, 6),
            QueueData::new("broker-b", 1, 1, 6),
        ],
        vec![
            broker("broker-b", "10.0.0.2:10911"),
            broker("broker-c", "10.0.0.3:10911"),
            broker("broker-a", "10.0.0.1:10911"),
        ],
    );
    let info = TopicPublishInfo::from_route("T", &r).unwrap();
    assert_eq!(
        ids(&info),
        [
            "broker-a:0",
            "broker-a:1",
            "broker-a:2",
            "broker-b:0",
            "broker-c:0",
            "broker-c:1"
        ]
    );
    assert!(info.queues().iter().all(|q| q.topic == "T"));
    assert!(!info.is_order_topic());
    assert!(!info.is_from_default_topic());
    assert_eq!(info.broker_addr("broker-c"), Some("10.0.0.3:10911"));
    assert_eq!(info.broker_addr("broker-x"), None);
    let brokers: Vec<_> = info.brokers().collect();
    assert_eq!(
        brokers,
        [
            ("broker-a", "10.0.0.1:10911"),
            ("broker-b", "10.0.0.2:10911"),
            ("broker-c", "10.0.0.3:10911")
        ]
    );
    // Every permutation of the input gives the same list.
    let mut reversed = r.clone();
    reversed.queue_datas.reverse();
    reversed.broker_datas.reverse();
    assert_eq!(
        ids(&TopicPublishInfo::from_route("T", &reversed).unwrap()),
        ids(&info)
    );
    assert_eq!(info.route().queue_datas[0].broker_name, "broker-a");
}

#[test]
fn sort_uses_java_string_order() {
    // Upper case sorts before lower case, and '-' (0x2D) before digits: plain code
    // unit order, no locale.
    let r = route(
        vec![
            QueueData::new("b", 1, 1, 6),
            QueueData::new("B", 1, 1, 6),
            QueueData::new("a-1", 1, 1, 6),
            QueueData::new("a1", 1, 1, 6),
        ],
        vec![
            broker("b", "1:1"),
            broker("B", "2:2"),
            broker("a-1", "3:3"),
            broker("a1", "4:4"),
        ],
    );
    let info = TopicPublishInfo::from_route("T", &r).unwrap();
    assert_eq!(ids(&info), ["B:0", "a-1:0", "a1:0", "b:0"]);
    // UTF-16 order differs from code point order above U+FFFF.
    assert_eq!(
        java_string_cmp("\u{FF61}", "\u{1F600}"),
        CmpOrdering::Greater
    );
    assert_eq!("\u{FF61}".cmp("\u{1F600}"), CmpOrdering::Less);
}

#[test]
fn stable_sort_keeps_duplicate_entries_in_input_order() {
    let r = route(
        vec![QueueData::new("a", 4, 1, 6), QueueData::new("a", 4, 2, 6)],
        vec![broker("a", "1:1")],
    );
    let info = TopicPublishInfo::from_route("T", &r).unwrap();
    assert_eq!(ids(&info), ["a:0", "a:0", "a:1"]);
}

#[test]
fn perm_filter_skips_non_writable() {
    let r = route(
        vec![
            QueueData::new("a", 4, 4, perm::READ),
            QueueData::new("b", 2, 2, perm::READ | perm::WRITE),
            QueueData::new("c", 2, 2, perm::WRITE),
            QueueData::new("d", 2, 2, perm::READ | perm::WRITE | perm::INHERIT),
            QueueData::new("e", 2, 2, 0),
        ],
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| broker(n, "1:1"))
            .collect(),
    );
    let info = TopicPublishInfo::from_route("T", &r).unwrap();
    assert_eq!(ids(&info), ["b:0", "b:1", "c:0", "c:1", "d:0", "d:1"]);
    // write_queue_nums comes from the route even for a non-writable broker.
    assert_eq!(info.write_queue_nums("a"), Some(4));
    assert_eq!(info.write_queue_nums("zz"), None);
}

#[test]
fn brokers_without_master_or_data_are_skipped() {
    let slave_only = BrokerData::new("c", "b").with_addr(1, "10.0.0.9:10911");
    let r = route(
        vec![
            QueueData::new("a", 2, 2, 6),
            QueueData::new("b", 2, 2, 6),
            QueueData::new("missing", 2, 2, 6),
        ],
        vec![broker("a", "10.0.0.1:10911"), slave_only],
    );
    let info = TopicPublishInfo::from_route("T", &r).unwrap();
    assert_eq!(ids(&info), ["a:0", "a:1"]);
    assert_eq!(info.broker_addr("b"), None, "sends go to masters only");
    assert_eq!(info.brokers().len(), 1);
}

#[test]
fn typed_errors_for_unusable_routes() {
    let empty = TopicRouteData::default();
    assert_eq!(
        TopicPublishInfo::from_route("T", &empty).unwrap_err(),
        RouteError::NoWritableQueue { topic: "T".into() }
    );
    let read_only = route(vec![QueueData::new("a", 4, 4, 4)], vec![broker("a", "1:1")]);
    assert!(matches!(
        TopicPublishInfo::from_route("T", &read_only),
        Err(RouteError::NoWritableQueue { .. })
    ));
    let zero_queues = route(vec![QueueData::new("a", 0, 0, 6)], vec![broker("a", "1:1")]);
    assert!(matches!(
        TopicPublishInfo::from_route("T", &zero_queues),
        Err(RouteError::NoWritableQueue { .. })
    ));
    let no_master = route(
        vec![QueueData::new("b", 4, 4, 6), QueueData::new("a", 4, 4, 6)],
        vec![BrokerData::new("c", "a").with_addr(2, "x:1")],
    );
    assert_eq!(
        TopicPublishInfo::from_route("T", &no_master).unwrap_err(),
        RouteError::NoMaster {
            topic: "T".into(),
            brokers: vec!["a".into(), "b".into()]
        }
    );
}

#[test]
fn order_topic_conf_path() {
    let mut r = route(
        // Queue data and perms are ignored on this path.
        vec![QueueData::new("a", 8, 8, 4)],
        vec![broker("b", "10.0.0.2:10911"), broker("a", "10.0.0.1:10911")],
    );
    r.order_topic_conf = Some("b:2;a:3;".into());
    let info = TopicPublishInfo::from_route("T", &r).unwrap();
    assert!(info.is_order_topic());
    assert_eq!(
        ids(&info),
        ["b:0", "b:1", "a:0", "a:1", "a:2"],
        "conf order, not sorted"
    );
    assert_eq!(info.broker_addr("a"), Some("10.0.0.1:10911"));

    // An empty conf is the normal path (the queue data above is read-only).
    r.order_topic_conf = Some(String::new());
    assert!(matches!(
        TopicPublishInfo::from_route("T", &r),
        Err(RouteError::NoWritableQueue { .. })
    ));

    for bad in ["a", "a:x", "a:4;b", "a:99999999999"] {
        r.order_topic_conf = Some(bad.into());
        assert_eq!(
            TopicPublishInfo::from_route("T", &r).unwrap_err(),
            RouteError::InvalidOrderTopicConf {
                topic: "T".into(),
                conf: bad.into()
            },
            "{bad}"
        );
    }
    // Negative counts add nothing; huge counts are capped.
    r.order_topic_conf = Some("a:-1;b:2000000000".into());
    let info = TopicPublishInfo::from_route("T", &r).unwrap();
    assert_eq!(info.queues().len(), 1024);
    r.order_topic_conf = Some("a:-1".into());
    assert!(matches!(
        TopicPublishInfo::from_route("T", &r),
        Err(RouteError::NoWritableQueue { .. })
    ));
}

#[test]
fn default_topic_route_is_capped() {
    let tbw = route(
        vec![
            QueueData::new("b", 8, 8, 7),
            QueueData::new("a", 2, 16, 7),
            QueueData::new("c", 3, 3, 6),
        ],
        vec![broker("a", "1:1"), broker("b", "2:2"), broker("c", "3:3")],
    );
    let info = TopicPublishInfo::from_default_topic_route("NewTopic", &tbw, 4).unwrap();
    assert!(info.is_from_default_topic());
    // min(4, readQueueNums) for read and write: a gets 2 (its read count), b 4, c 3.
    assert_eq!(
        ids(&info),
        [
            "a:0", "a:1", "b:0", "b:1", "b:2", "b:3", "c:0", "c:1", "c:2"
        ]
    );
    assert!(info.queues().iter().all(|q| q.topic == "NewTopic"));
    assert_eq!(info.write_queue_nums("b"), Some(4));
    assert_eq!(info.route().queue_datas[1].read_queue_nums, 4);
    // A cap above the broker's count keeps the broker's.
    let info = TopicPublishInfo::from_default_topic_route("N", &tbw, 100).unwrap();
    assert_eq!(info.queues().len(), 2 + 8 + 3);
}

#[test]
fn round_robin_wraps_at_u32_max_without_panic() {
    let r = route(vec![QueueData::new("a", 3, 3, 6)], vec![broker("a", "1:1")]);
    let info = TopicPublishInfo::from_route("T", &r).unwrap();
    info.reset_index(u32::MAX - 1);
    assert_eq!(info.next_index(), 0x7FFF_FFFF);
    assert_eq!(info.next_index(), 0, "u32::MAX + 1 wraps to 0");
    assert_eq!(info.next_index(), 1);
    // Java's int: 0x7FFFFFFF + 1 = Integer.MIN_VALUE, masked to 0.
    info.reset_index(0x7FFF_FFFE);
    assert_eq!(info.next_index(), 0x7FFF_FFFF);
    assert_eq!(info.next_index(), 0);
    assert_eq!(info.current_index(), 0x8000_0000);
    // Round-robin picks in order.
    info.reset_index(2);
    let picks: Vec<i32> = (0..4)
        .map(|_| info.next_queue().unwrap().queue_id)
        .collect();
    assert_eq!(picks, [0, 1, 2, 0]);
    info.reset_index(u32::MAX);
    assert_eq!(info.next_queue().unwrap().queue_id, 0);
    info.reset_index_random();
}

#[test]
fn counters_start_random() {
    let r = route(vec![QueueData::new("a", 3, 3, 6)], vec![broker("a", "1:1")]);
    let starts: std::collections::BTreeSet<u32> = (0..8)
        .map(|_| {
            TopicPublishInfo::from_route("T", &r)
                .unwrap()
                .current_index()
        })
        .collect();
    assert!(starts.len() > 1, "{starts:?}");
}

#[test]
fn normalized_routes_compare_equal_across_orders() {
    let a = route(
        vec![QueueData::new("x", 1, 1, 6), QueueData::new("y", 1, 1, 6)],
        vec![broker("x", "1:1"), broker("y", "2:2")],
    );
    let mut b = a.clone();
    b.queue_datas.reverse();
    b.broker_datas.reverse();
    assert_ne!(a, b);
    assert_eq!(normalize_route(&a), normalize_route(&b));
}
