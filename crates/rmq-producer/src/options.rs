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
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Options that send to one queue.
    pub fn queue(mut self, queue: MessageQueue) -> Self {
        self.target = Target::Queue(queue);
        self
    }

    /// Options that let a selector pick the queue.
    pub fn selector(mut self, selector: Arc<dyn QueueSelector>, arg: SelectorArg) -> Self {
        self.target = Target::Selector(selector, arg);
        self
    }

    /// Options with a retry count.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }
}
