//! `rmq bench`: throughput and latency of the producer against a cluster, like
//! RocketMQ's benchmark producer (`distribution/benchmark/producer.sh`), with
//! percentiles, failures by reason and an optional log of every acked UNIQ_KEY.
//!
//! Shape of a run:
//! - `--mode sync`: `--concurrency` worker tasks, each awaiting `send` in a loop
//!   (the Java tool's 64 threads);
//! - `--mode async`: `--concurrency` chains of `send_with_callback`, each callback
//!   issuing its chain's next send (at most `--concurrency` in flight);
//! - `--mode oneway`: `--concurrency` workers awaiting `send_oneway` (acked = written);
//! - `--mode batch`: `--concurrency` workers, each sending `--batch-size` messages
//!   per `send_batch` call.
//!
//! Every completion goes to one collector task that owns the latency histogram
//! (HdrHistogram, µs, successful sends only), the failure counts, the acked log and
//! the progress bar. The run stops issuing after `--count` messages or `--duration`,
//! or at Ctrl-C, then waits for the sends in flight.

mod collect;
mod report;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use rmq_producer::compress::Compression;
use rmq_producer::{CompressionType, Message, Producer, ResponseCode, SendError, SendErrorKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::args::{BenchArgs, Common, CompressArg, HeaderArg, ModeArg};
use crate::output::{self, CliError, EXIT_FAILED, EXIT_OK, ErrorObject, Kind};

pub use report::{Report, SCHEMA};

use collect::{Event, Progress};

/// The largest body `--size` accepts: the broker's default `maxMessageSize`.
const MAX_SIZE: usize = 4 * 1024 * 1024;
/// The most sends in flight `--concurrency` accepts.
const MAX_CONCURRENCY: usize = 100_000;
/// How long `close` waits for the producer's own bookkeeping at the end.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// The validated settings of one run.
#[derive(Clone, Debug)]
struct Settings {
    topic: String,
    size: usize,
    mode: ModeArg,
    concurrency: usize,
    count: Option<u64>,
    duration: Option<Duration>,
    batch_size: usize,
    compress: CompressArg,
    header: HeaderArg,
    acked_log: Option<PathBuf>,
    json: bool,
    auto_batch: bool,
}

impl Settings {
    fn new(common: &Common, args: BenchArgs) -> anyhow::Result<Self> {
        let usage = |m: String| anyhow::Error::new(CliError::new(Kind::Usage, m));
        if args.size == 0 || args.size > MAX_SIZE {
            return Err(usage(format!(
                "--size must be between 1 and {MAX_SIZE} bytes"
            )));
        }
        if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
            return Err(usage(format!(
                "--concurrency must be between 1 and {MAX_CONCURRENCY}"
            )));
        }
        if args.batch_size == 0 {
            return Err(usage("--batch-size must be at least 1".to_owned()));
        }
        if args.count == Some(0) {
            return Err(usage("--count must be at least 1".to_owned()));
        }
        if args.duration.is_some_and(|d| d.is_zero()) {
            return Err(usage("--duration must be longer than zero".to_owned()));
        }
        Ok(Self {
            topic: args.topic,
            size: args.size,
            mode: args.mode,
            concurrency: args.concurrency,
            count: args.count,
            duration: args.duration,
            batch_size: if args.mode == ModeArg::Batch {
                args.batch_size
            } else {
                1
            },
            compress: args.compress,
            header: common.header,
            acked_log: args.acked_log,
            json: args.json,
            auto_batch: args.auto_batch,
        })
    }

    /// Messages one request carries.
    fn per_request(&self) -> usize {
        self.batch_size
    }
}

