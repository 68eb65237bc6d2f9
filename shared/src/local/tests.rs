//! Tests of the SQLite store and queue, on real files in temp dirs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;
use tokio::sync::Barrier;

use super::{OutboxEntry, SqliteStore};
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey, Headers, ReceivedTask};
use crate::queue::DeliveryQueue;
use crate::store::{Claim, Commit, EventStore};
use crate::time::now_ms;

fn open() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("sluice.db")).expect("open");
    (dir, store)
}

fn reopen(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("sluice.db")).expect("reopen")
}

fn event(source: &str, id: &str, body: &str) -> Event {
    Event {
        source: source.to_owned(),
        id: id.to_owned(),
        event_type: "push".to_owned(),
        received_at_ms: now_ms(),
        expires_at: now_ms() / 1000 + 7 * 24 * 3600,
        body: Bytes::from(body.to_owned()),
        body_hash: format!("hash-of-{body}"),
        content_type: Some("application/json".to_owned()),
        headers: Headers::from_pairs(&[("x-github-event", "push"), ("x-a", "1")]),
    }
}

fn task(id: &str, sub: &str) -> DeliveryTask {
    DeliveryTask {
        source: "gh".to_owned(),
        event_id: id.to_owned(),
        subscription: sub.to_owned(),
    }
}

fn attempt(id: &str, sub: &str, n: u32, code: Option<u16>) -> Attempt {
    Attempt {
        source: "gh".to_owned(),
        event_id: id.to_owned(),
        subscription: sub.to_owned(),
        attempt: n,
        started_at_ms: now_ms(),
        latency_ms: 12,
        status_code: code,
        error: code.is_none().then(|| "connection refused".to_owned()),
        response_snippet: Some("ok".to_owned()),
        next_attempt_at_ms: Some(now_ms() + 5000),
    }
}

fn key(id: &str) -> EventKey {
    EventKey::new("gh", id)
}

#[tokio::test]
async fn commit_then_duplicate_reports_stored_hash() {
    let (_dir, store) = open();
    let first = event("gh", "e1", "body-1");
    assert_eq!(store.commit(&first).await.unwrap(), Commit::Accepted);

    let mut again = event("gh", "e1", "other body");
    again.body_hash = "different".to_owned();
    assert_eq!(
        store.commit(&again).await.unwrap(),
        Commit::Duplicate {
            body_hash: Some("hash-of-body-1".to_owned())
        }
    );
    // Same id, other source: a different key.
    assert_eq!(
        store.commit(&event("stripe", "e1", "x")).await.unwrap(),
        Commit::Accepted
    );
    assert_eq!(store.event_count().await.unwrap(), 2);

    // The stored event is the first one, byte for byte.
    let loaded = store.load(&key("e1")).await.unwrap().expect("stored");
    assert_eq!(loaded, first);
    assert_eq!(store.load(&key("nope")).await.unwrap(), None);
}

#[tokio::test]
async fn binary_body_round_trips() {
    let (_dir, store) = open();
    let mut ev = event("gh", "bin", "");
    ev.body = Bytes::from((0..=255u8).cycle().take(300_000).collect::<Vec<u8>>());
    ev.content_type = None;
    ev.headers = Headers::default();
    store.commit(&ev).await.unwrap();
    assert_eq!(store.load(&key("bin")).await.unwrap(), Some(ev));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_of_one_key_accept_exactly_once() {
    let (_dir, store) = open();
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .commit(&event("gh", "same", &format!("body-{i}")))
                    .await
            })
        })
        .collect();
    let mut accepted = 0;
    let mut duplicates = 0;
    for h in handles {
        match h.await.unwrap().unwrap() {
            Commit::Accepted => accepted += 1,
            Commit::Duplicate { body_hash } => {
                assert!(body_hash.is_some_and(|h| h.starts_with("hash-of-body-")));
                duplicates += 1;
            }
        }
    }
    assert_eq!((accepted, duplicates), (1, 19));
    assert_eq!(store.event_count().await.unwrap(), 1);
    assert_eq!(store.pending_outbox(100).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_commits_all_succeed() {
    let (_dir, store) = open();
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let r = store
                        .commit(&event("gh", &format!("t{t}-{i}"), "{}"))
                        .await
                        .unwrap();
                    assert_eq!(r, Commit::Accepted);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.event_count().await.unwrap(), 64 * 50);
    // Group commit: 64 writers waiting at once share transactions.
    let batches = store.write_batches();
    assert!(
        batches > 0 && batches < 64 * 50,
        "{batches} transactions for {} commits",
        64 * 50
    );
    let outbox = store.pending_outbox(10_000).await.unwrap();
    assert_eq!(outbox.len(), 64 * 50);
}

