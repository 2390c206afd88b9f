//! [`ChaosDriver`]: applies a [`Schedule`] to a [`FakeCluster`] at (tokio) virtual
//! times and records, for each fault, evidence that it hit live traffic.

use std::fmt;
use std::time::Duration;

use rmq_protocol::{RequestCode, ResponseCode};
use tokio::time::Instant;

use super::schedule::{FaultEvent, FaultKind, Schedule};
use crate::fake::{FakeBroker, FakeCluster};

/// What happened to one fault event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredFault {
    /// The event.
    pub event: FaultEvent,
    /// When it was applied, from the start of [`ChaosDriver::run`] (`None`: never,
    /// e.g. an unknown broker). Equals `event.at` under paused time.
    pub applied_at: Option<Duration>,
    /// Whether it demonstrably hit traffic (see [`evidence`](Self::evidence)).
    pub fired: bool,
    /// What was observed: open connections when a kill, restart or pause hit (for a
    /// pause, also connections stuck in it at resume);
    /// requests the scripted rule took during a stall, slow or busy window; route
    /// queries the name server answered during a route change.
    pub evidence: String,
}

/// The record of one [`ChaosDriver::run`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultLog {
    /// One entry per event, in schedule order.
    pub faults: Vec<FiredFault>,
}

impl FaultLog {
    /// The kinds of `wanted` that did not fire at least once.
    pub fn not_fired(&self, wanted: &[FaultKind]) -> Vec<FaultKind> {
        wanted
            .iter()
            .copied()
            .filter(|k| !self.faults.iter().any(|f| f.fired && f.event.kind == *k))
            .collect()
    }

    /// How many events of `kind` fired.
    pub fn fired_count(&self, kind: FaultKind) -> usize {
        self.faults
            .iter()
            .filter(|f| f.fired && f.event.kind == kind)
            .count()
    }
}

impl fmt::Display for FaultLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fault log ({} events):", self.faults.len())?;
        for x in &self.faults {
            let mark = if x.fired { "fired" } else { "MISSED" };
            writeln!(f, "  {}  {mark}: {}", x.event, x.evidence)?;
        }
        Ok(())
    }
}

enum Step {
    Apply,
    Revert,
}

/// Applies a [`Schedule`] to the brokers of a [`FakeCluster`] and the route of one
/// topic.
///
/// Run it in a task next to the traffic, on a runtime with paused time and the
/// memory transport, so that a seed reproduces the fault timeline exactly. The
/// driver owns the brokers' script rules while it runs (it clears them when a
/// stall, slow or busy window ends).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> std::io::Result<()> {
/// use std::time::Duration;
/// use rmq_testkit::chaos::{ChaosDriver, Schedule, ScheduleConfig};
/// use rmq_testkit::fake::{FakeCluster, Transport};
///
/// let names = ["broker-a", "broker-b", "broker-c"];
/// let cluster = FakeCluster::builder()
///     .brokers(names)
///     .transport(Transport::memory())
///     .topic("T", 4)
///     .build()
///     .await?;
/// let schedule = Schedule::generate(1, &ScheduleConfig::new(names, Duration::from_millis(500)));
/// let driver = ChaosDriver::new(cluster.clone(), "T", 4);
/// let log = driver.run(&schedule).await; // ... with traffic running meanwhile
/// assert_eq!(log.faults.len(), schedule.events.len());
/// driver.restore().await; // everything healthy again
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ChaosDriver {
    cluster: FakeCluster,
    topic: String,
    queues: u32,
}

impl ChaosDriver {
    /// A driver for `topic`, which has `queues` queues on every broker of `cluster`.
    pub fn new(cluster: FakeCluster, topic: impl Into<String>, queues: u32) -> Self {
        Self {
            cluster,
            topic: topic.into(),
            queues,
        }
    }

