//! The admin API's event log on AWS: [`EventLog`] over the events and
//! deliveries tables (shapes in [`super::item`]).
//!
//! * **Listings** (events, bulk-replay candidates, dead letters) read both
//!   tables with one consistent, paginated Scan each (projected: no bodies)
//!   and filter, order and page in memory. An admin listing is rare and the
//!   tables are bounded by their TTLs; an index on status or time would
//!   cost a write on every commit and every attempt, on the hot path.
//! * **A replay is one conditional PutItem** of a new events item
//!   `{original}#replay-{n}`, a copy of the original with `replay_of` and
//!   `replay_to` (the subscriptions it goes to). Its stream INSERT is its
//!   outbox entry, as for any commit: enqueue routes it to `replay_to`
//!   alone, and deliver runs it like any task (SSRF guard, retries, attempt
//!   log). `attribute_not_exists(pk)` gives concurrent replays distinct n.
//! * **Dead letters** are the failed deliveries not followed by a replay of
//!   the same event to the same subscription (the deliveries table holds the
//!   status, the attempt count and the last error). The SQS DLQ stays the
//!   alarm's signal and the archive of raw messages; a replay deletes the
//!   DLQ messages of the tasks it settles, as far as one bounded sweep of
//!   the DLQ finds them (best effort: a stale message is harmless, since its
//!   delivery is final and deliver skips it, and it expires in 14 days).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::item::{self, Item, PK, SK, dl, ev, n, s};
use super::sdk_error;
use super::sqs_queue::parse_task;
use crate::admin::ports::{
    DeadLetterPage, DeadLetterQuery, DeadLetterRecord, DeliveryCounts, DeliveryRecord,
    DestinationSummary, EventLog, EventPage, EventQuery, EventRecord, EventStatus, EventSummary,
    LogError, ReplayCandidate, ReplayQuery,
};
use crate::error::Unavailable;
use crate::model::{DeliveryStatus, DeliveryTask, EventKey};
use crate::time::now_ms;

/// Replay numbers are probed this many at a time (concurrent GetItems).
const PROBE_CHUNK: u32 = 8;
/// A replay whose number was taken meanwhile tries the next, this often.
const MAX_REPLAY_TRIES: u32 = 16;
/// Receives (of up to 10 messages) per DLQ sweep: a replay's sweep is best
/// effort and must stay cheap in a bulk replay.
const SWEEP_ROUNDS: usize = 3;
/// How long swept DLQ messages stay hidden before they are released.
const SWEEP_VISIBILITY_SECS: i32 = 30;

/// The event log over the events and deliveries tables, and the DLQ.
#[derive(Debug, Clone)]
pub struct DynamoEventLog {
    client: Client,
    sqs: aws_sdk_sqs::Client,
    events_table: String,
    deliveries_table: String,
    dlq_url: String,
}

impl DynamoEventLog {
    pub fn new(
        client: Client,
        sqs: aws_sdk_sqs::Client,
        events_table: &str,
        deliveries_table: &str,
        dlq_url: &str,
    ) -> Self {
        Self {
            client,
            sqs,
            events_table: events_table.to_owned(),
            deliveries_table: deliveries_table.to_owned(),
            dlq_url: dlq_url.to_owned(),
        }
    }
}

/// What the listings need of an events item.
#[derive(Debug, Clone)]
struct EventRow {
    key: EventKey,
    event_type: String,
    received_at_ms: i64,
    expires_at: i64,
    routed: bool,
    replay_of: Option<String>,
    replay_to: Vec<String>,
}

impl EventRow {
    fn root(&self) -> &str {
        self.replay_of.as_deref().unwrap_or(&self.key.id)
    }

    /// 0 for an original, n for `{root}#replay-{n}`.
    fn replay_number(&self) -> u32 {
        match &self.replay_of {
            None => 0,
            Some(root) => replay_number(root, &self.key.id).unwrap_or(0),
        }
    }
}

fn replay_id(root: &str, n: u32) -> String {
    format!("{root}#replay-{n}")
}

fn replay_number(root: &str, id: &str) -> Option<u32> {
    id.strip_prefix(root)?
        .strip_prefix("#replay-")?
        .parse()
        .ok()
}

