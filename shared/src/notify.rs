//! Operational notifications: sluice's own events (a delivery exhausted,
//! a subscription disabled, a circuit opened or closed, a poller failing)
//! committed as events of the built-in source [`SOURCE`], so they go
//! through the normal pipeline (dedup, routing, retries, the dead-letter
//! queue, the log) to whatever subscriptions take `source = "sluice"`,
//! typically a chat format.
//!
//! The rate limit is the commit's dedup: a notification's event id is
//! deterministic, so its repeats within a window are duplicates and are
//! dropped. Subscription-scoped kinds get one id per subscription, kind
//! and [`WINDOW`]; `poller.failing` one per failing streak (it is emitted
//! only on the streak's [`POLLER_FAILING_AFTER`]th failure). The
//! receiving subscription's own `rate_limit` (a chat format's platform
//! limit by default) paces the rest.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::json;

use crate::admin::ports::{ConfigEntry, ConfigItem};
use crate::config::{DEFAULT_DEDUPE_WINDOW, Registry};
use crate::model::{Event, Headers};
use crate::pipeline::receive::body_fingerprint;
use crate::store::{Commit, EventStore};
use crate::time::to_ms;

/// The built-in source of sluice's own events. No configured source or
/// poller may take this id; a subscription names it as its `source`.
pub const SOURCE: &str = "sluice";

/// A subscription-scoped kind is notified at most once per subscription
/// per window.
pub const WINDOW: Duration = Duration::from_secs(600);

/// How long a notification is kept (its dedup window).
pub const RETENTION: Duration = DEFAULT_DEDUPE_WINDOW;

/// A poller is failing after this many failed polls in a row.
pub const POLLER_FAILING_AFTER: u32 = 3;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A delivery used up its attempts (or failed for good) and was
    /// dead-lettered.
    DeliveryExhausted,
    /// A subscription was disabled: its destination answered 410 Gone, or
    /// its circuit stayed open past the breaker's `disable_after`.
    SubscriptionDisabled,
    /// A subscription's circuit breaker opened: its tasks are held.
    CircuitOpened,
    /// The circuit closed again: held tasks go.
    CircuitClosed,
    /// A poller failed [`POLLER_FAILING_AFTER`] polls in a row.
    PollerFailing,
}

impl Kind {
    pub const ALL: [Self; 5] = [
        Self::DeliveryExhausted,
        Self::SubscriptionDisabled,
        Self::CircuitOpened,
        Self::CircuitClosed,
        Self::PollerFailing,
    ];

    /// The event type: what a subscription's `events` globs match.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeliveryExhausted => "delivery.exhausted",
            Self::SubscriptionDisabled => "subscription.disabled",
            Self::CircuitOpened => "circuit.opened",
            Self::CircuitClosed => "circuit.closed",
            Self::PollerFailing => "poller.failing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What the notification is about: a subscription's delivery or
/// destination, or a poller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Subscription(String),
    Poller(String),
}

/// One of sluice's own events, before it is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub kind: Kind,
    pub subject: Subject,
    /// The delivery's event key (`{source}#{id}`), when there is one.
    pub event: Option<String>,
    /// Why, in a few words: the last attempt's outcome, the poll's error.
    pub reason: String,
    pub at: SystemTime,
}

