//! [`RouteCache`]: topic → `Arc<TopicPublishInfo>` snapshots, fetched once per
//! topic on first use, refreshed by a poller, kept when the name server fails.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rmq_protocol::route::TopicRouteData;
use rmq_remoting::RandomSource;
use tokio::sync::{OnceCell, broadcast};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::error::RouteError;
use crate::name_server::{NameServerClient, NameServerStats};
use crate::publish_info::TopicPublishInfo;

/// Java's default topic, the auto-create template (`TopicValidator.AUTO_CREATE_TOPIC_KEY_TOPIC`).
pub const DEFAULT_TOPIC: &str = "TBW102";

/// Java's `defaultTopicQueueNums`: queues per broker borrowed from the default topic.
pub const DEFAULT_TOPIC_QUEUE_NUMS: u32 = 4;

/// Settings of a [`RouteCache`].
#[derive(Clone, Debug)]
pub struct RouteCacheConfig {
    /// Time budget of one topic's refresh by [`RouteCache::poll_once`] (Java's
    /// `mqClientApiTimeout`, 3 s). Calls to [`RouteCache::get`] bring their own.
    pub request_timeout: Duration,
    /// Interval of the poller started by [`RouteCache::spawn_default_poller`]
    /// (Java's `pollNameServerInterval`, 30 s).
    pub poll_interval: Duration,
    /// A topic not asked for by [`RouteCache::get`] for this long is dropped from the
    /// cache at the next poll. Default 10 min.
    pub idle_eviction: Duration,
    /// Whether a topic the name server does not know borrows the default topic's
    /// route (Java's TBW102 fallback, protocol.md section 8.6). On by default.
    pub default_topic_fallback: bool,
    /// The default topic (Java's `createTopicKey`, `"TBW102"`).
    pub default_topic: String,
    /// Queues per broker borrowed from the default topic (Java's
    /// `defaultTopicQueueNums`, 4).
    pub default_topic_queue_nums: u32,
    /// Capacity of the [`RouteEvent`] channel; a receiver that falls further behind
    /// loses the oldest events (`RecvError::Lagged`). Default 64.
    pub event_capacity: usize,
    /// Where each new [`TopicPublishInfo`]'s round-robin counter starts (random, so
    /// that clients spread over the queues; seed it to replay a test run).
    pub random: RandomSource,
}

impl Default for RouteCacheConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(3),
            poll_interval: Duration::from_secs(30),
            idle_eviction: Duration::from_secs(600),
            default_topic_fallback: true,
            default_topic: DEFAULT_TOPIC.to_owned(),
            default_topic_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
            event_capacity: 64,
            random: RandomSource::default(),
        }
    }
}

/// A change of the cached routes, broadcast to [`RouteCache::subscribe`]rs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteEvent {
    /// A topic's route changed (or was fetched for the first time).
    RouteChanged {
        /// The topic.
        topic: String,
        /// Its new route version.
        version: u64,
    },
    /// These broker addresses are no longer in any cached route (a broker left a
    /// route, moved to another address, or its last topic was evicted): the owner of
    /// the connection pool may close their connections.
    BrokersRemoved {
        /// The addresses, sorted.
        addrs: Vec<String>,
    },
}

/// One cached topic, as seen by [`RouteCache::snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicRouteStats {
    /// The topic.
    pub topic: String,
    /// Route version: 0 before the first route, then +1 each time the parsed route
    /// actually changes (not on every refresh).
    pub version: u64,
    /// Publish queues of the current route (0 without one).
    pub queues: usize,
    /// Whether the current route is borrowed from the default topic.
    pub from_default_topic: bool,
    /// Time since the name server last confirmed a good route (`None`: never). Grows
    /// while the name servers are unreachable and the last good route is served.
    pub age: Option<Duration>,
    /// Failed fetches (transport errors, timeouts, errors and empty or invalid
    /// routes) since the topic entered the cache.
    pub failures: u64,
    /// Failed fetches since the last good one.
    pub consecutive_failures: u32,
    /// The last failure, cleared by a good fetch.
    pub last_error: Option<RouteError>,
    /// Time since [`RouteCache::get`] last asked for the topic.
    pub idle: Duration,
}

