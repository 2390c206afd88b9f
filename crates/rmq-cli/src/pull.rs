//! `rmq pull`: reads every queue of a topic back from its brokers (PULL_MESSAGE from
//! offset 0, at most 32 messages per request, following `nextBeginOffset` until the
//! broker answers PULL_NOT_FOUND), decompresses each body by its sysFlag, and prints
//! the stored messages, or checks an acked log (one UNIQ_KEY per line) against them.
//!
//! The reading is a library function so the demo and the tests use the same code:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use rmq_producer::HeaderFormat;
//!
//! let pulled = rmq_cli::pull::pull_topic("127.0.0.1:9876", "TopicTest", HeaderFormat::Binary, Duration::from_secs(3)).await?;
//! for m in &pulled.messages {
//!     println!("{:?} {}:{} @{}", m.uniq_key, m.broker, m.queue_id, m.queue_offset);
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use rmq_producer::compress::decompress;
use rmq_producer::{CompressionType, HeaderFormat};
use rmq_protocol::header::pull_message::{PullMessageRequestHeader, PullMessageResponseHeader};
use rmq_protocol::message::stored::{MessageExt, decode_stored_all};
use rmq_protocol::message::sys_flag::SysFlag;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::admin::{Admin, server_error};
use crate::args::{Common, PullArgs};
use crate::output::{self, CliError, EXIT_FAILED, ErrorObject, Kind, SCHEMA_PULL, print_line};

/// The consumer group the pulls use (the broker creates its subscription group).
pub const PULL_GROUP: &str = "rmq_cli_pull";
/// Messages asked for per PULL_MESSAGE request.
pub const MAX_PER_REQUEST: i32 = 32;
/// Bodies are decompressed up to this size (the largest `max_message_size`).
pub const MAX_BODY: usize = 128 * 1024 * 1024;
/// How long `--acked-log` keeps pulling while listed keys are still missing (the
/// broker makes a stored message visible to pulls asynchronously, within
/// milliseconds).
pub const SETTLE: Duration = Duration::from_secs(3);

/// How a topic is read.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The consumer group ([`PULL_GROUP`]).
    pub group: String,
    /// Messages per request ([`MAX_PER_REQUEST`]).
    pub max_per_request: i32,
    /// Keep (and decompress) the bodies; `false` keeps only keys, metadata and sizes.
    pub keep_bodies: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            group: PULL_GROUP.to_owned(),
            max_per_request: MAX_PER_REQUEST,
            keep_bodies: true,
        }
    }
}

/// One stored message as pulled back.
#[derive(Debug, Clone)]
pub struct PulledMessage {
    /// The UNIQ_KEY property (the producer's message id), if present.
    pub uniq_key: Option<String>,
    /// The offset message id (store host + commit-log offset).
    pub offset_msg_id: String,
    /// The broker it was pulled from.
    pub broker: String,
    /// Queue id.
    pub queue_id: i32,
    /// Offset in the queue.
    pub queue_offset: i64,
    /// Offset in the commit log.
    pub commit_log_offset: i64,
    /// The sysFlag as stored.
    pub sys_flag: SysFlag,
    /// The user flag.
    pub flag: i32,
    /// When the producer made it, epoch ms.
    pub born_timestamp: i64,
    /// When the broker stored it, epoch ms.
    pub store_timestamp: i64,
    /// Every property, in stored order.
    pub properties: Vec<(String, String)>,
    /// The body size as stored (compressed or not).
    pub stored_body_size: usize,
    /// The body decompressed by its sysFlag; `None` when bodies were not kept.
    pub body: Option<Result<Bytes, String>>,
}

impl PulledMessage {
    fn new(broker: &str, m: MessageExt, keep_body: bool) -> Self {
        let body = keep_body
            .then(|| decompress(m.sys_flag, m.message.body(), MAX_BODY).map_err(|e| e.to_string()));
        Self {
            uniq_key: m.msg_id().map(str::to_owned),
            offset_msg_id: m.offset_msg_id(),
            broker: broker.to_owned(),
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            commit_log_offset: m.commit_log_offset,
            sys_flag: m.sys_flag,
            flag: m.message.flag(),
            born_timestamp: m.born_timestamp,
            store_timestamp: m.store_timestamp,
            properties: m
                .message
                .properties()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            stored_body_size: m.message.body().len(),
            body,
        }
    }

    /// One property.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The tag (`TAGS`).
    pub fn tags(&self) -> Option<&str> {
        self.property("TAGS")
    }