#[tokio::test]
async fn outbox_is_fifo_and_mark_routed_clears_it() {
    let (_dir, store) = open();
    for id in ["a", "b", "c"] {
        store.commit(&event("gh", id, id)).await.unwrap();
    }
    let ids = |entries: Vec<OutboxEntry>| entries.into_iter().map(|e| e.key.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.pending_outbox(10).await.unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(ids(store.pending_outbox(2).await.unwrap()), ["a", "b"]);
    assert_eq!(store.routed(&key("a")).await.unwrap(), None);

    let subs = vec!["s1".to_owned(), "s2".to_owned()];
    store.mark_routed(&key("a"), &subs).await.unwrap();
    store.mark_routed(&key("b"), &[]).await.unwrap();
    assert_eq!(ids(store.pending_outbox(10).await.unwrap()), ["c"]);
    assert_eq!(store.routed(&key("a")).await.unwrap(), Some(subs.clone()));
    assert_eq!(store.routed(&key("b")).await.unwrap(), Some(vec![]));

    let rows = store.deliveries(&key("a")).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.status == DeliveryStatus::Pending && r.attempts == 0)
    );
    assert_eq!(
        store.delivery_status(&task("a", "s1")).await.unwrap(),
        Some(DeliveryStatus::Pending)
    );
    assert_eq!(store.delivery_status(&task("a", "zz")).await.unwrap(), None);

    // Idempotent: a re-run creates nothing twice and does not reset progress.
    store
        .record_attempt(&attempt("a", "s1", 1, Some(200)), DeliveryStatus::Delivered)
        .await
        .unwrap();
    store.mark_routed(&key("a"), &subs).await.unwrap();
    let rows = store.deliveries(&key("a")).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].status, DeliveryStatus::Delivered);
    assert_eq!(store.routed(&key("a")).await.unwrap(), Some(subs));

    // Unknown event: nothing to route, no orphan deliveries.
    store
        .mark_routed(&key("ghost"), &["s1".to_owned()])
        .await
        .unwrap();
    assert!(store.deliveries(&key("ghost")).await.unwrap().is_empty());
}

#[tokio::test]
async fn dispatch_queues_claimed_marks_routed_and_creates_deliveries_in_one_write() {
    let (_dir, store) = open();
    for id in ["a", "b", "c"] {
        store.commit(&event("gh", id, id)).await.unwrap();
    }
    let before = store.write_batches();
    let mut outbox = store.pending_outbox(10).await.unwrap().into_iter();
    let (a, b, c) = (
        outbox.next().unwrap(),
        outbox.next().unwrap(),
        outbox.next().unwrap(),
    );
    let subs = vec!["s1".to_owned(), "s2".to_owned()];
    let claim = Duration::from_secs(60);
    let d = store
        .dispatch(vec![(a.clone(), subs.clone()), (b.clone(), vec![])], claim)
        .await
        .unwrap();
    assert_eq!(store.write_batches(), before + 1, "one transaction");
    assert_eq!(d.routed, vec![(a.clone(), subs.clone()), (b, vec![])]);
    let claimed: Vec<_> = d
        .claimed
        .iter()
        .map(|m| (m.task.clone(), m.receive_count))
        .collect();
    assert_eq!(claimed, vec![(task("a", "s1"), 1), (task("a", "s2"), 1)]);
    assert!(d.claimed_until_ms >= now_ms() + 59_000);

    assert_eq!(store.routed(&key("a")).await.unwrap(), Some(subs.clone()));
    assert_eq!(store.routed(&key("b")).await.unwrap(), Some(vec![]));
    assert_eq!(
        store.delivery_status(&task("a", "s2")).await.unwrap(),
        Some(DeliveryStatus::Pending)
    );
    assert_eq!(
        store.pending_outbox(10).await.unwrap(),
        vec![c.clone()],
        "only the undispatched entry stays in the outbox"
    );
    // Claimed: on the queue, but not visible to a receive.
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    assert!(store.receive(10, claim).await.unwrap().is_empty());
    // The claim handles are live: an ack deletes the message.
    store.ack(&[d.claimed[0].handle.clone()]).await.unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 1);

    // Released claims are visible again, received as the second receive.
    store.release(&[d.claimed[1].handle.clone()]).await.unwrap();
    let again = store.receive(10, claim).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (&again[0].task, again[0].receive_count),
        (&task("a", "s2"), 2)
    );

    // Routing an entry twice (a stale read) queues nothing more.
    let d = store
        .dispatch(
            vec![(a, vec!["s3".to_owned()]), (c.clone(), subs.clone())],
            claim,
        )
        .await
        .unwrap();
    assert_eq!(d.routed, vec![(c, subs)]);
    assert_eq!(d.claimed.len(), 2);
    assert_eq!(
        store.routed(&key("a")).await.unwrap(),
        Some(vec!["s1".to_owned(), "s2".to_owned()])
    );
    assert_eq!(store.delivery_status(&task("a", "s3")).await.unwrap(), None);
    assert_eq!(
        store.queue_depth().await.unwrap(),
        3,
        "a/s2 in flight and c's two"
    );
}

