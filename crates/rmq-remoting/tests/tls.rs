//! TLS connector against real tokio-rustls servers on loopback (matrix rows H1, H2).
//!
//! Certificates are generated here with rcgen for every test; none are committed.
#![cfg(feature = "tls")]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rmq_remoting::connector::{Connector, TcpConnector};
use rmq_remoting::tls::{TlsConfig, TlsConnector};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// Bytes the client sends once connected; the server must never see them in clear.
const MARKER: &[u8] = b"PLAINTEXT-MARKER-0123456789";

// ---------------------------------------------------------------- certificates

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `sans` (DNS names or IPs); `expired` makes it valid 2000–2001 only.
    fn leaf(&self, sans: &[&str], purpose: ExtendedKeyUsagePurpose, expired: bool) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "rmq test leaf");
        params.extended_key_usages = vec![purpose];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }
}

struct Leaf {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    key_der: Vec<u8>,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A self-signed certificate (no CA), as a broker in Java's default TLS test mode has.
fn self_signed(sans: &[&str]) -> Leaf {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(sans).unwrap();
    Leaf {
        cert_pem: certified.cert.pem(),
        cert_der: certified.cert.der().clone(),
        key_pem: certified.signing_key.serialize_pem(),
        key_der: certified.signing_key.serialize_der(),
    }
}

// ---------------------------------------------------------------- server

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(leaf: &Leaf, client_ca: Option<&Ca>, tls12_only: bool) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider());
    let builder = if tls12_only {
        builder
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
    } else {
        builder.with_safe_default_protocol_versions().unwrap()
    };
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.der()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(
        builder
            .with_single_cert(vec![leaf.cert_der.clone()], leaf.key())
            .unwrap(),
    )
}

/// What the server saw on its one connection.
#[derive(Debug)]
struct ServerLog {
    /// The handshake's outcome.
    handshake: Result<(), String>,
    /// Every raw byte received from the socket (TLS records).
    raw: Vec<u8>,
    /// Decrypted application bytes (echoed back).
    plaintext: Vec<u8>,
}

impl ServerLog {
    fn assert_no_plaintext_leak(&self) {
        assert!(
            !self.raw.windows(MARKER.len()).any(|w| w == MARKER),
            "plaintext application bytes reached the server: {self:?}"
        );
        assert!(self.plaintext.is_empty(), "{self:?}");
        // What did arrive is TLS (a handshake record), if anything.
        if let Some(first) = self.raw.first() {
            assert_eq!(
                *first, 0x16,
                "first byte is not a TLS handshake record: {self:?}"
            );
        }
    }
}

/// A TCP stream that records the bytes read from it.
struct Recording {
    inner: TcpStream,
    log: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.log
            .lock()
            .unwrap()
            .extend_from_slice(&buf.filled()[before..]);
        result
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A TLS echo server on 127.0.0.1:0 for one connection.
async fn tls_server(config: Arc<ServerConfig>) -> (String, JoinHandle<ServerLog>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let raw = Arc::new(Mutex::new(Vec::new()));
        let stream = Recording {
            inner: tcp,
            log: Arc::clone(&raw),
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let mut plaintext = Vec::new();
        let handshake = match acceptor.accept(stream).await {
            Err(e) => Err(e.to_string()),
            Ok(mut tls) => {
                let mut buf = [0u8; 1024];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            plaintext.extend_from_slice(&buf[..n]);
                            if tls.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                Ok(())
            }
        };
        let raw = raw.lock().unwrap().clone();
        ServerLog {
            handshake,
            raw,
            plaintext,
        }
    });
    (addr, handle)
}

/// Server log with a bound, so a broken test cannot hang.
async fn log_of(server: JoinHandle<ServerLog>) -> ServerLog {
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server did not finish")
        .unwrap()
}

fn tls_connector(config: TlsConfig) -> TlsConnector {
    TlsConnector::new(Arc::new(TcpConnector), config).unwrap()
}