    /// Applies every event at `start + event.at` and undoes it at `start +
    /// event.end()` (`start`: when this is called); returns once the last fault is
    /// undone.
    pub async fn run(&self, schedule: &Schedule) -> FaultLog {
        let start = Instant::now();
        let mut steps: Vec<(Duration, usize, Step)> = Vec::new();
        for (i, e) in schedule.events.iter().enumerate() {
            steps.push((e.at, i, Step::Apply));
            if e.kind != FaultKind::Restart {
                steps.push((e.end(), i, Step::Revert));
            }
        }
        // By time; at one instant undo before applying (events on one broker never
        // overlap, so this keeps a broker's steps in order).
        steps.sort_by_key(|(t, i, s)| (*t, matches!(s, Step::Apply), *i));
        let mut log: Vec<FiredFault> = schedule
            .events
            .iter()
            .map(|e| FiredFault {
                event: e.clone(),
                applied_at: None,
                fired: false,
                evidence: "not applied".to_owned(),
            })
            .collect();
        let mut applied_at: Vec<Instant> = vec![start; schedule.events.len()];
        for (t, i, step) in steps {
            tokio::time::sleep_until(start + t).await;
            let e = &schedule.events[i];
            let Some(b) = self.cluster.broker(&e.broker) else {
                log[i].evidence = format!("no broker named {}", e.broker);
                continue;
            };
            match step {
                Step::Apply => {
                    applied_at[i] = Instant::now();
                    log[i].applied_at = Some(applied_at[i].saturating_duration_since(start));
                    let (fired, evidence) = self.apply(e, b).await;
                    log[i].fired = fired;
                    log[i].evidence = evidence;
                }
                Step::Revert => {
                    if let Some((fired, evidence)) = self.revert(e, b, applied_at[i]).await {
                        log[i].fired = fired;
                        log[i].evidence = evidence;
                    }
                }
            }
        }
        FaultLog { faults: log }
    }

    /// Applies one event; returns (fired, evidence) for kinds whose evidence is
    /// known at once.
    async fn apply(&self, e: &FaultEvent, b: &FakeBroker) -> (bool, String) {
        let open = b.connection_count();
        let conns = (open > 0, format!("{open} open connection(s) hit"));
        let pending = (false, "window open".to_owned());
        match e.kind {
            FaultKind::Kill => {
                b.down().await;
                conns
            }
            FaultKind::Restart => match b.restart().await {
                Ok(()) => conns,
                Err(err) => (false, format!("restart failed: {err}")),
            },
            FaultKind::Pause => {
                b.pause();
                conns
            }
            FaultKind::Stall => {
                b.script_all().black_hole().install();
                pending
            }
            FaultKind::Slow => {
                b.script_all().delay(e.delay).install();
                pending
            }
            FaultKind::Busy => {
                b.script(RequestCode::SEND_MESSAGE_V2)
                    .reply_with(ResponseCode::SYSTEM_BUSY, "[chaos] system busy")
                    .install();
                pending
            }
            FaultKind::RouteRemove => {
                self.cluster
                    .name_server()
                    .unregister_topic(&self.topic, b.broker_name());
                pending
            }
            FaultKind::QueueCount => {
                b.create_topic(&self.topic, e.queues);
                pending
            }
            FaultKind::TopicMove => {
                b.delete_topic(&self.topic);
                pending
            }
        }
    }

    /// Undoes one event; returns (fired, evidence) for window kinds.
    async fn revert(
        &self,
        e: &FaultEvent,
        b: &FakeBroker,
        since: Instant,
    ) -> Option<(bool, String)> {
        match e.kind {
            FaultKind::Kill => {
                if let Err(err) = b.up().await {
                    return Some((false, format!("could not come back up: {err}")));
                }
                None
            }
            FaultKind::Restart => None,
            FaultKind::Pause => {
                // Connections opened during the pause were accepted and not served:
                // they count too.
                let open = b.connection_count();
                b.resume();
                (open > 0).then(|| (true, format!("{open} connection(s) stuck at resume")))
            }
            FaultKind::Stall | FaultKind::Slow | FaultKind::Busy => {
                b.clear_scripts();
                let n = b
                    .requests()
                    .iter()
                    .filter(|r| r.scripted && r.at >= since)
                    .count();
                Some((n > 0, format!("{n} request(s) taken by the rule")))
            }
            FaultKind::RouteRemove | FaultKind::QueueCount | FaultKind::TopicMove => {
                b.create_topic(&self.topic, self.queues);
                let n = self
                    .cluster
                    .name_server()
                    .requests_with_code(RequestCode::GET_ROUTEINFO_BY_TOPIC)
                    .iter()
                    .filter(|r| r.at >= since)
                    .count();
                Some((n > 0, format!("{n} route query(ies) answered meanwhile")))
            }
        }
    }

    /// Makes every broker healthy again: up, resumed, no script rules, and the topic
    /// back on `queues` queues and registered.
    pub async fn restore(&self) {
        for b in self.cluster.brokers() {
            if !b.is_up() {
                // Memory addresses cannot be taken by anyone else; TCP ones could.
                if let Err(err) = b.up().await {
                    tracing::warn!(broker = %b.broker_name(), error = %err, "chaos restore: broker stays down");
                }
            }
            b.resume();
            b.clear_scripts();
            b.create_topic(&self.topic, self.queues);
        }
    }
}