/// Version 3's config table allowed only sources and subscriptions; the
/// upgrade keeps its rows and the version triggers, and takes pollers.
#[tokio::test]
async fn a_version_3_config_table_is_upgraded_to_take_pollers() {
    use crate::admin::ports::{ConfigItem, ConfigStore, Kind, Origin};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE config (
                kind TEXT NOT NULL CHECK (kind IN ('source', 'subscription')),
                id TEXT NOT NULL,
                origin TEXT NOT NULL CHECK (origin IN ('file', 'api')),
                enabled INTEGER NOT NULL DEFAULT 1,
                config TEXT NOT NULL,
                created_at_ms INTEGER NOT NULL,
                updated_at_ms INTEGER NOT NULL,
                PRIMARY KEY (kind, id)
             ) WITHOUT ROWID;
             INSERT INTO config VALUES ('source', 'gh', 'api', 0,
                '{\"id\":\"gh\",\"provider\":\"github\",\"secrets\":[\"env:X\"]}', 1, 2);
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let gh = store.get_config(Kind::Source, "gh").await.unwrap().unwrap();
    assert_eq!(
        (gh.origin, gh.enabled, gh.created_at_ms, gh.updated_at_ms),
        (Origin::Api, false, 1, 2)
    );
    let v0 = store.config_version().await.unwrap();
    let poller: crate::poll::PollerConfig = toml::from_str(
        "id = \"items\"\nurl = \"https://api.example.com/items\"\nitem_id = \"/id\"\n",
    )
    .unwrap();
    assert!(
        store
            .create_config(&ConfigItem::Poller(poller), Origin::Api)
            .await
            .unwrap()
    );
    assert!(
        store.config_version().await.unwrap() > v0,
        "the version triggers are back"
    );
    drop(store);
    let store = reopen(&dir);
    assert_eq!(
        store.list_config().await.unwrap().len(),
        2,
        "opened again as is"
    );
}

#[tokio::test]
async fn a_version_1_file_keeps_its_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    {
        // The events table as version 1 had it: outbox flag and routing JSON on the row.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE events (
                seq INTEGER PRIMARY KEY, source TEXT NOT NULL, id TEXT NOT NULL,
                event_type TEXT NOT NULL, received_at_ms INTEGER NOT NULL,
                expires_at INTEGER NOT NULL, body_hash TEXT NOT NULL, content_type TEXT,
                headers TEXT NOT NULL, outbox INTEGER NOT NULL DEFAULT 1, routed TEXT,
                body BLOB NOT NULL, UNIQUE (source, id));
             CREATE INDEX events_outbox ON events(outbox) WHERE outbox = 1;
             INSERT INTO events (source, id, event_type, received_at_ms, expires_at, body_hash,
                                 headers, outbox, routed, body)
             VALUES ('gh', 'old-routed', 'push', 1, 9999999999, 'h', '[]', 0, '[]', x'7b7d'),
                    ('gh', 'old-pending', 'push', 2, 9999999999, 'h', '[]', 1, NULL, x'7b7d');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let pending = store.pending_outbox(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].key, key("old-pending"));
    assert_eq!(
        store.routed(&key("old-routed")).await.unwrap(),
        Some(vec![])
    );
    // New commits work on the old table and join the outbox.
    store.commit(&event("gh", "new", "x")).await.unwrap();
    let pending = store.pending_outbox(10).await.unwrap();
    assert_eq!(pending.len(), 2);
    let routes = pending.into_iter().map(|e| (e, vec![])).collect();
    store
        .dispatch(routes, Duration::from_secs(60))
        .await
        .unwrap();
    drop(store);
    // The flags left on the old rows are not read again.
    let store = reopen(&dir);
    assert!(
        store.pending_outbox(10).await.unwrap().is_empty(),
        "migrated once"
    );
}

