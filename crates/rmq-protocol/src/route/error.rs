//! Errors of the route parsers.

/// Longest JSON error message kept in [`RouteError::Json`], in bytes.
const MAX_MESSAGE_LEN: usize = 200;

/// A route or cluster-info body could not be parsed, or exceeded a [`RouteLimits`](super::RouteLimits) bound.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The body is longer than [`RouteLimits::max_body_bytes`](super::RouteLimits::max_body_bytes);
    /// nothing was parsed.
    #[error("route body is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// The body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `brokerDatas` (or, in cluster info, `brokerAddrTable` or one cluster's
    /// broker-name list) has more than [`RouteLimits::max_brokers`](super::RouteLimits::max_brokers) entries.
    #[error("route has more than {max} brokers")]
    TooManyBrokers {
        /// The limit.
        max: usize,
    },
    /// `queueDatas` has more than [`RouteLimits::max_queue_datas`](super::RouteLimits::max_queue_datas) entries.
    #[error("route has more than {max} queue data entries")]
    TooManyQueueDatas {
        /// The limit.
        max: usize,
    },
    /// One broker's `brokerAddrs` has more than
    /// [`RouteLimits::max_addrs_per_broker`](super::RouteLimits::max_addrs_per_broker) entries.
    #[error("a broker has more than {max} addresses")]
    TooManyAddrs {
        /// The limit.
        max: usize,
    },
    /// Cluster info has more than [`RouteLimits::max_brokers`](super::RouteLimits::max_brokers) clusters
    /// in `clusterAddrTable`.
    #[error("cluster info has more than {max} clusters")]
    TooManyClusters {
        /// The limit.
        max: usize,
    },
    /// The body is not JSON of the expected shape, even after quoting bare integer keys:
    /// a syntax error, a truncated body, a wrong type, a missing required field
    /// (`brokerName`) or a broker id that is not an integer.
    ///
    /// When the body needed bare-key quoting, `line`/`column` refer to the quoted
    /// text (each quoted key earlier on the line shifts the column by 2).
    #[error("invalid route JSON at line {line} column {column}: {message}")]
    Json {
        /// What serde_json reported (truncated to 200 bytes), without the position.
        message: String,
        /// 1-based line of the error (0 if unknown).
        line: usize,
        /// 1-based column of the error (0 if unknown).
        column: usize,
    },
}

impl RouteError {
    /// Converts a serde_json error, keeping its position and a bounded message.
    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        let line = err.line();
        let column = err.column();
        let full = err.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(suffix.as_str()).unwrap_or(full.as_str());
        Self::Json {
            message: truncate(message, MAX_MESSAGE_LEN).to_owned(),
            line,
            column,
        }
    }
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}
