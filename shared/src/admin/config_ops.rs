//! Sources, pollers and subscriptions: create, read, update, delete,
//! enable, disable, and secret rotation. Every change is checked against the
//! config as it stands, written, then made live with a reload.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::input::{self, Query, json_body, nullable};
use super::ports::{ConfigEntry, ConfigItem, Kind, Origin};
use super::views;
use super::{Admin, AdminError};
use crate::config::{
    ConfigError, ConfigFile, Format, HumanDuration, PreviousSecret, SourceConfig,
    SubscriptionConfig, check_allow_local, check_id, check_max_body_bytes, check_public_url,
    check_secret_count, check_verify_token, destination_url, retry_policy, source_secret_values,
};
use crate::filter::PayloadFilter;
use crate::format::Template;
use crate::gate::{Breaker, Controls, Rate};
use crate::poll::config::{HeaderSetting, PollFormat};
use crate::poll::{PollerConfig, resolve_poller, validate_poller};
use crate::secrets::{Secret, SecretRef};
use crate::sign::SigningKey;
use crate::verify::{HmacParams, JwtParams, Provider, TokenParams, Verifier};

/// Default overlap of a rotated signing secret: receivers have a day to
/// switch to the new one.
pub(crate) const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest retention: expiry times stay far inside every clock's range.
const MAX_WINDOW: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
}

impl Reply {
    pub(crate) fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body: Some(body),
        }
    }

    /// `body`, one of the shapes of [`views`], as the answer. Through a
    /// `Value`, so its keys come out sorted as they always have.
    pub(crate) fn json<T: Serialize>(status: u16, body: &T) -> Result<Self, AdminError> {
        let body = serde_json::to_value(body)
            .map_err(|e| AdminError::Unavailable(crate::error::Unavailable::new(e)))?;
        Ok(Self {
            status,
            body: Some(body),
        })
    }

    fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A reference (env:NAME, ssm:/path) or a value the gateway keeps
/// (`{"value": "…"}`).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub(super) enum SecretInput {
    #[schema(value_type = SecretRef)]
    Ref(String),
    Value {
        value: String,
    },
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceCreate {
    /// URL segment: `/hooks/{id}`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    id: String,
    provider: Provider,
    #[schema(min_items = 1)]
    secrets: Vec<SecretInput>,
    /// Replay window in seconds; the provider preset's if unset.
    #[serde(default)]
    tolerance_secs: Option<u64>,
    /// How long an event id is remembered (7 days unless set); also the
    /// event log's retention.
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<HumanDuration>)]
    dedupe_window: Option<Duration>,
    /// The largest body accepted (256 KiB unless set).
    #[serde(default)]
    #[schema(minimum = 1)]
    max_body_bytes: Option<usize>,
    /// Settings of the generic `hmac` provider.
    #[serde(default)]
    hmac: Option<HmacParams>,
    /// Settings of the generic `token` provider.
    #[serde(default)]
    #[schema(nullable = false)]
    token: Option<TokenParams>,
    /// Settings of the generic `jwt` provider.
    #[serde(default)]
    #[schema(nullable = false)]
    jwt: Option<JwtParams>,
    /// The URL given to the provider (no query), for providers that sign
    /// it: twilio, square, hubspot, trello.
    #[serde(default)]
    #[schema(format = "uri")]
    public_url: Option<String>,
    /// Meta only: the `hub.verify_token` its GET check carries.
    #[serde(default)]
    #[schema(nullable = false)]
    verify_token: Option<SecretInput>,
}

/// A merge patch: absent fields are unchanged, null resets one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SourcePatch {
    #[serde(default)]
    #[schema(nullable = false)]
    provider: Option<Provider>,
    /// Replaces the list.
    #[serde(default)]
    #[schema(nullable = false, min_items = 1)]
    secrets: Option<Vec<SecretInput>>,
    #[serde(default, deserialize_with = "nullable")]
    tolerance_secs: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    dedupe_window: Option<Option<HumanDuration>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 1)]
    max_body_bytes: Option<Option<usize>>,
    #[serde(default, deserialize_with = "nullable")]
    hmac: Option<Option<HmacParams>>,
    #[serde(default, deserialize_with = "nullable")]
    token: Option<Option<TokenParams>>,
    #[serde(default, deserialize_with = "nullable")]
    jwt: Option<Option<JwtParams>>,
    /// The URL given to the provider (no query), for providers that sign
    /// it: twilio, square, hubspot, trello.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = "uri")]
    public_url: Option<Option<String>>,
    /// Meta only: the `hub.verify_token` its GET check carries; null
    /// forgets it.
    #[serde(default, deserialize_with = "nullable")]
    verify_token: Option<Option<SecretInput>>,
}

/// Exactly one of `value` and `ref`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SecretAdd {
    /// A value the gateway keeps.
    #[serde(default)]
    #[schema(nullable = false)]
    value: Option<String>,
    #[serde(default, rename = "ref")]
    #[schema(value_type = SecretRef)]
    reference: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscriptionCreate {
    /// Generated (`sub_…`) if absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", nullable = false)]
    id: Option<String>,
    /// The source or poller whose events it takes.
    source: String,
    /// https, unless `allow_local`.
    #[schema(format = "uri")]
    url: String,
    /// Event-type globs; `*` for all.
    #[schema(min_items = 1, examples("push", "pull_request.*"))]
    events: Vec<String>,
    #[serde(default)]
    #[schema(default = Format::default)]
    format: Format,
    /// Chat formats: the message text, a minijinja template.
    #[serde(default)]
    template: Option<String>,
    /// The whole JSON body, a minijinja template.
    #[serde(default)]
    payload_template: Option<String>,
    /// A minijinja expression over `payload`, `headers` and `event` (type,
    /// source, id); only events it is true for are delivered.
    #[serde(default)]
    #[schema(examples("payload.action == \"opened\" and not payload.pull_request.draft"))]
    filter: Option<String>,
    /// The waits between attempts.
    #[serde(default)]
    retry_schedule: Option<Vec<HumanDuration>>,
    /// Allow http:// and private addresses (local use only).
    #[serde(default)]
    #[schema(default = false)]
    allow_local: bool,
    #[serde(default)]
    #[schema(value_type = Option<Rate>)]
    rate_limit: Option<String>,
    /// At most this many requests out at once.
    #[serde(default)]
    #[schema(minimum = 1)]
    max_in_flight: Option<u32>,
    #[serde(default)]
    circuit_breaker: Option<Breaker>,
}

