//! Retry policy: the schedule, jitter, `Retry-After`, and the decision
//! after each attempt.

use std::time::Duration;

use rand::Rng;

use crate::delivery::{DeliveryError, DeliveryResponse};

/// SQS refuses a visibility change that would pass 12 hours from the
/// message's receive.
pub const SQS_VISIBILITY_LIMIT: Duration = Duration::from_secs(12 * 3600);

/// The longest wait between attempts, `Retry-After` included: under
/// [`SQS_VISIBILITY_LIMIT`] by a margin for what runs between the receive
/// and the visibility change (one attempt, at most deliver's 60 s timeout).
pub const MAX_WAIT: Duration = Duration::from_secs(12 * 3600 - 10 * 60);

/// The delivery queue's redrive policy (`maxReceiveCount` in both
/// templates; the parity test keeps them equal): SQS moves a message to the
/// DLQ on its 21st receive, whatever deliver would have done.
pub const QUEUE_MAX_RECEIVE_COUNT: u32 = 20;

/// Receives of one message that are not attempts: a store outage, a copy
/// put back while another holds the delivery, a message back before its
/// backoff ended. A schedule leaves this many under the redrive.
pub const RECEIVE_HEADROOM: u32 = 5;

/// The most attempts a schedule may have: so that deliver, not the
/// queue's redrive, ends every schedule, with its failed attempt recorded.
pub const MAX_ATTEMPTS: u32 = QUEUE_MAX_RECEIVE_COUNT - RECEIVE_HEADROOM;

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

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "retry wait #{index} ({}) exceeds the maximum of {} (under the SQS visibility limit of 12h)",
        humantime::format_duration(*.wait),
        humantime::format_duration(MAX_WAIT)
    )]
    WaitTooLong { index: usize, wait: Duration },
    #[error("retry jitter must be between 0 and 1, got {0}")]
    BadJitter(f64),
    #[error(
        "{attempts} attempts ({waits} waits), over the maximum of {MAX_ATTEMPTS}: the delivery \
         queue moves a message to its dead-letter queue after {QUEUE_MAX_RECEIVE_COUNT} receives, \
         and {RECEIVE_HEADROOM} are kept for receives that are not attempts",
        waits = .attempts - 1
    )]
    TooManyAttempts { attempts: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Waits after attempt 1, 2, …; attempts = schedule.len() + 1.
    pub schedule: Vec<Duration>,
    /// Fraction of each wait to jitter by, both ways (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; ±20 %.
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 3600;
        Self {
            schedule: [
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// A policy with this schedule and the default jitter. Every wait must
    /// fit in [`MAX_WAIT`], and the attempts in [`MAX_ATTEMPTS`].
    pub fn new(schedule: Vec<Duration>) -> Result<Self, PolicyError> {
        let attempts = u32::try_from(schedule.len()).map_or(u32::MAX, |n| n.saturating_add(1));
        if attempts > MAX_ATTEMPTS {
            return Err(PolicyError::TooManyAttempts { attempts });
        }
        if let Some((index, &wait)) = schedule.iter().enumerate().find(|(_, w)| **w > MAX_WAIT) {
            return Err(PolicyError::WaitTooLong {
                index: index + 1,
                wait,
            });
        }
        Ok(Self {
            schedule,
            ..Self::default()
        })
    }

    pub fn with_jitter(mut self, jitter: f64) -> Result<Self, PolicyError> {
        if !(0.0..=1.0).contains(&jitter) {
            return Err(PolicyError::BadJitter(jitter));
        }
        self.jitter = jitter;
        Ok(self)
    }

    /// The longest a delivery can take from its first attempt to its
    /// last: every wait at its most jitter (a `Retry-After` is capped at
    /// [`MAX_WAIT`] too, so it is counted as that).
    pub fn longest_span(&self) -> Duration {
        self.schedule
            .iter()
            .map(|w| self.jittered(*w, 1.0).max(*w))
            .sum()
    }

    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.schedule.len()).map_or(u32::MAX, |n| n.saturating_add(1))
    }

    /// The jittered wait after failed attempt `attempt` (1-based), or `None`
    /// when no attempts are left.
    pub fn backoff(&self, attempt: u32) -> Option<Duration> {
        self.backoff_with(attempt, &mut rand::rng())
    }

    /// [`backoff`](Self::backoff) with the jitter drawn from `rng`.
    pub fn backoff_with<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Option<Duration> {
        let base = *self.schedule.get(index(attempt))?;
        Some(self.jittered(base, rng.random::<f64>()))
    }

    /// `base` scaled by `1 + jitter * (2u - 1)` for `u` in [0, 1), kept
    /// within [0, MAX_WAIT].
    pub fn jittered(&self, base: Duration, u: f64) -> Duration {
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let u = if u.is_finite() {
            u.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = 1.0 + jitter * (2.0 * u - 1.0);
        let secs = (base.as_secs_f64() * factor).clamp(0.0, MAX_WAIT.as_secs_f64());
        Duration::from_secs_f64(secs).min(MAX_WAIT)
    }

    /// Decide after attempt number `attempt` (1-based; 0 counts as 1).
    pub fn decide(
        &self,
        attempt: u32,
        result: &Result<DeliveryResponse, DeliveryError>,
    ) -> Decision {
        self.decide_with(attempt, result, &mut rand::rng())
    }

    /// [`decide`](Self::decide) with the jitter drawn from `rng`.
    pub fn decide_with<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        result: &Result<DeliveryResponse, DeliveryError>,
        rng: &mut R,
    ) -> Decision {
        let retry_after = match result {
            Ok(r) if (200..300).contains(&r.status) => return Decision::Delivered,
            Ok(r) if r.status == 410 => return Decision::Gone,
            Ok(r) => r.retry_after,
            Err(e) if e.is_permanent() => return Decision::Exhausted,
            Err(_) => None,
        };
        match self.backoff_with(attempt, rng) {
            None => Decision::Exhausted,
            // The destination's own wait replaces the schedule's, unjittered.
            Some(scheduled) => Decision::Retry(retry_after.map_or(scheduled, |w| w.min(MAX_WAIT))),
        }
    }
}

