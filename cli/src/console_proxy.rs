//! `sluice console`: the console of a deployment on AWS, served on the
//! operator's machine. A browser cannot sign SigV4 requests, so this
//! process answers the console's `/admin/*` calls itself, with the admin
//! API run in-process over the AWS ports (the CLI's AWS backend) on the
//! operator's own credentials, as `kubectl proxy` does for Kubernetes.
//! The routes are the console's ([`crate::console::router`]); this adds
//! what a server acting with someone's AWS rights needs:
//!
//! * a loopback address only: nothing else on the network may reach it;
//! * a random bearer token, made at start and printed once (never in a
//!   URL): another local user, or any page the browser runs, has no way
//!   to the admin API without it; the admin API checks it in constant time;
//! * `Host` must be the bound address or `localhost`, with the bound port:
//!   a page whose name rebinds to 127.0.0.1 (DNS rebinding) is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::console::PageSettings;
use base64::Engine;
use rand::RngCore;
use sluice::admin::Admin;
use sluice::secrets::Secret;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::args::BackendArgs;
use crate::error::CliError;

/// `--listen` unless given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8099";

/// One operator's browser: a few connections, the admin API's limits.
const LIMITS: crate::http_server::Limits = crate::http_server::Limits {
    header_timeout: crate::serve::HEADER_TIMEOUT,
    max_connections: 64,
    max_header_bytes: crate::serve::MAX_HEADER_BYTES,
    grace: crate::serve::HTTP_GRACE,
};

/// Why `sluice console` does not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(
        "sluice console listens on a loopback address only (127.0.0.1, [::1]), not {0}: \
         it acts with your AWS credentials"
    )]
    NotLoopback(SocketAddr),
    #[error(
        "sluice console serves a deployment on AWS: give --stack NAME, --outputs-file FILE, \
         or --aws with the SLUICE_* variables (`sluice serve` serves the embedded \
         gateway's console itself, at /console)"
    )]
    NotAws,
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Backend(#[from] CliError),
}

impl From<ConsoleError> for CliError {
    fn from(e: ConsoleError) -> Self {
        match e {
            ConsoleError::Backend(e) => e,
            e @ (ConsoleError::NotLoopback(_)
            | ConsoleError::NotAws
            | ConsoleError::Listen { .. }) => CliError::Usage(e.to_string()),
        }
    }
}

/// A request this server does not answer, whatever its path.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("the request has no Host header")]
    NoHost,
    #[error("this console answers only requests for {0} (a foreign Host is refused)")]
    ForeignHost(String),
}

