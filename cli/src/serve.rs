//! `sluice serve`: the whole pipeline on one machine, over SQLite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use sluice::admin::ports::Origin;
use sluice::admin::{Admin, AdminError};
use sluice::config::{ConfigError, ConfigFile};
use sluice::delivery::http::{HttpOptions, HttpTransport};
use sluice::error::{ReceiveError, Unavailable};
use sluice::local::registry::RegistryError;
use sluice::local::runtime::{LocalRuntime, RoutingStore, RuntimeOptions};
use sluice::local::{LocalRegistry, LocalSecrets, SqliteStore};
use sluice::pipeline::receive::{Reply, receive};
use sluice::secrets::{EnvSecrets, SecretResolver};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: PathBuf,
    pub listen: SocketAddr,
    pub db: PathBuf,
    /// `KEY=value` file for `env:` secrets; the process environment wins.
    pub env_file: PathBuf,
    pub runtime: RuntimeOptions,
    /// How long shutdown waits for in-flight deliveries.
    pub shutdown_grace: Duration,
}

impl ServeOptions {
    pub fn new(config: PathBuf, listen: SocketAddr, db: PathBuf) -> Self {
        Self {
            config,
            listen,
            db,
            env_file: PathBuf::from(".env"),
            runtime: RuntimeOptions::default(),
            shutdown_grace: Duration::from_secs(30),
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
}

/// A running embedded gateway.
pub struct Gateway {
    addr: SocketAddr,
    stop_http: oneshot::Sender<()>,
    http: JoinHandle<()>,
    runtime: LocalRuntime,
    grace: Duration,
}

impl Gateway {
    /// Load config and secrets, open the database, start the workers, and
    /// listen. Everything that can be wrong with the setup fails here.
    pub async fn start(opts: &ServeOptions) -> Result<Self, ServeError> {
        let file = ConfigFile::load(&opts.config)?;
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
        let admin = Admin::new(
            crate::backend::embedded_ports(&store, secrets, registry.clone(), registry.clone()),
            token.as_ref(),
        )
        .map_err(ServeError::Admin)?;
        // One operator-owned machine: allow_local destinations are fine.
        let transport = HttpTransport::new(HttpOptions {
            allow_local: true,
            ..HttpOptions::default()
        })
        .map_err(|e| ServeError::Transport(e.to_string()))?;
        let runtime = LocalRuntime::start(
            registry.clone(),
            store.clone(),
            Arc::new(transport),
            opts.runtime.clone(),
        );

        let admin_enabled = admin.enabled();
        let app = Arc::new(App {
            registry,
            store: runtime.receive_store(),
            admin,
        });
        let router = Router::new()
            .route("/hooks/{source}", post(hook))
            .route("/healthz", get(healthz))
            .route("/admin", any(admin_api))
            .route("/admin/{*rest}", any(admin_api))
            .with_state(app);
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
        let (stop_http, stopped) = oneshot::channel::<()>();
        let http = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "http server stopped");
            }
        });
        tracing::info!(%addr, db = %opts.db.display(), admin = admin_enabled, "sluice gateway listening");
        Ok(Self {
            addr,
            stop_http,
            http,
            runtime,
            grace: opts.shutdown_grace,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting webhooks, finish in-flight requests and deliveries.
    pub async fn shutdown(self) {
        let _ = self.stop_http.send(());
        let _ = self.http.await;
        self.runtime.shutdown(self.grace).await;
        tracing::info!("sluice gateway stopped");
    }
}

async fn hook(
    State(app): State<Arc<App>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = app.registry.max_body_bytes();
    let result = match axum::body::to_bytes(body, limit).await {
        Ok(body) => {
            receive(
                app.registry.as_ref(),
                &app.store,
                &source,
                headers,
                body,
                SystemTime::now(),
            )
            .await
        }
        Err(e) => Err(read_error(&e, limit)),
    };
    let request_id = sluice::error::new_request_id();
    let mut resp = json_reply(Reply::from_result(&result, &source, &request_id));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut()
            .insert(sluice::error::REQUEST_ID_HEADER, v);
    }
    resp
}

fn read_error(e: &axum::Error, limit: usize) -> ReceiveError {
    if too_large(e) {
        return ReceiveError::BodyTooLarge {
            size: limit + 1,
            limit,
        };
    }
    ReceiveError::BadRequest(format!("could not read the body: {e}"))
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

/// The admin API: read the body, hand the request to the shared handler.
async fn admin_api(State(app): State<Arc<App>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let limit = sluice::admin::MAX_BODY_BYTES;
    let resp = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            sluice::admin::handle(&app.admin, axum::http::Request::from_parts(parts, bytes)).await
        }
        Err(e) if too_large(&e) => {
            sluice::admin::api::error_response(&AdminError::TooLarge { limit })
        }
        Err(e) => sluice::admin::api::error_response(&AdminError::BadRequest(format!(
            "could not read the body: {e}"
        ))),
    };
    resp.map(Body::from)
}

async fn healthz() -> Response {
    json_reply(Reply {
        status: 200,
        body: r#"{"status":"ok"}"#.to_owned(),
    })
}

fn json_reply(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        reply.body,
    )
        .into_response()
}
