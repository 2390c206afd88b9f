//! The driver task: exclusive owner of the socket, the opaque counter and the
//! pending table.
//!
//! One `select!` loop reads frames, writes the coalesced write buffer, takes new
//! requests (only while the write buffer is below its soft limit, so a slow peer
//! back-pressures callers through their admission permits), and sweeps deadlines.
//! On exit every waiter is resolved: pending requests whose frame was fully
//! written fail as `Indeterminate`, the rest as `NotSent`.
//!
//! The write buffer, the stream offsets and the opaque counter live in the shared
//! [`WriteSide`], because an idle connection's handles write their requests
//! themselves (see `write_side.rs`); the driver takes their registrations into its
//! pending table before it looks at any response, on every loop turn, and when
//! kicked (a fast path left output behind, or a fast-path caller's deadline passed).
//!
//! The read buffer lives in the shared [`ReadSide`] for the same reason: a fast-path
//! caller may read its own answer (see `read_side.rs`); what it read that is not its
//! answer waits in the read side's inbox for the driver, which is kicked.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_protocol::frame::FrameCodec;
use rmq_protocol::{RemotingCommand, ResponseCode, RpcFlags};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;
use tracing::{debug, trace};

use super::envelope::{DoneTx, Envelope, Kind, ReplyTx};
use super::read_side::ReadSide;
use super::write_side::{Output, WriteSide};
use super::{ConnectionConfig, Handlers, State};
use crate::error::RemotingError;
use crate::stats::Counters;

/// Hashing for the pending table's keys: opaques, which this connection assigns in
/// sequence (a peer's answer only looks one up), so a multiplicative hash spreads them
/// evenly and no hash-flooding resistance is needed; SipHash was ≈ 1 % of a send's
/// instructions (two or three lookups per request).
type OpaqueHash = std::hash::BuildHasherDefault<OpaqueHasher>;

/// See [`OpaqueHash`].
#[derive(Default)]
struct OpaqueHasher(u64);

impl std::hash::Hasher for OpaqueHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i32(&mut self, v: i32) {
        // Fibonacci hashing: an odd multiplier, a bijection that spreads sequential keys
        // over both the high bits (hashbrown's tags) and the low ones (its buckets).
        self.0 = u64::from(v as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct Pending {
    reply: ReplyTx,
    deadline: Instant,
    started: Instant,
    /// Offset in the byte stream at which this frame ends.
    end: u64,
}

struct Oneway {
    done: DoneTx,
    deadline: Instant,
    started: Instant,
    end: u64,
}

pub(super) struct Driver {
    addr: String,
    rs: Arc<Mutex<ReadSide>>,
    ws: Arc<Mutex<WriteSide>>,
    rx: mpsc::UnboundedReceiver<Envelope>,
    responses_tx: mpsc::WeakUnboundedSender<Envelope>,
    config: ConnectionConfig,
    codec: FrameCodec,
    state: Arc<State>,
    handlers: Arc<Handlers>,
    counters: Arc<Counters>,
    /// Frames taken from the read side, dispatched after its lock is released.
    frames: Vec<RemotingCommand>,
    /// Callers' reads as of the last look (`State::caller_reads`).
    caller_reads_seen: u64,
    /// Bytes handed to the socket since the connection opened (as of the last
    /// look at the write side).
    written: u64,
    pending: HashMap<i32, Pending, OpaqueHash>,
    deadlines: BinaryHeap<Reverse<(Instant, i32)>>,
    oneways: VecDeque<Oneway>,
    rooms: VecDeque<(u64, OwnedSemaphorePermit)>,
    consecutive_timeouts: u32,
    /// When the timeout streak reached the limit; the connection is closed if nothing
    /// is read within the grace period after it (a reply merely later than a short
    /// deadline clears it).
    suspect_since: Option<Instant>,
    last_activity: Instant,
    inbox_open: bool,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        rs: Arc<Mutex<ReadSide>>,
        ws: Arc<Mutex<WriteSide>>,
        rx: mpsc::UnboundedReceiver<Envelope>,
        responses_tx: mpsc::WeakUnboundedSender<Envelope>,
        config: ConnectionConfig,
        state: Arc<State>,
        handlers: Arc<Handlers>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            addr: state.addr.clone(),
            rs,
            ws,
            rx,
            responses_tx,
            codec: FrameCodec::new(config.frame_limits),
            config,
            state,
            handlers,
            counters,
            frames: Vec::new(),
            caller_reads_seen: 0,
            written: 0,
            pending: HashMap::default(),
            deadlines: BinaryHeap::new(),
            oneways: VecDeque::new(),
            rooms: VecDeque::new(),
            consecutive_timeouts: 0,
            suspect_since: None,
            last_activity: Instant::now(),
            inbox_open: true,
        }
    }