/// Runs `rmq bench`. Exit code 0 when every send was acked, 1 when any failed (the
/// summary is printed either way), 2 when the run could not happen (no name server,
/// invalid settings) or the acked log could not be written; with `--json` the
/// document's `error` then says why.
pub async fn run(common: &Common, args: BenchArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let mut report = Report::describe(common, &args);
    let log_path = args.acked_log.clone();
    match measure(common, args).await {
        Ok((measured, log_result)) => {
            report = measured;
            if let Err(e) = log_result {
                let path = log_path.as_deref().map(|p| p.display().to_string());
                let e = anyhow::Error::new(e)
                    .context(format!("writing --acked-log {}", path.unwrap_or_default()));
                report.error = Some(ErrorObject::from_anyhow(&e));
                if !json {
                    print!("{}", report.human());
                }
                return output::fail(json, &report, &e);
            }
            if json {
                output::print_json(&report)?;
            } else {
                print!("{}", report.human());
            }
            Ok(ExitCode::from(if report.failed == 0 {
                EXIT_OK
            } else {
                EXIT_FAILED
            }))
        }
        Err(e) => {
            report.error = Some(ErrorObject::from_anyhow(&e));
            output::fail(json, &report, &e)
        }
    }
}

/// Validates, starts the producer, runs, closes the producer; returns the report and
/// the acked log's outcome.
async fn measure(
    common: &Common,
    args: BenchArgs,
) -> anyhow::Result<(Report, std::io::Result<()>)> {
    let settings = Settings::new(common, args)?;
    let acked_log = match &settings.acked_log {
        Some(path) => Some(
            collect::AckedLog::create(path)
                .with_context(|| format!("cannot create --acked-log {}", path.display()))?,
        ),
        None => None,
    };
    let producer = build_producer(common, &settings).await?;
    let progress = (!settings.json && std::io::stderr().is_terminal())
        .then(|| Progress::new(settings.count, settings.duration));
    let outcome = execute(&producer, &settings, acked_log, progress).await;
    let stats = producer.stats();
    let retried = stats.retried;
    if settings.auto_batch {
        let a = &stats.auto_batch;
        eprintln!(
            "auto-batch: {} batches carried {} messages ({:.1} per batch; sealed {} by size, \
             {} by linger), {} bypassed, {} buffer-full",
            a.batches,
            a.batched_messages,
            a.batched_messages as f64 / a.batches.max(1) as f64,
            a.sealed_by_size,
            a.sealed_by_linger,
            a.bypassed,
            a.buffer_full
        );
    }
    producer.close(CLOSE_DEADLINE).await;
    let (totals, elapsed, interrupted, log_result) = outcome?;
    let report = Report::new(&settings, &totals, elapsed, interrupted, retried);
    Ok((report, log_result))
}

async fn build_producer(common: &Common, settings: &Settings) -> anyhow::Result<Producer> {
    let namesrv = common.namesrv_addrs()?.join(";");
    let compression = match settings.compress {
        CompressArg::None => Compression::disabled(),
        CompressArg::Zlib => Compression::default(),
        CompressArg::Zstd => Compression {
            enabled: true,
            kind: CompressionType::Zstd,
            level: 3,
            ..Compression::default()
        },
        CompressArg::Lz4 => Compression {
            enabled: true,
            kind: CompressionType::Lz4,
            ..Compression::default()
        },
    };
    // The bench's own bound (--concurrency) must be the one that binds, not the
    // producer's back-pressure.
    let in_flight = settings.concurrency.saturating_mul(settings.per_request());
    let in_flight_bytes = in_flight.saturating_mul(settings.size).saturating_mul(2);
    let header = common.header_format();
    let producer = Producer::builder(common.group.clone())
        .namesrv(&namesrv)
        .send_timeout(common.timeout)
        .configure(|c| {
            c.header_format = header;
            c.compression = compression;
            c.max_in_flight_messages = c.max_in_flight_messages.max(in_flight);
            c.max_in_flight_bytes = c.max_in_flight_bytes.max(in_flight_bytes);
            c.auto_batch.enabled = settings.auto_batch;
        })
        .build()
        .await
        .map_err(|e| CliError::new(Kind::Config, format!("cannot start the producer: {e}")))?;
    Ok(producer)
}

/// When to stop issuing sends.
#[derive(Debug)]
struct Plan {
    count: Option<u64>,
    end: Option<Instant>,
    issued: AtomicU64,
    stopped: AtomicBool,
}

