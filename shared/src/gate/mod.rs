//! Delivery controls: what stands between a claimed task and its
//! destination. A subscription's rate limit (`rate_limit = "20/s"`), its
//! cap on concurrent requests (`max_in_flight`), and its circuit breaker.
//!
//! The rules are one pure function pair over [`GateState`]
//! ([`rules::admit`], [`rules::finish`]); the [`Gate`] port keeps one state
//! per subscription where every deliverer sees it: a mutex in `sluice
//! serve`, a DynamoDB item written conditionally on AWS.
//!
//! A task the gate turns away is *deferred*: set aside on the queue (like
//! a paused subscription's task) and claimed again later. That is not an
//! attempt: its retry schedule is untouched, and on SQS it is a fresh
//! message, so the wait never brings it closer to the queue's redrive.

mod limits;
mod memory;
pub mod rules;

use std::time::Duration;

use async_trait::async_trait;

pub use limits::{Breaker, Controls, LimitError, Rate};
pub use memory::MemoryGate;
pub use rules::{Circuit, GateState, Holder};

use crate::delivery::{DeliveryError, DeliveryResponse};
use crate::error::Unavailable;

/// Why the gate turned a task away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferral {
    /// The subscription's `rate_limit` allows no send yet.
    RateLimited,
    /// `max_in_flight` requests are already out.
    InFlight,
    /// The circuit is open (or its probe is out): the task is held.
    CircuitOpen,
    /// Other deliverers kept changing the shared state first (AWS): the
    /// task looks again in a moment.
    Contended,
}

impl Deferral {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::InFlight => "max_in_flight",
            Self::CircuitOpen => "circuit_open",
            Self::Contended => "contended",
        }
    }
}

/// What the gate said to one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Send now. Hand the pass back to [`Gate::finish`] afterwards.
    Go(Pass),
    /// Not now: look again after `wait`.
    Wait { wait: Duration, why: Deferral },
}

/// A send the gate allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// The claim's owner: the in-flight slot, and the probe, are its.
    pub owner: String,
    /// This send is the one probe of an open circuit.
    pub probe: bool,
    /// Whether `finish` has anything to write: a slot to free, a probe, or
    /// a failure count to reset. When false and the send succeeds, finish
    /// is free (no round trip on AWS).
    pub tracked: bool,
}

/// What an attempt says about the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It answered 2xx.
    Healthy,
    /// It failed: no answer, or not a 2xx.
    Failing,
    /// Nothing was sent (the payload could not be built): no evidence.
    Unknown,
}

impl Verdict {
    pub fn of(result: &Result<DeliveryResponse, DeliveryError>) -> Self {
        match result {
            Ok(r) if (200..300).contains(&r.status) => Self::Healthy,
            Err(DeliveryError::Render(_) | DeliveryError::Unsigned(_)) => Self::Unknown,
            _ => Self::Failing,
        }
    }
}

/// A change of a circuit, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitChange {
    /// Too many consecutive failures: its tasks are held from now on.
    Opened,
    /// A send succeeded while it was open: its held tasks go again.
    Closed,
    /// A probe failed after the circuit had been open for the breaker's
    /// `disable_after`: the subscription is to be disabled. The circuit
    /// stays open, its clock restarted, so a resumed subscription is
    /// probed before its tasks go and gets the whole `disable_after` again.
    Expired,
}

impl CircuitChange {
    /// Its name in the metrics and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "circuit_opened",
            Self::Closed => "circuit_closed",
            Self::Expired => "circuit_expired",
        }
    }
}

/// The state of every subscription's controls, shared by all deliverers.
#[async_trait]
pub trait Gate: Send + Sync {
    /// May the holder of claim `owner` send to `subscription` now? A `Go`
    /// takes an in-flight slot until `finish`, or until `lease` passes if
    /// the holder dies.
    async fn admit(
        &self,
        subscription: &str,
        controls: &Controls,
        owner: &str,
        lease: Duration,
    ) -> Result<Admission, Unavailable>;

    /// After the send: free the slot and feed the breaker.
    async fn finish(
        &self,
        subscription: &str,
        controls: &Controls,
        pass: &Pass,
        verdict: Verdict,
        latency: Duration,
    ) -> Result<Option<CircuitChange>, Unavailable>;

    /// The state, for the admin API and the CLI (`None`: never used).
    async fn state(&self, subscription: &str) -> Result<Option<GateState>, Unavailable>;

    /// Forget a deleted subscription's state.
    async fn forget(&self, subscription: &str) -> Result<(), Unavailable>;
}
