//! The environment of the AWS functions: one documented set of variables.
//!
//! | variable | required | meaning |
//! |---|---|---|
//! | `SLUICE_EVENTS_TABLE` | yes | DynamoDB table of committed events (`pk` S; stream NEW_IMAGE; TTL `expires_at`) |
//! | `SLUICE_DELIVERIES_TABLE` | yes | DynamoDB table of delivery states and attempt logs (`pk` S, `sk` S; TTL `expires_at`) |
//! | `SLUICE_CONFIG_TABLE` | yes | DynamoDB table of sources and subscriptions (`pk` S), written by the CLI |
//! | `SLUICE_QUEUE_URL` | yes | SQS delivery queue URL |
//! | `SLUICE_DLQ_URL` | yes | SQS dead-letter queue URL (deliver sends exhausted tasks there explicitly) |
//! | `SLUICE_CONFIG_TTL_SECS` | no, default 60 | how long the config table is cached in memory |
//! | `SLUICE_SECRETS_TTL_SECS` | no, default 300 | how long SSM parameter values are cached in memory |
//! | `SLUICE_SSM_PREFIX` | no, default `/sluice` | the SSM path the `ssm:` secrets live under; the admin API keeps the secrets it creates there |
//! | `SLUICE_POLLERS_TABLE` | the poll and admin functions | DynamoDB table of poller states and claims (`pk` S). Set only on the functions that use it ([`PER_FUNCTION_VARS`]); the poll function refuses to start without it |
//! | `SLUICE_GATES_TABLE` | the deliver and admin functions | DynamoDB table of the subscriptions' delivery controls: rate limit, in-flight sends, circuit (`pk` S). Per function like the pollers table; deliver refuses to start without it |
//! | `SLUICE_ALLOW_LOCAL_DESTINATIONS` | no, default `false` | honour `allow_local` subscriptions (http://, loopback, private addresses). Only for a local setup (`make watch`, the tests): the templates never set it |
//!
//! The AWS SDK reads its own standard variables: `AWS_REGION`, the
//! credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, as Lambda sets them), and `AWS_ENDPOINT_URL` (or
//! `AWS_ENDPOINT_URL_DYNAMODB`, `_SQS`, `_SSM`) to point the clients at an
//! emulator such as moto.
//!
//! Every function gets the same set, so one deployment template serves all
//! of them, except [`PER_FUNCTION_VARS`]: those are set only on the
//! functions whose calls name their resource. An empty value counts as
//! missing.

use std::time::Duration;

pub const EVENTS_TABLE: &str = "SLUICE_EVENTS_TABLE";
pub const DELIVERIES_TABLE: &str = "SLUICE_DELIVERIES_TABLE";
pub const CONFIG_TABLE: &str = "SLUICE_CONFIG_TABLE";
pub const QUEUE_URL: &str = "SLUICE_QUEUE_URL";
pub const DLQ_URL: &str = "SLUICE_DLQ_URL";
pub const CONFIG_TTL_SECS: &str = "SLUICE_CONFIG_TTL_SECS";
pub const SECRETS_TTL_SECS: &str = "SLUICE_SECRETS_TTL_SECS";
pub const SSM_PREFIX: &str = "SLUICE_SSM_PREFIX";
pub const POLLERS_TABLE: &str = "SLUICE_POLLERS_TABLE";
pub const GATES_TABLE: &str = "SLUICE_GATES_TABLE";
/// The deployment-level switch of `allow_local`. Not in [`ALL_VARS`] (the
/// templates' knobs): no deployed stack may set it, and the parity test
/// checks that neither template does.
pub const ALLOW_LOCAL_DESTINATIONS: &str = "SLUICE_ALLOW_LOCAL_DESTINATIONS";

/// Every variable, required ones first (for docs and parity checks).
pub const ALL_VARS: [&str; 10] = [
    EVENTS_TABLE,
    DELIVERIES_TABLE,
    CONFIG_TABLE,
    QUEUE_URL,
    DLQ_URL,
    CONFIG_TTL_SECS,
    SECRETS_TTL_SECS,
    SSM_PREFIX,
    POLLERS_TABLE,
    GATES_TABLE,
];

/// Optional variables that name a resource only some functions use: the
/// templates set one on a function exactly when its `SDK_RESOURCES` name
/// it (the parity test checks), and the function that needs it says so
/// when it is missing ([`AwsSettings::pollers_table`]).
pub const PER_FUNCTION_VARS: [&str; 2] = [POLLERS_TABLE, GATES_TABLE];