impl Notification {
    pub fn subscription(kind: Kind, subscription: &str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            subject: Subject::Subscription(subscription.to_owned()),
            event: None,
            reason: reason.into(),
            at: SystemTime::now(),
        }
    }

    pub fn poller(poller: &str, reason: impl Into<String>, at: SystemTime) -> Self {
        Self {
            kind: Kind::PollerFailing,
            subject: Subject::Poller(poller.to_owned()),
            event: None,
            reason: reason.into(),
            at,
        }
    }

    pub fn with_event(mut self, key: impl Into<String>) -> Self {
        self.event = Some(key.into());
        self
    }

    /// The event id, which is the rate limit: a subscription's kind once
    /// per [`WINDOW`] (`delivery.exhausted:orders:2969568`, the window's
    /// number since the epoch), a poller's streak once (the time of the
    /// failure that made it failing).
    pub fn id(&self) -> String {
        let at_ms = to_ms(self.at);
        match &self.subject {
            Subject::Subscription(sub) => {
                let window = at_ms.div_euclid(WINDOW.as_millis() as i64);
                format!("{}:{sub}:{window}", self.kind.as_str())
            }
            Subject::Poller(poller) => format!("{}:{poller}:{at_ms}", self.kind.as_str()),
        }
    }

    /// The readable sentence the body carries as `text`.
    pub fn text(&self) -> String {
        let event = self.event.as_deref().unwrap_or("?");
        let window = humantime::format_duration(WINDOW);
        match (&self.subject, self.kind) {
            (Subject::Subscription(sub), Kind::DeliveryExhausted) => format!(
                "Delivery of event {event} to subscription {sub} failed for good and was \
                 dead-lettered: {}. Other deliveries to {sub} that fail in the same {window} \
                 are not notified again: list them with `sluice dlq list --subscription {sub}`.",
                self.reason
            ),
            (Subject::Subscription(sub), Kind::SubscriptionDisabled) => format!(
                "Subscription {sub} was disabled: {}. Nothing is sent to it until it is \
                 enabled again (`sluice subscriptions enable {sub}`); its waiting deliveries \
                 go then, and any that failed for good are in \
                 `sluice dlq list --subscription {sub}`.",
                self.reason
            ),
            (Subject::Subscription(sub), Kind::CircuitOpened) => format!(
                "The circuit of subscription {sub} opened: {}. Its deliveries are held until \
                 a probe succeeds.",
                self.reason
            ),
            (Subject::Subscription(sub), Kind::CircuitClosed) => format!(
                "The circuit of subscription {sub} closed: {}. Held deliveries go again.",
                self.reason
            ),
            (subject, kind) => {
                let (what, id) = match subject {
                    Subject::Subscription(s) => ("Subscription", s),
                    Subject::Poller(p) => ("Poller", p),
                };
                if kind == Kind::PollerFailing {
                    format!(
                        "{what} {id} failed {POLLER_FAILING_AFTER} polls in a row: {}. It keeps \
                         polling, backing off; `sluice pollers show {id}` shows its state. This \
                         is notified once per failing streak.",
                        self.reason
                    )
                } else {
                    format!("{what} {id}: {} ({})", kind.as_str(), self.reason)
                }
            }
        }
    }

    /// The JSON body: `type`, `subscription` or `poller`, `event`,
    /// `reason`, `at` (RFC 3339) and `text`.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "type": self.kind.as_str(),
            "reason": self.reason,
            "at": humantime::format_rfc3339_seconds(self.at).to_string(),
            "text": self.text(),
        });
        match &self.subject {
            Subject::Subscription(s) => body["subscription"] = json!(s),
            Subject::Poller(p) => body["poller"] = json!(p),
        }
        if let Some(e) = &self.event {
            body["event"] = json!(e);
        }
        body
    }

    /// The event to commit.
    pub fn event(&self) -> Event {
        let body = Bytes::from(self.body().to_string());
        let received_at_ms = to_ms(self.at);
        Event {
            source: SOURCE.to_owned(),
            id: self.id(),
            event_type: self.kind.as_str().to_owned(),
            received_at_ms,
            expires_at: received_at_ms / 1000 + RETENTION.as_secs() as i64,
            body_hash: body_fingerprint(&body),
            body,
            content_type: Some("application/json".to_owned()),
            headers: Headers::default(),
        }
    }
}

/// The loop guard: a delivery to a subscription of [`SOURCE`] (a
/// notification's own delivery) never notifies.
pub fn about_notifications(event_source: &str) -> bool {
    event_source == SOURCE
}

