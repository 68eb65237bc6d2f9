//! The event log, replays and the dead-letter queue. A replay is a new
//! delivery (a new event record linked to the original, with its own
//! attempt log) put on the queue, so it runs through the deliver step and
//! its SSRF guard like any other.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::config_ops::Reply;
use super::input::{Query, limit, limit_param, opt_time_ms};
use super::ports::{
    ConfigItem, DeadLetterQuery, EventQuery, EventStatus, LogError, ReplayCandidate, ReplayQuery,
};
use super::views::{
    BulkKind, BulkResult, DeadLetterPage, EventDetail, EventPage, Replay, ReplayItem, Skipped,
};
use super::{Admin, AdminError};
use crate::config::DEFAULT_DEDUPE_WINDOW;
use crate::model::{DeliveryStatus, EventKey};
use crate::pipeline::enqueue::route;
use crate::time::now_ms;

pub(super) const LIST_DEFAULT: usize = 50;
pub(super) const LIST_MAX: usize = 500;
pub(super) const BULK_DEFAULT: usize = 100;
pub(super) const BULK_MAX: usize = 1000;

impl From<LogError> for AdminError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::BadCursor => AdminError::invalid("cursor", e.to_string()),
            LogError::Unavailable(u) => AdminError::Unavailable(u),
        }
    }
}

/// `{source}#{event id}`, the id the API shows.
pub(crate) fn parse_key(id: &str) -> Result<EventKey, AdminError> {
    match id.split_once('#') {
        Some((source, event)) if !source.is_empty() && !event.is_empty() => {
            Ok(EventKey::new(source, event))
        }
        _ => Err(AdminError::NotFound(format!(
            "no event {id:?}: event ids are {{source}}#{{event id}}, with # written %23 in URLs"
        ))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReplayRequest)]
pub(super) struct ReplayOne {
    /// One destination; every enabled subscription that takes the event
    /// when absent.
    #[serde(default)]
    subscription: Option<String>,
}

/// The deliveries a bulk replay takes: those that failed for good, or
/// those delivered (pending ones are still being retried).
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub(super) enum ReplayStatus {
    #[default]
    Failed,
    Delivered,
}

/// The one message for any other status (serde's would list the variants
/// but not say why `pending` is not one).
fn replay_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ReplayStatus>, D::Error> {
    Option::<ReplayStatus>::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "must be failed or delivered (pending deliveries are still being retried)",
        )
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BulkReplayRequest)]
pub(super) struct BulkReplay {
    #[serde(default, deserialize_with = "replay_status")]
    #[schema(default = ReplayStatus::default)]
    status: Option<ReplayStatus>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    subscription: Option<String>,
    /// RFC 3339 time, or a duration ago (`24h`).
    #[serde(default)]
    since: Option<String>,
    /// RFC 3339 time, or a duration ago; exclusive.
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
    #[serde(default)]
    #[schema(default = false)]
    dry_run: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RedriveRequest)]
pub(super) struct Redrive {
    /// Only these dead letters.
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    subscription: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
    #[serde(default)]
    #[schema(default = false)]
    dry_run: bool,
}

/// Replays to make: per event, the subscriptions; in first-seen order.
#[derive(Default)]
struct Plan {
    order: Vec<EventKey>,
    subs: HashMap<EventKey, Vec<String>>,
    skipped: Vec<Skipped>,
}

impl Plan {
    fn add(&mut self, event: &EventKey, sub: &str) {
        let subs = self.subs.entry(event.clone()).or_insert_with(|| {
            self.order.push(event.clone());
            Vec::new()
        });
        if !subs.iter().any(|s| s == sub) {
            subs.push(sub.to_owned());
        }
    }
}

impl Admin {
    pub(crate) async fn list_events(&self, q: &Query) -> Result<Reply, AdminError> {
        let status = q
            .get("status")
            .map(|s| {
                EventStatus::parse(s).ok_or_else(|| {
                    AdminError::invalid("status", "must be pending, delivered, failed or unrouted")
                })
            })
            .transpose()?;
        let query = EventQuery {
            source: q.get("source").map(str::to_owned),
            event_type: q.get("type").map(str::to_owned),
            status,
            since_ms: opt_time_ms("since", q.get("since"))?,
            until_ms: opt_time_ms("until", q.get("until"))?,
            limit: limit_param(q, LIST_DEFAULT, LIST_MAX)?,
            cursor: q.get("cursor").map(str::to_owned),
        };
        let page = self.ports.events.list_events(&query).await?;
        Reply::json(200, &EventPage::of(&page))
    }

