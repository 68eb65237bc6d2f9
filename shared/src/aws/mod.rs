//! The AWS adapters (cargo feature `aws`): DynamoDB for the event store and
//! the config table, SQS for the delivery queue, SSM Parameter Store for
//! secrets.
//!
//! | module | port | AWS |
//! |---|---|---|
//! | [`dynamo_store`] | `EventStore` | events table (the commit; its stream is the outbox) and deliveries table |
//! | [`sqs_queue`] | `DeliveryQueue` | delivery queue and DLQ |
//! | [`ssm_secrets`] | `SecretResolver`, `SecretKeeper` | `ssm:/path` via GetParameter (decrypted), cached; `env:` as usual; handshakes' secrets written once below `{prefix}/handshake/` |
//! | [`config_table`] | `Registry` | config table, scanned and cached |
//! | [`admin`] | `ConfigStore`, `SecretStore`, `Reload` | config table, SSM SecureString parameters |
//! | [`event_log`] | `EventLog` | events and deliveries tables (scans, replays as new events items), DLQ |
//! | [`gate`] | `Gate` | gates table: each subscription's rate limit, in-flight sends and circuit (read, then a PutItem conditioned on the version read) |
//! | [`poller_state`] | `PollerStates` | pollers table: each poller's state and its claim (one conditional UpdateItem) |
//! | [`item`] | | the one mapping between records and DynamoDB attribute values |
//! | [`settings`] | | the environment variables |
//! | [`metrics`] | | CloudWatch Embedded Metric Format lines of the functions |
//!
//! Clients are built once per process with [`clients`], from the Lambda
//! environment ([`sdk_config`]): region, credentials, `AWS_ENDPOINT_URL`.

use std::sync::Arc;

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use crate::error::Unavailable;

pub mod admin;
pub mod config_table;
pub mod dynamo_store;
pub mod event_log;
pub mod gate;
pub mod item;
pub mod logging;
pub mod metrics;
pub mod poller_state;
pub mod settings;
pub mod sqs_queue;
pub mod ssm_secrets;
#[doc(hidden)]
pub mod testing;

pub use config_table::{ConfigTableError, DynamoRegistry, put_config};
pub use dynamo_store::DynamoStore;
pub use event_log::DynamoEventLog;
pub use gate::DynamoGate;
pub use logging::init_logging;
pub use metrics::Metrics;
pub use poller_state::DynamoPollerStates;
pub use settings::{AwsSettings, SettingsError};
pub use sqs_queue::{SqsQueue, parse_task};
pub use ssm_secrets::{SsmSecretKeeper, SsmSecrets};

/// The SDK clients the adapters use. Cloning is cheap (they share one
/// connection pool per service).
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl AwsClients {
    pub fn from_conf(conf: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(conf),
            sqs: aws_sdk_sqs::Client::new(conf),
            ssm: aws_sdk_ssm::Client::new(conf),
        }
    }
}

/// The SDK configuration of a Lambda execution environment, read from the
/// variables Lambda sets: `AWS_REGION` (else `AWS_DEFAULT_REGION`), the
/// role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), plus `AWS_ENDPOINT_URL` (an emulator such as
/// moto), `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT`.
///
/// Not aws-config's default chain: profiles, SSO, web identity, container
/// and instance metadata never supply credentials to a Lambda function,
/// and that chain (with the STS client it carries) was about 210 KB of
/// each zip and a probe of every source at init. The CLI, which runs on
/// operators' machines, uses the full chain.
pub fn sdk_config() -> SdkConfig {
    sdk_config_from(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// One attempt of an SDK call: a stalled connection is cut and retried
/// well before the function's own timeout (receive has 10 s).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// A whole SDK call, retries included: a 503 to the provider (who
/// retries) beats Lambda killing the invocation, which answers 502 with
/// no body and no log of why.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// The functions' timeouts of every SDK call.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

fn sdk_config_from(var: impl Fn(&str) -> Option<String>) -> SdkConfig {
    let flag = |name: &str| var(name).map(|v| v.eq_ignore_ascii_case("true"));
    let mut conf = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .region(
            var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .map(Region::new),
        )
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ));
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        conf = conf.endpoint_url(url);
    }
    if let Some(fips) = flag("AWS_USE_FIPS_ENDPOINT") {
        conf = conf.use_fips(fips);
    }
    if let Some(dual) = flag("AWS_USE_DUALSTACK_ENDPOINT") {
        conf = conf.use_dual_stack(dual);
    }
    conf.build()
}

