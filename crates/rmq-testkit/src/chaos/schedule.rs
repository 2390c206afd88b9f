//! [`Schedule`]: the fault events of one chaos run, a pure function of a seed and a
//! [`ScheduleConfig`].

use std::fmt;
use std::time::Duration;

use super::rng::ChaosRng;

/// The kinds of fault a [`Schedule`] can hold. Each targets one broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// The broker goes down (connections reset, connects refused) and comes back up
    /// after the event's duration.
    Kill,
    /// The broker restarts at once: every connection is reset, the listener stays.
    Restart,
    /// Every request is read and never answered (a hung broker), for the duration.
    Stall,
    /// The broker stops reading and writing (SIGSTOP-like), for the duration; what
    /// queued up is handled at resume.
    Pause,
    /// Every request is handled late (after the event's `delay`), for the duration:
    /// a send may be stored after its client gave up.
    Slow,
    /// Every send is answered SYSTEM_BUSY (2) without being stored, for the duration.
    Busy,
    /// The broker's queues of the topic disappear from the name server's route; the
    /// broker keeps serving clients with a stale route.
    RouteRemove,
    /// The topic's queue count on the broker changes (and is registered), so clients
    /// with a stale route may address queues that no longer exist.
    QueueCount,
    /// The topic moves away from the broker: deleted there (sends answered
    /// TOPIC_NOT_EXIST, route without the broker), re-created after the duration.
    TopicMove,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Kill,
        FaultKind::Restart,
        FaultKind::Stall,
        FaultKind::Pause,
        FaultKind::Slow,
        FaultKind::Busy,
        FaultKind::RouteRemove,
        FaultKind::QueueCount,
        FaultKind::TopicMove,
    ];

    /// A short lower-case name (`kill`, `route-remove`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Restart => "restart",
            FaultKind::Stall => "stall",
            FaultKind::Pause => "pause",
            FaultKind::Slow => "slow",
            FaultKind::Busy => "busy",
            FaultKind::RouteRemove => "route-remove",
            FaultKind::QueueCount => "queue-count",
            FaultKind::TopicMove => "topic-move",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One fault: what, where, when (from the start of the run) and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// Index in the schedule.
    pub index: usize,
    /// When it starts, from the start of the run.
    pub at: Duration,
    /// How long it lasts (zero for [`FaultKind::Restart`]).
    pub duration: Duration,
    /// The kind.
    pub kind: FaultKind,
    /// The broker it hits.
    pub broker: String,
    /// [`FaultKind::Slow`]: how late each request is handled.
    pub delay: Duration,
    /// [`FaultKind::QueueCount`]: the new queue count.
    pub queues: u32,
}

impl FaultEvent {
    /// When it ends, from the start of the run.
    pub fn end(&self) -> Duration {
        self.at + self.duration
    }
}

impl fmt::Display for FaultEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{:<3} +{:>8.3}s {:<12} {:<10} for {:.3}s",
            self.index,
            self.at.as_secs_f64(),
            self.kind.name(),
            self.broker,
            self.duration.as_secs_f64()
        )?;
        match self.kind {
            FaultKind::Slow => write!(f, " (delay {} ms)", self.delay.as_millis()),
            FaultKind::QueueCount => write!(f, " ({} queues)", self.queues),
            _ => Ok(()),
        }
    }
}

/// What a [`Schedule`] is generated from (besides the seed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// The brokers faults may hit.
    pub brokers: Vec<String>,
    /// Faults start within `0..span`.
    pub span: Duration,
    /// Time between the starts of consecutive faults: `min..max`.
    pub gap: (Duration, Duration),
    /// How long a fault lasts: `min..max`.
    pub duration: (Duration, Duration),
    /// The kinds to draw from.
    pub kinds: Vec<FaultKind>,
    /// The first `rounds × kinds.len()` events use every kind `rounds` times (each
    /// round in a seeded order), so that each kind gets several chances to hit
    /// traffic; later events draw kinds at random. Default 2.
    pub rounds: usize,
    /// At most this many brokers are faulted at any time (at least one stays
    /// healthy by default: `brokers.len() - 1`).
    pub max_faulted: usize,
    /// The topic's queue count per broker ([`FaultKind::QueueCount`] draws another).
    pub queues: u32,
}

impl ScheduleConfig {
    /// Reliability matrix G1's mix over `brokers` for `span`: faults every
    /// 200 ms – 2 s, lasting 200 ms – 2 s, every kind, one broker always healthy.
    pub fn new<I, S>(brokers: I, span: Duration) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let brokers: Vec<String> = brokers.into_iter().map(Into::into).collect();
        Self {
            max_faulted: brokers.len().saturating_sub(1).max(1),
            brokers,
            span,
            gap: (Duration::from_millis(200), Duration::from_secs(2)),
            duration: (Duration::from_millis(200), Duration::from_secs(2)),
            kinds: FaultKind::ALL.to_vec(),
            rounds: 2,
            queues: 4,
        }
    }
}