/// Connects, sends MARKER and expects it echoed.
async fn echo(connector: &TlsConnector, addr: &str) -> io::Result<()> {
    let mut stream = connector.connect(addr).await?;
    stream.write_all(MARKER).await?;
    stream.flush().await?;
    let mut back = vec![0u8; MARKER.len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no echo"))??;
    assert_eq!(back, MARKER);
    Ok(())
}

/// Expects the connect to fail; if it wrongly succeeds, sends MARKER so the
/// server-side assertion catches the leak as well.
async fn expect_connect_error(connector: &TlsConnector, addr: &str) -> io::Error {
    match connector.connect(addr).await {
        Err(e) => e,
        Ok(mut stream) => {
            let _ = stream.write_all(MARKER).await;
            let _ = stream.flush().await;
            panic!("connect to {addr} succeeded but must fail");
        }
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn trusted_ca_and_right_name_echoes() {
    let ca = Ca::new("rmq test CA");
    let leaf = ca.leaf(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
        false,
    );
    let (addr, server) = tls_server(server_config(&leaf, None, false)).await;

    // Addressed by IP: the certificate's IP SAN matches.
    let connector = tls_connector(TlsConfig::new().with_ca_pem(ca.pem()));
    echo(&connector, &addr).await.unwrap();
    drop(connector);
    let log = log_of(server).await;
    assert_eq!(log.handshake, Ok(()));
    assert_eq!(log.plaintext, MARKER);
    // Encrypted on the wire.
    assert!(!log.raw.windows(MARKER.len()).any(|w| w == MARKER));
}

#[tokio::test]
async fn ca_file_and_dns_name_work() {
    let ca = Ca::new("rmq test CA");
    let leaf = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth, false);
    let (addr, server) = tls_server(server_config(&leaf, None, false)).await;
    let port = addr.rsplit_once(':').unwrap().1;

    let dir = std::env::temp_dir().join(format!("rmq-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca-file-and-dns-name.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let connector = tls_connector(TlsConfig::new().with_ca_file(&ca_file));
    let result = echo(&connector, &format!("localhost:{port}")).await;
    let _ = std::fs::remove_file(&ca_file);
    result.unwrap();
    drop(connector);
    assert_eq!(log_of(server).await.handshake, Ok(()));
}

#[tokio::test]
async fn untrusted_ca_fails_without_plaintext_fallback() {
    let server_ca = Ca::new("server CA");
    let other_ca = Ca::new("some other CA");
    let leaf = server_ca.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, false);
    let (addr, server) = tls_server(server_config(&leaf, None, false)).await;

    let connector = tls_connector(TlsConfig::new().with_ca_pem(other_ca.pem()));
    let err = expect_connect_error(&connector, &addr).await;
    let msg = err.to_string();
    assert!(msg.contains("not trusted"), "{msg}");
    assert!(msg.contains(&addr), "{msg}");
    drop(connector);

    let log = log_of(server).await;
    assert!(log.handshake.is_err(), "{log:?}");
    assert!(
        !log.raw.is_empty(),
        "positive control: the client sent a ClientHello"
    );
    log.assert_no_plaintext_leak();
}

#[tokio::test]
async fn system_roots_do_not_trust_a_private_ca() {
    // The default (system roots) must reject a private CA. Skipped quietly only if
    // the machine has no system roots at all (then building the connector fails,
    // which is also not a plaintext fallback).
    let ca = Ca::new("private CA");
    let leaf = ca.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, false);
    let (addr, server) = tls_server(server_config(&leaf, None, false)).await;
    let Ok(connector) = TlsConnector::new(Arc::new(TcpConnector), TlsConfig::new()) else {
        server.abort();
        return;
    };
    let err = expect_connect_error(&connector, &addr).await;
    assert!(err.to_string().contains("not trusted"), "{err}");
    drop(connector);
    log_of(server).await.assert_no_plaintext_leak();
}

#[tokio::test]
async fn wrong_name_fails_and_override_fixes_it() {
    let ca = Ca::new("rmq test CA");
    let leaf = ca.leaf(
        &["broker-a.rmq.test"],
        ExtendedKeyUsagePurpose::ServerAuth,
        false,
    );
    let config = server_config(&leaf, None, false);

    // Dialled by IP, the certificate names a host: rejected.
    let (addr, server) = tls_server(Arc::clone(&config)).await;
    let connector = tls_connector(TlsConfig::new().with_ca_pem(ca.pem()));
    let err = expect_connect_error(&connector, &addr).await;
    let msg = err.to_string();
    assert!(msg.contains("not valid for name"), "{msg}");
    assert!(msg.contains("127.0.0.1"), "{msg}");
    drop(connector);
    let log = log_of(server).await;
    assert!(log.handshake.is_err());
    log.assert_no_plaintext_leak();

    // A wrong override is rejected as well.
    let (addr, server) = tls_server(Arc::clone(&config)).await;
    let connector = tls_connector(
        TlsConfig::new()
            .with_ca_pem(ca.pem())
            .with_server_name_override("broker-b.rmq.test"),
    );
    let err = expect_connect_error(&connector, &addr).await;
    assert!(err.to_string().contains("broker-b.rmq.test"), "{err}");
    drop(connector);
    log_of(server).await.assert_no_plaintext_leak();

    // With the certificate's name as override: accepted.
    let (addr, server) = tls_server(config).await;
    let connector = tls_connector(
        TlsConfig::new()
            .with_ca_pem(ca.pem())
            .with_server_name_override("broker-a.rmq.test"),
    );
    echo(&connector, &addr).await.unwrap();
    drop(connector);
    assert_eq!(log_of(server).await.plaintext, MARKER);
}

#[tokio::test]
async fn expired_certificate_fails() {
    let ca = Ca::new("rmq test CA");
    let leaf = ca.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, true);
    let (addr, server) = tls_server(server_config(&leaf, None, false)).await;

    let connector = tls_connector(TlsConfig::new().with_ca_pem(ca.pem()));
    let err = expect_connect_error(&connector, &addr).await;
    assert!(err.to_string().contains("expired"), "{err}");
    drop(connector);
    log_of(server).await.assert_no_plaintext_leak();
}

#[tokio::test]
async fn stalled_handshake_times_out() {
    // Accepts TCP, reads the ClientHello, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
        received
    });

    let timeout = Duration::from_millis(300);
    let connector = tls_connector(
        TlsConfig::new()
            .danger_accept_invalid_certs()
            .with_handshake_timeout(timeout),
    );
    let started = Instant::now();
    let err = connector
        .connect(&addr)
        .await
        .err()
        .expect("handshake must time out");
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");

    // The stream was dropped: the server sees EOF after the ClientHello.
    let received = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("connection not closed after the timeout")
        .unwrap();
    assert_eq!(
        received.first(),
        Some(&0x16),
        "positive control: a ClientHello was sent"
    );
}