    /// The compression named by the sysFlag: `Ok(None)` when not compressed.
    pub fn compression(&self) -> Result<Option<CompressionType>, String> {
        self.sys_flag.compression_type().map_err(|e| e.to_string())
    }

    /// The decompressed body, when it was kept and could be decompressed.
    pub fn body_bytes(&self) -> Option<&Bytes> {
        self.body.as_ref().and_then(|b| b.as_ref().ok())
    }
}

/// One queue as read.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    /// Broker name.
    pub broker: String,
    /// The broker's master address.
    #[serde(skip)]
    pub addr: String,
    /// Queue id.
    pub queue_id: i32,
    /// The broker's smallest offset of the queue, as of the last answer.
    pub min_offset: Option<i64>,
    /// The broker's next offset to be written (the queue's size), as of the last answer.
    pub max_offset: Option<i64>,
    /// The offset the next pull starts at.
    pub next_offset: i64,
    /// Messages pulled from this queue.
    pub messages: u64,
}

/// A topic as read back.
#[derive(Debug, Clone)]
pub struct PulledTopic {
    /// The topic.
    pub topic: String,
    /// Every readable queue of the route, by broker then queue id.
    pub queues: Vec<QueueSummary>,
    /// The messages, by queue then offset.
    pub messages: Vec<PulledMessage>,
}

impl PulledTopic {
    /// The messages by UNIQ_KEY (a key stored twice, e.g. after a retry, has two).
    pub fn by_uniq_key(&self) -> HashMap<&str, Vec<&PulledMessage>> {
        let mut map: HashMap<&str, Vec<&PulledMessage>> = HashMap::new();
        for m in &self.messages {
            if let Some(k) = m.uniq_key.as_deref() {
                map.entry(k).or_default().push(m);
            }
        }
        map
    }

    /// The keys of `keys` that no pulled message carries, in the order given.
    pub fn missing<'k>(&self, keys: &'k [String]) -> Vec<&'k str> {
        let have: HashSet<&str> = self
            .messages
            .iter()
            .filter_map(|m| m.uniq_key.as_deref())
            .collect();
        keys.iter()
            .map(String::as_str)
            .filter(|k| !have.contains(k))
            .collect()
    }

    fn sort(&mut self) {
        self.messages.sort_by(|a, b| {
            (a.broker.as_str(), a.queue_id, a.queue_offset).cmp(&(
                b.broker.as_str(),
                b.queue_id,
                b.queue_offset,
            ))
        });
    }
}

/// Reads topics through an [`Admin`] client.
#[derive(Debug, Clone)]
pub struct Puller {
    admin: Admin,
    options: PullOptions,
}

impl Puller {
    /// A puller with the given options.
    pub fn new(admin: Admin, options: PullOptions) -> Self {
        Self { admin, options }
    }

    /// The admin client.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Reads every readable queue of `topic` (from the name server's route) from
    /// offset 0 to its end.
    pub async fn pull(&self, topic: &str) -> Result<PulledTopic, CliError> {
        let route = self.admin.route(topic).await?;
        let mut masters: BTreeMap<&str, &str> = BTreeMap::new();
        for b in &route.broker_datas {
            if let Some(addr) = b.master_addr() {
                masters.entry(b.broker_name.as_str()).or_insert(addr);
            }
        }
        let mut queues = Vec::new();
        let mut seen = HashSet::new();
        let mut queue_datas = route.queue_datas.clone();
        queue_datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        for q in &queue_datas {
            if !seen.insert(q.broker_name.clone()) {
                continue;
            }
            let Some(addr) = masters.get(q.broker_name.as_str()) else {
                eprintln!(
                    "rmq: warning: broker {} of {topic} has no master; its queues are not read",
                    q.broker_name
                );
                continue;
            };
            let n = i32::try_from(q.read_queue_nums.max(q.write_queue_nums)).unwrap_or(i32::MAX);
            for queue_id in 0..n {
                queues.push(QueueSummary {
                    broker: q.broker_name.clone(),
                    addr: (*addr).to_owned(),
                    queue_id,
                    min_offset: None,
                    max_offset: None,
                    next_offset: 0,
                    messages: 0,
                });
            }
        }
        let mut pulled = PulledTopic {
            topic: topic.to_owned(),
            queues,
            messages: Vec::new(),
        };
        self.pull_more(&mut pulled).await?;
        Ok(pulled)
    }

