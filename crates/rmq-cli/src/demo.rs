//! `rmq demo`: creates a topic on every master, sends a mix of messages through the
//! producer (sync, async, batch, compressed with each codec, ordered through Java's
//! hash selector), reads the topic back with [`crate::pull`], and checks that every
//! message arrived intact: once, with its body (decompressed by its sysFlag), its tag,
//! the compression it was sent with, and, for the ordered ones, one queue in send order.
//!
//! The report ends with `all N messages arrived intact (...)`; any mismatch is listed
//! and the exit code is 1.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use rmq_producer::compress::Compression;
use rmq_producer::selector::{JavaHashSelector, SelectorArg};
use rmq_producer::{CompressionType, Message, Producer, SendError, SendOptions, SendResult};
use tokio::time::Instant;

use crate::admin::Admin;
use crate::args::{Common, DemoArgs};
use crate::output::{CliError, EXIT_FAILED, Kind, print_line};
use crate::pull::{PullOptions, PulledMessage, PulledTopic, Puller, compression_name};
use crate::topic::{ROUTE_WAIT, create_on_masters, wait_route};

/// Queues per broker of the demo topic.
pub const QUEUES: u32 = 4;
/// Messages sent synchronously.
pub const SYNC: usize = 40;
/// Messages sent with callbacks.
pub const ASYNC: usize = 40;
/// Messages sent in batches.
pub const BATCH: usize = 20;
/// Messages per batch.
pub const BATCH_SIZE: usize = 10;
/// Compressed messages per codec: zlib, zstd, lz4.
pub const COMPRESSED: [(CompressionType, usize); 3] = [
    (CompressionType::Zlib, 4),
    (CompressionType::Zstd, 3),
    (CompressionType::Lz4, 3),
];
/// Messages sent in order through the hash selector.
pub const ORDERED: usize = 10;
/// The ordering key of the ordered messages.
pub const ORDER_KEY: &str = "rmq-demo-order";
/// How long the demo keeps pulling while messages are missing.
pub const SETTLE: Duration = Duration::from_secs(5);

/// The kinds of sends the demo makes, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DemoMode {
    /// `Producer::send`.
    Sync,
    /// `Producer::send_with_callback`.
    Async,
    /// `Producer::send_batch`.
    Batch,
    /// `Producer::send` of large bodies by producers compressing with each codec.
    Compressed,
    /// `Producer::send_with` and the Java hash selector, one key.
    Ordered,
}

impl DemoMode {
    /// Every mode, in report order.
    pub const ALL: [DemoMode; 5] = [
        DemoMode::Sync,
        DemoMode::Async,
        DemoMode::Batch,
        DemoMode::Compressed,
        DemoMode::Ordered,
    ];

    /// `sync`, `async`, `batch`, `compressed`, `ordered`.
    pub const fn name(self) -> &'static str {
        match self {
            DemoMode::Sync => "sync",
            DemoMode::Async => "async",
            DemoMode::Batch => "batch",
            DemoMode::Compressed => "compressed",
            DemoMode::Ordered => "ordered",
        }
    }
}

/// A message the demo sent and expects back.
#[derive(Debug, Clone)]
struct Expected {
    mode: DemoMode,
    key: String,
    body: Bytes,
    tag: String,
    compression: Option<CompressionType>,
    /// Position among the ordered messages.
    seq: usize,
}

/// What happened to the sends of one mode.
#[derive(Debug, Default, Clone)]
struct Tally {
    sent: usize,
    failed: usize,
    verified: usize,
}

