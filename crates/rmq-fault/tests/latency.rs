//! `LatencyFaultStrategy` and `Disabled` with hand-made `Instant`s: the tables'
//! thresholds and windows, the update rules, reachability, the detector's
//! bookkeeping, eviction and the trait's default methods.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_fault::{
    AttemptReport, BrokerFaultState, DEFAULT_MAX_BROKERS, Disabled, FaultStrategy,
    LatencyFaultStrategy, MAX_ISOLATION, Outcome, ResponseCode, TableError, UpdateRule,
};

const NS: Duration = Duration::from_nanos(1);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn failures() -> [Outcome; 4] {
    [
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::TransportError,
        Outcome::BrokerError(ResponseCode::SYSTEM_BUSY),
    ]
}

/// Reports a success of `latency` at `t0` on a fresh strategy and checks the
/// broker is isolated exactly for `expected`: unavailable 1 ns before the end,
/// available exactly at the end.
fn assert_window(make: fn() -> LatencyFaultStrategy, latency: Duration, expected: Duration) {
    let strategy = make();
    let t0 = Instant::now();
    assert_eq!(
        strategy.isolation_for(latency),
        expected,
        "lookup of {latency:?}"
    );
    strategy.on_result("b", AttemptReport::success(latency), t0);
    if expected.is_zero() {
        assert!(strategy.is_available("b", t0), "{latency:?} isolates");
    } else {
        assert!(!strategy.is_available("b", t0), "{latency:?} at t0");
        assert!(
            !strategy.is_available("b", t0 + expected - NS),
            "{latency:?} just before {expected:?}"
        );
        assert!(
            strategy.is_available("b", t0 + expected),
            "{latency:?} exactly at {expected:?}"
        );
    }
}

#[test]
fn java_5x_thresholds_and_windows() {
    let cases = [
        (0, 0),
        (49, 0),
        (50, 0),
        (99, 0),
        (100, 0),
        (549, 0),
        (550, 2000),
        (1799, 2000),
        (1800, 5000),
        (2999, 5000),
        (3000, 6000),
        (4999, 6000),
        (5000, 10000),
        (14999, 10000),
        (15000, 30000),
        (600_000, 30000),
    ];
    for (latency, isolation) in cases {
        assert_window(LatencyFaultStrategy::default, ms(latency), ms(isolation));
    }
    // Sub-millisecond precision: just under a threshold stays below it.
    assert_window(LatencyFaultStrategy::default, ms(550) - NS, Duration::ZERO);
}

#[test]
fn java_4_9_thresholds_and_windows() {
    let cases = [
        (0, 0),
        (549, 0),
        (550, 30000),
        (999, 30000),
        (1000, 60000),
        (1999, 60000),
        (2000, 120000),
        (2999, 120000),
        (3000, 180000),
        (14999, 180000),
        (15000, 600000),
    ];
    for (latency, isolation) in cases {
        assert_window(LatencyFaultStrategy::java_4_9, ms(latency), ms(isolation));
    }
}

#[test]
fn constructors_expose_their_tables() {
    let s = LatencyFaultStrategy::new();
    let ms_of = |t: &[Duration]| t.iter().map(|d| d.as_millis()).collect::<Vec<_>>();
    assert_eq!(
        ms_of(s.latency_max()),
        [50, 100, 550, 1800, 3000, 5000, 15000]
    );
    assert_eq!(
        ms_of(s.not_available()),
        [0, 0, 2000, 5000, 6000, 10000, 30000]
    );
    assert_eq!(s.failure_latency(), ms(10000));
    assert_eq!(s.update_rule(), UpdateRule::Extend);
    assert!(!s.detector());
    assert_eq!(s.probe_interval(), ms(2000));
    assert_eq!(s.max_brokers(), DEFAULT_MAX_BROKERS);

    let j = LatencyFaultStrategy::java_4_9();
    assert_eq!(
        ms_of(j.latency_max()),
        [50, 100, 550, 1000, 2000, 3000, 15000]
    );
    assert_eq!(
        ms_of(j.not_available()),
        [0, 0, 30000, 60000, 120000, 180000, 600000]
    );
    assert_eq!(j.failure_latency(), ms(30000));
    assert_eq!(j.update_rule(), UpdateRule::Overwrite);
    assert!(format!("{j:?}").contains("Overwrite"));
}

