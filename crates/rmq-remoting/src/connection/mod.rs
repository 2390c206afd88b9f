//! One connection: a cloneable [`Connection`] handle and the driver task that owns
//! the socket (see `driver.rs`).
//!
//! Every request is resolved exactly once, on every path: by its response, by the
//! driver's deadline sweep, by the connection closing, or — for a request that never
//! reached the driver — by the envelope's `Drop` (hyper's trick), which answers
//! `NotSent`.
//!
//! A request sent on an idle connection (the caller holds the only in-flight slot
//! and nothing waits to be written) takes the idle fast path of `write_side.rs`:
//! the caller writes its frame itself and, while it waits, reads the socket itself
//! too (`read_side.rs`), so neither direction goes through the driver task. Under
//! load requests queue to the driver, which coalesces them.

mod detached;
mod driver;
mod envelope;
mod read_side;
mod reply;
mod write_side;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rmq_protocol::frame::{FrameCodec, FrameLimits};
use rmq_protocol::{RemotingCommand, ResponseCode, RpcFlags};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use crate::connector::BoxStream;
use crate::error::RemotingError;
use crate::handler::RequestHandler;
use crate::stats::{ConnectionStats, Counters};

pub use detached::{NotTaken, OnReply};
pub(crate) use envelope::Reply;
use envelope::{Envelope, Kind, ReplyTx};
use read_side::{Found, ReadSide};
use write_side::{Registration, WriteSide};

/// Settings of one connection.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// Frame and header size limits for both directions.
    pub frame_limits: FrameLimits,
    /// Requests that may wait for a response at once; a caller waits for room up to
    /// its deadline. Java allows 65 535 per client; 4 096 per connection bounds memory.
    pub max_in_flight: usize,
    /// Bytes of requests encoded but not yet written that may be queued; a caller
    /// waits for room up to its deadline.
    pub max_queued_bytes: usize,
    /// Close the connection after this long without traffic and with nothing in
    /// flight (Java: 120 s).
    pub idle_timeout: Duration,
    /// Close the connection after this many requests in a row timed out without any
    /// response arriving, and then nothing at all was read for
    /// [`half_open_grace`](Self::half_open_grace) (half-open detection). A reply that
    /// merely comes later than a short deadline keeps the connection.
    pub max_consecutive_timeouts: u32,
    /// See [`max_consecutive_timeouts`](Self::max_consecutive_timeouts). Default 1 s.
    pub half_open_grace: Duration,
    /// The writer stops taking new requests while this many bytes wait to be written.
    pub write_buffer_soft_limit: usize,
    /// A request sent alone on an idle connection is answered without the driver
    /// task: its caller reads the socket itself while it waits, saving a task
    /// wake-up per round trip. Default on; off, every answer goes through the
    /// driver.
    pub caller_reads: bool,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            frame_limits: FrameLimits::default(),
            max_in_flight: 4096,
            max_queued_bytes: 64 * 1024 * 1024,
            idle_timeout: Duration::from_secs(120),
            max_consecutive_timeouts: 3,
            half_open_grace: Duration::from_secs(1),
            write_buffer_soft_limit: 256 * 1024,
            caller_reads: true,
        }
    }
}

/// Handlers for server-initiated requests, by request code.
#[derive(Debug, Default)]
pub(crate) struct Handlers {
    by_code: RwLock<HashMap<i32, Arc<dyn RequestHandler>>>,
}

impl Handlers {
    pub(crate) fn register(&self, handler: Arc<dyn RequestHandler>) {
        let mut map = self.by_code.write().unwrap_or_else(|e| e.into_inner());
        for code in handler.codes() {
            map.insert(code.0, handler.clone());
        }
    }

    pub(crate) fn get(&self, code: i32) -> Option<Arc<dyn RequestHandler>> {
        let map = self.by_code.read().unwrap_or_else(|e| e.into_inner());
        map.get(&code).cloned()
    }
}

