//! The topic route: [`TopicRouteData`], [`QueueData`], [`BrokerData`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::error::RouteError;
use super::limits::RouteLimits;
use super::{de, perm};

/// The broker id of a master (`MixAll.MASTER_ID`); ids > 0 are slaves.
pub const MASTER_ID: i64 = 0;

/// A topic's route as served by the name server for GET_ROUTEINFO_BY_TOPIC (protocol.md §8.2).
///
/// `filterServerTable` (deprecated filter servers) and the 5.x static-topic
/// `topicQueueMappingByBroker` / `topicQueueMappingInfo` are skipped when parsing
/// and not stored; [`to_json`](Self::to_json) writes `"filterServerTable":{}`.
///
/// Name servers list queue and broker data **in no particular order**; a client
/// that wants deterministic queue selection sorts them by broker name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicRouteData {
    /// `orderTopicConf`: `"brokerA:4;brokerB:8"` for name-server-configured ordered
    /// topics, usually absent. Kept as sent (an empty string stays `Some("")`).
    pub order_topic_conf: Option<String>,
    /// `queueDatas`: one entry per broker name that hosts the topic.
    pub queue_datas: Vec<QueueData>,
    /// `brokerDatas`: the addresses of those brokers.
    pub broker_datas: Vec<BrokerData>,
    /// What [`TopicRouteData::parse_with_limits`] adjusted (capped or clamped queue
    /// counts), for the caller to log. Empty for a clean route; not serialized.
    pub warnings: Vec<RouteWarning>,
}

/// The queues one broker name hosts for a topic (`QueueData`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueueData {
    /// `brokerName`; matches a [`BrokerData::broker_name`].
    pub broker_name: String,
    /// `readQueueNums`, capped to [`RouteLimits::max_queue_nums_per_broker`];
    /// negative values become 0.
    pub read_queue_nums: u32,
    /// `writeQueueNums`, capped to [`RouteLimits::max_queue_nums_per_broker`];
    /// negative values become 0. A producer uses queue ids `0..write_queue_nums`.
    pub write_queue_nums: u32,
    /// `perm`: [`perm`] bits, kept as sent (perm 0 is valid: no access).
    pub perm: i32,
    /// `topicSysFlag` (`topicSynFlag` on ≤ 4.8.x name servers); 0 when absent.
    pub topic_sys_flag: i32,
}

impl QueueData {
    /// A queue-data entry with `topic_sys_flag` 0.
    pub fn new(
        broker_name: impl Into<String>,
        read_queue_nums: u32,
        write_queue_nums: u32,
        perm: i32,
    ) -> Self {
        Self {
            broker_name: broker_name.into(),
            read_queue_nums,
            write_queue_nums,
            perm,
            topic_sys_flag: 0,
        }
    }

    /// Whether `perm` has [`perm::WRITE`]; producers skip entries without it.
    pub const fn is_writeable(&self) -> bool {
        perm::is_writeable(self.perm)
    }

    /// Whether `perm` has [`perm::READ`].
    pub const fn is_readable(&self) -> bool {
        perm::is_readable(self.perm)
    }
}

/// One broker name's addresses (`BrokerData`): a master (id 0) and its slaves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BrokerData {
    /// `cluster`: the broker cluster name; empty when the name server sent none.
    pub cluster: String,
    /// `brokerName`.
    pub broker_name: String,
    /// `brokerAddrs`: broker id → address, as sent (normally `"ip:port"`; not
    /// validated at parse time, see [`split_host_port`]). Id [`MASTER_ID`] is the
    /// master. Entries with a `null` address are dropped.
    pub broker_addrs: BTreeMap<i64, String>,
    /// `enableActingMaster` (5.x); false when absent.
    pub enable_acting_master: bool,
    /// `zoneName` (5.x), usually absent or `null`.
    pub zone_name: Option<String>,
}

