//! [`TopicPublishInfo`]: the queues a producer may send a topic's messages to,
//! built from a route exactly as Java's `topicRouteData2TopicPublishInfo`.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use rmq_protocol::message::MessageQueue;
use rmq_protocol::route::{RouteLimits, TopicRouteData};

use crate::error::RouteError;

/// The mask applied to the round-robin counter (`ThreadLocalIndex.POSITIVE_MASK`).
pub const INDEX_MASK: u32 = 0x7FFF_FFFF;

/// Compares two strings like Java's `String.compareTo`: by UTF-16 code units.
///
/// Differs from Rust's `str` order only for text mixing characters above U+FFFF
/// with characters in U+E000..=U+FFFF; broker names are normally ASCII.
pub(crate) fn java_string_cmp(a: &str, b: &str) -> CmpOrdering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `route` in a canonical form: queue and broker data sorted by broker name
/// (stable, Java order), warnings dropped. Two routes that differ only in the
/// order the name server listed them normalize to equal values (Java's
/// `topicRouteDataChanged` compares sorted clones the same way).
pub(crate) fn normalize_route(route: &TopicRouteData) -> TopicRouteData {
    let mut route = route.clone();
    route.warnings.clear();
    route
        .queue_datas
        .sort_by(|a, b| java_string_cmp(&a.broker_name, &b.broker_name));
    route
        .broker_datas
        .sort_by(|a, b| java_string_cmp(&a.broker_name, &b.broker_name));
    route
}

/// A topic's publish queues, in Java's order, plus the master address of every
/// broker of the route and a round-robin counter.
///
/// Built by [`from_route`](Self::from_route) as Java's
/// `MQClientInstance.topicRouteData2TopicPublishInfo` (protocol.md section 8.5):
///
/// 1. a non-empty `orderTopicConf` (`"brokerA:4;brokerB:8"`) gives queues
///    `(topic, broker, 0..n)` per item, in its order, with no permission or master
///    check ([`is_order_topic`](Self::is_order_topic));
/// 2. otherwise `queueDatas` are sorted by broker name (Java `String.compareTo`,
///    stable), entries without [`perm::WRITE`](rmq_protocol::route::perm::WRITE) are
///    skipped, and so are brokers missing from `brokerDatas` or without a master
///    (id 0); each remaining entry adds queues `0..writeQueueNums`.
///
/// So the queue list (and therefore a Java-compatible hash selector's choice,
/// protocol.md section 16) is the one a Java producer sees for the same route, in
/// whatever order the name server listed the brokers. Static topics
/// (`topicQueueMappingByBroker`) are not parsed by `rmq-protocol` and take path 2.
///
/// A built info always has at least one queue.
///
/// ```
/// use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
/// use rmq_route::TopicPublishInfo;
///
/// let route = TopicRouteData {
///     queue_datas: vec![QueueData::new("broker-b", 2, 2, 6), QueueData::new("broker-a", 2, 2, 6)],
///     broker_datas: vec![
///         BrokerData::new("c", "broker-a").with_addr(0, "10.0.0.1:10911"),
///         BrokerData::new("c", "broker-b").with_addr(0, "10.0.0.2:10911"),
///     ],
///     ..TopicRouteData::default()
/// };
/// let info = TopicPublishInfo::from_route("T", &route)?;
/// let queues: Vec<String> = info.queues().iter().map(|q| q.to_string()).collect();
/// assert_eq!(queues, ["T@broker-a:0", "T@broker-a:1", "T@broker-b:0", "T@broker-b:1"]);
/// assert_eq!(info.broker_addr("broker-b"), Some("10.0.0.2:10911"));
/// # Ok::<(), rmq_route::RouteError>(())
/// ```
pub struct TopicPublishInfo {
    topic: String,
    order_topic: bool,
    from_default_topic: bool,
    queues: Vec<MessageQueue>,
    /// Broker name → master address, for every broker of the route with a master.
    brokers: BTreeMap<String, String>,
    /// The route this was built from, normalized (after the default-topic cap).
    route: TopicRouteData,
    index: AtomicU32,
}

impl fmt::Debug for TopicPublishInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicPublishInfo")
            .field("topic", &self.topic)
            .field("order_topic", &self.order_topic)
            .field("from_default_topic", &self.from_default_topic)
            .field("queues", &self.queues.len())
            .field("brokers", &self.brokers)
            .field("index", &self.index.load(Ordering::Relaxed))
            .finish()
    }
}

