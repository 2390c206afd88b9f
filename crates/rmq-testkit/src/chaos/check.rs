//! The checker: what every chaos run must satisfy, from the client's record of its
//! sends ([`Ledger`]) and what the brokers stored ([`StoredCopy`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::fake::FakeCluster;

/// How a failed send says its message may stand (mirror of a client's delivery
/// state; the testkit does not depend on the producer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailedDelivery {
    /// Never left the client: must not be stored.
    NotSent,
    /// Written, no answer: may be stored.
    Indeterminate,
    /// The broker answered and did not store it: must not be stored.
    Rejected,
}

/// How one send call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The broker acknowledged it: it must be stored.
    Acked,
    /// It failed.
    Failed {
        /// What the client says about it.
        delivery: FailedDelivery,
        /// The error, for reports.
        detail: String,
    },
}

/// How the send was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SendMode {
    /// Awaited by the caller.
    Sync,
    /// Completed through a callback.
    Async,
}

/// One send call as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRecord {
    /// The message's UNIQ_KEY.
    pub uniq_key: String,
    /// The body (unique per send in a chaos run, e.g. `"s1-42"`).
    pub body: Bytes,
    /// Sync or async.
    pub mode: SendMode,
    /// When the call was made, from the start of the run.
    pub started: Duration,
    /// When it resolved (returned, or its callback ran), from the start of the run.
    pub resolved: Duration,
    /// The call's timeout: it must resolve by `started + timeout` (+ tolerance).
    pub timeout: Duration,
    /// Attempts the client made (each may store one copy).
    pub attempts: u32,
    /// The outcome.
    pub outcome: SendOutcome,
}

/// The client-side record of a chaos run: cheap to clone, safe to fill from
/// callbacks. Times are tokio times relative to when the ledger was created.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use rmq_testkit::chaos::{Ledger, SendMode, SendOutcome, SendRecord};
///
/// let ledger = Ledger::new();
/// let started = ledger.now();
/// // ... send ...
/// ledger.push(SendRecord {
///     uniq_key: "K1".into(),
///     body: "s0-0".into(),
///     mode: SendMode::Sync,
///     started,
///     resolved: ledger.now(),
///     timeout: Duration::from_secs(3),
///     attempts: 1,
///     outcome: SendOutcome::Acked,
/// });
/// assert_eq!(ledger.records().len(), 1);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Ledger {
    start: Instant,
    records: Arc<Mutex<Vec<SendRecord>>>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Ledger {
    /// An empty ledger starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            records: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SendRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time since the ledger was created.
    pub fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    /// When the ledger was created.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Adds a record.
    pub fn push(&self, record: SendRecord) {
        self.lock().push(record);
    }

    /// Every record so far, in completion order.
    pub fn records(&self) -> Vec<SendRecord> {
        self.lock().clone()
    }
}

/// One stored copy of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCopy {
    /// The broker that stored it.
    pub broker: String,
    /// The queue it was stored in.
    pub queue_id: i32,
    /// Its offset in that queue (the order the broker stored it in).
    pub queue_offset: i64,
    /// Its UNIQ_KEY property (`None`: the client sent none).
    pub uniq_key: Option<String>,
    /// Its body as stored.
    pub body: Bytes,
}

/// Every message of `topic` stored on any broker of `cluster`.
pub fn stored_copies(cluster: &FakeCluster, topic: &str) -> Vec<StoredCopy> {
    cluster
        .brokers()
        .iter()
        .flat_map(|b| {
            b.messages_for(topic).into_iter().map(|m| StoredCopy {
                broker: b.broker_name().to_owned(),
                queue_id: m.queue_id,
                queue_offset: m.queue_offset,
                uniq_key: m.uniq_key.clone(),
                body: m.body.clone(),
            })
        })
        .collect()
}

/// The result of [`check`]: counts, and every violated invariant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Send calls.
    pub sends: usize,
    /// Acknowledged sends.
    pub acked: usize,
    /// Failed sends by delivery state.
    pub failed: BTreeMap<FailedDelivery, usize>,
    /// Stored copies.
    pub stored: usize,
    /// Stored copies beyond the first of each message (duplicates from retries).
    pub duplicates: usize,
    /// Indeterminate sends that were stored after all / that were not.
    pub indeterminate_stored: usize,
    /// See `indeterminate_stored`.
    pub indeterminate_not_stored: usize,
    /// Attempts over all sends (retries = attempts − sends).
    pub attempts: u64,
    /// Latest resolution relative to the call's deadline (negative: early).
    pub max_overshoot_ms: i64,
    /// Broken invariants, one line each. Empty means the run passed.
    pub violations: Vec<String>,
}

