//! Frames on a fake server's connection: reading with the strict header check of the
//! real servers, and writing replies with scripted shaping (fragments, bandwidth,
//! reset after N bytes).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rmq_protocol::frame::FrameCodec;
use rmq_protocol::{LanguageCode, RemotingCommand};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// One step of reading: a whole command, or a reason to close the connection.
#[derive(Debug)]
pub(crate) enum ReadFrame {
    /// A decoded command.
    Command(RemotingCommand),
    /// The frame is not acceptable; the connection is closed without a reply.
    Reject(String),
}

/// Takes the next whole frame from `buf`: `None` when more bytes are needed.
///
/// With `strict`, a JSON header is first checked the way the rocketmq-rust servers
/// check it ([`check_strict_json_header`]).
pub(crate) fn next_frame(
    codec: &FrameCodec,
    buf: &mut BytesMut,
    strict: bool,
) -> Option<ReadFrame> {
    if strict
        && let Some(header) = whole_json_header(buf)
        && let Err(reason) = check_strict_json_header(header)
    {
        return Some(ReadFrame::Reject(reason));
    }
    match codec.decode(buf) {
        Ok(Some(cmd)) => Some(ReadFrame::Command(cmd)),
        Ok(None) => None,
        Err(e) => Some(ReadFrame::Reject(e.to_string())),
    }
}

/// The header bytes of the first frame in `buf` when the whole frame is there and its
/// header is JSON (serialize type 0).
fn whole_json_header(buf: &[u8]) -> Option<&[u8]> {
    let prefix = buf.get(..8)?;
    let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let total = usize::try_from(len).ok()?.checked_add(4)?;
    if buf.len() < total || prefix[4] != 0 {
        return None;
    }
    let header_len =
        usize::from(prefix[5]) << 16 | usize::from(prefix[6]) << 8 | usize::from(prefix[7]);
    buf.get(8..8usize.checked_add(header_len)?.min(total))
}

/// Keys every JSON request header must have (peer.md section 3.1).
pub const REQUIRED_JSON_KEYS: [&str; 6] = [
    "code",
    "language",
    "version",
    "opaque",
    "flag",
    "serializeTypeCurrentRPC",
];

/// Checks a JSON header like the rocketmq-rust servers do (peer.md section 3.1):
/// every key of [`REQUIRED_JSON_KEYS`] present, `code`/`version`/`opaque`/`flag`
/// integers, `language` a known upper-case name (`"JAVA"`, `"RUST"`, ...),
/// `serializeTypeCurrentRPC` `"JSON"` or `"ROCKETMQ"`, `remark` a string or null, and
/// every `extFields` value a string. Extra keys, `remark: null` and a missing or null
/// `extFields` are accepted. Returns the reason for a rejection.
///
/// ```
/// use rmq_testkit::fake::check_strict_json_header;
///
/// let ok = br#"{"code":105,"language":"JAVA","version":479,"opaque":1,"flag":0,
///              "serializeTypeCurrentRPC":"JSON","extFields":{"topic":"T"}}"#;
/// assert!(check_strict_json_header(ok).is_ok());
/// let lower = br#"{"code":105,"language":"java","version":479,"opaque":1,"flag":0,
///                 "serializeTypeCurrentRPC":"JSON"}"#;
/// assert!(check_strict_json_header(lower).is_err());
/// ```
pub fn check_strict_json_header(header: &[u8]) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("invalid JSON header: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "JSON header is not an object".to_owned())?;
    for key in REQUIRED_JSON_KEYS {
        if !obj.contains_key(key) {
            return Err(format!("JSON header lacks `{key}`"));
        }
    }
    for key in ["code", "version", "opaque", "flag"] {
        let ok = obj
            .get(key)
            .and_then(serde_json::Value::as_i64)
            .is_some_and(|v| i32::try_from(v).is_ok());
        if !ok {
            return Err(format!("JSON header `{key}` is not an i32"));
        }
    }
    match obj.get("language").and_then(serde_json::Value::as_str) {
        Some(name) if LanguageCode::from_json_name(name).is_some() => {}
        _ => return Err("JSON header `language` is not a known upper-case name".to_owned()),
    }
    match obj
        .get("serializeTypeCurrentRPC")
        .and_then(serde_json::Value::as_str)
    {
        Some("JSON" | "ROCKETMQ") => {}
        _ => {
            return Err("JSON header `serializeTypeCurrentRPC` is not JSON or ROCKETMQ".to_owned());
        }
    }
    match obj.get("remark") {
        None | Some(serde_json::Value::Null | serde_json::Value::String(_)) => {}
        Some(_) => return Err("JSON header `remark` is not a string".to_owned()),
    }
    match obj.get("extFields") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(fields)) => {
            if let Some((k, _)) = fields.iter().find(|(_, v)| !v.is_string()) {
                return Err(format!(
                    "JSON header extFields value of `{k}` is not a string"
                ));
            }
        }
        Some(_) => return Err("JSON header `extFields` is not an object".to_owned()),
    }
    Ok(())
}

