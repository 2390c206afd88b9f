//! One proxied connection: two directions, each a reader (black hole, timestamps)
//! and a writer (latency, bandwidth, slicing, reset budget).

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::{Direction, Shared};

/// Chunks a reader may queue ahead of its writer.
const QUEUE: usize = 64;
const READ_SIZE: usize = 16 * 1024;

/// Why a connection ended early.
#[derive(Debug)]
enum End {
    /// A `reset_after` budget ran out.
    Reset,
    /// A socket error.
    Io(io::Error),
}

/// Runs one client connection until both directions end, a reset fault fires or a
/// socket fails; the streams are dropped with `SO_LINGER` 0 (an RST when cut short).
pub(super) async fn run(shared: Arc<Shared>, id: u64, client: TcpStream) {
    let result = forward(&shared, client).await;
    match result {
        Ok(()) => {}
        Err(End::Reset) => {
            shared.counters.resets.fetch_add(1, Relaxed);
            debug!(upstream = %shared.upstream, "fault proxy: connection reset by a reset_after fault");
        }
        Err(End::Io(e)) => {
            debug!(upstream = %shared.upstream, error = %e, "fault proxy: connection ended by a socket error");
        }
    }
    shared.connections().remove(&id);
}

async fn forward(shared: &Arc<Shared>, mut client: TcpStream) -> Result<(), End> {
    let _ = client.set_zero_linger();
    let _ = client.set_nodelay(true);
    // A failed upstream connect drops the client with an RST.
    let mut upstream = TcpStream::connect(&shared.upstream)
        .await
        .map_err(End::Io)?;
    let _ = upstream.set_zero_linger();
    let _ = upstream.set_nodelay(true);
    // Borrowed halves: dropping them does not half-close, so a reset is a bare RST.
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let (to_up_tx, to_up_rx) = mpsc::channel(QUEUE);
    let (to_client_tx, to_client_rx) = mpsc::channel(QUEUE);
    tokio::try_join!(
        read_side(shared, Direction::ToUpstream, client_read, to_up_tx),
        write_side(shared, Direction::ToUpstream, to_up_rx, upstream_write),
        read_side(shared, Direction::ToClient, upstream_read, to_client_tx),
        write_side(shared, Direction::ToClient, to_client_rx, client_write),
    )?;
    Ok(())
}

/// Reads chunks, drops them while black-holed, queues the rest with their read time.
/// Returns at EOF (the queue then closes and the writer half-closes its side).
async fn read_side(
    shared: &Shared,
    dir: Direction,
    mut src: impl AsyncRead + Unpin,
    tx: mpsc::Sender<(Instant, Bytes)>,
) -> Result<(), End> {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    loop {
        buf.reserve(READ_SIZE);
        let n = src.read_buf(&mut buf).await.map_err(End::Io)?;
        if n == 0 {
            return Ok(());
        }
        let chunk = buf.split().freeze();
        if shared.faults()[dir.index()].black_hole {
            shared.counters.dropped[dir.index()].fetch_add(n as u64, Relaxed);
            continue;
        }
        if tx.send((Instant::now(), chunk)).await.is_err() {
            return Ok(()); // the writer ended
        }
    }
}

/// What the writer may do with the next piece of a chunk.
struct Step {
    len: usize,
    reset: bool,
    pause: Duration,
}

/// Takes the next piece of `available` bytes under the current faults.
fn next_step(shared: &Shared, dir: Direction, available: usize) -> Step {
    let mut faults = shared.faults();
    let f = &mut faults[dir.index()];
    let mut len = available;
    let mut pause = Duration::ZERO;
    if let Some((piece, gap)) = f.slice {
        len = len.min(piece.max(1));
        pause += gap;
    }
    if let Some(bw) = f.bandwidth {
        let bw = bw.max(1);
        len = len.min(usize::try_from(bw / 20).unwrap_or(usize::MAX).max(1));
        pause += Duration::from_secs_f64(len as f64 / bw as f64);
    }
    let mut reset = false;
    if let Some(budget) = f.reset_after {
        let budget_len = usize::try_from(budget).unwrap_or(usize::MAX);
        if budget_len < len {
            len = budget_len;
            reset = true;
            f.reset_after = None;
        } else {
            f.reset_after = Some(budget - len as u64);
        }
    }
    Step { len, reset, pause }
}

async fn write_side(
    shared: &Shared,
    dir: Direction,
    mut rx: mpsc::Receiver<(Instant, Bytes)>,
    mut dst: impl AsyncWrite + Unpin,
) -> Result<(), End> {
    while let Some((read_at, mut chunk)) = rx.recv().await {
        let latency = shared.faults()[dir.index()].latency;
        if !latency.is_zero() {
            tokio::time::sleep_until(read_at + latency).await;
        }
        while !chunk.is_empty() {
            let step = next_step(shared, dir, chunk.len());
            if step.len > 0 {
                dst.write_all(&chunk[..step.len]).await.map_err(End::Io)?;
                dst.flush().await.map_err(End::Io)?;
                chunk.advance(step.len);
                shared.counters.forwarded[dir.index()].fetch_add(step.len as u64, Relaxed);
            }
            if step.reset {
                return Err(End::Reset);
            }
            if !step.pause.is_zero() {
                tokio::time::sleep(step.pause).await;
            }
        }
    }
    // The reader saw EOF: pass the half-close on.
    let _ = dst.shutdown().await;
    Ok(())
}
