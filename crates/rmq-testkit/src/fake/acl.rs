//! The server side of ACL 1.0 ("plain" access key + HmacSHA1 signature, protocol.md
//! section 13.1), written independently of the client's signer in `rmq-remoting`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rmq_protocol::{RemotingCommand, ResponseCode};
use sha1::Sha1;

/// Ext field carrying the access key.
pub const ACCESS_KEY: &str = "AccessKey";
/// Ext field carrying the signature.
pub const SIGNATURE: &str = "Signature";
/// Ext field carrying the optional security token.
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// Skipped from the signed content for requests with version ≤ 399 (V4_9_3).
const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";

/// Compares two strings like Java's `String.compareTo`: by UTF-16 code units.
///
/// This differs from Rust's byte order only for characters above U+FFFF against
/// characters in U+E000..=U+FFFF.
pub fn java_string_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The bytes a server signs for `fields` and `body`: every value except
/// [`SIGNATURE`]'s, ordered by key in Java `TreeMap` order, concatenated, then the body.
/// With `skip_unique_key_query` (request version ≤ 399) `_UNIQUE_KEY_QUERY` is left out too.
pub fn signed_content<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
    skip_unique_key_query: bool,
) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = fields
        .into_iter()
        .filter(|(k, _)| *k != SIGNATURE && !(skip_unique_key_query && *k == UNIQUE_KEY_QUERY))
        .collect();
    pairs.sort_by(|a, b| java_string_cmp(a.0, b.0));
    let mut out =
        Vec::with_capacity(pairs.iter().map(|(_, v)| v.len()).sum::<usize>() + body.len());
    for (_, v) in pairs {
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// `Base64(HmacSHA1(key = secret, data))` with the standard alphabet and padding.
///
/// ```
/// use rmq_testkit::fake::acl::hmac_sha1_base64;
/// // AclSignerTest (protocol.md section 13.1)
/// assert_eq!(hmac_sha1_base64("12345678", b"RocketMQ"), "IUc8rrO/0gDch8CjObLQsW2rsiA=");
/// ```
pub fn hmac_sha1_base64(secret: &str, data: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(data);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The signature a server expects for `request` when signed with `secret`.
pub fn expected_signature(request: &RemotingCommand, secret: &str) -> String {
    let content = signed_content(
        request.ext_fields.iter(),
        request.body_bytes(),
        request.version <= 399,
    );
    hmac_sha1_base64(secret, &content)
}

/// A fake server's decision on one request's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclVerdict {
    /// The access key is known and the signature matches.
    Accepted {
        /// The access key.
        access_key: String,
    },
    /// No [`ACCESS_KEY`] field.
    MissingAccessKey,
    /// The access key is not configured.
    UnknownAccessKey(String),
    /// No [`SIGNATURE`] field.
    MissingSignature {
        /// The access key.
        access_key: String,
    },
    /// The signature does not match.
    BadSignature {
        /// The access key.
        access_key: String,
        /// What the server computed.
        expected: String,
        /// What the request carried.
        received: String,
    },
}

impl AclVerdict {
    /// Whether the request may proceed.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }

    /// The remark of a rejection reply.
    pub fn remark(&self) -> String {
        match self {
            Self::Accepted { access_key } => format!("accepted access key {access_key}"),
            Self::MissingAccessKey => "[AUTHENTICATION] no AccessKey in the request".to_owned(),
            Self::UnknownAccessKey(k) => format!("[AUTHENTICATION] unknown AccessKey {k}"),
            Self::MissingSignature { access_key } => {
                format!("[AUTHENTICATION] no Signature for AccessKey {access_key}")
            }
            Self::BadSignature { access_key, .. } => {
                format!("[AUTHENTICATION] signature check failed for AccessKey {access_key}")
            }
        }
    }
}

/// The accounts a fake server accepts, and the code it rejects others with.
#[derive(Clone, Debug)]
pub(crate) struct AclConfig {
    pub(crate) accounts: BTreeMap<String, String>,
    pub(crate) reject_code: ResponseCode,
}

impl AclConfig {
    pub(crate) fn new() -> Self {
        Self {
            accounts: BTreeMap::new(),
            reject_code: ResponseCode::NO_PERMISSION,
        }
    }

    /// Checks one request.
    pub(crate) fn verify(&self, request: &RemotingCommand) -> AclVerdict {
        let Some(access_key) = request.ext_fields.get(ACCESS_KEY) else {
            return AclVerdict::MissingAccessKey;
        };
        let access_key = access_key.to_owned();
        let Some(secret) = self.accounts.get(&access_key) else {
            return AclVerdict::UnknownAccessKey(access_key);
        };
        let Some(received) = request.ext_fields.get(SIGNATURE) else {
            return AclVerdict::MissingSignature { access_key };
        };
        let expected = expected_signature(request, secret);
        if expected == received {
            AclVerdict::Accepted { access_key }
        } else {
            AclVerdict::BadSignature {
                access_key,
                received: received.to_owned(),
                expected,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmq_protocol::RequestCode;

    #[test]
    fn java_order_is_utf16_order() {
        // Upper case before lower case, like TreeMap.
        assert_eq!(java_string_cmp("AccessKey", "a"), Ordering::Less);
        // U+FF61 (one UTF-16 unit 0xFF61) vs U+10000 (surrogates 0xD800 ...): Java puts
        // the supplementary character first; byte order would not.
        assert_eq!(java_string_cmp("\u{10000}", "\u{FF61}"), Ordering::Less);
        assert_eq!("\u{10000}".cmp("\u{FF61}"), Ordering::Greater);
    }

    #[test]
    fn probe_vector() {
        let content = signed_content(
            [("topic", "TBW102"), ("AccessKey", "rocketmq2")],
            b"",
            false,
        );
        assert_eq!(content, b"rocketmq2TBW102");
        assert_eq!(
            hmac_sha1_base64("12345678", &content),
            "/u5P/wZUbhjanu4LM/UzEdo2u2I="
        );
    }

    #[test]
    fn verify_rejects_every_way() {
        let mut cfg = AclConfig::new();
        cfg.accounts.insert("rocketmq2".into(), "12345678".into());
        let mut req = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC);
        req.ext_fields.insert("topic", "TBW102");
        assert_eq!(cfg.verify(&req), AclVerdict::MissingAccessKey);
        req.ext_fields.insert(ACCESS_KEY, "nobody");
        assert_eq!(
            cfg.verify(&req),
            AclVerdict::UnknownAccessKey("nobody".into())
        );
        req.ext_fields.insert(ACCESS_KEY, "rocketmq2");
        assert!(matches!(
            cfg.verify(&req),
            AclVerdict::MissingSignature { .. }
        ));
        req.ext_fields.insert(SIGNATURE, "AAAA");
        assert!(matches!(cfg.verify(&req), AclVerdict::BadSignature { .. }));
        req.ext_fields
            .insert(SIGNATURE, "/u5P/wZUbhjanu4LM/UzEdo2u2I=");
        assert!(cfg.verify(&req).is_accepted());
        // A body is signed too.
        let req = req.body(&b"x"[..]);
        assert!(!cfg.verify(&req).is_accepted());
    }
}
