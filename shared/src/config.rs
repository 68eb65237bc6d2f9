//! Configuration: the TOML file's shape, its validation, and its resolution
//! into the runtime [`Source`]s and [`Subscription`]s the pipeline uses.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;

use crate::error::Unavailable;
use crate::filter::PayloadFilter;
pub use crate::format::Format;
use crate::format::Template;
use crate::gate::{Breaker, Controls};
use crate::poll::{PollerConfig, validate_poller};
use crate::retry::RetryPolicy;
use crate::routing::EventFilter;
use crate::secrets::{Keep, Secret, SecretError, SecretKeeper, SecretRef, SecretResolver};
use crate::sign::SigningKey;
use crate::verify::{
    GenericParams, HmacParams, JwtParams, Provider, SecretDigests, TokenParams, Verifier,
};

/// Default dedup window: how long an event id is remembered.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default cap on a webhook body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// The largest body the AWS backend can store: an event is one DynamoDB
/// item (400 KB at most), and besides the body it holds the headers (API
/// Gateway admits 10 KB of them), the key, the ids and the hash; 24 KiB
/// is left for those.
pub const AWS_MAX_BODY_BYTES: usize = 400 * 1024 - 24 * 1024;

/// What the deployment allows beyond what one entry says. Validation
/// applies it, so the admin API, `apply` and the registries (config
/// written earlier) all check the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Whether `allow_local` subscriptions (http://, loopback and private
    /// destinations) are accepted.
    pub allow_local: bool,
    /// The largest `max_body_bytes` the backend can store.
    pub max_body_bytes: usize,
    /// Whether the backend knows the URL a request was sent to (API
    /// Gateway's request context does; `sluice serve` does not trust
    /// `Host`), so that URL-signing providers may go without `public_url`.
    pub request_url_known: bool,
}

impl Policy {
    /// `sluice serve`: one operator-owned machine; SQLite stores any body.
    pub const EMBEDDED: Self = Self {
        allow_local: true,
        max_body_bytes: usize::MAX,
        request_url_known: false,
    };

    /// The AWS backend: `allow_local` only where the deployment's switch
    /// (`SLUICE_ALLOW_LOCAL_DESTINATIONS`) allows it.
    pub const fn aws(allow_local: bool) -> Self {
        Self {
            allow_local,
            max_body_bytes: AWS_MAX_BODY_BYTES,
            request_url_known: true,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::EMBEDDED
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionConfig>,
    /// Apps without webhooks, polled; each is a source of events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pollers: Vec<PollerConfig>,
    /// The admin API (`/admin/`); off unless a token is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminConfig>,
}

/// `[admin]`: the bearer token of the admin API, a secret reference.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub token: SecretRef,
}

/// A `[[sources]]` entry: where webhooks come in and how they are verified.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// URL segment: `/hooks/{id}`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub id: String,
    pub provider: Provider,
    /// One or more secrets; several means a rotation is under way.
    pub secrets: Vec<SecretRef>,
    /// Replay window in seconds; the provider preset's if unset.
    #[serde(default)]
    pub tolerance_secs: Option<u64>,
    /// How long an event id is remembered (7 days unless set); also the
    /// event log's retention.
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<HumanDuration>)]
    pub dedupe_window: Option<Duration>,
    /// The largest body accepted (256 KiB unless set).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_body_bytes: Option<usize>,
    /// Settings of the generic `hmac` provider.
    #[serde(default)]
    pub hmac: Option<HmacParams>,
    /// Settings of the generic `token` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub token: Option<TokenParams>,
    /// Settings of the generic `jwt` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub jwt: Option<JwtParams>,
    /// The URL the provider is given for this source, for providers that
    /// sign it (Twilio, Square, HubSpot, Trello): scheme, host and path,
    /// without a query (the request's own is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "uri", nullable = false)]
    pub public_url: Option<String>,
    /// Meta's `hub.verify_token`: the token the operator typed into the
    /// app's webhook settings, which the GET `hub.challenge` must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_token: Option<SecretRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    pub id: String,
    pub source: String,
    /// Event-type globs; `*` for all.
    pub events: Vec<String>,
    pub url: String,
    #[serde(default)]
    pub format: Format,
    /// Chat formats: a minijinja template of the message text.
    #[serde(default)]
    pub template: Option<String>,
    /// A minijinja template of the whole JSON body (any format).
    #[serde(default)]
    pub payload_template: Option<String>,
    /// A minijinja expression over the event: only events for which it is
    /// true are delivered (after the `events` globs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// A `whsec_…` secret: deliveries then carry Standard Webhooks headers.
    #[serde(default)]
    pub signing_secret: Option<SecretRef>,
    #[serde(default)]
    pub retry_schedule: Option<Vec<HumanDuration>>,
    /// Allow http:// and private addresses (local use only).
    #[serde(default)]
    pub allow_local: bool,
    /// The secret a rotation replaced: deliveries are signed with both
    /// until `until`, so receivers can switch without a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signing_secret: Option<PreviousSecret>,
    /// At most this many requests per second, minute or hour (`"20/s"`),
    /// sent evenly; `"unlimited"` turns off a chat format's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// At most this many requests out at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// When to stop sending to a destination that keeps failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<Breaker>,
}

/// A replaced signing secret and the end of its overlap.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousSecret {
    pub secret: SecretRef,
    /// RFC 3339, e.g. `2025-01-31T12:00:00Z`.
    #[serde(with = "humantime_serde")]
    pub until: SystemTime,
}