/// Counters and per-topic state of a [`RouteCache`], for the producer's stats.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteCacheSnapshot {
    /// Every cached topic, sorted by name.
    pub topics: Vec<TopicRouteStats>,
    /// Completed [`RouteCache::poll_once`] rounds.
    pub polls: u64,
    /// Route fetches that completed (each single flight counts once).
    pub fetches: u64,
    /// Fetches that failed (the last good route, if any, was kept).
    pub failures: u64,
    /// Topics evicted for being idle or removed.
    pub evictions: u64,
    /// Health of the name servers.
    pub name_servers: Vec<NameServerStats>,
}

/// What one [`RouteCache::poll_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollReport {
    /// Topics refreshed (after eviction).
    pub topics: usize,
    /// Topics whose route changed.
    pub changed: usize,
    /// Topics whose fetch failed (last good route kept), including topics not asked
    /// for because the name servers were unreachable earlier in the round.
    pub failed: usize,
    /// Topics evicted for being idle.
    pub evicted: usize,
}

type FetchResult = Result<Arc<TopicPublishInfo>, RouteError>;
type Flight = Arc<OnceCell<FetchResult>>;

#[derive(Debug)]
struct Entry {
    info: Option<Arc<TopicPublishInfo>>,
    version: u64,
    last_good: Option<Instant>,
    failures: u64,
    consecutive_failures: u32,
    last_error: Option<RouteError>,
    last_used: Instant,
    /// The fetch in progress, shared by every caller that needs it (single flight).
    flight: Option<Flight>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            info: None,
            version: 0,
            last_good: None,
            failures: 0,
            consecutive_failures: 0,
            last_error: None,
            last_used: now,
            flight: None,
        }
    }

    fn record_failure(&mut self, error: RouteError) {
        self.failures += 1;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_error = Some(error);
    }
}

#[derive(Debug, Default)]
struct State {
    topics: HashMap<String, Entry>,
    polls: u64,
    fetches: u64,
    failures: u64,
    evictions: u64,
}

impl State {
    /// Master addresses of every cached route.
    fn referenced_addrs(&self) -> BTreeSet<&str> {
        self.topics
            .values()
            .filter_map(|e| e.info.as_deref())
            .flat_map(|i| i.brokers().map(|(_, addr)| addr))
            .collect()
    }

    /// The addresses of `old` that no cached route references any more.
    fn unreferenced(&self, old: BTreeSet<String>) -> Vec<String> {
        if old.is_empty() {
            return Vec::new();
        }
        let referenced = self.referenced_addrs();
        old.into_iter()
            .filter(|a| !referenced.contains(a.as_str()))
            .collect()
    }
}

fn addrs_of(info: &TopicPublishInfo) -> impl Iterator<Item = String> + '_ {
    info.brokers().map(|(_, addr)| addr.to_owned())
}