/// State the driver publishes and the handles read.
#[derive(Debug)]
struct State {
    addr: String,
    closed: AtomicBool,
    draining: AtomicBool,
    pending_len: AtomicUsize,
    close_reason: RwLock<Option<String>>,
    close_now: Notify,
    /// Wakes the driver: a fast path left output or a registration behind, a
    /// fast-path caller's deadline passed (the driver sweeps), or a caller that read
    /// the socket left frames or the end of the stream for it.
    kick: Notify,
    /// Reads by fast-path callers that found data (the driver counts them as
    /// activity, like its own reads).
    caller_reads: AtomicU64,
}

/// What the handles share. Dropping the last handle drops `tx`, which tells the
/// driver to finish what is in flight and close.
#[derive(Debug)]
struct Shared {
    addr: String,
    tx: mpsc::UnboundedSender<Envelope>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    queued_bytes: Arc<Semaphore>,
    max_queued_bytes: usize,
    state: Arc<State>,
    ws: Arc<Mutex<WriteSide>>,
    rs: Arc<Mutex<ReadSide>>,
    caller_reads: bool,
    codec: FrameCodec,
    counters: Arc<Counters>,
    /// Reply slots, reused from one request to the next (no allocation per request).
    replies: Arc<reply::SlotPool<Result<RemotingCommand, RemotingError>>>,
    /// The deadline timer of fast-path waits (one at a time: the fast path needs
    /// the only in-flight slot), kept from one to the next: moving a registered
    /// timer to a later deadline is an atomic store, where a new timer per request
    /// was registered and removed in the runtime's timer wheel each time (≈ 1 000
    /// instructions, a sixth of a round trip's). Made on the driver's runtime, so it
    /// lives as long as the driver.
    fast_timer: Mutex<Option<Pin<Box<tokio::time::Sleep>>>>,
}

