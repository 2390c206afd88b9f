//! The fake broker's request handling, seen from a raw client over memory and TCP.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{RawClient, batch_message, send_v2, transports, v2_header, with_header};
use rmq_protocol::header::create_topic::CreateTopicRequestHeader;
use rmq_protocol::header::end_transaction::{CommitOrRollback, EndTransactionRequestHeader};
use rmq_protocol::header::get_max_offset::GetMaxOffsetRequestHeader;
use rmq_protocol::header::heartbeat::HeartbeatData;
use rmq_protocol::header::pull_message::{PullMessageRequestHeader, PullMessageResponseHeader};
use rmq_protocol::header::send_message::SendMessageRequestHeader;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::header::unregister_client::UnregisterClientRequestHeader;
use rmq_protocol::id::offset::{OffsetMessageId, decode_offset_id_list};
use rmq_protocol::message::batch::encode_batch;
use rmq_protocol::message::stored::decode_stored_all;
use rmq_protocol::message::{Properties, SysFlag};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_testkit::fake::{
    EndTransactionOutcome, FakeBroker, FakeCluster, HALF_TOPIC, TransactionState, Transport,
};

async fn one_broker(transport: &Transport) -> (FakeCluster, FakeBroker, RawClient) {
    let cluster = FakeCluster::builder()
        .transport(transport.clone())
        .topic("T", 4)
        .build()
        .await
        .unwrap();
    let broker = cluster.brokers()[0].clone();
    let client = RawClient::connect(transport, broker.addr()).await.unwrap();
    (cluster, broker, client)
}

fn pull(topic: &str, queue: i32, offset: i64) -> RemotingCommand {
    with_header(
        RequestCode::PULL_MESSAGE,
        &PullMessageRequestHeader::one_shot("CG", topic, queue, offset, 32),
    )
}

