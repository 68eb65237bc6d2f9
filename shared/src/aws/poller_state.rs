//! `PollerStates` over the DynamoDB pollers table: one item per poller
//! (`pk` = poller id) holding its state as JSON and, beside it, the
//! columns the claim's condition reads (`next_poll_at_ms`, the lease).
//! Item shape: [`super::item`].
//!
//! A claim is ONE conditional UpdateItem that takes the lease, so of two
//! overlapping claims DynamoDB lets exactly one through; the refused one
//! gets the item as it was (`ReturnValuesOnConditionCheckFailure=ALL_OLD`)
//! and learns why from [`StoredPoller::refusal`], the rule every store
//! applies, without another read.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::item::{self, PK, Update, n, pl, s};
use super::sdk_error;
use crate::error::Unavailable;
use crate::poll::{PollClaim, PollLease, PollerState, PollerStates, StoredPoller};

#[derive(Debug, Clone)]
pub struct DynamoPollerStates {
    client: Client,
    table: String,
}

impl DynamoPollerStates {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn stored(item: &item::Item, id: &str) -> Result<StoredPoller, Unavailable> {
    item::item_stored_poller(item).map_err(|e| Unavailable::new(format!("poller {id}: {e}")))
}

fn is_condition_failure(e: &aws_sdk_dynamodb::error::SdkError<UpdateItemError>) -> bool {
    matches!(
        e.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

#[async_trait]
impl PollerStates for DynamoPollerStates {
    async fn get(&self, id: &str) -> Result<Option<StoredPoller>, Unavailable> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::poller_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem (pollers)", e))?;
        out.item.map(|i| stored(&i, id)).transpose()
    }

    async fn list(&self) -> Result<Vec<(String, StoredPoller)>, Unavailable> {
        let items: Vec<item::Item> = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("Scan (pollers)", e))?;
        let mut out = Vec::with_capacity(items.len());
        for i in &items {
            let id = item::get_s(i, PK).map_err(Unavailable::new)?.to_owned();
            let poller = stored(i, &id)?;
            out.push((id, poller));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// One UpdateItem takes the lease on the condition of
    /// [`StoredPoller::refusal`]: no live lease and, unless forced, the
    /// next poll due (a poller with no item yet is due: the update creates
    /// it). The new item comes back (the state to poll from); a failed
    /// condition returns the old one, which says why.
    async fn claim(
        &self,
        id: &str,
        lease: &PollLease,
        now_ms: i64,
        force: bool,
    ) -> Result<PollClaim, Unavailable> {
        let update = Update::new()
            .set(pl::LEASE_OWNER, s(lease.owner.clone()))
            .set(pl::LEASE_UNTIL_MS, n(lease.until_ms))
            .condition(|u| {
                let until = u.name(pl::LEASE_UNTIL_MS);
                let now = u.value(n(now_ms));
                let free = format!("(attribute_not_exists({until}) OR {until} <= {now})");
                if force {
                    return free;
                }
                let next = u.name(pl::NEXT_POLL_AT_MS);
                format!("{free} AND (attribute_not_exists({next}) OR {next} <= {now})")
            });
        let result = update
            .apply(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(item::poller_key(id))),
            )
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let new = out.attributes.unwrap_or_default();
                Ok(PollClaim::Held(stored(&new, id)?.state))
            }
            Err(e) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(c)) =
                    e.as_service_error()
                else {
                    return Err(sdk_error("UpdateItem (pollers)", e));
                };
                let old = match c.item() {
                    Some(old) => stored(old, id)?,
                    None => StoredPoller::default(),
                };
                // The old item is the one the condition was evaluated on,
                // and the condition is the rule: it refuses this item too.
                old.refusal(now_ms, force).ok_or_else(|| {
                    Unavailable::new(format!(
                        "UpdateItem (pollers): the claim of poller {id} was refused, \
                         but the item it returned is claimable"
                    ))
                })
            }
        }
    }

    /// One UpdateItem on the condition that `lease` still holds the claim:
    /// the state, its `next_poll_at_ms`, and the end of the claim.
    async fn save(
        &self,
        id: &str,
        lease: &PollLease,
        state: &PollerState,
    ) -> Result<bool, Unavailable> {
        let json = item::poller_state_value(state).map_err(Unavailable::permanent)?;
        let update = Update::new()
            .set(pl::STATE, json)
            .set(pl::NEXT_POLL_AT_MS, n(state.next_poll_at_ms))
            .remove(pl::LEASE_OWNER)
            .remove(pl::LEASE_UNTIL_MS)
            .condition(|u| {
                let owner = u.name(pl::LEASE_OWNER);
                let me = u.value(s(lease.owner.clone()));
                format!("{owner} = {me}")
            });
        let result = update
            .apply(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(item::poller_key(id))),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_error("UpdateItem (pollers)", e)),
        }
    }

    async fn delete(&self, id: &str) -> Result<(), Unavailable> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item::poller_key(id)))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem (pollers)", e))?;
        Ok(())
    }
}

