//! `SqliteStore`: the event store and the delivery queue over one SQLite file.
//!
//! Writes go to the single writer thread (group commit, see `writer.rs`).
//! Reads use read connections; WAL lets them proceed while the writer
//! commits. Point lookups (load, delivery status, ...) go to the reader
//! threads (`readers.rs`); scans run on the blocking pool. Neither runs on
//! an async worker, so a slow disk cannot stall the server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::types::{Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::{Notify, Semaphore};

use super::readers::Readers;
use super::writer::{DbResult, Wake, Writer};
use crate::error::Unavailable;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey, ReceivedTask};
use crate::queue::{DeliveryQueue, Parked};
use crate::store::{Claim, Commit, DeliveryState, EventStore, Lease};
use crate::time::now_ms;

const SCHEMA: &str = include_str!("schema.sql");
/// `PRAGMA user_version` of the schema above (see `migrate`).
const SCHEMA_VERSION: i64 = 4;
/// Scans on the blocking pool at once.
const READERS: usize = 4;
/// Read connections kept open for scans. Each has its own page cache
/// (1 MiB cap).
const MAX_IDLE_READERS: usize = READERS;
/// Reader threads for point lookups, each with its own connection: one per
/// core of a small machine; a lookup is an index probe or two.
const LOOKUP_THREADS: usize = 2;
/// Expired events deleted per write command, so a large purge never holds
/// up the commits queued behind it for long.
const PURGE_CHUNK: usize = 256;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One delivery (event × subscription), for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub subscription: String,
    pub status: DeliveryStatus,
    /// Attempts logged for this delivery, including any after it became final.
    pub attempts: u32,
    pub next_attempt_at_ms: Option<i64>,
}

/// A committed event waiting to be routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its row, which cannot be purged while it is in the outbox.
    pub seq: i64,
    pub key: EventKey,
    pub event_type: String,
}

/// What [`SqliteStore::dispatch`] did.
#[derive(Debug, Default)]
pub struct Dispatched {
    /// The entries it routed, with their subscriptions.
    pub routed: Vec<(OutboxEntry, Vec<String>)>,
    /// The messages it queued, claimed until `claimed_until_ms`.
    pub claimed: Vec<ReceivedTask>,
    pub claimed_until_ms: i64,
}

/// What [`SqliteStore::commit_routed`] did.
#[derive(Debug)]
pub struct RoutedCommit {
    pub commit: Commit,
    /// The messages it queued claimed, until `claimed_until_ms`.
    pub claimed: Vec<ReceivedTask>,
    pub claimed_until_ms: i64,
}

/// A message moved off the queue for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub task: DeliveryTask,
    pub reason: String,
    pub at_ms: i64,
}