/// Schedule index of the wait after `attempt` (1-based).
fn index(attempt: u32) -> usize {
    attempt.max(1) as usize - 1
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn resp(status: u16, retry_after: Option<u64>) -> Result<DeliveryResponse, DeliveryError> {
        Ok(DeliveryResponse {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            snippet: String::new(),
        })
    }

    /// No jitter, so waits are exact.
    fn exact() -> RetryPolicy {
        RetryPolicy::default().with_jitter(0.0).unwrap()
    }

    #[test]
    fn default_schedule() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = p.schedule.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(p.max_attempts(), 8);
        assert_eq!(p.jitter, 0.2);
        // About 27.5 h of waiting in total.
        assert_eq!(secs.iter().sum::<u64>(), 99_305);
    }

    #[test]
    fn new_rejects_waits_over_max() {
        assert!(RetryPolicy::new(vec![MAX_WAIT]).is_ok());
        let err = RetryPolicy::new(vec![
            Duration::from_secs(1),
            MAX_WAIT + Duration::from_secs(1),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            PolicyError::WaitTooLong {
                index: 2,
                wait: MAX_WAIT + Duration::from_secs(1)
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("#2") && msg.contains("12h"), "{msg}");
        assert!(RetryPolicy::default().with_jitter(1.5).is_err());
        assert!(RetryPolicy::default().with_jitter(f64::NAN).is_err());
    }

    #[test]
    fn backoff_follows_schedule_then_ends() {
        let p = exact();
        assert_eq!(p.backoff(1), Some(Duration::from_secs(5)));
        assert_eq!(p.backoff(2), Some(Duration::from_secs(300)));
        assert_eq!(p.backoff(7), Some(Duration::from_secs(36000)));
        assert_eq!(p.backoff(8), None);
        assert_eq!(p.backoff(0), p.backoff(1));
    }

    #[test]
    fn jitter_bounds_exact() {
        let p = RetryPolicy::default();
        let base = Duration::from_secs(100);
        assert_eq!(p.jittered(base, 0.0), Duration::from_secs(80));
        assert_eq!(p.jittered(base, 0.5), Duration::from_secs(100));
        assert_eq!(p.jittered(base, 1.0), Duration::from_secs(120));
        // Never above MAX_WAIT, never negative.
        assert_eq!(p.jittered(MAX_WAIT, 1.0), MAX_WAIT);
        let wild = RetryPolicy {
            jitter: 5.0,
            ..RetryPolicy::default()
        };
        assert_eq!(wild.jittered(base, 0.0), Duration::ZERO);
    }

    #[test]
    fn jitter_is_within_bounds_and_varies() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Duration> = (0..1000)
            .map(|_| p.backoff_with(3, &mut rng).unwrap())
            .collect();
        let (lo, hi) = (Duration::from_secs(1440), Duration::from_secs(2160));
        assert!(draws.iter().all(|d| *d >= lo && *d <= hi));
        assert!(draws.iter().any(|d| *d != draws[0]));
        // Both halves of the range are used.
        assert!(draws.iter().any(|d| d.as_secs() < 1700));
        assert!(draws.iter().any(|d| d.as_secs() > 1900));
        // The thread-rng entry point also jitters.
        let a: Vec<_> = (0..50).map(|_| p.backoff(3).unwrap()).collect();
        assert!(a.iter().all(|d| *d >= lo && *d <= hi));
        assert!(a.iter().any(|d| *d != a[0]));
    }

    #[test]
    fn decisions() {
        let p = exact();
        assert_eq!(p.decide(1, &resp(200, None)), Decision::Delivered);
        assert_eq!(p.decide(8, &resp(204, None)), Decision::Delivered);
        assert_eq!(p.decide(1, &resp(410, None)), Decision::Gone);
        for status in [301, 302, 400, 404, 429, 500, 503] {
            assert_eq!(
                p.decide(1, &resp(status, None)),
                Decision::Retry(Duration::from_secs(5)),
                "{status}"
            );
        }
        assert_eq!(
            p.decide(2, &Err(DeliveryError::Timeout)),
            Decision::Retry(Duration::from_secs(300))
        );
        assert_eq!(
            p.decide(3, &Err(DeliveryError::Connect("refused".into()))),
            Decision::Retry(Duration::from_secs(1800))
        );
        assert_eq!(
            p.decide(1, &Err(DeliveryError::Refused("no".into()))),
            Decision::Exhausted
        );
        assert_eq!(
            p.decide(7, &resp(500, None)),
            Decision::Retry(Duration::from_secs(36000))
        );
        assert_eq!(p.decide(8, &resp(500, None)), Decision::Exhausted);
        assert_eq!(
            p.decide(8, &Err(DeliveryError::Timeout)),
            Decision::Exhausted
        );
        assert_eq!(p.decide(9, &resp(500, Some(1))), Decision::Exhausted);
    }

    #[test]
    fn retry_after_replaces_wait_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide(1, &resp(503, Some(7))),
            Decision::Retry(Duration::from_secs(7))
        );
        assert_eq!(
            p.decide(1, &resp(429, Some(86_400))),
            Decision::Retry(MAX_WAIT)
        );
        assert_eq!(
            p.decide(1, &resp(500, Some(0))),
            Decision::Retry(Duration::ZERO)
        );
        // Not a reason to keep going past the last attempt.
        assert_eq!(p.decide(8, &resp(503, Some(7))), Decision::Exhausted);
    }

    #[test]
    fn empty_schedule_means_one_attempt() {
        let p = RetryPolicy::new(Vec::new()).unwrap();
        assert_eq!(p.max_attempts(), 1);
        assert_eq!(p.decide(1, &resp(500, None)), Decision::Exhausted);
    }
}