#[tokio::test]
async fn send_dedupes_and_receive_hides_until_visibility_timeout() {
    let (_dir, store) = open();
    let tasks = vec![task("e1", "s1"), task("e1", "s2")];
    assert!(store.send(&tasks).await.unwrap().is_empty());
    // A re-run enqueue does not double-queue.
    assert!(store.send(&tasks).await.unwrap().is_empty());
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    assert_eq!(store.next_visible_at().await.unwrap(), None);

    let got = store.receive(1, Duration::from_millis(300)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].task, tasks[0]);
    assert_eq!(got[0].receive_count, 1);
    let before = now_ms();
    let got2 = store.receive(10, Duration::from_millis(300)).await.unwrap();
    assert_eq!(got2.len(), 1);
    assert_eq!(got2[0].task, tasks[1]);
    // Both are in flight now: nothing visible, the earliest comes back later.
    assert!(
        store
            .receive(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    let next = store
        .next_visible_at()
        .await
        .unwrap()
        .expect("in-flight messages");
    assert!(
        next > before && next <= now_ms() + 300,
        "next_visible_at {next}"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = store.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|m| m.receive_count == 2));
    assert_eq!(again[0].task, tasks[0]);

    // The old handle is stale: acking with it does nothing.
    store.ack(&[got[0].handle.clone()]).await.unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    store
        .ack(&[
            again[0].handle.clone(),
            again[1].handle.clone(),
            "garbage".to_owned(),
        ])
        .await
        .unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 0);

    // Once acked, the same task can be queued again (dedupe only covers
    // messages still on the queue).
    store.send(&tasks[..1]).await.unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 1);
}

