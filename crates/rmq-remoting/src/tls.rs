//! TLS for the remoting transport (feature `tls`): [`TlsConnector`] wraps any
//! [`Connector`] and runs a rustls client handshake over the streams it opens.
//!
//! # Defaults
//!
//! [`TlsConfig::new`] verifies the server's certificate chain against the
//! operating system's root certificates (loaded with `rustls-native-certs` when
//! the connector is built) and checks that the certificate is valid for the host
//! part of the address being dialled (an IP address is checked against the
//! certificate's IP SANs; a DNS name is also sent as SNI). No client certificate
//! is sent. The handshake must finish within 3 seconds
//! ([`DEFAULT_HANDSHAKE_TIMEOUT`]). TLS 1.3 and 1.2 are offered, with rustls's safe
//! defaults, and the `ring` crypto provider is used explicitly, whatever the
//! process-wide default provider is.
//!
//! Typical changes:
//!
//! * a private CA: [`TlsConfig::with_ca_file`] / [`TlsConfig::with_ca_pem`] (these
//!   replace the system roots unless [`TlsConfig::with_system_roots`] asks for both);
//! * brokers addressed by IP whose certificates name a host:
//!   [`TlsConfig::with_server_name_override`];
//! * mutual TLS: [`TlsConfig::with_client_cert_files`] /
//!   [`TlsConfig::with_client_cert_pem`].
//!
//! # Security notes
//!
//! * Verification is on by default and there is **no plaintext fallback**: a failed
//!   handshake is a failed connect. (Java's RocketMQ client defaults to an
//!   insecure "test mode" that trusts any certificate; this crate does not.)
//! * The only way to skip certificate verification is the loudly named
//!   [`TlsConfig::danger_accept_invalid_certs`]; building a connector with it logs
//!   a warning. It still checks the handshake signatures, but anyone on the path
//!   can impersonate the broker. Use it for tests only.
//! * With TLS 1.3 the server checks the client certificate *after* the client has
//!   finished its side of the handshake, so a missing or rejected client
//!   certificate shows up as an error on the first read, not from `connect`.
//! * Private keys are never printed: `Debug` of [`TlsConfig`] shows where the key
//!   comes from (a path or a byte count), never its bytes.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::connector::{BoxStream, Connector};
use crate::invoke::BoxFuture;

/// How long a handshake may take unless configured otherwise: 3 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// PEM data, from a file (read when the connector is built) or from memory.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Pem {
    fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("file {}", path.display()),
            Self::Bytes(bytes) => format!("{} bytes of PEM", bytes.len()),
        }
    }

    fn certificates(&self) -> io::Result<Vec<CertificateDer<'static>>> {
        let parsed: Result<Vec<_>, _> = match self {
            Self::File(path) => CertificateDer::pem_file_iter(path)
                .map_err(|e| pem_error(self, "certificates", e))?
                .collect(),
            Self::Bytes(bytes) => CertificateDer::pem_slice_iter(bytes).collect(),
        };
        let certs = parsed.map_err(|e| pem_error(self, "certificates", e))?;
        if certs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS: no PEM certificates found in {}", self.describe()),
            ));
        }
        Ok(certs)
    }

    fn private_key(&self) -> io::Result<PrivateKeyDer<'static>> {
        match self {
            Self::File(path) => PrivateKeyDer::from_pem_file(path),
            Self::Bytes(bytes) => PrivateKeyDer::from_pem_slice(bytes),
        }
        .map_err(|e| pem_error(self, "private key", e))
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn pem_error(source: &Pem, what: &str, err: rustls::pki_types::pem::Error) -> io::Error {
    let kind = match &err {
        rustls::pki_types::pem::Error::Io(e) => e.kind(),
        _ => io::ErrorKind::InvalidInput,
    };
    // The PEM error never contains key material (only section names and positions).
    io::Error::new(
        kind,
        format!("TLS: cannot read {what} from {}: {err}", source.describe()),
    )
}

/// A client certificate chain and its private key (mutual TLS).
#[derive(Clone)]
struct ClientIdentity {
    chain: Pem,
    key: Pem,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key's location is not secret; its bytes are never printed.
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain)
            .field("key", &self.key)
            .finish()
    }
}

