//! In-memory ports for the admin API's unit tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;

use super::ports::{
    ConfigEntry, ConfigItem, ConfigStore, DeadLetterPage, DeadLetterQuery, DeadLetterRecord,
    DeliveryCounts, DestinationSummary, EventLog, EventPage, EventQuery, EventRecord, EventStatus,
    EventSummary, Kind, LogError, Origin, Reload, ReplayCandidate, ReplayQuery, WriteError,
};
use crate::config::{ConfigFile, Registry, Source, SourceError, StaticRegistry, Subscription};
use crate::error::Unavailable;
use crate::model::EventKey;
use crate::secrets::{
    EnvSecrets, Keep, Secret, SecretError, SecretKeeper, SecretRef, SecretResolver, SecretStore,
};
use crate::time::now_ms;

#[derive(Default)]
pub struct MemConfig {
    pub entries: Mutex<Vec<ConfigEntry>>,
}

fn same(e: &ConfigEntry, kind: Kind, id: &str) -> bool {
    e.item.kind() == kind && e.item.id() == id
}

/// The stores' invariant: no subscription without its source (a source
/// or a poller).
fn check_source(entries: &[ConfigEntry], item: &ConfigItem) -> Result<(), WriteError> {
    match item.needs_source() {
        Some(source)
            if !entries
                .iter()
                .any(|e| e.item.kind().is_event_source() && e.item.id() == source) =>
        {
            Err(WriteError::Conflict(format!("no source {source:?}")))
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl ConfigStore for MemConfig {
    async fn list_config(&self) -> Result<Vec<ConfigEntry>, Unavailable> {
        let mut all = self.entries.lock().unwrap().clone();
        all.sort_by(|a, b| (a.item.kind(), a.item.id()).cmp(&(b.item.kind(), b.item.id())));
        Ok(all)
    }

    async fn get_config(&self, kind: Kind, id: &str) -> Result<Option<ConfigEntry>, Unavailable> {
        Ok(self
            .entries
            .lock()
            .unwrap()
            .iter()
            .find(|e| same(e, kind, id))
            .cloned())
    }

    async fn create_config(&self, item: &ConfigItem, origin: Origin) -> Result<bool, WriteError> {
        let mut entries = self.entries.lock().unwrap();
        if entries.iter().any(|e| same(e, item.kind(), item.id())) {
            return Ok(false);
        }
        check_source(&entries, item)?;
        entries.push(ConfigEntry {
            item: item.clone(),
            origin,
            enabled: true,
            created_at_ms: now_ms(),
            updated_at_ms: now_ms(),
        });
        Ok(true)
    }

    async fn upsert_config(&self, item: &ConfigItem, origin: Origin) -> Result<(), WriteError> {
        let mut entries = self.entries.lock().unwrap();
        check_source(&entries, item)?;
        match entries.iter_mut().find(|e| same(e, item.kind(), item.id())) {
            Some(e) => {
                e.item = item.clone();
                e.origin = origin;
            }
            None => entries.push(ConfigEntry {
                item: item.clone(),
                origin,
                enabled: true,
                created_at_ms: now_ms(),
                updated_at_ms: now_ms(),
            }),
        }
        Ok(())
    }

    async fn update_config(&self, item: &ConfigItem) -> Result<bool, Unavailable> {
        let mut entries = self.entries.lock().unwrap();
        match entries.iter_mut().find(|e| same(e, item.kind(), item.id())) {
            Some(e) => {
                e.item = item.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_config(&self, kind: Kind, id: &str) -> Result<bool, WriteError> {
        let mut entries = self.entries.lock().unwrap();
        if kind.is_event_source()
            && entries
                .iter()
                .any(|e| matches!(&e.item, ConfigItem::Subscription(s) if s.source == id))
        {
            return Err(WriteError::Conflict(format!(
                "{} {id:?} still has subscriptions",
                kind.as_str()
            )));
        }
        let before = entries.len();
        entries.retain(|e| !same(e, kind, id));
        Ok(entries.len() < before)
    }

    async fn set_enabled(&self, kind: Kind, id: &str, enabled: bool) -> Result<bool, Unavailable> {
        let mut entries = self.entries.lock().unwrap();
        match entries.iter_mut().find(|e| same(e, kind, id)) {
            Some(e) => {
                e.enabled = enabled;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Secrets kept in memory (`db:`), and `env:` from a map.
pub struct MemSecrets {
    pub stored: Mutex<HashMap<String, String>>,
    pub env: EnvSecrets,
}

impl MemSecrets {
    pub fn new(env: &[(&str, &str)]) -> Self {
        Self {
            stored: Mutex::default(),
            env: EnvSecrets::from_map(
                env.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
        }
    }
}

#[async_trait]
impl SecretStore for MemSecrets {
    async fn put_secret(&self, name: &str, value: &Secret) -> Result<SecretRef, SecretError> {
        self.stored
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.expose().to_owned());
        Ok(SecretRef::Db(name.to_owned()))
    }

    fn owns(&self, reference: &SecretRef) -> bool {
        matches!(reference, SecretRef::Db(_))
    }

    async fn delete_secret(&self, reference: &SecretRef) -> Result<(), SecretError> {
        if let SecretRef::Db(name) = reference {
            self.stored.lock().unwrap().remove(name);
        }
        Ok(())
    }
}

#[async_trait]
impl SecretKeeper for MemSecrets {
    async fn keep_if_absent(
        &self,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, SecretError> {
        let SecretRef::Db(name) = reference else {
            return Err(SecretError::Unsupported(reference.clone(), "db: only"));
        };
        let mut stored = self.stored.lock().unwrap();
        if let Some(existing) = stored.get(name) {
            return Ok(Keep::compare(&Secret::new(existing.clone()), value));
        }
        stored.insert(name.clone(), value.expose().to_owned());
        Ok(Keep::Kept)
    }
}

#[async_trait]
impl SecretResolver for MemSecrets {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        match reference {
            SecretRef::Db(name) => self
                .stored
                .lock()
                .unwrap()
                .get(name)
                .map(|v| Secret::new(v.clone()))
                .ok_or_else(|| SecretError::NotFound(reference.clone())),
            _ => self.env.resolve(reference).await,
        }
    }
}

/// A registry rebuilt from [`MemConfig`] on reload.
pub struct MemRegistry {
    pub config: Arc<MemConfig>,
    pub secrets: Arc<MemSecrets>,
    pub current: RwLock<Arc<StaticRegistry>>,
    pub reloads: Mutex<u32>,
}

impl MemRegistry {
    pub fn new(config: Arc<MemConfig>, secrets: Arc<MemSecrets>) -> Self {
        Self {
            config,
            secrets,
            current: RwLock::new(Arc::new(StaticRegistry::default())),
            reloads: Mutex::new(0),
        }
    }

    fn now(&self) -> Arc<StaticRegistry> {
        self.current.read().unwrap().clone()
    }
}

#[async_trait]
impl Registry for MemRegistry {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, SourceError> {
        self.now().source(id).await
    }

    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable> {
        self.now().subscriptions_of(source).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable> {
        self.now().subscription(id).await
    }

    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable> {
        self.now().disable_subscription(id).await
    }

    async fn keep_handshake_secret(
        &self,
        source: &str,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, Unavailable> {
        self.now()
            .keep_handshake_secret(source, reference, value)
            .await
    }
}

#[async_trait]
impl Reload for MemRegistry {
    async fn reload(&self) -> Result<(), Unavailable> {
        let mut file = ConfigFile::default();
        let mut disabled = Vec::new();
        for e in self.config.list_config().await? {
            if e.item.kind() == Kind::Subscription && !e.enabled {
                disabled.push(e.item.id().to_owned());
            }
            e.item.add_to(&mut file);
        }
        let registry = file
            .resolve(self.secrets.as_ref())
            .await
            .map_err(Unavailable::new)?;
        for id in disabled {
            if let Some(s) = registry.get_subscription(&id) {
                s.set_enabled(false);
            }
        }
        *self.current.write().unwrap() = Arc::new(registry);
        *self.reloads.lock().unwrap() += 1;
        Ok(())
    }
}

/// An event log in memory: records as the SQLite one would hold them.
#[derive(Default)]
pub struct MemLog {
    pub records: Mutex<Vec<EventRecord>>,
    pub dead: Mutex<Vec<DeadLetterRecord>>,
    /// (replay key, subscriptions) in the order made.
    pub replays: Mutex<Vec<(EventKey, Vec<String>)>>,
}

impl MemLog {
    fn summary(r: &EventRecord) -> EventSummary {
        let mut counts = DeliveryCounts::default();
        for d in &r.deliveries {
            match d.status {
                crate::model::DeliveryStatus::Pending => counts.pending += 1,
                crate::model::DeliveryStatus::Delivered => counts.delivered += 1,
                crate::model::DeliveryStatus::Failed => counts.failed += 1,
            }
        }
        let mut destinations: Vec<DestinationSummary> = r
            .deliveries
            .iter()
            .map(|d| DestinationSummary {
                subscription: d.subscription.clone(),
                status: d.status,
                attempts: r
                    .attempts
                    .iter()
                    .filter(|a| a.subscription == d.subscription)
                    .map(|a| a.attempt)
                    .max()
                    .unwrap_or(0),
            })
            .collect();
        destinations.sort_by(|a, b| a.subscription.cmp(&b.subscription));
        EventSummary {
            key: r.event.key(),
            event_type: r.event.event_type.clone(),
            received_at_ms: r.event.received_at_ms,
            expires_at: r.event.expires_at,
            status: r.status,
            counts,
            destinations,
            replay_of: r.replay_of.clone(),
        }
    }
}

#[async_trait]
impl EventLog for MemLog {
    async fn list_events(&self, q: &EventQuery) -> Result<EventPage, LogError> {
        if q.cursor.is_some() {
            return Err(LogError::BadCursor);
        }
        let records = self.records.lock().unwrap();
        let events = records
            .iter()
            .rev()
            .filter(|r| q.source.as_ref().is_none_or(|s| *s == r.event.source))
            .filter(|r| q.status.is_none_or(|s| s == r.status))
            .take(q.limit)
            .map(Self::summary)
            .collect();
        Ok(EventPage {
            events,
            next_cursor: None,
        })
    }

    async fn get_event(&self, key: &EventKey) -> Result<Option<EventRecord>, Unavailable> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.event.key() == *key)
            .cloned())
    }

    async fn create_replay(
        &self,
        original: &EventKey,
        subscriptions: &[String],
        expires_at: i64,
    ) -> Result<Option<EventKey>, Unavailable> {
        let mut records = self.records.lock().unwrap();
        let Some(orig) = records.iter().find(|r| r.event.key() == *original).cloned() else {
            return Ok(None);
        };
        let root = orig.replay_of.clone().unwrap_or_else(|| original.clone());
        let n = records
            .iter()
            .filter(|r| r.replay_of.as_ref() == Some(&root))
            .count()
            + 1;
        let mut event = orig.event.clone();
        event.id = format!("{}#replay-{n}", root.id);
        event.expires_at = expires_at;
        let key = event.key();
        records.push(EventRecord {
            event,
            status: EventStatus::Pending,
            routed: Some(subscriptions.to_vec()),
            deliveries: Vec::new(),
            attempts: Vec::new(),
            replay_of: Some(root.clone()),
            replays: Vec::new(),
        });
        self.dead.lock().unwrap().retain(|d| {
            !(d.task.source == root.source && subscriptions.contains(&d.task.subscription))
        });
        self.replays
            .lock()
            .unwrap()
            .push((key.clone(), subscriptions.to_vec()));
        Ok(Some(key))
    }

    async fn replay_candidates(
        &self,
        q: &ReplayQuery,
    ) -> Result<Vec<ReplayCandidate>, Unavailable> {
        let records = self.records.lock().unwrap();
        let mut out = Vec::new();
        for r in records.iter() {
            for d in &r.deliveries {
                if d.status == q.status && out.len() < q.limit {
                    out.push(ReplayCandidate {
                        event: r.event.key(),
                        root: r.replay_of.clone().unwrap_or_else(|| r.event.key()),
                        event_type: r.event.event_type.clone(),
                        subscription: d.subscription.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn list_dead_letters(&self, q: &DeadLetterQuery) -> Result<DeadLetterPage, LogError> {
        let dead = self.dead.lock().unwrap();
        Ok(DeadLetterPage {
            dead_letters: dead
                .iter()
                .filter(|d| q.ids.is_empty() || q.ids.contains(&d.id))
                .take(q.limit)
                .cloned()
                .collect(),
            next_cursor: None,
        })
    }
}

/// The pollers' ports of the admin tests: in-memory state and event
/// store, and real HTTP (to apps on 127.0.0.1).
pub fn poller_ports() -> (
    Arc<crate::poll::fakes::MemStates>,
    Arc<crate::pipeline::fakes::MemStore>,
    super::PollerPorts,
) {
    let states = Arc::new(crate::poll::fakes::MemStates::default());
    let store = Arc::new(crate::pipeline::fakes::MemStore::default());
    let fetch = crate::poll::HttpFetch::new(&crate::delivery::HttpOptions {
        allow_local: true,
        ..crate::delivery::HttpOptions::default()
    })
    .unwrap();
    let ports = super::PollerPorts {
        states: states.clone(),
        store: store.clone(),
        fetch: Arc::new(fetch),
    };
    (states, store, ports)
}
