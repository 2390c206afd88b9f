//! One task per accepted connection: reads frames, applies scripts and ACL, runs the
//! handler, writes (shaped) replies and server-initiated requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rmq_protocol::{RemotingCommand, ResponseCode};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::acl::AclVerdict;
use super::record::ConnectionId;
use super::script::{Action, Rule};
use super::server::{HandlerCtx, ServerInner};
use super::transport::{CloseMode, ServerStream};
use super::wire::{AfterWrite, ReadFrame, Shaping, next_frame, write_shaped};

/// Something for the connection task to do, in order.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Write these bytes.
    Bytes { bytes: Bytes, shaping: Shaping },
}

/// Waiters for the client's answers to server-initiated requests, by opaque.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending(Arc<Mutex<PendingMap>>);

type PendingMap = HashMap<i32, oneshot::Sender<RemotingCommand>>;

impl Pending {
    fn lock(&self) -> MutexGuard<'_, PendingMap> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the answer to the server-initiated request `opaque`.
    pub(crate) fn register(&self, opaque: i32) -> oneshot::Receiver<RemotingCommand> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(opaque, tx);
        rx
    }

    /// Stops waiting for `opaque`.
    pub(crate) fn forget(&self, opaque: i32) {
        self.lock().remove(&opaque);
    }
}

/// What the request path knows about its connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnCtx {
    pub(crate) id: ConnectionId,
    pub(crate) peer: String,
    pub(crate) tx: mpsc::UnboundedSender<Outgoing>,
    pub(crate) pending: Pending,
}

/// Whether the connection goes on after a frame.
enum Flow {
    Continue,
    Close(CloseMode),
}

enum Event {
    Kill(Option<CloseMode>),
    Unpaused,
    Out(Option<Outgoing>),
    Read(std::io::Result<usize>),
}

fn kill_value(
    r: Result<(), watch::error::RecvError>,
    kill: &watch::Receiver<Option<CloseMode>>,
) -> Option<CloseMode> {
    match r {
        Ok(()) => *kill.borrow(),
        // The server is gone.
        Err(_) => Some(CloseMode::Graceful),
    }
}

pub(crate) async fn run_connection(
    server: Weak<ServerInner>,
    conn: ConnCtx,
    mut stream: ServerStream,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    mut kill: watch::Receiver<Option<CloseMode>>,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut budget = None;
    let close: Option<CloseMode> = loop {
        if *paused.borrow_and_update() {
            let event = tokio::select! {
                biased;
                r = kill.changed() => Event::Kill(kill_value(r, &kill)),
                r = paused.changed() => match r {
                    Ok(()) => Event::Unpaused,
                    Err(_) => Event::Kill(Some(CloseMode::Graceful)),
                },
            };
            match event {
                Event::Kill(Some(mode)) => break Some(mode),
                _ => continue,
            }
        }
        if let Flow::Close(mode) = process_buffered(&server, &conn, &mut buf) {
            break Some(mode);
        }
        if !buf.is_empty()
            && let Some(s) = server.upgrade()
            && let Some(limit) = s.reset_mid_request()
            && buf.len() >= limit
        {
            s.record_rejected(
                conn.id,
                format!("reset mid-request after {} bytes (scripted)", buf.len()),
            );
            break Some(CloseMode::Reset);
        }
        let event = tokio::select! {
            biased;
            r = kill.changed() => Event::Kill(kill_value(r, &kill)),
            r = paused.changed() => match r {
                Ok(()) => Event::Unpaused,
                Err(_) => Event::Kill(Some(CloseMode::Graceful)),
            },
            out = rx.recv() => Event::Out(out),
            r = stream.read_buf(&mut buf) => Event::Read(r),
        };
        match event {
            Event::Kill(Some(mode)) => break Some(mode),
            Event::Kill(None) | Event::Unpaused | Event::Read(Ok(1..)) => {}
            Event::Out(None) => break Some(CloseMode::Graceful),
            Event::Out(Some(Outgoing::Bytes { bytes, shaping })) => {
                let written = tokio::select! {
                    biased;
                    r = kill.changed() => Err(kill_value(r, &kill)),
                    w = write_shaped(&mut stream, &bytes, shaping, &mut budget) => Ok(w),
                };
                match written {
                    Ok(Ok(AfterWrite::Continue)) | Err(None) => {}
                    Ok(Ok(AfterWrite::Reset)) => break Some(CloseMode::Reset),
                    Ok(Err(_)) => break None,
                    Err(Some(mode)) => break Some(mode),
                }
            }
            // End of stream or a read error: the client went away.
            Event::Read(Ok(0) | Err(_)) => break None,
        }
    };
    match close {
        Some(mode) => stream.close(mode).await,
        None => drop(stream),
    }
    if let Some(server) = server.upgrade() {
        server.connection_closed(conn.id);
    }
}

