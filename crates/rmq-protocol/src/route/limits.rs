//! Bounds on what a name server may make the client parse and store.

/// Bounds applied while parsing route and cluster-info bodies (reliability.md rows A11, H5).
///
/// Lists and maps are read by bounded visitors: a list longer than its limit is an
/// error as soon as the element after the limit is reached, and nothing past the
/// limit is stored. The defaults ([`RouteLimits::DEFAULT`]) are far above what a
/// real cluster produces and small enough that a full route stays in the low
/// megabytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteLimits {
    /// Largest accepted body, in bytes; checked before parsing. Default 4 MiB.
    ///
    /// A bare-key body is quoted into a copy that is less than 5/3 × this size.
    pub max_body_bytes: usize,
    /// Most entries in `brokerDatas`; in cluster info also the most entries in
    /// `brokerAddrTable`, the most clusters in `clusterAddrTable` and the most
    /// broker names per cluster. More is [`RouteError::TooManyBrokers`](super::RouteError::TooManyBrokers)
    /// (or `TooManyClusters`). Default 1024.
    pub max_brokers: usize,
    /// Most entries in `queueDatas`; more is
    /// [`RouteError::TooManyQueueDatas`](super::RouteError::TooManyQueueDatas). Default 1024.
    pub max_queue_datas: usize,
    /// Largest `readQueueNums` / `writeQueueNums` kept for one queue-data entry.
    /// Larger values are **capped** to this value (not an error) and reported in
    /// [`TopicRouteData::warnings`](super::TopicRouteData::warnings). Default 1024
    /// (brokers default to 8 or 16 queues per topic; Java has no hard limit).
    pub max_queue_nums_per_broker: u32,
    /// Most entries in one broker's `brokerAddrs` (master plus slaves); more is
    /// [`RouteError::TooManyAddrs`](super::RouteError::TooManyAddrs). Default 64.
    pub max_addrs_per_broker: usize,
}

impl RouteLimits {
    /// The default limits: 4 MiB body, 1024 brokers, 1024 queue-data entries,
    /// 1024 queues per entry (capped), 64 addresses per broker.
    pub const DEFAULT: Self = Self {
        max_body_bytes: 4 * 1024 * 1024,
        max_brokers: 1024,
        max_queue_datas: 1024,
        max_queue_nums_per_broker: 1024,
        max_addrs_per_broker: 64,
    };
}

impl Default for RouteLimits {
    /// [`RouteLimits::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}