    pub(crate) async fn get_event(&self, id: &str) -> Result<Reply, AdminError> {
        let key = parse_key(id)?;
        let record = self
            .ports
            .events
            .get_event(&key)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no event {id:?}")))?;
        Reply::json(200, &EventDetail::of(&record))
    }

    /// Unix seconds at which a replay of a `source` event expires: the
    /// retention of the source (or poller) from now.
    async fn replay_expiry(&self, source: &str) -> Result<i64, AdminError> {
        let window = match self.event_source(source).await?.map(|e| e.item) {
            Some(ConfigItem::Source(s)) => s.dedupe_window,
            Some(ConfigItem::Poller(p)) => p.dedupe_window,
            _ => None,
        }
        .unwrap_or(DEFAULT_DEDUPE_WINDOW);
        Ok(now_ms() / 1000 + i64::try_from(window.as_secs()).unwrap_or(i64::MAX / 2))
    }

    /// Why `sub` cannot take a replay of an event of `source` and
    /// `event_type`, if it cannot.
    async fn unreplayable(
        &self,
        sub: &str,
        source: &str,
        event_type: &str,
    ) -> Result<Option<String>, AdminError> {
        let Some(s) = self.ports.registry.subscription(sub).await? else {
            return Ok(Some(format!("subscription {sub:?} no longer exists")));
        };
        Ok(if s.source != source {
            Some(format!(
                "subscription {sub:?} is not a subscription of source {source:?}"
            ))
        } else if !s.is_enabled() {
            Some(format!("subscription {sub:?} is disabled"))
        } else if !s.filter.matches(event_type) {
            Some(format!(
                "subscription {sub:?} does not subscribe to event type {event_type:?}"
            ))
        } else {
            None
        })
    }

    pub(crate) async fn replay_event(&self, id: &str, body: &[u8]) -> Result<Reply, AdminError> {
        let input: ReplayOne = json_body_or_empty(body)?;
        let key = parse_key(id)?;
        let record = self
            .ports
            .events
            .get_event(&key)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no event {id:?}")))?;
        let event_type = &record.event.event_type;
        let subs = match input.subscription {
            Some(sub) => {
                if let Some(why) = self.unreplayable(&sub, &key.source, event_type).await? {
                    let unknown = self.ports.registry.subscription(&sub).await?.is_none();
                    return Err(if unknown {
                        AdminError::invalid("subscription", why)
                    } else {
                        AdminError::Conflict(why)
                    });
                }
                vec![sub]
            }
            // Routed as a new event would be: types and payload filters.
            None => {
                let subs = route(
                    self.ports.registry.as_ref(),
                    &key,
                    event_type,
                    &record.event,
                )
                .await?;
                if subs.is_empty() {
                    return Err(AdminError::Conflict(format!(
                        "no enabled subscription of source {:?} takes this event (event type {event_type:?}, filters)",
                        key.source
                    )));
                }
                subs
            }
        };
        let expires_at = self.replay_expiry(&key.source).await?;
        let replay = self
            .ports
            .events
            .create_replay(&key, &subs, expires_at)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no event {id:?}")))?;
        let root = record.replay_of.unwrap_or(key);
        tracing::info!(replay = %replay, replay_of = %root, subscriptions = ?subs, "replay queued");
        Reply::json(202, &Replay::new(&replay, &root, subs))
    }

    /// Make the planned replays (or, for a dry run, only show them).
    async fn run_plan(
        &self,
        plan: Plan,
        dry_run: bool,
    ) -> Result<(Vec<ReplayItem>, usize, Vec<Skipped>), AdminError> {
        let mut replays = Vec::new();
        let mut count = 0;
        let mut skipped = plan.skipped;
        let mut expiry: HashMap<String, i64> = HashMap::new();
        for event in plan.order {
            let subs = plan.subs.get(&event).cloned().unwrap_or_default();
            if dry_run {
                count += subs.len();
                replays.push(ReplayItem::new(None, &event, subs));
                continue;
            }
            let expires_at = match expiry.get(&event.source) {
                Some(e) => *e,
                None => {
                    let e = self.replay_expiry(&event.source).await?;
                    expiry.insert(event.source.clone(), e);
                    e
                }
            };
            match self
                .ports
                .events
                .create_replay(&event, &subs, expires_at)
                .await?
            {
                Some(replay) => {
                    count += subs.len();
                    replays.push(ReplayItem::new(Some(&replay), &event, subs));
                }
                None => {
                    for sub in subs {
                        skipped.push(Skipped::new(&event, &sub, "event no longer stored"));
                    }
                }
            }
        }
        Ok((replays, count, skipped))
    }

