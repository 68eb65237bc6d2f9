//! `Gate` over the DynamoDB gates table: one item per subscription (`pk` =
//! subscription id) holding its [`GateState`] as JSON and a version.
//! Item shape: [`super::item`].
//!
//! Every change is read, [`rules`] applied, then one PutItem on the
//! condition that the version is still the one read: of two deliverers
//! racing for the last slot, DynamoDB lets one through and the other reads
//! again. So the rate limit and `max_in_flight` hold across any number of
//! concurrent deliver invocations. A read that changes nothing writes
//! nothing: a subscription with no limits and a closed circuit costs one
//! eventually consistent GetItem per attempt, and none after a success.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::item::{self, gt, n};
use super::sdk_error;
use crate::error::Unavailable;
use crate::gate::rules::{self, GateState};
use crate::gate::{Admission, CircuitChange, Controls, Deferral, Gate, Pass, Verdict};
use crate::time::now_ms;

/// Reads and writes of one admission before the task is told to come
/// back (it has not been sent: waiting is safe).
const ADMIT_TRIES: u32 = 5;

/// Reads and writes of one finish: a slot it fails to free stays taken
/// until the claim's lease ends, so it tries much harder.
const FINISH_TRIES: u32 = 30;

/// How long a task waits when the state stayed contended for [`TRIES`].
const CONTENDED_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct DynamoGate {
    client: Client,
    table: String,
}

/// A state as read: the version its write is conditioned on (`None`: no
/// item yet).
struct Read {
    state: GateState,
    ver: Option<u64>,
}

impl DynamoGate {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }

    async fn read(&self, subscription: &str, consistent: bool) -> Result<Read, Unavailable> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::gate_key(subscription)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem (gates)", e))?;
        match out.item {
            None => Ok(Read {
                state: GateState::default(),
                ver: None,
            }),
            Some(i) => {
                let (state, ver) = item::item_gate(&i)
                    .map_err(|e| Unavailable::new(format!("gate of {subscription}: {e}")))?;
                Ok(Read {
                    state,
                    ver: Some(ver),
                })
            }
        }
    }

    /// Writes `state` if the item is still at `ver`; false if it moved.
    async fn write(
        &self,
        subscription: &str,
        state: &GateState,
        ver: Option<u64>,
    ) -> Result<bool, Unavailable> {
        let json = item::gate_state_value(state).map_err(Unavailable::permanent)?;
        let next = ver.map_or(1, |v| v + 1);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::gate_key(subscription)))
            .item(gt::STATE, json)
            .item(gt::VER, n(next))
            .item(gt::UPDATED_AT_MS, n(now_ms()))
            .expression_attribute_names("#v", gt::VER);
        let put = match ver {
            Some(v) => put
                .condition_expression("#v = :v")
                .expression_attribute_values(":v", n(v)),
            None => put.condition_expression("attribute_not_exists(#v)"),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutItem (gates)", e)),
        }
    }

    /// Apply `f` to the state and save it, re-reading when another writer
    /// got there first, after a random pause that grows with each try (so
    /// racing deliverers spread out). `None`: still contended after `tries`.
    async fn update<T>(
        &self,
        subscription: &str,
        consistent: bool,
        tries: u32,
        mut f: impl FnMut(&mut GateState, i64) -> T,
    ) -> Result<Option<T>, Unavailable> {
        let mut consistent = consistent;
        for attempt in 0..tries {
            if attempt > 0 {
                let ceiling = 5u64 << attempt.min(4);
                let pause = rand::Rng::random_range(&mut rand::rng(), 0..=ceiling);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            let read = self.read(subscription, consistent).await?;
            let mut state = read.state.clone();
            let out = f(&mut state, now_ms());
            if state == read.state || self.write(subscription, &state, read.ver).await? {
                return Ok(Some(out));
            }
            consistent = true;
        }
        Ok(None)
    }
}

#[async_trait]
impl Gate for DynamoGate {
    async fn admit(
        &self,
        subscription: &str,
        controls: &Controls,
        owner: &str,
        lease: Duration,
    ) -> Result<Admission, Unavailable> {
        if !controls.limited() && !controls.breaker.enabled() {
            return Ok(Admission::Go(Pass {
                owner: owner.to_owned(),
                probe: false,
                tracked: false,
            }));
        }
        // A limited gate writes on every send: read what the write is
        // conditioned on. The breaker alone only needs to see an open
        // circuit, and a moment's staleness sends a task or two more.
        let admitted = self
            .update(
                subscription,
                controls.limited(),
                ADMIT_TRIES,
                |state, now| rules::admit(state, controls, owner, now, lease),
            )
            .await?;
        Ok(admitted.unwrap_or(Admission::Wait {
            wait: CONTENDED_WAIT,
            why: Deferral::Contended,
        }))
    }

