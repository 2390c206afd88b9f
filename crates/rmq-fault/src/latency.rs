//! [`LatencyFaultStrategy`]: Java's latency fault tolerance (protocol.md section 11),
//! with the 5.x tables by default and the 4.9 tables on request.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::strategy::{AttemptReport, BrokerFaultState, FaultStrategy, Outcome};

const fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Java 5.x `latencyMax`.
const JAVA_5X_LATENCY: [Duration; 7] = [
    ms(50),
    ms(100),
    ms(550),
    ms(1800),
    ms(3000),
    ms(5000),
    ms(15000),
];
/// Java 5.x `notAvailableDuration`.
const JAVA_5X_ISOLATION: [Duration; 7] = [
    ms(0),
    ms(0),
    ms(2000),
    ms(5000),
    ms(6000),
    ms(10000),
    ms(30000),
];
/// Java 4.9 `latencyMax`.
const JAVA_4_9_LATENCY: [Duration; 7] = [
    ms(50),
    ms(100),
    ms(550),
    ms(1000),
    ms(2000),
    ms(3000),
    ms(15000),
];
/// Java 4.9 `notAvailableDuration`.
const JAVA_4_9_ISOLATION: [Duration; 7] = [
    ms(0),
    ms(0),
    ms(30000),
    ms(60000),
    ms(120000),
    ms(180000),
    ms(600000),
];

/// The longest isolation a custom table may hold.
pub const MAX_ISOLATION: Duration = Duration::from_secs(24 * 60 * 60);

/// How many brokers a [`LatencyFaultStrategy`] tracks by default before it
/// evicts the least interesting one.
pub const DEFAULT_MAX_BROKERS: usize = 1024;

/// The detector's default check interval per broker (Java `detectInterval`).
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(2000);

/// How a new isolation combines with the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateRule {
    /// Java 5.x: the end of isolation only moves later; a fast success never
    /// shortens an isolation, and a zero duration changes nothing.
    Extend,
    /// Java 4.9: the end of isolation is set to `now + duration` on every report,
    /// so a fast success ends an isolation at once.
    Overwrite,
}

/// Why a custom table was rejected by [`LatencyFaultStrategy::with_tables`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The tables have no entries.
    Empty,
    /// The two tables differ in length.
    LengthMismatch {
        /// Entries in the latency thresholds.
        latency_max: usize,
        /// Entries in the isolation durations.
        not_available: usize,
    },
    /// A latency threshold is not greater than the one before it.
    LatencyNotAscending {
        /// Index of the offending entry.
        index: usize,
    },
    /// An isolation duration is smaller than the one before it.
    IsolationNotAscending {
        /// Index of the offending entry.
        index: usize,
    },
    /// An isolation duration exceeds [`MAX_ISOLATION`].
    IsolationTooLong {
        /// Index of the offending entry.
        index: usize,
    },
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("latency fault tables are empty"),
            Self::LengthMismatch {
                latency_max,
                not_available,
            } => write!(
                f,
                "latency fault tables differ in length: {latency_max} thresholds, \
                 {not_available} isolation durations"
            ),
            Self::LatencyNotAscending { index } => write!(
                f,
                "latency threshold {index} is not greater than the one before it"
            ),
            Self::IsolationNotAscending { index } => write!(
                f,
                "isolation duration {index} is smaller than the one before it"
            ),
            Self::IsolationTooLong { index } => write!(
                f,
                "isolation duration {index} exceeds {} s",
                MAX_ISOLATION.as_secs()
            ),
        }
    }
}

impl std::error::Error for TableError {}

/// What the strategy knows about one broker.
#[derive(Clone, Copy, Debug)]
struct Item {
    /// Latency of the last reported attempt (Java `currentLatency`).
    latency: Duration,
    /// End of isolation (Java `startTimestamp`); `None` if never isolated.
    until: Option<Instant>,
    /// Java `reachableFlag`.
    reachable: bool,
    /// Next time the detector may probe it (Java `checkStamp`); `None`: due.
    check_at: Option<Instant>,
    /// Time of the last report, for eviction.
    touched: Instant,
}

impl Item {
    fn available(&self, now: Instant) -> bool {
        self.until.is_none_or(|end| now >= end)
    }

