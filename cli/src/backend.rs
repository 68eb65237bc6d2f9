//! The seam between the operator commands and a backend: a function that
//! builds the admin API's ports ([`AdminPorts`]) for where the gateway
//! keeps its state. The commands only ever see the resulting [`Admin`].
//!
//! Two backends: embedded (SQLite, the database `sluice serve` runs on) and
//! AWS (`sluice::aws::admin_ports` over the deployment's tables, queues
//! and SSM parameters, found from its stack outputs or `SLUICE_*`
//! variables; built with the `aws` cargo feature, in `backend/aws.rs`). The commands are the
//! same on both.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use sluice::admin::ports::Reload;
use sluice::admin::{Admin, AdminPorts, PollerPorts};
use sluice::config::{Registry, Source, SourceError, Subscription};
use sluice::delivery::HttpOptions;
use sluice::error::Unavailable;
use sluice::gate::Gate;
use sluice::local::registry::RegistryError;
use sluice::local::runtime::RoutingStore;
use sluice::local::{LocalGate, LocalRegistry, LocalSecrets, SqliteStore};
use sluice::poll::{Fetch, FetchError, HttpFetch};
use sluice::secrets::{EnvSecrets, Keep, Secret, SecretRef, SecretResolver};
use tokio::sync::OnceCell;

use crate::error::CliError;

/// Where the gateway's state is.
#[derive(Debug, Clone)]
pub enum BackendOptions {
    Embedded(EmbeddedOptions),
    Aws(AwsOptions),
}

/// Where a deployment on AWS says where its resources are: one of these,
/// else the `SLUICE_*` variables the functions read.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub struct AwsOptions {
    /// A CloudFormation (SAM) stack's outputs.
    pub stack: Option<String>,
    /// `terraform output -json`, saved.
    pub outputs_file: Option<PathBuf>,
    pub region: Option<String>,
    pub profile: Option<String>,
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
    /// Embedded only: on AWS the registry loads the config table when the
    /// admin API first needs it, and reports a failure as its own answer.
    registry: Option<Arc<LazyRegistry>>,
}

impl Backend {
    /// Load and resolve the config now, so that a config table this
    /// process cannot read fails as a config error, not midway. Entries
    /// whose secret this process cannot resolve are set aside one by one
    /// (as `sluice serve` does): a replay to one of them is refused with
    /// the reason, and the others go ahead.
    pub async fn load_config(&self) -> Result<(), CliError> {
        let Some(registry) = &self.registry else {
            return Ok(());
        };
        registry.get().await.map(|_| ()).map_err(|e| {
            CliError::Usage(format!(
                "config: {e} (secrets resolve as for `sluice serve`: give the same --env-file)"
            ))
        })
    }
}

pub async fn open(opts: &BackendOptions) -> Result<Backend, CliError> {
    match opts {
        BackendOptions::Embedded(o) => embedded(o).await,
        BackendOptions::Aws(o) => aws(o).await,
    }
}

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
use aws::aws;
#[cfg(feature = "aws")]
pub use aws::aws_admin;

/// Built without the `aws` feature: say how to get it, not "unknown flag".
#[cfg(not(feature = "aws"))]
fn without_aws() -> CliError {
    CliError::Usage(
        "this sluice was built without the AWS backend (--aws, --stack, --outputs-file): \
         build it with `cargo build --release -p sluice-cli --features aws`"
            .into(),
    )
}

#[cfg(not(feature = "aws"))]
async fn aws(_: &AwsOptions) -> Result<Backend, CliError> {
    Err(without_aws())
}

/// `sluice console`'s admin API over AWS, behind `token`, and the
/// deployment's webhook base URL when its outputs name it.
#[cfg(not(feature = "aws"))]
pub async fn aws_admin(
    _: &AwsOptions,
    _: &sluice::secrets::Secret,
) -> Result<(Admin, Option<String>), CliError> {
    Err(without_aws())
}

/// The embedded backend: the same store and secrets `sluice serve` builds.
pub async fn embedded(opts: &EmbeddedOptions) -> Result<Backend, CliError> {
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
    let fetch = embedded_fetch().map_err(|e| CliError::Unavailable(e.to_string()))?;
    // The circuits as the gateway last saved them.
    let gate = LocalGate::load(store.clone())
        .await
        .map_err(|e| CliError::Unavailable(e.to_string()))?;
    let admin = Admin::new(
        embedded_ports(
            &store,
            secrets,
            registry.clone(),
            registry.clone(),
            fetch,
            Arc::new(gate),
        ),
        None,
    )
    .map_err(CliError::Usage)?;
    Ok(Backend {
        admin,
        registry: Some(registry),
    })
}

/// The admin ports over the embedded database; `sluice serve` and the CLI
/// differ only in the registry they check against.
pub fn embedded_ports(
    store: &SqliteStore,
    secrets: Arc<dyn SecretResolver>,
    registry: Arc<dyn Registry>,
    reload: Arc<dyn Reload>,
    fetch: Arc<dyn Fetch>,
    gate: Arc<dyn Gate>,
) -> AdminPorts {
    AdminPorts {
        config: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        secret_store: Arc::new(store.clone()),
        secrets,
        registry: registry.clone(),
        reload,
        policy: sluice::config::Policy::EMBEDDED,
        pollers: PollerPorts {
            states: Arc::new(store.clone()),
            // "Poll now" routes at commit and queues the deliveries; the
            // gateway's delivery worker (this process's, or the running
            // `sluice serve` beside a CLI) sends them.
            store: Arc::new(RoutingStore::queueing(store.clone(), registry)),
            fetch,
        },
        gate,
    }
}

/// The fetch of polled apps on one machine: local apps may be polled.
pub fn embedded_fetch() -> Result<Arc<dyn Fetch>, FetchError> {
    Ok(Arc::new(HttpFetch::new(&HttpOptions {
        allow_local: true,
        ..HttpOptions::default()
    })?))
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
            .map_err(|e| Unavailable::new(format!("config: {e}")))
    }
}

#[async_trait]
impl Registry for LazyRegistry {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, SourceError> {
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

    async fn keep_handshake_secret(
        &self,
        source: &str,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, Unavailable> {
        self.registry()
            .await?
            .keep_handshake_secret(source, reference, value)
            .await
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