/// A merge patch: absent fields are unchanged, null resets one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscriptionPatch {
    /// Cannot change: if given, the subscription's own.
    #[serde(default)]
    #[schema(nullable = false)]
    source: Option<String>,
    #[serde(default)]
    #[schema(format = "uri", nullable = false)]
    url: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, min_items = 1)]
    events: Option<Vec<String>>,
    #[serde(default)]
    #[schema(nullable = false)]
    format: Option<Format>,
    #[serde(default, deserialize_with = "nullable")]
    template: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    payload_template: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    filter: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    retry_schedule: Option<Option<Vec<HumanDuration>>>,
    #[serde(default)]
    #[schema(nullable = false)]
    allow_local: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Rate>)]
    rate_limit: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 1)]
    max_in_flight: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    circuit_breaker: Option<Option<Breaker>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Rotate {
    /// How long the replaced secret keeps signing (at most 30 days; `0s`:
    /// not at all).
    #[serde(default)]
    #[schema(value_type = HumanDuration, default = "24h")]
    overlap: Option<String>,
}

/// A merge patch (RFC 7396) of a poller's config: absent fields are
/// unchanged, null resets one to its default, and `headers` merges name by
/// name (a null value removes that header). The fields are those of
/// `PollerConfig`; `id`, if given, must be the poller's own.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PollerPatch {
    /// The poller's own id: it cannot change.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    id: Option<Option<String>>,
    /// The list endpoint or feed: https, unless `allow_local`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(format = "uri")]
    url: Option<Option<String>>,
    /// How often it is polled: 60 s unless set; at least 10 s.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    interval: Option<Option<HumanDuration>>,
    /// Request headers, merged name by name (a null value removes that
    /// header); a credential must be a secret reference.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    // As text: utoipa cannot put a nullable reference in additionalProperties.
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    headers: Option<Option<BTreeMap<String, Option<HeaderSetting>>>>,
    /// `json` unless set.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    format: Option<Option<PollFormat>>,
    /// json: a JSON pointer to the array of items (the document itself if
    /// unset).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    items: Option<Option<String>>,
    /// json (required): a JSON pointer to each item's id, e.g. `/id`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    item_id: Option<Option<String>>,
    /// The event type: a JSON pointer into the item (`/type`) or a fixed
    /// string; `item` (json) or `entry` (feed) if unset.
    #[serde(
        default,
        rename = "type",
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    event_type: Option<Option<String>>,
    /// A JSON pointer to an item's time: the order new items are emitted in.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    timestamp: Option<Option<String>>,
    /// A query parameter carrying the newest timestamp seen (needs
    /// `timestamp`).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    since_param: Option<Option<String>>,
    /// Pages followed through `Link: rel="next"` (5 unless set).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 1, maximum = 50)]
    max_pages: Option<Option<u32>>,
    /// Emit what the first poll finds (otherwise it is only recorded).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    emit_existing: Option<Option<bool>>,
    /// How long an item id is remembered (7 days unless set); also the
    /// event log's retention.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    dedupe_window: Option<Option<HumanDuration>>,
    /// The largest response read (4 MiB unless set).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 1, maximum = 33554432)]
    max_response_bytes: Option<Option<usize>>,
    /// Allow http:// and private addresses (local use only).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    allow_local: Option<Option<bool>>,
}

