//! What a poller remembers between polls, and the port that keeps it. A
//! poll is claimed with a conditional write before it runs, so two
//! runners (overlapping Lambda invocations, `sluice pollers run` beside
//! `sluice serve`) never run the same poll at once.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Unavailable;

/// How many item ids a poller remembers: the items of its recent polls. An
/// id it no longer remembers is committed again, and the commit (within the
/// dedup window) drops it.
pub const SEEN_CAP: usize = 2000;

/// How long a claim on a poll lasts: longer than any poll (its pages each
/// time out after 30 s).
pub const CLAIM_DURATION: Duration = Duration::from_secs(5 * 60);

/// The result of the last poll, as shown to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LastResult {
    /// Items were read; `emitted` of them were new.
    Polled,
    /// The first poll: what exists was recorded, nothing emitted.
    Primed,
    /// 304: nothing changed.
    NotModified,
    /// 429 or 503: the app asked to wait.
    Throttled,
    Failed,
}

impl LastResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polled => "polled",
            Self::Primed => "primed",
            Self::NotModified => "not_modified",
            Self::Throttled => "throttled",
            Self::Failed => "failed",
        }
    }
}

/// A poller's state. Stores keep it whole (as JSON) beside the claim
/// columns, which they need for their conditions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollerState {
    /// What the rest was learnt from (URL, format, pointers): a poller
    /// whose target changes starts over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Validators of the first page, sent back as `If-None-Match` and
    /// `If-Modified-Since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The newest `timestamp` seen, as the item had it (`since_param`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Ids of recently seen items, newest first, at most [`SEEN_CAP`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<String>,
    /// A poll has succeeded once: the first one only records (unless
    /// `emit_existing`).
    #[serde(default)]
    pub primed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_poll_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<LastResult>,
    /// Items emitted by the last poll.
    #[serde(default)]
    pub last_emitted: u64,
    /// Items emitted since the poller was created.
    #[serde(default)]
    pub emitted_total: u64,
    /// The last failure's message, kept until a poll succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at_ms: Option<i64>,
    /// Failures in a row: the backoff grows with them.
    #[serde(default)]
    pub failures: u32,
    /// When the next poll is due (0: at once).
    #[serde(default)]
    pub next_poll_at_ms: i64,
}

/// A claim on one poll: until `until_ms` only `owner` may poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollLease {
    pub owner: String,
    pub until_ms: i64,
}

impl PollLease {
    pub fn new(now_ms: i64) -> Self {
        Self {
            owner: format!("{:016x}", rand::random::<u64>()),
            until_ms: now_ms
                .saturating_add(i64::try_from(CLAIM_DURATION.as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

/// What a stored poller looks like to a claim: its state and any live claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredPoller {
    pub state: PollerState,
    pub lease_until_ms: Option<i64>,
}

/// What [`PollerStates::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollClaim {
    /// The caller holds the poll; this is the state to poll from.
    Held(PollerState),
    /// Another runner is polling, until `until_ms` at the latest.
    Busy { until_ms: i64 },
    /// The next poll is due at `at_ms`.
    NotDue { at_ms: i64 },
}

impl StoredPoller {
    /// The rule every store applies: a poll can be claimed when no other
    /// claim is live and (unless `now`: an operator's "poll now") it is
    /// due. `None` means it can; otherwise, why not.
    pub fn refusal(&self, now_ms: i64, force: bool) -> Option<PollClaim> {
        if let Some(until_ms) = self.lease_until_ms.filter(|u| *u > now_ms) {
            return Some(PollClaim::Busy { until_ms });
        }
        if !force && self.state.next_poll_at_ms > now_ms {
            return Some(PollClaim::NotDue {
                at_ms: self.state.next_poll_at_ms,
            });
        }
        None
    }
}

/// Where poller state is kept: the SQLite database, or a DynamoDB table.
#[async_trait]
pub trait PollerStates: Send + Sync {
    /// A poller's state; `None` if it never polled.
    async fn get(&self, id: &str) -> Result<Option<StoredPoller>, Unavailable>;

    /// Every poller's state, by id.
    async fn list(&self) -> Result<Vec<(String, StoredPoller)>, Unavailable>;

    /// Claim the next poll for `lease` (see [`StoredPoller::refusal`]; a
    /// poller with no state yet is due). One conditional write: of two
    /// overlapping claims, one is `Held`.
    async fn claim(
        &self,
        id: &str,
        lease: &PollLease,
        now_ms: i64,
        force: bool,
    ) -> Result<PollClaim, Unavailable>;

    /// Store the state after a poll and end the claim, only while `lease`
    /// holds it. False: the claim was lost (it expired and another runner
    /// took it), and nothing was written.
    async fn save(
        &self,
        id: &str,
        lease: &PollLease,
        state: &PollerState,
    ) -> Result<bool, Unavailable>;

    /// Forget a poller (it was deleted). Idempotent.
    async fn delete(&self, id: &str) -> Result<(), Unavailable>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_claim_refuses_even_a_forced_poll() {
        let stored = StoredPoller {
            state: PollerState::default(),
            lease_until_ms: Some(2_000),
        };
        assert_eq!(
            stored.refusal(1_000, true),
            Some(PollClaim::Busy { until_ms: 2_000 })
        );
        assert_eq!(
            stored.refusal(2_000, false),
            None,
            "an expired claim is free"
        );
    }

    #[test]
    fn a_poll_not_yet_due_is_refused_unless_forced() {
        let stored = StoredPoller {
            state: PollerState {
                next_poll_at_ms: 5_000,
                ..PollerState::default()
            },
            lease_until_ms: None,
        };
        assert_eq!(
            stored.refusal(1_000, false),
            Some(PollClaim::NotDue { at_ms: 5_000 })
        );
        assert_eq!(stored.refusal(1_000, true), None);
        assert_eq!(stored.refusal(5_000, false), None);
    }

    #[test]
    fn state_round_trips_through_json_and_old_state_reads() {
        let state = PollerState {
            etag: Some("\"v1\"".into()),
            seen: vec!["2".into(), "1".into()],
            primed: true,
            last_result: Some(LastResult::Primed),
            next_poll_at_ms: 60_000,
            ..PollerState::default()
        };
        let json = serde_json::to_string(&state).expect("json");
        assert_eq!(
            serde_json::from_str::<PollerState>(&json).expect("parse"),
            state
        );
        assert_eq!(
            serde_json::from_str::<PollerState>("{}").expect("parse"),
            PollerState::default()
        );
    }
}