    pub(super) async fn run(mut self) {
        debug!("connection open");
        let reason = self.event_loop().await;
        self.shutdown(reason).await;
    }

    fn idle(&self) -> bool {
        if !(self.pending.is_empty() && self.oneways.is_empty()) {
            return false;
        }
        let ws = crate::lock(&self.ws);
        !ws.has_output() && ws.registrations.is_empty()
    }

    /// Takes the fast path's registrations into the pending table. Returns the
    /// reason to close if a fast-path write failed.
    fn take_registrations(&mut self) -> Option<String> {
        let ws = self.ws.clone();
        let mut ws = crate::lock(&ws);
        self.written = ws.written;
        if !ws.registrations.is_empty() {
            self.last_activity = Instant::now();
        }
        let written = ws.written;
        for r in ws.registrations.drain(..) {
            let opaque = r.opaque;
            trace!(opaque, "request queued (written by its caller)");
            Counters::add(&self.counters.requests, 1);
            Counters::add(&self.counters.frames_written, 1);
            self.push_deadline(r.deadline, opaque);
            if let Some(room) = r.room
                && r.end > written
            {
                self.rooms.push_back((r.end, room));
            }
            self.pending.insert(
                opaque,
                Pending {
                    reply: r.reply,
                    deadline: r.deadline,
                    started: r.started,
                    end: r.end,
                },
            );
        }
        ws.failed.take()
    }

    /// Deadline sweep, half-open detection and idle close, when the timer fires or
    /// a fast-path caller says its deadline passed.
    fn check_time(&mut self) -> Option<String> {
        let now = Instant::now();
        // Answers read by fast-path callers are activity, and end a timeout streak,
        // as answers read here do.
        let caller_reads = self.state.caller_reads.load(Ordering::Relaxed);
        if caller_reads != self.caller_reads_seen {
            self.caller_reads_seen = caller_reads;
            self.last_activity = now;
            self.consecutive_timeouts = 0;
            self.suspect_since = None;
        }
        self.sweep(now);
        if self.consecutive_timeouts >= self.config.max_consecutive_timeouts.max(1) {
            let since = *self.suspect_since.get_or_insert(now);
            if now >= since + self.config.half_open_grace {
                return Some(format!(
                    "{} consecutive requests timed out and nothing was read for {:?} after (half-open connection?)",
                    self.consecutive_timeouts, self.config.half_open_grace
                ));
            }
        }
        if self.idle() && now >= self.last_activity + self.config.idle_timeout {
            return Some(format!("idle for {:?}", self.config.idle_timeout));
        }
        None
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut wake = if self.idle() {
            self.last_activity + self.config.idle_timeout
        } else {
            far
        };
        if let Some(Reverse((deadline, _))) = self.deadlines.peek() {
            wake = wake.min(*deadline);
        }
        for o in &self.oneways {
            wake = wake.min(o.deadline);
        }
        if let Some(since) = self.suspect_since {
            wake = wake.min(since + self.config.half_open_grace);
        }
        wake
    }

