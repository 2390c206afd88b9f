//! Request-reply: [`Producer::request`] sends a message and waits for the reply a
//! responder sends back through the broker (Java `DefaultMQProducer.request`).
//!
//! How it works (protocol.md section 12.3):
//! 1. The request gets `CORRELATION_ID` (a fresh unique id), `REPLY_TO_CLIENT` (this
//!    producer's client id) and `TTL` (the timeout in ms).
//! 2. Before the first request to a broker, the producer sends a heartbeat to every
//!    known broker at once, so the brokers can find this client by its id.
//! 3. The request is sent like any message (same retries, deadline, namespace,
//!    hooks), then the call waits for the reply until the deadline.
//! 4. The responder (a consumer, in Java) builds the reply with
//!    [`create_reply_message`] and sends it; a message with `MSG_TYPE=reply` goes out
//!    as SEND_REPLY_MESSAGE_V2 (325). The broker that receives it pushes it to the
//!    requester's connection with PUSH_REPLY_MESSAGE_TO_CLIENT (326); this producer
//!    completes the waiting request by its correlation id and answers SUCCESS.
//!
//! A pending request is removed from the producer's table when its reply arrives,
//! when it times out and when its future is dropped ([`ProducerStats::pending_requests`]
//! counts them); a reply that arrives later is answered SUCCESS and dropped.
//!
//! [`ProducerStats::pending_requests`]: crate::ProducerStats::pending_requests

mod registry;
mod reply;

use std::time::Duration;

use rmq_protocol::message::Message;
use rmq_protocol::message::properties::keys;
use rmq_protocol::message::send_result::SendResult;
use tokio::time::Instant;

pub(crate) use registry::Requests;
pub(crate) use reply::is_reply;
pub use reply::{REPLY_TOPIC_SUFFIX, ReplyError, create_reply_message, reply_topic};

use crate::error::{Delivery, SendError, SendErrorKind};
use crate::kernel::Mode;
use crate::options::{SendOptions, Target};
use crate::producer::{Inner, Producer};

/// A request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The request message was not sent, or its send failed: see the [`SendError`]
    /// ([`delivery`](SendError::delivery) says whether it may be stored;
    /// [`into_message`](SendError::into_message) hands it back).
    #[error("the request was not delivered: {0}")]
    Send(#[source] SendError),
    /// The request was stored but no reply arrived before the deadline (Java's
    /// `RequestTimeoutException`). The responder may still process the request.
    #[error(
        "no reply to request {correlation_id} within {timeout:?} (request stored as {} in {})",
        sent.msg_id, sent.message_queue
    )]
    Timeout {
        /// The request's `CORRELATION_ID`.
        correlation_id: String,
        /// The request's whole timeout.
        timeout: Duration,
        /// Where the request was stored.
        sent: Box<SendResult>,
    },
    /// The producer was closed while the request waited for its reply.
    #[error("the producer was closed while request {correlation_id} waited for its reply")]
    Shutdown {
        /// The request's `CORRELATION_ID`.
        correlation_id: String,
    },
}