/// The embedded backend's store and queue. Cheap to clone; all clones share
/// one writer thread and one reader pool. The writer stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    readers: Readers,
    path: PathBuf,
    idle_readers: Mutex<Vec<Connection>>,
    /// At most `READERS` scans at once on the blocking pool.
    read_permits: Arc<Semaphore>,
    outbox: Arc<Notify>,
    queue: Arc<Notify>,
    /// Live claims on deliveries (owner, until). In memory: one gateway
    /// process delivers from a database (`sluice serve` holds its lock),
    /// so no other process can hold one.
    leases: Mutex<HashMap<DeliveryTask, (String, i64)>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file, applies the schema and starts
    /// the writer thread. Blocking; call it at startup.
    pub fn open(path: &Path) -> Result<Self, Unavailable> {
        let fail = |e: &dyn std::fmt::Display| {
            Unavailable::new(format!("opening {}: {e}", path.display()))
        };
        create_private(path).map_err(|e| fail(&e))?;
        let conn = open_writer(path).map_err(|e| fail(&e))?;
        let checkpoint_conn = open_connection(path).map_err(|e| fail(&e))?;
        let outbox = Arc::new(Notify::new());
        let queue = Arc::new(Notify::new());
        // A permit each, so the workers' first wait returns at once and they
        // pick up what a previous run left in the outbox and the queue.
        outbox.notify_one();
        queue.notify_one();
        let open_readers = |n| {
            (0..n)
                .map(|_| open_reader(path))
                .collect::<DbResult<Vec<_>>>()
                .map_err(|e| fail(&e))
        };
        let readers = Readers::spawn(open_readers(LOOKUP_THREADS)?, path, open_reader)
            .map_err(|e| fail(&e))?;
        let idle_readers = open_readers(1)?;
        let writer = Writer::spawn(conn, checkpoint_conn, outbox.clone(), queue.clone())
            .map_err(|e| fail(&e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                readers,
                path: path.to_owned(),
                idle_readers: Mutex::new(idle_readers),
                read_permits: Arc::new(Semaphore::new(READERS)),
                outbox,
                queue,
                leases: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Makes every claimed message visible again. For the start of the
    /// one process that delivers from this database: any claim left is a
    /// dead process's, and waiting it out would only delay its tasks.
    pub async fn release_all_claims(&self) -> Result<u64, Unavailable> {
        self.write(|c, wake| {
            let n = c
                .prepare_cached("UPDATE queue SET visible_at = ?1, held = 0 WHERE held = 1")?
                .execute([now_ms()])?;
            wake.queue |= n > 0;
            Ok(n as u64)
        })
        .await
    }

    /// Ends every poll claim: at start, a claim still held is a stopped
    /// gateway's (or a CLI's that died mid-poll), and waiting it out would
    /// only delay that poller. A CLI polling right now could then poll
    /// beside the gateway once; its items are committed once all the same.
    pub async fn release_poll_claims(&self) -> Result<u64, Unavailable> {
        self.write(|c, _| {
            let n = c
                .prepare_cached(
                    "UPDATE poller_state SET lease_owner = NULL, lease_until_ms = NULL
                     WHERE lease_owner IS NOT NULL",
                )?
                .execute([])?;
            Ok(n as u64)
        })
        .await
    }

    /// Makes the parked tasks of these subscriptions (resumed after a
    /// pause) visible now.
    pub async fn wake_parked(&self, subscriptions: Vec<String>) -> Result<u64, Unavailable> {
        if subscriptions.is_empty() {
            return Ok(0);
        }
        let ids = serde_json::to_string(&subscriptions).map_err(Unavailable::new)?;
        self.write(move |c, wake| {
            let n = c
                .prepare_cached(
                    "UPDATE queue SET visible_at = ?1, held = 0
                     WHERE held = 2 AND subscription IN (SELECT value FROM json_each(?2))",
                )?
                .execute(params![now_ms(), ids])?;
            wake.queue |= n > 0;
            Ok(n as u64)
        })
        .await
    }

    /// Whether a message is parked, and how many are, for tests and status.
    pub async fn parked_count(&self) -> Result<u64, Unavailable> {
        self.read(|c| count(c, "SELECT count(*) FROM queue WHERE held = 2"))
            .await
    }

    fn take_lease(&self, task: &DeliveryTask, lease: &Lease, now: i64) -> Option<i64> {
        let mut leases = self.inner.leases.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, until)) = leases.get(task).filter(|(_, until)| *until > now) {
            return Some(*until);
        }
        // Expired claims are dropped as they are met, and here.
        if leases.len() > 4096 {
            leases.retain(|_, (_, until)| *until > now);
        }
        leases.insert(task.clone(), (lease.owner.clone(), lease.until_ms));
        None
    }

    fn end_lease(&self, task: &DeliveryTask, lease: &Lease) {
        let mut leases = self.inner.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases
            .get(task)
            .is_some_and(|(owner, _)| *owner == lease.owner)
        {
            leases.remove(task);
        }
    }

    /// Notified (one permit, `notify_one`) after a commit that added events
    /// to the outbox. Meant for one waiter: the enqueue loop, which drains
    /// `pending_outbox` until empty before waiting again.
    pub fn outbox_notifier(&self) -> Arc<Notify> {
        self.inner.outbox.clone()
    }

    /// Notified (one permit, `notify_one`) after a commit that changed the
    /// queue's schedule: new messages, or a `retry_in`. Meant for one waiter
    /// (the receive loop, which fans out to delivery tasks): it receives until
    /// nothing is visible, then sleeps until `next_visible_at` or this.
    pub fn queue_notifier(&self) -> Arc<Notify> {
        self.inner.queue.clone()
    }

    /// Write transactions committed so far, each one fsync. Compared with
    /// the number of writes it shows how well commits are grouped.
    pub fn write_batches(&self) -> u64 {
        self.inner.writer.batches()
    }

    /// Committed events not yet routed, oldest first.
    /// Only what routing needs: the body and headers stay on disk.
    pub async fn pending_outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, Unavailable> {
        let limit = to_i64(limit);
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT o.seq, e.source, e.id, e.event_type
                 FROM outbox o JOIN events e ON e.seq = o.seq ORDER BY o.seq LIMIT ?1",
            )?;
            st.query_map([limit], |r| {
                Ok(OutboxEntry {
                    seq: r.get(0)?,
                    key: EventKey {
                        source: r.get(1)?,
                        id: r.get(2)?,
                    },
                    event_type: r.get(3)?,
                })
            })?
            .collect()
        })
        .await
    }

    /// Routes a batch of outbox entries in one write: for each, the pending
    /// delivery rows and queue messages of its subscriptions, and the event
    /// marked routed. Queueing and marking are one transaction here, so the
    /// re-send window of the two-step port contract does not exist. An entry
    /// some other call already routed is skipped.
    ///
    /// The new messages are claimed at once, as if received, for `claim`:
    /// the caller hands them straight to a delivery worker, which saves a
    /// receive round trip per batch. Whatever the worker does not take in
    /// time becomes visible when the claim runs out, as any received message.
    pub async fn dispatch(
        &self,
        mut routes: Vec<(OutboxEntry, Vec<String>)>,
        claim: Duration,
    ) -> Result<Dispatched, Unavailable> {
        if routes.is_empty() {
            return Ok(Dispatched::default());
        }
        let claim = duration_ms(claim);
        self.write(move |c, _| {
            let now = now_ms();
            let claimed_until_ms = now.saturating_add(claim);
            let mut mark = c.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
            let mut claimed = Vec::new();
            let mut routed = vec![true; routes.len()];
            for ((entry, subs), routed) in routes.iter().zip(&mut routed) {
                if mark.execute([entry.seq])? == 0 {
                    *routed = false;
                    continue;
                }
                claimed.extend(queue_deliveries(
                    c,
                    entry.seq,
                    (&entry.key.source, &entry.key.id),
                    subs,
                    now,
                    Some(claimed_until_ms),
                )?);
            }
            let mut flags = routed.into_iter();
            routes.retain(|_| flags.next().unwrap_or(false));
            Ok(Dispatched {
                routed: routes,
                claimed,
                claimed_until_ms,
            })
        })
        .await
    }

    /// Commits a new event already routed to `subscriptions`, in one
    /// write: the event, its pending deliveries and their queue messages,
    /// and no outbox entry (nothing is left to route). With `claim`, the
    /// messages are claimed for that long, for the caller to hand straight
    /// to a delivery worker; without, they are visible now. A duplicate
    /// writes nothing.
    pub async fn commit_routed(
        &self,
        ev: Event,
        subscriptions: Vec<String>,
        claim: Option<Duration>,
    ) -> Result<RoutedCommit, Unavailable> {
        let headers = serde_json::to_string(&ev.headers).map_err(Unavailable::new)?;
        self.write(move |c, wake| {
            let Some(seq) = insert_event(c, &ev, &headers)? else {
                return Ok(RoutedCommit {
                    commit: duplicate(c, &ev)?,
                    claimed: Vec::new(),
                    claimed_until_ms: 0,
                });
            };
            let now = now_ms();
            let claimed_until = claim.map(|d| now.saturating_add(duration_ms(d)));
            let queued = queue_deliveries(
                c,
                seq,
                (&ev.source, &ev.id),
                &subscriptions,
                now,
                claimed_until,
            )?;
            wake.queue = claimed_until.is_none() && !queued.is_empty();
            Ok(RoutedCommit {
                commit: Commit::Accepted,
                claimed: if claimed_until.is_some() {
                    queued
                } else {
                    Vec::new()
                },
                claimed_until_ms: claimed_until.unwrap_or(now),
            })
        })
        .await
    }

    /// Makes claimed messages visible again now (a worker that will not run
    /// them gives them back). Stale handles are ignored.
    pub async fn release(&self, handles: &[String]) -> Result<(), Unavailable> {
        let parsed: Vec<(i64, u32)> = handles.iter().filter_map(|h| parse_handle(h)).collect();
        if parsed.is_empty() {
            return Ok(());
        }
        self.write(move |c, wake| {
            let mut st = c.prepare_cached(
                "UPDATE queue SET visible_at = ?3, held = 0 WHERE id = ?1 AND receive_count = ?2",
            )?;
            let now = now_ms();
            for (id, count) in &parsed {
                wake.queue |= st.execute(params![id, count, now])? > 0;
            }
            Ok(())
        })
        .await
    }

    /// Claims up to `max` visible messages (SQS ReceiveMessage): each becomes
    /// invisible for `visibility` and its receive count goes up by one. The
    /// handle is `"{row id}:{receive count}"`, so a handle goes stale once
    /// the message is received again, as an SQS receipt handle does.
    pub async fn receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedTask>, Unavailable> {
        self.receive_except(max, visibility, Vec::new()).await
    }

    /// [`receive`](Self::receive), leaving the messages of the
    /// subscriptions in `except` on the queue.
    pub async fn receive_except(
        &self,
        max: usize,
        visibility: Duration,
        except: Vec<String>,
    ) -> Result<Vec<ReceivedTask>, Unavailable> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = to_i64(max);
        let visibility = duration_ms(visibility);
        let except = if except.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&except).map_err(Unavailable::new)?)
        };
        self.write(move |c, _| {
            let now = now_ms();
            let mut st = c.prepare_cached(
                "UPDATE queue SET visible_at = ?1, receive_count = receive_count + 1, held = 1
                 WHERE id IN (SELECT id FROM queue WHERE visible_at <= ?2
                              AND (?4 IS NULL OR subscription NOT IN (SELECT value FROM json_each(?4)))
                              ORDER BY visible_at, id LIMIT ?3)
                 RETURNING id, source, event_id, subscription, receive_count",
            )?;
            let mut rows = st
                .query_map(params![now.saturating_add(visibility), now, max, except], |r| {
                    let id: i64 = r.get(0)?;
                    let receive_count: u32 = r.get(4)?;
                    Ok((
                        id,
                        ReceivedTask {
                            task: DeliveryTask {
                                source: r.get(1)?,
                                event_id: r.get(2)?,
                                subscription: r.get(3)?,
                            },
                            handle: format!("{id}:{receive_count}"),
                            message_id: id.to_string(),
                            receive_count,
                        },
                    ))
                })?
                .collect::<DbResult<Vec<_>>>()?;
            // RETURNING order is unspecified; hand messages out oldest first.
            rows.sort_unstable_by_key(|(id, _)| *id);
            Ok(rows.into_iter().map(|(_, t)| t).collect())
        })
        .await
    }

    /// Deletes received messages (SQS DeleteMessage). Stale or unknown
    /// handles are ignored: the message now belongs to a later receive.
    pub async fn ack(&self, handles: &[String]) -> Result<(), Unavailable> {
        let parsed: Vec<(i64, u32)> = handles.iter().filter_map(|h| parse_handle(h)).collect();
        if parsed.is_empty() {
            return Ok(());
        }
        self.write(move |c, _| {
            let mut st =
                c.prepare_cached("DELETE FROM queue WHERE id = ?1 AND receive_count = ?2")?;
            for (id, count) in &parsed {
                st.execute(params![id, count])?;
            }
            Ok(())
        })
        .await
    }

    /// The earliest time (unix ms) at which a message that is invisible now
    /// becomes visible; None when there is no such message. A worker can
    /// sleep exactly until then.
    pub async fn next_visible_at(&self) -> Result<Option<i64>, Unavailable> {
        self.lookup(|c| {
            c.prepare_cached(
                "SELECT visible_at FROM queue WHERE visible_at > ?1 ORDER BY visible_at LIMIT 1",
            )?
            .query_row([now_ms()], |r| r.get(0))
            .optional()
        })
        .await
    }

    /// Subscriptions disabled (after a 410), sorted.
    pub async fn disabled_subscriptions(&self) -> Result<Vec<String>, Unavailable> {
        self.read(|c| {
            c.prepare_cached("SELECT id FROM disabled_subscriptions ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .await
    }

    pub async fn set_subscription_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> Result<(), Unavailable> {
        let id = id.to_owned();
        self.write(move |c, _| {
            if disabled {
                c.prepare_cached(
                    "INSERT INTO disabled_subscriptions (id, disabled_at_ms) VALUES (?1, ?2)
                     ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![id, now_ms()])?;
            } else {
                c.prepare_cached("DELETE FROM disabled_subscriptions WHERE id = ?1")?
                    .execute([&id])?;
            }
            Ok(())
        })
        .await
    }

    /// The attempt log of an event, all subscriptions, in the order logged.
    pub async fn attempts(&self, key: &EventKey) -> Result<Vec<Attempt>, Unavailable> {
        let key = key.clone();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT e.source, e.id, a.subscription, a.attempt, a.started_at_ms, a.latency_ms,
                        a.status_code, a.error, a.response_snippet, a.next_attempt_at_ms
                 FROM events e JOIN attempts a ON a.event_seq = e.seq
                 WHERE e.source = ?1 AND e.id = ?2 ORDER BY a.seq",
            )?
            .query_map(params![key.source, key.id], |r| {
                Ok(Attempt {
                    source: r.get(0)?,
                    event_id: r.get(1)?,
                    subscription: r.get(2)?,
                    attempt: r.get(3)?,
                    started_at_ms: r.get(4)?,
                    latency_ms: r.get(5)?,
                    status_code: r.get(6)?,
                    error: r.get(7)?,
                    response_snippet: r.get(8)?,
                    next_attempt_at_ms: r.get(9)?,
                })
            })?
            .collect()
        })
        .await
    }

    /// The deliveries of an event, by subscription id.
    pub async fn deliveries(&self, key: &EventKey) -> Result<Vec<DeliveryRow>, Unavailable> {
        let key = key.clone();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT d.subscription, d.status, d.attempts, d.next_attempt_at_ms
                 FROM events e JOIN deliveries d ON d.event_seq = e.seq
                 WHERE e.source = ?1 AND e.id = ?2 ORDER BY d.subscription",
            )?
            .query_map(params![key.source, key.id], |r| {
                Ok(DeliveryRow {
                    subscription: r.get(0)?,
                    status: status_from(r, 1)?,
                    attempts: r.get(2)?,
                    next_attempt_at_ms: r.get(3)?,
                })
            })?
            .collect()
        })
        .await
    }

    /// Every dead letter, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, Unavailable> {
        self.read(|c| {
            c.prepare_cached("SELECT source, event_id, subscription, reason, at_ms FROM dead_letters ORDER BY seq")?
                .query_map([], |r| {
                    Ok(DeadLetter {
                        task: DeliveryTask { source: r.get(0)?, event_id: r.get(1)?, subscription: r.get(2)? },
                        reason: r.get(3)?,
                        at_ms: r.get(4)?,
                    })
                })?
                .collect()
        })
        .await
    }

    /// Events stored (the dedup records still inside their window).
    pub async fn event_count(&self) -> Result<u64, Unavailable> {
        self.read(|c| count(c, "SELECT count(*) FROM events")).await
    }

    /// The subscriptions an event was routed to. None: not routed yet (or
    /// unknown event); Some(empty): routed, matched nothing.
    pub async fn routed(&self, key: &EventKey) -> Result<Option<Vec<String>>, Unavailable> {
        let key = key.clone();
        self.lookup(move |c| {
            let found: Option<(i64, bool)> = c
                .prepare_cached(
                    "SELECT e.seq, EXISTS (SELECT 1 FROM outbox o WHERE o.seq = e.seq)
                     FROM events e WHERE e.source = ?1 AND e.id = ?2",
                )?
                .query_row(params![key.source, key.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((seq, false)) = found else {
                return Ok(None);
            };
            c.prepare_cached(
                "SELECT subscription FROM deliveries WHERE event_seq = ?1 ORDER BY subscription",
            )?
            .query_map([seq], |r| r.get(0))?
            .collect::<DbResult<Vec<String>>>()
            .map(Some)
        })
        .await
    }

    /// Messages on the queue, visible or not.
    pub async fn queue_depth(&self) -> Result<u64, Unavailable> {
        self.read(|c| count(c, "SELECT count(*) FROM queue")).await
    }

    /// The queue gauges of `/metrics`, in one read: the counts, and when
    /// the oldest queued task was first queued.
    pub async fn queue_stats(&self) -> Result<super::metrics::QueueStats, Unavailable> {
        let now = now_ms();
        self.read(move |c| {
            // One statement, one snapshot: a task acked between two reads
            // would show an age with no task queued.
            let (depth, oldest): (i64, Option<i64>) = c
                .prepare_cached("SELECT count(*), min(sent_at_ms) FROM queue")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(super::metrics::QueueStats {
                depth,
                oldest_age_ms: oldest.map_or(0, |at| (now - at).max(0)),
                dead_letters: count(c, "SELECT count(*) FROM dead_letters")? as i64,
            })
        })
        .await
    }

    /// Deletes events whose dedup window ended before `now_ms` and that are
    /// settled (routed, no pending delivery), with their deliveries and
    /// attempts. Dead letters are kept. Until it is purged, an event still
    /// counts as a duplicate, so the window is at least `expires_at`.
    /// Returns how many events were deleted.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<u64, Unavailable> {
        let cutoff = now_ms.div_euclid(1000); // expires_at is in seconds
        let mut total = 0u64;
        loop {
            // Chunks, each its own write command, so the writer interleaves
            // other callers' commits between them.
            let n = self
                .write(move |c, _| {
                    let seqs = c
                        .prepare_cached(
                            "DELETE FROM events WHERE seq IN (
                                SELECT e.seq FROM events e
                                WHERE e.expires_at <= ?1
                                  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.seq = e.seq)
                                  AND NOT EXISTS (SELECT 1 FROM deliveries d
                                                  WHERE d.event_seq = e.seq AND d.status = 'pending')
                                LIMIT ?2)
                             RETURNING seq",
                        )?
                        .query_map(params![cutoff, to_i64(PURGE_CHUNK)], |r| r.get::<_, i64>(0))?
                        .collect::<DbResult<Vec<_>>>()?;
                    let mut del_deliveries = c.prepare_cached("DELETE FROM deliveries WHERE event_seq = ?1")?;
                    let mut del_attempts = c.prepare_cached("DELETE FROM attempts WHERE event_seq = ?1")?;
                    for seq in &seqs {
                        del_deliveries.execute([seq])?;
                        del_attempts.execute([seq])?;
                    }
                    Ok(seqs.len())
                })
                .await?;
            total += n as u64;
            if n < PURGE_CHUNK {
                return Ok(total);
            }
        }
    }

    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, Unavailable>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Wake) -> DbResult<T> + Send + 'static,
    {
        self.inner.writer.call(f).await
    }

    /// A point lookup (an index probe or two), on a reader thread. WAL
    /// readers never wait for the writer.
    pub(super) async fn lookup<T, F>(&self, f: F) -> Result<T, Unavailable>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        self.inner.readers.call(f).await
    }

    /// A read that may scan (lists, counts, the outbox), on the blocking pool.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, Unavailable>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let permit = self
            .inner
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Unavailable::new("store readers closed"))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.with_reader(f)
        })
        .await
        .map_err(|e| Unavailable::new(format!("store read failed: {e}")))?
    }
}