struct Inner {
    ns: NameServerClient,
    config: RouteCacheConfig,
    state: Mutex<State>,
    events: broadcast::Sender<RouteEvent>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteCache")
            .field("config", &self.config)
            .field("topics", &lock(&self.state).topics.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Topic routes for a producer: `topic → Arc<TopicPublishInfo>`.
///
/// * [`get`](Self::get) returns the cached snapshot (one short lock, an `Arc`
///   clone) or, on a topic's first use, fetches its route with **single flight**:
///   concurrent first calls share one name-server request.
/// * When the name server does not know a topic and
///   [`default_topic_fallback`](RouteCacheConfig::default_topic_fallback) is on
///   (the default, as in Java), the topic borrows the default topic's (TBW102) route
///   with at most 4 queues per broker; the broker auto-creates the topic on the first
///   send, and a later poll replaces the borrowed route with the real one.
/// * [`poll_once`](Self::poll_once) refreshes every cached topic and evicts idle
///   ones; [`spawn_poller`](Self::spawn_poller) runs it periodically.
/// * On a name-server failure, timeout, empty route or invalid body the **last good
///   route is kept** and the failure is counted ([`snapshot`](Self::snapshot)).
/// * Each topic has a **route version**, bumped only when the parsed route (sorted)
///   actually changes. Changes are broadcast as [`RouteEvent`]s, including
///   [`RouteEvent::BrokersRemoved`] when an address leaves every cached route.
///
/// No lock is held across an `.await`. Cheap to clone; clones share the cache.
///
/// ```no_run
/// # async fn demo(pool: rmq_remoting::Pool) -> Result<(), rmq_route::RouteError> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rmq_route::{NameServerClient, NameServerConfig, RouteCache, RouteCacheConfig};
///
/// let ns = NameServerClient::from_addr_list(Arc::new(pool), "127.0.0.1:9876", NameServerConfig::default());
/// let cache = RouteCache::new(ns, RouteCacheConfig::default());
/// let _poller = cache.spawn_default_poller()?; // stops when dropped
/// let info = cache.get("TopicTest", Duration::from_secs(3)).await?;
/// let queue = info.next_queue().expect("a built info has queues");
/// println!("send to {queue} at {:?}", info.broker_addr(&queue.broker_name));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RouteCache {
    inner: Arc<Inner>,
}

/// A weak reference to a [`RouteCache`] (for the poller task, so that it ends when
/// every clone of the cache is gone).
#[derive(Debug)]
pub(crate) struct WeakRouteCache(Weak<Inner>);

impl WeakRouteCache {
    pub(crate) fn upgrade(&self) -> Option<RouteCache> {
        self.0.upgrade().map(|inner| RouteCache { inner })
    }
}

impl RouteCache {
    pub(crate) fn downgrade(&self) -> WeakRouteCache {
        WeakRouteCache(Arc::downgrade(&self.inner))
    }

    /// A cache that fetches routes through `ns`.
    pub fn new(ns: NameServerClient, config: RouteCacheConfig) -> Self {
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        Self {
            inner: Arc::new(Inner {
                ns,
                config,
                state: Mutex::new(State::default()),
                events,
            }),
        }
    }

    /// The name-server client (for [`set_addresses`](NameServerClient::set_addresses)).
    pub fn name_server(&self) -> &NameServerClient {
        &self.inner.ns
    }

    /// The settings.
    pub fn config(&self) -> &RouteCacheConfig {
        &self.inner.config
    }

    /// A receiver of every [`RouteEvent`] from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RouteEvent> {
        self.inner.events.subscribe()
    }