    /// Continues every queue of `pulled` from where the last read stopped; returns
    /// how many messages were added.
    pub async fn pull_more(&self, pulled: &mut PulledTopic) -> Result<usize, CliError> {
        let mut tasks = JoinSet::new();
        for (i, q) in pulled.queues.iter().enumerate() {
            let this = self.clone();
            let topic = pulled.topic.clone();
            let q = q.clone();
            tasks.spawn(async move { (i, this.pull_queue(&topic, q).await) });
        }
        let mut added = 0;
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined
                .map_err(|e| CliError::new(Kind::Internal, format!("a pull task failed: {e}")))?;
            match result {
                Ok((summary, messages)) => {
                    added += messages.len();
                    pulled.messages.extend(messages);
                    if let Some(slot) = pulled.queues.get_mut(i) {
                        *slot = summary;
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        pulled.sort();
        Ok(added)
    }

    /// Reads one queue from `q.next_offset` until the broker has nothing more.
    async fn pull_queue(
        &self,
        topic: &str,
        mut q: QueueSummary,
    ) -> Result<(QueueSummary, Vec<PulledMessage>), CliError> {
        let mut out = Vec::new();
        let mut retries = 0;
        loop {
            let mut header = PullMessageRequestHeader::one_shot(
                self.options.group.as_str(),
                topic,
                q.queue_id,
                q.next_offset,
                self.options.max_per_request,
            );
            header.bname = Some(q.broker.clone());
            let cmd = RemotingCommand::with_header(RequestCode::PULL_MESSAGE, &header);
            let resp = self.admin.invoke_broker(&q.broker, &q.addr, cmd).await?;
            let code = resp.response_code();
            let h = resp.decode_header::<PullMessageResponseHeader>().ok();
            if let Some(h) = &h {
                q.min_offset = Some(h.min_offset);
                q.max_offset = Some(h.max_offset);
            }
            let next = h.as_ref().map(|h| h.next_begin_offset);
            match code {
                ResponseCode::SUCCESS => {
                    let mut last = None;
                    for m in decode_stored_all(resp.body_bytes()) {
                        let m = m.map_err(|e| {
                            CliError::new(
                                Kind::MalformedResponse,
                                format!(
                                    "a stored message of {}:{} at offset {} could not be decoded: {e}",
                                    q.broker, q.queue_id, q.next_offset
                                ),
                            )
                        })?;
                        last = Some(m.queue_offset);
                        out.push(PulledMessage::new(&q.broker, m, self.options.keep_bodies));
                        q.messages += 1;
                    }
                    let after_last = last.map(|o| o.saturating_add(1));
                    let advance = next
                        .into_iter()
                        .chain(after_last)
                        .filter(|&n| n > q.next_offset)
                        .max();
                    match advance {
                        Some(n) => q.next_offset = n,
                        // an answer that moves nowhere: stop rather than loop
                        None => break,
                    }
                }
                ResponseCode::PULL_NOT_FOUND | ResponseCode::PULL_OFFSET_MOVED => {
                    // nothing at this offset; the broker may point further (the offset was
                    // below the queue's minimum)
                    let max = q.max_offset.unwrap_or(0);
                    match next {
                        Some(n) if n > q.next_offset && n < max => q.next_offset = n,
                        _ => break,
                    }
                }
                ResponseCode::PULL_RETRY_IMMEDIATELY if retries < 3 => {
                    retries += 1;
                }
                _ => {
                    return Err(server_error(
                        &format!(
                            "pulling {}:{} at offset {}",
                            q.broker, q.queue_id, q.next_offset
                        ),
                        &resp,
                        code,
                    ));
                }
            }
        }
        Ok((q, out))
    }
}

/// Reads every queue of `topic` from the brokers of its route (name servers
/// `;`-separated), bodies decompressed. See [`Puller`] for more control.
pub async fn pull_topic(
    namesrv: &str,
    topic: &str,
    header: HeaderFormat,
    timeout: Duration,
) -> anyhow::Result<PulledTopic> {
    let addrs = rmq_producer::config::parse_addr_list(namesrv);
    if addrs.is_empty() {
        return Err(CliError::new(Kind::Usage, "no name server given").into());
    }
    let puller = Puller::new(Admin::new(addrs, header, timeout), PullOptions::default());
    let pulled = puller
        .pull(topic)
        .await
        .with_context(|| format!("pulling {topic}"))?;
    puller.admin().close();
    Ok(pulled)
}

/// Reads an acked log: one UNIQ_KEY per line (the first word of the line); blank
/// lines and lines starting with `#` are skipped. Duplicates are kept once.
pub fn read_acked_log(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the acked log {}", path.display()))?;
    let mut seen = HashSet::new();
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| !k.starts_with('#'))
        .filter(|k| seen.insert(*k))
        .map(str::to_owned)
        .collect())
}

/// The `rmq.pull/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct PullDoc {
    /// `"rmq.pull/1"`.
    pub schema: &'static str,
    /// The topic.
    pub topic: String,
    /// Every queue read.
    pub queues: Option<Vec<QueueSummary>>,
    /// How many messages were pulled.
    pub count: Option<u64>,
    /// The messages; `null` with `--acked-log` (only the check is reported).
    pub messages: Option<Vec<MessageDoc>>,
    /// The acked-log check; `null` without `--acked-log`.
    pub acked_log: Option<AckedLogDoc>,
    /// The error, when the topic could not be read.
    pub error: Option<ErrorObject>,
}