/// Whether anyone takes sluice's events: some enabled subscription has
/// `source = "sluice"`. Nothing is committed otherwise. (The registry's
/// routing views are in memory on both backends.)
pub async fn wanted(registry: &dyn Registry) -> bool {
    match registry.subscriptions_of(SOURCE).await {
        Ok(subs) => subs.iter().any(|s| s.is_enabled()),
        Err(e) => {
            tracing::warn!(error = %e, "notifications: the config is unavailable; none sent");
            false
        }
    }
}

/// [`wanted`], read from config entries (the poll function lists them).
pub fn subscribed(entries: &[ConfigEntry]) -> bool {
    entries
        .iter()
        .any(|e| e.enabled && matches!(&e.item, ConfigItem::Subscription(s) if s.source == SOURCE))
}

/// Commit `n` through the normal commit. Never fails: a notification that
/// cannot be committed is logged, and whatever caused it goes on.
pub async fn commit(store: &dyn EventStore, n: &Notification) {
    let event = n.event();
    match store.commit(&event).await {
        Ok(Commit::Accepted) => {
            tracing::info!(notification = n.kind.as_str(), event_id = %event.id, "notification committed");
        }
        Ok(Commit::Duplicate { .. }) => {
            tracing::debug!(notification = n.kind.as_str(), event_id = %event.id, "notification already sent in this window; dropped");
        }
        Err(e) => {
            tracing::warn!(notification = n.kind.as_str(), event_id = %event.id, error = %e, "notification could not be committed");
        }
    }
}

