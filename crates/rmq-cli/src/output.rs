//! Shared output helpers: schema versions, the `error` object every `--json` document
//! carries, exit codes, and the typed [`CliError`] that commands raise so that the
//! error object can name a kind and a code.
//!
//! The documents themselves are described in `docs/cli.md`. Their rules:
//! snake_case keys, every key always present (`null` when there is no value), a
//! `schema` field naming the document and its version (`rmq.send/1`), and an `error`
//! field that is `null` on success and an [`ErrorObject`] on failure.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use rmq_producer::{Delivery, SendError};
use serde::Serialize;

/// Schema of `rmq send --json` lines.
pub const SCHEMA_SEND: &str = "rmq.send/1";
/// Schema of `rmq route --json`.
pub const SCHEMA_ROUTE: &str = "rmq.route/1";
/// Schema of `rmq topic create --json`.
pub const SCHEMA_TOPIC_CREATE: &str = "rmq.topic.create/1";
/// Schema of `rmq pull --json`.
pub const SCHEMA_PULL: &str = "rmq.pull/1";

/// Exit code: everything worked.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command ran, but something it did failed (a send, a broker, a
/// missing key, a demo mismatch).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the command could not run (bad arguments, no name server answered, the
/// topic does not exist, an unexpected answer).
pub const EXIT_ERROR: u8 = 2;

/// The coarse kind of a command-level error; its `as_str` is the `kind` of the JSON
/// error object. Send failures use the producer's kinds instead
/// ([`ErrorObject::from_send_error`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A bad value on the command line or in a file it names.
    Usage,
    /// A file could not be read or written.
    Io,
    /// No name server answered.
    NameServerUnavailable,
    /// A broker could not be reached.
    BrokerUnavailable,
    /// The name server has no route for the topic.
    TopicNotFound,
    /// A server answered with an unexpected response code (see `code`).
    ServerError,
    /// A server's answer could not be decoded.
    MalformedResponse,
    /// The producer could not be configured or started.
    Config,
    /// Anything else.
    Internal,
}

impl Kind {
    /// The snake_case name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::Io => "io",
            Kind::NameServerUnavailable => "name_server_unavailable",
            Kind::BrokerUnavailable => "broker_unavailable",
            Kind::TopicNotFound => "topic_not_found",
            Kind::ServerError => "server_error",
            Kind::MalformedResponse => "malformed_response",
            Kind::Config => "config",
            Kind::Internal => "internal",
        }
    }
}

/// A command-level error with a kind and, when a server answered, its response code.
#[derive(Debug, Clone)]
pub struct CliError {
    /// What went wrong.
    pub kind: Kind,
    /// The server's response code, when one answered.
    pub code: Option<i32>,
    /// Human-readable text.
    pub message: String,
}

impl CliError {
    /// An error without a response code.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            message: message.into(),
        }
    }

    /// An error with the server's response code.
    pub fn with_code(kind: Kind, code: i32, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: Some(code),
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(code) = self.code {
            write!(f, " (code {code})")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

/// The `error` object of every JSON document: `kind`, `delivery`, `code`, `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorObject {
    /// snake_case kind: a [`Kind`] or a producer `SendErrorKind`
    /// (`invalid_message`, `timeout`, `rejected`, ...).
    pub kind: String,
    /// For send failures: `not_sent`, `indeterminate` (may be stored) or `rejected`;
    /// `null` otherwise.
    pub delivery: Option<String>,
    /// The broker's or name server's response code, when one answered.
    pub code: Option<i32>,
    /// Human-readable text (wording may change; match on `kind` and `code`).
    pub message: String,
}

impl ErrorObject {
    /// The error object of a failed send.
    pub fn from_send_error(e: &SendError) -> Self {
        Self {
            kind: snake_case(&format!("{:?}", e.kind())),
            delivery: Some(delivery_name(e.delivery()).to_owned()),
            code: e.response_code().map(|c| c.0),
            message: e.to_string(),
        }
    }

    /// The error object of a command-level error: the kind and code of the first
    /// [`CliError`] or `SendError` in the chain, the whole chain as the message.
    pub fn from_anyhow(e: &anyhow::Error) -> Self {
        let message = format!("{e:#}");
        for cause in e.chain() {
            if let Some(c) = cause.downcast_ref::<CliError>() {
                return Self {
                    kind: c.kind.as_str().to_owned(),
                    delivery: None,
                    code: c.code,
                    message,
                };
            }
            if let Some(s) = cause.downcast_ref::<SendError>() {
                return Self {
                    message,
                    ..Self::from_send_error(s)
                };
            }
            if cause.downcast_ref::<std::io::Error>().is_some() {
                return Self {
                    kind: Kind::Io.as_str().to_owned(),
                    delivery: None,
                    code: None,
                    message,
                };
            }
        }
        Self {
            kind: Kind::Internal.as_str().to_owned(),
            delivery: None,
            code: None,
            message,
        }
    }
}

/// `not_sent`, `indeterminate` or `rejected`.
pub fn delivery_name(d: Delivery) -> &'static str {
    match d {
        Delivery::NotSent => "not_sent",
        Delivery::Indeterminate => "indeterminate",
        Delivery::Rejected => "rejected",
    }
}

/// `CamelCase` → `camel_case` (for `Debug` names of enums).
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Writes one JSON document as one line on stdout. A closed stdout (`| head`) is not
/// an error worth reporting.
pub fn print_json<T: Serialize>(doc: &T) -> anyhow::Result<()> {
    let line = serde_json::to_string(doc)?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Writes one line of text on stdout, ignoring a closed pipe.
pub fn print_line(line: impl fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// Ends a command that failed as a whole: with `--json`, prints `doc` (the command's
/// document with its `error` set) on stdout; always prints the error on stderr.
/// Returns [`EXIT_ERROR`].
pub fn fail<T: Serialize>(json: bool, doc: &T, e: &anyhow::Error) -> anyhow::Result<ExitCode> {
    if json {
        print_json(doc)?;
    }
    eprintln!("rmq: {e:#}");
    Ok(ExitCode::from(EXIT_ERROR))
}

/// `"rw"`-style name of a permission value: `r`, `w`, `rw` or `-` (plus `i` for
/// inherit as in TBW102).
pub fn perm_name(perm: i32) -> String {
    use rmq_protocol::route::perm;
    let mut s = String::new();
    if perm & perm::READ != 0 {
        s.push('r');
    }
    if perm & perm::WRITE != 0 {
        s.push('w');
    }
    if perm & perm::INHERIT != 0 {
        s.push('i');
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("InvalidMessage"), "invalid_message");
        assert_eq!(snake_case("Timeout"), "timeout");
        assert_eq!(
            snake_case("AllBrokersUnavailable"),
            "all_brokers_unavailable"
        );
    }

    #[test]
    fn cli_errors_keep_kind_and_code_through_context() {
        let e = anyhow::Error::new(CliError::with_code(Kind::TopicNotFound, 17, "no route"))
            .context("reading the route");
        let o = ErrorObject::from_anyhow(&e);
        assert_eq!(o.kind, "topic_not_found");
        assert_eq!(o.code, Some(17));
        assert_eq!(o.delivery, None);
        assert!(o.message.contains("reading the route"), "{}", o.message);
        let o = ErrorObject::from_anyhow(&anyhow::anyhow!("boom"));
        assert_eq!(o.kind, "internal");
    }

    #[test]
    fn perm_names() {
        assert_eq!(perm_name(6), "rw");
        assert_eq!(perm_name(7), "rwi");
        assert_eq!(perm_name(4), "r");
        assert_eq!(perm_name(0), "-");
    }
}
