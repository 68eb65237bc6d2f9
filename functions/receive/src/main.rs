//! The receive function's entry point: clients and config built once per
//! execution environment, then one [`sluice_receive::handle_invocation`] per
//! request.

use std::time::SystemTime;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sluice::aws::{AwsBackend, AwsSettings};
use sluice_receive::{Ports, handle_invocation};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice::aws::init_logging();
    let settings = AwsSettings::from_env()?;
    let clients = sluice::aws::clients();
    let backend =
        AwsBackend::new(&clients, &settings).keeping_handshake_secrets(&clients, &settings);
    let ports = Ports {
        registry: &backend.registry,
        store: &backend.store,
    };
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, Error>(
                handle_invocation(
                    ports,
                    event.payload,
                    &event.context.request_id,
                    SystemTime::now(),
                )
                .await,
            )
        },
    ))
    .await
}
