//! [`RouteError`]: why a route could not be obtained or used.

use std::time::Duration;

use rmq_protocol::ResponseCode;
use rmq_remoting::{Delivery, RemotingError};

/// Why a route lookup (or the conversion of a route into a
/// [`TopicPublishInfo`](crate::TopicPublishInfo)) failed.
///
/// Split by where the failure happened: before any request (`NoNameServer`), at
/// the transport (`Transport`, `Timeout`), in the name server's answer
/// (`TopicNotFound`, `NameServer`, `InvalidRoute`), or in the route itself
/// (`NoWritableQueue`, `NoMaster`, `InvalidOrderTopicConf`).
///
/// ```
/// use rmq_route::RouteError;
///
/// let e = RouteError::TopicNotFound { topic: "T".into() };
/// assert!(e.is_topic_not_found());
/// assert_eq!(e.to_string(), "topic T does not exist (no route on the name server)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// No name-server address is configured (empty list, or `NAMESRV_ADDR` unset).
    #[error("no name-server address configured")]
    NoNameServer,
    /// The name server answered TOPIC_NOT_EXIST (17): it knows no route for the topic
    /// (and, when the default-topic fallback is on, none for the default topic either).
    #[error("topic {topic} does not exist (no route on the name server)")]
    TopicNotFound {
        /// The topic asked for.
        topic: String,
    },
    /// The name server answered with a response code other than SUCCESS and
    /// TOPIC_NOT_EXIST (e.g. SYSTEM_ERROR "name server not ready").
    #[error("name server {addr} answered {code}: {}", remark.as_deref().unwrap_or(""))]
    NameServer {
        /// The name server.
        addr: String,
        /// Its response code.
        code: ResponseCode,
        /// Its remark, if any.
        remark: Option<String>,
    },
    /// The request to a name server failed at the transport (connect, write,
    /// timeout, connection closed ...). The last server tried is reported when all
    /// of them failed.
    #[error("name server {addr} unreachable: {source}")]
    Transport {
        /// The name server.
        addr: String,
        /// The transport error.
        source: RemotingError,
    },
    /// The call's time budget ran out before a name server answered.
    #[error("no answer for {topic} within {timeout:?}")]
    Timeout {
        /// The topic asked for (`"request <code>"` for other requests sent with
        /// [`NameServerClient::invoke`](crate::NameServerClient::invoke)).
        topic: String,
        /// The budget.
        timeout: Duration,
    },
    /// The name server answered SUCCESS with a body that is not a valid route.
    #[error("invalid route for {topic} from {addr}: {source}")]
    InvalidRoute {
        /// The topic asked for.
        topic: String,
        /// The name server.
        addr: String,
        /// Why the body did not parse.
        source: rmq_protocol::route::RouteError,
    },
    /// The route has no queue data with the write permission (or only zero write
    /// queues): an empty route, or a read-only topic.
    #[error("route of {topic} has no writable queue")]
    NoWritableQueue {
        /// The topic.
        topic: String,
    },
    /// The route has writable queue data, but none of their brokers has a master
    /// (broker id 0) in `brokerDatas`.
    #[error("route of {topic} has writable queues only on brokers without a master: {brokers:?}")]
    NoMaster {
        /// The topic.
        topic: String,
        /// The broker names with writable queues but no master.
        brokers: Vec<String>,
    },
    /// `orderTopicConf` is not of the form `"brokerA:4;brokerB:8"` (Java fails the
    /// route update with a `NumberFormatException` or an index error).
    #[error("route of {topic} has an invalid orderTopicConf {conf:?}")]
    InvalidOrderTopicConf {
        /// The topic.
        topic: String,
        /// The value sent.
        conf: String,
    },
    /// A background task could not be spawned: not called within a Tokio runtime.
    #[error("no Tokio runtime to spawn the route poller on")]
    NoRuntime,
}

impl RouteError {
    /// Whether the name server said the topic does not exist.
    pub fn is_topic_not_found(&self) -> bool {
        matches!(self, Self::TopicNotFound { .. })
    }

    /// Whether the name servers could not be reached (transport failure or time
    /// budget exhausted): the answer says nothing about the topic.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Transport { .. } | Self::Timeout { .. } | Self::NoNameServer
        )
    }

    /// The transport error, when this is [`RouteError::Transport`].
    pub fn transport(&self) -> Option<&RemotingError> {
        match self {
            Self::Transport { source, .. } => Some(source),
            _ => None,
        }
    }

    /// For a transport failure, whether the request may have reached the name
    /// server (route queries are idempotent; this is informational).
    pub fn delivery(&self) -> Option<Delivery> {
        self.transport().map(RemotingError::delivery)
    }
}