/// A body of about `len` bytes: readable text that differs per message (a small
/// xorshift generator picks the words), so codecs have real work to do.
fn body(mode: DemoMode, i: usize, len: usize) -> Bytes {
    const WORDS: [&str; 16] = [
        "rocketmq",
        "broker",
        "queue",
        "offset",
        "producer",
        "message",
        "topic",
        "route",
        "retry",
        "batch",
        "zlib",
        "zstd",
        "lz4",
        "commitlog",
        "namesrv",
        "rust",
    ];
    let mut s = format!("rmq demo {} message #{i}:", mode.name());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 0x100_0000_01B3) ^ mode as u64;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push(' ');
        s.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
    }
    Bytes::from(s.into_bytes())
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The demo's sending half.
struct Sender<'a> {
    common: &'a Common,
    namesrv: Vec<String>,
    topic: String,
    expected: Vec<Expected>,
    tallies: HashMap<DemoMode, Tally>,
    failures: Vec<String>,
}

/// One send's data, recorded with its outcome.
struct Sent {
    mode: DemoMode,
    seq: usize,
    body: Bytes,
    tag: String,
    compression: Option<CompressionType>,
    key: String,
}

impl Sender<'_> {
    async fn producer(&self, compression: Compression) -> anyhow::Result<Producer> {
        let namesrv = self.namesrv.clone();
        Producer::builder(self.common.group.as_str())
            .configure(|c| {
                c.namesrv_addrs = namesrv;
                c.header_format = self.common.header_format();
                c.send_timeout = self.common.timeout;
                c.compression = compression;
            })
            .build()
            .await
            .map_err(|e| CliError::new(Kind::Config, format!("starting the producer: {e}")).into())
    }

    fn message(
        &self,
        mode: DemoMode,
        i: usize,
        len: usize,
    ) -> anyhow::Result<(Message, Bytes, String)> {
        let body = body(mode, i, len);
        let tag = format!("demo-{}", mode.name());
        let m = Message::new(self.topic.as_str(), body.clone())
            .with_tags(tag.as_str())
            .and_then(|m| m.with_keys([format!("{}-{i}", mode.name())]))
            .and_then(|m| m.with_property("demo_mode", mode.name()))
            .context("building a demo message")?;
        Ok((m, body, tag))
    }

    fn record(&mut self, sent: Sent, outcome: Result<SendResult, SendError>) {
        let Sent {
            mode,
            seq,
            body,
            tag,
            compression,
            key,
        } = sent;
        let tally = self.tallies.entry(mode).or_default();
        match outcome {
            Ok(r) => {
                tally.sent += 1;
                self.expected.push(Expected {
                    mode,
                    key: r.msg_id.into_string(),
                    body,
                    tag,
                    compression,
                    seq,
                });
            }
            Err(e) => {
                tally.failed += 1;
                self.failures
                    .push(format!("{} #{seq} ({key}): send failed: {e}", mode.name()));
            }
        }
    }

    async fn send_all(&mut self) -> anyhow::Result<()> {
        let producer = self.producer(Compression::disabled()).await?;

        for i in 0..SYNC {
            let (mut m, body, tag) = self.message(DemoMode::Sync, i, 40 + i * 37)?;
            let key = producer.assign_uniq_key(&mut m).to_owned();
            let outcome = producer.send(m).await;
            self.record(
                Sent {
                    mode: DemoMode::Sync,
                    seq: i,
                    body,
                    tag,
                    compression: None,
                    key,
                },
                outcome,
            );
        }

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..ASYNC {
            let (mut m, body, tag) = self.message(DemoMode::Async, i, 40 + i * 37)?;
            let key = producer.assign_uniq_key(&mut m).to_owned();
            let tx = tx.clone();
            producer.send_with_callback(m, move |outcome| {
                let _ = tx.send((i, body, tag, key, outcome));
            });
        }
        drop(tx);
        while let Some((i, body, tag, key, outcome)) = rx.recv().await {
            self.record(
                Sent {
                    mode: DemoMode::Async,
                    seq: i,
                    body,
                    tag,
                    compression: None,
                    key,
                },
                outcome,
            );
        }

        for chunk in 0..BATCH.div_ceil(BATCH_SIZE) {
            let mut messages = Vec::new();
            let mut meta = Vec::new();
            for i in chunk * BATCH_SIZE..((chunk + 1) * BATCH_SIZE).min(BATCH) {
                let (mut m, body, tag) = self.message(DemoMode::Batch, i, 40 + i * 53)?;
                let key = producer.assign_uniq_key(&mut m).to_owned();
                messages.push(m);
                meta.push((i, body, tag, key));
            }
            let outcomes = producer.send_batch(messages).await;
            for ((i, body, tag, key), outcome) in meta.into_iter().zip(outcomes) {
                self.record(
                    Sent {
                        mode: DemoMode::Batch,
                        seq: i,
                        body,
                        tag,
                        compression: None,
                        key,
                    },
                    outcome,
                );
            }
        }

        let mut i = 0;
        for (kind, n) in COMPRESSED {
            let codec_producer = self
                .producer(Compression {
                    enabled: true,
                    kind,
                    ..Compression::default()
                })
                .await?;
            for _ in 0..n {
                let (mut m, body, tag) = self.message(DemoMode::Compressed, i, 6000 + i * 1500)?;
                let key = codec_producer.assign_uniq_key(&mut m).to_owned();
                let outcome = codec_producer.send(m).await;
                self.record(
                    Sent {
                        mode: DemoMode::Compressed,
                        seq: i,
                        body,
                        tag,
                        compression: Some(kind),
                        key,
                    },
                    outcome,
                );
                i += 1;
            }
            codec_producer.close(Duration::from_secs(5)).await;
        }

        let selector = Arc::new(JavaHashSelector);
        for i in 0..ORDERED {
            let (mut m, body, tag) = self.message(DemoMode::Ordered, i, 60)?;
            let key = producer.assign_uniq_key(&mut m).to_owned();
            let options = SendOptions::default()
                .selector(selector.clone(), SelectorArg::Str(ORDER_KEY.to_owned()));
            let outcome = producer.send_with(m, options).await;
            self.record(
                Sent {
                    mode: DemoMode::Ordered,
                    seq: i,
                    body,
                    tag,
                    compression: None,
                    key,
                },
                outcome,
            );
        }
        producer.close(Duration::from_secs(5)).await;
        Ok(())
    }
}

