//! [`select_index`]: Java 5.x's `QueueFilter` queue selection as a pure function.

use std::time::Instant;

use crate::strategy::FaultStrategy;

/// Picks the queue to send to from a topic's queue list, or `None` when the list
/// is empty.
///
/// `len` is the number of queues, `broker_of(i)` the broker name of queue `i`
/// (called only with `i < len`), `start` the producer's round-robin counter (Java
/// `sendWhichQueue.incrementAndGet()`; the walk begins at `start % len`), and
/// `avoid` the broker of the previous attempt of this send, if any.
///
/// The list is walked once, from `start`, wrapping around. The result is, in order
/// of preference (Java 5.x `selectOneMessageQueue` with latency fault tolerance,
/// protocol.md 11.3, plus a least-bad step):
///
/// 1. the first queue whose broker is [available](FaultStrategy::is_available)
///    and is not `avoid` — with every broker healthy this is plain round robin
///    that skips `avoid`;
/// 2. else the first queue whose broker is [reachable](FaultStrategy::is_reachable)
///    and is not `avoid`;
/// 3. else the first queue on the broker that [`least_bad`](FaultStrategy::least_bad)
///    picks among the brokers other than `avoid` (in the order first met), or the
///    first queue not on `avoid` if it has no opinion;
/// 4. else (every queue is on `avoid`) the plain next queue, `start % len`.
///
/// Each broker is asked at most once per call for availability, and reachability
/// is asked only when no broker is available; with a healthy first candidate this
/// is a single [`is_available`](FaultStrategy::is_available) call and no allocation.
/// The function never reads the clock: `now` is passed to the strategy.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rmq_fault::{select_index, AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome};
///
/// // Two brokers with two queues each.
/// let queues = ["broker-a", "broker-a", "broker-b", "broker-b"];
/// let strategy = LatencyFaultStrategy::default();
/// let now = Instant::now();
///
/// // Healthy: plain round robin.
/// assert_eq!(select_index(queues.len(), 5, |i| queues[i], &strategy, None, now), Some(1));
///
/// // broker-a failed: it is skipped.
/// strategy.on_result("broker-a", AttemptReport::new(Duration::ZERO, Outcome::ConnectError), now);
/// assert_eq!(select_index(queues.len(), 5, |i| queues[i], &strategy, None, now), Some(2));
///
/// // Retrying after broker-b failed: broker-b is avoided if anything else exists.
/// let retry = select_index(queues.len(), 2, |i| queues[i], &strategy, Some("broker-b"), now);
/// assert_eq!(retry, Some(0));
///
/// assert_eq!(select_index(0, 0, |i| queues[i], &strategy, None, now), None);
/// ```
pub fn select_index<'a, F>(
    len: usize,
    start: u32,
    broker_of: F,
    strategy: &dyn FaultStrategy,
    avoid: Option<&str>,
    now: Instant,
) -> Option<usize>
where
    F: Fn(usize) -> &'a str,
{
    if len == 0 {
        return None;
    }
    let first = usize::try_from(start).map_or(0, |s| s % len);

    // Brokers other than `avoid` found unavailable so far, in walk order, with the
    // first queue on each. Allocates only once a broker is found unavailable.
    let mut unavailable: Vec<(&'a str, usize)> = Vec::new();
    for step in 0..len {
        let index = (first + step) % len;
        let broker = broker_of(index);
        if avoid == Some(broker) || unavailable.iter().any(|(b, _)| *b == broker) {
            continue;
        }
        if strategy.is_available(broker, now) {
            return Some(index);
        }
        unavailable.push((broker, index));
    }

    if unavailable.is_empty() {
        return Some(first);
    }
    if let Some((_, index)) = unavailable
        .iter()
        .find(|(broker, _)| strategy.is_reachable(broker, now))
    {
        return Some(*index);
    }
    let names: Vec<&str> = unavailable.iter().map(|(b, _)| *b).collect();
    let pick = strategy
        .least_bad(&names, now)
        .and_then(|i| unavailable.get(i))
        .or_else(|| unavailable.first());
    Some(pick.map_or(first, |(_, index)| *index))
}
