//! The JSON shapes the admin API answers with. Each is a type that both
//! serialises the answer and, through `ToSchema`, describes it in the
//! OpenAPI document ([`super::openapi`]): the document cannot say one
//! thing while the handlers send another.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use super::input::{rfc3339, rfc3339_time};
use super::ports::{
    self, ConfigEntry, ConfigItem, DeadLetterRecord, DeliveryCounts, DeliveryRecord, EventRecord,
    EventStatus, Origin, ReplayCandidate,
};
use super::verify_ops::BodyEncoding;
use crate::config::{Format, HumanDuration, SourceConfig, SubscriptionConfig};
use crate::gate::{Breaker, Circuit, Controls, GateState, Rate};
use crate::model::{DeliveryStatus, EventKey, Headers};
use crate::poll::PollerConfig;
use crate::poll::state::{LastResult, StoredPoller};

/// Longest response piece shown per attempt.
pub(crate) const RESPONSE_PREVIEW_BYTES: usize = 512;

/// A time: RFC 3339 with milliseconds, UTC.
#[derive(Serialize, ToSchema)]
#[schema(value_type = String, format = DateTime, examples("2025-01-31T12:00:00.000Z"))]
pub(crate) struct Timestamp(String);

impl Timestamp {
    pub(crate) fn ms(ms: i64) -> Self {
        Self(rfc3339(ms))
    }

    fn time(t: SystemTime) -> Self {
        Self(rfc3339_time(t))
    }
}

/// `{source}#{event id}`, the id the API shows.
pub(crate) fn key(k: &EventKey) -> String {
    k.to_string()
}

/// `T`'s schema without its `additionalProperties: false`: a config
/// flattened into a view beside other fields, where that would refuse them.
fn open<T: ToSchema>() -> RefOr<Schema> {
    let mut schema = T::schema();
    if let RefOr::T(Schema::Object(o)) = &mut schema {
        o.additional_properties = None;
    }
    schema
}

/// [`SourceConfig`] as part of the [`Source`] view.
pub(crate) struct SourceFields;

impl PartialSchema for SourceFields {
    fn schema() -> RefOr<Schema> {
        open::<SourceConfig>()
    }
}

impl ToSchema for SourceFields {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        SourceConfig::schemas(out);
    }
}

/// [`PollerConfig`] as part of the [`Poller`] view.
pub(crate) struct PollerFields;

impl PartialSchema for PollerFields {
    fn schema() -> RefOr<Schema> {
        open::<PollerConfig>()
    }
}

impl ToSchema for PollerFields {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        PollerConfig::schemas(out);
    }
}

/// What every config entry shows beside its config.
#[derive(Serialize, ToSchema)]
pub(crate) struct Meta {
    /// Whether it is served (sources), polled (pollers) or delivered to
    /// (subscriptions).
    enabled: bool,
    origin: Origin,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl Meta {
    fn of(entry: &ConfigEntry) -> Self {
        Self {
            enabled: entry.enabled,
            origin: entry.origin,
            created_at: Timestamp::ms(entry.created_at_ms),
            updated_at: Timestamp::ms(entry.updated_at_ms),
        }
    }
}

/// A source: its config (secret references, never values) and state.
#[derive(Serialize, ToSchema)]
pub(crate) struct Source<'a> {
    #[serde(flatten)]
    #[schema(inline, value_type = SourceFields)]
    config: &'a SourceConfig,
    /// Where its webhooks are received.
    #[schema(examples("/hooks/github"))]
    path: String,
    /// Only for a provider that sends its secret in a handshake (Asana).
    #[serde(skip_serializing_if = "Option::is_none")]
    handshake: Option<Handshake>,
    #[serde(flatten)]
    meta: Meta,
}

impl<'a> Source<'a> {
    pub(crate) fn of(
        s: &'a SourceConfig,
        entry: &ConfigEntry,
        handshake: Option<Handshake>,
    ) -> Self {
        Self {
            config: s,
            path: format!("/hooks/{}", s.id),
            handshake,
            meta: Meta::of(entry),
        }
    }
}

