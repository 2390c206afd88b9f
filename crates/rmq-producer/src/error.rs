//! [`SendError`]: an opaque error that answers the questions a caller asks.

use std::fmt;
use std::sync::Arc;

use rmq_protocol::ResponseCode;
use rmq_protocol::message::Message;

/// What went wrong, coarsely. New kinds may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The message (topic, body, properties) is invalid; nothing was sent.
    InvalidMessage,
    /// The topic does not exist and the default-topic fallback is off or found nothing.
    TopicNotFound,
    /// No route could be obtained (name servers unreachable, route has no writable queue).
    NoRoute,
    /// Every broker that could take the message failed (connect errors, transport errors).
    AllBrokersUnavailable,
    /// The in-flight limit is reached (`try_send`), or no room opened before the deadline.
    BufferFull,
    /// The send's deadline passed.
    Timeout,
    /// The broker answered with an error code (see [`SendError::response_code`]).
    Rejected,
    /// The broker's answer could not be understood.
    MalformedResponse,
    /// The producer is closed.
    Shutdown,
    /// A check-forbidden hook vetoed the send.
    HookVeto,
}

/// Whether a failed message may have been stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// The message never left this process (or the broker refused it unread): not
    /// stored. Safe to send again.
    NotSent,
    /// The message was written and no answer came: it may be stored. Sending again
    /// may duplicate it (the duplicate carries the same UNIQ_KEY).
    Indeterminate,
    /// The broker answered and did not store it.
    Rejected,
}