/// A duration written as `5s`, `30m`, `2h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, examples("30s", "24h"))]
pub struct HumanDuration(#[serde(with = "humantime_serde")] pub Duration);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let file: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "config".into(),
            message: e.to_string(),
        })?;
        file.validate()?;
        Ok(file)
    }

    /// Checks that need no secrets: ids, references, URLs, schedules,
    /// with the embedded backend's [`Policy`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(&Policy::EMBEDDED)
    }

    /// [`Self::validate`] under a deployment's policy.
    pub fn validate_with(&self, policy: &Policy) -> Result<(), ConfigError> {
        let mut sources = HashMap::new();
        for s in &self.sources {
            validate_source(s, policy)?;
            let window = s.dedupe_window.unwrap_or(DEFAULT_DEDUPE_WINDOW);
            if sources.insert(s.id.as_str(), window).is_some() {
                return invalid(format!("source {:?} is defined twice", s.id));
            }
        }
        for p in &self.pollers {
            validate_poller(p, policy)?;
            let window = p.dedupe_window.unwrap_or(DEFAULT_DEDUPE_WINDOW);
            // A poller is a source of events: one namespace for both.
            if sources.insert(p.id.as_str(), window).is_some() {
                return invalid(format!(
                    "poller {:?}: a source or poller with this id is already defined",
                    p.id
                ));
            }
        }
        // sluice's own events: a built-in source (`check_id` keeps its id
        // from any configured source or poller).
        sources.insert(crate::notify::SOURCE, crate::notify::RETENTION);
        let mut subs = HashSet::new();
        for sub in &self.subscriptions {
            validate_subscription(sub, policy)?;
            if !subs.insert(sub.id.as_str()) {
                return invalid(format!("subscription {:?} is defined twice", sub.id));
            }
            let Some(window) = sources.get(sub.source.as_str()) else {
                return invalid(format!(
                    "subscription {:?}: source {:?} is not defined (as a source or a poller)",
                    sub.id, sub.source
                ));
            };
            retention_covers_retries(sub, &retry_policy(sub)?, *window)?;
        }
        Ok(())
    }

    /// Resolve secrets and build the runtime view; any entry that does
    /// not validate or resolve fails the whole (a file being checked).
    pub async fn resolve(
        &self,
        secrets: &dyn SecretResolver,
    ) -> Result<StaticRegistry, ConfigError> {
        self.resolve_with(&Policy::EMBEDDED, secrets).await
    }

    /// [`Self::resolve`] under a deployment's policy.
    pub async fn resolve_with(
        &self,
        policy: &Policy,
        secrets: &dyn SecretResolver,
    ) -> Result<StaticRegistry, ConfigError> {
        self.validate_with(policy)?;
        let sources = futures::future::try_join_all(
            self.sources
                .iter()
                .map(|s| resolve_source(s, policy, secrets)),
        );
        let subscriptions = futures::future::try_join_all(
            self.subscriptions
                .iter()
                .map(|s| resolve_subscription(s, policy, secrets, enabled_flag())),
        );
        let (sources, subscriptions) = futures::future::try_join(sources, subscriptions).await?;
        let sources = sources
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(s)))
            .collect();
        Ok(StaticRegistry::new(
            sources,
            subscriptions.into_iter().map(Arc::new).collect(),
        ))
    }

    /// Resolve each entry on its own (a running gateway's config): one
    /// that does not validate or whose secret does not resolve is set
    /// aside as broken, with its reason, and the others are served.
    pub async fn resolve_each(
        &self,
        policy: &Policy,
        secrets: &dyn SecretResolver,
    ) -> StaticRegistry {
        let sources = futures::future::join_all(
            self.sources
                .iter()
                .map(|s| resolve_source(s, policy, secrets)),
        );
        let subscriptions = futures::future::join_all(
            self.subscriptions
                .iter()
                .map(|s| resolve_subscription(s, policy, secrets, enabled_flag())),
        );
        let (sources, subscriptions) = futures::future::join(sources, subscriptions).await;
        let mut ok_sources = HashMap::new();
        let mut broken_sources = HashMap::new();
        for (config, result) in self.sources.iter().zip(sources) {
            match result {
                Ok(s) => {
                    ok_sources.insert(config.id.clone(), Arc::new(s));
                }
                Err(e) => {
                    broken_sources
                        .insert(config.id.clone(), BrokenEntry::new("source", &config.id, e));
                }
            }
        }
        let mut ok_subs = Vec::new();
        let mut broken_subs = HashMap::new();
        for (config, result) in self.subscriptions.iter().zip(subscriptions) {
            match result {
                Ok(s) => ok_subs.push(Arc::new(s)),
                Err(e) => {
                    broken_subs.insert(
                        config.id.clone(),
                        BrokenEntry::new("subscription", &config.id, e),
                    );
                }
            }
        }
        let mut registry = StaticRegistry::new(ok_sources, ok_subs);
        registry.broken_sources = broken_sources;
        registry.broken_subscriptions = broken_subs;
        registry
    }
}

impl SourceConfig {
    /// The settings of the generic schemes, for the verifier.
    pub fn generic(&self) -> GenericParams<'_> {
        GenericParams {
            hmac: self.hmac.as_ref(),
            token: self.token.as_ref(),
            jwt: self.jwt.as_ref(),
        }
    }
}

/// The checks of one source on its own (no secrets needed).
pub fn validate_source(s: &SourceConfig, policy: &Policy) -> Result<(), ConfigError> {
    check_id("source", &s.id)?;
    check_secret_count(&s.id, s.provider, s.secrets.len())?;
    if let Err((_, e)) = s.generic().check(s.provider) {
        return invalid(format!("source {:?}: {e}", s.id));
    }
    check_max_body_bytes(s, policy)?;
    check_verify_token(&s.id, s.provider, s.verify_token.is_some())?;
    check_public_url(s, policy)
}

/// A source names at least one secret; one whose provider sends the
/// secret in a handshake (Asana) names exactly one: where it is kept.
pub fn check_secret_count(id: &str, provider: Provider, count: usize) -> Result<(), ConfigError> {
    match (provider.secret_handshake_header(), count) {
        (_, 0) => invalid(format!(
            "source {id:?}: secrets must name at least one secret"
        )),
        (Some(header), 2..) => invalid(format!(
            "source {id:?}: provider {provider} sends its secret in a handshake ({header}); \
             name exactly one secret, where the gateway keeps it"
        )),
        _ => Ok(()),
    }
}

