//! Admin requests the commands share: the topic route and the cluster info from the
//! name servers (the first that answers, in the order given), and requests to brokers.

use std::sync::Arc;
use std::time::Duration;

use rmq_producer::HeaderFormat;
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::route::{ClusterInfo, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_remoting::{Invoke, Pool, PoolConfig, TcpConnector};

use crate::output::{CliError, Kind};

/// A connection pool plus the name servers, the header format and the per-request
/// timeout.
#[derive(Debug, Clone)]
pub struct Admin {
    pool: Pool,
    namesrv: Vec<String>,
    serialize_type: SerializeType,
    timeout: Duration,
}

/// A master broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    /// The cluster it belongs to (from the cluster info).
    pub cluster: String,
    /// The broker name.
    pub broker: String,
    /// The master's address.
    pub addr: String,
}

impl Admin {
    /// An admin client for `namesrv` (at least one address) over plain TCP.
    pub fn new(namesrv: Vec<String>, header: HeaderFormat, timeout: Duration) -> Self {
        let config = PoolConfig {
            connect_timeout: timeout,
            ..PoolConfig::default()
        };
        Self {
            pool: Pool::new(Arc::new(TcpConnector), config),
            namesrv,
            serialize_type: header.serialize_type(),
            timeout,
        }
    }

    /// The name servers, in the order they are tried.
    pub fn namesrv(&self) -> &[String] {
        &self.namesrv
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The pool (shared by clones).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Stamps the header format on a request.
    pub fn request(&self, cmd: RemotingCommand) -> RemotingCommand {
        cmd.serialize_type(self.serialize_type)
    }

    /// Sends `cmd` to the name servers in turn; the first answer wins (whatever its
    /// code). Fails with [`Kind::NameServerUnavailable`] when none answers.
    pub async fn invoke_namesrv(&self, cmd: RemotingCommand) -> Result<RemotingCommand, CliError> {
        let cmd = self.request(cmd);
        let mut errors = Vec::new();
        for addr in &self.namesrv {
            match self.pool.invoke(addr, cmd.clone(), self.timeout).await {
                Ok(resp) => return Ok(resp),
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        Err(CliError::new(
            Kind::NameServerUnavailable,
            format!("no name server answered ({})", errors.join("; ")),
        ))
    }

    /// Sends `cmd` to the broker at `addr`. Fails with [`Kind::BrokerUnavailable`]
    /// when no answer comes.
    pub async fn invoke_broker(
        &self,
        broker: &str,
        addr: &str,
        cmd: RemotingCommand,
    ) -> Result<RemotingCommand, CliError> {
        self.pool
            .invoke(addr, self.request(cmd), self.timeout)
            .await
            .map_err(|e| {
                CliError::new(
                    Kind::BrokerUnavailable,
                    format!("broker {broker} at {addr}: {e}"),
                )
            })
    }

    /// The topic's route (GET_ROUTEINFO_BY_TOPIC). [`Kind::TopicNotFound`] (code 17)
    /// when the name server does not know the topic.
    pub async fn route(&self, topic: &str) -> Result<TopicRouteData, CliError> {
        let cmd = RemotingCommand::with_header(
            RequestCode::GET_ROUTEINFO_BY_TOPIC,
            &GetRouteInfoRequestHeader::new(topic),
        );
        let resp = self.invoke_namesrv(cmd).await?;
        match resp.response_code() {
            ResponseCode::SUCCESS => TopicRouteData::parse(resp.body_bytes()).map_err(|e| {
                CliError::new(
                    Kind::MalformedResponse,
                    format!("the route of {topic} could not be parsed: {e}"),
                )
            }),
            ResponseCode::TOPIC_NOT_EXIST => Err(CliError::with_code(
                Kind::TopicNotFound,
                ResponseCode::TOPIC_NOT_EXIST.0,
                format!("the name server has no route for topic {topic}"),
            )),
            code => Err(server_error("the route query", &resp, code)),
        }
    }

    /// The cluster info (GET_BROKER_CLUSTER_INFO).
    pub async fn cluster_info(&self) -> Result<ClusterInfo, CliError> {
        let resp = self
            .invoke_namesrv(RemotingCommand::request(
                RequestCode::GET_BROKER_CLUSTER_INFO,
            ))
            .await?;
        match resp.response_code() {
            ResponseCode::SUCCESS => ClusterInfo::parse(resp.body_bytes()).map_err(|e| {
                CliError::new(
                    Kind::MalformedResponse,
                    format!("the cluster info could not be parsed: {e}"),
                )
            }),
            code => Err(server_error("the cluster info query", &resp, code)),
        }
    }

    /// Every master broker in the cluster info, sorted by broker name.
    pub async fn masters(&self) -> Result<Vec<Master>, CliError> {
        let info = self.cluster_info().await?;
        let mut masters: Vec<Master> = info
            .broker_addr_table
            .values()
            .filter_map(|b| {
                Some(Master {
                    cluster: b.cluster.clone(),
                    broker: b.broker_name.clone(),
                    addr: b.master_addr()?.to_owned(),
                })
            })
            .collect();
        masters.sort_by(|a, b| a.broker.cmp(&b.broker));
        if masters.is_empty() {
            return Err(CliError::new(
                Kind::ServerError,
                "the name server knows no master broker",
            ));
        }
        Ok(masters)
    }

    /// Closes every connection.
    pub fn close(&self) {
        self.pool.close_all();
    }
}

/// A [`Kind::ServerError`] for an unexpected response code, with the remark.
pub fn server_error(what: &str, resp: &RemotingCommand, code: ResponseCode) -> CliError {
    let remark = resp.remark.as_deref().unwrap_or("");
    let name = code.name().unwrap_or("UNKNOWN");
    CliError::with_code(
        Kind::ServerError,
        code.0,
        format!("{what} was answered {name}: {remark}"),
    )
}
