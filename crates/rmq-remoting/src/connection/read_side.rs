//! The read side of a connection, shared by the driver and an idle connection's
//! caller.
//!
//! Normally the driver alone reads: it decodes each response and hands it to its
//! caller through a reply slot, which wakes the caller's task (the driver → caller
//! hop). A request sent on the idle fast path (`write_side.rs`) can skip that hop:
//! while it waits, its caller reads the socket itself, under this side's lock,
//! registering its own waker for read readiness. When its answer arrives the caller
//! takes it directly, removes its registration from the write side (the driver
//! never saw the request) and hands the read interest back by polling the socket
//! once more with the driver's waker. Anything else it reads (another request's
//! answer, a server request) goes to `inbox`, and then the caller stops reading
//! (what one read brought in is all it holds); an end of the stream or an
//! undecodable frame goes to `ended`. Both are the driver's, which the caller kicks.
//!
//! Exactly one of them is woken by read readiness (the socket keeps one read
//! waker: the last poller's), and every path leaves it with the driver: a caller
//! that gets its answer polls with the driver's waker, and one that gives up, times
//! out or is dropped kicks the driver, which polls again. If the driver took the
//! registration meanwhile (it woke for something else), the caller hands its answer
//! to the driver too and waits for it in its slot as usual.
//!
//! The lock is never held across an `.await`, and never taken while holding the
//! write side's lock (the caller takes the write side's inside this one).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use rmq_protocol::RemotingCommand;
use rmq_protocol::frame::{DecodeError, FrameCodec};
use tokio::io::ReadHalf;

use crate::connector::BoxStream;

/// Spare room kept in the read buffer before a read.
const MIN_SPARE: usize = 4096;

/// What the driver and the self-reading caller share.
pub(super) struct ReadSide {
    reader: ReadHalf<BoxStream>,
    buf: BytesMut,
    /// Where JSON response headers' fields are decoded to (wire form, split off per
    /// frame): no vector per response. Binary headers' fields stay in `buf`.
    ext_arena: BytesMut,
    codec: FrameCodec,
    /// The driver's waker as of its last read: a caller hands read interest back
    /// with it.
    driver_waker: Option<Waker>,
    /// Frames a caller read that were not its answer, oldest first: the driver's.
    pub(super) inbox: Vec<RemotingCommand>,
    /// Why the stream ended, when a caller found out first: the driver closes.
    pub(super) ended: Option<String>,
}

impl std::fmt::Debug for ReadSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSide")
            .field("buffered", &self.buf.len())
            .field("inbox", &self.inbox.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// What a caller's read found.
pub(super) enum Found {
    /// Its answer.
    Answer(RemotingCommand),
    /// Nothing yet: its waker is registered for read readiness.
    Waiting,
    /// It must stop reading (the stream ended, a frame did not decode, or it read
    /// frames for others): the driver takes over.
    Stop,
}

impl ReadSide {
    pub(super) fn new(reader: ReadHalf<BoxStream>, codec: FrameCodec) -> Self {
        Self {
            reader,
            buf: BytesMut::with_capacity(16 * 1024),
            ext_arena: BytesMut::with_capacity(4 * 1024),
            codec,
            driver_waker: None,
            inbox: Vec::new(),
            ended: None,
        }
    }

    /// Reads what the socket has into the buffer; registers `cx`'s waker when it has
    /// nothing. `Ok(0)` is the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < MIN_SPARE {
            self.buf.reserve(16 * 1024);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.reader), cx, &mut self.buf)
    }

    /// The driver's read; remembers its waker.
    pub(super) fn poll_driver_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if !self
            .driver_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.driver_waker = Some(cx.waker().clone());
        }
        self.poll_fill(cx)
    }

    /// Moves the inbox and every complete frame in the buffer to `out`, in the
    /// order they were read. On an undecodable frame the frames before it are in
    /// `out` and the error is returned.
    pub(super) fn take_frames(
        &mut self,
        out: &mut Vec<RemotingCommand>,
    ) -> Result<(), DecodeError> {
        out.append(&mut self.inbox);
        while let Some(cmd) = self.codec.decode_in(&mut self.buf, &mut self.ext_arena)? {
            out.push(cmd);
        }
        Ok(())
    }

    /// A caller's read, looking for the answer to `opaque`. `bytes_in` counts what
    /// it read. Other frames go to the inbox, the end of the stream to `ended`.
    pub(super) fn read_for(
        &mut self,
        cx: &mut Context<'_>,
        opaque: i32,
        bytes_in: &mut u64,
    ) -> Found {
        loop {
            loop {
                match self.codec.decode_in(&mut self.buf, &mut self.ext_arena) {
                    Ok(Some(cmd)) if cmd.is_response() && cmd.opaque == opaque => {
                        return Found::Answer(cmd);
                    }
                    Ok(Some(cmd)) => self.inbox.push(cmd),
                    Ok(None) => break,
                    Err(e) => {
                        self.ended = Some(format!("protocol error: {e}"));
                        return Found::Stop;
                    }
                }
            }
            // Frames for others: the driver takes over reading, so a caller never
            // holds more of a flood than one read brought in (the inbox is bounded by
            // the read buffer, not by what the peer sends).
            if !self.inbox.is_empty() {
                return Found::Stop;
            }
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) => {
                    self.ended = Some("peer closed the connection".to_owned());
                    return Found::Stop;
                }
                Poll::Ready(Ok(n)) => *bytes_in += n as u64,
                Poll::Ready(Err(e)) => {
                    self.ended = Some(format!("read failed: {e}"));
                    return Found::Stop;
                }
                Poll::Pending => return Found::Waiting,
            }
        }
    }

    /// Hands read interest back to the driver after a caller's read: polls the
    /// socket with the driver's waker. Returns whether the driver must be kicked
    /// (bytes or frames wait for it, the stream ended, or it never read yet).
    pub(super) fn hand_back(&mut self, bytes_in: &mut u64) -> bool {
        let Some(waker) = self.driver_waker.clone() else {
            return true;
        };
        let mut cx = Context::from_waker(&waker);
        let more = match self.poll_fill(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Ok(n)) => {
                *bytes_in += n as u64;
                true
            }
            // The driver reads the end (or the error) again and closes.
            Poll::Ready(Err(_)) => true,
        };
        more || !self.buf.is_empty() || !self.inbox.is_empty() || self.ended.is_some()
    }
}