#[test]
fn failures_isolate_at_once_for_the_failure_latency() {
    for (make, window) in [
        (LatencyFaultStrategy::java_5x as fn() -> _, ms(10_000)),
        (LatencyFaultStrategy::java_4_9, ms(600_000)),
    ] {
        for outcome in failures() {
            let strategy = make();
            let t0 = Instant::now();
            // Even a failure that took no time at all (a refused connect).
            strategy.on_result("b", AttemptReport::new(Duration::ZERO, outcome), t0);
            assert!(!strategy.is_available("b", t0), "{outcome:?}");
            assert!(!strategy.is_available("b", t0 + window - NS), "{outcome:?}");
            assert!(strategy.is_available("b", t0 + window), "{outcome:?}");
        }
    }
}

#[test]
fn a_failure_slower_than_the_failure_latency_looks_up_its_own_latency() {
    let strategy = LatencyFaultStrategy::default();
    let t0 = Instant::now();
    strategy.on_result("b", AttemptReport::new(ms(20_000), Outcome::Timeout), t0);
    assert!(!strategy.is_available("b", t0 + ms(30_000) - NS));
    assert!(strategy.is_available("b", t0 + ms(30_000)));
}

#[test]
fn extend_rule_never_shortens_an_isolation() {
    let strategy = LatencyFaultStrategy::default();
    let t0 = Instant::now();
    let timeout = AttemptReport::new(ms(3000), Outcome::Timeout);
    strategy.on_result("b", timeout, t0); // until t0 + 10 s

    // A fast success does not end it; a slow one (t0 + 1 s + 2 s) does not shorten it.
    strategy.on_result("b", AttemptReport::success(ms(1)), t0 + ms(500));
    strategy.on_result("b", AttemptReport::success(ms(600)), t0 + ms(1000));
    assert!(!strategy.is_available("b", t0 + ms(10_000) - NS));
    assert!(strategy.is_available("b", t0 + ms(10_000)));

    // A later failure extends it: t0 + 5 s + 10 s.
    strategy.on_result("b", timeout, t0 + ms(5000));
    assert!(!strategy.is_available("b", t0 + ms(15_000) - NS));
    assert!(strategy.is_available("b", t0 + ms(15_000)));

    // A slow success that ends later also extends: t0 + 14 s + 30 s.
    strategy.on_result("b", AttemptReport::success(ms(15_000)), t0 + ms(14_000));
    assert!(!strategy.is_available("b", t0 + ms(44_000) - NS));
    assert!(strategy.is_available("b", t0 + ms(44_000)));
}

#[test]
fn overwrite_rule_lets_a_success_end_an_isolation() {
    let strategy = LatencyFaultStrategy::java_4_9();
    let t0 = Instant::now();
    strategy.on_result("b", AttemptReport::new(ms(5), Outcome::TransportError), t0);
    assert!(!strategy.is_available("b", t0 + ms(1000)));
    strategy.on_result("b", AttemptReport::success(ms(10)), t0 + ms(1000));
    assert!(strategy.is_available("b", t0 + ms(1000)));

    // A long isolation overwritten by a shorter one.
    strategy.on_result("b", AttemptReport::success(ms(15_000)), t0 + ms(2000)); // 10 min
    strategy.on_result("b", AttemptReport::success(ms(600)), t0 + ms(3000)); // 30 s
    assert!(!strategy.is_available("b", t0 + ms(33_000) - NS));
    assert!(strategy.is_available("b", t0 + ms(33_000)));
}