    async fn event_loop(&mut self) -> String {
        let mut batch = Vec::with_capacity(64);
        // One timer and one close notification for the connection's life: re-arming
        // them each turn would register and cancel a timer per loop iteration.
        let state = self.state.clone();
        let close = state.close_now.notified();
        tokio::pin!(close);
        let kick = state.kick.notified();
        tokio::pin!(kick);
        let ws = self.ws.clone();
        let rs = self.rs.clone();
        let timer = tokio::time::sleep_until(self.next_wake());
        tokio::pin!(timer);
        loop {
            if let Some(reason) = self.take_registrations() {
                return reason;
            }
            if !self.inbox_open && self.idle() {
                return "all handles dropped".to_owned();
            }
            if self.state.draining.load(Ordering::Acquire) && self.idle() {
                return "draining (GO_AWAY or closed by owner) and nothing in flight".to_owned();
            }
            let wake = self.next_wake();
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            let (has_output, can_take) = {
                let ws = crate::lock(&ws);
                (
                    ws.has_output(),
                    self.inbox_open && ws.buf.len() < self.config.write_buffer_soft_limit,
                )
            };
            tokio::select! {
                biased;
                _ = &mut close => return "closed by owner".to_owned(),
                read = std::future::poll_fn(|cx| crate::lock(&rs).poll_driver_read(cx)) => match read {
                    Ok(0) => return "peer closed the connection".to_owned(),
                    Ok(n) => {
                        Counters::add(&self.counters.bytes_in, n as u64);
                        self.last_activity = Instant::now();
                        // A response may answer a request its caller wrote itself.
                        if let Some(reason) = self.take_registrations() {
                            return reason;
                        }
                        if let Err(e) = self.read_frames() {
                            return format!("protocol error: {e}");
                        }
                    }
                    Err(e) => return format!("read failed: {e}"),
                },
                out = std::future::poll_fn(|cx| crate::lock(&ws).poll_output(cx)), if has_output => match out {
                    Ok(Output::Wrote { n, written }) => self.on_written(n, written),
                    Ok(Output::Flushed) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WriteZero => {
                        return "write returned 0 bytes".to_owned();
                    }
                    Err(e) => return format!("write failed: {e}"),
                },
                n = self.rx.recv_many(&mut batch, 64), if can_take => {
                    if n == 0 {
                        self.inbox_open = false;
                    }
                    for envelope in batch.drain(..) {
                        self.enqueue(envelope);
                    }
                },
                () = &mut kick => {
                    kick.set(state.kick.notified());
                    if let Some(reason) = self.take_registrations() {
                        return reason;
                    }
                    // A fast-path caller may have read frames that are ours, or the
                    // end of the stream.
                    if let Err(e) = self.read_frames() {
                        return format!("protocol error: {e}");
                    }
                    if let Some(reason) = crate::lock(&rs).ended.take() {
                        return reason;
                    }
                    if let Some(reason) = self.check_time() {
                        return reason;
                    }
                },
                _ = &mut timer => {
                    // A fast-path request may have been registered since the loop top.
                    if let Some(reason) = self.take_registrations() {
                        return reason;
                    }
                    if let Some(reason) = self.check_time() {
                        return reason;
                    }
                },
            }
        }
    }

    /// Publishes the table size, counting registrations not taken yet (under the
    /// write side's lock, where the fast path counts its own).
    fn update_pending_len(&self) {
        let ws = crate::lock(&self.ws);
        self.state.pending_len.store(
            self.pending.len() + ws.registrations.len(),
            Ordering::Relaxed,
        );
    }

    fn take_opaque(&mut self) -> i32 {
        crate::lock(&self.ws).take_opaque()
    }

