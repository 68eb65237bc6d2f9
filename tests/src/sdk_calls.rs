//! Which AWS calls a Lambda function's code makes, observed rather than
//! declared: an SDK interceptor on the clients a test hands to one
//! function's ports records every operation it runs, as its IAM action
//! (`dynamodb:PutItem`), with the resource it was made on.
//!
//! Resources are named the way the function crates declare them in
//! `SDK_RESOURCES`: a table or queue by the environment variable that names
//! it (`SLUICE_EVENTS_TABLE`), an SSM parameter below the deployment's
//! prefix as [`SSM_PARAMETERS`]. Anything else is recorded as it is, so
//! that it shows up as undeclared.
//!
//! The interceptor only reads; the calls go to moto unchanged.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use sluice::aws::AwsSettings;

/// The resource name of SSM parameters below the deployment's prefix (the
/// templates grant `ssm:GetParameter` on `parameter{prefix}/*`).
pub const SSM_PARAMETERS: &str = "ssm:{prefix}/*";

/// The resource name of a write below `{prefix}/handshake/` (the templates
/// grant the receive function `ssm:PutParameter` there alone).
pub const SSM_HANDSHAKE_PARAMETERS: &str = "ssm:{prefix}/handshake/*";

/// One observed call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub function: &'static str,
    /// IAM action form: `dynamodb:PutItem`.
    pub action: String,
    /// See the module documentation.
    pub resource: String,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} on {}", self.function, self.action, self.resource)
    }
}

/// A set of observed calls, shared by the recorders made from it.
#[derive(Debug, Clone, Default)]
pub struct SdkCalls(Arc<Mutex<BTreeSet<Call>>>);

impl SdkCalls {
    /// An interceptor that records the calls of `function`, naming
    /// resources with `resources`.
    pub fn recorder(&self, function: &'static str, resources: Resources) -> Recorder {
        Recorder {
            function,
            resources: Arc::new(resources),
            calls: self.clone(),
        }
    }

    pub fn calls(&self) -> BTreeSet<Call> {
        self.lock().clone()
    }

