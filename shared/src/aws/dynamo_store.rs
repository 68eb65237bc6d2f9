//! `EventStore` over two DynamoDB tables: events (the commit; its stream is
//! the outbox) and deliveries (one item per event and subscription, holding
//! the status and the attempt log). Item shapes: [`super::item`].

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use futures::{StreamExt, TryStreamExt};

use super::item::{self, Item, PK, Update, dl, ev, n, s};
use super::sdk_error;
use crate::error::Unavailable;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey, ReceivedTask};
use crate::store::{Claim, Commit, DUE_TOLERANCE_MS, DeliveryState, EventStore, Lease};
use crate::time::now_ms;

/// How long a delivery item is kept after it was created: 14 days, the
/// longest SQS retention, so no message can outlive the record that says
/// whether it was already delivered.
pub const DEFAULT_DELIVERY_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// How many delivery items `mark_routed` writes at once.
const WRITE_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    events_table: String,
    deliveries_table: String,
    delivery_retention: Duration,
}

impl DynamoStore {
    pub fn new(client: Client, events_table: &str, deliveries_table: &str) -> Self {
        Self {
            client,
            events_table: events_table.to_owned(),
            deliveries_table: deliveries_table.to_owned(),
            delivery_retention: DEFAULT_DELIVERY_RETENTION,
        }
    }

    /// Keep delivery items this long (the TTL written at creation).
    pub fn with_delivery_retention(mut self, retention: Duration) -> Self {
        self.delivery_retention = retention;
        self
    }

    pub fn events_table(&self) -> &str {
        &self.events_table
    }

    pub fn deliveries_table(&self) -> &str {
        &self.deliveries_table
    }

    /// The subscriptions an event was routed to, once enqueue finished.
    pub async fn routed(&self, key: &EventKey) -> Result<Option<Vec<String>>, Unavailable> {
        let found = self
            .get(
                &self.events_table,
                item::event_key(key),
                Some(ev::ROUTED),
                "GetItem (events)",
            )
            .await?;
        match found {
            None => Ok(None),
            Some(i) => item::item_routed(&i).map_err(Unavailable::new),
        }
    }

    /// The attempt log of one delivery, oldest first.
    pub async fn attempts(&self, task: &DeliveryTask) -> Result<Vec<Attempt>, Unavailable> {
        let found = self
            .get(
                &self.deliveries_table,
                item::delivery_key(task),
                None,
                "GetItem (deliveries)",
            )
            .await?;
        match found {
            None => Ok(Vec::new()),
            Some(i) => item::item_attempts(&i).map_err(Unavailable::new),
        }
    }

    /// One item, read consistently; `only` names the single attribute wanted.
    async fn get(
        &self,
        table: &str,
        key: Item,
        only: Option<&str>,
        what: &'static str,
    ) -> Result<Option<Item>, Unavailable> {
        let mut req = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true);
        if let Some(attribute) = only {
            req = req
                .projection_expression("#a")
                .expression_attribute_names("#a", attribute);
        }
        let out = req.send().await.map_err(|e| sdk_error(what, e))?;
        Ok(out.item)
    }

    fn expires_at(&self, now_ms: i64) -> i64 {
        now_ms / 1000 + i64::try_from(self.delivery_retention.as_secs()).unwrap_or(i64::MAX / 2)
    }

    /// The identity attributes of a deliveries item, written once.
    fn delivery_identity(&self, u: Update, task: &DeliveryTask, now: i64) -> Update {
        u.set_once(dl::SOURCE, s(task.source.clone()))
            .set_once(dl::EVENT_ID, s(task.event_id.clone()))
            .set_once(dl::SUBSCRIPTION, s(task.subscription.clone()))
            .set_once(dl::CREATED_AT_MS, n(now))
            .set_once(dl::EXPIRES_AT, n(self.expires_at(now)))
    }

    async fn update_delivery(
        &self,
        task: &DeliveryTask,
        update: Update,
    ) -> Result<(), aws_sdk_dynamodb::error::SdkError<UpdateItemError>> {
        update
            .apply(
                self.client
                    .update_item()
                    .table_name(&self.deliveries_table)
                    .set_key(Some(item::delivery_key(task))),
            )
            .send()
            .await
            .map(|_| ())
    }
}

