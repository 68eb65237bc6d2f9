//! The admin API's ports: the config store (sources, pollers and
//! subscriptions as their config-file entries) and the event log (events, deliveries,
//! attempts, replays, dead letters). The embedded backend implements both
//! over SQLite (`local/admin.rs`); an AWS implementation would use the
//! config table and the events and deliveries tables.

use async_trait::async_trait;

use serde::Serialize;

use crate::config::{ConfigFile, SourceConfig, SubscriptionConfig};
use crate::error::Unavailable;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey};
use crate::poll::PollerConfig;

/// Which kind of config entry. Ordered as entries are listed and written:
/// what subscriptions name (sources, pollers) before subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Source,
    /// An app without webhooks, polled; a source of events like a source.
    Poller,
    Subscription,
}

impl Kind {
    /// The kinds a subscription's `source` may name; they share one
    /// namespace of ids.
    pub const EVENT_SOURCES: [Self; 2] = [Self::Source, Self::Poller];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Poller => "poller",
            Self::Subscription => "subscription",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "source" => Some(Self::Source),
            "poller" => Some(Self::Poller),
            "subscription" => Some(Self::Subscription),
            _ => None,
        }
    }

    /// A source or a poller: what a subscription's `source` names.
    pub fn is_event_source(self) -> bool {
        Self::EVENT_SOURCES.contains(&self)
    }
}

/// Who owns a config entry: `file`, defined in the config file (read-only
/// here), or `api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Applied from the config file at start-up; read-only through the API.
    File,
    /// Created through the admin API.
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Self::File),
            "api" => Some(Self::Api),
            _ => None,
        }
    }
}

/// One source, poller or subscription, in its config-file shape; it
/// serializes as that entry (the JSON the stores keep).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ConfigItem {
    Source(SourceConfig),
    Poller(PollerConfig),
    Subscription(SubscriptionConfig),
}

impl ConfigItem {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Source(_) => Kind::Source,
            Self::Poller(_) => Kind::Poller,
            Self::Subscription(_) => Kind::Subscription,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::Source(s) => &s.id,
            Self::Poller(p) => &p.id,
            Self::Subscription(s) => &s.id,
        }
    }

    /// The entry of `kind` from its stored JSON.
    pub fn from_json(kind: Kind, json: &str) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            Kind::Source => Self::Source(serde_json::from_str(json)?),
            Kind::Poller => Self::Poller(serde_json::from_str(json)?),
            Kind::Subscription => Self::Subscription(serde_json::from_str(json)?),
        })
    }

    /// The source or poller a subscription needs; None for the others,
    /// and for a subscription to sluice's own events (a built-in source).
    pub fn needs_source(&self) -> Option<&str> {
        match self {
            Self::Subscription(s) if s.source == crate::notify::SOURCE => None,
            Self::Subscription(s) => Some(&s.source),
            Self::Source(_) | Self::Poller(_) => None,
        }
    }

    /// Every entry of a config file: sources, pollers, subscriptions.
    pub fn all_of(file: &ConfigFile) -> Vec<Self> {
        let sources = file.sources.iter().cloned().map(Self::Source);
        let pollers = file.pollers.iter().cloned().map(Self::Poller);
        let subs = file.subscriptions.iter().cloned().map(Self::Subscription);
        sources.chain(pollers).chain(subs).collect()
    }

    /// Add this entry to `file`, beside the entries of its kind.
    pub fn add_to(self, file: &mut ConfigFile) {
        match self {
            Self::Source(s) => file.sources.push(s),
            Self::Poller(p) => file.pollers.push(p),
            Self::Subscription(s) => file.subscriptions.push(s),
        }
    }
}

/// A stored config entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub item: ConfigItem,
    pub origin: Origin,
    pub enabled: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Why a config write was refused by the store itself.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The write would leave a subscription without its source (a source
    /// or a poller): the source is gone, it still has subscriptions, or one was added to it
    /// while it was being deleted (another process, such as the CLI).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// Where sources, pollers and subscriptions are kept. List, upsert and
/// delete are enough to sync a config file idempotently (start-up, `apply`).
///
/// Every store keeps one invariant against concurrent writers in other
/// processes: no subscription without its source, which is a source or a
/// poller. Writing a subscription whose source does not exist (as either),
/// and deleting a source or poller that still has a subscription, fail
/// with [`WriteError::Conflict`].
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// Every entry in [`Kind`] order (sources, pollers, subscriptions),
    /// each kind sorted by id.
    async fn list_config(&self) -> Result<Vec<ConfigEntry>, Unavailable>;

    async fn get_config(&self, kind: Kind, id: &str) -> Result<Option<ConfigEntry>, Unavailable>;

    /// Create only. False when the id is taken.
    async fn create_config(&self, item: &ConfigItem, origin: Origin) -> Result<bool, WriteError>;

    /// Replace an entry's config, or create it (enabled). An existing
    /// entry keeps its `enabled` flag and creation time; `origin` is set.
    async fn upsert_config(&self, item: &ConfigItem, origin: Origin) -> Result<(), WriteError>;

    /// Replace an existing entry's config. False when there is none.
    async fn update_config(&self, item: &ConfigItem) -> Result<bool, Unavailable>;

    /// False when there was nothing to delete.
    async fn delete_config(&self, kind: Kind, id: &str) -> Result<bool, WriteError>;

    /// False when there is no such entry.
    async fn set_enabled(&self, kind: Kind, id: &str, enabled: bool) -> Result<bool, Unavailable>;
}

