//! The null broker's frame handling: reads just enough of a request (code, opaque,
//! flag, queue id, message count) without decoding the whole header, and writes
//! responses straight into the connection's output buffer in the request's own
//! header encoding. No per-request heap allocation.
//!
//! Frame: `LEN i32 | serializeType u8 | headerLen u24 | header | body` (see
//! `rmq_protocol::frame`). Binary header: `code i16 | language u8 | version i16 |
//! opaque i32 | flag i32 | remarkLen i32 | remark | extLen i32 | (keyLen i16, key,
//! valLen i32, val)*`.

use bytes::{BufMut, BytesMut};

/// Serialize type byte of JSON headers.
const JSON: u8 = 0;
/// Serialize type byte of ROCKETMQ binary headers.
const BINARY: u8 = 1;
/// `RpcFlags` bit of a response.
const FLAG_RESPONSE: i32 = 1;
/// `RpcFlags` bit of a one-way request.
const FLAG_ONEWAY: i32 = 2;
/// The version the null broker puts in its answers (Java 5.3.3's).
const VERSION: i16 = 479;
/// Bytes of the fixed part of a binary header, up to and including remarkLen.
const BINARY_FIXED: usize = 2 + 1 + 2 + 4 + 4 + 4;

/// What the null broker needs from a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Request {
    /// The request code.
    pub(super) code: i32,
    /// The request's opaque, echoed in the answer.
    pub(super) opaque: i32,
    /// One-way: no answer is written.
    pub(super) oneway: bool,
    /// A response (from a client answering a broker request): ignored.
    pub(super) response: bool,
    /// The header's serialize type byte (0 JSON, 1 ROCKETMQ).
    pub(super) serialize: u8,
}

/// One whole frame at the front of a buffer.
#[derive(Debug)]
pub(super) struct Frame<'a> {
    /// Serialize type byte.
    pub(super) serialize: u8,
    /// The header bytes.
    pub(super) header: &'a [u8],
    /// The body bytes.
    pub(super) body: &'a [u8],
    /// Bytes the frame takes in the buffer, length prefix included.
    pub(super) len: usize,
}

/// Why a connection is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Malformed(pub(super) &'static str);

/// The first whole frame of `buf`: `Ok(None)` when more bytes are needed.
pub(super) fn frame(buf: &[u8], max_frame: usize) -> Result<Option<Frame<'_>>, Malformed> {
    let Some(prefix) = buf.get(..8) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let len = usize::try_from(len).map_err(|_| Malformed("negative frame length"))?;
    if len < 4 {
        return Err(Malformed("frame length below 4"));
    }
    let total = len + 4;
    if total > max_frame {
        return Err(Malformed("frame larger than the limit"));
    }
    let Some(whole) = buf.get(..total) else {
        return Ok(None);
    };
    let serialize = prefix[4];
    if serialize != JSON && serialize != BINARY {
        return Err(Malformed("unknown serialize type"));
    }
    let header_len =
        usize::from(prefix[5]) << 16 | usize::from(prefix[6]) << 8 | usize::from(prefix[7]);
    let header = whole
        .get(8..8 + header_len)
        .ok_or(Malformed("header longer than the frame"))?;
    Ok(Some(Frame {
        serialize,
        header,
        body: &whole[8 + header_len..],
        len: total,
    }))
}