/// What the listings need of a deliveries item.
#[derive(Debug, Clone)]
struct DeliveryRow {
    pk: String,
    task: DeliveryTask,
    status: DeliveryStatus,
    updated_at_ms: i64,
    last_attempt: u32,
    last_attempt_at_ms: Option<i64>,
    last_status_code: Option<u16>,
    last_error: Option<String>,
}

const EVENT_COLUMNS: &[&str] = &[
    PK,
    ev::SOURCE,
    ev::ID,
    ev::EVENT_TYPE,
    ev::RECEIVED_AT_MS,
    ev::EXPIRES_AT,
    ev::ROUTED,
    ev::REPLAY_OF,
    ev::REPLAY_TO,
];

const DELIVERY_COLUMNS: &[&str] = &[
    PK,
    dl::SOURCE,
    dl::EVENT_ID,
    dl::SUBSCRIPTION,
    dl::STATUS,
    dl::UPDATED_AT_MS,
    dl::LAST_ATTEMPT,
    dl::LAST_ATTEMPT_AT_MS,
    dl::LAST_STATUS_CODE,
    dl::LAST_ERROR,
];

fn bad(what: &str, e: impl std::fmt::Display) -> Unavailable {
    Unavailable::new(format!("{what}: {e}"))
}

fn event_row(it: &Item) -> Result<EventRow, item::ItemError> {
    Ok(EventRow {
        key: EventKey::new(item::get_s(it, ev::SOURCE)?, item::get_s(it, ev::ID)?),
        event_type: item::opt_s(it, ev::EVENT_TYPE)?
            .unwrap_or_default()
            .to_owned(),
        received_at_ms: item::get_n(it, ev::RECEIVED_AT_MS)?,
        expires_at: item::get_n(it, ev::EXPIRES_AT)?,
        routed: item::item_routed(it)?.is_some(),
        replay_of: item::opt_s(it, ev::REPLAY_OF)?.map(str::to_owned),
        replay_to: item::opt_string_list(it, ev::REPLAY_TO)?.unwrap_or_default(),
    })
}

fn delivery_row(it: &Item) -> Result<DeliveryRow, item::ItemError> {
    Ok(DeliveryRow {
        pk: item::get_s(it, PK)?.to_owned(),
        task: DeliveryTask {
            source: item::get_s(it, dl::SOURCE)?.to_owned(),
            event_id: item::get_s(it, dl::EVENT_ID)?.to_owned(),
            subscription: item::get_s(it, dl::SUBSCRIPTION)?.to_owned(),
        },
        status: item::item_status(it)?.unwrap_or(DeliveryStatus::Pending),
        updated_at_ms: item::opt_n(it, dl::UPDATED_AT_MS)?.unwrap_or_default(),
        last_attempt: item::opt_n(it, dl::LAST_ATTEMPT)?.unwrap_or_default(),
        last_attempt_at_ms: item::opt_n(it, dl::LAST_ATTEMPT_AT_MS)?,
        last_status_code: item::opt_n(it, dl::LAST_STATUS_CODE)?,
        last_error: item::opt_s(it, dl::LAST_ERROR)?.map(str::to_owned),
    })
}

/// The replays made of one original: (number, subscriptions) each.
type Replays = Vec<(u32, Vec<String>)>;

/// Both tables as the listings see them.
struct Snapshot {
    events: HashMap<String, EventRow>,
    deliveries: Vec<DeliveryRow>,
    /// (source, root) -> the replays made of it: (number, subscriptions).
    replays: HashMap<(String, String), Replays>,
}

impl Snapshot {
    fn new(events: Vec<EventRow>, deliveries: Vec<DeliveryRow>) -> Self {
        let mut replays: HashMap<(String, String), Replays> = HashMap::new();
        for e in events.iter().filter(|e| e.replay_of.is_some()) {
            replays
                .entry((e.key.source.clone(), e.root().to_owned()))
                .or_default()
                .push((e.replay_number(), e.replay_to.clone()));
        }
        Self {
            events: events.into_iter().map(|e| (e.key.to_string(), e)).collect(),
            deliveries,
            replays,
        }
    }

