//! In-memory ports for the pipeline's unit tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::delivery::{DeliveryError, DeliveryResponse, OutboundRequest, Transport};
use crate::error::Unavailable;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey, ReceivedTask};
use crate::queue::{DeliveryQueue, Parked};
use crate::store::{Claim, Commit, DeliveryState, EventStore, Lease};
use crate::time::now_ms;

#[derive(Default)]
pub struct MemStore {
    pub events: Mutex<HashMap<EventKey, Event>>,
    pub routed: Mutex<HashMap<EventKey, Vec<String>>>,
    pub statuses: Mutex<HashMap<DeliveryTask, DeliveryStatus>>,
    pub attempts: Mutex<Vec<(Attempt, DeliveryStatus)>>,
    /// Live leases: owner and end.
    pub leases: Mutex<HashMap<DeliveryTask, (String, i64)>>,
    /// Next attempt and the message that scheduled it.
    pub schedules: Mutex<HashMap<DeliveryTask, (i64, String)>>,
    pub down: Mutex<bool>,
    /// Every call fails permanently while set.
    pub refuses: Mutex<bool>,
}

impl MemStore {
    /// As if time passed: every scheduled retry is due.
    pub fn make_due(&self) {
        self.schedules.lock().unwrap().clear();
    }

    fn check(&self) -> Result<(), Unavailable> {
        if *self.refuses.lock().unwrap() {
            return Err(Unavailable::permanent("item too large"));
        }
        if *self.down.lock().unwrap() {
            Err(Unavailable::new("store down"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl EventStore for MemStore {
    async fn commit(&self, event: &Event) -> Result<Commit, Unavailable> {
        self.check()?;
        let mut events = self.events.lock().unwrap();
        if let Some(old) = events.get(&event.key()) {
            return Ok(Commit::Duplicate {
                body_hash: Some(old.body_hash.clone()),
            });
        }
        events.insert(event.key(), event.clone());
        Ok(Commit::Accepted)
    }

    async fn load(&self, key: &EventKey) -> Result<Option<Event>, Unavailable> {
        self.check()?;
        Ok(self.events.lock().unwrap().get(key).cloned())
    }

    async fn mark_routed(
        &self,
        key: &EventKey,
        subscriptions: &[String],
    ) -> Result<(), Unavailable> {
        self.check()?;
        self.routed
            .lock()
            .unwrap()
            .insert(key.clone(), subscriptions.to_vec());
        Ok(())
    }

    async fn delivery_status(
        &self,
        task: &DeliveryTask,
    ) -> Result<Option<DeliveryStatus>, Unavailable> {
        self.check()?;
        Ok(self.statuses.lock().unwrap().get(task).copied())
    }

    async fn claim(&self, msg: &ReceivedTask, lease: Duration) -> Result<Claim, Unavailable> {
        self.check()?;
        let task = &msg.task;
        let now = now_ms();
        let mut leases = self.leases.lock().unwrap();
        let schedule = self.schedules.lock().unwrap().get(task).cloned();
        let state = DeliveryState {
            status: self.statuses.lock().unwrap().get(task).copied(),
            attempts: self
                .attempts
                .lock()
                .unwrap()
                .iter()
                .filter(|(a, _)| a.subscription == task.subscription && a.event_id == task.event_id)
                .count() as u32,
            lease_until_ms: leases.get(task).map(|(_, until)| *until),
            next_attempt_at_ms: schedule.as_ref().map(|(at, _)| *at),
            scheduled_by: schedule.map(|(_, by)| by),
        };
        if let Some(refused) = state.refusal(&msg.message_id, now) {
            return Ok(refused);
        }
        let lease = Lease::new(msg, now, lease);
        leases.insert(task.clone(), (lease.owner.clone(), lease.until_ms));
        Ok(Claim::Held {
            lease,
            attempt: state.attempts + 1,
            event: self.events.lock().unwrap().get(&task.event_key()).cloned(),
        })
    }

    async fn release(&self, task: &DeliveryTask, lease: &Lease) -> Result<(), Unavailable> {
        let mut leases = self.leases.lock().unwrap();
        if leases
            .get(task)
            .is_some_and(|(owner, _)| *owner == lease.owner)
        {
            leases.remove(task);
        }
        Ok(())
    }

    async fn settle(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
        lease: &Lease,
    ) -> Result<bool, Unavailable> {
        let recorded = self.record_attempt(attempt, status).await?;
        let task = attempt.task();
        let mut leases = self.leases.lock().unwrap();
        if leases
            .get(&task)
            .is_some_and(|(owner, _)| *owner == lease.owner)
        {
            leases.remove(&task);
        }
        let mut schedules = self.schedules.lock().unwrap();
        match attempt
            .next_attempt_at_ms
            .filter(|_| recorded && !status.is_final())
        {
            Some(at) => schedules.insert(task, (at, lease.message_id.clone())),
            None => schedules.remove(&task),
        };
        Ok(recorded)
    }

    async fn record_attempt(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
    ) -> Result<bool, Unavailable> {
        self.check()?;
        self.attempts
            .lock()
            .unwrap()
            .push((attempt.clone(), status));
        let task = attempt.task();
        let mut statuses = self.statuses.lock().unwrap();
        let current = statuses.entry(task).or_insert(DeliveryStatus::Pending);
        if current.is_final() {
            return Ok(false);
        }
        *current = status;
        Ok(true)
    }
}

#[derive(Default)]
pub struct MemQueue {
    pub sent: Mutex<Vec<DeliveryTask>>,
    pub retries: Mutex<Vec<(String, Duration)>>,
    pub dead: Mutex<Vec<(DeliveryTask, String)>>,
    pub parked: Mutex<Vec<(DeliveryTask, Duration)>>,
    /// Indexes `send` reports as failed.
    pub fail_indexes: Mutex<Vec<usize>>,
    /// `dead_letter` fails while set.
    pub dlq_down: Mutex<bool>,
    /// When set, `retry_in` signals the first and waits for the second:
    /// a test can act while a delivery is suspended there.
    pub pause_retry: Option<(Arc<Notify>, Arc<Notify>)>,
}

#[async_trait]
impl DeliveryQueue for MemQueue {
    async fn send(&self, tasks: &[DeliveryTask]) -> Result<Vec<usize>, Unavailable> {
        let failed = self.fail_indexes.lock().unwrap().clone();
        let mut sent = self.sent.lock().unwrap();
        for (i, t) in tasks.iter().enumerate() {
            if !failed.contains(&i) {
                sent.push(t.clone());
            }
        }
        Ok(failed.into_iter().filter(|i| *i < tasks.len()).collect())
    }

    async fn retry_in(&self, msg: &ReceivedTask, delay: Duration) -> Result<(), Unavailable> {
        if let Some((entered, release)) = &self.pause_retry {
            entered.notify_one();
            release.notified().await;
        }
        self.retries
            .lock()
            .unwrap()
            .push((msg.handle.clone(), delay));
        Ok(())
    }

    async fn park(&self, msg: &ReceivedTask, recheck: Duration) -> Result<Parked, Unavailable> {
        self.parked
            .lock()
            .unwrap()
            .push((msg.task.clone(), recheck));
        Ok(Parked::Copied)
    }

    async fn dead_letter(&self, msg: &ReceivedTask, reason: &str) -> Result<(), Unavailable> {
        if *self.dlq_down.lock().unwrap() {
            return Err(Unavailable::new("dlq down"));
        }
        self.dead
            .lock()
            .unwrap()
            .push((msg.task.clone(), reason.to_owned()));
        Ok(())
    }
}

/// Answers each request with the next scripted result (then repeats the last).
pub struct ScriptedTransport {
    pub script: Mutex<VecDeque<Result<DeliveryResponse, DeliveryError>>>,
    pub requests: Mutex<Vec<OutboundRequest>>,
}

impl ScriptedTransport {
    pub fn new(script: Vec<Result<DeliveryResponse, DeliveryError>>) -> Self {
        Self {
            script: Mutex::new(script.into()),
            requests: Mutex::default(),
        }
    }

    pub fn status(code: u16) -> Result<DeliveryResponse, DeliveryError> {
        Ok(DeliveryResponse {
            status: code,
            retry_after: None,
            snippet: String::new(),
        })
    }
}

#[async_trait]
impl Transport for ScriptedTransport {
    async fn send(&self, req: &OutboundRequest) -> Result<DeliveryResponse, DeliveryError> {
        self.requests.lock().unwrap().push(req.clone());
        let mut script = self.script.lock().unwrap();
        if script.len() > 1 {
            script.pop_front().unwrap()
        } else {
            script.front().cloned().unwrap()
        }
    }
}
