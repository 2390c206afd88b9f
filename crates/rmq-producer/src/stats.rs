//! [`ProducerStats`]: a typed snapshot of what the producer did.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rmq_fault::BrokerFaultState;
use rmq_remoting::PoolStats;

use crate::error::SendErrorKind;

/// Latency buckets: powers of two of microseconds (1 µs .. ~36 min).
const BUCKETS: usize = 32;

#[derive(Debug)]
pub(crate) struct Counters {
    sent: AtomicU64,
    retried: AtomicU64,
    failed: Mutex<BTreeMap<String, u64>>,
    latency: [AtomicU64; BUCKETS],
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            sent: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            failed: Mutex::new(BTreeMap::new()),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Counters {
    pub(crate) fn record_ok(&self, latency: Duration) {
        self.sent.fetch_add(1, Relaxed);
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let bucket = (63 - micros.leading_zeros() as usize).min(BUCKETS - 1);
        self.latency[bucket].fetch_add(1, Relaxed);
    }

    pub(crate) fn record_retry(&self) {
        self.retried.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_failure(&self, kind: SendErrorKind) {
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        *failed.entry(format!("{kind:?}")).or_default() += 1;
    }

    fn percentile(counts: &[u64; BUCKETS], total: u64, q: f64) -> Option<Duration> {
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // Upper edge of the bucket: a conservative estimate.
                return Some(Duration::from_micros(1u64 << (i + 1).min(63)));
            }
        }
        None
    }

    pub(crate) fn snapshot(
        &self,
        in_flight: usize,
        brokers: Vec<BrokerFaultState>,
        routes: Vec<RouteAge>,
        transport: PoolStats,
    ) -> ProducerStats {
        let counts: [u64; BUCKETS] = std::array::from_fn(|i| self.latency[i].load(Relaxed));
        let total: u64 = counts.iter().sum();
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ProducerStats {
            sent: self.sent.load(Relaxed),
            failed: failed.values().sum(),
            failed_by_kind: failed,
            retried: self.retried.load(Relaxed),
            latency_p50: Self::percentile(&counts, total, 0.50),
            latency_p90: Self::percentile(&counts, total, 0.90),
            latency_p99: Self::percentile(&counts, total, 0.99),
            latency_p999: Self::percentile(&counts, total, 0.999),
            in_flight,
            isolated_brokers: brokers
                .into_iter()
                .filter(|b| !b.available)
                .map(|b| b.broker)
                .collect(),
            routes,
            reconnects: transport.reconnects,
            transport,
            pending_requests: 0,
            auto_batch: crate::AutoBatchStats::default(),
        }
    }
}

/// The age of one cached route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteAge {
    /// The topic (as on the wire).
    pub topic: String,
    /// Time since the last good route was fetched.
    pub age: Option<Duration>,
    /// The route's local version (bumped when the route changes).
    pub version: u64,
}

/// A snapshot of a producer's counters. Latency percentiles are upper bounds of
/// power-of-two buckets of successful sends (call to answer, retries included).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProducerStats {
    /// Messages stored (any status).
    pub sent: u64,
    /// Sends that failed.
    pub failed: u64,
    /// Failed sends by [`SendErrorKind`] (as its `Debug` name).
    pub failed_by_kind: BTreeMap<String, u64>,
    /// Attempts after the first (retries).
    pub retried: u64,
    /// Median latency.
    pub latency_p50: Option<Duration>,
    /// 90th percentile latency.
    pub latency_p90: Option<Duration>,
    /// 99th percentile latency.
    pub latency_p99: Option<Duration>,
    /// 99.9th percentile latency.
    pub latency_p999: Option<Duration>,
    /// Sends holding a permit now.
    pub in_flight: usize,
    /// Brokers the fault strategy currently isolates.
    pub isolated_brokers: Vec<String>,
    /// Cached routes and their ages.
    pub routes: Vec<RouteAge>,
    /// Reconnects made by the transport.
    pub reconnects: u64,
    /// The transport's own counters.
    pub transport: PoolStats,
    /// Requests ([`Producer::request`](crate::Producer::request)) waiting for a reply.
    pub pending_requests: usize,
    /// What the auto-batch accumulator did (all zero when it is off).
    pub auto_batch: crate::AutoBatchStats,
}
