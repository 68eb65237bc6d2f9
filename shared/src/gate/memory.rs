//! The gate in one process: the states behind a mutex. `sluice serve`
//! uses it (with the circuits saved to SQLite, see `local::gate`), and so
//! do the pipeline's tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::rules::{self, GateState};
use super::{Admission, CircuitChange, Controls, Gate, Pass, Verdict};
use crate::error::Unavailable;
use crate::time::now_ms;

#[derive(Debug, Default)]
pub struct MemoryGate {
    states: Mutex<HashMap<String, GateState>>,
}

impl MemoryGate {
    /// A gate that starts from these states (the circuits saved before a
    /// restart).
    pub fn with_states(states: impl IntoIterator<Item = (String, GateState)>) -> Self {
        Self {
            states: Mutex::new(states.into_iter().collect()),
        }
    }

    /// Apply `f` to `subscription`'s state; also returns the state when
    /// its circuit changed (what is worth saving).
    pub fn update<T>(
        &self,
        subscription: &str,
        f: impl FnOnce(&mut GateState) -> T,
    ) -> (T, Option<GateState>) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let state = states.entry(subscription.to_owned()).or_default();
        let before = state.circuit.clone();
        let out = f(state);
        let changed = (state.circuit != before).then(|| state.clone());
        (out, changed)
    }

    /// [`rules::admit`] now, on `subscription`'s state.
    pub fn admit_now(
        &self,
        subscription: &str,
        controls: &Controls,
        owner: &str,
        lease: Duration,
    ) -> (Admission, Option<GateState>) {
        self.update(subscription, |s| {
            rules::admit(s, controls, owner, now_ms(), lease)
        })
    }

    /// [`rules::finish`] now, on `subscription`'s state.
    pub fn finish_now(
        &self,
        subscription: &str,
        controls: &Controls,
        pass: &Pass,
        verdict: Verdict,
        latency: Duration,
    ) -> (Option<CircuitChange>, Option<GateState>) {
        self.update(subscription, |s| {
            rules::finish(s, controls, pass, verdict, now_ms(), latency)
        })
    }

    pub fn get(&self, subscription: &str) -> Option<GateState> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.get(subscription).cloned()
    }

    pub fn remove(&self, subscription: &str) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.remove(subscription);
    }

    /// Every subscription's state, for the metrics.
    pub fn snapshot(&self) -> Vec<(String, GateState)> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[async_trait]
impl Gate for MemoryGate {
    async fn admit(
        &self,
        subscription: &str,
        controls: &Controls,
        owner: &str,
        lease: Duration,
    ) -> Result<Admission, Unavailable> {
        Ok(self.admit_now(subscription, controls, owner, lease).0)
    }

    async fn finish(
        &self,
        subscription: &str,
        controls: &Controls,
        pass: &Pass,
        verdict: Verdict,
        latency: Duration,
    ) -> Result<Option<CircuitChange>, Unavailable> {
        Ok(self
            .finish_now(subscription, controls, pass, verdict, latency)
            .0)
    }

    async fn state(&self, subscription: &str) -> Result<Option<GateState>, Unavailable> {
        Ok(self.get(subscription))
    }

    async fn forget(&self, subscription: &str) -> Result<(), Unavailable> {
        self.remove(subscription);
        Ok(())
    }
}