/// How a reply is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shaping {
    /// Write in pieces of this many bytes, pausing between them.
    pub(crate) fragment: Option<(usize, Duration)>,
    /// Write at most this many bytes per second.
    pub(crate) bandwidth: Option<u64>,
    /// Reset the connection after this many more bytes (counted from this reply on).
    pub(crate) reset_after: Option<usize>,
}

/// What the connection does after a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterWrite {
    /// Keep the connection.
    Continue,
    /// The reset budget ran out: reset the connection.
    Reset,
}

/// Writes `bytes` with `shaping`. `budget` is the connection's remaining byte budget
/// before a reset (`None`: unlimited); it is armed by `shaping.reset_after`.
pub(crate) async fn write_shaped<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &Bytes,
    shaping: Shaping,
    budget: &mut Option<usize>,
) -> std::io::Result<AfterWrite> {
    if let Some(n) = shaping.reset_after {
        *budget = Some(n);
    }
    let piece_len = shaping.fragment.map_or(bytes.len(), |(k, _)| k).max(1);
    let pause = shaping.fragment.map_or(Duration::ZERO, |(_, p)| p);
    let mut pieces = bytes.chunks(piece_len).peekable();
    while let Some(piece) = pieces.next() {
        let allowed = budget.map_or(piece.len(), |b| b.min(piece.len()));
        let piece = &piece[..allowed];
        if piece.is_empty() {
            return Ok(AfterWrite::Reset);
        }
        match shaping.bandwidth {
            Some(bps) => write_throttled(w, piece, bps).await?,
            None => {
                w.write_all(piece).await?;
                w.flush().await?;
            }
        }
        if let Some(b) = budget {
            *b -= piece.len();
            if *b == 0 {
                return Ok(AfterWrite::Reset);
            }
        }
        if !pause.is_zero() && pieces.peek().is_some() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(AfterWrite::Continue)
}

/// Writes `data` at about `bps` bytes per second: slices of 1/20 s worth of bytes,
/// each followed by the time it "took".
async fn write_throttled<W: AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
    bps: u64,
) -> std::io::Result<()> {
    let bps = bps.max(1);
    let slice = usize::try_from(bps / 20).unwrap_or(usize::MAX).max(1);
    for part in data.chunks(slice) {
        w.write_all(part).await?;
        w.flush().await?;
        let nanos = (part.len() as u128).saturating_mul(1_000_000_000) / u128::from(bps);
        tokio::time::sleep(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
        .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"code":105,"language":"RUST","version":479,"opaque":1,"flag":0,"serializeTypeCurrentRPC":"JSON","remark":null,"extFields":{"topic":"T"},"extra":1}"#;

    #[test]
    fn strict_accepts_java_and_rust_shapes() {
        assert_eq!(check_strict_json_header(GOOD.as_bytes()), Ok(()));
        let no_ext = GOOD.replace(r#","extFields":{"topic":"T"}"#, "");
        assert_eq!(check_strict_json_header(no_ext.as_bytes()), Ok(()));
    }

    #[test]
    fn strict_rejects_each_missing_key_and_bad_values() {
        for key in REQUIRED_JSON_KEYS {
            let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
            v.as_object_mut().unwrap().remove(key);
            let bytes = serde_json::to_vec(&v).unwrap();
            assert!(check_strict_json_header(&bytes).is_err(), "{key}");
        }
        for (from, to) in [
            (r#""RUST""#, r#""rust""#),
            (r#""RUST""#, "12"),
            (r#""topic":"T""#, r#""topic":1"#),
            (r#""topic":"T""#, r#""topic":null"#),
            (r#""opaque":1"#, r#""opaque":"1""#),
            (r#""JSON""#, r#""XML""#),
        ] {
            let bad = GOOD.replace(from, to);
            assert!(check_strict_json_header(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shaped_write_fragments_and_resets() {
        let bytes = Bytes::from_static(b"0123456789");
        let mut out = Vec::new();
        let mut budget = None;
        let shaping = Shaping {
            fragment: Some((3, Duration::from_millis(10))),
            ..Shaping::default()
        };
        let start = tokio::time::Instant::now();
        let r = write_shaped(&mut out, &bytes, shaping, &mut budget)
            .await
            .unwrap();
        assert_eq!(r, AfterWrite::Continue);
        assert_eq!(out, b"0123456789");
        assert_eq!(start.elapsed(), Duration::from_millis(30));

        let mut out = Vec::new();
        let shaping = Shaping {
            reset_after: Some(4),
            ..Shaping::default()
        };
        let r = write_shaped(&mut out, &bytes, shaping, &mut budget)
            .await
            .unwrap();
        assert_eq!(r, AfterWrite::Reset);
        assert_eq!(out, b"0123");
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_write_takes_its_time() {
        let bytes = Bytes::from(vec![7u8; 1000]);
        let mut out = Vec::new();
        let shaping = Shaping {
            bandwidth: Some(500),
            ..Shaping::default()
        };
        let start = tokio::time::Instant::now();
        write_shaped(&mut out, &bytes, shaping, &mut None)
            .await
            .unwrap();
        assert_eq!(out.len(), 1000);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