/// Where a source stands whose provider sends its signing secret in a
/// handshake (Asana's `X-Hook-Secret`).
#[derive(Serialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Handshake {
    /// Nothing is kept at the source's reference yet: its events are
    /// refused (503, so the provider retries) until the handshake comes.
    Awaiting,
    /// The handshake's secret is kept; events are verified with it.
    Done,
    /// The secret could not be read just now (its store is unavailable,
    /// or the reference cannot be resolved).
    Unreadable,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SourceList<'a> {
    pub(crate) sources: Vec<Source<'a>>,
}

/// A poller: its config (header secrets as references, never values;
/// literal credentials are refused on the way in) and what it remembers.
#[derive(Serialize, ToSchema)]
pub(crate) struct Poller<'a> {
    #[serde(flatten)]
    #[schema(inline, value_type = PollerFields)]
    config: &'a PollerConfig,
    /// What the poller remembers; null before its first poll, and in the
    /// answers to create, enable and disable.
    state: Option<PollerState<'a>>,
    #[serde(flatten)]
    meta: Meta,
}

impl<'a> Poller<'a> {
    pub(crate) fn of(
        p: &'a PollerConfig,
        entry: &ConfigEntry,
        state: Option<&'a StoredPoller>,
    ) -> Self {
        Self {
            config: p,
            state: state.map(PollerState::of),
            meta: Meta::of(entry),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct PollerList<'a> {
    pub(crate) pollers: Vec<Poller<'a>>,
}

/// What a poller remembers, as operators read it.
#[derive(Serialize, ToSchema)]
pub(crate) struct PollerState<'a> {
    last_poll_at: Option<Timestamp>,
    last_result: Option<LastResult>,
    /// Items the last poll emitted.
    last_emitted: u64,
    emitted_total: u64,
    next_poll_at: Option<Timestamp>,
    /// Kept until a poll succeeds.
    last_error: Option<&'a str>,
    last_error_at: Option<Timestamp>,
    /// Failures in a row (the backoff grows with them).
    failures: u32,
    /// A runner holds the poll until then.
    polling_until: Option<Timestamp>,
    /// The newest timestamp seen (sent as `since_param`).
    cursor: Option<&'a str>,
    remembered_ids: usize,
}

impl<'a> PollerState<'a> {
    fn of(stored: &'a StoredPoller) -> Self {
        let s = &stored.state;
        Self {
            last_poll_at: s.last_poll_at_ms.map(Timestamp::ms),
            last_result: s.last_result,
            last_emitted: s.last_emitted,
            emitted_total: s.emitted_total,
            next_poll_at: Some(s.next_poll_at_ms)
                .filter(|ms| *ms > 0)
                .map(Timestamp::ms),
            last_error: s.last_error.as_deref(),
            last_error_at: s.last_error_at_ms.map(Timestamp::ms),
            failures: s.failures,
            polling_until: stored.lease_until_ms.map(Timestamp::ms),
            cursor: s.cursor.as_deref(),
            remembered_ids: s.seen.len(),
        }
    }
}

/// A subscription. Only whether it has a signing secret is shown.
#[derive(Serialize, ToSchema)]
pub(crate) struct Subscription<'a> {
    id: &'a str,
    /// The source or poller whose events it takes.
    source: &'a str,
    /// Event-type globs; `*` for all.
    events: &'a [String],
    url: &'a str,
    format: Format,
    /// Chat formats: the message text, a minijinja template.
    template: Option<&'a str>,
    /// The whole JSON body, a minijinja template.
    payload_template: Option<&'a str>,
    /// Only events this minijinja expression is true for are delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    filter: Option<&'a str>,
    /// The waits between attempts; the default schedule if null.
    retry_schedule: Option<&'a [HumanDuration]>,
    allow_local: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Rate)]
    rate_limit: Option<&'a str>,
    /// At most this many requests out at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    max_in_flight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Breaker)]
    circuit_breaker: Option<Breaker>,
    has_signing_secret: bool,
    /// While a rotated-out signing secret still signs: until when.
    previous_secret_until: Option<Timestamp>,
    #[serde(flatten)]
    meta: Meta,
    /// On a single subscription's view.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = DeliveryControls)]
    delivery_controls: Option<DeliveryControls>,
}