async fn mtls_without_client_cert(tls12_only: bool) {
    let ca = Ca::new("rmq test CA");
    let server_leaf = ca.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, false);
    let (addr, server) = tls_server(server_config(&server_leaf, Some(&ca), tls12_only)).await;

    let connector = tls_connector(TlsConfig::new().with_ca_pem(ca.pem()));
    // TLS 1.2: the connect fails. TLS 1.3: the server checks the client certificate
    // after the client finished, so the failure shows on the first read.
    let result = echo(&connector, &addr).await;
    let err = result.expect_err("a server requiring client auth must refuse a client without one");
    if tls12_only {
        assert!(err.to_string().contains("alert"), "{err}");
    }
    drop(connector);
    let log = log_of(server).await;
    assert!(log.handshake.is_err(), "{log:?}");
    log.assert_no_plaintext_leak();
}

#[tokio::test]
async fn mtls_required_without_client_cert_fails_tls13() {
    mtls_without_client_cert(false).await;
}

#[tokio::test]
async fn mtls_required_without_client_cert_fails_tls12() {
    mtls_without_client_cert(true).await;
}

#[tokio::test]
async fn mtls_with_client_cert_works() {
    let ca = Ca::new("rmq test CA");
    let server_leaf = ca.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, false);
    let client_leaf = ca.leaf(&["rmq-client"], ExtendedKeyUsagePurpose::ClientAuth, false);

    // From PEM bytes.
    let (addr, server) = tls_server(server_config(&server_leaf, Some(&ca), false)).await;
    let connector = tls_connector(
        TlsConfig::new()
            .with_ca_pem(ca.pem())
            .with_client_cert_pem(client_leaf.cert_pem.clone(), client_leaf.key_pem.clone()),
    );
    echo(&connector, &addr).await.unwrap();
    drop(connector);
    assert_eq!(log_of(server).await.plaintext, MARKER);

    // From PEM files.
    let dir = std::env::temp_dir().join(format!("rmq-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("mtls-client.crt"), dir.join("mtls-client.key"));
    std::fs::write(&cert_file, &client_leaf.cert_pem).unwrap();
    std::fs::write(&key_file, &client_leaf.key_pem).unwrap();
    let (addr, server) = tls_server(server_config(&server_leaf, Some(&ca), false)).await;
    let connector = TlsConnector::new(
        Arc::new(TcpConnector),
        TlsConfig::new()
            .with_ca_pem(ca.pem())
            .with_client_cert_files(&cert_file, &key_file),
    );
    let _ = std::fs::remove_file(&cert_file);
    let _ = std::fs::remove_file(&key_file);
    let connector = connector.unwrap();
    echo(&connector, &addr).await.unwrap();
    drop(connector);
    assert_eq!(log_of(server).await.plaintext, MARKER);
}

#[tokio::test]
async fn client_cert_from_another_ca_is_rejected() {
    let ca = Ca::new("rmq test CA");
    let rogue = Ca::new("rogue CA");
    let server_leaf = ca.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, false);
    let client_leaf = rogue.leaf(&["rmq-client"], ExtendedKeyUsagePurpose::ClientAuth, false);
    let (addr, server) = tls_server(server_config(&server_leaf, Some(&ca), false)).await;
    let connector = tls_connector(
        TlsConfig::new()
            .with_ca_pem(ca.pem())
            .with_client_cert_pem(client_leaf.cert_pem.clone(), client_leaf.key_pem.clone()),
    );
    assert!(echo(&connector, &addr).await.is_err());
    drop(connector);
    let log = log_of(server).await;
    assert!(log.handshake.is_err(), "{log:?}");
    log.assert_no_plaintext_leak();
}

