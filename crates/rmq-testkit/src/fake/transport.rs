//! Where a fake server listens: an in-memory [`MemoryNetwork`] address or loopback TCP.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rmq_remoting::{Connector, MemoryListener, MemoryNetwork, TcpConnector};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The network a fake server listens on.
///
/// * [`Transport::Memory`]: in-memory duplex streams on a [`MemoryNetwork`]. No OS
///   sockets, so it works with paused tokio time (`#[tokio::test(start_paused = true)]`);
///   use it for anything timing-sensitive. Clients dial the same network through
///   [`Transport::connector`] (the network itself is a [`Connector`]).
/// * [`Transport::Tcp`]: a real socket on `127.0.0.1`, port chosen by the OS. Do not
///   combine it with paused time.
///
/// ```
/// use rmq_remoting::MemoryNetwork;
/// use rmq_testkit::fake::Transport;
///
/// let net = MemoryNetwork::new();
/// let memory = Transport::Memory(net.clone());
/// let _connector = memory.connector(); // hand this to the client under test
/// assert!(memory.is_memory());
/// assert!(!Transport::Tcp.is_memory());
/// ```
#[derive(Clone, Debug)]
pub enum Transport {
    /// In-memory streams on this network.
    Memory(MemoryNetwork),
    /// Loopback TCP (`127.0.0.1:0`).
    Tcp,
}

impl Transport {
    /// A fresh in-memory network.
    pub fn memory() -> Self {
        Self::Memory(MemoryNetwork::new())
    }

    /// Whether this is the in-memory transport.
    pub fn is_memory(&self) -> bool {
        matches!(self, Self::Memory(_))
    }

    /// A connector that reaches servers on this transport: the memory network, or
    /// [`TcpConnector`].
    pub fn connector(&self) -> Arc<dyn Connector> {
        match self {
            Self::Memory(net) => Arc::new(net.clone()),
            Self::Tcp => Arc::new(TcpConnector),
        }
    }
}

/// A bound listener of either kind.
#[derive(Debug)]
pub(crate) enum Listener {
    Memory(MemoryListener),
    Tcp(TcpListener),
}

impl Listener {
    /// Binds `addr` (memory) or `127.0.0.1:port` (TCP; port 0 picks one). Returns the
    /// listener and its address.
    pub(crate) fn bind(transport: &Transport, addr: &str) -> io::Result<(Self, String)> {
        match transport {
            Transport::Memory(net) => {
                let l = net.bind(addr)?;
                Ok((Self::Memory(l), addr.to_owned()))
            }
            Transport::Tcp => {
                let port = addr
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .unwrap_or(0);
                let socket = TcpSocket::new_v4()?;
                socket.set_reuseaddr(true)?;
                socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))?;
                let l = socket.listen(1024)?;
                let local = l.local_addr()?;
                Ok((Self::Tcp(l), local.to_string()))
            }
        }
    }

    /// Binds the first free memory address `127.0.0.1:<port>` from `base_port` upward,
    /// or a TCP port chosen by the OS.
    pub(crate) fn bind_any(transport: &Transport, base_port: u16) -> io::Result<(Self, String)> {
        match transport {
            Transport::Memory(_) => {
                let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free port");
                for port in base_port..=u16::MAX {
                    match Self::bind(transport, &format!("127.0.0.1:{port}")) {
                        Ok(bound) => return Ok(bound),
                        Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
                        Err(e) => return Err(e),
                    }
                }
                Err(last)
            }
            Transport::Tcp => Self::bind(transport, "127.0.0.1:0"),
        }
    }

    /// The next connection and the peer's address; `None` when the listener is gone.
    pub(crate) async fn accept(&mut self) -> Option<(ServerStream, String)> {
        match self {
            Self::Memory(l) => l
                .accept()
                .await
                .map(|(s, peer)| (ServerStream::Memory(s), peer)),
            Self::Tcp(l) => loop {
                match l.accept().await {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        return Some((ServerStream::Tcp(s), peer.to_string()));
                    }
                    // Transient accept errors (EMFILE, ECONNABORTED): keep listening.
                    Err(e) => {
                        tracing::debug!(error = %e, "fake server accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            },
        }
    }
}

/// How a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseMode {
    /// Orderly close: a FIN after everything written so far (memory: end of stream).
    Graceful,
    /// Abortive close: a TCP RST (`SO_LINGER` 0); memory streams just end.
    Reset,
}

/// An accepted stream of either kind.
#[derive(Debug)]
pub(crate) enum ServerStream {
    Memory(DuplexStream),
    Tcp(TcpStream),
}

impl ServerStream {
    /// Closes the stream the given way.
    pub(crate) async fn close(mut self, mode: CloseMode) {
        match mode {
            CloseMode::Graceful => {
                let _ = self.shutdown().await;
            }
            CloseMode::Reset => {
                if let Self::Tcp(s) = &self {
                    let _ = s.set_zero_linger();
                }
            }
        }
        drop(self);
    }
}

impl AsyncRead for ServerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Memory(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Memory(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Memory(s) => Pin::new(s).poll_flush(cx),
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Memory(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The socket address a fake server reports as its store host (offset message ids):
/// the listen address when it is `ip:port`, else `127.0.0.1:10911`.
pub(crate) fn store_host(addr: &str) -> SocketAddr {
    addr.parse()
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10911))
}