    async fn finish(
        &self,
        subscription: &str,
        controls: &Controls,
        pass: &Pass,
        verdict: Verdict,
        latency: Duration,
    ) -> Result<Option<CircuitChange>, Unavailable> {
        self.update(subscription, true, FINISH_TRIES, |state, now| {
            rules::finish(state, controls, pass, verdict, now, latency)
        })
        .await?
        .ok_or_else(|| {
            Unavailable::new(format!(
                "the gate of {subscription} stayed contended for {FINISH_TRIES} writes"
            ))
        })
    }

    async fn state(&self, subscription: &str) -> Result<Option<GateState>, Unavailable> {
        let read = self.read(subscription, true).await?;
        Ok(read.ver.map(|_| read.state))
    }

    async fn forget(&self, subscription: &str) -> Result<(), Unavailable> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item::gate_key(subscription)))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem (gates)", e))?;
        Ok(())
    }
}

/// The gates of a deployment without a gates table (a stack from before
/// delivery controls, read by the CLI): nothing was ever held there, so
/// there is no state to show or forget. Its deliver function, from the
/// same template, never sends through a gate.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGatesTable;

#[async_trait]
impl Gate for NoGatesTable {
    async fn admit(
        &self,
        _subscription: &str,
        _controls: &Controls,
        _owner: &str,
        _lease: Duration,
    ) -> Result<Admission, Unavailable> {
        Err(Unavailable::permanent(
            "this deployment has no gates table (SLUICE_GATES_TABLE)",
        ))
    }

    async fn finish(
        &self,
        _subscription: &str,
        _controls: &Controls,
        _pass: &Pass,
        _verdict: Verdict,
        _latency: Duration,
    ) -> Result<Option<CircuitChange>, Unavailable> {
        Ok(None)
    }

    async fn state(&self, _subscription: &str) -> Result<Option<GateState>, Unavailable> {
        Ok(None)
    }

    async fn forget(&self, _subscription: &str) -> Result<(), Unavailable> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::aws::testing::{MotoServer, TestResources};
    use crate::format::Format;
    use crate::gate::Breaker;

    const LEASE: Duration = Duration::from_secs(75);

    async fn gate() -> DynamoGate {
        let res = TestResources::create(MotoServer::shared()).await;
        let table = res.settings.gates_table.clone().expect("gates table");
        DynamoGate::new(res.clients.dynamodb.clone(), &table)
    }

    /// Many deliverers at once, each with its own client view of the
    /// table: exactly `max_in_flight` get a slot, however they interleave.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_admits_never_exceed_max_in_flight() {
        let gate = Arc::new(gate().await);
        let controls = Controls::new(Format::Raw, None, Some(3), None).unwrap();
        let admitted = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (gate, controls, admitted) = (gate.clone(), controls, admitted.clone());
            tasks.push(tokio::spawn(async move {
                if let Admission::Go(_) = gate
                    .admit("s", &controls, &format!("o{i}"), LEASE)
                    .await
                    .unwrap()
                {
                    admitted.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(admitted.load(Ordering::SeqCst), 3);
        let state = gate.state("s").await.unwrap().unwrap();
        assert_eq!(state.in_flight.len(), 3);
    }

    #[tokio::test]
    async fn the_circuit_opens_persists_and_is_forgotten() {
        let gate = gate().await;
        let breaker = Breaker {
            failures: 2,
            probe_after: Duration::from_secs(60),
            ..Breaker::default()
        };
        let controls = Controls::new(Format::Raw, None, None, Some(breaker)).unwrap();
        assert_eq!(gate.state("s").await.unwrap(), None, "no item before use");
        let mut changes = Vec::new();
        for o in ["a", "b"] {
            let Admission::Go(pass) = gate.admit("s", &controls, o, LEASE).await.unwrap() else {
                panic!("closed circuit");
            };
            changes.push(
                gate.finish("s", &controls, &pass, Verdict::Failing, Duration::ZERO)
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(changes, [None, Some(CircuitChange::Opened)]);
        assert!(matches!(
            gate.admit("s", &controls, "c", LEASE).await.unwrap(),
            Admission::Wait {
                why: Deferral::CircuitOpen,
                ..
            }
        ));
        assert_eq!(
            gate.state("s").await.unwrap().unwrap().circuit.name(),
            "open"
        );
        gate.forget("s").await.unwrap();
        assert_eq!(gate.state("s").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unlimited_gate_without_a_breaker_touches_nothing() {
        let gate = gate().await;
        let off = Breaker {
            failures: 0,
            probe_after: Duration::from_secs(30),
            ..Breaker::default()
        };
        let controls = Controls::new(Format::Raw, None, None, Some(off)).unwrap();
        let Admission::Go(pass) = gate.admit("s", &controls, "a", LEASE).await.unwrap() else {
            panic!("unlimited");
        };
        assert!(!pass.tracked);
        assert_eq!(gate.state("s").await.unwrap(), None);
    }
}