fn is_condition_failure(e: &aws_sdk_dynamodb::error::SdkError<UpdateItemError>) -> bool {
    matches!(
        e.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

#[async_trait]
impl EventStore for DynamoStore {
    /// One conditional PutItem. A duplicate's stored fingerprint comes back
    /// with the failed condition (ALL_OLD), so a duplicate costs no read.
    async fn commit(&self, event: &Event) -> Result<Commit, Unavailable> {
        let result = self
            .client
            .put_item()
            .table_name(&self.events_table)
            .set_item(Some(item::event_to_item(event)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Commit::Accepted),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    let body_hash = c
                        .item()
                        .and_then(|old| item::opt_s(old, ev::BODY_HASH).ok().flatten())
                        .map(str::to_owned);
                    Ok(Commit::Duplicate { body_hash })
                }
                _ => Err(sdk_error("PutItem (events)", e)),
            },
        }
    }

    async fn load(&self, key: &EventKey) -> Result<Option<Event>, Unavailable> {
        let found = self
            .get(
                &self.events_table,
                item::event_key(key),
                None,
                "GetItem (events)",
            )
            .await?;
        match found {
            None => Ok(None),
            Some(i) => item::item_to_event(&i)
                .map(Some)
                .map_err(|e| Unavailable::new(format!("event {key}: {e}"))),
        }
    }

    /// The event's `routed` list and one pending delivery item per
    /// subscription, written concurrently. A delivery item that exists is
    /// left as it is (`if_not_exists`), so a final status is never reset.
    async fn mark_routed(
        &self,
        key: &EventKey,
        subscriptions: &[String],
    ) -> Result<(), Unavailable> {
        let now = now_ms();
        let routed = AttributeValue::L(subscriptions.iter().map(|x| s(x.clone())).collect());
        let mark_event = async {
            let update = Update::new()
                .set(ev::ROUTED, routed)
                .set(ev::ROUTED_AT_MS, n(now))
                // Never create a stub item for an event that is gone (TTL).
                .condition(|u| format!("attribute_exists({})", u.name(PK)));
            let result = update
                .apply(
                    self.client
                        .update_item()
                        .table_name(&self.events_table)
                        .set_key(Some(item::event_key(key))),
                )
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(e) if is_condition_failure(&e) => {
                    tracing::warn!(source = %key.source, event_id = %key.id, "routed an event that is no longer stored");
                    Ok(())
                }
                Err(e) => Err(sdk_error("UpdateItem (events)", e)),
            }
        };
        let writes: Vec<_> = subscriptions
            .iter()
            .map(|sub| async move {
                let task = DeliveryTask {
                    source: key.source.clone(),
                    event_id: key.id.clone(),
                    subscription: sub.clone(),
                };
                let update = self
                    .delivery_identity(Update::new(), &task, now)
                    .set_once(dl::STATUS, s(DeliveryStatus::Pending.as_str()))
                    .set_once(dl::ATTEMPT_COUNT, n(0))
                    .set_once(dl::UPDATED_AT_MS, n(now));
                self.update_delivery(&task, update)
                    .await
                    .map_err(|e| sdk_error("UpdateItem (deliveries)", e))
            })
            .collect();
        let create_deliveries = futures::stream::iter(writes)
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>();
        futures::try_join!(mark_event, create_deliveries)?;
        Ok(())
    }

    async fn delivery_status(
        &self,
        task: &DeliveryTask,
    ) -> Result<Option<DeliveryStatus>, Unavailable> {
        let found = self
            .get(
                &self.deliveries_table,
                item::delivery_key(task),
                Some(dl::STATUS),
                "GetItem (deliveries)",
            )
            .await?;
        match found {
            None => Ok(None),
            Some(i) => item::item_status(&i).map_err(Unavailable::new),
        }
    }

    /// One UpdateItem takes the lease, on the condition of
    /// [`DeliveryState::refusal`]: pending (or new), no live lease, next
    /// attempt due. It creates the item when routing has not yet, and
    /// returns the attempt count; a failed condition returns the item as
    /// it was, which says why. Then the event, read consistently.
    async fn claim(&self, msg: &ReceivedTask, lease: Duration) -> Result<Claim, Unavailable> {
        let task = &msg.task;
        let now = now_ms();
        let lease = Lease::new(msg, now, lease);
        let due_by = now.saturating_add(DUE_TOLERANCE_MS);
        let update = self
            .delivery_identity(Update::new(), task, now)
            .set_once(dl::STATUS, s(DeliveryStatus::Pending.as_str()))
            .set_once(dl::ATTEMPT_COUNT, n(0))
            .set_once(dl::UPDATED_AT_MS, n(now))
            .set(dl::LEASE_OWNER, s(lease.owner.clone()))
            .set(dl::LEASE_UNTIL_MS, n(lease.until_ms))
            .condition(|u| {
                let st = u.name(dl::STATUS);
                let pending = u.value(s(DeliveryStatus::Pending.as_str()));
                let until = u.name(dl::LEASE_UNTIL_MS);
                let now = u.value(n(now));
                let next = u.name(dl::NEXT_ATTEMPT_AT_MS);
                let due = u.value(n(due_by));
                format!(
                    "(attribute_not_exists({st}) OR {st} = {pending}) \
                     AND (attribute_not_exists({until}) OR {until} <= {now}) \
                     AND (attribute_not_exists({next}) OR {next} <= {due})"
                )
            });
        let result = update
            .apply(
                self.client
                    .update_item()
                    .table_name(&self.deliveries_table)
                    .set_key(Some(item::delivery_key(task))),
            )
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let attempts: u32 = match result {
            Ok(out) => out
                .attributes
                .as_ref()
                .map(|a| item::opt_n(a, dl::ATTEMPT_COUNT))
                .transpose()
                .map_err(Unavailable::new)?
                .flatten()
                .unwrap_or(0),
            Err(e) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(c)) =
                    e.as_service_error()
                else {
                    return Err(sdk_error("UpdateItem (deliveries)", e));
                };
                let state = match c.item() {
                    Some(old) => item::item_delivery_state(old).map_err(Unavailable::new)?,
                    None => DeliveryState::default(),
                };
                // The item changed between the write and its answer: look
                // again a little later.
                return Ok(state
                    .refusal(&msg.message_id, now)
                    .unwrap_or(Claim::Leased {
                        wait: Duration::from_secs(1),
                    }));
            }
        };
        let event = self.load(&task.event_key()).await?;
        Ok(Claim::Held {
            lease,
            attempt: attempts.saturating_add(1),
            event,
        })
    }

    /// Removes the lease if it is still this one's.
    async fn release(&self, task: &DeliveryTask, lease: &Lease) -> Result<(), Unavailable> {
        let update = Update::new()
            .remove(dl::LEASE_OWNER)
            .remove(dl::LEASE_UNTIL_MS)
            .condition(|u| {
                let owner = u.name(dl::LEASE_OWNER);
                let me = u.value(s(lease.owner.clone()));
                format!("{owner} = {me}")
            });
        match self.update_delivery(task, update).await {
            Ok(()) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(sdk_error("UpdateItem (deliveries)", e)),
        }
    }

    async fn settle(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
        lease: &Lease,
    ) -> Result<bool, Unavailable> {
        self.record(attempt, status, Some(lease)).await
    }

    async fn record_attempt(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
    ) -> Result<bool, Unavailable> {
        self.record(attempt, status, None).await
    }
}

