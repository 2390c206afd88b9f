//! `rmq topic create`: UPDATE_AND_CREATE_TOPIC on every master broker of the cluster
//! (found through the name server's GET_BROKER_CLUSTER_INFO), then a wait until the
//! name server's route shows the topic on every broker that accepted it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use rmq_protocol::header::create_topic::CreateTopicRequestHeader;
use rmq_protocol::route::perm;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use serde::Serialize;
use tokio::time::Instant;

use crate::admin::{Admin, Master, server_error};
use crate::args::{Common, TopicAction, TopicArgs};
use crate::output::{
    self, CliError, EXIT_FAILED, ErrorObject, Kind, SCHEMA_TOPIC_CREATE, print_line,
};

/// How long `create` waits for the name server to list the topic on every broker.
pub const ROUTE_WAIT: Duration = Duration::from_secs(5);

/// The outcome on one master broker.
#[derive(Debug, Clone)]
pub struct BrokerOutcome {
    /// The broker.
    pub master: Master,
    /// `None` when the broker answered SUCCESS.
    pub error: Option<CliError>,
}

/// Parses `--perm`: `rw`, `r`, `w` (any order, any case) or a number 0..=7.
pub fn parse_perm(s: &str) -> Result<i32, CliError> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        if (0..=7).contains(&n) {
            return Ok(n);
        }
    } else if !s.is_empty() {
        let mut p = 0;
        for ch in s.chars() {
            match ch.to_ascii_lowercase() {
                'r' => p |= perm::READ,
                'w' => p |= perm::WRITE,
                _ => {
                    p = -1;
                    break;
                }
            }
        }
        if p > 0 {
            return Ok(p);
        }
    }
    Err(CliError::new(
        Kind::Usage,
        format!("--perm {s:?}: expected rw, r, w or a number 0..=7"),
    ))
}

/// Creates (or updates) `topic` with `queues` read and write queues and permission
/// `perm` on every master broker of the cluster info. Fails only when the masters
/// cannot be found; per-broker failures are in the outcomes.
pub async fn create_on_masters(
    admin: &Admin,
    topic: &str,
    queues: u32,
    perm: i32,
) -> Result<Vec<BrokerOutcome>, CliError> {
    rmq_protocol::validate::validate_topic(topic)
        .map_err(|e| CliError::new(Kind::Usage, format!("topic {topic:?}: {e}")))?;
    let queue_nums = i32::try_from(queues)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| {
            CliError::new(
                Kind::Usage,
                format!("--queues {queues}: expected 1 or more"),
            )
        })?;
    let masters = admin.masters().await?;
    let mut outcomes = Vec::with_capacity(masters.len());
    for master in masters {
        let header = CreateTopicRequestHeader {
            perm,
            ..CreateTopicRequestHeader::new(topic, queue_nums)
        };
        let cmd = RemotingCommand::with_header(RequestCode::UPDATE_AND_CREATE_TOPIC, &header);
        let error = match admin.invoke_broker(&master.broker, &master.addr, cmd).await {
            Ok(resp) if resp.response_code() == ResponseCode::SUCCESS => None,
            Ok(resp) => Some(server_error(
                &format!("creating {topic} on {}", master.broker),
                &resp,
                resp.response_code(),
            )),
            Err(e) => Some(e),
        };
        outcomes.push(BrokerOutcome { master, error });
    }
    Ok(outcomes)
}

