//! The poll function's entry point: clients, the pollers table, the event
//! store and the fetch client built once per execution environment, then
//! one [`sluice_poll::handle`] per scheduled run.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sluice::aws::admin::DynamoConfigStore;
use sluice::aws::{AwsSettings, DynamoPollerStates, DynamoStore, SsmSecrets};
use sluice::delivery::HttpOptions;
use sluice::poll::{HttpFetch, PollPorts};
use sluice_poll::{Ports, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice::aws::init_logging();
    let settings = AwsSettings::from_env()?;
    let clients = sluice::aws::clients();
    let store = DynamoStore::new(
        clients.dynamodb.clone(),
        &settings.events_table,
        &settings.deliveries_table,
    );
    let secrets = SsmSecrets::new(
        clients.ssm.clone(),
        sluice::secrets::EnvSecrets::new(),
        settings.secrets_ttl,
    );
    let states = DynamoPollerStates::new(clients.dynamodb.clone(), settings.pollers_table()?);
    let config = DynamoConfigStore::new(clients.dynamodb.clone(), &settings.config_table);
    // Loopback and private apps only where the deployment allows them.
    let fetch = HttpFetch::new(&HttpOptions {
        allow_local: settings.allow_local_destinations,
        ..HttpOptions::default()
    })?;
    let ports = Ports {
        config: &config,
        poll: PollPorts {
            states: &states,
            store: &store,
            fetch: &fetch,
            secrets: &secrets,
            // Set per run from the config entries (`handle`).
            notify: false,
        },
        policy: settings.policy(),
    };
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            // A failed run fails the invocation: the errors alarm sees it.
            handle(ports, event.payload).await.map_err(Error::from)
        },
    ))
    .await
}