impl Inner {
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> DbResult<T>) -> Result<T, Unavailable> {
        // A poisoned lock only means another reader panicked; the Vec is fine.
        let pooled = self
            .idle_readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path)
                .map_err(|e| Unavailable::new(format!("opening reader: {e}")))?,
        };
        let out = f(&conn);
        // A connection that just failed is dropped rather than reused; a
        // fresh one is cheap and this one may be broken.
        if out.is_ok() {
            let mut idle = self.idle_readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        out.map_err(Unavailable::new)
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn commit(&self, event: &Event) -> Result<Commit, Unavailable> {
        let headers = serde_json::to_string(&event.headers).map_err(Unavailable::new)?;
        let ev = event.clone(); // the body is `Bytes`: a refcount, not a copy
        self.write(move |c, wake| {
            let Some(seq) = insert_event(c, &ev, &headers)? else {
                return duplicate(c, &ev);
            };
            c.prepare_cached("INSERT INTO outbox (seq) VALUES (?1)")?
                .execute([seq])?;
            wake.outbox = true;
            Ok(Commit::Accepted)
        })
        .await
    }

    async fn load(&self, key: &EventKey) -> Result<Option<Event>, Unavailable> {
        let key = key.clone();
        self.lookup(move |c| {
            c.prepare_cached(LOAD_EVENT)?
                .query_row(params![key.source, key.id], event_from_row)
                .optional()
        })
        .await
    }

    async fn mark_routed(
        &self,
        key: &EventKey,
        subscriptions: &[String],
    ) -> Result<(), Unavailable> {
        let key = key.clone();
        let subs = subscriptions.to_vec();
        self.write(move |c, _| {
            let seq: Option<i64> = c
                .prepare_cached("SELECT seq FROM events WHERE source = ?1 AND id = ?2")?
                .query_row(params![key.source, key.id], |r| r.get(0))
                .optional()?;
            let Some(seq) = seq else {
                // Purged or never committed: deliveries would point at nothing.
                tracing::warn!(event = %key, "mark_routed: no such event");
                return Ok(());
            };
            // A re-run adds to the deliveries rows; those are the routing.
            c.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
                .execute([seq])?;
            let now = now_ms();
            let mut ins = c.prepare_cached(
                "INSERT INTO deliveries (event_seq, subscription, updated_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?;
            for s in &subs {
                ins.execute(params![seq, s, now])?;
            }
            Ok(())
        })
        .await
    }

    async fn delivery_status(
        &self,
        task: &DeliveryTask,
    ) -> Result<Option<DeliveryStatus>, Unavailable> {
        let task = task.clone();
        self.lookup(move |c| {
            c.prepare_cached(
                "SELECT d.status FROM events e JOIN deliveries d ON d.event_seq = e.seq AND d.subscription = ?3
                 WHERE e.source = ?1 AND e.id = ?2",
            )?
            .query_row(params![task.source, task.event_id, task.subscription], |r| status_from(r, 0))
            .optional()
        })
        .await
    }

    /// One read (the event joined with this delivery's row), then the
    /// lease, in memory. On one machine only this process delivers, and
    /// the queue holds one message per task, so the state never names
    /// another message as the one carrying the schedule.
    async fn claim(&self, msg: &ReceivedTask, lease: Duration) -> Result<Claim, Unavailable> {
        let task = &msg.task;
        let probe = task.clone();
        let found = self
            .lookup(move |c| {
                c.prepare_cached(LOAD_FOR_DELIVERY)?
                    .query_row(
                        params![probe.source, probe.event_id, probe.subscription],
                        |r| {
                            let status = match r.get_ref(9)? {
                                ValueRef::Null => None,
                                _ => Some(status_from(r, 9)?),
                            };
                            let state = DeliveryState {
                                status,
                                attempts: r.get::<_, Option<u32>>(10)?.unwrap_or(0),
                                next_attempt_at_ms: r.get(11)?,
                                ..DeliveryState::default()
                            };
                            // A finished delivery never reads the body.
                            let event = match status {
                                Some(s) if s.is_final() => None,
                                _ => Some(event_from_row(r)?),
                            };
                            Ok((state, event))
                        },
                    )
                    .optional()
            })
            .await?;
        let now = now_ms();
        let (state, event) = found.unwrap_or_default();
        if let Some(refused) = state.refusal(&msg.message_id, now) {
            return Ok(refused);
        }
        let lease = Lease::new(msg, now, lease);
        if let Some(until) = self.take_lease(task, &lease, now) {
            return Ok(Claim::Leased {
                wait: Duration::from_millis(u64::try_from(until - now).unwrap_or(0)),
            });
        }
        Ok(Claim::Held {
            lease,
            attempt: state.attempts.saturating_add(1),
            event,
        })
    }

    async fn release(&self, task: &DeliveryTask, lease: &Lease) -> Result<(), Unavailable> {
        self.end_lease(task, lease);
        Ok(())
    }

    async fn settle(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
        lease: &Lease,
    ) -> Result<bool, Unavailable> {
        let recorded = self.record_attempt(attempt, status).await;
        let task = attempt.task();
        self.end_lease(&task, lease);
        recorded
    }

    /// The attempt is always logged (it happened, even if a concurrent
    /// delivery already settled the row); only the status change is
    /// conditional. A missing delivery row is created. For an event that is
    /// not (or no longer) stored nothing is recorded and the answer is false.
    async fn record_attempt(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
    ) -> Result<bool, Unavailable> {
        let a = attempt.clone();
        self.write(move |c, _| {
            let seq: Option<i64> = c
                .prepare_cached("SELECT seq FROM events WHERE source = ?1 AND id = ?2")?
                .query_row(params![a.source, a.event_id], |r| r.get(0))
                .optional()?;
            let Some(seq) = seq else {
                // Purged (or never committed): nothing left to attach it to.
                tracing::warn!(event = %EventKey::new(&a.source, &a.event_id), "record_attempt: no such event");
                return Ok(false);
            };
            c.prepare_cached(
                "INSERT INTO attempts (event_seq, subscription, attempt, started_at_ms, latency_ms,
                                       status_code, error, response_snippet, next_attempt_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                seq,
                a.subscription,
                a.attempt,
                a.started_at_ms,
                a.latency_ms,
                a.status_code,
                a.error,
                a.response_snippet,
                a.next_attempt_at_ms,
            ])?;
            // Single writer, same transaction: nothing can change the row
            // between this read and the write below.
            let current = c
                .prepare_cached("SELECT status FROM deliveries WHERE event_seq = ?1 AND subscription = ?2")?
                .query_row(params![seq, a.subscription], |r| status_from(r, 0))
                .optional()?;
            let now = now_ms();
            let next = if status.is_final() { None } else { a.next_attempt_at_ms };
            match current {
                None => {
                    c.prepare_cached(
                        "INSERT INTO deliveries (event_seq, subscription, status, attempts,
                                                 next_attempt_at_ms, updated_at_ms)
                         VALUES (?1, ?2, ?3, 1, ?4, ?5)",
                    )?
                    .execute(params![seq, a.subscription, status.as_str(), next, now])?;
                    Ok(true)
                }
                Some(s) if s.is_final() => {
                    c.prepare_cached(
                        "UPDATE deliveries SET attempts = attempts + 1, updated_at_ms = ?3
                         WHERE event_seq = ?1 AND subscription = ?2",
                    )?
                    .execute(params![seq, a.subscription, now])?;
                    Ok(false)
                }
                Some(_) => {
                    c.prepare_cached(
                        "UPDATE deliveries SET attempts = attempts + 1, status = ?3, next_attempt_at_ms = ?4,
                                               updated_at_ms = ?5
                         WHERE event_seq = ?1 AND subscription = ?2",
                    )?
                    .execute(params![seq, a.subscription, status.as_str(), next, now])?;
                    Ok(true)
                }
            }
        })
        .await
    }
}

