//! The enqueue function's entry point: clients and config built once per
//! execution environment, then one [`sluice_enqueue::handle_json`] per batch of
//! stream records.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sluice::aws::{AwsBackend, AwsSettings};
use sluice_enqueue::{Ports, handle_json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice::aws::init_logging();
    let settings = AwsSettings::from_env()?;
    let backend = AwsBackend::new(&sluice::aws::clients(), &settings);
    let ports = Ports {
        registry: &backend.registry,
        queue: &backend.queue,
        store: &backend.store,
    };
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, Error>(handle_json(ports, event.payload).await)
        },
    ))
    .await
}