/// One message in [`PullDoc`].
#[derive(Debug, Clone, Serialize)]
pub struct MessageDoc {
    /// The UNIQ_KEY, if the message has one.
    pub msg_id: Option<String>,
    /// The offset message id.
    pub offset_msg_id: String,
    /// Broker name.
    pub broker: String,
    /// Queue id.
    pub queue_id: i32,
    /// Queue offset.
    pub queue_offset: i64,
    /// Commit-log offset.
    pub commit_log_offset: i64,
    /// The sysFlag.
    pub sys_flag: i32,
    /// `zlib`, `zstd` or `lz4` when the body is stored compressed, else `null`.
    pub compression: Option<String>,
    /// The user flag.
    pub flag: i32,
    /// Born timestamp, epoch ms.
    pub born_timestamp: i64,
    /// Store timestamp, epoch ms.
    pub store_timestamp: i64,
    /// The tag, if any.
    pub tags: Option<String>,
    /// The keys property, if any.
    pub keys: Option<String>,
    /// Every property.
    pub properties: BTreeMap<String, String>,
    /// The body size as stored.
    pub stored_body_size: usize,
    /// The body size after decompression; `null` when it could not be decompressed.
    pub body_size: Option<usize>,
    /// The decompressed body as text; `null` when it is not UTF-8 or could not be
    /// decompressed.
    pub body: Option<String>,
    /// Why the body could not be decompressed, if so.
    pub body_error: Option<String>,
}

impl MessageDoc {
    /// The document of a pulled message.
    pub fn new(m: &PulledMessage) -> Self {
        let (body_size, body, body_error) = match &m.body {
            Some(Ok(b)) => (
                Some(b.len()),
                std::str::from_utf8(b).ok().map(str::to_owned),
                None,
            ),
            Some(Err(e)) => (None, None, Some(e.clone())),
            None => (None, None, None),
        };
        Self {
            msg_id: m.uniq_key.clone(),
            offset_msg_id: m.offset_msg_id.clone(),
            broker: m.broker.clone(),
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            commit_log_offset: m.commit_log_offset,
            sys_flag: m.sys_flag.0,
            compression: match m.compression() {
                Ok(Some(kind)) => Some(compression_name(kind).to_owned()),
                Ok(None) => None,
                Err(_) => Some("unknown".to_owned()),
            },
            flag: m.flag,
            born_timestamp: m.born_timestamp,
            store_timestamp: m.store_timestamp,
            tags: m.tags().map(str::to_owned),
            keys: m.property("KEYS").map(str::to_owned),
            properties: m.properties.iter().cloned().collect(),
            stored_body_size: m.stored_body_size,
            body_size,
            body,
            body_error,
        }
    }
}

/// The acked-log check in [`PullDoc`].
#[derive(Debug, Clone, Serialize)]
pub struct AckedLogDoc {
    /// The file.
    pub path: String,
    /// Distinct keys it lists.
    pub listed: u64,
    /// Listed keys found in the topic.
    pub found: u64,
    /// Listed keys not found.
    pub missing: Vec<String>,
    /// Listed keys stored more than once.
    pub duplicated: Vec<String>,
    /// Messages of the topic whose key the log does not list.
    pub unlisted: u64,
}

/// `zlib`, `zstd` or `lz4`.
pub fn compression_name(kind: CompressionType) -> &'static str {
    match kind {
        CompressionType::Zlib => "zlib",
        CompressionType::Zstd => "zstd",
        CompressionType::Lz4 => "lz4",
    }
}

