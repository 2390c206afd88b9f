//! [`Connector`]: how the transport opens a byte stream to an address.
//!
//! Three implementations ship here: [`TcpConnector`] (loopback or real TCP, with
//! `TCP_NODELAY`), [`MemoryNetwork`] (in-memory duplex streams, for deterministic
//! tests with paused time), and [`AddressMap`] (rewrites addresses before
//! delegating, so a test can route a broker's address through a fault proxy). With
//! the `tls` feature, `TlsConnector` wraps any of them.

mod memory;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, RwLock};

use tokio::io::{AsyncRead, AsyncWrite};

pub use memory::{DEFAULT_DUPLEX_BUFFER, MemoryListener, MemoryNetwork};

use crate::invoke::BoxFuture;

/// A bidirectional byte stream the transport can drive.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// Opens streams to addresses (`host:port`).
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    /// Connects to `addr`. The caller bounds the time this may take.
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>>;
}

/// Plain TCP with `TCP_NODELAY` set. Host names are resolved on every connect.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}

/// Rewrites addresses before delegating to an inner connector: entries map a
/// logical address (what routes and callers use) to the address actually dialled.
/// Unmapped addresses pass through unchanged. The map can change at run time.
#[derive(Debug)]
pub struct AddressMap {
    inner: Arc<dyn Connector>,
    map: RwLock<HashMap<String, String>>,
}

impl AddressMap {
    /// Wraps `inner` with an empty map.
    pub fn new(inner: Arc<dyn Connector>) -> Self {
        Self {
            inner,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// Routes `from` to `to` from now on.
    pub fn insert(&self, from: impl Into<String>, to: impl Into<String>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.insert(from.into(), to.into());
    }

    /// Stops rewriting `from`.
    pub fn remove(&self, from: &str) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.remove(from);
    }

    fn resolve(&self, addr: &str) -> String {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(addr).cloned().unwrap_or_else(|| addr.to_owned())
    }
}

impl Connector for AddressMap {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        let target = self.resolve(addr);
        Box::pin(async move { self.inner.connect(&target).await })
    }
}
