//! `Registry` over the DynamoDB config table, which the CLI writes with
//! [`put_config`].
//!
//! Items: `pk` = `source#{id}`, `poller#{id}` or `subscription#{id}`,
//! `config` (S, the JSON of [`crate::config::SourceConfig`] /
//! [`crate::poll::PollerConfig`] / [`crate::config::SubscriptionConfig`]), `enabled` (BOOL). Pollers are read as what
//! subscriptions may name; they are not served as sources (a webhook to a
//! poller's id is a 404).
//! The whole table is read with one (paginated) Scan and cached for the
//! configured TTL. Each entry is resolved on its own, on first use
//! ([`LazyRegistry`]): a function resolves only the secrets it uses, and an
//! item that does not parse or validate, or whose secret does not resolve,
//! is unavailable alone (logged) while the others are served. A refresh
//! that fails keeps the cached copy in service (with a warning); with no
//! copy the registry is unavailable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Mutex;

use super::item::{self, PK, Update, cf, s};
use super::sdk_error;
use crate::admin::ports::{ConfigItem, Kind};
use crate::config::{
    BrokenEntry, ConfigError, ConfigFile, LazyRegistry, Policy, Registry, Source, SourceError,
    Subscription,
};
use crate::error::Unavailable;
use crate::secrets::{Keep, Secret, SecretKeeper, SecretRef, SecretResolver};
use crate::time::now_ms;

/// After a failed refresh, the cached copy is served this long before the
/// next try (at most the TTL), so an outage does not cost a Scan per call.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ConfigTableError {
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The config as stored: the file's shape, plus the ids of disabled
/// subscriptions.
#[derive(Debug, Clone, Default)]
pub struct StoredConfig {
    pub file: ConfigFile,
    pub disabled: Vec<String>,
    /// Sources disabled through the admin API: not served (404).
    pub disabled_sources: Vec<String>,
    /// Pollers disabled through the admin API: not polled.
    pub disabled_pollers: Vec<String>,
    /// Items that could not be read (kept out of `file`).
    pub broken: Vec<BrokenEntry>,
}

struct Cached {
    registry: Arc<LazyRegistry>,
    /// When the cached copy stops being fresh.
    fresh_until: Instant,
}

pub struct DynamoRegistry {
    client: Client,
    table: String,
    secrets: Arc<dyn SecretResolver>,
    /// Where handshakes' secrets are written (the receive function's).
    keeper: Option<Arc<dyn SecretKeeper>>,
    ttl: Duration,
    policy: Policy,
    /// One refresh at a time; callers wait for it rather than scan too.
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for DynamoRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoRegistry")
            .field("table", &self.table)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DynamoRegistry {
    pub fn new(
        client: Client,
        table: &str,
        secrets: Arc<dyn SecretResolver>,
        ttl: Duration,
    ) -> Self {
        Self {
            client,
            table: table.to_owned(),
            secrets,
            keeper: None,
            ttl,
            policy: Policy::aws(false),
            cache: Mutex::new(None),
        }
    }

    /// Keep the secrets sources' handshakes send (Asana's) with `keeper`.
    pub fn with_keeper(mut self, keeper: Arc<dyn SecretKeeper>) -> Self {
        self.keeper = Some(keeper);
        self
    }

    /// What the deployment allows (`allow_local` off unless switched on).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The current registry: the cached one while fresh, else reloaded.
    pub async fn current(&self) -> Result<Arc<LazyRegistry>, Unavailable> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.fresh_until
        {
            return Ok(c.registry.clone());
        }
        match self.load().await {
            Ok(registry) => {
                let registry = Arc::new(registry);
                *cache = Some(Cached {
                    registry: registry.clone(),
                    fresh_until: Instant::now() + self.ttl,
                });
                Ok(registry)
            }
            Err(e) => match cache.as_mut() {
                Some(c) => {
                    tracing::warn!(table = %self.table, error = %e, "config refresh failed; serving the cached copy");
                    c.fresh_until = Instant::now() + RETRY_AFTER_FAILURE.min(self.ttl);
                    Ok(c.registry.clone())
                }
                None => Err(e.context(format_args!("config table {}", self.table))),
            },
        }
    }

