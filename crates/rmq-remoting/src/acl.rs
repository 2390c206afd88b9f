//! ACL 1.0 ("plain") request signing, as Java's `AclClientRPCHook` does it.
//!
//! Brokers and name servers with ACL 1.0 enabled (RocketMQ 4.9.x and 5.x up to
//! 5.3.2) authenticate every request by three ext fields:
//!
//! * `AccessKey`: the user's access key;
//! * `SecurityToken`: an optional session token (only sent when configured);
//! * `Signature`: `Base64(HmacSHA1(secret key, content))`, where *content* is the
//!   concatenation of the **values** of every ext field of the request, sorted by
//!   key in Java `String` order (UTF-16 code units, so uppercase before lowercase),
//!   skipping `Signature` itself, followed by the raw body bytes.
//!
//! [`AclHook`] is an [`RpcHook`] that adds those three fields. It signs on every
//! call, so a retried request (new opaque, possibly changed fields) is signed
//! again; the opaque is not part of the signature. Because the server builds its
//! content from exactly the fields it receives, the ACL hook must be the **last**
//! hook that changes ext fields (register it after namespace or zone hooks).
//!
//! [`sign`] and [`signature_content`] are the pure functions behind the hook, for
//! tests and for fake brokers that verify signatures.
//!
//! # Security notes
//!
//! * The secret key never goes on the wire and never appears in `Debug` output:
//!   [`AclCredentials`] and [`AclHook`] print it (and the security token) as
//!   `REDACTED`. Nothing in this module logs.
//! * ACL 1.0 signatures carry no nonce or timestamp: a captured request can be
//!   replayed by anyone who can reach the broker. Use TLS (feature `tls`) on
//!   untrusted networks.
//! * HMAC-SHA1 is what the protocol prescribes; it is not a choice of this crate.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use rmq_protocol::{ExtFields, RemotingCommand};
use sha1::{Digest, Sha1};

use crate::hook::{HookError, RpcHook};

/// Ext field name of the access key.
pub const ACCESS_KEY: &str = "AccessKey";
/// Ext field name of the signature.
pub const SIGNATURE: &str = "Signature";
/// Ext field name of the optional security (session) token.
pub const SECURITY_TOKEN: &str = "SecurityToken";

/// Prints `REDACTED` in place of a secret.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

type HmacSha1 = Hmac<Sha1>;

/// The block size of SHA-1, which is the HMAC key size.
const SHA1_BLOCK: usize = 64;

/// ACL 1.0 credentials: an access key, its secret key, and an optional security
/// token.
///
/// `Debug` shows the access key but prints the secret key and the token as
/// `REDACTED`. There is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct AclCredentials {
    access_key: String,
    secret_key: String,
    security_token: Option<String>,
}

impl AclCredentials {
    /// Credentials without a security token.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    /// Adds a security token, sent as the `SecurityToken` ext field and signed.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// The access key (not secret: it is sent in clear on every request).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Whether a security token is configured (the token itself is not exposed).
    pub fn has_security_token(&self) -> bool {
        self.security_token.is_some()
    }
}

impl fmt::Debug for AclCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AclCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &Redacted)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| Redacted),
            )
            .finish()
    }
}

/// An [`RpcHook`] that signs every request with ACL 1.0 credentials.
///
/// On each call it sets `AccessKey`, `SecurityToken` (when configured), and then
/// `Signature` over all ext fields and the body (see the [module docs](self)).
/// Register it last among the hooks that change ext fields.
#[derive(Clone)]
pub struct AclHook {
    credentials: AclCredentials,
    /// HMAC keyed with the secret, cloned for each signature.
    mac: HmacSha1,
}

impl AclHook {
    /// A hook signing with `credentials`.
    pub fn new(credentials: AclCredentials) -> Self {
        let mac = keyed_mac(credentials.secret_key.as_bytes());
        Self { credentials, mac }
    }

    /// The credentials this hook signs with.
    pub fn credentials(&self) -> &AclCredentials {
        &self.credentials
    }

    /// Adds `AccessKey`, `SecurityToken` and `Signature` to `request`, replacing
    /// any previous values.
    pub fn sign_request(&self, request: &mut RemotingCommand) {
        let fields = &mut request.ext_fields;
        fields.insert(ACCESS_KEY, self.credentials.access_key.as_str());
        if let Some(token) = &self.credentials.security_token {
            fields.insert(SECURITY_TOKEN, token.as_str());
        }
        let mut mac = self.mac.clone();
        feed_content(&request.ext_fields, request.body.as_deref(), |chunk| {
            mac.update(chunk)
        });
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        request.ext_fields.insert(SIGNATURE, signature);
    }
}

impl fmt::Debug for AclHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AclHook")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl RpcHook for AclHook {
    fn before_request(&self, _addr: &str, request: &mut RemotingCommand) -> Result<(), HookError> {
        self.sign_request(request);
        Ok(())
    }
}

