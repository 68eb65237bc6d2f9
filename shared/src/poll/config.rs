//! `[[pollers]]`: the config-file shape of a poller, its validation, and
//! its resolution (secrets in its headers) into the [`Poller`] a poll uses.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::config::{ConfigError, DEFAULT_DEDUPE_WINDOW, DEFAULT_MAX_BODY_BYTES, Policy, check_id};
use crate::secrets::{SecretRef, SecretResolver};

/// How often a poller polls unless it says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest interval accepted: polling faster is what webhooks are for.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Pages followed through `Link: rel="next"` in one poll, by default.
pub const DEFAULT_MAX_PAGES: u32 = 5;
/// The most pages a poller may ask for.
pub const MAX_PAGES_LIMIT: u32 = 50;
/// The largest response read, by default; a larger one is an error.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The most a poller may allow per response.
pub const MAX_RESPONSE_BYTES_LIMIT: usize = 32 * 1024 * 1024;

/// Headers that carry credentials: their value must be a secret reference,
/// so that the config (and everything that shows it) never holds it.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// What a polled endpoint answers with: `json`, a document holding an
/// array of items, or `feed`, RSS or Atom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PollFormat {
    /// A JSON document holding an array of items.
    #[default]
    Json,
    /// An RSS or Atom feed; each entry is an item.
    Feed,
}

impl PollFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Feed => "feed",
        }
    }
}

/// A header's configured value: literal text, or a secret reference
/// (`env:`, `ssm:`, `db:`) resolved at poll time.
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderSetting {
    Literal(String),
    Secret(SecretRef),
}

impl HeaderSetting {
    fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("env" | "ssm" | "db", _)) => s.parse().map(Self::Secret),
            _ => Ok(Self::Literal(s.to_owned())),
        }
    }
}

impl fmt::Display for HeaderSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Literal(v) => f.write_str(v),
            Self::Secret(r) => fmt::Display::fmt(r, f),
        }
    }
}

impl fmt::Debug for HeaderSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> Deserialize<'de> for HeaderSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HeaderSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Written as its text: the value, or a secret reference.
impl utoipa::PartialSchema for HeaderSetting {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "The header's value, or a secret reference (env:NAME, ssm:/path) resolved at poll time",
            ))
            .into()
    }
}

impl utoipa::ToSchema for HeaderSetting {}

/// One `[[pollers]]` entry: an app without webhooks, polled.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollerConfig {
    /// The source id its events carry (subscriptions name it as `source`;
    /// one namespace with sources).
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub id: String,
    /// The list endpoint or feed: https, unless `allow_local`.
    #[schema(format = "uri")]
    pub url: String,
    /// How often it is polled: 60 s unless set; at least 10 s.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = crate::config::HumanDuration)]
    pub interval: Option<Duration>,
    /// Request headers; a credential (Authorization, Cookie, X-Api-Key)
    /// must be a secret reference (env:NAME, ssm:/path).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderSetting>,
    #[serde(default)]
    #[schema(default = PollFormat::default)]
    pub format: PollFormat,
    /// JSON pointer to the array of items; the document itself if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    /// JSON pointer into an item to its id (required for `json`; a feed
    /// entry's id is its `id`, else its link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// The event type: a JSON pointer into the item (`/type`), or a fixed
    /// string. `item` (json) or `entry` (feed) if unset.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// JSON pointer into an item to its time: the order in which new items
    /// are emitted, and the value sent in `since_param`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// A query parameter that carries the newest `timestamp` seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_param: Option<String>,
    /// Pages followed through `Link: rel="next"` (5 unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 50)]
    pub max_pages: Option<u32>,
    /// Emit what the first poll finds (otherwise it is only recorded).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schema(default = false)]
    pub emit_existing: bool,
    /// How long an item id is remembered by the commit (7 days unless
    /// set); also the event log's retention.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = crate::config::HumanDuration)]
    pub dedupe_window: Option<Duration>,
    /// The largest response read (4 MiB unless set; at most 32 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 33554432)]
    pub max_response_bytes: Option<usize>,
    /// Allow http:// and private addresses (local use only), as for
    /// subscriptions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schema(default = false)]
    pub allow_local: bool,
}

/// Where an item's event type comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeSource {
    /// A JSON pointer into the item.
    Pointer(String),
    Fixed(String),
}

