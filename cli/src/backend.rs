//! The seam between the operator commands and a backend: a function that
//! builds the admin API's ports ([`AdminPorts`]) for where the gateway
//! keeps its state. The commands only ever see the resulting [`Admin`].
//!
//! Two backends: embedded (SQLite, the database `sluice serve` runs on) and
//! AWS ([`sluice::aws::admin_ports`] over the deployment's tables, queues
//! and SSM parameters, found from its stack outputs or `SLUICE_*`
//! variables). The commands are the same on both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use sluice::admin::ports::Reload;
use sluice::admin::{Admin, AdminPorts};
use sluice::aws::{self, AwsClients, AwsSettings};
use sluice::config::{Registry, Source, SourceError, Subscription};
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
    Aws(AwsOptions),
}

/// Where a deployment on AWS says where its resources are: one of these,
/// else the `SLUICE_*` variables the functions read.
#[derive(Debug, Clone)]
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
        BackendOptions::Embedded(o) => embedded(o),
        BackendOptions::Aws(o) => aws(o).await,
    }
}

/// The AWS backend: the admin function's own ports, on this process's
/// credentials (profile, region, `AWS_ENDPOINT_URL` as the SDK reads them).
pub async fn aws(opts: &AwsOptions) -> Result<Backend, CliError> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    // Operators' networks are slower than a Lambda's: longer than the
    // functions' timeouts, but a stalled call still ends.
    loader = loader.timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(std::time::Duration::from_secs(10))
            .operation_timeout(std::time::Duration::from_secs(30))
            .build(),
    );
    let conf = loader.load().await;
    if conf.region().is_none() {
        return Err(CliError::Usage(
            "no AWS region: give --region, set AWS_REGION, or use a profile with one".into(),
        ));
    }
    let mut settings = aws_settings(opts, &conf).await?;
    // Never a stack output: the operator's local setup (against moto).
    settings.allow_local_destinations =
        aws::settings::allow_local_destinations(|n| std::env::var(n).ok())
            .map_err(|e| CliError::Usage(e.to_string()))?;
    let ports = aws::admin_ports(&AwsClients::from_conf(&conf), &settings);
    let admin = Admin::new(ports, None).map_err(CliError::Usage)?;
    Ok(Backend {
        admin,
        registry: None,
    })
}

async fn aws_settings(
    opts: &AwsOptions,
    conf: &aws_config::SdkConfig,
) -> Result<AwsSettings, CliError> {
    if let Some(stack) = &opts.stack {
        let outputs = stack_outputs(&aws_sdk_cloudformation::Client::new(conf), stack).await?;
        return AwsSettings::from_outputs(|n| outputs.get(n).cloned(), false).map_err(|e| {
            CliError::Usage(format!(
                "stack {stack}: {e} (deploy the current infra/sam/template.yaml)"
            ))
        });
    }
    if let Some(path) = &opts.outputs_file {
        let outputs = terraform_outputs(path)?;
        return AwsSettings::from_outputs(|n| outputs.get(n).cloned(), true).map_err(|e| {
            CliError::Usage(format!(
                "{}: {e} (the root module must output the sluice module's outputs, as infra/terraform/examples/complete does)",
                path.display()
            ))
        });
    }
    AwsSettings::from_env().map_err(|e| {
        CliError::Usage(format!(
            "{e} (give --stack NAME or --outputs-file FILE, or set the variables the functions read)"
        ))
    })
}

/// The stack's outputs by name. A stack that does not exist is a usage
/// error; anything else (credentials, network) means AWS is unavailable.
async fn stack_outputs(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<HashMap<String, String>, CliError> {
    use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};
    let out = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            if e.code() == Some("ValidationError") {
                let why = e.message().unwrap_or("not found");
                CliError::Usage(format!("stack {stack}: {why}"))
            } else {
                CliError::Unavailable(format!(
                    "DescribeStacks {stack}: {}",
                    DisplayErrorContext(e)
                ))
            }
        })?;
    let Some(found) = out.stacks().first() else {
        return Err(CliError::Usage(format!("stack {stack} does not exist")));
    };
    Ok(found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// `terraform output -json`: `{"name": {"value": …, "type": …}, …}`; the
/// string outputs by name.
fn terraform_outputs(path: &Path) -> Result<HashMap<String, String>, CliError> {
    let bad = |e: &dyn std::fmt::Display| {
        CliError::Usage(format!(
            "{}: {e} (expected the JSON of `terraform output -json`)",
            path.display()
        ))
    };
    let text = std::fs::read(path).map_err(|e| bad(&e))?;
    let doc: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&text).map_err(|e| bad(&e))?;
    Ok(doc
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.get("value")?.as_str()?.to_owned())))
        .collect())
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
) -> AdminPorts {
    AdminPorts {
        config: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        secret_store: Arc::new(store.clone()),
        secrets,
        registry,
        reload,
        policy: sluice::config::Policy::EMBEDDED,
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
