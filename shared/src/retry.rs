//! Retry policy: the schedule, jitter, `Retry-After`, and the decision
//! after each attempt.
//!
//! CONTRACT (placeholder bodies; the delivery work fills them in).

use std::time::Duration;

use crate::delivery::{DeliveryError, DeliveryResponse};

/// SQS cannot hide a message longer than this.
pub const MAX_WAIT: Duration = Duration::from_secs(12 * 3600);

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Try again after this delay.
    Retry(Duration),
    /// No attempts left (or the failure is permanent): dead-letter it.
    Exhausted,
    /// 410 Gone: disable the subscription.
    Gone,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Waits after attempt 1, 2, …; attempts = schedule.len() + 1.
    pub schedule: Vec<Duration>,
    /// Fraction of each wait to jitter by, both ways (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            schedule: Vec::new(),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    pub fn new(schedule: Vec<Duration>) -> Result<Self, String> {
        Ok(Self {
            schedule,
            jitter: 0.2,
        })
    }

    pub fn max_attempts(&self) -> u32 {
        self.schedule.len() as u32 + 1
    }

    /// Decide after attempt number `attempt` (1-based).
    pub fn decide(
        &self,
        attempt: u32,
        result: &Result<DeliveryResponse, DeliveryError>,
    ) -> Decision {
        let _ = (attempt, result);
        Decision::Exhausted
    }
}