/// Settings of a [`TlsConnector`]. See the [module docs](self) for the defaults.
///
/// Files are read when [`TlsConnector::new`] builds the connector, so errors in
/// them (missing file, no certificate, bad key) surface there, not on the first
/// connect.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    ca: Vec<Pem>,
    system_roots: Option<bool>,
    client_identity: Option<ClientIdentity>,
    server_name_override: Option<String>,
    handshake_timeout: Duration,
    accept_invalid_certs: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsConfig {
    /// Verification against the system roots, the dialled host name, no client
    /// certificate, a 3 s handshake timeout.
    pub fn new() -> Self {
        Self {
            ca: Vec::new(),
            system_roots: None,
            client_identity: None,
            server_name_override: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            accept_invalid_certs: false,
        }
    }

    /// Trusts the CA certificates in a PEM file (all of them, if several). Once a
    /// CA is given, the system roots are no longer trusted unless
    /// [`with_system_roots(true)`](Self::with_system_roots) is also called. May be
    /// called several times.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca.push(Pem::File(path.into()));
        self
    }

    /// Like [`with_ca_file`](Self::with_ca_file), with the PEM text in memory.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca.push(Pem::Bytes(pem.into()));
        self
    }

    /// Whether the operating system's roots are trusted. By default they are,
    /// exactly when no CA was given.
    pub fn with_system_roots(mut self, enabled: bool) -> Self {
        self.system_roots = Some(enabled);
        self
    }

    /// Presents a client certificate (mutual TLS): `chain` is a PEM file with the
    /// certificate first, then any intermediates; `key` is a PEM file with its
    /// private key (PKCS#8, PKCS#1 or SEC1).
    pub fn with_client_cert_files(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.client_identity = Some(ClientIdentity {
            chain: Pem::File(chain.into()),
            key: Pem::File(key.into()),
        });
        self
    }

    /// Like [`with_client_cert_files`](Self::with_client_cert_files), with the PEM
    /// text in memory.
    pub fn with_client_cert_pem(
        mut self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some(ClientIdentity {
            chain: Pem::Bytes(chain.into()),
            key: Pem::Bytes(key.into()),
        });
        self
    }

    /// Verifies every server's certificate against `name` (a DNS name or an IP
    /// address) instead of the host part of the dialled address; a DNS name is also
    /// sent as SNI. For brokers that are addressed by IP (as name servers report
    /// them) but whose certificates name a host.
    pub fn with_server_name_override(mut self, name: impl Into<String>) -> Self {
        self.server_name_override = Some(name.into());
        self
    }

    /// How long the handshake may take after the stream is open (default 3 s).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// **Disables certificate verification**: any certificate, for any name, from
    /// any issuer, expired or not, is accepted (handshake signatures are still
    /// checked). Anyone on the network path can then impersonate the broker and
    /// read or change the traffic. For tests against self-signed brokers only;
    /// building a connector with this set logs a warning.
    pub fn danger_accept_invalid_certs(mut self) -> Self {
        self.accept_invalid_certs = true;
        self
    }

    /// The name certificates are verified against, if overridden.
    pub fn server_name_override(&self) -> Option<&str> {
        self.server_name_override.as_deref()
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Whether certificate verification is disabled.
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid_certs
    }

    /// Builds the rustls client configuration: reads files, loads roots.
    fn client_config(&self) -> io::Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| io::Error::other(format!("TLS: cannot configure rustls: {e}")))?;
        let builder = if self.accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
        } else {
            builder.with_root_certificates(self.root_store()?)
        };
        match &self.client_identity {
            None => Ok(builder.with_no_client_auth()),
            Some(identity) => {
                let chain = identity.chain.certificates()?;
                let key = identity.key.private_key()?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "TLS: unusable client certificate ({:?}) or key ({:?}): {e}",
                            identity.chain, identity.key
                        ),
                    )
                })
            }
        }
    }

    fn root_store(&self) -> io::Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for pem in &self.ca {
            for cert in pem.certificates()? {
                roots.add(cert).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("TLS: unusable CA certificate in {}: {e}", pem.describe()),
                    )
                })?;
            }
        }
        if self.system_roots.unwrap_or(self.ca.is_empty()) {
            let loaded = rustls_native_certs::load_native_certs();
            for err in &loaded.errors {
                tracing::debug!(error = %err, "TLS: error while loading system root certificates");
            }
            let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, ignored, "TLS: loaded system root certificates");
            if added == 0 && self.ca.is_empty() {
                let detail = loaded
                    .errors
                    .first()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "TLS: no usable system root certificates found{detail}; \
                         configure a CA file with TlsConfig::with_ca_file"
                    ),
                ));
            }
        }
        Ok(roots)
    }
}

/// A [`Connector`] that opens a stream with an inner connector and runs a TLS
/// client handshake over it, bounded by the configured handshake timeout.
///
/// The connect errors are `io::Error`s whose message names the address and the
/// cause: untrusted certificate, name mismatch, expired certificate, handshake
/// timeout (kind `TimedOut`), alert from the server, peer not speaking TLS.
pub struct TlsConnector {
    inner: Arc<dyn Connector>,
    tls: tokio_rustls::TlsConnector,
    server_name_override: Option<ServerName<'static>>,
    handshake_timeout: Duration,
    accept_invalid_certs: bool,
}

