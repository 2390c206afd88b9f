//! `select_index`: the QueueFilter order, with fixed strategies and the default one,
//! plus a property test over arbitrary queue lists and broker states.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rmq_fault::{
    AttemptReport, Disabled, FaultStrategy, LatencyFaultStrategy, Outcome, select_index,
};

/// 3 brokers × 8 queues, grouped by broker as routes list them.
fn queues() -> Vec<&'static str> {
    ["a", "b", "c"]
        .iter()
        .flat_map(|b| std::iter::repeat_n(*b, 8))
        .collect()
}

/// A strategy with fixed answers, counting the questions it is asked.
#[derive(Debug, Default)]
struct Fixed {
    unavailable: HashSet<String>,
    unreachable: HashSet<String>,
    least_bad: Option<Option<usize>>,
    asked: AtomicUsize,
}

impl Fixed {
    fn new(unavailable: &[&str], unreachable: &[&str]) -> Self {
        Self {
            unavailable: unavailable.iter().map(|s| s.to_string()).collect(),
            unreachable: unreachable.iter().map(|s| s.to_string()).collect(),
            ..Self::default()
        }
    }
}

impl FaultStrategy for Fixed {
    fn on_result(&self, _broker: &str, _report: AttemptReport, _now: Instant) {}

    fn is_available(&self, broker: &str, _now: Instant) -> bool {
        self.asked.fetch_add(1, Ordering::Relaxed);
        !self.unavailable.contains(broker)
    }

    fn is_reachable(&self, broker: &str, _now: Instant) -> bool {
        self.asked.fetch_add(1, Ordering::Relaxed);
        !self.unreachable.contains(broker)
    }

    fn least_bad(&self, candidates: &[&str], _now: Instant) -> Option<usize> {
        match self.least_bad {
            Some(answer) => answer,
            None => candidates.iter().position(|b| *b == "b").or(Some(0)),
        }
    }
}

fn pick(strategy: &dyn FaultStrategy, start: u32, avoid: Option<&str>) -> Option<usize> {
    let q = queues();
    select_index(q.len(), start, |i| q[i], strategy, avoid, Instant::now())
}

#[test]
fn all_available_is_plain_round_robin() {
    for strategy in [
        &Disabled as &dyn FaultStrategy,
        &LatencyFaultStrategy::default(),
    ] {
        for start in 0..100u32 {
            assert_eq!(pick(strategy, start, None), Some(start as usize % 24));
        }
    }
    // The counter wraps without trouble.
    assert_eq!(
        pick(&Disabled, u32::MAX, None),
        Some(u32::MAX as usize % 24)
    );
}

#[test]
fn avoid_skips_the_last_broker() {
    // Starting inside b's queues (8..16) with b avoided: the first queue of c.
    for start in 8..16 {
        assert_eq!(pick(&Disabled, start, Some("b")), Some(16));
    }
    // Starting elsewhere: unaffected.
    assert_eq!(pick(&Disabled, 3, Some("b")), Some(3));
    assert_eq!(pick(&Disabled, 20, Some("b")), Some(20));
    // Avoiding a broker not in the list changes nothing.
    assert_eq!(pick(&Disabled, 9, Some("zzz")), Some(9));
}

#[test]
fn an_isolated_broker_is_skipped() {
    let strategy = LatencyFaultStrategy::default();
    let t0 = Instant::now();
    strategy.on_result(
        "b",
        AttemptReport::new(Duration::ZERO, Outcome::ConnectError),
        t0,
    );
    let q = queues();
    for start in 0..24u32 {
        let i = select_index(q.len(), start, |i| q[i], &strategy, None, t0);
        let i = i.expect("non-empty list");
        assert_ne!(q[i], "b", "start {start}");
        let expected = if (8..16).contains(&start) {
            16
        } else {
            start as usize
        };
        assert_eq!(i, expected, "start {start}");
    }
    // Once the isolation is over, b is used again.
    let later = t0 + Duration::from_secs(10);
    assert_eq!(
        select_index(q.len(), 9, |i| q[i], &strategy, None, later),
        Some(9)
    );
}

