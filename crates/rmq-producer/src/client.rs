//! Who this client is on the wire: its IP, process id, instance name and client id,
//! and the connector its configuration asks for.

use std::io;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::sync::Arc;

use rmq_protocol::id::uniq::UniqIdPrefix;
use rmq_remoting::{Connector, TcpConnector};

use crate::config::ProducerConfig;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A random 32-bit value fixed for this client (Java uses its class loader's hash).
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::process::id()) >> 16) as u32
}

/// This client's identity.
#[derive(Clone, Debug)]
pub(crate) struct ClientIdentity {
    pub(crate) ip: IpAddr,
    pub(crate) pid: u32,
    /// `ip@instance` (Java's `buildMQClientId`), the id brokers know this client by.
    pub(crate) client_id: String,
    hash: u32,
}

impl ClientIdentity {
    /// The configured IP, else the first non-loopback address the host name
    /// resolves to, else 127.0.0.1. No packet is sent to find it.
    pub(crate) fn detect(config: &ProducerConfig) -> Self {
        let ip = config
            .client_ip
            .or_else(host_ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let pid = std::process::id();
        // Unique per producer, not only per process: brokers push replies and
        // transaction checks to the connection registered under a client id, so two
        // producers of one process sharing an id (Java's `pid#nanoTime` collides only
        // in theory; `pid#ms` did in practice, for producers built back to back)
        // would receive each other's pushes.
        let instance = config.instance_name.clone().unwrap_or_else(|| {
            let salt = rmq_remoting::RandomSource::entropy_u64() as u32;
            format!("{pid}#{}#{salt:08x}", now_ms())
        });
        let mut client_id = format!("{ip}@{instance}");
        if let Some(unit) = config.unit_name.as_deref().filter(|u| !u.trim().is_empty()) {
            client_id.push('@');
            client_id.push_str(unit);
        }
        Self {
            ip,
            pid,
            client_id,
            hash: random_u32(),
        }
    }

    /// The fixed part of this client's UNIQ_KEYs.
    pub(crate) fn uniq_prefix(&self) -> UniqIdPrefix {
        UniqIdPrefix::new(self.ip, self.pid, self.hash)
    }
}

fn host_ip() -> Option<IpAddr> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let addrs = (name.trim(), 0u16).to_socket_addrs().ok()?;
    let mut addrs: Vec<IpAddr> = addrs
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    // IPv4 first, as Java prefers it.
    addrs.sort_by_key(|ip| !ip.is_ipv4());
    addrs.into_iter().next()
}

/// The connector the configuration asks for: TCP, or TLS over TCP.
pub(crate) fn connector(config: &ProducerConfig) -> io::Result<Arc<dyn Connector>> {
    let tcp: Arc<dyn Connector> = Arc::new(TcpConnector);
    if !config.tls.enabled {
        return Ok(tcp);
    }
    tls_connector(config, tcp)
}

#[cfg(feature = "tls")]
fn tls_connector(
    config: &ProducerConfig,
    tcp: Arc<dyn Connector>,
) -> io::Result<Arc<dyn Connector>> {
    let tls = config.tls.to_tls_config();
    Ok(Arc::new(rmq_remoting::tls::TlsConnector::new(tcp, tls)?))
}

#[cfg(not(feature = "tls"))]
fn tls_connector(
    _config: &ProducerConfig,
    _tcp: Arc<dyn Connector>,
) -> io::Result<Arc<dyn Connector>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TLS is enabled in the configuration but rmq-producer was built without its `tls` feature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_of_one_process_get_distinct_client_ids_unless_named() {
        let config = ProducerConfig::new("g");
        let ids: std::collections::HashSet<String> = (0..50)
            .map(|_| ClientIdentity::detect(&config).client_id)
            .collect();
        assert_eq!(ids.len(), 50, "built in the same millisecond, yet distinct");
        let mut named = ProducerConfig::new("g");
        named.instance_name = Some("orders".into());
        let (a, b) = (
            ClientIdentity::detect(&named),
            ClientIdentity::detect(&named),
        );
        assert_eq!(
            a.client_id, b.client_id,
            "a configured instance name is kept"
        );
        assert!(a.client_id.ends_with("@orders"), "{}", a.client_id);
    }
}