impl<'a> Subscription<'a> {
    pub(crate) fn of(s: &'a SubscriptionConfig, entry: &ConfigEntry) -> Self {
        let previous_secret_until = s
            .previous_signing_secret
            .as_ref()
            .filter(|p| p.until > SystemTime::now())
            .map(|p| Timestamp::time(p.until));
        Self {
            id: &s.id,
            source: &s.source,
            events: &s.events,
            url: &s.url,
            format: s.format,
            template: s.template.as_deref(),
            payload_template: s.payload_template.as_deref(),
            filter: s.filter.as_deref(),
            retry_schedule: s.retry_schedule.as_deref(),
            allow_local: s.allow_local,
            rate_limit: s.rate_limit.as_deref(),
            max_in_flight: s.max_in_flight,
            circuit_breaker: s.circuit_breaker,
            has_signing_secret: s.signing_secret.is_some(),
            previous_secret_until,
            meta: Meta::of(entry),
            delivery_controls: None,
        }
    }

    pub(crate) fn with_controls(mut self, controls: DeliveryControls) -> Self {
        self.delivery_controls = Some(controls);
        self
    }
}

/// A subscription and its new signing secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct SubscriptionWithSecret<'a> {
    #[serde(flatten)]
    subscription: Subscription<'a>,
    /// Shown this once; never again.
    #[schema(pattern = "^whsec_")]
    signing_secret: String,
}

impl<'a> SubscriptionWithSecret<'a> {
    pub(crate) fn new(subscription: Subscription<'a>, signing_secret: String) -> Self {
        Self {
            subscription,
            signing_secret,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SubscriptionList<'a> {
    pub(crate) subscriptions: Vec<Subscription<'a>>,
}

/// Any config entry, as its own view (enable and disable answer with it).
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Entry<'a> {
    Source(Source<'a>),
    Poller(Poller<'a>),
    Subscription(Box<Subscription<'a>>),
}

impl<'a> Entry<'a> {
    /// `handshake`: a source's, as [`Source::of`] takes it.
    pub(crate) fn of(entry: &'a ConfigEntry, handshake: Option<Handshake>) -> Self {
        match &entry.item {
            ConfigItem::Source(s) => Self::Source(Source::of(s, entry, handshake)),
            ConfigItem::Poller(p) => Self::Poller(Poller::of(p, entry, None)),
            ConfigItem::Subscription(s) => Self::Subscription(Box::new(Subscription::of(s, entry))),
        }
    }
}

/// The controls in effect (a chat format's default rate included) and the
/// circuit's state.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeliveryControls {
    #[schema(examples("1/s"))]
    rate_limit: Option<String>,
    max_in_flight: Option<u32>,
    /// Null when neither of its rules can open the circuit.
    circuit_breaker: Option<Breaker>,
    /// Requests out now (only counted with `max_in_flight`).
    in_flight: usize,
    circuit: CircuitView,
}

/// A circuit's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CircuitState {
    Closed,
    Open,
    Probing,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Circuit)]
pub(crate) struct CircuitView {
    state: CircuitState,
    consecutive_failures: u32,
    /// While open or probing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Timestamp)]
    opened_at: Option<Timestamp>,
    /// While open.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Timestamp)]
    next_probe_at: Option<Timestamp>,
    /// While open or probing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    failed_probes: Option<u32>,
}

impl DeliveryControls {
    /// A subscription's delivery controls in effect (its format's default
    /// rate included) and its gate's state: the circuit, and the sends out now.
    pub(crate) fn of(c: &Controls, state: Option<&GateState>) -> Self {
        let default = GateState::default();
        let state = state.unwrap_or(&default);
        let now = crate::time::now_ms();
        let circuit = &state.circuit;
        let mut view = CircuitView {
            state: CircuitState::Closed,
            consecutive_failures: circuit.failures(),
            opened_at: None,
            next_probe_at: None,
            failed_probes: None,
        };
        match circuit {
            Circuit::Closed { .. } => {}
            Circuit::Open {
                since_ms,
                probe_at_ms,
                opened,
                ..
            } => {
                view.state = CircuitState::Open;
                view.opened_at = Some(Timestamp::ms(*since_ms));
                view.next_probe_at = Some(Timestamp::ms(*probe_at_ms));
                view.failed_probes = Some(opened.saturating_sub(1));
            }
            Circuit::Probing {
                since_ms, opened, ..
            } => {
                view.state = CircuitState::Probing;
                view.opened_at = Some(Timestamp::ms(*since_ms));
                view.failed_probes = Some(opened.saturating_sub(1));
            }
        }
        Self {
            rate_limit: c.rate.map(|r| r.to_string()),
            max_in_flight: c.max_in_flight,
            circuit_breaker: c.breaker.enabled().then_some(c.breaker),
            in_flight: state.in_flight.iter().filter(|h| h.until_ms > now).count(),
            circuit: view,
        }
    }
}

/// What an event in a list and an event read whole both show.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventBase<'a> {
    /// `{source}#{event id}`.
    id: String,
    source: &'a str,
    event_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    received_at: Timestamp,
    /// End of retention.
    expires_at: Timestamp,
    status: EventStatus,
    /// The original, for a replay.
    replay_of: Option<String>,
}

