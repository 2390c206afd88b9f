//! A fault strategy written by a user, in a crate that depends on `rmq-fault` only.
//!
//! Policy: ignore latency altogether; isolate a broker for a fixed time after
//! three consecutive failures; let the producer's detector end an isolation early
//! when a probe succeeds (Java's default strategy never does that).
//!
//! `main` drives the strategy with hand-made `Instant`s, the way a test would, and
//! prints each decision next to what the default `LatencyFaultStrategy` would do.
//! It exits non-zero if a decision is not the expected one.
//!
//! A producer would use it as `Arc::new(ConsecutiveFailures::new(3, 10 s))`,
//! stored as `Arc<dyn FaultStrategy>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rmq_fault::{
    AttemptReport, BrokerFaultState, FaultStrategy, LatencyFaultStrategy, Outcome, ResponseCode,
    select_index,
};

/// What the strategy remembers about one broker.
#[derive(Clone, Copy, Debug, Default)]
struct Health {
    /// Failures since the last success or isolation.
    failures: u32,
    /// End of the current isolation.
    isolated_until: Option<Instant>,
    /// Earliest time the detector may probe the broker again.
    next_probe: Option<Instant>,
}

impl Health {
    fn isolated(&self, now: Instant) -> bool {
        self.isolated_until.is_some_and(|end| now < end)
    }
}

/// Isolates a broker for `isolation` after `threshold` consecutive failures.
#[derive(Debug)]
struct ConsecutiveFailures {
    threshold: u32,
    isolation: Duration,
    probe_interval: Duration,
    brokers: Mutex<HashMap<String, Health>>,
}

impl ConsecutiveFailures {
    fn new(threshold: u32, isolation: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            isolation,
            probe_interval: Duration::from_secs(2),
            brokers: Mutex::new(HashMap::new()),
        }
    }

    /// Short critical sections only; a poisoned lock still holds usable data.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Health>> {
        self.brokers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FaultStrategy for ConsecutiveFailures {
    fn on_result(&self, broker: &str, report: AttemptReport, now: Instant) {
        let mut brokers = self.lock();
        let health = brokers.entry(broker.to_owned()).or_default();
        match report.outcome {
            // The latency is deliberately ignored.
            Outcome::Success => health.failures = 0,
            outcome if outcome.is_failure() => {
                health.failures += 1;
                if health.failures >= self.threshold {
                    health.failures = 0;
                    health.isolated_until = now.checked_add(self.isolation);
                }
            }
            // Cancelled, and outcomes added to rmq-fault later: no opinion.
            _ => {}
        }
    }

    fn is_available(&self, broker: &str, now: Instant) -> bool {
        self.lock().get(broker).is_none_or(|h| !h.isolated(now))
    }

    /// The candidate whose isolation ends first.
    fn least_bad(&self, candidates: &[&str], now: Instant) -> Option<usize> {
        let brokers = self.lock();
        candidates
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| {
                brokers
                    .get(**b)
                    .and_then(|h| h.isolated_until)
                    .map_or(Duration::ZERO, |end| end.saturating_duration_since(now))
            })
            .map(|(i, _)| i)
    }

    /// A successful probe ends the isolation at once (half-open → closed).
    fn on_probe(&self, broker: &str, reachable: bool, _now: Instant) {
        if let Some(health) = self.lock().get_mut(broker)
            && reachable
        {
            *health = Health::default();
        }
    }

    fn brokers_to_probe(&self, now: Instant) -> Vec<String> {
        let mut brokers = self.lock();
        let mut due: Vec<String> = brokers
            .iter_mut()
            .filter(|(_, h)| h.isolated(now) && h.next_probe.is_none_or(|at| now >= at))
            .map(|(name, h)| {
                h.next_probe = now.checked_add(self.probe_interval);
                name.clone()
            })
            .collect();
        due.sort_unstable();
        due
    }

    fn snapshot(&self, now: Instant) -> Vec<BrokerFaultState> {
        let mut states: Vec<BrokerFaultState> = self
            .lock()
            .iter()
            .map(|(name, h)| {
                let mut state = BrokerFaultState::new(name.as_str());
                state.available = !h.isolated(now);
                state.reachable = state.available;
                state.isolated_for = h
                    .isolated_until
                    .map(|end| end.saturating_duration_since(now))
                    .filter(|d| !d.is_zero());
                state
            })
            .collect();
        states.sort_unstable_by(|a, b| a.broker.cmp(&b.broker));
        states
    }

    fn forget(&self, broker: &str) {
        self.lock().remove(broker);
    }
}

/// Two brokers with four queues each, as a route lists them.
const QUEUES: [&str; 8] = [
    "broker-a", "broker-a", "broker-a", "broker-a", "broker-b", "broker-b", "broker-b", "broker-b",
];

