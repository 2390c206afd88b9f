//! [`Pool`]: one connection per address, hooks, GO_AWAY handling, and the
//! [`Invoke`] implementation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_protocol::{RemotingCommand, ResponseCode};
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tracing::debug;

use crate::connection::{Connection, ConnectionConfig, Handlers, Reply};
use crate::connector::Connector;
use crate::error::RemotingError;
use crate::handler::RequestHandler;
use crate::hook::RpcHook;
use crate::invoke::{BoxFuture, Invoke};
use crate::random::RandomSource;
use crate::stats::{Counters, PoolStats};

/// Settings of a [`Pool`].
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Settings of every connection.
    pub connection: ConnectionConfig,
    /// Upper bound of one connect attempt; a call's own budget may cut it shorter
    /// (Java: 3 s).
    pub connect_timeout: Duration,
    /// First reconnect backoff after a failed connect; doubles per failure.
    pub reconnect_backoff_min: Duration,
    /// Cap of the reconnect backoff.
    pub reconnect_backoff_max: Duration,
    /// The reconnect backoff's jitter (seed it to replay a test run).
    pub random: RandomSource,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            connection: ConnectionConfig::default(),
            connect_timeout: Duration::from_secs(3),
            reconnect_backoff_min: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(10),
            random: RandomSource::default(),
        }
    }
}

/// Connect failures of one address: connects are refused at once until `until`.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    last_error: String,
}

/// One address: the current connection (or its connect in progress) and backoff.
#[derive(Debug, Default)]
struct Entry {
    cell: Mutex<Arc<OnceCell<Connection>>>,
    backoff: Mutex<Backoff>,
    connected_before: AtomicBool,
}

#[derive(Debug)]
struct Inner {
    connector: Arc<dyn Connector>,
    config: PoolConfig,
    hooks: Vec<Arc<dyn RpcHook>>,
    handlers: Arc<Handlers>,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    counters: Arc<Counters>,
    closed: AtomicBool,
}