/// A poller ready to poll: validated, its header secrets resolved.
#[derive(Clone)]
pub struct Poller {
    pub id: String,
    pub url: Url,
    pub interval: Duration,
    /// Request headers, credentials included: never logged.
    pub headers: HeaderMap,
    pub format: PollFormat,
    pub items: Option<String>,
    pub item_id: Option<String>,
    pub event_type: TypeSource,
    pub timestamp: Option<String>,
    pub since_param: Option<String>,
    pub max_pages: u32,
    pub emit_existing: bool,
    pub dedupe_window: Duration,
    pub max_response_bytes: usize,
    /// The largest item accepted as an event body.
    pub max_item_bytes: usize,
    pub allow_local: bool,
}

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller")
            .field("id", &self.id)
            .field("url", &crate::delivery::http::redacted(&self.url))
            .field("interval", &self.interval)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

fn invalid<T>(poller: &str, key: &str, message: impl fmt::Display) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(format!(
        "poller {poller:?}: {key}: {message}"
    )))
}

/// A JSON pointer is empty or starts with `/` (RFC 6901).
fn check_pointer(poller: &str, key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || value.starts_with('/') {
        Ok(())
    } else {
        invalid(
            poller,
            key,
            format!("{value:?} is not a JSON pointer (it starts with \"/\", e.g. \"/id\")"),
        )
    }
}

/// The checks of one poller on its own (no secrets needed). Every path
/// (file, admin API, `apply`) uses this.
pub fn validate_poller(p: &PollerConfig, policy: &Policy) -> Result<(), ConfigError> {
    check_id("poller", &p.id)?;
    poller_url(p, policy)?;
    if let Some(interval) = p.interval
        && interval < MIN_INTERVAL
    {
        return invalid(
            &p.id,
            "interval",
            format!(
                "{} is under the minimum of {}",
                humantime::format_duration(interval),
                humantime::format_duration(MIN_INTERVAL)
            ),
        );
    }
    for (name, value) in &p.headers {
        if HeaderName::try_from(name.as_str()).is_err() {
            return invalid(&p.id, "headers", format!("{name:?} is not a header name"));
        }
        match value {
            HeaderSetting::Literal(v) => {
                if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return invalid(
                        &p.id,
                        &format!("headers.{name}"),
                        "carries a credential: give a secret reference (env:NAME or ssm:/path), \
                         never the value",
                    );
                }
                if HeaderValue::try_from(v.as_str()).is_err() {
                    return invalid(&p.id, &format!("headers.{name}"), "is not a header value");
                }
            }
            HeaderSetting::Secret(_) => {}
        }
    }
    if let Some(items) = &p.items {
        check_pointer(&p.id, "items", items)?;
    }
    match (p.format, &p.item_id) {
        (PollFormat::Json, None) => {
            return invalid(
                &p.id,
                "item_id",
                "is required for format = \"json\": a JSON pointer to each item's id, e.g. \"/id\"",
            );
        }
        (PollFormat::Feed, Some(_)) => {
            return invalid(
                &p.id,
                "item_id",
                "does not apply to feeds (an entry's id is its id, else its link)",
            );
        }
        (PollFormat::Feed, None) => {
            if p.items.is_some() {
                return invalid(&p.id, "items", "does not apply to feeds");
            }
        }
        (PollFormat::Json, Some(ptr)) => {
            if ptr.is_empty() {
                return invalid(&p.id, "item_id", "must point into the item, e.g. \"/id\"");
            }
            check_pointer(&p.id, "item_id", ptr)?;
        }
    }
    if let Some(t) = &p.event_type
        && t.is_empty()
    {
        return invalid(&p.id, "type", "is empty");
    }
    if let Some(ts) = &p.timestamp {
        check_pointer(&p.id, "timestamp", ts)?;
    }
    if p.since_param.is_some() && p.timestamp.is_none() {
        return invalid(
            &p.id,
            "since_param",
            "needs timestamp: the value sent is the newest timestamp seen",
        );
    }
    if let Some(param) = &p.since_param
        && param.is_empty()
    {
        return invalid(&p.id, "since_param", "is empty");
    }
    match p.max_pages {
        Some(0) => return invalid(&p.id, "max_pages", "must be at least 1"),
        Some(n) if n > MAX_PAGES_LIMIT => {
            return invalid(&p.id, "max_pages", format!("{n} is over {MAX_PAGES_LIMIT}"));
        }
        _ => {}
    }
    if let Some(window) = p.dedupe_window
        && window.is_zero()
    {
        return invalid(&p.id, "dedupe_window", "must be above 0");
    }
    match p.max_response_bytes {
        Some(0) => invalid(&p.id, "max_response_bytes", "must be above 0"),
        Some(n) if n > MAX_RESPONSE_BYTES_LIMIT => invalid(
            &p.id,
            "max_response_bytes",
            format!("{n} is over {MAX_RESPONSE_BYTES_LIMIT}"),
        ),
        _ => Ok(()),
    }
}

