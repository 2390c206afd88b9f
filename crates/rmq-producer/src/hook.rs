//! Send hooks: code that sees every attempt, and hooks that may veto a send.
//!
//! Hooks are synchronous and must not block: they run on the send path. A hook that
//! panics is contained (the panic is caught and logged) and cannot change the
//! outcome of the send.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use rmq_protocol::message::send_result::SendResult;
use rmq_protocol::message::{Message, MessageQueue};
use tracing::warn;

use crate::error::SendError;

/// What a hook sees of one attempt.
#[derive(Debug)]
pub struct AttemptContext<'a> {
    /// The message as the user passed it (uncompressed body, with its UNIQ_KEY).
    pub message: &'a Message,
    /// The queue chosen for this attempt.
    pub queue: &'a MessageQueue,
    /// The broker address the attempt goes to.
    pub broker_addr: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// The outcome of one attempt, as hooks see it.
#[derive(Clone, Copy, Debug)]
pub enum AttemptOutcome<'a> {
    /// The broker stored the message (with any status).
    Stored(&'a SendResult),
    /// The attempt failed; the send may still be retried.
    Failed(&'a SendError),
}

/// Runs before and after every attempt (tracing, metrics, message decoration).
pub trait SendHook: Send + Sync + std::fmt::Debug {
    /// Before the attempt is sent.
    fn before_attempt(&self, ctx: &AttemptContext<'_>) {
        let _ = ctx;
    }

    /// After the attempt finished, with how long it took.
    fn after_attempt(
        &self,
        ctx: &AttemptContext<'_>,
        outcome: AttemptOutcome<'_>,
        elapsed: Duration,
    ) {
        let _ = (ctx, outcome, elapsed);
    }
}

/// May refuse a message before anything is sent.
pub trait CheckForbiddenHook: Send + Sync + std::fmt::Debug {
    /// `Err(reason)` vetoes the send with [`SendErrorKind::HookVeto`](crate::SendErrorKind::HookVeto).
    fn check(&self, message: &Message) -> Result<(), String>;
}

/// Calls every hook, containing panics.
pub(crate) fn run_before(hooks: &[Arc<dyn SendHook>], ctx: &AttemptContext<'_>) {
    for hook in hooks {
        if catch_unwind(AssertUnwindSafe(|| hook.before_attempt(ctx))).is_err() {
            warn!(?hook, "send hook panicked in before_attempt; ignored");
        }
    }
}

/// Calls every hook, containing panics.
pub(crate) fn run_after(
    hooks: &[Arc<dyn SendHook>],
    ctx: &AttemptContext<'_>,
    outcome: &AttemptOutcome<'_>,
    elapsed: Duration,
) {
    for hook in hooks {
        let outcome = *outcome;
        if catch_unwind(AssertUnwindSafe(|| {
            hook.after_attempt(ctx, outcome, elapsed)
        }))
        .is_err()
        {
            warn!(?hook, "send hook panicked in after_attempt; ignored");
        }
    }
}

/// Runs the veto hooks; a panicking hook counts as a veto (fail closed).
pub(crate) fn check_forbidden(
    hooks: &[Arc<dyn CheckForbiddenHook>],
    message: &Message,
) -> Result<(), String> {
    for hook in hooks {
        match catch_unwind(AssertUnwindSafe(|| hook.check(message))) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(reason),
            Err(_) => return Err(format!("check-forbidden hook {hook:?} panicked")),
        }
    }
    Ok(())
}