/// The clients of a Lambda execution environment ([`sdk_config`]). Each
/// function's `main` builds them once and shares them for its lifetime.
pub fn clients() -> AwsClients {
    AwsClients::from_conf(&sdk_config())
}

/// Everything the three functions need, built from one set of clients and
/// settings.
pub struct AwsBackend {
    pub store: DynamoStore,
    pub queue: SqsQueue,
    pub secrets: Arc<SsmSecrets>,
    pub registry: DynamoRegistry,
}

impl AwsBackend {
    pub fn new(clients: &AwsClients, settings: &AwsSettings) -> Self {
        let secrets = Arc::new(SsmSecrets::new(
            clients.ssm.clone(),
            crate::secrets::EnvSecrets::new(),
            settings.secrets_ttl,
        ));
        Self {
            store: DynamoStore::new(
                clients.dynamodb.clone(),
                &settings.events_table,
                &settings.deliveries_table,
            ),
            queue: SqsQueue::new(clients.sqs.clone(), &settings.queue_url, &settings.dlq_url),
            registry: DynamoRegistry::new(
                clients.dynamodb.clone(),
                &settings.config_table,
                secrets.clone(),
                settings.config_ttl,
            )
            .with_policy(settings.policy()),
            secrets,
        }
    }

    /// The receive function's: sources' handshakes (Asana's) may write
    /// their secret, once, below `{ssm_prefix}/handshake/`.
    pub fn keeping_handshake_secrets(
        mut self,
        clients: &AwsClients,
        settings: &AwsSettings,
    ) -> Self {
        let keeper = SsmSecretKeeper::new(clients.ssm.clone(), &settings.ssm_prefix);
        self.registry = self.registry.with_keeper(Arc::new(keeper));
        self
    }
}

/// Why the admin API's ports could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    #[error("building the HTTP client: {0}")]
    Http(#[from] crate::poll::FetchError),
}

/// The admin API's ports on AWS, built from one set of clients and
/// settings: the config table, SSM (secrets under `settings.ssm_prefix`),
/// the event log over the events and deliveries tables and the DLQ, and a
/// registry of its own that each config change reloads (other Lambda
/// environments see a change within their config cache TTL); and the
/// pollers table with what "poll now" needs (the events table, whose
/// stream routes what it commits). A deployment without a pollers table
/// (an older stack, read by the CLI) gets [`poller_state::NoPollersTable`],
/// and one without a gates table [`gate::NoGatesTable`].
pub fn admin_ports(
    clients: &AwsClients,
    settings: &AwsSettings,
) -> Result<crate::admin::AdminPorts, PortsError> {
    let secrets = Arc::new(SsmSecrets::new(
        clients.ssm.clone(),
        crate::secrets::EnvSecrets::new(),
        settings.secrets_ttl,
    ));
    let registry = Arc::new(
        DynamoRegistry::new(
            clients.dynamodb.clone(),
            &settings.config_table,
            secrets.clone(),
            settings.config_ttl,
        )
        .with_policy(settings.policy()),
    );
    Ok(crate::admin::AdminPorts {
        config: Arc::new(admin::DynamoConfigStore::new(
            clients.dynamodb.clone(),
            &settings.config_table,
        )),
        events: Arc::new(DynamoEventLog::new(
            clients.dynamodb.clone(),
            clients.sqs.clone(),
            &settings.events_table,
            &settings.deliveries_table,
            &settings.dlq_url,
        )),
        secret_store: Arc::new(admin::SsmSecretStore::new(
            clients.ssm.clone(),
            &settings.ssm_prefix,
        )),
        secrets,
        registry: registry.clone(),
        reload: registry,
        policy: settings.policy(),
        pollers: crate::admin::PollerPorts {
            states: match &settings.pollers_table {
                Some(table) => Arc::new(poller_state::DynamoPollerStates::new(
                    clients.dynamodb.clone(),
                    table,
                )),
                None => Arc::new(poller_state::NoPollersTable),
            },
            store: Arc::new(DynamoStore::new(
                clients.dynamodb.clone(),
                &settings.events_table,
                &settings.deliveries_table,
            )),
            fetch: Arc::new(crate::poll::HttpFetch::new(
                &crate::delivery::HttpOptions {
                    allow_local: settings.allow_local_destinations,
                    ..crate::delivery::HttpOptions::default()
                },
            )?),
        },
        gate: match &settings.gates_table {
            Some(table) => Arc::new(gate::DynamoGate::new(clients.dynamodb.clone(), table)),
            None => Arc::new(gate::NoGatesTable),
        },
    })
}

