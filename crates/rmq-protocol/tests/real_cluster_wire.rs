//! Wire-level round trip against a **real** RocketMQ cluster, using only `rmq-protocol`
//! over a plain tokio `TcpStream` (no transport, no producer).
//!
//! Run by `cargo xtask test --stage cluster` (every test whose name contains
//! `real_cluster`); skipped unless `RMQ_IT_NAMESRV` is set. By hand:
//! `cargo xtask cluster up`, then
//! `RMQ_IT_NAMESRV=127.0.0.1:9876 cargo test -p rmq-protocol --test real_cluster_wire`.
//!
//! Steps: cluster info from the name server; UPDATE_AND_CREATE_TOPIC (17) of a fresh topic
//! on every broker; GET_ROUTEINFO_BY_TOPIC (105) until every broker is in the route;
//! SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320) to every broker, each with the binary
//! and with the JSON header (whatever `RMQ_IT_HEADER` says), with binary bodies, TAGS, KEYS,
//! a non-ASCII user property, a UNIQ_KEY of our own and non-zero flags; then PULL_MESSAGE
//! (11) of every queue of every broker from offset 0, decoding the stored records and
//! checking that every sent message comes back exactly once with the same body, flag,
//! properties and UNIQ_KEY.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use rmq_protocol::header::create_topic::CreateTopicRequestHeader;
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::header::pull_message::{PullMessageRequestHeader, PullMessageResponseHeader};
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::id::uniq::{UniqIdGenerator, UniqIdPrefix};
use rmq_protocol::message::Message;
use rmq_protocol::message::batch::encode_batch;
use rmq_protocol::message::stored::decode_stored_all;
use rmq_protocol::route::{ClusterInfo, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType, frame};
use rmq_testkit::real_cluster::{real_cluster, unique_topic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Bound on every connect, write and read.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the route to list every broker and for pulls to find every message.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
const QUEUES: i32 = 4;
const PRODUCER_GROUP: &str = "rmq_it_wire_pg";
const CONSUMER_GROUP: &str = "rmq_it_wire_cg";
const CUSTOM_KEY: &str = "rmq_it_custom";
const BATCH_SIZE: usize = 3;

/// One connection, used for one request at a time.
struct Conn {
    addr: String,
    stream: TcpStream,
    buf: BytesMut,
    next_opaque: i32,
}

impl Conn {
    async fn connect(addr: &str) -> Conn {
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connecting to {addr} timed out"))
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        Conn {
            addr: addr.to_owned(),
            stream,
            buf: BytesMut::new(),
            next_opaque: 1,
        }
    }

    /// Sends `cmd` with header type `st` and returns the response with the same opaque.
    async fn call(&mut self, cmd: RemotingCommand, st: SerializeType) -> RemotingCommand {
        let opaque = self.next_opaque;
        self.next_opaque += 1;
        let code = cmd.code;
        let cmd = cmd.opaque(opaque).serialize_type(st);
        let mut out = BytesMut::new();
        frame::encode(&cmd, &mut out).expect("request encodes");
        timeout(IO_TIMEOUT, self.stream.write_all(&out))
            .await
            .unwrap_or_else(|_| panic!("writing request {code} to {} timed out", self.addr))
            .unwrap_or_else(|e| panic!("writing request {code} to {}: {e}", self.addr));
        loop {
            if let Some(resp) = frame::decode(&mut self.buf).expect("response frame decodes") {
                assert!(resp.is_response(), "expected a response, got {resp:?}");
                assert_eq!(resp.opaque, opaque, "response opaque");
                return resp;
            }
            let n = timeout(IO_TIMEOUT, self.stream.read_buf(&mut self.buf))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no response to request {code} ({}) from {} within {IO_TIMEOUT:?}",
                        st.json_name(),
                        self.addr
                    )
                })
                .unwrap_or_else(|e| panic!("reading from {}: {e}", self.addr));
            assert!(
                n > 0,
                "{} closed the connection after request {code} with the {} header \
                 (the servers close silently on a header they reject)",
                self.addr,
                st.json_name()
            );
        }
    }
}