impl BrokerData {
    /// Broker data without addresses.
    pub fn new(cluster: impl Into<String>, broker_name: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            broker_name: broker_name.into(),
            ..Self::default()
        }
    }

    /// Adds (or replaces) the address of broker `id`; builder style.
    #[must_use]
    pub fn with_addr(mut self, id: i64, addr: impl Into<String>) -> Self {
        self.broker_addrs.insert(id, addr.into());
        self
    }

    /// The master's address (broker id 0) as sent, if the broker has one.
    /// Producers send only to this address (protocol.md §8.5, pitfall 21).
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }

    /// The master's address split by [`split_host_port`]; `None` when there is
    /// no master or its address is not `host:port`.
    pub fn master_host_port(&self) -> Option<(&str, u16)> {
        self.master_addr().and_then(split_host_port)
    }

    /// The master's address when it is an IP literal with a port
    /// (`"10.2.3.117:10911"`, `"[::1]:10911"`, `"::1:10911"`); `None` for host
    /// names, which need resolving by the caller.
    pub fn master_socket_addr(&self) -> Option<SocketAddr> {
        let (host, port) = self.master_host_port()?;
        let ip: IpAddr = host.parse().ok()?;
        Some(SocketAddr::new(ip, port))
    }
}

/// Splits a broker address `"host:port"` at its **last** `:` (like Java's
/// `RemotingHelper.string2SocketAddress`), removing `[`…`]` around an IPv6 host.
///
/// Returns `None` when there is no `:`, the host is empty, or the port is not
/// 1–65535 in plain decimal digits.
///
/// ```
/// use rmq_protocol::route::split_host_port;
/// assert_eq!(split_host_port("10.2.3.117:10911"), Some(("10.2.3.117", 10911)));
/// assert_eq!(split_host_port("[::1]:10911"), Some(("::1", 10911)));
/// assert_eq!(split_host_port("broker-a"), None);
/// assert_eq!(split_host_port("host:0"), None);
/// ```
pub fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (port != 0 && !host.is_empty()).then_some((host, port))
}

/// An adjustment made while parsing a route, reported in [`TopicRouteData::warnings`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteWarning {
    /// A queue count above [`RouteLimits::max_queue_nums_per_broker`] was capped to it.
    QueueNumsCapped {
        /// The queue-data entry's broker name.
        broker_name: String,
        /// `"readQueueNums"` or `"writeQueueNums"`.
        field: &'static str,
        /// The value sent (saturated to the `i64` range).
        value: i64,
        /// The value kept.
        cap: u32,
    },
    /// A negative queue count was replaced by 0.
    NegativeQueueNums {
        /// The queue-data entry's broker name.
        broker_name: String,
        /// `"readQueueNums"` or `"writeQueueNums"`.
        field: &'static str,
        /// The value sent.
        value: i64,
    },
}

impl fmt::Display for RouteWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueueNumsCapped {
                broker_name,
                field,
                value,
                cap,
            } => write!(f, "broker {broker_name:?}: {field} {value} capped to {cap}"),
            Self::NegativeQueueNums {
                broker_name,
                field,
                value,
            } => write!(
                f,
                "broker {broker_name:?}: negative {field} {value} replaced by 0"
            ),
        }
    }
}

impl TopicRouteData {
    /// Parses a GET_ROUTEINFO_BY_TOPIC body with [`RouteLimits::DEFAULT`].
    ///
    /// See the [module documentation](super) for what is accepted.
    pub fn parse(body: &[u8]) -> Result<Self, RouteError> {
        Self::parse_with_limits(body, &RouteLimits::DEFAULT)
    }

    /// Parses a GET_ROUTEINFO_BY_TOPIC body within `limits`.
    ///
    /// Fails with [`RouteError::TooLarge`] before parsing when the body is too
    /// long, with `TooManyBrokers` / `TooManyQueueDatas` / `TooManyAddrs` as soon as
    /// a list passes its limit, and with [`RouteError::Json`] when the body is not
    /// a route (also after quoting bare integer keys). A missing `brokerName` in
    /// a queue or broker entry is an error; other missing or `null` fields take
    /// their defaults (0, false, empty, `None`). Queue counts are capped or
    /// clamped as documented on [`QueueData`] and reported in `warnings`.
    pub fn parse_with_limits(body: &[u8], limits: &RouteLimits) -> Result<Self, RouteError> {
        let (mut route, warnings) = de::parse_document(body, limits, de::read_topic_route)?;
        route.warnings = warnings;
        Ok(route)
    }

    /// The broker data named `broker_name`, if listed.
    pub fn broker_data(&self, broker_name: &str) -> Option<&BrokerData> {
        self.broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)
    }
}