/// Checks one expected message against what was pulled; `Err` says what is wrong.
fn check(e: &Expected, found: &[&PulledMessage]) -> Result<(), String> {
    let [m] = found else {
        return Err(if found.is_empty() {
            "not found in the topic".to_owned()
        } else {
            format!("stored {} times", found.len())
        });
    };
    let body = match &m.body {
        Some(Ok(b)) => b,
        Some(Err(err)) => return Err(format!("body could not be decompressed: {err}")),
        None => return Err("body not read".to_owned()),
    };
    if *body != e.body {
        return Err(format!(
            "body differs: sent {} bytes, read {} bytes",
            e.body.len(),
            body.len()
        ));
    }
    if m.tags() != Some(e.tag.as_str()) {
        return Err(format!("tag {:?}, expected {:?}", m.tags(), e.tag));
    }
    match (m.compression(), e.compression) {
        (Ok(got), want) if got == want => {}
        (Ok(got), want) => {
            return Err(format!(
                "stored with compression {}, expected {}",
                got.map_or("none", compression_name),
                want.map_or("none", compression_name)
            ));
        }
        (Err(err), _) => return Err(format!("sysFlag 0x{:x}: {err}", m.sys_flag.0)),
    }
    Ok(())
}

/// Checks the ordered messages: one queue, offsets ascending in send order.
fn check_order(
    expected: &[Expected],
    by_key: &HashMap<&str, Vec<&PulledMessage>>,
) -> Result<Option<String>, String> {
    let mut placed: Vec<(usize, &PulledMessage)> = expected
        .iter()
        .filter(|e| e.mode == DemoMode::Ordered)
        .filter_map(|e| match by_key.get(e.key.as_str()).map(Vec::as_slice) {
            Some([m]) => Some((e.seq, *m)),
            _ => None,
        })
        .collect();
    placed.sort_by_key(|(seq, _)| *seq);
    let Some((_, first)) = placed.first() else {
        return Ok(None);
    };
    let queue = format!("{}:{}", first.broker, first.queue_id);
    for pair in placed.windows(2) {
        let [(_, a), (_, b)] = pair else { continue };
        if (a.broker.as_str(), a.queue_id) != (b.broker.as_str(), b.queue_id) {
            return Err(format!(
                "ordered messages spread over {queue} and {}:{}",
                b.broker, b.queue_id
            ));
        }
        if a.queue_offset >= b.queue_offset {
            return Err(format!(
                "ordered messages out of order in {queue}: offsets {} then {}",
                a.queue_offset, b.queue_offset
            ));
        }
    }
    Ok(Some(queue))
}

