//! Shared by the producer's `real_cluster_*` tests: creating a topic on every master of
//! the real cluster and reading a topic back, by UNIQ_KEY, through
//! `rmq_testkit::real_cluster::Admin` (raw admin and PULL_MESSAGE requests; no
//! consumer exists in this workspace).
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::collections::HashMap;
use std::time::Duration;

use rmq_protocol::message::stored::MessageExt;
use rmq_remoting::Pool;
use rmq_testkit::real_cluster::{Admin, RealCluster};

/// The budget of each admin request (cluster info, create topic, pull).
pub const T: Duration = Duration::from_secs(10);

/// Queues per master of every topic these helpers create.
pub const QUEUES: i32 = 4;

/// Creates `topic` with [`QUEUES`] queues on every master; returns (broker name, address).
pub async fn create_topic(
    pool: &Pool,
    cluster: &RealCluster,
    topic: &str,
) -> Vec<(String, String)> {
    create_topic_with_queues(pool, cluster, topic, QUEUES).await
}

/// Creates `topic` with `queues` queues on every master; returns (broker name, address).
pub async fn create_topic_with_queues(
    pool: &Pool,
    cluster: &RealCluster,
    topic: &str,
    queues: i32,
) -> Vec<(String, String)> {
    let admin = Admin::new(pool, &cluster.namesrv).budget(T);
    let masters = admin.masters().await.expect("cluster info");
    admin
        .create_topic(&masters, topic, queues)
        .await
        .expect("create topic");
    masters
}

/// Every message readable in `topic` now (every queue of every master, from offset 0),
/// by UNIQ_KEY, with the name of the broker that stores it. `group` is the consumer
/// group named in the pulls.
pub async fn pull_all(
    pool: &Pool,
    masters: &[(String, String)],
    topic: &str,
    group: &str,
) -> HashMap<String, Vec<(String, MessageExt)>> {
    Admin::new(pool, "")
        .budget(T)
        .pull_all(masters, topic, QUEUES, group)
        .await
        .expect("pull")
}