/// A handle to one multiplexed connection. Cheap to clone. The connection closes
/// when every handle is dropped, when [`close`](Self::close) is called, or on any
/// transport failure.
#[derive(Clone, Debug)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl Connection {
    /// Spawns the driver for `stream` on the current tokio runtime.
    pub fn spawn(stream: BoxStream, addr: impl Into<String>, config: ConnectionConfig) -> Self {
        Self::spawn_with(stream, addr.into(), config, Arc::default(), Arc::default())
    }

    pub(crate) fn spawn_with(
        stream: BoxStream,
        addr: String,
        config: ConnectionConfig,
        handlers: Arc<Handlers>,
        counters: Arc<Counters>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let max_queued_bytes = config.max_queued_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let state = Arc::new(State {
            addr: addr.clone(),
            closed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            pending_len: AtomicUsize::new(0),
            close_reason: RwLock::new(None),
            close_now: Notify::new(),
            kick: Notify::new(),
            caller_reads: AtomicU64::new(0),
        });
        let responses_tx = tx.downgrade();
        let (reader, writer) = tokio::io::split(stream);
        let ws = Arc::new(Mutex::new(WriteSide::new(writer)));
        let rs = Arc::new(Mutex::new(ReadSide::new(
            reader,
            FrameCodec::new(config.frame_limits),
        )));
        let max_in_flight = config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            addr: addr.clone(),
            tx,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            queued_bytes: Arc::new(Semaphore::new(max_queued_bytes)),
            max_queued_bytes,
            state: state.clone(),
            ws: ws.clone(),
            rs: rs.clone(),
            caller_reads: config.caller_reads,
            codec: FrameCodec::new(config.frame_limits),
            counters: counters.clone(),
            replies: Arc::default(),
            fast_timer: Mutex::new(Some(Box::pin(tokio::time::sleep(Duration::from_secs(
                3600,
            ))))),
        });
        let span = tracing::debug_span!("rmq.conn", addr = %addr);
        let driver =
            driver::Driver::new(rs, ws, rx, responses_tx, config, state, handlers, counters);
        tokio::spawn(driver.run().instrument(span));
        Self { shared }
    }

    /// The peer address.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether the connection has closed (it never reopens).
    pub fn is_closed(&self) -> bool {
        self.shared.state.closed.load(Ordering::Acquire)
    }

    /// Whether new requests should go to a fresh connection: closed, or the peer
    /// said GO_AWAY.
    pub fn is_unusable(&self) -> bool {
        self.is_closed() || self.shared.state.draining.load(Ordering::Acquire)
    }

    /// Requests waiting for a response.
    pub fn in_flight(&self) -> usize {
        self.shared.state.pending_len.load(Ordering::Relaxed)
    }

    /// Closes the connection: every waiter fails at once.
    pub fn close(&self) {
        self.shared.state.draining.store(true, Ordering::Release);
        self.shared.state.close_now.notify_one();
    }

    pub(crate) fn mark_draining(&self) {
        self.shared.state.draining.store(true, Ordering::Release);
    }

    /// A snapshot for stats.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            addr: self.shared.addr.clone(),
            in_flight: self.in_flight(),
            closed: self.is_closed(),
        }
    }

    fn closed_error(&self) -> RemotingError {
        let reason = self
            .shared
            .state
            .close_reason
            .read()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "closed".to_owned());
        RemotingError::ConnectionClosed {
            addr: self.shared.addr.clone(),
            reason,
            written: false,
        }
    }

    /// Waits for an in-flight slot and for room for `bytes` queued bytes.
    async fn admit(
        &self,
        bytes: usize,
        deadline: Instant,
        started: Instant,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), RemotingError> {
        let timeout = || RemotingError::Timeout {
            addr: self.shared.addr.clone(),
            elapsed: started.elapsed(),
            written: false,
        };
        let want = u32::try_from(bytes.clamp(1, self.shared.max_queued_bytes)).unwrap_or(u32::MAX);
        // Room now: no timer to make (it costs a runtime handle and a timer entry).
        if let Ok(slot) = self.shared.in_flight.clone().try_acquire_owned()
            && let Ok(room) = self
                .shared
                .queued_bytes
                .clone()
                .try_acquire_many_owned(want)
        {
            return Ok((slot, room));
        }
        let admit = async {
            let slot = self.shared.in_flight.clone().acquire_owned().await;
            let room = self
                .shared
                .queued_bytes
                .clone()
                .acquire_many_owned(want)
                .await;
            (slot, room)
        };
        match tokio::time::timeout_at(deadline, admit).await {
            Ok((Ok(slot), Ok(room))) => Ok((slot, room)),
            Ok(_) => Err(self.closed_error()),
            Err(_) => Err(timeout()),
        }
    }

    /// Sends `request` and waits for its response until `deadline`.
    pub async fn invoke(
        &self,
        request: RemotingCommand,
        deadline: Instant,
    ) -> Result<RemotingCommand, RemotingError> {
        self.invoke_returning(request, deadline)
            .await
            .map(|r| r.response)
    }

    /// Like [`invoke`](Self::invoke), also handing the request back with the response
    /// (for hooks and GO_AWAY retries, without cloning it).
    pub(crate) async fn invoke_returning(
        &self,
        request: RemotingCommand,
        deadline: Instant,
    ) -> Result<Reply, RemotingError> {
        let started = Instant::now();
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let (slot, room) = self
            .admit(estimate_len(&request), deadline, started)
            .await?;
        // Idle fast path: we hold the only in-flight slot.
        if self.shared.in_flight.available_permits() + 1 == self.shared.max_in_flight {
            match self.write_idle(&request, room, deadline, started) {
                Fast::Sent(rx, opaque) => {
                    let result = self.wait_fast(rx, opaque, deadline, started).await;
                    drop(slot);
                    return result.map(|response| Reply { response, request });
                }
                Fast::Failed(e) => return Err(e),
                Fast::Declined(room) => {
                    let result = self.queue_to_driver(request, room, deadline, started).await;
                    drop(slot);
                    return result;
                }
            }
        }
        let result = self.queue_to_driver(request, room, deadline, started).await;
        drop(slot);
        result
    }

    /// Hands `request` to the driver, which encodes and writes it with whatever
    /// else is queued, and waits for its answer. The driver keeps no copy of the
    /// request: the caller keeps its own (for wire-form header fields, a clone
    /// shares their bytes and allocates nothing).
    ///
    /// A plain `fn`: the envelope is sent before the returned future is first
    /// polled, so the future holds only the wait (not the envelope and the
    /// arguments twice, as an `async fn` would).
    fn queue_to_driver(
        &self,
        request: RemotingCommand,
        room: OwnedSemaphorePermit,
        deadline: Instant,
        started: Instant,
    ) -> impl Future<Output = Result<Reply, RemotingError>> + Send + '_ {
        let (tx, rx) = self.shared.replies.channel();
        let envelope = Envelope::new(
            request.clone(),
            Kind::Request {
                reply: Some(ReplyTx::Waiter(tx)),
                deadline,
                started,
            },
            room,
        );
        // If the driver is gone, the envelope's Drop answers NotSent through `rx`.
        let _ = self.shared.tx.send(envelope);
        async move {
            self.await_answer(rx, deadline, started)
                .await
                .map(|response| Reply { response, request })
        }
    }

    /// The idle fast path's write: when nothing waits to be written, encodes
    /// `request` and writes it to the socket here, registering it for the driver.
    /// Declines (handing everything back) when the driver has output pending.
    fn write_idle(
        &self,
        request: &RemotingCommand,
        room: OwnedSemaphorePermit,
        deadline: Instant,
        started: Instant,
    ) -> Fast {
        let mut ws = crate::lock(&self.shared.ws);
        if ws.closed || ws.has_output() || ws.failed.is_some() || !ws.registrations.is_empty() {
            return Fast::Declined(room);
        }
        let opaque = ws.take_opaque();
        let flag = RpcFlags(request.flag.0 & !(RpcFlags::RESPONSE | RpcFlags::ONEWAY));
        let encoded = self
            .shared
            .codec
            .encode_as(request, opaque, flag, &mut ws.buf);
        if let Err(source) = encoded {
            return Fast::Failed(RemotingError::Encode {
                addr: self.shared.addr.clone(),
                source,
            });
        }
        ws.encoded += ws.buf.len() as u64;
        let end = ws.encoded;
        let (tx, rx) = self.shared.replies.channel();
        let n = ws.write_now();
        let counters = &self.shared.counters;
        if n > 0 {
            Counters::add(&counters.bytes_out, n as u64);
            Counters::add(&counters.writes, 1);
        }
        let unwritten = end > ws.written;
        ws.registrations.push(Registration {
            reply: ReplyTx::Waiter(tx),
            opaque,
            deadline,
            started,
            end,
            room: unwritten.then_some(room),
        });
        self.shared
            .state
            .pending_len
            .fetch_add(1, Ordering::Relaxed);
        let kick = ws.has_output() || ws.failed.is_some();
        drop(ws);
        if kick {
            self.shared.state.kick.notify_one();
        }
        Fast::Sent(rx, opaque)
    }

    /// Waits for the answer of a fast-path request, reading it from the socket here
    /// while the driver has not taken the request (`read_side.rs`). The driver was
    /// not woken for it, so its timer does not know this deadline: at the deadline
    /// the caller kicks the driver, which sweeps and answers (`Timeout`, written). A
    /// caller that gives up early kicks it too, so the entry is swept in time and
    /// the driver reads again.
    async fn wait_fast(
        &self,
        mut rx: reply::Receiver<Result<RemotingCommand, RemotingError>>,
        opaque: i32,
        deadline: Instant,
        started: Instant,
    ) -> Result<RemotingCommand, RemotingError> {
        struct KickOnDrop<'a>(Option<&'a Notify>);
        impl Drop for KickOnDrop<'_> {
            fn drop(&mut self) {
                if let Some(kick) = self.0 {
                    kick.notify_one();
                }
            }
        }
        let mut guard = KickOnDrop(Some(&self.shared.state.kick));
        let mut reading = self.shared.caller_reads;
        let answer = std::future::poll_fn(|cx| {
            if let Poll::Ready(answer) = Pin::new(&mut rx).poll(cx) {
                return Poll::Ready(answer);
            }
            if reading {
                match self.read_answer(cx, opaque, &mut rx) {
                    Some(Ok(response)) => return Poll::Ready(Ok(Ok(response))),
                    Some(Err(())) => reading = false,
                    None => {}
                }
            }
            Poll::Pending
        });
        tokio::pin!(answer);
        // The connection's timer, unless its driver (and maybe its runtime) is gone.
        let cached = if self.shared.tx.is_closed() {
            None
        } else {
            crate::lock(&self.shared.fast_timer).take()
        };
        let mut timer = match cached {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let answered = std::future::poll_fn(|cx| {
            if let Poll::Ready(answer) = answer.as_mut().poll(cx) {
                return Poll::Ready(Some(answer));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await;
        *crate::lock(&self.shared.fast_timer) = Some(timer);
        let result = match answered {
            Some(answer) => Ok(answer),
            None => {
                self.shared.state.kick.notify_one();
                tokio::time::timeout_at(deadline + Duration::from_secs(1), &mut rx).await
            }
        };
        guard.0 = None;
        match result {
            Ok(Ok(result)) => result.map_err(|e| self.with_addr(e)),
            Ok(Err(_)) => Err(RemotingError::ConnectionClosed {
                addr: self.shared.addr.clone(),
                reason: "connection driver ended unexpectedly".to_owned(),
                written: true,
            }),
            Err(_) => Err(RemotingError::Timeout {
                addr: self.shared.addr.clone(),
                elapsed: started.elapsed(),
                written: true,
            }),
        }
    }

    /// One read of the socket by a fast-path caller, for the answer to `opaque`:
    /// `Some(Ok)` with it (its registration removed, read interest handed back to
    /// the driver), `None` while it has not come (this task's waker registered, or
    /// the driver reading), `Some(Err)` when the caller must stop reading and wait
    /// for the driver (the driver took the request, or the stream ended).
    fn read_answer(
        &self,
        cx: &mut Context<'_>,
        opaque: i32,
        rx: &mut reply::Receiver<Result<RemotingCommand, RemotingError>>,
    ) -> Option<Result<RemotingCommand, ()>> {
        let shared = &*self.shared;
        let ours = |ws: &WriteSide| {
            ws.registrations
                .iter()
                .position(|r| r.opaque == opaque && r.room.is_none())
        };
        let mut bytes_in = 0;
        let (answer, kick) = {
            // The driver is reading: what it reads reaches us through the slot.
            let Ok(mut rs) = shared.rs.try_lock() else {
                return None;
            };
            if ours(&crate::lock(&shared.ws)).is_none() {
                return Some(Err(()));
            }
            let mut driver_needed = false;
            let answer = match rs.read_for(cx, opaque, &mut bytes_in) {
                Found::Waiting => None,
                Found::Stop => Some(Err(())),
                Found::Answer(response) => {
                    driver_needed = rs.hand_back(&mut bytes_in);
                    let registration = {
                        let mut ws = crate::lock(&shared.ws);
                        ours(&ws).map(|i| {
                            shared.state.pending_len.fetch_sub(1, Ordering::Relaxed);
                            ws.registrations.remove(i)
                        })
                    };
                    match registration {
                        // Its reply slot is not needed: closed first, so that dropping
                        // the registration's sender does not wake this task once more.
                        Some(registration) => {
                            rx.close();
                            drop(registration);
                            Some(Ok(response))
                        }
                        // The driver took the request meanwhile: the answer is its to give.
                        None => {
                            rs.inbox.push(response);
                            Some(Err(()))
                        }
                    }
                }
            };
            let kick = driver_needed || !rs.inbox.is_empty() || rs.ended.is_some();
            (answer, kick)
        };
        self.count_read(bytes_in);
        if kick {
            shared.state.kick.notify_one();
        }
        if let Some(Ok(response)) = &answer {
            let counters = &shared.counters;
            Counters::add(&counters.requests, 1);
            Counters::add(&counters.frames_written, 1);
            Counters::add(&counters.responses, 1);
            if response.response_code() == ResponseCode::GO_AWAY {
                Counters::add(&counters.go_aways, 1);
                self.mark_draining();
            }
        }
        answer
    }

    fn count_read(&self, bytes_in: u64) {
        if bytes_in > 0 {
            Counters::add(&self.shared.counters.bytes_in, bytes_in);
            self.shared
                .state
                .caller_reads
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits for the answer of a request handed to the driver. The driver enforces
    /// the deadline; the extra second only guards against a stalled driver task
    /// (then the outcome is unknown: reported as written).
    async fn await_answer<T, E>(
        &self,
        rx: impl Future<Output = Result<Result<T, RemotingError>, E>>,
        deadline: Instant,
        started: Instant,
    ) -> Result<T, RemotingError> {
        match tokio::time::timeout_at(deadline + Duration::from_secs(1), rx).await {
            Ok(Ok(result)) => result.map_err(|e| self.with_addr(e)),
            Ok(Err(_)) => Err(RemotingError::ConnectionClosed {
                addr: self.shared.addr.clone(),
                reason: "connection driver ended unexpectedly".to_owned(),
                written: true,
            }),
            Err(_) => Err(RemotingError::Timeout {
                addr: self.shared.addr.clone(),
                elapsed: started.elapsed(),
                written: true,
            }),
        }
    }

    /// Errors raised where the address is unknown (an envelope's `Drop`) get ours.
    fn with_addr(&self, e: RemotingError) -> RemotingError {
        match e {
            RemotingError::ConnectionClosed {
                addr,
                reason,
                written,
            } if addr.is_empty() => RemotingError::ConnectionClosed {
                addr: self.shared.addr.clone(),
                reason,
                written,
            },
            other => other,
        }
    }

    /// Sends a one-way request; resolves once its bytes were written to the socket.
    pub async fn invoke_oneway(
        &self,
        request: RemotingCommand,
        deadline: Instant,
    ) -> Result<(), RemotingError> {
        let started = Instant::now();
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let (slot, room) = self
            .admit(estimate_len(&request), deadline, started)
            .await?;
        drop(slot);
        let (tx, rx) = oneshot::channel();
        let envelope = Envelope::new(
            request,
            Kind::Oneway {
                done: Some(tx),
                deadline,
                started,
            },
            room,
        );
        // If the driver is gone, the envelope's Drop answers NotSent through `rx`.
        let _ = self.shared.tx.send(envelope);
        self.await_answer(rx, deadline, started).await
    }
}

/// What the idle fast path did with a request.
enum Fast {
    /// Written (or left for the driver to finish) and registered with this opaque.
    Sent(reply::Receiver<Result<RemotingCommand, RemotingError>>, i32),
    /// Not taken: the caller queues it to the driver.
    Declined(OwnedSemaphorePermit),
    /// The request cannot be encoded; nothing was sent.
    Failed(RemotingError),
}

/// An upper estimate of a request's encoded size, for queued-bytes accounting.
fn estimate_len(cmd: &RemotingCommand) -> usize {
    let fields: usize = cmd
        .ext_fields
        .iter()
        .map(|(k, v)| k.len() + v.len() + 16)
        .sum();
    let remark = cmd.remark.as_ref().map_or(0, String::len);
    8 + 160 + fields + remark + cmd.body.as_ref().map_or(0, |b| b.len())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod self_read_tests;
