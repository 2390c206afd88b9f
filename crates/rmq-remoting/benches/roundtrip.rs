//! Round trips through the pool over the in-memory and the loopback transports,
//! with 1 and 64 requests in flight, beside a raw std-socket round trip of the same
//! pre-encoded frame (the floor).
//!
//! Run: `cargo bench -p rmq-remoting --bench roundtrip`. Results: docs/benchmarks.md.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{Connector, MemoryNetwork, Pool, PoolConfig, TcpConnector};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Runtime;

fn request() -> RemotingCommand {
    let mut cmd =
        RemotingCommand::request(RequestCode::SEND_MESSAGE_V2).body(Bytes::from(vec![b'x'; 128]));
    cmd.ext_fields.insert("a", "bench_group");
    cmd.ext_fields.insert("b", "BenchTopic");
    cmd
}

/// Answers every request with SUCCESS, echoing its opaque.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let codec = FrameCodec::default();
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut outbuf = BytesMut::with_capacity(64 * 1024);
    loop {
        match io.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while let Ok(Some(req)) = codec.decode(&mut inbuf) {
            let resp = RemotingCommand::response_to(&req, ResponseCode::SUCCESS);
            let _ = codec.encode(&resp, &mut outbuf);
        }
        if io.write_all(&outbuf).await.is_err() {
            return;
        }
        outbuf.clear();
    }
}

fn pool_benches(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let net = MemoryNetwork::new();
    let tcp_addr = rt.block_on(async {
        let mut listener = net.bind("memory-broker:10911").unwrap();
        tokio::spawn(async move {
            while let Some((io, _)) = listener.accept().await {
                tokio::spawn(serve(io));
            }
        });
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((io, _)) = tcp.accept().await {
                let _ = io.set_nodelay(true);
                tokio::spawn(serve(io));
            }
        });
        addr
    });
    let transports: [(&str, Arc<dyn Connector>, String); 2] = [
        (
            "memory",
            Arc::new(net.clone()),
            "memory-broker:10911".to_owned(),
        ),
        ("loopback", Arc::new(TcpConnector), tcp_addr),
    ];
    let mut group = c.benchmark_group("pool_roundtrip");
    for (name, connector, addr) in transports {
        let pool = Pool::new(connector, PoolConfig::default());
        for in_flight in [1usize, 64] {
            group.throughput(Throughput::Elements(in_flight as u64));
            group.bench_with_input(BenchmarkId::new(name, in_flight), &in_flight, |b, &n| {
                b.to_async(&rt).iter(|| {
                    let pool = pool.clone();
                    let addr = addr.clone();
                    async move {
                        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                        let calls = (0..n).map(|_| pool.invoke_at(&addr, request(), deadline));
                        for r in futures_join_all(calls).await {
                            r.unwrap();
                        }
                    }
                })
            });
        }
    }
    group.finish();
}

/// Joins futures without an extra dependency: spawn-free, polls them together.
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..futs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

fn raw_socket_floor(c: &mut Criterion) {
    let codec = FrameCodec::default();
    let mut req = BytesMut::new();
    codec.encode(&request().opaque(1), &mut req).unwrap();
    let mut resp = BytesMut::new();
    codec
        .encode(
            &RemotingCommand::response_to(&request().opaque(1), ResponseCode::SUCCESS),
            &mut resp,
        )
        .unwrap();
    let (req, resp) = (req.to_vec(), resp.to_vec());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let req_len = req.len();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.set_nodelay(true);
            let mut buf = vec![0u8; req_len];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&resp).is_err() {
                    return;
                }
            }
        }
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let resp_len = {
        let mut b = BytesMut::new();
        codec
            .encode(
                &RemotingCommand::response_to(&request().opaque(1), ResponseCode::SUCCESS),
                &mut b,
            )
            .unwrap();
        b.len()
    };
    c.bench_function("raw_std_socket_roundtrip", |b| {
        b.iter(|| {
            s.write_all(&req).unwrap();
            s.read_exact(&mut buf[..resp_len]).unwrap();
        })
    });
}

criterion_group!(benches, raw_socket_floor, pool_benches);
criterion_main!(benches);
