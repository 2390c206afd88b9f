#![recursion_limit = "256"]
//! `rmq-peer-bench`: drives rocketmq-client-rust 1.0.0 with exactly the workload of
//! `rmq bench` and prints one `rmq.bench/1` JSON object (docs/cli.md), with an extra
//! `client` key. Built and run only by `cargo xtask bench compare`.
//!
//! Same shape as `rmq bench` (crates/rmq-cli/src/bench.rs):
//! - `sync`: `--concurrency` worker tasks, each awaiting a send in a loop;
//! - `async`: one loop handing messages to `send_with_callback_timeout`, at most
//!   `--concurrency` in flight (a semaphore, one permit returned per callback);
//! - `batch`: `--concurrency` workers, each sending `--batch-size` messages per call.
//!
//! Every completion goes to one collector task owning an HdrHistogram (µs, 3
//! significant digits, successful requests only), as in `rmq bench`.
//!
//! Fairness (decisions.md, peer.md section 4): the caller must set
//! `org.apache.rocketmq.client.sendSmartMsg=true` (SEND_MESSAGE_V2, as rmq) and
//! `ROCKETMQ_SERIALIZE_TYPE` to match `--header`; this program refuses to run
//! otherwise. Compression is off (threshold above any body), retries are 2 for sync
//! and async (rmq's default), the send timeout is `--timeout`, auto-batching is off,
//! no tracing subscriber is installed (rmq's CLI installs none either), and
//! everything runs on one multi-thread Tokio runtime with one worker per CPU (the
//! client's `RuntimeOwner`; user code runs inside its `block_on`), like `rmq`'s
//! `#[tokio::main]`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use rocketmq_client_rust::{ClientError, ClientRuntime, ClientRuntimeConfig, DefaultMQProducer, SendResult};
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// The env switch that makes the client send SEND_MESSAGE_V2 (310), as rmq does.
const SMART_MSG_ENV: &str = "org.apache.rocketmq.client.sendSmartMsg";
/// The env switch of the client's request header encoding.
const SERIALIZE_ENV: &str = "ROCKETMQ_SERIALIZE_TYPE";
/// Highest latency the histogram resolves, µs (as `rmq bench`).
const HIGHEST_US: u64 = 600_000_000;
/// Retries on both clients (rmq's and Java's default).
const RETRIES: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sync,
    Async,
    Batch,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
            Self::Batch => "batch",
        }
    }
}