#[test]
fn isolated_but_reachable_comes_before_least_bad() {
    // Everything isolated; only c reachable: c, though least_bad would say b.
    let strategy = Fixed::new(&["a", "b", "c"], &["a", "b"]);
    assert_eq!(pick(&strategy, 0, None), Some(16));
    assert_eq!(pick(&strategy, 17, None), Some(17));
    // All reachable: the first in walk order that is not avoided.
    let strategy = Fixed::new(&["a", "b", "c"], &[]);
    assert_eq!(pick(&strategy, 5, None), Some(5));
    assert_eq!(pick(&strategy, 5, Some("a")), Some(8));
}

#[test]
fn all_isolated_and_unreachable_uses_least_bad() {
    let strategy = Fixed::new(&["a", "b", "c"], &["a", "b", "c"]);
    // Fixed's least_bad prefers b: the first b queue met in the walk.
    assert_eq!(pick(&strategy, 0, None), Some(8));
    assert_eq!(pick(&strategy, 12, None), Some(12));
    assert_eq!(pick(&strategy, 20, None), Some(8));
    // b avoided: least_bad is not offered b, falls to its first candidate (c, from 9).
    assert_eq!(pick(&strategy, 9, Some("b")), Some(16));

    // No opinion, or a nonsense index: the first queue not on `avoid`.
    let mut strategy = Fixed::new(&["a", "b", "c"], &["a", "b", "c"]);
    strategy.least_bad = Some(None);
    assert_eq!(pick(&strategy, 9, Some("b")), Some(16));
    strategy.least_bad = Some(Some(99));
    assert_eq!(pick(&strategy, 3, None), Some(3));
}

#[test]
fn all_isolated_with_the_default_strategy_picks_the_shortest_isolation() {
    let strategy = LatencyFaultStrategy::default().with_detector(true);
    let t0 = Instant::now();
    let failed = AttemptReport::new(Duration::from_millis(1), Outcome::TransportError);
    strategy.on_result("a", failed, t0); // 10 s, unreachable
    strategy.on_result("c", failed, t0); // 10 s, unreachable
    strategy.on_result("b", failed, t0 + Duration::from_secs(1)); // ends 1 s later
    let q = queues();
    let now = t0 + Duration::from_secs(2);
    assert_eq!(
        select_index(q.len(), 10, |i| q[i], &strategy, None, now),
        Some(16)
    );
    assert_eq!(
        select_index(q.len(), 3, |i| q[i], &strategy, None, now),
        Some(3)
    );
    // a avoided: c (same end as a, earlier than b).
    assert_eq!(
        select_index(q.len(), 3, |i| q[i], &strategy, Some("a"), now),
        Some(16)
    );
}

#[test]
fn only_the_avoided_broker_left_gives_the_plain_next_queue() {
    let single = ["a"; 4];
    for strategy in [&Disabled as &dyn FaultStrategy, &Fixed::new(&["a"], &["a"])] {
        for start in 0..8u32 {
            let i = select_index(4, start, |i| single[i], strategy, Some("a"), Instant::now());
            assert_eq!(i, Some(start as usize % 4));
        }
    }
    // An isolated broker that is the only one and not avoided: least bad → itself.
    let strategy = Fixed::new(&["a"], &["a"]);
    let i = select_index(4, 6, |i| single[i], &strategy, None, Instant::now());
    assert_eq!(i, Some(2));
}

#[test]
fn empty_list_gives_none() {
    let never = |_: usize| -> &'static str { unreachable!("no queue to look at") };
    assert_eq!(
        select_index(0, 7, never, &Disabled, None, Instant::now()),
        None
    );
}

#[test]
fn each_broker_is_asked_at_most_once() {
    let strategy = Fixed::new(&["a", "b"], &[]);
    assert_eq!(pick(&strategy, 0, None), Some(16));
    // a, b, c: availability only; reachability is not needed once c is available.
    assert_eq!(strategy.asked.load(Ordering::Relaxed), 3);

    let strategy = Fixed::new(&["a", "b", "c"], &["a"]);
    assert_eq!(pick(&strategy, 0, None), Some(8));
    // Availability of a, b, c, then reachability of a and b.
    assert_eq!(strategy.asked.load(Ordering::Relaxed), 5);

    let healthy = Fixed::new(&[], &[]);
    assert_eq!(pick(&healthy, 4, None), Some(4));
    assert_eq!(healthy.asked.load(Ordering::Relaxed), 1);
}

