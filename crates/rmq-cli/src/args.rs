//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Send to and inspect an Apache RocketMQ cluster with the rmq producer.
#[derive(Debug, Parser)]
#[command(name = "rmq", version, about)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub common: Common,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Name server address(es), `;`-separated as in Java (falls back to NAMESRV_ADDR).
    #[arg(
        long,
        global = true,
        env = "NAMESRV_ADDR",
        value_name = "HOST:PORT[;HOST:PORT]"
    )]
    pub namesrv: Option<String>,
    /// Header format of requests.
    #[arg(long, global = true, value_enum, default_value_t = HeaderArg::Binary)]
    pub header: HeaderArg,
    /// Producer group used by commands that send.
    #[arg(long, global = true, default_value = "rmq_cli_producer")]
    pub group: String,
    /// Per-request timeout (e.g. `3s`, `500ms`).
    #[arg(long, global = true, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl Common {
    /// The name servers of `--namesrv` (or `NAMESRV_ADDR`), split as Java does (`;`,
    /// also `,`). Fails when none is given.
    pub fn namesrv_addrs(&self) -> Result<Vec<String>, crate::output::CliError> {
        let addrs = self
            .namesrv
            .as_deref()
            .map(rmq_producer::config::parse_addr_list)
            .unwrap_or_default();
        if addrs.is_empty() {
            return Err(crate::output::CliError::new(
                crate::output::Kind::Usage,
                "no name server: pass --namesrv HOST:PORT[;HOST:PORT] or set NAMESRV_ADDR",
            ));
        }
        Ok(addrs)
    }

    /// The producer's header format for `--header`.
    pub fn header_format(&self) -> rmq_producer::HeaderFormat {
        self.header.into()
    }
}

impl From<HeaderArg> for rmq_producer::HeaderFormat {
    fn from(h: HeaderArg) -> Self {
        match h {
            HeaderArg::Binary => rmq_producer::HeaderFormat::Binary,
            HeaderArg::Json => rmq_producer::HeaderFormat::Json,
        }
    }
}

/// Request header format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HeaderArg {
    /// ROCKETMQ binary header (default; `rocketmq` is accepted too).
    #[value(alias = "rocketmq")]
    Binary,
    /// JSON header.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send messages and print one line (or JSON object) per message.
    Send(SendArgs),
    /// Measure throughput and latency, like RocketMQ's benchmark producer.
    Bench(BenchArgs),
    /// Show a topic's route and the resulting publish queues.
    Route(RouteArgs),
    /// Manage topics.
    Topic(TopicArgs),
    /// Read every queue of a topic back from the brokers.
    Pull(PullArgs),
    /// Send a mix of messages (sync, async, batch, compressed, ordered) and prove
    /// they all arrived intact.
    Demo(DemoArgs),
}

/// Compression codec choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompressArg {
    /// No compression.
    None,
    /// zlib (Java's default).
    Zlib,
    /// zstd.
    Zstd,
    /// LZ4 frame.
    Lz4,
}

/// Send mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Wait for each answer.
    Sync,
    /// Many in flight, answered through callbacks.
    Async,
    /// No answer awaited.
    Oneway,
    /// Batches (`send`: the `--count` messages as batches split at the size limit;
    /// `bench`: `--batch-size` messages per batch).
    Batch,
}

/// `rmq send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Topic.
    #[arg(long)]
    pub topic: String,
    /// Body text.
    #[arg(long, conflicts_with_all = ["body_file", "size"])]
    pub body: Option<String>,
    /// Body from a file.
    #[arg(long, conflicts_with = "size")]
    pub body_file: Option<PathBuf>,
    /// A generated body of N bytes.
    #[arg(long)]
    pub size: Option<usize>,
    /// How many messages.
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Keys (space-separated as in Java).
    #[arg(long)]
    pub keys: Option<String>,
    /// A user property `k=v` (repeatable).
    #[arg(long = "property", value_name = "K=V")]
    pub properties: Vec<String>,
    /// Compression of bodies ≥ 4 KiB.
    #[arg(long, value_enum, default_value_t = CompressArg::Zlib)]
    pub compress: CompressArg,
    /// Send mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Sync)]
    pub mode: ModeArg,
    /// Send each message as a transactional half message and end its transaction
    /// with this state (sync mode only).
    #[arg(long, value_enum)]
    pub transaction: Option<TransactionArg>,
    /// The answer to the broker's checks of this group's transactions (without it:
    /// `unknown`, the broker asks again later).
    #[arg(long, value_enum, requires = "transaction")]
    pub check_result: Option<CheckResultArg>,
    /// Keep running this long after the sends, answering the broker's checks
    /// (`20s`, `1m`).
    #[arg(long, value_parser = parse_duration, requires = "transaction")]
    pub linger: Option<Duration>,
    /// Print JSON objects (schema in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// How `rmq send --transaction` ends each transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransactionArg {
    /// Commit: the message becomes visible.
    Commit,
    /// Roll back: the message is discarded.
    Rollback,
    /// Unknown: the broker checks back later (answered with `--check-result`).
    Unknown,
}

/// The answer of `rmq send --transaction` to the broker's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckResultArg {
    /// Commit the checked transaction.
    Commit,
    /// Roll the checked transaction back.
    Rollback,
}

/// `rmq bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Topic.
    #[arg(long)]
    pub topic: String,
    /// Body size in bytes.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Send mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Async)]
    pub mode: ModeArg,
    /// Sends in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Stop after this many messages.
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Stop after this long (`20s`, `5m`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Messages per batch (`--mode batch`).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Turn on the producer's auto-batching (`auto_batch.enabled`, default limits:
    /// 10 ms linger, 32 KiB batches, 32 MiB buffered); sync and async sends are then
    /// gathered into batches. Batch counts go to stderr.
    #[arg(long)]
    pub auto_batch: bool,
    /// Compression.
    #[arg(long, value_enum, default_value_t = CompressArg::None)]
    pub compress: CompressArg,
    /// Write the UNIQ_KEY of every acked message to this file, one per line.
    #[arg(long)]
    pub acked_log: Option<PathBuf>,
    /// Print one JSON object (schema in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// `rmq route`.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// Topic.
    #[arg(long)]
    pub topic: String,
    /// Print JSON (schema in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// `rmq topic`.
#[derive(Debug, Args)]
pub struct TopicArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TopicAction,
}

/// `rmq topic` actions.
#[derive(Debug, Subcommand)]
pub enum TopicAction {
    /// Create or update a topic on every master broker of the cluster.
    Create {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Read and write queues per broker.
        #[arg(long, default_value_t = 4)]
        queues: u32,
        /// Permission: `rw`, `r` or `w`.
        #[arg(long, default_value = "rw")]
        perm: String,
        /// Print JSON (schema in docs/cli.md).
        #[arg(long)]
        json: bool,
    },
}

/// `rmq pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Topic.
    #[arg(long)]
    pub topic: String,
    /// Report which UNIQ_KEYs listed in this file (one per line) are missing.
    #[arg(long)]
    pub acked_log: Option<PathBuf>,
    /// Print JSON (schema in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// `rmq demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Topic to create and use (default: a fresh `RmqDemo-<time>` topic).
    #[arg(long)]
    pub topic: Option<String>,
}

/// Parses `20s`, `5m`, `1500ms`, `1h` into a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 20s, 5m, 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
