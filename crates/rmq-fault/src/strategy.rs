//! The [`FaultStrategy`] trait, what a send attempt reports to it, and the
//! [`Disabled`] strategy.

use std::fmt;
use std::time::{Duration, Instant};

use rmq_protocol::ResponseCode;

/// How one send attempt to a broker ended, as the producer reports it.
///
/// The producer reports exactly one outcome per attempt that reached the point of
/// choosing a broker. A response that produced a `SendResult` is a [`Success`]
/// whatever its `SendStatus` (`FLUSH_DISK_TIMEOUT` and friends included): the
/// broker answered. Failures that happen before any broker is involved (a message
/// too large, no route) are not reported at all.
///
/// New variants may be added; match with a `_` arm, or use [`is_failure`].
///
/// [`Success`]: Outcome::Success
/// [`is_failure`]: Outcome::is_failure
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The broker answered (any `SendResult`, whatever its status).
    Success,
    /// No response arrived within the attempt's time budget.
    Timeout,
    /// The connection to the broker could not be established (refused, unroutable,
    /// connect timeout, TLS handshake failure).
    ConnectError,
    /// The connection failed while the request was being written or awaited
    /// (reset, closed mid-frame, undecodable response).
    TransportError,
    /// The broker answered with an error response code (`SYSTEM_BUSY`,
    /// `NO_PERMISSION`, `SERVICE_NOT_AVAILABLE`, ...).
    BrokerError(ResponseCode),
    /// The caller gave up first: the send future was dropped, or the producer
    /// was closed. The latency is a lower bound of the broker's real latency.
    Cancelled,
}

impl Outcome {
    /// Whether this outcome counts against the broker: a timeout, a connect or
    /// transport error, or an error response. `Success` and `Cancelled` do not.
    ///
    /// ```
    /// use rmq_fault::{Outcome, ResponseCode};
    ///
    /// assert!(Outcome::ConnectError.is_failure());
    /// assert!(Outcome::BrokerError(ResponseCode::SYSTEM_BUSY).is_failure());
    /// assert!(!Outcome::Cancelled.is_failure());
    /// ```
    pub const fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::ConnectError | Self::TransportError | Self::BrokerError(_)
        )
    }
}

/// What the producer tells the strategy after one send attempt.
///
/// Built with [`AttemptReport::new`] (fields may be added later).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttemptReport {
    /// Time from writing the request (or starting to connect) to the outcome.
    pub latency: Duration,
    /// How the attempt ended.
    pub outcome: Outcome,
}

impl AttemptReport {
    /// A report of `outcome` after `latency`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::{AttemptReport, Outcome, ResponseCode};
    ///
    /// let busy = AttemptReport::new(Duration::from_millis(4), Outcome::BrokerError(ResponseCode::SYSTEM_BUSY));
    /// assert!(busy.outcome.is_failure());
    /// ```
    pub const fn new(latency: Duration, outcome: Outcome) -> Self {
        Self { latency, outcome }
    }

    /// A successful attempt that took `latency`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::{AttemptReport, Outcome};
    ///
    /// let ok = AttemptReport::success(Duration::from_millis(3));
    /// assert_eq!(ok.outcome, Outcome::Success);
    /// ```
    pub const fn success(latency: Duration) -> Self {
        Self::new(latency, Outcome::Success)
    }
}

/// One broker's state as a strategy sees it, for `producer.stats()` and logs.
///
/// Built with [`BrokerFaultState::new`] (a healthy broker) and then adjusted
/// through its public fields (fields may be added later).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerFaultState {
    /// The broker name (`brokerName` in the route).
    pub broker: String,
    /// [`FaultStrategy::is_available`] at the snapshot time.
    pub available: bool,
    /// [`FaultStrategy::is_reachable`] at the snapshot time.
    pub reachable: bool,
    /// How long the broker stays isolated from the snapshot time, when it is
    /// isolated and the strategy knows for how long.
    pub isolated_for: Option<Duration>,
    /// The latency of the last reported attempt, when the strategy keeps it.
    pub last_latency: Option<Duration>,
}

impl BrokerFaultState {
    /// A healthy broker: available, reachable, not isolated, no latency known.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rmq_fault::BrokerFaultState;
    ///
    /// let mut state = BrokerFaultState::new("broker-a");
    /// state.available = false;
    /// state.isolated_for = Some(Duration::from_secs(5));
    /// assert_eq!(state.broker, "broker-a");
    /// ```
    pub fn new(broker: impl Into<String>) -> Self {
        Self {
            broker: broker.into(),
            available: true,
            reachable: true,
            isolated_for: None,
            last_latency: None,
        }
    }
}