/// Drives both strategies through one scenario and checks the decisions.
struct Scenario {
    t0: Instant,
    mine: Arc<dyn FaultStrategy>,
    default: Arc<dyn FaultStrategy>,
    mismatches: Vec<String>,
}

impl Scenario {
    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    fn report(&self, secs: f64, broker: &str, latency_ms: u64, outcome: Outcome) {
        let report = AttemptReport::new(Duration::from_millis(latency_ms), outcome);
        self.mine.on_result(broker, report, self.at(secs));
        self.default.on_result(broker, report, self.at(secs));
        println!("t+{secs:>4.1}s  {broker}: {outcome:?} after {latency_ms} ms");
    }

    /// Picks a queue with both strategies and checks this example's pick.
    fn pick(&mut self, secs: f64, start: u32, avoid: Option<&str>, expected: &str) {
        let now = self.at(secs);
        let choose = |s: &dyn FaultStrategy| {
            select_index(QUEUES.len(), start, |i| QUEUES[i], s, avoid, now)
                .map_or("none", |i| QUEUES[i])
        };
        let (mine, default) = (choose(&*self.mine), choose(&*self.default));
        let avoid = avoid.map_or(String::new(), |b| format!(", avoiding {b}"));
        println!(
            "t+{secs:>4.1}s  pick from queue {start}{avoid}: {mine} (default strategy: {default})"
        );
        if mine != expected {
            self.mismatches
                .push(format!("t+{secs}s: picked {mine}, expected {expected}"));
        }
    }

    fn probe(&mut self, secs: f64, reachable: bool, expected: &[&str]) {
        let now = self.at(secs);
        let due = self.mine.brokers_to_probe(now);
        if due.is_empty() {
            println!("t+{secs:>4.1}s  detector: nothing due for a probe");
        } else {
            println!("t+{secs:>4.1}s  detector: probe {due:?} -> reachable: {reachable}");
        }
        for broker in &due {
            self.mine.on_probe(broker, reachable, now);
        }
        if due != expected {
            self.mismatches
                .push(format!("t+{secs}s: probed {due:?}, expected {expected:?}"));
        }
    }

    fn show(&self, secs: f64) {
        for state in self.mine.snapshot(self.at(secs)) {
            let isolated = state
                .isolated_for
                .map_or("not isolated".to_owned(), |d| format!("isolated for {d:?}"));
            println!("           {}: {isolated}", state.broker);
        }
    }
}

fn main() -> Result<(), String> {
    let mut s = Scenario {
        t0: Instant::now(),
        mine: Arc::new(ConsecutiveFailures::new(3, Duration::from_secs(10))),
        default: Arc::new(LatencyFaultStrategy::default()),
        mismatches: Vec::new(),
    };
    let busy = Outcome::BrokerError(ResponseCode::SYSTEM_BUSY);

    println!("-- latency is ignored: a slow success does not isolate");
    s.report(0.0, "broker-b", 2500, Outcome::Success);
    s.pick(0.1, 4, None, "broker-b");

    println!("-- two failures are tolerated, the third isolates for 10 s");
    s.report(1.0, "broker-a", 3000, Outcome::Timeout);
    s.report(1.1, "broker-a", 5, Outcome::ConnectError);
    s.pick(1.2, 0, None, "broker-a");
    s.report(1.5, "broker-a", 2, busy);
    s.pick(1.6, 0, None, "broker-b");
    s.show(1.6);

    println!("-- the detector probes broker-a every 2 s; a success ends the isolation early");
    s.probe(2.0, false, &["broker-a"]);
    s.probe(3.0, true, &[]);
    s.pick(3.5, 0, None, "broker-b");
    s.probe(4.0, true, &["broker-a"]);
    s.pick(4.1, 0, None, "broker-a");

    println!("-- both isolated: the one whose isolation ends first");
    for (t, b) in [(5.0, "broker-b"), (5.1, "broker-b"), (5.2, "broker-b")] {
        s.report(t, b, 1, Outcome::TransportError);
    }
    for (t, b) in [(6.0, "broker-a"), (6.1, "broker-a"), (6.2, "broker-a")] {
        s.report(t, b, 1, Outcome::Timeout);
    }
    s.pick(7.0, 0, None, "broker-b");
    s.show(7.0);
    s.pick(15.2, 0, Some("broker-b"), "broker-a");

    println!("-- broker-a leaves the route");
    s.mine.forget("broker-a");
    s.show(15.3);

    if s.mismatches.is_empty() {
        println!("all decisions as expected");
        Ok(())
    } else {
        Err(s.mismatches.join("; "))
    }
}
