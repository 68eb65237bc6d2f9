//! The delivery queue port, with SQS semantics: a received message stays
//! invisible for a while, comes back if not deleted, and counts receives.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Unavailable;
use crate::model::{DeliveryTask, ReceivedTask};

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Send tasks. Returns the indexes of those that could not be sent, so
    /// the caller retries only those.
    async fn send(&self, tasks: &[DeliveryTask]) -> Result<Vec<usize>, Unavailable>;

    /// Make a received message visible again after `delay`.
    async fn retry_in(&self, msg: &ReceivedTask, delay: Duration) -> Result<(), Unavailable>;

    /// Move a message to the dead-letter queue. The caller then treats the
    /// original as done.
    async fn dead_letter(&self, msg: &ReceivedTask, reason: &str) -> Result<(), Unavailable>;
}