fn assert_success(resp: &RemotingCommand, what: &str) {
    assert_eq!(
        resp.response_code(),
        ResponseCode::SUCCESS,
        "{what}: code {} remark {:?}",
        resp.code,
        resp.remark
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
        .try_into()
        .expect("ms fit u64")
}

const HEADERS: [SerializeType; 2] = [SerializeType::ROCKETMQ, SerializeType::JSON];

/// What a sent message must look like when pulled back.
#[derive(Debug)]
struct Expected {
    message: Message,
    broker: String,
    how: String,
}

/// Builds a message with everything the test compares.
fn message(topic: &str, ids: &UniqIdGenerator, n: usize, how: &str) -> Message {
    // a binary body: every byte value, plus a readable tag
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend_from_slice(format!("#{n} {how}").as_bytes());
    let mut msg = Message::new(topic, Bytes::from(body))
        .with_tags(format!("tag{}", n % 3))
        .expect("tags")
        .with_keys([format!("key-{n}"), format!("order-{}", n * 7)])
        .expect("keys")
        .with_property(CUSTOM_KEY, format!("värde ✓ {n} {how}"))
        .expect("custom property")
        .with_flag(1000 + i32::try_from(n).expect("small n"));
    msg.set_uniq_key(ids.next(now_ms())).expect("uniq key");
    msg
}

fn send_header(
    topic: &str,
    queue_id: i32,
    broker: &str,
    flag: i32,
    props: String,
    batch: bool,
) -> SendMessageRequestHeaderV2 {
    SendMessageRequestHeaderV2 {
        producer_group: PRODUCER_GROUP.to_owned(),
        topic: topic.to_owned(),
        default_topic: "TBW102".to_owned(),
        default_topic_queue_nums: QUEUES,
        queue_id,
        sys_flag: 0,
        born_timestamp: i64::try_from(now_ms()).expect("ms fit i64"),
        flag,
        properties: Some(props.into()),
        reconsume_times: Some(0),
        unit_mode: false,
        max_reconsume_times: None,
        batch,
        broker_name: Some(broker.to_owned()),
    }
}

#[tokio::test]
async fn real_cluster_wire_create_send_batch_pull() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let topic = unique_topic("real_cluster_wire");
    let ids = UniqIdGenerator::new(UniqIdPrefix::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        std::process::id(),
        u32::try_from(now_ms() & 0xFFFF_FFFF).expect("masked"),
    ));

    // 1. the brokers, from GET_BROKER_CLUSTER_INFO, asked with each header type
    let mut ns = Conn::connect(&cluster.namesrv).await;
    let mut brokers: BTreeMap<String, String> = BTreeMap::new();
    for st in HEADERS {
        let resp = ns
            .call(
                RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO),
                st,
            )
            .await;
        assert_success(&resp, "GET_BROKER_CLUSTER_INFO");
        let info = ClusterInfo::parse(resp.body_bytes()).expect("cluster info parses");
        brokers = info
            .broker_addr_table
            .values()
            .filter_map(|b| Some((b.broker_name.clone(), b.master_addr()?.to_owned())))
            .collect();
    }
    assert!(
        !brokers.is_empty(),
        "the name server knows no broker with a master"
    );
    eprintln!("brokers: {brokers:?}, topic {topic}");

    // 2. create the topic on every broker (binary header on the first, JSON on the next, ...)
    let mut conns: BTreeMap<String, Conn> = BTreeMap::new();
    for (i, (name, addr)) in brokers.iter().enumerate() {
        let mut conn = Conn::connect(addr).await;
        let header = CreateTopicRequestHeader::new(topic.as_str(), QUEUES);
        let resp = conn
            .call(
                RemotingCommand::with_header(RequestCode::UPDATE_AND_CREATE_TOPIC, &header),
                HEADERS[i % 2],
            )
            .await;
        assert_success(&resp, &format!("UPDATE_AND_CREATE_TOPIC on {name}"));
        conns.insert(name.clone(), conn);
    }

    // 3. the route lists every broker with QUEUES writable queues
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let route = loop {
        let header = GetRouteInfoRequestHeader::new(topic.as_str());
        let resp = ns
            .call(
                RemotingCommand::with_header(RequestCode::GET_ROUTEINFO_BY_TOPIC, &header),
                SerializeType::ROCKETMQ,
            )
            .await;
        if resp.response_code() == ResponseCode::SUCCESS {
            let route = TopicRouteData::parse(resp.body_bytes()).expect("route parses");
            let listed = |name: &String| {
                route.queue_datas.iter().any(|q| &q.broker_name == name)
                    && route.broker_data(name).and_then(|b| b.master_addr())
                        == brokers.get(name).map(String::as_str)
            };
            if brokers.keys().all(listed) {
                break route;
            }
        }
        assert!(
            Instant::now() < deadline,
            "route of {topic} does not list every broker of {brokers:?} after {SETTLE_TIMEOUT:?} \
             (last response code {}, remark {:?})",
            resp.code,
            resp.remark
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for q in &route.queue_datas {
        assert_eq!(q.write_queue_nums, QUEUES as u32, "{q:?}");
        assert_eq!(q.read_queue_nums, QUEUES as u32, "{q:?}");
        assert!(q.is_writeable() && q.is_readable(), "{q:?}");
    }

    // 4. sends: to every broker, a single send and a batch with each header type
    let mut expected: HashMap<String, Expected> = HashMap::new();
    let mut n = 0usize;
    for (name, conn) in &mut conns {
        for (h, st) in HEADERS.into_iter().enumerate() {
            let how = format!("{name}/{}", st.json_name());

            // SEND_MESSAGE_V2
            let msg = message(&topic, &ids, n, &format!("{how}/single"));
            n += 1;
            let queue_id = i32::try_from(n).expect("small") % QUEUES;
            let header = send_header(
                &topic,
                queue_id,
                name,
                msg.flag(),
                msg.encode_properties().expect("properties encode"),
                false,
            );
            let cmd = RemotingCommand::with_header(RequestCode::SEND_MESSAGE_V2, &header)
                .body(msg.body().clone());
            let resp = conn.call(cmd, st).await;
            assert_success(&resp, &format!("SEND_MESSAGE_V2 {how}"));
            let sent: SendMessageResponseHeader =
                resp.decode_header().expect("send response header");
            assert_eq!(sent.queue_id, queue_id, "{how}: {sent:?}");
            assert_eq!(
                sent.transaction_id.as_deref(),
                msg.uniq_key(),
                "{how}: transactionId is our UNIQ_KEY"
            );
            let uniq = msg.uniq_key().expect("uniq").to_owned();
            expected.insert(
                uniq,
                Expected {
                    message: msg,
                    broker: name.clone(),
                    how: format!("{how}/single"),
                },
            );

            // SEND_BATCH_MESSAGE
            let batch: Vec<Message> = (0..BATCH_SIZE)
                .map(|_| {
                    n += 1;
                    message(&topic, &ids, n, &format!("{how}/batch"))
                })
                .collect();
            let mut body = BytesMut::new();
            encode_batch(&batch, &mut body).expect("batch encodes");
            // batch-level properties as a Java producer sends them: WAIT (a batch UNIQ_KEY
            // would be appended to every stored message's properties by the broker)
            let batch_props = Message::new(topic.as_str(), Bytes::new())
                .encode_properties()
                .expect("props");
            let queue_id = i32::try_from(h + 1).expect("small") % QUEUES;
            let header = send_header(&topic, queue_id, name, 0, batch_props, true);
            let cmd = RemotingCommand::with_header(RequestCode::SEND_BATCH_MESSAGE, &header)
                .body(body.freeze());
            let resp = conn.call(cmd, st).await;
            assert_success(&resp, &format!("SEND_BATCH_MESSAGE {how}"));
            let sent: SendMessageResponseHeader =
                resp.decode_header().expect("batch response header");
            assert_eq!(sent.queue_id, queue_id, "{how}: {sent:?}");
            assert_eq!(
                sent.msg_id.split(',').count(),
                BATCH_SIZE,
                "{how}: one offset msgId per message: {sent:?}"
            );
            for msg in batch {
                let uniq = msg.uniq_key().expect("uniq").to_owned();
                expected.insert(
                    uniq,
                    Expected {
                        message: msg,
                        broker: name.clone(),
                        how: format!("{how}/batch"),
                    },
                );
            }
        }
    }
    assert_eq!(expected.len(), n, "UNIQ_KEYs are distinct");

    // 5. pull every queue of every broker from offset 0 until every message is back
    let mut found: HashMap<String, u32> = HashMap::new();
    let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut round = 0;
    while found.len() < expected.len() {
        assert!(
            Instant::now() < deadline,
            "after {SETTLE_TIMEOUT:?} only {} of {} messages were pulled back; missing: {:?}",
            found.len(),
            expected.len(),
            expected
                .iter()
                .filter(|(k, _)| !found.contains_key(*k))
                .map(|(k, e)| (k, &e.how))
                .collect::<Vec<_>>()
        );
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        round += 1;
        for (name, conn) in &mut conns {
            for queue_id in 0..QUEUES {
                let offset = offsets.entry((name.clone(), queue_id)).or_insert(0);
                for (i, st) in HEADERS.into_iter().cycle().enumerate() {
                    assert!(i < 100, "{name} queue {queue_id}: pulling does not end");
                    let header = PullMessageRequestHeader::one_shot(
                        CONSUMER_GROUP,
                        topic.as_str(),
                        queue_id,
                        *offset,
                        32,
                    );
                    let resp = conn
                        .call(
                            RemotingCommand::with_header(RequestCode::PULL_MESSAGE, &header),
                            st,
                        )
                        .await;
                    if resp.response_code() == ResponseCode::PULL_NOT_FOUND {
                        break;
                    }
                    assert_success(
                        &resp,
                        &format!("PULL_MESSAGE {name} queue {queue_id} offset {offset}"),
                    );
                    let ph: PullMessageResponseHeader =
                        resp.decode_header().expect("pull response header");
                    let mut count = 0;
                    for stored in decode_stored_all(resp.body_bytes()) {
                        let stored = stored.expect("stored message decodes");
                        count += 1;
                        assert_eq!(stored.queue_id, queue_id);
                        assert_eq!(
                            stored.queue_offset,
                            *offset + count - 1,
                            "records come in queue order"
                        );
                        let uniq = stored
                            .message
                            .uniq_key()
                            .expect("stored message has a UNIQ_KEY")
                            .to_owned();
                        let want = expected.get(&uniq).unwrap_or_else(|| {
                            panic!("pulled a message we did not send: {stored:?}")
                        });
                        *found.entry(uniq.clone()).or_default() += 1;
                        assert_eq!(found[&uniq], 1, "{uniq} ({}) pulled twice", want.how);
                        assert_eq!(
                            &want.broker, name,
                            "{uniq} ({}) stored on the wrong broker",
                            want.how
                        );
                        let got = &stored.message;
                        assert_eq!(got.topic(), topic, "{}", want.how);
                        assert_eq!(got.body(), want.message.body(), "{}: body", want.how);
                        assert_eq!(got.flag(), want.message.flag(), "{}: flag", want.how);
                        assert_eq!(stored.sys_flag.0 & 0x1, 0, "{}: not compressed", want.how);
                        for (k, v) in want.message.properties().iter() {
                            assert_eq!(
                                got.property(k),
                                Some(v),
                                "{}: property {k}; stored {:?}",
                                want.how,
                                got.properties()
                            );
                        }
                        assert_eq!(got.tags(), want.message.tags(), "{}", want.how);
                        assert_eq!(
                            got.keys().collect::<Vec<_>>(),
                            want.message.keys().collect::<Vec<_>>()
                        );
                    }
                    assert!(count > 0, "SUCCESS pull with an empty body");
                    assert_eq!(ph.next_begin_offset, *offset + count, "nextBeginOffset");
                    *offset = ph.next_begin_offset;
                }
            }
        }
    }
    assert!(found.values().all(|&c| c == 1));
    eprintln!(
        "{} messages ({} single, {} in batches) sent to {} broker(s) with both header types and pulled back",
        expected.len(),
        conns.len() * 2,
        conns.len() * 2 * BATCH_SIZE,
        conns.len()
    );
}
