//! A TCP fault proxy: put it between a client and a real server and inject faults at
//! run time (the Toxiproxy set: latency, bandwidth, slicing, black hole, reset after N
//! bytes or now, refused and black-holed connects).
//!
//! The proxy listens on an ephemeral loopback port and forwards every accepted
//! connection to one upstream address. Faults are set per [`Direction`] and apply to
//! every connection, open or new, from the moment they are set. Route a client's
//! traffic for one server through it with `rmq_remoting::AddressMap`:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rmq_remoting::{AddressMap, TcpConnector};
//! use rmq_testkit::proxy::{Direction, FaultProxy, LinkFaults};
//!
//! let proxy = FaultProxy::start("127.0.0.1:10911").await?;
//! let connector = Arc::new(AddressMap::new(Arc::new(TcpConnector)));
//! connector.insert("127.0.0.1:10911", proxy.addr().to_string());
//! // ... build the client with `connector` ...
//! proxy.set(Direction::ToClient, LinkFaults::latency(Duration::from_millis(500)));
//! proxy.set_black_hole(true); // both directions: a half-open server
//! proxy.clear();
//! # Ok(()) }
//! ```
//!
//! Connections are closed with `SO_LINGER` 0, so a reset (a fault, [`FaultProxy::reset_all`]
//! or dropping the proxy) reaches both peers as an RST, not a FIN.

mod link;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tracing::debug;

/// Which way bytes flow through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the upstream server (requests).
    ToUpstream,
    /// From the upstream server back to the client (responses).
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ToUpstream => 0,
            Direction::ToClient => 1,
        }
    }
}

/// The faults applied to one direction. The default forwards bytes as they come.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkFaults {
    /// Every chunk is forwarded this long after it was read (added latency; chunks keep
    /// their order and throughput is not reduced).
    pub latency: Duration,
    /// At most this many bytes per second (forwarded in pieces of a twentieth of it).
    pub bandwidth: Option<u64>,
    /// Forward in pieces of this many bytes, waiting the given gap after each.
    pub slice: Option<(usize, Duration)>,
    /// Read and discard everything: nothing is forwarded, the connection stays open.
    pub black_hole: bool,
    /// One-shot: forward this many more bytes (over all connections), then reset the
    /// connection that would forward the next byte. Counts down as bytes pass; `None`
    /// again once it fired.
    pub reset_after: Option<u64>,
}

impl LinkFaults {
    /// Only added latency.
    pub fn latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// Only a bandwidth limit in bytes per second.
    pub fn bandwidth(bytes_per_sec: u64) -> Self {
        Self {
            bandwidth: Some(bytes_per_sec.max(1)),
            ..Self::default()
        }
    }

    /// Only slicing: `piece` bytes at a time with `gap` between pieces.
    pub fn slice(piece: usize, gap: Duration) -> Self {
        Self {
            slice: Some((piece.max(1), gap)),
            ..Self::default()
        }
    }

    /// Only a black hole.
    pub fn black_hole() -> Self {
        Self {
            black_hole: true,
            ..Self::default()
        }
    }

    /// Only a reset after `bytes` more bytes.
    pub fn reset_after(bytes: u64) -> Self {
        Self {
            reset_after: Some(bytes),
            ..Self::default()
        }
    }
}

/// How the proxy treats new connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accept {
    /// Accept and forward (the default).
    #[default]
    Open,
    /// Nothing listens on the port: connects are refused at once (RST to the SYN).
    Refuse,
    /// The port listens but never accepts and its accept queue is full: SYNs are
    /// dropped, so connects hang (a black-holed connect) until the client gives up or
    /// the mode changes (then the client's next SYN retransmission gets through).
    BlackHole,
}

/// Counters of one proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: usize,
    /// Bytes forwarded client → upstream.
    pub to_upstream: u64,
    /// Bytes forwarded upstream → client.
    pub to_client: u64,
    /// Bytes read and discarded by a black hole, client → upstream.
    pub dropped_to_upstream: u64,
    /// Bytes read and discarded by a black hole, upstream → client.
    pub dropped_to_client: u64,
    /// Connections reset by a fault or [`FaultProxy::reset_all`].
    pub resets: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    forwarded: [AtomicU64; 2],
    dropped: [AtomicU64; 2],
    resets: AtomicU64,
}

/// State shared by the proxy handle, its accept loop and its connections.
#[derive(Debug)]
struct Shared {
    upstream: String,
    faults: Mutex<[LinkFaults; 2]>,
    connections: Mutex<HashMap<u64, AbortHandle>>,
    counters: Counters,
    next_id: AtomicU64,
}