/// The poller states of a deployment without a pollers table (a stack
/// from before pollers, read by the CLI): every call says so, and the
/// rest of the admin API works.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPollersTable;

impl NoPollersTable {
    fn refuse<T>() -> Result<T, Unavailable> {
        Err(Unavailable::permanent(
            "this deployment has no pollers table (SLUICE_POLLERS_TABLE); \
             deploy the current infra/sam/template.yaml or Terraform module",
        ))
    }
}

#[async_trait]
impl PollerStates for NoPollersTable {
    async fn get(&self, _id: &str) -> Result<Option<StoredPoller>, Unavailable> {
        Self::refuse()
    }

    async fn list(&self) -> Result<Vec<(String, StoredPoller)>, Unavailable> {
        Self::refuse()
    }

    async fn claim(
        &self,
        _id: &str,
        _lease: &PollLease,
        _now_ms: i64,
        _force: bool,
    ) -> Result<PollClaim, Unavailable> {
        Self::refuse()
    }

    async fn save(
        &self,
        _id: &str,
        _lease: &PollLease,
        _state: &PollerState,
    ) -> Result<bool, Unavailable> {
        Self::refuse()
    }

    async fn delete(&self, _id: &str) -> Result<(), Unavailable> {
        Self::refuse()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::aws::testing::{MotoServer, TestResources};
    use crate::poll::LastResult;

    async fn states() -> DynamoPollerStates {
        let res = TestResources::create(MotoServer::shared()).await;
        DynamoPollerStates::new(
            res.clients.dynamodb.clone(),
            res.settings.pollers_table().unwrap(),
        )
    }

    fn lease(owner: &str, until_ms: i64) -> PollLease {
        PollLease {
            owner: owner.into(),
            until_ms,
        }
    }

    fn polled(next_poll_at_ms: i64) -> PollerState {
        PollerState {
            seen: vec!["2".into(), "1".into()],
            primed: true,
            etag: Some("\"v1\"".into()),
            last_result: Some(LastResult::Primed),
            last_poll_at_ms: Some(1_000),
            next_poll_at_ms,
            ..PollerState::default()
        }
    }

    #[tokio::test]
    async fn claim_then_save_round_trips_the_state_and_ends_the_claim() {
        let st = states().await;
        assert_eq!(st.get("p").await.unwrap(), None);
        let a = lease("a", 301_000);
        // No item yet: due, and the claim creates it.
        assert_eq!(
            st.claim("p", &a, 1_000, false).await.unwrap(),
            PollClaim::Held(PollerState::default())
        );
        assert_eq!(
            st.get("p").await.unwrap(),
            Some(StoredPoller {
                state: PollerState::default(),
                lease_until_ms: Some(301_000)
            })
        );
        let state = polled(61_000);
        assert!(st.save("p", &a, &state).await.unwrap());
        let stored = StoredPoller {
            state: state.clone(),
            lease_until_ms: None,
        };
        assert_eq!(st.get("p").await.unwrap(), Some(stored.clone()));
        assert_eq!(st.list().await.unwrap(), vec![("p".to_owned(), stored)]);
        // Due again: the next claim starts from what was saved.
        assert_eq!(
            st.claim("p", &lease("b", 400_000), 61_000, false)
                .await
                .unwrap(),
            PollClaim::Held(state)
        );
        st.delete("p").await.unwrap();
        st.delete("p").await.unwrap();
        assert_eq!(st.get("p").await.unwrap(), None);
        assert!(st.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_poll_not_due_is_refused_unless_forced_and_a_live_claim_always() {
        let st = states().await;
        let a = lease("a", 301_000);
        st.claim("p", &a, 1_000, false).await.unwrap();
        assert!(st.save("p", &a, &polled(61_000)).await.unwrap());
        assert_eq!(
            st.claim("p", &lease("b", 310_000), 10_000, false)
                .await
                .unwrap(),
            PollClaim::NotDue { at_ms: 61_000 }
        );
        // "Poll now": forced past the schedule, but not past a live claim.
        let forced = lease("b", 310_000);
        assert_eq!(
            st.claim("p", &forced, 10_000, true).await.unwrap(),
            PollClaim::Held(polled(61_000))
        );
        assert_eq!(
            st.claim("p", &lease("c", 400_000), 100_000, true)
                .await
                .unwrap(),
            PollClaim::Busy { until_ms: 310_000 }
        );
        assert_eq!(
            st.claim("p", &lease("c", 400_000), 100_000, false)
                .await
                .unwrap(),
            PollClaim::Busy { until_ms: 310_000 }
        );
        // Once the claim has expired, it is free.
        assert!(matches!(
            st.claim("p", &lease("c", 700_000), 310_000, false)
                .await
                .unwrap(),
            PollClaim::Held(_)
        ));
    }

    #[tokio::test]
    async fn a_save_by_a_lost_claim_returns_false_and_writes_nothing() {
        let st = states().await;
        let a = lease("a", 301_000);
        st.claim("p", &a, 1_000, false).await.unwrap();
        // a's claim expires and b takes it.
        let b = lease("b", 700_000);
        assert!(matches!(
            st.claim("p", &b, 400_000, false).await.unwrap(),
            PollClaim::Held(_)
        ));
        assert!(!st.save("p", &a, &polled(1)).await.unwrap());
        assert_eq!(
            st.get("p").await.unwrap(),
            Some(StoredPoller {
                state: PollerState::default(),
                lease_until_ms: Some(700_000)
            })
        );
        // A deleted poller is not brought back by a late save.
        st.delete("p").await.unwrap();
        assert!(!st.save("p", &b, &polled(1)).await.unwrap());
        assert_eq!(st.get("p").await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_many_concurrent_claims_exactly_one_holds() {
        let st = Arc::new(states().await);
        for round in 0..3 {
            let id = format!("p{round}");
            let claims: Vec<_> = (0..16)
                .map(|i| {
                    let st = st.clone();
                    let id = id.clone();
                    tokio::spawn(async move {
                        let lease = lease(&format!("owner-{i}"), 301_000);
                        (lease.clone(), st.claim(&id, &lease, 1_000, false).await)
                    })
                })
                .collect();
            let mut held = Vec::new();
            let mut refused = BTreeMap::new();
            for c in claims {
                let (lease, result) = c.await.unwrap();
                match result.unwrap() {
                    PollClaim::Held(_) => held.push(lease),
                    other => *refused.entry(format!("{other:?}")).or_insert(0) += 1,
                }
            }
            assert_eq!(held.len(), 1, "round {round}: {held:?} {refused:?}");
            assert_eq!(
                refused,
                BTreeMap::from([("Busy { until_ms: 301000 }".to_owned(), 15)])
            );
            // Only the holder's save lands.
            assert!(st.save(&id, &held[0], &polled(61_000)).await.unwrap());
        }
    }
}