impl Admin {
    pub(crate) async fn entry(&self, kind: Kind, id: &str) -> Result<ConfigEntry, AdminError> {
        self.ports
            .config
            .get_config(kind, id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no {} {id:?}", kind.as_str())))
    }

    /// The source or poller `id` names (they share one namespace).
    pub(super) async fn event_source(&self, id: &str) -> Result<Option<ConfigEntry>, AdminError> {
        for kind in Kind::EVENT_SOURCES {
            if let Some(e) = self.ports.config.get_config(kind, id).await? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// 409 when `id` is taken for a new entry of `kind`: by an entry of
    /// that kind or, for a source or poller, of the other.
    async fn check_unused(&self, kind: Kind, id: &str) -> Result<(), AdminError> {
        let taken = if kind.is_event_source() {
            self.event_source(id).await?
        } else {
            self.ports.config.get_config(kind, id).await?
        };
        match taken {
            Some(e) => Err(AdminError::AlreadyExists(format!(
                "{} {id:?} already exists",
                e.item.kind().as_str()
            ))),
            None => Ok(()),
        }
    }

    /// Entries created through the API may change; the file owns its own.
    fn writable(entry: &ConfigEntry) -> Result<(), AdminError> {
        match entry.origin {
            Origin::Api => Ok(()),
            Origin::File => Err(AdminError::ReadOnly(format!(
                "{} {:?} is defined in the config file; change it there (the file is applied at start-up)",
                entry.item.kind().as_str(),
                entry.item.id()
            ))),
        }
    }

    /// Make a change live. It is saved already; if the reload fails the
    /// config watcher retries, so the change is not lost.
    pub(super) async fn make_live(&self) {
        if let Err(e) = self.ports.reload.reload().await {
            tracing::warn!(error = %e, "config saved but not reloaded yet");
        }
    }

    /// The whole config with `item` put in place of (or beside) its entry:
    /// the checks the config file gets (ids, references, URLs).
    async fn check_whole(&self, item: Option<&ConfigItem>) -> Result<(), AdminError> {
        let mut file = ConfigFile::default();
        for e in self.ports.config.list_config().await? {
            if item.is_some_and(|i| i.kind() == e.item.kind() && i.id() == e.item.id()) {
                continue;
            }
            e.item.add_to(&mut file);
        }
        if let Some(i) = item {
            i.clone().add_to(&mut file);
        }
        file.validate_with(&self.ports.policy)
            .map_err(|e| AdminError::invalid("config", e.to_string()))
    }

    /// The entries, other than `except`, whose config names `r`.
    async fn users_of(
        &self,
        r: &SecretRef,
        except: Option<(Kind, &str)>,
    ) -> Result<Vec<String>, AdminError> {
        Ok(self
            .ports
            .config
            .list_config()
            .await?
            .into_iter()
            .filter(|e| except.is_none_or(|(k, id)| e.item.kind() != k || e.item.id() != id))
            .filter(|e| secret_refs(&e.item).any(|x| x == r))
            .map(|e| format!("{} {:?}", e.item.kind().as_str(), e.item.id()))
            .collect())
    }

    // ---- sources ----

    pub(crate) async fn list_sources(&self) -> Result<Reply, AdminError> {
        let entries = self.ports.config.list_config().await?;
        let sources = futures::future::join_all(entries.iter().filter_map(|e| match &e.item {
            ConfigItem::Source(s) => {
                Some(async move { views::Source::of(s, e, self.handshake(s).await) })
            }
            _ => None,
        }))
        .await;
        Reply::json(200, &views::SourceList { sources })
    }

    pub(crate) async fn get_source(&self, id: &str) -> Result<Reply, AdminError> {
        self.source_reply(200, id).await
    }

    /// The source `id` as it now stands.
    async fn source_reply(&self, status: u16, id: &str) -> Result<Reply, AdminError> {
        let entry = self.entry(Kind::Source, id).await?;
        Reply::json(status, &self.entry_view(&entry).await)
    }

    /// An entry as the API shows it: a source with its handshake's state.
    async fn entry_view<'e>(&self, entry: &'e ConfigEntry) -> views::Entry<'e> {
        let handshake = match &entry.item {
            ConfigItem::Source(s) => self.handshake(s).await,
            _ => None,
        };
        views::Entry::of(entry, handshake)
    }

    /// Where a source's secret handshake stands, for the providers that
    /// send their secret in one; read as the gateway reads it.
    async fn handshake(&self, s: &SourceConfig) -> Option<views::Handshake> {
        s.provider.secret_handshake_header()?;
        Some(
            match source_secret_values(s, self.ports.secrets.as_ref()).await {
                Ok(None) => views::Handshake::Awaiting,
                Ok(Some(_)) => views::Handshake::Done,
                Err(_) => views::Handshake::Unreadable,
            },
        )
    }

    /// Turn secret inputs into references, checking each; values given
    /// directly are stored only once everything else is checked.
    async fn source_secrets(
        &self,
        field: &str,
        inputs: Vec<SecretInput>,
    ) -> Result<Vec<(Option<Secret>, Option<SecretRef>)>, AdminError> {
        let mut out = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            let field = format!("{field}[{i}]");
            match input {
                SecretInput::Ref(r) => {
                    let r: SecretRef = r.parse().map_err(|e| AdminError::invalid(&field, e))?;
                    out.push((None, Some(r)));
                }
                SecretInput::Value { value } if value.is_empty() => {
                    return Err(AdminError::invalid(field, "the secret value is empty"));
                }
                SecretInput::Value { value } => out.push((Some(Secret::new(value)), None)),
            }
        }
        Ok(out)
    }

    /// Resolve every secret and build the verifier, as a running source
    /// would: a source saved here is one the gateway can serve.
    async fn check_source(
        &self,
        s: &SourceConfig,
        pending_values: &[(usize, Secret)],
    ) -> Result<(), AdminError> {
        check_id("source", &s.id).map_err(|e| AdminError::invalid("id", e.to_string()))?;
        check_secret_count(&s.id, s.provider, s.secrets.len() + pending_values.len())
            .map_err(|e| AdminError::invalid("secrets", strip_prefix(&e.to_string())))?;
        s.generic()
            .check(s.provider)
            .map_err(|(field, e)| AdminError::invalid(field, e))?;
        check_max_body_bytes(s, &self.ports.policy)
            .map_err(|e| AdminError::invalid("max_body_bytes", strip_prefix(&e.to_string())))?;
        check_public_url(s, &self.ports.policy)
            .map_err(|e| AdminError::invalid("public_url", strip_prefix(&e.to_string())))?;
        check_verify_token(&s.id, s.provider, s.verify_token.is_some())
            .map_err(|e| AdminError::invalid("verify_token", strip_prefix(&e.to_string())))?;
        if let Some(r) = &s.verify_token {
            self.ports
                .secrets
                .resolve(r)
                .await
                .map_err(|e| AdminError::invalid("verify_token", e.to_string()))?;
        }
        if s.dedupe_window.is_some_and(|w| w > MAX_WINDOW) {
            return Err(AdminError::invalid(
                "dedupe_window",
                "must be at most 10 years",
            ));
        }
        let Some(mut values) = source_secret_values(s, self.ports.secrets.as_ref())
            .await
            .map_err(|(i, e)| AdminError::invalid(format!("secrets[{i}]"), e.to_string()))?
        else {
            // Its provider's handshake brings the secret: nothing to check yet.
            return Ok(());
        };
        values.extend(pending_values.iter().map(|(_, v)| v.clone()));
        Verifier::with_params(
            s.provider,
            &values,
            s.generic(),
            s.tolerance_secs.map(Duration::from_secs),
        )
        .map_err(|e| {
            let field = match s.provider {
                Provider::Hmac => "hmac",
                Provider::Token => "token",
                Provider::Jwt => "jwt",
                _ => "secrets",
            };
            AdminError::invalid(field, e)
        })?;
        Ok(())
    }