#[tokio::test]
async fn v1_v2_and_batch_sends_are_stored_and_pulled_back() {
    for transport in transports() {
        let (cluster, broker, mut client) = one_broker(&transport).await;

        // V2, binary header.
        let r = client
            .call(send_v2(
                "T",
                1,
                "UNIQ-V2",
                b"v2-body",
                SerializeType::ROCKETMQ,
            ))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{:?}", r.remark);
        let h: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!((h.queue_id, h.queue_offset), (1, 0));
        assert_eq!(h.transaction_id.as_deref(), Some("UNIQ-V2"));
        assert_eq!(h.region_id.as_deref(), Some("DefaultRegion"));
        assert!(h.is_trace_on());
        let id = OffsetMessageId::decode(&h.msg_id).unwrap();
        assert_eq!(id.addr.to_string(), broker.addr());
        assert_eq!(id.offset, 0);

        // V1, JSON header, no UNIQ_KEY: the broker generates one.
        let v1: SendMessageRequestHeader = v2_header("T", 1, &Properties::new()).into();
        let cmd = with_header(RequestCode::SEND_MESSAGE, &v1)
            .body(&b"v1-body"[..])
            .serialize_type(SerializeType::JSON);
        let r = client.call(cmd).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{:?}", r.remark);
        let h1: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!(h1.queue_offset, 1);
        let generated = h1.transaction_id.clone().unwrap();
        assert_eq!(generated.len(), 32);
        let first = &broker.messages()[0];
        assert_eq!(
            OffsetMessageId::decode(&h1.msg_id).unwrap().offset,
            i64::from(first.store_size),
            "commit-log offsets grow by record size"
        );

        // Batch of two, on queue 2.
        let mut body = BytesMut::new();
        encode_batch(
            &[batch_message(b"m1", "B1"), batch_message(b"m2", "B2")],
            &mut body,
        )
        .unwrap();
        let mut hb = v2_header(
            "T",
            2,
            &[("WAIT", "true"), ("UNIQ_KEY", "BATCH")]
                .into_iter()
                .collect(),
        );
        hb.batch = true;
        let cmd = with_header(RequestCode::SEND_BATCH_MESSAGE, &hb).body(body.freeze());
        let r = client.call(cmd).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{:?}", r.remark);
        let hb: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!(hb.queue_offset, 0);
        assert_eq!(hb.transaction_id.as_deref(), Some("BATCH"));
        let ids = decode_offset_id_list(&hb.msg_id).unwrap();
        assert_eq!(ids.len(), 2);

        // The store has all four, with the right fields.
        let stored = broker.messages_for("T");
        assert_eq!(stored.len(), 4);
        let v2 = &broker.find_by_uniq_key("UNIQ-V2")[0];
        assert_eq!((v2.queue_id, v2.queue_offset, v2.flag), (1, 0, 0));
        assert_eq!(&v2.body[..], b"v2-body");
        assert_eq!(v2.born_timestamp, 1_700_000_000_000);
        assert_eq!(v2.producer_group, "PG");
        assert_eq!(v2.property("CLUSTER"), Some("DefaultCluster"));
        assert_eq!(
            broker.find_by_uniq_key(&generated)[0].body.as_ref(),
            b"v1-body"
        );
        let b2 = &broker.find_by_uniq_key("B2")[0];
        assert_eq!((b2.queue_id, b2.queue_offset), (2, 1));
        assert!(b2.from_batch);
        assert_eq!(b2.offset_msg_id, ids[1].encode());
        assert_eq!(broker.uniq_key_counts().values().max(), Some(&1));

        // Pull them back.
        let r = client.call(pull("T", 1, 0)).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
        let ph: PullMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!((ph.next_begin_offset, ph.max_offset), (2, 2));
        let pulled: Vec<_> = decode_stored_all(r.body_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(pulled.len(), 2);
        assert_eq!(pulled[0].msg_id(), Some("UNIQ-V2"));
        assert_eq!(pulled[0].message.body().as_ref(), b"v2-body");
        assert_eq!(pulled[0].offset_msg_id(), h.msg_id);
        assert_eq!(pulled[1].message.body().as_ref(), b"v1-body");
        let r = client.call(pull("T", 2, 1)).await.unwrap();
        let pulled: Vec<_> = decode_stored_all(r.body_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(pulled.len(), 1);
        assert_eq!(pulled[0].msg_id(), Some("B2"));
        // Nothing more: 19.
        let r = client.call(pull("T", 1, 2)).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::PULL_NOT_FOUND);

        // GET_MAX_OFFSET.
        let r = client
            .call(with_header(
                RequestCode::GET_MAX_OFFSET,
                &GetMaxOffsetRequestHeader::new("T", 2),
            ))
            .await
            .unwrap();
        assert_eq!(r.ext_fields.get("offset"), Some("2"));
        cluster.shutdown().await;
    }
}

#[tokio::test]
async fn validation_like_a_real_broker() {
    let transport = Transport::memory();
    let (_cluster, broker, mut client) = one_broker(&transport).await;

    let r = client
        .call(send_v2("T", 4, "Q", b"x", SerializeType::ROCKETMQ))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::SYSTEM_ERROR);
    assert!(r.remark.unwrap().contains("queueId[4] is illegal"));

    let r = client
        .call(send_v2("Unknown", 0, "U", b"x", SerializeType::ROCKETMQ))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::TOPIC_NOT_EXIST);

    let big = vec![0u8; 4 * 1024 * 1024 + 1];
    let cmd = send_v2("T", 0, "BIG", b"", SerializeType::ROCKETMQ).body(big);
    let r = client.call(cmd).await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::MESSAGE_ILLEGAL);

    // Missing required V2 field `h` and no V1 fallback: INVALID_PARAMETER.
    let mut cmd = send_v2("T", 0, "H", b"x", SerializeType::ROCKETMQ);
    cmd.ext_fields.remove("h");
    let r = client.call(cmd).await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::INVALID_PARAMETER);

    // 320 without `m`: the blob is one message.
    let cmd = send_v2("T", 0, "BLOB", b"not-a-batch", SerializeType::ROCKETMQ);
    let cmd = RemotingCommand {
        code: RequestCode::SEND_BATCH_MESSAGE.0,
        ..cmd
    };
    assert_eq!(
        client.call(cmd).await.unwrap().response_code(),
        ResponseCode::SUCCESS
    );
    assert_eq!(
        broker.find_by_uniq_key("BLOB")[0].body.as_ref(),
        b"not-a-batch"
    );

    // Unknown code; one-way unknown code gets nothing (the next call still works).
    let r = client
        .call(RemotingCommand::request(RequestCode(9999)))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::REQUEST_CODE_NOT_SUPPORTED);
    client
        .send(&RemotingCommand::request(RequestCode(9998)).oneway())
        .await
        .unwrap();
    client
        .send(&RemotingCommand::request(RequestCode(9997)).opaque(100))
        .await
        .unwrap();
    let next = client.read().await.unwrap().unwrap();
    assert_eq!(next.opaque, 100, "the one-way request got no answer");

    // Only the valid sends were stored.
    assert_eq!(broker.message_count(), 1);
    assert_eq!(broker.requests().len(), 8);
}