impl Frame<'_> {
    /// Code, opaque and flags of the request.
    pub(super) fn request(&self) -> Result<Request, Malformed> {
        let (code, opaque, flag) = if self.serialize == BINARY {
            let h = self.header;
            if h.len() < BINARY_FIXED {
                return Err(Malformed("binary header truncated"));
            }
            (
                i32::from(i16::from_be_bytes([h[0], h[1]])),
                i32::from_be_bytes([h[5], h[6], h[7], h[8]]),
                i32::from_be_bytes([h[9], h[10], h[11], h[12]]),
            )
        } else {
            let code =
                json_int(self.header, b"\"code\":").ok_or(Malformed("JSON header without code"))?;
            let opaque = json_int(self.header, b"\"opaque\":")
                .ok_or(Malformed("JSON header without opaque"))?;
            let flag = json_int(self.header, b"\"flag\":").unwrap_or(0);
            (
                i32::try_from(code).map_err(|_| Malformed("code out of range"))?,
                i32::try_from(opaque).map_err(|_| Malformed("opaque out of range"))?,
                i32::try_from(flag).map_err(|_| Malformed("flag out of range"))?,
            )
        };
        Ok(Request {
            code,
            opaque,
            oneway: flag & FLAG_ONEWAY != 0,
            response: flag & FLAG_RESPONSE != 0,
            serialize: self.serialize,
        })
    }

    /// The value of the first of `keys` present in the header's ext fields, as an
    /// integer (ext field values are strings on the wire).
    pub(super) fn ext_int(&self, keys: &[&[u8]]) -> Option<i64> {
        if self.serialize == BINARY {
            let ext = binary_ext(self.header)?;
            let mut rest = ext;
            while rest.len() >= 2 {
                let klen = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let key = rest.get(2..2 + klen)?;
                let vl = rest.get(2 + klen..6 + klen)?;
                let vlen =
                    usize::try_from(i32::from_be_bytes([vl[0], vl[1], vl[2], vl[3]])).ok()?;
                let value = rest.get(6 + klen..6 + klen + vlen)?;
                if keys.contains(&key) {
                    return parse_int(value);
                }
                rest = &rest[6 + klen + vlen..];
            }
            None
        } else {
            let start = find(self.header, b"\"extFields\":{")?;
            let ext = &self.header[start..];
            keys.iter().find_map(|k| {
                let mut pattern = [0u8; 32];
                let n = k.len() + 3;
                if n > pattern.len() {
                    return None;
                }
                pattern[0] = b'"';
                pattern[1..=k.len()].copy_from_slice(k);
                pattern[k.len() + 1] = b'"';
                pattern[k.len() + 2] = b':';
                json_int(ext, &pattern[..n])
            })
        }
    }

    /// Messages in a batch body (MessageDecoder layout: each entry starts with its
    /// total size); 1 when the body cannot be walked.
    pub(super) fn batch_len(&self) -> usize {
        let mut rest = self.body;
        let mut n = 0usize;
        while let Some(size) = rest.get(..4) {
            let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
            match usize::try_from(size) {
                Ok(s) if s >= 4 && s <= rest.len() => {
                    rest = &rest[s..];
                    n += 1;
                }
                _ => break,
            }
        }
        n.max(1)
    }
}

/// The ext-field bytes of a binary header.
fn binary_ext(h: &[u8]) -> Option<&[u8]> {
    let rl = h.get(13..17)?;
    let remark = usize::try_from(i32::from_be_bytes([rl[0], rl[1], rl[2], rl[3]]).max(0)).ok()?;
    let at = BINARY_FIXED + remark;
    let el = h.get(at..at + 4)?;
    let ext = usize::try_from(i32::from_be_bytes([el[0], el[1], el[2], el[3]]).max(0)).ok()?;
    h.get(at + 4..at + 4 + ext)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + needle.len())
}

/// The integer after `key` (e.g. `"opaque":`) in JSON text, quoted or not. The key
/// must not be preceded by a backslash (an escaped quote inside a string value).
fn json_int(json: &[u8], key: &[u8]) -> Option<i64> {
    let mut from = 0;
    while let Some(rel) = find(&json[from..], key) {
        let end = from + rel;
        let start = end - key.len();
        if start == 0 || json[start - 1] != b'\\' {
            let mut v = &json[end..];
            while let Some((&c, tail)) = v.split_first() {
                if c == b' ' || c == b'"' {
                    v = tail;
                } else {
                    break;
                }
            }
            let digits = v
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b'-'))
                .unwrap_or(v.len());
            return parse_int(&v[..digits]);
        }
        from = end;
    }
    None
}

fn parse_int(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.trim().parse().ok()
}

/// A response header's fields (besides code, opaque and the fixed ones).
#[derive(Debug)]
pub(super) struct Reply<'a> {
    /// Response code.
    pub(super) code: i16,
    /// Remark (empty: none).
    pub(super) remark: &'a str,
    /// Ext fields, written in order; values are written as given.
    pub(super) ext: &'a [(&'a str, Value<'a>)],
    /// Body.
    pub(super) body: &'a [u8],
}

