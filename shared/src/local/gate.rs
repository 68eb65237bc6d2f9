//! The gate of `sluice serve`: the states in memory (one process delivers),
//! each circuit change saved to SQLite. On start the saved circuits are
//! loaded, so a restart neither forgets an open circuit nor a failure
//! count; a CLI beside the gateway reads them from the file.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;

use super::SqliteStore;
use crate::error::Unavailable;
use crate::gate::{Admission, CircuitChange, Controls, Gate, GateState, MemoryGate, Pass, Verdict};
use crate::time::now_ms;

pub struct LocalGate {
    memory: MemoryGate,
    store: SqliteStore,
}

impl LocalGate {
    /// The gate, with the circuits saved in `store`. Sends that were in
    /// flight when the last process stopped are not: they ended with it.
    pub async fn load(store: SqliteStore) -> Result<Self, Unavailable> {
        let saved: Vec<(String, String)> = store
            .read(|c| {
                c.prepare_cached("SELECT subscription, state FROM gate_state")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .await?;
        let states = saved.into_iter().filter_map(|(sub, json)| {
            let mut state: GateState = serde_json::from_str(&json)
                .inspect_err(|e| tracing::warn!(subscription = %sub, error = %e, "unreadable gate state ignored"))
                .ok()?;
            state.in_flight.clear();
            Some((sub, state))
        });
        Ok(Self {
            memory: MemoryGate::with_states(states),
            store,
        })
    }

    /// Every subscription's state, for the metrics.
    pub fn snapshot(&self) -> Vec<(String, GateState)> {
        self.memory.snapshot()
    }

    async fn save(&self, subscription: &str, state: Option<GateState>) {
        let Some(state) = state else { return };
        let Ok(json) = serde_json::to_string(&state) else {
            return;
        };
        let sub = subscription.to_owned();
        let saved = self
            .store
            .write(move |c, _| {
                c.prepare_cached(
                    "INSERT INTO gate_state (subscription, state, updated_at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (subscription) DO UPDATE SET state = ?2, updated_at_ms = ?3",
                )?
                .execute(params![sub, json, now_ms()])?;
                Ok(())
            })
            .await;
        // The process's state is the one that rules; the file only
        // remembers it across a restart.
        if let Err(e) = saved {
            tracing::warn!(subscription, error = %e, "circuit state not saved");
        }
    }
}

#[async_trait]
impl Gate for LocalGate {
    async fn admit(
        &self,
        subscription: &str,
        controls: &Controls,
        owner: &str,
        lease: Duration,
    ) -> Result<Admission, Unavailable> {
        let (admission, changed) = self.memory.admit_now(subscription, controls, owner, lease);
        self.save(subscription, changed).await;
        Ok(admission)
    }

    async fn finish(
        &self,
        subscription: &str,
        controls: &Controls,
        pass: &Pass,
        verdict: Verdict,
        latency: Duration,
    ) -> Result<Option<CircuitChange>, Unavailable> {
        let (change, changed) =
            self.memory
                .finish_now(subscription, controls, pass, verdict, latency);
        self.save(subscription, changed).await;
        Ok(change)
    }

    async fn state(&self, subscription: &str) -> Result<Option<GateState>, Unavailable> {
        Ok(self.memory.get(subscription))
    }

    async fn forget(&self, subscription: &str) -> Result<(), Unavailable> {
        self.memory.remove(subscription);
        let sub = subscription.to_owned();
        self.store
            .write(move |c, _| {
                c.prepare_cached("DELETE FROM gate_state WHERE subscription = ?1")?
                    .execute(params![sub])?;
                Ok(())
            })
            .await
    }
}