#[test]
fn update_rule_can_be_chosen_independently_of_the_tables() {
    let strategy = LatencyFaultStrategy::default().with_update_rule(UpdateRule::Overwrite);
    let t0 = Instant::now();
    strategy.on_result("b", AttemptReport::new(ms(5), Outcome::Timeout), t0);
    strategy.on_result("b", AttemptReport::success(ms(5)), t0 + ms(1));
    assert!(strategy.is_available("b", t0 + ms(1)));

    let strategy = LatencyFaultStrategy::java_4_9().with_update_rule(UpdateRule::Extend);
    strategy.on_result("b", AttemptReport::new(ms(5), Outcome::Timeout), t0);
    strategy.on_result("b", AttemptReport::success(ms(5)), t0 + ms(1));
    assert!(!strategy.is_available("b", t0 + ms(1)));
}

#[test]
fn reachable_flag_transitions() {
    let t0 = Instant::now();
    let report = |o| AttemptReport::new(ms(1), o);

    for detector in [false, true] {
        let s = LatencyFaultStrategy::default().with_detector(detector);
        assert!(s.is_reachable("b", t0), "unknown brokers are reachable");
        s.on_result("b", report(Outcome::TransportError), t0);
        assert_eq!(s.is_reachable("b", t0), !detector, "transport error");
        s.on_result("b", AttemptReport::success(ms(1)), t0);
        assert!(s.is_reachable("b", t0), "success");
        s.on_result("b", report(Outcome::Timeout), t0);
        assert_eq!(s.is_reachable("b", t0), !detector, "timeout");
        s.on_result("b", AttemptReport::success(ms(1)), t0);
        s.on_result("b", report(Outcome::ConnectError), t0);
        assert!(!s.is_reachable("b", t0), "connect error");
        s.on_result("b", AttemptReport::success(ms(1)), t0);
        s.on_result("b", report(Outcome::BrokerError(ResponseCode(25))), t0);
        assert!(!s.is_reachable("b", t0), "broker error");

        // Cancelled leaves it as it was, both ways.
        s.on_result("b", report(Outcome::Cancelled), t0);
        assert!(!s.is_reachable("b", t0), "cancelled after a broker error");
        s.on_result("b", AttemptReport::success(ms(1)), t0);
        s.on_result("b", report(Outcome::Cancelled), t0);
        assert!(s.is_reachable("b", t0), "cancelled after a success");
    }
}

#[test]
fn cancelled_records_latency_without_the_failure_isolation() {
    let strategy = LatencyFaultStrategy::default();
    let t0 = Instant::now();
    strategy.on_result("fast", AttemptReport::new(ms(10), Outcome::Cancelled), t0);
    assert!(strategy.is_available("fast", t0));
    strategy.on_result("slow", AttemptReport::new(ms(600), Outcome::Cancelled), t0);
    assert!(!strategy.is_available("slow", t0 + ms(2000) - NS));
    assert!(strategy.is_available("slow", t0 + ms(2000)));
    let snapshot = strategy.snapshot(t0);
    assert_eq!(snapshot[0].broker, "fast");
    assert_eq!(snapshot[0].last_latency, Some(ms(10)));
}