/// An ext field value, formatted while writing (no temporary strings).
#[derive(Clone, Copy, Debug)]
pub(super) enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// An integer, written in decimal.
    Int(i64),
    /// `count` offset message ids joined by commas: 16 bytes each (IPv4, port,
    /// commit-log offset), in hex; the offset grows by one per id.
    MsgIds {
        /// The store host's IPv4 address and port.
        host: [u8; 8],
        /// Commit-log offset of the first id.
        offset: i64,
        /// How many ids.
        count: usize,
    },
}

impl Value<'_> {
    fn write(&self, out: &mut BytesMut) {
        match *self {
            Value::Str(s) => out.put_slice(s.as_bytes()),
            Value::Int(v) => {
                let mut buf = [0u8; 20];
                out.put_slice(fmt_int(&mut buf, v));
            }
            Value::MsgIds {
                host,
                offset,
                count,
            } => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                for i in 0..count {
                    if i > 0 {
                        out.put_u8(b',');
                    }
                    let off = offset
                        .wrapping_add(i64::try_from(i).unwrap_or(0))
                        .to_be_bytes();
                    for b in host.iter().chain(off.iter()) {
                        out.put_u8(HEX[usize::from(b >> 4)]);
                        out.put_u8(HEX[usize::from(b & 0xF)]);
                    }
                }
            }
        }
    }
}

fn fmt_int(buf: &mut [u8; 20], v: i64) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Appends the response frame to `out`, in the request's header encoding.
pub(super) fn write_reply(out: &mut BytesMut, req: &Request, reply: &Reply<'_>) {
    let start = out.len();
    out.put_slice(&[0; 8]); // length and header-length words, patched below
    if req.serialize == BINARY {
        out.put_i16(reply.code);
        out.put_u8(0); // JAVA
        out.put_i16(VERSION);
        out.put_i32(req.opaque);
        out.put_i32(FLAG_RESPONSE);
        put_len_i32(out, reply.remark.len());
        out.put_slice(reply.remark.as_bytes());
        let ext_len_at = out.len();
        out.put_i32(0);
        for (key, value) in reply.ext {
            put_len_i16(out, key.len());
            out.put_slice(key.as_bytes());
            let vlen_at = out.len();
            out.put_i32(0);
            value.write(out);
            patch_i32(out, vlen_at, out.len() - vlen_at - 4);
        }
        patch_i32(out, ext_len_at, out.len() - ext_len_at - 4);
    } else {
        out.put_slice(b"{\"code\":");
        Value::Int(i64::from(reply.code)).write(out);
        out.put_slice(b",\"extFields\":{");
        for (i, (key, value)) in reply.ext.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_u8(b'"');
            out.put_slice(key.as_bytes());
            out.put_slice(b"\":\"");
            value.write(out); // keys and values are plain ASCII: no escaping needed
            out.put_u8(b'"');
        }
        out.put_slice(b"},\"flag\":1,\"language\":\"JAVA\",\"opaque\":");
        Value::Int(i64::from(req.opaque)).write(out);
        if !reply.remark.is_empty() {
            out.put_slice(b",\"remark\":\"");
            out.put_slice(reply.remark.as_bytes()); // ASCII, no quotes (our own texts)
            out.put_u8(b'"');
        }
        out.put_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
        Value::Int(i64::from(VERSION)).write(out);
        out.put_u8(b'}');
    }
    let header_len = out.len() - start - 8;
    out.put_slice(reply.body);
    let frame_len = out.len() - start - 4;
    patch_i32(out, start, frame_len);
    let word =
        (u32::from(req.serialize) << 24) | (u32::try_from(header_len).unwrap_or(0) & 0x00FF_FFFF);
    out[start + 4..start + 8].copy_from_slice(&word.to_be_bytes());
}

