//! The admin API's ports over the embedded database: the config store, the
//! secret store (`db:` references) and the event log with replays. Kept
//! apart from `store.rs` (the hot path); it shares its writer and readers.

use std::collections::HashSet;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::writer::DbResult;
use crate::admin::ports::{
    ConfigEntry, ConfigItem, ConfigStore, DeadLetterPage, DeadLetterQuery, DeadLetterRecord,
    DeliveryCounts, DeliveryRecord, DestinationSummary, EventLog, EventPage, EventQuery,
    EventRecord, EventStatus, EventSummary, Kind, LogError, Origin, ReplayCandidate, ReplayQuery,
    WriteError,
};
use crate::error::Unavailable;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey};
use crate::secrets::{
    EnvSecrets, Keep, Secret, SecretError, SecretKeeper, SecretRef, SecretResolver, SecretStore,
};
use crate::time::now_ms;

/// Dead letters are kept this long, as long as SQS keeps a message at most.
pub const DEAD_LETTER_RETENTION_MS: i64 = 14 * 24 * 3600 * 1000;

impl SqliteStore {
    /// Goes up with every config change, from any process.
    pub async fn config_version(&self) -> Result<i64, Unavailable> {
        self.lookup(|c| {
            c.prepare_cached("SELECT version FROM config_version WHERE one = 1")?
                .query_row([], |r| r.get(0))
                .optional()
                .map(Option::unwrap_or_default)
        })
        .await
    }

    /// Carries the 410-disabled subscriptions of the table used before the
    /// config table existed into it, once (the rows are then removed).
    pub async fn import_legacy_disabled(&self) -> Result<u64, Unavailable> {
        self.write(|c, _| {
            let n = c.execute(
                "UPDATE config SET enabled = 0, updated_at_ms = ?1
                 WHERE kind = 'subscription' AND enabled = 1
                   AND id IN (SELECT id FROM disabled_subscriptions)",
                [now_ms()],
            )?;
            c.execute("DELETE FROM disabled_subscriptions", [])?;
            Ok(n as u64)
        })
        .await
    }

    /// Removes what the admin tables keep past its time: dead letters older
    /// than [`DEAD_LETTER_RETENTION_MS`], and replay links whose event was
    /// purged. Runs beside `purge_expired`.
    pub async fn purge_admin(&self, now_ms: i64) -> Result<u64, Unavailable> {
        self.write(move |c, _| {
            let dead = c.execute(
                "DELETE FROM dead_letters WHERE at_ms < ?1",
                [now_ms.saturating_sub(DEAD_LETTER_RETENTION_MS)],
            )?;
            let links = c.execute(
                "DELETE FROM replays WHERE NOT EXISTS
                    (SELECT 1 FROM events e WHERE e.source = replays.source AND e.id = replays.id)",
                [],
            )?;
            Ok((dead + links) as u64)
        })
        .await
    }
}

// ---- config store ----

fn to_json(item: &ConfigItem) -> DbResult<String> {
    serde_json::to_string(item).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

fn bad_column(idx: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, message.into())
}

// Column order: kind, origin, enabled, config, created_at_ms, updated_at_ms.
const CONFIG_COLUMNS: &str = "kind, origin, enabled, config, created_at_ms, updated_at_ms";

fn entry_from_row(r: &Row<'_>) -> DbResult<ConfigEntry> {
    let kind: String = r.get(0)?;
    let origin: String = r.get(1)?;
    let json: String = r.get(3)?;
    let kind = Kind::parse(&kind).ok_or_else(|| bad_column(0, format!("bad kind {kind:?}")))?;
    let item = ConfigItem::from_json(kind, &json).map_err(|e| bad_column(3, e.to_string()))?;
    Ok(ConfigEntry {
        item,
        origin: Origin::parse(&origin)
            .ok_or_else(|| bad_column(1, format!("bad origin {origin:?}")))?,
        enabled: r.get(2)?,
        created_at_ms: r.get(4)?,
        updated_at_ms: r.get(5)?,
    })
}

/// Why a subscription of `source` cannot be written, if it cannot: its
/// source is neither a source nor a poller.
fn missing_source(c: &Connection, source: Option<&str>) -> DbResult<Option<String>> {
    let Some(source) = source else {
        return Ok(None);
    };
    let exists = c
        .prepare_cached("SELECT 1 FROM config WHERE kind IN ('source', 'poller') AND id = ?1")?
        .query_row(params![source], |_| Ok(()))
        .optional()?
        .is_some();
    Ok((!exists).then(|| format!("no source or poller {source:?}")))
}

/// The ids of the subscriptions of `source` (a source or a poller).
fn subscriptions_of(c: &Connection, source: &str) -> DbResult<Vec<String>> {
    let mut stmt = c.prepare_cached("SELECT id, config FROM config WHERE kind = 'subscription'")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut ids = Vec::new();
    for row in rows {
        let (id, json) = row?;
        // A row that does not parse cannot be shown to be another
        // source's: count it, so the source is kept.
        let theirs = serde_json::from_str::<crate::config::SubscriptionConfig>(&json)
            .map_or(true, |s| s.source == source);
        if theirs {
            ids.push(id);
        }
    }
    Ok(ids)
}

