//! [`FakeServer`]: what every fake server shares — listener lifecycle, connections,
//! request recording, scripts, ACL, dialect, and requests pushed to clients.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rmq_protocol::frame::FrameCodec;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, RpcFlags, SerializeType};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::acl::AclConfig;
use super::connection::{ConnCtx, Outgoing, Pending, run_connection};
use super::dialect::{Dialect, ResponseHeader};
use super::record::{ConnectionId, ConnectionInfo, RecordedRequest, RejectedFrame};
use super::script::{ScriptBuilder, ScriptTable};
use super::transport::{CloseMode, Listener, ServerStream, Transport};
use super::wire::Shaping;

/// What a request handler is told about the request's origin.
#[derive(Debug)]
pub(crate) struct HandlerCtx<'a> {
    pub(crate) connection: ConnectionId,
    pub(crate) peer: &'a str,
    pub(crate) local_addr: &'a str,
    pub(crate) dialect: Dialect,
}

/// The server-specific part: a name server or a broker.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Handles a request; `None` means no reply. The core fixes opaque, flags,
    /// language, version and header type of the returned command.
    fn handle(&self, ctx: &HandlerCtx<'_>, request: &RemotingCommand) -> Option<RemotingCommand>;

    /// A connection closed.
    fn on_disconnect(&self, _connection: ConnectionId) {}
}

/// Why a request pushed to a client failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// No such connection (it closed, or never existed).
    NoConnection,
    /// No connection is registered for this client id or producer group.
    NotRegistered(String),
    /// The connection closed before the client answered.
    Closed,
    /// The client did not answer in time.
    Timeout,
    /// The command could not be encoded.
    Encode(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoConnection => f.write_str("no such connection"),
            Self::NotRegistered(who) => write!(f, "no connection registered for {who}"),
            Self::Closed => f.write_str("the connection closed before the client answered"),
            Self::Timeout => f.write_str("the client did not answer in time"),
            Self::Encode(e) => write!(f, "cannot encode the request: {e}"),
        }
    }
}

impl std::error::Error for PushError {}

enum ListenState {
    Listening {
        stop: oneshot::Sender<()>,
        task: JoinHandle<Option<Listener>>,
    },
    /// TCP `never_accept`: bound, not accepting.
    Paused(Listener),
    Down,
}

pub(crate) struct ConnEntry {
    info: ConnectionInfo,
    pub(crate) tx: mpsc::UnboundedSender<Outgoing>,
    kill: watch::Sender<Option<CloseMode>>,
    task: Option<JoinHandle<()>>,
    pub(crate) pending: Pending,
}

struct State {
    listen: ListenState,
    connections: BTreeMap<ConnectionId, ConnEntry>,
    next_connection: ConnectionId,
    accepted: u64,
    requests: Vec<RecordedRequest>,
    next_seq: u64,
    rejected: Vec<RejectedFrame>,
    acl: Option<AclConfig>,
    dialect: Dialect,
    next_push_opaque: i32,
    reset_mid_request: Option<usize>,
}

pub(crate) struct ServerInner {
    name: String,
    transport: Transport,
    addr: String,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) scripts: Arc<ScriptTable>,
    state: Mutex<State>,
    events: Arc<Notify>,
    paused: watch::Sender<bool>,
    pub(crate) codec: FrameCodec,
}

/// The controls every fake server has; [`FakeBroker`](super::FakeBroker) and
/// [`FakeNameServer`](super::FakeNameServer) dereference to it.
///
/// Cheap to clone; clones control the same server. One task serves the listener and
/// one task each connection. Dropping every handle stops the listener and closes
/// every connection; [`shutdown`](Self::shutdown) does it at once.
#[derive(Clone)]
pub struct FakeServer {
    pub(crate) inner: Arc<ServerInner>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("name", &self.inner.name)
            .field("addr", &self.inner.addr)
            .field("memory", &self.inner.transport.is_memory())
            .finish()
    }
}

