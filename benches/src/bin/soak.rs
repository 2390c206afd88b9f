//! Soak: one million async sends (by default) through the producer to
//! `rmq-testkit`'s fake cluster over loopback TCP, with every connection of one
//! broker killed (TCP RST) at a fixed interval, then everything closed and the
//! process checked for leaks.
//!
//! Run it in release mode: `cargo xtask soak [--messages N]`, or
//! `cargo run --release -p rmq-benches --bin soak -- [--messages N] [--in-flight K]
//! [--kill-every M]`.
//!
//! What it asserts (exit status 1 and a message on failure):
//! - every send resolves exactly once; none is `Rejected`; at least 99 % are acked;
//! - every acked message is in the fake brokers' store (loss 0; its body is its
//!   sequence number);
//! - after the last send resolved: the producer's in-flight count, its pending
//!   request-reply table and every connection's response table are 0;
//! - after closing the producer and shutting the cluster down: no task left on the
//!   runtime, the process's live heap bytes (a counting global allocator) back to
//!   the baseline within [`HEAP_TOLERANCE`], and the open file descriptors
//!   (`/proc/self/fd`) back to the baseline exactly.
//!
//! The baseline is taken after a warm-up cycle (the same program with
//! [`WARMUP_MESSAGES`] messages: cluster, producer, kills, close, shutdown), so
//! one-time initialisation (the runtime's blocking threads, `tracing`'s callsite
//! registry, the producer's host-address lookup) is not counted as a leak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_producer::{Message, Producer};
use rmq_testkit::fake::{FakeCluster, Transport};
use tokio::sync::Semaphore;

/// Counts live heap bytes (allocated minus freed) and their high-water mark.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

