//! An in-memory poller state store for the engine's tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::state::{PollClaim, PollLease, PollerState, PollerStates, StoredPoller};
use crate::error::Unavailable;

/// A poller's state, and its claim's owner and end.
type Entry = (PollerState, Option<(String, i64)>);

#[derive(Default)]
pub struct MemStates {
    pub polls: Mutex<HashMap<String, Entry>>,
}

impl MemStates {
    pub fn state(&self, id: &str) -> PollerState {
        self.polls.lock().unwrap()[id].0.clone()
    }

    /// As if the next poll were due now.
    pub fn make_due(&self, id: &str) {
        self.polls
            .lock()
            .unwrap()
            .get_mut(id)
            .unwrap()
            .0
            .next_poll_at_ms = 0;
    }
}

fn stored(entry: &Entry) -> StoredPoller {
    StoredPoller {
        state: entry.0.clone(),
        lease_until_ms: entry.1.as_ref().map(|l| l.1),
    }
}

#[async_trait]
impl PollerStates for MemStates {
    async fn get(&self, id: &str) -> Result<Option<StoredPoller>, Unavailable> {
        Ok(self.polls.lock().unwrap().get(id).map(stored))
    }

    async fn list(&self) -> Result<Vec<(String, StoredPoller)>, Unavailable> {
        Ok(self
            .polls
            .lock()
            .unwrap()
            .iter()
            .map(|(id, e)| (id.clone(), stored(e)))
            .collect())
    }

    async fn claim(
        &self,
        id: &str,
        lease: &PollLease,
        now_ms: i64,
        force: bool,
    ) -> Result<PollClaim, Unavailable> {
        let mut polls = self.polls.lock().unwrap();
        let entry = polls.entry(id.to_owned()).or_default();
        if let Some(refusal) = stored(entry).refusal(now_ms, force) {
            return Ok(refusal);
        }
        entry.1 = Some((lease.owner.clone(), lease.until_ms));
        Ok(PollClaim::Held(entry.0.clone()))
    }

    async fn save(
        &self,
        id: &str,
        lease: &PollLease,
        state: &PollerState,
    ) -> Result<bool, Unavailable> {
        let mut polls = self.polls.lock().unwrap();
        let Some(entry) = polls.get_mut(id) else {
            return Ok(false);
        };
        if entry.1.as_ref().map(|l| &l.0) != Some(&lease.owner) {
            return Ok(false);
        }
        *entry = (state.clone(), None);
        Ok(true)
    }

    async fn delete(&self, id: &str) -> Result<(), Unavailable> {
        self.polls.lock().unwrap().remove(id);
        Ok(())
    }
}