    /// The publish info of `topic`: the cached snapshot, or a fresh fetch within
    /// `timeout` on first use (or while no good route has been obtained yet).
    /// Marks the topic as used (see [`RouteCacheConfig::idle_eviction`]).
    ///
    /// # Errors
    ///
    /// Only when no route is cached: [`RouteError::TopicNotFound`] (with the
    /// fallback on: the default topic has no route either), the name-server errors of
    /// [`NameServerClient::get_route`], [`RouteError::Timeout`], or
    /// [`RouteError::NoWritableQueue`] / [`RouteError::NoMaster`] for a route a
    /// producer cannot send to.
    pub async fn get(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Arc<TopicPublishInfo>, RouteError> {
        let deadline = Instant::now() + timeout;
        loop {
            let flight = {
                let now = Instant::now();
                let mut st = lock(&self.inner.state);
                let entry = match st.topics.get_mut(topic) {
                    Some(entry) => entry,
                    None => st
                        .topics
                        .entry(topic.to_owned())
                        .or_insert_with(|| Entry::new(now)),
                };
                entry.last_used = now;
                if let Some(info) = &entry.info {
                    return Ok(info.clone());
                }
                entry
                    .flight
                    .get_or_insert_with(|| Arc::new(OnceCell::new()))
                    .clone()
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            // Boxed: only a miss gets here, and inline the wait's state would sit
            // in every sender's future (hundreds of bytes per send in flight).
            let (result, started_here) = Box::pin(self.run_flight(topic, flight, remaining)).await;
            // A fetch started by a caller with a shorter budget that ran out of it
            // says nothing about this caller's budget: fetch again with what is left.
            let borrowed_budget_ran_out = !started_here
                && result.as_ref().is_err_and(|e| {
                    matches!(e, RouteError::Timeout { .. })
                        || e.transport()
                            .is_some_and(rmq_remoting::RemotingError::is_timeout)
                });
            if !borrowed_budget_ran_out || Instant::now() >= deadline {
                return result;
            }
            debug!(
                topic,
                "joined fetch timed out on a shorter budget; fetching again"
            );
        }
    }

    /// The cached publish info of `topic`, marking the topic as used (as
    /// [`get`](Self::get) does), without fetching: `None` when no route is cached yet.
    /// For callers that must not wait (a send with a callback), which fall back to
    /// [`get`](Self::get) on `None`.
    pub fn get_cached(&self, topic: &str) -> Option<Arc<TopicPublishInfo>> {
        let now = Instant::now();
        let mut st = lock(&self.inner.state);
        let entry = st.topics.get_mut(topic)?;
        let info = entry.info.clone()?;
        entry.last_used = now;
        Some(info)
    }

    /// The cached publish info of `topic`, without fetching and without marking the
    /// topic as used.
    pub fn cached(&self, topic: &str) -> Option<Arc<TopicPublishInfo>> {
        lock(&self.inner.state)
            .topics
            .get(topic)
            .and_then(|e| e.info.clone())
    }

    /// The route version of `topic` (0: no route yet), if it is cached.
    pub fn version(&self, topic: &str) -> Option<u64> {
        lock(&self.inner.state).topics.get(topic).map(|e| e.version)
    }

    /// The cached topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = lock(&self.inner.state).topics.keys().cloned().collect();
        topics.sort();
        topics
    }

    /// Drops `topic` from the cache; returns whether it was cached. Broadcasts
    /// [`RouteEvent::BrokersRemoved`] for addresses no other route uses.
    pub fn remove(&self, topic: &str) -> bool {
        let (found, removed) = {
            let mut st = lock(&self.inner.state);
            match st.topics.remove(topic) {
                Some(entry) => {
                    st.evictions += 1;
                    let old = entry.info.as_deref().map(|i| addrs_of(i).collect());
                    (true, st.unreferenced(old.unwrap_or_default()))
                }
                None => (false, Vec::new()),
            }
        };
        self.emit_removed(removed);
        found
    }

    /// Counters and per-topic state.
    pub fn snapshot(&self) -> RouteCacheSnapshot {
        let now = Instant::now();
        let name_servers = self.inner.ns.stats();
        let st = lock(&self.inner.state);
        let mut topics: Vec<TopicRouteStats> = st
            .topics
            .iter()
            .map(|(topic, e)| TopicRouteStats {
                topic: topic.clone(),
                version: e.version,
                queues: e.info.as_ref().map_or(0, |i| i.queues().len()),
                from_default_topic: e.info.as_ref().is_some_and(|i| i.is_from_default_topic()),
                age: e.last_good.map(|t| now.saturating_duration_since(t)),
                failures: e.failures,
                consecutive_failures: e.consecutive_failures,
                last_error: e.last_error.clone(),
                idle: now.saturating_duration_since(e.last_used),
            })
            .collect();
        topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        RouteCacheSnapshot {
            topics,
            polls: st.polls,
            fetches: st.fetches,
            failures: st.failures,
            evictions: st.evictions,
            name_servers,
        }
    }

    /// One refresh round: evicts topics idle for
    /// [`idle_eviction`](RouteCacheConfig::idle_eviction), then refreshes every other
    /// cached topic, one after the other, each within
    /// [`request_timeout`](RouteCacheConfig::request_timeout).
    ///
    /// A failed refresh keeps the topic's last good route and counts the failure.
    /// When the name servers are unreachable (transport failure or timeout on every
    /// server), the remaining topics of the round are not asked for but counted as
    /// failed with the same error, so that one round takes about one request
    /// timeout, not one per topic. A topic whose fetch is already in flight (a
    /// concurrent [`get`](Self::get)) joins it.
    ///
    /// The default-topic fallback applies only to topics without a route or with a
    /// borrowed one: a topic that had its own route and is now unknown to the name
    /// server keeps that route (as in Java).
    pub async fn poll_once(&self) -> PollReport {
        let evicted = self.evict_idle();
        let topics = self.topics();
        let mut report = PollReport {
            topics: topics.len(),
            evicted,
            ..PollReport::default()
        };
        let timeout = self.inner.config.request_timeout;
        let mut unreachable: Option<RouteError> = None;
        for topic in &topics {
            if let Some(e) = &unreachable {
                let mut st = lock(&self.inner.state);
                if let Some(entry) = st.topics.get_mut(topic) {
                    entry.record_failure(e.clone());
                    st.failures += 1;
                }
                report.failed += 1;
                continue;
            }
            let (flight, before) = {
                let mut st = lock(&self.inner.state);
                let Some(entry) = st.topics.get_mut(topic) else {
                    continue;
                };
                let flight = entry
                    .flight
                    .get_or_insert_with(|| Arc::new(OnceCell::new()))
                    .clone();
                (flight, entry.version)
            };
            match self.run_flight(topic, flight, timeout).await.0 {
                Ok(_) => {
                    if self.version(topic).is_some_and(|v| v != before) {
                        report.changed += 1;
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    if e.is_unavailable() {
                        unreachable = Some(e);
                    }
                }
            }
        }
        lock(&self.inner.state).polls += 1;
        if report.failed > 0 || report.changed > 0 || report.evicted > 0 {
            debug!(?report, "route poll");
        }
        report
    }

    fn evict_idle(&self) -> usize {
        let idle = self.inner.config.idle_eviction;
        let now = Instant::now();
        let (count, removed) = {
            let mut st = lock(&self.inner.state);
            let stale: Vec<String> = st
                .topics
                .iter()
                .filter(|(_, e)| {
                    // A flight only the entry holds is not running (its fetch was
                    // abandoned); one that someone holds is, and keeps the topic.
                    let idle_flight = e.flight.as_ref().is_none_or(|f| Arc::strong_count(f) == 1);
                    idle_flight && now.saturating_duration_since(e.last_used) >= idle
                })
                .map(|(t, _)| t.clone())
                .collect();
            let mut old = BTreeSet::new();
            for topic in &stale {
                if let Some(entry) = st.topics.remove(topic) {
                    old.extend(entry.info.as_deref().into_iter().flat_map(addrs_of));
                }
            }
            st.evictions += stale.len() as u64;
            if !stale.is_empty() {
                info!(topics = ?stale, "idle topics evicted from the route cache");
            }
            (stale.len(), st.unreferenced(old))
        };
        self.emit_removed(removed);
        count
    }

    fn emit_removed(&self, addrs: Vec<String>) {
        if !addrs.is_empty() {
            info!(?addrs, "broker addresses left every cached route");
            // No receiver is not an error: nobody needs to close anything.
            let _ = self.inner.events.send(RouteEvent::BrokersRemoved { addrs });
        }
    }

    /// Runs (or joins) `flight` within `timeout` and clears it from the entry once
    /// it has a result. The flag says whether this call ran the fetch (rather than
    /// joining one started by another caller).
    async fn run_flight(
        &self,
        topic: &str,
        flight: Flight,
        timeout: Duration,
    ) -> (FetchResult, bool) {
        let mut started_here = false;
        // The fetch itself is boxed by the one caller that runs it: every other
        // caller waiting on the flight (at start-up, every send in flight) holds only
        // this small wait, not the fetch's state.
        let work = flight.get_or_init(|| {
            started_here = true;
            Box::pin(self.fetch_and_install(topic, timeout))
        });
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result.clone(),
            Err(_) => {
                let e = RouteError::Timeout {
                    topic: topic.to_owned(),
                    timeout,
                };
                // The fetch this call ran was abandoned at its deadline (its own
                // request budget ends at the same instant, so this timer can win):
                // count it as the failed fetch it is, as `install` would have.
                if started_here && !flight.initialized() {
                    let _ = self.install(topic, Err(e.clone()));
                }
                Err(e)
            }
        };
        if flight.initialized() {
            let mut st = lock(&self.inner.state);
            if let Some(entry) = st.topics.get_mut(topic)
                && entry
                    .flight
                    .as_ref()
                    .is_some_and(|f| Arc::ptr_eq(f, &flight))
            {
                entry.flight = None;
            }
        }
        (result, started_here)
    }

    /// Fetches `topic`'s route (with the default-topic fallback where it applies),
    /// builds its publish info and installs it. Runs inside a single flight.
    async fn fetch_and_install(&self, topic: &str, timeout: Duration) -> FetchResult {
        let allow_fallback = self.inner.config.default_topic_fallback
            && topic != self.inner.config.default_topic
            && lock(&self.inner.state)
                .topics
                .get(topic)
                .is_none_or(|e| e.info.as_ref().is_none_or(|i| i.is_from_default_topic()));
        let built =
            self.fetch(topic, timeout, allow_fallback)
                .await
                .and_then(|(route, borrowed)| {
                    let info = if borrowed {
                        TopicPublishInfo::from_default_topic_route(
                            topic,
                            &route,
                            self.inner.config.default_topic_queue_nums,
                        )
                    } else {
                        TopicPublishInfo::from_route(topic, &route)
                    }?;
                    info.reset_index(self.inner.config.random.next_u64() as u32);
                    Ok(info)
                });
        self.install(topic, built)
    }

    /// The route of `topic`, or the default topic's (`true`: borrowed).
    async fn fetch(
        &self,
        topic: &str,
        timeout: Duration,
        allow_fallback: bool,
    ) -> Result<(TopicRouteData, bool), RouteError> {
        let deadline = Instant::now() + timeout;
        match self.inner.ns.get_route(topic, timeout).await {
            Ok(route) => Ok((route, false)),
            Err(RouteError::TopicNotFound { .. }) if allow_fallback => {
                let default_topic = &self.inner.config.default_topic;
                let remaining = deadline.saturating_duration_since(Instant::now());
                debug!(
                    topic,
                    default_topic,
                    "topic unknown to the name server; trying the default topic's route"
                );
                match self.inner.ns.get_route(default_topic, remaining).await {
                    Ok(route) => Ok((route, true)),
                    Err(RouteError::TopicNotFound { .. }) => Err(RouteError::TopicNotFound {
                        topic: topic.to_owned(),
                    }),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Stores a fetch's outcome: a changed route replaces the snapshot (version +1,
    /// round-robin counter carried over, events); an unchanged one only refreshes the
    /// age; a failure keeps the last good route and is counted.
    fn install(&self, topic: &str, built: Result<TopicPublishInfo, RouteError>) -> FetchResult {
        let mut events = Vec::new();
        let result = {
            let now = Instant::now();
            let mut st = lock(&self.inner.state);
            st.fetches += 1;
            if built.is_err() {
                st.failures += 1;
            }
            let Some(entry) = st.topics.get_mut(topic) else {
                // Removed while fetching: answer the callers, cache nothing.
                return built.map(Arc::new);
            };
            match built {
                Err(e) => {
                    match &entry.info {
                        Some(_) => {
                            warn!(topic, error = %e, "route refresh failed; keeping the last good route")
                        }
                        None => debug!(topic, error = %e, "route fetch failed"),
                    }
                    entry.record_failure(e.clone());
                    Err(e)
                }
                Ok(info) => {
                    entry.last_good = Some(now);
                    entry.consecutive_failures = 0;
                    entry.last_error = None;
                    match &entry.info {
                        Some(old)
                            if old.route() == info.route()
                                && old.is_from_default_topic() == info.is_from_default_topic() =>
                        {
                            Ok(old.clone())
                        }
                        old => {
                            let old_addrs: BTreeSet<String> = match old {
                                Some(old) => {
                                    info.reset_index(old.current_index());
                                    addrs_of(old).collect()
                                }
                                None => BTreeSet::new(),
                            };
                            let info = Arc::new(info);
                            entry.info = Some(info.clone());
                            entry.version += 1;
                            let version = entry.version;
                            info!(
                                topic,
                                version,
                                queues = info.queues().len(),
                                from_default_topic = info.is_from_default_topic(),
                                "route changed"
                            );
                            events.push(RouteEvent::RouteChanged {
                                topic: topic.to_owned(),
                                version,
                            });
                            let removed = st.unreferenced(old_addrs);
                            if !removed.is_empty() {
                                events.push(RouteEvent::BrokersRemoved { addrs: removed });
                            }
                            Ok(info)
                        }
                    }
                }
            }
        };
        for event in events {
            let _ = self.inner.events.send(event);
        }
        result
    }
}