#[derive(Clone, Debug)]
struct Args {
    namesrv: String,
    topic: String,
    group: String,
    size: usize,
    mode: Mode,
    concurrency: usize,
    count: Option<u64>,
    duration: Option<Duration>,
    batch_size: usize,
    timeout: Duration,
    header: &'static str,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        namesrv: String::new(),
        topic: String::new(),
        group: "rmq_peer_bench_producer".to_owned(),
        size: 128,
        mode: Mode::Async,
        concurrency: 64,
        count: None,
        duration: None,
        batch_size: 16,
        timeout: Duration::from_secs(3),
        header: "binary",
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            continue; // always JSON
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--namesrv" => a.namesrv = value,
            "--topic" => a.topic = value,
            "--group" => a.group = value,
            "--size" => a.size = usize::try_from(num(&value)?).map_err(|e| e.to_string())?,
            "--concurrency" => a.concurrency = usize::try_from(num(&value)?).map_err(|e| e.to_string())?,
            "--batch-size" => a.batch_size = usize::try_from(num(&value)?).map_err(|e| e.to_string())?,
            "--count" => a.count = Some(num(&value)?),
            "--duration-ms" => a.duration = Some(Duration::from_millis(num(&value)?)),
            "--timeout-ms" => a.timeout = Duration::from_millis(num(&value)?),
            "--mode" => {
                a.mode = match value.as_str() {
                    "sync" => Mode::Sync,
                    "async" => Mode::Async,
                    "batch" => Mode::Batch,
                    other => return Err(format!("--mode {other}: expected sync, async or batch")),
                }
            }
            "--header" => {
                a.header = match value.as_str() {
                    "binary" => "binary",
                    "json" => "json",
                    other => return Err(format!("--header {other}: expected binary or json")),
                }
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.namesrv.is_empty() || a.topic.is_empty() {
        return Err("--namesrv and --topic are required".to_owned());
    }
    if a.size == 0 || a.concurrency == 0 || a.batch_size == 0 || a.count == Some(0) {
        return Err("--size, --concurrency, --batch-size and --count must be at least 1".to_owned());
    }
    if a.mode != Mode::Batch {
        a.batch_size = 1;
    }
    Ok(a)
}

/// Refuses to run unless the env gives the client the same request code and header
/// encoding as rmq (the client reads both once, from the environment only).
fn check_env(header: &str) -> Result<(), String> {
    if std::env::var(SMART_MSG_ENV).as_deref() != Ok("true") {
        return Err(format!("set {SMART_MSG_ENV}=true (SEND_MESSAGE_V2, as rmq sends)"));
    }
    let want = if header == "binary" { "ROCKETMQ" } else { "JSON" };
    match std::env::var(SERIALIZE_ENV) {
        Ok(v) if v.eq_ignore_ascii_case(want) => Ok(()),
        Err(_) if want == "JSON" => Ok(()),
        other => Err(format!("--header {header} needs {SERIALIZE_ENV}={want}, found {other:?}")),
    }
}

fn main() -> ExitCode {
    let args = match parse_args().and_then(|a| check_env(a.header).map(|()| a)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rmq-peer-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let owner = match RuntimeOwner::plan(RuntimeConfig {
        thread_name: "peer-bench".into(),
        ..RuntimeConfig::default()
    })
    .map_err(|e| format!("{e:?}"))
    .and_then(|p| p.build().map_err(|e| e.to_string()))
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rmq-peer-bench: cannot build the client runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = owner.block_on(async {
        match run(&owner, &args).await {
            Ok(report) => {
                println!("{report}");
                if report["failed"].as_u64() == Some(0) { 0 } else { 1 }
            }
            Err(e) => {
                eprintln!("rmq-peer-bench: {e}");
                2
            }
        }
    });
    let _ = owner.shutdown_background();
    ExitCode::from(code)
}

async fn run(owner: &RuntimeOwner, args: &Args) -> Result<serde_json::Value, String> {
    let telemetry = rocketmq_observability::TelemetryRuntimeGuard::noop();
    let client_runtime = ClientRuntime::try_new(
        owner.root_context().component("client"),
        ClientRuntimeConfig::default(),
        telemetry.handle(),
    )
    .map_err(|e| format!("cannot create the client runtime: {e}"))?;
    let timeout_ms = u32::try_from(args.timeout.as_millis()).unwrap_or(u32::MAX);
    let mut producer = DefaultMQProducer::builder(client_runtime.clone())
        .producer_group(args.group.clone())
        .name_server_addr(args.namesrv.clone())
        .send_msg_timeout(timeout_ms)
        .retry_times_when_send_failed(RETRIES)
        .retry_times_when_send_async_failed(RETRIES)
        // Never compress (rmq bench --compress none): the threshold is above any body.
        .compress_msg_body_over_howmuch(i32::MAX as u32)
        .auto_batch(false)
        .build();
    producer
        .start()
        .await
        .map_err(|e| format!("cannot start the producer: {e}"))?;
    let producer = Arc::new(producer);
    let totals = execute(producer.clone(), args, u64::from(timeout_ms)).await;
    match Arc::try_unwrap(producer) {
        Ok(mut p) => p.shutdown().await,
        Err(_) => eprintln!("rmq-peer-bench: producer still shared at the end; not shut down"),
    }
    let _ = client_runtime.shutdown().await;
    let (totals, elapsed) = totals?;
    Ok(report(args, &totals, elapsed))
}

/// When to stop issuing sends (as `rmq bench`'s `Plan`).
#[derive(Debug)]
struct Plan {
    count: Option<u64>,
    end: Option<Instant>,
    issued: AtomicU64,
}

impl Plan {
    fn claim(&self, n: u64) -> u64 {
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
}

/// One completed request (as `rmq bench`'s collector events; keys are the msg ids
/// the client returns, since it assigns UNIQ_KEY itself).
enum Event {
    Acked { key: String, latency: Duration },
    Failed { reason: String },
    Batch { acked: Vec<String>, failed: Vec<String>, latency: Duration },
}

struct Totals {
    requests: u64,
    acked: u64,
    failed: u64,
    failed_by_reason: BTreeMap<String, u64>,
    latency: Histogram<u64>,
}

impl Totals {
    fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(us);
    }

    fn fail(&mut self, reason: String) {
        self.failed += 1;
        *self.failed_by_reason.entry(reason).or_insert(0) += 1;
    }
}

async fn collect(mut rx: mpsc::UnboundedReceiver<Event>) -> Result<Totals, String> {
    let mut t = Totals {
        requests: 0,
        acked: 0,
        failed: 0,
        failed_by_reason: BTreeMap::new(),
        latency: Histogram::new_with_bounds(1, HIGHEST_US, 3).map_err(|e| e.to_string())?,
    };
    while let Some(event) = rx.recv().await {
        t.requests += 1;
        match event {
            Event::Acked { key, latency } => {
                // Dropped, as `rmq bench` drops its keys without --acked-log.
                drop(key);
                t.acked += 1;
                t.record(latency);
            }
            Event::Failed { reason } => t.fail(reason),
            Event::Batch { acked, failed, latency } => {
                if !acked.is_empty() {
                    t.record(latency);
                }
                t.acked += acked.len() as u64;
                for r in failed {
                    t.fail(r);
                }
            }
        }
    }
    Ok(t)
}

#[derive(Clone)]
struct Job {
    producer: Arc<DefaultMQProducer>,
    topic: String,
    body: Bytes,
    plan: Arc<Plan>,
    tx: mpsc::UnboundedSender<Event>,
    timeout_ms: u64,
}

impl Job {
    fn message(&self) -> Message {
        Message::builder()
            .topic(self.topic.clone())
            .body(self.body.clone())
            .build_unchecked()
    }

    async fn run_async(self, concurrency: usize) {
        let permits = Arc::new(Semaphore::new(concurrency));
        loop {
            let Ok(permit) = permits.acquire().await else { break };
            // The callback is `Fn`: the permit is given back by hand, once.
            permit.forget();
            if self.plan.claim(1) == 0 {
                permits.add_permits(1);
                break;
            }
            let tx = self.tx.clone();
            let done = Arc::new(AtomicBool::new(false));
            let done_cb = done.clone();
            let permits_cb = permits.clone();
            let t0 = Instant::now();
            let sent = self
                .producer
                .send_with_callback_timeout(
                    self.message(),
                    move |result: Option<&SendResult>, error: Option<&ClientError>| {
                        if done_cb.swap(true, Ordering::AcqRel) {
                            return;
                        }
                        let latency = t0.elapsed();
                        permits_cb.add_permits(1);
                        let _ = tx.send(match (result, error) {
                            (Some(r), None) => Event::Acked { key: key_of(r), latency },
                            (_, Some(e)) => Event::Failed { reason: reason(e) },
                            (None, None) => Event::Failed { reason: "NoResult".to_owned() },
                        });
                    },
                    self.timeout_ms,
                )
                .await;
            if let Err(e) = sent
                && !done.swap(true, Ordering::AcqRel)
            {
                permits.add_permits(1);
                let _ = self.tx.send(Event::Failed { reason: reason(&e) });
            }
        }
        // Wait for the callbacks still due: every permit back.
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        let _ = permits.acquire_many(all).await;
    }

    async fn run_worker(self, mode: Mode, batch_size: usize) {
        let per_request = u64::try_from(batch_size).unwrap_or(u64::MAX);
        loop {
            let n = self.plan.claim(per_request);
            if n == 0 {
                break;
            }
            let event = if mode == Mode::Batch {
                let messages: Vec<Message> = (0..n).map(|_| self.message()).collect();
                let t0 = Instant::now();
                let result = self.producer.send_batch_with_timeout(messages, self.timeout_ms).await;
                let latency = t0.elapsed();
                match result {
                    Ok(r) => {
                        let ids = key_of(&r);
                        let mut acked: Vec<String> = ids.split(',').map(str::to_owned).collect();
                        acked.resize(usize::try_from(n).unwrap_or(0), String::new());
                        Event::Batch { acked, failed: Vec::new(), latency }
                    }
                    Err(e) => Event::Batch {
                        acked: Vec::new(),
                        failed: vec![reason(&e); usize::try_from(n).unwrap_or(0)],
                        latency,
                    },
                }
            } else {
                let t0 = Instant::now();
                match self.producer.send_with_timeout(self.message(), self.timeout_ms).await {
                    Ok(Some(r)) => Event::Acked { key: key_of(&r), latency: t0.elapsed() },
                    Ok(None) => Event::Failed { reason: "NoResult".to_owned() },
                    Err(e) => Event::Failed { reason: reason(&e) },
                }
            };
            if self.tx.send(event).is_err() {
                break;
            }
        }
    }
}

fn key_of(r: &SendResult) -> String {
    r.msg_id.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default()
}

/// `Rejected:<code>` when a broker refused, else the error's first clause.
fn reason(e: &ClientError) -> String {
    match e.broker_response_code() {
        Some(code) => format!("Rejected:{code}"),
        None => {
            let text = e.to_string();
            text.split(':').next().unwrap_or("Error").trim().to_owned()
        }
    }
}

async fn execute(producer: Arc<DefaultMQProducer>, args: &Args, timeout_ms: u64) -> Result<(Totals, Duration), String> {
    let body = Bytes::from(body(args.size));
    let started = Instant::now();
    let plan = Arc::new(Plan {
        count: args.count,
        end: args.duration.map(|d| started + d),
        issued: AtomicU64::new(0),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(rx));
    let job = Job {
        producer,
        topic: args.topic.clone(),
        body,
        plan,
        tx,
        timeout_ms,
    };
    match args.mode {
        // On a runtime task, as `rmq bench` does (not on `block_on`'s thread).
        Mode::Async => tokio::spawn(job.run_async(args.concurrency))
            .await
            .map_err(|e| format!("the issuing task failed: {e}"))?,
        mode => {
            let mut workers = Vec::with_capacity(args.concurrency);
            for _ in 0..args.concurrency {
                workers.push(tokio::spawn(job.clone().run_worker(mode, args.batch_size)));
            }
            drop(job);
            for w in workers {
                w.await.map_err(|e| format!("a bench worker failed: {e}"))?;
            }
        }
    }
    let totals = collector.await.map_err(|e| format!("the collector failed: {e}"))??;
    Ok((totals, started.elapsed()))
}

fn report(args: &Args, t: &Totals, elapsed: Duration) -> serde_json::Value {
    let secs = elapsed.as_secs_f64();
    let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
    let h = &t.latency;
    let q = |quantile: f64| (!h.is_empty()).then(|| h.value_at_quantile(quantile));
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "schema": "rmq.bench/1",
        "client": "rocketmq-client-rust/1.0.0",
        "topic": args.topic,
        "mode": args.mode.name(),
        "size": args.size,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "count": args.count,
        "duration_s": args.duration.map(|d| d.as_secs_f64()),
        "compress": "none",
        "header": args.header,
        "elapsed_s": round3(secs),
        "interrupted": false,
        "requests": t.requests,
        "sent": t.acked + t.failed,
        "acked": t.acked,
        "failed": t.failed,
        "failed_by_reason": t.failed_by_reason,
        "retried": null,
        "msgs_per_s": round3(rate(t.acked as f64)),
        "mb_per_s": round3(rate(t.acked as f64 * args.size as f64 / 1e6)),
        "p50_us": q(0.5),
        "p90_us": q(0.9),
        "p99_us": q(0.99),
        "p999_us": q(0.999),
        "max_us": (!h.is_empty()).then(|| h.max()),
        "mean_us": (!h.is_empty()).then(|| round3(h.mean())),
        "error": null,
    })
}

/// The same body as `rmq bench` (same generator and seed).
fn body(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let i = usize::try_from(r >> 58).unwrap_or(0) % ALPHABET.len();
            ALPHABET.get(i).copied().unwrap_or(b'x')
        })
        .collect()
}
