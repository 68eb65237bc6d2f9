//! The seam between the operator commands and a backend: a function that
//! builds the admin API's ports ([`AdminPorts`]) for where the gateway
//! keeps its state. The commands only ever see the resulting [`Admin`].
//!
//! Embedded (SQLite, the database `sluice serve` runs on) is the one
//! backend today. An AWS backend (stack outputs, region, profile) goes
//! beside it as another [`BackendOptions`] variant and builder function over
//! the shared crate's AWS ports; nothing else in the CLI changes.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use sluice::admin::ports::Reload;
use sluice::admin::{Admin, AdminPorts};
use sluice::config::{Registry, Source, Subscription};
use sluice::error::Unavailable;
use sluice::local::registry::RegistryError;
use sluice::local::{LocalRegistry, LocalSecrets, SqliteStore};
use sluice::secrets::{EnvSecrets, SecretResolver};
use tokio::sync::OnceCell;

use crate::error::CliError;

/// Where the gateway's state is.
#[derive(Debug, Clone)]
pub enum BackendOptions {
    Embedded(EmbeddedOptions),
}

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The database `sluice serve` uses.
    pub db: PathBuf,
    /// `KEY=value` file for `env:` secrets, as for `sluice serve`.
    pub env_file: PathBuf,
    /// Create the database if it is missing (only `apply` may: any other
    /// command on a missing file is a wrong path, not an empty gateway).
    pub create: bool,
}

/// An opened backend: the admin API over its ports.
pub struct Backend {
    pub admin: Admin,
    registry: Arc<LazyRegistry>,
}

impl Backend {
    /// Load and resolve the config now, so a replay's checks against it
    /// fail as a config error (a secret this process cannot resolve), not
    /// midway.
    pub async fn load_config(&self) -> Result<(), CliError> {
        self.registry.get().await.map(|_| ()).map_err(|e| {
            CliError::Usage(format!(
                "config: {e} (secrets resolve as for `sluice serve`: give the same --env-file)"
            ))
        })
    }
}

pub async fn open(opts: &BackendOptions) -> Result<Backend, CliError> {
    match opts {
        BackendOptions::Embedded(o) => embedded(o),
    }
}

/// The embedded backend: the same store and secrets `sluice serve` builds.
pub fn embedded(opts: &EmbeddedOptions) -> Result<Backend, CliError> {
    if !opts.create && !opts.db.exists() {
        return Err(CliError::Unavailable(format!(
            "no database at {} (give the --db that `sluice serve` uses, or set SLUICE_DB)",
            opts.db.display()
        )));
    }
    let env = EnvSecrets::with_dotenv(&opts.env_file).map_err(CliError::Usage)?;
    let store = SqliteStore::open(&opts.db).map_err(|e| CliError::Unavailable(e.to_string()))?;
    let secrets: Arc<dyn SecretResolver> = Arc::new(LocalSecrets::new(env, store.clone()));
    let registry = Arc::new(LazyRegistry {
        store: store.clone(),
        secrets: secrets.clone(),
        loaded: OnceCell::new(),
    });
    let admin = Admin::new(
        embedded_ports(&store, secrets, registry.clone(), registry.clone()),
        None,
    )
    .map_err(CliError::Usage)?;
    Ok(Backend { admin, registry })
}

/// The admin ports over the embedded database; `sluice serve` and the CLI
/// differ only in the registry they check against.
pub fn embedded_ports(
    store: &SqliteStore,
    secrets: Arc<dyn SecretResolver>,
    registry: Arc<dyn Registry>,
    reload: Arc<dyn Reload>,
) -> AdminPorts {
    AdminPorts {
        config: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        secret_store: Arc::new(store.clone()),
        secrets,
        registry,
        reload,
    }
}

/// The config table's registry, loaded on first use: listing events needs
/// no config, and must not fail because this process cannot resolve a
/// secret the gateway can. Reloading is the gateway's business (it polls
/// the table's version), so for one CLI command it only rebuilds what was
/// loaded.
struct LazyRegistry {
    store: SqliteStore,
    secrets: Arc<dyn SecretResolver>,
    loaded: OnceCell<LocalRegistry>,
}

impl LazyRegistry {
    async fn get(&self) -> Result<&LocalRegistry, RegistryError> {
        self.loaded
            .get_or_try_init(|| LocalRegistry::load(self.store.clone(), self.secrets.clone()))
            .await
    }

    async fn registry(&self) -> Result<&LocalRegistry, Unavailable> {
        self.get()
            .await
            .map_err(|e| Unavailable(format!("config: {e}")))
    }
}

#[async_trait]
impl Registry for LazyRegistry {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, Unavailable> {
        self.registry().await?.source(id).await
    }

    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable> {
        self.registry().await?.subscriptions_of(source).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable> {
        self.registry().await?.subscription(id).await
    }

    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable> {
        self.registry().await?.disable_subscription(id).await
    }
}

#[async_trait]
impl Reload for LazyRegistry {
    async fn reload(&self) -> Result<(), Unavailable> {
        match self.loaded.get() {
            Some(r) => Reload::reload(r).await,
            None => Ok(()),
        }
    }
}