impl Plan {
    /// Claims up to `n` messages to send; 0 means stop.
    fn claim(&self, n: u64) -> u64 {
        if self.stopped.load(Ordering::Relaxed) {
            return 0;
        }
        if self.end.is_some_and(|end| Instant::now() >= end) {
            return 0;
        }
        match self.count {
            None => n,
            Some(total) => {
                let start = self.issued.fetch_add(n, Ordering::Relaxed);
                n.min(total.saturating_sub(start))
            }
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

type Outcome = (collect::Totals, Duration, bool, std::io::Result<()>);

async fn execute(
    producer: &Producer,
    settings: &Settings,
    acked_log: Option<collect::AckedLog>,
    progress: Option<Progress>,
) -> anyhow::Result<Outcome> {
    let body = Bytes::from(body(settings.size));
    let started = Instant::now();
    let plan = Arc::new(Plan {
        count: settings.count,
        end: settings.duration.map(|d| started + d),
        issued: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
    });
    let ctrl_c = {
        let plan = plan.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                plan.stop();
            }
        })
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect::collect(
        rx,
        acked_log,
        progress,
        settings.size,
        started,
    ));
    let job = Job {
        producer: producer.clone(),
        topic: settings.topic.clone(),
        body,
        plan: plan.clone(),
        tx,
        keep_keys: settings.acked_log.is_some(),
    };
    match settings.mode {
        ModeArg::Async => job
            .run_async(settings.concurrency)
            .await
            .context("the bench's issuing task failed")?,
        mode => {
            let mut workers = Vec::with_capacity(settings.concurrency);
            for _ in 0..settings.concurrency {
                workers.push(tokio::spawn(
                    job.clone().run_worker(mode, settings.batch_size),
                ));
            }
            drop(job);
            for w in workers {
                w.await.context("a bench worker failed")?;
            }
        }
    }
    // Every sender is gone once the last callback fired: the collector then ends.
    let (totals, log_result) = collector.await.context("the bench collector failed")??;
    let elapsed = started.elapsed();
    ctrl_c.abort();
    let interrupted = plan.stopped.load(Ordering::Relaxed);
    Ok((totals, elapsed, interrupted, log_result))
}

/// What every sender needs.
#[derive(Clone)]
struct Job {
    producer: Producer,
    topic: String,
    body: Bytes,
    plan: Arc<Plan>,
    tx: mpsc::UnboundedSender<Event>,
    /// Whether acked messages' keys are logged (`--acked-log`).
    keep_keys: bool,
}

impl Job {
    /// A message with its UNIQ_KEY assigned now, and a copy of the key when acked
    /// keys are logged (else an empty string: no allocation per message in flight
    /// that the client under test would be charged for).
    fn message(&self) -> (Message, String) {
        let mut message = Message::new(self.topic.as_str(), self.body.clone());
        let key = self.producer.assign_uniq_key(&mut message);
        let key = if self.keep_keys {
            key.to_owned()
        } else {
            String::new()
        };
        (message, key)
    }

    /// `--concurrency` chains of callbacks: each completion records its event and
    /// issues the chain's next send from the callback itself, so at most
    /// `concurrency` sends are in flight and no issuing task has to be woken per
    /// completion (a single issuer behind a semaphore was the bench's own
    /// bottleneck, docs/benchmarks.md).
    ///
    /// The chains start on a runtime task, as a service's sends start in its
    /// tasks: started from `block_on`'s thread, the first window's allocations came
    /// from a third malloc arena (glibc keeps one per thread that allocates), which
    /// kept their memory for the whole run, ≈ 3 MB of RSS at 10 000 in flight.
    async fn run_async(self, concurrency: usize) -> Result<(), tokio::task::JoinError> {
        let job = Arc::new(self);
        tokio::spawn(async move {
            for _ in 0..concurrency {
                if !Job::issue(&job) {
                    break;
                }
            }
        })
        .await
    }

