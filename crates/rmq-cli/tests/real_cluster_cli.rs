//! The `rmq` commands end to end against the real rocketmq-rust cluster (`cargo xtask
//! test --stage cluster`, once per header type): the built binary runs with
//! `--namesrv $RMQ_IT_NAMESRV --header $RMQ_IT_HEADER`.
//!
//! Every test uses its own topic and asserts on the UNIQ_KEYs its own sends printed.

mod cli_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cli_support::*;
use rmq_testkit::real_cluster::{RealCluster, real_cluster, unique_topic};
use serde_json::Value;

/// `rmq --namesrv <cluster> --header <run's header> <args>`.
fn run(cluster: &RealCluster, args: &[&str]) -> Run {
    let header = if cluster.use_json_header() {
        "json"
    } else {
        "binary"
    };
    let mut all = vec!["--namesrv", cluster.namesrv.as_str(), "--header", header];
    all.extend_from_slice(args);
    rmq(&all)
}

fn create_topic(cluster: &RealCluster, topic: &str) -> Value {
    let r = run(
        cluster,
        &[
            "topic", "create", "--topic", topic, "--queues", "4", "--json",
        ],
    );
    r.expect_code(0);
    let doc = r.json();
    assert_keys(&doc, CREATE_KEYS);
    doc
}

