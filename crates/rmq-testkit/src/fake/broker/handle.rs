//! The broker's request dispatch and its non-send handlers.

use bytes::BytesMut;
use rmq_protocol::header::CommandHeader;
use rmq_protocol::header::create_topic::CreateTopicRequestHeader;
use rmq_protocol::header::end_transaction::{CommitOrRollback, EndTransactionRequestHeader};
use rmq_protocol::header::get_max_offset::GetMaxOffsetRequestHeader;
use rmq_protocol::header::heartbeat::HeartbeatData;
use rmq_protocol::header::pull_message::{PullMessageRequestHeader, PullMessageResponseHeader};
use rmq_protocol::header::unregister_client::UnregisterClientRequestHeader;
use rmq_protocol::message::SysFlag;
use rmq_protocol::message::properties::keys;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use tokio::time::Instant;

use super::{BrokerInner, BrokerState};
use crate::fake::clients::{EndTransactionOutcome, EndTransactionRecord, HeartbeatRecord};
use crate::fake::record::ConnectionId;
use crate::fake::server::{Handler, HandlerCtx};
use crate::fake::store::{Draft, TopicConfig, TransactionState, encode_stored_dialect};

fn ok(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::SUCCESS)
}

fn invalid(request: &RemotingCommand, e: impl std::fmt::Display) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::INVALID_PARAMETER)
        .remark(format!("Request header is invalid: {e}"))
}

impl Handler for BrokerState {
    fn handle(&self, ctx: &HandlerCtx<'_>, request: &RemotingCommand) -> Option<RemotingCommand> {
        let code = request.request_code();
        let response = match code {
            RequestCode::SEND_MESSAGE
            | RequestCode::SEND_MESSAGE_V2
            | RequestCode::SEND_BATCH_MESSAGE => self.handle_send(ctx, request),
            RequestCode::PULL_MESSAGE => self.handle_pull(ctx, request),
            RequestCode::UPDATE_AND_CREATE_TOPIC => self.handle_create_topic(request),
            RequestCode::GET_MAX_OFFSET => {
                match request.decode_header::<GetMaxOffsetRequestHeader>() {
                    Ok(h) => {
                        let offset = self.lock().store.max_offset(&h.topic, h.queue_id);
                        let mut r = ok(request);
                        r.ext_fields.insert("offset", offset.to_string());
                        r
                    }
                    Err(e) => invalid(request, e),
                }
            }
            RequestCode::HEART_BEAT => self.handle_heartbeat(ctx, request),
            RequestCode::UNREGISTER_CLIENT => {
                match request.decode_header::<UnregisterClientRequestHeader>() {
                    Ok(h) => {
                        self.lock()
                            .clients
                            .unregister(&h.client_id, h.producer_group.as_deref());
                        ok(request)
                    }
                    Err(e) => invalid(request, e),
                }
            }
            RequestCode::END_TRANSACTION => self.handle_end_transaction(ctx, request),
            RequestCode::SEND_REPLY_MESSAGE | RequestCode::SEND_REPLY_MESSAGE_V2 => {
                return self.handle_reply(ctx, request);
            }
            _ if request.is_oneway() => return None,
            _ => RemotingCommand::response_to(request, ResponseCode::REQUEST_CODE_NOT_SUPPORTED)
                .remark(format!(" request type {} not supported", request.code)),
        };
        Some(response)
    }

    fn on_disconnect(&self, connection: ConnectionId) {
        self.lock().clients.disconnected(connection);
    }
}

impl BrokerState {
    fn handle_create_topic(&self, request: &RemotingCommand) -> RemotingCommand {
        let h = match CreateTopicRequestHeader::read_from(&request.ext_fields) {
            Ok(h) => h,
            Err(e) => return invalid(request, e),
        };
        let config = TopicConfig {
            read_queue_nums: u32::try_from(h.read_queue_nums).unwrap_or(0),
            write_queue_nums: u32::try_from(h.write_queue_nums).unwrap_or(0),
            perm: h.perm,
            topic_sys_flag: h.topic_sys_flag.unwrap_or(0),
        };
        self.lock().store.topics.insert(h.topic.clone(), config);
        self.register_topics(&[(h.topic, config)]);
        ok(request)
    }