impl DynamoStore {
    /// One UpdateItem appends the attempt and moves the status, on the
    /// condition that the status is not final and, for a lease holder,
    /// that no other claim is live; it ends the holder's lease and names
    /// its message as the one carrying a scheduled retry. When the
    /// condition fails (a redelivered message after success, a holder
    /// whose lease ran out and was taken), a second UpdateItem only
    /// appends the attempt.
    async fn record(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
        lease: Option<&Lease>,
    ) -> Result<bool, Unavailable> {
        let task = attempt.task();
        let now = now_ms();
        let entry = item::attempt_to_value(attempt);
        let log = |u: Update| {
            self.delivery_identity(u, &task, now)
                .append(dl::ATTEMPTS, entry.clone())
                .add(dl::ATTEMPT_COUNT, 1)
                .set(dl::UPDATED_AT_MS, n(now))
        };
        let mut transition = log(Update::new())
            .set(dl::STATUS, s(status.as_str()))
            .set(dl::LAST_ATTEMPT, n(attempt.attempt))
            .set(dl::LAST_ATTEMPT_AT_MS, n(attempt.started_at_ms))
            .set(dl::LAST_LATENCY_MS, n(attempt.latency_ms))
            .set_or_remove(dl::LAST_STATUS_CODE, attempt.status_code.map(n))
            .set_or_remove(dl::LAST_ERROR, attempt.error.clone().map(s))
            .set_or_remove(
                dl::NEXT_ATTEMPT_AT_MS,
                attempt
                    .next_attempt_at_ms
                    .filter(|_| !status.is_final())
                    .map(n),
            );
        if let Some(lease) = lease {
            transition = transition
                .remove(dl::LEASE_OWNER)
                .remove(dl::LEASE_UNTIL_MS)
                .set(dl::SCHEDULED_BY, s(lease.message_id.clone()));
        }
        let transition = transition.condition(|u| {
            let st = u.name(dl::STATUS);
            let pending = u.value(s(DeliveryStatus::Pending.as_str()));
            let open = format!("(attribute_not_exists({st}) OR {st} = {pending})");
            match lease {
                None => open,
                Some(lease) => {
                    let owner = u.name(dl::LEASE_OWNER);
                    let me = u.value(s(lease.owner.clone()));
                    let until = u.name(dl::LEASE_UNTIL_MS);
                    let now = u.value(n(now));
                    format!(
                        "{open} AND ({owner} = {me} OR attribute_not_exists({until}) OR {until} <= {now})"
                    )
                }
            }
        });
        match self.update_delivery(&task, transition).await {
            Ok(()) => Ok(true),
            Err(e) if is_condition_failure(&e) => {
                self.update_delivery(&task, log(Update::new()))
                    .await
                    .map_err(|e| sdk_error("UpdateItem (deliveries)", e))?;
                Ok(false)
            }
            Err(e) => Err(sdk_error("UpdateItem (deliveries)", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::aws::testing::{MotoServer, TestResources};
    use crate::model::Headers;

    fn event(source: &str, id: &str, body: &'static [u8], hash: &str) -> Event {
        Event {
            source: source.into(),
            id: id.into(),
            event_type: "push".into(),
            received_at_ms: now_ms(),
            expires_at: now_ms() / 1000 + 7 * 24 * 3600,
            body: Bytes::from_static(body),
            body_hash: hash.into(),
            content_type: Some("application/json".into()),
            headers: crate::model::Headers::from_pairs(&[("x-github-event", "push")]),
        }
    }

    async fn store() -> (DynamoStore, TestResources) {
        let moto = MotoServer::shared();
        let res = TestResources::create(moto).await;
        let store = DynamoStore::new(
            res.clients.dynamodb.clone(),
            &res.settings.events_table,
            &res.settings.deliveries_table,
        );
        (store, res)
    }

    fn attempt(task: &DeliveryTask, n: u32, code: Option<u16>) -> Attempt {
        Attempt {
            source: task.source.clone(),
            event_id: task.event_id.clone(),
            subscription: task.subscription.clone(),
            attempt: n,
            started_at_ms: now_ms(),
            latency_ms: 12,
            status_code: code,
            error: code.is_none().then(|| "connection refused".to_owned()),
            response_snippet: code.map(|c| format!("status {c}")),
            next_attempt_at_ms: None,
        }
    }

    #[tokio::test]
    async fn commit_then_duplicate_returns_the_stored_hash() {
        let (store, _res) = store().await;
        let first = event("gh", "d-1", b"{\"a\":1}", "hash-one");
        assert_eq!(store.commit(&first).await.unwrap(), Commit::Accepted);
        // Same key, different body: still a duplicate, with the stored hash.
        let again = event("gh", "d-1", b"{\"a\":2}", "hash-two");
        assert_eq!(
            store.commit(&again).await.unwrap(),
            Commit::Duplicate {
                body_hash: Some("hash-one".into())
            }
        );
        // The stored event is the first one.
        let loaded = store.load(&first.key()).await.unwrap().unwrap();
        assert_eq!(loaded.body_hash, "hash-one");
        // Another source with the same id is another key.
        let other = event("stripe", "d-1", b"x", "h");
        assert_eq!(store.commit(&other).await.unwrap(), Commit::Accepted);
    }

    #[tokio::test]
    async fn concurrent_commits_of_one_key_accept_exactly_one() {
        let (store, _res) = store().await;
        let store = Arc::new(store);
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let e = Event {
                        body_hash: format!("h{i}"),
                        ..event("gh", "race", b"{}", "")
                    };
                    store.commit(&e).await.unwrap()
                })
            })
            .collect();
        let mut accepted = Vec::new();
        let mut hashes = Vec::new();
        for (i, h) in handles.into_iter().enumerate() {
            match h.await.unwrap() {
                Commit::Accepted => accepted.push(i),
                Commit::Duplicate { body_hash } => hashes.push(body_hash.unwrap()),
            }
        }
        assert_eq!(accepted.len(), 1, "exactly one commit wins");
        let winner = format!("h{}", accepted[0]);
        assert_eq!(hashes.len(), 19);
        assert!(
            hashes.iter().all(|h| *h == winner),
            "{hashes:?} vs {winner}"
        );
    }

