//! A minimal client for the fake-server tests, written directly on `FrameCodec`
//! (no rmq-remoting connection logic), so the tests check the servers, not a client.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::header::CommandHeader;
use rmq_protocol::header::send_message_v2::SendMessageRequestHeaderV2;
use rmq_protocol::message::properties::encode_properties;
use rmq_protocol::message::{Message, Properties};
use rmq_protocol::{RemotingCommand, RequestCode, SerializeType};
use rmq_remoting::BoxStream;
use rmq_testkit::fake::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Both transports, for tests that run on each.
pub fn transports() -> Vec<Transport> {
    vec![Transport::memory(), Transport::Tcp]
}

pub struct RawClient {
    stream: BoxStream,
    buf: BytesMut,
    codec: FrameCodec,
    next_opaque: i32,
}

impl RawClient {
    pub async fn connect(transport: &Transport, addr: &str) -> io::Result<Self> {
        let stream = transport.connector().connect(addr).await?;
        Ok(Self {
            stream,
            buf: BytesMut::new(),
            codec: FrameCodec::default(),
            next_opaque: 1,
        })
    }

    /// Writes a command as is.
    pub async fn send(&mut self, cmd: &RemotingCommand) -> io::Result<()> {
        let mut out = BytesMut::new();
        self.codec
            .encode(cmd, &mut out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.send_raw(&out).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// The next frame; `Ok(None)` at end of stream.
    pub async fn read(&mut self) -> io::Result<Option<RemotingCommand>> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(cmd)) => return Ok(Some(cmd)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Every byte until end of stream (or an error), as raw bytes.
    pub async fn read_to_end(&mut self) -> (Vec<u8>, io::Result<()>) {
        let mut out = self.buf.split().to_vec();
        let r = self.stream.read_to_end(&mut out).await.map(|_| ());
        (out, r)
    }

    /// Reads one chunk of raw bytes as they arrive (for fragment tests).
    pub async fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        chunk.truncate(n);
        Ok(chunk)
    }

    /// Sends with a fresh opaque and waits for its response.
    pub async fn call(&mut self, mut cmd: RemotingCommand) -> io::Result<RemotingCommand> {
        cmd.opaque = self.next_opaque;
        self.next_opaque += 1;
        self.send(&cmd).await?;
        loop {
            match self.read().await? {
                Some(r) if r.is_response() && r.opaque == cmd.opaque => return Ok(r),
                Some(_) => {}
                None => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }

    /// `call` bounded by `d`.
    pub async fn call_within(
        &mut self,
        cmd: RemotingCommand,
        d: Duration,
    ) -> io::Result<RemotingCommand> {
        match tokio::time::timeout(d, self.call(cmd)).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

/// A V2 send header for `topic` / `queue_id` with `properties`.
pub fn v2_header(
    topic: &str,
    queue_id: i32,
    properties: &Properties,
) -> SendMessageRequestHeaderV2 {
    let mut props = String::new();
    encode_properties(properties, &mut props).unwrap();
    SendMessageRequestHeaderV2 {
        producer_group: "PG".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(props.into()),
        reconsume_times: Some(0),
        unit_mode: false,
        max_reconsume_times: None,
        batch: false,
        broker_name: Some("broker-a".into()),
    }
}

/// A SEND_MESSAGE_V2 with a UNIQ_KEY and `body`, in the given header format.
pub fn send_v2(
    topic: &str,
    queue_id: i32,
    uniq: &str,
    body: &'static [u8],
    st: SerializeType,
) -> RemotingCommand {
    let props: Properties = [("WAIT", "true"), ("UNIQ_KEY", uniq)].into_iter().collect();
    RemotingCommand::with_header(
        RequestCode::SEND_MESSAGE_V2,
        &v2_header(topic, queue_id, &props),
    )
    .body(body)
    .serialize_type(st)
}

/// A message with a UNIQ_KEY, for batches.
pub fn batch_message(body: &'static [u8], uniq: &str) -> Message {
    let props: Properties = [("WAIT", "true"), ("UNIQ_KEY", uniq)].into_iter().collect();
    Message::from_parts("", body, 0, props)
}

/// Writes `h` into a command's fields (for headers built by hand).
pub fn with_header<H: CommandHeader>(code: RequestCode, h: &H) -> RemotingCommand {
    RemotingCommand::with_header(code, h)
}
