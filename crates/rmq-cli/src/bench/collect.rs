//! The collector: one task that receives every completion and owns the counters,
//! the latency histogram, the acked log and the progress bar.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// The highest latency the histogram resolves (10 minutes, in µs); longer ones
/// are counted at this value.
const HIGHEST_US: u64 = 600_000_000;
/// How often the acked log is flushed and the progress bar redrawn.
const TICK: Duration = Duration::from_millis(250);

/// One completed request.
#[derive(Debug)]
pub(super) enum Event {
    /// A message was acked (one-way: written).
    Acked {
        /// Its UNIQ_KEY.
        key: String,
        /// Call to answer.
        latency: Duration,
    },
    /// A message failed.
    Failed {
        /// See [`super::reason`].
        reason: String,
    },
    /// A `send_batch` call ended.
    Batch {
        /// UNIQ_KEYs of the acked messages.
        acked: Vec<String>,
        /// Reasons of the failed ones.
        failed: Vec<String>,
        /// Call to answer (recorded once per request when anything was acked).
        latency: Duration,
    },
}

/// What the run did.
#[derive(Debug)]
pub(super) struct Totals {
    /// Requests completed (a batch is one).
    pub(super) requests: u64,
    /// Messages acked.
    pub(super) acked: u64,
    /// Messages failed.
    pub(super) failed: u64,
    /// Failed messages by reason.
    pub(super) failed_by_reason: BTreeMap<String, u64>,
    /// Latencies of successful requests, µs.
    pub(super) latency: Histogram<u64>,
}

impl Totals {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            requests: 0,
            acked: 0,
            failed: 0,
            failed_by_reason: BTreeMap::new(),
            latency: Histogram::new_with_bounds(1, HIGHEST_US, 3)?,
        })
    }

    fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency.saturating_record(us);
    }

    fn fail(&mut self, reason: String) {
        self.failed += 1;
        *self.failed_by_reason.entry(reason).or_default() += 1;
    }
}

/// `--acked-log`: one UNIQ_KEY per line, buffered, flushed every [`TICK`] and at
/// the end. The first write error stops the logging and is reported at the end.
#[derive(Debug)]
pub(super) struct AckedLog {
    out: BufWriter<File>,
    error: Option<io::Error>,
    dirty: bool,
}

impl AckedLog {
    /// Creates (truncates) the file.
    pub(super) fn create(path: &Path) -> io::Result<Self> {
        Ok(Self {
            out: BufWriter::with_capacity(64 * 1024, File::create(path)?),
            error: None,
            dirty: false,
        })
    }

    fn write(&mut self, key: &str) {
        if self.error.is_some() {
            return;
        }
        let r = self
            .out
            .write_all(key.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"));
        match r {
            Ok(()) => self.dirty = true,
            Err(e) => self.error = Some(e),
        }
    }

    fn flush(&mut self) {
        if self.error.is_some() || !self.dirty {
            return;
        }
        match self.out.flush() {
            Ok(()) => self.dirty = false,
            Err(e) => self.error = Some(e),
        }
    }

    fn finish(mut self) -> io::Result<()> {
        self.dirty = true;
        self.flush();
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.get_ref().sync_all(),
        }
    }
}

/// The live progress bar on stderr.
#[derive(Debug)]
pub(super) struct Progress {
    bar: ProgressBar,
    count: Option<u64>,
    duration: Option<Duration>,
}

impl Progress {
    /// A bar over `count` messages, else over `duration`, else a spinner.
    pub(super) fn new(count: Option<u64>, duration: Option<Duration>) -> Self {
        let (bar, template) = match (count, duration) {
            (Some(n), _) => (
                ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
            ),
            (None, Some(d)) => (
                ProgressBar::with_draw_target(
                    Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    ProgressDrawTarget::stderr(),
                ),
                "{elapsed_precise} [{bar:30}] {msg}",
            ),
            (None, None) => (
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                "{elapsed_precise} {spinner} {msg} (Ctrl-C stops)",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self {
            bar,
            count,
            duration,
        }
    }

    fn update(&self, totals: &Totals, size: usize, started: Instant, window: &mut Window) {
        let elapsed = started.elapsed();
        let done = totals.acked + totals.failed;
        match (self.count, self.duration) {
            (Some(_), _) => self.bar.set_position(done),
            (None, Some(d)) => self
                .bar
                .set_position(u64::try_from(elapsed.min(d).as_millis()).unwrap_or(u64::MAX)),
            (None, None) => self.bar.tick(),
        }
        let rate = window.rate(totals.acked);
        let mb = rate * size as f64 / 1e6;
        self.bar.set_message(format!(
            "acked {} failed {} | {rate:.0} msgs/s {mb:.2} MB/s",
            totals.acked, totals.failed
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The recent rate, over the last few seconds of ticks.
#[derive(Debug)]
struct Window {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl Window {
    fn rate(&mut self, acked: u64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, acked));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(3))
        {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some((t, n)) if now.duration_since(*t) > Duration::ZERO => {
                (acked.saturating_sub(*n)) as f64 / now.duration_since(*t).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// Receives events until every sender is gone. Returns the totals and the acked
/// log's outcome.
pub(super) async fn collect(
    mut rx: mpsc::UnboundedReceiver<Event>,
    mut log: Option<AckedLog>,
    progress: Option<Progress>,
    size: usize,
    started: Instant,
) -> anyhow::Result<(Totals, io::Result<()>)> {
    let mut totals = Totals::new()?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut window = Window {
        samples: std::collections::VecDeque::new(),
    };
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                apply(&mut totals, log.as_mut(), event);
            }
            _ = tick.tick() => {
                if let Some(log) = log.as_mut() {
                    log.flush();
                }
                if let Some(p) = &progress {
                    p.update(&totals, size, started, &mut window);
                }
            }
        }
    }
    if let Some(p) = &progress {
        p.finish();
    }
    let log_result = log.map_or(Ok(()), AckedLog::finish);
    Ok((totals, log_result))
}

fn apply(totals: &mut Totals, log: Option<&mut AckedLog>, event: Event) {
    totals.requests += 1;
    match event {
        Event::Acked { key, latency } => {
            totals.acked += 1;
            totals.record_latency(latency);
            if let Some(log) = log {
                log.write(&key);
            }
        }
        Event::Failed { reason } => totals.fail(reason),
        Event::Batch {
            acked,
            failed,
            latency,
        } => {
            if !acked.is_empty() {
                totals.record_latency(latency);
            }
            totals.acked += acked.len() as u64;
            if let Some(log) = log {
                for key in &acked {
                    log.write(key);
                }
            }
            for reason in failed {
                totals.fail(reason);
            }
        }
    }
}
