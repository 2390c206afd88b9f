//! H3 (producer): with ACL credentials configured, the secret key and the security
//! token appear in no TRACE log line or span field during successful and failing
//! sends, nor in the `Debug` output of the configuration, the producer or errors.
//! Its own test binary: it installs a global capturing subscriber. Positive control:
//! the producer's own TRACE/DEBUG events (attempt spans) were captured.

mod common;

use std::sync::{Arc, Mutex};

use common::{Fields, TOPIC, builder, cluster};
use rmq_producer::Message;
use rmq_protocol::{RequestCode, ResponseCode};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const SECRET: &str = "producer-SECRET-key-7";
const TOKEN: &str = "producer-TOKEN-value-8";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut line = format!("span {}", attrs.metadata().name());
        attrs.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = "record".to_owned();
        values.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test(start_paused = true)]
async fn h3_secrets_never_reach_logs_or_debug() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let cluster = cluster().await;
    for b in cluster.brokers() {
        b.require_acl("AK-visible", SECRET);
        b.script(RequestCode::SEND_MESSAGE_V2)
            .reply(ResponseCode::SYSTEM_BUSY)
            .times(1);
    }
    let p = builder(&cluster)
        .configure(|c| {
            c.access_key = Some("AK-visible".into());
            c.secret_key = Some(rmq_producer::config::Secret::new(SECRET));
            c.security_token = Some(rmq_producer::config::Secret::new(TOKEN));
        })
        .build()
        .await
        .unwrap();
    let ok = p
        .send(Message::new(TOPIC, "signed"))
        .await
        .expect("accepted by the verifying broker");
    let bad = builder(&cluster)
        .configure(|c| {
            c.access_key = Some("AK-visible".into());
            c.secret_key = Some(rmq_producer::config::Secret::new(format!("{SECRET}-wrong")));
        })
        .build()
        .await
        .unwrap();
    let err = bad.send(Message::new(TOPIC, "rejected")).await.unwrap_err();
    let texts = [
        format!("{:?}", p.config()),
        format!("{p:?}"),
        format!("{err} {err:?}"),
        format!("{ok:?}"),
    ];
    let lines = capture.0.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("rmq.attempt")),
        "positive control: attempt spans captured ({} lines)",
        lines.len()
    );
    assert!(
        lines.iter().any(|l| l.starts_with("TRACE ")),
        "positive control: TRACE-level events are captured"
    );
    for text in lines.iter().chain(texts.iter()) {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(TOKEN), "security token leaked: {text}");
    }
}