/// [`commit`] if [`wanted`].
pub async fn notify(registry: &dyn Registry, store: &dyn EventStore, n: &Notification) {
    if wanted(registry).await {
        commit(store, n).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_ms;

    fn exhausted(sub: &str, at_ms: i64) -> Notification {
        Notification {
            at: from_ms(at_ms),
            ..Notification::subscription(
                Kind::DeliveryExhausted,
                sub,
                "attempts exhausted: HTTP 500",
            )
        }
        .with_event("gh#1")
    }

    #[test]
    fn a_subscription_kind_has_one_id_per_subscription_and_ten_minute_window() {
        let window = WINDOW.as_millis() as i64;
        let start = 2_000 * window;
        let a = exhausted("orders", start);
        assert_eq!(a.id(), "delivery.exhausted:orders:2000");
        // The same window: the same id, so the commit drops the repeat.
        assert_eq!(exhausted("orders", start + window - 1).id(), a.id());
        // The next window, another subscription, another kind: new ids.
        assert_eq!(
            exhausted("orders", start + window).id(),
            "delivery.exhausted:orders:2001"
        );
        assert_ne!(exhausted("billing", start).id(), a.id());
        let opened = Notification {
            at: from_ms(start),
            ..Notification::subscription(Kind::CircuitOpened, "orders", "5 failures")
        };
        assert_eq!(opened.id(), "circuit.opened:orders:2000");
        let failing = Notification::poller("jira", "HTTP 500", from_ms(start + 7));
        assert_eq!(failing.id(), format!("poller.failing:jira:{}", start + 7));
    }

    #[test]
    fn the_body_names_the_subject_event_reason_and_time() {
        let n = exhausted("orders", 1_764_900_000_000);
        let event = n.event();
        assert_eq!(event.source, "sluice");
        assert_eq!(event.event_type, "delivery.exhausted");
        assert_eq!(event.id, n.id());
        let body: serde_json::Value = serde_json::from_slice(&event.body).unwrap();
        assert_eq!(body["type"], "delivery.exhausted");
        assert_eq!(body["subscription"], "orders");
        assert_eq!(body["event"], "gh#1");
        assert_eq!(body["reason"], "attempts exhausted: HTTP 500");
        assert_eq!(body["at"], "2025-12-05T02:00:00Z");
        let text = body["text"].as_str().unwrap();
        for part in ["gh#1", "orders", "HTTP 500", "10m", "sluice dlq list"] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        let failing = Notification::poller("jira", "HTTP 500", from_ms(0)).body();
        assert_eq!(failing["poller"], "jira");
        assert!(failing.get("subscription").is_none());
    }

    /// Each kind reads well by default: a titled, toned summary naming
    /// the subject, the reason and the event, in every chat format.
    #[test]
    fn each_kind_has_a_readable_summary_in_the_chat_formats() {
        use crate::format::summary::{Tone, summarize};
        use crate::format::{Body, Format, render};
        let at = from_ms(1_764_900_000_000);
        let cases = [
            (
                Notification {
                    at,
                    ..exhausted("orders", 0)
                },
                "Delivery to orders failed",
                Tone::Bad,
            ),
            (
                Notification {
                    at,
                    ..Notification::subscription(Kind::SubscriptionDisabled, "orders", "410")
                }
                .with_event("gh#1"),
                "Subscription orders disabled",
                Tone::Bad,
            ),
            (
                Notification {
                    at,
                    ..Notification::subscription(Kind::CircuitOpened, "orders", "5 failures")
                }
                .with_event("gh#1"),
                "Circuit of orders opened",
                Tone::Bad,
            ),
            (
                Notification {
                    at,
                    ..Notification::subscription(Kind::CircuitClosed, "orders", "HTTP 200")
                },
                "Circuit of orders closed",
                Tone::Good,
            ),
            (
                Notification::poller("jira", "HTTP 500", at),
                "Poller jira is failing",
                Tone::Bad,
            ),
        ];
        for (n, title, tone) in cases {
            let event = n.event();
            let payload = serde_json::from_slice(&event.body).ok();
            let s = summarize(&event, payload.as_ref());
            assert_eq!(s.title, title);
            assert_eq!(s.tone, tone, "{title}");
            assert_eq!(s.provider, "sluice");
            assert_eq!(s.received_at, "2025-12-05T02:00:00Z");
            let fields: Vec<_> = s.fields.iter().map(|f| f.name.as_str()).collect();
            assert!(fields.contains(&"Reason"), "{fields:?}");
            assert!(s.text.as_deref().is_some_and(|t| t.contains(&n.reason)));
            for format in [
                Format::Slack,
                Format::Discord,
                Format::Teams,
                Format::TeamsMessagecard,
            ] {
                let Body::Json(json) = render(format, None, &event).unwrap() else {
                    panic!("{format:?} renders JSON");
                };
                let text = String::from_utf8(json.to_vec()).unwrap();
                assert!(text.contains(title), "{format:?}: {text}");
                if n.event.is_some() {
                    assert!(text.contains("gh#1"), "{format:?}: {text}");
                }
            }
        }
    }

    #[test]
    fn kinds_round_trip_and_the_loop_guard_is_the_source() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert!(about_notifications("sluice"));
        assert!(!about_notifications("github"));
    }

    const SUB: &str = r#"
        [[sources]]
        id = "gh"
        provider = "github"
        secrets = ["env:GH"]
        [[subscriptions]]
        id = "ops"
        source = "sluice"
        events = ["delivery.*", "circuit.*"]
        url = "https://hooks.slack.com/services/T/B/X"
        format = "slack"
    "#;

    /// A subscription takes sluice's events by naming the built-in
    /// source; no source or poller may take its id.
    #[test]
    fn sluice_is_a_built_in_source_whose_id_is_reserved() {
        use crate::config::ConfigFile;
        ConfigFile::parse(SUB).unwrap();
        let source = SUB.replace("id = \"gh\"", "id = \"sluice\"");
        let err = ConfigFile::parse(&source).unwrap_err().to_string();
        assert!(err.contains("source id \"sluice\" is reserved"), "{err}");
        let poller =
            format!("{SUB}\n[[pollers]]\nid = \"sluice\"\nurl = \"https://example.com/items\"\n");
        let err = ConfigFile::parse(&poller).unwrap_err().to_string();
        assert!(err.contains("poller id \"sluice\" is reserved"), "{err}");
        // Another undefined source is still refused, by name.
        let typo = SUB.replace("source = \"sluice\"", "source = \"sluicee\"");
        let err = ConfigFile::parse(&typo).unwrap_err().to_string();
        assert!(
            err.contains("subscription \"ops\": source \"sluicee\" is not defined"),
            "{err}"
        );
    }
}