/// The deployment's outputs that carry the settings, for the CLI
/// (`sluice --aws --stack`): CloudFormation output name and the variable it
/// stands for. Terraform's outputs are the same names in snake_case
/// (`events_table_name`). The TTLs are the functions' business, not outputs.
pub const STACK_OUTPUTS: [(&str, &str); 6] = [
    ("EventsTableName", EVENTS_TABLE),
    ("DeliveriesTableName", DELIVERIES_TABLE),
    ("ConfigTableName", CONFIG_TABLE),
    ("DeliveryQueueUrl", QUEUE_URL),
    ("DeadLetterQueueUrl", DLQ_URL),
    ("SsmParameterPrefix", SSM_PREFIX),
];

/// Outputs read when present, like [`STACK_OUTPUTS`]: a stack deployed
/// from a template before pollers has no pollers table, and the CLI still
/// works with it (without the pollers' state); likewise the gates table.
pub const OPTIONAL_STACK_OUTPUTS: [(&str, &str); 2] = [
    ("PollersTableName", POLLERS_TABLE),
    ("GatesTableName", GATES_TABLE),
];

pub const DEFAULT_CONFIG_TTL: Duration = Duration::from_secs(60);
pub const DEFAULT_SECRETS_TTL: Duration = Duration::from_secs(300);
pub const DEFAULT_SSM_PREFIX: &str = "/sluice";

/// Where the AWS resources are, and how long to cache what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub events_table: String,
    pub deliveries_table: String,
    pub config_table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub config_ttl: Duration,
    pub secrets_ttl: Duration,
    /// No trailing slash: `/sluice`.
    pub ssm_prefix: String,
    /// `SLUICE_ALLOW_LOCAL_DESTINATIONS`: off unless set to `true`.
    pub allow_local_destinations: bool,
    /// `SLUICE_POLLERS_TABLE`: only the functions that keep poller state
    /// have it ([`pollers_table`](Self::pollers_table)).
    pub pollers_table: Option<String>,
    /// `SLUICE_GATES_TABLE`: only the functions that deliver or show
    /// delivery controls have it ([`gates_table`](Self::gates_table)).
    pub gates_table: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Names every required variable that is unset or empty.
    #[error("missing required environment variable{}: {}", if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    Missing(Vec<&'static str>),
    /// Names every output of [`STACK_OUTPUTS`] that is absent or empty.
    #[error("missing output{}: {}", if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    MissingOutputs(Vec<String>),
    #[error("environment variable {var}={value:?}: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
}

