//! POLL as a Lambda function, started by an EventBridge Scheduler schedule
//! (once a minute by default): the enabled pollers of the config table
//! that are due are polled (`sluice::poll::poll_due`), and each new item
//! is committed as an event through the same conditional PutItem as a
//! received webhook, so the events table's stream carries it to enqueue
//! like any other event.
//!
//! Runs may overlap (a slow poll, a retried invocation, an operator's
//! manual invoke): each poll is claimed in the pollers table with one
//! conditional write first, so a poller is polled once whatever runs.
//!
//! The schedule sends an EventBridge event (`tests/events/scheduler-poll.json`,
//! the scheduler's context attributes filled in): its id and time are
//! logged; the poll itself runs at the time of the invocation.

use std::time::SystemTime;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Serialize;
use sluice::admin::ports::{ConfigEntry, ConfigItem, ConfigStore};
use sluice::config::Policy;
use sluice::error::Unavailable;
use sluice::poll::PollerConfig;
use sluice::poll::{PollOutcome, PollPorts, PollReport, poll_due};

/// The `Function` name, as the templates and the parity checks know it.
pub const FUNCTION: &str = "poll";

/// The AWS calls this function's code makes, as IAM actions. The
/// deployment templates grant these and no others (infra/tests checks
/// them); tests/tests/aws_functions.rs records the calls the handler
/// actually makes against moto and checks they are exactly these.
pub const SDK_CALLS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
    "ssm:GetParameter",
];

/// What each call of [`SDK_CALLS`] is made on: the variable naming the
/// table, or `ssm:{prefix}/*` for the parameters below the deployment's
/// SSM prefix.
pub const SDK_RESOURCES: &[(&str, &str)] = &[
    // The commit of each new item.
    ("dynamodb:PutItem", "SLUICE_EVENTS_TABLE"),
    // The pollers' config.
    ("dynamodb:Scan", "SLUICE_CONFIG_TABLE"),
    // The states (what is due), then per due poller the claim and the save.
    ("dynamodb:Scan", "SLUICE_POLLERS_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_POLLERS_TABLE"),
    // Header secrets (`ssm:` references in a poller's headers).
    ("ssm:GetParameter", "ssm:{prefix}/*"),
];

/// What one run needs.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    /// The config table: the pollers are its `poller#` entries.
    pub config: &'a dyn ConfigStore,
    pub poll: PollPorts<'a>,
    /// The deployment's policy (`allow_local`), as the config was validated.
    pub policy: Policy,
}

/// Why a run failed as a whole: the Lambda invocation fails (the errors
/// alarm), and the next run tries again.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("the pollers' config is unavailable: {0}")]
    Config(Unavailable),
    /// Poller states could not be read or written: those pollers were not
    /// polled, or polled and not stored (the next poll commits the same
    /// items again, and the commit drops them).
    #[error("poller states unavailable for {pollers:?}: {error}")]
    States { pollers: Vec<String>, error: String },
}

/// What a run did, as the invocation's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The enabled pollers.
    pub pollers: usize,
    /// One report per poller that was due (polled, or found busy).
    pub reports: Vec<PollReport>,
}

impl RunSummary {
    /// Items committed as events by this run.
    pub fn emitted(&self) -> usize {
        self.reports.iter().map(|r| r.emitted.len()).sum()
    }
}

/// The pollers among the config entries that are enabled.
pub fn enabled_pollers(entries: Vec<ConfigEntry>) -> Vec<PollerConfig> {
    entries
        .into_iter()
        .filter(|e| e.enabled)
        .filter_map(|e| match e.item {
            ConfigItem::Poller(p) => Some(p),
            ConfigItem::Source(_) | ConfigItem::Subscription(_) => None,
        })
        .collect()
}

/// One scheduled run.
pub async fn handle(ports: Ports<'_>, event: EventBridgeEvent) -> Result<RunSummary, PollError> {
    let entries = ports
        .config
        .list_config()
        .await
        .map_err(PollError::Config)?;
    let poll = PollPorts {
        notify: sluice::notify::subscribed(&entries),
        ..ports.poll
    };
    let configs = enabled_pollers(entries);
    let reports = poll_due(&configs, &ports.policy, &poll, SystemTime::now()).await;
    let summary = RunSummary {
        pollers: configs.len(),
        reports,
    };
    let mut unavailable = Vec::new();
    let mut error = String::new();
    for report in &summary.reports {
        let poller = report.poller.as_str();
        // The engine logs each poll it ran; these are the ones it did not.
        match &report.outcome {
            PollOutcome::Busy { until_ms } => {
                tracing::info!(poller, until_ms, "another run holds this poll");
            }
            PollOutcome::NotDue { next_poll_at_ms } => {
                tracing::info!(poller, next_poll_at_ms, "not due");
            }
            PollOutcome::Unavailable { error: e } => {
                unavailable.push(poller.to_owned());
                e.clone_into(&mut error);
            }
            _ => {}
        }
    }
    tracing::info!(
        schedule_event = event.id.as_deref().unwrap_or(""),
        scheduled_time = ?event.time,
        pollers = summary.pollers,
        due = summary.reports.len(),
        emitted = summary.emitted(),
        "poll run"
    );
    if unavailable.is_empty() {
        Ok(summary)
    } else {
        Err(PollError::States {
            pollers: unavailable,
            error,
        })
    }
}
