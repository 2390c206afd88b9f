//! Scripted behaviour per request code: canned replies, delays, dropped connections,
//! black holes, garbage, fragmented or slow replies, resets.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rmq_protocol::{RequestCode, ResponseCode};

use super::wire::Shaping;

/// What a rule does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Handle it normally (possibly delayed or shaped).
    Handle,
    /// Answer with this code and remark; the handler does not run (nothing is stored).
    Reply(ResponseCode, Option<String>),
    /// Handle it normally, then replace the response code (the header is kept).
    HandleWithCode(ResponseCode),
    /// Reset the connection as soon as the request is read.
    DropConnection,
    /// Close the connection (orderly) without answering.
    CloseAfterRead,
    /// Read it and never answer.
    BlackHole,
    /// Write these bytes instead of a reply.
    Garbage(Bytes),
}

/// One installed rule.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    /// `None`: every request code.
    pub(crate) code: Option<RequestCode>,
    /// How many more requests it applies to; `None`: forever.
    pub(crate) remaining: Option<u32>,
    /// Wait this long before handling.
    pub(crate) delay: Duration,
    /// Wait this long between handling and writing the reply.
    pub(crate) reply_delay: Duration,
    pub(crate) action: Action,
    pub(crate) shaping: Shaping,
}

/// The rules of one server, matched in installation order.
#[derive(Debug, Default)]
pub(crate) struct ScriptTable {
    rules: Mutex<Vec<Rule>>,
}

impl ScriptTable {
    fn lock(&self) -> MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first rule for `code` that still applies, counting this use.
    pub(crate) fn take(&self, code: RequestCode) -> Option<Rule> {
        let mut rules = self.lock();
        let idx = rules
            .iter()
            .position(|r| r.code.is_none_or(|c| c == code) && r.remaining != Some(0))?;
        let rule = rules[idx].clone();
        if let Some(n) = &mut rules[idx].remaining {
            *n -= 1;
            if *n == 0 {
                rules.remove(idx);
            }
        }
        Some(rule)
    }