fn grow(bytes: usize) {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    let now = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

fn shrink(bytes: usize) {
    LIVE.fetch_sub(i64::try_from(bytes).unwrap_or(i64::MAX), Relaxed);
}

// SAFETY: every call is delegated to the system allocator unchanged; the wrapper
// only updates counters.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            grow(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap bytes may end at most this far above the baseline: room for
/// allocator-independent noise such as a runtime worker's cached task slot or a
/// grown-but-idle queue, far below one message per thousand sent.
const HEAP_TOLERANCE: i64 = 256 * 1024;

/// Messages of the warm-up cycle that precedes the baseline.
const WARMUP_MESSAGES: u64 = 20_000;

const TOPIC: &str = "SoakTopic";

const USAGE: &str = "\
usage: soak [--messages N] [--in-flight K] [--kill-every M]
  --messages N    messages to send (default 1000000)
  --in-flight K   async sends in flight at most (default 512)
  --kill-every M  reset every connection of one broker (alternating) after every
                  M sends; every 5th time the name server's too (default 10000)";

/// Command-line settings.
#[derive(Clone, Copy, Debug)]
struct Settings {
    messages: u64,
    in_flight: usize,
    kill_every: u64,
}

fn parse_args() -> Result<Settings, String> {
    let mut s = Settings {
        messages: 1_000_000,
        in_flight: 512,
        kill_every: 10_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Err(String::new());
        }
        let value = value
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{name}: `{value}` is not a positive number"))?;
        if number == 0 {
            return Err(format!("{name} must be at least 1"));
        }
        match name.as_str() {
            "--messages" => s.messages = number,
            "--in-flight" => s.in_flight = usize::try_from(number).map_err(|e| e.to_string())?,
            "--kill-every" => s.kill_every = number,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(s)
}

/// What one cycle observed.
#[derive(Debug, Default)]
struct Report {
    acked: u64,
    failed: BTreeMap<String, u64>,
    kills: u64,
    elapsed: Duration,
    stored: u64,
    duplicates: u64,
    reconnects: u64,
    connects: u64,
    closed: u64,
    retried: u64,
    late_replies: u64,
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Resident set size in KiB (information only).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One cycle: cluster, producer, `messages` async sends with kills, checks, close.
async fn cycle(s: Settings, messages: u64) -> Result<Report, String> {
    let cluster = FakeCluster::builder()
        .brokers(["broker-a", "broker-b"])
        .transport(Transport::Tcp)
        .topic(TOPIC, 4)
        .build()
        .await
        .map_err(|e| format!("starting the fake cluster: {e}"))?;
    let producer = Producer::builder("soak_group")
        .namesrv(cluster.name_server_addr())
        .build()
        .await
        .map_err(|e| format!("building the producer: {e}"))?;

    let n = usize::try_from(messages).map_err(|e| e.to_string())?;
    let acked: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
    let resolved = Arc::new(AtomicUsize::new(0));
    let failed: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(s.in_flight));
    let mut report = Report::default();
    let started = Instant::now();
    for i in 0..messages {
        if i > 0 && i.is_multiple_of(s.kill_every) {
            let k = i / s.kill_every;
            let victim = &cluster.brokers()[usize::from(!k.is_multiple_of(2))];
            victim.kill_connections().await;
            if k.is_multiple_of(5) {
                cluster.name_server().kill_connections().await;
            }
            for b in cluster.brokers() {
                b.clear_requests(); // the fake's request log is not the client's memory
            }
            cluster.name_server().clear_requests();
            report.kills += 1;
        }
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (acked, resolved, failed) = (acked.clone(), resolved.clone(), failed.clone());
        producer.send_with_callback(Message::new(TOPIC, i.to_string()), move |result| {
            match result {
                Ok(_) => {
                    if let Some(slot) = usize::try_from(i).ok().and_then(|i| acked.get(i)) {
                        slot.store(true, Relaxed);
                    }
                }
                Err(e) => {
                    let key = format!("{:?}/{:?}", e.kind(), e.delivery());
                    if let Ok(mut f) = failed.lock() {
                        *f.entry(key).or_default() += 1;
                    }
                }
            }
            resolved.fetch_add(1, Relaxed);
            drop(permit);
        });
    }
    // Every callback has run once all permits are back.
    let all = u32::try_from(s.in_flight).map_err(|e| e.to_string())?;
    let _all = permits.acquire_many(all).await.map_err(|e| e.to_string())?;
    report.elapsed = started.elapsed();
    let resolved = resolved.load(Relaxed);
    if resolved != n {
        return Err(format!("{resolved} of {n} sends resolved"));
    }
    report.failed = failed.lock().map_err(|e| e.to_string())?.clone();
    report.acked = acked.iter().filter(|a| a.load(Relaxed)).count() as u64;
    if report.failed.keys().any(|k| k.ends_with("/Rejected")) {
        return Err(format!("a send was rejected: {:?}", report.failed));
    }
    if report.acked * 100 < messages * 99 {
        return Err(format!(
            "only {} of {messages} acked (retries should absorb the kills): {:?}",
            report.acked, report.failed
        ));
    }

    // Tables back to 0 (the transport publishes its table size before waking a
    // caller; allow a moment for the last driver turn anyway).
    let mut stats = producer.stats();
    for _ in 0..100 {
        if stats.in_flight == 0 && stats.transport.in_flight() == 0 && stats.pending_requests == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = producer.stats();
    }
    if stats.in_flight != 0 || stats.transport.in_flight() != 0 || stats.pending_requests != 0 {
        return Err(format!(
            "after the last send: producer in flight {}, response tables {}, pending requests {}",
            stats.in_flight,
            stats.transport.in_flight(),
            stats.pending_requests
        ));
    }
    report.reconnects = stats.transport.reconnects;
    report.connects = stats.transport.connects;
    report.closed = stats.transport.connections_closed;
    report.retried = stats.retried;
    report.late_replies = stats.transport.late_replies;
    // Positive control: each kill closed at least one live client connection. (A
    // killed broker is not always dialled again: after the failures the fault
    // strategy isolates it, and a short run may end inside that window.)
    if report.closed < report.kills {
        return Err(format!(
            "positive control: {} kills, but {} connections closed and {} connects",
            report.kills, report.closed, report.connects
        ));
    }

    // Every acked message is stored (bodies are sequence numbers).
    let mut stored = vec![0u8; n];
    for b in cluster.brokers() {
        for m in b.messages() {
            let seq = std::str::from_utf8(&m.body)
                .ok()
                .and_then(|t| t.parse::<usize>().ok())
                .filter(|&seq| seq < n)
                .ok_or_else(|| {
                    format!(
                        "{}: a stored body is not a sequence number",
                        b.broker_name()
                    )
                })?;
            stored[seq] = stored[seq].saturating_add(1);
        }
    }
    let lost: Vec<usize> = (0..n)
        .filter(|&i| acked[i].load(Relaxed) && stored[i] == 0)
        .take(10)
        .collect();
    if !lost.is_empty() {
        return Err(format!("acked but not stored (first 10): {lost:?}"));
    }
    report.stored = stored.iter().filter(|&&c| c > 0).count() as u64;
    report.duplicates = stored.iter().map(|&c| u64::from(c.saturating_sub(1))).sum();
    drop(stored);

    let close = producer.close(Duration::from_secs(5)).await;
    if close.abandoned != 0 {
        return Err(format!("close abandoned {} sends", close.abandoned));
    }
    drop(producer);
    cluster.shutdown().await;
    drop(cluster);
    Ok(report)
}

/// Waits (up to 10 s) until no task is left on the runtime.
async fn tasks_gone() -> Result<(), String> {
    let handle = tokio::runtime::Handle::current();
    for _ in 0..1000 {
        // This function's own task is the one left.
        if handle.metrics().num_alive_tasks() <= 1 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!(
        "{} tasks still alive 10 s after shutdown",
        handle.metrics().num_alive_tasks() - 1
    ))
}

fn run(s: Settings) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_secs(24 * 3600))
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let start_heap = LIVE.load(Relaxed);
    let warm = rt.block_on(async {
        let r = cycle(s, WARMUP_MESSAGES.min(s.messages)).await;
        tasks_gone().await?;
        r
    })?;
    let (heap0, fds0) = (LIVE.load(Relaxed), open_fds());
    PEAK.store(heap0, Relaxed);
    let allocs0 = ALLOCS.load(Relaxed);
    println!(
        "warm-up: {} messages, {} acked; baseline: live heap {} bytes ({} before the warm-up), {} open fds",
        WARMUP_MESSAGES.min(s.messages),
        warm.acked,
        heap0,
        start_heap,
        fds0
    );
    let report = rt.block_on(async {
        let r = cycle(s, s.messages).await;
        tasks_gone().await?;
        r
    })?;
    let (heap1, fds1, peak) = (LIVE.load(Relaxed), open_fds(), PEAK.load(Relaxed));
    let secs = report.elapsed.as_secs_f64();
    println!(
        "soak: {} messages in {:.1} s ({:.0} msgs/s), {} in flight at most, {} kill rounds",
        s.messages,
        secs,
        s.messages as f64 / secs.max(1e-9),
        s.in_flight,
        report.kills
    );
    println!(
        "  acked {}, failed {:?}, stored {} distinct (+{} duplicates), retries {}, connections closed {}, connects {} ({} reconnects), late replies {}",
        report.acked,
        report.failed,
        report.stored,
        report.duplicates,
        report.retried,
        report.closed,
        report.connects,
        report.reconnects,
        report.late_replies
    );
    println!(
        "  live heap: baseline {heap0} B, end {heap1} B (diff {:+} B, tolerance {HEAP_TOLERANCE} B), peak {} MiB; \
         {} allocations; open fds: baseline {fds0}, end {fds1}; RSS now {} MiB",
        heap1 - heap0,
        peak / (1024 * 1024),
        ALLOCS.load(Relaxed) - allocs0,
        rss_kib() / 1024
    );
    drop(rt);
    if heap1 - heap0 > HEAP_TOLERANCE {
        return Err(format!(
            "live heap grew by {} bytes (> {HEAP_TOLERANCE}) over the soak",
            heap1 - heap0
        ));
    }
    if fds1 != fds0 {
        return Err(format!(
            "open file descriptors: {fds0} before, {fds1} after"
        ));
    }
    println!("soak: PASS");
    Ok(())
}

fn main() -> ExitCode {
    let settings = match parse_args() {
        Ok(s) => s,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}