#[async_trait]
impl DeliveryQueue for SqliteStore {
    /// All or nothing: the tasks go in one command, so a failure is an Err
    /// for the whole call (never a partial list). Re-sending is safe: a task
    /// already on the queue is not queued twice.
    async fn send(&self, tasks: &[DeliveryTask]) -> Result<Vec<usize>, Unavailable> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let tasks = tasks.to_vec();
        self.write(move |c, wake| {
            let now = now_ms();
            let mut st = c.prepare_cached(
                "INSERT INTO queue (source, event_id, subscription, visible_at, sent_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (source, event_id, subscription) DO NOTHING",
            )?;
            for t in &tasks {
                if st.execute(params![t.source, t.event_id, t.subscription, now])? > 0 {
                    wake.queue = true;
                }
            }
            Ok(Vec::new())
        })
        .await
    }

    /// A stale handle (the message was received again since) is a no-op.
    async fn retry_in(&self, msg: &ReceivedTask, delay: Duration) -> Result<(), Unavailable> {
        let Some((id, count)) = parse_handle(&msg.handle) else {
            return Ok(());
        };
        let delay = duration_ms(delay);
        self.write(move |c, wake| {
            let n = c
                .prepare_cached(
                    "UPDATE queue SET visible_at = ?3, held = 0 WHERE id = ?1 AND receive_count = ?2",
                )?
                .execute(params![id, count, now_ms().saturating_add(delay)])?;
            // The receive loop may be sleeping until a later time.
            wake.queue |= n > 0;
            Ok(())
        })
        .await
    }

    /// The message waits, marked parked, until its subscription is resumed
    /// (`wake_parked`, on every config reload) or `recheck` passes. The
    /// receive count it gains is not an attempt: attempts are counted in
    /// the deliveries table, and there is no receive limit here.
    async fn park(&self, msg: &ReceivedTask, recheck: Duration) -> Result<Parked, Unavailable> {
        let Some((id, count)) = parse_handle(&msg.handle) else {
            return Ok(Parked::Kept);
        };
        let recheck = duration_ms(recheck);
        self.write(move |c, _| {
            c.prepare_cached(
                "UPDATE queue SET visible_at = ?3, held = 2 WHERE id = ?1 AND receive_count = ?2",
            )?
            .execute(params![id, count, now_ms().saturating_add(recheck)])?;
            Ok(())
        })
        .await?;
        Ok(Parked::Kept)
    }

    /// Moves the message (with its reason and time) to `dead_letters` and
    /// off the queue, in one transaction. A stale handle is a no-op.
    async fn dead_letter(&self, msg: &ReceivedTask, reason: &str) -> Result<(), Unavailable> {
        let Some((id, count)) = parse_handle(&msg.handle) else {
            return Ok(());
        };
        let reason = reason.to_owned();
        self.write(move |c, _| {
            let n = c
                .prepare_cached(
                    "INSERT INTO dead_letters (source, event_id, subscription, receive_count, reason, at_ms)
                     SELECT source, event_id, subscription, receive_count, ?3, ?4
                     FROM queue WHERE id = ?1 AND receive_count = ?2",
                )?
                .execute(params![id, count, reason, now_ms()])?;
            if n > 0 {
                c.prepare_cached("DELETE FROM queue WHERE id = ?1 AND receive_count = ?2")?
                    .execute(params![id, count])?;
            }
            Ok(())
        })
        .await
    }
}