impl AwsSettings {
    /// Read the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the settings through `lookup` (the environment, or a map in
    /// tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut missing = Vec::new();
        let mut required = |name: &'static str| {
            get(name).unwrap_or_else(|| {
                missing.push(name);
                String::new()
            })
        };
        let events_table = required(EVENTS_TABLE);
        let deliveries_table = required(DELIVERIES_TABLE);
        let config_table = required(CONFIG_TABLE);
        let queue_url = required(QUEUE_URL);
        let dlq_url = required(DLQ_URL);
        if !missing.is_empty() {
            return Err(SettingsError::Missing(missing));
        }
        let secs = |name: &'static str, default: Duration| match get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|e| SettingsError::Invalid {
                    var: name,
                    value: v.clone(),
                    reason: format!("expected whole seconds: {e}"),
                }),
        };
        let text = |name: &'static str, default: &str| {
            get(name).map_or_else(|| default.to_owned(), |v| v.trim().to_owned())
        };
        let ssm_prefix = text(SSM_PREFIX, DEFAULT_SSM_PREFIX)
            .trim_end_matches('/')
            .to_owned();
        if !ssm_prefix.starts_with('/') {
            return Err(SettingsError::Invalid {
                var: SSM_PREFIX,
                value: ssm_prefix,
                reason: "must be an SSM path starting with /".to_owned(),
            });
        }
        let allow_local_destinations = allow_local_destinations(&lookup)?;
        let pollers_table = get(POLLERS_TABLE).map(|v| v.trim().to_owned());
        let gates_table = get(GATES_TABLE).map(|v| v.trim().to_owned());
        Ok(Self {
            events_table,
            deliveries_table,
            config_table,
            queue_url,
            dlq_url,
            config_ttl: secs(CONFIG_TTL_SECS, DEFAULT_CONFIG_TTL)?,
            secrets_ttl: secs(SECRETS_TTL_SECS, DEFAULT_SECRETS_TTL)?,
            ssm_prefix,
            allow_local_destinations,
            pollers_table,
            gates_table,
        })
    }

    /// The pollers table, for a function that cannot work without it.
    pub fn pollers_table(&self) -> Result<&str, SettingsError> {
        self.pollers_table
            .as_deref()
            .ok_or_else(|| SettingsError::Missing(vec![POLLERS_TABLE]))
    }

    /// The gates table, for a function that cannot work without it.
    pub fn gates_table(&self) -> Result<&str, SettingsError> {
        self.gates_table
            .as_deref()
            .ok_or_else(|| SettingsError::Missing(vec![GATES_TABLE]))
    }

    /// What this deployment allows its config ([`Policy::aws`]).
    pub fn policy(&self) -> crate::config::Policy {
        crate::config::Policy::aws(self.allow_local_destinations)
    }

    /// Read the settings from a deployment's outputs ([`STACK_OUTPUTS`]),
    /// by their CloudFormation names, or with `snake_case` their Terraform
    /// names. Every output is required: a stack without one was deployed
    /// from an older template.
    pub fn from_outputs(
        outputs: impl Fn(&str) -> Option<String>,
        snake_case: bool,
    ) -> Result<Self, SettingsError> {
        let name = |output: &str| {
            if snake_case {
                terraform_name(output)
            } else {
                output.to_owned()
            }
        };
        let mut vars = Vec::with_capacity(STACK_OUTPUTS.len() + OPTIONAL_STACK_OUTPUTS.len());
        let mut missing = Vec::new();
        for (output, var) in STACK_OUTPUTS {
            let output = name(output);
            match outputs(&output).filter(|v| !v.trim().is_empty()) {
                Some(v) => vars.push((var, v)),
                None => missing.push(output),
            }
        }
        if !missing.is_empty() {
            return Err(SettingsError::MissingOutputs(missing));
        }
        for (output, var) in OPTIONAL_STACK_OUTPUTS {
            if let Some(v) = outputs(&name(output)).filter(|v| !v.trim().is_empty()) {
                vars.push((var, v));
            }
        }
        Self::from_lookup(|n| {
            vars.iter()
                .find(|(var, _)| *var == n)
                .map(|(_, v)| v.clone())
        })
    }

    /// The settings as `(variable, value)` pairs: the inverse of
    /// [`from_lookup`](Self::from_lookup), for templates and tests.
    pub fn to_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            (EVENTS_TABLE, self.events_table.clone()),
            (DELIVERIES_TABLE, self.deliveries_table.clone()),
            (CONFIG_TABLE, self.config_table.clone()),
            (QUEUE_URL, self.queue_url.clone()),
            (DLQ_URL, self.dlq_url.clone()),
            (CONFIG_TTL_SECS, self.config_ttl.as_secs().to_string()),
            (SECRETS_TTL_SECS, self.secrets_ttl.as_secs().to_string()),
            (SSM_PREFIX, self.ssm_prefix.clone()),
        ]
        .into_iter()
        .chain(self.pollers_table.clone().map(|t| (POLLERS_TABLE, t)))
        .chain(self.gates_table.clone().map(|t| (GATES_TABLE, t)))
        // Only when on: off is its absence.
        .chain(
            self.allow_local_destinations
                .then(|| (ALLOW_LOCAL_DESTINATIONS, "true".to_owned())),
        )
        .collect()
    }
}