/// The fault events of one run, ordered by start time.
///
/// ```
/// use std::time::Duration;
/// use rmq_testkit::chaos::{FaultKind, Schedule, ScheduleConfig};
///
/// let config = ScheduleConfig::new(["broker-a", "broker-b", "broker-c"], Duration::from_secs(10));
/// let s = Schedule::generate(7, &config);
/// assert_eq!(s, Schedule::generate(7, &config)); // a seed reproduces it
/// assert!(FaultKind::ALL.iter().all(|k| s.events.iter().any(|e| e.kind == *k)));
/// println!("{s}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The seed it was generated from.
    pub seed: u64,
    /// The events, by start time.
    pub events: Vec<FaultEvent>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Schedule {
    /// Generates the schedule of `seed`. While the span allows, the first
    /// `rounds × kinds.len()` events use every kind `rounds` times (gaps and
    /// durations shortened to `span / (rounds × kinds + 1)` when needed); later ones draw
    /// kinds at random. Events on one broker never overlap, and at most
    /// `max_faulted` brokers are faulted at once.
    pub fn generate(seed: u64, config: &ScheduleConfig) -> Self {
        let mut rng = ChaosRng::fork(seed, 0x5C4E_D01E);
        let mut first_round = Vec::new();
        for _ in 0..config.rounds {
            let mut round = config.kinds.clone();
            rng.shuffle(&mut round);
            first_round.extend(round);
        }
        // The first round must fit in the span: shorten its gaps if needed.
        let round_gap_max = ms(config.span) / (first_round.len() as u64 + 1);
        let mut free_at: Vec<u64> = vec![0; config.brokers.len()];
        let mut events = Vec::new();
        let mut t = 0u64;
        let span = ms(config.span);
        if config.brokers.is_empty() || config.kinds.is_empty() {
            return Self { seed, events };
        }
        loop {
            let in_first_round = events.len() < first_round.len();
            let (gmin, gmax) = (ms(config.gap.0), ms(config.gap.1));
            let gmax = if in_first_round {
                gmax.min(round_gap_max).max(gmin + 1)
            } else {
                gmax
            };
            t += rng.range(gmin, gmax.max(gmin + 1));
            // Wait until a broker is free and fewer than max_faulted are faulted.
            loop {
                let faulted = free_at.iter().filter(|&&f| f > t).count();
                if faulted < config.max_faulted && free_at.iter().any(|&f| f <= t) {
                    break;
                }
                t = free_at
                    .iter()
                    .copied()
                    .filter(|&f| f > t)
                    .min()
                    .unwrap_or(t + 1);
            }
            if t >= span {
                break;
            }
            let kind = match first_round.get(events.len()) {
                Some(k) => *k,
                None => config.kinds[rng.index(config.kinds.len())],
            };
            let free: Vec<usize> = (0..free_at.len()).filter(|&i| free_at[i] <= t).collect();
            let b = free[rng.index(free.len())];
            let (dmin, dmax) = (ms(config.duration.0), ms(config.duration.1));
            let dmax = if in_first_round {
                dmax.min(round_gap_max).max(dmin + 1)
            } else {
                dmax.max(dmin + 1)
            };
            let duration = match kind {
                FaultKind::Restart => 0,
                _ => rng.range(dmin, dmax),
            };
            let delay = match kind {
                FaultKind::Slow => rng.range(100, 1500),
                _ => 0,
            };
            let queues = match kind {
                FaultKind::QueueCount => {
                    let q = u32::try_from(rng.range(1, 9)).unwrap_or(1);
                    if q == config.queues { q % 8 + 1 } else { q }
                }
                _ => config.queues,
            };
            // A short quiet time after each fault on the same broker.
            free_at[b] = t + duration + 50;
            events.push(FaultEvent {
                index: events.len(),
                at: Duration::from_millis(t),
                duration: Duration::from_millis(duration),
                kind,
                broker: config.brokers[b].clone(),
                delay: Duration::from_millis(delay),
                queues,
            });
        }
        Self { seed, events }
    }

    /// When the last fault ends.
    pub fn end(&self) -> Duration {
        self.events
            .iter()
            .map(FaultEvent::end)
            .max()
            .unwrap_or_default()
    }

    /// The kinds of `wanted` that no event of this schedule has.
    pub fn missing_kinds(&self, wanted: &[FaultKind]) -> Vec<FaultKind> {
        wanted
            .iter()
            .copied()
            .filter(|k| !self.events.iter().any(|e| e.kind == *k))
            .collect()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "schedule of seed {} ({} events):",
            self.seed,
            self.events.len()
        )?;
        for e in &self.events {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(span_s: u64) -> ScheduleConfig {
        ScheduleConfig::new(
            ["broker-a", "broker-b", "broker-c"],
            Duration::from_secs(span_s),
        )
    }

    #[test]
    fn a_seed_reproduces_its_schedule_and_seeds_differ() {
        let c = config(20);
        assert_eq!(Schedule::generate(3, &c), Schedule::generate(3, &c));
        assert_ne!(
            Schedule::generate(3, &c).events,
            Schedule::generate(4, &c).events
        );
    }

    #[test]
    fn every_kind_fits_even_a_short_span_and_limits_hold() {
        for seed in 0..200 {
            for span in [5, 10, 60] {
                let c = config(span);
                let s = Schedule::generate(seed, &c);
                assert!(
                    s.missing_kinds(&FaultKind::ALL).is_empty(),
                    "seed {seed} span {span}: {s}"
                );
                assert!(s.events.windows(2).all(|w| w[0].at <= w[1].at));
                for (i, e) in s.events.iter().enumerate() {
                    assert!(e.at < c.span);
                    if e.kind == FaultKind::QueueCount {
                        assert!((1..=8).contains(&e.queues) && e.queues != c.queues);
                    }
                    // No overlap on one broker; at most two of three faulted at once.
                    let overlapping: Vec<&FaultEvent> = s.events[..i]
                        .iter()
                        .filter(|o| o.end() + Duration::from_millis(50) > e.at)
                        .collect();
                    assert!(overlapping.iter().all(|o| o.broker != e.broker), "{s}");
                    assert!(overlapping.len() < c.max_faulted, "{s}");
                }
            }
        }
    }

    #[test]
    fn display_lists_every_event() {
        let s = Schedule::generate(1, &config(10));
        let text = s.to_string();
        assert!(text.starts_with("schedule of seed 1"));
        assert_eq!(text.lines().count(), s.events.len() + 1);
        assert!(text.contains("route-remove"));
    }
}
