//! [`Dialect`]: which server a fake imitates on the wire.

use rmq_protocol::code::version;
use rmq_protocol::{LanguageCode, SerializeType};

/// The header type of a fake server's responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseHeader {
    /// JSON, whatever the request used: what Java and rocketmq-rust servers do by
    /// default (protocol.md section 1.8).
    #[default]
    Json,
    /// The ROCKETMQ binary header (a server started with `ROCKETMQ_SERIALIZE_TYPE=ROCKETMQ`).
    Binary,
    /// The request's own header type.
    SameAsRequest,
}

impl ResponseHeader {
    /// The serialize type of the response to a request with `request` headers.
    pub fn for_request(self, request: SerializeType) -> SerializeType {
        match self {
            Self::Json => SerializeType::JSON,
            Self::Binary => SerializeType::ROCKETMQ,
            Self::SameAsRequest => request,
        }
    }
}

/// How a fake name server writes route bodies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RouteJson {
    /// Standard JSON with quoted broker-id keys (4.9.4+ / 5.x name servers):
    /// [`TopicRouteData::to_json`](rmq_protocol::route::TopicRouteData::to_json).
    #[default]
    Standard,
    /// fastjson's legacy output (≤ 4.9.3 name servers, or a low request version): bare
    /// integer keys and `topicSynFlag`:
    /// [`TopicRouteData::to_java_legacy_json`](rmq_protocol::route::TopicRouteData::to_java_legacy_json).
    JavaLegacy,
    /// [`JavaLegacy`](Self::JavaLegacy) for requests with a version below 401
    /// (4.9.4) and without `acceptStandardJsonOnly=true`, else
    /// [`Standard`](Self::Standard): what a 4.9.4+ Java name server does.
    ByRequestVersion,
}

impl RouteJson {
    /// Whether a request with this version and `acceptStandardJsonOnly` flag gets
    /// standard JSON.
    pub fn standard_for(self, request_version: i32, accept_standard_only: bool) -> bool {
        match self {
            Self::Standard => true,
            Self::JavaLegacy => false,
            Self::ByRequestVersion => request_version >= version::V4_9_4 || accept_standard_only,
        }
    }
}

/// Wire details that differ between server implementations and versions.
///
/// The default imitates a 5.x Java server: JSON responses, language `JAVA`,
/// version 479, standard route JSON, properties with the trailing separator, and the
/// strict JSON request-header check of the rocketmq-rust servers (a Java server is
/// lenient there, but a client that passes the strict check passes both).
///
/// ```
/// use rmq_testkit::fake::{Dialect, ResponseHeader, RouteJson};
///
/// let old_java = Dialect::java_4_8();
/// assert_eq!(old_java.route_json, RouteJson::JavaLegacy);
/// assert!(!old_java.properties_trailing_separator);
/// let binary = Dialect { response_header: ResponseHeader::Binary, ..Dialect::default() };
/// assert!(binary.strict_json_headers);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// The header type of responses.
    pub response_header: ResponseHeader,
    /// The language code put on responses and server-initiated requests.
    pub language: LanguageCode,
    /// The version put on responses and server-initiated requests.
    pub version: i32,
    /// Route body style (name servers).
    pub route_json: RouteJson,
    /// Whether stored-message properties end with the `0x02` separator (5.2+), as in
    /// PULL_MESSAGE and CHECK_TRANSACTION_STATE bodies (brokers).
    pub properties_trailing_separator: bool,
    /// Whether a JSON request header that the rocketmq-rust servers reject closes the
    /// connection without a reply ([`check_strict_json_header`](super::check_strict_json_header)).
    pub strict_json_headers: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Self {
            response_header: ResponseHeader::Json,
            language: LanguageCode::JAVA,
            version: version::V5_3_3,
            route_json: RouteJson::Standard,
            properties_trailing_separator: true,
            strict_json_headers: true,
        }
    }
}

impl Dialect {
    /// rocketmq-rust 1.0.0 servers (peer.md section 3): JSON responses with language
    /// `RUST` and version 474, standard routes, strict JSON headers.
    pub fn rocketmq_rust() -> Self {
        Self {
            language: LanguageCode::RUST,
            version: 474,
            ..Self::default()
        }
    }

    /// A Java 4.8 server: legacy route JSON (bare integer keys, `topicSynFlag`),
    /// properties without the trailing separator, lenient JSON headers, version 4.8.0
    /// (ordinal 373).
    pub fn java_4_8() -> Self {
        Self {
            version: 373,
            route_json: RouteJson::JavaLegacy,
            properties_trailing_separator: false,
            strict_json_headers: false,
            ..Self::default()
        }
    }
}