    fn isolated_for(&self, now: Instant) -> Option<Duration> {
        self.until
            .map(|end| end.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }
}

/// The default fault strategy: Java's latency fault tolerance.
///
/// Each report looks up an isolation duration from the broker's latency in two
/// tables: the duration of the largest `latency_max[i] <= latency` is
/// `not_available[i]`, or zero below the first threshold. A failure looks up the
/// larger of its latency and the *failure latency* instead (10 s by default), so a
/// failing broker is isolated for 10 s with the 5.x tables.
///
/// | outcome | looked up | reachable afterwards |
/// |---|---|---|
/// | `Success` | latency | true |
/// | `Timeout`, `TransportError` | failure latency | false with a detector, else true |
/// | `ConnectError` | failure latency | false |
/// | `BrokerError(_)` | failure latency | false |
/// | `Cancelled` | latency | unchanged |
///
/// This is Java 5.x's table (protocol.md 11.3) with three deliberate differences:
/// a connect error is unreachable even without a detector, a cancelled attempt
/// leaves reachability alone (a dropped future says nothing about it), and a
/// failure slower than the failure latency looks up its own latency.
///
/// | constructor | `latency_max` (ms) | `not_available` (ms) | failure latency | rule |
/// |---|---|---|---|---|
/// | [`default`](Self::default) / [`java_5x`](Self::java_5x) | 50, 100, 550, 1800, 3000, 5000, 15000 | 0, 0, 2000, 5000, 6000, 10000, 30000 | 10 s → 10 s | [`Extend`](UpdateRule::Extend) |
/// | [`java_4_9`](Self::java_4_9) | 50, 100, 550, 1000, 2000, 3000, 15000 | 0, 0, 30000, 60000, 120000, 180000, 600000 | 30 s → 10 min | [`Overwrite`](UpdateRule::Overwrite) |
///
/// A broker is available when `now >= end of isolation`. State lives in one
/// `std::sync::Mutex<HashMap>` held only for a lookup or an update; at most
/// [`max_brokers`](Self::max_brokers) brokers are tracked (the one with nothing
/// to remember, least recently reported, is evicted first), and
/// [`forget`](FaultStrategy::forget) drops a broker that left every route.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
///
/// let strategy = LatencyFaultStrategy::default();
/// let t0 = Instant::now();
/// let ms = Duration::from_millis;
///
/// // 600 ms is slow: isolated for 2 s.
/// strategy.on_result("broker-a", AttemptReport::success(ms(600)), t0);
/// assert!(!strategy.is_available("broker-a", t0 + ms(1999)));
/// assert!(strategy.is_available("broker-a", t0 + ms(2000)));
///
/// // A failure isolates for 10 s.
/// strategy.on_result("broker-b", AttemptReport::new(ms(3), Outcome::TransportError), t0);
/// assert!(!strategy.is_available("broker-b", t0 + ms(9999)));
/// ```
pub struct LatencyFaultStrategy {
    latency_max: Vec<Duration>,
    not_available: Vec<Duration>,
    failure_latency: Duration,
    rule: UpdateRule,
    detector: bool,
    probe_interval: Duration,
    max_brokers: usize,
    items: Mutex<HashMap<String, Item>>,
}

impl Default for LatencyFaultStrategy {
    /// [`java_5x`](Self::java_5x).
    fn default() -> Self {
        Self::java_5x()
    }
}

impl fmt::Debug for LatencyFaultStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyFaultStrategy")
            .field("latency_max", &self.latency_max)
            .field("not_available", &self.not_available)
            .field("failure_latency", &self.failure_latency)
            .field("rule", &self.rule)
            .field("detector", &self.detector)
            .field("probe_interval", &self.probe_interval)
            .field("max_brokers", &self.max_brokers)
            .field("tracked", &self.lock().len())
            .finish()
    }
}

impl LatencyFaultStrategy {
    /// The same as [`default`](Self::default): the Java 5.x tables.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::LatencyFaultStrategy;
    ///
    /// let strategy = LatencyFaultStrategy::new();
    /// assert_eq!(strategy.failure_latency(), Duration::from_secs(10));
    /// assert_eq!(strategy.tracked(), 0);
    /// ```
    pub fn new() -> Self {
        Self::java_5x()
    }

