//! `send_batch`: many messages of one topic in as few SEND_BATCH_MESSAGE requests as
//! the size limit allows, with an outcome per message.

use bytes::BytesMut;
use rmq_protocol::message::Message;
use rmq_protocol::message::batch::{ENTRY_OVERHEAD, encode_batch};
use rmq_protocol::message::properties::encoded_properties_len;
use rmq_protocol::message::send_result::SendResult;
use rmq_protocol::{FieldValue, RequestCode};
use tokio::time::Instant;

use crate::error::{Delivery, SendError, SendErrorKind};
use crate::kernel::{Attempts, Mode, Prepared};
use crate::options::Target;
use crate::producer::{Inner, Producer};

/// Batch-level properties. Only `WAIT`: a batch-level UNIQ_KEY would be appended to
/// every stored message by 4.9.x and rocketmq-rust brokers and hide their own keys.
const BATCH_PROPERTIES: &str = "WAIT\u{1}true\u{2}";

/// Messages of one request, with their positions in the caller's list.
#[derive(Default)]
struct Chunk {
    indices: Vec<usize>,
    messages: Vec<Message>,
}

impl Producer {
    /// Sends messages of one topic as batches: every message is validated on its own
    /// (an invalid one fails alone, before any I/O), the rest are split into requests
    /// no larger than `max_message_size`, each sent with the usual retries. Returns one
    /// outcome per message, in input order. Batches are never compressed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::Message;
    /// let messages = (0..3).map(|i| Message::new("TopicTest", format!("m{i}"))).collect();
    /// for outcome in producer.send_batch(messages).await {
    ///     println!("{}", outcome?.msg_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn send_batch(&self, messages: Vec<Message>) -> Vec<Result<SendResult, SendError>> {
        self.inner.send_batch(messages).await
    }
}

impl Inner {
    fn batch_check(&self, first_topic: &str, m: &Message) -> Result<(), SendError> {
        let invalid =
            |why: String| SendError::new(SendErrorKind::InvalidMessage, Delivery::NotSent, why);
        if m.topic() != first_topic {
            return Err(invalid(format!(
                "batch mixes topics {first_topic} and {}",
                m.topic()
            )));
        }
        if m.topic().starts_with("%RETRY%") {
            return Err(invalid("a batch cannot go to a %RETRY% topic".to_owned()));
        }
        if m.delay_level() > 0 {
            return Err(invalid(
                "delay levels are not supported in batches".to_owned(),
            ));
        }
        self.check(m)
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Vec<Result<SendResult, SendError>> {
        let started = Instant::now();
        let deadline = started + self.config.send_timeout;
        let n = messages.len();
        let mut results: Vec<Option<Result<SendResult, SendError>>> =
            (0..n).map(|_| None).collect();
        let Some(first_topic) = messages.first().map(|m| m.topic().to_owned()) else {
            return Vec::new();
        };
        // Validate and stamp each message; group the good ones into chunks.
        let mut chunks: Vec<Chunk> = vec![Chunk::default()];
        let mut chunk_bytes = 0usize;
        for (i, mut m) in messages.into_iter().enumerate() {
            let checked = self
                .batch_check(&first_topic, &m)
                .and_then(|()| self.stamp(&mut m).map(|_| ()));
            if let Err(e) = checked {
                self.stats.record_failure(e.kind());
                results[i] = Some(Err(e.with_message(m)));
                continue;
            }
            let size = ENTRY_OVERHEAD + m.body().len() + encoded_properties_len(m.properties());
            if chunk_bytes + size > self.config.max_message_size
                && chunks.last().is_some_and(|c| !c.messages.is_empty())
            {
                chunks.push(Chunk::default());
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            if let Some(chunk) = chunks.last_mut() {
                chunk.indices.push(i);
                chunk.messages.push(m);
            }
        }
        for chunk in chunks.into_iter().filter(|c| !c.messages.is_empty()) {
            match self.send_chunk(&chunk.messages, deadline).await {
                Ok(per_message) => {
                    for (i, r) in chunk.indices.iter().zip(per_message) {
                        self.stats.record_ok(started.elapsed());
                        results[*i] = Some(Ok(r));
                    }
                }
                Err(e) => {
                    for (i, m) in chunk.indices.into_iter().zip(chunk.messages) {
                        self.stats.record_failure(e.kind());
                        results[i] = Some(Err(e.replicate().with_message(m)));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(SendError::new(
                        SendErrorKind::InvalidMessage,
                        Delivery::NotSent,
                        "message was not processed",
                    ))
                })
            })
            .collect()
    }

    async fn send_chunk(
        &self,
        messages: &[Message],
        deadline: Instant,
    ) -> Result<Vec<SendResult>, SendError> {
        self.send_chunk_to(
            messages,
            &Target::Auto,
            Mode::Auto,
            self.config.retries,
            deadline,
        )
        .await
    }

    /// One SEND_BATCH_MESSAGE of `messages` (validated, stamped, within the size
    /// limit) through the retry engine, split into one result per message. The
    /// auto-batch accumulator sends its batches through here too.
    pub(crate) async fn send_chunk_to(
        &self,
        messages: &[Message],
        target: &Target,
        mode: Mode,
        retries: u32,
        deadline: Instant,
    ) -> Result<Vec<SendResult>, SendError> {
        // Sized up front: growing it entry by entry re-copied the batch ~log2(n) times.
        let mut body = BytesMut::with_capacity(
            messages
                .iter()
                .map(|m| ENTRY_OVERHEAD + m.body().len() + encoded_properties_len(m.properties()))
                .sum(),
        );
        encode_batch(messages, &mut body).map_err(|e| {
            SendError::new(
                SendErrorKind::InvalidMessage,
                Delivery::NotSent,
                e.to_string(),
            )
        })?;
        let _permit = self.admit(body.len(), deadline, true).await?;
        let topic = messages
            .first()
            .map(|m| FieldValue::from(m.topic()))
            .unwrap_or_default();
        // Inline values: no allocation per message for the ids.
        let ids: Vec<FieldValue> = messages
            .iter()
            .map(|m| FieldValue::from(m.uniq_key().unwrap_or_default()))
            .collect();
        let mut joined = String::with_capacity(ids.iter().map(|id| id.len() + 1).sum());
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                joined.push(',');
            }
            joined.push_str(id);
        }
        let prepared = Prepared {
            wire_topic: self.wire_topic(&topic),
            topic,
            body: body.freeze(),
            sys_flag: 0,
            flag: 0,
            properties: BATCH_PROPERTIES.into(),
            code: RequestCode::SEND_BATCH_MESSAGE,
            batch: true,
            msg_id: joined.into(),
        };
        let delivered = self
            .deliver(
                &prepared,
                None,
                target,
                mode,
                retries,
                deadline,
                Attempts::default(),
            )
            .await?;
        let r = delivered.result;
        let offsets: Vec<&str> = r.offset_msg_id.split(',').collect();
        Ok(ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| SendResult {
                status: r.status,
                msg_id: id,
                offset_msg_id: offsets.get(i).copied().unwrap_or_default().into(),
                message_queue: r.message_queue.clone(),
                queue_offset: r.queue_offset + i64::try_from(i).unwrap_or(0),
                transaction_id: None,
                region_id: r.region_id.clone(),
                trace_on: r.trace_on,
                recall_handle: None,
            })
            .collect())
    }
}
