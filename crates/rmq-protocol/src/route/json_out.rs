//! JSON writers for routes and cluster info (used by fake name servers in tests).
//!
//! Fields are written in alphabetical order, like fastjson's `SortField` /
//! `MapSortField` output of a Java name server; `None` fields are omitted.

use std::fmt::Write as _;

use super::cluster::ClusterInfo;
use super::data::{BrokerData, QueueData, TopicRouteData};

/// Which dialect to write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// Standard JSON as 4.9.4+ / 5.x name servers send it.
    Standard,
    /// fastjson default output of ≤ 4.8.x name servers: bare integer keys, `topicSynFlag`.
    JavaLegacy,
}

impl TopicRouteData {
    /// Standard JSON, as a 5.x name server sends it for `version >= 401`:
    /// quoted broker-id keys, `topicSysFlag`, fields sorted by name,
    /// `"filterServerTable":{}`, `None` fields omitted. `warnings` are not written.
    ///
    /// The 5.2.0 capture of protocol.md §8.2 is reproduced byte for byte.
    pub fn to_json(&self) -> String {
        write_route(self, Dialect::Standard)
    }

    /// The non-standard JSON of pre-4.9.4 name servers (protocol.md §8.3):
    /// **bare** integer keys in `brokerAddrs` (`{0:"10.2.3.117:10911"}`) and
    /// `topicSynFlag` instead of `topicSysFlag`. `enableActingMaster` is written only
    /// when true and `zoneName` only when set, so a default broker looks like 4.8 output.
    pub fn to_java_legacy_json(&self) -> String {
        write_route(self, Dialect::JavaLegacy)
    }
}

impl ClusterInfo {
    /// Standard JSON for a GET_BROKER_CLUSTER_INFO body:
    /// `{"brokerAddrTable":{name: BrokerData},"clusterAddrTable":{cluster: [names]}}`,
    /// maps and name lists sorted.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + 128 * self.broker_addr_table.len());
        out.push_str("{\"brokerAddrTable\":{");
        for (i, (name, broker)) in self.broker_addr_table.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str_lit(&mut out, name);
            out.push(':');
            write_broker(&mut out, broker, Dialect::Standard);
        }
        out.push_str("},\"clusterAddrTable\":{");
        for (i, (cluster, names)) in self.cluster_addr_table.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str_lit(&mut out, cluster);
            out.push_str(":[");
            for (j, name) in names.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_str_lit(&mut out, name);
            }
            out.push(']');
        }
        out.push_str("}}");
        out
    }
}

fn write_route(route: &TopicRouteData, dialect: Dialect) -> String {
    let mut out =
        String::with_capacity(64 + 160 * (route.broker_datas.len() + route.queue_datas.len()));
    out.push_str("{\"brokerDatas\":[");
    for (i, broker) in route.broker_datas.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_broker(&mut out, broker, dialect);
    }
    out.push_str("],\"filterServerTable\":{}");
    if let Some(conf) = &route.order_topic_conf {
        out.push_str(",\"orderTopicConf\":");
        push_str_lit(&mut out, conf);
    }
    out.push_str(",\"queueDatas\":[");
    for (i, queue) in route.queue_datas.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_queue(&mut out, queue, dialect);
    }
    out.push_str("]}");
    out
}

fn write_broker(out: &mut String, broker: &BrokerData, dialect: Dialect) {
    out.push_str("{\"brokerAddrs\":{");
    for (i, (id, addr)) in broker.broker_addrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match dialect {
            Dialect::Standard => {
                let _ = write!(out, "\"{id}\":");
            }
            Dialect::JavaLegacy => {
                let _ = write!(out, "{id}:");
            }
        }
        push_str_lit(out, addr);
    }
    out.push_str("},\"brokerName\":");
    push_str_lit(out, &broker.broker_name);
    out.push_str(",\"cluster\":");
    push_str_lit(out, &broker.cluster);
    if dialect == Dialect::Standard || broker.enable_acting_master {
        out.push_str(if broker.enable_acting_master {
            ",\"enableActingMaster\":true"
        } else {
            ",\"enableActingMaster\":false"
        });
    }
    if let Some(zone) = &broker.zone_name {
        out.push_str(",\"zoneName\":");
        push_str_lit(out, zone);
    }
    out.push('}');
}

fn write_queue(out: &mut String, queue: &QueueData, dialect: Dialect) {
    out.push_str("{\"brokerName\":");
    push_str_lit(out, &queue.broker_name);
    let flag_name = match dialect {
        Dialect::Standard => "topicSysFlag",
        Dialect::JavaLegacy => "topicSynFlag",
    };
    let _ = write!(
        out,
        ",\"perm\":{},\"readQueueNums\":{},\"{flag_name}\":{},\"writeQueueNums\":{}}}",
        queue.perm, queue.read_queue_nums, queue.topic_sys_flag, queue.write_queue_nums
    );
}

/// Appends `s` as a JSON string literal (RFC 8259 escaping; non-ASCII kept as UTF-8).
fn push_str_lit(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::push_str_lit;

    #[test]
    fn string_escaping_round_trips_through_serde_json() {
        for s in [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "ctl\u{1}\u{1f}\n\r\t",
            "ünï\u{10FFFF}",
            "{0:\"x\"}",
        ] {
            let mut out = String::new();
            push_str_lit(&mut out, s);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }
}
