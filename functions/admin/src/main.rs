//! The admin function's entry point: the AWS ports and the admin API built
//! once per execution environment, then one [`sluice_admin::handle_event`]
//! per request.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sluice::aws::{AwsSettings, admin_ports};
use sluice_admin::{IamGate, handle_event};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sluice::aws::init_logging();
    let settings = AwsSettings::from_env()?;
    let gate = IamGate::new(admin_ports(&sluice::aws::clients(), &settings)?)?;
    let gate = &gate;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, Error>(handle_event(gate, event.payload).await)
        },
    ))
    .await
}