#[tokio::test]
async fn auto_create_from_tbw102_and_create_topic() {
    let transport = Transport::memory();
    let cluster = FakeCluster::builder()
        .transport(transport.clone())
        .auto_create_topics(true)
        .build()
        .await
        .unwrap();
    let broker = &cluster.brokers()[0];
    let mut client = RawClient::connect(&transport, broker.addr()).await.unwrap();
    assert!(cluster.route_for("New").is_none());
    let r = client
        .call(send_v2("New", 3, "N", b"x", SerializeType::ROCKETMQ))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS, "{:?}", r.remark);
    let cfg = broker.topic("New").unwrap();
    assert_eq!((cfg.write_queue_nums, cfg.perm), (4, 6));
    assert_eq!(
        cluster.route_for("New").unwrap().queue_datas[0].write_queue_nums,
        4
    );

    let r = client
        .call(with_header(
            RequestCode::UPDATE_AND_CREATE_TOPIC,
            &CreateTopicRequestHeader::new("Made", 2),
        ))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    assert_eq!(broker.topic("Made").unwrap().write_queue_nums, 2);
    assert!(cluster.route_for("Made").is_some());
}

fn heartbeat(client_id: &str, group: &str) -> RemotingCommand {
    let data = HeartbeatData::for_producers(client_id, [group, "CLIENT_INNER_PRODUCER"]);
    RemotingCommand::request(RequestCode::HEART_BEAT).body(data.to_json_bytes())
}

