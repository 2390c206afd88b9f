//! `rmq send`: sends `--count` messages in one mode and prints one line (or one
//! `rmq.send/1` JSON object) per message. The exit code is 1 if any send failed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use rmq_producer::compress::Compression;
use rmq_producer::transaction::{
    BoxFuture, CheckRequest, LocalTransaction, TransactionError, TransactionListener,
    TransactionProducer, TransactionState,
};
use rmq_producer::{CompressionType, Message, Producer, SendError, SendResult};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::args::{CheckResultArg, Common, CompressArg, ModeArg, SendArgs, TransactionArg};
use crate::output::{self, CliError, EXIT_FAILED, ErrorObject, Kind, SCHEMA_SEND, print_line};

/// Async sends the command keeps in flight at once (the producer bounds them too).
const ASYNC_WINDOW: usize = 1024;

/// The producer's compression setting for `--compress`: off, or the codec at its
/// default level for bodies of at least 4 KiB.
pub fn compression(arg: CompressArg) -> Compression {
    let kind = match arg {
        CompressArg::None => return Compression::disabled(),
        CompressArg::Zlib => CompressionType::Zlib,
        CompressArg::Zstd => CompressionType::Zstd,
        CompressArg::Lz4 => CompressionType::Lz4,
    };
    Compression {
        enabled: true,
        kind,
        ..Compression::default()
    }
}

/// The name of a mode in output: `sync`, `async`, `oneway`, `batch`.
pub fn mode_name(mode: ModeArg) -> &'static str {
    match mode {
        ModeArg::Sync => "sync",
        ModeArg::Async => "async",
        ModeArg::Oneway => "oneway",
        ModeArg::Batch => "batch",
    }
}

/// A generated body of `size` bytes: readable text (so it compresses as text does).
pub fn generated_body(size: usize) -> Bytes {
    const PATTERN: &[u8] = b"rmq generated body 0123456789 abcdefghijklmnopqrstuvwxyz. ";
    Bytes::from(
        PATTERN
            .iter()
            .copied()
            .cycle()
            .take(size)
            .collect::<Vec<u8>>(),
    )
}

/// One `rmq.send/1` line.
#[derive(Debug, Clone, Serialize)]
pub struct SendDoc {
    /// `"rmq.send/1"`.
    pub schema: &'static str,
    /// The message's position, 0-based (`null` for a failure before any message).
    pub index: Option<u64>,
    /// The topic.
    pub topic: String,
    /// `sync`, `async`, `oneway` or `batch`.
    pub mode: &'static str,
    /// The message id: the UNIQ_KEY (assigned before sending, so failures have it too).
    pub msg_id: Option<String>,
    /// The broker's offset message id.
    pub offset_msg_id: Option<String>,
    /// The broker name.
    pub broker: Option<String>,
    /// The queue id.
    pub queue_id: Option<i32>,
    /// The queue offset.
    pub queue_offset: Option<i64>,
    /// Java's status name (`SEND_OK`, `FLUSH_DISK_TIMEOUT`, `FLUSH_SLAVE_TIMEOUT`,
    /// `SLAVE_NOT_AVAILABLE`), `ONEWAY` for a one-way send, `null` on failure.
    pub status: Option<&'static str>,
    /// The failure, if any.
    pub error: Option<ErrorObject>,
    /// `--transaction` only: the state the transaction was ended with (`commit`,
    /// `rollback`, `unknown`); absent for other sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<&'static str>,
}

impl SendDoc {
    fn base(topic: &str, mode: ModeArg, index: Option<u64>, msg_id: Option<String>) -> Self {
        Self {
            schema: SCHEMA_SEND,
            index,
            topic: topic.to_owned(),
            mode: mode_name(mode),
            msg_id,
            offset_msg_id: None,
            broker: None,
            queue_id: None,
            queue_offset: None,
            status: None,
            error: None,
            transaction: None,
        }
    }

    /// The line of a send outcome.
    pub fn outcome(
        topic: &str,
        mode: ModeArg,
        index: u64,
        msg_id: String,
        outcome: &Result<SendResult, SendError>,
    ) -> Self {
        let mut doc = Self::base(topic, mode, Some(index), Some(msg_id));
        match outcome {
            Ok(r) => {
                doc.msg_id = Some(r.msg_id.to_string());
                doc.offset_msg_id = Some(r.offset_msg_id.to_string());
                doc.broker = Some(r.message_queue.broker_name.to_string());
                doc.queue_id = Some(r.message_queue.queue_id);
                doc.queue_offset = Some(r.queue_offset);
                doc.status = Some(r.status.java_name());
            }
            Err(e) => {
                doc.broker = e.broker().map(str::to_owned);
                doc.error = Some(ErrorObject::from_send_error(e));
            }
        }
        doc
    }