#[test]
fn least_bad_when_all_are_isolated() {
    let strategy = LatencyFaultStrategy::default();
    let t0 = Instant::now();
    strategy.on_result("a", AttemptReport::new(ms(1), Outcome::TransportError), t0); // 10 s
    strategy.on_result("b", AttemptReport::success(ms(600)), t0); // 2 s
    strategy.on_result("c", AttemptReport::success(ms(2000)), t0); // 5 s
    assert_eq!(strategy.least_bad(&["a", "b", "c"], t0), Some(1));
    assert_eq!(strategy.least_bad(&["a", "c"], t0), Some(1));
    assert_eq!(strategy.least_bad(&["a"], t0), Some(0));
    assert_eq!(strategy.least_bad(&[], t0), None);

    // An available candidate (known or unknown) beats every isolated one.
    assert_eq!(strategy.least_bad(&["a", "b", "new"], t0), Some(2));
    assert_eq!(strategy.least_bad(&["a", "b", "c"], t0 + ms(2000)), Some(1));

    // Same end of isolation: the lower latency wins.
    strategy.on_result("d", AttemptReport::success(ms(700)), t0); // 2 s, 700 ms
    assert_eq!(strategy.least_bad(&["d", "b"], t0), Some(1));
    // Equal in everything: the first.
    strategy.on_result("e", AttemptReport::success(ms(600)), t0);
    assert_eq!(strategy.least_bad(&["e", "b"], t0), Some(0));

    // Reachable beats unreachable, even when its isolation lasts longer.
    strategy.on_result("u", AttemptReport::new(ms(1), Outcome::ConnectError), t0); // 10 s
    strategy.on_result("r", AttemptReport::success(ms(15_000)), t0); // 30 s
    assert_eq!(strategy.least_bad(&["u", "r"], t0), Some(1));
}

#[test]
fn probe_feedback_sets_reachability_only() {
    let strategy = LatencyFaultStrategy::default().with_detector(true);
    let t0 = Instant::now();
    strategy.on_result("b", AttemptReport::new(ms(1), Outcome::TransportError), t0);
    assert!(!strategy.is_reachable("b", t0));
    strategy.on_probe("b", true, t0 + ms(100));
    assert!(strategy.is_reachable("b", t0 + ms(100)));
    assert!(
        !strategy.is_available("b", t0 + ms(100)),
        "a probe does not end isolation"
    );
    strategy.on_probe("b", false, t0 + ms(200));
    assert!(!strategy.is_reachable("b", t0 + ms(200)));

    // Probes of brokers not tracked (never seen, or forgotten) are ignored.
    strategy.on_probe("ghost", false, t0);
    assert!(strategy.is_reachable("ghost", t0));
    assert_eq!(strategy.tracked(), 1);
}

#[test]
fn brokers_to_probe_respects_the_check_interval() {
    let strategy = LatencyFaultStrategy::default().with_detector(true);
    let t0 = Instant::now();
    strategy.on_result("healthy", AttemptReport::success(ms(5)), t0);
    strategy.on_result("down", AttemptReport::new(ms(1), Outcome::ConnectError), t0);
    strategy.on_result("slow", AttemptReport::success(ms(600)), t0); // isolated 2 s, reachable

    assert_eq!(strategy.brokers_to_probe(t0), ["down", "slow"]);
    assert!(strategy.brokers_to_probe(t0).is_empty(), "checked just now");
    assert!(strategy.brokers_to_probe(t0 + ms(2000) - NS).is_empty());
    // At t0 + 2 s "slow" is available and reachable again: nothing to probe.
    assert_eq!(strategy.brokers_to_probe(t0 + ms(2000)), ["down"]);

    // Unreachable but no longer isolated: still probed until a probe succeeds.
    assert_eq!(strategy.brokers_to_probe(t0 + ms(10_000)), ["down"]);
    strategy.on_probe("down", true, t0 + ms(10_050));
    assert!(strategy.brokers_to_probe(t0 + ms(20_000)).is_empty());

    // A custom interval.
    let strategy = LatencyFaultStrategy::default().with_probe_interval(ms(500));
    strategy.on_result("b", AttemptReport::new(ms(1), Outcome::Timeout), t0);
    assert_eq!(strategy.brokers_to_probe(t0), ["b"]);
    assert!(strategy.brokers_to_probe(t0 + ms(499)).is_empty());
    assert_eq!(strategy.brokers_to_probe(t0 + ms(500)), ["b"]);
}

