//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320).

use bytes::Bytes;
use rmq_protocol::header::CommandHeader;
use rmq_protocol::header::send_message::SendMessageRequestHeader;
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::header::send_response::SendMessageResponseHeader;
use rmq_protocol::message::SysFlag;
use rmq_protocol::message::batch::decode_batch;
use rmq_protocol::message::properties::{decode_properties, keys};
use rmq_protocol::route::perm;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};

use super::{BrokerInner, BrokerState, born_host};
use crate::fake::server::HandlerCtx;
use crate::fake::store::{Draft, HALF_TOPIC, TopicConfig, TransactionState, now_ms};
use crate::fake::transport::store_host;

fn fail(request: &RemotingCommand, code: ResponseCode, remark: String) -> RemotingCommand {
    RemotingCommand::response_to(request, code).remark(remark)
}

/// The send header in its V1 form: 310/320 are decoded as V2 first and fall back to
/// V1, like rocketmq-rust.
pub(super) fn send_header(request: &RemotingCommand) -> Result<SendMessageRequestHeader, String> {
    if request.request_code() != RequestCode::SEND_MESSAGE
        && let Ok(v2) = SendMessageRequestHeaderV2::read_from(&request.ext_fields)
    {
        return Ok(v2.into());
    }
    SendMessageRequestHeader::read_from(&request.ext_fields).map_err(|e| e.to_string())
}

impl BrokerState {
    pub(super) fn handle_send(
        &self,
        ctx: &HandlerCtx<'_>,
        request: &RemotingCommand,
    ) -> RemotingCommand {
        let header = match send_header(request) {
            Ok(h) => h,
            Err(e) => {
                return fail(
                    request,
                    ResponseCode::INVALID_PARAMETER,
                    format!("Request header is invalid: {e}"),
                );
            }
        };
        let mut created = Vec::new();
        let response = {
            let mut inner = self.lock();
            self.send_locked(&mut inner, ctx, request, &header, &mut created)
        };
        if !created.is_empty() {
            self.register_topics(&created);
        }
        response
    }

    fn send_locked(
        &self,
        inner: &mut BrokerInner,
        ctx: &HandlerCtx<'_>,
        request: &RemotingCommand,
        h: &SendMessageRequestHeader,
        created: &mut Vec<(String, TopicConfig)>,
    ) -> RemotingCommand {
        if !inner.settings.writable {
            let remark = format!("the broker[{}] sending message is forbidden", self.name);
            return fail(request, ResponseCode::NO_PERMISSION, remark);
        }
        if h.batch && h.topic.starts_with("%RETRY%") {
            let remark = format!("batch request does not support retry group {}", h.topic);
            return fail(request, ResponseCode::MESSAGE_ILLEGAL, remark);
        }
        let config = match inner.store.topics.get(&h.topic).copied() {
            Some(c) => c,
            None => match auto_create(inner, h) {
                Some(c) => {
                    created.push((h.topic.clone(), c));
                    c
                }
                None => {
                    let remark = format!("topic[{}] not exist, apply first please!", h.topic);
                    return fail(request, ResponseCode::TOPIC_NOT_EXIST, remark);
                }
            },
        };
        if !perm::is_writeable(config.perm) {
            let remark = format!("the topic[{}] sending message is forbidden", h.topic);
            return fail(request, ResponseCode::NO_PERMISSION, remark);
        }
        let queue_id = if h.queue_id < 0 {
            inner.store.pick_queue(config.write_queue_nums)
        } else {
            h.queue_id
        };
        if i64::from(queue_id) >= i64::from(config.write_queue_nums) {
            let remark = format!(
                "request queueId[{queue_id}] is illegal, TopicConfig {config:?}, broker {}",
                self.name
            );
            return fail(request, ResponseCode::SYSTEM_ERROR, remark);
        }
        let body = request.body.clone().unwrap_or_default();
        let max = inner.settings.max_message_size;
        if body.len() > max {
            let remark = format!(
                "message body size {} exceeds the configured maximum {max} bytes",
                body.len()
            );
            return fail(request, ResponseCode::MESSAGE_ILLEGAL, remark);
        }
        let result = if h.batch {
            self.store_batch(inner, ctx, h, queue_id, body)
        } else {
            self.store_single(inner, ctx, h, queue_id, body)
        };
        match result {
            Ok(header) => {
                let mut r = RemotingCommand::response_to(request, ResponseCode::SUCCESS);
                header.write_to(&mut r.ext_fields);
                r
            }
            Err(remark) => fail(request, ResponseCode::MESSAGE_ILLEGAL, remark),
        }
    }