    /// The line of a one-way send.
    pub fn oneway(
        topic: &str,
        index: u64,
        msg_id: String,
        outcome: &Result<(), SendError>,
    ) -> Self {
        let mut doc = Self::base(topic, ModeArg::Oneway, Some(index), Some(msg_id));
        match outcome {
            Ok(()) => doc.status = Some("ONEWAY"),
            Err(e) => {
                doc.broker = e.broker().map(str::to_owned);
                doc.error = Some(ErrorObject::from_send_error(e));
            }
        }
        doc
    }

    /// The text line.
    pub fn text(&self) -> String {
        let id = self.msg_id.as_deref().unwrap_or("-");
        match (&self.status, &self.error) {
            (_, Some(e)) => {
                let code = e.code.map(|c| format!(", code {c}")).unwrap_or_default();
                format!(
                    "FAILED  {id}  {} ({}{code}): {}",
                    e.kind,
                    e.delivery.as_deref().unwrap_or("-"),
                    e.message
                )
            }
            (Some("ONEWAY"), None) => format!("ONEWAY  {id}"),
            (status, None) => format!(
                "{}  {id}  {}:{} @{}  offset_msg_id {}{}",
                status.unwrap_or("?"),
                self.broker.as_deref().unwrap_or("-"),
                self.queue_id
                    .map_or_else(|| "-".to_owned(), |q| q.to_string()),
                self.queue_offset
                    .map_or_else(|| "-".to_owned(), |o| o.to_string()),
                self.offset_msg_id.as_deref().unwrap_or("-"),
                self.transaction
                    .map(|t| format!("  transaction {t}"))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// What `args` asks to send, checked before anything is sent.
struct Plan {
    body: Option<Bytes>,
    properties: Vec<(String, String)>,
}

impl Plan {
    fn new(args: &SendArgs) -> anyhow::Result<Self> {
        let body = if let Some(text) = &args.body {
            Some(Bytes::from(text.clone().into_bytes()))
        } else if let Some(path) = &args.body_file {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading --body-file {}", path.display()))?;
            Some(Bytes::from(bytes))
        } else {
            args.size.map(generated_body)
        };
        let mut properties = Vec::new();
        for p in &args.properties {
            let Some((k, v)) = p.split_once('=') else {
                return Err(CliError::new(
                    Kind::Usage,
                    format!("--property {p:?}: expected KEY=VALUE"),
                )
                .into());
            };
            properties.push((k.to_owned(), v.to_owned()));
        }
        let plan = Self { body, properties };
        // build one message now, so a bad tag, key or property fails before any send
        plan.message(args, 0)?;
        Ok(plan)
    }

    fn message(&self, args: &SendArgs, i: u64) -> anyhow::Result<Message> {
        let body = match &self.body {
            Some(b) => b.clone(),
            None => Bytes::from(format!("hello from rmq, message {i}").into_bytes()),
        };
        let mut m = Message::new(args.topic.as_str(), body);
        let usage = |what: &str, e: &dyn std::fmt::Display| {
            anyhow::Error::new(CliError::new(Kind::Usage, format!("{what}: {e}")))
        };
        if let Some(tag) = &args.tag {
            m.set_tags(tag.as_str())
                .map_err(|e| usage(&format!("--tag {tag:?}"), &e))?;
        }
        if let Some(keys) = &args.keys {
            m.set_keys(keys.split(' '))
                .map_err(|e| usage(&format!("--keys {keys:?}"), &e))?;
        }
        for (k, v) in &self.properties {
            m.put_user_property(k.as_str(), v.as_str())
                .map_err(|e| usage(&format!("--property {k}={v}"), &e))?;
        }
        Ok(m)
    }
}

/// Runs `rmq send`.
pub async fn run(common: &Common, args: SendArgs) -> anyhow::Result<ExitCode> {
    if let Some(state) = args.transaction {
        return run_transactional(common, args, transaction_state(state)).await;
    }
    let prepared = async {
        let plan = Plan::new(&args)?;
        let namesrv = common.namesrv_addrs()?;
        let producer = Producer::builder(common.group.as_str())
            .configure(|c| {
                c.namesrv_addrs = namesrv;
                c.header_format = common.header_format();
                c.send_timeout = common.timeout;
                c.compression = compression(args.compress);
            })
            .build()
            .await
            .map_err(|e| CliError::new(Kind::Config, format!("starting the producer: {e}")))?;
        anyhow::Ok((plan, producer))
    };
    let (plan, producer) = match prepared.await {
        Ok(p) => p,
        Err(e) => {
            let mut doc = SendDoc::base(&args.topic, args.mode, None, None);
            doc.error = Some(ErrorObject::from_anyhow(&e));
            return output::fail(args.json, &doc, &e);
        }
    };
    let started = Instant::now();
    let mut report = Report {
        json: args.json,
        ok: 0,
        failed: 0,
    };
    match args.mode {
        ModeArg::Sync => {
            for i in 0..args.count {
                let mut m = plan.message(&args, i)?;
                let id = producer.assign_uniq_key(&mut m).to_owned();
                let outcome = producer.send(m).await;
                report.line(&SendDoc::outcome(&args.topic, args.mode, i, id, &outcome))?;
            }
        }
        ModeArg::Oneway => {
            for i in 0..args.count {
                let mut m = plan.message(&args, i)?;
                let id = producer.assign_uniq_key(&mut m).to_owned();
                let outcome = producer.send_oneway(m).await;
                report.line(&SendDoc::oneway(&args.topic, i, id, &outcome))?;
            }
        }
        ModeArg::Async => {
            let window = Arc::new(Semaphore::new(ASYNC_WINDOW));
            let (tx, mut rx) = mpsc::unbounded_channel();
            let mut received = 0;
            for i in 0..args.count {
                let mut m = plan.message(&args, i)?;
                let id = producer.assign_uniq_key(&mut m).to_owned();
                let permit = window.clone().acquire_owned().await?;
                let tx = tx.clone();
                producer.send_with_callback(m, move |outcome| {
                    let _ = tx.send((i, id, outcome));
                    drop(permit);
                });
                // print what has completed so far
                while let Ok((i, id, outcome)) = rx.try_recv() {
                    received += 1;
                    report.line(&SendDoc::outcome(&args.topic, args.mode, i, id, &outcome))?;
                }
            }
            drop(tx);
            while let Some((i, id, outcome)) = rx.recv().await {
                received += 1;
                report.line(&SendDoc::outcome(&args.topic, args.mode, i, id, &outcome))?;
            }
            if received != args.count {
                eprintln!(
                    "rmq: {} of {} async sends reported no outcome",
                    args.count - received,
                    args.count
                );
                report.failed += args.count - received;
            }
        }
        ModeArg::Batch => {
            let mut messages = Vec::new();
            let mut ids = Vec::new();
            for i in 0..args.count {
                let mut m = plan.message(&args, i)?;
                ids.push(producer.assign_uniq_key(&mut m).to_owned());
                messages.push(m);
            }
            let outcomes = producer.send_batch(messages).await;
            for (i, (id, outcome)) in ids.into_iter().zip(outcomes).enumerate() {
                report.line(&SendDoc::outcome(
                    &args.topic,
                    args.mode,
                    i as u64,
                    id,
                    &outcome,
                ))?;
            }
        }
    }
    producer.close(Duration::from_secs(5)).await;
    eprintln!(
        "rmq: {} of {} messages sent to {} ({}) in {:.2} s{}",
        report.ok,
        args.count,
        args.topic,
        mode_name(args.mode),
        started.elapsed().as_secs_f64(),
        if report.failed > 0 {
            format!("; {} failed", report.failed)
        } else {
            String::new()
        }
    );
    Ok(if report.failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The producer state for a `--transaction` value.
fn transaction_state(arg: TransactionArg) -> TransactionState {
    match arg {
        TransactionArg::Commit => TransactionState::Commit,
        TransactionArg::Rollback => TransactionState::Rollback,
        TransactionArg::Unknown => TransactionState::Unknown,
    }
}

/// The listener of `rmq send --transaction`: every local transaction ends with the
/// `--transaction` state; checks of the transactions this invocation sent are answered
/// with `--check-result` (`unknown` without it). Checks of any other transaction of the
/// group (half messages of earlier invocations, which the broker may check again even
/// after they were ended) are answered `unknown`: this process cannot know their state,
/// and answering for them could commit a rolled-back message.
struct FixedAnswers {
    execute: TransactionState,
    check: TransactionState,
    /// The transaction ids (UNIQ_KEYs) this invocation sent. A std mutex, never held
    /// across an await.
    ours: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl FixedAnswers {
    fn remember(&self, transaction_id: &str) {
        if let Ok(mut ours) = self.ours.lock() {
            ours.insert(transaction_id.to_owned());
        }
    }

    fn is_ours(&self, transaction_id: &str) -> bool {
        self.ours
            .lock()
            .map(|ours| ours.contains(transaction_id))
            .unwrap_or(false)
    }
}

impl TransactionListener for FixedAnswers {
    fn execute<'a>(&'a self, _tx: LocalTransaction<'a>) -> BoxFuture<'a, TransactionState> {
        let state = self.execute;
        Box::pin(async move { state })
    }

    fn check<'a>(&'a self, check: &'a CheckRequest) -> BoxFuture<'a, TransactionState> {
        let state = if self.is_ours(&check.transaction_id) {
            self.check
        } else {
            TransactionState::Unknown
        };
        Box::pin(async move {
            eprintln!(
                "rmq: broker {} checked transaction {}: answering {state}",
                check.broker_name.as_deref().unwrap_or(&check.broker_addr),
                check.transaction_id
            );
            state
        })
    }
}

/// `rmq send --transaction STATE [--check-result R] [--linger D]`: each message is a
/// half message whose transaction ends with STATE; checks are answered with R while
/// the command runs (the sends, then `--linger`).
async fn run_transactional(
    common: &Common,
    args: SendArgs,
    state: TransactionState,
) -> anyhow::Result<ExitCode> {
    let prepared = async {
        if args.mode != ModeArg::Sync {
            return Err(CliError::new(
                Kind::Usage,
                "--transaction sends one message at a time: use --mode sync (the default)",
            )
            .into());
        }
        let plan = Plan::new(&args)?;
        let namesrv = common.namesrv_addrs()?;
        let check = args
            .check_result
            .map_or(TransactionState::Unknown, |c| match c {
                CheckResultArg::Commit => TransactionState::Commit,
                CheckResultArg::Rollback => TransactionState::Rollback,
            });
        let answers = Arc::new(FixedAnswers {
            execute: state,
            check,
            ours: std::sync::Mutex::default(),
        });
        let producer = TransactionProducer::builder(common.group.as_str())
            .producer(|b| {
                b.configure(|c| {
                    c.namesrv_addrs = namesrv;
                    c.header_format = common.header_format();
                    c.send_timeout = common.timeout;
                    c.compression = compression(args.compress);
                })
            })
            .listener(answers.clone())
            .unresolved_check_answer(TransactionState::Unknown)
            .build()
            .await
            .map_err(|e| CliError::new(Kind::Config, format!("starting the producer: {e}")))?;
        anyhow::Ok((plan, producer, answers))
    };
    let (plan, producer, answers) = match prepared.await {
        Ok(p) => p,
        Err(e) => {
            let mut doc = SendDoc::base(&args.topic, args.mode, None, None);
            doc.error = Some(ErrorObject::from_anyhow(&e));
            return output::fail(args.json, &doc, &e);
        }
    };
    let started = Instant::now();
    let mut report = Report {
        json: args.json,
        ok: 0,
        failed: 0,
    };
    for i in 0..args.count {
        let mut m = plan.message(&args, i)?;
        let id = producer.producer().assign_uniq_key(&mut m).to_owned();
        answers.remember(&id);
        let doc = match producer.send_in_transaction(m).await {
            Ok(r) => {
                let mut doc = SendDoc::outcome(&args.topic, args.mode, i, id, &Ok(r.send_result));
                doc.transaction = Some(r.state.name());
                doc
            }
            Err(TransactionError::Send(e)) => {
                SendDoc::outcome(&args.topic, args.mode, i, id, &Err(e))
            }
            Err(TransactionError::End { receipt, error }) => {
                let mut doc = SendDoc::outcome(&args.topic, args.mode, i, id, &Err(error));
                doc.transaction = Some(receipt.state.name());
                doc
            }
            Err(e) => {
                let mut doc = SendDoc::base(&args.topic, args.mode, Some(i), Some(id));
                doc.error = Some(ErrorObject::from_anyhow(&anyhow::Error::new(e)));
                doc
            }
        };
        report.line(&doc)?;
    }
    if let Some(linger) = args.linger {
        eprintln!("rmq: answering transaction checks for {linger:?}");
        tokio::time::sleep(linger).await;
    }
    let checks = producer.check_stats();
    producer.close(Duration::from_secs(5)).await;
    eprintln!(
        "rmq: {} of {} transactional messages sent to {} ({}) in {:.2} s{}; {} transaction check(s) answered",
        report.ok,
        args.count,
        args.topic,
        state,
        started.elapsed().as_secs_f64(),
        if report.failed > 0 {
            format!("; {} failed", report.failed)
        } else {
            String::new()
        },
        checks.answered
    );
    Ok(if report.failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

struct Report {
    json: bool,
    ok: u64,
    failed: u64,
}

impl Report {
    fn line(&mut self, doc: &SendDoc) -> anyhow::Result<()> {
        if doc.error.is_some() {
            self.failed += 1;
        } else {
            self.ok += 1;
        }
        if self.json {
            output::print_json(doc)
        } else {
            print_line(doc.text());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_bodies_have_the_size_asked() {
        assert_eq!(generated_body(0).len(), 0);
        assert_eq!(generated_body(5000).len(), 5000);
        assert!(generated_body(100).iter().all(u8::is_ascii));
    }

    #[test]
    fn compression_settings() {
        assert!(!compression(CompressArg::None).enabled);
        let z = compression(CompressArg::Zstd);
        assert!(z.enabled);
        assert_eq!(z.kind, CompressionType::Zstd);
        assert_eq!(z.threshold, 4096);
    }
}
