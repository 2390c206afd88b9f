//! Wire codes as open newtypes: request codes, response codes, language codes,
//! serialize types, flag bits and protocol versions.
//!
//! Every code is a newtype over its wire integer with named constants for the
//! values this crate knows (protocol.md section 2). Unknown values round-trip
//! unchanged: a broker may answer with a code this client has never seen.
//! `Debug` prints the name when the value is known and the number otherwise.

use std::fmt;

macro_rules! open_code {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $( $(#[$cmeta:meta])* $cname:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $cname: Self = Self($value); )*

            /// The constant's name when the value is known to this crate.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($cname)), )*
                    _ => None,
                }
            }

            /// The raw wire value.
            pub const fn value(self) -> $repr {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", n, self.0),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{} ({})", n, self.0),
                    None => write!(f, "{}", self.0),
                }
            }
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> $repr {
                v.0
            }
        }
    };
}

open_code! {
    /// A request code (protocol.md section 2.1). Open: any `i32` is representable.
    RequestCode(i32) {
        /// Send with the V1 (long names) header.
        SEND_MESSAGE = 10,
        /// Pull messages from a queue.
        PULL_MESSAGE = 11,
        /// Query messages by key.
        QUERY_MESSAGE = 12,
        /// Create or update a topic on a broker.
        UPDATE_AND_CREATE_TOPIC = 17,
        /// Get the max offset of a queue (also the 5.x detector probe).
        GET_MAX_OFFSET = 30,
        /// Get the min offset of a queue.
        GET_MIN_OFFSET = 31,
        /// View a message by its commit-log offset.
        VIEW_MESSAGE_BY_ID = 33,
        /// Client heartbeat.
        HEART_BEAT = 34,
        /// Unregister a client on shutdown.
        UNREGISTER_CLIENT = 35,
        /// Commit / rollback a transaction (one-way).
        END_TRANSACTION = 37,
        /// Broker asks the producer for a transaction's state (one-way).
        CHECK_TRANSACTION_STATE = 39,
        /// Broker tells consumers the group changed (one-way).
        NOTIFY_CONSUMER_IDS_CHANGED = 40,
        /// Name-server route query.
        GET_ROUTEINFO_BY_TOPIC = 105,
        /// Name-server cluster info.
        GET_BROKER_CLUSTER_INFO = 106,
        /// Reset consumer offsets (consumer only).
        RESET_CONSUMER_CLIENT_OFFSET = 220,
        /// Consumer status (consumer only).
        GET_CONSUMER_STATUS_FROM_CLIENT = 221,
        /// Consumer running info (consumer only).
        GET_CONSUMER_RUNNING_INFO = 307,
        /// Consume a message directly (consumer only).
        CONSUME_MESSAGE_DIRECTLY = 309,
        /// Send with the V2 (single-letter) header. The Java default.
        SEND_MESSAGE_V2 = 310,
        /// Send a batch (V2 header with `m=true`).
        SEND_BATCH_MESSAGE = 320,
        /// Send a reply message (V1 header).
        SEND_REPLY_MESSAGE = 324,
        /// Send a reply message (V2 header).
        SEND_REPLY_MESSAGE_V2 = 325,
        /// Broker pushes a reply to the requester.
        PUSH_REPLY_MESSAGE_TO_CLIENT = 326,
        /// Recall a delay message (5.3.2+).
        RECALL_MESSAGE = 370,
    }
}

open_code! {
    /// A response code (protocol.md section 2.2). Open: any `i32` is representable.
    ResponseCode(i32) {
        /// Success.
        SUCCESS = 0,
        /// Generic broker error; retryable by Java's default policy.
        SYSTEM_ERROR = 1,
        /// Broker is busy (flow control).
        SYSTEM_BUSY = 2,
        /// The request code is not supported by the peer.
        REQUEST_CODE_NOT_SUPPORTED = 3,
        /// Transaction failed.
        TRANSACTION_FAILED = 4,
        /// Stored, but the disk flush timed out.
        FLUSH_DISK_TIMEOUT = 10,
        /// Stored on the master, no slave available.
        SLAVE_NOT_AVAILABLE = 11,
        /// Stored on the master, slave sync timed out.
        FLUSH_SLAVE_TIMEOUT = 12,
        /// Message rejected as illegal (size, properties, ...).
        MESSAGE_ILLEGAL = 13,
        /// Service not available (disk full, slave, shutting down).
        SERVICE_NOT_AVAILABLE = 14,
        /// Version not supported.
        VERSION_NOT_SUPPORTED = 15,
        /// No permission (broker not writable, forbidden topic).
        NO_PERMISSION = 16,
        /// Topic does not exist.
        TOPIC_NOT_EXIST = 17,
        /// Topic already exists.
        TOPIC_EXIST_ALREADY = 18,
        /// Pull: nothing found.
        PULL_NOT_FOUND = 19,
        /// Pull: retry immediately.
        PULL_RETRY_IMMEDIATELY = 20,
        /// Pull: offset moved.
        PULL_OFFSET_MOVED = 21,
        /// Query found nothing.
        QUERY_NOT_FOUND = 22,
        /// Subscription could not be parsed.
        SUBSCRIPTION_PARSE_FAILED = 23,
        /// Subscription does not exist.
        SUBSCRIPTION_NOT_EXIST = 24,
        /// Subscription is not the latest.
        SUBSCRIPTION_NOT_LATEST = 25,
        /// Subscription group does not exist.
        SUBSCRIPTION_GROUP_NOT_EXIST = 26,
        /// Filter data does not exist.
        FILTER_DATA_NOT_EXIST = 27,
        /// Filter data is not the latest.
        FILTER_DATA_NOT_LATEST = 28,
        /// Invalid parameter (5.3.2+).
        INVALID_PARAMETER = 29,
        /// Transaction should commit.
        TRANSACTION_SHOULD_COMMIT = 200,
        /// Transaction should roll back.
        TRANSACTION_SHOULD_ROLLBACK = 201,
        /// Transaction state unknown.
        TRANSACTION_STATE_UNKNOW = 202,
        /// Transaction state group wrong.
        TRANSACTION_STATE_GROUP_WRONG = 203,
        /// No buyer id.
        NO_BUYER_ID = 204,
        /// Not in the current unit.
        NOT_IN_CURRENT_UNIT = 205,
        /// Consumer not online.
        CONSUMER_NOT_ONLINE = 206,
        /// Consume message timeout.
        CONSUME_MSG_TIMEOUT = 207,
        /// No message.
        NO_MESSAGE = 208,
        /// Flow control.
        FLOW_CONTROL = 215,
        /// Not the leader for the queue (static topics).
        NOT_LEADER_FOR_QUEUE = 501,
        /// Illegal operation (late END_TRANSACTION).
        ILLEGAL_OPERATION = 604,
        /// The server is shutting down: reconnect and retry once (5.3.1+).
        GO_AWAY = 1500,
        /// ACL 2.0: user does not exist.
        USER_NOT_EXIST = 3001,
        /// ACL 2.0: policy does not exist.
        POLICY_NOT_EXIST = 3002,
    }
}