/// Runs `rmq demo`.
pub async fn run(common: &Common, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let namesrv = common.namesrv_addrs()?;
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| format!("RmqDemo-{}", now_ms()));
    let header = common.header_format();
    print_line(format!(
        "rmq demo: name server {}, {header} request headers",
        namesrv.join(";")
    ));

    let admin = Admin::new(namesrv.clone(), header, common.timeout);
    let outcomes = create_on_masters(
        &admin,
        &topic,
        QUEUES,
        rmq_protocol::route::perm::READ | rmq_protocol::route::perm::WRITE,
    )
    .await
    .with_context(|| format!("creating the demo topic {topic}"))?;
    let mut brokers = Vec::new();
    for o in &outcomes {
        if let Some(e) = &o.error {
            return Err(
                anyhow::Error::new(e.clone()).context(format!("creating the demo topic {topic}"))
            );
        }
        brokers.push(format!("{} ({})", o.master.broker, o.master.addr));
    }
    let names: Vec<&str> = outcomes.iter().map(|o| o.master.broker.as_str()).collect();
    if !wait_route(&admin, &topic, &names, QUEUES, ROUTE_WAIT).await {
        eprintln!("rmq: warning: the name server does not list {topic} on every broker yet");
    }
    print_line(format!(
        "topic {topic}: created on {}, {QUEUES} queues each",
        brokers.join(", ")
    ));

    let mut sender = Sender {
        common,
        namesrv: namesrv.clone(),
        topic: topic.clone(),
        expected: Vec::new(),
        tallies: HashMap::new(),
        failures: Vec::new(),
    };
    let started = Instant::now();
    sender.send_all().await?;
    let send_time = started.elapsed();
    let sent: usize = sender.tallies.values().map(|t| t.sent).sum();
    let total: usize =
        SYNC + ASYNC + BATCH + COMPRESSED.iter().map(|(_, n)| n).sum::<usize>() + ORDERED;

    // read back, waiting briefly for messages the brokers have not made visible yet
    let started = Instant::now();
    let puller = Puller::new(admin, PullOptions::default());
    let mut pulled: PulledTopic = puller
        .pull(&topic)
        .await
        .with_context(|| format!("reading {topic} back"))?;
    let keys: Vec<String> = sender.expected.iter().map(|e| e.key.clone()).collect();
    let deadline = Instant::now() + SETTLE;
    while !pulled.missing(&keys).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        puller
            .pull_more(&mut pulled)
            .await
            .with_context(|| format!("reading {topic} back"))?;
    }
    puller.admin().close();
    let read_time = started.elapsed();
    print_line(format!(
        "sent {sent} of {total} messages in {:.2} s; read {} back from {} queues in {:.2} s",
        send_time.as_secs_f64(),
        pulled.messages.len(),
        pulled.queues.len(),
        read_time.as_secs_f64()
    ));

    // verify
    let by_key = pulled.by_uniq_key();
    let mut problems = std::mem::take(&mut sender.failures);
    for e in &sender.expected {
        match check(
            e,
            by_key
                .get(e.key.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default(),
        ) {
            Ok(()) => sender.tallies.entry(e.mode).or_default().verified += 1,
            Err(why) => problems.push(format!("{} #{} ({}): {why}", e.mode.name(), e.seq, e.key)),
        }
    }
    let ordered_note = match check_order(&sender.expected, &by_key) {
        Ok(Some(queue)) => format!("all on {queue}, in send order"),
        Ok(None) => String::new(),
        Err(why) => {
            if let Some(t) = sender.tallies.get_mut(&DemoMode::Ordered) {
                t.verified = 0;
            }
            problems.push(why.clone());
            why
        }
    };
    let sent_keys: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
    let unexpected = pulled
        .messages
        .iter()
        .filter(|m| !m.uniq_key.as_deref().is_some_and(|k| sent_keys.contains(k)))
        .count();

    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n  {:<11} {:>5} {:>9}  notes",
        "mode", "sent", "verified"
    );
    for mode in DemoMode::ALL {
        let t = sender.tallies.get(&mode).cloned().unwrap_or_default();
        let note = match mode {
            DemoMode::Batch => format!("{} batches of {BATCH_SIZE}", BATCH.div_ceil(BATCH_SIZE)),
            DemoMode::Compressed => {
                let codecs: Vec<String> = COMPRESSED
                    .iter()
                    .map(|(k, n)| format!("{} {n}", compression_name(*k)))
                    .collect();
                format!(
                    "{}; stored compressed, read back decompressed",
                    codecs.join(", ")
                )
            }
            DemoMode::Ordered => ordered_note.clone(),
            _ => String::new(),
        };
        let row = format!(
            "  {:<11} {:>5} {:>9}  {note}",
            mode.name(),
            t.sent,
            t.verified
        );
        let _ = writeln!(table, "{}", row.trim_end());
    }
    print_line(table.trim_end());
    print_line("");
    let verified: usize = sender.tallies.values().map(|t| t.verified).sum();
    let per_mode: Vec<String> = DemoMode::ALL
        .iter()
        .map(|m| {
            let t = sender.tallies.get(m).cloned().unwrap_or_default();
            format!("{} {}", m.name(), t.verified)
        })
        .collect();
    if unexpected > 0 {
        eprintln!("rmq: note: the topic holds {unexpected} messages the demo did not send");
    }
    if problems.is_empty() && verified == total {
        print_line(format!(
            "all {total} messages arrived intact ({})",
            per_mode.join(", ")
        ));
        let list = namesrv.join(";");
        let list = if namesrv.len() > 1 {
            format!("'{list}'")
        } else {
            list
        };
        print_line(format!(
            "read them back: rmq --namesrv {list} pull --topic {topic}"
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        for p in problems.iter().take(20) {
            print_line(format!("  problem: {p}"));
        }
        if problems.len() > 20 {
            print_line(format!("  ... and {} more", problems.len() - 20));
        }
        print_line(format!(
            "FAILED: {verified} of {total} messages arrived intact ({})",
            per_mode.join(", ")
        ));
        Ok(ExitCode::from(EXIT_FAILED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_differ_and_have_the_length_asked() {
        let a = body(DemoMode::Sync, 1, 100);
        let b = body(DemoMode::Sync, 2, 100);
        assert_ne!(a, b);
        assert!(a.len() >= 100 && a.len() < 120);
        assert!(body(DemoMode::Compressed, 0, 6000).len() >= 6000);
    }

    #[test]
    fn totals_match_the_issue() {
        let compressed: usize = COMPRESSED.iter().map(|(_, n)| n).sum();
        assert_eq!(
            (SYNC, ASYNC, BATCH, compressed, ORDERED),
            (40, 40, 20, 10, 10)
        );
    }
}