#[async_trait]
impl ConfigStore for SqliteStore {
    async fn list_config(&self) -> Result<Vec<ConfigEntry>, Unavailable> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {CONFIG_COLUMNS} FROM config
                 ORDER BY CASE kind WHEN 'source' THEN 0 WHEN 'poller' THEN 1 ELSE 2 END, id"
            ))?
            .query_map([], entry_from_row)?
            .collect()
        })
        .await
    }

    async fn get_config(&self, kind: Kind, id: &str) -> Result<Option<ConfigEntry>, Unavailable> {
        let id = id.to_owned();
        self.lookup(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CONFIG_COLUMNS} FROM config WHERE kind = ?1 AND id = ?2"
            ))?
            .query_row(params![kind.as_str(), id], entry_from_row)
            .optional()
        })
        .await
    }

    async fn create_config(&self, item: &ConfigItem, origin: Origin) -> Result<bool, WriteError> {
        let (kind, id) = (item.kind(), item.id().to_owned());
        let json = to_json(item).map_err(Unavailable::new)?;
        let source = item.needs_source().map(str::to_owned);
        self.write(move |c, _| {
            // In the same transaction as the write: another process's
            // delete of the source cannot come in between.
            if let Some(refused) = missing_source(c, source.as_deref())? {
                return Ok(Err(refused));
            }
            let now = now_ms();
            let n = c
                .prepare_cached(
                    "INSERT INTO config (kind, id, origin, enabled, config, created_at_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
                )?
                .execute(params![kind.as_str(), id, origin.as_str(), json, now])?;
            Ok(Ok(n == 1))
        })
        .await?
        .map_err(WriteError::Conflict)
    }

    async fn upsert_config(&self, item: &ConfigItem, origin: Origin) -> Result<(), WriteError> {
        let (kind, id) = (item.kind(), item.id().to_owned());
        let json = to_json(item).map_err(Unavailable::new)?;
        let source = item.needs_source().map(str::to_owned);
        // UPDATE, then INSERT if there was no row; not an UPSERT: SQLite lets
        // the outer statement's conflict policy override the version
        // trigger's INSERT OR REPLACE, so an UPSERT that updated an entry
        // failed on the version row ("UNIQUE constraint failed").
        self.write(move |c, _| {
            if let Some(refused) = missing_source(c, source.as_deref())? {
                return Ok(Err(refused));
            }
            let now = now_ms();
            let updated = c
                .prepare_cached(
                    "UPDATE config SET origin = ?3, config = ?4, updated_at_ms = ?5
                     WHERE kind = ?1 AND id = ?2",
                )?
                .execute(params![kind.as_str(), id, origin.as_str(), json, now])?;
            if updated == 0 {
                c.prepare_cached(
                    "INSERT INTO config (kind, id, origin, enabled, config, created_at_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5)",
                )?
                .execute(params![kind.as_str(), id, origin.as_str(), json, now])?;
            }
            Ok(Ok(()))
        })
        .await?
        .map_err(WriteError::Conflict)
    }

    async fn update_config(&self, item: &ConfigItem) -> Result<bool, Unavailable> {
        let (kind, id) = (item.kind(), item.id().to_owned());
        let json = to_json(item).map_err(Unavailable::new)?;
        self.write(move |c, _| {
            let n = c
                .prepare_cached(
                    "UPDATE config SET config = ?3, updated_at_ms = ?4 WHERE kind = ?1 AND id = ?2",
                )?
                .execute(params![kind.as_str(), id, json, now_ms()])?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_config(&self, kind: Kind, id: &str) -> Result<bool, WriteError> {
        let id = id.to_owned();
        self.write(move |c, _| {
            if kind.is_event_source() {
                let users = subscriptions_of(c, &id)?;
                if !users.is_empty() {
                    return Ok(Err(format!(
                        "{} {id:?} still has subscriptions: {}; delete them first",
                        kind.as_str(),
                        users.join(", ")
                    )));
                }
            }
            let n = c
                .prepare_cached("DELETE FROM config WHERE kind = ?1 AND id = ?2")?
                .execute(params![kind.as_str(), id])?;
            Ok(Ok(n == 1))
        })
        .await?
        .map_err(WriteError::Conflict)
    }

    async fn set_enabled(&self, kind: Kind, id: &str, enabled: bool) -> Result<bool, Unavailable> {
        let id = id.to_owned();
        self.write(move |c, _| {
            let exists = c
                .prepare_cached("SELECT enabled FROM config WHERE kind = ?1 AND id = ?2")?
                .query_row(params![kind.as_str(), id], |r| r.get::<_, bool>(0))
                .optional()?;
            match exists {
                None => Ok(false),
                // Unchanged: no write, so no version bump and no reload.
                Some(current) if current == enabled => Ok(true),
                Some(_) => {
                    c.prepare_cached(
                        "UPDATE config SET enabled = ?3, updated_at_ms = ?4 WHERE kind = ?1 AND id = ?2",
                    )?
                    .execute(params![kind.as_str(), id, enabled, now_ms()])?;
                    Ok(true)
                }
            }
        })
        .await
    }
}

// ---- secrets ----

#[async_trait]
impl SecretStore for SqliteStore {
    async fn put_secret(&self, name: &str, value: &Secret) -> Result<SecretRef, SecretError> {
        let reference = SecretRef::Db(name.to_owned());
        let (name, value) = (name.to_owned(), value.expose().to_owned());
        self.write(move |c, _| {
            c.prepare_cached(
                "INSERT INTO secrets (name, value, created_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![name, value, now_ms()])?;
            Ok(())
        })
        .await
        .map_err(|e| SecretError::Backend(reference.clone(), e.to_string()))?;
        Ok(reference)
    }

    fn owns(&self, reference: &SecretRef) -> bool {
        matches!(reference, SecretRef::Db(_))
    }

    async fn delete_secret(&self, reference: &SecretRef) -> Result<(), SecretError> {
        let SecretRef::Db(name) = reference else {
            return Ok(());
        };
        let name = name.clone();
        self.write(move |c, _| {
            c.prepare_cached("DELETE FROM secrets WHERE name = ?1")?
                .execute([name])?;
            Ok(())
        })
        .await
        .map_err(|e| SecretError::Backend(reference.clone(), e.to_string()))
    }
}

/// A handshake's secret, as a `db:` secret: `INSERT` that does nothing
/// when the name is taken, so of two handshakes the first stays; then, in
/// the same write, what is there is read to compare.
#[async_trait]
impl SecretKeeper for SqliteStore {
    async fn keep_if_absent(
        &self,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, SecretError> {
        let SecretRef::Db(name) = reference else {
            return Err(SecretError::Unsupported(
                reference.clone(),
                "a handshake's secret is kept at a db: reference",
            ));
        };
        let (name, sent) = (name.clone(), value.expose().to_owned());
        let existing = self
            .write(move |c, _| {
                let added = c
                    .prepare_cached(
                        "INSERT INTO secrets (name, value, created_at_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO NOTHING",
                    )?
                    .execute(params![name, sent, now_ms()])?;
                if added == 1 {
                    return Ok(None);
                }
                c.prepare_cached("SELECT value FROM secrets WHERE name = ?1")?
                    .query_row([name], |r| r.get::<_, String>(0))
                    .map(Some)
            })
            .await
            .map_err(|e| SecretError::Backend(reference.clone(), e.to_string()))?;
        Ok(match existing {
            None => Keep::Kept,
            Some(existing) => Keep::compare(&Secret::new(existing), value),
        })
    }
}

/// The embedded gateway's resolver: `db:` from the database, the rest
/// (`env:`) from [`EnvSecrets`].
pub struct LocalSecrets {
    env: EnvSecrets,
    store: SqliteStore,
}

impl std::fmt::Debug for LocalSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSecrets").finish_non_exhaustive()
    }
}

impl LocalSecrets {
    pub fn new(env: EnvSecrets, store: SqliteStore) -> Self {
        Self { env, store }
    }
}

#[async_trait]
impl SecretResolver for LocalSecrets {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        let SecretRef::Db(name) = reference else {
            return self.env.resolve(reference).await;
        };
        let name = name.clone();
        let value: Option<String> = self
            .store
            .lookup(move |c| {
                c.prepare_cached("SELECT value FROM secrets WHERE name = ?1")?
                    .query_row([name], |r| r.get(0))
                    .optional()
            })
            .await
            .map_err(|e| SecretError::Backend(reference.clone(), e.to_string()))?;
        value
            .map(Secret::new)
            .ok_or_else(|| SecretError::NotFound(reference.clone()))
    }
}

// ---- event log ----

fn encode_cursor(prefix: char, seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{prefix}{seq}"))
}

fn decode_cursor(prefix: char, cursor: &str) -> Result<i64, LogError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| LogError::BadCursor)?;
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.strip_prefix(prefix))
        .and_then(|s| s.parse().ok())
        .ok_or(LogError::BadCursor)
}