/// Inserts the event unless its key exists; its row's seq when it did.
fn insert_event(c: &Connection, ev: &Event, headers: &str) -> DbResult<Option<i64>> {
    let inserted = c
        .prepare_cached(
            "INSERT INTO events (source, id, event_type, received_at_ms, expires_at,
                                 body_hash, content_type, headers, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (source, id) DO NOTHING",
        )?
        .execute(params![
            ev.source,
            ev.id,
            ev.event_type,
            ev.received_at_ms,
            ev.expires_at,
            ev.body_hash,
            ev.content_type,
            headers,
            &ev.body[..],
        ])?;
    Ok((inserted == 1).then(|| c.last_insert_rowid()))
}

/// The answer for a key that exists. Same transaction, single writer: the
/// row that won is visible here.
fn duplicate(c: &Connection, ev: &Event) -> DbResult<Commit> {
    let body_hash = c
        .prepare_cached("SELECT body_hash FROM events WHERE source = ?1 AND id = ?2")?
        .query_row(params![ev.source, ev.id], |r| r.get(0))
        .optional()?;
    Ok(Commit::Duplicate { body_hash })
}

/// The pending delivery row and the queue message of each subscription of
/// a routed event, inside the caller's transaction. The messages are
/// visible now or, with `claimed_until`, claimed until then, as if received
/// once. Returns the messages it queued (a message that exists already is
/// left alone).
fn queue_deliveries(
    c: &Connection,
    seq: i64,
    (source, event_id): (&str, &str),
    subscriptions: &[String],
    now: i64,
    claimed_until: Option<i64>,
) -> DbResult<Vec<ReceivedTask>> {
    let mut delivery = c.prepare_cached(
        "INSERT INTO deliveries (event_seq, subscription, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?;
    let visible_at = claimed_until.unwrap_or(now);
    let receive_count = u32::from(claimed_until.is_some());
    let mut queue = c.prepare_cached(
        "INSERT INTO queue (source, event_id, subscription, visible_at, receive_count, sent_at_ms, held)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)
         ON CONFLICT (source, event_id, subscription) DO NOTHING
         RETURNING id",
    )?;
    let mut queued = Vec::with_capacity(subscriptions.len());
    for s in subscriptions {
        delivery.execute(params![seq, s, now])?;
        let id: Option<i64> = queue
            .query_row(
                params![source, event_id, s, visible_at, receive_count, now],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            queued.push(ReceivedTask {
                task: DeliveryTask {
                    source: source.to_owned(),
                    event_id: event_id.to_owned(),
                    subscription: s.clone(),
                },
                handle: format!("{id}:{receive_count}"),
                message_id: id.to_string(),
                receive_count,
            });
        }
    }
    Ok(queued)
}

// The column order `event_from_row` reads.
const LOAD_EVENT: &str = "SELECT source, id, event_type, received_at_ms, expires_at, body_hash,
                                 content_type, headers, body
                          FROM events WHERE source = ?1 AND id = ?2";

// LOAD_EVENT's columns, then the delivery's status (NULL: no row yet),
// attempts so far and next attempt.
const LOAD_FOR_DELIVERY: &str = "SELECT e.source, e.id, e.event_type, e.received_at_ms, e.expires_at,
                                        e.body_hash, e.content_type, e.headers, e.body, d.status,
                                        d.attempts, d.next_attempt_at_ms
                                 FROM events e
                                 LEFT JOIN deliveries d ON d.event_seq = e.seq AND d.subscription = ?3
                                 WHERE e.source = ?1 AND e.id = ?2";

fn event_from_row(r: &Row<'_>) -> DbResult<Event> {
    let headers: String = r.get(7)?;
    Ok(Event {
        source: r.get(0)?,
        id: r.get(1)?,
        event_type: r.get(2)?,
        received_at_ms: r.get(3)?,
        expires_at: r.get(4)?,
        body_hash: r.get(5)?,
        content_type: r.get(6)?,
        headers: parse_json(&headers, 7)?,
        body: Bytes::from(r.get::<_, Vec<u8>>(8)?),
    })
}

fn status_from(r: &Row<'_>, idx: usize) -> DbResult<DeliveryStatus> {
    let s: String = r.get(idx)?;
    DeliveryStatus::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Text,
            format!("bad status {s:?}").into(),
        )
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str, idx: usize) -> DbResult<T> {
    serde_json::from_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, e.into()))
}