/// An event in a list, with its deliveries' states.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventSummary<'a> {
    #[serde(flatten)]
    base: EventBase<'a>,
    deliveries: DeliveryCounts,
    /// Each destination's state, by subscription id.
    destinations: Vec<Destination<'a>>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Destination<'a> {
    subscription: &'a str,
    status: DeliveryStatus,
    /// Attempts made so far.
    #[schema(minimum = 0)]
    attempts: u32,
}

impl<'a> EventSummary<'a> {
    fn of(e: &'a ports::EventSummary) -> Self {
        Self {
            base: EventBase {
                id: key(&e.key),
                source: &e.key.source,
                event_id: &e.key.id,
                event_type: &e.event_type,
                received_at: Timestamp::ms(e.received_at_ms),
                expires_at: Timestamp::ms(e.expires_at.saturating_mul(1000)),
                status: e.status,
                replay_of: e.replay_of.as_ref().map(key),
            },
            deliveries: e.counts,
            destinations: e
                .destinations
                .iter()
                .map(|d| Destination {
                    subscription: &d.subscription,
                    status: d.status,
                    attempts: d.attempts,
                })
                .collect(),
        }
    }
}

/// A page of events, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventPage<'a> {
    events: Vec<EventSummary<'a>>,
    /// The next page's `cursor`; null on the last page.
    next_cursor: Option<&'a str>,
}

impl<'a> EventPage<'a> {
    pub(crate) fn of(page: &'a ports::EventPage) -> Self {
        Self {
            events: page.events.iter().map(EventSummary::of).collect(),
            next_cursor: page.next_cursor.as_deref(),
        }
    }
}

/// The first `max` bytes of `s`, cut on a character boundary.
pub(crate) fn preview(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub(crate) struct Attempt<'a> {
    attempt: u32,
    at: Timestamp,
    status_code: Option<u16>,
    latency_ms: u32,
    error: Option<&'a str>,
    /// The start of the response body (at most 512 bytes).
    response: Option<&'a str>,
    next_attempt_at: Option<Timestamp>,
}

impl<'a> Attempt<'a> {
    fn of(a: &'a crate::model::Attempt) -> Self {
        Self {
            attempt: a.attempt,
            at: Timestamp::ms(a.started_at_ms),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error.as_deref(),
            response: response_preview(a),
            next_attempt_at: a.next_attempt_at_ms.map(Timestamp::ms),
        }
    }
}

fn response_preview(a: &crate::model::Attempt) -> Option<&str> {
    a.response_snippet
        .as_deref()
        .map(|s| preview(s, RESPONSE_PREVIEW_BYTES))
}

/// The last attempt of a delivery.
#[derive(Serialize, ToSchema)]
pub(crate) struct LastAttempt<'a> {
    at: Timestamp,
    status_code: Option<u16>,
    latency_ms: u32,
    error: Option<&'a str>,
    response: Option<&'a str>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AttemptCounts {
    total: usize,
    succeeded: usize,
    failed: usize,
}

/// A delivery to one subscription: its state and its attempt log.
#[derive(Serialize, ToSchema)]
pub(crate) struct Delivery<'a> {
    subscription: &'a str,
    status: DeliveryStatus,
    attempts: AttemptCounts,
    last_attempt: Option<LastAttempt<'a>>,
    next_attempt_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
    attempt_log: Vec<Attempt<'a>>,
}