/// `rmq pull --json` until every key of `ids` is there (the broker makes stored
/// messages visible to pulls asynchronously), at most 10 s.
fn pull_until(cluster: &RealCluster, topic: &str, ids: &[String]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = run(cluster, &["pull", "--topic", topic, "--json"]);
        r.expect_code(0);
        let doc = r.json();
        check_pull_doc(&doc);
        let have: Vec<&str> = doc["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["msg_id"].as_str())
            .collect();
        if ids.iter().all(|id| have.contains(&id.as_str())) || Instant::now() > deadline {
            return doc;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn real_cluster_cli_create_route_send_every_mode_and_codec_pull() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let topic = unique_topic("RmqCli");

    // topic create: on both masters, visible in the route
    let doc = create_topic(&cluster, &topic);
    assert_eq!(doc["route_visible"], true, "{doc}");
    let brokers = doc["brokers"].as_array().expect("brokers");
    assert!(brokers.len() >= 2, "{doc}");
    for b in brokers {
        assert_keys(b, CREATE_BROKER_KEYS);
        assert_eq!(b["ok"], true, "{b}");
    }

    // route: every master with 4 write queues, publish queues in Java order
    let r = run(&cluster, &["route", "--topic", &topic, "--json"]);
    r.expect_code(0);
    let route = r.json();
    assert_keys(&route, ROUTE_KEYS);
    assert!(route["error"].is_null() && route["publish_error"].is_null());
    let queues: Vec<(String, i64)> = route["publish_queues"]
        .as_array()
        .expect("publish queues")
        .iter()
        .map(|q| {
            (
                q["broker"].as_str().unwrap_or_default().to_owned(),
                q["queue_id"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(queues.len(), 4 * brokers.len(), "{route}");
    let mut sorted = queues.clone();
    sorted.sort();
    assert_eq!(
        queues, sorted,
        "publish queues are sorted by broker, then id"
    );

    // send: every mode with every codec; large bodies so the codecs apply. One-way
    // sends get no answer and this broker drops some when it falls behind (a few percent,
    // docs/reliability.md): four per codec, of which at least one must be stored.
    let mut sent: HashMap<String, (&str, &str)> = HashMap::new();
    for mode in ["sync", "async", "oneway"] {
        let count = if mode == "oneway" { "4" } else { "2" };
        for codec in ["none", "zlib", "zstd", "lz4"] {
            let r = run(
                &cluster,
                &[
                    "send",
                    "--topic",
                    &topic,
                    "--mode",
                    mode,
                    "--compress",
                    codec,
                    "--size",
                    "6000",
                    "--count",
                    count,
                    "--tag",
                    "CliTag",
                    "--property",
                    "cli_mode=yes",
                    "--json",
                ],
            );
            r.expect_code(0);
            let lines = r.json_lines();
            assert_eq!(lines.len().to_string(), count, "{r:#?}");
            for v in lines {
                check_send_line(&v);
                let want = if mode == "oneway" {
                    "ONEWAY"
                } else {
                    "SEND_OK"
                };
                assert_eq!(v["status"], want, "{v}");
                if mode != "oneway" {
                    assert!(v["broker"].is_string() && v["offset_msg_id"].is_string());
                }
                sent.insert(
                    v["msg_id"].as_str().unwrap_or_default().to_owned(),
                    (mode, codec),
                );
            }
        }
    }
    // a batch too: 40 messages in one queue, more than one pull request's worth (32)
    let r = run(
        &cluster,
        &[
            "send", "--topic", &topic, "--mode", "batch", "--count", "40", "--json",
        ],
    );
    r.expect_code(0);
    for v in r.json_lines() {
        check_send_line(&v);
        assert_eq!(v["status"], "SEND_OK");
        sent.insert(
            v["msg_id"].as_str().unwrap_or_default().to_owned(),
            ("batch", "none"),
        );
    }
    assert_eq!(sent.len(), 2 * 4 * 2 + 4 * 4 + 40);

    // pull --json: every message once, decompressed by its sysFlag
    let ids: Vec<String> = sent.keys().cloned().collect();
    let doc = pull_until(&cluster, &topic, &ids);
    assert!(
        doc["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .any(|q| q["messages"].as_u64().unwrap_or(0) > 32),
        "a queue needed more than one pull request: {}",
        doc["queues"]
    );
    let messages = doc["messages"].as_array().expect("messages");
    assert_eq!(doc["count"], messages.len());
    let mut oneway_stored: HashMap<&str, usize> = HashMap::new();
    for (id, (mode, codec)) in &sent {
        let found: Vec<&Value> = messages
            .iter()
            .filter(|m| m["msg_id"] == id.as_str())
            .collect();
        if *mode == "oneway" {
            assert!(found.len() <= 1, "{mode}/{codec} {id}: {found:?}");
            if found.is_empty() {
                eprintln!("one-way {codec} {id} was written but not stored");
                continue;
            }
            *oneway_stored.entry(codec).or_default() += 1;
        } else {
            assert_eq!(found.len(), 1, "{mode}/{codec} {id}: {found:?}");
        }
        let m = found[0];
        assert!(m["body_error"].is_null(), "{m}");
        if *mode == "batch" {
            assert!(m["compression"].is_null(), "{m}");
            continue;
        }
        assert_eq!(m["body_size"], 6000, "{m}");
        assert!(
            m["body"]
                .as_str()
                .is_some_and(|b| b.starts_with("rmq generated body")),
            "{m}"
        );
        assert_eq!(m["tags"], "CliTag");
        assert_eq!(m["properties"]["cli_mode"], "yes");
        if *codec == "none" {
            assert!(m["compression"].is_null(), "{m}");
            assert_eq!(m["stored_body_size"], 6000);
        } else {
            assert_eq!(m["compression"], *codec, "{m}");
            assert!(
                m["stored_body_size"].as_u64().unwrap_or(u64::MAX) < 6000,
                "{m}"
            );
        }
    }

    for codec in ["none", "zlib", "zstd", "lz4"] {
        assert!(
            oneway_stored.get(codec).copied().unwrap_or(0) >= 1,
            "no one-way {codec} message of four was stored"
        );
    }

    // pull --acked-log: all present, then one missing (the messages stored)
    let ids: Vec<String> = ids
        .into_iter()
        .filter(|id| messages.iter().any(|m| m["msg_id"] == id.as_str()))
        .collect();
    let dir = std::env::temp_dir().join(unique_topic("rmq-cli-acked"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let present = dir.join("present.log");
    std::fs::write(&present, ids.join("\n")).expect("write");
    let r = run(
        &cluster,
        &[
            "pull",
            "--topic",
            &topic,
            "--acked-log",
            present.to_str().unwrap_or_default(),
            "--json",
        ],
    );
    r.expect_code(0);
    let doc = r.json();
    check_pull_doc(&doc);
    assert_eq!(doc["acked_log"]["found"], ids.len());
    assert_eq!(doc["acked_log"]["missing"], serde_json::json!([]));
    assert_eq!(doc["acked_log"]["duplicated"], serde_json::json!([]));

    let absent = "7F00000100000000000000000000FFFF";
    let missing = dir.join("missing.log");
    std::fs::write(&missing, format!("{}\n{absent}\n", ids.join("\n"))).expect("write");
    let r = run(
        &cluster,
        &[
            "pull",
            "--topic",
            &topic,
            "--acked-log",
            missing.to_str().unwrap_or_default(),
            "--json",
        ],
    );
    r.expect_code(1);
    let doc = r.json();
    assert_eq!(doc["acked_log"]["missing"], serde_json::json!([absent]));
    assert_eq!(doc["acked_log"]["found"], ids.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn real_cluster_cli_send_to_a_bad_topic_is_a_json_error() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let too_long = "T".repeat(200);
    for topic in ["bad topic!", "SCHEDULE_TOPIC_XXXX", too_long.as_str()] {
        let r = run(&cluster, &["send", "--topic", topic, "--json"]);
        assert_ne!(r.code, 0, "{r:#?}");
        let v = r.json();
        check_send_line(&v);
        assert!(v["status"].is_null(), "{v}");
        let e = &v["error"];
        assert_keys(e, ERROR_KEYS);
        assert_eq!(e["kind"], "invalid_message", "{v}");
        assert_eq!(e["delivery"], "not_sent", "{v}");
        assert!(e["message"].is_string());
    }
    // a route query for a topic nobody created
    let r = run(
        &cluster,
        &["route", "--topic", &unique_topic("RmqCliNone"), "--json"],
    );
    r.expect_code(2);
    let doc = r.json();
    assert_eq!(doc["error"]["kind"], "topic_not_found");
    assert_eq!(doc["error"]["code"], 17);
}

#[test]
fn real_cluster_cli_demo() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let topic = unique_topic("RmqCliDemo");
    let r = run(&cluster, &["demo", "--topic", &topic]);
    println!("{}", r.stdout);
    r.expect_code(0);
    assert!(
        r.stdout.lines().any(|l| l
            == "all 120 messages arrived intact (sync 40, async 40, batch 20, compressed 10, ordered 10)"),
        "{r:#?}"
    );
    // and `rmq pull` sees the same 120
    let r = run(&cluster, &["pull", "--topic", &topic, "--json"]);
    r.expect_code(0);
    assert_eq!(r.json()["count"], 120);
}
