//! The `--json` documents of every `rmq` command (docs/cli.md), checked against the
//! fake cluster over loopback TCP: the built binary runs as a child process. No real
//! cluster needed, so these run in the unit stage.

mod cli_support;

use std::time::Duration;

use cli_support::*;
use rmq_protocol::{RequestCode, ResponseCode};
use rmq_testkit::fake::{FakeCluster, Transport};
use serde_json::Value;

async fn cluster(brokers: &[&str]) -> FakeCluster {
    FakeCluster::builder()
        .brokers(brokers.iter().copied())
        .transport(Transport::Tcp)
        .cluster_name("FakeCluster")
        .build()
        .await
        .expect("fake cluster")
}

/// `rmq --namesrv <fake> <args>`.
async fn run(c: &FakeCluster, args: &[&str]) -> Run {
    let mut all = argv(&["--namesrv", c.name_server_addr()]);
    all.extend(argv(args));
    rmq_async(all).await
}

async fn create(c: &FakeCluster, topic: &str, queues: &str) -> Value {
    let r = run(
        c,
        &[
            "topic", "create", "--topic", topic, "--queues", queues, "--json",
        ],
    )
    .await;
    r.expect_code(0);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_create_json_lists_every_master() {
    let c = cluster(&["broker-b", "broker-a"]).await;
    let doc = create(&c, "CliCreate", "3").await;
    assert_keys(&doc, CREATE_KEYS);
    assert_eq!(doc["schema"], "rmq.topic.create/1");
    assert_eq!(doc["topic"], "CliCreate");
    assert_eq!(doc["queues"], 3);
    assert_eq!(doc["perm"], 6);
    assert_eq!(doc["perm_name"], "rw");
    assert_eq!(doc["route_visible"], true);
    assert!(doc["error"].is_null());
    let brokers = doc["brokers"].as_array().expect("brokers");
    let names: Vec<&str> = brokers
        .iter()
        .map(|b| b["broker"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broker-a", "broker-b"]);
    for b in brokers {
        assert_keys(b, CREATE_BROKER_KEYS);
        assert_eq!(b["ok"], true);
        assert_eq!(b["cluster"], "FakeCluster");
        assert!(b["error"].is_null());
    }
    for b in c.brokers() {
        assert_eq!(
            b.requests_with_code(RequestCode::UPDATE_AND_CREATE_TOPIC)
                .len(),
            1,
            "{}",
            b.broker_name()
        );
    }
    // read-only
    let r = run(
        &c,
        &[
            "topic",
            "create",
            "--topic",
            "CliCreateR",
            "--perm",
            "r",
            "--json",
        ],
    )
    .await;
    r.expect_code(0);
    assert_eq!(r.json()["perm"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_create_reports_a_failing_broker() {
    let c = cluster(&["broker-a", "broker-b"]).await;
    c.broker("broker-b")
        .unwrap()
        .script(RequestCode::UPDATE_AND_CREATE_TOPIC)
        .reply_with(ResponseCode::NO_PERMISSION, "no way");
    let r = run(
        &c,
        &["topic", "create", "--topic", "CliCreateFail", "--json"],
    )
    .await;
    r.expect_code(1);
    let doc = r.json();
    assert_keys(&doc, CREATE_KEYS);
    assert!(
        doc["error"].is_null(),
        "per-broker failure, not a command failure"
    );
    let b = &doc["brokers"][1];
    assert_eq!(b["broker"], "broker-b");
    assert_eq!(b["ok"], false);
    assert_keys(&b["error"], ERROR_KEYS);
    assert_eq!(b["error"]["kind"], "server_error");
    assert_eq!(b["error"]["code"], 16);
    assert_eq!(doc["brokers"][0]["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_json_has_java_ordered_publish_queues() {
    let c = cluster(&["broker-b", "broker-a"]).await;
    create(&c, "CliRoute", "2").await;
    let r = run(&c, &["route", "--topic", "CliRoute", "--json"]).await;
    r.expect_code(0);
    let doc = r.json();
    assert_keys(&doc, ROUTE_KEYS);
    assert_eq!(doc["schema"], "rmq.route/1");
    assert!(doc["error"].is_null() && doc["publish_error"].is_null());
    assert!(doc["order_topic_conf"].is_null());
    for b in doc["brokers"].as_array().unwrap() {
        assert_keys(b, ROUTE_BROKER_KEYS);
        assert!(b["master"].is_string());
        assert_eq!(b["addrs"]["0"], b["master"]);
    }
    for q in doc["queue_datas"].as_array().unwrap() {
        assert_keys(q, ROUTE_QUEUE_DATA_KEYS);
        assert_eq!(q["write_queue_nums"], 2);
    }
    let queues: Vec<String> = doc["publish_queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| format!("{}:{}", q["broker"].as_str().unwrap(), q["queue_id"]))
        .collect();
    assert_eq!(
        queues,
        ["broker-a:0", "broker-a:1", "broker-b:0", "broker-b:1"]
    );

    // the text form names the same queues
    let r = run(&c, &["route", "--topic", "CliRoute"]).await;
    r.expect_code(0);
    assert!(
        r.stdout.contains("publish queues (4, in Java order)"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_of_an_unknown_topic_is_a_json_error() {
    let c = cluster(&["broker-a"]).await;
    let r = run(&c, &["route", "--topic", "NoSuchTopic", "--json"]).await;
    r.expect_code(2);
    let doc = r.json();
    assert_keys(&doc, ROUTE_KEYS);
    assert!(doc["brokers"].is_null() && doc["publish_queues"].is_null());
    assert_keys(&doc["error"], ERROR_KEYS);
    assert_eq!(doc["error"]["kind"], "topic_not_found");
    assert_eq!(doc["error"]["code"], 17);
    assert!(doc["error"]["delivery"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_json_in_every_mode() {
    let c = cluster(&["broker-a", "broker-b"]).await;
    create(&c, "CliSend", "4").await;
    for (mode, status) in [
        ("sync", "SEND_OK"),
        ("async", "SEND_OK"),
        ("batch", "SEND_OK"),
        ("oneway", "ONEWAY"),
    ] {
        let r = run(
            &c,
            &[
                "send",
                "--topic",
                "CliSend",
                "--count",
                "3",
                "--mode",
                mode,
                "--tag",
                "TagA",
                "--keys",
                "k1 k2",
                "--property",
                "color=red",
                "--json",
            ],
        )
        .await;
        r.expect_code(0);
        let lines = r.json_lines();
        assert_eq!(lines.len(), 3, "{mode}: {r:#?}");
        let mut indexes = Vec::new();
        for v in &lines {
            check_send_line(v);
            assert_eq!(v["mode"], mode);
            assert_eq!(v["topic"], "CliSend");
            assert_eq!(v["status"], status, "{v}");
            assert!(v["error"].is_null());
            indexes.push(v["index"].as_u64().unwrap());
            if mode == "oneway" {
                for k in ["offset_msg_id", "broker", "queue_id", "queue_offset"] {
                    assert!(v[k].is_null(), "{mode}: {v}");
                }
            } else {
                assert!(v["offset_msg_id"].is_string(), "{v}");
                assert!(v["broker"].is_string(), "{v}");
                assert!(v["queue_id"].is_i64(), "{v}");
                assert!(v["queue_offset"].is_i64(), "{v}");
            }
        }
        indexes.sort_unstable();
        assert_eq!(indexes, [0, 1, 2]);
        // each msg_id is the stored message's UNIQ_KEY, with tag, keys and property
        for v in &lines {
            let id = v["msg_id"].as_str().unwrap().to_owned();
            let found = tokio::time::timeout(
                Duration::from_secs(5),
                c.wait_until(|c| !c.find_by_uniq_key(&id).is_empty()),
            )
            .await;
            assert!(found.is_ok(), "{mode}: {id} not stored");
            let stored = c.find_by_uniq_key(&id);
            let p = &stored[0].properties;
            assert_eq!(p.get("TAGS"), Some("TagA"));
            assert_eq!(p.get("KEYS"), Some("k1 k2"));
            assert_eq!(p.get("color"), Some("red"));
            if mode != "oneway" {
                assert_eq!(v["queue_id"], stored[0].queue_id);
                assert_eq!(v["queue_offset"], stored[0].queue_offset);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_failures_are_json_error_objects_and_exit_1() {
    let c = cluster(&["broker-a"]).await;
    create(&c, "CliSendFail", "2").await;

    // an invalid topic name: nothing is sent
    let r = run(&c, &["send", "--topic", "bad topic!", "--json"]).await;
    r.expect_code(1);
    let v = r.json();
    check_send_line(&v);
    assert_eq!(v["index"], 0);
    assert!(v["status"].is_null());
    assert_eq!(v["error"]["kind"], "invalid_message");
    assert_eq!(v["error"]["delivery"], "not_sent");
    assert!(v["error"]["code"].is_null());
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad topic!")
    );

    // a broker that refuses the message
    c.brokers()[0]
        .script(RequestCode::SEND_MESSAGE_V2)
        .reply_with(ResponseCode::MESSAGE_ILLEGAL, "illegal")
        .times(1);
    let r = run(
        &c,
        &["send", "--topic", "CliSendFail", "--count", "2", "--json"],
    )
    .await;
    r.expect_code(1);
    let lines = r.json_lines();
    assert_eq!(lines.len(), 2);
    check_send_line(&lines[0]);
    assert_eq!(lines[0]["error"]["kind"], "rejected");
    assert_eq!(lines[0]["error"]["delivery"], "rejected");
    assert_eq!(lines[0]["error"]["code"], 13);
    assert_eq!(lines[0]["broker"], "broker-a");
    check_send_line(&lines[1]);
    assert_eq!(lines[1]["status"], "SEND_OK");

    // text mode: one line per message, FAILED for the failure
    c.brokers()[0]
        .script(RequestCode::SEND_MESSAGE_V2)
        .reply(ResponseCode::MESSAGE_ILLEGAL)
        .times(1);
    let r = run(&c, &["send", "--topic", "CliSendFail", "--count", "2"]).await;
    r.expect_code(1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r:#?}");
    assert!(lines[0].starts_with("FAILED"), "{}", lines[0]);
    assert!(lines[1].starts_with("SEND_OK"), "{}", lines[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_failures_are_json_error_objects_and_exit_2() {
    // no name server at all
    let r = rmq_async(argv(&["route", "--topic", "T", "--json"])).await;
    r.expect_code(2);
    let doc = r.json();
    assert_keys(&doc, ROUTE_KEYS);
    assert_eq!(doc["error"]["kind"], "usage");

    // a name server that does not answer
    let r = rmq_async(argv(&[
        "--namesrv",
        "127.0.0.1:1",
        "--timeout",
        "1s",
        "pull",
        "--topic",
        "T",
        "--json",
    ]))
    .await;
    r.expect_code(2);
    let doc = r.json();
    check_pull_doc(&doc);
    assert_eq!(doc["error"]["kind"], "name_server_unavailable");

    // an unreadable body file: one send line with index null
    let r = rmq_async(argv(&[
        "--namesrv",
        "127.0.0.1:1",
        "send",
        "--topic",
        "T",
        "--body-file",
        "/nonexistent/body",
        "--json",
    ]))
    .await;
    r.expect_code(2);
    let v = r.json();
    assert_keys(&v, SEND_KEYS);
    assert!(v["index"].is_null() && v["msg_id"].is_null());
    assert_eq!(v["error"]["kind"], "io");

    // a bad --property
    let r = rmq_async(argv(&[
        "--namesrv",
        "127.0.0.1:1",
        "send",
        "--topic",
        "T",
        "--property",
        "novalue",
        "--json",
    ]))
    .await;
    r.expect_code(2);
    assert_eq!(r.json()["error"]["kind"], "usage");

    // a bad --perm
    let r = rmq_async(argv(&[
        "--namesrv",
        "127.0.0.1:1",
        "topic",
        "create",
        "--topic",
        "T",
        "--perm",
        "x",
        "--json",
    ]))
    .await;
    r.expect_code(2);
    let doc = r.json();
    assert_keys(&doc, CREATE_KEYS);
    assert_eq!(doc["error"]["kind"], "usage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_json_reads_back_every_message_decompressed() {
    let c = cluster(&["broker-a", "broker-b"]).await;
    create(&c, "CliPull", "2").await;
    let mut sent = Vec::new();
    for (compress, size) in [
        ("none", "100"),
        ("zlib", "6000"),
        ("zstd", "6000"),
        ("lz4", "6000"),
    ] {
        let r = run(
            &c,
            &[
                "send",
                "--topic",
                "CliPull",
                "--compress",
                compress,
                "--size",
                size,
                "--count",
                "2",
                "--json",
            ],
        )
        .await;
        r.expect_code(0);
        for v in r.json_lines() {
            sent.push((
                v["msg_id"].as_str().unwrap().to_owned(),
                compress,
                size.parse::<u64>().unwrap(),
            ));
        }
    }
    // more than one request's worth in one queue: 40 in queue broker-a:0 via batch
    let r = run(
        &c,
        &[
            "send", "--topic", "CliPull", "--mode", "batch", "--count", "40", "--body", "batched",
            "--json",
        ],
    )
    .await;
    r.expect_code(0);
    for v in r.json_lines() {
        sent.push((v["msg_id"].as_str().unwrap().to_owned(), "none", 7));
    }

    let r = run(&c, &["pull", "--topic", "CliPull", "--json"]).await;
    r.expect_code(0);
    let doc = r.json();
    check_pull_doc(&doc);
    assert_eq!(doc["schema"], "rmq.pull/1");
    assert_eq!(doc["count"], sent.len());
    assert!(doc["acked_log"].is_null());
    assert_eq!(doc["queues"].as_array().unwrap().len(), 4);
    let messages = doc["messages"].as_array().unwrap();
    assert_eq!(messages.len(), sent.len());
    for (id, compress, size) in &sent {
        let m = messages
            .iter()
            .find(|m| m["msg_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not pulled"));
        assert_eq!(m["body_size"], *size, "{m}");
        assert!(m["body"].is_string());
        assert!(m["body_error"].is_null());
        assert_eq!(m["properties"]["UNIQ_KEY"], id.as_str());
        match *compress {
            "none" => {
                assert!(m["compression"].is_null(), "{m}");
                assert_eq!(m["stored_body_size"], *size);
            }
            codec => {
                assert_eq!(m["compression"], codec, "{m}");
                assert_eq!(m["sys_flag"].as_i64().unwrap() & 1, 1);
                assert!(m["stored_body_size"].as_u64().unwrap() < *size);
            }
        }
    }
    // offsets of each queue are consecutive from 0
    for q in doc["queues"].as_array().unwrap() {
        assert_eq!(q["next_offset"], q["messages"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_acked_log_reports_missing_keys() {
    let c = cluster(&["broker-a"]).await;
    create(&c, "CliAcked", "2").await;
    let r = run(
        &c,
        &["send", "--topic", "CliAcked", "--count", "4", "--json"],
    )
    .await;
    r.expect_code(0);
    let ids: Vec<String> = r
        .json_lines()
        .iter()
        .map(|v| v["msg_id"].as_str().unwrap().to_owned())
        .collect();
    let dir = std::env::temp_dir().join(format!("rmq-cli-acked-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let present = dir.join("present.log");
    std::fs::write(&present, format!("{}\n\n{}\n", ids[0], ids[1])).unwrap();
    let r = run(
        &c,
        &[
            "pull",
            "--topic",
            "CliAcked",
            "--acked-log",
            present.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    r.expect_code(0);
    let doc = r.json();
    check_pull_doc(&doc);
    assert!(doc["messages"].is_null());
    let check = &doc["acked_log"];
    assert_eq!(check["listed"], 2);
    assert_eq!(check["found"], 2);
    assert_eq!(check["missing"], serde_json::json!([]));
    assert_eq!(check["unlisted"], 2);

    let missing = "7F000001000000000000000000000000";
    let with_missing = dir.join("missing.log");
    std::fs::write(&with_missing, format!("{}\n{missing}\n", ids.join("\n"))).unwrap();
    let r = run(
        &c,
        &[
            "pull",
            "--topic",
            "CliAcked",
            "--acked-log",
            with_missing.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    r.expect_code(1);
    let check = &r.json()["acked_log"];
    assert_eq!(check["listed"], 5);
    assert_eq!(check["found"], 4);
    assert_eq!(check["missing"], serde_json::json!([missing]));

    // text mode names the missing key
    let r = run(
        &c,
        &[
            "pull",
            "--topic",
            "CliAcked",
            "--acked-log",
            with_missing.to_str().unwrap(),
        ],
    )
    .await;
    r.expect_code(1);
    assert!(
        r.stdout.contains(&format!("missing {missing}")),
        "{}",
        r.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_header_works_against_the_strict_fake() {
    let c = cluster(&["broker-a"]).await;
    let r = run(
        &c,
        &[
            "--header", "json", "topic", "create", "--topic", "CliJson", "--json",
        ],
    )
    .await;
    r.expect_code(0);
    let r = run(
        &c,
        &[
            "--header", "rocketmq", "send", "--topic", "CliJson", "--json",
        ],
    )
    .await;
    r.expect_code(0);
    let r = run(
        &c,
        &["--header", "json", "send", "--topic", "CliJson", "--json"],
    )
    .await;
    r.expect_code(0);
    let r = run(
        &c,
        &["--header", "json", "pull", "--topic", "CliJson", "--json"],
    )
    .await;
    r.expect_code(0);
    assert_eq!(r.json()["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_against_the_fake_cluster() {
    let c = cluster(&["broker-a", "broker-b"]).await;
    let r = run(&c, &["demo", "--topic", "CliDemo"]).await;
    r.expect_code(0);
    let last = r
        .stdout
        .lines()
        .rfind(|l| l.starts_with("all "))
        .unwrap_or_default();
    assert_eq!(
        last,
        "all 120 messages arrived intact (sync 40, async 40, batch 20, compressed 10, ordered 10)",
        "{r:#?}"
    );
    assert_eq!(c.messages_for("CliDemo").len(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_name_servers_and_namesrv_addr() {
    let c = cluster(&["broker-a"]).await;
    // `;`-separated, the first one down: admin requests and the producer fail over
    let list = format!("127.0.0.1:1;{}", c.name_server_addr());
    let r = rmq_async(argv(&[
        "--namesrv",
        &list,
        "topic",
        "create",
        "--topic",
        "CliMulti",
        "--json",
    ]))
    .await;
    r.expect_code(0);
    let r = rmq_async(argv(&[
        "--namesrv",
        &list,
        "send",
        "--topic",
        "CliMulti",
        "--json",
    ]))
    .await;
    r.expect_code(0);
    let r = rmq_async(argv(&[
        "--namesrv",
        &list,
        "route",
        "--topic",
        "CliMulti",
        "--json",
    ]))
    .await;
    r.expect_code(0);
    // NAMESRV_ADDR when --namesrv is absent
    let addr = c.name_server_addr().to_owned();
    let r = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
            .args(["pull", "--topic", "CliMulti", "--json"])
            .env("NAMESRV_ADDR", addr)
            .output()
            .expect("rmq")
    })
    .await
    .expect("join");
    assert!(r.status.success(), "{r:?}");
    let doc: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
    assert_eq!(doc["count"], 1);
}