    /// Issues one async send whose callback issues the next; false once the plan
    /// says stop (or no runtime is left to send on).
    fn issue(job: &Arc<Job>) -> bool {
        if tokio::runtime::Handle::try_current().is_err() || job.plan.claim(1) == 0 {
            return false;
        }
        let (message, key) = job.message();
        let t0 = Instant::now();
        let next = job.clone();
        job.producer.send_with_callback(message, move |result| {
            let latency = t0.elapsed();
            let event = match result {
                Ok(_) => Event::Acked { key, latency },
                Err(e) => Event::Failed { reason: reason(&e) },
            };
            if next.tx.send(event).is_ok() {
                Job::issue(&next);
            }
        });
        true
    }

    async fn run_worker(self, mode: ModeArg, batch_size: usize) {
        let per_request = u64::try_from(batch_size).unwrap_or(u64::MAX);
        loop {
            let n = self.plan.claim(per_request);
            if n == 0 {
                break;
            }
            let event = match mode {
                ModeArg::Batch => {
                    let (messages, keys): (Vec<Message>, Vec<String>) =
                        (0..n).map(|_| self.message()).unzip();
                    let t0 = Instant::now();
                    let results = self.producer.send_batch(messages).await;
                    let latency = t0.elapsed();
                    let mut acked = Vec::with_capacity(keys.len());
                    let mut failed = Vec::new();
                    for (key, result) in keys.into_iter().zip(results) {
                        match result {
                            Ok(_) => acked.push(key),
                            Err(e) => failed.push(reason(&e)),
                        }
                    }
                    Event::Batch {
                        acked,
                        failed,
                        latency,
                    }
                }
                ModeArg::Oneway => {
                    let (message, key) = self.message();
                    let t0 = Instant::now();
                    match self.producer.send_oneway(message).await {
                        Ok(()) => Event::Acked {
                            key,
                            latency: t0.elapsed(),
                        },
                        Err(e) => Event::Failed { reason: reason(&e) },
                    }
                }
                ModeArg::Sync | ModeArg::Async => {
                    let (message, key) = self.message();
                    let t0 = Instant::now();
                    match self.producer.send(message).await {
                        Ok(_) => Event::Acked {
                            key,
                            latency: t0.elapsed(),
                        },
                        Err(e) => Event::Failed { reason: reason(&e) },
                    }
                }
            };
            if self.tx.send(event).is_err() {
                break;
            }
        }
    }
}

/// The failure reason as counted in `failed_by_reason`: the error kind, plus the
/// broker's response code for rejections (`Rejected:SYSTEM_BUSY`).
fn reason(e: &SendError) -> String {
    let kind = e.kind();
    match (kind, e.response_code()) {
        (SendErrorKind::Rejected, Some(code)) => format!("Rejected:{}", code_name(code)),
        _ => format!("{kind:?}"),
    }
}

fn code_name(code: ResponseCode) -> String {
    code.name()
        .map_or_else(|| code.value().to_string(), str::to_owned)
}

/// A body of `size` alphanumeric bytes, generated once and shared by every message
/// (as the Java tool does). Fixed seed: every run sends the same bytes.
fn body(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let i = usize::try_from(r >> 58).unwrap_or(0) % ALPHABET.len();
            ALPHABET.get(i).copied().unwrap_or(b'x')
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(count: Option<u64>) -> Plan {
        Plan {
            count,
            end: None,
            issued: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    #[test]
    fn claims_stop_at_the_count() {
        let p = plan(Some(40));
        assert_eq!(p.claim(16), 16);
        assert_eq!(p.claim(16), 16);
        assert_eq!(p.claim(16), 8);
        assert_eq!(p.claim(16), 0);
        assert_eq!(p.claim(1), 0);
    }

    #[test]
    fn claims_stop_when_stopped() {
        let p = plan(None);
        assert_eq!(p.claim(3), 3);
        p.stop();
        assert_eq!(p.claim(3), 0);
    }

    #[test]
    fn bodies_are_alphanumeric_and_repeatable() {
        let b = body(128);
        assert_eq!(b.len(), 128);
        assert!(b.iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(b, body(128));
        assert!(b.iter().any(|&c| c != b[0]));
    }
}
