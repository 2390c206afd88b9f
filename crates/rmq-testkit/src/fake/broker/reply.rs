//! SEND_REPLY_MESSAGE (324) and SEND_REPLY_MESSAGE_V2 (325): a responder's reply is
//! stored and pushed to the requester with PUSH_REPLY_MESSAGE_TO_CLIENT (326), like
//! Java's `ReplyMessageProcessor`.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rmq_protocol::header::push_reply_message::ReplyMessageRequestHeader;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::header::{CommandHeader, send_message::SendMessageRequestHeader};
use rmq_protocol::message::properties::{decode_properties, encode_properties, keys};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use tokio::time::Instant;

use super::BrokerState;
use super::send::send_header;
use crate::fake::record::ConnectionId;
use crate::fake::server::{FakeServer, HandlerCtx, ServerInner};
use crate::fake::store::{Draft, TransactionState, now_ms};
use crate::fake::transport::store_host;

/// How long the broker waits for the requester to acknowledge a pushed reply
/// (Java's `Broker2Client.callClient`: 3 s).
const PUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// One reply a fake broker routed (or failed to route) to a requester.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyRecord {
    /// The connection the reply came on (the responder's).
    pub from: ConnectionId,
    /// The reply's `CORRELATION_ID`.
    pub correlation_id: Option<String>,
    /// The reply's `REPLY_TO_CLIENT`: the requester's client id.
    pub reply_to: Option<String>,
    /// The requester's connection the reply was pushed to, when one was registered.
    pub pushed_to: Option<ConnectionId>,
    /// `Ok(())` when the requester answered the push with SUCCESS; else why not (the
    /// remark the responder got with SYSTEM_ERROR).
    pub outcome: Result<(), String>,
    /// When the outcome was known.
    pub at: Instant,
}

/// The replies a broker routed, shared with the push tasks.
pub(crate) type Replies = Arc<Mutex<Vec<ReplyRecord>>>;

impl BrokerState {
    /// Stores the reply and pushes it to the requester's connection (registered by its
    /// heartbeats). The responder's answer is written when the push is done: SUCCESS
    /// when the requester acknowledged it, SYSTEM_ERROR otherwise (as Java). Returns
    /// `None` (answered later) unless the header is bad.
    pub(super) fn handle_reply(
        &self,
        ctx: &HandlerCtx<'_>,
        request: &RemotingCommand,
    ) -> Option<RemotingCommand> {
        let header = match send_header(request) {
            Ok(h) => h,
            Err(e) => {
                return Some(
                    RemotingCommand::response_to(request, ResponseCode::INVALID_PARAMETER)
                        .remark(format!("Request header is invalid: {e}")),
                );
            }
        };
        let Some(server) = self.server.get().and_then(Weak::upgrade) else {
            return Some(
                RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR)
                    .remark("broker is shutting down"),
            );
        };
        let mut properties = decode_properties(header.properties.as_deref().unwrap_or(""));
        let correlation_id = properties.get(keys::CORRELATION_ID).map(str::to_owned);
        let reply_to = properties.get(keys::REPLY_TO_CLIENT).map(str::to_owned);
        properties.insert(keys::PUSH_REPLY_TIME, now_ms().to_string());
        let mut encoded = String::new();
        let _ = encode_properties(&properties, &mut encoded);
        let body = request.body.clone().unwrap_or_default();
        let (target, stored) = {
            let mut inner = self.lock();
            let target = reply_to
                .as_deref()
                .and_then(|c| inner.clients.by_client.get(c).copied());
            // Java stores replies by default (`storeReplyMessageEnable`), queue 0.
            let stored = inner
                .store
                .append(self.reply_draft(ctx, &header, body.clone(), properties))
                .ok()
                .map(|i| {
                    let m = &inner.store.messages[i];
                    (m.offset_msg_id.clone(), m.queue_offset)
                });
            (target, stored)
        };
        let push = RemotingCommand::with_header(
            RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT,
            &ReplyMessageRequestHeader {
                producer_group: header.producer_group.clone(),
                topic: header.topic.clone(),
                default_topic: header.default_topic.clone(),
                default_topic_queue_nums: header.default_topic_queue_nums,
                queue_id: header.queue_id,
                sys_flag: header.sys_flag,
                born_timestamp: header.born_timestamp,
                flag: header.flag,
                properties: Some(encoded),
                reconsume_times: header.reconsume_times,
                unit_mode: header.unit_mode,
                born_host: ctx.peer.to_owned(),
                store_host: ctx.local_addr.to_owned(),
                store_timestamp: now_ms(),
            },
        )
        .body(body);
        let replies = self.replies.clone();
        let from = ctx.connection;
        let request = request.clone();
        let queue_id = header.queue_id.max(0);
        tokio::spawn(async move {
            let outcome = match (target, reply_to.as_deref()) {
                (_, None) => Err("reply message properties[REPLY_TO_CLIENT] is null".to_owned()),
                (None, Some(who)) => Err(format!(
                    "push reply message fail, channel of <{who}> not found."
                )),
                (Some(conn), Some(who)) => {
                    let fake = FakeServer {
                        inner: server.clone(),
                    };
                    match fake.send_request(conn, push, PUSH_TIMEOUT).await {
                        Ok(Some(r)) if r.response_code() == ResponseCode::SUCCESS => Ok(()),
                        _ => Err(format!("push reply message to {who}fail.")),
                    }
                }
            };
            let response = reply_response(&request, &outcome, stored, queue_id);
            replies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ReplyRecord {
                    from,
                    correlation_id,
                    reply_to,
                    pushed_to: target,
                    outcome,
                    at: Instant::now(),
                });
            respond(&server, from, &request, response);
        });
        None
    }

    fn reply_draft(
        &self,
        ctx: &HandlerCtx<'_>,
        h: &SendMessageRequestHeader,
        body: bytes::Bytes,
        properties: rmq_protocol::message::Properties,
    ) -> Draft {
        Draft {
            topic: h.topic.clone(),
            queue_id: 0,
            body,
            flag: h.flag,
            properties,
            sys_flag: h.sys_flag,
            born_timestamp: h.born_timestamp,
            born_host: super::born_host(ctx.peer),
            store_host: store_host(ctx.local_addr),
            reconsume_times: h.reconsume_times.unwrap_or(0),
            producer_group: h.producer_group.clone(),
            transaction: TransactionState::Normal,
            connection: ctx.connection,
            from_batch: false,
        }
    }
}

fn reply_response(
    request: &RemotingCommand,
    outcome: &Result<(), String>,
    stored: Option<(String, i64)>,
    queue_id: i32,
) -> RemotingCommand {
    match outcome {
        Ok(()) => {
            let mut r = RemotingCommand::response_to(request, ResponseCode::SUCCESS);
            let (msg_id, queue_offset) = stored.unwrap_or_else(|| ("0".to_owned(), 0));
            SendMessageResponseHeader {
                msg_id: msg_id.into(),
                queue_id,
                queue_offset,
                ..SendMessageResponseHeader::default()
            }
            .write_to(&mut r.ext_fields);
            r
        }
        Err(remark) => {
            RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR).remark(remark.clone())
        }
    }
}

fn respond(
    server: &Arc<ServerInner>,
    conn: ConnectionId,
    request: &RemotingCommand,
    response: RemotingCommand,
) {
    server.respond_later(conn, request, response);
}