    /// True when a later replay of the same original went to the same
    /// subscription: the delivery is settled (not a dead letter, not a
    /// bulk-replay candidate).
    fn superseded(&self, d: &DeliveryRow) -> bool {
        let (root, number) = match self.events.get(&d.pk) {
            Some(e) => (e.root().to_owned(), e.replay_number()),
            // The event is gone: what it was is in the delivery's own id.
            None => d
                .task
                .event_id
                .rsplit_once("#replay-")
                .and_then(|(root, n)| Some((root.to_owned(), n.parse::<u32>().ok()?)))
                .unwrap_or_else(|| (d.task.event_id.clone(), 0)),
        };
        self.replays
            .get(&(d.task.source.clone(), root))
            .is_some_and(|rs| {
                rs.iter()
                    .any(|(n, to)| *n > number && to.contains(&d.task.subscription))
            })
    }

    fn counts(&self) -> HashMap<&str, DeliveryCounts> {
        let mut counts: HashMap<&str, DeliveryCounts> = HashMap::new();
        for d in &self.deliveries {
            let c = counts.entry(d.pk.as_str()).or_default();
            match d.status {
                DeliveryStatus::Pending => c.pending += 1,
                DeliveryStatus::Delivered => c.delivered += 1,
                DeliveryStatus::Failed => c.failed += 1,
            }
        }
        counts
    }

    /// Each event's destinations, by subscription id.
    fn destinations(&self) -> HashMap<&str, Vec<DestinationSummary>> {
        let mut by: HashMap<&str, Vec<DestinationSummary>> = HashMap::new();
        for d in &self.deliveries {
            by.entry(d.pk.as_str())
                .or_default()
                .push(DestinationSummary {
                    subscription: d.task.subscription.clone(),
                    status: d.status,
                    attempts: d.last_attempt,
                });
        }
        for v in by.values_mut() {
            v.sort_by(|a, b| a.subscription.cmp(&b.subscription));
        }
        by
    }
}

fn encode_cursor(at_ms: i64, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at_ms}:{key}"))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), LogError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| LogError::BadCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| LogError::BadCursor)?;
    let (at, key) = text.split_once(':').ok_or(LogError::BadCursor)?;
    let at = at.parse().map_err(|_| LogError::BadCursor)?;
    Ok((at, key.to_owned()))
}

/// Why a failed delivery failed, from its last attempt.
fn failure_reason(d: &DeliveryRow) -> String {
    match (d.last_status_code, &d.last_error) {
        (Some(410), _) => "destination answered 410 Gone; subscription disabled".to_owned(),
        (Some(code), _) => format!("failed on attempt {}: HTTP {code}", d.last_attempt),
        (None, Some(e)) => format!("failed on attempt {}: {e}", d.last_attempt),
        (None, None) => format!("failed on attempt {}", d.last_attempt),
    }
}

