//! What a fake broker knows about its clients: heartbeats (which connection belongs
//! to which client id and producer group) and transaction ends.

use std::collections::BTreeMap;

use rmq_protocol::LanguageCode;
use rmq_protocol::header::end_transaction::EndTransactionRequestHeader;
use tokio::time::Instant;

use super::record::ConnectionId;

/// One HEART_BEAT a fake broker received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatRecord {
    /// The connection it came on (the broker pushes CHECK_TRANSACTION_STATE and
    /// PUSH_REPLY_MESSAGE_TO_CLIENT there).
    pub connection: ConnectionId,
    /// `clientID` of the body.
    pub client_id: String,
    /// `producerDataSet` group names, in order.
    pub producer_groups: Vec<String>,
    /// How many consumer groups the body listed.
    pub consumer_groups: usize,
    /// The request's language.
    pub language: LanguageCode,
    /// The request's version.
    pub version: i32,
    /// When.
    pub at: Instant,
}

/// What END_TRANSACTION did to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndTransactionOutcome {
    /// The half message was committed: a visible copy was appended.
    Committed,
    /// The half message was rolled back.
    RolledBack,
    /// `commitOrRollback` was 0 (unknown) or not a known value: nothing changed.
    Ignored,
    /// No half message awaiting an end at `commitLogOffset`.
    NotFound,
    /// The half message's producer group or queue offset does not match the header.
    Mismatch(String),
    /// The header could not be decoded.
    BadHeader(String),
}

/// One END_TRANSACTION a fake broker received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndTransactionRecord {
    /// The connection it came on.
    pub connection: ConnectionId,
    /// The decoded header (`None` when it could not be decoded).
    pub header: Option<EndTransactionRequestHeader>,
    /// The request's remark (the client's exception text, if any).
    pub remark: Option<String>,
    /// Whether it was one-way (the Java client always sends it one-way).
    pub oneway: bool,
    /// What it did.
    pub outcome: EndTransactionOutcome,
    /// When.
    pub at: Instant,
}

/// Connections by client id and by producer group, from heartbeats.
#[derive(Debug, Default)]
pub(crate) struct ClientRegistry {
    pub(crate) heartbeats: Vec<HeartbeatRecord>,
    pub(crate) by_client: BTreeMap<String, ConnectionId>,
    pub(crate) by_group: BTreeMap<String, ConnectionId>,
    pub(crate) end_transactions: Vec<EndTransactionRecord>,
}

impl ClientRegistry {
    pub(crate) fn heartbeat(&mut self, record: HeartbeatRecord) {
        self.by_client
            .insert(record.client_id.clone(), record.connection);
        for g in &record.producer_groups {
            self.by_group.insert(g.clone(), record.connection);
        }
        self.heartbeats.push(record);
    }

    /// UNREGISTER_CLIENT: forgets the client's group registration (or the client when
    /// no group is named).
    pub(crate) fn unregister(&mut self, client_id: &str, producer_group: Option<&str>) {
        let Some(conn) = self.by_client.get(client_id).copied() else {
            return;
        };
        match producer_group {
            Some(g) => {
                if self.by_group.get(g) == Some(&conn) {
                    self.by_group.remove(g);
                }
            }
            None => {
                self.by_client.remove(client_id);
                self.by_group.retain(|_, c| *c != conn);
            }
        }
    }

    /// A connection closed: the broker forgets its registrations.
    pub(crate) fn disconnected(&mut self, conn: ConnectionId) {
        self.by_client.retain(|_, c| *c != conn);
        self.by_group.retain(|_, c| *c != conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(conn: ConnectionId, client: &str, groups: &[&str]) -> HeartbeatRecord {
        HeartbeatRecord {
            connection: conn,
            client_id: client.into(),
            producer_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            consumer_groups: 0,
            language: LanguageCode::RUST,
            version: 479,
            at: Instant::now(),
        }
    }

    #[test]
    fn registry_tracks_latest_connection_and_forgets() {
        let mut r = ClientRegistry::default();
        r.heartbeat(hb(1, "c1", &["PG", "CLIENT_INNER_PRODUCER"]));
        r.heartbeat(hb(2, "c2", &["PG"]));
        assert_eq!(r.by_group.get("PG"), Some(&2));
        assert_eq!(r.by_client.get("c1"), Some(&1));
        r.unregister("c2", Some("PG"));
        assert_eq!(r.by_group.get("PG"), None);
        assert_eq!(r.by_client.get("c2"), Some(&2));
        r.disconnected(1);
        assert!(!r.by_client.contains_key("c1"));
        assert!(!r.by_group.contains_key("CLIENT_INNER_PRODUCER"));
        assert_eq!(r.heartbeats.len(), 2);
    }
}
