//! [`NameServerClient`]: requests to a list of name servers with a sticky choice,
//! failover within the call's budget, and backoff of failed servers.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::route::TopicRouteData;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_remoting::Invoke;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::RouteError;

/// The environment variable [`NameServerClient::from_env`] reads (as Java does).
pub const NAMESRV_ADDR_ENV: &str = "NAMESRV_ADDR";

/// Settings of a [`NameServerClient`].
#[derive(Clone, Debug)]
pub struct NameServerConfig {
    /// Header serialization of the requests: the ROCKETMQ binary header by default
    /// (decisions.md), JSON selectable.
    pub serialize_type: SerializeType,
    /// Backoff of a name server after its first consecutive transport failure; it
    /// doubles per further failure up to [`backoff_max`](Self::backoff_max). While a
    /// server is in backoff it is tried only when every other server has failed
    /// within the same call. Default 1 s.
    pub backoff_min: Duration,
    /// Cap of the backoff. Default 30 s.
    pub backoff_max: Duration,
    /// Index of the server tried first, modulo the list length; `None` (default)
    /// picks a random one, as Java does, so that clients spread over the servers.
    pub first_index: Option<usize>,
}

impl Default for NameServerConfig {
    fn default() -> Self {
        Self {
            serialize_type: SerializeType::ROCKETMQ,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            first_index: None,
        }
    }
}

/// Parses a `NAMESRV_ADDR`-style list: addresses separated by `;`, surrounding
/// whitespace removed, empty items and repeats dropped, order kept.
///
/// ```
/// use rmq_route::parse_name_server_addrs;
///
/// assert_eq!(
///     parse_name_server_addrs(" 10.0.0.1:9876;10.0.0.2:9876;;10.0.0.1:9876; "),
///     ["10.0.0.1:9876", "10.0.0.2:9876"]
/// );
/// ```
pub fn parse_name_server_addrs(list: &str) -> Vec<String> {
    dedup(list.split(';').map(str::trim))
}

fn dedup<S: AsRef<str>>(addrs: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in addrs {
        let a = a.as_ref().trim();
        if !a.is_empty() && !out.iter().any(|o| o == a) {
            out.push(a.to_owned());
        }
    }
    out
}

/// Health of one name server.
#[derive(Clone, Debug, Default)]
struct Health {
    consecutive_failures: u32,
    backoff_until: Option<Instant>,
    requests: u64,
    failures: u64,
    last_error: Option<String>,
}

#[derive(Debug)]
struct State {
    addrs: Vec<String>,
    /// Index of the sticky server in `addrs`.
    current: usize,
    health: HashMap<String, Health>,
}

struct Inner {
    invoke: Arc<dyn Invoke>,
    config: NameServerConfig,
    state: Mutex<State>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameServerClient")
            .field("config", &self.config)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What one name server's answer means for a failover call.
enum Attempt<T> {
    /// A final answer (success or an error no other server would change).
    Done(Result<T, RouteError>),
    /// The server answered but could not help; try the next one.
    Next(RouteError),
}

/// One name server's health, for the producer's stats
/// ([`NameServerClient::stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NameServerStats {
    /// The address.
    pub addr: String,
    /// Whether it is the server requests go to first.
    pub current: bool,
    /// Remaining backoff after transport failures (`None`: not in backoff).
    pub backoff_remaining: Option<Duration>,
    /// Transport failures since its last answer.
    pub consecutive_failures: u32,
    /// Requests sent to it.
    pub requests: u64,
    /// Requests that failed at the transport.
    pub failures: u64,
    /// The last transport error, as text.
    pub last_error: Option<String>,
}