    fn handle_heartbeat(&self, ctx: &HandlerCtx<'_>, request: &RemotingCommand) -> RemotingCommand {
        let data = match HeartbeatData::from_json(request.body_bytes()) {
            Ok(d) => d,
            Err(e) => {
                return RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR)
                    .remark(e.to_string());
            }
        };
        self.lock().clients.heartbeat(HeartbeatRecord {
            connection: ctx.connection,
            client_id: data.client_id,
            producer_groups: data
                .producer_data_set
                .into_iter()
                .map(|p| p.group_name)
                .collect(),
            consumer_groups: data.consumer_data_set.len(),
            language: request.language,
            version: request.version,
            at: Instant::now(),
        });
        let mut r = ok(request);
        r.ext_fields.insert("IS_SUPPORT_HEART_BEAT_V2", "true");
        r.ext_fields.insert("IS_SUB_CHANGE", "true");
        r
    }

    fn handle_pull(&self, ctx: &HandlerCtx<'_>, request: &RemotingCommand) -> RemotingCommand {
        let h = match request.decode_header::<PullMessageRequestHeader>() {
            Ok(h) => h,
            Err(e) => return invalid(request, e),
        };
        let inner = self.lock();
        let max_offset = inner.store.max_offset(&h.topic, h.queue_id);
        let max = usize::try_from(h.max_msg_nums.max(1)).unwrap_or(1);
        let found = inner.store.pull(&h.topic, h.queue_id, h.queue_offset, max);
        let mut body = BytesMut::new();
        for m in &found {
            if let Err(e) = encode_stored_dialect(
                &m.to_message_ext(),
                ctx.dialect.properties_trailing_separator,
                &mut body,
            ) {
                return RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR)
                    .remark(e.to_string());
            }
        }
        let next = found
            .last()
            .map_or(h.queue_offset.clamp(0, max_offset), |m| m.queue_offset + 1);
        let header = PullMessageResponseHeader {
            suggest_which_broker_id: 0,
            next_begin_offset: next,
            min_offset: 0,
            max_offset,
            ..PullMessageResponseHeader::default()
        };
        let mut r = if found.is_empty() {
            RemotingCommand::response_to(request, ResponseCode::PULL_NOT_FOUND)
                .remark("no new message found")
        } else {
            ok(request).body(body.freeze())
        };
        header.write_to(&mut r.ext_fields);
        r
    }

    fn handle_end_transaction(
        &self,
        ctx: &HandlerCtx<'_>,
        request: &RemotingCommand,
    ) -> RemotingCommand {
        let mut inner = self.lock();
        let (header, outcome) = match EndTransactionRequestHeader::read_from(&request.ext_fields) {
            Ok(h) => {
                let outcome = end_transaction(&mut inner, &h);
                (Some(h), outcome)
            }
            Err(e) => (None, EndTransactionOutcome::BadHeader(e.to_string())),
        };
        let response = match &outcome {
            EndTransactionOutcome::Committed
            | EndTransactionOutcome::RolledBack
            | EndTransactionOutcome::Ignored => ok(request),
            other => RemotingCommand::response_to(request, ResponseCode::SYSTEM_ERROR)
                .remark(format!("{other:?}")),
        };
        inner.clients.end_transactions.push(EndTransactionRecord {
            connection: ctx.connection,
            header,
            remark: request.remark.clone(),
            oneway: request.is_oneway(),
            outcome,
            at: Instant::now(),
        });
        response
    }
}

/// Applies END_TRANSACTION to the half message at `h.commit_log_offset`.
fn end_transaction(
    inner: &mut BrokerInner,
    h: &EndTransactionRequestHeader,
) -> EndTransactionOutcome {
    let commit = h.commit_or_rollback == CommitOrRollback::COMMIT;
    if !commit && h.commit_or_rollback != CommitOrRollback::ROLLBACK {
        return EndTransactionOutcome::Ignored;
    }
    let Some(idx) = inner.store.messages.iter().position(|m| {
        m.commit_log_offset == h.commit_log_offset && m.transaction == TransactionState::Prepared
    }) else {
        return EndTransactionOutcome::NotFound;
    };
    let half = &inner.store.messages[idx];
    let group = half.property(keys::PGROUP).unwrap_or(&half.producer_group);
    if group != h.producer_group {
        return EndTransactionOutcome::Mismatch(format!(
            "producer group {group} != {}",
            h.producer_group
        ));
    }
    if half.queue_offset != h.tran_state_table_offset {
        return EndTransactionOutcome::Mismatch(format!(
            "half queue offset {} != tranStateTableOffset {}",
            half.queue_offset, h.tran_state_table_offset
        ));
    }
    if !commit {
        inner.store.messages[idx].transaction = TransactionState::RolledBack;
        return EndTransactionOutcome::RolledBack;
    }
    let half = inner.store.messages[idx].clone();
    let mut properties = half.properties.clone();
    let topic = properties
        .remove(keys::REAL_TOPIC)
        .unwrap_or_else(|| half.topic.clone());
    let queue_id = properties
        .remove(keys::REAL_QID)
        .and_then(|q| q.parse().ok())
        .unwrap_or(half.queue_id);
    let draft = Draft {
        topic,
        queue_id,
        body: half.body.clone(),
        flag: half.flag,
        properties,
        sys_flag: (half.sys_flag & !SysFlag::TRANSACTION_MASK) | SysFlag::TRANSACTION_COMMIT,
        born_timestamp: half.born_timestamp,
        born_host: half.born_host,
        store_host: half.store_host,
        reconsume_times: half.reconsume_times,
        producer_group: half.producer_group.clone(),
        transaction: TransactionState::Normal,
        connection: half.connection,
        from_batch: false,
    };
    if let Err(e) = inner.store.append(draft) {
        return EndTransactionOutcome::Mismatch(format!("cannot store the committed message: {e}"));
    }
    inner.store.messages[idx].transaction = TransactionState::Committed;
    EndTransactionOutcome::Committed
}