impl<'a> Delivery<'a> {
    fn of(
        subscription: &'a str,
        row: Option<&'a DeliveryRecord>,
        attempts: &[&'a crate::model::Attempt],
    ) -> Self {
        let succeeded = attempts
            .iter()
            .filter(|a| a.status_code.is_some_and(|c| (200..300).contains(&c)))
            .count();
        let last_attempt = attempts.last().map(|a| LastAttempt {
            at: Timestamp::ms(a.started_at_ms),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error.as_deref(),
            response: response_preview(a),
        });
        Self {
            subscription,
            status: row.map_or(DeliveryStatus::Pending, |d| d.status),
            attempts: AttemptCounts {
                total: attempts.len(),
                succeeded,
                failed: attempts.len() - succeeded,
            },
            last_attempt,
            next_attempt_at: row.and_then(|d| d.next_attempt_at_ms).map(Timestamp::ms),
            updated_at: row.map(|d| Timestamp::ms(d.updated_at_ms)),
            attempt_log: attempts.iter().map(|a| Attempt::of(a)).collect(),
        }
    }
}

/// An event with its headers, body and, per destination, the delivery
/// state and the attempt log.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventDetail<'a> {
    #[serde(flatten)]
    base: EventBase<'a>,
    content_type: Option<&'a str>,
    /// `[name, value]` pairs; credentials removed.
    #[schema(value_type = Vec<(String, String)>)]
    headers: &'a Headers,
    body: String,
    body_encoding: BodyEncoding,
    /// The subscriptions it was routed to; null until routed.
    routed: Option<&'a [String]>,
    /// Its replays, oldest first.
    replays: Vec<String>,
    deliveries: Vec<Delivery<'a>>,
}

impl<'a> EventDetail<'a> {
    pub(crate) fn of(r: &'a EventRecord) -> Self {
        let e = &r.event;
        let (body, body_encoding) = match std::str::from_utf8(&e.body) {
            Ok(text) => (text.to_owned(), BodyEncoding::Utf8),
            Err(_) => (STANDARD.encode(&e.body), BodyEncoding::Base64),
        };
        // Per subscription: the delivery row and its attempts (a row may be
        // missing for an attempt logged after a purge race; show both anyway).
        let mut per: BTreeMap<&str, (Option<&DeliveryRecord>, Vec<&crate::model::Attempt>)> =
            BTreeMap::new();
        for d in &r.deliveries {
            per.entry(&d.subscription).or_default().0 = Some(d);
        }
        for a in &r.attempts {
            per.entry(&a.subscription).or_default().1.push(a);
        }
        Self {
            base: EventBase {
                id: key(&e.key()),
                source: &e.source,
                event_id: &e.id,
                event_type: &e.event_type,
                received_at: Timestamp::ms(e.received_at_ms),
                expires_at: Timestamp::ms(e.expires_at.saturating_mul(1000)),
                status: r.status,
                replay_of: r.replay_of.as_ref().map(key),
            },
            content_type: e.content_type.as_deref(),
            headers: &e.headers,
            body,
            body_encoding,
            routed: r.routed.as_deref(),
            replays: r.replays.iter().map(key).collect(),
            deliveries: per
                .into_iter()
                .map(|(sub, (row, attempts))| Delivery::of(sub, row, &attempts))
                .collect(),
        }
    }
}

/// A replay, queued.
#[derive(Serialize, ToSchema)]
pub(crate) struct Replay {
    /// The replay's own event id: `{source}#{original}#replay-{n}`.
    id: String,
    replay_of: String,
    subscriptions: Vec<String>,
}

impl Replay {
    pub(crate) fn new(replay: &EventKey, original: &EventKey, subscriptions: Vec<String>) -> Self {
        Self {
            id: key(replay),
            replay_of: key(original),
            subscriptions,
        }
    }
}

/// What a bulk replay or a redrive did (or, in a dry run, would do).
#[derive(Serialize, ToSchema)]
pub(crate) struct BulkResult {
    dry_run: bool,
    /// Deliveries replayed (bulk replay).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    replayed: Option<usize>,
    /// Deliveries replayed (redrive).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    redriven: Option<usize>,
    replays: Vec<ReplayItem>,
    skipped: Vec<Skipped>,
    /// The limit was reached: call again for the rest (while something was
    /// replayed; skipped entries come back every time).
    more: bool,
}

