//! The admin API's config and secret ports on AWS: [`ConfigStore`] over the
//! config table (the items [`super::config_table`] reads), [`SecretStore`]
//! over SSM SecureString parameters, and [`Reload`] for [`DynamoRegistry`].
//!
//! Items keep the shape `config_table` documents, plus `origin` (S, `file`
//! or `api`) and `created_at_ms` (N); items written before have neither and
//! read as `file` entries. The event log port is [`super::event_log`];
//! [`super::admin_ports`] builds them all.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_ssm::operation::delete_parameter::DeleteParameterError;
use aws_sdk_ssm::types::ParameterType;

use super::config_table::{DynamoRegistry, config_pk as pk, parse_config_pk};
use super::item::{self, Item, PK, Update, cf, n, s};
use super::sdk_error;
use crate::admin::ports::{ConfigEntry, ConfigItem, ConfigStore, Kind, Origin, Reload, WriteError};
use crate::error::Unavailable;
use crate::secrets::{Secret, SecretError, SecretRef, SecretStore};
use crate::time::now_ms;

/// Who owns the entry (`file` | `api`).
pub const ORIGIN: &str = "origin";
pub const CREATED_AT_MS: &str = "created_at_ms";
/// On a source (or poller) item: bumped after every write of one of its
/// subscriptions, so that deleting the source can require that none was
/// written since it looked. The admin function and operators' CLIs write
/// the table concurrently, and DynamoDB has no condition across items.
pub const SUBSCRIPTIONS_VERSION: &str = "subscriptions_version";

/// The config table as the admin API's config store.
#[derive(Debug, Clone)]
pub struct DynamoConfigStore {
    client: Client,
    table: String,
}

impl DynamoConfigStore {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }
}

fn config_json(item: &ConfigItem) -> Result<String, Unavailable> {
    serde_json::to_string(item).map_err(Unavailable::new)
}

/// None for an item of another kind (ignored, as `read_config` does).
fn entry(it: &Item) -> Result<Option<ConfigEntry>, Unavailable> {
    let bad = |e: &dyn std::fmt::Display| Unavailable::new(format!("config item: {e}"));
    let key = item::get_s(it, PK).map_err(|e| bad(&e))?;
    let Some((kind, _)) = parse_config_pk(key) else {
        return Ok(None);
    };
    let json = item::get_s(it, cf::CONFIG).map_err(|e| bad(&e))?;
    let parsed = ConfigItem::from_json(kind, json).map_err(|e| bad(&e))?;
    let origin = match item::opt_s(it, ORIGIN).map_err(|e| bad(&e))? {
        None => Origin::File,
        Some(o) => Origin::parse(o).ok_or_else(|| bad(&format!("bad origin {o:?}")))?,
    };
    let updated: i64 = item::opt_n(it, cf::UPDATED_AT_MS)
        .map_err(|e| bad(&e))?
        .unwrap_or_default();
    Ok(Some(ConfigEntry {
        item: parsed,
        origin,
        enabled: item::opt_bool(it, cf::ENABLED)
            .map_err(|e| bad(&e))?
            .unwrap_or(true),
        created_at_ms: item::opt_n(it, CREATED_AT_MS)
            .map_err(|e| bad(&e))?
            .unwrap_or(updated),
        updated_at_ms: updated,
    }))
}