/// Connections keyed by address, behind the [`Invoke`] trait.
///
/// * single-flight connect: concurrent first calls to an address open one connection;
/// * every connect is bounded by `min(connect_timeout, the call's remaining budget)`;
/// * after a failed connect the address is in jittered exponential backoff: calls
///   fail at once with [`RemotingError::Connect`] (`NotSent`) instead of storming it;
/// * a closed or GO_AWAY'd connection is replaced on the next call; a GO_AWAY
///   response is retried once on a fresh connection;
/// * hooks run before every attempt and after every response;
/// * no lock is held across an `.await`.
///
/// Cheap to clone; clones share the connections.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// A pool that dials through `connector`.
    pub fn new(connector: Arc<dyn Connector>, config: PoolConfig) -> Self {
        Self::with_hooks(connector, config, Vec::new())
    }

    /// A pool with RPC hooks, run in order before each attempt (put a signing hook
    /// last).
    pub fn with_hooks(
        connector: Arc<dyn Connector>,
        config: PoolConfig,
        hooks: Vec<Arc<dyn RpcHook>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                connector,
                config,
                hooks,
                handlers: Arc::default(),
                entries: Mutex::new(HashMap::new()),
                counters: Arc::default(),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Serves server-initiated requests of the handler's codes on every connection
    /// of this pool (present and future).
    pub fn register_handler(&self, handler: Arc<dyn RequestHandler>) {
        self.inner.handlers.register(handler);
    }

    fn entry(&self, addr: &str) -> Arc<Entry> {
        let mut entries = crate::lock(&self.inner.entries);
        // Look up before inserting: the key is only allocated for a new address.
        if let Some(entry) = entries.get(addr) {
            return entry.clone();
        }
        entries.entry(addr.to_owned()).or_default().clone()
    }

    /// The live connection to `addr`, connecting (once, for all concurrent callers)
    /// if needed, within `deadline`.
    pub async fn connection(
        &self,
        addr: &str,
        deadline: Instant,
    ) -> Result<Connection, RemotingError> {
        let started = Instant::now();
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(RemotingError::Shutdown {
                addr: addr.to_owned(),
            });
        }
        let entry = self.entry(addr);
        loop {
            let cell = crate::lock(&entry.cell).clone();
            if let Some(conn) = cell.get() {
                if !conn.is_unusable() {
                    return Ok(conn.clone());
                }
                // Replace the dead connection's slot (unless someone already did).
                let mut slot = crate::lock(&entry.cell);
                if Arc::ptr_eq(&slot, &cell) {
                    *slot = Arc::new(OnceCell::new());
                }
                continue;
            }
            let connect = cell.get_or_try_init(|| self.connect(addr, &entry, deadline, started));
            return match tokio::time::timeout_at(deadline, connect).await {
                Ok(Ok(conn)) => Ok(conn.clone()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(RemotingError::Timeout {
                    addr: addr.to_owned(),
                    elapsed: started.elapsed(),
                    written: false,
                }),
            };
        }
    }

    async fn connect(
        &self,
        addr: &str,
        entry: &Entry,
        deadline: Instant,
        started: Instant,
    ) -> Result<Connection, RemotingError> {
        let now = Instant::now();
        {
            let backoff = crate::lock(&entry.backoff);
            if let Some(until) = backoff.until
                && now < until
            {
                return Err(RemotingError::Connect {
                    addr: addr.to_owned(),
                    reason: format!(
                        "in reconnect backoff for {:?} after {} failed connects (last: {})",
                        until - now,
                        backoff.failures,
                        backoff.last_error
                    ),
                });
            }
        }
        let limit = (now + self.inner.config.connect_timeout).min(deadline);
        let result = tokio::time::timeout_at(limit, self.inner.connector.connect(addr)).await;
        let error = match result {
            Ok(Ok(stream)) => {
                *crate::lock(&entry.backoff) = Backoff::default();
                Counters::add(&self.inner.counters.connects, 1);
                if entry.connected_before.swap(true, Ordering::AcqRel) {
                    Counters::add(&self.inner.counters.reconnects, 1);
                }
                debug!(%addr, "connected");
                return Ok(Connection::spawn_with(
                    stream,
                    addr.to_owned(),
                    self.inner.config.connection.clone(),
                    self.inner.handlers.clone(),
                    self.inner.counters.clone(),
                ));
            }
            Ok(Err(e)) => RemotingError::Connect {
                addr: addr.to_owned(),
                reason: e.to_string(),
            },
            Err(_) if limit == deadline => RemotingError::Timeout {
                addr: addr.to_owned(),
                elapsed: started.elapsed(),
                written: false,
            },
            Err(_) => RemotingError::Connect {
                addr: addr.to_owned(),
                reason: format!(
                    "connect timed out after {:?}",
                    self.inner.config.connect_timeout
                ),
            },
        };
        Counters::add(&self.inner.counters.connect_failures, 1);
        let mut backoff = crate::lock(&entry.backoff);
        backoff.failures = backoff.failures.saturating_add(1);
        backoff.until = Some(Instant::now() + self.backoff_delay(backoff.failures));
        backoff.last_error = error.to_string();
        debug!(%addr, failures = backoff.failures, error = %error, "connect failed");
        Err(error)
    }

    /// Jittered exponential backoff: a uniform draw from [d/2, d] where
    /// d = min(max, min · 2^(failures−1)).
    fn backoff_delay(&self, failures: u32) -> Duration {
        let cfg = &self.inner.config;
        let exp = cfg
            .reconnect_backoff_min
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(cfg.reconnect_backoff_max);
        let half = exp / 2;
        let span = u64::try_from(half.as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let jitter = cfg.random.below(span);
        half + Duration::from_micros(jitter)
    }

    fn run_hooks(&self, addr: &str, request: &mut RemotingCommand) -> Result<(), RemotingError> {
        for hook in &self.inner.hooks {
            hook.before_request(addr, request)
                .map_err(|e| RemotingError::Hook {
                    addr: addr.to_owned(),
                    reason: e.0,
                })?;
        }
        Ok(())
    }

    /// Request / response with a deadline. See [`Invoke::invoke`].
    pub async fn invoke_at(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        deadline: Instant,
    ) -> Result<RemotingCommand, RemotingError> {
        let mut retried_go_away = false;
        loop {
            self.run_hooks(addr, &mut request)?;
            let conn = self.connection(addr, deadline).await?;
            let Reply {
                response,
                request: sent,
            } = conn.invoke_returning(request, deadline).await?;
            for hook in &self.inner.hooks {
                hook.after_response(addr, &sent, &response);
            }
            if response.response_code() == ResponseCode::GO_AWAY {
                conn.mark_draining();
                if !retried_go_away {
                    debug!(%addr, "GO_AWAY: retrying once on a new connection");
                    retried_go_away = true;
                    request = sent;
                    continue;
                }
                return Err(RemotingError::GoAway {
                    addr: addr.to_owned(),
                });
            }
            return Ok(response);
        }
    }

    /// Whether the pool runs [`RpcHook`]s on its requests.
    pub fn has_hooks(&self) -> bool {
        !self.inner.hooks.is_empty()
    }

    /// Sends `request` to `addr` with `on_reply` taking its answer, without waiting
    /// for anything: only on a live connection with an in-flight slot and queued-byte
    /// room free, and when the pool has no [`RpcHook`]s. Otherwise hands both back
    /// untouched (the callback was not called), for the caller to use
    /// [`invoke_at`](Self::invoke_at). `on_reply` runs on the connection's driver
    /// task (see [`OnReply`](crate::OnReply)); a GO_AWAY answer reaches it as
    /// [`RemotingError::GoAway`] (no retry on a new connection here).
    ///
    /// This is what a send with a callback uses so that nothing but its callback is
    /// held while it waits for the broker: no task, no future.
    pub fn try_invoke_detached<R: crate::OnReply>(
        &self,
        addr: &str,
        request: RemotingCommand,
        deadline: Instant,
        on_reply: R,
    ) -> Result<(), Box<crate::NotTaken<R>>> {
        let live = if self.inner.hooks.is_empty() && !self.inner.closed.load(Ordering::Acquire) {
            let entry = crate::lock(&self.inner.entries).get(addr).cloned();
            entry.and_then(|e| crate::lock(&e.cell).get().cloned())
        } else {
            None
        };
        match live {
            Some(conn) => conn.try_invoke_detached(request, deadline, on_reply),
            None => Err(Box::new(crate::NotTaken { request, on_reply })),
        }
    }

    /// One-way request with a deadline. See [`Invoke::invoke_oneway`].
    pub async fn invoke_oneway_at(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        deadline: Instant,
    ) -> Result<(), RemotingError> {
        self.run_hooks(addr, &mut request)?;
        let conn = self.connection(addr, deadline).await?;
        conn.invoke_oneway(request, deadline).await
    }

    /// Closes the connection to `addr` (its waiters fail at once); the next call
    /// reconnects.
    pub fn close(&self, addr: &str) {
        let entry = crate::lock(&self.inner.entries).remove(addr);
        if let Some(entry) = entry
            && let Some(conn) = crate::lock(&entry.cell).get()
        {
            conn.close();
        }
    }

    /// Closes every connection and refuses new calls with
    /// [`RemotingError::Shutdown`].
    pub fn close_all(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let entries: Vec<_> = crate::lock(&self.inner.entries)
            .drain()
            .map(|(_, e)| e)
            .collect();
        for entry in entries {
            if let Some(conn) = crate::lock(&entry.cell).get() {
                conn.close();
            }
        }
    }

    /// Addresses with a live connection.
    pub fn connected_addrs(&self) -> Vec<String> {
        self.live_connections()
            .into_iter()
            .map(|c| c.addr().to_owned())
            .collect()
    }

    fn live_connections(&self) -> Vec<Connection> {
        let entries: Vec<_> = crate::lock(&self.inner.entries).values().cloned().collect();
        entries
            .iter()
            .filter_map(|e| crate::lock(&e.cell).get().cloned())
            .filter(|c| !c.is_closed())
            .collect()
    }

    /// A snapshot of the transport counters.
    pub fn stats(&self) -> PoolStats {
        let connections = self
            .live_connections()
            .iter()
            .map(Connection::stats)
            .collect();
        PoolStats::from_counters(&self.inner.counters, connections)
    }
}

impl Invoke for Pool {
    fn invoke<'a>(
        &'a self,
        addr: &'a str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<RemotingCommand, RemotingError>> {
        let deadline = Instant::now() + timeout;
        Box::pin(self.invoke_at(addr, request, deadline))
    }

    fn invoke_oneway<'a>(
        &'a self,
        addr: &'a str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RemotingError>> {
        let deadline = Instant::now() + timeout;
        Box::pin(self.invoke_oneway_at(addr, request, deadline))
    }
}