#[tokio::test]
async fn retry_in_delays_the_message() {
    let (_dir, store) = open();
    store.send(&[task("e1", "s1")]).await.unwrap();
    let msg = store
        .receive(1, Duration::from_secs(60))
        .await
        .unwrap()
        .remove(0);

    let before = now_ms();
    store
        .retry_in(&msg, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        store
            .receive(1, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    let next = store.next_visible_at().await.unwrap().expect("delayed");
    assert!(
        next >= before + 300 && next <= now_ms() + 300,
        "next_visible_at {next}"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = store.receive(1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);

    // retry_in(0) makes it visible at once.
    store.retry_in(&again[0], Duration::ZERO).await.unwrap();
    assert_eq!(
        store.receive(1, Duration::from_secs(60)).await.unwrap()[0].receive_count,
        3
    );
}

#[tokio::test]
async fn dead_letter_moves_the_message() {
    let (_dir, store) = open();
    store
        .send(&[task("e1", "s1"), task("e2", "s1")])
        .await
        .unwrap();
    let msgs = store.receive(2, Duration::from_secs(60)).await.unwrap();
    store
        .dead_letter(&msgs[0], "retries exhausted")
        .await
        .unwrap();

    assert_eq!(store.queue_depth().await.unwrap(), 1);
    let dl = store.dead_letters().await.unwrap();
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].task, task("e1", "s1"));
    assert_eq!(dl[0].reason, "retries exhausted");
    assert!(dl[0].at_ms > 0);

    // A stale handle moves nothing.
    let mut stale = msgs[1].clone();
    stale.handle = format!("{}:99", stale.handle.split(':').next().unwrap());
    store.dead_letter(&stale, "nope").await.unwrap();
    assert_eq!(store.dead_letters().await.unwrap().len(), 1);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
}

fn message(id: &str, sub: &str, message_id: &str) -> ReceivedTask {
    ReceivedTask {
        task: task(id, sub),
        handle: format!("{message_id}:1"),
        message_id: message_id.to_owned(),
        receive_count: 1,
    }
}

/// A claim reads the event and the delivery in one go and takes the
/// lease: a second claim while it is live is refused with the time left,
/// a settled one frees it, a scheduled retry is not due before its time,
/// a final delivery is finished, and an unknown event is held with no event.
#[tokio::test]
async fn a_claim_loads_the_event_and_holds_the_delivery_until_settled() {
    let (_dir, store) = open();
    let e = event("gh", "e1", "the body");
    store.commit(&e).await.unwrap();
    store
        .mark_routed(&key("e1"), &["s1".to_owned(), "s2".to_owned()])
        .await
        .unwrap();
    let lease = Duration::from_secs(60);
    let claim = |sub: &'static str| {
        let store = store.clone();
        async move { store.claim(&message("e1", sub, "7"), lease).await.unwrap() }
    };
    let Claim::Held {
        lease: held,
        attempt: 1,
        event: Some(got),
    } = claim("s1").await
    else {
        panic!("a pending delivery is held with its event, as attempt 1");
    };
    assert_eq!(event_with_time(&got, e.clone()), got);
    assert_eq!(got.body, Bytes::from("the body"));
    // A second copy, while the first holds it: told how long to wait.
    let Claim::Leased { wait } = claim("s1").await else {
        panic!("a live lease refuses a second claim");
    };
    assert!(wait > Duration::from_secs(55) && wait <= lease, "{wait:?}");
    // No delivery row (routed elsewhere, or a replay): still the event.
    assert!(matches!(
        claim("other").await,
        Claim::Held { event: Some(_), .. }
    ));

    store
        .settle(
            &attempt("e1", "s1", 1, Some(200)),
            DeliveryStatus::Delivered,
            &held,
        )
        .await
        .unwrap();
    assert_eq!(
        claim("s1").await,
        Claim::Finished(DeliveryStatus::Delivered)
    );
    // A failed attempt schedules the next one 5 s out: until then a
    // message that comes back is not due.
    let Claim::Held { lease: held, .. } = claim("s2").await else {
        panic!("s2 is free");
    };
    store
        .settle(
            &attempt("e1", "s2", 1, Some(500)),
            DeliveryStatus::Pending,
            &held,
        )
        .await
        .unwrap();
    let Claim::NotDue {
        wait,
        by_this_message: true,
    } = claim("s2").await
    else {
        panic!("the retry is not due yet");
    };
    assert!(wait > Duration::from_secs(3), "{wait:?}");
    store
        .record_attempt(&attempt("e1", "s2", 2, Some(400)), DeliveryStatus::Failed)
        .await
        .unwrap();
    assert_eq!(claim("s2").await, Claim::Finished(DeliveryStatus::Failed));
    assert!(matches!(
        store
            .claim(&message("missing", "s1", "8"), lease)
            .await
            .unwrap(),
        Claim::Held {
            attempt: 1,
            event: None,
            ..
        }
    ));
}

#[tokio::test]
async fn record_attempt_never_overwrites_a_final_status() {
    let (_dir, store) = open();
    store.commit(&event("gh", "e1", "b")).await.unwrap();
    store
        .mark_routed(&key("e1"), &["s1".to_owned()])
        .await
        .unwrap();
    let t = task("e1", "s1");

    assert!(
        store
            .record_attempt(&attempt("e1", "s1", 1, Some(500)), DeliveryStatus::Pending)
            .await
            .unwrap()
    );
    let row = &store.deliveries(&key("e1")).await.unwrap()[0];
    assert_eq!((row.status, row.attempts), (DeliveryStatus::Pending, 1));
    assert!(row.next_attempt_at_ms.is_some());

    assert!(
        store
            .record_attempt(
                &attempt("e1", "s1", 2, Some(200)),
                DeliveryStatus::Delivered
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.delivery_status(&t).await.unwrap(),
        Some(DeliveryStatus::Delivered)
    );

    // A late attempt (a duplicate delivery) is logged but changes nothing.
    assert!(
        !store
            .record_attempt(&attempt("e1", "s1", 3, None), DeliveryStatus::Failed)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_attempt(&attempt("e1", "s1", 4, None), DeliveryStatus::Pending)
            .await
            .unwrap()
    );
    assert_eq!(
        store.delivery_status(&t).await.unwrap(),
        Some(DeliveryStatus::Delivered)
    );
    let row = &store.deliveries(&key("e1")).await.unwrap()[0];
    assert_eq!(
        (row.status, row.attempts, row.next_attempt_at_ms),
        (DeliveryStatus::Delivered, 4, None)
    );

    let log = store.attempts(&key("e1")).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        log[0],
        attempt_with_times(&log[0], attempt("e1", "s1", 1, Some(500)))
    );
    assert_eq!(log[2].error.as_deref(), Some("connection refused"));

    // No delivery row yet: the attempt creates it.
    store.commit(&event("gh", "e9", "b")).await.unwrap();
    assert!(
        store
            .record_attempt(&attempt("e9", "s7", 1, None), DeliveryStatus::Failed)
            .await
            .unwrap()
    );
    assert_eq!(
        store.delivery_status(&task("e9", "s7")).await.unwrap(),
        Some(DeliveryStatus::Failed)
    );
    // No event, nothing to attach the attempt to.
    assert!(
        !store
            .record_attempt(&attempt("ghost", "s1", 1, None), DeliveryStatus::Failed)
            .await
            .unwrap()
    );
    assert!(store.attempts(&key("ghost")).await.unwrap().is_empty());
}