#[tokio::test]
async fn insecure_mode_accepts_self_signed() {
    let leaf = self_signed(&["some-other-name.test"]);

    // Verified: rejected (self-signed, wrong name).
    let (addr, server) = tls_server(server_config(&leaf, None, false)).await;
    let connector = tls_connector(TlsConfig::new().with_ca_pem(Ca::new("x").pem()));
    expect_connect_error(&connector, &addr).await;
    drop(connector);
    log_of(server).await.assert_no_plaintext_leak();

    // Explicitly insecure: accepted, still encrypted.
    let (addr, server) = tls_server(server_config(&leaf, None, false)).await;
    let config = TlsConfig::new().danger_accept_invalid_certs();
    assert!(config.accepts_invalid_certs());
    let connector = tls_connector(config);
    echo(&connector, &addr).await.unwrap();
    drop(connector);
    let log = log_of(server).await;
    assert_eq!(log.plaintext, MARKER);
    assert!(!log.raw.windows(MARKER.len()).any(|w| w == MARKER));
}

#[tokio::test]
async fn plaintext_server_is_a_clear_error() {
    // A RocketMQ broker without TLS answers a ClientHello with garbage or closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 512];
        let _ = tcp.read(&mut buf).await;
        // A remoting frame: length, header length, JSON header.
        let _ = tcp
            .write_all(b"\x00\x00\x00\x10\x00\x00\x00\x0c{\"code\":0}  ")
            .await;
    });
    let connector = tls_connector(TlsConfig::new().danger_accept_invalid_certs());
    let err = expect_connect_error(&connector, &addr).await;
    assert!(err.to_string().contains("TLS handshake with"), "{err}");
    server.await.unwrap();
}

#[tokio::test]
async fn default_timeout_and_debug() {
    let config = TlsConfig::new();
    assert_eq!(config.handshake_timeout(), Duration::from_secs(3));
    assert_eq!(config.server_name_override(), None);
    assert!(!config.accepts_invalid_certs());

    let leaf = self_signed(&["x.test"]);
    let config = TlsConfig::new().with_client_cert_pem(leaf.cert_pem.clone(), leaf.key_pem.clone());
    let shown = format!("{config:?}");
    let key_body = leaf.key_pem.lines().nth(1).unwrap();
    assert!(!shown.contains(key_body), "{shown}");
}
