//! A scripted [`Invoke`]: name servers and brokers as plain data, calls counted per
//! address. Time passes only through `tokio::time::sleep`, so tests run with paused
//! time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmq_protocol::header::get_max_offset::GetMaxOffsetRequestHeader;
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::{BoxFuture, Invoke, RemotingError};

/// How an address behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// Answers from the scripted routes (name server) or the probe reply (broker).
    Up,
    /// Connect refused at once.
    Down,
    /// Accepts the request and never answers: the call times out.
    Blackhole,
}

/// A name server's answer for one topic.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    Route(TopicRouteData),
    /// SUCCESS with this raw body.
    Body(Vec<u8>),
    /// Any response code with a remark.
    Code(ResponseCode),
}

#[derive(Debug, Default)]
struct State {
    nodes: HashMap<String, Node>,
    /// Topic → reply; a topic not listed gets TOPIC_NOT_EXIST.
    replies: HashMap<String, Reply>,
    /// Per-address overrides of `replies`.
    replies_at: HashMap<(String, String), Reply>,
    /// Code a broker answers GET_MAX_OFFSET with.
    probe_code: HashMap<String, ResponseCode>,
    calls: HashMap<String, usize>,
    log: Vec<(String, RemotingCommand)>,
    delay: Duration,
}

/// The fake. Cheap to clone; clones share the script.
#[derive(Clone, Debug, Default)]
pub(crate) struct FakeInvoke {
    state: Arc<Mutex<State>>,
}

pub(crate) fn broker(name: &str, addr: &str) -> BrokerData {
    BrokerData::new("DefaultCluster", name).with_addr(0, addr)
}

/// A route with `queues` read/write queues (perm 6) on each `(name, addr)` broker.
pub(crate) fn route(brokers: &[(&str, &str)], queues: u32) -> TopicRouteData {
    TopicRouteData {
        queue_datas: brokers
            .iter()
            .map(|(n, _)| QueueData::new(*n, queues, queues, 6))
            .collect(),
        broker_datas: brokers.iter().map(|(n, a)| broker(n, a)).collect(),
        ..TopicRouteData::default()
    }
}

impl FakeInvoke {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub(crate) fn arc(&self) -> Arc<dyn Invoke> {
        Arc::new(self.clone())
    }

    pub(crate) fn set_node(&self, addr: &str, node: Node) {
        self.lock().nodes.insert(addr.to_owned(), node);
    }

    pub(crate) fn set_reply(&self, topic: &str, reply: Reply) {
        self.lock().replies.insert(topic.to_owned(), reply);
    }

    pub(crate) fn set_route(&self, topic: &str, route: TopicRouteData) {
        self.set_reply(topic, Reply::Route(route));
    }

    pub(crate) fn set_reply_at(&self, addr: &str, topic: &str, reply: Reply) {
        self.lock()
            .replies_at
            .insert((addr.to_owned(), topic.to_owned()), reply);
    }

    pub(crate) fn remove_route(&self, topic: &str) {
        self.lock().replies.remove(topic);
    }

    pub(crate) fn set_probe_code(&self, addr: &str, code: ResponseCode) {
        self.lock().probe_code.insert(addr.to_owned(), code);
    }

    /// Delay of every answer (so concurrent calls overlap).
    pub(crate) fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    pub(crate) fn calls(&self, addr: &str) -> usize {
        self.lock().calls.get(addr).copied().unwrap_or(0)
    }

    pub(crate) fn total_calls(&self) -> usize {
        self.lock().calls.values().sum()
    }

    /// Topics asked for, in order, with the address asked.
    pub(crate) fn route_requests(&self) -> Vec<(String, String)> {
        self.lock()
            .log
            .iter()
            .filter(|(_, r)| r.request_code() == RequestCode::GET_ROUTEINFO_BY_TOPIC)
            .map(|(a, r)| {
                let h: GetRouteInfoRequestHeader = r.decode_header().unwrap();
                (a.clone(), h.topic)
            })
            .collect()
    }

    pub(crate) fn log(&self) -> Vec<(String, RemotingCommand)> {
        self.lock().log.clone()
    }

    pub(crate) fn reset_calls(&self) {
        let mut st = self.lock();
        st.calls.clear();
        st.log.clear();
    }

    fn answer(&self, addr: &str, request: &RemotingCommand) -> RemotingCommand {
        let st = self.lock();
        let code = request.request_code();
        if code == RequestCode::GET_MAX_OFFSET {
            let _: GetMaxOffsetRequestHeader = request.decode_header().unwrap();
            let code = st
                .probe_code
                .get(addr)
                .copied()
                .unwrap_or(ResponseCode::SUCCESS);
            return RemotingCommand::response_to(request, code);
        }
        if code != RequestCode::GET_ROUTEINFO_BY_TOPIC {
            return RemotingCommand::response_to(request, ResponseCode::REQUEST_CODE_NOT_SUPPORTED);
        }
        let h: GetRouteInfoRequestHeader = request.decode_header().unwrap();
        let reply = st
            .replies_at
            .get(&(addr.to_owned(), h.topic.clone()))
            .or_else(|| st.replies.get(&h.topic));
        match reply {
            None => RemotingCommand::response_to(request, ResponseCode::TOPIC_NOT_EXIST).remark(
                format!(
                    "No topic route info in name server for the topic: {}",
                    h.topic
                ),
            ),
            Some(Reply::Route(r)) => {
                RemotingCommand::response_to(request, ResponseCode::SUCCESS).body(r.to_json())
            }
            Some(Reply::Body(b)) => {
                RemotingCommand::response_to(request, ResponseCode::SUCCESS).body(b.clone())
            }
            Some(Reply::Code(c)) => {
                RemotingCommand::response_to(request, *c).remark("scripted error")
            }
        }
    }
}

impl Invoke for FakeInvoke {
    fn invoke<'a>(
        &'a self,
        addr: &'a str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<RemotingCommand, RemotingError>> {
        Box::pin(async move {
            let (node, delay) = {
                let mut st = self.lock();
                *st.calls.entry(addr.to_owned()).or_default() += 1;
                st.log.push((addr.to_owned(), request.clone()));
                (st.nodes.get(addr).cloned().unwrap_or(Node::Down), st.delay)
            };
            match node {
                Node::Down => Err(RemotingError::Connect {
                    addr: addr.to_owned(),
                    reason: "connection refused (scripted)".into(),
                }),
                Node::Blackhole => {
                    tokio::time::sleep(timeout).await;
                    Err(RemotingError::Timeout {
                        addr: addr.to_owned(),
                        elapsed: timeout,
                        written: true,
                    })
                }
                Node::Up => {
                    if delay > timeout {
                        tokio::time::sleep(timeout).await;
                        return Err(RemotingError::Timeout {
                            addr: addr.to_owned(),
                            elapsed: timeout,
                            written: true,
                        });
                    }
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok(self.answer(addr, &request))
                }
            }
        })
    }

    fn invoke_oneway<'a>(
        &'a self,
        addr: &'a str,
        _request: RemotingCommand,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RemotingError>> {
        Box::pin(async move {
            Err(RemotingError::Connect {
                addr: addr.to_owned(),
                reason: "one-way not scripted".into(),
            })
        })
    }
}