    fn draft(
        &self,
        ctx: &HandlerCtx<'_>,
        h: &SendMessageRequestHeader,
        queue_id: i32,
        body: Bytes,
    ) -> Draft {
        Draft {
            topic: h.topic.clone(),
            queue_id,
            body,
            flag: h.flag,
            properties: decode_properties(h.properties.as_deref().unwrap_or("")),
            sys_flag: h.sys_flag,
            born_timestamp: h.born_timestamp,
            born_host: born_host(ctx.peer),
            store_host: store_host(ctx.local_addr),
            reconsume_times: h.reconsume_times.unwrap_or(0),
            producer_group: h.producer_group.clone(),
            transaction: TransactionState::Normal,
            connection: ctx.connection,
            from_batch: false,
        }
    }

    fn response_header(
        &self,
        inner: &BrokerInner,
        msg_id: String,
        queue_id: i32,
        queue_offset: i64,
    ) -> SendMessageResponseHeader {
        SendMessageResponseHeader {
            msg_id: msg_id.into(),
            queue_id,
            queue_offset,
            region_id: Some(inner.settings.region.as_str().into()),
            trace_on: Some(inner.settings.trace_on.to_string().into()),
            ..SendMessageResponseHeader::default()
        }
    }

    fn store_single(
        &self,
        inner: &mut BrokerInner,
        ctx: &HandlerCtx<'_>,
        h: &SendMessageRequestHeader,
        queue_id: i32,
        body: Bytes,
    ) -> Result<SendMessageResponseHeader, String> {
        let mut d = self.draft(ctx, h, queue_id, body);
        let uniq = match d.properties.get(keys::UNIQ_KEY) {
            Some(k) => k.to_owned(),
            None => {
                let k = self.uniq.next(u64::try_from(now_ms()).unwrap_or(0));
                d.properties.insert(keys::UNIQ_KEY, k.clone());
                k
            }
        };
        for (k, v) in [
            (keys::CLUSTER, self.cluster.clone()),
            (keys::MSG_REGION, inner.settings.region.clone()),
            (keys::TRACE_ON, inner.settings.trace_on.to_string()),
        ] {
            if !d.properties.contains_key(k) {
                d.properties.insert(k, v);
            }
        }
        let prepared = h.sys_flag & SysFlag::TRANSACTION_MASK == SysFlag::TRANSACTION_PREPARED;
        if prepared {
            d.properties.insert(keys::REAL_TOPIC, d.topic.clone());
            d.properties.insert(keys::REAL_QID, queue_id.to_string());
            d.topic = HALF_TOPIC.to_owned();
            d.queue_id = 0;
            d.transaction = TransactionState::Prepared;
        }
        let idx = inner.store.append(d).map_err(|e| e.to_string())?;
        let msg = &inner.store.messages[idx];
        let mut header =
            self.response_header(inner, msg.offset_msg_id.clone(), queue_id, msg.queue_offset);
        header.transaction_id = Some(uniq.into());
        Ok(header)
    }

    fn store_batch(
        &self,
        inner: &mut BrokerInner,
        ctx: &HandlerCtx<'_>,
        h: &SendMessageRequestHeader,
        queue_id: i32,
        body: Bytes,
    ) -> Result<SendMessageResponseHeader, String> {
        let messages = decode_batch(&body).map_err(|e| format!("invalid batch body: {e}"))?;
        if messages.is_empty() {
            return Err("the batch is empty".to_owned());
        }
        let mut ids = Vec::with_capacity(messages.len());
        let mut first_offset = None;
        for m in messages {
            let (_, body, flag, properties) = m.into_parts();
            let mut d = self.draft(ctx, h, queue_id, body);
            d.flag = flag;
            d.properties = properties;
            d.from_batch = true;
            let idx = inner.store.append(d).map_err(|e| e.to_string())?;
            let msg = &inner.store.messages[idx];
            first_offset.get_or_insert(msg.queue_offset);
            ids.push(msg.offset_msg_id.clone());
        }
        let batch_props = decode_properties(h.properties.as_deref().unwrap_or(""));
        let mut header =
            self.response_header(inner, ids.join(","), queue_id, first_offset.unwrap_or(0));
        header.transaction_id = batch_props.get(keys::UNIQ_KEY).map(Into::into);
        Ok(header)
    }
}

/// Creates `h.topic` from the default topic when auto-create is on and the default
/// topic has INHERIT (protocol.md section 8.6).
fn auto_create(inner: &mut BrokerInner, h: &SendMessageRequestHeader) -> Option<TopicConfig> {
    if !inner.settings.auto_create_topics {
        return None;
    }
    let default = inner.store.topics.get(&h.default_topic).copied()?;
    if !perm::is_inherited(default.perm) {
        return None;
    }
    let wanted = u32::try_from(h.default_topic_queue_nums.max(1)).unwrap_or(1);
    let queues = wanted.min(default.write_queue_nums);
    let config = TopicConfig {
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm: default.perm & !perm::INHERIT,
        topic_sys_flag: 0,
    };
    inner.store.topics.insert(h.topic.clone(), config);
    Some(config)
}