impl TopicPublishInfo {
    /// Builds the publish info of `topic` from its route (see the type's
    /// documentation for the rules). The round-robin counter starts at a random
    /// value.
    ///
    /// # Errors
    ///
    /// * [`RouteError::InvalidOrderTopicConf`] when `orderTopicConf` has an item
    ///   that is not `name:count`;
    /// * [`RouteError::NoWritableQueue`] when no queue data is writable with at
    ///   least one write queue (an empty route, a read-only topic);
    /// * [`RouteError::NoMaster`] when writable queue data exists but none of its
    ///   brokers has a master in `brokerDatas`.
    pub fn from_route(topic: &str, route: &TopicRouteData) -> Result<Self, RouteError> {
        Self::build(topic, normalize_route(route), false)
    }

    /// Builds `topic`'s publish info from the route of the **default topic**
    /// (`TBW102`) when the name server does not know `topic` yet (Java's
    /// `tryToFindTopicPublishInfo` fallback, protocol.md section 8.6): every queue
    /// data's read and write queue counts become
    /// `min(default_topic_queue_nums, readQueueNums)` (Java's
    /// `defaultTopicQueueNums`, 4), then the rules of
    /// [`from_route`](Self::from_route) apply. The broker creates the topic on the
    /// first send if its default topic allows it.
    ///
    /// # Errors
    ///
    /// As [`from_route`](Self::from_route).
    pub fn from_default_topic_route(
        topic: &str,
        default_route: &TopicRouteData,
        default_topic_queue_nums: u32,
    ) -> Result<Self, RouteError> {
        let mut route = normalize_route(default_route);
        for qd in &mut route.queue_datas {
            let n = default_topic_queue_nums.min(qd.read_queue_nums);
            qd.read_queue_nums = n;
            qd.write_queue_nums = n;
        }
        Self::build(topic, route, true)
    }

    fn build(
        topic: &str,
        route: TopicRouteData,
        from_default_topic: bool,
    ) -> Result<Self, RouteError> {
        let mut brokers = BTreeMap::new();
        for bd in &route.broker_datas {
            if let Some(addr) = bd.master_addr() {
                // The first entry of a repeated broker name wins, as for the queues.
                brokers
                    .entry(bd.broker_name.clone())
                    .or_insert_with(|| addr.to_owned());
            }
        }
        let (queues, order_topic) = match route.order_topic_conf.as_deref() {
            Some(conf) if !conf.is_empty() => (order_topic_queues(topic, conf)?, true),
            _ => (write_queues(topic, &route)?, false),
        };
        if queues.is_empty() {
            return Err(RouteError::NoWritableQueue {
                topic: topic.to_owned(),
            });
        }
        Ok(Self {
            topic: topic.to_owned(),
            order_topic,
            from_default_topic,
            queues,
            brokers,
            route,
            index: AtomicU32::new(crate::random_u64() as u32),
        })
    }

    /// The topic the queues belong to (the wire name, with any namespace).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The publish queues, in Java's order; never empty.
    pub fn queues(&self) -> &[MessageQueue] {
        &self.queues
    }

    /// Whether the queues come from the name server's `orderTopicConf`.
    pub fn is_order_topic(&self) -> bool {
        self.order_topic
    }

    /// Whether this info was borrowed from the default topic's route
    /// ([`from_default_topic_route`](Self::from_default_topic_route)): the topic
    /// did not exist on the name server when it was built.
    pub fn is_from_default_topic(&self) -> bool {
        self.from_default_topic
    }

    /// The master address of `broker_name` (Java's `findBrokerAddressInPublish`):
    /// sends go only to masters.
    pub fn broker_addr(&self, broker_name: &str) -> Option<&str> {
        self.brokers.get(broker_name).map(String::as_str)
    }

    /// Every broker of the route that has a master, as `(broker name, master
    /// address)`, sorted by name. Includes brokers without writable queues.
    pub fn brokers(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.brokers
            .iter()
            .map(|(name, addr)| (name.as_str(), addr.as_str()))
    }

