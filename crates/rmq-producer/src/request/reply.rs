//! Building the reply to a request message (the responder's side).

use bytes::Bytes;
use rmq_protocol::message::properties::keys;
use rmq_protocol::message::{Message, Properties, PropertyError};

/// The suffix of the reply topic: replies go to `<CLUSTER>_REPLY_TOPIC`.
pub const REPLY_TOPIC_SUFFIX: &str = "_REPLY_TOPIC";

/// The reply topic of a cluster (Java `MixAll.getReplyTopic`).
///
/// ```
/// assert_eq!(rmq_producer::request::reply_topic("DefaultCluster"), "DefaultCluster_REPLY_TOPIC");
/// ```
pub fn reply_topic(cluster: &str) -> String {
    format!("{cluster}{REPLY_TOPIC_SUFFIX}")
}

/// Why a reply message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The request lacks a property a reply needs: `CLUSTER` (added by the broker when
    /// it stored the request), `CORRELATION_ID` or `REPLY_TO_CLIENT` (added by
    /// [`Producer::request`](crate::Producer::request)). Usually the message is not a
    /// request, or it was not read back from a broker.
    #[error("cannot build a reply: the request message has no {0} property")]
    MissingProperty(&'static str),
    /// A copied property cannot be encoded.
    #[error("cannot build a reply: {0}")]
    Property(#[from] PropertyError),
}

/// Builds the reply to `request` (a request message as the responder read it from the
/// broker), as Java's `MessageUtil.createReplyMessage`: topic `<CLUSTER>_REPLY_TOPIC`,
/// `MSG_TYPE=reply`, and the request's `CORRELATION_ID`, `REPLY_TO_CLIENT` and `TTL`.
///
/// Send it with any producer's [`send`](crate::Producer::send): a message with
/// `MSG_TYPE=reply` goes out as SEND_REPLY_MESSAGE_V2 (325), and the broker pushes it to
/// the requester's connection.
///
/// ```
/// use rmq_producer::Message;
/// use rmq_producer::request::create_reply_message;
/// use rmq_protocol::message::keys;
///
/// // A request as a consumer reads it (the broker added CLUSTER when storing it).
/// let mut request = Message::new("orders", "how many?");
/// request.put_system_property(keys::CLUSTER, "DefaultCluster")?;
/// request.put_system_property(keys::CORRELATION_ID, "c-1")?;
/// request.put_system_property(keys::REPLY_TO_CLIENT, "10.0.0.7@4242#1")?;
/// request.put_system_property(keys::TTL, "3000")?;
///
/// let reply = create_reply_message(&request, "42")?;
/// assert_eq!(reply.topic(), "DefaultCluster_REPLY_TOPIC");
/// assert_eq!(reply.property(keys::MSG_TYPE), Some("reply"));
/// assert_eq!(reply.correlation_id(), Some("c-1"));
/// assert_eq!(reply.body().as_ref(), b"42");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_reply_message(
    request: &Message,
    body: impl Into<Bytes>,
) -> Result<Message, ReplyError> {
    let get = |key: &'static str| {
        request
            .property(key)
            .ok_or(ReplyError::MissingProperty(key))
    };
    let cluster = get(keys::CLUSTER)?;
    let correlation_id = get(keys::CORRELATION_ID)?;
    let reply_to = get(keys::REPLY_TO_CLIENT)?;
    let mut reply = Message::from_parts(reply_topic(cluster), body, 0, Properties::new());
    reply.put_system_property(keys::MSG_TYPE, keys::MSG_TYPE_REPLY)?;
    reply.put_system_property(keys::CORRELATION_ID, correlation_id)?;
    reply.put_system_property(keys::REPLY_TO_CLIENT, reply_to)?;
    if let Some(ttl) = request.property(keys::TTL) {
        reply.put_system_property(keys::TTL, ttl)?;
    }
    Ok(reply)
}

/// Whether `message` is a reply (`MSG_TYPE=reply`), which is sent with
/// SEND_REPLY_MESSAGE_V2.
pub(crate) fn is_reply(message: &Message) -> bool {
    message.property(keys::MSG_TYPE) == Some(keys::MSG_TYPE_REPLY)
}