/// An event-type glob (wildmatch: `*`, `?`) as an SQLite GLOB pattern,
/// where `[` would start a character class.
fn glob(pattern: &str) -> String {
    pattern.replace('[', "[[]")
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn status_of(r: &Row<'_>, idx: usize) -> DbResult<DeliveryStatus> {
    let s: String = r.get(idx)?;
    DeliveryStatus::parse(&s).ok_or_else(|| bad_column(idx, format!("bad status {s:?}")))
}

fn counts(r: &Row<'_>, first: usize) -> DbResult<DeliveryCounts> {
    Ok(DeliveryCounts {
        pending: r.get(first)?,
        delivered: r.get(first + 1)?,
        failed: r.get(first + 2)?,
    })
}

const COUNTS: &str = "coalesce(sum(d.status = 'pending'), 0),
                      coalesce(sum(d.status = 'delivered'), 0),
                      coalesce(sum(d.status = 'failed'), 0)";
/// An event's deliveries as one JSON array of [subscription, status, attempts].
const DESTINATIONS: &str = "json_group_array(json_array(d.subscription, d.status, d.attempts))
                            FILTER (WHERE d.event_seq IS NOT NULL)";

fn destinations(r: &Row<'_>, idx: usize) -> DbResult<Vec<DestinationSummary>> {
    let text: String = r.get(idx)?;
    let rows: Vec<(String, String, u32)> =
        serde_json::from_str(&text).map_err(|e| bad_column(idx, e.to_string()))?;
    let mut out = rows
        .into_iter()
        .map(|(subscription, status, attempts)| {
            let status = DeliveryStatus::parse(&status)
                .ok_or_else(|| bad_column(idx, format!("bad status {status:?}")))?;
            Ok(DestinationSummary {
                subscription,
                status,
                attempts,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    out.sort_by(|a, b| a.subscription.cmp(&b.subscription));
    Ok(out)
}

const STATUS: &str = "CASE WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.seq = e.seq) THEN 'pending'
                           WHEN sum(d.status = 'failed') > 0 THEN 'failed'
                           WHEN sum(d.status = 'pending') > 0 THEN 'pending'
                           WHEN sum(d.status = 'delivered') > 0 THEN 'delivered'
                           ELSE 'unrouted' END";

fn event_columns(r: &Row<'_>, first: usize) -> DbResult<Event> {
    let headers: String = r.get(first + 7)?;
    Ok(Event {
        source: r.get(first)?,
        id: r.get(first + 1)?,
        event_type: r.get(first + 2)?,
        received_at_ms: r.get(first + 3)?,
        expires_at: r.get(first + 4)?,
        body_hash: r.get(first + 5)?,
        content_type: r.get(first + 6)?,
        headers: serde_json::from_str(&headers)
            .map_err(|e| bad_column(first + 7, e.to_string()))?,
        body: Bytes::from(r.get::<_, Vec<u8>>(first + 8)?),
    })
}

fn get_event(c: &Connection, key: &EventKey) -> DbResult<Option<EventRecord>> {
    let found = c
        .prepare_cached(
            "SELECT e.seq, EXISTS (SELECT 1 FROM outbox o WHERE o.seq = e.seq), r.replay_of,
                    e.source, e.id, e.event_type, e.received_at_ms, e.expires_at, e.body_hash,
                    e.content_type, e.headers, e.body
             FROM events e LEFT JOIN replays r ON r.source = e.source AND r.id = e.id
             WHERE e.source = ?1 AND e.id = ?2",
        )?
        .query_row(params![key.source, key.id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Option<String>>(2)?,
                event_columns(r, 3)?,
            ))
        })
        .optional()?;
    let Some((seq, outbox, replay_of, event)) = found else {
        return Ok(None);
    };
    let deliveries = c
        .prepare_cached(
            "SELECT subscription, status, next_attempt_at_ms, updated_at_ms
             FROM deliveries WHERE event_seq = ?1 ORDER BY subscription",
        )?
        .query_map([seq], |r| {
            Ok(DeliveryRecord {
                subscription: r.get(0)?,
                status: status_of(r, 1)?,
                next_attempt_at_ms: r.get(2)?,
                updated_at_ms: r.get(3)?,
            })
        })?
        .collect::<DbResult<Vec<_>>>()?;
    let attempts = c
        .prepare_cached(
            "SELECT subscription, attempt, started_at_ms, latency_ms, status_code, error,
                    response_snippet, next_attempt_at_ms
             FROM attempts WHERE event_seq = ?1 ORDER BY seq",
        )?
        .query_map([seq], |r| {
            Ok(Attempt {
                source: event.source.clone(),
                event_id: event.id.clone(),
                subscription: r.get(0)?,
                attempt: r.get(1)?,
                started_at_ms: r.get(2)?,
                latency_ms: r.get(3)?,
                status_code: r.get(4)?,
                error: r.get(5)?,
                response_snippet: r.get(6)?,
                next_attempt_at_ms: r.get(7)?,
            })
        })?
        .collect::<DbResult<Vec<_>>>()?;
    let replays = c
        .prepare_cached(
            "SELECT r.id FROM replays r JOIN events e ON e.source = r.source AND e.id = r.id
             WHERE r.source = ?1 AND r.replay_of = ?2 ORDER BY e.seq",
        )?
        .query_map(params![key.source, key.id], |r| r.get::<_, String>(0))?
        .map(|id| id.map(|id| EventKey::new(&key.source, &id)))
        .collect::<DbResult<Vec<_>>>()?;
    // Routed events are those out of the outbox; their deliveries say where.
    let routed = (!outbox).then(|| deliveries.iter().map(|d| d.subscription.clone()).collect());
    let mut counts = DeliveryCounts::default();
    for d in &deliveries {
        match d.status {
            DeliveryStatus::Pending => counts.pending += 1,
            DeliveryStatus::Delivered => counts.delivered += 1,
            DeliveryStatus::Failed => counts.failed += 1,
        }
    }
    Ok(Some(EventRecord {
        status: EventStatus::from_counts(!outbox, &counts),
        replay_of: replay_of.map(|id| EventKey::new(&key.source, &id)),
        event,
        routed,
        deliveries,
        attempts,
        replays,
    }))
}

/// The whole replay in one transaction: the copy, its link, its pending
/// deliveries, its queued tasks, and the dead letters it settles. The copy
/// never enters the outbox: it goes to the subscriptions asked for only.
fn create_replay(
    c: &Connection,
    original: &EventKey,
    subscriptions: &[String],
    expires_at: i64,
) -> DbResult<Option<EventKey>> {
    let Some(orig_seq) = c
        .prepare_cached("SELECT seq FROM events WHERE source = ?1 AND id = ?2")?
        .query_row(params![original.source, original.id], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
    else {
        return Ok(None);
    };
    let source = &original.source;
    let root: String = c
        .prepare_cached("SELECT replay_of FROM replays WHERE source = ?1 AND id = ?2")?
        .query_row(params![source, original.id], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| original.id.clone());
    // Copy from the original if it is still stored, else from the replay
    // asked for (same body, headers and type).
    let copy_from = c
        .prepare_cached("SELECT seq FROM events WHERE source = ?1 AND id = ?2")?
        .query_row(params![source, root], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(orig_seq);
    let mut n: i64 = c
        .prepare_cached("SELECT count(*) FROM replays WHERE source = ?1 AND replay_of = ?2")?
        .query_row(params![source, root], |r| r.get(0))?;
    let mut exists = c.prepare_cached("SELECT 1 FROM events WHERE source = ?1 AND id = ?2")?;
    let id = loop {
        n += 1;
        let id = format!("{root}#replay-{n}");
        if !exists.exists(params![source, id])? {
            break id;
        }
    };
    let now = now_ms();
    c.prepare_cached(
        "INSERT INTO events (source, id, event_type, received_at_ms, expires_at, body_hash,
                             content_type, headers, body)
         SELECT source, ?2, event_type, ?3, ?4, body_hash, content_type, headers, body
         FROM events WHERE seq = ?1",
    )?
    .execute(params![copy_from, id, now, expires_at])?;
    let seq = c.last_insert_rowid();
    c.prepare_cached(
        "INSERT INTO replays (source, id, replay_of, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![source, id, root, now])?;
    let mut delivery = c.prepare_cached(
        "INSERT INTO deliveries (event_seq, subscription, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?;
    let mut task = c.prepare_cached(
        "INSERT INTO queue (source, event_id, subscription, visible_at, sent_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING",
    )?;
    let mut settle = c.prepare_cached(
        "DELETE FROM dead_letters WHERE source = ?1 AND subscription = ?3
           AND (event_id = ?2 OR event_id IN
                (SELECT id FROM replays WHERE source = ?1 AND replay_of = ?2))",
    )?;
    for sub in subscriptions {
        delivery.execute(params![seq, sub, now])?;
        task.execute(params![source, id, sub, now])?;
        settle.execute(params![source, root, sub])?;
    }
    Ok(Some(EventKey::new(source, &id)))
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, LogError> {
        let before = query
            .cursor
            .as_deref()
            .map(|c| decode_cursor('e', c))
            .transpose()?;
        let q = query.clone();
        let limit = q.limit.max(1);
        let events = self
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT e.seq, e.source, e.id, e.event_type, e.received_at_ms, e.expires_at,
                            EXISTS (SELECT 1 FROM outbox o WHERE o.seq = e.seq), r.replay_of, {COUNTS},
                            {DESTINATIONS}
                     FROM events e
                     LEFT JOIN deliveries d ON d.event_seq = e.seq
                     LEFT JOIN replays r ON r.source = e.source AND r.id = e.id
                     WHERE (?1 IS NULL OR e.source = ?1)
                       AND (?2 IS NULL OR e.event_type GLOB ?2)
                       AND (?3 IS NULL OR e.received_at_ms >= ?3)
                       AND (?4 IS NULL OR e.received_at_ms < ?4)
                       AND (?5 IS NULL OR e.seq < ?5)
                     GROUP BY e.seq
                     HAVING ?6 IS NULL OR {STATUS} = ?6
                     ORDER BY e.seq DESC LIMIT ?7"
                ))?
                .query_map(
                    params![
                        q.source,
                        q.event_type.as_deref().map(glob),
                        q.since_ms,
                        q.until_ms,
                        before,
                        q.status.map(EventStatus::as_str),
                        to_i64(limit)
                    ],
                    |r| {
                        let source: String = r.get(1)?;
                        let counts = counts(r, 8)?;
                        let destinations = destinations(r, 11)?;
                        let outbox: bool = r.get(6)?;
                        Ok((
                            r.get::<_, i64>(0)?,
                            EventSummary {
                                key: EventKey::new(&source, &r.get::<_, String>(2)?),
                                event_type: r.get(3)?,
                                received_at_ms: r.get(4)?,
                                expires_at: r.get(5)?,
                                status: EventStatus::from_counts(!outbox, &counts),
                                counts,
                                destinations,
                                replay_of: r
                                    .get::<_, Option<String>>(7)?
                                    .map(|id| EventKey::new(&source, &id)),
                            },
                        ))
                    },
                )?
                .collect::<DbResult<Vec<_>>>()
            })
            .await?;
        let next_cursor = (events.len() == limit)
            .then(|| events.last().map(|(seq, _)| encode_cursor('e', *seq)))
            .flatten();
        Ok(EventPage {
            events: events.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        })
    }

    async fn get_event(&self, key: &EventKey) -> Result<Option<EventRecord>, Unavailable> {
        let key = key.clone();
        self.read(move |c| get_event(c, &key)).await
    }

    async fn create_replay(
        &self,
        original: &EventKey,
        subscriptions: &[String],
        expires_at: i64,
    ) -> Result<Option<EventKey>, Unavailable> {
        // Once per subscription: a duplicate would only double the tasks.
        let mut seen = HashSet::new();
        let subs: Vec<String> = subscriptions
            .iter()
            .filter(|s| seen.insert(s.as_str()))
            .cloned()
            .collect();
        let original = original.clone();
        self.write(move |c, wake| {
            let created = create_replay(c, &original, &subs, expires_at)?;
            wake.queue |= created.is_some() && !subs.is_empty();
            Ok(created)
        })
        .await
    }

    async fn replay_candidates(
        &self,
        query: &ReplayQuery,
    ) -> Result<Vec<ReplayCandidate>, Unavailable> {
        let q = query.clone();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT e.source, e.id, coalesce(r.replay_of, e.id), e.event_type, d.subscription
                 FROM deliveries d
                 JOIN events e ON e.seq = d.event_seq
                 LEFT JOIN replays r ON r.source = e.source AND r.id = e.id
                 WHERE d.status = ?1
                   AND (?2 IS NULL OR e.source = ?2)
                   AND (?3 IS NULL OR d.subscription = ?3)
                   AND (?4 IS NULL OR e.received_at_ms >= ?4)
                   AND (?5 IS NULL OR e.received_at_ms < ?5)
                   AND NOT EXISTS (
                       SELECT 1 FROM replays r2
                       JOIN events e2 ON e2.source = r2.source AND e2.id = r2.id
                       JOIN deliveries d2 ON d2.event_seq = e2.seq AND d2.subscription = d.subscription
                       WHERE r2.source = e.source AND r2.replay_of = coalesce(r.replay_of, e.id)
                         AND e2.seq > e.seq)
                 ORDER BY e.seq, d.subscription LIMIT ?6",
            )?
            .query_map(
                params![
                    q.status.as_str(),
                    q.source,
                    q.subscription,
                    q.since_ms,
                    q.until_ms,
                    to_i64(q.limit.max(1))
                ],
                |r| {
                    let source: String = r.get(0)?;
                    Ok(ReplayCandidate {
                        event: EventKey::new(&source, &r.get::<_, String>(1)?),
                        root: EventKey::new(&source, &r.get::<_, String>(2)?),
                        event_type: r.get(3)?,
                        subscription: r.get(4)?,
                    })
                },
            )?
            .collect()
        })
        .await
    }

    async fn list_dead_letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, LogError> {
        let after = query
            .cursor
            .as_deref()
            .map(|c| decode_cursor('d', c))
            .transpose()?;
        let ids: Option<String> = if query.ids.is_empty() {
            None
        } else {
            // Ids are the rows' seq; anything else names no row.
            let seqs: Vec<i64> = query.ids.iter().filter_map(|i| i.parse().ok()).collect();
            Some(serde_json::to_string(&seqs).map_err(Unavailable::new)?)
        };
        let q = query.clone();
        let limit = q.limit.max(1);
        let rows = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT seq, source, event_id, subscription, reason, receive_count, at_ms
                     FROM dead_letters
                     WHERE (?1 IS NULL OR source = ?1)
                       AND (?2 IS NULL OR subscription = ?2)
                       AND (?3 IS NULL OR seq > ?3)
                       AND (?4 IS NULL OR seq IN (SELECT value FROM json_each(?4)))
                     ORDER BY seq LIMIT ?5",
                )?
                .query_map(
                    params![q.source, q.subscription, after, ids, to_i64(limit)],
                    |r| {
                        let seq: i64 = r.get(0)?;
                        Ok((
                            seq,
                            DeadLetterRecord {
                                id: seq.to_string(),
                                task: DeliveryTask {
                                    source: r.get(1)?,
                                    event_id: r.get(2)?,
                                    subscription: r.get(3)?,
                                },
                                reason: r.get(4)?,
                                receive_count: r.get(5)?,
                                at_ms: r.get(6)?,
                            },
                        ))
                    },
                )?
                .collect::<DbResult<Vec<_>>>()
            })
            .await?;
        let next_cursor = (rows.len() == limit)
            .then(|| rows.last().map(|(seq, _)| encode_cursor('d', *seq)))
            .flatten();
        Ok(DeadLetterPage {
            dead_letters: rows.into_iter().map(|(_, d)| d).collect(),
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{ConfigFile, Registry};
    use crate::model::{Attempt, Headers};
    use crate::queue::DeliveryQueue;
    use crate::store::EventStore;

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("sluice.db")).expect("open");
        (dir, store)
    }

    /// The first value stays; the same again is `Same`, another `Other`,
    /// and neither changes it; only `db:` references are written.
    #[tokio::test]
    async fn a_handshake_secret_is_kept_once_and_compared_after() {
        let (_dir, store) = open();
        let r = SecretRef::Db("asana-hook".into());
        for (value, found) in [
            ("first", Keep::Kept),
            ("first", Keep::Same),
            ("second", Keep::Other),
        ] {
            let got = store.keep_if_absent(&r, &Secret::new(value)).await;
            assert_eq!(got.unwrap(), found, "{value}");
        }
        let secrets = LocalSecrets::new(EnvSecrets::new(), store.clone());
        assert_eq!(secrets.resolve(&r).await.unwrap().expose(), "first");
        let env = SecretRef::Env("ASANA".into());
        assert!(matches!(
            store.keep_if_absent(&env, &Secret::new("x")).await,
            Err(SecretError::Unsupported(..))
        ));
    }

    fn event(id: &str, event_type: &str) -> Event {
        Event {
            source: "gh".into(),
            id: id.into(),
            event_type: event_type.into(),
            received_at_ms: now_ms(),
            expires_at: now_ms() / 1000 + 3600,
            body: Bytes::from_static(b"{\"a\":1}"),
            body_hash: "h".into(),
            content_type: Some("application/json".into()),
            headers: Headers::from_pairs(&[("x-github-event", event_type)]),
        }
    }

    fn attempt(id: &str, sub: &str, code: u16) -> Attempt {
        Attempt {
            source: "gh".into(),
            event_id: id.into(),
            subscription: sub.into(),
            attempt: 1,
            started_at_ms: now_ms(),
            latency_ms: 3,
            status_code: Some(code),
            error: None,
            response_snippet: Some("nope".into()),
            next_attempt_at_ms: None,
        }
    }

    /// Commit, route to `subs`, and settle each delivery with `code`
    /// (a failure is dead-lettered first, as deliver does).
    async fn settled(store: &SqliteStore, id: &str, subs: &[(&str, u16)]) {
        store.commit(&event(id, "push")).await.unwrap();
        let names: Vec<String> = subs.iter().map(|(s, _)| (*s).to_owned()).collect();
        store
            .mark_routed(&EventKey::new("gh", id), &names)
            .await
            .unwrap();
        let tasks: Vec<DeliveryTask> = names
            .iter()
            .map(|s| DeliveryTask {
                source: "gh".into(),
                event_id: id.into(),
                subscription: s.clone(),
            })
            .collect();
        store.send(&tasks).await.unwrap();
        for msg in store.receive(10, Duration::from_secs(60)).await.unwrap() {
            let code = subs
                .iter()
                .find(|(s, _)| *s == msg.task.subscription)
                .map(|(_, c)| *c)
                .unwrap();
            let status = if code < 300 {
                DeliveryStatus::Delivered
            } else {
                store.dead_letter(&msg, "attempts exhausted").await.unwrap();
                DeliveryStatus::Failed
            };
            store
                .record_attempt(&attempt(id, &msg.task.subscription, code), status)
                .await
                .unwrap();
            store.ack(std::slice::from_ref(&msg.handle)).await.unwrap();
        }
    }

    /// Two processes (the gateway and the CLI) on one database: creating a
    /// subscription and deleting its source, concurrently, never leave the
    /// subscription without its source.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_concurrent_subscription_create_and_source_delete_leave_no_orphan() {
        let (dir, first) = open();
        let second = SqliteStore::open(&dir.path().join("sluice.db")).unwrap();
        let file = ConfigFile::parse(
            r#"
            [[sources]]
            id = "gh"
            provider = "github"
            secrets = ["env:X"]
            [[subscriptions]]
            id = "s"
            source = "gh"
            events = ["push"]
            url = "https://example.com/x"
            "#,
        )
        .unwrap();
        let src = ConfigItem::Source(file.sources[0].clone());
        for round in 0..20 {
            let mut sub = file.subscriptions[0].clone();
            sub.id = format!("s{round}");
            let sub = ConfigItem::Subscription(sub);
            assert!(first.create_config(&src, Origin::Api).await.unwrap());
            let (created, deleted) = tokio::join!(
                first.create_config(&sub, Origin::Api),
                second.delete_config(Kind::Source, "gh"),
            );
            let created = matches!(created, Ok(true));
            let deleted = matches!(deleted, Ok(true));
            assert!(created != deleted, "round {round}: exactly one wins");
            let all = first.list_config().await.unwrap();
            let has_source = all.iter().any(|e| e.item.kind() == Kind::Source);
            for e in &all {
                if let ConfigItem::Subscription(s) = &e.item {
                    assert!(has_source, "round {round}: {} has no source", s.id);
                }
            }
            // Reset: the subscription (if any) first, then the source.
            if created {
                assert!(
                    first
                        .delete_config(Kind::Subscription, sub.id())
                        .await
                        .unwrap()
                );
                assert!(first.delete_config(Kind::Source, "gh").await.unwrap());
            }
        }
        // Deleting a source in use is refused, and says by what.
        assert!(first.create_config(&src, Origin::Api).await.unwrap());
        let sub = ConfigItem::Subscription(file.subscriptions[0].clone());
        assert!(first.create_config(&sub, Origin::Api).await.unwrap());
        let err = second.delete_config(Kind::Source, "gh").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("\"gh\" still has subscriptions: s"),
            "{err}"
        );
    }

    /// A poller is stored like a source, is what a subscription may name,
    /// and cannot be deleted while one does; the registry reads it without
    /// serving it as a source.
    #[tokio::test]
    async fn pollers_are_stored_and_keep_their_subscriptions_sourced() {
        let (_dir, store) = open();
        let file = ConfigFile::parse(
            r#"
            [[sources]]
            id = "gh"
            provider = "github"
            secrets = ["db:gh-secret"]
            [[pollers]]
            id = "items"
            url = "https://api.example.com/items"
            item_id = "/id"
            interval = "30s"
            headers = { Authorization = "env:ITEMS_TOKEN" }
            [[subscriptions]]
            id = "on-items"
            source = "items"
            events = ["*"]
            url = "https://example.com/x"
            "#,
        )
        .unwrap();
        let src = ConfigItem::Source(file.sources[0].clone());
        let poller = ConfigItem::Poller(file.pollers[0].clone());
        let sub = ConfigItem::Subscription(file.subscriptions[0].clone());
        let v0 = store.config_version().await.unwrap();
        assert!(matches!(
            store.create_config(&sub, Origin::Api).await,
            Err(WriteError::Conflict(m)) if m.contains("\"items\"")
        ));
        assert!(store.create_config(&poller, Origin::Api).await.unwrap());
        assert!(!store.create_config(&poller, Origin::Api).await.unwrap());
        assert!(store.create_config(&sub, Origin::Api).await.unwrap());
        assert!(store.create_config(&src, Origin::File).await.unwrap());
        assert!(store.config_version().await.unwrap() > v0);
        let kinds: Vec<Kind> = store
            .list_config()
            .await
            .unwrap()
            .iter()
            .map(|e| e.item.kind())
            .collect();
        assert_eq!(
            kinds,
            [Kind::Source, Kind::Poller, Kind::Subscription],
            "listed in kind order"
        );
        let got = store
            .get_config(Kind::Poller, "items")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&got.item, got.origin, got.enabled),
            (&poller, Origin::Api, true)
        );
        assert!(
            store
                .get_config(Kind::Source, "items")
                .await
                .unwrap()
                .is_none(),
            "kinds are apart in the table"
        );

        let err = store
            .delete_config(Kind::Poller, "items")
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("poller \"items\" still has subscriptions: on-items"),
            "{err}"
        );
        assert!(
            store
                .set_enabled(Kind::Poller, "items", false)
                .await
                .unwrap()
        );
        let mut slower = file.pollers[0].clone();
        slower.interval = Some(Duration::from_secs(300));
        assert!(
            store
                .update_config(&ConfigItem::Poller(slower.clone()))
                .await
                .unwrap()
        );
        let got = store
            .get_config(Kind::Poller, "items")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&got.item, got.enabled),
            (&ConfigItem::Poller(slower), false)
        );

        // The registry takes the subscription on the poller; the poller is
        // not a source (a webhook to its id is a 404).
        let secrets = std::sync::Arc::new(LocalSecrets::new(EnvSecrets::new(), store.clone()));
        let registry = crate::local::LocalRegistry::load(store.clone(), secrets)
            .await
            .unwrap();
        assert!(registry.source("items").await.unwrap().is_none());
        let subs = registry.subscriptions_of("items").await.unwrap();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].id, "on-items");

        assert!(
            store
                .delete_config(Kind::Subscription, "on-items")
                .await
                .unwrap()
        );
        assert!(store.delete_config(Kind::Poller, "items").await.unwrap());
        assert!(!store.delete_config(Kind::Poller, "items").await.unwrap());
    }

    #[tokio::test]
    async fn config_entries_round_trip_and_bump_the_version() {
        let (_dir, store) = open();
        let file = ConfigFile::parse(
            r#"
            [[sources]]
            id = "gh"
            provider = "github"
            secrets = ["db:gh-secret"]
            dedupe_window = "2d"
            [[subscriptions]]
            id = "deploys"
            source = "gh"
            events = ["push"]
            url = "https://example.com/x"
            "#,
        )
        .unwrap();
        let v0 = store.config_version().await.unwrap();
        let src = ConfigItem::Source(file.sources[0].clone());
        let sub = ConfigItem::Subscription(file.subscriptions[0].clone());
        assert!(store.create_config(&src, Origin::File).await.unwrap());
        assert!(!store.create_config(&src, Origin::Api).await.unwrap());
        store.upsert_config(&sub, Origin::Api).await.unwrap();
        assert!(store.config_version().await.unwrap() > v0);
        let all = store.list_config().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].item, src, "sources first, same JSON back");
        assert_eq!((all[1].origin, all[1].enabled), (Origin::Api, true));

        // Upserting an existing entry replaces it (keeping its creation time)
        // and bumps the version, also once the version row exists.
        let v1 = store.config_version().await.unwrap();
        let mut changed = file.subscriptions[0].clone();
        changed.events.push("issues".into());
        let changed = ConfigItem::Subscription(changed);
        store.upsert_config(&changed, Origin::File).await.unwrap();
        store.upsert_config(&changed, Origin::File).await.unwrap();
        assert!(store.config_version().await.unwrap() >= v1 + 2);
        let now = store
            .get_config(Kind::Subscription, "deploys")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&now.item, now.origin), (&changed, Origin::File));
        assert_eq!(now.created_at_ms, all[1].created_at_ms);

        // A registry over it resolves db: secrets from the same database.
        store
            .put_secret("gh-secret", &Secret::new("s3cret"))
            .await
            .unwrap();
        let secrets = std::sync::Arc::new(LocalSecrets::new(EnvSecrets::new(), store.clone()));
        let registry = crate::local::LocalRegistry::load(store.clone(), secrets)
            .await
            .unwrap();
        assert!(registry.source("gh").await.unwrap().is_some());

        // Disabling persists, shows at once, and a disabled source is not served.
        registry.disable_subscription("deploys").await.unwrap();
        assert!(
            !registry
                .subscription("deploys")
                .await
                .unwrap()
                .unwrap()
                .is_enabled()
        );
        assert!(
            !store
                .get_config(Kind::Subscription, "deploys")
                .await
                .unwrap()
                .unwrap()
                .enabled
        );
        assert!(store.set_enabled(Kind::Source, "gh", false).await.unwrap());
        assert!(registry.reload_if_changed().await.unwrap());
        assert!(registry.source("gh").await.unwrap().is_none());
        assert!(!registry.reload_if_changed().await.unwrap(), "nothing new");
        assert!(
            !registry
                .subscription("deploys")
                .await
                .unwrap()
                .unwrap()
                .is_enabled()
        );

        assert!(
            store
                .delete_config(Kind::Subscription, "deploys")
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_config(Kind::Subscription, "deploys")
                .await
                .unwrap()
        );
        store
            .delete_secret(&SecretRef::Db("gh-secret".into()))
            .await
            .unwrap();
        let err = LocalSecrets::new(EnvSecrets::new(), store.clone())
            .resolve(&SecretRef::Db("gh-secret".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, SecretError::NotFound(_)));
    }

    #[tokio::test]
    async fn legacy_disabled_subscriptions_are_imported_once() {
        let (_dir, store) = open();
        store
            .set_subscription_disabled("deploys", true)
            .await
            .unwrap();
        let sub = ConfigItem::Subscription(crate::config::SubscriptionConfig {
            id: "deploys".into(),
            source: "gh".into(),
            events: vec!["*".into()],
            url: "https://example.com".into(),
            format: Default::default(),
            template: None,
            payload_template: None,
            filter: None,
            signing_secret: None,
            retry_schedule: None,
            allow_local: false,
            previous_signing_secret: None,
            rate_limit: None,
            max_in_flight: None,
            circuit_breaker: None,
        });
        // A subscription needs its source.
        let err = store.upsert_config(&sub, Origin::File).await.unwrap_err();
        assert!(matches!(err, WriteError::Conflict(_)), "{err}");
        let src = ConfigFile::parse(
            "[[sources]]\nid = \"gh\"\nprovider = \"github\"\nsecrets = [\"env:X\"]",
        )
        .unwrap()
        .sources
        .remove(0);
        store
            .upsert_config(&ConfigItem::Source(src), Origin::File)
            .await
            .unwrap();
        store.upsert_config(&sub, Origin::File).await.unwrap();
        assert_eq!(store.import_legacy_disabled().await.unwrap(), 1);
        assert!(
            !store
                .get_config(Kind::Subscription, "deploys")
                .await
                .unwrap()
                .unwrap()
                .enabled
        );
        assert!(store.disabled_subscriptions().await.unwrap().is_empty());
        store
            .set_enabled(Kind::Subscription, "deploys", true)
            .await
            .unwrap();
        assert_eq!(store.import_legacy_disabled().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_replay_is_a_new_delivery_that_settles_the_dead_letter() {
        let (_dir, store) = open();
        settled(&store, "e1", &[("a", 503), ("b", 200)]).await;
        let key = EventKey::new("gh", "e1");
        let rec = store.get_event(&key).await.unwrap().unwrap();
        assert_eq!(rec.status, EventStatus::Failed);
        assert_eq!(rec.attempts.len(), 2);
        assert_eq!(store.dead_letters().await.unwrap().len(), 1);

        let replay = store
            .create_replay(
                &key,
                &["a".to_owned(), "a".to_owned()],
                now_ms() / 1000 + 60,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(replay, EventKey::new("gh", "e1#replay-1"));
        assert!(
            store.dead_letters().await.unwrap().is_empty(),
            "settled by the replay"
        );
        let r = store.get_event(&replay).await.unwrap().unwrap();
        assert_eq!(r.replay_of, Some(key.clone()));
        assert_eq!(r.routed, Some(vec!["a".to_owned()]));
        assert_eq!(r.status, EventStatus::Pending);
        assert!(r.attempts.is_empty(), "its own attempt log");
        assert_eq!(r.event.body, rec.event.body);
        let queued = store.receive(10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].task.event_id, "e1#replay-1");
        assert_eq!(
            store.get_event(&key).await.unwrap().unwrap().replays,
            vec![replay.clone()]
        );

        // A replay of the replay links to the original and counts on.
        let again = store
            .create_replay(&replay, &["b".to_owned()], 0)
            .await
            .unwrap();
        assert_eq!(again, Some(EventKey::new("gh", "e1#replay-2")));
        assert_eq!(
            store
                .create_replay(&EventKey::new("gh", "none"), &[], 0)
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn bulk_candidates_leave_out_what_was_replayed_since() {
        let (_dir, store) = open();
        settled(&store, "e1", &[("a", 503), ("b", 503)]).await;
        settled(&store, "e2", &[("a", 200)]).await;
        let q = ReplayQuery {
            source: Some("gh".into()),
            subscription: None,
            status: DeliveryStatus::Failed,
            since_ms: Some(now_ms() - 60_000),
            until_ms: None,
            limit: 10,
        };
        let found = store.replay_candidates(&q).await.unwrap();
        assert_eq!(
            found
                .iter()
                .map(|c| (c.event.id.as_str(), c.subscription.as_str()))
                .collect::<Vec<_>>(),
            [("e1", "a"), ("e1", "b")]
        );
        store
            .create_replay(
                &EventKey::new("gh", "e1"),
                &["a".to_owned()],
                now_ms() / 1000 + 60,
            )
            .await
            .unwrap();
        let found = store.replay_candidates(&q).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subscription, "b");
        let delivered = store
            .replay_candidates(&ReplayQuery {
                status: DeliveryStatus::Delivered,
                ..q.clone()
            })
            .await
            .unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(
            store
                .replay_candidates(&ReplayQuery {
                    since_ms: Some(now_ms() + 60_000),
                    ..q
                })
                .await
                .unwrap(),
            []
        );
    }

    #[tokio::test]
    async fn events_list_newest_first_with_filters_and_cursors() {
        let (_dir, store) = open();
        settled(&store, "e1", &[("a", 503)]).await;
        settled(&store, "e2", &[("a", 200)]).await;
        store
            .commit(&event("e3", "pull_request.opened"))
            .await
            .unwrap();
        settled(&store, "e4", &[]).await;
        let all = |status, event_type: Option<&str>| EventQuery {
            status,
            event_type: event_type.map(str::to_owned),
            limit: 10,
            ..Default::default()
        };
        let ids = |page: &EventPage| {
            page.events
                .iter()
                .map(|e| e.key.id.clone())
                .collect::<Vec<_>>()
        };
        let page = store.list_events(&all(None, None)).await.unwrap();
        assert_eq!(ids(&page), ["e4", "e3", "e2", "e1"]);
        assert_eq!(
            page.events.iter().map(|e| e.status).collect::<Vec<_>>(),
            [
                EventStatus::Unrouted,
                EventStatus::Pending,
                EventStatus::Delivered,
                EventStatus::Failed
            ]
        );
        assert_eq!(page.events[3].counts.failed, 1);
        assert_eq!(
            page.events[3].destinations,
            [DestinationSummary {
                subscription: "a".into(),
                status: DeliveryStatus::Failed,
                attempts: 1,
            }]
        );
        assert_eq!(
            page.events[2].destinations[0].status,
            DeliveryStatus::Delivered
        );
        assert_eq!(page.events[1].destinations, [], "not routed yet");
        assert_eq!(page.events[0].destinations, [], "routed nowhere");
        assert!(page.next_cursor.is_none());
        for status in EventStatus::ALL {
            let page = store.list_events(&all(Some(status), None)).await.unwrap();
            assert_eq!(page.events.len(), 1, "{status:?}");
            assert_eq!(page.events[0].status, status);
        }
        let page = store
            .list_events(&all(None, Some("pull_request.*")))
            .await
            .unwrap();
        assert_eq!(ids(&page), ["e3"]);

        let mut q = EventQuery {
            limit: 3,
            ..Default::default()
        };
        let first = store.list_events(&q).await.unwrap();
        assert_eq!(ids(&first), ["e4", "e3", "e2"]);
        q.cursor = first.next_cursor;
        let second = store.list_events(&q).await.unwrap();
        assert_eq!(ids(&second), ["e1"]);
        q.cursor = Some("garbage".into());
        assert!(matches!(
            store.list_events(&q).await,
            Err(LogError::BadCursor)
        ));
    }

    #[tokio::test]
    async fn dead_letters_page_and_old_ones_are_purged() {
        let (_dir, store) = open();
        settled(&store, "e1", &[("a", 503), ("b", 503)]).await;
        let q = DeadLetterQuery {
            limit: 1,
            ..Default::default()
        };
        let first = store.list_dead_letters(&q).await.unwrap();
        assert_eq!(first.dead_letters.len(), 1);
        let second = store
            .list_dead_letters(&DeadLetterQuery {
                cursor: first.next_cursor.clone(),
                ..q.clone()
            })
            .await
            .unwrap();
        assert_eq!(second.dead_letters.len(), 1);
        assert_ne!(first.dead_letters[0].id, second.dead_letters[0].id);
        let only = store
            .list_dead_letters(&DeadLetterQuery {
                ids: vec![second.dead_letters[0].id.clone()],
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(only.dead_letters, second.dead_letters);
        assert_eq!(store.purge_admin(now_ms()).await.unwrap(), 0);
        assert_eq!(
            store
                .purge_admin(now_ms() + DEAD_LETTER_RETENTION_MS + 1000)
                .await
                .unwrap(),
            2
        );
    }
}