/// The values of a source's secrets, resolved concurrently; an error names
/// the secret's position. `None` when the provider sends the secret in a
/// handshake (Asana) and nothing is kept yet at the source's `db:` or
/// `ssm:` reference: the source then waits for that handshake. (An unset
/// `env:` variable is a config error: no handshake can fill it.)
pub async fn source_secret_values(
    s: &SourceConfig,
    secrets: &dyn SecretResolver,
) -> Result<Option<Vec<Secret>>, (usize, SecretError)> {
    let resolved = futures::future::join_all(s.secrets.iter().map(|r| secrets.resolve(r))).await;
    let mut values = Vec::with_capacity(resolved.len());
    for (i, r) in resolved.into_iter().enumerate() {
        match r {
            Ok(v) => values.push(v),
            Err(SecretError::NotFound(r))
                if s.provider.secret_handshake_header().is_some()
                    && !matches!(r, SecretRef::Env(_)) =>
            {
                return Ok(None);
            }
            Err(e) => return Err((i, e)),
        }
    }
    Ok(Some(values))
}

/// `verify_token` belongs to the one provider whose handshake carries it.
pub fn check_verify_token(
    id: &str,
    provider: Provider,
    has_token: bool,
) -> Result<(), ConfigError> {
    if has_token && provider != Provider::Meta {
        return invalid(format!(
            "source {id:?}: verify_token is only used by provider \"meta\" (its GET hub.challenge)"
        ));
    }
    Ok(())
}

/// `public_url` is an absolute http(s) URL without query, fragment or
/// credentials; a provider that signs the URL has one unless the backend
/// knows the URL itself.
pub fn check_public_url(s: &SourceConfig, policy: &Policy) -> Result<(), ConfigError> {
    match &s.public_url {
        None if s.provider.signs_url() && !policy.request_url_known => invalid(format!(
            "source {:?}: provider {} signs the URL it calls; set public_url to the URL \
             given to it (sluice serve does not trust the Host header)",
            s.id, s.provider
        )),
        None => Ok(()),
        Some(u) => {
            let parsed = Url::parse(u)
                .map_err(|e| ConfigError::Invalid(format!("source {:?}: public_url: {e}", s.id)))?;
            let fine = matches!(parsed.scheme(), "http" | "https")
                && parsed.host().is_some()
                && parsed.query().is_none()
                && parsed.fragment().is_none()
                && parsed.username().is_empty()
                && parsed.password().is_none();
            if fine {
                Ok(())
            } else {
                invalid(format!(
                    "source {:?}: public_url must be an http(s) URL with no query, fragment \
                     or credentials (the request's query is appended)",
                    s.id
                ))
            }
        }
    }
}

/// `max_body_bytes` is above 0 and within what the backend can store.
pub fn check_max_body_bytes(s: &SourceConfig, policy: &Policy) -> Result<(), ConfigError> {
    match s.max_body_bytes {
        Some(0) => invalid(format!("source {:?}: max_body_bytes must be above 0", s.id)),
        Some(n) if n > policy.max_body_bytes => invalid(format!(
            "source {:?}: max_body_bytes = {n} is over {}, the largest body this backend can store \
             (a DynamoDB item holds 400 KB, with the event's headers and ids)",
            s.id, policy.max_body_bytes
        )),
        _ => Ok(()),
    }
}

/// The checks of one subscription on its own (its source aside).
pub fn validate_subscription(sub: &SubscriptionConfig, policy: &Policy) -> Result<(), ConfigError> {
    check_id("subscription", &sub.id)?;
    if sub.events.is_empty() {
        return invalid(format!(
            "subscription {:?}: events is empty (use [\"*\"] for all)",
            sub.id
        ));
    }
    check_allow_local(sub, policy)?;
    destination_url(sub)?;
    retry_policy(sub)?;
    template(sub)?;
    payload_filter(sub)?;
    controls(sub)?;
    Ok(())
}

/// `allow_local` only where the deployment allows it: on AWS the function
/// runtime's API listens on 127.0.0.1, and the VPC's private addresses
/// are not the admin caller's to reach.
pub fn check_allow_local(sub: &SubscriptionConfig, policy: &Policy) -> Result<(), ConfigError> {
    if sub.allow_local && !policy.allow_local {
        return invalid(format!(
            "subscription {:?}: allow_local is not allowed in this deployment \
             (SLUICE_ALLOW_LOCAL_DESTINATIONS is off); use a public https destination",
            sub.id
        ));
    }
    Ok(())
}

/// A source, validated, its secrets resolved (concurrently) and its
/// verifier built.
pub async fn resolve_source(
    s: &SourceConfig,
    policy: &Policy,
    secrets: &dyn SecretResolver,
) -> Result<Source, ConfigError> {
    validate_source(s, policy)?;
    let values = source_secret_values(s, secrets)
        .await
        .map_err(|(_, e)| ConfigError::Invalid(format!("source {:?}: {e}", s.id)))?;
    let verifier = match &values {
        None => Verifier::awaiting_handshake(s.provider),
        Some(values) => Verifier::with_params(
            s.provider,
            values,
            s.generic(),
            s.tolerance_secs.map(Duration::from_secs),
        )
        .map_err(|e| ConfigError::Invalid(format!("source {:?}: {e}", s.id)))?,
    };
    let handshake_secret = match (s.provider.secret_handshake_header(), s.secrets.first()) {
        (Some(_), Some(reference)) => Some(HandshakeSecret {
            reference: reference.clone(),
            kept: values.as_deref().map(SecretDigests::new),
        }),
        _ => None,
    };
    let verify_token =
        match &s.verify_token {
            Some(r) => Some(secrets.resolve(r).await.map_err(|e| {
                ConfigError::Invalid(format!("source {:?}: verify_token: {e}", s.id))
            })?),
            None => None,
        };
    Ok(Source {
        id: s.id.clone(),
        provider: s.provider,
        hmac: s.hmac.clone(),
        verifier,
        dedupe_window: s.dedupe_window.unwrap_or(DEFAULT_DEDUPE_WINDOW),
        max_body_bytes: s.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        public_url: s.public_url.clone(),
        verify_token,
        handshake_secret,
    })
}