impl ServerInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn notify(&self) {
        self.events.notify_waiters();
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.lock().dialect
    }

    pub(crate) fn reset_mid_request(&self) -> Option<usize> {
        self.lock().reset_mid_request
    }

    pub(crate) fn local_addr(&self) -> &str {
        &self.addr
    }

    /// Records a request; returns the ACL verdict to apply.
    pub(crate) fn record(
        &self,
        conn: &ConnCtx,
        command: &RemotingCommand,
        scripted: bool,
    ) -> Option<super::acl::AclVerdict> {
        let mut st = self.lock();
        let acl = st.acl.as_ref().map(|a| a.verify(command));
        let seq = st.next_seq;
        st.next_seq += 1;
        st.requests.push(RecordedRequest {
            seq,
            connection: conn.id,
            peer: conn.peer.clone(),
            at: Instant::now(),
            command: command.clone(),
            acl: acl.clone(),
            scripted,
        });
        drop(st);
        self.notify();
        acl
    }

    pub(crate) fn acl_reject_code(&self) -> ResponseCode {
        self.lock()
            .acl
            .as_ref()
            .map_or(ResponseCode::NO_PERMISSION, |a| a.reject_code)
    }

    pub(crate) fn record_rejected(&self, connection: ConnectionId, reason: String) {
        tracing::debug!(server = %self.name, connection, %reason, "fake server closes a connection");
        self.lock().rejected.push(RejectedFrame {
            connection,
            reason,
            at: Instant::now(),
        });
        self.notify();
    }

    /// Encodes a response to `request`, with the dialect's header type, language and version.
    pub(crate) fn encode_response(
        &self,
        request: &RemotingCommand,
        mut response: RemotingCommand,
    ) -> Option<bytes::Bytes> {
        let dialect = self.dialect();
        response.opaque = request.opaque;
        response.flag = RpcFlags(response.flag.0 | RpcFlags::RESPONSE);
        response.language = dialect.language;
        response.version = dialect.version;
        response.serialize_type = dialect.response_header.for_request(request.serialize_type);
        self.encode(response)
    }

    /// Queues `response` to `request` on connection `id`, for a handler that answered
    /// `None` and finishes its work later (the broker's reply routing). Does nothing
    /// for a one-way request or a closed connection.
    pub(crate) fn respond_later(
        &self,
        id: ConnectionId,
        request: &RemotingCommand,
        response: RemotingCommand,
    ) {
        if request.is_oneway() {
            return;
        }
        let Some(bytes) = self.encode_response(request, response) else {
            return;
        };
        let tx = self.lock().connections.get(&id).map(|c| c.tx.clone());
        if let Some(tx) = tx {
            let _ = tx.send(Outgoing::Bytes {
                bytes,
                shaping: Shaping::default(),
            });
        }
        self.notify();
    }

    fn encode(&self, mut cmd: RemotingCommand) -> Option<bytes::Bytes> {
        let mut buf = bytes::BytesMut::new();
        if self.codec.encode(&cmd, &mut buf).is_err() {
            // The binary header cannot carry every code; JSON can.
            cmd.serialize_type = SerializeType::JSON;
            if let Err(e) = self.codec.encode(&cmd, &mut buf) {
                tracing::warn!(server = %self.name, error = %e, "fake server cannot encode a frame");
                return None;
            }
        }
        Some(buf.freeze())
    }

    pub(crate) fn connection_closed(&self, id: ConnectionId) {
        self.lock().connections.remove(&id);
        self.handler.on_disconnect(id);
        self.notify();
    }

    fn accept_one(self: &Arc<Self>, stream: ServerStream, peer: String) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (kill, kill_rx) = watch::channel(None);
        let pending = Pending::default();
        let mut st = self.lock();
        let id = st.next_connection;
        st.next_connection += 1;
        st.accepted += 1;
        let conn = ConnCtx {
            id,
            peer: peer.clone(),
            tx: tx.clone(),
            pending: pending.clone(),
        };
        let task = tokio::spawn(run_connection(
            Arc::downgrade(self),
            conn,
            stream,
            rx,
            kill_rx,
            self.paused.subscribe(),
        ));
        st.connections.insert(
            id,
            ConnEntry {
                info: ConnectionInfo {
                    id,
                    peer,
                    accepted_at: Instant::now(),
                },
                tx,
                kill,
                task: Some(task),
                pending,
            },
        );
        drop(st);
        self.notify();
    }
}

async fn accept_loop(
    weak: Weak<ServerInner>,
    mut listener: Listener,
    mut stop: oneshot::Receiver<()>,
) -> Option<Listener> {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stop => None,
            a = listener.accept() => Some(a),
        };
        match accepted {
            None => return Some(listener),
            Some(None) => return None,
            Some(Some((stream, peer))) => match weak.upgrade() {
                Some(inner) => inner.accept_one(stream, peer),
                None => return None,
            },
        }
    }
}

