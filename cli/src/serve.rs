//! `sluice serve`: the whole pipeline on one machine, over SQLite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use sluice::admin::ports::Origin;
use sluice::admin::{Admin, AdminError};
use sluice::config::{ConfigError, ConfigFile};
use sluice::delivery::http::{HttpOptions, HttpTransport};
use sluice::error::{ReceiveError, Unavailable};
use sluice::local::metrics::GatewayMetrics;
use sluice::local::registry::RegistryError;
use sluice::local::runtime::{LocalRuntime, RoutingStore, RuntimeOptions};
use sluice::local::{LocalGate, LocalRegistry, LocalSecrets, SqliteStore};
use sluice::pipeline::challenge::challenge;
use sluice::pipeline::receive::{Reply, Target, receive, refusal_outcome};
use sluice::secrets::{EnvSecrets, SecretResolver};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: PathBuf,
    pub listen: SocketAddr,
    /// A second address serving `/metrics` alone, without the bearer token
    /// (for a scraper on a private network); `/metrics` on `listen` keeps
    /// the admin token either way.
    pub metrics_listen: Option<SocketAddr>,
    pub db: PathBuf,
    /// `KEY=value` file for `env:` secrets; the process environment wins.
    pub env_file: PathBuf,
    pub runtime: RuntimeOptions,
    /// How long shutdown waits for in-flight deliveries.
    pub shutdown_grace: Duration,
    /// A request's head (request line and headers) must arrive within this
    /// after the connection opens or the previous response; otherwise the
    /// connection is closed. This also closes idle keep-alive connections.
    pub header_timeout: Duration,
    /// A `/hooks/*` or `/admin/*` body must arrive whole within this after
    /// its head; otherwise 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    /// Capped at the open-file limit less the descriptors the gateway keeps
    /// for itself.
    pub max_connections: usize,
    /// The request line and headers, in bytes; beyond it: 431.
    pub max_header_bytes: usize,
    /// How long shutdown waits for open HTTP connections to finish their
    /// request before dropping them.
    pub http_grace: Duration,
}

/// The defaults of [`ServeOptions`]' HTTP limits.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_CONNECTIONS: usize = 4096;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const HTTP_GRACE: Duration = Duration::from_secs(5);
/// Requests with more header fields than this get 431 (hyper's default,
/// which the server keeps).
pub const MAX_HEADERS: usize = 100;
/// Connections the `--metrics-listen` server takes at once.
const METRICS_CONNECTIONS: usize = 8;
/// File descriptors kept out of `max_connections`: the database and its
/// readers, the delivery workers' connections (64), logs.
const RESERVED_FDS: u64 = 256;