impl CheckReport {
    /// Whether no invariant was broken.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Messages acknowledged but not stored (must be 0).
    pub fn lost(&self) -> usize {
        self.violations
            .iter()
            .filter(|v| v.starts_with("lost"))
            .count()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sends {} acked {} failed {:?}; stored {} duplicates {} lost {}; indeterminate stored {} / not {}; attempts {}; max overshoot {} ms",
            self.sends,
            self.acked,
            self.failed,
            self.stored,
            self.duplicates,
            self.lost(),
            self.indeterminate_stored,
            self.indeterminate_not_stored,
            self.attempts,
            self.max_overshoot_ms
        )?;
        for v in self.violations.iter().take(30) {
            writeln!(f, "  VIOLATION: {v}")?;
        }
        if self.violations.len() > 30 {
            writeln!(f, "  ... and {} more", self.violations.len() - 30)?;
        }
        Ok(())
    }
}

fn as_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Checks reliability matrix G1's invariants:
///
/// * **lost = 0**: every acknowledged send is stored;
/// * every stored copy belongs to a send of the ledger that was acknowledged or
///   failed `Indeterminate` — never `NotSent` or `Rejected`, never unknown;
/// * duplicates come only from retries: a send has at most `attempts` copies, and
///   every copy of a body carries that send's UNIQ_KEY;
/// * every call resolved by `started + timeout + tolerance`.
pub fn check(records: &[SendRecord], stored: &[StoredCopy], tolerance: Duration) -> CheckReport {
    let mut r = CheckReport {
        sends: records.len(),
        max_overshoot_ms: i64::MIN,
        ..CheckReport::default()
    };
    let mut by_key: BTreeMap<&str, &SendRecord> = BTreeMap::new();
    let mut by_body: BTreeMap<&[u8], &SendRecord> = BTreeMap::new();
    for rec in records {
        if by_key.insert(&rec.uniq_key, rec).is_some() {
            r.violations
                .push(format!("two sends share UNIQ_KEY {}", rec.uniq_key));
        }
        by_body.insert(&rec.body, rec);
        r.attempts += u64::from(rec.attempts);
        match &rec.outcome {
            SendOutcome::Acked => r.acked += 1,
            SendOutcome::Failed { delivery, .. } => *r.failed.entry(*delivery).or_default() += 1,
        }
        let overshoot = as_ms(rec.resolved) - as_ms(rec.started + rec.timeout);
        r.max_overshoot_ms = r.max_overshoot_ms.max(overshoot);
        if rec.resolved > rec.started + rec.timeout + tolerance {
            r.violations.push(format!(
                "late: {:?} send {} ({:?}) started at {:?} resolved at {:?}, after its {:?} deadline",
                rec.mode,
                rec.uniq_key,
                String::from_utf8_lossy(&rec.body),
                rec.started,
                rec.resolved,
                rec.timeout
            ));
        }
    }
    if records.is_empty() {
        r.max_overshoot_ms = 0;
    }
    r.stored = stored.len();
    let mut copies: BTreeMap<&str, Vec<&StoredCopy>> = BTreeMap::new();
    for c in stored {
        let Some(key) = c.uniq_key.as_deref() else {
            r.violations.push(format!(
                "stored without UNIQ_KEY on {}: {:?}",
                c.broker,
                String::from_utf8_lossy(&c.body)
            ));
            continue;
        };
        copies.entry(key).or_default().push(c);
        if let Some(rec) = by_body.get(c.body.as_ref())
            && rec.uniq_key != key
        {
            r.violations.push(format!(
                "duplicate with another UNIQ_KEY: body {:?} sent as {} stored on {} as {key}",
                String::from_utf8_lossy(&c.body),
                rec.uniq_key,
                c.broker
            ));
        }
    }
    for (key, cs) in &copies {
        let Some(rec) = by_key.get(key) else {
            r.violations.push(format!(
                "phantom: {} cop(ies) of unknown UNIQ_KEY {key} on {}",
                cs.len(),
                cs[0].broker
            ));
            continue;
        };
        r.duplicates += cs.len() - 1;
        let brokers: BTreeSet<&str> = cs.iter().map(|c| c.broker.as_str()).collect();
        if cs.len() > rec.attempts as usize {
            r.violations.push(format!(
                "{} copies of {key} but only {} attempt(s) (brokers {brokers:?})",
                cs.len(),
                rec.attempts
            ));
        }
        match &rec.outcome {
            SendOutcome::Acked => {}
            SendOutcome::Failed {
                delivery: FailedDelivery::Indeterminate,
                ..
            } => r.indeterminate_stored += 1,
            SendOutcome::Failed { delivery, detail } => r.violations.push(format!(
                "stored although reported {delivery:?}: {key} on {brokers:?} ({detail})"
            )),
        }
    }
    for rec in records {
        let is_stored = copies.contains_key(rec.uniq_key.as_str());
        match &rec.outcome {
            SendOutcome::Acked if !is_stored => r.violations.push(format!(
                "lost: {:?} send {} ({:?}) was acknowledged at {:?} but is not stored",
                rec.mode,
                rec.uniq_key,
                String::from_utf8_lossy(&rec.body),
                rec.resolved
            )),
            SendOutcome::Failed {
                delivery: FailedDelivery::Indeterminate,
                ..
            } if !is_stored => r.indeterminate_not_stored += 1,
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, body: &str, attempts: u32, outcome: SendOutcome) -> SendRecord {
        SendRecord {
            uniq_key: key.into(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            mode: SendMode::Sync,
            started: Duration::from_millis(100),
            resolved: Duration::from_millis(200),
            timeout: Duration::from_secs(3),
            attempts,
            outcome,
        }
    }

    fn failed(delivery: FailedDelivery) -> SendOutcome {
        SendOutcome::Failed {
            delivery,
            detail: "x".into(),
        }
    }

    fn copy(broker: &str, key: &str, body: &str) -> StoredCopy {
        StoredCopy {
            broker: broker.into(),
            queue_id: 0,
            queue_offset: 0,
            uniq_key: Some(key.into()),
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn a_clean_run_passes_with_duplicates_from_retries_counted() {
        let records = vec![
            rec("K1", "b1", 1, SendOutcome::Acked),
            rec("K2", "b2", 2, SendOutcome::Acked),
            rec("K3", "b3", 3, failed(FailedDelivery::Indeterminate)),
            rec("K4", "b4", 1, failed(FailedDelivery::NotSent)),
            rec("K5", "b5", 2, failed(FailedDelivery::Indeterminate)),
        ];
        let stored = vec![
            copy("a", "K1", "b1"),
            copy("a", "K2", "b2"),
            copy("b", "K2", "b2"),
            copy("c", "K3", "b3"),
        ];
        let r = check(&records, &stored, Duration::from_millis(10));
        assert!(r.passed(), "{r}");
        assert_eq!((r.acked, r.stored, r.duplicates), (2, 4, 1));
        assert_eq!((r.indeterminate_stored, r.indeterminate_not_stored), (1, 1));
        assert_eq!(r.failed[&FailedDelivery::NotSent], 1);
        assert_eq!(r.attempts, 9);
        assert_eq!(r.max_overshoot_ms, -2900);
    }

    /// Positive controls: each broken invariant is reported.
    #[test]
    fn every_broken_invariant_is_reported() {
        let mut late = rec("K6", "b6", 1, failed(FailedDelivery::NotSent));
        late.resolved = Duration::from_millis(3300);
        let records = vec![
            rec("K1", "b1", 1, SendOutcome::Acked),               // lost
            rec("K2", "b2", 1, SendOutcome::Acked),               // 2 copies, 1 attempt
            rec("K3", "b3", 2, failed(FailedDelivery::NotSent)),  // stored anyway
            rec("K4", "b4", 2, failed(FailedDelivery::Rejected)), // stored anyway
            rec("K5", "b5", 2, SendOutcome::Acked),               // dup with another key
            late,                                                 // late
        ];
        let stored = vec![
            copy("a", "K2", "b2"),
            copy("b", "K2", "b2"),
            copy("a", "K3", "b3"),
            copy("a", "K4", "b4"),
            copy("a", "K5", "b5"),
            copy("b", "K9", "b5"),
        ];
        let r = check(&records, &stored, Duration::from_millis(100));
        let text = r.violations.join("\n");
        assert_eq!(r.lost(), 1, "{text}");
        for needle in [
            "lost: Sync send K1",
            "2 copies of K2 but only 1 attempt",
            "stored although reported NotSent: K3",
            "stored although reported Rejected: K4",
            "duplicate with another UNIQ_KEY: body \"b5\" sent as K5",
            "phantom: 1 cop(ies) of unknown UNIQ_KEY K9",
            "late: Sync send K6",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(r.violations.len(), 7, "{text}");
    }
}
