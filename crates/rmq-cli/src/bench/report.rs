//! The final summary: a human table or one JSON object (`rmq.bench/1`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::Settings;
use super::collect::Totals;
use crate::args::{BenchArgs, Common, CompressArg, HeaderArg, ModeArg};
use crate::output::ErrorObject;

/// The `schema` field of `rmq bench --json`.
pub const SCHEMA: &str = "rmq.bench/1";

/// The summary of one run; `--json` prints it as one object (docs/cli.md).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The topic.
    pub topic: String,
    /// `sync`, `async`, `oneway` or `batch`.
    pub mode: &'static str,
    /// Body size in bytes.
    pub size: usize,
    /// Sends (requests) in flight at most.
    pub concurrency: usize,
    /// Messages per request (1 unless `batch`).
    pub batch_size: usize,
    /// `--count`, if given.
    pub count: Option<u64>,
    /// `--duration` in seconds, if given.
    pub duration_s: Option<f64>,
    /// `none`, `zlib`, `zstd` or `lz4`.
    pub compress: &'static str,
    /// `binary` or `json`.
    pub header: &'static str,
    /// Wall time from the first send to the last completion, seconds.
    pub elapsed_s: f64,
    /// Whether Ctrl-C ended the run early.
    pub interrupted: bool,
    /// Requests completed (a batch is one request).
    pub requests: u64,
    /// Messages sent (completed either way): `acked + failed`.
    pub sent: u64,
    /// Messages acked by a broker (one-way: written).
    pub acked: u64,
    /// Messages that failed.
    pub failed: u64,
    /// Failed messages by reason (`Timeout`, `AllBrokersUnavailable`,
    /// `Rejected:SYSTEM_BUSY`, ...).
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Retries the producer made (its `stats().retried`).
    pub retried: u64,
    /// Acked messages per second over `elapsed_s`.
    pub msgs_per_s: f64,
    /// Acked body megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Latency percentiles of successful requests, µs (`null` when none succeeded).
    pub p50_us: Option<u64>,
    /// 90th percentile, µs.
    pub p90_us: Option<u64>,
    /// 99th percentile, µs.
    pub p99_us: Option<u64>,
    /// 99.9th percentile, µs.
    pub p999_us: Option<u64>,
    /// Largest, µs.
    pub max_us: Option<u64>,
    /// Mean, µs.
    pub mean_us: Option<f64>,
    /// `null`, or why the run could not happen or its acked log is incomplete
    /// (exit code 2).
    pub error: Option<ErrorObject>,
}

impl Report {
    /// The settings of a run, nothing measured yet (the document printed when the
    /// run cannot happen).
    pub(super) fn describe(common: &Common, args: &BenchArgs) -> Self {
        Self {
            schema: SCHEMA,
            topic: args.topic.clone(),
            mode: mode_name(args.mode),
            size: args.size,
            concurrency: args.concurrency,
            batch_size: if args.mode == ModeArg::Batch {
                args.batch_size
            } else {
                1
            },
            count: args.count,
            duration_s: args.duration.map(|d| d.as_secs_f64()),
            compress: compress_name(args.compress),
            header: header_name(common.header),
            elapsed_s: 0.0,
            interrupted: false,
            requests: 0,
            sent: 0,
            acked: 0,
            failed: 0,
            failed_by_reason: BTreeMap::new(),
            retried: 0,
            msgs_per_s: 0.0,
            mb_per_s: 0.0,
            p50_us: None,
            p90_us: None,
            p99_us: None,
            p999_us: None,
            max_us: None,
            mean_us: None,
            error: None,
        }
    }

    pub(super) fn new(
        settings: &Settings,
        totals: &Totals,
        elapsed: Duration,
        interrupted: bool,
        retried: u64,
    ) -> Self {
        let secs = elapsed.as_secs_f64();
        let msgs_per_s = if secs > 0.0 {
            totals.acked as f64 / secs
        } else {
            0.0
        };
        let h = &totals.latency;
        let q = |quantile: f64| (!h.is_empty()).then(|| h.value_at_quantile(quantile));
        Self {
            schema: SCHEMA,
            topic: settings.topic.clone(),
            mode: mode_name(settings.mode),
            size: settings.size,
            concurrency: settings.concurrency,
            batch_size: settings.batch_size,
            count: settings.count,
            duration_s: settings.duration.map(|d| d.as_secs_f64()),
            compress: compress_name(settings.compress),
            header: header_name(settings.header),
            elapsed_s: round3(secs),
            interrupted,
            requests: totals.requests,
            sent: totals.acked + totals.failed,
            acked: totals.acked,
            failed: totals.failed,
            failed_by_reason: totals.failed_by_reason.clone(),
            retried,
            msgs_per_s: round3(msgs_per_s),
            mb_per_s: round3(msgs_per_s * settings.size as f64 / 1e6),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: (!h.is_empty()).then(|| h.max()),
            mean_us: (!h.is_empty()).then(|| round3(h.mean())),
            error: None,
        }
    }

    /// The summary for a terminal.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let limit = match (self.count, self.duration_s) {
            (Some(n), _) => format!("{n} messages"),
            (None, Some(d)) => format!("{d} s"),
            (None, None) => "until Ctrl-C".to_owned(),
        };
        let batch = if self.mode == "batch" {
            format!(", {} per batch", self.batch_size)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "rmq bench: topic {}, {} mode, {} B bodies, {} in flight{batch}, {limit}, compression {}, {} header",
            self.topic, self.mode, self.size, self.concurrency, self.compress, self.header
        );
        if self.interrupted {
            let _ = writeln!(s, "  (interrupted by Ctrl-C)");
        }
        let _ = writeln!(s, "  elapsed     {:.3} s", self.elapsed_s);
        let _ = writeln!(s, "  sent        {}", self.sent);
        let _ = writeln!(s, "  acked       {}", self.acked);
        let reasons = if self.failed_by_reason.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self
                .failed_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            format!("  ({})", list.join(", "))
        };
        let _ = writeln!(s, "  failed      {}{reasons}", self.failed);
        let _ = writeln!(s, "  retried     {}", self.retried);
        let _ = writeln!(
            s,
            "  throughput  {:.1} msgs/s, {:.3} MB/s",
            self.msgs_per_s, self.mb_per_s
        );
        let us = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let _ = writeln!(
            s,
            "  latency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            us(self.p50_us),
            us(self.p90_us),
            us(self.p99_us),
            us(self.p999_us),
            us(self.max_us)
        );
        s
    }
}

fn mode_name(mode: ModeArg) -> &'static str {
    match mode {
        ModeArg::Sync => "sync",
        ModeArg::Async => "async",
        ModeArg::Oneway => "oneway",
        ModeArg::Batch => "batch",
    }
}

fn compress_name(c: CompressArg) -> &'static str {
    match c {
        CompressArg::None => "none",
        CompressArg::Zlib => "zlib",
        CompressArg::Zstd => "zstd",
        CompressArg::Lz4 => "lz4",
    }
}

fn header_name(h: HeaderArg) -> &'static str {
    match h {
        HeaderArg::Binary => "binary",
        HeaderArg::Json => "json",
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
