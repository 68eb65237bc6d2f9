//! The event store port: the durable commit (which is also the dedup), the
//! delivery states and the attempt log.

use async_trait::async_trait;

use crate::error::Unavailable;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey};

/// What the conditional commit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// The event is new and is now durable; its outbox entry is pending.
    Accepted,
    /// An event with this key was already committed. `body_hash` is the
    /// stored fingerprint, so a caller can notice a differing body.
    Duplicate { body_hash: Option<String> },
}

/// What [`EventStore::load_for_delivery`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
// Returned once per attempt and matched at once: boxing the event would add
// an allocation per delivery to save a move of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum ForDelivery {
    /// The delivery is already final: nothing to send.
    Finished(DeliveryStatus),
    /// The event, to send (the delivery is pending or not recorded yet).
    Event(Event),
    /// The event is not (or no longer) stored.
    NoEvent,
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

    /// What one delivery attempt reads first: the delivery's status and,
    /// unless that is final, the event. The default asks twice; a store
    /// that can answer in one read (SQLite: one join) overrides it.
    async fn load_for_delivery(&self, task: &DeliveryTask) -> Result<ForDelivery, Unavailable> {
        match self.delivery_status(task).await? {
            Some(status) if status.is_final() => Ok(ForDelivery::Finished(status)),
            _ => Ok(match self.load(&task.event_key()).await? {
                Some(event) => ForDelivery::Event(event),
                None => ForDelivery::NoEvent,
            }),
        }
    }

    /// Append an attempt to the log and move the delivery to `status`. The
    /// status change is conditional: a final status (delivered, failed) is
    /// never overwritten. Returns false when it was already final.
    async fn record_attempt(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
    ) -> Result<bool, Unavailable>;
}
