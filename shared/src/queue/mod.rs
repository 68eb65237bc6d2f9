//! The delivery queue port, with SQS semantics: a received message stays
//! invisible for a while, comes back if not deleted, and counts receives.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Unavailable;
use crate::model::{DeliveryTask, ReceivedTask};

/// Where a task set aside by [`DeliveryQueue::park`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parked {
    /// A fresh copy of the task was queued; the received message is done
    /// with (delete it).
    Copied,
    /// The received message itself waits.
    Kept,
}

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Send tasks. Returns the indexes of those that could not be sent, so
    /// the caller retries only those.
    async fn send(&self, tasks: &[DeliveryTask]) -> Result<Vec<usize>, Unavailable>;

    /// Make a received message visible again after `delay`.
    async fn retry_in(&self, msg: &ReceivedTask, delay: Duration) -> Result<(), Unavailable>;

    /// Set a task aside while its subscription is paused, to be looked at
    /// again after about `recheck` (sooner where the queue can tell that
    /// the subscription was resumed). Unlike `retry_in`, waiting here
    /// never brings the task closer to the dead-letter queue, however long
    /// the pause.
    async fn park(&self, msg: &ReceivedTask, recheck: Duration) -> Result<Parked, Unavailable>;

    /// Move a message to the dead-letter queue. The caller then treats the
    /// original as done.
    async fn dead_letter(&self, msg: &ReceivedTask, reason: &str) -> Result<(), Unavailable>;
}
