//! A callback send that waits in the connection (no task of its own) still logs
//! inside the kernel's `rmq.send` / `rmq.attempt` spans, as an awaited send does:
//! the rejection of attempt 1, settled on the connection's driver task, is reported
//! inside spans naming the message and attempt 1, and the retry that follows on a
//! task has its own `rmq.attempt` span for attempt 2 under an `rmq.send` of the same
//! message. Its own test binary: it installs a global subscriber that keeps, per
//! thread, the stack of entered spans.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{Fields, TOPIC, broker, builder, cluster_of};
use rmq_producer::Message;
use rmq_protocol::{RequestCode, ResponseCode};
use tokio::sync::mpsc;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Default)]
struct State {
    /// Each span's name and fields, by id.
    spans: HashMap<u64, String>,
    /// Every span created, in order.
    created: Vec<String>,
    /// Every event, with the spans it was inside (outermost first).
    events: Vec<(String, Vec<String>)>,
}

#[derive(Clone, Default)]
struct Capture {
    state: Arc<Mutex<State>>,
    next: Arc<AtomicU64>,
}

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut line = attrs.metadata().name().to_owned();
        attrs.record(&mut Fields(&mut line));
        let mut st = self.state.lock().unwrap();
        st.spans.insert(id, line.clone());
        st.created.push(line);
        Id::from_u64(id)
    }
    fn record(&self, id: &Id, values: &Record<'_>) {
        let mut st = self.state.lock().unwrap();
        if let Some(line) = st.spans.get_mut(&id.into_u64()) {
            values.record(&mut Fields(line));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = String::new();
        event.record(&mut Fields(&mut line));
        let stack = ENTERED.with(|e| e.borrow().clone());
        let mut st = self.state.lock().unwrap();
        let inside = stack
            .iter()
            .filter_map(|id| st.spans.get(id).cloned())
            .collect();
        st.events.push((line, inside));
    }
    fn enter(&self, id: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, id: &Id) {
        ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            if let Some(pos) = e.iter().rposition(|&x| x == id.into_u64()) {
                e.remove(pos);
            }
        });
    }
}

#[tokio::test(start_paused = true)]
async fn a_detached_callback_send_logs_inside_its_send_and_attempt_spans() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let cluster = cluster_of(&["broker-a"]).await;
    let p = builder(&cluster).build().await.expect("producer");
    // Warm: the route is cached and the connection up, so the callback send is
    // detached at once (tests/callback_sends.rs checks that it holds no task).
    p.send(Message::new(TOPIC, "warm")).await.expect("warm-up");
    broker(&cluster, "broker-a")
        .script(RequestCode::SEND_MESSAGE_V2)
        .reply(ResponseCode::SYSTEM_ERROR)
        .times(1)
        .install();
    let (tx, mut rx) = mpsc::unbounded_channel();
    p.send_with_callback(Message::new(TOPIC, "traced"), move |r| {
        let _ = tx.send(r);
    });
    let result = rx
        .recv()
        .await
        .expect("called")
        .expect("stored on the retry");
    let id = &result.msg_id;
    let st = capture.state.lock().unwrap();

    let send_span = format!("uniq_key={id}");
    let failed: Vec<_> = st
        .events
        .iter()
        .filter(|(line, _)| line.contains("attempt rejected by the broker"))
        .collect();
    assert_eq!(failed.len(), 1, "one rejected attempt: {failed:?}");
    let inside = &failed[0].1;
    assert!(
        inside
            .iter()
            .any(|s| s.starts_with("rmq.send") && s.contains(&send_span)),
        "attempt 1's rejection is reported inside the send's span: {inside:?}"
    );
    assert!(
        inside.iter().any(|s| s.starts_with("rmq.attempt")
            && s.contains("attempt=1")
            && s.contains("broker=broker-a")
            && s.contains("opaque=")),
        "and inside attempt 1's span, with the answer's opaque: {inside:?}"
    );
    // The retry runs the kernel's loop on a task, under the same message's span.
    let sends = st
        .created
        .iter()
        .filter(|s| s.starts_with("rmq.send") && s.contains(&send_span))
        .count();
    assert!(sends >= 2, "rmq.send spans of this message: {sends}");
    assert!(
        st.created
            .iter()
            .any(|s| s.starts_with("rmq.attempt") && s.contains("attempt=2")),
        "attempt 2 has its span: {:?}",
        st.created
    );
}