impl ResponseCode {
    /// Whether this is `SUCCESS`.
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }
}

open_code! {
    /// The language code of the sender (protocol.md section 1.5).
    LanguageCode(u8) {
        /// Java.
        JAVA = 0,
        /// C++.
        CPP = 1,
        /// .NET.
        DOTNET = 2,
        /// Python.
        PYTHON = 3,
        /// Delphi.
        DELPHI = 4,
        /// Erlang.
        ERLANG = 5,
        /// Ruby.
        RUBY = 6,
        /// Other.
        OTHER = 7,
        /// HTTP.
        HTTP = 8,
        /// Go.
        GO = 9,
        /// PHP.
        PHP = 10,
        /// OpenMessaging.
        OMS = 11,
        /// Rust (known to servers since 4.9.4).
        RUST = 12,
        /// Node.js (known to servers since 5.3.2).
        NODE_JS = 13,
    }
}

impl LanguageCode {
    /// The JSON spelling of a language: its upper-case enum name.
    ///
    /// Unknown codes are written as `"OTHER"`, which every server version knows.
    pub fn json_name(self) -> &'static str {
        self.name().unwrap_or("OTHER")
    }

    /// Parses the JSON spelling. Java's `Boolean`-style leniency does not apply to
    /// enum names; an unknown name gives `None`.
    pub fn from_json_name(name: &str) -> Option<Self> {
        (0u8..=13).map(Self).find(|c| c.name() == Some(name))
    }
}

open_code! {
    /// How a frame's header is serialized: the top byte of the header-length word.
    SerializeType(u8) {
        /// fastjson-compatible JSON header.
        JSON = 0,
        /// The ROCKETMQ binary header.
        ROCKETMQ = 1,
    }
}

impl SerializeType {
    /// The spelling used in the JSON header field `serializeTypeCurrentRPC`.
    pub fn json_name(self) -> &'static str {
        if self == Self::ROCKETMQ {
            "ROCKETMQ"
        } else {
            "JSON"
        }
    }
}

/// The `flag` word of a command (protocol.md section 1.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RpcFlags(pub i32);

impl RpcFlags {
    /// Bit 0: set on responses.
    pub const RESPONSE: i32 = 1;
    /// Bit 1: a one-way request that must not be answered.
    pub const ONEWAY: i32 = 2;

    /// Whether the response bit is set.
    pub const fn is_response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// Whether the one-way bit is set.
    pub const fn is_oneway(self) -> bool {
        self.0 & Self::ONEWAY != 0
    }
}

impl fmt::Debug for RpcFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpcFlags({:#x}", self.0)?;
        if self.is_response() {
            f.write_str(" RESPONSE")?;
        }
        if self.is_oneway() {
            f.write_str(" ONEWAY")?;
        }
        f.write_str(")")
    }
}

/// `MQVersion` ordinals that matter on the wire (protocol.md section 1.6).
pub mod version {
    /// 4.9.4: name servers answer standard JSON routes from this version on.
    pub const V4_9_4: i32 = 401;
    /// 5.3.1: servers answer GO_AWAY only to requests with a version above this.
    pub const V5_3_1: i32 = 475;
    /// 5.3.3: what this client advertises (decisions.md: a 5.3-era version above 475).
    pub const V5_3_3: i32 = 479;
    /// The version this crate puts on every request by default.
    pub const CURRENT: i32 = V5_3_3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_names_and_numbers() {
        assert_eq!(format!("{:?}", ResponseCode::GO_AWAY), "GO_AWAY(1500)");
        assert_eq!(format!("{:?}", ResponseCode(9999)), "ResponseCode(9999)");
        assert_eq!(
            format!("{:?}", RequestCode::SEND_MESSAGE_V2),
            "SEND_MESSAGE_V2(310)"
        );
        assert_eq!(format!("{}", RequestCode(77)), "77");
    }

    #[test]
    fn language_names_round_trip() {
        for v in 0u8..=13 {
            let c = LanguageCode(v);
            assert_eq!(LanguageCode::from_json_name(c.json_name()), Some(c));
        }
        assert_eq!(LanguageCode(200).json_name(), "OTHER");
        assert_eq!(LanguageCode::from_json_name("rust"), None);
    }

    #[test]
    fn flags() {
        assert!(RpcFlags(1).is_response());
        assert!(RpcFlags(2).is_oneway());
        assert!(!RpcFlags(0).is_response());
    }
}
