//! Bounded serde visitors for route and cluster-info bodies.
//!
//! Every list and map is read through [`ListSeed`] / [`MapSeed`], which count
//! entries and stop at the first entry past the limit. Limit errors are stored in
//! the [`Ctx`] so the caller gets the typed [`RouteError`] back instead of the
//! stringly serde error that aborted the parse.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::de::SliceRead;
use serde_json::error::Category;

use super::cluster::ClusterInfo;
use super::data::{BrokerData, QueueData, RouteWarning, TopicRouteData};
use super::error::RouteError;
use super::lenient::quote_bare_integer_keys;
use super::limits::RouteLimits;

type JsonDe<'a> = serde_json::Deserializer<SliceRead<'a>>;

/// Reads one document's top-level value from a deserializer.
pub(crate) type ReadFn<T> = fn(&Ctx<'_>, &mut JsonDe<'_>) -> Result<T, serde_json::Error>;

/// Per-parse state shared by all seeds: the limits, the first limit error and the warnings.
pub(crate) struct Ctx<'l> {
    limits: &'l RouteLimits,
    error: Cell<Option<RouteError>>,
    warnings: Cell<Vec<RouteWarning>>,
}

impl<'l> Ctx<'l> {
    fn new(limits: &'l RouteLimits) -> Self {
        Self {
            limits,
            error: Cell::new(None),
            warnings: Cell::new(Vec::new()),
        }
    }

    /// Records `err` as the cause of the failure and returns a serde error to abort with.
    fn fail<E: de::Error>(&self, err: RouteError) -> E {
        let msg = err.to_string();
        self.error.set(Some(err));
        E::custom(msg)
    }

    fn warn(&self, warning: RouteWarning) {
        let mut all = self.warnings.take();
        all.push(warning);
        self.warnings.set(all);
    }

    /// Applies the queue-count policy: negative → 0, above the cap → the cap.
    fn queue_nums(&self, broker_name: &str, field: &'static str, raw: Option<i64>) -> u32 {
        let raw = raw.unwrap_or(0);
        let cap = self.limits.max_queue_nums_per_broker;
        if raw < 0 {
            self.warn(RouteWarning::NegativeQueueNums {
                broker_name: broker_name.to_owned(),
                field,
                value: raw,
            });
            0
        } else if raw > i64::from(cap) {
            self.warn(RouteWarning::QueueNumsCapped {
                broker_name: broker_name.to_owned(),
                field,
                value: raw,
                cap,
            });
            cap
        } else {
            u32::try_from(raw).unwrap_or(cap)
        }
    }
}

/// Why one parse attempt failed.
enum Failure {
    Limit(RouteError),
    Json(serde_json::Error),
}

impl Failure {
    fn into_route_error(self) -> RouteError {
        match self {
            Self::Limit(err) => err,
            Self::Json(err) => RouteError::from_json(&err),
        }
    }
}

/// Parses `body` strictly and, only if that fails with a syntax error and the body
/// has bare integer keys, once more after quoting them.
pub(crate) fn parse_document<T>(
    body: &[u8],
    limits: &RouteLimits,
    read: ReadFn<T>,
) -> Result<(T, Vec<RouteWarning>), RouteError> {
    if body.len() > limits.max_body_bytes {
        return Err(RouteError::TooLarge {
            len: body.len(),
            max: limits.max_body_bytes,
        });
    }
    match parse_once(body, limits, read) {
        Ok(parsed) => Ok(parsed),
        Err(Failure::Json(err)) if err.classify() == Category::Syntax => {
            match quote_bare_integer_keys(body) {
                Some(quoted) => {
                    parse_once(&quoted, limits, read).map_err(Failure::into_route_error)
                }
                None => Err(RouteError::from_json(&err)),
            }
        }
        Err(failure) => Err(failure.into_route_error()),
    }
}

fn parse_once<T>(
    body: &[u8],
    limits: &RouteLimits,
    read: ReadFn<T>,
) -> Result<(T, Vec<RouteWarning>), Failure> {
    let ctx = Ctx::new(limits);
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = read(&ctx, &mut de).and_then(|value| de.end().map(|()| value));
    match result {
        Ok(value) => Ok((value, ctx.warnings.take())),
        Err(err) => Err(match ctx.error.take() {
            Some(limit) => Failure::Limit(limit),
            None => Failure::Json(err),
        }),
    }
}

/// [`ReadFn`] for a topic route.
pub(crate) fn read_topic_route(
    ctx: &Ctx<'_>,
    de: &mut JsonDe<'_>,
) -> Result<TopicRouteData, serde_json::Error> {
    RouteSeed { ctx }.deserialize(de)
}

/// [`ReadFn`] for cluster info.
pub(crate) fn read_cluster_info(
    ctx: &Ctx<'_>,
    de: &mut JsonDe<'_>,
) -> Result<ClusterInfo, serde_json::Error> {
    ClusterSeed { ctx }.deserialize(de)
}