fn put_len_i32(out: &mut BytesMut, len: usize) {
    out.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

fn put_len_i16(out: &mut BytesMut, len: usize) {
    out.put_i16(i16::try_from(len).unwrap_or(i16::MAX));
}

fn patch_i32(out: &mut BytesMut, at: usize, value: usize) {
    let v = i32::try_from(value).unwrap_or(i32::MAX).to_be_bytes();
    out[at..at + 4].copy_from_slice(&v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmq_protocol::frame::FrameCodec;
    use rmq_protocol::{RemotingCommand, RequestCode, SerializeType};

    fn encoded(serialize: SerializeType, oneway: bool) -> BytesMut {
        let mut cmd = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2)
            .opaque(77)
            .serialize_type(serialize)
            .body(&b"hello"[..]);
        cmd.ext_fields.insert("a", "group");
        cmd.ext_fields.insert("i", "UNIQ_KEY\u{1}\"e\":\"9\u{2}");
        cmd.ext_fields.insert("e", "5");
        if oneway {
            cmd = cmd.oneway();
        }
        let mut buf = BytesMut::new();
        FrameCodec::default().encode(&cmd, &mut buf).unwrap();
        buf
    }

    #[test]
    fn requests_are_read_in_both_encodings() {
        for st in [SerializeType::JSON, SerializeType::ROCKETMQ] {
            for oneway in [false, true] {
                let buf = encoded(st, oneway);
                let f = frame(&buf, 1 << 20).unwrap().unwrap();
                assert_eq!(f.len, buf.len());
                assert_eq!(f.body, b"hello");
                let r = f.request().unwrap();
                assert_eq!(
                    (r.code, r.opaque, r.oneway, r.response),
                    (310, 77, oneway, false)
                );
                assert_eq!(f.ext_int(&[b"queueId", b"e"]), Some(5), "{st:?}");
                assert_eq!(f.ext_int(&[b"zz"]), None);
                assert!(frame(&buf[..buf.len() - 1], 1 << 20).unwrap().is_none());
            }
        }
    }

    #[test]
    fn replies_decode_with_the_real_codec() {
        for st in [SerializeType::JSON, SerializeType::ROCKETMQ] {
            let buf = encoded(st, false);
            let req = frame(&buf, 1 << 20).unwrap().unwrap().request().unwrap();
            let mut out = BytesMut::new();
            let ext = [
                (
                    "msgId",
                    Value::MsgIds {
                        host: [127, 0, 0, 1, 0, 0, 0x2A, 0x9F],
                        offset: 255,
                        count: 2,
                    },
                ),
                ("queueId", Value::Int(5)),
                ("queueOffset", Value::Int(-3)),
                ("MSG_REGION", Value::Str("DefaultRegion")),
            ];
            let reply = Reply {
                code: 0,
                remark: "ok",
                ext: &ext,
                body: b"xyz",
            };
            write_reply(&mut out, &req, &reply);
            let cmd = FrameCodec::default().decode(&mut out).unwrap().unwrap();
            assert!(out.is_empty());
            assert!(cmd.is_response());
            assert_eq!((cmd.code, cmd.opaque), (0, 77));
            assert_eq!(cmd.remark.as_deref(), Some("ok"));
            assert_eq!(cmd.body_bytes(), b"xyz");
            assert_eq!(
                cmd.ext_fields.get("msgId"),
                Some("7F00000100002A9F00000000000000FF,7F00000100002A9F0000000000000100")
            );
            assert_eq!(cmd.ext_fields.get("queueId"), Some("5"));
            assert_eq!(cmd.ext_fields.get("queueOffset"), Some("-3"));
        }
    }

    #[test]
    fn json_replies_pass_the_strict_server_check() {
        let buf = encoded(SerializeType::JSON, false);
        let req = frame(&buf, 1 << 20).unwrap().unwrap().request().unwrap();
        let mut out = BytesMut::new();
        let ext = [("queueId", Value::Int(1))];
        write_reply(
            &mut out,
            &req,
            &Reply {
                code: 0,
                remark: "",
                ext: &ext,
                body: b"",
            },
        );
        let f = frame(&out, 1 << 20).unwrap().unwrap();
        crate::fake::check_strict_json_header(f.header).unwrap();
    }

    #[test]
    fn batch_bodies_are_counted() {
        let mut body = Vec::new();
        for size in [20i32, 9, 30] {
            body.extend_from_slice(&size.to_be_bytes());
            body.extend(std::iter::repeat_n(0u8, usize::try_from(size).unwrap() - 4));
        }
        let f = Frame {
            serialize: BINARY,
            header: &[],
            body: &body,
            len: 0,
        };
        assert_eq!(f.batch_len(), 3);
        let f = Frame {
            serialize: BINARY,
            header: &[],
            body: b"",
            len: 0,
        };
        assert_eq!(f.batch_len(), 1);
    }
}