impl DynamoEventLog {
    /// Every item of `table`, with only `columns`, read consistently.
    async fn scan(
        &self,
        table: &str,
        columns: &[&str],
        what: &'static str,
    ) -> Result<Vec<Item>, Unavailable> {
        let mut req = self.client.scan().table_name(table).consistent_read(true);
        let mut projection = Vec::with_capacity(columns.len());
        for (i, c) in columns.iter().enumerate() {
            let placeholder = format!("#c{i}");
            req = req.expression_attribute_names(&placeholder, *c);
            projection.push(placeholder);
        }
        req.projection_expression(projection.join(", "))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(what, e))
    }

    async fn snapshot(&self) -> Result<Snapshot, Unavailable> {
        let (events, deliveries) = futures::try_join!(
            self.scan(&self.events_table, EVENT_COLUMNS, "Scan (events)"),
            self.scan(
                &self.deliveries_table,
                DELIVERY_COLUMNS,
                "Scan (deliveries)"
            ),
        )?;
        let events = events
            .iter()
            .map(event_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("events item", e))?;
        let deliveries = deliveries
            .iter()
            .map(delivery_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("deliveries item", e))?;
        Ok(Snapshot::new(events, deliveries))
    }

    async fn get_event_item(
        &self,
        key: &EventKey,
        only_key: bool,
    ) -> Result<Option<Item>, Unavailable> {
        let mut req = self
            .client
            .get_item()
            .table_name(&self.events_table)
            .set_key(Some(item::event_key(key)))
            .consistent_read(true);
        if only_key {
            req = req
                .projection_expression("#pk")
                .expression_attribute_names("#pk", PK);
        }
        let out = req
            .send()
            .await
            .map_err(|e| sdk_error("GetItem (events)", e))?;
        Ok(out.item)
    }

    /// The numbers of the stored replays of `root`, ascending. Probed in
    /// chunks until one chunk finds none, so a replay that expired before a
    /// later one does not hide the later one.
    async fn replay_numbers(&self, source: &str, root: &str) -> Result<Vec<u32>, Unavailable> {
        let mut found = Vec::new();
        let mut first = 1;
        loop {
            let probes = (first..first + PROBE_CHUNK).map(|n| async move {
                let key = EventKey::new(source, &replay_id(root, n));
                self.get_event_item(&key, true)
                    .await
                    .map(|it| it.is_some().then_some(n))
            });
            let chunk: Vec<u32> = futures::future::try_join_all(probes)
                .await?
                .into_iter()
                .flatten()
                .collect();
            if chunk.is_empty() {
                return Ok(found);
            }
            found.extend(chunk);
            first += PROBE_CHUNK;
        }
    }

    /// Deliveries of one event, with their attempt logs.
    async fn deliveries_of(&self, key: &EventKey) -> Result<Vec<Item>, Unavailable> {
        self.client
            .query()
            .table_name(&self.deliveries_table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(key.to_string()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("Query (deliveries)", e))
    }

    /// Delete the DLQ messages of `source`'s event `root` (or its replays)
    /// for `subscriptions`, as far as [`SWEEP_ROUNDS`] receives find them;
    /// the other messages seen are made visible again. Returns how many
    /// were deleted.
    async fn settle_dead_letters(
        &self,
        source: &str,
        root: &str,
        subscriptions: &[String],
    ) -> Result<usize, Unavailable> {
        let replays = format!("{root}#replay-");
        let settles = |body: &str| {
            parse_task(body).is_ok_and(|t| {
                t.source == source
                    && subscriptions.contains(&t.subscription)
                    && (t.event_id == root || t.event_id.starts_with(&replays))
            })
        };
        let mut keep = Vec::new();
        let mut deleted = 0;
        for _ in 0..SWEEP_ROUNDS {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(SWEEP_VISIBILITY_SECS)
                .send()
                .await
                .map_err(|e| sdk_error("ReceiveMessage (DLQ)", e))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            let mut settled = Vec::new();
            for m in messages {
                let Some(handle) = m.receipt_handle else {
                    continue;
                };
                if settles(m.body.as_deref().unwrap_or_default()) {
                    settled.push(handle);
                } else {
                    keep.push(handle);
                }
            }
            if !settled.is_empty() {
                let entries = settled
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(h)
                            .build()
                            .map_err(|e| bad("DeleteMessageBatch entry", e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .sqs
                    .delete_message_batch()
                    .queue_url(&self.dlq_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteMessageBatch (DLQ)", e))?;
                deleted += out.successful().len();
            }
        }
        // The others back to the DLQ at once, not after the sweep's timeout.
        for chunk in keep.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| bad("ChangeMessageVisibilityBatch entry", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.sqs
                .change_message_visibility_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error("ChangeMessageVisibilityBatch (DLQ)", e))?;
        }
        Ok(deleted)
    }
}

#[async_trait]
impl EventLog for DynamoEventLog {
    /// Newest first: by receive time, then key, both descending; the cursor
    /// is the last (time, key) shown.
    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, LogError> {
        let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let glob = query.event_type.as_deref().map(wildmatch::WildMatch::new);
        let snap = self.snapshot().await?;
        let counts = snap.counts();
        let mut destinations = snap.destinations();
        let mut rows: Vec<(&String, &EventRow)> = snap
            .events
            .iter()
            .filter(|(_, e)| {
                query.source.as_ref().is_none_or(|s| *s == e.key.source)
                    && glob.as_ref().is_none_or(|g| g.matches(&e.event_type))
                    && query.since_ms.is_none_or(|t| e.received_at_ms >= t)
                    && query.until_ms.is_none_or(|t| e.received_at_ms < t)
            })
            .filter(|(pk, e)| {
                before
                    .as_ref()
                    .is_none_or(|(at, k)| (e.received_at_ms, pk.as_str()) < (*at, k.as_str()))
            })
            .collect();
        rows.sort_by(|(pa, a), (pb, b)| (b.received_at_ms, pb).cmp(&(a.received_at_ms, pa)));
        let limit = query.limit.max(1);
        let mut events = Vec::new();
        let mut last = None;
        for (pk, e) in rows {
            let c = counts.get(pk.as_str()).copied().unwrap_or_default();
            let status = EventStatus::from_counts(e.routed, &c);
            if query.status.is_some_and(|want| want != status) {
                continue;
            }
            events.push(EventSummary {
                key: e.key.clone(),
                event_type: e.event_type.clone(),
                received_at_ms: e.received_at_ms,
                expires_at: e.expires_at,
                status,
                counts: c,
                destinations: destinations.remove(pk.as_str()).unwrap_or_default(),
                replay_of: e
                    .replay_of
                    .as_ref()
                    .map(|r| EventKey::new(&e.key.source, r)),
            });
            last = Some((e.received_at_ms, pk.clone()));
            if events.len() == limit {
                break;
            }
        }
        let next_cursor = (events.len() == limit)
            .then(|| last.map(|(at, pk)| encode_cursor(at, &pk)))
            .flatten();
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    async fn get_event(&self, key: &EventKey) -> Result<Option<EventRecord>, Unavailable> {
        let (found, deliveries) =
            futures::try_join!(self.get_event_item(key, false), self.deliveries_of(key))?;
        let Some(found) = found else {
            return Ok(None);
        };
        let what = |e| bad(&format!("event {key}"), e);
        let event = item::item_to_event(&found).map_err(what)?;
        let routed = item::item_routed(&found).map_err(what)?;
        let replay_of = item::opt_s(&found, ev::REPLAY_OF)
            .map_err(what)?
            .map(|r| EventKey::new(&key.source, r));
        let mut records = Vec::with_capacity(deliveries.len());
        let mut attempts = Vec::new();
        let mut counts = DeliveryCounts::default();
        for it in &deliveries {
            let what = |e| bad(&format!("delivery of {key}"), e);
            let status = item::item_status(it)
                .map_err(what)?
                .unwrap_or(DeliveryStatus::Pending);
            match status {
                DeliveryStatus::Pending => counts.pending += 1,
                DeliveryStatus::Delivered => counts.delivered += 1,
                DeliveryStatus::Failed => counts.failed += 1,
            }
            records.push(DeliveryRecord {
                subscription: item::get_s(it, SK).map_err(what)?.to_owned(),
                status,
                next_attempt_at_ms: item::opt_n(it, dl::NEXT_ATTEMPT_AT_MS).map_err(what)?,
                updated_at_ms: item::opt_n(it, dl::UPDATED_AT_MS)
                    .map_err(what)?
                    .unwrap_or_default(),
            });
            attempts.extend(item::item_attempts(it).map_err(what)?);
        }
        records.sort_by(|a, b| a.subscription.cmp(&b.subscription));
        // The order logged, across subscriptions (stable within one).
        attempts.sort_by_key(|a| a.started_at_ms);
        let replays = match &replay_of {
            Some(_) => Vec::new(),
            None => self
                .replay_numbers(&key.source, &key.id)
                .await?
                .into_iter()
                .map(|n| EventKey::new(&key.source, &replay_id(&key.id, n)))
                .collect(),
        };
        Ok(Some(EventRecord {
            status: EventStatus::from_counts(routed.is_some(), &counts),
            event,
            routed,
            deliveries: records,
            attempts,
            replay_of,
            replays,
        }))
    }

    /// One conditional PutItem; see the module documentation.
    async fn create_replay(
        &self,
        original: &EventKey,
        subscriptions: &[String],
        expires_at: i64,
    ) -> Result<Option<EventKey>, Unavailable> {
        let Some(asked) = self.get_event_item(original, false).await? else {
            return Ok(None);
        };
        let root = item::opt_s(&asked, ev::REPLAY_OF)
            .map_err(|e| bad(&format!("event {original}"), e))?
            .map_or_else(|| original.id.clone(), str::to_owned);
        // Copy from the original if it is still stored, else from the
        // replay asked for (same body, headers and type).
        let copy = if root == original.id {
            asked
        } else {
            self.get_event_item(&EventKey::new(&original.source, &root), false)
                .await?
                .unwrap_or(asked)
        };
        let mut seen = HashSet::new();
        let subs: Vec<String> = subscriptions
            .iter()
            .filter(|s| seen.insert(s.as_str()))
            .cloned()
            .collect();
        let source = &original.source;
        let mut number = self
            .replay_numbers(source, &root)
            .await?
            .last()
            .copied()
            .unwrap_or(0);
        let now = now_ms();
        for _ in 0..MAX_REPLAY_TRIES {
            number += 1;
            let key = EventKey::new(source, &replay_id(&root, number));
            let mut it = copy.clone();
            it.remove(ev::ROUTED);
            it.remove(ev::ROUTED_AT_MS);
            it.insert(PK.to_owned(), s(key.to_string()));
            it.insert(ev::ID.to_owned(), s(key.id.clone()));
            it.insert(ev::RECEIVED_AT_MS.to_owned(), n(now));
            it.insert(ev::EXPIRES_AT.to_owned(), n(expires_at));
            it.insert(ev::REPLAY_OF.to_owned(), s(root.clone()));
            it.insert(ev::REPLAY_TO.to_owned(), item::string_list(&subs));
            let result = self
                .client
                .put_item()
                .table_name(&self.events_table)
                .set_item(Some(it))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            match result {
                Ok(_) => {
                    // The replay is committed; the DLQ sweep only tidies.
                    if let Err(e) = self.settle_dead_letters(source, &root, &subs).await {
                        tracing::warn!(error = %e, replay = %key, "dead letters of the replayed deliveries not removed from the DLQ");
                    }
                    return Ok(Some(key));
                }
                Err(e)
                    if matches!(
                        e.as_service_error(),
                        Some(PutItemError::ConditionalCheckFailedException(_))
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(sdk_error("PutItem (events)", e)),
            }
        }
        Err(Unavailable::new(format!(
            "no free replay number for {original} after {MAX_REPLAY_TRIES} tries"
        )))
    }

    /// Oldest first: by the event's receive time, key, subscription.
    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
    ) -> Result<Vec<ReplayCandidate>, Unavailable> {
        let snap = self.snapshot().await?;
        let mut found: Vec<(&EventRow, &DeliveryRow)> = snap
            .deliveries
            .iter()
            .filter(|d| d.status == query.status)
            .filter(|d| {
                query
                    .subscription
                    .as_ref()
                    .is_none_or(|s| *s == d.task.subscription)
            })
            .filter_map(|d| snap.events.get(&d.pk).map(|e| (e, d)))
            .filter(|(e, _)| {
                query.source.as_ref().is_none_or(|s| *s == e.key.source)
                    && query.since_ms.is_none_or(|t| e.received_at_ms >= t)
                    && query.until_ms.is_none_or(|t| e.received_at_ms < t)
            })
            .filter(|(_, d)| !snap.superseded(d))
            .collect();
        found.sort_by(|(ea, da), (eb, db)| {
            (ea.received_at_ms, &da.pk, &da.task.subscription).cmp(&(
                eb.received_at_ms,
                &db.pk,
                &db.task.subscription,
            ))
        });
        Ok(found
            .into_iter()
            .take(query.limit.max(1))
            .map(|(e, d)| ReplayCandidate {
                event: e.key.clone(),
                root: EventKey::new(&e.key.source, e.root()),
                event_type: e.event_type.clone(),
                subscription: d.task.subscription.clone(),
            })
            .collect())
    }

    /// Oldest first: by the time of the failing attempt, then id. The id of
    /// a dead letter is its task's `{source}#{event id}#{subscription}`.
    async fn list_dead_letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, LogError> {
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let snap = self.snapshot().await?;
        let mut rows: Vec<DeadLetterRecord> = snap
            .deliveries
            .iter()
            .filter(|d| d.status == DeliveryStatus::Failed)
            .filter(|d| {
                query.source.as_ref().is_none_or(|s| *s == d.task.source)
                    && query
                        .subscription
                        .as_ref()
                        .is_none_or(|s| *s == d.task.subscription)
            })
            .filter(|d| !snap.superseded(d))
            .map(|d| DeadLetterRecord {
                id: d.task.dedup_id(),
                task: d.task.clone(),
                reason: failure_reason(d),
                receive_count: d.last_attempt,
                at_ms: d.last_attempt_at_ms.unwrap_or(d.updated_at_ms),
            })
            .filter(|r| query.ids.is_empty() || query.ids.contains(&r.id))
            .filter(|r| {
                after
                    .as_ref()
                    .is_none_or(|(at, id)| (r.at_ms, r.id.as_str()) > (*at, id.as_str()))
            })
            .collect();
        rows.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        let limit = query.limit.max(1);
        rows.truncate(limit);
        let next_cursor = (rows.len() == limit)
            .then(|| rows.last().map(|r| encode_cursor(r.at_ms, &r.id)))
            .flatten();
        Ok(DeadLetterPage {
            dead_letters: rows,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::aws::DynamoStore;
    use crate::aws::testing::{MotoServer, TestResources};
    use crate::model::{Attempt, Event, Headers};
    use crate::store::EventStore;

    fn event(source: &str, id: &str, event_type: &str, received_at_ms: i64) -> Event {
        Event {
            source: source.into(),
            id: id.into(),
            event_type: event_type.into(),
            received_at_ms,
            expires_at: now_ms() / 1000 + 3600,
            body: Bytes::from_static(b"{}"),
            body_hash: "h".into(),
            content_type: None,
            headers: Headers::default(),
        }
    }

    fn attempt(source: &str, id: &str, sub: &str, code: u16) -> Attempt {
        Attempt {
            source: source.into(),
            event_id: id.into(),
            subscription: sub.into(),
            attempt: 1,
            started_at_ms: now_ms(),
            latency_ms: 1,
            status_code: Some(code),
            error: None,
            response_snippet: None,
            next_attempt_at_ms: None,
        }
    }

    /// Filters, status, order and pages of the event list; a replay is one
    /// new item, unrouted until enqueue takes it; a failed delivery whose
    /// event is gone is still a dead letter.
    #[tokio::test]
    async fn listings_filter_order_and_page_over_both_tables() {
        let res = TestResources::create(MotoServer::shared()).await;
        let db = res.clients.dynamodb.clone();
        let store = DynamoStore::new(
            db.clone(),
            &res.settings.events_table,
            &res.settings.deliveries_table,
        );
        let log = DynamoEventLog::new(
            db,
            res.clients.sqs.clone(),
            &res.settings.events_table,
            &res.settings.deliveries_table,
            &res.settings.dlq_url,
        );
        let t0 = now_ms() - 10_000;
        for (source, id, ty, at) in [
            ("gh", "e1", "push", t0),
            ("gh", "e2", "pull_request.opened", t0 + 1),
            ("st", "e3", "charge.succeeded", t0 + 2),
        ] {
            store.commit(&event(source, id, ty, at)).await.unwrap();
        }
        store
            .mark_routed(&EventKey::new("gh", "e1"), &["a".into()])
            .await
            .unwrap();
        store
            .record_attempt(&attempt("gh", "e1", "a", 500), DeliveryStatus::Failed)
            .await
            .unwrap();
        store
            .mark_routed(&EventKey::new("st", "e3"), &[])
            .await
            .unwrap();
        // A failed delivery of an event no longer stored.
        store
            .record_attempt(&attempt("gh", "gone", "a", 503), DeliveryStatus::Failed)
            .await
            .unwrap();

        let ids = |page: &EventPage| -> Vec<String> {
            page.events.iter().map(|e| e.key.to_string()).collect()
        };
        let q = |f: fn(&mut EventQuery)| {
            let mut q = EventQuery {
                limit: 10,
                ..Default::default()
            };
            f(&mut q);
            q
        };
        let all = log.list_events(&q(|_| {})).await.unwrap();
        assert_eq!(ids(&all), ["st#e3", "gh#e2", "gh#e1"]);
        assert_eq!(
            all.events[2].destinations,
            [DestinationSummary {
                subscription: "a".into(),
                status: DeliveryStatus::Failed,
                attempts: 1,
            }]
        );
        assert_eq!(all.events[0].destinations, []);
        assert_eq!(
            all.events.iter().map(|e| e.status).collect::<Vec<_>>(),
            [
                EventStatus::Unrouted,
                EventStatus::Pending,
                EventStatus::Failed
            ]
        );
        let page = log
            .list_events(&q(|q| q.event_type = Some("pull_request.*".into())))
            .await
            .unwrap();
        assert_eq!(ids(&page), ["gh#e2"]);
        let page = log
            .list_events(&q(|q| q.source = Some("gh".into())))
            .await
            .unwrap();
        assert_eq!(ids(&page), ["gh#e2", "gh#e1"]);
        let page = log
            .list_events(&EventQuery {
                since_ms: Some(t0 + 1),
                until_ms: Some(t0 + 2),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&page), ["gh#e2"]);
        let page = log
            .list_events(&q(|q| q.status = Some(EventStatus::Failed)))
            .await
            .unwrap();
        assert_eq!(ids(&page), ["gh#e1"]);
        let first = log
            .list_events(&EventQuery {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&first), ["st#e3", "gh#e2"]);
        let second = log
            .list_events(&EventQuery {
                limit: 2,
                cursor: first.next_cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&second), ["gh#e1"]);
        assert_eq!(second.next_cursor, None);

        let dead = log
            .list_dead_letters(&DeadLetterQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let dead_ids: Vec<&str> = dead.dead_letters.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(dead_ids.len(), 2);
        assert!(dead_ids.contains(&"gh#gone#a") && dead_ids.contains(&"gh#e1#a"));

        // A replay: one new item, pending (not routed yet), linked both ways.
        let replay = log
            .create_replay(
                &EventKey::new("gh", "e1"),
                &["a".into()],
                now_ms() / 1000 + 60,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(replay, EventKey::new("gh", "e1#replay-1"));
        let r = log.get_event(&replay).await.unwrap().unwrap();
        assert_eq!(r.replay_of, Some(EventKey::new("gh", "e1")));
        assert_eq!((r.status, r.routed.as_ref()), (EventStatus::Pending, None));
        let orig = log
            .get_event(&EventKey::new("gh", "e1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(orig.replays, vec![replay.clone()]);
        assert_eq!(orig.attempts.len(), 1);
        // Replaying the replay counts on from the original.
        let again = log.create_replay(&replay, &["a".into()], 0).await.unwrap();
        assert_eq!(again, Some(EventKey::new("gh", "e1#replay-2")));
        assert_eq!(
            log.create_replay(&EventKey::new("gh", "nope"), &[], 0)
                .await
                .unwrap(),
            None
        );
        let dead = log
            .list_dead_letters(&DeadLetterQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            dead.dead_letters
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>(),
            ["gh#gone#a"],
            "the replay settled e1's"
        );
        let candidates = log
            .replay_candidates(&ReplayQuery {
                source: Some("gh".into()),
                subscription: None,
                status: DeliveryStatus::Failed,
                since_ms: None,
                until_ms: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(
            candidates,
            [],
            "e1 was replayed; gone's event is not stored"
        );
    }

    #[test]
    fn replay_ids_and_cursors_round_trip() {
        assert_eq!(replay_id("e1", 3), "e1#replay-3");
        assert_eq!(replay_number("e1", "e1#replay-3"), Some(3));
        assert_eq!(replay_number("e1", "e12#replay-3"), None);
        assert_eq!(replay_number("e1", "e1"), None);
        let c = encode_cursor(17, "gh#a:b");
        assert_eq!(decode_cursor(&c).unwrap(), (17, "gh#a:b".to_owned()));
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("x:y"),
            &URL_SAFE_NO_PAD.encode("12"),
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(LogError::BadCursor)),
                "{bad}"
            );
        }
    }
}