fn spawn_accept(inner: &Arc<ServerInner>, listener: Listener) -> ListenState {
    let (stop, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(Arc::downgrade(inner), listener, stop_rx));
    ListenState::Listening { stop, task }
}

impl FakeServer {
    /// Binds and starts serving. `addr`: a fixed memory address, else the first free
    /// `127.0.0.1:<port>` from `base_port` (memory) or an OS-chosen port (TCP).
    pub(crate) fn start(
        name: &str,
        transport: &Transport,
        addr: Option<&str>,
        base_port: u16,
        handler: Arc<dyn Handler>,
        dialect: Dialect,
        events: Option<Arc<Notify>>,
    ) -> io::Result<Self> {
        let (listener, addr) = match (addr, transport) {
            (Some(a), Transport::Memory(_)) => Listener::bind(transport, a)?,
            _ => Listener::bind_any(transport, base_port)?,
        };
        let inner = Arc::new(ServerInner {
            name: name.to_owned(),
            transport: transport.clone(),
            addr,
            handler,
            scripts: Arc::default(),
            state: Mutex::new(State {
                listen: ListenState::Down,
                connections: BTreeMap::new(),
                next_connection: 1,
                accepted: 0,
                requests: Vec::new(),
                next_seq: 0,
                rejected: Vec::new(),
                acl: None,
                dialect,
                next_push_opaque: 1,
                reset_mid_request: None,
            }),
            events: events.unwrap_or_default(),
            paused: watch::channel(false).0,
            codec: FrameCodec::default(),
        });
        let listening = spawn_accept(&inner, listener);
        inner.lock().listen = listening;
        Ok(Self { inner })
    }

    /// The server's name (the broker name, or `"namesrv"`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address clients dial: `127.0.0.1:<port>` (a memory address or a TCP port).
    /// It stays the same across [`down`](Self::down) / [`up`](Self::up).
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The transport the server listens on.
    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    // ----- scripts -----

    /// Starts a script rule for requests with `code`; see [`ScriptBuilder`].
    pub fn script(&self, code: RequestCode) -> ScriptBuilder {
        ScriptBuilder::new(self.inner.scripts.clone(), Some(code))
    }

    /// Starts a script rule for requests with any code.
    pub fn script_all(&self) -> ScriptBuilder {
        ScriptBuilder::new(self.inner.scripts.clone(), None)
    }

    /// Removes every script rule.
    pub fn clear_scripts(&self) {
        self.inner.scripts.clear();
    }

    /// How many script rules are still installed (rules with uses left).
    pub fn scripts_pending(&self) -> usize {
        self.inner.scripts.len()
    }

    // ----- records -----

