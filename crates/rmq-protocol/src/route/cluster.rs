//! [`ClusterInfo`]: the GET_BROKER_CLUSTER_INFO (106) body.

use std::collections::{BTreeMap, BTreeSet};

use super::data::BrokerData;
use super::de;
use super::error::RouteError;
use super::limits::RouteLimits;

/// All brokers the name server knows, by broker name and by cluster (`ClusterInfo`).
///
/// Parsed with the same tolerance and bounds as [`TopicRouteData`](super::TopicRouteData):
/// bare integer keys in `brokerAddrs`, nulls and unknown fields are accepted;
/// `brokerAddrTable`, `clusterAddrTable` and each cluster's name list are bounded by
/// [`RouteLimits::max_brokers`], each broker's addresses by
/// [`RouteLimits::max_addrs_per_broker`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    /// `brokerAddrTable`: broker name → broker data.
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// `clusterAddrTable`: cluster name → the broker names in it (a Java `Set`;
    /// duplicates collapse).
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

impl ClusterInfo {
    /// Parses a GET_BROKER_CLUSTER_INFO body with [`RouteLimits::DEFAULT`].
    pub fn parse(body: &[u8]) -> Result<Self, RouteError> {
        Self::parse_with_limits(body, &RouteLimits::DEFAULT)
    }

    /// Parses a GET_BROKER_CLUSTER_INFO body within `limits`; errors as for
    /// [`TopicRouteData::parse_with_limits`](super::TopicRouteData::parse_with_limits),
    /// plus [`RouteError::TooManyClusters`]. Missing or `null` tables are empty.
    pub fn parse_with_limits(body: &[u8], limits: &RouteLimits) -> Result<Self, RouteError> {
        de::parse_document(body, limits, de::read_cluster_info).map(|(info, _)| info)
    }

    /// The broker data of every broker in `cluster` that is listed in `brokerAddrTable`.
    pub fn brokers_in_cluster<'a>(
        &'a self,
        cluster: &str,
    ) -> impl Iterator<Item = &'a BrokerData> + 'a {
        self.cluster_addr_table
            .get(cluster)
            .into_iter()
            .flatten()
            .filter_map(|name| self.broker_addr_table.get(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// peer.md §1.8, with the elided `broker-a` entry written out.
    const PEER_CLUSTER_INFO: &str = concat!(
        r#"{"brokerAddrTable":{"broker-b":{"cluster":"TestCluster","brokerName":"broker-b","brokerAddrs":{"0":"127.0.0.1:10921"},"zoneName":null,"enableActingMaster":false},"#,
        r#""broker-a":{"cluster":"TestCluster","brokerName":"broker-a","brokerAddrs":{"0":"127.0.0.1:10911"},"zoneName":null,"enableActingMaster":false}},"#,
        r#""clusterAddrTable":{"TestCluster":["broker-b","broker-a"]}}"#
    );

    fn expected() -> ClusterInfo {
        let mut info = ClusterInfo::default();
        for (name, addr) in [
            ("broker-a", "127.0.0.1:10911"),
            ("broker-b", "127.0.0.1:10921"),
        ] {
            info.broker_addr_table.insert(
                name.to_owned(),
                BrokerData::new("TestCluster", name).with_addr(0, addr),
            );
        }
        info.cluster_addr_table.insert(
            "TestCluster".to_owned(),
            ["broker-a", "broker-b"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
        );
        info
    }

    #[test]
    fn parses_peer_sample() {
        let info = ClusterInfo::parse(PEER_CLUSTER_INFO.as_bytes()).unwrap();
        assert_eq!(info, expected());
        let addrs: Vec<_> = info
            .brokers_in_cluster("TestCluster")
            .filter_map(|b| b.master_addr())
            .collect();
        assert_eq!(addrs, ["127.0.0.1:10911", "127.0.0.1:10921"]);
        assert_eq!(info.brokers_in_cluster("Nope").count(), 0);
    }

    #[test]
    fn to_json_round_trips() {
        let info = expected();
        let json = info.to_json();
        assert!(json.starts_with(
            r#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"127.0.0.1:10911"}"#
        ));
        assert_eq!(ClusterInfo::parse(json.as_bytes()).unwrap(), info);
    }

    #[test]
    fn accepts_bare_keys_nulls_and_unknown_fields() {
        let body = r#"{"brokerAddrTable":{"b":{"brokerAddrs":{0:"h:1",1:"h:2"},"brokerName":"b","cluster":"c","x":[1]}},
            "clusterAddrTable":{"c":["b","b"],"d":null},"extra":{"y":null}}"#;
        let info = ClusterInfo::parse(body.as_bytes()).unwrap();
        let b = &info.broker_addr_table["b"];
        assert_eq!(b.broker_addrs.keys().copied().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(info.cluster_addr_table["c"].len(), 1);
        assert!(info.cluster_addr_table["d"].is_empty());
        assert_eq!(ClusterInfo::parse(b"{}").unwrap(), ClusterInfo::default());
        assert_eq!(
            ClusterInfo::parse(br#"{"brokerAddrTable":null,"clusterAddrTable":null}"#).unwrap(),
            ClusterInfo::default()
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = RouteLimits {
            max_brokers: 2,
            ..RouteLimits::DEFAULT
        };
        let three = r#"{"brokerAddrTable":{"a":{"brokerName":"a"},"b":{"brokerName":"b"},"c":{"brokerName":"c"}}}"#;
        assert_eq!(
            ClusterInfo::parse_with_limits(three.as_bytes(), &limits),
            Err(RouteError::TooManyBrokers { max: 2 })
        );
        let clusters = r#"{"clusterAddrTable":{"x":[],"y":[],"z":[]}}"#;
        assert_eq!(
            ClusterInfo::parse_with_limits(clusters.as_bytes(), &limits),
            Err(RouteError::TooManyClusters { max: 2 })
        );
        let names = r#"{"clusterAddrTable":{"x":["a","b","c"]}}"#;
        assert_eq!(
            ClusterInfo::parse_with_limits(names.as_bytes(), &limits),
            Err(RouteError::TooManyBrokers { max: 2 })
        );
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for body in [
            "",
            "[]",
            "null",
            r#"{"brokerAddrTable":[]}"#,
            r#"{"brokerAddrTable":{"a":{}}}"#,
            "{",
        ] {
            assert!(
                matches!(
                    ClusterInfo::parse(body.as_bytes()),
                    Err(RouteError::Json { .. })
                ),
                "{body}"
            );
        }
    }
}