/// Waits (at most `wait`) until the name server's route of `topic` lists every broker
/// of `brokers` with `queues` write queues. Returns whether it did.
pub async fn wait_route(
    admin: &Admin,
    topic: &str,
    brokers: &[&str],
    queues: u32,
    wait: Duration,
) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(route) = admin.route(topic).await {
            let all = brokers.iter().all(|b| {
                route
                    .queue_datas
                    .iter()
                    .any(|q| q.broker_name == *b && q.write_queue_nums == queues)
                    && route.broker_datas.iter().any(|d| d.broker_name == *b)
            });
            if all {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `rmq.topic.create/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct CreateDoc {
    /// `"rmq.topic.create/1"`.
    pub schema: &'static str,
    /// The topic.
    pub topic: String,
    /// Read and write queues per broker.
    pub queues: u32,
    /// Permission bits.
    pub perm: Option<i32>,
    /// Permission letters.
    pub perm_name: Option<String>,
    /// One entry per master broker; `null` when the masters could not be found.
    pub brokers: Option<Vec<BrokerDoc>>,
    /// Whether the name server's route showed the topic on every broker that
    /// accepted it within 5 s; `null` when nothing was created.
    pub route_visible: Option<bool>,
    /// The error, when the command failed as a whole.
    pub error: Option<ErrorObject>,
}

/// One master broker in [`CreateDoc`].
#[derive(Debug, Clone, Serialize)]
pub struct BrokerDoc {
    /// Cluster name.
    pub cluster: String,
    /// Broker name.
    pub broker: String,
    /// Master address.
    pub addr: String,
    /// Whether the broker answered SUCCESS.
    pub ok: bool,
    /// Why not.
    pub error: Option<ErrorObject>,
}

/// Runs `rmq topic ...`.
pub async fn run(common: &Common, args: TopicArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        TopicAction::Create {
            topic,
            queues,
            perm,
            json,
        } => create(common, &topic, queues, &perm, json).await,
    }
}

async fn create(
    common: &Common,
    topic: &str,
    queues: u32,
    perm_arg: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut doc = CreateDoc {
        schema: SCHEMA_TOPIC_CREATE,
        topic: topic.to_owned(),
        queues,
        perm: None,
        perm_name: None,
        brokers: None,
        route_visible: None,
        error: None,
    };
    let result = async {
        let perm = parse_perm(perm_arg)?;
        let admin = Admin::new(
            common.namesrv_addrs()?,
            common.header_format(),
            common.timeout,
        );
        let outcomes = create_on_masters(&admin, topic, queues, perm)
            .await
            .with_context(|| format!("creating topic {topic}"))?;
        let accepted: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.master.broker.as_str())
            .collect();
        let visible = if accepted.is_empty() {
            None
        } else {
            Some(wait_route(&admin, topic, &accepted, queues, ROUTE_WAIT).await)
        };
        admin.close();
        anyhow::Ok((perm, outcomes, visible))
    }
    .await;
    let (perm, outcomes, visible) = match result {
        Ok(r) => r,
        Err(e) => {
            doc.error = Some(ErrorObject::from_anyhow(&e));
            return output::fail(json, &doc, &e);
        }
    };
    doc.perm = Some(perm);
    doc.perm_name = Some(output::perm_name(perm));
    doc.route_visible = visible;
    doc.brokers = Some(
        outcomes
            .iter()
            .map(|o| BrokerDoc {
                cluster: o.master.cluster.clone(),
                broker: o.master.broker.clone(),
                addr: o.master.addr.clone(),
                ok: o.error.is_none(),
                error: o
                    .error
                    .as_ref()
                    .map(|e| ErrorObject::from_anyhow(&anyhow::Error::new(e.clone()))),
            })
            .collect(),
    );
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if json {
        output::print_json(&doc)?;
    } else {
        for o in &outcomes {
            match &o.error {
                None => print_line(format!(
                    "created {topic} on {} ({}, cluster {}): {queues} read / {queues} write queues, perm {}",
                    o.master.broker,
                    o.master.addr,
                    o.master.cluster,
                    output::perm_name(perm)
                )),
                Some(e) => print_line(format!(
                    "FAILED  {topic} on {} ({}, cluster {}): {e}",
                    o.master.broker, o.master.addr, o.master.cluster
                )),
            }
        }
    }
    if visible == Some(false) {
        eprintln!(
            "rmq: warning: the name server's route does not show {topic} on every broker after {} s",
            ROUTE_WAIT.as_secs()
        );
    }
    if failed > 0 {
        eprintln!(
            "rmq: {failed} of {} brokers did not create {topic}",
            outcomes.len()
        );
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms() {
        assert_eq!(parse_perm("rw").ok(), Some(6));
        assert_eq!(parse_perm("WR").ok(), Some(6));
        assert_eq!(parse_perm("r").ok(), Some(4));
        assert_eq!(parse_perm("w").ok(), Some(2));
        assert_eq!(parse_perm("7").ok(), Some(7));
        assert!(parse_perm("x").is_err());
        assert!(parse_perm("").is_err());
        assert!(parse_perm("9").is_err());
        assert!(parse_perm("rx").is_err());
    }
}
