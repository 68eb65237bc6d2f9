//! [`PollerStates`] over the SQLite file: one row per poller. A claim is
//! one write command on the writer thread (read, check, update), so it
//! is atomic against every other writer, including another process (the
//! CLI's "poll now" beside a running gateway) through SQLite's lock.

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::writer::DbResult;
use crate::error::Unavailable;
use crate::poll::state::{PollClaim, PollLease, PollerState, PollerStates, StoredPoller};

const COLUMNS: &str = "id, state, lease_until_ms";

fn row(r: &Row<'_>) -> DbResult<(String, StoredPoller)> {
    let json: String = r.get(1)?;
    let state = serde_json::from_str(&json)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Text, e.into()))?;
    Ok((
        r.get(0)?,
        StoredPoller {
            state,
            lease_until_ms: r.get(2)?,
        },
    ))
}

fn get(c: &Connection, id: &str) -> DbResult<Option<StoredPoller>> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM poller_state WHERE id = ?1"))?
        .query_row(params![id], row)
        .optional()
        .map(|found| found.map(|(_, s)| s))
}

fn json(state: &PollerState) -> DbResult<String> {
    serde_json::to_string(state).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

#[async_trait]
impl PollerStates for SqliteStore {
    async fn get(&self, id: &str) -> Result<Option<StoredPoller>, Unavailable> {
        let id = id.to_owned();
        self.lookup(move |c| get(c, &id)).await
    }

    async fn list(&self) -> Result<Vec<(String, StoredPoller)>, Unavailable> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM poller_state ORDER BY id"))?
                .query_map([], row)?
                .collect()
        })
        .await
    }

    async fn claim(
        &self,
        id: &str,
        lease: &PollLease,
        now_ms: i64,
        force: bool,
    ) -> Result<PollClaim, Unavailable> {
        let (id, lease) = (id.to_owned(), lease.clone());
        self.write(move |c, _| {
            let stored = get(c, &id)?.unwrap_or_default();
            if let Some(refusal) = stored.refusal(now_ms, force) {
                return Ok(refusal);
            }
            c.prepare_cached(
                "INSERT INTO poller_state (id, state, next_poll_at_ms, lease_owner, lease_until_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET lease_owner = ?4, lease_until_ms = ?5",
            )?
            .execute(params![
                id,
                json(&stored.state)?,
                stored.state.next_poll_at_ms,
                lease.owner,
                lease.until_ms
            ])?;
            Ok(PollClaim::Held(stored.state))
        })
        .await
    }

    async fn save(
        &self,
        id: &str,
        lease: &PollLease,
        state: &PollerState,
    ) -> Result<bool, Unavailable> {
        let (id, owner, state) = (id.to_owned(), lease.owner.clone(), state.clone());
        self.write(move |c, _| {
            let changed = c
                .prepare_cached(
                    "UPDATE poller_state
                     SET state = ?3, next_poll_at_ms = ?4, lease_owner = NULL, lease_until_ms = NULL
                     WHERE id = ?1 AND lease_owner = ?2",
                )?
                .execute(params![id, owner, json(&state)?, state.next_poll_at_ms])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<(), Unavailable> {
        let id = id.to_owned();
        self.write(move |c, _| {
            c.prepare_cached("DELETE FROM poller_state WHERE id = ?1")?
                .execute(params![id])?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::poll::state::LastResult;

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("sluice.db")).expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn claim_save_and_the_refusals() {
        let (_dir, store) = open();
        assert_eq!(PollerStates::get(&store, "p").await.unwrap(), None);
        let lease = PollLease::new(1_000);
        assert_eq!(
            store.claim("p", &lease, 1_000, false).await.unwrap(),
            PollClaim::Held(PollerState::default()),
            "a poller with no state is due"
        );
        let other = PollLease::new(1_000);
        assert_eq!(
            store.claim("p", &other, 1_001, true).await.unwrap(),
            PollClaim::Busy {
                until_ms: lease.until_ms
            },
            "even a forced poll waits for a live claim"
        );
        assert!(
            !store
                .save("p", &other, &PollerState::default())
                .await
                .unwrap()
        );
        let state = PollerState {
            primed: true,
            seen: vec!["1".into()],
            last_result: Some(LastResult::Primed),
            next_poll_at_ms: 61_000,
            ..PollerState::default()
        };
        assert!(store.save("p", &lease, &state).await.unwrap());
        assert!(
            !store.save("p", &lease, &state).await.unwrap(),
            "the save ended the claim"
        );
        let stored = PollerStates::get(&store, "p").await.unwrap().unwrap();
        assert_eq!(stored.state, state);
        assert_eq!(stored.lease_until_ms, None);
        assert_eq!(
            store.claim("p", &other, 2_000, false).await.unwrap(),
            PollClaim::NotDue { at_ms: 61_000 }
        );
        assert_eq!(
            store.claim("p", &other, 2_000, true).await.unwrap(),
            PollClaim::Held(state.clone())
        );
        assert_eq!(store.list().await.unwrap().len(), 1);
        store.delete("p").await.unwrap();
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_expired_claim_can_be_taken_over_and_the_old_owner_cannot_save() {
        let (_dir, store) = open();
        let first = PollLease {
            owner: "first".into(),
            until_ms: 1_500,
        };
        store.claim("p", &first, 1_000, false).await.unwrap();
        let second = PollLease {
            owner: "second".into(),
            until_ms: 9_000,
        };
        assert!(matches!(
            store.claim("p", &second, 2_000, false).await.unwrap(),
            PollClaim::Held(_)
        ));
        assert!(
            !store
                .save("p", &first, &PollerState::default())
                .await
                .unwrap()
        );
        assert!(
            store
                .save("p", &second, &PollerState::default())
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn overlapping_claims_from_two_processes_hold_once() {
        // Two handles on one file stand for the gateway and a CLI.
        let (dir, gateway) = open();
        let cli = SqliteStore::open(&dir.path().join("sluice.db")).expect("open");
        let stores = [Arc::new(gateway), Arc::new(cli)];
        let claims = (0..16).map(|n| {
            let store = stores[n % 2].clone();
            tokio::spawn(async move {
                store
                    .claim("p", &PollLease::new(1_000), 1_000, n % 3 == 0)
                    .await
                    .unwrap()
            })
        });
        let held = futures::future::join_all(claims)
            .await
            .into_iter()
            .filter(|r| matches!(r.as_ref().unwrap(), PollClaim::Held(_)))
            .count();
        assert_eq!(held, 1);
    }

    #[tokio::test]
    async fn state_survives_a_reopen() {
        let (dir, store) = open();
        let lease = PollLease::new(0);
        store.claim("p", &lease, 0, false).await.unwrap();
        let state = PollerState {
            etag: Some("\"e\"".into()),
            emitted_total: 3,
            ..PollerState::default()
        };
        store.save("p", &lease, &state).await.unwrap();
        drop(store);
        let store = SqliteStore::open(&dir.path().join("sluice.db")).expect("reopen");
        assert_eq!(
            PollerStates::get(&store, "p").await.unwrap().unwrap().state,
            state
        );
    }
}