/// Error codes of requests the service refused for what they are (not
/// for its state): the same request fails the same way every time.
const PERMANENT_CODES: &[&str] = &[
    "ValidationException",
    "ItemCollectionSizeLimitExceededException",
    "SerializationException",
    "InvalidParameterValue",
    "InvalidParameterValueException",
    "ValidationError",
];

/// An SDK failure as the ports report it, for the log: which call, and the
/// whole error chain (service code and message, or the transport error).
/// Transient (throttling, timeouts, 5xx, anything unknown) unless the
/// service refused the request itself ([`PERMANENT_CODES`]).
pub(crate) fn sdk_error<E>(call: &str, e: E) -> Unavailable
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let permanent = e.code().is_some_and(|c| PERMANENT_CODES.contains(&c));
    let message = format!(
        "{call}: {}",
        aws_sdk_dynamodb::error::DisplayErrorContext(e)
    );
    if permanent {
        Unavailable::permanent(message)
    } else {
        Unavailable::new(message)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::aws::testing::{MotoServer, TestResources};
    use crate::model::{DeliveryTask, Event};
    use crate::queue::DeliveryQueue;
    use crate::store::{Commit, EventStore};

    /// Set only in the child process of
    /// `process_clients_follow_the_standard_environment`.
    const CHILD: &str = "SLUICE_T_AWS_ENV_CHILD";

    /// The process-wide clients and settings come from the environment
    /// alone (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials, `SLUICE_*`).
    /// The environment cannot be changed inside this test process, so this
    /// test runs the test binary again with it set.
    #[tokio::test]
    async fn process_clients_follow_the_standard_environment() {
        let res = TestResources::create(MotoServer::shared()).await;
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "aws::tests::env_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .envs(res.settings.to_vars())
            .env(CHILD, "1")
            .env("AWS_ENDPOINT_URL", &res.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("env child: ok"), "{text}");
        // What the child wrote is there.
        let store = DynamoStore::new(
            res.clients.dynamodb.clone(),
            &res.settings.events_table,
            &res.settings.deliveries_table,
        );
        let key = crate::model::EventKey::new("envsrc", "env-1");
        assert_eq!(store.load(&key).await.unwrap().unwrap().body_hash, "h");
    }

    #[test]
    fn sdk_config_reads_the_lambda_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            sdk_config_from(move |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let conf = env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5050"),
            ("AWS_USE_FIPS_ENDPOINT", "TRUE"),
        ]);
        assert_eq!(conf.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(conf.endpoint_url(), Some("http://127.0.0.1:5050"));
        assert_eq!(conf.use_fips(), Some(true));
        assert_eq!(conf.use_dual_stack(), None);
        assert!(conf.credentials_provider().is_some());
        assert!(conf.behavior_version().is_some());
        // Every call is bounded, well inside receive's 10 s.
        let timeouts = conf.timeout_config().unwrap();
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert!(OPERATION_TIMEOUT < Duration::from_secs(10));

        let conf = env(&[
            ("AWS_DEFAULT_REGION", "us-east-2"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "false"),
        ]);
        assert_eq!(conf.region().map(|r| r.as_ref()), Some("us-east-2"));
        assert_eq!(conf.endpoint_url(), None);
        assert_eq!(conf.use_dual_stack(), Some(false));
        assert_eq!(env(&[]).region(), None);
    }

    /// The child half of the test above; does nothing in a normal run.
    #[tokio::test]
    async fn env_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let settings = AwsSettings::from_env().unwrap();
        let first = clients();
        let backend = AwsBackend::new(&first, &settings);
        let event = Event {
            source: "envsrc".into(),
            id: "env-1".into(),
            event_type: "t".into(),
            received_at_ms: 1,
            expires_at: 2,
            body: bytes::Bytes::from_static(b"{}"),
            body_hash: "h".into(),
            content_type: None,
            headers: crate::model::Headers::default(),
        };
        assert_eq!(
            backend.store.commit(&event).await.unwrap(),
            Commit::Accepted
        );
        let task = DeliveryTask {
            source: "envsrc".into(),
            event_id: "env-1".into(),
            subscription: "s".into(),
        };
        assert!(backend.queue.send(&[task]).await.unwrap().is_empty());
        assert!(
            crate::config::Registry::source(&backend.registry, "x")
                .await
                .unwrap()
                .is_none()
        );
        println!("env child: ok");
    }
}
