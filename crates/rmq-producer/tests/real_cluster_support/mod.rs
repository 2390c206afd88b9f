//! Shared by the producer's `real_cluster_*` tests: creating a topic on every master of
//! the real cluster and reading a topic back, by UNIQ_KEY, with raw PULL_MESSAGE
//! requests (no consumer exists in this workspace).
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::collections::HashMap;
use std::time::Duration;

use rmq_protocol::header::create_topic::CreateTopicRequestHeader;
use rmq_protocol::header::pull_message::PullMessageRequestHeader;
use rmq_protocol::message::stored::{MessageExt, decode_stored_all};
use rmq_protocol::route::ClusterInfo;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{Invoke, Pool};
use rmq_testkit::real_cluster::RealCluster;

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
    let info = pool
        .invoke(
            &cluster.namesrv,
            RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO),
            T,
        )
        .await
        .expect("cluster info");
    let info = ClusterInfo::parse(info.body_bytes()).expect("cluster info body");
    let masters: Vec<(String, String)> = info
        .broker_addr_table
        .values()
        .filter_map(|b| Some((b.broker_name.clone(), b.master_addr()?.to_owned())))
        .collect();
    for (_, addr) in &masters {
        let req = RemotingCommand::with_header(
            RequestCode::UPDATE_AND_CREATE_TOPIC,
            &CreateTopicRequestHeader::new(topic, queues),
        );
        let resp = pool.invoke(addr, req, T).await.expect("create topic");
        assert_eq!(resp.response_code(), ResponseCode::SUCCESS);
    }
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
    let mut out: HashMap<String, Vec<(String, MessageExt)>> = HashMap::new();
    for (name, addr) in masters {
        for queue in 0..QUEUES {
            let mut offset = 0;
            loop {
                let mut h = PullMessageRequestHeader::one_shot(group, topic, queue, offset, 32);
                h.bname = Some(name.clone());
                let resp = pool
                    .invoke(
                        addr,
                        RemotingCommand::with_header(RequestCode::PULL_MESSAGE, &h),
                        T,
                    )
                    .await
                    .expect("pull");
                if resp.response_code() != ResponseCode::SUCCESS {
                    break;
                }
                let mut n = 0;
                for m in decode_stored_all(resp.body_bytes()) {
                    let m = m.expect("stored message");
                    n += 1;
                    offset = offset.max(m.queue_offset + 1);
                    let key = m.msg_id().unwrap_or_default().to_owned();
                    out.entry(key).or_default().push((name.clone(), m));
                }
                if n == 0 {
                    break;
                }
            }
        }
    }
    out
}