/// A fresh `enabled` flag (set).
fn enabled_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

/// A signing key from a `whsec_` secret reference.
async fn signing_key(
    sub: &SubscriptionConfig,
    field: &str,
    r: &SecretRef,
    secrets: &dyn SecretResolver,
) -> Result<SigningKey, ConfigError> {
    let value = secrets
        .resolve(r)
        .await
        .map_err(|e| ConfigError::Invalid(format!("subscription {:?}: {e}", sub.id)))?;
    SigningKey::from_whsec(value.expose())
        .map_err(|e| ConfigError::Invalid(format!("subscription {:?}: {field}: {e}", sub.id)))
}

/// A subscription, validated, its signing secrets resolved (concurrently).
/// `enabled` is its flag, shared with any other view of it.
pub(crate) async fn resolve_subscription(
    sub: &SubscriptionConfig,
    policy: &Policy,
    secrets: &dyn SecretResolver,
    enabled: Arc<AtomicBool>,
) -> Result<Subscription, ConfigError> {
    let mut built = routing_view(sub, policy, enabled)?;
    let current = async {
        match &sub.signing_secret {
            None => Ok(None),
            Some(r) => signing_key(sub, "signing_secret", r, secrets)
                .await
                .map(Some),
        }
    };
    let previous = async {
        match &sub.previous_signing_secret {
            None => Ok(None),
            Some(p) => signing_key(sub, "previous_signing_secret", &p.secret, secrets)
                .await
                .map(|k| Some((k, p.until))),
        }
    };
    let (current, previous) = futures::future::try_join(current, previous).await?;
    built.signing_key = current;
    built.previous_signing_key = previous;
    Ok(built)
}

/// A subscription without its signing keys: what routing needs (filter,
/// enabled), built with no secret resolved. Never used to deliver.
pub(crate) fn routing_view(
    sub: &SubscriptionConfig,
    policy: &Policy,
    enabled: Arc<AtomicBool>,
) -> Result<Subscription, ConfigError> {
    validate_subscription(sub, policy)?;
    Ok(Subscription {
        id: sub.id.clone(),
        source: sub.source.clone(),
        filter: EventFilter::new(&sub.events),
        payload_filter: payload_filter(sub)?,
        url: destination_url(sub)?,
        format: sub.format,
        template: template(sub)?,
        signing_key: None,
        previous_signing_key: None,
        retry: retry_policy(sub)?,
        allow_local: sub.allow_local,
        controls: controls(sub)?,
        enabled,
    })
}

fn invalid<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(message))
}

/// Ids appear in URLs and in `{source}#{id}` keys: keep them plain. A
/// source or poller may not take the id of sluice's own events.
pub(crate) fn check_id(kind: &str, id: &str) -> Result<(), ConfigError> {
    if matches!(kind, "source" | "poller") && id == crate::notify::SOURCE {
        return invalid(format!(
            "{kind} id {id:?} is reserved: it is the source of sluice's own events \
             (notifications); choose another id"
        ));
    }
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "{kind} id {id:?} must be 1-64 characters of A-Z a-z 0-9 - _ ."
        ))
    }
}

pub(crate) fn destination_url(sub: &SubscriptionConfig) -> Result<Url, ConfigError> {
    let url = Url::parse(&sub.url)
        .map_err(|e| ConfigError::Invalid(format!("subscription {:?}: url: {e}", sub.id)))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if sub.allow_local => Ok(url),
        "http" => invalid(format!(
            "subscription {:?}: url must use https (set allow_local = true for local http destinations)",
            sub.id
        )),
        other => invalid(format!(
            "subscription {:?}: url scheme {other:?} is not http(s)",
            sub.id
        )),
    }
}

pub(crate) fn retry_policy(sub: &SubscriptionConfig) -> Result<RetryPolicy, ConfigError> {
    match &sub.retry_schedule {
        None => Ok(RetryPolicy::default()),
        Some(schedule) => RetryPolicy::new(schedule.iter().map(|d| d.0).collect()).map_err(|e| {
            ConfigError::Invalid(format!("subscription {:?}: retry_schedule: {e}", sub.id))
        }),
    }
}

/// How long an event outlives its subscriptions' longest retry schedule
/// at least: the attempts themselves, and DynamoDB's TTL sweep is no
/// earlier than the expiry.
pub const RETENTION_MARGIN: Duration = Duration::from_secs(3600);

/// The event is kept for its source's `dedupe_window` (on AWS the events
/// item's TTL): every retry must come before that, or it would find the
/// body gone. (`Retry-After` waits are cut to fit at delivery.)
fn retention_covers_retries(
    sub: &SubscriptionConfig,
    policy: &RetryPolicy,
    dedupe_window: Duration,
) -> Result<(), ConfigError> {
    let span = policy.longest_span();
    if span + RETENTION_MARGIN <= dedupe_window {
        return Ok(());
    }
    invalid(format!(
        "subscription {:?}: retry_schedule can take up to {} (with jitter), and source {:?} keeps \
         an event for its dedupe_window of {}: shorten retry_schedule or make dedupe_window at \
         least {}",
        sub.id,
        humantime::format_duration(span),
        sub.source,
        humantime::format_duration(dedupe_window),
        humantime::format_duration(span + RETENTION_MARGIN),
    ))
}

