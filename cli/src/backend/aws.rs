//! The AWS backend of the operator commands (the `aws` feature): the admin
//! function's own ports over the deployment's tables, queues and SSM
//! parameters, on the operator's credentials.

use std::collections::HashMap;
use std::path::Path;

use sluice::admin::{Admin, AdminPorts};
use sluice::aws::{self, AwsClients, AwsSettings};
use sluice::secrets::Secret;

use super::{AwsOptions, Backend};
use crate::error::CliError;

/// The AWS backend: the admin function's own ports, on this process's
/// credentials (profile, region, `AWS_ENDPOINT_URL` as the SDK reads them).
pub async fn aws(opts: &AwsOptions) -> Result<Backend, CliError> {
    let (ports, _) = aws_ports(opts).await?;
    let admin = Admin::new(ports, None).map_err(CliError::Usage)?;
    Ok(Backend {
        admin,
        registry: None,
    })
}

/// `sluice console`: the same admin API, behind a bearer token, for the
/// browser; and where providers send webhooks, when the outputs say.
pub async fn aws_admin(
    opts: &AwsOptions,
    token: &Secret,
) -> Result<(Admin, Option<String>), CliError> {
    let (ports, webhook_base) = aws_ports(opts).await?;
    Ok((
        Admin::new(ports, Some(token)).map_err(CliError::Usage)?,
        webhook_base,
    ))
}

/// The output naming the webhook base URL (`…/hooks`), by its
/// CloudFormation name (Terraform's is `webhook_base_url`).
const WEBHOOK_BASE_OUTPUT: &str = "WebhookBaseUrl";

async fn aws_ports(opts: &AwsOptions) -> Result<(AdminPorts, Option<String>), CliError> {
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
    let (mut settings, webhook_base) = aws_settings(opts, &conf).await?;
    // Never a stack output: the operator's local setup (against moto).
    settings.allow_local_destinations =
        aws::settings::allow_local_destinations(|n| std::env::var(n).ok())
            .map_err(|e| CliError::Usage(e.to_string()))?;
    let ports = aws::admin_ports(&AwsClients::from_conf(&conf), &settings)
        .map_err(|e| CliError::Unavailable(e.to_string()))?;
    Ok((ports, webhook_base))
}

/// The settings, and the webhook base URL when the outputs carry it.
async fn aws_settings(
    opts: &AwsOptions,
    conf: &aws_config::SdkConfig,
) -> Result<(AwsSettings, Option<String>), CliError> {
    if let Some(stack) = &opts.stack {
        let outputs = stack_outputs(&aws_sdk_cloudformation::Client::new(conf), stack).await?;
        let settings =
            AwsSettings::from_outputs(|n| outputs.get(n).cloned(), false).map_err(|e| {
                CliError::Usage(format!(
                    "stack {stack}: {e} (deploy the current infra/sam/template.yaml)"
                ))
            })?;
        return Ok((settings, outputs.get(WEBHOOK_BASE_OUTPUT).cloned()));
    }
    if let Some(path) = &opts.outputs_file {
        let outputs = terraform_outputs(path)?;
        let settings = AwsSettings::from_outputs(|n| outputs.get(n).cloned(), true).map_err(|e| {
            CliError::Usage(format!(
                "{}: {e} (the root module must output the sluice module's outputs, as infra/terraform/examples/complete does)",
                path.display()
            ))
        })?;
        let base = outputs
            .get(&aws::settings::terraform_name(WEBHOOK_BASE_OUTPUT))
            .cloned();
        return Ok((settings, base));
    }
    let settings = AwsSettings::from_env().map_err(|e| {
        CliError::Usage(format!(
            "{e} (give --stack NAME or --outputs-file FILE, or set the variables the functions read)"
        ))
    })?;
    Ok((settings, None))
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
