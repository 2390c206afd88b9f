//! Rows H1 and H2 at the producer level: a producer configured with `tls` settings
//! (the configuration path, not a hand-made connector) against the fake cluster
//! behind TLS-terminating proxies on loopback TCP. Certificates are generated with
//! rcgen at test time; none are committed.
//!
//! Each case asserts the typed error (`NoRoute`, `NotSent`: the name server is the
//! first TLS peer), the cause in the error, that nothing reached the plaintext
//! servers behind the proxies, and that the send resolved within its deadline; the
//! positive controls (verified TLS, a server-name override, mutual TLS) store the
//! message. Real sockets, so bounds are generous.
#![cfg(feature = "tls")]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rmq_producer::config::TlsSettings;
use rmq_producer::{Delivery, Message, Producer, SendErrorKind, SendOptions};
use rmq_protocol::RequestCode;
use rmq_testkit::fake::{FakeCluster, Transport};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

const TOPIC: &str = "TlsTopic";

struct Ca(CertifiedIssuer<'static, KeyPair>);

struct Leaf {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    key_der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Self(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// A leaf for `sans`; `expired`: valid 2000–2001 only.
    fn leaf(&self, sans: &[&str], purpose: ExtendedKeyUsagePurpose, expired: bool) -> Leaf {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "rmq leaf");
        params.extended_key_usages = vec![purpose];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    fn server_leaf(&self, sans: &[&str], expired: bool) -> Leaf {
        self.leaf(sans, ExtendedKeyUsagePurpose::ServerAuth, expired)
    }
}

/// A folder of PEM files for one test, removed on drop.
struct Files(PathBuf);

impl Files {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("rmq-producer-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn server_config(leaf: &Leaf, client_ca: Option<&Ca>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.0.der().clone()).unwrap();
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .unwrap(),
            )
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    Arc::new(
        builder
            .with_single_cert(vec![leaf.cert_der.clone()], key)
            .unwrap(),
    )
}

/// What a proxy does with a connection.
#[derive(Clone)]
enum Front {
    /// Terminates TLS with this config and relays plaintext to the upstream.
    Tls(Arc<ServerConfig>),
    /// Accepts TCP and never answers the handshake.
    Stall,
}

/// Proxies in front of the fake name server and broker, the route rewritten to
/// the broker's proxy; counts completed handshakes.
struct Fronted {
    cluster: FakeCluster,
    ns: String,
    handshakes: Arc<AtomicUsize>,
}

async fn proxy(front: Front, upstream: String, handshakes: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (front, upstream, handshakes) =
                (front.clone(), upstream.clone(), handshakes.clone());
            tokio::spawn(async move {
                match front {
                    Front::Stall => {
                        let _held = tcp;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Front::Tls(config) => {
                        let Ok(mut tls) = TlsAcceptor::from(config).accept(tcp).await else {
                            return;
                        };
                        handshakes.fetch_add(1, SeqCst);
                        let Ok(mut plain) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                }
            });
        }
    });
    addr
}

async fn fronted(front: Front) -> Fronted {
    let cluster = FakeCluster::builder()
        .brokers(["broker-a"])
        .transport(Transport::Tcp)
        .topic(TOPIC, 4)
        .build()
        .await
        .unwrap();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let ns = proxy(
        front.clone(),
        cluster.name_server_addr().to_owned(),
        handshakes.clone(),
    )
    .await;
    let broker = &cluster.brokers()[0];
    let broker_front = proxy(front, broker.addr().to_owned(), handshakes.clone()).await;
    let mut route = cluster.route_for(TOPIC).unwrap();
    for bd in &mut route.broker_datas {
        bd.broker_addrs.insert(0, broker_front.clone());
    }
    cluster.name_server().set_route(TOPIC, route);
    Fronted {
        cluster,
        ns,
        handshakes,
    }
}

async fn producer(f: &Fronted, tls: TlsSettings) -> Producer {
    Producer::builder("tls_producer_group")
        .namesrv(&f.ns)
        .configure(|c| c.tls = tls)
        .build()
        .await
        .expect("building does not dial")
}

fn settings(ca_file: PathBuf) -> TlsSettings {
    let mut t = TlsSettings::default();
    t.enabled = true;
    t.ca_file = Some(ca_file);
    t.handshake_timeout = Duration::from_millis(500);
    t
}

/// Sends one message with a 2 s deadline.
async fn send(p: &Producer) -> (Result<(), rmq_producer::SendError>, Duration) {
    let started = Instant::now();
    let r = p
        .send_with(
            Message::new(TOPIC, "over tls"),
            SendOptions::default().timeout(Duration::from_secs(2)),
        )
        .await
        .map(|_| ());
    (r, started.elapsed())
}

/// Verified TLS end to end, a server-name override, and mutual TLS: the message is
/// stored, every connection went through a completed handshake.
#[tokio::test]
async fn h1_producer_sends_over_verified_tls_and_mutual_tls() {
    let files = Files::new("ok");
    let ca = Ca::new("rmq test CA");
    let ca_file = files.write("ca.pem", &ca.0.pem());

    // Certificate for the loopback IP the producer dials.
    let f = fronted(Front::Tls(server_config(
        &ca.server_leaf(&["127.0.0.1"], false),
        None,
    )))
    .await;
    let p = producer(&f, settings(ca_file.clone())).await;
    let (r, _) = send(&p).await;
    r.expect("verified TLS to name server and broker");
    assert_eq!(f.cluster.brokers()[0].message_count(), 1);
    assert!(
        f.handshakes.load(SeqCst) >= 2,
        "name server and broker over TLS"
    );
    p.close(Duration::from_secs(1)).await;

    // Certificate for a DNS name only, accepted through `server_name`.
    let f = fronted(Front::Tls(server_config(
        &ca.server_leaf(&["broker.rmq.test"], false),
        None,
    )))
    .await;
    let mut t = settings(ca_file.clone());
    t.server_name = Some("broker.rmq.test".into());
    let p = producer(&f, t).await;
    send(&p).await.0.expect("server-name override");
    p.close(Duration::from_secs(1)).await;

    // Mutual TLS: the servers require a client certificate from the CA.
    let client = ca.leaf(&["rmq-client"], ExtendedKeyUsagePurpose::ClientAuth, false);
    let f = fronted(Front::Tls(server_config(
        &ca.server_leaf(&["127.0.0.1"], false),
        Some(&ca),
    )))
    .await;
    let mut t = settings(ca_file.clone());
    t.client_cert_file = Some(files.write("client.pem", &client.cert_pem));
    t.client_key_file = Some(files.write("client.key", &client.key_pem));
    let p = producer(&f, t).await;
    send(&p).await.0.expect("mutual TLS");
    assert_eq!(f.cluster.brokers()[0].message_count(), 1);
    p.close(Duration::from_secs(1)).await;

    // The same mTLS servers refuse a producer without a client certificate.
    let p = producer(&f, settings(ca_file)).await;
    let (r, took) = send(&p).await;
    let e = r.expect_err("no client certificate");
    assert_eq!(
        (e.kind(), e.delivery()),
        (SendErrorKind::NoRoute, Delivery::NotSent),
        "{e}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        f.cluster.brokers()[0].message_count(),
        1,
        "nothing more stored"
    );
    p.close(Duration::from_secs(1)).await;
}

/// Untrusted CA, wrong host name, expired certificate, a handshake that never
/// finishes, and a plaintext server: every send fails `NoRoute` / `NotSent` within
/// its 2 s deadline (+ 1 s), the cause is named, and no request reached the
/// plaintext name server behind the proxy (no fallback to plaintext).
#[tokio::test]
async fn h1_h2_producer_refuses_bad_servers_without_plaintext_fallback() {
    let files = Files::new("bad");
    let ca = Ca::new("rmq test CA");
    let other = Ca::new("someone else's CA");
    let ca_file = files.write("ca.pem", &ca.0.pem());
    let cases: Vec<(&str, Front, &[&str])> = vec![
        (
            "untrusted CA",
            Front::Tls(server_config(
                &other.server_leaf(&["127.0.0.1"], false),
                None,
            )),
            &["not trusted", "UnknownIssuer"],
        ),
        (
            "wrong host name",
            Front::Tls(server_config(
                &ca.server_leaf(&["elsewhere.example"], false),
                None,
            )),
            &["not valid for name"],
        ),
        (
            "expired",
            Front::Tls(server_config(&ca.server_leaf(&["127.0.0.1"], true), None)),
            &["has expired"],
        ),
        (
            "handshake never finishes",
            Front::Stall,
            &["timed out after 500ms"],
        ),
    ];
    for (what, front, causes) in cases {
        let f = fronted(front).await;
        let p = producer(&f, settings(ca_file.clone())).await;
        let (r, took) = send(&p).await;
        let e = r.expect_err(what);
        let text = format!("{e} {e:?}");
        eprintln!("{what} after {took:?}: {e}");
        assert_eq!(
            (e.kind(), e.delivery()),
            (SendErrorKind::NoRoute, Delivery::NotSent),
            "{what}: {text}"
        );
        assert!(
            causes.iter().any(|c| text.contains(c)),
            "{what}: the cause is named ({causes:?}): {text}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{what}: by the deadline ({took:?})"
        );
        assert_eq!(
            f.handshakes.load(SeqCst),
            0,
            "{what}: no handshake completed"
        );
        assert!(
            f.cluster
                .name_server()
                .requests_with_code(RequestCode::GET_ROUTEINFO_BY_TOPIC)
                .is_empty(),
            "{what}: nothing reached the name server in plaintext"
        );
        assert_eq!(f.cluster.brokers()[0].message_count(), 0, "{what}");
        p.close(Duration::from_secs(1)).await;
    }

    // A plaintext name server (no TLS at all): a clear error, not a hang.
    let cluster = FakeCluster::builder()
        .brokers(["broker-a"])
        .transport(Transport::Tcp)
        .topic(TOPIC, 4)
        .build()
        .await
        .unwrap();
    let p = Producer::builder("tls_producer_group")
        .namesrv(cluster.name_server_addr())
        .configure(|c| c.tls = settings(ca_file.clone()))
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    let e = p
        .send_with(
            Message::new(TOPIC, "x"),
            SendOptions::default().timeout(Duration::from_secs(2)),
        )
        .await
        .expect_err("TLS client against a plaintext server");
    assert_eq!(
        (e.kind(), e.delivery()),
        (SendErrorKind::NoRoute, Delivery::NotSent),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(cluster.brokers()[0].message_count(), 0);
    p.close(Duration::from_secs(1)).await;
}
