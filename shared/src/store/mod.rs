//! The event store port: the durable commit (which is also the dedup), the
//! delivery states and the attempt log.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Unavailable;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey, ReceivedTask};

/// What the conditional commit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// The event is new and is now durable; its outbox entry is pending.
    Accepted,
    /// An event with this key was already committed. `body_hash` is the
    /// stored fingerprint, so a caller can notice a differing body.
    Duplicate { body_hash: Option<String> },
}

/// A claim on one delivery: until `until_ms` only its owner may send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Unique per claim (two copies of one message are two claims).
    pub owner: String,
    pub until_ms: i64,
    /// The queue message that claimed it: the one that carries the
    /// delivery's next retry, once this attempt schedules one.
    pub message_id: String,
}

impl Lease {
    /// A fresh lease for `msg`, from `now_ms` for `duration`.
    pub fn new(msg: &ReceivedTask, now_ms: i64, duration: Duration) -> Self {
        Self {
            owner: format!("{:016x}", rand::random::<u64>()),
            until_ms: now_ms
                .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)),
            message_id: msg.message_id.clone(),
        }
    }
}

/// What [`EventStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
// Returned once per attempt and matched at once: boxing the event would add
// an allocation per delivery to save a move of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum Claim {
    /// The caller holds the delivery: send it as attempt `attempt`. `event`
    /// is `None` when the event is not (or no longer) stored.
    Held {
        lease: Lease,
        attempt: u32,
        event: Option<Event>,
    },
    /// The delivery is already final: nothing to send.
    Finished(DeliveryStatus),
    /// Another claim is live: look again after `wait`.
    Leased { wait: Duration },
    /// The next attempt is due in `wait`. `by_this_message`: this message
    /// scheduled it (it came back early); otherwise another copy of the
    /// task carries the schedule and this one is redundant.
    NotDue {
        wait: Duration,
        by_this_message: bool,
    },
}

/// What a delivery's record says, as far as a claim cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryState {
    pub status: Option<DeliveryStatus>,
    /// Attempts recorded so far.
    pub attempts: u32,
    pub lease_until_ms: Option<i64>,
    pub next_attempt_at_ms: Option<i64>,
    /// The message whose attempt scheduled `next_attempt_at_ms`.
    pub scheduled_by: Option<String>,
}

/// How early a message may come back for its scheduled attempt (clocks of
/// different hosts, SQS rounding visibility to seconds).
pub const DUE_TOLERANCE_MS: i64 = 100;

impl DeliveryState {
    /// The rule every store applies before a send: a delivery can be
    /// claimed when it is pending, no other claim is live, and its next
    /// attempt is due. `None` means it can; otherwise, why not.
    pub fn refusal(&self, message_id: &str, now_ms: i64) -> Option<Claim> {
        if let Some(status) = self.status.filter(|s| s.is_final()) {
            return Some(Claim::Finished(status));
        }
        if let Some(until) = self.lease_until_ms.filter(|u| *u > now_ms) {
            return Some(Claim::Leased {
                wait: ms_between(now_ms, until),
            });
        }
        if let Some(next) = self
            .next_attempt_at_ms
            .filter(|n| *n > now_ms + DUE_TOLERANCE_MS)
        {
            return Some(Claim::NotDue {
                wait: ms_between(now_ms, next),
                by_this_message: self.scheduled_by.as_deref().is_none_or(|m| m == message_id),
            });
        }
        None
    }
}

fn ms_between(from: i64, to: i64) -> Duration {
    Duration::from_millis(u64::try_from(to.saturating_sub(from)).unwrap_or(0))
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Commit the event unless its key exists. This one write is the commit:
    /// on success the event is durable and will be routed.
    async fn commit(&self, event: &Event) -> Result<Commit, Unavailable>;

    async fn load(&self, key: &EventKey) -> Result<Option<Event>, Unavailable>;

    /// Record that routing finished: one pending delivery per subscription
    /// (none means "matched no subscription"). Idempotent.
    async fn mark_routed(
        &self,
        key: &EventKey,
        subscriptions: &[String],
    ) -> Result<(), Unavailable>;

    async fn delivery_status(
        &self,
        task: &DeliveryTask,
    ) -> Result<Option<DeliveryStatus>, Unavailable>;

    /// Claim the delivery of `msg` for `lease` before sending it (see
    /// [`DeliveryState::refusal`] for the rule), and read what to send.
    /// Two overlapping copies of one task get one `Held` between them.
    async fn claim(&self, msg: &ReceivedTask, lease: Duration) -> Result<Claim, Unavailable>;

    /// [`record_attempt`](Self::record_attempt) by the holder of `lease`,
    /// which it ends; the attempt's message becomes the one that carries
    /// a scheduled retry. The status moves only while no other claim is
    /// live.
    async fn settle(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
        lease: &Lease,
    ) -> Result<bool, Unavailable>;

    /// End `lease` without recording anything (the task was set aside).
    /// A lease another claim has taken over is left alone.
    async fn release(&self, task: &DeliveryTask, lease: &Lease) -> Result<(), Unavailable>;

    /// Append an attempt to the log and move the delivery to `status`. The
    /// status change is conditional: a final status (delivered, failed) is
    /// never overwritten. Returns false when it was already final.
    async fn record_attempt(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
    ) -> Result<bool, Unavailable>;
}