/// `expected` with the timestamps of `got` (they are taken at call time).
fn attempt_with_times(got: &Attempt, mut expected: Attempt) -> Attempt {
    expected.started_at_ms = got.started_at_ms;
    expected.next_attempt_at_ms = got.next_attempt_at_ms;
    expected
}

#[tokio::test]
async fn state_survives_a_restart() {
    let (dir, store) = open();
    store.commit(&event("gh", "e1", "one")).await.unwrap();
    store.commit(&event("gh", "e2", "two")).await.unwrap();
    store
        .mark_routed(&key("e1"), &["s1".to_owned()])
        .await
        .unwrap();
    store
        .send(&[task("e1", "s1"), task("e1", "s2")])
        .await
        .unwrap();
    let in_flight = store.receive(1, Duration::from_secs(600)).await.unwrap();
    store.set_subscription_disabled("gone", true).await.unwrap();
    store.set_subscription_disabled("back", true).await.unwrap();
    store
        .set_subscription_disabled("back", false)
        .await
        .unwrap();
    drop(store);

    let store = reopen(&dir);
    let outbox = store.pending_outbox(10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        (&outbox[0].key, outbox[0].event_type.as_str()),
        (&key("e2"), "push")
    );
    let stored = store.load(&key("e2")).await.unwrap().unwrap();
    assert_eq!(stored, event_with_time(&stored, event("gh", "e2", "two")));
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    // The in-flight message keeps its visibility timeout across the restart.
    let visible = store.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].task, task("e1", "s2"));
    assert_ne!(visible[0].task, in_flight[0].task);
    assert_eq!(
        store.commit(&event("gh", "e1", "one")).await.unwrap(),
        Commit::Duplicate {
            body_hash: Some("hash-of-one".to_owned())
        }
    );
    assert_eq!(store.disabled_subscriptions().await.unwrap(), ["gone"]);
}

fn event_with_time(got: &Event, mut expected: Event) -> Event {
    expected.received_at_ms = got.received_at_ms;
    expected.expires_at = got.expires_at;
    expected
}

#[tokio::test]
async fn notifiers_wake_after_commits() {
    let (_dir, store) = open();
    let outbox = store.outbox_notifier();
    let queue = store.queue_notifier();
    let wait = Duration::from_secs(5);
    // The permits stored at open, so workers look at leftovers first.
    tokio::time::timeout(wait, outbox.notified())
        .await
        .expect("startup permit");
    tokio::time::timeout(wait, queue.notified())
        .await
        .expect("startup permit");

    // Nobody is waiting when the commit lands; the permit is kept for later.
    store.commit(&event("gh", "e1", "b")).await.unwrap();
    tokio::time::timeout(wait, outbox.notified())
        .await
        .expect("outbox wake");
    // A duplicate adds nothing to the outbox: no wake.
    store.commit(&event("gh", "e1", "b")).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), outbox.notified())
            .await
            .is_err()
    );

    let waiter = tokio::spawn({
        let queue = queue.clone();
        async move { tokio::time::timeout(wait, queue.notified()).await.is_ok() }
    });
    tokio::task::yield_now().await;
    store.send(&[task("e1", "s1")]).await.unwrap();
    assert!(waiter.await.unwrap(), "queue wake after send");

    let msg = store
        .receive(1, Duration::from_secs(60))
        .await
        .unwrap()
        .remove(0);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), queue.notified())
            .await
            .is_err()
    );
    store.retry_in(&msg, Duration::from_secs(1)).await.unwrap();
    tokio::time::timeout(wait, queue.notified())
        .await
        .expect("queue wake after retry_in");
}

