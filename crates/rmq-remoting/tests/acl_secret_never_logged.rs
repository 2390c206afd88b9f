//! Row H3: with ACL credentials configured, the secret key appears in no log line,
//! span or event field at TRACE level, during successful and failing calls, nor in
//! any `Debug` output. Its own test binary: it installs a global capturing
//! subscriber. Positive control: a known TRACE event of the driver was captured.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::acl::{AclCredentials, AclHook};
use rmq_remoting::{MemoryNetwork, Pool, PoolConfig, RpcHook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const SECRET: &str = "s3cr3t-SECRET-value-42";
const TOKEN: &str = "token-TOKEN-value-99";

/// Records every span and event, with all field values, as text.
#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut line = format!("span {}", attrs.metadata().name());
        attrs.record(&mut Fields(&mut line));
        self.lines.lock().unwrap().push(line);
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = "record".to_owned();
        values.record(&mut Fields(&mut line));
        self.lines.lock().unwrap().push(line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields(&mut line));
        self.lines.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn secret_and_token_never_reach_logs_or_debug() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();

    let net = MemoryNetwork::new();
    let mut listener = net.bind("broker:10911").unwrap();
    tokio::spawn(async move {
        while let Some((mut io, _)) = listener.accept().await {
            tokio::spawn(async move {
                let codec = FrameCodec::default();
                let mut buf = BytesMut::new();
                let mut n = 0;
                while io.read_buf(&mut buf).await.unwrap_or(0) > 0 {
                    while let Ok(Some(req)) = codec.decode(&mut buf) {
                        n += 1;
                        // Answer the first request with an error, then close on the third.
                        let code = if n == 1 {
                            ResponseCode::NO_PERMISSION
                        } else {
                            ResponseCode::SUCCESS
                        };
                        if n == 3 {
                            return;
                        }
                        let mut out = BytesMut::new();
                        codec
                            .encode(
                                &RemotingCommand::response_to(&req, code).remark("denied"),
                                &mut out,
                            )
                            .unwrap();
                        io.write_all(&out).await.unwrap();
                    }
                }
            });
        }
    });

    let creds = AclCredentials::new("AK-visible", SECRET).with_security_token(TOKEN);
    let hook = Arc::new(AclHook::new(creds.clone()));
    let pool = Pool::with_hooks(
        Arc::new(net),
        PoolConfig::default(),
        vec![hook.clone() as Arc<dyn RpcHook>],
    );
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(2);
    let req = || {
        let mut r = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2).body(&b"payload"[..]);
        r.ext_fields.insert("b", "TopicTest");
        r
    };
    let first = pool
        .invoke_at("broker:10911", req(), deadline())
        .await
        .unwrap();
    assert_eq!(first.response_code(), ResponseCode::NO_PERMISSION);
    pool.invoke_at("broker:10911", req(), deadline())
        .await
        .unwrap();
    let err = pool
        .invoke_at("broker:10911", req(), deadline())
        .await
        .unwrap_err();
    let err_text = format!("{err} {err:?}");
    pool.close_all();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let lines = capture.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("TRACE") && l.contains("request queued")),
        "positive control: TRACE events are captured ({} lines)",
        lines.len()
    );
    let debug_texts = [
        format!("{creds:?}"),
        format!("{hook:?}"),
        format!("{pool:?}"),
        err_text,
    ];
    for text in lines.iter().chain(debug_texts.iter()) {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(TOKEN), "security token leaked: {text}");
    }
    assert!(format!("{creds:?}").contains("REDACTED"));
}
