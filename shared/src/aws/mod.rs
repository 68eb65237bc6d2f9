//! The AWS adapters (cargo feature `aws`): DynamoDB for the event store and
//! the config table, SQS for the delivery queue, SSM Parameter Store for
//! secrets.
//!
//! | module | port | AWS |
//! |---|---|---|
//! | [`dynamo_store`] | `EventStore` | events table (the commit; its stream is the outbox) and deliveries table |
//! | [`sqs_queue`] | `DeliveryQueue` | delivery queue and DLQ |
//! | [`ssm_secrets`] | `SecretResolver` | `ssm:/path` via GetParameter (decrypted), cached; `env:` as usual |
//! | [`config_table`] | `Registry` | config table, scanned and cached |
//! | [`item`] | | the one mapping between records and DynamoDB attribute values |
//! | [`settings`] | | the environment variables |
//!
//! Clients are built once per process with [`clients`]; the SDK reads
//! `AWS_REGION`, the credentials and `AWS_ENDPOINT_URL` itself.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

use crate::error::Unavailable;

pub mod config_table;
pub mod dynamo_store;
pub mod item;
pub mod settings;
pub mod sqs_queue;
pub mod ssm_secrets;
#[doc(hidden)]
pub mod testing;

pub use config_table::{ConfigTableError, DynamoRegistry, put_config};
pub use dynamo_store::DynamoStore;
pub use settings::{AwsSettings, SettingsError};
pub use sqs_queue::{SqsQueue, parse_task};
pub use ssm_secrets::SsmSecrets;

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

/// The SDK configuration from the standard sources (environment, profile,
/// container/instance metadata), including `AWS_ENDPOINT_URL`.
pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// The process-wide clients, built on first use and shared afterwards
/// (a Lambda builds them once per execution environment).
pub async fn clients() -> AwsClients {
    static CLIENTS: OnceCell<AwsClients> = OnceCell::const_new();
    CLIENTS
        .get_or_init(|| async { AwsClients::from_conf(&sdk_config().await) })
        .await
        .clone()
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
            ),
            secrets,
        }
    }
}

/// An SDK failure as the ports report it: which call, and the whole error
/// chain (service code and message, or the transport error).
pub(crate) fn sdk_error(call: &str, e: impl std::error::Error + 'static) -> Unavailable {
    Unavailable(format!(
        "{call}: {}",
        aws_sdk_dynamodb::error::DisplayErrorContext(e)
    ))
}
