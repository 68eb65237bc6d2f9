//! The deliver function's entry point: clients, config and the HTTP
//! transport built once per execution environment, then one
//! [`sluice_deliver::handle`] per batch of SQS messages.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sluice::aws::{AwsBackend, AwsSettings, DynamoGate};
use sluice::delivery::{HttpOptions, HttpTransport};
use sluice_deliver::{Ports, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice::aws::init_logging();
    let settings = AwsSettings::from_env()?;
    let clients = sluice::aws::clients();
    let backend = AwsBackend::new(&clients, &settings);
    let gate = DynamoGate::new(clients.dynamodb.clone(), settings.gates_table()?);
    // The loopback-capable client only where the deployment allows it.
    let transport = HttpTransport::new(HttpOptions {
        allow_local: settings.allow_local_destinations,
        ..HttpOptions::default()
    })?;
    let ports = Ports {
        registry: &backend.registry,
        store: &backend.store,
        queue: &backend.queue,
        transport: &transport,
        gate: &gate,
        options: sluice::pipeline::deliver::DeliverOptions::default(),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handle(ports, event.payload).await)
    }))
    .await
}