/// `"{row id}:{receive count}"`.
fn parse_handle(handle: &str) -> Option<(i64, u32)> {
    let parsed = handle
        .split_once(':')
        .and_then(|(id, count)| Some((id.parse().ok()?, count.parse().ok()?)));
    if parsed.is_none() {
        tracing::warn!(handle, "ignoring malformed queue handle");
    }
    parsed
}

fn count(c: &Connection, sql: &str) -> DbResult<u64> {
    let n: i64 = c.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Creates the database file, if it does not exist yet, readable and
/// writable by its owner only (0600): it holds the `db:` secrets. SQLite
/// gives the `-wal` and `-shm` files the main file's mode. An existing
/// file keeps its mode; one open to others is reported.
fn create_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "the database holds secrets but others may read it (chmod 600)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn open_connection(path: &Path) -> DbResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Query planner stability: without it the bundled build (STAT4) marks
    // statements to be re-prepared when a bound value changes, and the hot
    // lookups were re-parsed on every call.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

fn open_writer(path: &Path) -> DbResult<Connection> {
    let mut conn = open_connection(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::FromSqlConversionFailure(
            0,
            Type::Text,
            format!("could not switch to WAL (journal_mode is {mode})").into(),
        ));
    }
    // Checkpoints run on their own thread (see writer.rs), not in commits.
    // FULL: a commit is on disk (the WAL fsynced) before anyone is told.
    // The group commit makes that one fsync per batch, not per request.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    migrate(&mut conn)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Applies the schema (idempotent) and upgrades an older file, in one
/// transaction. IMMEDIATE: another process (a running gateway) may be
/// writing; taking the write lock up front waits for it (busy timeout),
/// where upgrading a read transaction would fail at once.
fn migrate(conn: &mut Connection) -> DbResult<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    // Version 3 tells claimed and parked messages from waiting ones: a
    // queue table from before gets the column (a file without one gets
    // the whole table from the schema).
    let columns: i64 =
        tx.query_row("SELECT count(*) FROM pragma_table_info('queue')", [], |r| {
            r.get(0)
        })?;
    let held: i64 = tx.query_row(
        "SELECT count(*) FROM pragma_table_info('queue') WHERE name = 'held'",
        [],
        |r| r.get(0),
    )?;
    if columns > 0 && held == 0 {
        tx.execute_batch("ALTER TABLE queue ADD COLUMN held INTEGER NOT NULL DEFAULT 0")?;
    }
    // Version 4 adds the `poller` kind to the config table's CHECK, which
    // SQLite cannot alter: an older table is set aside (its triggers
    // dropped), made again by the schema, and its rows copied over.
    let old_config: Option<String> = tx
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'config'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let rebuild_config = old_config.is_some_and(|sql| !sql.contains("'poller'"));
    if rebuild_config {
        tx.execute_batch(
            "DROP TRIGGER IF EXISTS config_inserted;
             DROP TRIGGER IF EXISTS config_updated;
             DROP TRIGGER IF EXISTS config_deleted;
             ALTER TABLE config RENAME TO config_before_pollers;",
        )?;
    }
    tx.execute_batch(SCHEMA)?;
    if rebuild_config {
        tx.execute_batch(
            "INSERT INTO config (kind, id, origin, enabled, config, created_at_ms, updated_at_ms)
             SELECT kind, id, origin, enabled, config, created_at_ms, updated_at_ms
             FROM config_before_pollers;
             DROP TABLE config_before_pollers;",
        )?;
    }
    if version == 1 {
        // Version 1 kept the outbox as a flag (and the routing as JSON) on
        // the event row; those columns stay, unused.
        tx.execute_batch(
            "INSERT OR IGNORE INTO outbox (seq) SELECT seq FROM events WHERE outbox = 1;
             DROP INDEX IF EXISTS events_outbox;",
        )?;
    }
    if version != SCHEMA_VERSION {
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    tx.commit()
}

fn open_reader(path: &Path) -> DbResult<Connection> {
    let conn = open_connection(path)?;
    // Readers never write; a small page cache each keeps RSS down.
    conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -1024;")?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

#[cfg(test)]
mod lookup_tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A slow point read must not stall the other tasks of its worker: on
    /// a runtime with ONE worker thread, a ticker keeps ticking while a
    /// lookup blocks for 300 ms.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_slow_lookup_does_not_stall_the_worker() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let during = ticks.clone();
        let ticked = store
            .lookup(move |_| {
                let before = during.load(Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(300));
                Ok(during.load(Ordering::Relaxed) - before)
            })
            .await
            .unwrap();
        ticker.abort();
        assert!(ticked >= 5, "the ticker ran {ticked} times during the read");
    }

    /// A lookup that fails or panics answers `Unavailable` to its caller
    /// alone; the reader threads go on serving the next ones.
    #[tokio::test]
    async fn a_failed_or_panicking_lookup_leaves_the_readers_serving() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        for _ in 0..LOOKUP_THREADS * 2 {
            let err = store
                .lookup(|c| c.query_row("SELECT * FROM no_such_table", [], |r| r.get::<_, i64>(0)))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("no_such_table"), "{err}");
            let err = store
                .lookup(|_| -> DbResult<i64> { panic!("boom") })
                .await
                .unwrap_err();
            assert!(err.to_string().contains("panicked"), "{err}");
        }
        let n = store
            .lookup(|c| c.query_row("SELECT 41 + 1", [], |r| r.get::<_, i64>(0)))
            .await
            .unwrap();
        assert_eq!(n, 42);
    }
}