fn message_line(m: &PulledMessage) -> String {
    let compression = match m.compression() {
        Ok(Some(kind)) => format!(
            " ({}, stored {} B)",
            compression_name(kind),
            m.stored_body_size
        ),
        Ok(None) => String::new(),
        Err(_) => format!(" (unknown codec, stored {} B)", m.stored_body_size),
    };
    let mut props: Vec<String> = m
        .properties
        .iter()
        .filter(|(k, _)| k != "UNIQ_KEY")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    props.sort();
    let body = match &m.body {
        Some(Ok(b)) => {
            let text = String::from_utf8_lossy(b);
            let preview: String = text.chars().take(60).collect();
            let more = if preview.len() < text.len() {
                "…"
            } else {
                ""
            };
            format!("body {} B {preview:?}{more}", b.len())
        }
        Some(Err(e)) => format!("body not decompressed: {e}"),
        None => format!("body {} B", m.stored_body_size),
    };
    format!(
        "{}:{} @{}  {}  sysFlag 0x{:x}{compression}  {body}  {}",
        m.broker,
        m.queue_id,
        m.queue_offset,
        m.uniq_key.as_deref().unwrap_or("-"),
        m.sys_flag.0,
        props.join(" "),
    )
}

/// Runs `rmq pull`.
pub async fn run(common: &Common, args: PullArgs) -> anyhow::Result<ExitCode> {
    let mut doc = PullDoc {
        schema: SCHEMA_PULL,
        topic: args.topic.clone(),
        queues: None,
        count: None,
        messages: None,
        acked_log: None,
        error: None,
    };
    let result = async {
        let keys = match &args.acked_log {
            Some(p) => Some(read_acked_log(p)?),
            None => None,
        };
        let admin = Admin::new(
            common.namesrv_addrs()?,
            common.header_format(),
            common.timeout,
        );
        let options = PullOptions {
            keep_bodies: keys.is_none(),
            ..PullOptions::default()
        };
        let puller = Puller::new(admin, options);
        let mut pulled = puller
            .pull(&args.topic)
            .await
            .with_context(|| format!("pulling {}", args.topic))?;
        if let Some(keys) = &keys {
            // give the brokers' consume queues a moment to catch up with recent sends
            let deadline = Instant::now() + SETTLE;
            while !pulled.missing(keys).is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(250)).await;
                puller
                    .pull_more(&mut pulled)
                    .await
                    .with_context(|| format!("pulling {}", args.topic))?;
            }
        }
        puller.admin().close();
        anyhow::Ok((pulled, keys))
    }
    .await;
    let (pulled, keys) = match result {
        Ok(r) => r,
        Err(e) => {
            doc.error = Some(ErrorObject::from_anyhow(&e));
            return output::fail(args.json, &doc, &e);
        }
    };
    doc.queues = Some(pulled.queues.clone());
    doc.count = Some(pulled.messages.len() as u64);
    let mut exit = ExitCode::SUCCESS;
    match (&keys, &args.acked_log) {
        (Some(keys), Some(path)) => {
            let missing: Vec<String> = pulled
                .missing(keys)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let by_key = pulled.by_uniq_key();
            let duplicated: Vec<String> = keys
                .iter()
                .filter(|k| by_key.get(k.as_str()).is_some_and(|v| v.len() > 1))
                .cloned()
                .collect();
            let listed: HashSet<&str> = keys.iter().map(String::as_str).collect();
            let unlisted = pulled
                .messages
                .iter()
                .filter(|m| !m.uniq_key.as_deref().is_some_and(|k| listed.contains(k)))
                .count() as u64;
            if !missing.is_empty() {
                exit = ExitCode::from(EXIT_FAILED);
            }
            let check = AckedLogDoc {
                path: path.display().to_string(),
                listed: keys.len() as u64,
                found: (keys.len() - missing.len()) as u64,
                missing,
                duplicated,
                unlisted,
            };
            if !args.json {
                print_line(format!(
                    "topic {}: {} messages in {} queues; acked log {} lists {} keys: {} found, {} missing, {} stored more than once; {} messages not in the log",
                    pulled.topic,
                    pulled.messages.len(),
                    pulled.queues.len(),
                    check.path,
                    check.listed,
                    check.found,
                    check.missing.len(),
                    check.duplicated.len(),
                    check.unlisted
                ));
                for k in &check.missing {
                    print_line(format!("missing {k}"));
                }
            }
            doc.acked_log = Some(check);
        }
        _ => {
            if args.json {
                doc.messages = Some(pulled.messages.iter().map(MessageDoc::new).collect());
            } else {
                print_line(format!(
                    "topic {}: {} messages in {} queues",
                    pulled.topic,
                    pulled.messages.len(),
                    pulled.queues.len()
                ));
                for m in &pulled.messages {
                    print_line(message_line(m));
                }
            }
        }
    }
    if args.json {
        output::print_json(&doc)?;
    }
    Ok(exit)
}