/// The bytes ACL 1.0 signs: the values of all `fields` except `Signature`, sorted
/// by key in Java `String` order (UTF-16 code units), concatenated as UTF-8,
/// followed by `body`.
///
/// A server verifying a signature calls this with the fields it received (for
/// requests with `version <= 399` Java servers also skip `_UNIQUE_KEY_QUERY`; that
/// is the caller's business).
pub fn signature_content(fields: &ExtFields, body: Option<&[u8]>) -> Vec<u8> {
    let mut content = Vec::new();
    feed_content(fields, body, |chunk| content.extend_from_slice(chunk));
    content
}

/// `Base64(HmacSHA1(secret, signature_content(fields, body)))`: the value of the
/// `Signature` field (standard alphabet, with padding).
pub fn sign(fields: &ExtFields, body: Option<&[u8]>, secret: &[u8]) -> String {
    let mut mac = keyed_mac(secret);
    feed_content(fields, body, |chunk| mac.update(chunk));
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Feeds the signature content to `sink` in pieces, without building it.
fn feed_content(fields: &ExtFields, body: Option<&[u8]>, mut sink: impl FnMut(&[u8])) {
    let mut entries: Vec<(&str, &str)> = fields.iter().filter(|(k, _)| *k != SIGNATURE).collect();
    entries.sort_unstable_by(|(a, _), (b, _)| java_string_cmp(a, b));
    for (_, value) in entries {
        sink(value.as_bytes());
    }
    if let Some(body) = body {
        sink(body);
    }
}

/// Java `String.compareTo`: lexicographic over UTF-16 code units. It differs from
/// Rust's `str` order (code points) for characters above U+FFFF, whose surrogates
/// (0xD800..0xDFFF) sort before U+E000..U+FFFF.
fn java_string_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// An HMAC-SHA1 keyed with `secret` (any length).
///
/// HMAC hashes keys longer than the block size and pads shorter ones with zeros;
/// doing that here yields a block-sized key, so the infallible constructor can be
/// used and the result equals `Hmac::new_from_slice(secret)`.
fn keyed_mac(secret: &[u8]) -> HmacSha1 {
    let mut key = [0u8; SHA1_BLOCK];
    if secret.len() > SHA1_BLOCK {
        let digest = Sha1::digest(secret);
        key[..digest.len()].copy_from_slice(&digest);
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    HmacSha1::new(GenericArray::from_slice(&key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmq_protocol::RequestCode;

    const SECRET: &str = "12345678";

    fn fields(pairs: &[(&'static str, &str)]) -> ExtFields {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn acl_signer_test_vector() {
        // AclSignerTest: HmacSHA1("RocketMQ", key "12345678"), as the body of a
        // request without fields.
        let sig = sign(&ExtFields::new(), Some(b"RocketMQ"), SECRET.as_bytes());
        assert_eq!(sig, "IUc8rrO/0gDch8CjObLQsW2rsiA=");
    }

    #[test]
    fn probe_frame_vector() {
        let f = fields(&[("topic", "TBW102"), ("AccessKey", "rocketmq2")]);
        assert_eq!(signature_content(&f, None), b"rocketmq2TBW102");
        assert_eq!(
            sign(&f, None, SECRET.as_bytes()),
            "/u5P/wZUbhjanu4LM/UzEdo2u2I="
        );

        // The same through the hook, on a real request.
        let hook = AclHook::new(AclCredentials::new("rocketmq2", SECRET));
        let mut req = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC);
        req.ext_fields.insert("topic", "TBW102");
        hook.before_request("127.0.0.1:9876", &mut req).unwrap();
        assert_eq!(req.ext_fields.get(ACCESS_KEY), Some("rocketmq2"));
        assert_eq!(
            req.ext_fields.get(SIGNATURE),
            Some("/u5P/wZUbhjanu4LM/UzEdo2u2I=")
        );
        assert!(!req.ext_fields.contains_key(SECURITY_TOKEN));
    }

    #[test]
    fn default_authentication_context_builder_vector() {
        let f = fields(&[
            ("topic", "topic-test"),
            ("queueId", "0"),
            ("bornTimestamp", "117036786441330"),
            ("bname", "brokerName-1"),
            ("AccessKey", "abc"),
        ]);
        assert_eq!(
            String::from_utf8(signature_content(&f, None)).unwrap(),
            "abcbrokerName-11170367864413300topic-test"
        );
    }

    #[test]
    fn derived_vector_with_token_and_body() {
        let f = fields(&[
            ("a", "PG"),
            ("b", "TopicTest"),
            ("AccessKey", "rocketmq2"),
            ("SecurityToken", "tok"),
        ]);
        assert_eq!(
            signature_content(&f, Some(b"hello")),
            b"rocketmq2tokPGTopicTesthello"
        );
        assert_eq!(
            sign(&f, Some(b"hello"), SECRET.as_bytes()),
            "OVduRKF2Ld/6EH1Tth0EvdXBk5E="
        );

        let hook =
            AclHook::new(AclCredentials::new("rocketmq2", SECRET).with_security_token("tok"));
        let mut req = RemotingCommand::request(RequestCode::SEND_MESSAGE).body(&b"hello"[..]);
        req.ext_fields.insert("a", "PG");
        req.ext_fields.insert("b", "TopicTest");
        hook.before_request("b:10911", &mut req).unwrap();
        assert_eq!(req.ext_fields.get(SECURITY_TOKEN), Some("tok"));
        assert_eq!(
            req.ext_fields.get(SIGNATURE),
            Some("OVduRKF2Ld/6EH1Tth0EvdXBk5E=")
        );
    }

    #[test]
    fn long_keys_are_hashed_first() {
        // RFC 2202, HMAC-SHA1 test case 6 (key longer than the block size).
        let key = [0xaau8; 80];
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let expected = STANDARD.encode([
            0xaa, 0x4a, 0xe5, 0xe1, 0x52, 0x72, 0xd0, 0x0e, 0x95, 0x70, 0x56, 0x37, 0xce, 0x8a,
            0x3b, 0x55, 0xed, 0x40, 0x21, 0x12,
        ]);
        assert_eq!(sign(&ExtFields::new(), Some(data), &key), expected);
        // And a key of exactly one block is used as is.
        let key = [0x0bu8; 64];
        let mut reference = HmacSha1::new_from_slice(&key).unwrap();
        reference.update(b"x");
        assert_eq!(
            sign(&ExtFields::new(), Some(b"x"), &key),
            STANDARD.encode(reference.finalize().into_bytes())
        );
    }

    #[test]
    fn java_string_order() {
        // Uppercase before lowercase, and a shorter prefix first.
        let f = fields(&[("b", "4"), ("a", "3"), ("B", "2"), ("A", "1"), ("ab", "5")]);
        assert_eq!(signature_content(&f, None), b"12354");

        // UTF-16 code unit order: U+1F600 (surrogates 0xD83D 0xDE00) sorts before
        // U+FF21 (0xFF21), although its code point is larger.
        assert!('\u{1F600}' > '\u{FF21}');
        let f = fields(&[("\u{FF21}", "bmp"), ("\u{1F600}", "astral"), ("z", "ascii")]);
        assert_eq!(signature_content(&f, None), b"asciiastralbmp");
        assert_eq!(
            java_string_cmp("\u{1F600}", "\u{FF21}"),
            std::cmp::Ordering::Less
        );
        assert_eq!(java_string_cmp("é", "z"), std::cmp::Ordering::Greater);
    }

    #[test]
    fn signature_field_is_skipped_and_request_is_resigned() {
        let hook = AclHook::new(AclCredentials::new("ak", SECRET));
        let mut req = RemotingCommand::request(RequestCode::SEND_MESSAGE).opaque(1);
        req.ext_fields.insert("topic", "T");
        hook.before_request("b", &mut req).unwrap();
        let first = req.ext_fields.get(SIGNATURE).unwrap().to_owned();
        assert_eq!(
            first,
            sign(
                &fields(&[("AccessKey", "ak"), ("topic", "T")]),
                None,
                b"12345678"
            )
        );

        // A retry: new opaque, same fields → same signature (the old Signature
        // field is not part of the content, the opaque is not signed).
        req.opaque = 2;
        hook.before_request("b", &mut req).unwrap();
        assert_eq!(req.ext_fields.get(SIGNATURE), Some(first.as_str()));

        // A retry whose fields changed is signed again over the new fields.
        req.ext_fields.insert("queueId", "3");
        hook.before_request("b", &mut req).unwrap();
        let second = req.ext_fields.get(SIGNATURE).unwrap();
        assert_ne!(second, first);
        let mut expected = req.ext_fields.clone();
        expected.remove(SIGNATURE);
        assert_eq!(second, sign(&expected, None, b"12345678"));
    }

    #[test]
    fn empty_body_is_signed_like_no_body() {
        let f = fields(&[("AccessKey", "ak")]);
        assert_eq!(sign(&f, Some(b""), b"s"), sign(&f, None, b"s"));
    }

    #[test]
    fn debug_redacts_secret_and_token() {
        let creds = AclCredentials::new("myAccessKey", "superSecretValue42")
            .with_security_token("tokenValue77");
        let shown = format!("{creds:?}");
        assert!(shown.contains("myAccessKey"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
        assert!(!shown.contains("superSecretValue42"), "{shown}");
        assert!(!shown.contains("tokenValue77"), "{shown}");

        let hook = AclHook::new(creds.clone());
        for shown in [
            format!("{hook:?}"),
            format!("{hook:#?}"),
            format!("{creds:#?}"),
        ] {
            assert!(shown.contains("REDACTED"), "{shown}");
            assert!(!shown.contains("superSecretValue42"), "{shown}");
            assert!(!shown.contains("tokenValue77"), "{shown}");
        }
        // Without a token, Debug says so.
        let shown = format!("{:?}", AclCredentials::new("a", "superSecretValue42"));
        assert!(shown.contains("security_token: None"), "{shown}");
        assert!(!shown.contains("superSecretValue42"), "{shown}");
    }
}