fn update_failed(
    e: &aws_sdk_dynamodb::error::SdkError<
        UpdateItemError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    matches!(
        e.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

impl DynamoConfigStore {
    /// Bump [`SUBSCRIPTIONS_VERSION`] on the item a subscription's
    /// `source` names: the source of that id, else the poller (one
    /// namespace); false when neither exists. Runs after the
    /// subscription's write: a delete of the source that did not see the
    /// subscription then fails its condition (or, if it came first, this
    /// does).
    async fn touch_source(&self, source: &str) -> Result<bool, Unavailable> {
        for kind in Kind::EVENT_SOURCES {
            let result = Update::new()
                .add(SUBSCRIPTIONS_VERSION, 1)
                .condition(|u| format!("attribute_exists({})", u.name(PK)))
                .apply(
                    self.client
                        .update_item()
                        .table_name(&self.table)
                        .key(PK, s(pk(kind, source))),
                )
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(e) if update_failed(&e) => {}
                Err(e) => return Err(sdk_error("UpdateItem (config)", e)),
            }
        }
        Ok(false)
    }

    /// After a subscription's write: make it count for its source, or undo
    /// it (when `created`) if the source is gone.
    async fn claim_source(&self, item: &ConfigItem, created: bool) -> Result<(), WriteError> {
        let Some(source) = item.needs_source() else {
            return Ok(());
        };
        if self.touch_source(source).await? {
            return Ok(());
        }
        if created {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key(PK, s(pk(item.kind(), item.id())))
                .send()
                .await
                .map_err(|e| sdk_error("DeleteItem (config)", e))?;
        }
        Err(WriteError::Conflict(format!(
            "no source or poller {source:?}"
        )))
    }

    /// Delete a source or a poller only if no subscription uses it, and
    /// none was written since that was checked.
    async fn delete_source(&self, kind: Kind, id: &str) -> Result<bool, WriteError> {
        let what = kind.as_str();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk(kind, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem (config)", e))?;
        let Some(current) = out.item() else {
            return Ok(false);
        };
        let version = current.get(SUBSCRIPTIONS_VERSION).cloned();
        let users: Vec<String> = self
            .list_config()
            .await?
            .into_iter()
            .filter_map(|e| match e.item {
                ConfigItem::Subscription(s) if s.source == id => Some(s.id),
                _ => None,
            })
            .collect();
        if !users.is_empty() {
            return Err(WriteError::Conflict(format!(
                "{what} {id:?} still has subscriptions: {}; delete them first",
                users.join(", ")
            )));
        }
        let mut delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk(kind, id)))
            .return_values(ReturnValue::AllOld)
            .expression_attribute_names("#v", SUBSCRIPTIONS_VERSION);
        delete = match version {
            Some(v) => delete
                .condition_expression("#v = :v")
                .expression_attribute_values(":v", v),
            None => delete.condition_expression("attribute_not_exists(#v)"),
        };
        match delete.send().await {
            Ok(out) => Ok(out.attributes().is_some_and(|a| !a.is_empty())),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(WriteError::Conflict(format!(
                    "a subscription of {what} {id:?} was written while it was being deleted; \
                     it was not deleted"
                )))
            }
            Err(e) => Err(sdk_error("DeleteItem (config)", e).into()),
        }
    }
}

#[async_trait]
impl ConfigStore for DynamoConfigStore {
    /// One consistent, paginated Scan; in [`Kind`] order, each kind by id.
    async fn list_config(&self) -> Result<Vec<ConfigEntry>, Unavailable> {
        let items: Vec<Item> = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("Scan (config)", e))?;
        let mut entries = Vec::with_capacity(items.len());
        for it in &items {
            if let Some(e) = entry(it)? {
                entries.push(e);
            }
        }
        entries.sort_by(|a, b| (a.item.kind(), a.item.id()).cmp(&(b.item.kind(), b.item.id())));
        Ok(entries)
    }

    async fn get_config(&self, kind: Kind, id: &str) -> Result<Option<ConfigEntry>, Unavailable> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk(kind, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem (config)", e))?;
        match out.item() {
            Some(it) => entry(it),
            None => Ok(None),
        }
    }

    async fn create_config(&self, item: &ConfigItem, origin: Origin) -> Result<bool, WriteError> {
        let now = now_ms();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(pk(item.kind(), item.id())))
            .item(cf::CONFIG, s(config_json(item)?))
            .item(cf::ENABLED, AttributeValue::Bool(true))
            .item(ORIGIN, s(origin.as_str()))
            .item(CREATED_AT_MS, n(now))
            .item(cf::UPDATED_AT_MS, n(now))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => {
                self.claim_source(item, true).await?;
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutItem (config)", e).into()),
        }
    }

    async fn upsert_config(&self, item: &ConfigItem, origin: Origin) -> Result<(), WriteError> {
        let now = now_ms();
        let out = Update::new()
            .set(cf::CONFIG, s(config_json(item)?))
            .set(ORIGIN, s(origin.as_str()))
            .set(cf::UPDATED_AT_MS, n(now))
            .set_once(cf::ENABLED, AttributeValue::Bool(true))
            .set_once(CREATED_AT_MS, n(now))
            .apply(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key(PK, s(pk(item.kind(), item.id())))
                    .return_values(ReturnValue::AllOld),
            )
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem (config)", e))?;
        let created = out.attributes().is_none_or(|a| a.is_empty());
        self.claim_source(item, created).await
    }

    async fn update_config(&self, item: &ConfigItem) -> Result<bool, Unavailable> {
        let result = Update::new()
            .set(cf::CONFIG, s(config_json(item)?))
            .set(cf::UPDATED_AT_MS, n(now_ms()))
            .condition(|u| format!("attribute_exists({})", u.name(PK)))
            .apply(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key(PK, s(pk(item.kind(), item.id()))),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if update_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error("UpdateItem (config)", e)),
        }
    }

    async fn delete_config(&self, kind: Kind, id: &str) -> Result<bool, WriteError> {
        if kind.is_event_source() {
            return self.delete_source(kind, id).await;
        }
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk(kind, id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem (config)", e))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn set_enabled(&self, kind: Kind, id: &str, enabled: bool) -> Result<bool, Unavailable> {
        let result = Update::new()
            .set(cf::ENABLED, AttributeValue::Bool(enabled))
            .set(cf::UPDATED_AT_MS, n(now_ms()))
            .condition(|u| format!("attribute_exists({})", u.name(PK)))
            .apply(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key(PK, s(pk(kind, id))),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if update_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error("UpdateItem (config)", e)),
        }
    }
}