    /// Drop the cached copy: the next call reloads.
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// Read the table; nothing is resolved yet. Items that cannot be
    /// served are logged here (once per refresh).
    async fn load(&self) -> Result<LazyRegistry, Unavailable> {
        let stored = read_config(&self.client, &self.table)
            .await
            .map_err(|e| match e {
                ConfigTableError::Unavailable(u) => u,
                ConfigTableError::Invalid(e) => Unavailable::new(e),
            })?;
        let registry = LazyRegistry::new(
            stored.file,
            stored.disabled_sources.into_iter().collect(),
            &stored.disabled.into_iter().collect(),
            stored.broken,
            self.policy,
            self.secrets.clone(),
        )
        .with_keeper(self.keeper.clone());
        for b in registry.broken() {
            tracing::warn!(table = %self.table, kind = b.kind, id = %b.id, reason = %b.reason, "config entry set aside");
        }
        Ok(registry)
    }
}

#[async_trait]
impl Registry for DynamoRegistry {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, SourceError> {
        self.current().await?.source(id).await
    }

    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable> {
        self.current().await?.subscriptions_of(source).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable> {
        self.current().await?.subscription(id).await
    }

    /// Persist `enabled = false`, then flip the cached flag (the
    /// subscription objects handed out share it).
    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable> {
        set_subscription_enabled(&self.client, &self.table, id, false).await?;
        if let Some(c) = self.cache.lock().await.as_ref() {
            c.registry.set_enabled(id, false);
        }
        tracing::warn!(subscription = id, "subscription disabled");
        Ok(())
    }

    /// Other warm instances of the function see the secret within
    /// seconds: a source waiting for it is resolved again after a short
    /// while (see [`LazyRegistry`]).
    async fn keep_handshake_secret(
        &self,
        source: &str,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, Unavailable> {
        self.current()
            .await?
            .keep_handshake_secret(source, reference, value)
            .await
    }
}

/// The key prefix of each kind's items.
fn prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::Source => cf::SOURCE_PREFIX,
        Kind::Poller => cf::POLLER_PREFIX,
        Kind::Subscription => cf::SUBSCRIPTION_PREFIX,
    }
}

/// The key of an entry's item.
pub(crate) fn config_pk(kind: Kind, id: &str) -> String {
    format!("{}{id}", prefix(kind))
}

/// An item's kind and id, from its key; None for a key of no kind.
pub(crate) fn parse_config_pk(pk: &str) -> Option<(Kind, &str)> {
    [Kind::Source, Kind::Poller, Kind::Subscription]
        .into_iter()
        .find_map(|k| pk.strip_prefix(prefix(k)).map(|id| (k, id)))
}

/// Read the whole table (one paginated, consistent Scan). Items are sorted
/// by id, so the result does not depend on the scan order. An item that
/// does not parse is set aside in `broken`, not an error: the others stay
/// readable.
pub async fn read_config(client: &Client, table: &str) -> Result<StoredConfig, ConfigTableError> {
    let items: Vec<item::Item> = client
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| sdk_error("Scan (config)", e))?;
    let mut stored = StoredConfig::default();
    for it in &items {
        if let Err(b) = read_item(it, &mut stored) {
            stored.broken.push(b);
        }
    }
    stored.file.sources.sort_by(|a, b| a.id.cmp(&b.id));
    stored.file.pollers.sort_by(|a, b| a.id.cmp(&b.id));
    stored.file.subscriptions.sort_by(|a, b| a.id.cmp(&b.id));
    stored.disabled.sort();
    stored.disabled_sources.sort();
    stored.disabled_pollers.sort();
    stored
        .broken
        .sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    Ok(stored)
}