    pub(crate) fn install(&self, rule: Rule) {
        if rule.remaining != Some(0) {
            self.lock().push(rule);
        }
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Builds one script rule; returned by [`FakeServer::script`](super::FakeServer::script)
/// and [`FakeServer::script_all`](super::FakeServer::script_all).
///
/// **The rule is installed when the builder is dropped** (at the end of the
/// statement) or by [`install`](Self::install). Rules apply in installation order:
/// each request uses the first rule for its code that has uses left. Without
/// [`times`](Self::times) a rule applies forever. A rule with no action handles
/// requests normally, with its delays and write shaping.
///
/// ```no_run
/// # async fn demo(broker: &rmq_testkit::fake::FakeBroker) {
/// use std::time::Duration;
/// use rmq_protocol::{RequestCode, ResponseCode};
///
/// // Busy twice, then normal.
/// broker.script(RequestCode::SEND_MESSAGE_V2).reply(ResponseCode::SYSTEM_BUSY).times(2);
/// // Every route query answered after 500 ms, in 1-byte writes.
/// broker.script(RequestCode::GET_ROUTEINFO_BY_TOPIC).delay(Duration::from_millis(500)).fragment(1);
/// // The next heartbeat is read and never answered.
/// broker.script(RequestCode::HEART_BEAT).black_hole().times(1);
/// # }
/// ```
#[derive(Debug)]
pub struct ScriptBuilder {
    table: Arc<ScriptTable>,
    rule: Option<Rule>,
}

impl ScriptBuilder {
    pub(crate) fn new(table: Arc<ScriptTable>, code: Option<RequestCode>) -> Self {
        Self {
            table,
            rule: Some(Rule {
                code,
                remaining: None,
                delay: Duration::ZERO,
                reply_delay: Duration::ZERO,
                action: Action::Handle,
                shaping: Shaping::default(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Rule)) -> Self {
        if let Some(rule) = &mut self.rule {
            f(rule);
        }
        self
    }

    /// Applies to the next `n` matching requests only (`0`: the rule is not installed).
    pub fn times(self, n: u32) -> Self {
        self.edit(|r| r.remaining = Some(n))
    }

    /// Applies to every matching request (the default).
    pub fn forever(self) -> Self {
        self.edit(|r| r.remaining = None)
    }

    /// Answers with `code` (no remark) without handling: nothing is stored.
    pub fn reply(self, code: ResponseCode) -> Self {
        self.edit(|r| r.action = Action::Reply(code, None))
    }

    /// Answers with `code` and `remark` without handling.
    pub fn reply_with(self, code: ResponseCode, remark: impl Into<String>) -> Self {
        let remark = remark.into();
        self.edit(|r| r.action = Action::Reply(code, Some(remark)))
    }

    /// Answers GO_AWAY (1500), as a 5.3.1+ server does while shutting down; the
    /// connection stays open.
    pub fn go_away(self) -> Self {
        self.reply_with(ResponseCode::GO_AWAY, "server is shutting down")
    }

    /// Handles normally (a send is stored) but answers `code`, keeping the handler's
    /// header: e.g. FLUSH_DISK_TIMEOUT with a full send-result header.
    pub fn handle_with_code(self, code: ResponseCode) -> Self {
        self.edit(|r| r.action = Action::HandleWithCode(code))
    }

    /// Waits `d` after reading the request, then handles it (a send is stored only
    /// after the delay; later requests on the connection are not held up).
    pub fn delay(self, d: Duration) -> Self {
        self.edit(|r| r.delay = d)
    }

    /// Handles at once (a send is stored) and writes the reply `d` later.
    pub fn delay_reply(self, d: Duration) -> Self {
        self.edit(|r| r.reply_delay = d)
    }

    /// Resets the connection (TCP RST) as soon as the request is read; no handling.
    pub fn drop_connection(self) -> Self {
        self.edit(|r| r.action = Action::DropConnection)
    }

    /// Closes the connection in order (FIN) after reading the request; no answer,
    /// no handling.
    pub fn close_after_read(self) -> Self {
        self.edit(|r| r.action = Action::CloseAfterRead)
    }

    /// Reads the request and never answers; no handling.
    pub fn black_hole(self) -> Self {
        self.edit(|r| r.action = Action::BlackHole)
    }

    /// Writes `bytes` instead of a reply (e.g. `b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"`);
    /// no handling.
    pub fn garbage(self, bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        self.edit(|r| r.action = Action::Garbage(bytes))
    }

    /// Writes the reply in pieces of `k` bytes (at least 1).
    pub fn fragment(self, k: usize) -> Self {
        self.fragment_with_pause(k, Duration::ZERO)
    }

    /// Writes the reply in pieces of `k` bytes with `pause` between them.
    pub fn fragment_with_pause(self, k: usize, pause: Duration) -> Self {
        self.edit(|r| r.shaping.fragment = Some((k.max(1), pause)))
    }

    /// Writes the reply at about `bytes_per_sec`.
    pub fn bandwidth(self, bytes_per_sec: u64) -> Self {
        self.edit(|r| r.shaping.bandwidth = Some(bytes_per_sec.max(1)))
    }

    /// Resets the connection once `n` more bytes have been written, counting from
    /// this reply (`0`: reset instead of writing it; the request is still handled).
    pub fn reset_after(self, n: usize) -> Self {
        self.edit(|r| r.shaping.reset_after = Some(n))
    }

    /// Installs the rule now.
    pub fn install(mut self) {
        if let Some(rule) = self.rule.take() {
            self.table.install(rule);
        }
    }
}

impl Drop for ScriptBuilder {
    fn drop(&mut self) {
        if let Some(rule) = self.rule.take() {
            self.table.install(rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_in_order_and_expire() {
        let table = Arc::new(ScriptTable::default());
        ScriptBuilder::new(table.clone(), Some(RequestCode::SEND_MESSAGE_V2))
            .reply(ResponseCode::SYSTEM_BUSY)
            .times(2);
        ScriptBuilder::new(table.clone(), None)
            .black_hole()
            .times(1);
        ScriptBuilder::new(table.clone(), Some(RequestCode::HEART_BEAT)).times(0);
        assert_eq!(table.len(), 2);

        let a = table.take(RequestCode::SEND_MESSAGE_V2).unwrap();
        assert_eq!(a.action, Action::Reply(ResponseCode::SYSTEM_BUSY, None));
        // Another code falls through to the catch-all rule.
        let b = table.take(RequestCode::HEART_BEAT).unwrap();
        assert_eq!(b.action, Action::BlackHole);
        let c = table.take(RequestCode::SEND_MESSAGE_V2).unwrap();
        assert_eq!(c.action, Action::Reply(ResponseCode::SYSTEM_BUSY, None));
        assert!(table.take(RequestCode::SEND_MESSAGE_V2).is_none());
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn forever_rules_stay() {
        let table = Arc::new(ScriptTable::default());
        ScriptBuilder::new(table.clone(), None)
            .delay(Duration::from_secs(1))
            .install();
        for _ in 0..5 {
            let r = table.take(RequestCode(1)).unwrap();
            assert_eq!(r.delay, Duration::from_secs(1));
            assert_eq!(r.action, Action::Handle);
        }
        table.clear();
        assert!(table.take(RequestCode(1)).is_none());
    }
}