impl Shared {
    fn faults(&self) -> MutexGuard<'_, [LinkFaults; 2]> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fault proxy. Dropping it closes the listener and resets every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    mode: watch::Sender<Accept>,
    applied: watch::Receiver<Accept>,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`
    /// (`host:port`, dialled per accepted connection).
    ///
    /// # Errors
    ///
    /// When the loopback listener cannot be bound.
    pub async fn start(upstream: impl Into<String>) -> io::Result<Self> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)), 1024)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.into(),
            faults: Mutex::new(Default::default()),
            connections: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            next_id: AtomicU64::new(0),
        });
        let (mode, mode_rx) = watch::channel(Accept::Open);
        let (applied_tx, applied) = watch::channel(Accept::Open);
        let accept_task = tokio::spawn(accept_loop(
            listener,
            addr,
            Arc::clone(&shared),
            mode_rx,
            applied_tx,
        ));
        Ok(Self {
            addr,
            shared,
            mode,
            applied,
            accept_task,
        })
    }

    /// The address clients should dial instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream address.
    pub fn upstream(&self) -> &str {
        &self.shared.upstream
    }

    /// Replaces the faults of one direction (open connections included).
    pub fn set(&self, direction: Direction, faults: LinkFaults) {
        self.shared.faults()[direction.index()] = faults;
    }

    /// The faults of one direction now (`reset_after` shows what is left of it).
    pub fn faults(&self, direction: Direction) -> LinkFaults {
        self.shared.faults()[direction.index()].clone()
    }

    /// Black-holes both directions (a half-open peer: connections stay up, nothing
    /// gets through) or lifts both black holes, leaving other faults as they are.
    pub fn set_black_hole(&self, on: bool) {
        let mut faults = self.shared.faults();
        for f in faults.iter_mut() {
            f.black_hole = on;
        }
    }

    /// Removes every fault of both directions (new connections are not changed: see
    /// [`set_accept`](Self::set_accept)).
    pub fn clear(&self) {
        *self.shared.faults() = Default::default();
    }

    /// Resets (RST) every open connection now. Returns how many were reset.
    pub fn reset_all(&self) -> usize {
        let handles: Vec<AbortHandle> = self.shared.connections().drain().map(|(_, h)| h).collect();
        for h in &handles {
            h.abort();
        }
        self.shared
            .counters
            .resets
            .fetch_add(handles.len() as u64, Relaxed);
        handles.len()
    }

    /// Changes how new connections are treated and returns once the listener is in
    /// that state (open connections are not touched).
    ///
    /// # Errors
    ///
    /// When the proxy's accept loop has ended (the port could not be bound again).
    pub async fn set_accept(&self, accept: Accept) -> io::Result<()> {
        self.mode.send_replace(accept);
        let mut applied = self.applied.clone();
        applied
            .wait_for(|a| *a == accept)
            .await
            .map(|_| ())
            .map_err(|_| {
                io::Error::other(format!(
                    "fault proxy {} stopped: its port could not be bound again",
                    self.addr
                ))
            })
    }

    /// The counters now.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            accepted: c.accepted.load(Relaxed),
            open: self.shared.connections().len(),
            to_upstream: c.forwarded[0].load(Relaxed),
            to_client: c.forwarded[1].load(Relaxed),
            dropped_to_upstream: c.dropped[0].load(Relaxed),
            dropped_to_client: c.dropped[1].load(Relaxed),
            resets: c.resets.load(Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        for (_, h) in self.shared.connections().drain() {
            h.abort();
        }
    }
}

fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// A listener whose accept queue is full (backlog 0 plus one connection of our own
/// that is never accepted): the kernel drops further SYNs.
async fn black_hole_listener(addr: SocketAddr) -> io::Result<(TcpListener, Vec<TcpStream>)> {
    let listener = listen(addr, 0)?;
    let mut fillers = Vec::new();
    for _ in 0..4 {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(e)) => return Err(e),
            Err(_) => break, // this SYN was dropped: the queue is full
        }
    }
    Ok((listener, fillers))
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut mode: watch::Receiver<Accept>,
    applied: watch::Sender<Accept>,
) {
    let mut listener = Some(listener);
    loop {
        let want = *mode.borrow_and_update();
        // Bring the listener into the wanted state.
        let mut _black_hole = None;
        match want {
            Accept::Open => {
                if listener.is_none() {
                    match listen(addr, 1024) {
                        Ok(l) => listener = Some(l),
                        Err(e) => {
                            debug!(%addr, error = %e, "fault proxy: cannot listen again");
                            return;
                        }
                    }
                }
            }
            Accept::Refuse => listener = None,
            Accept::BlackHole => {
                listener = None;
                match black_hole_listener(addr).await {
                    Ok(held) => _black_hole = Some(held),
                    Err(e) => {
                        debug!(%addr, error = %e, "fault proxy: cannot black-hole connects");
                        return;
                    }
                }
            }
        }
        applied.send_replace(want);
        match &listener {
            Some(l) if want == Accept::Open => loop {
                tokio::select! {
                    changed = mode.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                    accepted = l.accept() => match accepted {
                        Ok((stream, _)) => spawn_connection(&shared, stream),
                        Err(e) => {
                            debug!(%addr, error = %e, "fault proxy: accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                }
            },
            _ => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, client: TcpStream) {
    shared.counters.accepted.fetch_add(1, Relaxed);
    let id = shared.next_id.fetch_add(1, Relaxed);
    let mut connections = shared.connections();
    let task = tokio::spawn(link::run(Arc::clone(shared), id, client));
    connections.insert(id, task.abort_handle());
}
