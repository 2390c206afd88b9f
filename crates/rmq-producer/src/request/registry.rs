//! Pending requests keyed by correlation id, and the handler of
//! PUSH_REPLY_MESSAGE_TO_CLIENT (326) that completes them.
//!
//! The map sits behind a plain mutex that is never held across an `.await`. An entry
//! lives exactly as long as its [`Pending`] guard: it is removed when the reply
//! arrives, when the request times out, and when the request future is dropped. As a
//! second line of defence (a future parked and never polled again), every new
//! request sweeps entries whose deadline passed more than [`SWEEP_GRACE`] ago; their
//! futures then resolve as timed out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmq_protocol::header::push_reply_message::ReplyMessageRequestHeader;
use rmq_protocol::message::properties::{decode_properties, keys};
use rmq_protocol::message::{Message, SysFlag};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::RequestHandler;
use rmq_remoting::invoke::BoxFuture;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::debug;

/// How long after its deadline an abandoned entry may stay before a sweep removes it.
const SWEEP_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Entry {
    tx: oneshot::Sender<Message>,
    deadline: Instant,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<HashMap<String, Entry>>,
    /// Replies whose correlation id matched no pending request (late or foreign).
    unmatched: AtomicU64,
    /// Replies delivered to a waiting request.
    delivered: AtomicU64,
    /// Broker addresses a request already heartbeated (so they can find this client).
    registered: Mutex<HashSet<String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The producer's pending requests. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Requests {
    shared: Arc<Shared>,
}

/// Removes its entry from the map when dropped (reply, timeout, or a dropped future).
#[derive(Debug)]
pub(crate) struct Pending {
    shared: Arc<Shared>,
    correlation_id: String,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.shared.lock().remove(&self.correlation_id);
    }
}

impl Requests {
    /// Registers a request that waits for a reply until `deadline`.
    pub(crate) fn register(
        &self,
        correlation_id: String,
        deadline: Instant,
    ) -> (Pending, oneshot::Receiver<Message>) {
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        {
            let mut map = self.shared.lock();
            map.retain(|_, e| e.deadline + SWEEP_GRACE > now && !e.tx.is_closed());
            map.insert(correlation_id.clone(), Entry { tx, deadline });
        }
        let guard = Pending {
            shared: self.shared.clone(),
            correlation_id,
        };
        (guard, rx)
    }

    /// The addresses among `addrs` no request has heartbeated yet.
    pub(crate) fn unregistered<'a>(&self, addrs: impl Iterator<Item = &'a str>) -> Vec<String> {
        let known = self
            .shared
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        addrs
            .filter(|a| !known.contains(*a))
            .map(str::to_owned)
            .collect()
    }

    /// Remembers that these addresses were heartbeated.
    pub(crate) fn mark_registered(&self, addrs: Vec<String>) {
        self.shared
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(addrs);
    }

    /// How many requests wait for a reply now.
    pub(crate) fn pending(&self) -> usize {
        self.shared.lock().len()
    }

    /// Hands a reply to the request waiting for it; false when none waits.
    fn complete(&self, correlation_id: &str, reply: Message) -> bool {
        let entry = self.shared.lock().remove(correlation_id);
        let delivered = entry.is_some_and(|e| e.tx.send(reply).is_ok());
        let counter = if delivered {
            &self.shared.delivered
        } else {
            &self.shared.unmatched
        };
        counter.fetch_add(1, Ordering::Relaxed);
        delivered
    }

    /// The handler to register on the producer's pool.
    pub(crate) fn handler(&self, max_body: usize) -> Arc<dyn RequestHandler> {
        Arc::new(PushReplyHandler {
            requests: self.clone(),
            max_body,
        })
    }
}

/// Serves PUSH_REPLY_MESSAGE_TO_CLIENT: decodes the reply, completes the request with
/// its `CORRELATION_ID`, and answers SUCCESS (or SYSTEM_ERROR when the push cannot be
/// decoded), as Java's `ClientRemotingProcessor.receiveReplyMessage`.
#[derive(Debug)]
struct PushReplyHandler {
    requests: Requests,
    max_body: usize,
}

const CODES: [RequestCode; 1] = [RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT];

impl RequestHandler for PushReplyHandler {
    fn codes(&self) -> &[RequestCode] {
        &CODES
    }

    fn handle(
        &self,
        addr: String,
        request: RemotingCommand,
    ) -> BoxFuture<'static, Option<RemotingCommand>> {
        let response = match decode_reply(&request, self.max_body) {
            Ok(reply) => {
                let id = reply.correlation_id().unwrap_or_default().to_owned();
                if !self.requests.complete(&id, reply) {
                    debug!(%addr, correlation_id = %id, "reply matches no pending request (late or foreign); dropped");
                }
                RemotingCommand::response_to(&request, ResponseCode::SUCCESS)
            }
            Err(e) => {
                debug!(%addr, error = %e, "cannot decode a pushed reply");
                RemotingCommand::response_to(&request, ResponseCode::SYSTEM_ERROR)
                    .remark("process reply message fail")
            }
        };
        Box::pin(async move { Some(response) })
    }
}

/// The reply message of a PUSH_REPLY_MESSAGE_TO_CLIENT: topic, flag, properties (plus
/// `ARRIVE_TIME`) and the body, decompressed when its sysFlag says so.
fn decode_reply(request: &RemotingCommand, max_body: usize) -> Result<Message, String> {
    let header: ReplyMessageRequestHeader = request.decode_header().map_err(|e| e.to_string())?;
    let mut properties = decode_properties(header.properties.as_deref().unwrap_or(""));
    let flag = SysFlag(header.sys_flag);
    let body = if flag.is_compressed() {
        crate::compress::decompress(flag, request.body_bytes(), max_body)
            .map_err(|e| format!("cannot decompress the reply body: {e}"))?
    } else {
        request.body.clone().unwrap_or_default()
    };
    properties.insert(keys::ARRIVE_TIME, crate::client::now_ms().to_string());
    Ok(Message::from_parts(
        header.topic,
        body,
        header.flag,
        properties,
    ))
}
