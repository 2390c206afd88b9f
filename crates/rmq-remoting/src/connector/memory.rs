//! An in-memory network of duplex streams: listeners bound to string addresses,
//! connections that never touch the OS. With paused tokio time this makes transport
//! tests deterministic.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use super::{BoxStream, Connector};
use crate::invoke::BoxFuture;

/// Default per-direction buffer of an in-memory connection.
pub const DEFAULT_DUPLEX_BUFFER: usize = 256 * 1024;

#[derive(Debug, Default)]
struct Net {
    listeners: HashMap<String, mpsc::UnboundedSender<(DuplexStream, String)>>,
    black_holes: HashSet<String>,
    next_client_port: u32,
}

/// A set of in-memory listeners. Cheap to clone; clones share the network.
#[derive(Clone, Debug)]
pub struct MemoryNetwork {
    net: Arc<Mutex<Net>>,
    buffer: usize,
}

impl Default for MemoryNetwork {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryNetwork {
    /// An empty network with the default buffer size.
    pub fn new() -> Self {
        Self::with_buffer(DEFAULT_DUPLEX_BUFFER)
    }

    /// An empty network whose connections buffer `buffer` bytes per direction.
    pub fn with_buffer(buffer: usize) -> Self {
        Self {
            net: Arc::default(),
            buffer: buffer.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Net> {
        self.net.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Listens on `addr`. Fails with `AddrInUse` if a live listener holds it.
    pub fn bind(&self, addr: impl Into<String>) -> io::Result<MemoryListener> {
        let addr = addr.into();
        let mut net = self.lock();
        if net.listeners.get(&addr).is_some_and(|tx| !tx.is_closed()) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{addr} is in use"),
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        net.listeners.insert(addr.clone(), tx);
        Ok(MemoryListener { addr, rx })
    }

    /// Makes connects to `addr` hang forever (a black-holed SYN) while `on`.
    pub fn set_black_hole(&self, addr: &str, on: bool) {
        let mut net = self.lock();
        if on {
            net.black_holes.insert(addr.to_owned());
        } else {
            net.black_holes.remove(addr);
        }
    }

    fn dial(&self, addr: &str) -> Result<Option<DuplexStream>, io::Error> {
        let mut net = self.lock();
        if net.black_holes.contains(addr) {
            return Ok(None);
        }
        net.next_client_port = net.next_client_port.wrapping_add(1);
        let peer = format!("memory-client:{}", net.next_client_port);
        let refused = || {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("nothing listens on {addr}"),
            )
        };
        let tx = net.listeners.get(addr).ok_or_else(refused)?;
        let (client, server) = tokio::io::duplex(self.buffer);
        tx.send((server, peer)).map_err(|_| refused())?;
        Ok(Some(client))
    }
}

impl Connector for MemoryNetwork {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        let dialled = self.dial(addr);
        Box::pin(async move {
            match dialled? {
                Some(stream) => Ok(Box::new(stream) as BoxStream),
                None => std::future::pending().await,
            }
        })
    }
}

/// Accepts in-memory connections. Dropping it unbinds the address: later connects
/// are refused.
#[derive(Debug)]
pub struct MemoryListener {
    addr: String,
    rx: mpsc::UnboundedReceiver<(DuplexStream, String)>,
}

impl MemoryListener {
    /// The bound address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The next connection and a synthetic peer address; `None` never happens while
    /// the network lives.
    pub async fn accept(&mut self) -> Option<(DuplexStream, String)> {
        self.rx.recv().await
    }
}
