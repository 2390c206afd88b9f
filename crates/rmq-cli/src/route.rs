//! `rmq route`: a topic's route as the name server gives it, and the publish queues a
//! producer derives from it (Java's order: brokers sorted by name, writable queue data
//! with a master only, `0..writeQueueNums` each).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use rmq_protocol::route::TopicRouteData;
use rmq_route::TopicPublishInfo;
use serde::Serialize;

use crate::admin::Admin;
use crate::args::{Common, RouteArgs};
use crate::output::{self, ErrorObject, SCHEMA_ROUTE, print_line};

/// The `rmq.route/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct RouteDoc {
    /// `"rmq.route/1"`.
    pub schema: &'static str,
    /// The topic asked for.
    pub topic: String,
    /// The route's `orderTopicConf` (`"broker-a:4;broker-b:4"`), if any.
    pub order_topic_conf: Option<String>,
    /// The brokers of the route, sorted by name.
    pub brokers: Option<Vec<BrokerDoc>>,
    /// The queue data of the route, sorted by broker name.
    pub queue_datas: Option<Vec<QueueDataDoc>>,
    /// The publish queues in Java's order (index = position); empty when none.
    pub publish_queues: Option<Vec<QueueRef>>,
    /// Why there are no publish queues (no writable queue, no master), if so.
    pub publish_error: Option<String>,
    /// The error, when the route could not be read.
    pub error: Option<ErrorObject>,
}

/// One broker of a route.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerDoc {
    /// Broker name.
    pub broker: String,
    /// Cluster name.
    pub cluster: String,
    /// The master's address (broker id 0), if there is one.
    pub master: Option<String>,
    /// Every address by broker id (`"0"` is the master).
    pub addrs: BTreeMap<String, String>,
    /// The zone name, if the name server sent one.
    pub zone: Option<String>,
}

/// One queue-data entry of a route.
#[derive(Debug, Clone, Serialize)]
pub struct QueueDataDoc {
    /// Broker name.
    pub broker: String,
    /// Read queues.
    pub read_queue_nums: u32,
    /// Write queues.
    pub write_queue_nums: u32,
    /// Permission bits (6 = read + write).
    pub perm: i32,
    /// The permission as letters: `rw`, `r`, `w`, `-` (and `i` for inherit).
    pub perm_name: String,
    /// The topic sysFlag.
    pub topic_sys_flag: i32,
}

/// A queue: broker name and queue id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueRef {
    /// Broker name.
    pub broker: String,
    /// Queue id.
    pub queue_id: i32,
}

impl RouteDoc {
    fn failed(topic: &str, e: &anyhow::Error) -> Self {
        Self {
            schema: SCHEMA_ROUTE,
            topic: topic.to_owned(),
            order_topic_conf: None,
            brokers: None,
            queue_datas: None,
            publish_queues: None,
            publish_error: None,
            error: Some(ErrorObject::from_anyhow(e)),
        }
    }

    /// The document of a route.
    pub fn from_route(topic: &str, route: &TopicRouteData) -> Self {
        let (publish_queues, publish_error, route) =
            match TopicPublishInfo::from_route(topic, route) {
                Ok(info) => (
                    info.queues()
                        .iter()
                        .map(|q| QueueRef {
                            broker: q.broker_name.to_string(),
                            queue_id: q.queue_id,
                        })
                        .collect(),
                    None,
                    info.route().clone(),
                ),
                Err(e) => {
                    let mut sorted = route.clone();
                    sorted
                        .queue_datas
                        .sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
                    sorted
                        .broker_datas
                        .sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
                    (Vec::new(), Some(e.to_string()), sorted)
                }
            };
        Self {
            schema: SCHEMA_ROUTE,
            topic: topic.to_owned(),
            order_topic_conf: route.order_topic_conf.clone().filter(|c| !c.is_empty()),
            brokers: Some(
                route
                    .broker_datas
                    .iter()
                    .map(|b| BrokerDoc {
                        broker: b.broker_name.clone(),
                        cluster: b.cluster.clone(),
                        master: b.master_addr().map(str::to_owned),
                        addrs: b
                            .broker_addrs
                            .iter()
                            .map(|(id, addr)| (id.to_string(), addr.clone()))
                            .collect(),
                        zone: b.zone_name.clone(),
                    })
                    .collect(),
            ),
            queue_datas: Some(
                route
                    .queue_datas
                    .iter()
                    .map(|q| QueueDataDoc {
                        broker: q.broker_name.clone(),
                        read_queue_nums: q.read_queue_nums,
                        write_queue_nums: q.write_queue_nums,
                        perm: q.perm,
                        perm_name: output::perm_name(q.perm),
                        topic_sys_flag: q.topic_sys_flag,
                    })
                    .collect(),
            ),
            publish_queues: Some(publish_queues),
            publish_error,
            error: None,
        }
    }

    /// The text form.
    pub fn text(&self) -> Vec<String> {
        let mut lines = vec![format!("topic {}", self.topic)];
        if let Some(conf) = &self.order_topic_conf {
            lines.push(format!("order topic conf: {conf}"));
        }
        lines.push("brokers:".to_owned());
        for b in self.brokers.iter().flatten() {
            let others: Vec<String> = b
                .addrs
                .iter()
                .filter(|(id, _)| id.as_str() != "0")
                .map(|(id, a)| format!("{id}={a}"))
                .collect();
            let mut line = format!(
                "  {:<12} cluster {:<14} master {}",
                b.broker,
                b.cluster,
                b.master.as_deref().unwrap_or("-")
            );
            if !others.is_empty() {
                line.push_str(&format!("  slaves {}", others.join(" ")));
            }
            lines.push(line);
        }
        lines.push("queue data:".to_owned());
        for q in self.queue_datas.iter().flatten() {
            lines.push(format!(
                "  {:<12} read {:<3} write {:<3} perm {} ({})  sysflag {}",
                q.broker,
                q.read_queue_nums,
                q.write_queue_nums,
                q.perm_name,
                q.perm,
                q.topic_sys_flag
            ));
        }
        let queues = self.publish_queues.as_deref().unwrap_or_default();
        match &self.publish_error {
            Some(e) => lines.push(format!("publish queues: none ({e})")),
            None => {
                lines.push(format!("publish queues ({}, in Java order):", queues.len()));
                for (i, q) in queues.iter().enumerate() {
                    lines.push(format!("  {i:>3}  {}:{}", q.broker, q.queue_id));
                }
            }
        }
        lines
    }
}

/// Runs `rmq route`.
pub async fn run(common: &Common, args: RouteArgs) -> anyhow::Result<ExitCode> {
    let result = async {
        let admin = Admin::new(
            common.namesrv_addrs()?,
            common.header_format(),
            common.timeout,
        );
        let route = admin
            .route(&args.topic)
            .await
            .with_context(|| format!("reading the route of {}", args.topic))?;
        admin.close();
        anyhow::Ok(route)
    }
    .await;
    let route = match result {
        Ok(r) => r,
        Err(e) => return output::fail(args.json, &RouteDoc::failed(&args.topic, &e), &e),
    };
    let doc = RouteDoc::from_route(&args.topic, &route);
    if args.json {
        output::print_json(&doc)?;
    } else {
        for line in doc.text() {
            print_line(line);
        }
    }
    Ok(ExitCode::SUCCESS)
}