/// An event's overall state, from its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Not routed yet, or a delivery is still being retried.
    Pending,
    /// Every delivery succeeded.
    Delivered,
    /// At least one delivery failed for good.
    Failed,
    /// Routed to no subscription.
    Unrouted,
}

impl EventStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Delivered, Self::Failed, Self::Unrouted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Unrouted => "unrouted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The status an event with these delivery counts has.
    pub fn from_counts(routed: bool, counts: &DeliveryCounts) -> Self {
        if !routed {
            Self::Pending
        } else if counts.failed > 0 {
            Self::Failed
        } else if counts.pending > 0 {
            Self::Pending
        } else if counts.delivered > 0 {
            Self::Delivered
        } else {
            Self::Unrouted
        }
    }
}

/// Deliveries of an event by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Counts)]
pub struct DeliveryCounts {
    pub pending: u32,
    pub delivered: u32,
    pub failed: u32,
}

/// Filters of the event list. Times are Unix ms on the event's receive
/// time (a replay's is when it was made); `until` is exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub source: Option<String>,
    /// An event-type glob (`push`, `pull_request.*`).
    pub event_type: Option<String>,
    pub status: Option<EventStatus>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: usize,
    /// Opaque, from a previous page.
    pub cursor: Option<String>,
}

/// An event in a list: newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    pub key: EventKey,
    pub event_type: String,
    pub received_at_ms: i64,
    /// Unix seconds: the end of the retention (dedup) window.
    pub expires_at: i64,
    pub status: EventStatus,
    pub counts: DeliveryCounts,
    /// Each destination's state, by subscription id (so that a list can
    /// show them without reading every event).
    pub destinations: Vec<DestinationSummary>,
    /// The event this one replays (always the first, never a replay).
    pub replay_of: Option<EventKey>,
}

/// One destination of an event in a list: its state and attempts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationSummary {
    pub subscription: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    pub next_cursor: Option<String>,
}

/// One delivery (event × subscription) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub subscription: String,
    pub status: DeliveryStatus,
    pub next_attempt_at_ms: Option<i64>,
    pub updated_at_ms: i64,
}

/// Everything the log holds about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub event: Event,
    pub status: EventStatus,
    /// None until routed.
    pub routed: Option<Vec<String>>,
    pub deliveries: Vec<DeliveryRecord>,
    /// Every attempt, all subscriptions, in the order logged.
    pub attempts: Vec<Attempt>,
    pub replay_of: Option<EventKey>,
    /// Replays of this event, oldest first.
    pub replays: Vec<EventKey>,
}

/// Deliveries to replay in bulk: in `status`, of events received in the
/// window. A delivery already followed by a replay of the same event to the
/// same subscription is left out, so running the same bulk replay twice
/// replays nothing twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayQuery {
    pub source: Option<String>,
    pub subscription: Option<String>,
    pub status: DeliveryStatus,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: usize,
}

/// A delivery that matched a [`ReplayQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayCandidate {
    /// The event whose delivery matched (an original or a replay).
    pub event: EventKey,
    /// The original it goes back to: what a replay copies.
    pub root: EventKey,
    pub event_type: String,
    pub subscription: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterQuery {
    pub source: Option<String>,
    pub subscription: Option<String>,
    /// Only these (ids from a listing); empty for all.
    pub ids: Vec<String>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// A task the queue gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRecord {
    pub id: String,
    pub task: DeliveryTask,
    pub reason: String,
    pub receive_count: u32,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetterRecord>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cursor is not one this API returned")]
    BadCursor,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// Reads of the event log, and replays.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Newest first.
    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, LogError>;

    async fn get_event(&self, key: &EventKey) -> Result<Option<EventRecord>, Unavailable>;

    /// A new delivery of `original` (or of the event it replays) to each of
    /// `subscriptions`: a new event record linked to the original, its
    /// deliveries pending and its tasks on the queue, for the deliver step
    /// to run like any other. Dead letters of the same event and
    /// subscriptions are settled by it (removed). `expires_at` (Unix
    /// seconds) is the replay's retention. None when the event is not stored.
    async fn create_replay(
        &self,
        original: &EventKey,
        subscriptions: &[String],
        expires_at: i64,
    ) -> Result<Option<EventKey>, Unavailable>;

    /// Oldest first, at most `limit`.
    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
    ) -> Result<Vec<ReplayCandidate>, Unavailable>;

    /// Oldest first.
    async fn list_dead_letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, LogError>;
}

/// Rebuild the running registry from the config store (after a change).
#[async_trait]
pub trait Reload: Send + Sync {
    async fn reload(&self) -> Result<(), Unavailable>;
}