    pub(crate) async fn bulk_replay(&self, body: &[u8]) -> Result<Reply, AdminError> {
        let input: BulkReplay = json_body_or_empty(body)?;
        let status = match input.status.unwrap_or_default() {
            ReplayStatus::Failed => DeliveryStatus::Failed,
            ReplayStatus::Delivered => DeliveryStatus::Delivered,
        };
        let query = ReplayQuery {
            source: input.source,
            subscription: input.subscription,
            status,
            since_ms: opt_time_ms("since", input.since.as_deref())?,
            until_ms: opt_time_ms("until", input.until.as_deref())?,
            limit: limit("limit", input.limit, BULK_DEFAULT, BULK_MAX)?,
        };
        let candidates = self.ports.events.replay_candidates(&query).await?;
        let more = candidates.len() == query.limit;
        let mut plan = Plan::default();
        for c in &candidates {
            match self
                .unreplayable(&c.subscription, &c.event.source, &c.event_type)
                .await?
            {
                Some(why) => plan.skipped.push(Skipped::of(c, &why)),
                None => plan.add(&c.event, &c.subscription),
            }
        }
        let (replays, count, skipped) = self.run_plan(plan, input.dry_run).await?;
        if !input.dry_run {
            tracing::info!(deliveries = count, "bulk replay queued");
        }
        Reply::json(
            if input.dry_run { 200 } else { 202 },
            &BulkResult::new(
                BulkKind::Replay,
                input.dry_run,
                count,
                replays,
                skipped,
                more,
            ),
        )
    }

    pub(crate) async fn list_dead_letters(&self, q: &Query) -> Result<Reply, AdminError> {
        let query = DeadLetterQuery {
            source: q.get("source").map(str::to_owned),
            subscription: q.get("subscription").map(str::to_owned),
            ids: Vec::new(),
            limit: limit_param(q, LIST_DEFAULT, LIST_MAX)?,
            cursor: q.get("cursor").map(str::to_owned),
        };
        let page = self.ports.events.list_dead_letters(&query).await?;
        Reply::json(200, &DeadLetterPage::of(&page))
    }

    /// Each dead letter becomes a replay of its event to its subscription;
    /// the replay settles (removes) it. Those that cannot be replayed stay.
    pub(crate) async fn redrive(&self, body: &[u8]) -> Result<Reply, AdminError> {
        let input: Redrive = json_body_or_empty(body)?;
        let query = DeadLetterQuery {
            source: input.source,
            subscription: input.subscription,
            ids: input.ids,
            limit: limit("limit", input.limit, BULK_DEFAULT, BULK_MAX)?,
            cursor: None,
        };
        let page = self.ports.events.list_dead_letters(&query).await?;
        let more = page.next_cursor.is_some();
        let mut plan = Plan::default();
        for d in &page.dead_letters {
            let candidate = ReplayCandidate {
                event: d.task.event_key(),
                root: d.task.event_key(),
                event_type: String::new(),
                subscription: d.task.subscription.clone(),
            };
            let skip = |why: &str| Skipped::of(&candidate, why).dead_letter(&d.id);
            let Some(record) = self.ports.events.get_event(&candidate.event).await? else {
                plan.skipped.push(skip("event no longer stored"));
                continue;
            };
            match self
                .unreplayable(
                    &candidate.subscription,
                    &d.task.source,
                    &record.event.event_type,
                )
                .await?
            {
                Some(why) => plan.skipped.push(skip(&why)),
                None => plan.add(&candidate.event, &candidate.subscription),
            }
        }
        let (replays, count, skipped) = self.run_plan(plan, input.dry_run).await?;
        if !input.dry_run {
            tracing::info!(deliveries = count, "dead letters redriven");
        }
        Reply::json(
            if input.dry_run { 200 } else { 202 },
            &BulkResult::new(
                BulkKind::Redrive,
                input.dry_run,
                count,
                replays,
                skipped,
                more,
            ),
        )
    }
}

fn json_body_or_empty<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    super::input::json_body(body)
}