/// The polled URL: https, or http with `allow_local` where the deployment
/// allows it (the rule of destinations).
fn poller_url(p: &PollerConfig, policy: &Policy) -> Result<Url, ConfigError> {
    let url = match Url::parse(&p.url) {
        Ok(u) => u,
        Err(e) => return invalid(&p.id, "url", e),
    };
    if p.allow_local && !policy.allow_local {
        return invalid(
            &p.id,
            "allow_local",
            "is not allowed in this deployment (SLUICE_ALLOW_LOCAL_DESTINATIONS is off)",
        );
    }
    match url.scheme() {
        "https" => {}
        "http" if p.allow_local => {}
        "http" => {
            return invalid(
                &p.id,
                "url",
                "must use https (set allow_local = true for a local http app)",
            );
        }
        other => return invalid(&p.id, "url", format!("unsupported scheme {other:?}")),
    }
    if url.host().is_none() {
        return invalid(&p.id, "url", "has no host");
    }
    Ok(url)
}

/// A poller, validated, its header secrets resolved (concurrently).
pub async fn resolve_poller(
    p: &PollerConfig,
    policy: &Policy,
    secrets: &dyn SecretResolver,
) -> Result<Poller, ConfigError> {
    validate_poller(p, policy)?;
    let url = poller_url(p, policy)?;
    let values =
        futures::future::try_join_all(p.headers.iter().map(|(name, setting)| async move {
            let value = match setting {
                HeaderSetting::Literal(v) => v.clone(),
                HeaderSetting::Secret(r) => secrets
                    .resolve(r)
                    .await
                    .map_err(|e| ConfigError::Invalid(format!("poller {:?}: {e}", p.id)))?
                    .expose()
                    .to_owned(),
            };
            Ok::<_, ConfigError>((name, value))
        }))
        .await?;
    let mut headers = HeaderMap::with_capacity(values.len());
    for (name, value) in values {
        // Validated above; a secret's value is checked here.
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| ConfigError::Invalid(format!("poller {:?}: headers: {name:?}", p.id)))?;
        let mut value = HeaderValue::try_from(value).map_err(|_| {
            ConfigError::Invalid(format!(
                "poller {:?}: headers.{name}: the secret's value is not a header value",
                p.id
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let event_type = match &p.event_type {
        Some(t) if t.starts_with('/') => TypeSource::Pointer(t.clone()),
        Some(t) => TypeSource::Fixed(t.clone()),
        None => TypeSource::Fixed(
            match p.format {
                PollFormat::Json => "item",
                PollFormat::Feed => "entry",
            }
            .to_owned(),
        ),
    };
    Ok(Poller {
        id: p.id.clone(),
        url,
        interval: p.interval.unwrap_or(DEFAULT_INTERVAL),
        headers,
        format: p.format,
        items: p.items.clone().filter(|s| !s.is_empty()),
        item_id: p.item_id.clone(),
        event_type,
        timestamp: p.timestamp.clone(),
        since_param: p.since_param.clone(),
        max_pages: p.max_pages.unwrap_or(DEFAULT_MAX_PAGES),
        emit_existing: p.emit_existing,
        dedupe_window: p.dedupe_window.unwrap_or(DEFAULT_DEDUPE_WINDOW),
        max_response_bytes: p.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        max_item_bytes: DEFAULT_MAX_BODY_BYTES.min(policy.max_body_bytes),
        allow_local: p.allow_local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    fn parse(toml_text: &str) -> PollerConfig {
        toml::from_str(toml_text).expect("poller toml")
    }

    fn base() -> &'static str {
        "id = \"gh\"\nurl = \"https://api.github.com/repos/o/r/events\"\nitem_id = \"/id\"\n"
    }

    fn error(p: &PollerConfig) -> String {
        validate_poller(p, &Policy::EMBEDDED)
            .expect_err("should be invalid")
            .to_string()
    }

    #[test]
    fn a_minimal_json_poller_validates_and_round_trips() {
        let p = parse(base());
        validate_poller(&p, &Policy::EMBEDDED).expect("valid");
        let back: PollerConfig =
            serde_json::from_str(&serde_json::to_string(&p).expect("json")).expect("parse");
        assert_eq!(back, p);
    }

    #[test]
    fn bad_config_names_the_poller_and_the_key() {
        let no_id = parse("id = \"gh\"\nurl = \"https://x.example/\"\n");
        assert_eq!(
            error(&no_id),
            "poller \"gh\": item_id: is required for format = \"json\": a JSON pointer to each item's id, e.g. \"/id\""
        );
        let fast = parse(&format!("{}interval = \"5s\"\n", base()));
        assert_eq!(
            error(&fast),
            "poller \"gh\": interval: 5s is under the minimum of 10s"
        );
        let ftp = parse("id = \"gh\"\nurl = \"ftp://x.example/\"\nitem_id = \"/id\"\n");
        assert_eq!(
            error(&ftp),
            "poller \"gh\": url: unsupported scheme \"ftp\""
        );
        let http = parse("id = \"gh\"\nurl = \"http://x.example/\"\nitem_id = \"/id\"\n");
        assert!(error(&http).starts_with("poller \"gh\": url: must use https"));
        let not_pointer = parse("id = \"gh\"\nurl = \"https://x.example/\"\nitem_id = \"id\"\n");
        assert!(
            error(&not_pointer).starts_with("poller \"gh\": item_id: \"id\" is not a JSON pointer")
        );
        let since = parse(&format!("{}since_param = \"since\"\n", base()));
        assert!(error(&since).starts_with("poller \"gh\": since_param: needs timestamp"));
        let feed_with_id = parse(
            "id = \"f\"\nurl = \"https://x.example/rss\"\nformat = \"feed\"\nitem_id = \"/id\"\n",
        );
        assert!(error(&feed_with_id).starts_with("poller \"f\": item_id: does not apply to feeds"));
        let pages = parse(&format!("{}max_pages = 0\n", base()));
        assert_eq!(
            error(&pages),
            "poller \"gh\": max_pages: must be at least 1"
        );
    }

    #[test]
    fn a_credential_header_must_be_a_secret_reference() {
        let plain = parse(&format!(
            "{}headers = {{ Authorization = \"Bearer abc\" }}\n",
            base()
        ));
        let message = error(&plain);
        assert!(message.starts_with("poller \"gh\": headers.Authorization: carries a credential"));
        assert!(
            !message.contains("abc"),
            "the value is never echoed: {message}"
        );
        let referenced = parse(&format!(
            "{}headers = {{ Authorization = \"env:GH_AUTH\", Accept = \"application/json\" }}\n",
            base()
        ));
        validate_poller(&referenced, &Policy::EMBEDDED).expect("valid");
        assert_eq!(
            referenced.headers["Authorization"],
            HeaderSetting::Secret(SecretRef::Env("GH_AUTH".into()))
        );
    }

    #[test]
    fn allow_local_follows_the_deployment() {
        let local = parse(
            "id = \"l\"\nurl = \"http://127.0.0.1:9/\"\nitem_id = \"/id\"\nallow_local = true\n",
        );
        validate_poller(&local, &Policy::EMBEDDED).expect("embedded allows it");
        let message = validate_poller(&local, &Policy::aws(false))
            .expect_err("aws refuses it")
            .to_string();
        assert!(message.starts_with("poller \"l\": allow_local: is not allowed"));
    }

    struct OneSecret;

    #[async_trait::async_trait]
    impl SecretResolver for OneSecret {
        async fn resolve(&self, r: &SecretRef) -> Result<Secret, crate::secrets::SecretError> {
            assert_eq!(r, &SecretRef::Env("GH_AUTH".into()));
            Ok(Secret::new("Bearer t0ken"))
        }
    }

    #[tokio::test]
    async fn resolution_fills_secret_headers_and_defaults() {
        let p = parse(&format!(
            "{}headers = {{ Authorization = \"env:GH_AUTH\" }}\ntype = \"/type\"\n",
            base()
        ));
        let poller = resolve_poller(&p, &Policy::EMBEDDED, &OneSecret)
            .await
            .expect("resolves");
        assert_eq!(poller.headers["authorization"], "Bearer t0ken");
        assert!(poller.headers["authorization"].is_sensitive());
        assert_eq!(poller.interval, DEFAULT_INTERVAL);
        assert_eq!(poller.max_pages, DEFAULT_MAX_PAGES);
        assert_eq!(poller.event_type, TypeSource::Pointer("/type".into()));
        assert!(!format!("{poller:?}").contains("t0ken"));
    }
}
