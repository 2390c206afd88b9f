//! Per-call options: [`SendOptions`] and where a message goes ([`Target`]).

use std::sync::Arc;
use std::time::Duration;

use rmq_protocol::message::MessageQueue;

use crate::selector::{QueueSelector, SelectorArg};

/// Where a message goes.
#[derive(Clone, Debug, Default)]
pub enum Target {
    /// The producer picks a queue (round robin, avoiding isolated brokers); a retry
    /// goes to another broker.
    #[default]
    Auto,
    /// Exactly this queue; a retry goes to the same queue or the send fails.
    Queue(MessageQueue),
    /// The selector picks the queue from the route's queue list (ordered messages);
    /// a retry goes to the same queue or the send fails.
    Selector(Arc<dyn QueueSelector>, SelectorArg),
}

/// Options of one send. `Default` uses the producer's settings.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let cluster = rmq_testkit::fake::FakeCluster::builder()
/// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
/// #     .topic("TopicTest", 4).build().await?;
/// # let producer = rmq_producer::Producer::builder("doc_group")
/// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rmq_producer::selector::{JavaHashSelector, SelectorArg};
/// use rmq_producer::{Message, MessageQueue, SendOptions};
/// // A tighter deadline and one retry.
/// let quick = SendOptions::default().timeout(Duration::from_millis(800)).retries(1);
/// producer.send_with(Message::new("TopicTest", "quick"), quick).await?;
/// // One exact queue.
/// let pinned = SendOptions::default().queue(MessageQueue::new("TopicTest", "broker-a", 1));
/// assert_eq!(producer.send_with(Message::new("TopicTest", "q1"), pinned).await?.message_queue.queue_id, 1);
/// // The queue a Java producer would pick for this order id.
/// let ordered = SendOptions::default().selector(Arc::new(JavaHashSelector), SelectorArg::from("order-7"));
/// producer.send_with(Message::new("TopicTest", "ordered"), ordered).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    /// The whole send's deadline, from the call to the answer (default: the
    /// producer's `send_timeout`, 3 s).
    pub timeout: Option<Duration>,
    /// Where the message goes.
    pub target: Target,
    /// Retries after the first attempt (default: the producer's `retries`, 2).
    pub retries: Option<u32>,
}

impl SendOptions {
    /// Options with a deadline.
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
    /// // The broker answers in 1 s; this send may wait 300 ms.
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).delay_reply(Duration::from_secs(1)).times(1);
    /// let options = SendOptions::default().timeout(Duration::from_millis(300)).retries(0);
    /// let err = producer.send_with(Message::new("TopicTest", "x"), options).await.unwrap_err();
    /// assert!(err.is_timeout());
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Options that send to one queue.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use rmq_producer::{Message, MessageQueue, SendOptions};
    /// let options = SendOptions::default().queue(MessageQueue::new("TopicTest", "broker-a", 3));
    /// let sent = producer.send_with(Message::new("TopicTest", "x"), options).await?;
    /// assert_eq!(sent.message_queue.queue_id, 3);
    /// # Ok(()) }
    /// ```
    pub fn queue(mut self, queue: MessageQueue) -> Self {
        self.target = Target::Queue(queue);
        self
    }

    /// Options that let a selector pick the queue.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = rmq_testkit::fake::FakeCluster::builder()
    /// #     .transport(rmq_testkit::fake::Transport::Memory(Default::default()))
    /// #     .topic("TopicTest", 4).build().await?;
    /// # let producer = rmq_producer::Producer::builder("doc_group")
    /// #     .namesrv(cluster.name_server_addr()).connector(cluster.connector()).build().await?;
    /// use std::sync::Arc;
    /// use rmq_producer::selector::{JavaHashSelector, SelectorArg};
    /// use rmq_producer::{Message, SendOptions};
    /// // Every event of one order goes to one queue, in order.
    /// let by_order = |id: &str| SendOptions::default().selector(Arc::new(JavaHashSelector), SelectorArg::from(id));
    /// let created = producer.send_with(Message::new("TopicTest", "created"), by_order("order-7")).await?;
    /// let paid = producer.send_with(Message::new("TopicTest", "paid"), by_order("order-7")).await?;
    /// assert_eq!(created.message_queue, paid.message_queue);
    /// # Ok(()) }
    /// ```
    pub fn selector(mut self, selector: Arc<dyn QueueSelector>, arg: SelectorArg) -> Self {
        self.target = Target::Selector(selector, arg);
        self
    }

    /// Options with a retry count.
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
    /// // Busy twice: two retries are enough, none is not.
    /// cluster.brokers()[0].script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::SYSTEM_BUSY).times(2);
    /// let err = producer.send_with(Message::new("TopicTest", "x"), SendOptions::default().retries(0)).await.unwrap_err();
    /// assert_eq!(err.attempts(), 1);
    /// let sent = producer.send_with(err.into_message().unwrap(), SendOptions::default().retries(2)).await?;
    /// # let _ = sent;
    /// # Ok(()) }
    /// ```
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }
}