/// A client of one or more name servers. Owns no sockets: requests go through an
/// [`Invoke`] (normally the producer's connection pool).
///
/// * The first server is chosen at random (as Java does; see
///   [`NameServerConfig::first_index`]) and the client **sticks** to the last server
///   that answered.
/// * A request that fails at the transport (connect, timeout, closed connection)
///   **fails over** to the next server within the call's time budget: each server
///   gets an equal share of what is left, so one black-holed server cannot eat the
///   whole budget.
/// * A server that failed is put in exponential **backoff**
///   ([`NameServerConfig::backoff_min`] … [`backoff_max`](NameServerConfig::backoff_max)):
///   later calls skip it until the backoff ends, and try it only as a last resort
///   when every other server failed too.
/// * [`set_addresses`](Self::set_addresses) replaces the list at run time; removed
///   servers are never used again, not even by calls already in progress.
///
/// Cheap to clone; clones share the state.
///
/// ```no_run
/// # async fn demo(pool: rmq_remoting::Pool) -> Result<(), rmq_route::RouteError> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rmq_route::{NameServerClient, NameServerConfig};
///
/// let ns = NameServerClient::from_addr_list(Arc::new(pool), "10.0.0.1:9876;10.0.0.2:9876", NameServerConfig::default());
/// let route = ns.get_route("TopicTest", Duration::from_secs(3)).await?;
/// println!("{} brokers", route.broker_datas.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct NameServerClient {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NameServerClient {
    /// A client of `addrs` (trimmed; empty entries and repeats dropped). An empty
    /// list is allowed: requests then fail with [`RouteError::NoNameServer`] until
    /// [`set_addresses`](Self::set_addresses) provides some.
    pub fn new<S: AsRef<str>>(
        invoke: Arc<dyn Invoke>,
        addrs: impl IntoIterator<Item = S>,
        config: NameServerConfig,
    ) -> Self {
        let addrs = dedup(addrs);
        let current = Self::start_index(&config, addrs.len());
        Self {
            inner: Arc::new(Inner {
                invoke,
                config,
                state: Mutex::new(State {
                    addrs,
                    current,
                    health: HashMap::new(),
                }),
            }),
        }
    }

    /// A client of the servers in a `;`-separated list such as the value of
    /// `NAMESRV_ADDR` (see [`parse_name_server_addrs`]).
    pub fn from_addr_list(invoke: Arc<dyn Invoke>, list: &str, config: NameServerConfig) -> Self {
        Self::new(invoke, parse_name_server_addrs(list), config)
    }

    /// A client of the servers in the `NAMESRV_ADDR` environment variable. The only
    /// place this crate reads the environment.
    ///
    /// # Errors
    ///
    /// [`RouteError::NoNameServer`] when the variable is unset, not Unicode, or
    /// holds no address.
    pub fn from_env(invoke: Arc<dyn Invoke>, config: NameServerConfig) -> Result<Self, RouteError> {
        let list = std::env::var(NAMESRV_ADDR_ENV).map_err(|_| RouteError::NoNameServer)?;
        let addrs = parse_name_server_addrs(&list);
        if addrs.is_empty() {
            return Err(RouteError::NoNameServer);
        }
        Ok(Self::new(invoke, addrs, config))
    }

    fn start_index(config: &NameServerConfig, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        match config.first_index {
            Some(i) => i % len,
            None => (crate::random_u64() % len as u64) as usize,
        }
    }

    /// The settings.
    pub fn config(&self) -> &NameServerConfig {
        &self.inner.config
    }

    /// The configured addresses, in order.
    pub fn addresses(&self) -> Vec<String> {
        lock(&self.inner.state).addrs.clone()
    }

    /// The server requests go to first (the last one that answered), if any.
    pub fn current(&self) -> Option<String> {
        let st = lock(&self.inner.state);
        st.addrs.get(st.current).cloned()
    }

    /// Replaces the address list (trimmed, empty entries and repeats dropped) and
    /// returns the addresses that were removed, so that the owner of the connection
    /// pool can close their connections. The sticky server stays current if it is
    /// still listed; otherwise a new first server is chosen as at construction.
    /// Health of servers still listed is kept.
    pub fn set_addresses<S: AsRef<str>>(&self, addrs: impl IntoIterator<Item = S>) -> Vec<String> {
        let addrs = dedup(addrs);
        let mut st = lock(&self.inner.state);
        let current = st.addrs.get(st.current).cloned();
        let removed: Vec<String> = st
            .addrs
            .iter()
            .filter(|a| !addrs.contains(a))
            .cloned()
            .collect();
        st.health.retain(|a, _| addrs.contains(a));
        st.current = match current.and_then(|c| addrs.iter().position(|a| *a == c)) {
            Some(i) => i,
            None => Self::start_index(&self.inner.config, addrs.len()),
        };
        st.addrs = addrs;
        if !removed.is_empty() {
            debug!(?removed, "name-server addresses removed");
        }
        removed
    }

    /// Health of every configured server, in list order.
    pub fn stats(&self) -> Vec<NameServerStats> {
        let now = Instant::now();
        let st = lock(&self.inner.state);
        st.addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let h = st.health.get(addr).cloned().unwrap_or_default();
                NameServerStats {
                    addr: addr.clone(),
                    current: i == st.current,
                    backoff_remaining: h
                        .backoff_until
                        .filter(|u| *u > now)
                        .map(|u| u.duration_since(now)),
                    consecutive_failures: h.consecutive_failures,
                    requests: h.requests,
                    failures: h.failures,
                    last_error: h.last_error,
                }
            })
            .collect()
    }

    /// Queries `topic`'s route (GET_ROUTEINFO_BY_TOPIC with
    /// `acceptStandardJsonOnly=true`), failing over between servers within
    /// `timeout`.
    ///
    /// A server that answers SUCCESS with a body that does not parse, or with a code
    /// other than SUCCESS and TOPIC_NOT_EXIST, is not put in backoff but the next
    /// server is tried; the last error is returned when none helps.
    ///
    /// # Errors
    ///
    /// * [`RouteError::TopicNotFound`]: a server answered TOPIC_NOT_EXIST (17);
    /// * [`RouteError::NameServer`]: other response codes;
    /// * [`RouteError::InvalidRoute`]: the body is not a route;
    /// * [`RouteError::Transport`]: the last server tried failed at the transport;
    /// * [`RouteError::Timeout`]: the budget ran out before any server was tried;
    /// * [`RouteError::NoNameServer`]: no address configured.
    pub async fn get_route(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<TopicRouteData, RouteError> {
        let header = GetRouteInfoRequestHeader {
            topic: topic.to_owned(),
            accept_standard_json_only: Some(true),
        };
        let request = RemotingCommand::with_header(RequestCode::GET_ROUTEINFO_BY_TOPIC, &header)
            .serialize_type(self.inner.config.serialize_type);
        self.request_with_failover(topic, request, timeout, |addr, response| {
            let code = response.response_code();
            if code == ResponseCode::SUCCESS {
                match TopicRouteData::parse(response.body_bytes()) {
                    Ok(route) => {
                        for w in &route.warnings {
                            warn!(topic, addr, warning = %w, "route adjusted while parsing");
                        }
                        Attempt::Done(Ok(route))
                    }
                    Err(source) => Attempt::Next(RouteError::InvalidRoute {
                        topic: topic.to_owned(),
                        addr: addr.to_owned(),
                        source,
                    }),
                }
            } else if code == ResponseCode::TOPIC_NOT_EXIST {
                Attempt::Done(Err(RouteError::TopicNotFound {
                    topic: topic.to_owned(),
                }))
            } else {
                Attempt::Next(RouteError::NameServer {
                    addr: addr.to_owned(),
                    code,
                    remark: response.remark,
                })
            }
        })
        .await
    }

    /// Sends any request to the name servers with the same failover as
    /// [`get_route`](Self::get_route) and returns the first answer (whatever its
    /// response code) with the address that gave it. Used for e.g.
    /// GET_BROKER_CLUSTER_INFO; the request's serialize type is left as given.
    ///
    /// # Errors
    ///
    /// [`RouteError::Transport`], [`RouteError::Timeout`] or
    /// [`RouteError::NoNameServer`], as for `get_route`.
    pub async fn invoke(
        &self,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(String, RemotingCommand), RouteError> {
        let what = format!("request {}", request.code);
        self.request_with_failover(&what, request, timeout, |addr, response| {
            Attempt::Done(Ok((addr.to_owned(), response)))
        })
        .await
    }

    /// The order in which servers are tried: servers not in backoff from the
    /// sticky one on, then servers in backoff, soonest end first. The second value
    /// is the number of servers not in backoff.
    fn plan(&self) -> (Vec<String>, usize) {
        let now = Instant::now();
        let st = lock(&self.inner.state);
        let n = st.addrs.len();
        let mut ready = Vec::with_capacity(n);
        let mut waiting = Vec::new();
        for k in 0..n {
            let Some(addr) = st.addrs.get((st.current + k) % n) else {
                continue;
            };
            match st
                .health
                .get(addr)
                .and_then(|h| h.backoff_until)
                .filter(|until| *until > now)
            {
                Some(until) => waiting.push((until, addr.clone())),
                None => ready.push(addr.clone()),
            }
        }
        waiting.sort_by_key(|(until, _)| *until);
        let healthy = ready.len();
        ready.extend(waiting.into_iter().map(|(_, a)| a));
        (ready, healthy)
    }

    fn is_listed(&self, addr: &str) -> bool {
        lock(&self.inner.state).addrs.iter().any(|a| a == addr)
    }

    fn record_answer(&self, addr: &str) {
        let mut st = lock(&self.inner.state);
        if let Some(i) = st.addrs.iter().position(|a| a == addr) {
            st.current = i;
            let h = st.health.entry(addr.to_owned()).or_default();
            h.requests += 1;
            h.consecutive_failures = 0;
            h.backoff_until = None;
        }
    }

    fn record_failure(&self, addr: &str, error: &rmq_remoting::RemotingError) {
        let cfg = &self.inner.config;
        let mut st = lock(&self.inner.state);
        if !st.addrs.iter().any(|a| a == addr) {
            return;
        }
        let h = st.health.entry(addr.to_owned()).or_default();
        h.requests += 1;
        h.failures += 1;
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        let shift = h.consecutive_failures.saturating_sub(1).min(16);
        let backoff = cfg
            .backoff_min
            .saturating_mul(1u32 << shift)
            .min(cfg.backoff_max);
        h.backoff_until = Some(Instant::now() + backoff);
        h.last_error = Some(error.to_string());
    }

    async fn request_with_failover<T>(
        &self,
        what: &str,
        request: RemotingCommand,
        timeout: Duration,
        mut classify: impl FnMut(&str, RemotingCommand) -> Attempt<T>,
    ) -> Result<T, RouteError> {
        let deadline = Instant::now() + timeout;
        let (plan, healthy) = self.plan();
        if plan.is_empty() {
            return Err(RouteError::NoNameServer);
        }
        let total = plan.len();
        let mut last_error = None;
        for (k, addr) in plan.iter().enumerate() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            if !self.is_listed(addr) {
                continue;
            }
            // An equal share of what is left among the servers still to try in this
            // group (servers not in backoff first, then the last resorts).
            let left = if k < healthy { healthy - k } else { total - k };
            let budget = remaining / u32::try_from(left.max(1)).unwrap_or(u32::MAX);
            match self
                .inner
                .invoke
                .invoke(addr, request.clone(), budget)
                .await
            {
                Ok(response) => {
                    self.record_answer(addr);
                    match classify(addr, response) {
                        Attempt::Done(result) => return result,
                        Attempt::Next(e) => {
                            debug!(what, addr, error = %e, "name server could not answer; trying the next");
                            last_error = Some(e);
                        }
                    }
                }
                Err(source) => {
                    warn!(what, addr, error = %source, "name-server request failed");
                    self.record_failure(addr, &source);
                    last_error = Some(RouteError::Transport {
                        addr: addr.clone(),
                        source,
                    });
                }
            }
        }
        Err(last_error.unwrap_or_else(|| RouteError::Timeout {
            topic: what.to_owned(),
            timeout,
        }))
    }
}