/// The subscription's compiled payload filter: errors surface at load time.
pub(crate) fn payload_filter(
    sub: &SubscriptionConfig,
) -> Result<Option<PayloadFilter>, ConfigError> {
    sub.filter
        .as_deref()
        .map(PayloadFilter::compile)
        .transpose()
        .map_err(|e| ConfigError::Invalid(format!("subscription {:?}: {e}", sub.id)))
}

/// The subscription's delivery controls, its format's defaults applied.
pub(crate) fn controls(sub: &SubscriptionConfig) -> Result<Controls, ConfigError> {
    Controls::new(
        sub.format,
        sub.rate_limit.as_deref(),
        sub.max_in_flight,
        sub.circuit_breaker,
    )
    .map_err(|e| ConfigError::Invalid(format!("subscription {:?}: {e}", sub.id)))
}

/// The subscription's compiled template: errors surface at load time.
fn template(sub: &SubscriptionConfig) -> Result<Option<Template>, ConfigError> {
    Template::for_subscription(
        sub.format,
        sub.template.as_deref(),
        sub.payload_template.as_deref(),
    )
    .map_err(|e| ConfigError::Invalid(format!("subscription {:?}: {e}", sub.id)))
}

/// A source, ready to verify requests.
#[derive(Debug)]
pub struct Source {
    pub id: String,
    pub provider: Provider,
    pub hmac: Option<HmacParams>,
    pub verifier: Verifier,
    pub dedupe_window: Duration,
    pub max_body_bytes: usize,
    /// See [`SourceConfig::public_url`].
    pub public_url: Option<String>,
    /// See [`SourceConfig::verify_token`].
    pub verify_token: Option<Secret>,
    /// Set when the provider sends the secret in a handshake (Asana).
    pub handshake_secret: Option<HandshakeSecret>,
}

/// Where a source keeps the secret its provider sends in a handshake
/// (Asana's `X-Hook-Secret`), and whether it has one yet.
#[derive(Debug)]
pub struct HandshakeSecret {
    /// The source's one secret reference: the first handshake's secret is
    /// written there, if nothing is.
    pub reference: SecretRef,
    /// The secret kept there, as a digest (to know a repeated handshake);
    /// `None` while the source waits for its first handshake.
    pub kept: Option<SecretDigests>,
}

impl Source {
    /// Whether the source waits for the handshake that brings its secret:
    /// then it is not served as settled (see [`LazyRegistry`]).
    pub fn awaits_handshake(&self) -> bool {
        self.handshake_secret
            .as_ref()
            .is_some_and(|h| h.kept.is_none())
    }
}

/// A subscription, ready to deliver.
#[derive(Debug)]
pub struct Subscription {
    pub id: String,
    pub source: String,
    pub filter: EventFilter,
    /// Checked after `filter`, on the event's payload and headers.
    pub payload_filter: Option<PayloadFilter>,
    pub url: Url,
    pub format: Format,
    pub template: Option<Template>,
    pub signing_key: Option<SigningKey>,
    /// The replaced key, still signing until the time given.
    pub previous_signing_key: Option<(SigningKey, SystemTime)>,
    pub retry: RetryPolicy,
    pub allow_local: bool,
    /// Rate limit, in-flight cap and circuit breaker.
    pub controls: Controls,
    /// Shared by every view of the subscription in one registry, so that
    /// disabling it (a 410) reaches them all.
    enabled: Arc<AtomicBool>,
}

impl Subscription {
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// The replaced key, if it still signs at `now`.
    pub fn previous_key_at(&self, now: SystemTime) -> Option<&SigningKey> {
        self.previous_signing_key
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(k, _)| k)
    }
}

/// One entry of the config that cannot be served, and why (for the log:
/// the reason may name secret references, never values).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} {id:?} is unavailable: {reason}")]
pub struct BrokenEntry {
    pub kind: &'static str,
    pub id: String,
    pub reason: String,
}