/// A queue list (broker indexes), (available, reachable) per broker, a start and
/// the avoided broker.
type Scenario = (Vec<usize>, Vec<(bool, bool)>, u32, Option<usize>);

/// Queue lists over up to 5 brokers, broker states, a start and an avoided broker.
fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(0usize..5, 0..64),
        prop::collection::vec(any::<(bool, bool)>(), 5),
        any::<u32>(),
        prop::option::of(0usize..6),
    )
}

const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "not-in-list"];

proptest! {
    #[test]
    fn select_index_stays_in_range_and_honours_the_order(
        (list, states, start, avoid) in scenario()
    ) {
        let brokers: Vec<&str> = list.iter().map(|b| NAMES[*b]).collect();
        let unavailable: Vec<&str> =
            (0..5).filter(|b| !states[*b].0).map(|b| NAMES[b]).collect();
        let unreachable: Vec<&str> =
            (0..5).filter(|b| !states[*b].1).map(|b| NAMES[b]).collect();
        let strategy = Fixed::new(&unavailable, &unreachable);
        let avoid = avoid.map(|b| NAMES[b]);

        let pick = select_index(brokers.len(), start, |i| brokers[i], &strategy, avoid, Instant::now());

        prop_assert_eq!(pick.is_none(), brokers.is_empty());
        let Some(i) = pick else { return Ok(()) };
        prop_assert!(i < brokers.len());
        let chosen = brokers[i];
        let others: Vec<&str> = brokers.iter().copied().filter(|b| Some(*b) != avoid).collect();
        if others.is_empty() {
            prop_assert_eq!(i, start as usize % brokers.len());
        } else {
            prop_assert!(Some(chosen) != avoid, "picked the avoided broker");
        }
        if others.iter().any(|b| !unavailable.contains(b)) {
            prop_assert!(!unavailable.contains(&chosen), "skipped an available broker");
        } else if others.iter().any(|b| !unreachable.contains(b)) {
            prop_assert!(!unreachable.contains(&chosen), "skipped a reachable broker");
        }
        // Among acceptable queues, the walk from `start` takes the first of them:
        // no queue of the chosen broker lies between `start` and `i`.
        let first = start as usize % brokers.len();
        let steps = (i + brokers.len() - first) % brokers.len();
        for s in 0..steps {
            prop_assert_ne!(brokers[(first + s) % brokers.len()], chosen);
        }
    }

    #[test]
    fn select_index_with_the_default_strategy_stays_in_range(
        list in prop::collection::vec(0usize..5, 0..64),
        failures in prop::collection::vec((0usize..5, 0u64..20_000, 0u8..6), 0..20),
        start in any::<u32>(),
        avoid in prop::option::of(0usize..6),
        at in 0u64..40_000,
    ) {
        let strategy = LatencyFaultStrategy::default().with_detector(true);
        let t0 = Instant::now();
        for (n, (broker, latency, kind)) in failures.iter().enumerate() {
            let outcome = match kind {
                0 => Outcome::Success,
                1 => Outcome::Timeout,
                2 => Outcome::ConnectError,
                3 => Outcome::TransportError,
                4 => Outcome::Cancelled,
                _ => Outcome::BrokerError(rmq_fault::ResponseCode::SYSTEM_BUSY),
            };
            let report = AttemptReport::new(Duration::from_millis(*latency), outcome);
            strategy.on_result(NAMES[*broker], report, t0 + Duration::from_millis(n as u64 * 100));
        }
        let brokers: Vec<&str> = list.iter().map(|b| NAMES[*b]).collect();
        let now = t0 + Duration::from_millis(at);
        let pick = select_index(brokers.len(), start, |i| brokers[i], &strategy, avoid.map(|b| NAMES[b]), now);
        prop_assert_eq!(pick.is_none(), brokers.is_empty());
        if let Some(i) = pick {
            prop_assert!(i < brokers.len());
        }
    }
}