    /// Java 5.x (5.1.4 and later): the tables above, failure latency 10 s
    /// (isolation 10 s), [`UpdateRule::Extend`], no detector, probe interval 2 s,
    /// [`DEFAULT_MAX_BROKERS`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::{LatencyFaultStrategy, UpdateRule};
    ///
    /// let strategy = LatencyFaultStrategy::java_5x();
    /// let ms = Duration::from_millis;
    /// assert_eq!(strategy.isolation_for(ms(100)), ms(0)); // fast enough
    /// assert_eq!(strategy.isolation_for(ms(600)), ms(2000));
    /// assert_eq!(strategy.isolation_for(strategy.failure_latency()), ms(10_000)); // a failure
    /// assert_eq!(strategy.update_rule(), UpdateRule::Extend);
    /// ```
    pub fn java_5x() -> Self {
        Self::from_parts(
            JAVA_5X_LATENCY.to_vec(),
            JAVA_5X_ISOLATION.to_vec(),
            Duration::from_millis(10_000),
            UpdateRule::Extend,
        )
    }

    /// Java 4.9 (4.9.x, 5.0.0–5.1.3): the tables above, failure latency 30 s
    /// (isolation 10 min), [`UpdateRule::Overwrite`]; otherwise as [`java_5x`](Self::java_5x).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::{LatencyFaultStrategy, UpdateRule};
    ///
    /// let strategy = LatencyFaultStrategy::java_4_9();
    /// assert_eq!(strategy.isolation_for(strategy.failure_latency()), Duration::from_secs(600));
    /// assert_eq!(strategy.update_rule(), UpdateRule::Overwrite);
    /// ```
    pub fn java_4_9() -> Self {
        Self::from_parts(
            JAVA_4_9_LATENCY.to_vec(),
            JAVA_4_9_ISOLATION.to_vec(),
            Duration::from_millis(30_000),
            UpdateRule::Overwrite,
        )
    }

    /// Custom tables. `latency_max` must be strictly ascending, `not_available`
    /// ascending (equal neighbours allowed) and at most [`MAX_ISOLATION`]; both
    /// of the same, non-zero length. A failure looks up `failure_latency`.
    /// The rule is [`UpdateRule::Extend`]; the rest as [`java_5x`](Self::java_5x).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::{LatencyFaultStrategy, TableError};
    ///
    /// let s = Duration::from_secs;
    /// let strategy = LatencyFaultStrategy::with_tables(&[s(1), s(2)], &[s(5), s(20)], s(2))?;
    /// assert_eq!(strategy.isolation_for(s(1)), s(5));
    ///
    /// let err = LatencyFaultStrategy::with_tables(&[s(2), s(1)], &[s(5), s(20)], s(2));
    /// assert_eq!(err.err(), Some(TableError::LatencyNotAscending { index: 1 }));
    /// # Ok::<(), TableError>(())
    /// ```
    pub fn with_tables(
        latency_max: &[Duration],
        not_available: &[Duration],
        failure_latency: Duration,
    ) -> Result<Self, TableError> {
        if latency_max.len() != not_available.len() {
            return Err(TableError::LengthMismatch {
                latency_max: latency_max.len(),
                not_available: not_available.len(),
            });
        }
        if latency_max.is_empty() {
            return Err(TableError::Empty);
        }
        for index in 1..latency_max.len() {
            if latency_max[index] <= latency_max[index - 1] {
                return Err(TableError::LatencyNotAscending { index });
            }
            if not_available[index] < not_available[index - 1] {
                return Err(TableError::IsolationNotAscending { index });
            }
        }
        if let Some(index) = not_available.iter().position(|d| *d > MAX_ISOLATION) {
            return Err(TableError::IsolationTooLong { index });
        }
        Ok(Self::from_parts(
            latency_max.to_vec(),
            not_available.to_vec(),
            failure_latency,
            UpdateRule::Extend,
        ))
    }

