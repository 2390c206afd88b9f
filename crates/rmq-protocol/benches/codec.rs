//! Codec micro-benchmarks: SEND_MESSAGE_V2 frame encode / decode (128 B, 4 KiB,
//! 1 MiB bodies; JSON and binary headers), properties encoding, UNIQ_KEY
//! generation, and batch encoding of 64 × 128 B.
//!
//! Run: `cargo bench -p rmq-protocol --bench codec`. Results: docs/benchmarks.md.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rmq_protocol::header::CommandHeader;
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::id::uniq::{UniqIdGenerator, UniqIdPrefix};
use rmq_protocol::message::Message;
use rmq_protocol::message::batch::encode_batch;
use rmq_protocol::message::properties::{Properties, encode_properties};
use rmq_protocol::{RemotingCommand, RequestCode, SerializeType, frame};

const PROPS: &str =
    "UNIQ_KEY\u{1}C0A8000130391B6D358605F5E1000001\u{2}TAGS\u{1}TagA\u{2}KEYS\u{1}order-42\u{2}";

fn send_command(body_len: usize, st: SerializeType) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        producer_group: "bench_producer_group".into(),
        topic: "BenchTopic".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 3,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(PROPS.into()),
        reconsume_times: Some(0),
        unit_mode: false,
        max_reconsume_times: None,
        batch: false,
        broker_name: Some("broker-a".into()),
    };
    let mut cmd = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2)
        .opaque(42)
        .serialize_type(st)
        .body(Bytes::from(vec![b'x'; body_len]));
    header.write_to(&mut cmd.ext_fields);
    cmd
}

fn frames(c: &mut Criterion) {
    let sizes = [("128B", 128usize), ("4KiB", 4096), ("1MiB", 1 << 20)];
    let types = [
        ("binary", SerializeType::ROCKETMQ),
        ("json", SerializeType::JSON),
    ];
    let mut enc = c.benchmark_group("send_v2_encode");
    for (sname, size) in sizes {
        for (tname, st) in types {
            let cmd = send_command(size, st);
            let mut buf = BytesMut::with_capacity(size + 1024);
            enc.throughput(Throughput::Bytes(size as u64));
            enc.bench_with_input(BenchmarkId::new(tname, sname), &cmd, |b, cmd| {
                b.iter(|| {
                    buf.clear();
                    frame::encode(black_box(cmd), &mut buf).unwrap();
                })
            });
        }
    }
    enc.finish();

    let mut dec = c.benchmark_group("send_v2_decode");
    for (sname, size) in sizes {
        for (tname, st) in types {
            let mut wire = BytesMut::new();
            frame::encode(&send_command(size, st), &mut wire).unwrap();
            let wire = wire.freeze();
            dec.throughput(Throughput::Bytes(size as u64));
            dec.bench_with_input(BenchmarkId::new(tname, sname), &wire, |b, wire| {
                b.iter(|| {
                    // The copy models bytes arriving in the read buffer.
                    let mut buf = BytesMut::from(&wire[..]);
                    black_box(frame::decode(&mut buf).unwrap());
                })
            });
        }
    }
    dec.finish();
}

fn properties(c: &mut Criterion) {
    let props: Properties = [
        ("UNIQ_KEY", "C0A8000130391B6D358605F5E1000001"),
        ("TAGS", "TagA"),
        ("KEYS", "order-42"),
        ("WAIT", "true"),
    ]
    .into_iter()
    .collect();
    let mut out = String::with_capacity(128);
    c.bench_function("properties_encode_4", |b| {
        b.iter(|| {
            out.clear();
            encode_properties(black_box(&props), &mut out).unwrap();
        })
    });
}

fn uniq_key(c: &mut Criterion) {
    let generator = UniqIdGenerator::new(UniqIdPrefix::new(
        IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
        12345,
        0x1B6D_3586,
    ));
    let mut out = String::with_capacity(32);
    let now = 1_700_000_000_000u64;
    c.bench_function("uniq_key_next_into", |b| {
        b.iter(|| {
            out.clear();
            generator.next_into(black_box(now), &mut out);
        })
    });
}

fn batch(c: &mut Criterion) {
    let messages: Vec<Message> = (0..64)
        .map(|i| {
            let mut m = Message::new("BenchTopic", vec![b'x'; 128]);
            m.put_system_property("UNIQ_KEY", format!("C0A8000130391B6D358605F5E100{i:04X}"))
                .unwrap();
            m
        })
        .collect();
    let mut out = BytesMut::with_capacity(64 * 256);
    let mut group = c.benchmark_group("batch_encode");
    group.throughput(Throughput::Bytes(64 * 128));
    group.bench_function("64x128B", |b| {
        b.iter(|| {
            out.clear();
            encode_batch(black_box(&messages), &mut out).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, frames, properties, uniq_key, batch);
criterion_main!(benches);
