//! Transport counters and their snapshots.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters shared by a pool and every connection it opens. Monotonic, lock-free.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) responses: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) late_replies: AtomicU64,
    pub(crate) frames_written: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) server_requests: AtomicU64,
    pub(crate) go_aways: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// A snapshot of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Peer address.
    pub addr: String,
    /// Requests waiting for a response (the pending table's size).
    pub in_flight: usize,
    /// Whether the connection has closed.
    pub closed: bool,
}

/// A snapshot of a pool's transport counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolStats {
    /// Live connections.
    pub connections: Vec<ConnectionStats>,
    /// Successful connects.
    pub connects: u64,
    /// Connects to an address that had a connection before.
    pub reconnects: u64,
    /// Failed connect attempts.
    pub connect_failures: u64,
    /// Connections closed (any reason).
    pub connections_closed: u64,
    /// Requests written (request/response and one-way).
    pub requests: u64,
    /// Responses matched to a waiting request.
    pub responses: u64,
    /// Requests that hit their deadline waiting for a response.
    pub timeouts: u64,
    /// Responses that arrived after their request had timed out (dropped).
    pub late_replies: u64,
    /// Frames written.
    pub frames_written: u64,
    /// Write calls made; `frames_written / writes` shows how well writes coalesce.
    pub writes: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Requests received from servers (transaction checks, replies ...).
    pub server_requests: u64,
    /// GO_AWAY responses received.
    pub go_aways: u64,
}

impl PoolStats {
    /// Requests in flight across all connections.
    pub fn in_flight(&self) -> usize {
        self.connections.iter().map(|c| c.in_flight).sum()
    }

    /// Average frames per write call (0 when nothing was written).
    pub fn frames_per_write(&self) -> f64 {
        if self.writes == 0 {
            0.0
        } else {
            self.frames_written as f64 / self.writes as f64
        }
    }

    pub(crate) fn from_counters(c: &Counters, connections: Vec<ConnectionStats>) -> Self {
        Self {
            connections,
            connects: c.connects.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
            connect_failures: c.connect_failures.load(Relaxed),
            connections_closed: c.closed.load(Relaxed),
            requests: c.requests.load(Relaxed),
            responses: c.responses.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            late_replies: c.late_replies.load(Relaxed),
            frames_written: c.frames_written.load(Relaxed),
            writes: c.writes.load(Relaxed),
            bytes_out: c.bytes_out.load(Relaxed),
            bytes_in: c.bytes_in.load(Relaxed),
            server_requests: c.server_requests.load(Relaxed),
            go_aways: c.go_aways.load(Relaxed),
        }
    }
}