    #[tokio::test]
    async fn load_round_trips_binary_bodies() {
        let (store, _res) = store().await;
        let body: &'static [u8] = &[0, 1, 2, 0xff, 0xfe, b'\n', 0x80, 0];
        let mut e = event("gh", "bin", body, "hb");
        e.event_type = String::new();
        e.content_type = None;
        e.headers = Headers::from_pairs(&[("a", "1"), ("a", "2 \"q\"")]);
        store.commit(&e).await.unwrap();
        assert_eq!(store.load(&e.key()).await.unwrap(), Some(e.clone()));
        assert_eq!(
            store.load(&EventKey::new("gh", "nope")).await.unwrap(),
            None
        );
        // Routing fields do not disturb loading.
        store.mark_routed(&e.key(), &[]).await.unwrap();
        assert_eq!(store.load(&e.key()).await.unwrap(), Some(e.clone()));
        assert_eq!(store.routed(&e.key()).await.unwrap(), Some(vec![]));
    }

    #[tokio::test]
    async fn mark_routed_creates_pending_and_never_resets_final() {
        let (store, _res) = store().await;
        let e = event("gh", "r-1", b"{}", "h");
        store.commit(&e).await.unwrap();
        let subs = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let task = |sub: &str| DeliveryTask {
            source: "gh".into(),
            event_id: "r-1".into(),
            subscription: sub.into(),
        };
        assert_eq!(store.delivery_status(&task("a")).await.unwrap(), None);
        store.mark_routed(&e.key(), &subs).await.unwrap();
        assert_eq!(store.routed(&e.key()).await.unwrap(), Some(subs.clone()));
        for sub in &subs {
            assert_eq!(
                store.delivery_status(&task(sub)).await.unwrap(),
                Some(DeliveryStatus::Pending),
                "{sub}"
            );
        }
        // "a" is delivered, "b" has a failed attempt and stays pending.
        assert!(
            store
                .record_attempt(
                    &attempt(&task("a"), 1, Some(200)),
                    DeliveryStatus::Delivered
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .record_attempt(&attempt(&task("b"), 1, Some(500)), DeliveryStatus::Pending)
                .await
                .unwrap()
        );
        // Routing again (a redelivered stream record) resets nothing.
        store.mark_routed(&e.key(), &subs).await.unwrap();
        assert_eq!(
            store.delivery_status(&task("a")).await.unwrap(),
            Some(DeliveryStatus::Delivered)
        );
        assert_eq!(store.attempts(&task("a")).await.unwrap().len(), 1);
        assert_eq!(store.attempts(&task("b")).await.unwrap().len(), 1);
        assert_eq!(
            store.delivery_status(&task("c")).await.unwrap(),
            Some(DeliveryStatus::Pending)
        );
        // Routing an event that is gone creates no stub event item.
        let gone = EventKey::new("gh", "gone");
        store.mark_routed(&gone, &["a".into()]).await.unwrap();
        assert_eq!(store.load(&gone).await.unwrap(), None);
    }

    #[tokio::test]
    async fn record_attempt_never_overwrites_a_final_status() {
        let (store, res) = store().await;
        let t = DeliveryTask {
            source: "gh".into(),
            event_id: "x-1".into(),
            subscription: "s".into(),
        };
        // No mark_routed first: the item is created by the attempt.
        let mut a1 = attempt(&t, 1, None);
        a1.next_attempt_at_ms = Some(now_ms() + 5000);
        assert!(
            store
                .record_attempt(&a1, DeliveryStatus::Pending)
                .await
                .unwrap()
        );
        assert_eq!(
            store.delivery_status(&t).await.unwrap(),
            Some(DeliveryStatus::Pending)
        );
        let a2 = attempt(&t, 2, Some(204));
        assert!(
            store
                .record_attempt(&a2, DeliveryStatus::Delivered)
                .await
                .unwrap()
        );
        // A redelivered message tries again: the status stays delivered,
        // the attempt is logged all the same.
        let a3 = attempt(&t, 3, Some(500));
        assert!(
            !store
                .record_attempt(&a3, DeliveryStatus::Pending)
                .await
                .unwrap()
        );
        let a4 = attempt(&t, 4, Some(410));
        assert!(
            !store
                .record_attempt(&a4, DeliveryStatus::Failed)
                .await
                .unwrap()
        );
        assert_eq!(
            store.delivery_status(&t).await.unwrap(),
            Some(DeliveryStatus::Delivered)
        );
        assert_eq!(
            store.attempts(&t).await.unwrap(),
            vec![a1.clone(), a2.clone(), a3, a4]
        );
        // The item's summary fields describe the attempt that delivered it.
        let got = res
            .clients
            .dynamodb
            .get_item()
            .table_name(&res.settings.deliveries_table)
            .set_key(Some(item::delivery_key(&t)))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let got = got.item().unwrap();
        assert_eq!(item::get_n::<u32>(got, dl::ATTEMPT_COUNT).unwrap(), 4);
        assert_eq!(item::get_n::<u32>(got, dl::LAST_ATTEMPT).unwrap(), 2);
        assert_eq!(
            item::opt_n::<u16>(got, dl::LAST_STATUS_CODE).unwrap(),
            Some(204)
        );
        assert_eq!(item::opt_s(got, dl::LAST_ERROR).unwrap(), None);
        assert_eq!(
            item::opt_n::<i64>(got, dl::NEXT_ATTEMPT_AT_MS).unwrap(),
            None
        );
        let expires: i64 = item::get_n(got, dl::EXPIRES_AT).unwrap();
        assert!(expires > now_ms() / 1000 + 13 * 24 * 3600);
    }

    #[tokio::test]
    async fn failures_are_unavailable_not_panics() {
        let moto = MotoServer::shared();
        let clients = moto.clients().await;
        let store = DynamoStore::new(clients.dynamodb, "no-such-table", "no-such-table-2");
        let err = store.commit(&event("gh", "1", b"", "h")).await.unwrap_err();
        assert!(err.to_string().contains("PutItem (events)"), "{err}");
        assert!(err.to_string().contains("ResourceNotFound"), "{err}");
        assert!(store.load(&EventKey::new("gh", "1")).await.is_err());
    }
}
