//! Event id and type extraction, per provider.
//!
//! Runs on the hot path after verification. Headers are read first; the
//! body is scanned at most once, and only when the provider needs a body
//! field, for just the top-level fields it wants (see [`Fields::parse`]).
//! Non-JSON bodies and odd field types fall back to the body's SHA-256 as
//! the id and an empty type. An id or type header that is present but
//! unusable (not text, empty, or sent twice) fails with [`HeaderError`]:
//! falling back there would merge distinct deliveries that share a body.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

use crate::verify::{HmacParams, Provider};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The provider's event id, or the hex SHA-256 of the body.
    pub id: String,
    /// Nothing tells a retry from a new change, and the same body comes
    /// for each (Dropbox, Microsoft Graph): the request is committed under
    /// an id of its own ([`per_request_id`]), not `id`, or every later
    /// change would be dropped as a duplicate. A retry is then a second
    /// event.
    pub per_request: bool,
    /// The routing type, e.g. `pull_request.opened`; empty if unknown.
    pub event_type: String,
    /// A check of the endpoint that the provider expects answered instead
    /// of `accepted`. Such requests are not committed.
    pub handshake: Option<Handshake>,
    /// The JSON the provider needs when the event is accepted, instead of
    /// sluice's receipt: Discord wants an interaction response.
    pub ack: Option<&'static str>,
}

/// A provider's check of the endpoint, and what it wants back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Answer with this JSON (Slack's `url_verification`).
    Json(String),
    /// Answer with this text (Twitch's `webhook_callback_verification`).
    Text(String),
    /// Zoom's `endpoint.url_validation`: its `plainToken`, answered with
    /// the token's HMAC under the source's secret.
    Zoom { plain_token: String },
}

/// An id or type header that is present but cannot be used (400
/// `malformed_header`, see `error.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header {0} is not readable text")]
    Unreadable(String),
    #[error("header {0} is empty")]
    Empty(String),
    #[error("header {0} is sent more than once")]
    Repeated(String),
}

const GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
const GITHUB_EVENT: HeaderName = HeaderName::from_static("x-github-event");
const SHOPIFY_WEBHOOK_ID: HeaderName = HeaderName::from_static("x-shopify-webhook-id");
const SHOPIFY_EVENT_ID: HeaderName = HeaderName::from_static("x-shopify-event-id");
const SHOPIFY_TOPIC: HeaderName = HeaderName::from_static("x-shopify-topic");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const GITLAB_UUID: HeaderName = HeaderName::from_static("x-gitlab-event-uuid");
const GITLAB_EVENT: HeaderName = HeaderName::from_static("x-gitlab-event");
const LINEAR_DELIVERY: HeaderName = HeaderName::from_static("linear-delivery");
const LINEAR_EVENT: HeaderName = HeaderName::from_static("linear-event");
const TWITCH_ID: HeaderName = HeaderName::from_static("twitch-eventsub-message-id");
const TWITCH_TYPE: HeaderName = HeaderName::from_static("twitch-eventsub-message-type");
const BITBUCKET_REQUEST: HeaderName = HeaderName::from_static("x-request-uuid");
const BITBUCKET_EVENT: HeaderName = HeaderName::from_static("x-event-key");
const ATLASSIAN_WEBHOOK_ID: HeaderName = HeaderName::from_static("x-atlassian-webhook-identifier");
const BOX_DELIVERY: HeaderName = HeaderName::from_static("box-delivery-id");
const WC_DELIVERY: HeaderName = HeaderName::from_static("x-wc-webhook-delivery-id");
const WC_TOPIC: HeaderName = HeaderName::from_static("x-wc-webhook-topic");
const SENTRY_REQUEST: HeaderName = HeaderName::from_static("request-id");
const SENTRY_RESOURCE: HeaderName = HeaderName::from_static("sentry-hook-resource");
const TWILIO_IDEMPOTENCY: HeaderName = HeaderName::from_static("i-twilio-idempotency-token");