    /// The write queue count the route gives `broker_name` (after the default-topic
    /// cap), if it lists the broker (the first entry when it is listed twice).
    pub fn write_queue_nums(&self, broker_name: &str) -> Option<u32> {
        self.route
            .queue_datas
            .iter()
            .find(|q| q.broker_name == broker_name)
            .map(|q| q.write_queue_nums)
    }

    /// The route this info was built from, normalized: queue and broker data sorted
    /// by broker name, no warnings, default-topic caps applied.
    pub fn route(&self) -> &TopicRouteData {
        &self.route
    }

    /// Advances the round-robin counter and returns its new value masked to 31 bits
    /// (Java's `sendWhichQueue.incrementAndGet()`: `(++i) & 0x7FFFFFFF`). The counter
    /// wraps around silently; the result is never negative as a Java `int`.
    pub fn next_index(&self) -> u32 {
        self.index.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & INDEX_MASK
    }

    /// The plain round-robin pick: `queues[next_index() % len]`. Always `Some` for
    /// an info built by this crate.
    pub fn next_queue(&self) -> Option<&MessageQueue> {
        let len = self.queues.len();
        if len == 0 {
            return None;
        }
        self.queues.get(self.next_index() as usize % len)
    }

    /// The counter's current raw value (not masked).
    pub fn current_index(&self) -> u32 {
        self.index.load(Ordering::Relaxed)
    }

    /// Sets the counter's raw value; the next [`next_index`](Self::next_index)
    /// returns `(value + 1) & 0x7FFF_FFFF`. The route cache carries the counter over
    /// when a topic's route changes, so round-robin continues where it was.
    pub fn reset_index(&self, value: u32) {
        self.index.store(value, Ordering::Relaxed);
    }

    /// Sets the counter to a random value (Java 5.x `resetIndex` before a retry
    /// with latency fault tolerance on).
    pub fn reset_index_random(&self) {
        self.reset_index(crate::random_u64() as u32);
    }
}

/// Queues from `orderTopicConf` (`"brokerA:4;brokerB:8"`), in its order.
///
/// Like Java, empty trailing items are ignored and a negative count adds no queue;
/// unlike Java, empty items in the middle are ignored too. A count is capped to
/// [`RouteLimits::DEFAULT`]'s `max_queue_nums_per_broker` so that a hostile value
/// cannot allocate billions of queues.
fn order_topic_queues(topic: &str, conf: &str) -> Result<Vec<MessageQueue>, RouteError> {
    let invalid = || RouteError::InvalidOrderTopicConf {
        topic: topic.to_owned(),
        conf: conf.to_owned(),
    };
    let cap = i64::from(RouteLimits::DEFAULT.max_queue_nums_per_broker);
    let mut queues = Vec::new();
    for item in conf.split(';').filter(|item| !item.is_empty()) {
        let mut parts = item.split(':');
        let (Some(broker), Some(nums)) = (parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let nums: i64 = nums.trim().parse::<i32>().map_err(|_| invalid())?.into();
        for queue_id in 0..nums.clamp(0, cap) {
            let queue_id = i32::try_from(queue_id).map_err(|_| invalid())?;
            queues.push(MessageQueue::new(topic, broker, queue_id));
        }
    }
    Ok(queues)
}

/// Queues of the normal path (protocol.md section 8.5, step 3); `route` is
/// normalized (queue data already sorted).
fn write_queues(topic: &str, route: &TopicRouteData) -> Result<Vec<MessageQueue>, RouteError> {
    let mut queues = Vec::new();
    let mut without_master = Vec::new();
    let mut writable = false;
    for qd in route
        .queue_datas
        .iter()
        .filter(|q| q.is_writeable() && q.write_queue_nums > 0)
    {
        writable = true;
        let has_master = route
            .broker_data(&qd.broker_name)
            .is_some_and(|bd| bd.master_addr().is_some());
        if !has_master {
            without_master.push(qd.broker_name.clone());
            continue;
        }
        let nums = i32::try_from(qd.write_queue_nums).unwrap_or(i32::MAX);
        queues.extend((0..nums).map(|i| MessageQueue::new(topic, qd.broker_name.as_str(), i)));
    }
    if !writable {
        return Err(RouteError::NoWritableQueue {
            topic: topic.to_owned(),
        });
    }
    if queues.is_empty() {
        return Err(RouteError::NoMaster {
            topic: topic.to_owned(),
            brokers: without_master,
        });
    }
    Ok(queues)
}

#[cfg(test)]
mod tests;