/// Every field name the parsers know; anything else is skipped.
#[derive(Clone, Copy)]
enum Field {
    OrderTopicConf,
    QueueDatas,
    BrokerDatas,
    BrokerName,
    ReadQueueNums,
    WriteQueueNums,
    Perm,
    TopicSysFlag,
    TopicSynFlag,
    Cluster,
    BrokerAddrs,
    EnableActingMaster,
    ZoneName,
    BrokerAddrTable,
    ClusterAddrTable,
    Other,
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(match v {
            "orderTopicConf" => Field::OrderTopicConf,
            "queueDatas" => Field::QueueDatas,
            "brokerDatas" => Field::BrokerDatas,
            "brokerName" => Field::BrokerName,
            "readQueueNums" => Field::ReadQueueNums,
            "writeQueueNums" => Field::WriteQueueNums,
            "perm" => Field::Perm,
            "topicSysFlag" => Field::TopicSysFlag,
            "topicSynFlag" => Field::TopicSynFlag,
            "cluster" => Field::Cluster,
            "brokerAddrs" => Field::BrokerAddrs,
            "enableActingMaster" => Field::EnableActingMaster,
            "zoneName" => Field::ZoneName,
            "brokerAddrTable" => Field::BrokerAddrTable,
            "clusterAddrTable" => Field::ClusterAddrTable,
            _ => Field::Other,
        })
    }
}

/// A queue count: any JSON integer (or integral float), saturated to `i64`.
struct QueueNum(i64);

impl<'de> de::Deserialize<'de> for QueueNum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_i64(QueueNumVisitor)
    }
}

struct QueueNumVisitor;