/// Every header named here is checked when present, whether or not a
/// fallback would be used, so the outcome never depends on which of a
/// provider's headers came.
pub fn extract(
    provider: Provider,
    hmac: Option<&HmacParams>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Extracted, HeaderError> {
    let (id, event_type, handshake) = match provider {
        Provider::Github => {
            let id = owned(text(headers, &GITHUB_DELIVERY)?);
            // `pull_request` + body `action` → `pull_request.opened`. The
            // body is scanned only when there is an event name to extend.
            let event_type = match text(headers, &GITHUB_EVENT)? {
                None => String::new(),
                Some(e) => match Fields::parse(body, ACTION).and_then(|f| f.action) {
                    Some(a) => [e, ".", &a].concat(),
                    None => e.to_owned(),
                },
            };
            (id, event_type, None)
        }
        Provider::Stripe => {
            let f = Fields::parse(body, ID | TYPE).unwrap_or_default();
            (
                f.id.map(Cow::into_owned),
                f.r#type.map(Cow::into_owned).unwrap_or_default(),
                None,
            )
        }
        Provider::Slack => slack(body),
        Provider::Shopify => {
            let webhook_id = text(headers, &SHOPIFY_WEBHOOK_ID)?;
            let event_id = text(headers, &SHOPIFY_EVENT_ID)?;
            (
                owned(webhook_id.or(event_id)),
                owned(text(headers, &SHOPIFY_TOPIC)?).unwrap_or_default(),
                None,
            )
        }
        Provider::StandardWebhooks | Provider::Clerk | Provider::Resend => {
            let id = text(headers, &WEBHOOK_ID)?;
            let svix = text(headers, &SVIX_ID)?;
            (owned(id.or(svix)), body_type(body), None)
        }
        Provider::Gitlab => {
            let key = text(headers, &IDEMPOTENCY_KEY)?;
            let uuid = text(headers, &GITLAB_UUID)?;
            let header_kind = text(headers, &GITLAB_EVENT)?;
            let kind =
                Fields::parse(body, OBJECT_KIND).and_then(|f| f.object_kind.map(Cow::into_owned));
            let event_type = kind.or_else(|| owned(header_kind)).unwrap_or_default();
            (owned(key.or(uuid)), event_type, None)
        }
        Provider::Bitbucket => (
            owned(text(headers, &BITBUCKET_REQUEST)?),
            owned(text(headers, &BITBUCKET_EVENT)?).unwrap_or_default(),
            None,
        ),
        Provider::Jira => (
            owned(text(headers, &ATLASSIAN_WEBHOOK_ID)?),
            owned_field(body, &[b"webhookEvent"]).unwrap_or_default(),
            None,
        ),
        // Meta, X, Asana, Webflow, DocuSign and Lemon Squeezy send no event
        // id: the body's hash is the id.
        Provider::Meta => (
            None,
            owned_field(body, &[b"object"]).unwrap_or_default(),
            None,
        ),
        Provider::X => (None, x_type(body), None),
        // Dropbox and Microsoft Graph too, but see `per_request` below.
        Provider::Dropbox | Provider::Asana | Provider::Msgraph => (None, String::new(), None),
        Provider::Webflow => (
            None,
            owned_field(body, &[b"triggerType"]).unwrap_or_default(),
            None,
        ),
        Provider::Docusign => (
            None,
            owned_field(body, &[b"event"]).unwrap_or_default(),
            None,
        ),
        Provider::LemonSqueezy => (
            None,
            owned_field(body, &[b"meta", b"event_name"]).unwrap_or_default(),
            None,
        ),
        Provider::Box => (
            owned(text(headers, &BOX_DELIVERY)?),
            owned_field(body, &[b"trigger"]).unwrap_or_default(),
            None,
        ),
        Provider::CoinbaseCommerce => (
            owned_field(body, &[b"event", b"id"]),
            owned_field(body, &[b"event", b"type"]).unwrap_or_default(),
            None,
        ),
        // A batch of events: the delivery's id, no single type.
        Provider::Okta => (owned_field(body, &[b"eventId"]), String::new(), None),
        // Teams: the Bot Framework activity's id and type (`message`).
        Provider::Teams => {
            let f = Fields::parse(body, ID | TYPE).unwrap_or_default();
            (
                f.id.map(Cow::into_owned),
                f.r#type.map(Cow::into_owned).unwrap_or_default(),
                None,
            )
        }
        // The signed token, so that a signature cannot carry a second body
        // (only the timestamp and token are signed).
        Provider::Mailgun => (
            owned_field(body, &[b"signature", b"token"]),
            owned_field(body, &[b"event-data", b"event"]).unwrap_or_default(),
            None,
        ),
        // A deploy's id repeats in each of its notifications: the body's
        // hash, and the deploy's state.
        Provider::Netlify => (
            None,
            owned_field(body, &[b"state"]).unwrap_or_default(),
            None,
        ),
        // Generic senders: the body's hash, and its `type` if it has one.
        Provider::Basic | Provider::Bearer | Provider::Token | Provider::Jwt => {
            (None, body_type(body), None)
        }
        Provider::Gocardless => (
            owned_field(body, &[b"meta", b"webhook_id"]),
            String::new(),
            None,
        ),
        Provider::Woocommerce => (
            owned(text(headers, &WC_DELIVERY)?),
            owned(text(headers, &WC_TOPIC)?).unwrap_or_default(),
            None,
        ),
        Provider::Segment => (
            owned_field(body, &[b"messageId"]),
            owned_field(body, &[b"type"]).unwrap_or_default(),
            None,
        ),
        Provider::Sentry => {
            let id = owned(text(headers, &SENTRY_REQUEST)?);
            // `issue` + body `action` → `issue.created`.
            let event_type = match (text(headers, &SENTRY_RESOURCE)?, field(body, &[b"action"])) {
                (Some(r), Some(a)) => [r, ".", &a].concat(),
                (Some(r), None) => r.to_owned(),
                (None, _) => String::new(),
            };
            (id, event_type, None)
        }
        Provider::Mux | Provider::Vercel | Provider::Zendesk => {
            let f = Fields::parse(body, ID | TYPE).unwrap_or_default();
            (
                f.id.map(Cow::into_owned),
                f.r#type.map(Cow::into_owned).unwrap_or_default(),
                None,
            )
        }
        // The same token comes with each retry of one request.
        Provider::Twilio => (
            owned(text(headers, &TWILIO_IDEMPOTENCY)?),
            String::new(),
            None,
        ),
        Provider::Square => (
            owned_field(body, &[b"event_id"]),
            owned_field(body, &[b"type"]).unwrap_or_default(),
            None,
        ),
        // A JSON array of events: the body's hash is the id.
        Provider::Hubspot => (None, String::new(), None),
        Provider::Trello => (
            owned_field(body, &[b"action", b"id"]),
            owned_field(body, &[b"action", b"type"]).unwrap_or_default(),
            None,
        ),
        Provider::Telegram => (
            owned_field(body, &[b"update_id"]),
            telegram_type(body),
            None,
        ),
        Provider::Paddle | Provider::Typeform => (
            owned_field(body, &[b"event_id"]),
            owned_field(body, &[b"event_type"]).unwrap_or_default(),
            None,
        ),
        Provider::Calendly => (
            None,
            owned_field(body, &[b"event"]).unwrap_or_default(),
            None,
        ),
        Provider::Pagerduty => (
            owned_field(body, &[b"event", b"id"]),
            owned_field(body, &[b"event", b"event_type"]).unwrap_or_default(),
            None,
        ),
        Provider::Intercom => (
            owned_field(body, &[b"id"]),
            owned_field(body, &[b"topic"]).unwrap_or_default(),
            None,
        ),
        Provider::Linear => {
            let id = owned(text(headers, &LINEAR_DELIVERY)?);
            let header_kind = text(headers, &LINEAR_EVENT)?;
            // `Issue` + body `action` → `Issue.create`, like GitHub's.
            let kind = field(body, &[b"type"]).or(header_kind.map(Cow::Borrowed));
            let event_type = match (kind, field(body, &[b"action"])) {
                (Some(k), Some(a)) => [&*k, ".", &*a].concat(),
                (Some(k), None) => k.into_owned(),
                (None, _) => String::new(),
            };
            (id, event_type, None)
        }
        Provider::Zoom => {
            let event_type = owned_field(body, &[b"event"]).unwrap_or_default();
            let handshake = (event_type == "endpoint.url_validation").then(|| Handshake::Zoom {
                plain_token: owned_field(body, &[b"payload", b"plainToken"]).unwrap_or_default(),
            });
            (None, event_type, handshake)
        }
        Provider::Twitch => {
            let id = owned(text(headers, &TWITCH_ID)?);
            let kind = owned_field(body, &[b"subscription", b"type"]).unwrap_or_default();
            match text(headers, &TWITCH_TYPE)? {
                Some("webhook_callback_verification") => {
                    let challenge = owned_field(body, &[b"challenge"]).unwrap_or_default();
                    (id, kind, Some(Handshake::Text(challenge)))
                }
                Some("revocation") => (id, "revocation".to_owned(), None),
                _ => (id, kind, None),
            }
        }
        Provider::Discord => {
            // Interaction types by number; a PING is Discord's URL check.
            let kind = field(body, &[b"type"]);
            let event_type = match kind.as_deref() {
                Some("1") => "ping",
                Some("2") => "application_command",
                Some("3") => "message_component",
                Some("4") => "application_command_autocomplete",
                Some("5") => "modal_submit",
                _ => "",
            };
            let handshake =
                (event_type == "ping").then(|| Handshake::Json(r#"{"type":1}"#.to_owned()));
            (
                owned_field(body, &[b"id"]),
                event_type.to_owned(),
                handshake,
            )
        }
        // A batch of events (a JSON array): the body's hash is the id.
        Provider::Sendgrid => (None, String::new(), None),
        Provider::Hmac => {
            let named = |name: Option<&String>| match name
                .and_then(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            {
                Some(n) => text(headers, &n).map(owned),
                None => Ok(None),
            };
            let id = named(hmac.and_then(|p| p.id_header.as_ref()))?;
            let event_type = match named(hmac.and_then(|p| p.type_header.as_ref()))? {
                Some(t) => t,
                None => body_type(body),
            };
            (id, event_type, None)
        }
    };
    let ack = match provider {
        Provider::Discord => discord_ack(&event_type),
        _ => None,
    };
    Ok(Extracted {
        // A body's empty id (`"id": ""`) would be one dedup key for every
        // such event, each after the first dropped as a duplicate.
        id: id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| sha256_hex(body)),
        per_request: matches!(provider, Provider::Dropbox | Provider::Msgraph),
        event_type,
        handshake,
        ack,
    })
}

/// Discord shows "interaction failed" unless the endpoint answers with an
/// interaction response within 3 s. sluice defers: the destination answers
/// later through the interaction's token (a command's reply, or an update
/// of a component's message). An autocomplete cannot be deferred: it gets
/// no choices.
fn discord_ack(event_type: &str) -> Option<&'static str> {
    match event_type {
        "application_command" | "modal_submit" => Some(r#"{"type":5}"#),
        "message_component" => Some(r#"{"type":6}"#),
        "application_command_autocomplete" => Some(r#"{"type":8,"data":{"choices":[]}}"#),
        _ => None,
    }
}

/// X's Account Activity events come under a key such as
/// `tweet_create_events`: the first such key is the type.
fn x_type(body: &[u8]) -> String {
    first_key(body, |k| k.ends_with(b"_events"))
}

/// A Telegram update holds its `update_id` and one optional field naming
/// what it is (`message`, `callback_query`, …).
fn telegram_type(body: &[u8]) -> String {
    first_key(body, |k| k != b"update_id")
}

/// The first top-level key of a JSON object body that `wanted` accepts.
fn first_key(body: &[u8], wanted: impl Fn(&[u8]) -> bool) -> String {
    let mut found = String::new();
    for_each_member(body, |k, _| {
        if wanted(k) {
            found = String::from_utf8_lossy(k).into_owned();
            return false;
        }
        true
    });
    found
}

/// An id no other request gets: `req-` and 128 random bits.
pub fn per_request_id() -> String {
    format!("req-{:032x}", rand::random::<u128>())
}

pub fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// Slack: Events API JSON, or form-encoded bodies (slash commands,
/// interactivity) that carry no event id.
fn slack(body: &[u8]) -> (Option<String>, String, Option<Handshake>) {
    let Some(f) = Fields::parse(body, TYPE | EVENT_ID | CHALLENGE | EVENT_TYPE) else {
        // Form bodies: a `command` param is a slash command, a `payload`
        // param an interactive action; their JSON is not unpacked here.
        let kind = if form_has(body, b"command") {
            "slash_command"
        } else if form_has(body, b"payload") {
            "interactive"
        } else {
            ""
        };
        return (None, kind.to_owned(), None);
    };
    let outer = f.r#type.as_deref().unwrap_or("");
    if outer == "url_verification" {
        let challenge = f.challenge.as_deref().unwrap_or("");
        // serde_json escapes the challenge correctly, whatever it holds.
        let reply = serde_json::json!({ "challenge": challenge }).to_string();
        return (None, outer.to_owned(), Some(Handshake::Json(reply)));
    }
    let event_type = match (outer, f.event_type.as_deref()) {
        ("event_callback", Some(inner)) => inner.to_owned(),
        _ => outer.to_owned(),
    };
    (f.event_id.map(Cow::into_owned), event_type, None)
}

/// True if the `application/x-www-form-urlencoded` body has param `name`.
fn form_has(body: &[u8], name: &[u8]) -> bool {
    body.split(|&b| b == b'&')
        .any(|pair| pair.split(|&b| b == b'=').next().is_some_and(|k| k == name))
}

fn body_type(body: &[u8]) -> String {
    Fields::parse(body, TYPE)
        .and_then(|f| f.r#type.map(Cow::into_owned))
        .unwrap_or_default()
}

/// The header's value, trimmed: `None` if absent; an error if it is not
/// visible ASCII, is blank, or comes more than once (which one would be
/// the id depends on the order, so neither is).
fn text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, HeaderError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let named = || name.as_str().to_owned();
    if values.next().is_some() {
        return Err(HeaderError::Repeated(named()));
    }
    let value = value
        .to_str()
        .map_err(|_| HeaderError::Unreadable(named()))?
        .trim();
    if value.is_empty() {
        return Err(HeaderError::Empty(named()));
    }
    Ok(Some(value))
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// A body field as an owned string, if it is there and not empty.
fn owned_field(body: &[u8], path: &[&[u8]]) -> Option<String> {
    field(body, path)
        .filter(|v| !v.is_empty())
        .map(Cow::into_owned)
}

/// Body fields a provider may need; a bit set says which to look for.
#[derive(Default)]
struct Fields<'a> {
    id: Option<Cow<'a, str>>,
    r#type: Option<Cow<'a, str>>,
    action: Option<Cow<'a, str>>,
    event_id: Option<Cow<'a, str>>,
    challenge: Option<Cow<'a, str>>,
    object_kind: Option<Cow<'a, str>>,
    /// Slack's inner `event.type`.
    event_type: Option<Cow<'a, str>>,
}

const ID: u8 = 1;
const TYPE: u8 = 1 << 1;
const ACTION: u8 = 1 << 2;
const EVENT_ID: u8 = 1 << 3;
const CHALLENGE: u8 = 1 << 4;
const OBJECT_KIND: u8 = 1 << 5;
const EVENT_TYPE: u8 = 1 << 6;

impl<'a> Fields<'a> {
    /// Top-level string fields named in `want`, or `None` if the body is
    /// not a JSON object.
    ///
    /// Not serde: deserialising even into a struct of borrowed fields
    /// tokenises and validates the whole body, which costs more than the
    /// HMAC that verified it (see DESIGN "Budgets"). This scanner stops as
    /// soon as every wanted field is found and skips everything else with
    /// a word-at-a-time string search. It does not validate: the body has
    /// already been authenticated, and on malformed JSON it just finds
    /// less. The first occurrence of a duplicate key wins; keys written
    /// with escapes are not recognised. String values are unescaped
    /// exactly (by serde_json) when they contain a backslash.
    fn parse(body: &'a [u8], want: u8) -> Option<Self> {
        let mut f = Fields::default();
        let mut missing = want;
        for_each_member(body, |key, val| {
            let bit = match key {
                b"id" => ID,
                b"type" => TYPE,
                b"action" => ACTION,
                b"event_id" => EVENT_ID,
                b"challenge" => CHALLENGE,
                b"object_kind" => OBJECT_KIND,
                b"event" => EVENT_TYPE,
                _ => 0,
            };
            if missing & bit == 0 {
                return missing != 0;
            }
            let found = match (bit, val) {
                (EVENT_TYPE, Val::Object(obj)) => {
                    let mut inner = None;
                    for_each_member(obj, |k, v| {
                        if k == b"type" {
                            inner = string(v);
                            return false;
                        }
                        true
                    });
                    inner
                }
                (EVENT_TYPE, _) => None,
                (_, v) => string(v),
            };
            if let Some(found) = found {
                missing &= !bit;
                let slot = match bit {
                    ID => &mut f.id,
                    TYPE => &mut f.r#type,
                    ACTION => &mut f.action,
                    EVENT_ID => &mut f.event_id,
                    CHALLENGE => &mut f.challenge,
                    OBJECT_KIND => &mut f.object_kind,
                    _ => &mut f.event_type,
                };
                *slot = Some(found);
            }
            missing != 0
        })?;
        Some(f)
    }
}

/// A member value as found by the scanner.
#[derive(Clone, Copy)]
enum Val<'a> {
    /// The bytes between the quotes, and whether they hold an escape.
    Str(&'a [u8], bool),
    /// The whole object, braces included.
    Object(&'a [u8]),
    /// A number, `true`, `false` or `null`, as written.
    Scalar(&'a [u8]),
    /// An array.
    Other,
}

fn string(v: Val<'_>) -> Option<Cow<'_, str>> {
    match v {
        Val::Str(raw, false) => std::str::from_utf8(raw).ok().map(Cow::Borrowed),
        Val::Str(raw, true) => {
            // Rare: re-read the quoted literal with a real JSON decoder.
            let mut quoted = Vec::with_capacity(raw.len() + 2);
            quoted.push(b'"');
            quoted.extend_from_slice(raw);
            quoted.push(b'"');
            serde_json::from_slice::<String>(&quoted)
                .ok()
                .map(Cow::Owned)
        }
        _ => None,
    }
}

/// The value at `path` (object keys, outermost first) of a JSON body, as
/// text: a string unescaped, a number or boolean as written. `None` when
/// a step is missing or not an object, or the body is not a JSON object.
/// The scan stops at the first match of each step, as [`Fields::parse`]
/// does.
pub(crate) fn field<'a>(body: &'a [u8], path: &[&[u8]]) -> Option<Cow<'a, str>> {
    let (last, outer) = path.split_last()?;
    let mut obj = body;
    for step in outer {
        let mut inner = None;
        for_each_member(obj, |k, v| {
            if k == *step {
                inner = match v {
                    Val::Object(o) => Some(o),
                    _ => None,
                };
                return false;
            }
            true
        })?;
        obj = inner?;
    }
    let mut found = None;
    for_each_member(obj, |k, v| {
        if k == *last {
            found = match v {
                Val::Scalar(raw) => std::str::from_utf8(raw).ok().map(Cow::Borrowed),
                v => string(v),
            };
            return false;
        }
        true
    })?;
    found
}

/// Calls `f(raw_key, value)` for each member of the JSON object at the
/// start of `b` until `f` returns false or the object ends. `None` if `b`
/// does not start with an object. Never panics: every index is checked.
fn for_each_member<'a>(b: &'a [u8], mut f: impl FnMut(&'a [u8], Val<'a>) -> bool) -> Option<()> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b'"') => {}
            // `}` ends the object; anything else is malformed: stop here.
            _ => return Some(()),
        }
        let (key, _, after) = scan_string(b, i + 1)?;
        i = skip_ws(b, after);
        if b.get(i) != Some(&b':') {
            return Some(());
        }
        i = skip_ws(b, i + 1);
        let start = i;
        let val = match b.get(i) {
            Some(b'"') => {
                let (raw, escaped, after) = scan_string(b, i + 1)?;
                i = after;
                Val::Str(raw, escaped)
            }
            Some(b'{') => {
                i = skip_nested(b, i)?;
                Val::Object(b.get(start..i)?)
            }
            Some(b'[') => {
                i = skip_nested(b, i)?;
                Val::Other
            }
            Some(_) => {
                while let Some(c) = b.get(i) {
                    if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
                        break;
                    }
                    i += 1;
                }
                Val::Scalar(b.get(start..i)?)
            }
            None => return Some(()),
        };
        if !f(key, val) {
            return Some(());
        }
        i = skip_ws(b, i);
        if b.get(i) != Some(&b',') {
            return Some(());
        }
        i += 1;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// From just after an opening quote: the contents, whether they contain a
/// backslash, and the index after the closing quote.
fn scan_string(b: &[u8], start: usize) -> Option<(&[u8], bool, usize)> {
    let mut i = start;
    let mut escaped = false;
    loop {
        i = find_quote_or_backslash(b, i)?;
        if b.get(i) == Some(&b'"') {
            return Some((b.get(start..i)?, escaped, i + 1));
        }
        escaped = true;
        i += 2;
    }
}

/// From an opening `{` or `[`: the index after its matching close. Bracket
/// kinds are not checked against each other (no validation).
fn skip_nested(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i = scan_string(b, i + 1)?.2;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the next quote or backslash at or after `i` (SIMD search).
fn find_quote_or_backslash(b: &[u8], i: usize) -> Option<usize> {
    memchr::memchr2(b'"', b'\\', b.get(i..)?).map(|at| i + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        crate::verify::tests::headers(pairs)
    }

    fn ex(p: Provider, h: &[(&str, &str)], body: &[u8]) -> Extracted {
        extract(p, None, &headers(h), body).unwrap()
    }

    #[test]
    fn github_type_gets_the_action_suffix() {
        let body = br#"{"action":"opened","number":1,"pull_request":{"action":"nested"}}"#;
        let h = [
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ];
        let got = ex(Provider::Github, &h, body);
        assert_eq!(got.id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(got.event_type, "pull_request.opened");
        assert_eq!(got.handshake, None);
        let push = ex(
            Provider::Github,
            &[("X-GitHub-Event", "push")],
            br#"{"ref":"refs/heads/main"}"#,
        );
        assert_eq!(push.event_type, "push");
        assert_eq!(push.id, sha256_hex(br#"{"ref":"refs/heads/main"}"#));
        // Non-string action is ignored; a non-JSON body still yields the header type.
        assert_eq!(
            ex(
                Provider::Github,
                &[("X-GitHub-Event", "ping")],
                br#"{"action":5}"#
            )
            .event_type,
            "ping"
        );
        assert_eq!(
            ex(
                Provider::Github,
                &[("X-GitHub-Event", "ping")],
                b"payload=%7B%7D"
            )
            .event_type,
            "ping"
        );
        assert_eq!(ex(Provider::Github, &[], body).event_type, "");
    }

    #[test]
    fn stripe_id_and_type_come_from_the_body() {
        let body = br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","data":{"object":{"id":"ch_1","type":"card"}},"type":"charge.succeeded"}"#;
        let got = ex(Provider::Stripe, &[], body);
        assert_eq!(got.id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
        assert_eq!(got.event_type, "charge.succeeded");
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let got = ex(
            Provider::Stripe,
            &[],
            br#"{"id":"evt_\u0031","type":"a\/b"}"#,
        );
        assert_eq!((got.id.as_str(), got.event_type.as_str()), ("evt_1", "a/b"));
    }

    #[test]
    fn slack_event_callback_uses_the_inner_type() {
        let body = br#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention","text":"hi","blocks":[{"type":"rich_text"}]},"team_id":"T1"}"#;
        let got = ex(Provider::Slack, &[], body);
        assert_eq!(got.id, "Ev08MFMKH6");
        assert_eq!(got.event_type, "app_mention");
        assert_eq!(got.handshake, None);
        let other = ex(
            Provider::Slack,
            &[],
            br#"{"type":"app_rate_limited","event":"x"}"#,
        );
        assert_eq!(other.event_type, "app_rate_limited");
    }

    #[test]
    fn slack_url_verification_is_a_handshake() {
        let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let got = ex(Provider::Slack, &[], body);
        assert_eq!(
            got.handshake,
            Some(Handshake::Json(
                r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#.into()
            ))
        );
        assert_eq!(got.event_type, "url_verification");
        // Quotes and control characters in the challenge stay valid JSON.
        let tricky = ex(
            Provider::Slack,
            &[],
            br#"{"type":"url_verification","challenge":"a\"b\\c\n</script>"}"#,
        );
        let Some(Handshake::Json(reply)) = tricky.handshake else {
            panic!("not a JSON handshake")
        };
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(v["challenge"], "a\"b\\c\n</script>");
    }

    #[test]
    fn slack_form_bodies_fall_back() {
        let body = b"token=x&team_id=T1&command=%2Fdeploy&text=now";
        let got = ex(Provider::Slack, &[], body);
        assert_eq!(got.id, sha256_hex(body));
        assert_eq!(got.event_type, "slash_command");
        let interactive = ex(
            Provider::Slack,
            &[],
            b"payload=%7B%22type%22%3A%22block_actions%22%7D",
        );
        assert_eq!(interactive.event_type, "interactive");
        // `command` must be a param name, not a substring of one.
        assert_eq!(
            ex(Provider::Slack, &[], b"subcommand=x&text=command").event_type,
            ""
        );
    }

    #[test]
    fn shopify_uses_headers_only() {
        let h = [
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
            ("X-Shopify-Event-Id", "evt-9"),
            ("X-Shopify-Topic", "orders/create"),
        ];
        let got = ex(Provider::Shopify, &h, br#"{"id":1,"type":"ignored"}"#);
        assert_eq!(got.id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
        assert_eq!(got.event_type, "orders/create");
        let event_only = ex(Provider::Shopify, &[("X-Shopify-Event-Id", "evt-9")], b"{}");
        assert_eq!(event_only.id, "evt-9");
        assert_eq!(event_only.event_type, "");
    }

    #[test]
    fn standard_webhooks_id_from_either_header() {
        let body = br#"{"type":"invoice.paid","data":{"type":"nested"}}"#;
        let got = ex(Provider::StandardWebhooks, &[("webhook-id", "msg_1")], body);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("msg_1", "invoice.paid")
        );
        assert_eq!(
            ex(Provider::StandardWebhooks, &[("svix-id", "msg_2")], body).id,
            "msg_2"
        );
        assert_eq!(
            extract(
                Provider::StandardWebhooks,
                None,
                &headers(&[("webhook-id", "")]),
                body
            ),
            Err(HeaderError::Empty("webhook-id".into()))
        );
    }

    #[test]
    fn gitlab_prefers_idempotency_key_and_object_kind() {
        let body = br#"{"object_kind":"merge_request","event_type":"merge_request"}"#;
        let h = [
            ("Idempotency-Key", "idem-1"),
            ("X-Gitlab-Event-UUID", "uuid-1"),
            ("X-Gitlab-Event", "Merge Request Hook"),
        ];
        let got = ex(Provider::Gitlab, &h, body);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("idem-1", "merge_request")
        );
        let h = [
            ("X-Gitlab-Event-UUID", "uuid-1"),
            ("X-Gitlab-Event", "System Hook"),
        ];
        let got = ex(Provider::Gitlab, &h, b"not json");
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("uuid-1", "System Hook")
        );
    }

    #[test]
    fn hmac_uses_configured_headers_else_body_type() {
        let params = HmacParams {
            signature_header: "x-sig".into(),
            algorithm: Default::default(),
            encoding: Default::default(),
            prefix: String::new(),
            signed_content: "{body}".into(),
            timestamp_header: None,
            id_header: Some("X-Event-Id".into()),
            type_header: Some("X-Event-Type".into()),
        };
        let body = br#"{"type":"from.body","id":"not-used"}"#;
        let h = headers(&[("x-event-id", "e-1"), ("x-event-type", "from.header")]);
        let got = extract(Provider::Hmac, Some(&params), &h, body).unwrap();
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("e-1", "from.header")
        );
        let got = extract(Provider::Hmac, Some(&params), &HeaderMap::new(), body).unwrap();
        assert_eq!(
            (got.id, got.event_type.as_str()),
            (sha256_hex(body), "from.body")
        );
        let got = extract(Provider::Hmac, None, &HeaderMap::new(), body).unwrap();
        assert_eq!(got.event_type, "from.body");
    }

    #[test]
    fn ids_and_types_of_the_newer_presets() {
        let hash = |b: &[u8]| sha256_hex(b);
        let check = |p: Provider, h: &[(&str, &str)], body: &[u8], id: &str, t: &str| {
            let got = ex(p, h, body);
            assert_eq!((got.id.as_str(), got.event_type.as_str()), (id, t), "{p}");
        };
        let b = br#"{"repository":{}}"#;
        check(
            Provider::Bitbucket,
            &[("X-Request-UUID", "r-1"), ("X-Event-Key", "repo:push")],
            b,
            "r-1",
            "repo:push",
        );
        let b = br#"{"timestamp":1,"webhookEvent":"jira:issue_created"}"#;
        check(
            Provider::Jira,
            &[("X-Atlassian-Webhook-Identifier", "w-9")],
            b,
            "w-9",
            "jira:issue_created",
        );
        let b = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        check(
            Provider::Meta,
            &[],
            b,
            &hash(b),
            "whatsapp_business_account",
        );
        let b = br#"{"for_user_id":"2244994945","tweet_create_events":[]}"#;
        check(Provider::X, &[], b, &hash(b), "tweet_create_events");
        let b = br#"{"list_folder":{"accounts":["dbid:1"]}}"#;
        check(Provider::Dropbox, &[], b, &hash(b), "");
        check(
            Provider::Asana,
            &[],
            br#"{"events":[]}"#,
            &hash(br#"{"events":[]}"#),
            "",
        );
        let b = br#"{"id":1,"event":{"id":"ev-1","type":"charge:created"}}"#;
        check(Provider::CoinbaseCommerce, &[], b, "ev-1", "charge:created");
        let b = br#"{"events":[{"id":"EV1"}],"meta":{"webhook_id":"WB1"}}"#;
        check(Provider::Gocardless, &[], b, "WB1", "");
        let b = br#"{"meta":{"event_name":"order_created"},"data":{"id":"1"}}"#;
        check(Provider::LemonSqueezy, &[], b, &hash(b), "order_created");
        let b = br#"{"type":"video.asset.ready","id":"m-1"}"#;
        check(Provider::Mux, &[], b, "m-1", "video.asset.ready");
        check(
            Provider::Vercel,
            &[],
            br#"{"id":"v-1","type":"deployment.created"}"#,
            "v-1",
            "deployment.created",
        );
        check(
            Provider::Zendesk,
            &[],
            br#"{"id":"z-1","type":"zen:event-type:ticket.created"}"#,
            "z-1",
            "zen:event-type:ticket.created",
        );
        let b = br#"{"triggerType":"form_submission","payload":{}}"#;
        check(Provider::Webflow, &[], b, &hash(b), "form_submission");
        check(
            Provider::Woocommerce,
            &[
                ("X-WC-Webhook-Delivery-ID", "d-1"),
                ("X-WC-Webhook-Topic", "order.created"),
            ],
            b"{}",
            "d-1",
            "order.created",
        );
        let b = br#"{"event":"envelope-completed","data":{}}"#;
        check(Provider::Docusign, &[], b, &hash(b), "envelope-completed");
        check(
            Provider::Segment,
            &[],
            br#"{"type":"track","messageId":"ajs-1"}"#,
            "ajs-1",
            "track",
        );
        check(
            Provider::Sentry,
            &[("Request-ID", "s-1"), ("Sentry-Hook-Resource", "issue")],
            br#"{"action":"created"}"#,
            "s-1",
            "issue.created",
        );
        check(
            Provider::Sentry,
            &[("Sentry-Hook-Resource", "installation")],
            b"{}",
            &hash(b"{}"),
            "installation",
        );
        check(
            Provider::Box,
            &[("box-delivery-id", "b-1")],
            br#"{"trigger":"FILE.UPLOADED"}"#,
            "b-1",
            "FILE.UPLOADED",
        );
        check(
            Provider::Telegram,
            &[],
            br#"{"update_id":10000,"callback_query":{}}"#,
            "10000",
            "callback_query",
        );
        check(
            Provider::Clerk,
            &[("svix-id", "msg_c")],
            br#"{"type":"user.created"}"#,
            "msg_c",
            "user.created",
        );
        check(
            Provider::Resend,
            &[("svix-id", "msg_r")],
            br#"{"type":"email.sent"}"#,
            "msg_r",
            "email.sent",
        );
        // A header named as an id source is checked even when it is empty.
        assert_eq!(
            extract(
                Provider::Woocommerce,
                None,
                &headers(&[("X-WC-Webhook-Delivery-ID", "")]),
                b"{}"
            ),
            Err(HeaderError::Empty("x-wc-webhook-delivery-id".into()))
        );
    }

    #[test]
    fn non_json_and_odd_bodies_never_fail() {
        for body in [
            &b""[..],
            b"\xff\xfe",
            b"[1,2]",
            b"{",
            b"{\"id\":",
            b"null",
            b"  {\"id\": {\"x\": [1]}, \"type\": null}",
        ] {
            for p in [
                Provider::Github,
                Provider::Stripe,
                Provider::Slack,
                Provider::Shopify,
                Provider::StandardWebhooks,
                Provider::Gitlab,
                Provider::Hmac,
            ] {
                let got = ex(p, &[], body);
                assert_eq!(got.id, sha256_hex(body), "{p} {body:?}");
                assert_eq!(got.handshake, None);
            }
        }
        // One odd field does not lose the others.
        let got = ex(
            Provider::Stripe,
            &[],
            br#"{"id":"evt_2","type":{"nested":true}}"#,
        );
        assert_eq!((got.id.as_str(), got.event_type.as_str()), ("evt_2", ""));
    }

    #[test]
    fn scanner_details() {
        // Duplicate keys: the first wins.
        assert_eq!(ex(Provider::Stripe, &[], br#"{"id":"a","id":"b"}"#).id, "a");
        // Stops once every wanted field is found: trailing junk is never read.
        let got = ex(
            Provider::Github,
            &[("X-GitHub-Event", "issues")],
            br#"{"action":"closed","issue":{"#,
        );
        assert_eq!(got.event_type, "issues.closed");
        // Braces and quotes inside strings do not confuse the skipping.
        let body = br#" { "data" : {"a":"}{\"][","b":[1,{"type":"x"}]} , "type" : "real" } "#;
        assert_eq!(ex(Provider::StandardWebhooks, &[], body).event_type, "real");
        // Invalid UTF-8 in a value: no type rather than garbage.
        assert_eq!(
            ex(Provider::StandardWebhooks, &[], b"{\"type\":\"\xff\"}").event_type,
            ""
        );
    }

    /// Deterministic xorshift; keeps the tests free of extra dependencies.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const KEYS: &[&str] = &[
        "id",
        "type",
        "action",
        "event_id",
        "challenge",
        "object_kind",
        "event",
        "data",
        "i",
        "typ",
        "ty\"pe",
        "é",
    ];
    const STRINGS: &[&str] = &[
        "",
        "evt_1",
        "a\"b",
        "back\\slash",
        "}{][,:",
        "line\nbreak",
        "é ü 日本",
        "\u{1F600}",
        "\u{0007}",
        "long string with enough bytes to cross words",
    ];

    fn value(r: &mut Rng, depth: usize) -> serde_json::Value {
        use serde_json::Value;
        match r.below(if depth > 2 { 5 } else { 8 }) {
            0 | 1 => Value::String(STRINGS[r.below(STRINGS.len())].to_owned()),
            2 => Value::from(r.next() as i64 >> r.below(60)),
            3 => Value::from(r.below(2) == 0),
            4 => Value::Null,
            5 => Value::Array((0..r.below(4)).map(|_| value(r, depth + 1)).collect()),
            _ => object(r, depth + 1),
        }
    }

    fn object(r: &mut Rng, depth: usize) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for _ in 0..r.below(8) {
            m.insert(KEYS[r.below(KEYS.len())].to_owned(), value(r, depth));
        }
        serde_json::Value::Object(m)
    }

    #[test]
    fn scanner_agrees_with_serde_json() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let all = ID | TYPE | ACTION | EVENT_ID | CHALLENGE | OBJECT_KIND | EVENT_TYPE;
        for n in 0..3000 {
            let v = object(&mut r, 0);
            let text = if n % 2 == 0 {
                v.to_string()
            } else {
                serde_json::to_string_pretty(&v).unwrap()
            };
            let f = Fields::parse(text.as_bytes(), all).unwrap();
            let want = |k: &str| v.get(k).and_then(|x| x.as_str());
            assert_eq!(f.id.as_deref(), want("id"), "{text}");
            assert_eq!(f.r#type.as_deref(), want("type"), "{text}");
            assert_eq!(f.action.as_deref(), want("action"), "{text}");
            assert_eq!(f.event_id.as_deref(), want("event_id"), "{text}");
            assert_eq!(f.challenge.as_deref(), want("challenge"), "{text}");
            assert_eq!(f.object_kind.as_deref(), want("object_kind"), "{text}");
            let inner = v
                .get("event")
                .and_then(|e| e.get("type"))
                .and_then(|t| t.as_str());
            assert_eq!(f.event_type.as_deref(), inner, "{text}");
        }
    }

    #[test]
    fn truncated_and_corrupted_bodies_never_panic() {
        let mut r = Rng(42);
        let providers = [
            Provider::Github,
            Provider::Stripe,
            Provider::Slack,
            Provider::StandardWebhooks,
            Provider::Gitlab,
        ];
        let h = headers(&[("X-GitHub-Event", "push")]);
        for _ in 0..60 {
            let text = object(&mut r, 0).to_string().into_bytes();
            for cut in 0..text.len() {
                for p in providers {
                    assert!(extract(p, None, &h, &text[..cut]).is_ok());
                }
            }
            let mut bad = text.clone();
            for _ in 0..4 {
                if !bad.is_empty() {
                    let i = r.below(bad.len());
                    bad[i] = b"\"\\{}[],:x\xff"[r.below(10)];
                }
            }
            for p in providers {
                assert!(extract(p, None, &h, &bad).is_ok());
            }
        }
    }

    /// Each provider's id and type headers, and what a present but unusable
    /// one does: an error naming it, never the body-hash fallback (which
    /// would merge two deliveries that share a body).
    #[test]
    fn unusable_id_and_type_headers_are_errors() {
        let params = HmacParams {
            signature_header: "x-sig".into(),
            algorithm: Default::default(),
            encoding: Default::default(),
            prefix: String::new(),
            signed_content: "{body}".into(),
            timestamp_header: None,
            id_header: Some("X-Event-Id".into()),
            type_header: Some("X-Event-Type".into()),
        };
        let cases: &[(Provider, &str)] = &[
            (Provider::Github, "x-github-delivery"),
            (Provider::Github, "x-github-event"),
            (Provider::Shopify, "x-shopify-webhook-id"),
            (Provider::Shopify, "x-shopify-event-id"),
            (Provider::Shopify, "x-shopify-topic"),
            (Provider::StandardWebhooks, "webhook-id"),
            (Provider::StandardWebhooks, "svix-id"),
            (Provider::Gitlab, "idempotency-key"),
            (Provider::Gitlab, "x-gitlab-event-uuid"),
            (Provider::Gitlab, "x-gitlab-event"),
            (Provider::Hmac, "x-event-id"),
            (Provider::Hmac, "x-event-type"),
        ];
        let body = br#"{"object_kind":"push","type":"t"}"#;
        for &(p, name) in cases {
            let run = |h: &HeaderMap| extract(p, Some(&params), h, body);
            let mut h = HeaderMap::new();
            h.insert(name, http::HeaderValue::from_bytes(b"\xffid").unwrap());
            assert_eq!(run(&h), Err(HeaderError::Unreadable(name.into())), "{p}");
            for blank in ["", "  "] {
                h.insert(name, http::HeaderValue::from_static(blank));
                assert_eq!(run(&h), Err(HeaderError::Empty(name.into())), "{p}");
            }
            // Twice, in either order: refused both ways.
            for (a, b) in [("one", "two"), ("two", "one")] {
                let mut h = HeaderMap::new();
                h.append(name, http::HeaderValue::from_static(a));
                h.append(name, http::HeaderValue::from_static(b));
                assert_eq!(run(&h), Err(HeaderError::Repeated(name.into())), "{p}");
            }
            let mut h = HeaderMap::new();
            h.insert(name, http::HeaderValue::from_static(" ok "));
            assert!(run(&h).is_ok(), "{p} {name}");
        }
        // Body-only providers read no header.
        let mut h = HeaderMap::new();
        h.insert("x-github-delivery", http::HeaderValue::from_static(""));
        assert!(extract(Provider::Stripe, None, &h, body).is_ok());
        let e = crate::error::ReceiveError::from(HeaderError::Empty("x".into()));
        assert_eq!((e.status(), e.code()), (400, "malformed_header"));
    }

    /// Dropbox's and Graph's bodies repeat for every new change (here: a
    /// second change in the same account, the same drive): their requests
    /// are marked to be committed under ids of their own.
    #[test]
    fn dropbox_and_graph_requests_are_each_their_own_event() {
        let cases: [(Provider, &[u8]); 2] = [
            (Provider::Dropbox, br#"{"list_folder":{"accounts":["dbid:1"]}}"#),
            (
                Provider::Msgraph,
                br#"{"value":[{"changeType":"updated","resource":"me/drive/root","clientState":"s"}]}"#,
            ),
        ];
        for (provider, body) in cases {
            let got = extract(provider, None, &HeaderMap::new(), body).unwrap();
            assert!(got.per_request, "{provider}");
        }
        let github = ex(Provider::Github, &[("x-github-delivery", "d-1")], b"{}");
        assert!(!github.per_request);
        assert_ne!(per_request_id(), per_request_id());
        assert!(per_request_id().starts_with("req-") && per_request_id().len() == 36);
    }

    /// Found by `shared/tests/verify_props.rs`: an empty id in the body was
    /// the event id, so distinct events with one were merged as duplicates.
    #[test]
    fn an_empty_body_id_falls_back_to_the_body_hash() {
        for (p, body) in [
            (Provider::Stripe, &br#"{"id":"","type":"t"}"#[..]),
            (Provider::Paddle, br#"{"event_id":""}"#),
            (Provider::Pagerduty, br#"{"event":{"id":""}}"#),
            (Provider::Discord, br#"{"id":"","type":2}"#),
            (Provider::Telegram, br#"{"update_id":""}"#),
        ] {
            assert_eq!(ex(p, &[], body).id, sha256_hex(body), "{p}");
        }
        let other = br#"{"id":"","type":"u"}"#;
        assert_ne!(
            ex(Provider::Stripe, &[], other).id,
            ex(Provider::Stripe, &[], br#"{"id":"","type":"t"}"#).id
        );
    }

    #[test]
    fn sha256_hex_is_the_known_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn field_reads_nested_strings_numbers_and_escapes() {
        let body = br#"{"a":{"b":{"c":"deep"},"n":17,"t":true},"s":"x\"y","arr":[1],"e":""}"#;
        assert_eq!(field(body, &[b"a", b"b", b"c"]).as_deref(), Some("deep"));
        assert_eq!(field(body, &[b"a", b"n"]).as_deref(), Some("17"));
        assert_eq!(field(body, &[b"a", b"t"]).as_deref(), Some("true"));
        assert_eq!(field(body, &[b"s"]).as_deref(), Some("x\"y"));
        assert_eq!(field(body, &[b"e"]).as_deref(), Some(""));
        // Missing, through a non-object, an array, not JSON, no path.
        assert_eq!(field(body, &[b"a", b"x"]), None);
        assert_eq!(field(body, &[b"s", b"c"]), None);
        assert_eq!(field(body, &[b"arr"]), None);
        assert_eq!(field(b"not json", &[b"a"]), None);
        assert_eq!(field(body, &[]), None);
        // Truncated input ends the scan, never a panic.
        for cut in 0..body.len() {
            let _ = field(&body[..cut], &[b"a", b"b", b"c"]);
        }
    }

    #[test]
    fn new_presets_take_their_ids_and_types_from_where_the_provider_puts_them() {
        let paddle = br#"{"event_id":"evt_01","event_type":"transaction.completed"}"#;
        let got = ex(Provider::Paddle, &[], paddle);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("evt_01", "transaction.completed")
        );
        let typeform = br#"{"event_id":"01F","event_type":"form_response"}"#;
        let got = ex(Provider::Typeform, &[], typeform);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("01F", "form_response")
        );
        let pd =
            br#"{"event":{"id":"01DEN","event_type":"incident.triggered","data":{"id":"no"}}}"#;
        let got = ex(Provider::Pagerduty, &[], pd);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("01DEN", "incident.triggered")
        );
        let intercom =
            br#"{"type":"notification_event","id":"notif_1","topic":"conversation.user.created"}"#;
        let got = ex(Provider::Intercom, &[], intercom);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("notif_1", "conversation.user.created")
        );
        let calendly = br#"{"event":"invitee.created","payload":{}}"#;
        let got = ex(Provider::Calendly, &[], calendly);
        assert_eq!(
            (got.id, got.event_type.as_str()),
            (sha256_hex(calendly), "invitee.created")
        );

        let linear = br#"{"action":"create","type":"Issue","webhookTimestamp":1}"#;
        let got = ex(
            Provider::Linear,
            &[("Linear-Delivery", "d-1"), ("Linear-Event", "Issue")],
            linear,
        );
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("d-1", "Issue.create")
        );
        let got = ex(Provider::Linear, &[("Linear-Event", "Comment")], b"{}");
        assert_eq!(
            (got.id, got.event_type.as_str()),
            (sha256_hex(b"{}"), "Comment")
        );

        let twitch = br#"{"subscription":{"type":"channel.follow"},"event":{}}"#;
        let h = [
            ("Twitch-Eventsub-Message-Id", "m-1"),
            ("Twitch-Eventsub-Message-Type", "notification"),
        ];
        let got = ex(Provider::Twitch, &h, twitch);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str(), got.handshake),
            ("m-1", "channel.follow", None)
        );
        let h = [
            ("Twitch-Eventsub-Message-Id", "m-2"),
            ("Twitch-Eventsub-Message-Type", "revocation"),
        ];
        assert_eq!(ex(Provider::Twitch, &h, twitch).event_type, "revocation");
    }

    #[test]
    fn zoom_and_twitch_endpoint_checks_are_handshakes() {
        let zoom = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        let got = ex(Provider::Zoom, &[], zoom);
        assert_eq!(
            got.handshake,
            Some(Handshake::Zoom {
                plain_token: "qgg8vlvZRS6UYooatFL8Aw".into()
            })
        );
        assert_eq!(
            ex(Provider::Zoom, &[], br#"{"event":"meeting.started"}"#).handshake,
            None
        );

        let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"type":"channel.follow"}}"#;
        let h = [
            ("Twitch-Eventsub-Message-Id", "m-1"),
            (
                "Twitch-Eventsub-Message-Type",
                "webhook_callback_verification",
            ),
        ];
        let got = ex(Provider::Twitch, &h, body);
        assert_eq!(
            got.handshake,
            Some(Handshake::Text("pogchamp-kappa-360noscope-vohiyo".into()))
        );
    }

    #[test]
    fn discord_interactions_are_typed_pings_answered_and_the_rest_deferred() {
        let ping = ex(Provider::Discord, &[], br#"{"id":"1","type":1}"#);
        assert_eq!(ping.event_type, "ping");
        assert_eq!(
            ping.handshake,
            Some(Handshake::Json(r#"{"type":1}"#.into()))
        );
        let cmd = ex(
            Provider::Discord,
            &[],
            br#"{"id":"2","type":2,"data":{"type":1}}"#,
        );
        assert_eq!(
            (cmd.id.as_str(), cmd.event_type.as_str()),
            ("2", "application_command")
        );
        assert_eq!((cmd.handshake, cmd.ack), (None, Some(r#"{"type":5}"#)));
        let button = ex(Provider::Discord, &[], br#"{"id":"3","type":3}"#);
        assert_eq!(button.ack, Some(r#"{"type":6}"#));
        let odd = ex(Provider::Discord, &[], br#"{"id":"4","type":99}"#);
        assert_eq!((odd.event_type.as_str(), odd.ack), ("", None));
        assert_eq!(ex(Provider::Github, &[], b"{}").ack, None);
    }
}