#[tokio::test]
async fn transactions_heartbeats_and_pushes() {
    for transport in transports() {
        let (_cluster, broker, mut client) = one_broker(&transport).await;
        let r = client.call(heartbeat("client-1", "TXG")).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
        let hb = &broker.heartbeats()[0];
        assert_eq!(hb.producer_groups, ["TXG", "CLIENT_INNER_PRODUCER"]);
        assert_eq!(broker.clients().get("client-1"), Some(&hb.connection));

        // Two half messages.
        let mut halves = Vec::new();
        for uniq in ["H1", "H2"] {
            let props: Properties = [("UNIQ_KEY", uniq), ("TRAN_MSG", "true"), ("PGROUP", "TXG")]
                .into_iter()
                .collect();
            let mut h = v2_header("T", 3, &props);
            h.producer_group = "TXG".into();
            h.sys_flag = SysFlag::TRANSACTION_PREPARED;
            let r = client
                .call(with_header(RequestCode::SEND_MESSAGE_V2, &h).body(&b"half"[..]))
                .await
                .unwrap();
            assert_eq!(r.response_code(), ResponseCode::SUCCESS);
            halves.push(r.decode_header::<SendMessageResponseHeader>().unwrap());
        }
        assert!(
            broker.messages_for("T").is_empty(),
            "half messages are invisible"
        );
        assert_eq!(broker.messages_for(HALF_TOPIC).len(), 2);
        assert_eq!(
            client.call(pull("T", 3, 0)).await.unwrap().response_code(),
            ResponseCode::PULL_NOT_FOUND
        );

        // The broker asks about H2 over the heartbeat connection.
        let half2 = broker.find_by_uniq_key("H2")[0].clone();
        broker.check_transaction_state(&half2).await.unwrap();
        let check = client.read().await.unwrap().unwrap();
        assert_eq!(check.request_code(), RequestCode::CHECK_TRANSACTION_STATE);
        assert!(check.is_oneway());
        assert_eq!(check.ext_fields.get("msgId"), Some("H2"));
        let body: Vec<_> = decode_stored_all(check.body_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(body[0].message.topic(), "T");
        assert_eq!(body[0].queue_id, 3);

        // Commit H1, roll back H2 (one-way, as Java does).
        for (half, uniq, decision) in [
            (&halves[0], "H1", CommitOrRollback::COMMIT),
            (&halves[1], "H2", CommitOrRollback::ROLLBACK),
        ] {
            let end = EndTransactionRequestHeader {
                producer_group: "TXG".into(),
                tran_state_table_offset: half.queue_offset,
                commit_log_offset: OffsetMessageId::decode(&half.msg_id).unwrap().offset,
                commit_or_rollback: decision,
                from_transaction_check: false,
                msg_id: uniq.into(),
                transaction_id: half.transaction_id.as_deref().map(str::to_owned),
                topic: Some("T".into()),
                bname: Some("broker-a".into()),
            };
            client
                .send(&with_header(RequestCode::END_TRANSACTION, &end).oneway())
                .await
                .unwrap();
        }
        let b = broker.clone();
        tokio::time::timeout(
            Duration::from_secs(5),
            b.wait_until(|_| broker.end_transactions().len() == 2),
        )
        .await
        .unwrap();
        let ends = broker.end_transactions();
        assert_eq!(ends[0].outcome, EndTransactionOutcome::Committed);
        assert_eq!(ends[1].outcome, EndTransactionOutcome::RolledBack);
        assert!(ends.iter().all(|e| e.oneway));
        let visible = broker.messages_for("T");
        assert_eq!(visible.len(), 1);
        assert_eq!(visible[0].uniq_key.as_deref(), Some("H1"));
        assert_eq!(
            visible[0].sys_flag & SysFlag::TRANSACTION_MASK,
            SysFlag::TRANSACTION_COMMIT
        );
        let states: Vec<_> = broker
            .messages_for(HALF_TOPIC)
            .iter()
            .map(|m| m.transaction)
            .collect();
        assert_eq!(
            states,
            [TransactionState::Committed, TransactionState::RolledBack]
        );
        let pulled = client.call(pull("T", 3, 0)).await.unwrap();
        assert_eq!(decode_stored_all(pulled.body_bytes()).count(), 1);

        // A push that needs an answer (PUSH_REPLY_MESSAGE_TO_CLIENT style).
        let pusher = broker.clone();
        let push = tokio::spawn(async move {
            let req = RemotingCommand::request(RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT)
                .body(&b"reply"[..]);
            pusher
                .push_to_client("client-1", req, Duration::from_secs(5))
                .await
        });
        let req = client.read().await.unwrap().unwrap();
        assert_eq!(
            req.request_code(),
            RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT
        );
        client
            .send(&RemotingCommand::response_to(&req, ResponseCode::SUCCESS))
            .await
            .unwrap();
        let answer = push.await.unwrap().unwrap().unwrap();
        assert_eq!(answer.response_code(), ResponseCode::SUCCESS);

        // Unregister forgets the group.
        let r = client
            .call(with_header(
                RequestCode::UNREGISTER_CLIENT,
                &UnregisterClientRequestHeader::for_producer("client-1", "TXG"),
            ))
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::SUCCESS);
        assert!(!broker.producer_groups().contains_key("TXG"));
        assert!(matches!(
            broker.check_transaction_state(&half2).await,
            Err(rmq_testkit::fake::PushError::NotRegistered(_))
        ));
    }
}