    /// Encodes `cmd` at the end of the write buffer; returns the stream offset at
    /// which it ends.
    fn encode(&mut self, cmd: &RemotingCommand) -> Result<u64, RemotingError> {
        let mut ws = crate::lock(&self.ws);
        let before = ws.buf.len();
        self.codec
            .encode(cmd, &mut ws.buf)
            .map_err(|source| RemotingError::Encode {
                addr: self.addr.clone(),
                source,
            })?;
        let len = (ws.buf.len() - before) as u64;
        ws.encoded += len;
        Counters::add(&self.counters.frames_written, 1);
        self.last_activity = Instant::now();
        Ok(ws.encoded)
    }

    fn enqueue(&mut self, mut envelope: Envelope) {
        let Some(mut cmd) = envelope.cmd.take() else {
            return;
        };
        let room = envelope.room.take();
        match &mut envelope.kind {
            Kind::Request {
                reply,
                deadline,
                started,
            } => {
                let Some(tx) = reply.take() else { return };
                if tx.is_closed() {
                    return; // the caller gave up before we took it: nothing was sent
                }
                if Instant::now() >= *deadline {
                    tx.send(Err(self.timeout(*started, false)));
                    return;
                }
                cmd.opaque = self.take_opaque();
                cmd.flag = RpcFlags(cmd.flag.0 & !(RpcFlags::RESPONSE | RpcFlags::ONEWAY));
                match self.encode(&cmd) {
                    Ok(end) => {
                        Counters::add(&self.counters.requests, 1);
                        trace!(opaque = cmd.opaque, code = cmd.code, "request queued");
                        self.push_deadline(*deadline, cmd.opaque);
                        // The request itself is not kept: its caller holds its own
                        // (a waiting caller) or needs it no more (a detached one),
                        // so the buffers it shares (the sender's header arena) are
                        // not held here until the answer.
                        self.pending.insert(
                            cmd.opaque,
                            Pending {
                                reply: tx,
                                deadline: *deadline,
                                started: *started,
                                end,
                            },
                        );
                        self.update_pending_len();
                        if let Some(room) = room {
                            self.rooms.push_back((end, room));
                        }
                    }
                    Err(e) => {
                        tx.send(Err(e));
                    }
                }
            }
            Kind::Oneway {
                done,
                deadline,
                started,
            } => {
                let Some(tx) = done.take() else { return };
                if Instant::now() >= *deadline {
                    let _ = tx.send(Err(self.timeout(*started, false)));
                    return;
                }
                cmd.opaque = self.take_opaque();
                cmd.flag = RpcFlags((cmd.flag.0 | RpcFlags::ONEWAY) & !RpcFlags::RESPONSE);
                match self.encode(&cmd) {
                    Ok(end) => {
                        Counters::add(&self.counters.requests, 1);
                        self.oneways.push_back(Oneway {
                            done: tx,
                            deadline: *deadline,
                            started: *started,
                            end,
                        });
                        if let Some(room) = room {
                            self.rooms.push_back((end, room));
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            }
            Kind::Response => {
                if let Err(e) = self.encode(&cmd) {
                    debug!(error = %e, "could not encode a response to a server request");
                }
            }
        }
    }

    fn on_written(&mut self, n: usize, written: u64) {
        self.written = written;
        self.last_activity = Instant::now();
        Counters::add(&self.counters.bytes_out, n as u64);
        Counters::add(&self.counters.writes, 1);
        while self
            .rooms
            .front()
            .is_some_and(|(end, _)| *end <= self.written)
        {
            self.rooms.pop_front();
        }
        while self.oneways.front().is_some_and(|o| o.end <= self.written) {
            if let Some(o) = self.oneways.pop_front() {
                let _ = o.done.send(Ok(()));
            }
        }
    }

    fn timeout(&self, started: Instant, written: bool) -> RemotingError {
        RemotingError::Timeout {
            addr: self.addr.clone(),
            elapsed: started.elapsed(),
            written,
        }
    }

    fn sweep(&mut self, now: Instant) {
        while let Some(Reverse((deadline, opaque))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if self
                .pending
                .get(&opaque)
                .is_some_and(|p| p.deadline == deadline)
                && let Some(p) = self.pending.remove(&opaque)
            {
                // Publish before waking the caller (see `on_response`).
                self.consecutive_timeouts += 1;
                Counters::add(&self.counters.timeouts, 1);
                self.update_pending_len();
                // Encoded frames are (or will be) written: the peer may process them.
                p.reply.send(Err(self.timeout(p.started, true)));
                debug!(opaque, "request timed out");
            }
        }
        let mut i = 0;
        while i < self.oneways.len() {
            if self.oneways[i].deadline <= now {
                if let Some(o) = self.oneways.remove(i) {
                    let _ = o.done.send(Err(self.timeout(o.started, true)));
                }
            } else {
                i += 1;
            }
        }
        self.update_pending_len();
    }

    /// Adds a request's deadline to the sweep heap. Answered requests leave their
    /// entries behind until their deadline passes; they are dropped here as soon as
    /// they dominate, so the heap stays proportional to the requests in flight, not
    /// to the request rate times the timeout (250 000 requests per second with 3 s
    /// deadlines would otherwise keep 750 000 entries).
    fn push_deadline(&mut self, deadline: Instant, opaque: i32) {
        let pending = &self.pending;
        push_deadline(
            &mut self.deadlines,
            deadline,
            opaque,
            pending.len(),
            |d, o| o == opaque || pending.get(&o).is_some_and(|p| p.deadline == d),
        );
    }

    /// Dispatches what a caller left in the read side's inbox and every complete
    /// frame in its buffer (decoded under its lock, dispatched after).
    fn read_frames(&mut self) -> Result<(), rmq_protocol::frame::DecodeError> {
        let mut frames = std::mem::take(&mut self.frames);
        let decoded = crate::lock(&self.rs).take_frames(&mut frames);
        for cmd in frames.drain(..) {
            self.consecutive_timeouts = 0;
            self.suspect_since = None;
            if cmd.is_response() {
                self.on_response(cmd);
            } else {
                self.on_server_request(cmd);
            }
        }
        self.frames = frames;
        decoded
    }

    fn on_response(&mut self, response: RemotingCommand) {
        if response.response_code() == ResponseCode::GO_AWAY {
            Counters::add(&self.counters.go_aways, 1);
            self.state.draining.store(true, Ordering::Release);
            debug!("peer sent GO_AWAY; draining");
        }
        match self.pending.remove(&response.opaque) {
            Some(p) => {
                // Publish the table size and counters before waking the caller, so
                // that a caller woken by its response (possibly on another worker)
                // never observes its own request still in flight.
                Counters::add(&self.counters.responses, 1);
                self.update_pending_len();
                p.reply.send(Ok(response));
            }
            None => {
                Counters::add(&self.counters.late_replies, 1);
                debug!(
                    opaque = response.opaque,
                    code = response.code,
                    "late or unknown response dropped"
                );
            }
        }
    }

    fn on_server_request(&mut self, request: RemotingCommand) {
        Counters::add(&self.counters.server_requests, 1);
        let oneway = request.is_oneway();
        let opaque = request.opaque;
        let serialize_type = request.serialize_type;
        match self.handlers.get(request.code) {
            Some(handler) => {
                let responses = self.responses_tx.clone();
                let addr = self.addr.clone();
                tokio::spawn(async move {
                    let response = handler.handle(addr, request).await;
                    if oneway {
                        return;
                    }
                    let mut response = response.unwrap_or_else(|| {
                        RemotingCommand::request(rmq_protocol::RequestCode(
                            ResponseCode::SYSTEM_ERROR.0,
                        ))
                        .remark("request handler produced no response")
                    });
                    response.opaque = opaque;
                    response.flag = RpcFlags(RpcFlags::RESPONSE);
                    response.serialize_type = serialize_type;
                    if let Some(tx) = responses.upgrade() {
                        let _ = tx.send(Envelope::response(response));
                    }
                });
            }
            None if oneway => debug!(
                code = request.code,
                "unhandled one-way request from server ignored"
            ),
            None => {
                debug!(code = request.code, "unsupported request from server");
                let response = RemotingCommand::response_to(
                    &request,
                    ResponseCode::REQUEST_CODE_NOT_SUPPORTED,
                )
                .remark(format!(" request type {} not supported", request.code));
                if let Err(e) = self.encode(&response) {
                    debug!(error = %e, "could not encode REQUEST_CODE_NOT_SUPPORTED");
                }
            }
        }
    }

    async fn shutdown(mut self, reason: String) {
        debug!(%reason, "connection closing");
        // No fast-path registration after this point; take the ones made before.
        crate::lock(&self.ws).closed = true;
        let _ = self.take_registrations();
        self.state.closed.store(true, Ordering::Release);
        self.state.draining.store(true, Ordering::Release);
        if let Ok(mut r) = self.state.close_reason.write() {
            *r = Some(reason.clone());
        }
        Counters::add(&self.counters.closed, 1);
        // Oldest first (opaques are assigned in order): the same failures in the same
        // order on every run, whatever the map's hash keys (seeded replays need it).
        let mut failed: Vec<(i32, Pending)> = self.pending.drain().collect();
        failed.sort_unstable_by_key(|(opaque, _)| *opaque);
        for (_, p) in failed {
            let written = p.end <= self.written;
            p.reply.send(Err(RemotingError::ConnectionClosed {
                addr: self.addr.clone(),
                reason: reason.clone(),
                written,
            }));
        }
        for o in self.oneways.drain(..) {
            let _ = o.done.send(Err(RemotingError::ConnectionClosed {
                addr: self.addr.clone(),
                reason: reason.clone(),
                written: false,
            }));
        }
        self.state.pending_len.store(0, Ordering::Relaxed);
        // Queued envelopes answer NotSent from their Drop.
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        let ws = self.ws.clone();
        let shutdown = std::future::poll_fn(|cx| crate::lock(&ws).poll_shutdown(cx));
        let _ = tokio::time::timeout(Duration::from_millis(100), shutdown).await;
    }
}

/// Pushes `(deadline, opaque)` onto the sweep heap; once stale entries dominate
/// (more than twice the `pending` requests plus 1 024), keeps only those `live`
/// says are still pending, in place.
fn push_deadline(
    heap: &mut BinaryHeap<Reverse<(Instant, i32)>>,
    deadline: Instant,
    opaque: i32,
    pending: usize,
    live: impl Fn(Instant, i32) -> bool,
) {
    heap.push(Reverse((deadline, opaque)));
    if heap.len() > 2 * pending + 1024 {
        heap.retain(|Reverse((d, o))| live(*d, *o));
    }
}

#[cfg(test)]
mod deadline_heap_tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_sweep_heap_stays_proportional_to_what_is_pending() {
        let base = Instant::now();
        let mut heap = BinaryHeap::new();
        let mut pending: HashSet<i32> = HashSet::new();
        for opaque in 0..200_000 {
            let deadline = base + Duration::from_secs(3) + Duration::from_micros(opaque as u64);
            pending.insert(opaque);
            // Every request but one in a thousand is answered before the next is sent.
            if opaque > 0 && (opaque - 1) % 1000 != 0 {
                pending.remove(&(opaque - 1));
            }
            push_deadline(&mut heap, deadline, opaque, pending.len(), |_, o| {
                pending.contains(&o)
            });
            assert!(
                heap.len() <= 2 * pending.len() + 1025,
                "{} entries",
                heap.len()
            );
        }
        // Every request still pending keeps its entry, earliest first.
        let mut left: Vec<i32> = heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse((_, o))| o)
            .collect();
        left.retain(|o| pending.contains(o));
        let mut expected: Vec<i32> = pending.into_iter().collect();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(left, expected);
    }
}
