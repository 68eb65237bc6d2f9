//! Applying a config file to the config store, idempotently: what the
//! embedded gateway does at start-up, and what `sluice apply` does (through
//! [`Admin::plan_file`] and [`Admin::apply_file`]).
//!
//! The file owns the entries it declares (origin `file`): they are created
//! or replaced, and file entries it no longer declares are deleted. Entries
//! created through the API are left alone, unless the file declares the
//! same id, in which case the file's entry replaces it (with a warning).
//! The result must validate as a whole before anything is written.

use super::ports::{ConfigEntry, ConfigItem, ConfigStore, Kind, Origin, WriteError};
use super::{Admin, AdminError};
use crate::config::{ConfigError, ConfigFile};
use crate::error::Unavailable;

/// What applying a file changes; empty when the store already matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub create: Vec<ConfigItem>,
    pub update: Vec<ConfigItem>,
    /// The stored versions of `update`, in the same order (for a diff).
    pub before: Vec<ConfigItem>,
    /// API entries the file takes over (also in `update`).
    pub take_over: Vec<(Kind, String)>,
    pub delete: Vec<(Kind, String)>,
    pub unchanged: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the config file and the API-created config do not fit together: {0}")]
    Invalid(ConfigError),
    /// Another process changed the config meanwhile (see
    /// [`WriteError::Conflict`]).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl From<WriteError> for SyncError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Conflict(m) => Self::Conflict(m),
            WriteError::Unavailable(u) => Self::Unavailable(u),
        }
    }
}

/// The changes that make the store hold `file` as the entries of `origin`.
pub fn plan(current: &[ConfigEntry], file: &ConfigFile, origin: Origin) -> Result<Plan, SyncError> {
    let wanted = ConfigItem::all_of(file);
    let mut plan = Plan::default();
    for item in &wanted {
        match current
            .iter()
            .find(|e| e.item.kind() == item.kind() && e.item.id() == item.id())
        {
            None => plan.create.push(item.clone()),
            Some(e) if e.item == *item && e.origin == origin => plan.unchanged += 1,
            Some(e) => {
                if e.origin != origin {
                    plan.take_over.push((item.kind(), item.id().to_owned()));
                }
                plan.update.push(item.clone());
                plan.before.push(e.item.clone());
            }
        }
    }
    for e in current.iter().filter(|e| e.origin == origin) {
        let kept = wanted
            .iter()
            .any(|i| i.kind() == e.item.kind() && i.id() == e.item.id());
        if !kept {
            plan.delete.push((e.item.kind(), e.item.id().to_owned()));
        }
    }
    // The whole result must hold together (a kept API subscription whose
    // source the file dropped, say) before anything is written.
    merged(current, file, origin)
        .validate()
        .map_err(SyncError::Invalid)?;
    Ok(plan)
}

/// The config as it will stand: the file's entries, and the other
/// origin's entries the file does not replace.
fn merged(current: &[ConfigEntry], file: &ConfigFile, origin: Origin) -> ConfigFile {
    let wanted = ConfigItem::all_of(file);
    let mut merged = file.clone();
    for e in current {
        let replaced = wanted
            .iter()
            .any(|i| i.kind() == e.item.kind() && i.id() == e.item.id());
        if e.origin == origin || replaced {
            continue;
        }
        e.item.clone().add_to(&mut merged);
    }
    merged
}

/// Plan and write. Sources and pollers are written before the
/// subscriptions that need them, and subscriptions deleted before them.
pub async fn apply(
    store: &dyn ConfigStore,
    file: &ConfigFile,
    origin: Origin,
) -> Result<Plan, SyncError> {
    let current = store.list_config().await?;
    let plan = plan(&current, file, origin)?;
    for (kind, id) in &plan.take_over {
        tracing::warn!(
            kind = kind.as_str(),
            id,
            "the config file now defines an entry created through the API; the file's version replaces it"
        );
    }
    let writes = plan.create.iter().chain(&plan.update);
    let (sources, subs): (Vec<&ConfigItem>, Vec<&ConfigItem>) =
        writes.partition(|i| i.kind().is_event_source());
    for item in sources.into_iter().chain(subs) {
        store.upsert_config(item, origin).await?;
    }
    let mut deletes = plan.delete.clone();
    deletes.sort_by_key(|(k, _)| k.is_event_source());
    for (kind, id) in &deletes {
        store.delete_config(*kind, id).await?;
    }
    Ok(plan)
}

impl From<SyncError> for AdminError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Invalid(_) => AdminError::invalid("config", e.to_string()),
            SyncError::Conflict(m) => AdminError::Conflict(m),
            SyncError::Unavailable(u) => AdminError::Unavailable(u),
        }
    }
}

impl Admin {
    /// What applying `file` (as the file's entries) would change. The
    /// result is checked whole, with every secret resolved, as a running
    /// gateway would load it.
    pub async fn plan_file(&self, file: &ConfigFile) -> Result<Plan, AdminError> {
        let current = self.ports.config.list_config().await?;
        self.check_plan(&current, file).await
    }

    async fn check_plan(
        &self,
        current: &[ConfigEntry],
        file: &ConfigFile,
    ) -> Result<Plan, AdminError> {
        let plan = plan(current, file, Origin::File)?;
        let merged = merged(current, file, Origin::File);
        let invalid = |e: crate::config::ConfigError| AdminError::invalid("config", e.to_string());
        merged
            .resolve_with(&self.ports.policy, self.ports.secrets.as_ref())
            .await
            .map_err(invalid)?;
        // Pollers are not in the resolved registry; their header secrets
        // must resolve all the same.
        futures::future::try_join_all(merged.pollers.iter().map(|p| {
            crate::poll::resolve_poller(p, &self.ports.policy, self.ports.secrets.as_ref())
        }))
        .await
        .map_err(invalid)?;
        Ok(plan)
    }

    /// Apply `file` if its plan is still `shown` (what the operator
    /// agreed to); a config changed meanwhile is a conflict, and nothing
    /// is written. Returns the plan applied.
    pub async fn apply_file(&self, file: &ConfigFile, shown: &Plan) -> Result<Plan, AdminError> {
        let _w = self.writes.lock().await;
        let current = self.ports.config.list_config().await?;
        let now = self.check_plan(&current, file).await?;
        if now != *shown {
            return Err(AdminError::Conflict(
                "the stored config changed since the plan was made; run apply again".into(),
            ));
        }
        if now.is_empty() {
            return Ok(now);
        }
        let applied = apply(self.ports.config.as_ref(), file, Origin::File).await?;
        self.make_live().await;
        Ok(applied)
    }
}