    /// Store the values given directly; returns the final reference list
    /// in input order, and the references created (to undo on failure).
    async fn store_values(
        &self,
        source: &str,
        inputs: Vec<(Option<Secret>, Option<SecretRef>)>,
    ) -> Result<(Vec<SecretRef>, Vec<SecretRef>), AdminError> {
        let mut refs = Vec::with_capacity(inputs.len());
        let mut created = Vec::new();
        for input in inputs {
            match input {
                (_, Some(r)) => refs.push(r),
                (Some(value), None) => {
                    let name = format!("source.{source}.{}", random_hex(8));
                    let r = self
                        .ports
                        .secret_store
                        .put_secret(&name, &value)
                        .await
                        .map_err(|e| AdminError::Unavailable(crate::error::Unavailable::new(e)))?;
                    created.push(r.clone());
                    refs.push(r);
                }
                (None, None) => {}
            }
        }
        Ok((refs, created))
    }

    /// Delete stored secrets no entry uses any more (the caller's own
    /// change is written already). One that another entry still names is
    /// kept: deleting it would break that entry.
    async fn forget_secrets(&self, refs: &[SecretRef]) {
        if refs.is_empty() {
            return;
        }
        let entries = match self.ports.config.list_config().await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "stored secrets kept: cannot tell whether they are still used");
                return;
            }
        };
        for r in refs.iter().filter(|r| self.ports.secret_store.owns(r)) {
            if let Some(user) = entries
                .iter()
                .find(|e| secret_refs(&e.item).any(|x| x == r))
            {
                tracing::info!(secret = %r, kind = user.item.kind().as_str(), id = user.item.id(), "stored secret kept: still used");
                continue;
            }
            if let Err(e) = self.ports.secret_store.delete_secret(r).await {
                tracing::warn!(secret = %r, error = %e, "could not delete a stored secret");
            }
        }
    }

    /// Set `config.verify_token` from its input: a reference is set now (and
    /// checked with the rest); a value is returned, to be stored once
    /// everything is checked.
    async fn verify_token_input(
        &self,
        config: &mut SourceConfig,
        input: Option<SecretInput>,
    ) -> Result<Option<Vec<(Option<Secret>, Option<SecretRef>)>>, AdminError> {
        config.verify_token = None;
        let Some(input) = input else {
            return Ok(None);
        };
        let mut parsed = self.source_secrets("verify_token", vec![input]).await?;
        match parsed.first_mut() {
            Some((None, r)) => {
                config.verify_token = r.take();
                Ok(None)
            }
            _ => {
                check_verify_token(&config.id, config.provider, true).map_err(|e| {
                    AdminError::invalid("verify_token", strip_prefix(&e.to_string()))
                })?;
                Ok(Some(parsed))
            }
        }
    }

    /// The secret inputs split into (refs, values to store) for checking.
    fn split_inputs(
        inputs: &[(Option<Secret>, Option<SecretRef>)],
    ) -> (Vec<SecretRef>, Vec<(usize, Secret)>) {
        let mut refs = Vec::new();
        let mut values = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            match input {
                (_, Some(r)) => refs.push(r.clone()),
                (Some(v), None) => values.push((i, v.clone())),
                (None, None) => {}
            }
        }
        (refs, values)
    }

    pub(crate) async fn create_source(&self, body: &[u8]) -> Result<Reply, AdminError> {
        let input: SourceCreate = json_body(body)?;
        let _w = self.writes.lock().await;
        let inputs = self.source_secrets("secrets", input.secrets).await?;
        let (refs, values) = Self::split_inputs(&inputs);
        let mut config = SourceConfig {
            id: input.id,
            provider: input.provider,
            secrets: refs,
            tolerance_secs: input.tolerance_secs,
            dedupe_window: input.dedupe_window,
            max_body_bytes: input.max_body_bytes,
            hmac: input.hmac,
            token: input.token,
            jwt: input.jwt,
            public_url: input.public_url,
            verify_token: None,
        };
        let token = self
            .verify_token_input(&mut config, input.verify_token)
            .await?;
        self.check_source(&config, &values).await?;
        self.check_unused(Kind::Source, &config.id).await?;
        let (refs, mut created) = self.store_values(&config.id, inputs).await?;
        config.secrets = refs;
        if let Some(token) = token {
            let (mut r, made) = self.store_values(&config.id, token).await?;
            config.verify_token = r.pop();
            created.extend(made);
        }
        let item = ConfigItem::Source(config);
        if !self.ports.config.create_config(&item, Origin::Api).await? {
            self.forget_secrets(&created).await;
            return Err(AdminError::AlreadyExists(format!(
                "source {:?} already exists",
                item.id()
            )));
        }
        self.make_live().await;
        self.source_reply(201, item.id()).await
    }

    pub(crate) async fn update_source(&self, id: &str, body: &[u8]) -> Result<Reply, AdminError> {
        let patch: SourcePatch = json_body(body)?;
        let _w = self.writes.lock().await;
        let entry = self.entry(Kind::Source, id).await?;
        Self::writable(&entry)?;
        let ConfigItem::Source(mut config) = entry.item else {
            return Err(AdminError::NotFound(format!("no source {id:?}")));
        };
        let old_refs: Vec<SecretRef> = secret_refs(&ConfigItem::Source(config.clone()))
            .cloned()
            .collect();
        if let Some(p) = patch.provider {
            config.provider = p;
        }
        if let Some(v) = patch.tolerance_secs {
            config.tolerance_secs = v;
        }
        if let Some(v) = patch.dedupe_window {
            config.dedupe_window = v.map(|d| d.0);
        }
        if let Some(v) = patch.max_body_bytes {
            config.max_body_bytes = v;
        }
        if let Some(v) = patch.hmac {
            config.hmac = v;
        }
        if let Some(v) = patch.token {
            config.token = v;
        }
        if let Some(v) = patch.jwt {
            config.jwt = v;
        }
        if let Some(v) = patch.public_url {
            config.public_url = v;
        }
        let token = match patch.verify_token {
            Some(v) => self.verify_token_input(&mut config, v).await?,
            None => None,
        };
        let mut inputs = None;
        if let Some(secrets) = patch.secrets {
            let parsed = self.source_secrets("secrets", secrets).await?;
            let (refs, values) = Self::split_inputs(&parsed);
            config.secrets = refs;
            self.check_source(&config, &values).await?;
            inputs = Some(parsed);
        } else {
            self.check_source(&config, &[]).await?;
        }
        let mut created = Vec::new();
        if let Some(parsed) = inputs {
            let (refs, made) = self.store_values(id, parsed).await?;
            config.secrets = refs;
            created = made;
        }
        if let Some(token) = token {
            let (mut r, made) = self.store_values(id, token).await?;
            config.verify_token = r.pop();
            created.extend(made);
        }
        let item = ConfigItem::Source(config.clone());
        if !self.ports.config.update_config(&item).await? {
            self.forget_secrets(&created).await;
            return Err(AdminError::NotFound(format!("no source {id:?}")));
        }
        let kept: Vec<&SecretRef> = secret_refs(&item).collect();
        let dropped: Vec<SecretRef> = old_refs
            .into_iter()
            .filter(|r| !kept.contains(&r))
            .collect();
        self.forget_secrets(&dropped).await;
        self.make_live().await;
        self.get_source(id).await
    }

    /// Delete a source or a poller; refused while a subscription names it.
    pub(crate) async fn delete_event_source(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Reply, AdminError> {
        let _w = self.writes.lock().await;
        let entry = self.entry(kind, id).await?;
        Self::writable(&entry)?;
        let users: Vec<String> = self
            .ports
            .config
            .list_config()
            .await?
            .into_iter()
            .filter_map(|e| match e.item {
                ConfigItem::Subscription(s) if s.source == id => Some(s.id),
                _ => None,
            })
            .collect();
        if !users.is_empty() {
            return Err(AdminError::Conflict(format!(
                "{} {id:?} still has subscriptions: {}; delete them first",
                kind.as_str(),
                users.join(", ")
            )));
        }
        self.ports.config.delete_config(kind, id).await?;
        if kind == Kind::Poller {
            // Best effort: a state left behind is only read by a poller of
            // the same id, which starts over (its target differs) or
            // resumes where this one stopped.
            if let Err(e) = self.ports.pollers.states.delete(id).await {
                tracing::warn!(poller = id, error = %e, "deleted poller's state not removed");
            }
        }
        let refs: Vec<SecretRef> = secret_refs(&entry.item).cloned().collect();
        self.forget_secrets(&refs).await;
        self.make_live().await;
        Ok(Reply::no_content())
    }

    pub(crate) async fn set_enabled(
        &self,
        kind: Kind,
        id: &str,
        enabled: bool,
    ) -> Result<Reply, AdminError> {
        let _w = self.writes.lock().await;
        if !self.ports.config.set_enabled(kind, id, enabled).await? {
            return Err(AdminError::NotFound(format!("no {} {id:?}", kind.as_str())));
        }
        self.make_live().await;
        let entry = self.entry(kind, id).await?;
        Reply::json(200, &self.entry_view(&entry).await)
    }

    /// Rotation, step one: add the new secret beside the old ones (any of
    /// them verifies). Step two, once the provider signs with the new one:
    /// remove the old one.
    pub(crate) async fn add_source_secret(
        &self,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, AdminError> {
        let input: SecretAdd = json_body(body)?;
        let given = match (input.value, input.reference) {
            (Some(v), None) => SecretInput::Value { value: v },
            (None, Some(r)) => SecretInput::Ref(r),
            _ => {
                return Err(AdminError::invalid(
                    "body",
                    "give exactly one of \"value\" and \"ref\"",
                ));
            }
        };
        let _w = self.writes.lock().await;
        let entry = self.entry(Kind::Source, id).await?;
        Self::writable(&entry)?;
        let ConfigItem::Source(mut config) = entry.item else {
            return Err(AdminError::NotFound(format!("no source {id:?}")));
        };
        let field = if matches!(given, SecretInput::Ref(_)) {
            "ref"
        } else {
            "value"
        };
        let parsed = self
            .source_secrets(field, vec![given])
            .await
            .map_err(|e| match e {
                AdminError::Invalid { message, .. } => AdminError::invalid(field, message),
                other => other,
            })?;
        if let Some((_, Some(r))) = parsed.first()
            && config.secrets.contains(r)
        {
            return Err(AdminError::Conflict(format!(
                "source {id:?} already has secret {r}"
            )));
        }
        let (_, values) = Self::split_inputs(&parsed);
        let mut candidate = config.clone();
        if let Some((_, Some(r))) = parsed.first() {
            candidate.secrets.push(r.clone());
        }
        self.check_source(&candidate, &values)
            .await
            .map_err(|e| match e {
                AdminError::Invalid { message, .. } => AdminError::invalid(field, message),
                other => other,
            })?;
        let (mut refs, created) = self.store_values(id, parsed).await?;
        config.secrets.append(&mut refs);
        if !self
            .ports
            .config
            .update_config(&ConfigItem::Source(config))
            .await?
        {
            self.forget_secrets(&created).await;
            return Err(AdminError::NotFound(format!("no source {id:?}")));
        }
        self.make_live().await;
        self.source_reply(201, id).await
    }

    pub(crate) async fn remove_source_secret(
        &self,
        id: &str,
        reference: &str,
    ) -> Result<Reply, AdminError> {
        let r: SecretRef = reference
            .parse()
            .map_err(|e: String| AdminError::invalid("ref", e))?;
        let _w = self.writes.lock().await;
        let entry = self.entry(Kind::Source, id).await?;
        Self::writable(&entry)?;
        let ConfigItem::Source(mut config) = entry.item else {
            return Err(AdminError::NotFound(format!("no source {id:?}")));
        };
        if !config.secrets.contains(&r) {
            return Err(AdminError::NotFound(format!(
                "source {id:?} has no secret {r}"
            )));
        }
        if config.secrets.len() == 1 {
            return Err(AdminError::Conflict(format!(
                "{r} is the last secret of source {id:?}; add the new one first"
            )));
        }
        // Removing it deletes the stored secret, which another entry uses.
        let users = if self.ports.secret_store.owns(&r) {
            self.users_of(&r, Some((Kind::Source, id))).await?
        } else {
            Vec::new()
        };
        if !users.is_empty() {
            return Err(AdminError::Conflict(format!(
                "secret {r} is still used by {}; remove it there first",
                users.join(", ")
            )));
        }
        config.secrets.retain(|s| s != &r);
        self.ports
            .config
            .update_config(&ConfigItem::Source(config))
            .await?;
        self.forget_secrets(std::slice::from_ref(&r)).await;
        self.make_live().await;
        self.get_source(id).await
    }

    // ---- subscriptions ----

    pub(crate) async fn list_subscriptions(&self, q: &Query) -> Result<Reply, AdminError> {
        let source = q.get("source");
        let entries = self.ports.config.list_config().await?;
        let subscriptions = entries
            .iter()
            .filter_map(|e| match &e.item {
                ConfigItem::Subscription(s) if source.is_none_or(|src| s.source == src) => {
                    Some(views::Subscription::of(s, e))
                }
                _ => None,
            })
            .collect();
        Reply::json(200, &views::SubscriptionList { subscriptions })
    }

    /// A subscription, with its delivery controls in effect and the state
    /// of its circuit.
    pub(crate) async fn get_subscription(&self, id: &str) -> Result<Reply, AdminError> {
        let entry = self.entry(Kind::Subscription, id).await?;
        let ConfigItem::Subscription(s) = &entry.item else {
            return Err(AdminError::NotFound(format!("no subscription {id:?}")));
        };
        let mut view = views::Subscription::of(s, &entry);
        if let Ok(controls) = crate::config::controls(s) {
            let state = self.ports.gate.state(id).await?;
            view = view.with_controls(views::DeliveryControls::of(&controls, state.as_ref()));
        }
        Reply::json(200, &view)
    }

    /// The subscription `id` as it now stands, and its new signing secret.
    async fn subscription_with_secret(
        &self,
        status: u16,
        id: &str,
        whsec: String,
    ) -> Result<Reply, AdminError> {
        let entry = self.entry(Kind::Subscription, id).await?;
        let ConfigItem::Subscription(s) = &entry.item else {
            return Err(AdminError::NotFound(format!("no subscription {id:?}")));
        };
        let view = views::SubscriptionWithSecret::new(views::Subscription::of(s, &entry), whsec);
        Reply::json(status, &view)
    }

    async fn check_subscription(&self, s: &SubscriptionConfig) -> Result<(), AdminError> {
        check_id("subscription", &s.id).map_err(|e| AdminError::invalid("id", e.to_string()))?;
        if s.source != crate::notify::SOURCE && self.event_source(&s.source).await?.is_none() {
            return Err(AdminError::invalid(
                "source",
                format!("no source or poller {:?}", s.source),
            ));
        }
        if s.events.is_empty() {
            return Err(AdminError::invalid(
                "events",
                "name at least one event type ([\"*\"] for all)",
            ));
        }
        if let Some(i) = s.events.iter().position(|e| e.trim().is_empty()) {
            return Err(AdminError::invalid(
                format!("events[{i}]"),
                "an event type pattern is empty",
            ));
        }
        check_allow_local(s, &self.ports.policy)
            .map_err(|e| AdminError::invalid("allow_local", strip_prefix(&e.to_string())))?;
        destination_url(s).map_err(|e| AdminError::invalid("url", strip_prefix(&e.to_string())))?;
        retry_policy(s)
            .map_err(|e| AdminError::invalid("retry_schedule", strip_prefix(&e.to_string())))?;
        Template::for_subscription(
            s.format,
            s.template.as_deref(),
            s.payload_template.as_deref(),
        )
        .map_err(|e| {
            let field = if s.template.is_some() {
                "template"
            } else {
                "payload_template"
            };
            AdminError::invalid(field, e.to_string())
        })?;
        if let Some(f) = &s.filter {
            PayloadFilter::compile(f).map_err(|e| AdminError::invalid("filter", e.to_string()))?;
        }
        Controls::new(
            s.format,
            s.rate_limit.as_deref(),
            s.max_in_flight,
            s.circuit_breaker,
        )
        .map_err(|e| AdminError::invalid(e.field(), e.to_string()))?;
        Ok(())
    }

    /// A new `whsec_` secret, stored; returns it and its reference.
    async fn new_signing_secret(&self, sub: &str) -> Result<(String, SecretRef), AdminError> {
        let (_, whsec) = SigningKey::generate();
        let name = format!("subscription.{sub}.{}", random_hex(8));
        let r = self
            .ports
            .secret_store
            .put_secret(&name, &Secret::new(whsec.clone()))
            .await
            .map_err(|e| AdminError::Unavailable(crate::error::Unavailable::new(e)))?;
        Ok((whsec, r))
    }

    pub(crate) async fn create_subscription(&self, body: &[u8]) -> Result<Reply, AdminError> {
        let input: SubscriptionCreate = json_body(body)?;
        let _w = self.writes.lock().await;
        let id = input.id.unwrap_or_else(|| format!("sub_{}", random_hex(8)));
        let mut config = SubscriptionConfig {
            id,
            source: input.source,
            events: input.events,
            url: input.url,
            format: input.format,
            template: input.template,
            payload_template: input.payload_template,
            filter: input.filter,
            signing_secret: None,
            retry_schedule: input.retry_schedule,
            allow_local: input.allow_local,
            previous_signing_secret: None,
            rate_limit: input.rate_limit,
            max_in_flight: input.max_in_flight,
            circuit_breaker: input.circuit_breaker,
        };
        self.check_subscription(&config).await?;
        self.check_unused(Kind::Subscription, &config.id).await?;
        let (whsec, r) = self.new_signing_secret(&config.id).await?;
        config.signing_secret = Some(r.clone());
        let item = ConfigItem::Subscription(config);
        if let Err(e) = self.check_whole(Some(&item)).await {
            self.forget_secrets(std::slice::from_ref(&r)).await;
            return Err(e);
        }
        if !self.ports.config.create_config(&item, Origin::Api).await? {
            self.forget_secrets(std::slice::from_ref(&r)).await;
            return Err(AdminError::AlreadyExists(format!(
                "subscription {:?} already exists",
                item.id()
            )));
        }
        self.make_live().await;
        // Shown this once; never again.
        self.subscription_with_secret(201, item.id(), whsec).await
    }

    pub(crate) async fn update_subscription(
        &self,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, AdminError> {
        let patch: SubscriptionPatch = json_body(body)?;
        let _w = self.writes.lock().await;
        let entry = self.entry(Kind::Subscription, id).await?;
        Self::writable(&entry)?;
        let ConfigItem::Subscription(mut config) = entry.item else {
            return Err(AdminError::NotFound(format!("no subscription {id:?}")));
        };
        if let Some(src) = patch.source
            && src != config.source
        {
            return Err(AdminError::invalid(
                "source",
                "a subscription's source cannot change; create a new subscription",
            ));
        }
        if let Some(v) = patch.url {
            config.url = v;
        }
        if let Some(v) = patch.events {
            config.events = v;
        }
        if let Some(v) = patch.format {
            config.format = v;
        }
        if let Some(v) = patch.template {
            config.template = v;
        }
        if let Some(v) = patch.payload_template {
            config.payload_template = v;
        }
        if let Some(v) = patch.filter {
            config.filter = v;
        }
        if let Some(v) = patch.retry_schedule {
            config.retry_schedule = v;
        }
        if let Some(v) = patch.allow_local {
            config.allow_local = v;
        }
        if let Some(v) = patch.rate_limit {
            config.rate_limit = v;
        }
        if let Some(v) = patch.max_in_flight {
            config.max_in_flight = v;
        }
        if let Some(v) = patch.circuit_breaker {
            config.circuit_breaker = v;
        }
        self.check_subscription(&config).await?;
        let item = ConfigItem::Subscription(config);
        self.check_whole(Some(&item)).await?;
        if !self.ports.config.update_config(&item).await? {
            return Err(AdminError::NotFound(format!("no subscription {id:?}")));
        }
        self.make_live().await;
        self.get_subscription(id).await
    }

    pub(crate) async fn delete_subscription(&self, id: &str) -> Result<Reply, AdminError> {
        let _w = self.writes.lock().await;
        let entry = self.entry(Kind::Subscription, id).await?;
        Self::writable(&entry)?;
        self.ports
            .config
            .delete_config(Kind::Subscription, id)
            .await?;
        if let ConfigItem::Subscription(s) = &entry.item {
            let refs: Vec<SecretRef> = s
                .signing_secret
                .iter()
                .chain(s.previous_signing_secret.as_ref().map(|p| &p.secret))
                .cloned()
                .collect();
            self.forget_secrets(&refs).await;
        }
        // A subscription created later under this id starts afresh; a
        // leftover state would only be a closed circuit's worth of history.
        if let Err(e) = self.ports.gate.forget(id).await {
            tracing::warn!(subscription = id, error = %e, "delivery controls' state not forgotten");
        }
        self.make_live().await;
        Ok(Reply::no_content())
    }

    /// A new signing secret, shown once. The replaced one keeps signing
    /// (a second `webhook-signature` entry) for `overlap`, 24 h by default,
    /// so receivers can switch without rejecting a delivery.
    pub(crate) async fn rotate_subscription_secret(
        &self,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, AdminError> {
        let input: Rotate = json_body(body)?;
        let overlap = match input.overlap.as_deref() {
            None => DEFAULT_OVERLAP,
            Some(v) => input::duration("overlap", v)?,
        };
        if overlap > MAX_OVERLAP {
            return Err(AdminError::invalid("overlap", "must be at most 30 days"));
        }
        let _w = self.writes.lock().await;
        let entry = self.entry(Kind::Subscription, id).await?;
        Self::writable(&entry)?;
        let ConfigItem::Subscription(mut config) = entry.item else {
            return Err(AdminError::NotFound(format!("no subscription {id:?}")));
        };
        let (whsec, r) = self.new_signing_secret(id).await?;
        let replaced = config.signing_secret.replace(r.clone());
        let mut forget: Vec<SecretRef> = config
            .previous_signing_secret
            .take()
            .map(|p| p.secret)
            .into_iter()
            .collect();
        match replaced {
            Some(old) if !overlap.is_zero() => {
                config.previous_signing_secret = Some(PreviousSecret {
                    secret: old,
                    until: SystemTime::now() + overlap,
                });
            }
            Some(old) => forget.push(old),
            None => {}
        }
        if !self
            .ports
            .config
            .update_config(&ConfigItem::Subscription(config))
            .await?
        {
            self.forget_secrets(std::slice::from_ref(&r)).await;
            return Err(AdminError::NotFound(format!("no subscription {id:?}")));
        }
        self.forget_secrets(&forget).await;
        self.make_live().await;
        self.subscription_with_secret(200, id, whsec).await
    }

    // ---- pollers ----

    /// Pollers with their state (one read of all states).
    pub(crate) async fn list_pollers(&self) -> Result<Reply, AdminError> {
        let states = self.poller_states().await?;
        let entries = self.ports.config.list_config().await?;
        let pollers = entries
            .iter()
            .filter_map(|e| match &e.item {
                ConfigItem::Poller(p) => Some(views::Poller::of(p, e, states.get(&p.id))),
                _ => None,
            })
            .collect();
        Reply::json(200, &views::PollerList { pollers })
    }

    pub(crate) async fn get_poller(&self, id: &str) -> Result<Reply, AdminError> {
        let entry = self.entry(Kind::Poller, id).await?;
        let ConfigItem::Poller(p) = &entry.item else {
            return Err(AdminError::NotFound(format!("no poller {id:?}")));
        };
        let state = self.poller_state(id).await?;
        Reply::json(200, &views::Poller::of(p, &entry, state.as_ref()))
    }

    /// The checks of the config file's `[[pollers]]`, with the deployment's
    /// policy, and every header secret resolved: a poller saved here is
    /// one the gateway can poll.
    async fn check_poller(&self, p: &PollerConfig) -> Result<(), AdminError> {
        check_id("poller", &p.id).map_err(|e| AdminError::invalid("id", e.to_string()))?;
        validate_poller(p, &self.ports.policy).map_err(|e| poller_invalid(&e))?;
        // Validated above: what is left to fail is a header's secret.
        resolve_poller(p, &self.ports.policy, self.ports.secrets.as_ref())
            .await
            .map_err(|e| AdminError::invalid("headers", strip_prefix(&e.to_string())))?;
        Ok(())
    }

    pub(crate) async fn create_poller(&self, body: &[u8]) -> Result<Reply, AdminError> {
        let config: PollerConfig = json_body(body)?;
        let _w = self.writes.lock().await;
        self.check_poller(&config).await?;
        self.check_unused(Kind::Poller, &config.id).await?;
        let item = ConfigItem::Poller(config);
        self.check_whole(Some(&item)).await?;
        if !self.ports.config.create_config(&item, Origin::Api).await? {
            return Err(AdminError::AlreadyExists(format!(
                "poller {:?} already exists",
                item.id()
            )));
        }
        self.make_live().await;
        let entry = self.entry(Kind::Poller, item.id()).await?;
        Reply::json(201, &views::Entry::of(&entry, None))
    }

    /// A merge patch (RFC 7396) of the poller's config: absent fields are
    /// unchanged, null resets one to its default.
    pub(crate) async fn update_poller(&self, id: &str, body: &[u8]) -> Result<Reply, AdminError> {
        let patch: PollerPatch = json_body(body)?;
        let _w = self.writes.lock().await;
        let entry = self.entry(Kind::Poller, id).await?;
        Self::writable(&entry)?;
        if patch
            .id
            .as_ref()
            .is_some_and(|given| given.as_deref() != Some(id))
        {
            return Err(AdminError::invalid(
                "id",
                "a poller's id cannot change; create a new poller",
            ));
        }
        let mut merged = serde_json::to_value(&entry.item)
            .map_err(|e| AdminError::Unavailable(crate::error::Unavailable::new(e)))?;
        // Back to JSON to merge: absent fields stay out, a reset is null.
        let patch = serde_json::to_value(&patch)
            .map_err(|e| AdminError::Unavailable(crate::error::Unavailable::new(e)))?;
        merge_patch(&mut merged, patch);
        let config: PollerConfig = input::json_value(merged)?;
        self.check_poller(&config).await?;
        let item = ConfigItem::Poller(config);
        self.check_whole(Some(&item)).await?;
        if !self.ports.config.update_config(&item).await? {
            return Err(AdminError::NotFound(format!("no poller {id:?}")));
        }
        self.make_live().await;
        self.get_poller(id).await
    }
}

/// Every secret reference an entry names.
fn secret_refs(item: &ConfigItem) -> Box<dyn Iterator<Item = &SecretRef> + '_> {
    match item {
        ConfigItem::Source(s) => Box::new(s.secrets.iter().chain(&s.verify_token)),
        ConfigItem::Poller(p) => Box::new(p.headers.values().filter_map(|h| match h {
            HeaderSetting::Secret(r) => Some(r),
            HeaderSetting::Literal(_) => None,
        })),
        ConfigItem::Subscription(s) => Box::new(
            s.signing_secret
                .iter()
                .chain(s.previous_signing_secret.as_ref().map(|p| &p.secret)),
        ),
    }
}

/// RFC 7396: `patch`'s members replace `target`'s, objects merge member
/// by member, and null removes a member.
fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(members) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Some(fields) = target.as_object_mut() {
        for (key, value) in members {
            if value.is_null() {
                fields.remove(&key);
            } else {
                merge_patch(fields.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

/// A poller's ConfigError, `poller "ID": KEY: message`, as a 422 naming
/// KEY (the id is checked before, so every message has one; one without
/// would name the config).
fn poller_invalid(e: &ConfigError) -> AdminError {
    let message = e.to_string();
    match message
        .split_once("\": ")
        .and_then(|(_, rest)| rest.split_once(": "))
    {
        Some((key, m)) if !key.contains(' ') => AdminError::invalid(key, m),
        _ => AdminError::invalid("config", message),
    }
}

/// ConfigError messages start with `subscription "id": `; the field says which.
fn strip_prefix(message: &str) -> String {
    match message.split_once("\": ") {
        Some((_, rest)) => rest.to_owned(),
        None => message.to_owned(),
    }
}