    /// Add every call of `other`.
    pub fn extend(&self, other: &SdkCalls) {
        let theirs = other.calls();
        self.lock().extend(theirs);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<Call>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How to name the resource of a call: table names and queue URLs by the
/// variable that carries them, parameter names by the prefix.
#[derive(Debug, Clone)]
pub struct Resources {
    by_value: Vec<(String, &'static str)>,
    ssm_prefix: String,
}

impl Resources {
    /// The resources of one deployment: its settings, and the SSM prefix
    /// its secrets live under (`/sluice`, without a trailing slash).
    pub fn new(settings: &AwsSettings, ssm_prefix: &str) -> Self {
        Self {
            by_value: settings
                .to_vars()
                .into_iter()
                .map(|(var, value)| (value, var))
                .collect(),
            ssm_prefix: format!("{}/", ssm_prefix.trim_end_matches('/')),
        }
    }

    fn table_or_queue(&self, value: Option<&str>) -> String {
        let value = value.unwrap_or("(none)");
        self.by_value
            .iter()
            .find(|(v, _)| v == value)
            .map_or_else(|| value.to_owned(), |(_, var)| (*var).to_owned())
    }

    /// A read below the prefix is on [`SSM_PARAMETERS`]; a write is on
    /// [`SSM_HANDSHAKE_PARAMETERS`] if it is below `handshake/`.
    fn parameter(&self, name: Option<&str>, write: bool) -> String {
        match name.and_then(|n| n.strip_prefix(&self.ssm_prefix)) {
            Some(rest) if write && rest.starts_with("handshake/") => {
                SSM_HANDSHAKE_PARAMETERS.to_owned()
            }
            Some(_) => SSM_PARAMETERS.to_owned(),
            None => format!("ssm parameter {}", name.unwrap_or("(none)")),
        }
    }
}

/// The interceptor; see [`SdkCalls::recorder`].
#[derive(Debug, Clone)]
pub struct Recorder {
    function: &'static str,
    resources: Arc<Resources>,
    calls: SdkCalls,
}

/// `DynamoDB` → `dynamodb`, `SQS` → `sqs`, `SSM` → `ssm`: the IAM service
/// prefixes of the services the functions use.
fn iam_prefix(service: &str) -> String {
    service.to_ascii_lowercase()
}

/// The IAM action that authorises an operation. SQS has no permissions of
/// its own for its batch operations: `SendMessageBatch` is allowed by
/// `sqs:SendMessage`, and so on.
pub fn iam_action(service: &str, operation: &str) -> String {
    let prefix = iam_prefix(service);
    let name = match (prefix.as_str(), operation) {
        ("sqs", "SendMessageBatch") => "SendMessage",
        ("sqs", "DeleteMessageBatch") => "DeleteMessage",
        ("sqs", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        _ => operation,
    };
    format!("{prefix}:{name}")
}

impl Recorder {
    /// The resource of a call, from its input.
    fn resource(&self, context: &BeforeSerializationInterceptorContextRef<'_>) -> String {
        use aws_sdk_dynamodb::operation as ddb;
        use aws_sdk_sqs::operation as sqs;
        use aws_sdk_ssm::operation as ssm;
        let input = context.input();
        let r = &self.resources;
        if let Some(i) = input.downcast_ref::<ddb::put_item::PutItemInput>() {
            r.table_or_queue(i.table_name())
        } else if let Some(i) = input.downcast_ref::<ddb::get_item::GetItemInput>() {
            r.table_or_queue(i.table_name())
        } else if let Some(i) = input.downcast_ref::<ddb::update_item::UpdateItemInput>() {
            r.table_or_queue(i.table_name())
        } else if let Some(i) = input.downcast_ref::<ddb::scan::ScanInput>() {
            r.table_or_queue(i.table_name())
        } else if let Some(i) = input.downcast_ref::<ddb::query::QueryInput>() {
            r.table_or_queue(i.table_name())
        } else if let Some(i) = input.downcast_ref::<ddb::delete_item::DeleteItemInput>() {
            r.table_or_queue(i.table_name())
        } else if let Some(i) = input.downcast_ref::<sqs::receive_message::ReceiveMessageInput>() {
            r.table_or_queue(i.queue_url())
        } else if let Some(i) =
            input.downcast_ref::<sqs::delete_message_batch::DeleteMessageBatchInput>()
        {
            r.table_or_queue(i.queue_url())
        } else if let Some(i) = input.downcast_ref::<
            sqs::change_message_visibility_batch::ChangeMessageVisibilityBatchInput,
        >() {
            r.table_or_queue(i.queue_url())
        } else if let Some(i) = input.downcast_ref::<sqs::send_message::SendMessageInput>() {
            r.table_or_queue(i.queue_url())
        } else if let Some(i) =
            input.downcast_ref::<sqs::send_message_batch::SendMessageBatchInput>()
        {
            r.table_or_queue(i.queue_url())
        } else if let Some(i) =
            input.downcast_ref::<sqs::change_message_visibility::ChangeMessageVisibilityInput>()
        {
            r.table_or_queue(i.queue_url())
        } else if let Some(i) = input.downcast_ref::<ssm::get_parameter::GetParameterInput>() {
            r.parameter(i.name(), false)
        } else if let Some(i) = input.downcast_ref::<ssm::put_parameter::PutParameterInput>() {
            r.parameter(i.name(), true)
        } else if let Some(i) = input.downcast_ref::<ssm::delete_parameter::DeleteParameterInput>()
        {
            r.parameter(i.name(), true)
        } else {
            // An operation this recorder does not know: visible as such.
            "(an input the recorder does not know)".to_owned()
        }
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "SdkCallRecorder"
    }

    /// Before serialization rather than before execution: an interceptor
    /// added to a client's config runs `read_before_execution` before the
    /// operation's own config (which holds [`Metadata`]) is applied. This
    /// hook runs once per call, before any retry.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let meta = cfg
            .load::<Metadata>()
            .ok_or("SdkCallRecorder: the call carries no operation metadata")?;
        let call = Call {
            function: self.function,
            action: iam_action(meta.service(), meta.name()),
            resource: self.resource(context),
        };
        self.calls.lock().insert(call);
        Ok(())
    }
}