    /// Every request received since the last [`clear_requests`](Self::clear_requests).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().requests.clone()
    }

    /// The recorded requests with `code`.
    pub fn requests_with_code(&self, code: RequestCode) -> Vec<RecordedRequest> {
        let st = self.inner.lock();
        st.requests
            .iter()
            .filter(|r| r.code() == code)
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests and rejected frames.
    pub fn clear_requests(&self) {
        let mut st = self.inner.lock();
        st.requests.clear();
        st.rejected.clear();
    }

    /// Frames that made the server close a connection without replying.
    pub fn rejected_frames(&self) -> Vec<RejectedFrame> {
        self.inner.lock().rejected.clone()
    }

    /// Waits until `ready(self)` holds, re-checking after every request, connection
    /// change or store change. Bound it with `tokio::time::timeout`.
    pub async fn wait_until(&self, ready: impl FnMut(&Self) -> bool) {
        wait_on(&self.inner.events, self, ready).await;
    }

    /// The notifier woken by this server's events.
    pub(crate) fn events(&self) -> &Arc<Notify> {
        &self.inner.events
    }

    /// Waits until at least `n` requests with `code` were recorded.
    pub async fn wait_for_requests(&self, code: RequestCode, n: usize) {
        self.wait_until(|s| {
            let st = s.inner.lock();
            st.requests.iter().filter(|r| r.code() == code).count() >= n
        })
        .await;
    }

    // ----- connections -----

    /// How many connections were accepted since the start.
    pub fn connections_accepted(&self) -> u64 {
        self.inner.lock().accepted
    }

    /// How many connections are open now.
    pub fn connection_count(&self) -> usize {
        self.inner.lock().connections.len()
    }

    /// The open connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let st = self.inner.lock();
        st.connections.values().map(|c| c.info.clone()).collect()
    }

    /// Closes every open connection with a reset (TCP RST), and waits until they are
    /// closed. The listener keeps accepting.
    pub async fn kill_connections(&self) {
        self.close_connections(None, CloseMode::Reset).await;
    }

    /// Closes one connection (`mode`: FIN or RST) and waits until it is closed.
    pub async fn close_connection(&self, id: ConnectionId, mode: CloseMode) {
        self.close_connections(Some(id), mode).await;
    }

    async fn close_connections(&self, only: Option<ConnectionId>, mode: CloseMode) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut st = self.inner.lock();
            st.connections
                .iter_mut()
                .filter(|(id, _)| only.is_none_or(|o| o == **id))
                .filter_map(|(_, c)| {
                    let _ = c.kill.send(Some(mode));
                    c.task.take()
                })
                .collect()
        };
        for t in tasks {
            let _ = t.await;
        }
    }

    /// While `Some(n)`: a connection is reset (RST) as soon as it holds at least `n`
    /// bytes of a request frame that is not complete yet — the server dies while the
    /// client is still writing a large frame (reliability matrix row C9). The reset is
    /// listed in [`rejected_frames`](Self::rejected_frames). `None` turns it off.
    pub fn set_reset_mid_request(&self, bytes: Option<usize>) {
        self.inner.lock().reset_mid_request = bytes.map(|n| n.max(1));
    }

    /// Stops reading and writing on every connection (like a SIGSTOPped process):
    /// requests queue in the socket, nothing is answered, connections stay open. New
    /// connections are still accepted but not served.
    pub fn pause(&self) {
        self.inner.paused.send_replace(true);
    }

    /// Undoes [`pause`](Self::pause): queued requests are handled.
    pub fn resume(&self) {
        self.inner.paused.send_replace(false);
    }

    // ----- listener lifecycle -----

    /// Whether the listener is bound (accepting or not).
    pub fn is_up(&self) -> bool {
        !matches!(self.inner.lock().listen, ListenState::Down)
    }

    /// New connects never complete: in memory they hang (a black-holed SYN); on TCP the
    /// listener stays bound but nothing is accepted (the kernel may still finish the
    /// handshake, so the client's connect can succeed and then nothing is read).
    /// Open connections are not affected.
    pub async fn never_accept(&self) {
        match &self.inner.transport {
            Transport::Memory(net) => net.set_black_hole(&self.inner.addr, true),
            Transport::Tcp => {
                let old = std::mem::replace(&mut self.inner.lock().listen, ListenState::Down);
                let new = match old {
                    ListenState::Listening { stop, task } => {
                        let _ = stop.send(());
                        match task.await {
                            Ok(Some(l)) => ListenState::Paused(l),
                            _ => ListenState::Down,
                        }
                    }
                    other => other,
                };
                self.inner.lock().listen = new;
            }
        }
    }

    /// Undoes [`never_accept`](Self::never_accept).
    pub async fn accept_again(&self) {
        if let Transport::Memory(net) = &self.inner.transport {
            net.set_black_hole(&self.inner.addr, false);
        }
        let mut st = self.inner.lock();
        if matches!(st.listen, ListenState::Paused(_))
            && let ListenState::Paused(l) = std::mem::replace(&mut st.listen, ListenState::Down)
        {
            st.listen = spawn_accept(&self.inner, l);
        }
    }

    /// Takes the server down: closes the listener (connects are refused) and resets
    /// every connection. Recorded requests, scripts and stored data are kept.
    pub async fn down(&self) {
        if let Transport::Memory(net) = &self.inner.transport {
            net.set_black_hole(&self.inner.addr, false);
        }
        let old = std::mem::replace(&mut self.inner.lock().listen, ListenState::Down);
        match old {
            ListenState::Listening { stop, task } => {
                let _ = stop.send(());
                drop(task.await);
            }
            ListenState::Paused(l) => drop(l),
            ListenState::Down => {}
        }
        self.kill_connections().await;
        self.inner.notify();
    }

    /// Listens again on the same address. Fails if the address was taken meanwhile
    /// (possible on TCP only).
    pub async fn up(&self) -> io::Result<()> {
        if matches!(self.inner.lock().listen, ListenState::Paused(_)) {
            self.accept_again().await;
            return Ok(());
        }
        let (listener, _) = Listener::bind(&self.inner.transport, &self.inner.addr)?;
        let mut st = self.inner.lock();
        if matches!(st.listen, ListenState::Down) {
            st.listen = spawn_accept(&self.inner, listener);
        }
        Ok(())
    }

    /// [`down`](Self::down) then [`up`](Self::up).
    pub async fn restart(&self) -> io::Result<()> {
        self.down().await;
        self.up().await
    }

    /// Stops the server: like [`down`](Self::down).
    pub async fn shutdown(&self) {
        self.down().await;
    }

    // ----- ACL and dialect -----

    /// Requires ACL 1.0 credentials from now on, accepting `access_key` signed with
    /// `secret_key` (call again to add accounts). Requests without a valid
    /// `AccessKey` + `Signature` get NO_PERMISSION (16) unless one-way; the verdict is
    /// in [`RecordedRequest::acl`].
    pub fn require_acl(&self, access_key: impl Into<String>, secret_key: impl Into<String>) {
        let mut st = self.inner.lock();
        st.acl
            .get_or_insert_with(AclConfig::new)
            .accounts
            .insert(access_key.into(), secret_key.into());
    }

    /// The code of ACL rejections (default NO_PERMISSION 16; e.g. USER_NOT_EXIST 3001
    /// to imitate ACL 2.0). Takes effect once ACL is required.
    pub fn set_acl_reject_code(&self, code: ResponseCode) {
        let mut st = self.inner.lock();
        st.acl.get_or_insert_with(AclConfig::new).reject_code = code;
    }

    /// Stops checking credentials.
    pub fn disable_acl(&self) {
        self.inner.lock().acl = None;
    }

    /// The wire dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    /// Changes the wire dialect (takes effect with the next frame).
    pub fn set_dialect(&self, dialect: Dialect) {
        self.inner.lock().dialect = dialect;
    }

    // ----- server-initiated requests -----

    /// Sends a request to the client on connection `id`, as a broker sends
    /// CHECK_TRANSACTION_STATE or PUSH_REPLY_MESSAGE_TO_CLIENT. The opaque, language,
    /// version and header type are filled in. For a one-way request returns
    /// `Ok(None)` once queued; otherwise waits up to `timeout` for the client's response.
    pub async fn send_request(
        &self,
        id: ConnectionId,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<Option<RemotingCommand>, PushError> {
        let dialect = self.dialect();
        request.language = dialect.language;
        request.version = dialect.version;
        request.flag = RpcFlags(request.flag.0 & !RpcFlags::RESPONSE);
        request.serialize_type = match dialect.response_header {
            ResponseHeader::Binary => SerializeType::ROCKETMQ,
            _ => SerializeType::JSON,
        };
        let (tx, pending) = {
            let mut st = self.inner.lock();
            request.opaque = st.next_push_opaque;
            st.next_push_opaque = st.next_push_opaque.wrapping_add(1);
            let conn = st.connections.get(&id).ok_or(PushError::NoConnection)?;
            (conn.tx.clone(), conn.pending.clone())
        };
        let mut buf = bytes::BytesMut::new();
        self.inner
            .codec
            .encode(&request, &mut buf)
            .map_err(|e| PushError::Encode(e.to_string()))?;
        let oneway = request.is_oneway();
        let answer = (!oneway).then(|| pending.register(request.opaque));
        let out = Outgoing::Bytes {
            bytes: buf.freeze(),
            shaping: Shaping::default(),
        };
        tx.send(out).map_err(|_| PushError::Closed)?;
        let Some(answer) = answer else {
            return Ok(None);
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(response)) => Ok(Some(response)),
            Ok(Err(_)) => Err(PushError::Closed),
            Err(_) => {
                pending.forget(request.opaque);
                Err(PushError::Timeout)
            }
        }
    }
}

/// Waits on `events` until `ready(target)` holds.
pub(crate) async fn wait_on<T: ?Sized>(
    events: &Notify,
    target: &T,
    mut ready: impl FnMut(&T) -> bool,
) {
    loop {
        let notified = events.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ready(target) {
            return;
        }
        notified.await;
    }
}
