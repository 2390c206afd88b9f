//! Row H6: a hostile peer streams frames of (almost) the maximum size with opaques the
//! client never used. The client decodes one frame at a time: live heap stays bounded
//! by a few frames plus the socket buffer however much is streamed, every frame is
//! dropped and counted as a late reply, and the connection stays up. A frame just
//! above the limit closes the connection by policy, rejected from its length prefix.
//!
//! Its own test binary: a counting global allocator measures the live heap of the
//! whole process (client, peer and the in-memory socket), so nothing else may run
//! beside it. Memory transport, paused time (a current-thread runtime).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{RawPeer, after, finish, is_protocol_close, resolved, send};
use rmq_protocol::frame::{FrameCodec, FrameLimits};
use rmq_protocol::{RemotingCommand, ResponseCode};
use rmq_remoting::{ConnectionConfig, Delivery, MemoryNetwork, Pool, PoolConfig};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, SeqCst) + n;
    PEAK.fetch_max(now, SeqCst);
}

// SAFETY: delegates to the system allocator; only counts live bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), SeqCst);
        grew(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MAX_FRAME: usize = 64 * 1024;
const FRAMES: i32 = 400;
const ADDR: &str = "hostile:10911";
/// Per-direction buffer of the in-memory socket (small, so the client dominates).
const SOCKET_BUFFER: usize = 16 * 1024;

/// A response frame of exactly `total` bytes (prefix included) with `opaque`.
fn frame(opaque: i32, total: usize, body: &Bytes) -> BytesMut {
    let mut cmd = RemotingCommand::response_to(
        &RemotingCommand::request(rmq_protocol::RequestCode::SEND_MESSAGE_V2),
        ResponseCode::SUCCESS,
    );
    cmd.opaque = opaque;
    let codec = FrameCodec::new(FrameLimits {
        max_frame: usize::MAX >> 1,
        ..FrameLimits::default()
    });
    let mut empty = BytesMut::new();
    codec.encode(&cmd, &mut empty).unwrap();
    cmd.body = Some(body.slice(..total - empty.len()));
    let mut out = BytesMut::with_capacity(total);
    codec.encode(&cmd, &mut out).unwrap();
    assert_eq!(out.len(), total);
    out
}

#[tokio::test(start_paused = true)]
async fn h6_hostile_stream_of_max_frames_is_decoded_one_at_a_time() {
    let net = MemoryNetwork::with_buffer(SOCKET_BUFFER);
    let mut peer = RawPeer::bind(&net, ADDR);
    let mut config = PoolConfig {
        connection: ConnectionConfig::default(),
        ..PoolConfig::default()
    };
    config.connection.frame_limits.max_frame = MAX_FRAME;
    let pool = Pool::new(Arc::new(net.clone()), config);

    // A real call, in flight for the whole stream.
    let call = {
        let p = pool.clone();
        tokio::spawn(async move {
            p.invoke_at(ADDR, send("real"), after(Duration::from_secs(3600)))
                .await
        })
    };
    let mut conn = peer.accept().await;
    let real = conn.read().await.expect("the real request");

    // Stream FRAMES frames one byte under the limit, opaques the client never used.
    let body = Bytes::from(vec![7u8; MAX_FRAME]);
    tokio::task::yield_now().await;
    let base = LIVE.load(SeqCst);
    PEAK.store(base, SeqCst);
    for i in 0..FRAMES {
        let f = frame(1_000_000 + i, MAX_FRAME - 1, &body);
        conn.write_raw(&f).await.unwrap();
    }
    // Answer the real call after the flood: the connection survived it.
    conn.write_cmd(&RemotingCommand::response_to(&real, ResponseCode::SUCCESS))
        .await
        .unwrap();
    let r = resolved(call)
        .await
        .expect("join")
        .expect("the real call succeeds");
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    let peak = PEAK.load(SeqCst) - base;

    let stats = pool.stats();
    assert_eq!(
        stats.late_replies, FRAMES as u64,
        "every hostile frame dropped and counted"
    );
    assert!(stats.bytes_in >= FRAMES as u64 * (MAX_FRAME as u64 - 1));
    assert_eq!(
        pool.connected_addrs(),
        vec![ADDR.to_owned()],
        "the connection stays up"
    );
    // Streamed: 400 × 64 KiB = 25 MiB. Live heap grew by at most the in-memory socket
    // buffer (its capacity may double) plus 3 frames: the one the peer is writing and
    // at most 2 in the client (its read buffer holds one frame and the next one's
    // start). Measured: about 2 frames in all, i.e. the client holds ~1.
    let streamed = FRAMES as usize * MAX_FRAME;
    let bound = 2 * SOCKET_BUFFER + 3 * MAX_FRAME;
    assert!(
        peak <= bound,
        "peak live heap +{peak} B while {streamed} B were streamed (bound {bound})"
    );
    eprintln!("h6: peak live heap +{peak} B for {streamed} B streamed");

    // A frame one byte over the limit: the connection is closed by policy from the
    // prefix (no allocation of the frame), the call in flight fails Indeterminate.
    let pending = {
        let p = pool.clone();
        tokio::spawn(async move {
            p.invoke_at(ADDR, send("victim"), after(Duration::from_secs(3600)))
                .await
        })
    };
    assert!(conn.read().await.is_some(), "the victim request");
    let base = LIVE.load(SeqCst);
    PEAK.store(base, SeqCst);
    let over = i32::try_from(MAX_FRAME + 1 - 4).unwrap();
    conn.write_raw(&over.to_be_bytes()).await.unwrap();
    conn.write_raw(&[0u8; 4096]).await.unwrap();
    let e = resolved(pending).await.expect("join").unwrap_err();
    assert!(is_protocol_close(&e), "{e}");
    assert_eq!(e.delivery(), Delivery::Indeterminate);
    conn.closed_by_client().await;
    assert!(pool.connected_addrs().is_empty());
    let peak = PEAK.load(SeqCst) - base;
    assert!(
        peak < MAX_FRAME / 2,
        "+{peak} B: the oversize frame was never buffered"
    );

    drop(conn);
    drop(peer);
    finish(&pool, None).await;
}