/// Which count a [`BulkResult`] carries.
pub(crate) enum BulkKind {
    Replay,
    Redrive,
}

impl BulkResult {
    pub(crate) fn new(
        kind: BulkKind,
        dry_run: bool,
        count: usize,
        replays: Vec<ReplayItem>,
        skipped: Vec<Skipped>,
        more: bool,
    ) -> Self {
        let (replayed, redriven) = match kind {
            BulkKind::Replay => (Some(count), None),
            BulkKind::Redrive => (None, Some(count)),
        };
        Self {
            dry_run,
            replayed,
            redriven,
            replays,
            skipped,
            more,
        }
    }
}

/// One replay of a bulk replay or redrive.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReplayItem {
    /// The replay's id; null in a dry run.
    id: Option<String>,
    event: String,
    subscriptions: Vec<String>,
}

impl ReplayItem {
    pub(crate) fn new(
        replay: Option<&EventKey>,
        event: &EventKey,
        subscriptions: Vec<String>,
    ) -> Self {
        Self {
            id: replay.map(key),
            event: key(event),
            subscriptions,
        }
    }
}

/// A delivery left out, and why.
#[derive(Serialize, ToSchema)]
pub(crate) struct Skipped {
    event: String,
    subscription: String,
    reason: String,
    /// Redrive: the dead letter left in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    dead_letter: Option<String>,
}

impl Skipped {
    pub(crate) fn new(event: &EventKey, subscription: &str, reason: &str) -> Self {
        Self {
            event: key(event),
            subscription: subscription.to_owned(),
            reason: reason.to_owned(),
            dead_letter: None,
        }
    }

    pub(crate) fn of(c: &ReplayCandidate, reason: &str) -> Self {
        Self::new(&c.event, &c.subscription, reason)
    }

    pub(crate) fn dead_letter(mut self, id: &str) -> Self {
        self.dead_letter = Some(id.to_owned());
        self
    }
}

/// A delivery that failed for good.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeadLetter<'a> {
    id: &'a str,
    /// `{source}#{event id}`.
    event: String,
    source: &'a str,
    event_id: &'a str,
    subscription: &'a str,
    reason: &'a str,
    receive_count: u32,
    at: Timestamp,
}

impl<'a> DeadLetter<'a> {
    fn of(d: &'a DeadLetterRecord) -> Self {
        Self {
            id: &d.id,
            event: key(&d.task.event_key()),
            source: &d.task.source,
            event_id: &d.task.event_id,
            subscription: &d.task.subscription,
            reason: &d.reason,
            receive_count: d.receive_count,
            at: Timestamp::ms(d.at_ms),
        }
    }
}

/// A page of dead letters, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeadLetterPage<'a> {
    dead_letters: Vec<DeadLetter<'a>>,
    /// The next page's `cursor`; null on the last page.
    next_cursor: Option<&'a str>,
}

impl<'a> DeadLetterPage<'a> {
    pub(crate) fn of(page: &'a ports::DeadLetterPage) -> Self {
        Self {
            dead_letters: page.dead_letters.iter().map(DeadLetter::of).collect(),
            next_cursor: page.next_cursor.as_deref(),
        }
    }
}

/// Whether a captured request verifies against a source, and if not why.
#[derive(Serialize, ToSchema)]
pub(crate) struct VerifyResult {
    verified: bool,
    /// When verified: the id the event would have.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    event_id: Option<String>,
    /// When verified: its event type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    event_type: Option<String>,
    /// When verified: a provider handshake, answered without an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    handshake: Option<bool>,
    /// When not: the code a webhook would get (`missing_signature`,
    /// `invalid_signature`, `timestamp_out_of_window`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    error: Option<&'static str>,
    /// When not: why, naming the header at fault; never a secret or an
    /// expected signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<String>,
}

impl VerifyResult {
    pub(crate) fn verified(event_id: String, event_type: String, handshake: bool) -> Self {
        Self {
            verified: true,
            event_id: Some(event_id),
            event_type: Some(event_type),
            handshake: Some(handshake),
            error: None,
            reason: None,
        }
    }

    pub(crate) fn refused(error: &'static str, reason: String) -> Self {
        Self {
            verified: false,
            event_id: None,
            event_type: None,
            handshake: None,
            error: Some(error),
            reason: Some(reason),
        }
    }
}