#[test]
fn forget_drops_a_broker() {
    let strategy = LatencyFaultStrategy::default();
    let t0 = Instant::now();
    strategy.on_result("a", AttemptReport::new(ms(1), Outcome::ConnectError), t0);
    strategy.on_result("b", AttemptReport::success(ms(1)), t0);
    assert_eq!(strategy.tracked(), 2);
    strategy.forget("a");
    strategy.forget("never-seen");
    assert_eq!(strategy.tracked(), 1);
    assert!(strategy.is_available("a", t0));
    assert!(strategy.is_reachable("a", t0));
    assert!(strategy.brokers_to_probe(t0).is_empty());
    assert_eq!(strategy.snapshot(t0).len(), 1);
}

#[test]
fn tracked_brokers_are_capped() {
    let strategy = LatencyFaultStrategy::default().with_max_brokers(2);
    let t0 = Instant::now();
    strategy.on_result("down", AttemptReport::new(ms(1), Outcome::ConnectError), t0);
    strategy.on_result("ok", AttemptReport::success(ms(1)), t0 + ms(1));
    // A third broker evicts the healthy one, not the isolated one, though it is newer.
    strategy.on_result(
        "new",
        AttemptReport::new(ms(1), Outcome::Timeout),
        t0 + ms(2),
    );
    assert_eq!(strategy.tracked(), 2);
    let names: Vec<String> = strategy
        .snapshot(t0)
        .into_iter()
        .map(|s| s.broker)
        .collect();
    assert_eq!(names, ["down", "new"]);
    // All troubled: the least recently reported goes.
    strategy.on_result("x", AttemptReport::new(ms(1), Outcome::Timeout), t0 + ms(3));
    let names: Vec<String> = strategy
        .snapshot(t0)
        .into_iter()
        .map(|s| s.broker)
        .collect();
    assert_eq!(names, ["new", "x"]);
    // Updating a tracked broker evicts nothing.
    strategy.on_result("x", AttemptReport::success(ms(1)), t0 + ms(4));
    assert_eq!(strategy.tracked(), 2);

    assert_eq!(
        LatencyFaultStrategy::default()
            .with_max_brokers(0)
            .max_brokers(),
        1
    );
}

#[test]
fn snapshot_reports_each_broker() {
    let strategy = LatencyFaultStrategy::default().with_detector(true);
    let t0 = Instant::now();
    strategy.on_result("b", AttemptReport::new(ms(40), Outcome::TransportError), t0);
    strategy.on_result("a", AttemptReport::success(ms(7)), t0);
    let snapshot = strategy.snapshot(t0 + ms(4000));

    let mut a = BrokerFaultState::new("a");
    a.last_latency = Some(ms(7));
    let mut b = BrokerFaultState::new("b");
    b.available = false;
    b.reachable = false;
    b.isolated_for = Some(ms(6000));
    b.last_latency = Some(ms(40));
    assert_eq!(snapshot, [a, b]);

    let later = strategy.snapshot(t0 + ms(10_000));
    assert!(later[1].available);
    assert_eq!(later[1].isolated_for, None);
    // `now` earlier than the report: saturates, no panic.
    assert_eq!(strategy.snapshot(t0)[1].isolated_for, Some(ms(10_000)));
}

#[test]
fn custom_tables_are_validated() {
    let s = |v: u64| Duration::from_secs(v);
    let ok = LatencyFaultStrategy::with_tables(&[s(1), s(2)], &[s(5), s(5)], s(2));
    let ok = ok.expect("equal isolation durations are allowed");
    assert_eq!(ok.isolation_for(s(0)), Duration::ZERO);
    assert_eq!(ok.isolation_for(s(1)), s(5));
    assert_eq!(ok.failure_latency(), s(2));
    assert_eq!(ok.update_rule(), UpdateRule::Extend);

    let cases = [
        (vec![], vec![], TableError::Empty),
        (
            vec![s(1)],
            vec![s(1), s(2)],
            TableError::LengthMismatch {
                latency_max: 1,
                not_available: 2,
            },
        ),
        (
            vec![s(1), s(1)],
            vec![s(1), s(2)],
            TableError::LatencyNotAscending { index: 1 },
        ),
        (
            vec![s(1), s(2), s(3)],
            vec![s(1), s(3), s(2)],
            TableError::IsolationNotAscending { index: 2 },
        ),
        (
            vec![s(1)],
            vec![MAX_ISOLATION + NS],
            TableError::IsolationTooLong { index: 0 },
        ),
    ];
    for (latency, isolation, expected) in cases {
        let err = LatencyFaultStrategy::with_tables(&latency, &isolation, s(1)).err();
        assert_eq!(err.as_ref(), Some(&expected));
        assert!(!expected.to_string().is_empty());
    }
    assert!(LatencyFaultStrategy::with_tables(&[s(1)], &[MAX_ISOLATION], s(1)).is_ok());
}

