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

use crate::error::Unavailable;
pub use crate::format::Format;
use crate::format::Template;
use crate::retry::RetryPolicy;
use crate::routing::EventFilter;
use crate::secrets::{SecretRef, SecretResolver};
use crate::sign::SigningKey;
use crate::verify::{HmacParams, Provider, Verifier};

/// Default dedup window: how long an event id is remembered.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default cap on a webhook body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionConfig>,
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

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// URL segment: `/hooks/{id}`.
    pub id: String,
    pub provider: Provider,
    /// One or more secrets; several means a rotation is under way.
    pub secrets: Vec<SecretRef>,
    /// Replay window in seconds; the provider preset's if unset.
    #[serde(default)]
    pub tolerance_secs: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub dedupe_window: Option<Duration>,
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Settings of the generic `hmac` provider.
    #[serde(default)]
    pub hmac: Option<HmacParams>,
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

/// A duration written as `5s`, `30m`, `2h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
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

    /// Checks that need no secrets: ids, references, URLs, schedules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut sources = HashMap::new();
        for s in &self.sources {
            check_id("source", &s.id)?;
            let window = s.dedupe_window.unwrap_or(DEFAULT_DEDUPE_WINDOW);
            if sources.insert(s.id.as_str(), window).is_some() {
                return invalid(format!("source {:?} is defined twice", s.id));
            }
            if s.secrets.is_empty() {
                return invalid(format!(
                    "source {:?}: secrets must name at least one secret",
                    s.id
                ));
            }
            match (s.provider, &s.hmac) {
                (Provider::Hmac, None) => {
                    return invalid(format!(
                        "source {:?}: provider \"hmac\" needs an [sources.hmac] table",
                        s.id
                    ));
                }
                (p, Some(_)) if p != Provider::Hmac => {
                    return invalid(format!(
                        "source {:?}: the hmac table only applies to provider \"hmac\"",
                        s.id
                    ));
                }
                _ => {}
            }
            if s.max_body_bytes == Some(0) {
                return invalid(format!("source {:?}: max_body_bytes must be above 0", s.id));
            }
        }
        let mut subs = HashSet::new();
        for sub in &self.subscriptions {
            check_id("subscription", &sub.id)?;
            if !subs.insert(sub.id.as_str()) {
                return invalid(format!("subscription {:?} is defined twice", sub.id));
            }
            let Some(window) = sources.get(sub.source.as_str()) else {
                return invalid(format!(
                    "subscription {:?}: source {:?} is not defined",
                    sub.id, sub.source
                ));
            };
            if sub.events.is_empty() {
                return invalid(format!(
                    "subscription {:?}: events is empty (use [\"*\"] for all)",
                    sub.id
                ));
            }
            destination_url(sub)?;
            retention_covers_retries(sub, &retry_policy(sub)?, *window)?;
            template(sub)?;
        }
        Ok(())
    }

    /// Resolve secrets and build the runtime view.
    pub async fn resolve(
        &self,
        secrets: &dyn SecretResolver,
    ) -> Result<StaticRegistry, ConfigError> {
        self.validate()?;
        let mut sources = HashMap::new();
        for s in &self.sources {
            let mut values = Vec::with_capacity(s.secrets.len());
            for r in &s.secrets {
                values.push(
                    secrets
                        .resolve(r)
                        .await
                        .map_err(|e| ConfigError::Invalid(format!("source {:?}: {e}", s.id)))?,
                );
            }
            let verifier = Verifier::new(
                s.provider,
                &values,
                s.hmac.as_ref(),
                s.tolerance_secs.map(Duration::from_secs),
            )
            .map_err(|e| ConfigError::Invalid(format!("source {:?}: {e}", s.id)))?;
            let source = Source {
                id: s.id.clone(),
                provider: s.provider,
                hmac: s.hmac.clone(),
                verifier,
                dedupe_window: s.dedupe_window.unwrap_or(DEFAULT_DEDUPE_WINDOW),
                max_body_bytes: s.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            };
            sources.insert(s.id.clone(), Arc::new(source));
        }
        let mut subscriptions = Vec::with_capacity(self.subscriptions.len());
        for sub in &self.subscriptions {
            let signing_key = match &sub.signing_secret {
                None => None,
                Some(r) => {
                    let value = secrets.resolve(r).await.map_err(|e| {
                        ConfigError::Invalid(format!("subscription {:?}: {e}", sub.id))
                    })?;
                    Some(SigningKey::from_whsec(value.expose()).map_err(|e| {
                        ConfigError::Invalid(format!(
                            "subscription {:?}: signing_secret: {e}",
                            sub.id
                        ))
                    })?)
                }
            };
            let previous_signing_key = match &sub.previous_signing_secret {
                None => None,
                Some(p) => {
                    let value = secrets.resolve(&p.secret).await.map_err(|e| {
                        ConfigError::Invalid(format!("subscription {:?}: {e}", sub.id))
                    })?;
                    let key = SigningKey::from_whsec(value.expose()).map_err(|e| {
                        ConfigError::Invalid(format!(
                            "subscription {:?}: previous_signing_secret: {e}",
                            sub.id
                        ))
                    })?;
                    Some((key, p.until))
                }
            };
            subscriptions.push(Arc::new(Subscription {
                id: sub.id.clone(),
                source: sub.source.clone(),
                filter: EventFilter::new(&sub.events),
                url: destination_url(sub)?,
                format: sub.format,
                template: template(sub)?,
                signing_key,
                previous_signing_key,
                retry: retry_policy(sub)?,
                allow_local: sub.allow_local,
                enabled: AtomicBool::new(true),
            }));
        }
        Ok(StaticRegistry::new(sources, subscriptions))
    }
}

fn invalid<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(message))
}

/// Ids appear in URLs and in `{source}#{id}` keys: keep them plain.
pub(crate) fn check_id(kind: &str, id: &str) -> Result<(), ConfigError> {
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
}

/// A subscription, ready to deliver.
#[derive(Debug)]
pub struct Subscription {
    pub id: String,
    pub source: String,
    pub filter: EventFilter,
    pub url: Url,
    pub format: Format,
    pub template: Option<Template>,
    pub signing_key: Option<SigningKey>,
    /// The replaced key, still signing until the time given.
    pub previous_signing_key: Option<(SigningKey, SystemTime)>,
    pub retry: RetryPolicy,
    pub allow_local: bool,
    enabled: AtomicBool,
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

/// The config port: where the pipeline finds sources and subscriptions.
#[async_trait]
pub trait Registry: Send + Sync {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, Unavailable>;

    /// All subscriptions of a source, enabled or not.
    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable>;

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable>;

    /// Stop routing to a subscription (its destination answered 410).
    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable>;
}

/// The registry of a config file, held in memory.
#[derive(Debug, Default)]
pub struct StaticRegistry {
    sources: HashMap<String, Arc<Source>>,
    subscriptions: HashMap<String, Arc<Subscription>>,
    by_source: HashMap<String, Vec<Arc<Subscription>>>,
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
        }
    }

    pub fn source_ids(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    pub fn subscription_ids(&self) -> impl Iterator<Item = &str> {
        self.subscriptions.keys().map(String::as_str)
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
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, Unavailable> {
        Ok(self.sources.get(id).cloned())
    }

    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable> {
        Ok(self.by_source.get(source).cloned().unwrap_or_default())
    }

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable> {
        Ok(self.subscriptions.get(id).cloned())
    }

    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable> {
        if let Some(s) = self.subscriptions.get(id) {
            s.set_enabled(false);
        }
        Ok(())
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