impl TlsConnector {
    /// Wraps `inner`. Reads the configured files and the system roots now; fails
    /// with a descriptive error if they are unusable or the server name override is
    /// not a valid DNS name or IP address.
    pub fn new(inner: Arc<dyn Connector>, config: TlsConfig) -> io::Result<Self> {
        let server_name_override = match &config.server_name_override {
            Some(name) => Some(parse_server_name(name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("TLS: server name override {name:?} is not a DNS name or IP address"),
                )
            })?),
            None => None,
        };
        let client_config = config.client_config()?;
        if config.accept_invalid_certs {
            tracing::warn!(
                "TLS certificate verification is DISABLED (danger_accept_invalid_certs): \
                 any peer can impersonate the broker; use this for tests only"
            );
        }
        Ok(Self {
            inner,
            tls: tokio_rustls::TlsConnector::from(Arc::new(client_config)),
            server_name_override,
            handshake_timeout: config.handshake_timeout,
            accept_invalid_certs: config.accept_invalid_certs,
        })
    }

    /// The name the certificate of `addr` is verified against.
    fn server_name(&self, addr: &str) -> io::Result<ServerName<'static>> {
        if let Some(name) = &self.server_name_override {
            return Ok(name.clone());
        }
        let host = host_of(addr);
        parse_server_name(host).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "TLS: host {host:?} of {addr} is not a DNS name or IP address; \
                     set a server name override"
                ),
            )
        })
    }

    async fn connect_tls(&self, addr: &str) -> io::Result<BoxStream> {
        let server_name = self.server_name(addr)?;
        let stream = self.inner.connect(addr).await?;
        let handshake = self.tls.connect(server_name.clone(), stream);
        match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(tls)) => Ok(Box::new(tls) as BoxStream),
            Ok(Err(e)) => Err(describe_handshake_error(
                addr,
                &server_name,
                self.server_name_override.is_some(),
                e,
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "TLS handshake with {addr} timed out after {:?}",
                    self.handshake_timeout
                ),
            )),
        }
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("inner", &self.inner)
            .field("server_name_override", &self.server_name_override)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish_non_exhaustive()
    }
}

impl Connector for TlsConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(self.connect_tls(addr))
    }
}

/// The host part of `host:port`, `[v6]:port`, `v6` or `host`.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    if addr.parse::<IpAddr>().is_ok() {
        return addr;
    }
    addr.rsplit_once(':').map_or(addr, |(host, _)| host)
}

/// A DNS name or an IP address (IP first: some IP strings are valid DNS syntax).
fn parse_server_name(name: &str) -> Option<ServerName<'static>> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(ServerName::IpAddress(ip.into()));
    }
    if let Ok(sock) = name.parse::<SocketAddr>() {
        return Some(ServerName::IpAddress(sock.ip().into()));
    }
    ServerName::try_from(name.to_owned()).ok()
}

/// Turns a failed handshake into an error saying what went wrong.
fn describe_handshake_error(
    addr: &str,
    name: &ServerName<'_>,
    overridden: bool,
    err: io::Error,
) -> io::Error {
    let kind = err.kind();
    let name = name.to_str();
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return io::Error::new(kind, format!("TLS handshake with {addr} failed: {err}"));
    };
    let reason = match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => format!(
                "the server's certificate is not trusted (unknown issuer; check the configured CA): {tls}"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                let hint = if overridden {
                    "the configured server name override"
                } else {
                    "the host of the address; a server name override may be needed"
                };
                format!("the server's certificate is not valid for name {name:?} ({hint}): {tls}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the server's certificate has expired: {tls}")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the server's certificate is not valid yet (check the clock): {tls}")
            }
            _ => format!("the server's certificate was rejected: {tls}"),
        },
        rustls::Error::AlertReceived(alert) => format!(
            "the server aborted the handshake with alert {alert:?} \
             (a required or rejected client certificate, or no common protocol version)"
        ),
        rustls::Error::InvalidMessage(_) => {
            format!("the peer does not speak TLS or sent a malformed message: {tls}")
        }
        _ => tls.to_string(),
    };
    io::Error::new(kind, format!("TLS handshake with {addr} failed: {reason}"))
}

/// The verifier behind [`TlsConfig::danger_accept_invalid_certs`]: accepts every
/// certificate, still checks handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_part_of_addresses() {
        assert_eq!(host_of("broker-a.example:10911"), "broker-a.example");
        assert_eq!(host_of("10.0.0.7:10911"), "10.0.0.7");
        assert_eq!(host_of("[::1]:10911"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }

    #[test]
    fn ip_hosts_become_ip_server_names() {
        assert!(matches!(
            parse_server_name("10.0.0.7"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            parse_server_name("::1"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            parse_server_name("broker.example"),
            Some(ServerName::DnsName(_))
        ));
        assert!(parse_server_name("not a name!").is_none());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let config = TlsConfig::new().with_client_cert_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
            b"-----BEGIN PRIVATE KEY-----\nSECRETKEYBYTES\n-----END PRIVATE KEY-----\n".to_vec(),
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("SECRETKEYBYTES"), "{shown}");
        assert!(shown.contains("bytes of PEM"), "{shown}");
    }

    #[test]
    fn bad_inputs_fail_when_building() {
        let inner: Arc<dyn Connector> = Arc::new(crate::connector::TcpConnector);
        let err = TlsConnector::new(
            Arc::clone(&inner),
            TlsConfig::new().with_ca_file("/nonexistent/ca.pem"),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let err = TlsConnector::new(
            Arc::clone(&inner),
            TlsConfig::new().with_ca_pem(b"not pem".to_vec()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no PEM certificates"), "{err}");

        let err = TlsConnector::new(
            inner,
            TlsConfig::new()
                .danger_accept_invalid_certs()
                .with_server_name_override("bad name!"),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }
}