#[test]
fn disabled_allows_everything() {
    let t0 = Instant::now();
    let d: &dyn FaultStrategy = &Disabled;
    for outcome in failures() {
        d.on_result("b", AttemptReport::new(ms(20_000), outcome), t0);
    }
    assert!(d.is_available("b", t0));
    assert!(d.is_reachable("b", t0));
    assert_eq!(d.least_bad(&["a", "b"], t0), Some(0));
    assert!(d.brokers_to_probe(t0).is_empty());
    assert!(d.snapshot(t0).is_empty());
    d.on_probe("b", false, t0);
    d.forget("b");
    assert!(d.is_reachable("b", t0));
}

/// A user strategy that implements only the two required methods.
#[derive(Debug, Default)]
struct Minimal {
    down: Mutex<HashMap<String, bool>>,
}

impl FaultStrategy for Minimal {
    fn on_result(&self, broker: &str, report: AttemptReport, _now: Instant) {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        down.insert(broker.to_owned(), report.outcome.is_failure());
    }

    fn is_available(&self, broker: &str, _now: Instant) -> bool {
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        !down.get(broker).copied().unwrap_or(false)
    }
}

#[test]
fn trait_defaults_suit_a_minimal_strategy() {
    let t0 = Instant::now();
    let s = Minimal::default();
    s.on_result("a", AttemptReport::new(ms(1), Outcome::Timeout), t0);
    assert!(!s.is_available("a", t0));
    assert!(!s.is_reachable("a", t0), "defaults to is_available");
    assert!(s.is_reachable("b", t0));
    assert_eq!(s.least_bad(&["a", "b"], t0), Some(1), "first available");
    assert_eq!(s.least_bad(&["a"], t0), Some(0), "else the first");
    assert_eq!(s.least_bad(&[], t0), None);
    assert!(s.brokers_to_probe(t0).is_empty());
    assert!(s.snapshot(t0).is_empty());
    s.on_probe("a", true, t0);
    s.forget("a");
    assert!(!s.is_available("a", t0), "defaults change nothing");
}

#[test]
fn outcome_classification() {
    for outcome in failures() {
        assert!(outcome.is_failure(), "{outcome:?}");
    }
    assert!(!Outcome::Success.is_failure());
    assert!(!Outcome::Cancelled.is_failure());
    let report = AttemptReport::success(ms(3));
    assert_eq!(report, AttemptReport::new(ms(3), Outcome::Success));
    assert_eq!(report.latency, ms(3));
}

#[test]
fn shared_across_threads_as_a_trait_object() {
    let strategy: Arc<dyn FaultStrategy> = Arc::new(LatencyFaultStrategy::default());
    let t0 = Instant::now();
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let strategy = Arc::clone(&strategy);
            std::thread::spawn(move || {
                for i in 0..1000u64 {
                    let broker = format!("broker-{}", (t + i) % 4);
                    let now = t0 + ms(i);
                    let outcome = if i % 10 == 0 {
                        Outcome::TransportError
                    } else {
                        Outcome::Success
                    };
                    strategy.on_result(&broker, AttemptReport::new(ms(i % 700), outcome), now);
                    let _ = strategy.is_available(&broker, now);
                    let _ = strategy.brokers_to_probe(now);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("worker panicked");
    }
    assert_eq!(strategy.snapshot(t0).len(), 4);
}
