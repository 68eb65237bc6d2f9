//! Pollers' state in the admin API's views, and "poll now"
//! (`POST /admin/pollers/{id}/run`).

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Value, json};

use super::config_ops::Reply;
use super::input::{json_body, rfc3339};
use super::ports::{ConfigItem, Kind};
use super::{Admin, AdminError};
use crate::poll::engine::{PollOutcome, PollPorts, Trigger, poll};
use crate::poll::state::StoredPoller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunInput {
    /// Fetch and report what would be emitted; commit and store nothing.
    #[serde(default)]
    dry_run: bool,
}

/// What a poller remembers, as operators read it (`null` before its
/// first poll).
pub(crate) fn state_view(stored: Option<&StoredPoller>) -> Value {
    let Some(stored) = stored else {
        return Value::Null;
    };
    let s = &stored.state;
    let time = |ms: Option<i64>| ms.map(rfc3339);
    json!({
        "last_poll_at": time(s.last_poll_at_ms),
        "last_result": s.last_result.map(|r| r.as_str()),
        "last_emitted": s.last_emitted,
        "emitted_total": s.emitted_total,
        "next_poll_at": time(Some(s.next_poll_at_ms).filter(|ms| *ms > 0)),
        "last_error": s.last_error,
        "last_error_at": time(s.last_error_at_ms),
        "failures": s.failures,
        "polling_until": time(stored.lease_until_ms),
        "cursor": s.cursor,
        "remembered_ids": s.seen.len(),
    })
}

impl Admin {
    /// Every poller's state, by id.
    pub(crate) async fn poller_states(&self) -> Result<HashMap<String, StoredPoller>, AdminError> {
        Ok(self.ports.pollers.states.list().await?.into_iter().collect())
    }

    pub(crate) async fn poller_state(&self, id: &str) -> Result<Option<StoredPoller>, AdminError> {
        Ok(self.ports.pollers.states.get(id).await?)
    }

    /// Poll now, due or not: 200 with the poll's report (also when the
    /// app failed: the report says how), 409 when another runner is
    /// polling it or it is disabled (a dry run may test a disabled one).
    pub(crate) async fn run_poller(&self, id: &str, body: &[u8]) -> Result<Reply, AdminError> {
        let input: RunInput = json_body(body)?;
        let entry = self.entry(Kind::Poller, id).await?;
        let ConfigItem::Poller(config) = &entry.item else {
            return Err(AdminError::NotFound(format!("poller {id:?}")));
        };
        if !entry.enabled && !input.dry_run {
            return Err(AdminError::Conflict(format!(
                "poller {id:?} is disabled; enable it first, or send {{\"dry_run\": true}}"
            )));
        }
        let pollers = &self.ports.pollers;
        let ports = PollPorts {
            states: pollers.states.as_ref(),
            store: pollers.store.as_ref(),
            fetch: pollers.fetch.as_ref(),
            secrets: self.ports.secrets.as_ref(),
        };
        let trigger = if input.dry_run {
            Trigger::DryRun
        } else {
            Trigger::Now
        };
        let report = poll(config, &self.ports.policy, &ports, SystemTime::now(), trigger).await;
        match &report.outcome {
            PollOutcome::Busy { until_ms } => Err(AdminError::Conflict(format!(
                "poller {id:?} is being polled by another runner (claimed until {}); try again then",
                rfc3339(*until_ms)
            ))),
            PollOutcome::Unavailable { error } => {
                Err(crate::error::Unavailable::new(error.clone()).into())
            }
            _ => Ok(Reply::ok(
                serde_json::to_value(&report).unwrap_or_else(|_| json!({ "poller": id })),
            )),
        }
    }
}