/// Latency fault tolerance policy: which brokers a producer should avoid.
///
/// The producer holds one strategy as `Arc<dyn FaultStrategy>`, reports every send
/// attempt to it ([`on_result`]) and asks it, through [`select_index`], which queue
/// to send to. A background detector owned by the producer (not by the strategy)
/// asks for [`brokers_to_probe`], sends each a cheap probe (GET_MAX_OFFSET) and
/// reports back through [`on_probe`].
///
/// # Contract
///
/// * **Never block and stay cheap.** Methods are called on the send path of every
///   attempt, from async tasks. No I/O, no sleeping, no waiting on other tasks;
///   short critical sections on a `std::sync::Mutex` are fine.
/// * **Called from any task, concurrently.** Hence `Send + Sync` and `&self`;
///   there is no per-thread state, and "the broker used last" is passed explicitly.
/// * **Time is passed in.** Every method that needs the time gets `now`; an
///   implementation never reads the clock itself, so tests drive it with hand-made
///   `Instant`s and paused-time tests freeze it too. `now` may occasionally go
///   backwards a little between concurrent callers: saturate, never panic.
/// * **No lifecycle.** No start or shutdown; dropping the strategy is enough.
/// * **Never panic.** A panic would surface in the producer's send path.
/// * **Unknown brokers are healthy.** A broker never reported on is available and
///   reachable.
///
/// Only [`on_result`] and [`is_available`] are required; every other method has
/// a default that suits a strategy without reachability, probing or state to show.
///
/// # Example
///
/// A strategy that isolates a broker for 5 s after any failure:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::{Duration, Instant};
/// use rmq_fault::{AttemptReport, FaultStrategy, Outcome};
///
/// #[derive(Debug, Default)]
/// struct FiveSeconds {
///     until: Mutex<HashMap<String, Instant>>,
/// }
///
/// impl FaultStrategy for FiveSeconds {
///     fn on_result(&self, broker: &str, report: AttemptReport, now: Instant) {
///         if report.outcome.is_failure() {
///             let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
///             until.insert(broker.to_owned(), now + Duration::from_secs(5));
///         }
///     }
///
///     fn is_available(&self, broker: &str, now: Instant) -> bool {
///         let until = self.until.lock().unwrap_or_else(|e| e.into_inner());
///         until.get(broker).is_none_or(|end| now >= *end)
///     }
///
///     fn forget(&self, broker: &str) {
///         self.until.lock().unwrap_or_else(|e| e.into_inner()).remove(broker);
///     }
/// }
///
/// let strategy = FiveSeconds::default();
/// let t0 = Instant::now();
/// strategy.on_result(
///     "broker-a",
///     AttemptReport::new(Duration::from_millis(3), Outcome::ConnectError),
///     t0,
/// );
/// assert!(!strategy.is_available("broker-a", t0 + Duration::from_secs(1)));
/// assert!(strategy.is_available("broker-a", t0 + Duration::from_secs(5)));
/// assert!(strategy.is_available("broker-b", t0));
/// ```
///
/// [`on_result`]: FaultStrategy::on_result
/// [`is_available`]: FaultStrategy::is_available
/// [`on_probe`]: FaultStrategy::on_probe
/// [`brokers_to_probe`]: FaultStrategy::brokers_to_probe
/// [`select_index`]: crate::select_index
pub trait FaultStrategy: Send + Sync + fmt::Debug {
    /// Records how a send attempt to `broker` ended, at time `now`.
    ///
    /// Called exactly once per attempt, including cancelled ones.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// let now = Instant::now();
    /// strategy.on_result("broker-a", AttemptReport::new(Duration::from_millis(4), Outcome::Timeout), now);
    /// assert!(!strategy.is_available("broker-a", now));
    /// ```
    fn on_result(&self, broker: &str, report: AttemptReport, now: Instant);

    /// Whether `broker` may be chosen for a send at `now` (not isolated).
    ///
    /// ```
    /// # use std::time::Instant;
    /// use rmq_fault::{FaultStrategy, LatencyFaultStrategy};
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// assert!(strategy.is_available("never-seen", Instant::now()));
    /// ```
    fn is_available(&self, broker: &str, now: Instant) -> bool;

    /// Whether `broker` is believed reachable at `now`; the second choice of
    /// [`select_index`](crate::select_index) when no available broker is left.
    ///
    /// The default is [`is_available`](FaultStrategy::is_available): a strategy
    /// that does not track reachability gives isolated brokers no second chance,
    /// so selection falls through to [`least_bad`](FaultStrategy::least_bad).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// let now = Instant::now();
    /// strategy.on_result("broker-a", AttemptReport::new(Duration::from_millis(9), Outcome::ConnectError), now);
    /// assert!(!strategy.is_reachable("broker-a", now));
    /// ```
    fn is_reachable(&self, broker: &str, now: Instant) -> bool {
        self.is_available(broker, now)
    }