impl ServeOptions {
    pub fn new(config: PathBuf, listen: SocketAddr, db: PathBuf) -> Self {
        Self {
            config,
            listen,
            metrics_listen: None,
            db,
            env_file: PathBuf::from(".env"),
            runtime: RuntimeOptions::default(),
            shutdown_grace: Duration::from_secs(30),
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_header_bytes: MAX_HEADER_BYTES,
            http_grace: HTTP_GRACE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Secrets(String),
    #[error("database {path}: {source}")]
    Store { path: String, source: Unavailable },
    #[error("delivery client: {0}")]
    Transport(String),
    #[error(transparent)]
    Sync(#[from] sluice::admin::sync::SyncError),
    #[error("config: {0}")]
    Registry(#[from] RegistryError),
    #[error("[admin] {0}")]
    Admin(String),
    #[error("database {path} is in use by another `sluice serve` (lock file {lock})")]
    Locked { path: String, lock: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

struct App {
    registry: Arc<LocalRegistry>,
    /// Commits and routes received events (see `RoutingStore`).
    store: RoutingStore,
    admin: Admin,
    body_timeout: Duration,
    metrics: Arc<GatewayMetrics>,
    /// Read for the queue gauges when `/metrics` is scraped.
    db: SqliteStore,
    /// Read for the circuit gauges.
    gate: Arc<LocalGate>,
}

/// A running embedded gateway.
pub struct Gateway {
    /// Held while running: one gateway delivers from a database.
    _lock: std::fs::File,
    addr: SocketAddr,
    stop_http: oneshot::Sender<()>,
    http: JoinHandle<()>,
    /// The `--metrics-listen` server, if any: its address, stop and task.
    metrics_http: Option<(SocketAddr, oneshot::Sender<()>, JoinHandle<()>)>,
    runtime: LocalRuntime,
    grace: Duration,
}

impl Gateway {
    /// Load config and secrets, open the database, start the workers, and
    /// listen. Everything that can be wrong with the setup fails here.
    pub async fn start(opts: &ServeOptions) -> Result<Self, ServeError> {
        let file = ConfigFile::load(&opts.config)?;
        let lock = lock_database(&opts.db)?;
        let env = EnvSecrets::with_dotenv(&opts.env_file).map_err(ServeError::Secrets)?;
        let store = SqliteStore::open(&opts.db).map_err(|source| ServeError::Store {
            path: opts.db.display().to_string(),
            source,
        })?;
        let store_error = |source| ServeError::Store {
            path: opts.db.display().to_string(),
            source,
        };
        // The file owns its entries; those created through the admin API
        // live beside them in the database (see admin::sync).
        let plan = sluice::admin::sync::apply(&store, &file, Origin::File).await?;
        if !plan.is_empty() {
            tracing::info!(
                created = plan.create.len(),
                updated = plan.update.len(),
                deleted = plan.delete.len(),
                "config file applied"
            );
        }
        store.import_legacy_disabled().await.map_err(store_error)?;
        let secrets: Arc<dyn SecretResolver> = Arc::new(LocalSecrets::new(env, store.clone()));
        let registry = Arc::new(LocalRegistry::load(store.clone(), secrets.clone()).await?);
        let token = match &file.admin {
            Some(admin) => Some(
                secrets
                    .resolve(&admin.token)
                    .await
                    .map_err(|e| ServeError::Admin(e.to_string()))?,
            ),
            None => None,
        };
        // Polled apps pass the same guard as destinations.
        let fetch =
            crate::backend::embedded_fetch().map_err(|e| ServeError::Transport(e.to_string()))?;
        // The circuits saved by the last run: an open one stays open.
        let gate = Arc::new(LocalGate::load(store.clone()).await.map_err(store_error)?);
        let admin = Admin::new(
            crate::backend::embedded_ports(
                &store,
                secrets,
                registry.clone(),
                registry.clone(),
                fetch.clone(),
                gate.clone(),
            ),
            token.as_ref(),
        )
        .map_err(ServeError::Admin)?;
        // One operator-owned machine: allow_local destinations are fine.
        let transport = HttpTransport::new(HttpOptions {
            allow_local: true,
            ..HttpOptions::default()
        })
        .map_err(|e| ServeError::Transport(e.to_string()))?;
        // Only this process delivers from the database (the lock): a claim
        // still held is a dead process's, and waiting out its 90 s would
        // only delay its tasks after a crash.
        match store.release_all_claims().await.map_err(store_error)? {
            0 => {}
            n => tracing::warn!(tasks = n, "claims left by a stopped gateway released"),
        }
        match store.release_poll_claims().await.map_err(store_error)? {
            0 => {}
            n => tracing::warn!(
                pollers = n,
                "poll claims left by a stopped gateway released"
            ),
        }
        let runtime = LocalRuntime::start(
            registry.clone(),
            store.clone(),
            Arc::new(transport),
            gate.clone(),
            fetch,
            opts.runtime.clone(),
        );

        let admin_enabled = admin.enabled();
        let app = Arc::new(App {
            registry,
            store: runtime.receive_store(),
            admin,
            body_timeout: opts.body_timeout,
            metrics: runtime.metrics(),
            db: store.clone(),
            gate,
        });
        let router = crate::console::router(any(admin_api), &Default::default())
            .route("/hooks/{source}", any(hook))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics_with_token))
            .with_state(app.clone());
        let listener =
            TcpListener::bind(opts.listen)
                .await
                .map_err(|source| ServeError::Listen {
                    addr: opts.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Listen {
            addr: opts.listen,
            source,
        })?;
        let limits = crate::http_server::Limits {
            header_timeout: opts.header_timeout,
            max_connections: connection_limit(opts.max_connections),
            max_header_bytes: opts.max_header_bytes,
            grace: opts.http_grace,
        };
        let metrics_http = match opts.metrics_listen {
            Some(at) => Some(serve_metrics(at, app, limits).await?),
            None => None,
        };
        let (stop_http, stopped) = oneshot::channel::<()>();
        let http = tokio::spawn(crate::http_server::run(listener, router, limits, stopped));
        tracing::info!(
            %addr,
            db = %opts.db.display(),
            admin = admin_enabled,
            metrics_listen = ?metrics_http.as_ref().map(|(at, _, _)| *at),
            max_connections = limits.max_connections,
            "sluice gateway listening"
        );
        Ok(Self {
            _lock: lock,
            addr,
            stop_http,
            http,
            metrics_http,
            runtime,
            grace: opts.shutdown_grace,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `--metrics-listen` serves `/metrics` without a token.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_http.as_ref().map(|(at, _, _)| *at)
    }

    /// Stop accepting webhooks, finish in-flight requests (those still open
    /// after the HTTP grace are dropped) and deliveries.
    pub async fn shutdown(self) {
        let _ = self.stop_http.send(());
        if let Some((_, stop, task)) = self.metrics_http {
            let _ = stop.send(());
            let _ = task.await;
        }
        let _ = self.http.await;
        self.runtime.shutdown(self.grace).await;
        tracing::info!("sluice gateway stopped");
    }
}

async fn hook(
    State(app): State<Arc<App>>,
    Path(source): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = app.registry.max_body_bytes();
    // Any other method is a provider's check of the endpoint (or a 405):
    // its body is not read.
    let body = if method == Method::POST {
        read_body(body, limit, app.body_timeout).await
    } else {
        Ok(Bytes::new())
    };
    let looked_up = body.is_ok();
    let result = match body {
        Ok(_) if method != Method::POST => {
            challenge(
                app.registry.as_ref(),
                &source,
                &method,
                &headers,
                uri.query(),
                SystemTime::now(),
            )
            .await
        }
        Ok(body) => {
            receive(
                app.registry.as_ref(),
                &app.store,
                &source,
                headers,
                body,
                // Host is not trusted: URL-signing sources have a public_url.
                Target {
                    query: uri.query(),
                    seen_url: &[],
                },
                SystemTime::now(),
            )
            .await
        }
        Err(BodyError::TooLarge) => Err(ReceiveError::BodyTooLarge {
            size: limit + 1,
            limit,
        }),
        Err(BodyError::Timeout) => Err(ReceiveError::BodyTimeout(app.body_timeout)),
        Err(BodyError::Unreadable) => Err(ReceiveError::BadRequest(
            "could not read the body".to_owned(),
        )),
    };
    // Only a source that exists becomes a label value (never the path of
    // a probe); a body that could not be read never reached the lookup.
    let known = looked_up && !matches!(result, Err(ReceiveError::UnknownSource));
    let (outcome, reason) = match &result {
        Ok(receipt) => (receipt.outcome(), ""),
        Err(e) => match refusal_outcome(e.status()) {
            "rejected" => ("rejected", e.code()),
            other => (other, ""),
        },
    };
    app.metrics
        .received(known.then_some(source.as_str()), outcome, reason);
    let request_id = sluice::error::new_request_id();
    let mut resp = hook_reply(Reply::from_result(&result, &source, &request_id));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut()
            .insert(sluice::error::REQUEST_ID_HEADER, v);
    }
    close_if_timed_out(&mut resp);
    resp
}

/// Why a request body could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyError {
    TooLarge,
    /// Not whole within the body timeout (a stalled or lying client).
    Timeout,
    /// The connection broke, or the framing was invalid.
    Unreadable,
}

/// The whole body, at most `limit` bytes, within `deadline`. Nothing is
/// handed on (so nothing committed) unless every byte arrived in time.
async fn read_body(body: Body, limit: usize, deadline: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if too_large(&e) => Err(BodyError::TooLarge),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "request body unreadable");
            Err(BodyError::Unreadable)
        }
    }
}

/// A 408 leaves the rest of the body unread: close the connection rather
/// than parse what follows as the next request.
fn close_if_timed_out(resp: &mut Response) {
    if resp.status() == StatusCode::REQUEST_TIMEOUT {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

fn too_large(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

async fn admin_api(State(app): State<Arc<App>>, req: axum::extract::Request) -> Response {
    admin_request(&app.admin, req, app.body_timeout).await
}

/// The admin API over HTTP (`sluice serve`, `sluice console`): read the
/// body within `body_timeout`, hand the request to the shared handler,
/// which checks the bearer token.
pub(crate) async fn admin_request(
    admin: &Admin,
    req: axum::extract::Request,
    body_timeout: Duration,
) -> Response {
    let (parts, body) = req.into_parts();
    let limit = sluice::admin::MAX_BODY_BYTES;
    let resp = match read_body(body, limit, body_timeout).await {
        Ok(bytes) => {
            sluice::admin::handle(admin, axum::http::Request::from_parts(parts, bytes)).await
        }
        Err(e) => sluice::admin::api::error_response(&match e {
            BodyError::TooLarge => AdminError::TooLarge { limit },
            BodyError::Timeout => AdminError::BodyTimeout(body_timeout),
            BodyError::Unreadable => AdminError::BadRequest("could not read the body".to_owned()),
        }),
    };
    let mut resp = resp.map(Body::from);
    close_if_timed_out(&mut resp);
    resp
}

/// `/metrics` on the main listener: guarded like the admin API (404 with
/// no admin token configured, 401 without the token).
async fn metrics_with_token(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = sluice::admin::api::authorize(&app.admin, &headers) {
        return sluice::admin::api::error_response(&e).map(Body::from);
    }
    metrics(State(app)).await
}

/// The exposition, the queue gauges read now.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.metrics.render(&app.db, &app.gate).await {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(sluice::local::metrics::CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics unavailable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// `--metrics-listen`: `/metrics` alone, without the token, on its own
/// listener (the same HTTP limits as the main one).
async fn serve_metrics(
    at: SocketAddr,
    app: Arc<App>,
    limits: crate::http_server::Limits,
) -> Result<(SocketAddr, oneshot::Sender<()>, JoinHandle<()>), ServeError> {
    let listen = |source| ServeError::Listen { addr: at, source };
    let listener = TcpListener::bind(at).await.map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    let router = Router::new()
        .route("/metrics", get(metrics))
        .with_state(app);
    // A scraper or two: a handful of connections, not another share of
    // the open-file limit.
    let limits = crate::http_server::Limits {
        max_connections: METRICS_CONNECTIONS,
        ..limits
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(crate::http_server::run(listener, router, limits, stopped));
    Ok((addr, stop, task))
}

async fn healthz() -> Response {
    hook_reply(Reply {
        status: 200,
        body: r#"{"status":"ok"}"#.to_owned(),
        content_type: "application/json",
        allow: None,
        echo: None,
    })
}

fn hook_reply(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(reply.content_type),
            ),
            // A handshake echoes the provider's text: never sniffed as HTML.
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        reply.body,
    )
        .into_response();
    if let Some(allow) = reply.allow {
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if let Some((name, value)) = reply.echo {
        resp.headers_mut().insert(name, value);
    }
    resp
}

/// Raise the soft open-file limit (RLIMIT_NOFILE) to the hard one: every
/// client connection is a descriptor, and at a common soft limit of 1,024 a
/// thousand idle clients would leave none for the database or deliveries.
/// Returns (before, after); logs the outcome. A failure is logged, not
/// fatal: the connection bound below adapts to whatever limit is in force.
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    let (before, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit");
            return None;
        }
    };
    match rlimit::increase_nofile_limit(hard) {
        Ok(after) => {
            tracing::info!(soft_before = before, soft = after, hard, "open-file limit");
            Some((before, after))
        }
        Err(e) => {
            tracing::warn!(soft = before, hard, error = %e, "cannot raise the open-file limit");
            Some((before, before))
        }
    }
}

/// `wanted`, or fewer if the open-file limit leaves no room for them beside
/// the descriptors the gateway itself needs ([`RESERVED_FDS`]).
fn connection_limit(wanted: usize) -> usize {
    let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return wanted;
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(16);
    if room < wanted {
        tracing::warn!(
            wanted,
            open_file_limit = soft,
            max_connections = room,
            "the open-file limit caps the connections served at once"
        );
    }
    wanted.min(room)
}

/// An exclusive lock on `{db}.lock`, held for the gateway's life: a second
/// `sluice serve` on the same database would share the queue, and each
/// would take the other's claims for a crashed process's. The operator
/// commands (`sluice events …`) take no lock: they never deliver.
fn lock_database(db: &std::path::Path) -> Result<std::fs::File, ServeError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let locked = |source: Option<std::io::Error>| {
        if let Some(e) = source {
            tracing::debug!(error = %e, "lock file");
        }
        ServeError::Locked {
            path: db.display().to_string(),
            lock: path.display().to_string(),
        }
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ServeError::Store {
            path: path.display().to_string(),
            source: Unavailable::new(e),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(locked(None)),
        Err(std::fs::TryLockError::Error(e)) => Err(locked(Some(e))),
    }
}