/// `SLUICE_ALLOW_LOCAL_DESTINATIONS` through `lookup`: off unless `true`.
/// The CLI reads it from its own environment whatever else it reads its
/// settings from: it is the operator's local setup, never a stack output.
pub fn allow_local_destinations(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<bool, SettingsError> {
    match lookup(ALLOW_LOCAL_DESTINATIONS).filter(|v| !v.trim().is_empty()) {
        None => Ok(false),
        Some(v) if v.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(SettingsError::Invalid {
            var: ALLOW_LOCAL_DESTINATIONS,
            value: v,
            reason: "expected true or false".to_owned(),
        }),
    }
}

/// A CloudFormation output's Terraform name: `EventsTableName` ->
/// `events_table_name`.
pub fn terraform_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(map: &HashMap<&str, &str>) -> impl Fn(&str) -> Option<String> {
        |name| map.get(name).map(|v| (*v).to_owned())
    }

    fn full() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            (EVENTS_TABLE, "events"),
            (DELIVERIES_TABLE, "deliveries"),
            (CONFIG_TABLE, "config"),
            (QUEUE_URL, "https://sqs/q"),
            (DLQ_URL, "https://sqs/dlq"),
        ])
    }

    #[test]
    fn all_required_set_gives_defaults_for_ttls() {
        let s = AwsSettings::from_lookup(lookup(&full())).unwrap();
        assert_eq!(s.events_table, "events");
        assert_eq!(s.deliveries_table, "deliveries");
        assert_eq!(s.config_table, "config");
        assert_eq!(s.queue_url, "https://sqs/q");
        assert_eq!(s.dlq_url, "https://sqs/dlq");
        assert_eq!(s.config_ttl, Duration::from_secs(60));
        assert_eq!(s.secrets_ttl, Duration::from_secs(300));
        assert_eq!(s.ssm_prefix, "/sluice");
        let back: HashMap<&str, String> = s.to_vars().into_iter().collect();
        let again = AwsSettings::from_lookup(|n| back.get(n).cloned()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn missing_variable_is_named() {
        let mut env = full();
        env.remove(QUEUE_URL);
        let err = AwsSettings::from_lookup(lookup(&env)).unwrap_err();
        assert_eq!(err, SettingsError::Missing(vec![QUEUE_URL]));
        assert_eq!(
            err.to_string(),
            "missing required environment variable: SLUICE_QUEUE_URL"
        );
        // Empty counts as missing; every missing one is named.
        env.insert(EVENTS_TABLE, " ");
        env.remove(DLQ_URL);
        let err = AwsSettings::from_lookup(lookup(&env)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required environment variables: SLUICE_EVENTS_TABLE, SLUICE_QUEUE_URL, SLUICE_DLQ_URL"
        );
        let err = AwsSettings::from_lookup(|_| None).unwrap_err();
        assert_eq!(err, SettingsError::Missing(ALL_VARS[..5].to_vec()));
    }

    #[test]
    fn ttls_parse_and_bad_values_are_named() {
        let mut env = full();
        env.insert(CONFIG_TTL_SECS, "5");
        env.insert(SECRETS_TTL_SECS, "0");
        let s = AwsSettings::from_lookup(lookup(&env)).unwrap();
        assert_eq!(s.config_ttl, Duration::from_secs(5));
        assert_eq!(s.secrets_ttl, Duration::ZERO);
        env.insert(SSM_PREFIX, "/x/y/");
        assert_eq!(
            AwsSettings::from_lookup(lookup(&env)).unwrap().ssm_prefix,
            "/x/y"
        );
        env.insert(SSM_PREFIX, "x");
        assert!(AwsSettings::from_lookup(lookup(&env)).is_err());
        env.remove(SSM_PREFIX);
        env.insert(SECRETS_TTL_SECS, "5m");
        let err = AwsSettings::from_lookup(lookup(&env)).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "environment variable SLUICE_SECRETS_TTL_SECS=\"5m\": expected whole seconds"
            ),
            "{err}"
        );
    }

    #[test]
    fn outputs_by_cloudformation_or_terraform_name() {
        let s = AwsSettings::from_lookup(lookup(&full())).unwrap();
        let by_var: HashMap<&str, String> = s.to_vars().into_iter().collect();
        let cfn: HashMap<String, String> = STACK_OUTPUTS
            .iter()
            .map(|(o, var)| ((*o).to_owned(), by_var[var].clone()))
            .collect();
        assert_eq!(
            AwsSettings::from_outputs(|n| cfn.get(n).cloned(), false).unwrap(),
            s
        );
        let tf: HashMap<String, String> = cfn
            .iter()
            .map(|(k, v)| (terraform_name(k), v.clone()))
            .collect();
        assert!(tf.contains_key("dead_letter_queue_url"), "{tf:?}");
        assert!(tf.contains_key("ssm_parameter_prefix"), "{tf:?}");
        assert_eq!(
            AwsSettings::from_outputs(|n| tf.get(n).cloned(), true).unwrap(),
            s
        );
        // Terraform names are not CloudFormation names; each missing one is named.
        let err = AwsSettings::from_outputs(|n| tf.get(n).cloned(), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "missing outputs: {}",
                STACK_OUTPUTS.map(|(o, _)| o).join(", ")
            )
        );
        let mut partial = cfn.clone();
        partial.remove("ConfigTableName");
        partial.insert("SsmParameterPrefix".into(), " ".into());
        assert_eq!(
            AwsSettings::from_outputs(|n| partial.get(n).cloned(), false)
                .unwrap_err()
                .to_string(),
            "missing outputs: ConfigTableName, SsmParameterPrefix"
        );
    }

    #[test]
    fn from_env_reads_the_process_environment() {
        // The test process does not set these (names are unlikely to be set
        // by a developer running the tests); the error must name them.
        if std::env::var_os(EVENTS_TABLE).is_none() {
            let err = AwsSettings::from_env().unwrap_err();
            assert!(err.to_string().contains(EVENTS_TABLE), "{err}");
        }
    }

    #[test]
    fn the_per_function_tables_are_optional_until_a_function_needs_them() {
        let mut vars = full();
        let s = AwsSettings::from_lookup(lookup(&vars)).unwrap();
        assert_eq!((&s.pollers_table, &s.gates_table), (&None, &None));
        assert_eq!(
            s.pollers_table().unwrap_err().to_string(),
            "missing required environment variable: SLUICE_POLLERS_TABLE"
        );
        assert_eq!(
            s.gates_table().unwrap_err().to_string(),
            "missing required environment variable: SLUICE_GATES_TABLE"
        );
        assert!(
            !s.to_vars()
                .iter()
                .any(|(v, _)| PER_FUNCTION_VARS.contains(v))
        );
        vars.insert(POLLERS_TABLE, " pollers ");
        vars.insert(GATES_TABLE, "gates");
        let s = AwsSettings::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(s.pollers_table(), Ok("pollers"));
        assert_eq!(s.gates_table(), Ok("gates"));
        let back: HashMap<&str, String> = s.to_vars().into_iter().collect();
        assert_eq!(
            AwsSettings::from_lookup(|n| back.get(n).cloned()).unwrap(),
            s
        );
        // An output when the stack has one; a stack without it still reads.
        let by_var: HashMap<&str, String> = s.to_vars().into_iter().collect();
        let mut cfn: HashMap<String, String> = STACK_OUTPUTS
            .iter()
            .chain(OPTIONAL_STACK_OUTPUTS.iter())
            .map(|(o, var)| ((*o).to_owned(), by_var[var].clone()))
            .collect();
        assert_eq!(
            AwsSettings::from_outputs(|n| cfn.get(n).cloned(), false).unwrap(),
            s
        );
        cfn.remove("PollersTableName");
        cfn.remove("GatesTableName");
        let old = AwsSettings::from_outputs(|n| cfn.get(n).cloned(), false).unwrap();
        assert_eq!((old.pollers_table, old.gates_table), (None, None));
        assert!(PER_FUNCTION_VARS.iter().all(|v| ALL_VARS.contains(v)));
    }

    #[test]
    fn allow_local_destinations_is_off_unless_set_true() {
        let mut vars = full();
        let s = AwsSettings::from_lookup(lookup(&vars)).unwrap();
        assert!(!s.allow_local_destinations);
        assert!(!s.policy().allow_local);
        assert!(
            !s.to_vars()
                .iter()
                .any(|(v, _)| *v == ALLOW_LOCAL_DESTINATIONS)
        );
        vars.insert(ALLOW_LOCAL_DESTINATIONS, "TRUE");
        let s = AwsSettings::from_lookup(lookup(&vars)).unwrap();
        assert!(s.allow_local_destinations && s.policy().allow_local);
        let back: HashMap<&str, String> = s.to_vars().into_iter().collect();
        assert_eq!(
            AwsSettings::from_lookup(|n| back.get(n).cloned()).unwrap(),
            s
        );
        vars.insert(ALLOW_LOCAL_DESTINATIONS, "false");
        assert!(
            !AwsSettings::from_lookup(lookup(&vars))
                .unwrap()
                .allow_local_destinations
        );
        vars.insert(ALLOW_LOCAL_DESTINATIONS, "yes");
        let err = AwsSettings::from_lookup(lookup(&vars)).unwrap_err();
        assert!(err.to_string().contains(ALLOW_LOCAL_DESTINATIONS), "{err}");
    }
}