/// Handles every whole frame in `buf`.
fn process_buffered(server: &Weak<ServerInner>, conn: &ConnCtx, buf: &mut BytesMut) -> Flow {
    loop {
        let Some(server) = server.upgrade() else {
            return Flow::Close(CloseMode::Graceful);
        };
        let strict = server.dialect().strict_json_headers;
        match next_frame(&server.codec, buf, strict) {
            None => return Flow::Continue,
            Some(ReadFrame::Reject(reason)) => {
                server.record_rejected(conn.id, reason);
                return Flow::Close(CloseMode::Graceful);
            }
            Some(ReadFrame::Command(cmd)) => {
                if let Flow::Close(mode) = on_command(&server, conn, cmd) {
                    return Flow::Close(mode);
                }
            }
        }
    }
}

/// Dispatches one command read from the connection.
fn on_command(server: &Arc<ServerInner>, conn: &ConnCtx, cmd: RemotingCommand) -> Flow {
    if cmd.is_response() {
        if let Some(waiter) = conn.pending.lock().remove(&cmd.opaque) {
            let _ = waiter.send(cmd);
        }
        server.notify();
        return Flow::Continue;
    }
    let rule = server.scripts.take(cmd.request_code());
    let acl = server.record(conn, &cmd, rule.is_some());
    let rule = rule.unwrap_or(Rule {
        code: None,
        remaining: None,
        delay: Duration::ZERO,
        reply_delay: Duration::ZERO,
        action: Action::Handle,
        shaping: Shaping::default(),
    });
    match rule.action {
        Action::DropConnection => return Flow::Close(CloseMode::Reset),
        Action::CloseAfterRead => return Flow::Close(CloseMode::Graceful),
        Action::BlackHole => return Flow::Continue,
        Action::Handle | Action::HandleWithCode(_) | Action::Reply(..) | Action::Garbage(_) => {}
    }
    if rule.delay.is_zero() {
        respond(server, conn, &cmd, acl, &rule);
    } else {
        let weak = Arc::downgrade(server);
        let conn = conn.clone();
        tokio::spawn(async move {
            tokio::time::sleep(rule.delay).await;
            if let Some(server) = weak.upgrade() {
                respond(&server, &conn, &cmd, acl, &rule);
            }
        });
    }
    Flow::Continue
}

/// Produces and queues the reply to `cmd` under `rule`.
fn respond(
    server: &Arc<ServerInner>,
    conn: &ConnCtx,
    cmd: &RemotingCommand,
    acl: Option<AclVerdict>,
    rule: &Rule,
) {
    let bytes = match &rule.action {
        Action::Garbage(bytes) => Some(bytes.clone()),
        Action::Reply(code, remark) => reply_bytes(server, cmd, *code, remark.clone()),
        Action::Handle | Action::HandleWithCode(_) => {
            let response = match acl {
                Some(verdict) if !verdict.is_accepted() => Some(
                    RemotingCommand::response_to(cmd, server.acl_reject_code())
                        .remark(verdict.remark()),
                ),
                _ => {
                    let ctx = HandlerCtx {
                        connection: conn.id,
                        peer: &conn.peer,
                        local_addr: server.local_addr(),
                        dialect: server.dialect(),
                    };
                    server.handler.handle(&ctx, cmd)
                }
            };
            server.notify();
            let response = response.map(|mut r| {
                if let Action::HandleWithCode(code) = rule.action {
                    r.code = code.0;
                }
                r
            });
            match response {
                Some(r) if !cmd.is_oneway() => server.encode_response(cmd, r),
                _ => None,
            }
        }
        Action::DropConnection | Action::CloseAfterRead | Action::BlackHole => None,
    };
    let Some(bytes) = bytes else { return };
    let out = Outgoing::Bytes {
        bytes,
        shaping: rule.shaping,
    };
    if rule.reply_delay.is_zero() {
        let _ = conn.tx.send(out);
    } else {
        let tx = conn.tx.clone();
        let d = rule.reply_delay;
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            let _ = tx.send(out);
        });
    }
}

fn reply_bytes(
    server: &ServerInner,
    cmd: &RemotingCommand,
    code: ResponseCode,
    remark: Option<String>,
) -> Option<Bytes> {
    if cmd.is_oneway() {
        return None;
    }
    let mut r = RemotingCommand::response_to(cmd, code);
    r.remark = remark;
    server.encode_response(cmd, r)
}