    fn from_parts(
        latency_max: Vec<Duration>,
        not_available: Vec<Duration>,
        failure_latency: Duration,
        rule: UpdateRule,
    ) -> Self {
        Self {
            latency_max,
            not_available,
            failure_latency,
            rule,
            detector: false,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            max_brokers: DEFAULT_MAX_BROKERS,
            items: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how a new isolation combines with the current one.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, UpdateRule};
    ///
    /// let ms = Duration::from_millis;
    /// let t0 = Instant::now();
    /// // Overwrite: a fast success after a slow one ends the isolation at once.
    /// let strategy = LatencyFaultStrategy::java_5x().with_update_rule(UpdateRule::Overwrite);
    /// strategy.on_result("broker-a", AttemptReport::success(ms(600)), t0); // isolated 2 s
    /// strategy.on_result("broker-a", AttemptReport::success(ms(5)), t0 + ms(10));
    /// assert!(strategy.is_available("broker-a", t0 + ms(10)));
    /// ```
    #[must_use]
    pub fn with_update_rule(mut self, rule: UpdateRule) -> Self {
        self.rule = rule;
        self
    }

    /// Tells the strategy whether the producer runs a detector (probes brokers
    /// from [`brokers_to_probe`](FaultStrategy::brokers_to_probe)). With one, a
    /// timeout or transport error also marks the broker unreachable until a probe
    /// or a send succeeds (Java `startDetectorEnable`). Default: false.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
    ///
    /// let strategy = LatencyFaultStrategy::new().with_detector(true);
    /// assert!(strategy.detector());
    /// let t0 = Instant::now();
    /// let s = Duration::from_secs;
    /// strategy.on_result("broker-a", AttemptReport::new(s(3), Outcome::Timeout), t0);
    /// // The isolation (10 s) is over, but the broker stays unreachable ...
    /// assert!(strategy.is_available("broker-a", t0 + s(60)));
    /// assert!(!strategy.is_reachable("broker-a", t0 + s(60)));
    /// // ... until a probe (or a send) succeeds.
    /// strategy.on_result("broker-a", AttemptReport::success(Duration::from_millis(2)), t0 + s(61));
    /// assert!(strategy.is_reachable("broker-a", t0 + s(61)));
    /// // Without a detector a timeout only isolates.
    /// let plain = LatencyFaultStrategy::new();
    /// plain.on_result("broker-a", AttemptReport::new(s(3), Outcome::Timeout), t0);
    /// assert!(plain.is_reachable("broker-a", t0));
    /// ```
    #[must_use]
    pub fn with_detector(mut self, detector: bool) -> Self {
        self.detector = detector;
        self
    }

    /// Sets how long the detector waits between two probes of one broker.
    /// Default: [`DEFAULT_PROBE_INTERVAL`] (2 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::{DEFAULT_PROBE_INTERVAL, LatencyFaultStrategy};
    ///
    /// assert_eq!(LatencyFaultStrategy::new().probe_interval(), DEFAULT_PROBE_INTERVAL);
    /// let strategy = LatencyFaultStrategy::new()
    ///     .with_detector(true)
    ///     .with_probe_interval(Duration::from_millis(500));
    /// assert_eq!(strategy.probe_interval(), Duration::from_millis(500));
    /// ```
    #[must_use]
    pub fn with_probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// Sets how many brokers are tracked at most (at least 1).
    /// Default: [`DEFAULT_MAX_BROKERS`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy};
    ///
    /// let strategy = LatencyFaultStrategy::new().with_max_brokers(2);
    /// let now = Instant::now();
    /// for broker in ["a", "b", "c"] {
    ///     strategy.on_result(broker, AttemptReport::success(Duration::from_millis(600)), now);
    /// }
    /// assert_eq!(strategy.tracked(), 2); // bounded, whatever the routes name
    /// assert_eq!(LatencyFaultStrategy::new().with_max_brokers(0).max_brokers(), 1);
    /// ```
    #[must_use]
    pub fn with_max_brokers(mut self, max: usize) -> Self {
        self.max_brokers = max.max(1);
        self
    }

    /// The latency thresholds (Java `latencyMax`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::LatencyFaultStrategy;
    ///
    /// let strategy = LatencyFaultStrategy::java_5x();
    /// assert_eq!(strategy.latency_max().len(), strategy.not_available().len());
    /// assert_eq!(strategy.latency_max()[0], Duration::from_millis(50));
    /// ```
    pub fn latency_max(&self) -> &[Duration] {
        &self.latency_max
    }

    /// The isolation durations (Java `notAvailableDuration`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::LatencyFaultStrategy;
    ///
    /// let strategy = LatencyFaultStrategy::java_4_9();
    /// assert_eq!(strategy.not_available().last(), Some(&Duration::from_secs(600)));
    /// ```
    pub fn not_available(&self) -> &[Duration] {
        &self.not_available
    }

    /// The latency a failure counts as.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::LatencyFaultStrategy;
    ///
    /// let s = Duration::from_secs;
    /// let strategy = LatencyFaultStrategy::with_tables(&[s(1)], &[s(5)], s(2)).unwrap();
    /// assert_eq!(strategy.failure_latency(), s(2));
    /// assert_eq!(strategy.isolation_for(strategy.failure_latency()), s(5));
    /// ```
    pub fn failure_latency(&self) -> Duration {
        self.failure_latency
    }

    /// How a new isolation combines with the current one.
    ///
    /// ```
    /// use rmq_fault::{LatencyFaultStrategy, UpdateRule};
    ///
    /// assert_eq!(LatencyFaultStrategy::java_5x().update_rule(), UpdateRule::Extend);
    /// assert_eq!(LatencyFaultStrategy::java_4_9().update_rule(), UpdateRule::Overwrite);
    /// ```
    pub fn update_rule(&self) -> UpdateRule {
        self.rule
    }

    /// Whether the strategy assumes a detector runs.
    ///
    /// ```
    /// use rmq_fault::LatencyFaultStrategy;
    ///
    /// assert!(!LatencyFaultStrategy::new().detector());
    /// assert!(LatencyFaultStrategy::new().with_detector(true).detector());
    /// ```
    pub fn detector(&self) -> bool {
        self.detector
    }

    /// The detector's check interval per broker.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::LatencyFaultStrategy;
    ///
    /// assert_eq!(LatencyFaultStrategy::new().probe_interval(), Duration::from_secs(2));
    /// ```
    pub fn probe_interval(&self) -> Duration {
        self.probe_interval
    }

    /// How many brokers are tracked at most.
    ///
    /// ```
    /// use rmq_fault::{DEFAULT_MAX_BROKERS, LatencyFaultStrategy};
    ///
    /// assert_eq!(LatencyFaultStrategy::new().max_brokers(), DEFAULT_MAX_BROKERS);
    /// ```
    pub fn max_brokers(&self) -> usize {
        self.max_brokers
    }

    /// How many brokers are tracked now.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy};
    ///
    /// let strategy = LatencyFaultStrategy::new();
    /// strategy.on_result("broker-a", AttemptReport::success(Duration::from_millis(600)), Instant::now());
    /// assert_eq!(strategy.tracked(), 1);
    /// ```
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// The isolation a report of `latency` leads to: the duration of the largest
    /// threshold `<= latency`, zero below the first (Java `computeNotAvailableDuration`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::LatencyFaultStrategy;
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// let ms = Duration::from_millis;
    /// assert_eq!(strategy.isolation_for(ms(549)), ms(0));
    /// assert_eq!(strategy.isolation_for(ms(550)), ms(2000));
    /// assert_eq!(strategy.isolation_for(ms(10_000)), ms(10_000));
    /// ```
    pub fn isolation_for(&self, latency: Duration) -> Duration {
        self.latency_max
            .iter()
            .zip(&self.not_available)
            .rev()
            .find(|(max, _)| latency >= **max)
            .map_or(Duration::ZERO, |(_, d)| *d)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Item>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Java 5.x's (isolation, reachable) for an outcome; `None`: leave reachability.
    fn effect(&self, outcome: Outcome) -> (bool, Option<bool>) {
        match outcome {
            Outcome::Success => (false, Some(true)),
            Outcome::Timeout | Outcome::TransportError => (true, Some(!self.detector)),
            Outcome::ConnectError | Outcome::BrokerError(_) => (true, Some(false)),
            Outcome::Cancelled => (false, None),
        }
    }

    /// Makes room for one more broker: evicts the least recently reported broker,
    /// preferring those that are available and reachable (nothing to remember).
    fn evict_one(items: &mut HashMap<String, Item>, now: Instant) {
        let victim = items
            .iter()
            .min_by_key(|(_, item)| (!item.available(now) || !item.reachable, item.touched))
            .map(|(name, _)| name.clone());
        if let Some(name) = victim {
            items.remove(&name);
        }
    }
}

impl FaultStrategy for LatencyFaultStrategy {
    fn on_result(&self, broker: &str, report: AttemptReport, now: Instant) {
        let (isolate, reachable) = self.effect(report.outcome);
        let looked_up = if isolate {
            report.latency.max(self.failure_latency)
        } else {
            report.latency
        };
        let duration = self.isolation_for(looked_up);
        let end = now.checked_add(duration);

        let mut items = self.lock();
        if !items.contains_key(broker) {
            if items.len() >= self.max_brokers {
                Self::evict_one(&mut items, now);
            }
            // the broker's name is copied once, when it is first seen (not per result)
            items.insert(
                broker.to_owned(),
                Item {
                    latency: report.latency,
                    until: None,
                    reachable: true,
                    check_at: None,
                    touched: now,
                },
            );
        }
        let Some(item) = items.get_mut(broker) else {
            return;
        };
        item.latency = report.latency;
        item.touched = now;
        match self.rule {
            UpdateRule::Extend => {
                if let Some(end) = end
                    && !duration.is_zero()
                    && item.until.is_none_or(|current| end > current)
                {
                    item.until = Some(end);
                }
            }
            UpdateRule::Overwrite => {
                if end.is_some() {
                    item.until = end;
                }
            }
        }
        if let Some(reachable) = reachable {
            item.reachable = reachable;
        }
    }

    fn is_available(&self, broker: &str, now: Instant) -> bool {
        self.lock()
            .get(broker)
            .is_none_or(|item| item.available(now))
    }

    fn is_reachable(&self, broker: &str, _now: Instant) -> bool {
        self.lock().get(broker).is_none_or(|item| item.reachable)
    }

    /// The best candidate by, in order: available first, reachable first, the
    /// isolation that ends soonest, the lowest last latency, the earliest position.
    /// Unknown brokers count as available, reachable and 0 ms.
    fn least_bad(&self, candidates: &[&str], now: Instant) -> Option<usize> {
        let items = self.lock();
        candidates
            .iter()
            .enumerate()
            .min_by_key(|(_, broker)| match items.get(**broker) {
                None => (false, false, Duration::ZERO, Duration::ZERO),
                Some(item) => (
                    !item.available(now),
                    !item.reachable,
                    item.isolated_for(now).unwrap_or(Duration::ZERO),
                    item.latency,
                ),
            })
            .map(|(index, _)| index)
    }

    /// Sets the broker's reachable flag. A successful probe does not end an
    /// isolation (as in Java). Probes of brokers not tracked (forgotten since)
    /// are ignored.
    fn on_probe(&self, broker: &str, reachable: bool, _now: Instant) {
        if let Some(item) = self.lock().get_mut(broker) {
            item.reachable = reachable;
        }
    }

    /// Every isolated or unreachable broker whose check time has come, sorted by
    /// name; each one's next check time becomes `now + probe_interval`.
    fn brokers_to_probe(&self, now: Instant) -> Vec<String> {
        let mut items = self.lock();
        let mut due = Vec::new();
        for (name, item) in items.iter_mut() {
            let troubled = !item.available(now) || !item.reachable;
            if troubled && item.check_at.is_none_or(|at| now >= at) {
                item.check_at = now.checked_add(self.probe_interval);
                due.push(name.clone());
            }
        }
        drop(items);
        due.sort_unstable();
        due
    }

    /// Every tracked broker, sorted by name.
    fn snapshot(&self, now: Instant) -> Vec<BrokerFaultState> {
        let items = self.lock();
        let mut states: Vec<BrokerFaultState> = items
            .iter()
            .map(|(name, item)| {
                let mut state = BrokerFaultState::new(name.as_str());
                state.available = item.available(now);
                state.reachable = item.reachable;
                state.isolated_for = item.isolated_for(now);
                state.last_latency = Some(item.latency);
                state
            })
            .collect();
        drop(items);
        states.sort_unstable_by(|a, b| a.broker.cmp(&b.broker));
        states
    }

    fn forget(&self, broker: &str) {
        self.lock().remove(broker);
    }
}
