//! Name-server route data.
//!
//! * [`TopicRouteData`] is the body of a GET_ROUTEINFO_BY_TOPIC (105) response
//!   (protocol.md §8.2): [`QueueData`] per broker name and [`BrokerData`] with
//!   the broker addresses (`brokerId → "host:port"`, id 0 = master).
//! * [`ClusterInfo`] is the body of a GET_BROKER_CLUSTER_INFO (106) response.
//!
//! # Accepted input
//!
//! The parsers accept what Java name servers (4.x, 5.x, proxy) and the
//! rocketmq-rust name server send:
//!
//! * standard JSON, any field order, `null` for any optional field, unknown
//!   fields ignored (`filterServerTable`, `topicQueueMappingByBroker`,
//!   `topicQueueMappingInfo`, ... are skipped without being stored);
//! * fastjson's non-standard **bare integer object keys**
//!   (`"brokerAddrs":{0:"10.2.3.117:10911"}`, protocol.md §8.3) from pre-4.9.4
//!   name servers: when the strict parse fails with a syntax error, one linear
//!   pass ([`quote_bare_integer_keys`]) quotes numeric keys outside strings and
//!   the body is parsed again, so standard JSON is parsed exactly once;
//! * `topicSynFlag` (≤ 4.8.x) as well as `topicSysFlag` (4.9.0+).
//!
//! A field repeated within one object keeps its last value (each occurrence is
//! bounded on its own, and the earlier value is dropped).
//!
//! # Bounds
//!
//! Everything read from the name server is bounded by [`RouteLimits`]
//! (reliability.md rows A11 and H5): the body size is checked before parsing,
//! and the lists and maps are read by bounded serde visitors, so a list longer
//! than its limit fails with a typed [`RouteError`] as soon as the limit is
//! passed, before the rest of the list is read or stored. Queue counts above
//! [`RouteLimits::max_queue_nums_per_broker`] are **capped** and negative ones
//! are **clamped to 0** (the entry then yields no queue); each adjustment is
//! reported in [`TopicRouteData::warnings`]. Broker addresses are kept as the
//! strings the name server sent; [`split_host_port`] and
//! [`BrokerData::master_host_port`] check their `host:port` syntax on demand.
//!
//! None of the parsers panics, whatever the input.
//!
//! ```
//! use rmq_protocol::route::{TopicRouteData, perm};
//!
//! let body = br#"{"brokerDatas":[{"brokerAddrs":{0:"10.2.3.117:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],
//!   "queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSynFlag":0,"writeQueueNums":8}]}"#;
//! let route = TopicRouteData::parse(body)?;
//! assert_eq!(route.broker_datas[0].master_addr(), Some("10.2.3.117:10911"));
//! assert!(perm::is_writeable(route.queue_datas[0].perm));
//! # Ok::<(), rmq_protocol::route::RouteError>(())
//! ```

mod cluster;
mod data;
mod de;
mod error;
mod json_out;
mod lenient;
mod limits;

pub use cluster::ClusterInfo;
pub use data::{BrokerData, MASTER_ID, QueueData, RouteWarning, TopicRouteData, split_host_port};
pub use error::RouteError;
pub use lenient::quote_bare_integer_keys;
pub use limits::RouteLimits;

/// Permission bits of a topic's queues (`PermName`, protocol.md §8.4).
///
/// A value is a bit set: `6` = read + write, `7` = read + write + inherit
/// (the auto-create template topic TBW102).
pub mod perm {
    /// `PERM_PRIORITY`: the topic has priority (unused by producers).
    pub const PRIORITY: i32 = 8;
    /// `PERM_READ`: consumers may read the queues.
    pub const READ: i32 = 4;
    /// `PERM_WRITE`: producers may write to the queues.
    pub const WRITE: i32 = 2;
    /// `PERM_INHERIT`: new topics may be auto-created from this one.
    pub const INHERIT: i32 = 1;

    /// Whether `perm` has the [`WRITE`] bit.
    pub const fn is_writeable(perm: i32) -> bool {
        perm & WRITE == WRITE
    }

    /// Whether `perm` has the [`READ`] bit.
    pub const fn is_readable(perm: i32) -> bool {
        perm & READ == READ
    }

    /// Whether `perm` has the [`INHERIT`] bit.
    pub const fn is_inherited(perm: i32) -> bool {
        perm & INHERIT == INHERIT
    }

    /// Whether `perm` has the [`PRIORITY`] bit.
    pub const fn is_priority(perm: i32) -> bool {
        perm & PRIORITY == PRIORITY
    }
}

#[cfg(test)]
mod tests;
