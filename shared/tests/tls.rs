//! HTTPS through sluice's own clients: a delivery and the functions' SDK
//! clients complete a verified TLS handshake with a server on 127.0.0.1,
//! with a post-quantum hybrid key exchange, and a certificate no trusted CA
//! signed is refused.
//!
//! Both clients take their roots from the system store, which reads
//! `SSL_CERT_FILE`, and the SDK clients take their endpoint from the
//! environment as in Lambda; this binary holds one test, so it sets those
//! variables before any other thread exists.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sluice::delivery::http::{HttpOptions, HttpTransport};
use sluice::delivery::{DeliveryError, OutboundRequest, Transport};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;
use url::Url;

/// A CA, and a server certificate for `localhost` it signed.
struct Pki {
    ca_pem: String,
    server: Arc<ServerConfig>,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let server = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server: Arc::new(server),
    }
}

/// The key exchange of every handshake the servers completed.
static KEY_EXCHANGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// axum over TLS: a connection whose handshake fails is dropped.
struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.tls.accept(tcp).await {
                if let Some(group) = tls.get_ref().1.negotiated_key_exchange_group() {
                    KEY_EXCHANGES
                        .lock()
                        .unwrap()
                        .push(format!("{:?}", group.name()));
                }
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An HTTPS server on 127.0.0.1: `/hook` takes a delivery, anything else
/// answers as DynamoDB's ListTables would.
async fn serve(port: u16, tls: Arc<ServerConfig>) -> u16 {
    let router = Router::new()
        .route(
            "/hook",
            post(|body: Bytes| async move {
                assert_eq!(&body[..], b"{}");
                StatusCode::ACCEPTED
            }),
        )
        .fallback(|| async {
            let mut headers = HeaderMap::new();
            headers.insert(
                "content-type",
                "application/x-amz-json-1.0".parse().unwrap(),
            );
            (headers, r#"{"TableNames":["over-tls"]}"#)
        });
    let tcp = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener {
        tcp,
        tls: TlsAcceptor::from(tls),
    };
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

fn delivery(port: u16) -> OutboundRequest {
    OutboundRequest {
        url: Url::parse(&format!("https://localhost:{port}/hook")).unwrap(),
        body: Bytes::from_static(b"{}"),
        headers: Default::default(),
        allow_local: true,
    }
}

#[test]
fn deliveries_and_sdk_calls_speak_verified_tls() {
    let trusted = pki();
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, &trusted.ca_pem).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let vars = [
        ("SSL_CERT_FILE", roots.to_str().unwrap().to_owned()),
        ("AWS_ENDPOINT_URL", format!("https://localhost:{port}")),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ];
    for (name, value) in vars {
        // SAFETY: the only test of this binary, before any thread is started.
        unsafe { std::env::set_var(name, value) };
    }

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        serve(port, trusted.server.clone()).await;
        // A second CA, which no root names.
        let stranger = serve(0, pki().server).await;

        let transport = HttpTransport::new(HttpOptions {
            allow_local: true,
            ..HttpOptions::default()
        })
        .unwrap();
        let resp = transport.send(&delivery(port)).await.unwrap();
        assert_eq!(resp.status, 202);
        match transport.send(&delivery(stranger)).await {
            Err(DeliveryError::Connect(e)) => assert!(e.contains("certificate"), "{e}"),
            other => panic!("an unknown issuer must be refused, got {other:?}"),
        }

        let tables = sluice::aws::clients()
            .dynamodb
            .list_tables()
            .send()
            .await
            .unwrap();
        assert_eq!(tables.table_names(), ["over-tls"]);

        // Both clients offer the post-quantum hybrid key exchange (aws-lc;
        // ring has none), and the server chose it.
        let groups = KEY_EXCHANGES.lock().unwrap().clone();
        assert_eq!(groups, ["X25519MLKEM768", "X25519MLKEM768"]);
    });
}