    /// The index in `candidates` of the broker to use when none is available:
    /// `None` only when `candidates` is empty or the strategy has no opinion.
    ///
    /// The default takes the first available candidate, else the first one.
    /// [`LatencyFaultStrategy`](crate::LatencyFaultStrategy) prefers available,
    /// then reachable brokers, then the isolation that ends first, then the lowest
    /// last latency.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// let t0 = Instant::now();
    /// let ms = Duration::from_millis;
    /// strategy.on_result("a", AttemptReport::new(ms(1), Outcome::TransportError), t0); // 10 s
    /// strategy.on_result("b", AttemptReport::success(ms(2000)), t0); // 5 s
    /// assert_eq!(strategy.least_bad(&["a", "b"], t0), Some(1));
    /// assert_eq!(strategy.least_bad(&[], t0), None);
    /// ```
    fn least_bad(&self, candidates: &[&str], now: Instant) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        Some(
            candidates
                .iter()
                .position(|b| self.is_available(b, now))
                .unwrap_or(0),
        )
    }

    /// Detector feedback: a probe of `broker` succeeded (`reachable`) or failed.
    ///
    /// The default ignores it.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome, ResponseCode};
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// let now = Instant::now();
    /// let busy = Outcome::BrokerError(ResponseCode::SYSTEM_BUSY);
    /// strategy.on_result("broker-a", AttemptReport::new(Duration::from_millis(2), busy), now);
    /// assert!(!strategy.is_reachable("broker-a", now));
    /// strategy.on_probe("broker-a", true, now);
    /// assert!(strategy.is_reachable("broker-a", now));
    /// ```
    fn on_probe(&self, broker: &str, reachable: bool, now: Instant) {
        let _ = (broker, reachable, now);
    }

    /// The brokers the detector should probe now. Returning a broker counts as
    /// checking it: it is not returned again before its next check time.
    ///
    /// The default probes nothing.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// let now = Instant::now();
    /// strategy.on_result("broker-a", AttemptReport::new(Duration::from_millis(2), Outcome::Timeout), now);
    /// assert_eq!(strategy.brokers_to_probe(now), vec!["broker-a".to_owned()]);
    /// assert!(strategy.brokers_to_probe(now).is_empty());
    /// ```
    fn brokers_to_probe(&self, now: Instant) -> Vec<String> {
        let _ = now;
        Vec::new()
    }

    /// The state of every broker the strategy tracks, at `now`.
    ///
    /// The default tracks nothing worth showing and returns an empty list.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy};
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// let now = Instant::now();
    /// strategy.on_result("broker-a", AttemptReport::success(Duration::from_millis(600)), now);
    /// let states = strategy.snapshot(now);
    /// assert_eq!(states[0].isolated_for, Some(Duration::from_secs(2)));
    /// ```
    fn snapshot(&self, now: Instant) -> Vec<BrokerFaultState> {
        let _ = now;
        Vec::new()
    }

    /// Drops everything known about `broker`: it left every route.
    ///
    /// The default does nothing.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
    ///
    /// let strategy = LatencyFaultStrategy::default();
    /// let now = Instant::now();
    /// strategy.on_result("broker-a", AttemptReport::new(Duration::ZERO, Outcome::ConnectError), now);
    /// strategy.forget("broker-a");
    /// assert!(strategy.is_available("broker-a", now));
    /// ```
    fn forget(&self, broker: &str) {
        let _ = broker;
    }
}

/// The strategy for users who opt out of latency fault tolerance: every broker is
/// always available and reachable, and nothing is recorded.
///
/// With it, [`select_index`](crate::select_index) still avoids the broker of the
/// previous attempt, as Java does with `sendLatencyFaultEnable = false`.
///
/// ```
/// # use std::time::{Duration, Instant};
/// use rmq_fault::{AttemptReport, Disabled, FaultStrategy, Outcome};
///
/// let now = Instant::now();
/// Disabled.on_result("broker-a", AttemptReport::new(Duration::ZERO, Outcome::ConnectError), now);
/// assert!(Disabled.is_available("broker-a", now));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Disabled;

impl FaultStrategy for Disabled {
    fn on_result(&self, _broker: &str, _report: AttemptReport, _now: Instant) {}

    fn is_available(&self, _broker: &str, _now: Instant) -> bool {
        true
    }

    fn is_reachable(&self, _broker: &str, _now: Instant) -> bool {
        true
    }
}