/// Secrets created through the admin API, as SSM SecureString parameters
/// under a prefix (e.g. `/sluice/{stack}`); the config references them as
/// `ssm:{prefix}/{name}`, which [`super::SsmSecrets`] resolves.
#[derive(Debug, Clone)]
pub struct SsmSecretStore {
    client: aws_sdk_ssm::Client,
    prefix: String,
}

impl SsmSecretStore {
    pub fn new(client: aws_sdk_ssm::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }
}

#[async_trait]
impl SecretStore for SsmSecretStore {
    async fn put_secret(&self, name: &str, value: &Secret) -> Result<SecretRef, SecretError> {
        let path = format!("{}/{name}", self.prefix);
        let reference = SecretRef::Ssm(path.clone());
        self.client
            .put_parameter()
            .name(&path)
            .value(value.expose())
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| {
                SecretError::Backend(
                    reference.clone(),
                    format!(
                        "PutParameter: {}",
                        aws_sdk_ssm::error::DisplayErrorContext(&e)
                    ),
                )
            })?;
        Ok(reference)
    }

    /// Parameters under this store's prefix.
    fn owns(&self, reference: &SecretRef) -> bool {
        matches!(reference, SecretRef::Ssm(path) if path.starts_with(&format!("{}/", self.prefix)))
    }

    /// Only parameters under this store's prefix are deleted.
    async fn delete_secret(&self, reference: &SecretRef) -> Result<(), SecretError> {
        let SecretRef::Ssm(path) = reference else {
            return Ok(());
        };
        if !self.owns(reference) {
            return Ok(());
        }
        match self.client.delete_parameter().name(path).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteParameterError::ParameterNotFound(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(SecretError::Backend(
                reference.clone(),
                format!(
                    "DeleteParameter: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(&e)
                ),
            )),
        }
    }
}

#[async_trait]
impl Reload for DynamoRegistry {
    /// The next call reads the table again (and every other Lambda
    /// environment within its cache TTL).
    async fn reload(&self) -> Result<(), Unavailable> {
        self.invalidate().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http::Request;
    use serde_json::{Value, json};

    use super::*;
    use crate::admin::fakes::MemLog;
    use crate::admin::{Admin, AdminPorts, handle};
    use crate::aws::config_table::{put_config, read_config};
    use crate::aws::ssm_secrets::SsmSecrets;
    use crate::aws::testing::{MotoServer, TestResources};
    use crate::config::{ConfigFile, Registry};
    use crate::secrets::{EnvSecrets, SecretResolver};

    const TOKEN: &str = "aws-admin-token-0123456789";

    #[tokio::test]
    async fn the_config_table_is_a_config_store() {
        let res = TestResources::create(MotoServer::shared()).await;
        let store =
            DynamoConfigStore::new(res.clients.dynamodb.clone(), &res.settings.config_table);
        let file = ConfigFile::parse(
            r#"
            [[sources]]
            id = "gh"
            provider = "github"
            secrets = ["env:X"]
            [[subscriptions]]
            id = "deploys"
            source = "gh"
            events = ["push"]
            url = "https://example.com/x"
            "#,
        )
        .unwrap();
        // Items written by put_config (no origin) read as file entries.
        put_config(&res.clients.dynamodb, &res.settings.config_table, &file)
            .await
            .unwrap();
        let all = store.list_config().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].item, ConfigItem::Source(file.sources[0].clone()));
        assert_eq!((all[0].origin, all[0].enabled), (Origin::File, true));

