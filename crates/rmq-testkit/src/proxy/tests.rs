//! The proxy against a loopback echo server (real sockets: bounds of 100s of ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Accept, Direction, FaultProxy, LinkFaults};

/// An echo server that counts the bytes it received.
async fn echo_server() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            counter.fetch_add(n as u64, SeqCst);
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, received)
}

async fn proxied() -> (FaultProxy, Arc<AtomicU64>, TcpStream) {
    let (upstream, received) = echo_server().await;
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let client = TcpStream::connect(proxy.addr()).await.unwrap();
    (proxy, received, client)
}

async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
        .await
        .expect("read in time")
        .expect("read");
    buf
}

async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_both_ways_counts_and_passes_the_half_close() {
    let (proxy, received, mut client) = proxied().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    client.write_all(&data).await.unwrap();
    assert_eq!(read_exactly(&mut client, data.len()).await, data);
    assert_eq!(received.load(SeqCst), data.len() as u64);
    let s = proxy.stats();
    assert_eq!((s.accepted, s.open), (1, 1));
    // The proxy counts a chunk after writing it, so the client may have read the
    // last bytes a moment before they are counted.
    let forwarded = || {
        let s = proxy.stats();
        (s.to_upstream, s.to_client)
    };
    eventually(|| forwarded() == (100_000, 100_000)).await;
    assert_eq!(forwarded(), (100_000, 100_000));
    assert_eq!(proxy.upstream(), proxy.shared.upstream);
    // Half-close from the client reaches the echo server, which closes: EOF here.
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    assert!(eventually(|| proxy.stats().open == 0).await);
    assert_eq!(proxy.stats().resets, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_each_direction_without_reordering() {
    let (proxy, _, mut client) = proxied().await;
    let lat = Duration::from_millis(150);
    proxy.set(Direction::ToUpstream, LinkFaults::latency(lat));
    proxy.set(Direction::ToClient, LinkFaults::latency(lat));
    let start = Instant::now();
    client.write_all(b"one").await.unwrap();
    client.write_all(b"two").await.unwrap();
    assert_eq!(read_exactly(&mut client, 6).await, b"onetwo");
    let rtt = start.elapsed();
    assert!(rtt >= 2 * lat, "{rtt:?}");
    assert!(rtt < 2 * lat + Duration::from_secs(1), "{rtt:?}");
    proxy.clear();
    let start = Instant::now();
    client.write_all(b"x").await.unwrap();
    read_exactly(&mut client, 1).await;
    assert!(start.elapsed() < lat, "{:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limits_throughput() {
    let (proxy, _, mut client) = proxied().await;
    proxy.set(Direction::ToClient, LinkFaults::bandwidth(40_000));
    let start = Instant::now();
    client.write_all(&[7u8; 20_000]).await.unwrap();
    read_exactly(&mut client, 20_000).await;
    let took = start.elapsed();
    // 20 000 bytes at 40 000 B/s: 0.5 s.
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slicing_forwards_small_pieces_with_gaps() {
    let (proxy, _, mut client) = proxied().await;
    proxy.set(
        Direction::ToClient,
        LinkFaults::slice(3, Duration::from_millis(5)),
    );
    let data: Vec<u8> = (0..60u8).collect();
    let start = Instant::now();
    client.write_all(&data).await.unwrap();
    let mut got = Vec::new();
    let mut reads = 0;
    while got.len() < data.len() {
        let mut buf = [0u8; 64];
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0 && n <= 3 * 2, "read {n} bytes at once");
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert_eq!(got, data);
    assert!(reads >= 10, "{reads} reads");
    assert!(start.elapsed() >= Duration::from_millis(19 * 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_reads_and_forwards_nothing_until_lifted() {
    let (proxy, received, mut client) = proxied().await;
    proxy.set_black_hole(true);
    client.write_all(b"lost").await.unwrap();
    assert!(eventually(|| proxy.stats().dropped_to_upstream == 4).await);
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf)).await;
    assert!(read.is_err(), "nothing may come back: {read:?}");
    assert_eq!(received.load(SeqCst), 0);
    // Lifted: the same connection works again; the swallowed bytes stay lost.
    proxy.set_black_hole(false);
    client.write_all(b"kept").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"kept");
    assert_eq!(received.load(SeqCst), 4);
    // Only the answer black-holed: the request arrives, nothing comes back.
    proxy.set(Direction::ToClient, LinkFaults::black_hole());
    client.write_all(b"half").await.unwrap();
    assert!(eventually(|| received.load(SeqCst) == 8).await);
    assert!(eventually(|| proxy.stats().dropped_to_client == 4).await);
    assert_eq!(proxy.stats().open, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_n_bytes_cuts_the_connection_with_an_rst() {
    let (proxy, received, mut client) = proxied().await;
    proxy.set(Direction::ToUpstream, LinkFaults::reset_after(1000));
    client.write_all(&[1u8; 600]).await.unwrap();
    read_exactly(&mut client, 600).await;
    assert_eq!(
        proxy.faults(Direction::ToUpstream).reset_after,
        Some(400),
        "the budget counts down"
    );
    let _ = client.write_all(&[2u8; 5000]).await;
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
        .await
        .expect("the connection ends");
    assert!(
        matches!(&end, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{end:?} after {} bytes",
        rest.len()
    );
    assert!(eventually(|| received.load(SeqCst) == 1000).await);
    assert_eq!(
        received.load(SeqCst),
        1000,
        "exactly the budget got through"
    );
    // The link is counted and removed just after the client sees its RST.
    let ended = || {
        let s = proxy.stats();
        (s.resets, s.open, s.to_upstream)
    };
    eventually(|| ended() == (1, 0, 1000)).await;
    assert_eq!(ended(), (1, 0, 1000));
    assert_eq!(proxy.faults(Direction::ToUpstream).reset_after, None);
    // One-shot: a new connection works.
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    again.write_all(&[3u8; 5000]).await.unwrap();
    read_exactly(&mut again, 5000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_all_resets_open_connections() {
    let (proxy, _, mut client) = proxied().await;
    client.write_all(b"ping").await.unwrap();
    read_exactly(&mut client, 4).await;
    assert_eq!(proxy.reset_all(), 1);
    let mut buf = [0u8; 4];
    let r = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    assert_eq!(proxy.stats().resets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_black_holed_connects() {
    let (proxy, _, mut client) = proxied().await;
    proxy.set_accept(Accept::Refuse).await.unwrap();
    let e = TcpStream::connect(proxy.addr()).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    // Open connections are untouched.
    client.write_all(b"open").await.unwrap();
    read_exactly(&mut client, 4).await;

    proxy.set_accept(Accept::BlackHole).await.unwrap();
    let hung =
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(proxy.addr())).await;
    assert!(hung.is_err(), "the connect must hang: {hung:?}");

    proxy.set_accept(Accept::Open).await.unwrap();
    let accepted = proxy.stats().accepted;
    let mut c = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(proxy.addr()))
        .await
        .unwrap()
        .unwrap();
    c.write_all(b"back").await.unwrap();
    assert_eq!(read_exactly(&mut c, 4).await, b"back");
    assert_eq!(proxy.stats().accepted, accepted + 1);
}