/// One item into `stored`; a broken one named by its key.
fn read_item(it: &item::Item, stored: &mut StoredConfig) -> Result<(), BrokenEntry> {
    let pk = item::get_s(it, PK).map_err(|e| BrokenEntry::new("config item", "?", e))?;
    let Some((kind, id)) = parse_config_pk(pk) else {
        tracing::warn!(pk, "config item of an unknown kind ignored");
        return Ok(());
    };
    let broken = |e: &dyn std::fmt::Display| {
        BrokenEntry::new(kind.as_str(), id, format!("item {pk:?}: {e}"))
    };
    let json = item::get_s(it, cf::CONFIG).map_err(|e| broken(&e))?;
    let enabled = item::opt_bool(it, cf::ENABLED)
        .map_err(|e| broken(&e))?
        .unwrap_or(true);
    let entry = ConfigItem::from_json(kind, json).map_err(|e| broken(&e))?;
    check_id_matches(pk, id, entry.id()).map_err(|e| broken(&e))?;
    if !enabled {
        let disabled = match kind {
            Kind::Source => &mut stored.disabled_sources,
            Kind::Poller => &mut stored.disabled_pollers,
            Kind::Subscription => &mut stored.disabled,
        };
        disabled.push(id.to_owned());
    }
    entry.add_to(&mut stored.file);
    Ok(())
}

fn invalid(message: String) -> ConfigTableError {
    ConfigTableError::Invalid(ConfigError::Invalid(message))
}

fn check_id_matches(pk: &str, key_id: &str, config_id: &str) -> Result<(), ConfigTableError> {
    if key_id == config_id {
        Ok(())
    } else {
        Err(invalid(format!(
            "config item {pk:?} holds the config of {config_id:?}"
        )))
    }
}