#[derive(Debug)]
struct Inner {
    kind: SendErrorKind,
    delivery: Delivery,
    detail: String,
    response_code: Option<ResponseCode>,
    broker: Option<String>,
    attempts: u32,
    message: Option<Message>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// A send failed.
///
/// Ask it questions: [`kind`](Self::kind), [`delivery`](Self::delivery) (may the
/// message be stored?), [`is_retryable`](Self::is_retryable),
/// [`response_code`](Self::response_code), [`broker`](Self::broker),
/// [`attempts`](Self::attempts); and take your message back with
/// [`into_message`](Self::into_message). The `Display` wording is for humans and
/// may change; do not match on it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let cluster = rmq_testkit::fake::FakeCluster::builder()
/// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
/// #     .topic("TopicTest", 4).build().await?;
/// # let producer = rmq_producer::Producer::builder("doc_group")
/// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
/// use rmq_producer::{Delivery, Message, ResponseCode, SendErrorKind};
/// use rmq_protocol::RequestCode;
/// // The broker rejects the next send as illegal.
/// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::MESSAGE_ILLEGAL).times(1);
/// let err = producer.send(Message::new("TopicTest", "bad")).await.unwrap_err();
/// assert_eq!(err.kind(), SendErrorKind::Rejected);
/// assert_eq!(err.delivery(), Delivery::Rejected);     // answered: not stored
/// assert_eq!(err.response_code(), Some(ResponseCode::MESSAGE_ILLEGAL));
/// assert!(!err.is_retryable());
/// assert!(!err.is_timeout());
/// assert_eq!(err.attempts(), 1);
/// assert_eq!(err.broker(), Some("broker-a"));
/// assert_eq!(err.message().map(|m| m.topic()), Some("TopicTest"));
/// let message = err.into_message().expect("the message comes back");
/// assert_eq!(message.body().as_ref(), b"bad");
/// # Ok(()) }
/// ```
pub struct SendError {
    inner: Box<Inner>,
}

impl SendError {
    pub(crate) fn new(kind: SendErrorKind, delivery: Delivery, detail: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                delivery,
                detail: detail.into(),
                response_code: None,
                broker: None,
                attempts: 0,
                message: None,
                source: None,
            }),
        }
    }

    /// A copy of this error without the message (for each message of a batch).
    pub(crate) fn replicate(&self) -> Self {
        let i = &self.inner;
        Self {
            inner: Box::new(Inner {
                kind: i.kind,
                delivery: i.delivery,
                detail: i.detail.clone(),
                response_code: i.response_code,
                broker: i.broker.clone(),
                attempts: i.attempts,
                message: None,
                source: i.source.clone(),
            }),
        }
    }

    pub(crate) fn into_delivery(mut self, delivery: Delivery) -> Self {
        self.inner.delivery = delivery;
        self
    }

    pub(crate) fn with_code(mut self, code: ResponseCode) -> Self {
        self.inner.response_code = Some(code);
        self
    }

    pub(crate) fn with_broker(mut self, broker: impl Into<String>) -> Self {
        self.inner.broker = Some(broker.into());
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_message(mut self, message: Message) -> Self {
        self.inner.message = Some(message);
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// What went wrong.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, SendErrorKind};
    /// let err = producer.send(Message::new("no spaces in topics", "x")).await.unwrap_err();
    /// assert_eq!(err.kind(), SendErrorKind::InvalidMessage);
    /// # Ok(()) }
    /// ```
    pub fn kind(&self) -> SendErrorKind {
        self.inner.kind
    }

    /// Whether the message may have been stored.
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
    /// use rmq_producer::{Delivery, Message, SendOptions};
    /// use rmq_protocol::RequestCode;
    /// // The broker reads the request and never answers: it may have stored it.
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).black_hole().times(1);
    /// let quick = SendOptions::default().timeout(Duration::from_millis(200)).retries(0);
    /// let err = producer.send_with(Message::new("TopicTest", "x"), quick).await.unwrap_err();
    /// assert_eq!(err.delivery(), Delivery::Indeterminate);
    /// // Invalid before any I/O: never sent.
    /// let err = producer.send(Message::new("TopicTest", "")).await.unwrap_err();
    /// assert_eq!(err.delivery(), Delivery::NotSent);
    /// # Ok(()) }
    /// ```
    pub fn delivery(&self) -> Delivery {
        self.inner.delivery
    }

    /// Whether sending the same message again may succeed: a transient condition
    /// (timeout, unavailable brokers, busy broker, full buffer) rather than a
    /// permanent one (invalid message, permission, shutdown). An `Indeterminate`
    /// failure is retryable but may produce a duplicate with the same UNIQ_KEY.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, ResponseCode, SendOptions};
    /// use rmq_protocol::RequestCode;
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::SYSTEM_BUSY).times(1);
    /// let once = SendOptions::default().retries(0);
    /// let err = producer.send_with(Message::new("TopicTest", "x"), once).await.unwrap_err();
    /// assert!(err.is_retryable()); // busy now, maybe not later
    /// let message = err.into_message().expect("handed back");
    /// producer.send(message).await?;
    /// # Ok(()) }
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self.inner.kind {
            SendErrorKind::Timeout
            | SendErrorKind::AllBrokersUnavailable
            | SendErrorKind::BufferFull
            | SendErrorKind::NoRoute
            | SendErrorKind::MalformedResponse => true,
            SendErrorKind::Rejected => self.inner.response_code.is_some_and(|c| {
                matches!(
                    c,
                    ResponseCode::SYSTEM_ERROR
                        | ResponseCode::SYSTEM_BUSY
                        | ResponseCode::SERVICE_NOT_AVAILABLE
                        | ResponseCode::TOPIC_NOT_EXIST
                        | ResponseCode::GO_AWAY
                        | ResponseCode::FLOW_CONTROL
                )
            }),
            _ => false,
        }
    }

    /// Whether the deadline passed.
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
    /// use rmq_producer::{Message, SendOptions};
    /// use rmq_protocol::RequestCode;
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).black_hole().times(1);
    /// let quick = SendOptions::default().timeout(Duration::from_millis(200)).retries(0);
    /// let err = producer.send_with(Message::new("TopicTest", "x"), quick).await.unwrap_err();
    /// assert!(err.is_timeout());
    /// # Ok(()) }
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == SendErrorKind::Timeout
    }

    /// The broker's response code, when a broker answered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, ResponseCode};
    /// use rmq_protocol::RequestCode;
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::MESSAGE_ILLEGAL).times(1);
    /// let err = producer.send(Message::new("TopicTest", "x")).await.unwrap_err();
    /// assert_eq!(err.response_code(), Some(ResponseCode::MESSAGE_ILLEGAL));
    /// // No broker answered an invalid message.
    /// let err = producer.send(Message::new("TopicTest", "")).await.unwrap_err();
    /// assert_eq!(err.response_code(), None);
    /// # Ok(()) }
    /// ```
    pub fn response_code(&self) -> Option<ResponseCode> {
        self.inner.response_code
    }

    /// The broker (name) of the last attempt, when one was chosen.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, ResponseCode};
    /// use rmq_protocol::RequestCode;
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::MESSAGE_ILLEGAL).times(1);
    /// let err = producer.send(Message::new("TopicTest", "x")).await.unwrap_err();
    /// assert_eq!(err.broker(), Some("broker-a"));
    /// # Ok(()) }
    /// ```
    pub fn broker(&self) -> Option<&str> {
        self.inner.broker.as_deref()
    }

    /// How many attempts were made (0: failed before any I/O).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, ResponseCode, SendOptions};
    /// use rmq_protocol::RequestCode;
    /// // Busy for every attempt: the first and two retries.
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::SYSTEM_BUSY).times(3);
    /// let err = producer.send_with(Message::new("TopicTest", "x"), SendOptions::default().retries(2)).await.unwrap_err();
    /// assert_eq!(err.attempts(), 3);
    /// let err = producer.send(Message::new("TopicTest", "")).await.unwrap_err();
    /// assert_eq!(err.attempts(), 0);
    /// # Ok(()) }
    /// ```
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// The message as the caller passed it (never compressed), when it is available.
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
    /// let big = Message::new("TopicTest", vec![b'x'; 5 << 20]); // over the 4 MiB limit
    /// let err = producer.send(big).await.unwrap_err();
    /// assert_eq!(err.message().map(|m| m.body().len()), Some(5 << 20));
    /// # Ok(()) }
    /// ```
    pub fn message(&self) -> Option<&Message> {
        self.inner.message.as_ref()
    }

    /// Takes the message back, to retry it later or park it elsewhere.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, ResponseCode};
    /// use rmq_protocol::RequestCode;
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::SYSTEM_ERROR).times(3);
    /// let mut parked = Vec::new();
    /// if let Err(err) = producer.send(Message::new("TopicTest", "order 42")).await {
    ///     parked.extend(err.into_message());
    /// }
    /// // Later: the broker is well again.
    /// for message in parked {
    ///     producer.send(message).await?;
    /// }
    /// # assert_eq!(cluster.brokers()[0].message_count_for("TopicTest"), 1);
    /// # Ok(()) }
    /// ```
    pub fn into_message(self) -> Option<Message> {
        self.inner.message
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        write!(
            f,
            "send failed ({:?}, {:?}): {}",
            i.kind, i.delivery, i.detail
        )?;
        if let Some(code) = i.response_code {
            write!(f, "; broker answered {code}")?;
        }
        if let Some(b) = &i.broker {
            write!(f, "; broker {b}")?;
        }
        if i.attempts > 0 {
            write!(f, "; {} attempt(s)", i.attempts)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("SendError")
            .field("kind", &i.kind)
            .field("delivery", &i.delivery)
            .field("detail", &i.detail)
            .field("response_code", &i.response_code)
            .field("broker", &i.broker)
            .field("attempts", &i.attempts)
            .field("message_topic", &i.message.as_ref().map(|m| m.topic()))
            .field("source", &i.source)
            .finish()
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
