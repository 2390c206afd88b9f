//! The write side of a connection, shared by the driver and the handles.
//!
//! Normally the driver alone encodes and writes: handles send envelopes, the driver
//! coalesces whatever is queued into one buffer and writes it. When a connection is
//! idle (the caller holds the only in-flight slot and nothing waits to be written),
//! a handle takes the *idle fast path* instead: under this side's lock it assigns
//! the opaque, encodes its frame, writes it to the socket itself without waiting
//! (a no-op waker), and registers the request for the driver, which only wakes for
//! the response. That saves the caller → driver task hop (a cross-thread wake-up and
//! the runtime's I/O-driver unpark) on every request sent alone. Whatever the fast
//! path could not finish (a partial write, a pending flush, a write error) it leaves
//! here for the driver, and kicks it.
//!
//! The lock is never held across an `.await`: handles hold it for one encode and one
//! non-blocking write; the driver inside single polls.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncWrite, WriteHalf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::envelope::ReplyTx;
use crate::connector::BoxStream;

/// A request a handle wrote itself, for the driver to add to its pending table.
pub(super) struct Registration {
    pub(super) reply: ReplyTx,
    pub(super) opaque: i32,
    pub(super) deadline: Instant,
    pub(super) started: Instant,
    /// Offset in the byte stream at which this frame ends.
    pub(super) end: u64,
    /// Queued-bytes permit, when the frame was not completely written.
    pub(super) room: Option<OwnedSemaphorePermit>,
}

/// What both the driver and the handles' fast path change.
pub(super) struct WriteSide {
    pub(super) writer: WriteHalf<BoxStream>,
    /// Encoded, not yet written bytes.
    pub(super) buf: BytesMut,
    /// Bytes appended to `buf` since the connection opened.
    pub(super) encoded: u64,
    /// Bytes handed to the socket since the connection opened.
    pub(super) written: u64,
    next_opaque: i32,
    /// Fast-path requests the driver has not taken into its pending table yet.
    pub(super) registrations: Vec<Registration>,
    /// The socket needs a flush (everything was written, the flush is pending).
    pub(super) needs_flush: bool,
    /// A fast-path write failed: the driver closes the connection with this reason.
    pub(super) failed: Option<String>,
    /// The driver is shutting down: the fast path must not register anything.
    pub(super) closed: bool,
}

/// What one poll of the driver's output made of the write side.
pub(super) enum Output {
    /// `n` bytes were written; `written` is the new stream offset.
    Wrote { n: usize, written: u64 },
    /// The socket was flushed.
    Flushed,
}

impl std::fmt::Debug for WriteSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSide")
            .field("buffered", &self.buf.len())
            .field("encoded", &self.encoded)
            .field("written", &self.written)
            .field("registrations", &self.registrations.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl WriteSide {
    pub(super) fn new(writer: WriteHalf<BoxStream>) -> Self {
        Self {
            writer,
            buf: BytesMut::with_capacity(16 * 1024),
            encoded: 0,
            written: 0,
            next_opaque: 1,
            registrations: Vec::new(),
            needs_flush: false,
            failed: None,
            closed: false,
        }
    }

    /// The next request opaque. At most `max_in_flight` requests are pending and each
    /// lives no longer than its deadline, so the counter cannot wrap onto a pending
    /// one (that would take 2^32 requests within one deadline).
    pub(super) fn take_opaque(&mut self) -> i32 {
        let opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.wrapping_add(1);
        opaque
    }

    /// Whether bytes wait to be written or flushed.
    pub(super) fn has_output(&self) -> bool {
        !self.buf.is_empty() || self.needs_flush
    }

    /// Writes as much of `buf` as the socket takes now, without registering any
    /// waker (the fast path). Returns the bytes written; an error is recorded in
    /// `failed` for the driver.
    pub(super) fn write_now(&mut self) -> usize {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut total = 0;
        while !self.buf.is_empty() {
            match Pin::new(&mut self.writer).poll_write(&mut cx, &self.buf) {
                Poll::Ready(Ok(0)) => {
                    self.failed = Some("write returned 0 bytes".to_owned());
                    return total;
                }
                Poll::Ready(Ok(n)) => {
                    self.buf.advance(n);
                    self.written += n as u64;
                    total += n;
                }
                Poll::Ready(Err(e)) => {
                    self.failed = Some(format!("write failed: {e}"));
                    return total;
                }
                Poll::Pending => return total,
            }
        }
        match Pin::new(&mut self.writer).poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => self.failed = Some(format!("flush failed: {e}")),
            Poll::Pending => self.needs_flush = true,
        }
        total
    }

    /// One poll of the driver's output: write what is buffered, then flush.
    pub(super) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Output>> {
        if !self.buf.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.writer).poll_write(cx, &self.buf))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "write returned 0 bytes",
                )));
            }
            self.buf.advance(n);
            self.written += n as u64;
            if self.buf.is_empty() {
                self.needs_flush = true;
            }
            return Poll::Ready(Ok(Output::Wrote {
                n,
                written: self.written,
            }));
        }
        std::task::ready!(Pin::new(&mut self.writer).poll_flush(cx))?;
        self.needs_flush = false;
        Poll::Ready(Ok(Output::Flushed))
    }

    pub(super) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}