/// Write every source, poller and subscription of `file` (validated first). An
/// existing item's config is replaced, but its `enabled` flag is kept: a
/// subscription disabled after a 410 stays disabled until it is enabled
/// explicitly ([`set_subscription_enabled`]). Items not in `file` are left
/// alone.
pub async fn put_config(
    client: &Client,
    table: &str,
    file: &ConfigFile,
) -> Result<(), ConfigTableError> {
    file.validate()?;
    let now = now_ms();
    let mut writes = Vec::new();
    for entry in ConfigItem::all_of(file) {
        let (kind, id) = (entry.kind(), entry.id());
        let json = serde_json::to_string(&entry)
            .map_err(|e| invalid(format!("{} {id:?}: {e}", kind.as_str())))?;
        writes.push((config_pk(kind, id), json));
    }
    let writes: Vec<_> = writes
        .into_iter()
        .map(|(pk, json)| async move {
            Update::new()
                .set(cf::CONFIG, s(json))
                .set_once(cf::ENABLED, AttributeValue::Bool(true))
                .set(cf::UPDATED_AT_MS, item::n(now))
                .apply(client.update_item().table_name(table).key(PK, s(pk)))
                .send()
                .await
                .map_err(|e| sdk_error("UpdateItem (config)", e))
        })
        .collect();
    futures::stream::iter(writes)
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Persist a subscription's `enabled` flag. A subscription that is not in
/// the table is not created (no stub item).
pub async fn set_subscription_enabled(
    client: &Client,
    table: &str,
    id: &str,
    enabled: bool,
) -> Result<(), Unavailable> {
    let result = Update::new()
        .set(cf::ENABLED, AttributeValue::Bool(enabled))
        .set(cf::UPDATED_AT_MS, item::n(now_ms()))
        .condition(|u| format!("attribute_exists({})", u.name(PK)))
        .apply(
            client
                .update_item()
                .table_name(table)
                .key(PK, s(config_pk(Kind::Subscription, id))),
        )
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => match e.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                tracing::warn!(
                    table,
                    subscription = id,
                    "no such subscription in the config table"
                );
                Ok(())
            }
            _ => Err(sdk_error("UpdateItem (config)", e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::aws::ssm_secrets::SsmSecrets;
    use crate::aws::testing::{MotoServer, TestResources};
    use crate::secrets::EnvSecrets;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn file(ssm_path: &str) -> ConfigFile {
        ConfigFile::parse(&format!(
            r#"
            [[sources]]
            id = "github"
            provider = "github"
            secrets = ["env:SLUICE_T_CFG_GH", "ssm:{ssm_path}"]
            dedupe_window = "2d"

            [[subscriptions]]
            id = "deploys"
            source = "github"
            events = ["push", "pull_request.*"]
            url = "https://example.com/hooks/deploys"
            signing_secret = "ssm:{ssm_path}"
            retry_schedule = ["5s", "1m"]

            [[subscriptions]]
            id = "audit"
            source = "github"
            events = ["*"]
            url = "http://127.0.0.1:9/audit"
            allow_local = true
            "#
        ))
        .unwrap()
    }

    async fn setup(ttl: Duration) -> (TestResources, String, Arc<SsmSecrets>, DynamoRegistry) {
        let res = TestResources::create(MotoServer::shared()).await;
        let path = format!("/sluice/{}", res.settings.config_table);
        res.clients
            .ssm
            .put_parameter()
            .name(&path)
            .value(SECRET)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
        let secrets = Arc::new(SsmSecrets::new(
            res.clients.ssm.clone(),
            EnvSecrets::from_map(HashMap::from([(
                "SLUICE_T_CFG_GH".into(),
                "gh-secret".into(),
            )])),
            Duration::from_secs(300),
        ));
        let registry = DynamoRegistry::new(
            res.clients.dynamodb.clone(),
            &res.settings.config_table,
            secrets.clone(),
            ttl,
        )
        .with_policy(Policy::aws(true));
        (res, path, secrets, registry)
    }

    #[tokio::test]
    async fn config_round_trips_and_disable_persists() {
        let (res, path, secrets, registry) = setup(Duration::from_secs(60)).await;
        let f = file(&path);
        put_config(&res.clients.dynamodb, &res.settings.config_table, &f)
            .await
            .unwrap();

        let stored = read_config(&res.clients.dynamodb, &res.settings.config_table)
            .await
            .unwrap();
        assert_eq!(stored.file.sources, f.sources);
        let mut subs = f.subscriptions.clone();
        subs.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(stored.file.subscriptions, subs);
        assert!(stored.disabled.is_empty());

        let src = registry.source("github").await.unwrap().unwrap();
        assert_eq!(src.dedupe_window, Duration::from_secs(2 * 24 * 3600));
        assert!(registry.source("nope").await.unwrap().is_none());
        let deploys = registry.subscription("deploys").await.unwrap().unwrap();
        assert!(
            deploys.signing_key.is_some(),
            "ssm: signing secret resolved"
        );
        assert!(deploys.is_enabled());
        assert_eq!(deploys.retry.schedule.len(), 2);
        let mut of: Vec<String> = registry
            .subscriptions_of("github")
            .await
            .unwrap()
            .iter()
            .map(|s| s.id.clone())
            .collect();
        of.sort();
        assert_eq!(of, ["audit", "deploys"]);

        // Disabling flips the flag in hand at once and persists it.
        registry.disable_subscription("deploys").await.unwrap();
        assert!(!deploys.is_enabled());
        let stored = read_config(&res.clients.dynamodb, &res.settings.config_table)
            .await
            .unwrap();
        assert_eq!(stored.disabled, ["deploys"]);
        let fresh = DynamoRegistry::new(
            res.clients.dynamodb.clone(),
            &res.settings.config_table,
            secrets.clone(),
            Duration::from_secs(60),
        )
        .with_policy(Policy::aws(true));
        assert!(
            !fresh
                .subscription("deploys")
                .await
                .unwrap()
                .unwrap()
                .is_enabled()
        );
        assert!(
            fresh
                .subscription("audit")
                .await
                .unwrap()
                .unwrap()
                .is_enabled()
        );

        // Writing the config again keeps it disabled.
        put_config(&res.clients.dynamodb, &res.settings.config_table, &f)
            .await
            .unwrap();
        fresh.invalidate().await;
        assert!(
            !fresh
                .subscription("deploys")
                .await
                .unwrap()
                .unwrap()
                .is_enabled()
        );
        // Enabling is explicit.
        set_subscription_enabled(
            &res.clients.dynamodb,
            &res.settings.config_table,
            "deploys",
            true,
        )
        .await
        .unwrap();
        fresh.invalidate().await;
        assert!(
            fresh
                .subscription("deploys")
                .await
                .unwrap()
                .unwrap()
                .is_enabled()
        );
        // Disabling an unknown subscription creates nothing.
        registry.disable_subscription("ghost").await.unwrap();
        let stored = read_config(&res.clients.dynamodb, &res.settings.config_table)
            .await
            .unwrap();
        assert_eq!(stored.file.subscriptions.len(), 2);
    }

    #[tokio::test]
    async fn cache_serves_within_ttl_and_survives_a_failed_refresh() {
        let (res, path, _secrets, registry) = setup(Duration::from_millis(1500)).await;
        let db = &res.clients.dynamodb;
        let table = &res.settings.config_table;
        // Empty table: a registry with nothing in it.
        assert!(registry.source("github").await.unwrap().is_none());
        let empty = registry.current().await.unwrap();
        put_config(db, table, &file(&path)).await.unwrap();
        // Within the TTL: the cached (empty) copy.
        assert!(registry.source("github").await.unwrap().is_none());
        assert!(Arc::ptr_eq(&empty, &registry.current().await.unwrap()));
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert!(registry.source("github").await.unwrap().is_some());

        // A broken item is set aside; the rest is served, cold or warm.
        db.put_item()
            .table_name(table)
            .item(PK, s("subscription#broken"))
            .item(cf::CONFIG, s("{not json"))
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert!(registry.source("github").await.unwrap().is_some());
        let err = registry.subscription("broken").await.unwrap_err();
        assert!(err.to_string().contains("subscription#broken"), "{err}");
        let cold =
            DynamoRegistry::new(db.clone(), table, _secrets.clone(), Duration::from_secs(60))
                .with_policy(Policy::aws(true));
        assert!(cold.source("github").await.unwrap().is_some());
        assert!(cold.subscription("deploys").await.unwrap().is_some());

        // A refresh that cannot read the table keeps the cached copy.
        db.delete_table().table_name(table).send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert!(registry.source("github").await.unwrap().is_some());
        // With no cached copy, it is unavailable and the log says why.
        let none = DynamoRegistry::new(db.clone(), table, _secrets, Duration::from_secs(60));
        let Err(SourceError::Unavailable(err)) = none.source("github").await else {
            panic!("expected the registry to be unavailable");
        };
        assert!(err.to_string().contains(table.as_str()), "{err}");
        assert!(!err.is_permanent());
    }

    /// Counts the references it resolves.
    struct Counting {
        inner: Arc<dyn SecretResolver>,
        seen: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl SecretResolver for Counting {
        async fn resolve(
            &self,
            r: &crate::secrets::SecretRef,
        ) -> Result<crate::secrets::Secret, crate::secrets::SecretError> {
            self.seen.lock().unwrap().push(r.to_string());
            self.inner.resolve(r).await
        }
    }

    #[tokio::test]
    async fn each_entry_resolves_on_its_own_and_only_when_used() {
        let (res, path, secrets, _registry) = setup(Duration::from_millis(1000)).await;
        let (db, table) = (&res.clients.dynamodb, &res.settings.config_table);
        let mut f = file(&path);
        // A source whose secret is not there, beside the healthy one.
        let mut broken = f.sources[0].clone();
        broken.id = "broken".into();
        broken.secrets = vec![format!("ssm:{path}-missing").parse().unwrap()];
        f.sources.push(broken);
        put_config(db, table, &f).await.unwrap();
        let counting = Arc::new(Counting {
            inner: secrets.clone(),
            seen: Default::default(),
        });
        let registry = DynamoRegistry::new(
            db.clone(),
            table,
            counting.clone(),
            Duration::from_millis(1000),
        )
        .with_policy(Policy::aws(true));

        // Cold: the healthy source is served, the broken one is unavailable
        // on its own (typed, with the reason for the log).
        assert!(registry.source("github").await.unwrap().is_some());
        // Only the source's secrets were resolved, not the signing secret.
        let seen = counting.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            seen.iter()
                .all(|r| f.sources[0].secrets.iter().any(|s| s.to_string() == *r)),
            "{seen:?}"
        );
        let Err(SourceError::Broken(b)) = registry.source("broken").await else {
            panic!("expected a broken source");
        };
        assert_eq!((b.kind, b.id.as_str()), ("source", "broken"));
        assert!(b.reason.contains("-missing"), "{b}");
        // Routing needs no secret; the delivery lookup resolves its own.
        counting.seen.lock().unwrap().clear();
        assert_eq!(registry.subscriptions_of("github").await.unwrap().len(), 2);
        assert!(counting.seen.lock().unwrap().is_empty());
        let deploys = registry.subscription("deploys").await.unwrap().unwrap();
        assert!(deploys.signing_key.is_some());
        assert_eq!(
            counting.seen.lock().unwrap().clone(),
            [format!("ssm:{path}")]
        );

        // Warm: a source added later appears although one is broken.
        let mut fresh = f.sources[0].clone();
        fresh.id = "fresh".into();
        put_config(
            db,
            table,
            &ConfigFile {
                sources: vec![fresh],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(registry.source("fresh").await.unwrap().is_some());
        assert!(registry.source("github").await.unwrap().is_some());
        assert!(matches!(
            registry.source("broken").await,
            Err(SourceError::Broken(_))
        ));
    }

    #[tokio::test]
    async fn the_deployment_policy_applies_to_config_written_earlier() {
        let (res, path, secrets, _registry) = setup(Duration::from_secs(60)).await;
        let (db, table) = (&res.clients.dynamodb, &res.settings.config_table);
        let mut f = file(&path);
        f.sources[0].max_body_bytes = Some(crate::config::AWS_MAX_BODY_BYTES + 1);
        // Written as an older version would have: no policy checked.
        put_config(db, table, &f).await.unwrap();
        let registry = DynamoRegistry::new(db.clone(), table, secrets, Duration::from_secs(60));
        // allow_local is off by default: the subscription is refused at
        // load, the others are served.
        let err = registry.subscription("audit").await.unwrap_err();
        assert!(err.to_string().contains("allow_local"), "{err}");
        assert_eq!(
            registry
                .subscriptions_of("github")
                .await
                .unwrap()
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["deploys"]
        );
        // A body bound above what DynamoDB can store: the source names it.
        let Err(SourceError::Broken(b)) = registry.source("github").await else {
            panic!("expected a broken source");
        };
        assert!(
            b.reason.contains("max_body_bytes") && b.reason.contains("\"github\""),
            "{b}"
        );
    }

    #[tokio::test]
    async fn put_config_validates_first() {
        let (res, _path, _secrets, _registry) = setup(Duration::from_secs(60)).await;
        let mut f = file("/x");
        f.subscriptions[0].source = "nowhere".into();
        let err = put_config(&res.clients.dynamodb, &res.settings.config_table, &f)
            .await
            .unwrap_err();
        assert!(matches!(err, ConfigTableError::Invalid(_)), "{err}");
        let stored = read_config(&res.clients.dynamodb, &res.settings.config_table)
            .await
            .unwrap();
        assert!(stored.file.sources.is_empty() && stored.file.subscriptions.is_empty());
    }

    #[tokio::test]
    async fn put_config_writes_pollers_that_subscriptions_name() {
        let (res, _path, _secrets, registry) = setup(Duration::from_secs(60)).await;
        let mut f = file("/x");
        f.pollers = ConfigFile::parse(
            "[[pollers]]\nid = \"feed\"\nurl = \"https://example.com/feed.xml\"\nformat = \"feed\"\n",
        )
        .unwrap()
        .pollers;
        f.subscriptions[0].source = "feed".into();
        put_config(&res.clients.dynamodb, &res.settings.config_table, &f)
            .await
            .unwrap();
        let stored = read_config(&res.clients.dynamodb, &res.settings.config_table)
            .await
            .unwrap();
        assert_eq!(stored.file.pollers, f.pollers);
        assert!(stored.disabled_pollers.is_empty());
        registry.invalidate().await;
        assert!(
            registry.source("feed").await.unwrap().is_none(),
            "not a source"
        );
        let on_feed = registry.subscriptions_of("feed").await.unwrap();
        assert_eq!(on_feed.len(), 1);
        assert_eq!(on_feed[0].id, f.subscriptions[0].id);
    }
}