impl RequestError {
    /// Whether the request timed out: no reply (or no send answer) before the deadline.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use std::time::Duration;
    /// use rmq_producer::Message;
    /// // Stored, but nobody answers.
    /// let err = producer.request(Message::new("TopicTest", "anyone?"), Duration::from_millis(200)).await.unwrap_err();
    /// assert!(err.is_timeout());
    /// # Ok(()) }
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Send(e) => e.is_timeout(),
            Self::Timeout { .. } => true,
            Self::Shutdown { .. } => false,
        }
    }

    /// Whether asking again may succeed. A timed-out request was stored, so asking
    /// again may make the responder process it twice.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use std::time::Duration;
    /// use rmq_producer::Message;
    /// let err = producer.request(Message::new("TopicTest", "anyone?"), Duration::from_millis(200)).await.unwrap_err();
    /// assert!(err.is_retryable()); // but the first request was stored: make it idempotent
    /// // An invalid request fails for good.
    /// let err = producer.request(Message::new("TopicTest", ""), Duration::from_secs(1)).await.unwrap_err();
    /// assert!(!err.is_retryable());
    /// # Ok(()) }
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Send(e) => e.is_retryable(),
            Self::Timeout { .. } => true,
            Self::Shutdown { .. } => false,
        }
    }

    /// The send error, when the request was not delivered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use std::time::Duration;
    /// use rmq_producer::{Delivery, Message};
    /// let err = producer.request(Message::new("TopicTest", ""), Duration::from_secs(1)).await.unwrap_err();
    /// let send = err.send_error().expect("not delivered");
    /// assert_eq!(send.delivery(), Delivery::NotSent);
    /// // A request that was stored and timed out has no send error.
    /// let err = producer.request(Message::new("TopicTest", "anyone?"), Duration::from_millis(200)).await.unwrap_err();
    /// assert!(err.send_error().is_none());
    /// # Ok(()) }
    /// ```
    pub fn send_error(&self) -> Option<&SendError> {
        match self {
            Self::Send(e) => Some(e),
            _ => None,
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> RequestError {
    RequestError::Send(SendError::new(
        SendErrorKind::InvalidMessage,
        Delivery::NotSent,
        e.to_string(),
    ))
}

impl Inner {
    /// Java's `prepareSendRequest`: before a request to a topic whose brokers this
    /// producer has not yet heartbeated from a request, fetch the route and heartbeat
    /// every known broker at once, so that a reply can find this client (the periodic
    /// heartbeat may not have run yet). Errors are left to the send, which reports them.
    async fn prepare_request(&self, topic: &str, deadline: Instant) {
        let wire_topic = self.wire_topic(topic);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(info) = self.routes.get(&wire_topic, remaining).await else {
            return;
        };
        let missing = self
            .requests
            .unregistered(info.brokers().map(|(_, addr)| addr));
        if missing.is_empty() {
            return;
        }
        if tokio::time::timeout_at(deadline, self.heartbeat_all())
            .await
            .is_ok()
        {
            self.requests.mark_registered(missing);
        }
    }
}

impl Producer {
    /// Sends `message` as a request and waits up to `timeout` (send included) for the
    /// reply, which is returned as a [`Message`] (topic, body decompressed, properties
    /// with `CORRELATION_ID` and `ARRIVE_TIME`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).topic("DefaultCluster_REPLY_TOPIC", 1).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// # let responder = rmq_producer::Producer::builder("responder_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// # let broker = cluster.brokers()[0].clone();
    /// # tokio::spawn(async move {
    /// #     broker.wait_until(|b| b.message_count_for("TopicTest") > 0).await;
    /// #     let s = broker.messages_for("TopicTest").remove(0);
    /// #     let request = rmq_producer::Message::from_parts(s.topic, s.body, s.flag, s.properties);
    /// #     let reply = rmq_producer::request::create_reply_message(&request, "pong").unwrap();
    /// #     responder.send(reply).await.unwrap();
    /// # });
    /// use std::time::Duration;
    /// use rmq_producer::Message;
    /// // A responder elsewhere answers "pong" (see `request::create_reply_message`).
    /// let reply = producer.request(Message::new("TopicTest", "ping"), Duration::from_secs(3)).await?;
    /// assert_eq!(reply.body().as_ref(), b"pong");
    /// assert_eq!(producer.stats().pending_requests, 0);
    /// # Ok(()) }
    /// ```
    pub async fn request(
        &self,
        message: Message,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        self.request_with(message, SendOptions::default().timeout(timeout))
            .await
    }

    /// [`request`](Self::request) with per-call options: `options.timeout` is the whole
    /// request's timeout (default: the producer's `send_timeout`), and the target may
    /// be a queue or a selector, as for [`send_with`](Self::send_with).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use std::time::Duration;
    /// use rmq_producer::request::RequestError;
    /// use rmq_producer::{Message, MessageQueue, SendOptions};
    /// // Nobody answers: the request is stored in queue 1, then times out.
    /// let options = SendOptions::default()
    ///     .timeout(Duration::from_millis(300))
    ///     .queue(MessageQueue::new("TopicTest", "broker-a", 1));
    /// let err = producer.request_with(Message::new("TopicTest", "anyone?"), options).await.unwrap_err();
    /// match &err {
    ///     RequestError::Timeout { sent, .. } => assert_eq!(sent.message_queue.queue_id, 1),
    ///     other => panic!("unexpected {other}"),
    /// }
    /// assert!(err.is_timeout());
    /// assert_eq!(producer.stats().pending_requests, 0);
    /// # Ok(()) }
    /// ```
    pub async fn request_with(
        &self,
        mut message: Message,
        options: SendOptions,
    ) -> Result<Message, RequestError> {
        let inner = &self.inner;
        let timeout = options.timeout.unwrap_or(inner.config.send_timeout);
        let deadline = Instant::now() + timeout;
        if is_reply(&message) {
            return Err(invalid(
                "a reply message (MSG_TYPE=reply) cannot be sent as a request; send it with `send`",
            ));
        }
        let correlation_id = inner.ids.next(crate::client::now_ms());
        let ttl = timeout.as_millis().to_string();
        for (key, value) in [
            (keys::CORRELATION_ID, correlation_id.as_str()),
            (keys::REPLY_TO_CLIENT, inner.identity.client_id.as_str()),
            (keys::TTL, ttl.as_str()),
        ] {
            message.put_system_property(key, value).map_err(invalid)?;
        }
        inner.prepare_request(message.topic(), deadline).await;
        // Registered before the send: a fast reply may arrive before the send's answer.
        let (pending, reply) = inner.requests.register(correlation_id.clone(), deadline);
        let mode = match options.target {
            Target::Auto => Mode::Auto,
            _ => Mode::Pinned,
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let sent = inner
            .send_one(message, options.timeout(remaining), mode, true)
            .await
            .map_err(RequestError::Send)?;
        let mut stop = inner.stop.subscribe();
        let outcome = tokio::select! {
            // biased: a fixed polling order keeps seeded runs reproducible
            biased;
            r = tokio::time::timeout_at(deadline, reply) => r,
            _ = stop.wait_for(|s| *s) => {
                return Err(RequestError::Shutdown { correlation_id });
            }
        };
        drop(pending);
        match outcome {
            Ok(Ok(message)) => Ok(message),
            // Timed out, or swept as expired (the sender side was dropped).
            Ok(Err(_)) | Err(_) => Err(RequestError::Timeout {
                correlation_id,
                timeout,
                sent: Box::new(sent),
            }),
        }
    }
}