        let sub = ConfigItem::Subscription(file.subscriptions[0].clone());
        assert!(!store.create_config(&sub, Origin::Api).await.unwrap());
        assert!(
            store
                .set_enabled(Kind::Subscription, "deploys", false)
                .await
                .unwrap()
        );
        store.upsert_config(&sub, Origin::Api).await.unwrap();
        let got = store
            .get_config(Kind::Subscription, "deploys")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.origin, got.enabled),
            (Origin::Api, false),
            "upsert keeps enabled"
        );
        assert_eq!(
            read_config(&res.clients.dynamodb, &res.settings.config_table)
                .await
                .unwrap()
                .disabled,
            ["deploys"]
        );

        let mut other = file.subscriptions[0].clone();
        other.id = "other".into();
        let other = ConfigItem::Subscription(other);
        assert!(!store.update_config(&other).await.unwrap(), "no such item");
        assert!(store.create_config(&other, Origin::Api).await.unwrap());
        assert!(store.update_config(&other).await.unwrap());
        assert!(
            store
                .delete_config(Kind::Subscription, "other")
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_config(Kind::Subscription, "other")
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_enabled(Kind::Source, "ghost", false)
                .await
                .unwrap()
        );
        assert!(
            store
                .get_config(Kind::Source, "ghost")
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Pollers are `poller#` items: what a subscription may name (its
    /// write bumps the poller's subscriptions_version), not deleted while
    /// one does, read by the registry without being served as sources.
    #[tokio::test]
    async fn pollers_are_config_items_that_keep_their_subscriptions_sourced() {
        let res = TestResources::create(MotoServer::shared()).await;
        let db = res.clients.dynamodb.clone();
        let table = res.settings.config_table.clone();
        let store = DynamoConfigStore::new(db.clone(), &table);
        let file = ConfigFile::parse(
            r#"
            [[pollers]]
            id = "items"
            url = "https://api.example.com/items"
            item_id = "/id"
            headers = { Authorization = "ssm:/items/token" }
            [[subscriptions]]
            id = "on-items"
            source = "items"
            events = ["*"]
            url = "https://example.com/x"
            "#,
        )
        .unwrap();
        let poller = ConfigItem::Poller(file.pollers[0].clone());
        let sub = ConfigItem::Subscription(file.subscriptions[0].clone());

        let err = store.create_config(&sub, Origin::Api).await.unwrap_err();
        assert!(matches!(err, WriteError::Conflict(_)), "{err}");
        assert!(
            store
                .get_config(Kind::Subscription, "on-items")
                .await
                .unwrap()
                .is_none(),
            "the orphan write is undone"
        );
        assert!(store.create_config(&poller, Origin::Api).await.unwrap());
        assert!(!store.create_config(&poller, Origin::Api).await.unwrap());
        assert!(store.create_config(&sub, Origin::Api).await.unwrap());
        let raw = db
            .get_item()
            .table_name(&table)
            .key(PK, s("poller#items"))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let raw = raw.item().unwrap();
        assert!(
            raw.get(SUBSCRIPTIONS_VERSION).is_some(),
            "the subscription counted for the poller: {raw:?}"
        );
        let got = store
            .get_config(Kind::Poller, "items")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&got.item, got.origin), (&poller, Origin::Api));
        let kinds: Vec<Kind> = store
            .list_config()
            .await
            .unwrap()
            .iter()
            .map(|e| e.item.kind())
            .collect();
        assert_eq!(kinds, [Kind::Poller, Kind::Subscription]);

        let err = store
            .delete_config(Kind::Poller, "items")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, WriteError::Conflict(m) if m.contains("poller \"items\" still has subscriptions: on-items")),
            "{err}"
        );
        assert!(
            store
                .set_enabled(Kind::Poller, "items", false)
                .await
                .unwrap()
        );
        let stored = read_config(&db, &table).await.unwrap();
        assert_eq!(stored.file.pollers, file.pollers);
        assert_eq!(stored.disabled_pollers, ["items"]);
        assert!(stored.broken.is_empty(), "{:?}", stored.broken);
        stored
            .file
            .validate()
            .expect("a subscription on a poller validates");

        let registry = DynamoRegistry::new(
            db.clone(),
            &table,
            Arc::new(EnvSecrets::new()),
            Duration::from_secs(60),
        );
        assert!(registry.source("items").await.unwrap().is_none());
        assert_eq!(registry.subscriptions_of("items").await.unwrap().len(), 1);

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
    async fn the_admin_api_runs_on_the_aws_ports() {
        let res = TestResources::create(MotoServer::shared()).await;
        let db = res.clients.dynamodb.clone();
        let table = res.settings.config_table.clone();
        let secrets = Arc::new(SsmSecrets::new(
            res.clients.ssm.clone(),
            EnvSecrets::new(),
            Duration::from_secs(300),
        ));
        let registry = Arc::new(DynamoRegistry::new(
            db.clone(),
            &table,
            secrets.clone(),
            Duration::from_secs(60),
        ));
        let prefix = format!("/sluice/{table}");
        let token = Secret::new(TOKEN);
        let admin = Admin::new(
            AdminPorts {
                config: Arc::new(DynamoConfigStore::new(db.clone(), &table)),
                events: Arc::new(MemLog::default()),
                secret_store: Arc::new(SsmSecretStore::new(res.clients.ssm.clone(), &prefix)),
                secrets: secrets.clone(),
                registry: registry.clone(),
                reload: registry.clone(),
                policy: crate::config::Policy::aws(false),
                pollers: crate::admin::fakes::poller_ports().2,
                gate: Arc::new(crate::gate::MemoryGate::default()),
            },
            Some(&token),
        )
        .unwrap();
        let call = |method: &str, path: &str, body: Value| {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Bytes::from(body.to_string()))
                .unwrap();
            let admin = &admin;
            async move {
                let resp = handle(admin, req).await;
                let v: Value = if resp.body().is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(resp.body()).unwrap()
                };
                (resp.status().as_u16(), v)
            }
        };

        let (s, v) = call(
            "POST",
            "/admin/sources",
            json!({"id": "gh", "provider": "github", "secrets": [{"value": "gh-secret"}]}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let stored = v["secrets"][0].as_str().unwrap().to_owned();
        assert!(
            stored.starts_with(&format!("ssm:{prefix}/source.gh.")),
            "{stored}"
        );
        assert!(
            registry.source("gh").await.unwrap().is_some(),
            "live after the reload"
        );

        let (s, v) = call(
            "POST",
            "/admin/subscriptions",
            json!({"id": "deploys", "source": "gh", "url": "https://example.com/in", "events": ["*"]}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let whsec = v["signing_secret"].as_str().unwrap().to_owned();
        let sub = registry.subscription("deploys").await.unwrap().unwrap();
        assert!(sub.signing_key.is_some());
        let reference = read_config(&db, &table).await.unwrap().file.subscriptions[0]
            .signing_secret
            .clone()
            .unwrap();
        assert_eq!(secrets.resolve(&reference).await.unwrap().expose(), whsec);

        let (s, _) = call("POST", "/admin/sources/gh/disable", Value::Null).await;
        assert_eq!(s, 200);
        assert!(
            registry.source("gh").await.unwrap().is_none(),
            "a disabled source is not served"
        );
        let (s, _) = call("DELETE", "/admin/subscriptions/deploys", Value::Null).await;
        assert_eq!(s, 204);
        secrets.clear();
        assert!(
            secrets.resolve(&reference).await.is_err(),
            "its parameter is deleted"
        );
    }
}