impl Visitor<'_> for QueueNumVisitor {
    type Value = QueueNum;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer queue count")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<QueueNum, E> {
        Ok(QueueNum(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<QueueNum, E> {
        Ok(QueueNum(i64::try_from(v).unwrap_or(i64::MAX)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<QueueNum, E> {
        if v.is_finite() && v.fract() == 0.0 {
            // `as` saturates at the i64 bounds.
            Ok(QueueNum(v as i64))
        } else {
            Err(E::invalid_type(de::Unexpected::Float(v), &self))
        }
    }
}

/// A bounded list; `null` reads as empty. The element after the `max`-th is
/// skipped without being stored and fails the parse with `too_many(max)`.
#[derive(Clone, Copy)]
struct ListSeed<'c, 'l, S> {
    ctx: &'c Ctx<'l>,
    max: usize,
    too_many: fn(usize) -> RouteError,
    elem: S,
}

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for ListSeed<'_, '_, S> {
    type Value = Vec<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for ListSeed<'_, '_, S> {
    type Value = Vec<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(64));
        loop {
            if out.len() >= self.max {
                return match seq.next_element::<IgnoredAny>()? {
                    None => Ok(out),
                    Some(_) => Err(self.ctx.fail((self.too_many)(self.max))),
                };
            }
            match seq.next_element_seed(self.elem)? {
                Some(value) => out.push(value),
                None => return Ok(out),
            }
        }
    }
}

/// A bounded map; `null` reads as empty. Duplicate keys keep the last value but
/// still count towards `max`.
#[derive(Clone, Copy)]
struct MapSeed<'c, 'l, K, S> {
    ctx: &'c Ctx<'l>,
    max: usize,
    too_many: fn(usize) -> RouteError,
    key: PhantomData<K>,
    value: S,
}

impl<'de, K, S> DeserializeSeed<'de> for MapSeed<'_, '_, K, S>
where
    K: de::Deserialize<'de> + Ord,
    S: DeserializeSeed<'de> + Copy,
{
    type Value = BTreeMap<K, S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, K, S> Visitor<'de> for MapSeed<'_, '_, K, S>
where
    K: de::Deserialize<'de> + Ord,
    S: DeserializeSeed<'de> + Copy,
{
    type Value = BTreeMap<K, S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        let mut seen = 0usize;
        while let Some(key) = map.next_key::<K>()? {
            if seen >= self.max {
                return Err(self.ctx.fail((self.too_many)(self.max)));
            }
            seen += 1;
            let value = map.next_value_seed(self.value)?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

fn missing_broker_name<E: de::Error>() -> E {
    E::missing_field("brokerName")
}

/// The top-level `TopicRouteData` object.
struct RouteSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for RouteSeed<'_, '_> {
    type Value = TopicRouteData;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<TopicRouteData, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RouteSeed<'_, '_> {
    type Value = TopicRouteData;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a topic route object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopicRouteData, A::Error> {
        let ctx = self.ctx;
        let mut route = TopicRouteData::default();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::OrderTopicConf => route.order_topic_conf = map.next_value()?,
                Field::QueueDatas => {
                    route.queue_datas = map.next_value_seed(ListSeed {
                        ctx,
                        max: ctx.limits.max_queue_datas,
                        too_many: |max| RouteError::TooManyQueueDatas { max },
                        elem: QueueSeed { ctx },
                    })?;
                }
                Field::BrokerDatas => {
                    route.broker_datas = map.next_value_seed(ListSeed {
                        ctx,
                        max: ctx.limits.max_brokers,
                        too_many: |max| RouteError::TooManyBrokers { max },
                        elem: BrokerSeed { ctx },
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(route)
    }
}

/// One `QueueData` object.
#[derive(Clone, Copy)]
struct QueueSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for QueueSeed<'_, '_> {
    type Value = QueueData;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<QueueData, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for QueueSeed<'_, '_> {
    type Value = QueueData;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a queue data object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<QueueData, A::Error> {
        let mut broker_name: Option<String> = None;
        let mut read: Option<QueueNum> = None;
        let mut write: Option<QueueNum> = None;
        let mut perm: Option<i32> = None;
        let mut sys_flag: Option<i32> = None;
        let mut syn_flag: Option<i32> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::BrokerName => broker_name = map.next_value()?,
                Field::ReadQueueNums => read = map.next_value()?,
                Field::WriteQueueNums => write = map.next_value()?,
                Field::Perm => perm = map.next_value()?,
                Field::TopicSysFlag => sys_flag = map.next_value()?,
                Field::TopicSynFlag => syn_flag = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let broker_name = broker_name.ok_or_else(missing_broker_name)?;
        let read_queue_nums = self
            .ctx
            .queue_nums(&broker_name, "readQueueNums", read.map(|q| q.0));
        let write_queue_nums =
            self.ctx
                .queue_nums(&broker_name, "writeQueueNums", write.map(|q| q.0));
        Ok(QueueData {
            broker_name,
            read_queue_nums,
            write_queue_nums,
            perm: perm.unwrap_or(0),
            // Both spellings present (never seen): the current one wins.
            topic_sys_flag: sys_flag.or(syn_flag).unwrap_or(0),
        })
    }
}

/// One `BrokerData` object.
#[derive(Clone, Copy)]
struct BrokerSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for BrokerSeed<'_, '_> {
    type Value = BrokerData;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<BrokerData, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BrokerSeed<'_, '_> {
    type Value = BrokerData;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a broker data object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BrokerData, A::Error> {
        let ctx = self.ctx;
        let mut cluster: Option<String> = None;
        let mut broker_name: Option<String> = None;
        let mut addrs: BTreeMap<i64, Option<String>> = BTreeMap::new();
        let mut acting: Option<bool> = None;
        let mut zone_name: Option<String> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Cluster => cluster = map.next_value()?,
                Field::BrokerName => broker_name = map.next_value()?,
                Field::BrokerAddrs => {
                    addrs = map.next_value_seed(MapSeed {
                        ctx,
                        max: ctx.limits.max_addrs_per_broker,
                        too_many: |max| RouteError::TooManyAddrs { max },
                        key: PhantomData::<i64>,
                        value: PhantomData::<Option<String>>,
                    })?;
                }
                Field::EnableActingMaster => acting = map.next_value()?,
                Field::ZoneName => zone_name = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(BrokerData {
            cluster: cluster.unwrap_or_default(),
            broker_name: broker_name.ok_or_else(missing_broker_name)?,
            broker_addrs: addrs
                .into_iter()
                .filter_map(|(id, addr)| Some((id, addr?)))
                .collect(),
            enable_acting_master: acting.unwrap_or(false),
            zone_name,
        })
    }
}

/// The top-level `ClusterInfo` object.
struct ClusterSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for ClusterSeed<'_, '_> {
    type Value = ClusterInfo;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ClusterInfo, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClusterSeed<'_, '_> {
    type Value = ClusterInfo;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a cluster info object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClusterInfo, A::Error> {
        let ctx = self.ctx;
        let max = ctx.limits.max_brokers;
        let mut info = ClusterInfo::default();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::BrokerAddrTable => {
                    info.broker_addr_table = map.next_value_seed(MapSeed {
                        ctx,
                        max,
                        too_many: |max| RouteError::TooManyBrokers { max },
                        key: PhantomData::<String>,
                        value: BrokerSeed { ctx },
                    })?;
                }
                Field::ClusterAddrTable => {
                    let table = map.next_value_seed(MapSeed {
                        ctx,
                        max,
                        too_many: |max| RouteError::TooManyClusters { max },
                        key: PhantomData::<String>,
                        value: ListSeed {
                            ctx,
                            max,
                            too_many: |max| RouteError::TooManyBrokers { max },
                            elem: PhantomData::<String>,
                        },
                    })?;
                    info.cluster_addr_table = table
                        .into_iter()
                        .map(|(cluster, names)| {
                            (cluster, names.into_iter().collect::<BTreeSet<_>>())
                        })
                        .collect();
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(info)
    }
}
