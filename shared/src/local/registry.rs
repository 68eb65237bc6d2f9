//! The embedded gateway's registry: the sources and subscriptions of the
//! config table, resolved, and swapped whole when the table changes (the
//! admin API reloads at once; changes from another process are noticed by
//! polling the table's version). Pollers are read with them, as what
//! subscriptions may name, but are not served as sources: a webhook to a
//! poller's id is a 404.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::SqliteStore;
use crate::admin::ports::{ConfigItem, ConfigStore, Kind, Reload};
use crate::config::{
    ConfigError, ConfigFile, DEFAULT_MAX_BODY_BYTES, Policy, Registry, Source, SourceError,
    StaticRegistry, Subscription, keep_with,
};
use crate::error::Unavailable;
use crate::poll::PollerConfig;
use crate::secrets::{Keep, Secret, SecretRef, SecretResolver};

/// One resolved view of the config table.
struct Snapshot {
    registry: StaticRegistry,
    /// The enabled pollers: what the poll worker polls.
    pollers: Arc<[PollerConfig]>,
    disabled_sources: HashSet<String>,
    max_body_bytes: usize,
    version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// A registry over the config table. Disabled sources are not served
/// (their webhooks answer 404); disabled subscriptions get no new tasks.
pub struct LocalRegistry {
    snapshot: RwLock<Arc<Snapshot>>,
    store: SqliteStore,
    secrets: Arc<dyn SecretResolver>,
    /// One reload at a time, so an older one never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
}

impl LocalRegistry {
    /// Read and resolve the config table, each entry on its own: one that
    /// does not validate or whose secret does not resolve is logged and
    /// unavailable (its webhooks answer 503), and the others are served.
    /// Fails only when the table cannot be read.
    pub async fn load(
        store: SqliteStore,
        secrets: Arc<dyn SecretResolver>,
    ) -> Result<Self, RegistryError> {
        let snapshot = build(&store, secrets.as_ref()).await?;
        Ok(Self {
            snapshot: RwLock::new(Arc::new(snapshot)),
            store,
            secrets,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    fn current(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc.
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The enabled pollers, as of the last load.
    pub fn pollers(&self) -> Arc<[PollerConfig]> {
        self.current().pollers.clone()
    }

    /// How `env:`, `ssm:` and `db:` references are resolved here.
    pub fn secrets(&self) -> &dyn SecretResolver {
        self.secrets.as_ref()
    }

    /// The largest body any source accepts (the HTTP layer's read cap).
    pub fn max_body_bytes(&self) -> usize {
        self.current().max_body_bytes
    }

    /// Rebuild from the table. On failure the running config stays.
    /// Tasks parked while their subscription was paused are woken once it
    /// is enabled again, whichever process resumed it.
    pub async fn reload(&self) -> Result<(), RegistryError> {
        let _one = self.reloading.lock().await;
        let snapshot = build(&self.store, self.secrets.as_ref()).await?;
        let enabled: Vec<String> = snapshot
            .registry
            .subscriptions()
            .filter(|s| s.is_enabled())
            .map(|s| s.id.clone())
            .collect();
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        match self.store.wake_parked(enabled).await {
            Ok(n) if n > 0 => tracing::info!(tasks = n, "subscription resumed; parked tasks woken"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not wake parked tasks; they come back at their recheck")
            }
        }
        Ok(())
    }

    /// Reload if the table changed since the last load. True if it did.
    pub async fn reload_if_changed(&self) -> Result<bool, RegistryError> {
        let version = self.store.config_version().await?;
        if version == self.current().version {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }
}

async fn build(
    store: &SqliteStore,
    secrets: &dyn SecretResolver,
) -> Result<Snapshot, RegistryError> {
    // Version first: a change made while reading is seen by the next check.
    let version = store.config_version().await?;
    let mut file = ConfigFile::default();
    let mut disabled_subscriptions = Vec::new();
    let mut disabled_sources = HashSet::new();
    let mut pollers = Vec::new();
    for entry in store.list_config().await? {
        if let (ConfigItem::Poller(p), true) = (&entry.item, entry.enabled) {
            pollers.push(p.clone());
        }
        if !entry.enabled {
            let id = entry.item.id().to_owned();
            match entry.item.kind() {
                Kind::Source => {
                    disabled_sources.insert(id);
                }
                Kind::Subscription => disabled_subscriptions.push(id),
                Kind::Poller => {}
            }
        }
        entry.item.add_to(&mut file);
    }
    let registry = file.resolve_each(&Policy::EMBEDDED, secrets).await;
    for b in registry.broken() {
        tracing::warn!(kind = b.kind, id = %b.id, reason = %b.reason, "config entry set aside; fix it through the admin API or the config file");
    }
    for id in &disabled_subscriptions {
        if let Some(s) = registry.get_subscription(id) {
            s.set_enabled(false);
        }
    }
    let max_body_bytes = file
        .sources
        .iter()
        .map(|s| s.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES))
        .max()
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    Ok(Snapshot {
        registry,
        pollers: pollers.into(),
        disabled_sources,
        max_body_bytes,
        version,
    })
}

#[async_trait]
impl Registry for LocalRegistry {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, SourceError> {
        let snap = self.current();
        if snap.disabled_sources.contains(id) {
            return Ok(None);
        }
        snap.registry.source(id).await
    }

    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable> {
        self.current().registry.subscriptions_of(source).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable> {
        self.current().registry.subscription(id).await
    }

    /// Persisted in the config table (it survives a restart and shows in
    /// the admin API), and flipped at once on the subscription in hand.
    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable> {
        self.store
            .set_enabled(Kind::Subscription, id, false)
            .await?;
        self.current().registry.disable_subscription(id).await
    }

    /// Written to the database's secrets (a `db:` reference), then the
    /// config reloaded so that the source verifies with it at once.
    async fn keep_handshake_secret(
        &self,
        _source: &str,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, Unavailable> {
        let kept = keep_with(Some(&self.store), reference, value).await?;
        LocalRegistry::reload(self)
            .await
            .map_err(|e| Unavailable::new(format!("config reload: {e}")))?;
        Ok(kept)
    }
}

#[async_trait]
impl Reload for LocalRegistry {
    async fn reload(&self) -> Result<(), Unavailable> {
        LocalRegistry::reload(self)
            .await
            .map_err(|e| Unavailable::new(format!("config reload: {e}")))
    }
}