impl BrokenEntry {
    pub fn new(kind: &'static str, id: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Why a source could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// This source's own entry does not validate or its secret does not
    /// resolve; the other sources are served.
    #[error(transparent)]
    Broken(#[from] BrokenEntry),
    /// The config itself could not be read.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The config port: where the pipeline finds sources and subscriptions.
#[async_trait]
pub trait Registry: Send + Sync {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, SourceError>;

    /// All subscriptions of a source, enabled or not: what routing needs.
    /// They may come without their signing keys (see [`LazyRegistry`]);
    /// a delivery looks its subscription up with [`Self::subscription`].
    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable>;

    /// A subscription, ready to deliver (its signing keys resolved). One
    /// whose entry is broken is unavailable (the task is retried).
    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable>;

    /// Stop routing to a subscription (its destination answered 410, or
    /// its circuit stayed open past `disable_after`).
    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable>;

    /// Keep `value`, sent in `source`'s handshake (Asana's `X-Hook-Secret`),
    /// at its secret `reference` unless something is kept there already
    /// (then nothing changes), and serve the source with what is kept from
    /// now on.
    async fn keep_handshake_secret(
        &self,
        source: &str,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, Unavailable>;
}

/// [`Registry::keep_handshake_secret`] through `keeper`, its failure made
/// an [`Unavailable`] (the provider retries the handshake).
pub async fn keep_with(
    keeper: Option<&dyn SecretKeeper>,
    reference: &SecretRef,
    value: &Secret,
) -> Result<Keep, Unavailable> {
    let keeper = keeper.ok_or_else(|| {
        Unavailable::new("this registry keeps no secrets: it serves a config file as it stands")
    })?;
    keeper
        .keep_if_absent(reference, value)
        .await
        .map_err(Unavailable::new)
}

/// The registry of a config file, held in memory.
#[derive(Debug, Default)]
pub struct StaticRegistry {
    sources: HashMap<String, Arc<Source>>,
    subscriptions: HashMap<String, Arc<Subscription>>,
    by_source: HashMap<String, Vec<Arc<Subscription>>>,
    broken_sources: HashMap<String, BrokenEntry>,
    broken_subscriptions: HashMap<String, BrokenEntry>,
}

impl StaticRegistry {
    pub fn new(
        sources: HashMap<String, Arc<Source>>,
        subscriptions: Vec<Arc<Subscription>>,
    ) -> Self {
        let mut by_source: HashMap<String, Vec<Arc<Subscription>>> = HashMap::new();
        for sub in &subscriptions {
            by_source
                .entry(sub.source.clone())
                .or_default()
                .push(sub.clone());
        }
        let subscriptions = subscriptions
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        Self {
            sources,
            subscriptions,
            by_source,
            broken_sources: HashMap::new(),
            broken_subscriptions: HashMap::new(),
        }
    }

    pub fn source_ids(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    pub fn subscription_ids(&self) -> impl Iterator<Item = &str> {
        self.subscriptions.keys().map(String::as_str)
    }

    /// The entries set aside by [`ConfigFile::resolve_each`].
    pub fn broken(&self) -> impl Iterator<Item = &BrokenEntry> {
        self.broken_sources
            .values()
            .chain(self.broken_subscriptions.values())
    }

    /// The largest body any source accepts (the HTTP layer's read cap).
    pub fn max_body_bytes(&self) -> usize {
        self.sources
            .values()
            .map(|s| s.max_body_bytes)
            .max()
            .unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }

    pub fn get_subscription(&self, id: &str) -> Option<&Arc<Subscription>> {
        self.subscriptions.get(id)
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = &Arc<Subscription>> {
        self.subscriptions.values()
    }
}

#[async_trait]
impl Registry for StaticRegistry {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, SourceError> {
        if let Some(b) = self.broken_sources.get(id) {
            return Err(b.clone().into());
        }
        Ok(self.sources.get(id).cloned())
    }

    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable> {
        Ok(self.by_source.get(source).cloned().unwrap_or_default())
    }

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable> {
        if let Some(b) = self.broken_subscriptions.get(id) {
            return Err(Unavailable::new(b));
        }
        Ok(self.subscriptions.get(id).cloned())
    }

    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable> {
        if let Some(s) = self.subscriptions.get(id) {
            s.set_enabled(false);
        }
        Ok(())
    }

    /// A config file held as it stands has nowhere to keep a secret.
    async fn keep_handshake_secret(
        &self,
        _source: &str,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, Unavailable> {
        keep_with(None, reference, value).await
    }
}

/// A failed resolution is tried again after this long, not on every call:
/// a missing secret must not cost an SSM call per request.
const RETRY_BROKEN_AFTER: Duration = Duration::from_secs(5);

/// What resolving an entry gave, and when (tokio's clock, which tests
/// can move).
type Resolved<T> = (Result<Arc<T>, BrokenEntry>, tokio::time::Instant);

/// One entry of a [`LazyRegistry`]: its config, and what resolving it gave.
struct Slot<C, T> {
    config: C,
    resolved: tokio::sync::Mutex<Option<Resolved<T>>>,
}

impl<C, T> Slot<C, T> {
    fn new(config: C) -> Self {
        Self {
            config,
            resolved: tokio::sync::Mutex::new(None),
        }
    }

    /// The resolved entry, `resolve` run (futures are lazy) only on
    /// first use; callers for the same entry wait for one resolution. A
    /// success is kept for the registry's life, a failure for
    /// [`RETRY_BROKEN_AFTER`]; so is an entry that resolves but is not
    /// `settled` (a source waiting for its handshake's secret, which
    /// another process may have kept meanwhile).
    async fn get(
        &self,
        resolve: impl std::future::Future<Output = Result<T, BrokenEntry>>,
        settled: impl Fn(&T) -> bool,
    ) -> Result<Arc<T>, BrokenEntry> {
        let mut slot = self.resolved.lock().await;
        if let Some((result, at)) = slot.as_ref()
            && (result.as_deref().is_ok_and(&settled) || at.elapsed() < RETRY_BROKEN_AFTER)
        {
            return result.clone();
        }
        let result = resolve.await.map(Arc::new);
        *slot = Some((result.clone(), tokio::time::Instant::now()));
        result
    }

    /// Resolve again on next use.
    async fn forget(&self) {
        *self.resolved.lock().await = None;
    }
}

/// One snapshot of a config table whose entries are resolved one by one,
/// on first use: a process resolves only the secrets it uses (receive:
/// the sources it is sent webhooks for; deliver: the subscriptions it
/// delivers to), and an entry that does not resolve is unavailable on its
/// own. Routing uses views of the subscriptions built without secrets.
pub struct LazyRegistry {
    policy: Policy,
    secrets: Arc<dyn SecretResolver>,
    /// Where handshakes' secrets are written; none: nowhere.
    keeper: Option<Arc<dyn SecretKeeper>>,
    sources: HashMap<String, Slot<SourceConfig, Source>>,
    disabled_sources: HashSet<String>,
    subscriptions: HashMap<String, Slot<SubscriptionConfig, Subscription>>,
    /// Each subscription's `enabled` flag, shared with its views.
    enabled: HashMap<String, Arc<AtomicBool>>,
    /// Routing views, by source.
    by_source: HashMap<String, Vec<Arc<Subscription>>>,
    /// Entries that failed before any secret was needed.
    broken: Vec<BrokenEntry>,
}

impl std::fmt::Debug for LazyRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyRegistry")
            .field("sources", &self.sources.len())
            .field("subscriptions", &self.subscriptions.len())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl LazyRegistry {
    /// `disabled_sources` are not served (404); `disabled_subscriptions`
    /// get no new tasks. `broken` are entries that could not even be read;
    /// they are kept to be logged and reported. Nothing is resolved yet.
    pub fn new(
        file: ConfigFile,
        disabled_sources: HashSet<String>,
        disabled_subscriptions: &HashSet<String>,
        mut broken: Vec<BrokenEntry>,
        policy: Policy,
        secrets: Arc<dyn SecretResolver>,
    ) -> Self {
        let mut enabled = HashMap::new();
        let mut by_source: HashMap<String, Vec<Arc<Subscription>>> = HashMap::new();
        let mut subscriptions = HashMap::new();
        for sub in file.subscriptions {
            let flag = Arc::new(AtomicBool::new(!disabled_subscriptions.contains(&sub.id)));
            match routing_view(&sub, &policy, flag.clone()) {
                Ok(view) => {
                    by_source
                        .entry(sub.source.clone())
                        .or_default()
                        .push(Arc::new(view));
                    enabled.insert(sub.id.clone(), flag);
                    subscriptions.insert(sub.id.clone(), Slot::new(sub));
                }
                Err(e) => broken.push(BrokenEntry::new("subscription", &sub.id, e)),
            }
        }
        let sources = file
            .sources
            .into_iter()
            .map(|s| (s.id.clone(), Slot::new(s)))
            .collect();
        Self {
            policy,
            secrets,
            keeper: None,
            sources,
            disabled_sources,
            subscriptions,
            enabled,
            by_source,
            broken,
        }
    }

    /// Write the secrets of sources' handshakes (Asana's) to `keeper`.
    pub fn with_keeper(mut self, keeper: Option<Arc<dyn SecretKeeper>>) -> Self {
        self.keeper = keeper;
        self
    }

    /// Entries found broken while reading (resolution failures are found
    /// on use).
    pub fn broken(&self) -> &[BrokenEntry] {
        &self.broken
    }

    pub fn source_ids(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Flip a subscription's flag in every view handed out.
    pub fn set_enabled(&self, id: &str, enabled: bool) {
        if let Some(flag) = self.enabled.get(id) {
            flag.store(enabled, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl Registry for LazyRegistry {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, SourceError> {
        if self.disabled_sources.contains(id) {
            return Ok(None);
        }
        if let Some(b) = self
            .broken
            .iter()
            .find(|b| b.kind == "source" && b.id == id)
        {
            return Err(b.clone().into());
        }
        let Some(slot) = self.sources.get(id) else {
            return Ok(None);
        };
        let c = &slot.config;
        let source = slot
            .get(
                async {
                    resolve_source(c, &self.policy, self.secrets.as_ref())
                        .await
                        .map_err(|e| BrokenEntry::new("source", &c.id, e))
                },
                |s| !s.awaits_handshake(),
            )
            .await?;
        Ok(Some(source))
    }

    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable> {
        Ok(self.by_source.get(source).cloned().unwrap_or_default())
    }

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable> {
        if let Some(b) = self
            .broken
            .iter()
            .find(|b| b.kind == "subscription" && b.id == id)
        {
            return Err(Unavailable::new(b));
        }
        let (Some(slot), Some(flag)) = (self.subscriptions.get(id), self.enabled.get(id)) else {
            return Ok(None);
        };
        let c = &slot.config;
        let sub = slot
            .get(
                async {
                    resolve_subscription(c, &self.policy, self.secrets.as_ref(), flag.clone())
                        .await
                        .map_err(|e| BrokenEntry::new("subscription", &c.id, e))
                },
                |_| true,
            )
            .await
            .map_err(Unavailable::new)?;
        Ok(Some(sub))
    }

    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable> {
        self.set_enabled(id, false);
        Ok(())
    }

    async fn keep_handshake_secret(
        &self,
        source: &str,
        reference: &SecretRef,
        value: &Secret,
    ) -> Result<Keep, Unavailable> {
        let kept = keep_with(self.keeper.as_deref(), reference, value).await?;
        if let Some(slot) = self.sources.get(source) {
            slot.forget().await;
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    fn config(dedupe_window: &str, schedule: &str) -> String {
        format!(
            r#"
            [[sources]]
            id = "gh"
            provider = "github"
            secrets = ["env:GH"]
            dedupe_window = "{dedupe_window}"
            [[subscriptions]]
            id = "deploys"
            source = "gh"
            events = ["*"]
            url = "https://example.com/hook"
            {schedule}
            "#
        )
    }

    /// A schedule that could outlast the event's retention is refused,
    /// naming both settings and what would fit.
    #[test]
    fn a_schedule_longer_than_the_dedupe_window_is_refused_naming_both() {
        // The default schedule takes up to 32h 46m 6s with jitter (its two
        // 10 h waits capped at 11h 50m).
        let err = ConfigFile::parse(&config("1day", ""))
            .unwrap_err()
            .to_string();
        for part in [
            "subscription \"deploys\"",
            "retry_schedule",
            "source \"gh\"",
            "dedupe_window of 1day",
            "1day 8h 46m 6s",
            "at least 1day 9h 46m 6s",
        ] {
            assert!(err.contains(part), "{part:?} in {err}");
        }
        ConfigFile::parse(&config("33h 46m 6s", "")).unwrap();
        let short = r#"retry_schedule = ["1m", "10m"]"#;
        ConfigFile::parse(&config("2h", short)).unwrap();
        let err = ConfigFile::parse(&config("1h", short))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dedupe_window of 1h"), "{err}");
    }

    /// More attempts than the queue's redrive leaves room for are refused:
    /// deliver, not SQS, must end every schedule.
    #[test]
    fn a_schedule_over_the_receive_limit_is_refused() {
        let waits = |n: usize| format!("retry_schedule = [{}]", vec!["\"1s\""; n].join(", "));
        ConfigFile::parse(&config("7d", &waits(14))).unwrap();
        let err = ConfigFile::parse(&config("7d", &waits(15)))
            .unwrap_err()
            .to_string();
        for part in [
            "subscription \"deploys\"",
            "retry_schedule",
            "16 attempts (15 waits)",
            "maximum of 15",
            "after 20 receives",
        ] {
            assert!(err.contains(part), "{part:?} in {err}");
        }
    }
}

#[cfg(test)]
mod public_url_tests {
    use super::*;

    fn source(provider: &str, public_url: Option<&str>) -> ConfigFile {
        let url = public_url
            .map(|u| format!("public_url = {u:?}"))
            .unwrap_or_default();
        let text = format!(
            "[[sources]]\nid = \"s\"\nprovider = \"{provider}\"\nsecrets = [\"env:S\"]\n{url}\n"
        );
        toml::from_str(&text).unwrap()
    }

    /// A config file's `verify_token` belongs to a meta source only.
    #[test]
    fn only_a_meta_source_takes_a_verify_token() {
        let with_token = |provider: &str| -> ConfigFile {
            toml::from_str(&format!(
                "[[sources]]\nid = \"s\"\nprovider = \"{provider}\"\nsecrets = [\"env:S\"]\nverify_token = \"env:T\"\n"
            ))
            .unwrap()
        };
        with_token("meta").validate().unwrap();
        let err = with_token("github").validate().unwrap_err().to_string();
        assert!(
            err.contains("verify_token is only used by provider \"meta\""),
            "{err}"
        );
    }

    /// Each generic scheme's table belongs to its provider, which needs it.
    #[test]
    fn a_generic_schemes_settings_belong_to_its_provider() {
        let parse = |provider: &str, table: &str| -> ConfigFile {
            toml::from_str(&format!(
                "[[sources]]\nid = \"s\"\nprovider = \"{provider}\"\nsecrets = [\"env:S\"]\n{table}\n"
            ))
            .unwrap()
        };
        parse("token", "[sources.token]\nheader = \"X-Key\"")
            .validate()
            .unwrap();
        parse("jwt", "[sources.jwt]\nheader = \"X-Jwt\"")
            .validate()
            .unwrap();
        for (provider, table, want) in [
            ("token", "", "provider \"token\" needs its token settings"),
            ("jwt", "", "provider \"jwt\" needs its jwt settings"),
            ("hmac", "", "provider \"hmac\" needs its hmac settings"),
            (
                "github",
                "[sources.token]\nquery = \"k\"",
                "the token settings only apply to provider \"token\"",
            ),
            (
                "token",
                "[sources.token]\nquery = \"k\"\n[sources.jwt]\nheader = \"X\"",
                "the jwt settings only apply to provider \"jwt\"",
            ),
        ] {
            let err = parse(provider, table).validate().unwrap_err().to_string();
            assert!(err.contains(want), "{provider}: {err}");
        }
    }

    /// `sluice serve` does not trust `Host`, so a URL-signing source needs
    /// its `public_url` there; on AWS API Gateway's context stands in.
    #[test]
    fn a_url_signing_source_needs_a_public_url_unless_the_backend_knows_it() {
        let aws = Policy::aws(false);
        for provider in ["twilio", "square", "hubspot", "trello"] {
            let bare = source(provider, None);
            let err = bare.validate().unwrap_err().to_string();
            assert!(err.contains("set public_url"), "{provider}: {err}");
            bare.validate_with(&aws).unwrap();
            source(provider, Some("https://hooks.example.com/hooks/s"))
                .validate()
                .unwrap();
        }
        // Others neither need one nor mind one.
        source("github", None).validate().unwrap();
        source("github", Some("https://hooks.example.com/hooks/s"))
            .validate()
            .unwrap();
    }

    #[test]
    fn a_public_url_is_an_http_url_without_query_fragment_or_credentials() {
        for bad in [
            "hooks.example.com/hooks/s",
            "ftp://hooks.example.com/s",
            "https://hooks.example.com/s?x=1",
            "https://hooks.example.com/s#frag",
            "https://user:pw@hooks.example.com/s",
        ] {
            let err = source("twilio", Some(bad))
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains("public_url"), "{bad}: {err}");
            assert!(!err.contains("pw"), "{bad}: {err}");
        }
        source("twilio", Some("http://127.0.0.1:8080/hooks/s"))
            .validate()
            .unwrap();
    }
}

#[cfg(test)]
mod slot_tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// `resolve` as a counted future giving `answer`.
    async fn get(
        slot: &Slot<(), bool>,
        calls: &AtomicU32,
        answer: Result<bool, &str>,
    ) -> Result<bool, String> {
        let resolve = async {
            calls.fetch_add(1, Ordering::SeqCst);
            answer.map_err(|e| BrokenEntry::new("source", "s", e))
        };
        slot.get(resolve, |settled| *settled)
            .await
            .map(|v| *v)
            .map_err(|e| e.reason)
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_or_broken_entry_is_resolved_again_after_5_s_a_settled_one_never() {
        let slot = Slot::new(());
        let calls = AtomicU32::new(0);
        // Waiting (resolves, not settled): kept for 5 s, then resolved again.
        assert_eq!(get(&slot, &calls, Ok(false)).await, Ok(false));
        tokio::time::advance(RETRY_BROKEN_AFTER - Duration::from_millis(1)).await;
        assert_eq!(get(&slot, &calls, Ok(true)).await, Ok(false));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(get(&slot, &calls, Ok(true)).await, Ok(true));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Settled: kept for good.
        tokio::time::advance(RETRY_BROKEN_AFTER * 100).await;
        assert_eq!(get(&slot, &calls, Ok(false)).await, Ok(true));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Broken: the same 5 s.
        let slot = Slot::new(());
        assert_eq!(
            get(&slot, &calls, Err("no secret")).await,
            Err("no secret".into())
        );
        assert_eq!(get(&slot, &calls, Ok(true)).await, Err("no secret".into()));
        tokio::time::advance(RETRY_BROKEN_AFTER).await;
        assert_eq!(get(&slot, &calls, Ok(true)).await, Ok(true));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // Forgotten: resolved on next use.
        slot.forget().await;
        assert_eq!(get(&slot, &calls, Ok(true)).await, Ok(true));
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }
}