#[tokio::test]
async fn purge_expired_keeps_unsettled_and_unexpired_events() {
    let (_dir, store) = open();
    let now = now_ms();
    let past = now / 1000 - 10;
    let mk = |id: &str, expires_at: i64| {
        let mut e = event("gh", id, id);
        e.expires_at = expires_at;
        e
    };
    for (id, exp) in [
        ("done", past),
        ("unrouted", past),
        ("pending", past),
        ("fresh", now / 1000 + 3600),
    ] {
        store.commit(&mk(id, exp)).await.unwrap();
    }
    for id in ["done", "pending", "fresh"] {
        store
            .mark_routed(&key(id), &["s1".to_owned()])
            .await
            .unwrap();
    }
    for id in ["done", "fresh"] {
        store
            .record_attempt(&attempt(id, "s1", 1, Some(200)), DeliveryStatus::Delivered)
            .await
            .unwrap();
    }
    store.commit(&mk("nothing-matched", past)).await.unwrap();
    store
        .mark_routed(&key("nothing-matched"), &[])
        .await
        .unwrap();

    assert_eq!(store.purge_expired(now).await.unwrap(), 2);
    assert_eq!(store.event_count().await.unwrap(), 3);
    assert_eq!(store.load(&key("done")).await.unwrap(), None);
    assert!(store.deliveries(&key("done")).await.unwrap().is_empty());
    assert!(store.attempts(&key("done")).await.unwrap().is_empty());
    for id in ["unrouted", "pending", "fresh"] {
        assert!(store.load(&key(id)).await.unwrap().is_some(), "{id} kept");
    }
    assert_eq!(store.attempts(&key("fresh")).await.unwrap().len(), 1);
    // The dedup window is over: the key can be committed afresh.
    assert_eq!(
        store.commit(&mk("done", now / 1000 + 60)).await.unwrap(),
        Commit::Accepted
    );
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);
}

#[tokio::test]
async fn purge_expired_works_in_chunks() {
    let (_dir, store) = open();
    let past = now_ms() / 1000 - 1;
    for i in 0..600 {
        let mut e = event("gh", &format!("e{i}"), "x");
        e.expires_at = past;
        store.commit(&e).await.unwrap();
        store.mark_routed(&e.key(), &[]).await.unwrap();
    }
    assert_eq!(store.purge_expired(now_ms()).await.unwrap(), 600);
    assert_eq!(store.event_count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_command_does_not_poison_its_batch() {
    let (_dir, store) = open();
    let mut handles = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            if i % 10 == 0 {
                // Inserts a row, then fails: its savepoint must be rolled back.
                let r = store
                    .write(|c, _| {
                        c.execute("INSERT INTO disabled_subscriptions (id, disabled_at_ms) VALUES ('bad', 0)", [])?;
                        c.execute("INSERT INTO no_such_table VALUES (1)", [])
                    })
                    .await;
                assert!(r.is_err());
                None
            } else {
                Some(store.commit(&event("gh", &format!("e{i}"), "b")).await.unwrap())
            }
        }));
    }
    let mut accepted = 0;
    for h in handles {
        if h.await.unwrap() == Some(Commit::Accepted) {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 180);
    assert_eq!(store.event_count().await.unwrap(), 180);
    assert!(store.disabled_subscriptions().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_transaction_fails_every_caller_and_the_writer_recovers() {
    let (_dir, store) = open();
    // Ending the transaction from inside a command loses the whole batch:
    // everyone in it must get Unavailable, nobody may hang.
    let rogue = store.write(|c, _| c.execute_batch("ROLLBACK"));
    assert!(
        tokio::time::timeout(Duration::from_secs(5), rogue)
            .await
            .expect("no hang")
            .is_err()
    );
    assert_eq!(
        store.commit(&event("gh", "after", "b")).await.unwrap(),
        Commit::Accepted
    );
    assert_eq!(store.event_count().await.unwrap(), 1);

    // A panicking command is contained too.
    let r = store
        .write(|_, _| -> super::writer::DbResult<()> { panic!("boom") })
        .await;
    assert!(r.is_err());
    assert_eq!(
        store.commit(&event("gh", "after2", "b")).await.unwrap(),
        Commit::Accepted
    );
}