impl Refused {
    fn status(&self) -> StatusCode {
        match self {
            Self::NoHost => StatusCode::BAD_REQUEST,
            Self::ForeignHost(_) => StatusCode::FORBIDDEN,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NoHost => "no_host",
            Self::ForeignHost(_) => "foreign_host",
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        let mut resp = (self.status(), body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        resp
    }
}

struct Proxy {
    admin: Admin,
    /// `host:port` values a request may name, lower case.
    hosts: Vec<String>,
}

/// A running `sluice console`.
pub struct ConsoleServer {
    addr: SocketAddr,
    token: Secret,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Open the deployment `backend` names (its admin API behind a new token)
/// and serve the console on `listen`.
pub async fn start(
    backend: &BackendArgs,
    listen: SocketAddr,
) -> Result<ConsoleServer, ConsoleError> {
    if !listen.ip().is_loopback() {
        return Err(ConsoleError::NotLoopback(listen));
    }
    if !backend.on_aws() {
        return Err(ConsoleError::NotAws);
    }
    let token = new_token();
    let (admin, webhook_base) = crate::backend::aws_admin(&backend.aws_options(), &token).await?;
    serve(admin, &PageSettings { webhook_base }, token, listen).await
}

/// Serve the console on `listen` over `admin`, which must check `token`.
pub async fn serve(
    admin: Admin,
    settings: &PageSettings,
    token: Secret,
    listen: SocketAddr,
) -> Result<ConsoleServer, ConsoleError> {
    if !listen.ip().is_loopback() {
        return Err(ConsoleError::NotLoopback(listen));
    }
    let bind_error = |source| ConsoleError::Listen {
        addr: listen,
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let router = router(admin, settings, addr);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(crate::http_server::run(listener, router, LIMITS, stopped));
    Ok(ConsoleServer {
        addr,
        token,
        stop,
        task,
    })
}

impl ConsoleServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the operator needs, said once on stderr: the URL, and the token
    /// (kept out of the URL, which browsers store in history).
    pub fn banner(&self) -> String {
        format!(
            "sluice console: http://{}/console\n\
             sluice console: sign in with this token (valid until this process stops): {}\n",
            self.addr,
            self.token.expose()
        )
    }

    /// Stop accepting; open requests get the HTTP grace to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// 32 random bytes, base64url: the console's bearer token for this run.
fn new_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The console's routes with `/admin` answered by `admin`, all behind the
/// Host check for `addr`.
fn router(admin: Admin, settings: &PageSettings, addr: SocketAddr) -> Router {
    let mut hosts = vec![addr.to_string(), format!("localhost:{}", addr.port())];
    // A browser leaves out the scheme's default port.
    if addr.port() == 80 {
        hosts.extend([addr.ip().to_string(), "localhost".to_owned()]);
        if addr.is_ipv6() {
            hosts.push(format!("[{}]", addr.ip()));
        }
    }
    let proxy = Arc::new(Proxy { admin, hosts });
    crate::console::router(any(admin_api), settings)
        .with_state(proxy.clone())
        .layer(middleware::from_fn_with_state(proxy, check_host))
}

async fn admin_api(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    crate::serve::admin_request(&proxy.admin, req, crate::serve::BODY_TIMEOUT).await
}

/// DNS rebinding: a page of another site whose name now resolves to
/// 127.0.0.1 reaches this port with its own name in `Host`.
async fn check_host(State(proxy): State<Arc<Proxy>>, req: Request, next: Next) -> Response {
    match host_allowed(&proxy.hosts, &req) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused.into_response(),
    }
}

fn host_allowed(hosts: &[String], req: &Request) -> Result<(), Refused> {
    let foreign = || Refused::ForeignHost(hosts[0].clone());
    let ok = |name: &str| hosts.iter().any(|h| h.eq_ignore_ascii_case(name));
    // An absolute-form target names a host too: both must be ours.
    if let Some(authority) = req.uri().authority()
        && !ok(authority.as_str())
    {
        return Err(foreign());
    }
    let host = req
        .headers()
        .get(header::HOST)
        .ok_or(Refused::NoHost)?
        .to_str()
        .map_err(|_| foreign())?;
    if ok(host) { Ok(()) } else { Err(foreign()) }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::body::Body;
    use sluice::local::{LocalGate, LocalRegistry, LocalSecrets, SqliteStore};
    use sluice::secrets::EnvSecrets;
    use tower::ServiceExt;

    use super::*;

    const TOKEN: &str = "a-token-for-the-console-proxy-tests";

    /// An admin API over an empty database, behind [`TOKEN`].
    async fn admin(dir: &Path) -> Admin {
        let store = SqliteStore::open(&dir.join("sluice.db")).unwrap();
        let env = EnvSecrets::with_dotenv(&dir.join(".env")).unwrap();
        let secrets: Arc<dyn sluice::secrets::SecretResolver> =
            Arc::new(LocalSecrets::new(env, store.clone()));
        let registry = Arc::new(
            LocalRegistry::load(store.clone(), secrets.clone())
                .await
                .unwrap(),
        );
        let ports = crate::backend::embedded_ports(
            &store,
            secrets,
            registry.clone(),
            registry,
            crate::backend::embedded_fetch().unwrap(),
            Arc::new(LocalGate::load(store.clone()).await.unwrap()),
        );
        Admin::new(ports, Some(&Secret::new(TOKEN))).unwrap()
    }

    fn get(uri: &str, host: Option<&str>, token: Option<&str>) -> Request {
        let mut req = Request::builder().uri(uri);
        if let Some(h) = host {
            req = req.header(header::HOST, h);
        }
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn only_the_bound_address_or_localhost_with_its_port_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:8099".parse().unwrap();
        let app = router(admin(dir.path()).await, &PageSettings::default(), addr);
        for host in ["127.0.0.1:8099", "localhost:8099", "LocalHost:8099"] {
            let resp = app
                .clone()
                .oneshot(get("/console", Some(host), None))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{host}");
            let resp = app
                .clone()
                .oneshot(get("/admin/sources", Some(host), Some(TOKEN)))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{host}");
        }
        for host in [
            "evil.example:8099",
            "evil.example",
            "127.0.0.1:8098",
            "localhost",
            "127.0.0.1",
            "localhost.:8099",
            "127.0.0.1:8099.evil.example",
            "[::1]:8099",
        ] {
            for uri in ["/console", "/admin/sources"] {
                let resp = app
                    .clone()
                    .oneshot(get(uri, Some(host), Some(TOKEN)))
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{host} {uri}");
                let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(body["error"], "foreign_host");
            }
        }
        let resp = app
            .clone()
            .oneshot(get("/console", None, None))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        // An absolute-form target must name this console too.
        let resp = app
            .clone()
            .oneshot(get(
                "http://evil.example:8099/admin/sources",
                Some("127.0.0.1:8099"),
                Some(TOKEN),
            ))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn the_admin_api_wants_the_token_and_the_assets_keep_their_headers() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "[::1]:8099".parse().unwrap();
        let app = router(admin(dir.path()).await, &PageSettings::default(), addr);
        let host = Some("[::1]:8099");
        for token in [None, Some("wrong-token-of-some-length"), Some("")] {
            let resp = app
                .clone()
                .oneshot(get("/admin/sources", host, token))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        }
        let resp = app
            .clone()
            .oneshot(get("/console", host, None))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()[header::CONTENT_SECURITY_POLICY],
            crate::console::CSP
        );
    }

    #[tokio::test]
    async fn it_refuses_to_listen_beyond_loopback_or_without_aws() {
        let dir = tempfile::tempdir().unwrap();
        for listen in ["0.0.0.0:0", "192.0.2.1:8099", "[::]:0"] {
            let listen: SocketAddr = listen.parse().unwrap();
            let err = serve(
                admin(dir.path()).await,
                &PageSettings::default(),
                Secret::new(TOKEN),
                listen,
            )
            .await
            .err()
            .unwrap();
            assert!(matches!(err, ConsoleError::NotLoopback(_)), "{err}");
            assert_eq!(CliError::from(err).code(), crate::error::exit::USAGE);
        }
        use clap::Parser;
        let cli = crate::args::Cli::parse_from(["sluice", "console"]);
        let listen = "127.0.0.1:0".parse().unwrap();
        let err = start(&cli.backend, listen).await.err().unwrap();
        assert!(matches!(err, ConsoleError::NotAws), "{err}");
    }

    #[tokio::test]
    async fn it_serves_on_the_port_it_bound_and_prints_the_token_once_outside_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(
            admin(dir.path()).await,
            &PageSettings::default(),
            Secret::new(TOKEN),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let addr = server.local_addr();
        let banner = server.banner();
        assert!(banner.contains(&format!("http://{addr}/console\n")));
        assert_eq!(banner.matches(TOKEN).count(), 1);
        assert!(!banner.lines().next().unwrap().contains(TOKEN));
        let resp = reqwest::Client::new()
            .get(format!("http://{addr}/admin/sources"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        server.shutdown().await;
    }

    #[test]
    fn each_run_has_its_own_32_byte_token() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a.expose(), b.expose());
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(a.expose())
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert!(a.expose().len() >= sluice::admin::MIN_TOKEN_LEN);
    }
}
