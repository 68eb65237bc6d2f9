//! The JSON shapes the admin API answers with.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::input::{rfc3339, rfc3339_time};
use super::ports::{
    ConfigEntry, DeadLetterRecord, DeliveryCounts, EventRecord, EventSummary, ReplayCandidate,
};
use crate::config::{SourceConfig, SubscriptionConfig};
use crate::gate::{Circuit, Controls, GateState};
use crate::model::{Attempt, EventKey};
use crate::poll::PollerConfig;

/// Longest response piece shown per attempt.
pub(crate) const RESPONSE_PREVIEW_BYTES: usize = 512;

fn meta(mut v: Value, entry: &ConfigEntry) -> Value {
    v["enabled"] = json!(entry.enabled);
    v["origin"] = json!(entry.origin.as_str());
    v["created_at"] = json!(rfc3339(entry.created_at_ms));
    v["updated_at"] = json!(rfc3339(entry.updated_at_ms));
    v
}

/// A source: its config (secret references, never values) and state.
pub(crate) fn source(s: &SourceConfig, entry: &ConfigEntry) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({ "id": s.id }));
    v["path"] = json!(format!("/hooks/{}", s.id));
    meta(v, entry)
}

/// A poller: its config (header secrets as references, never values;
/// literal credentials are refused on the way in).
pub(crate) fn poller(p: &PollerConfig, entry: &ConfigEntry) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or_else(|_| json!({ "id": p.id }));
    // What the poller remembers (its last poll and result, its cursor)
    // goes here; null until poller state is shown.
    v["state"] = Value::Null;
    meta(v, entry)
}

/// A subscription. Only whether it has a signing secret is shown.
pub(crate) fn subscription(s: &SubscriptionConfig, entry: &ConfigEntry) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({ "id": s.id }));
    if let Some(obj) = v.as_object_mut() {
        obj.remove("signing_secret");
        obj.remove("previous_signing_secret");
    }
    v["has_signing_secret"] = json!(s.signing_secret.is_some());
    let previous_until = s
        .previous_signing_secret
        .as_ref()
        .filter(|p| p.until > SystemTime::now())
        .map(|p| rfc3339_time(p.until));
    v["previous_secret_until"] = json!(previous_until);
    meta(v, entry)
}

/// A subscription's delivery controls in effect (its format's default
/// rate included) and its gate's state: the circuit, and the sends out now.
pub(crate) fn controls(c: &Controls, state: Option<&GateState>) -> Value {
    let default = GateState::default();
    let state = state.unwrap_or(&default);
    let now = crate::time::now_ms();
    let circuit = &state.circuit;
    let mut circuit_view = json!({
        "state": circuit.name(),
        "consecutive_failures": circuit.failures(),
    });
    match circuit {
        Circuit::Closed { .. } => {}
        Circuit::Open {
            since_ms,
            probe_at_ms,
            opened,
            ..
        } => {
            circuit_view["opened_at"] = json!(rfc3339(*since_ms));
            circuit_view["next_probe_at"] = json!(rfc3339(*probe_at_ms));
            circuit_view["failed_probes"] = json!(opened.saturating_sub(1));
        }
        Circuit::Probing {
            since_ms, opened, ..
        } => {
            circuit_view["opened_at"] = json!(rfc3339(*since_ms));
            circuit_view["failed_probes"] = json!(opened.saturating_sub(1));
        }
    }
    json!({
        "rate_limit": c.rate.map(|r| r.to_string()),
        "max_in_flight": c.max_in_flight,
        "circuit_breaker": c.breaker.enabled().then_some(c.breaker),
        "in_flight": state.in_flight.iter().filter(|h| h.until_ms > now).count(),
        "circuit": circuit_view,
    })
}

fn counts(c: &DeliveryCounts) -> Value {
    json!({ "pending": c.pending, "delivered": c.delivered, "failed": c.failed })
}

pub(crate) fn key(k: &EventKey) -> Value {
    json!(k.to_string())
}

pub(crate) fn event_summary(e: &EventSummary) -> Value {
    json!({
        "id": key(&e.key),
        "source": e.key.source,
        "event_id": e.key.id,
        "type": e.event_type,
        "received_at": rfc3339(e.received_at_ms),
        "expires_at": rfc3339(e.expires_at.saturating_mul(1000)),
        "status": e.status.as_str(),
        "deliveries": counts(&e.counts),
        "destinations": e.destinations.iter().map(|d| json!({
            "subscription": d.subscription,
            "status": d.status.as_str(),
            "attempts": d.attempts,
        })).collect::<Vec<_>>(),
        "replay_of": e.replay_of.as_ref().map(key),
    })
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

fn attempt(a: &Attempt) -> Value {
    json!({
        "attempt": a.attempt,
        "at": rfc3339(a.started_at_ms),
        "status_code": a.status_code,
        "latency_ms": a.latency_ms,
        "error": a.error,
        "response": a.response_snippet.as_deref().map(|s| preview(s, RESPONSE_PREVIEW_BYTES)),
        "next_attempt_at": a.next_attempt_at_ms.map(rfc3339),
    })
}

/// An event with its headers, body and, per destination, the delivery
/// state and the attempt log.
pub(crate) fn event_detail(r: &EventRecord) -> Value {
    let e = &r.event;
    let (body, encoding) = match std::str::from_utf8(&e.body) {
        Ok(text) => (text.to_owned(), "utf8"),
        Err(_) => (STANDARD.encode(&e.body), "base64"),
    };
    // Per subscription: the delivery row and its attempts (a row may be
    // missing for an attempt logged after a purge race; show both anyway).
    let mut per: BTreeMap<&str, (Option<&super::ports::DeliveryRecord>, Vec<&Attempt>)> =
        BTreeMap::new();
    for d in &r.deliveries {
        per.entry(&d.subscription).or_default().0 = Some(d);
    }
    for a in &r.attempts {
        per.entry(&a.subscription).or_default().1.push(a);
    }
    let deliveries: Vec<Value> = per
        .into_iter()
        .map(|(sub, (row, attempts))| {
            let succeeded = attempts
                .iter()
                .filter(|a| a.status_code.is_some_and(|c| (200..300).contains(&c)))
                .count();
            let last = attempts.last().map(|a| {
                json!({
                    "at": rfc3339(a.started_at_ms),
                    "status_code": a.status_code,
                    "latency_ms": a.latency_ms,
                    "error": a.error,
                    "response": a.response_snippet.as_deref().map(|s| preview(s, RESPONSE_PREVIEW_BYTES)),
                })
            });
            json!({
                "subscription": sub,
                "status": row.map(|d| d.status.as_str()).unwrap_or("pending"),
                "attempts": {
                    "total": attempts.len(),
                    "succeeded": succeeded,
                    "failed": attempts.len() - succeeded,
                },
                "last_attempt": last,
                "next_attempt_at": row.and_then(|d| d.next_attempt_at_ms).map(rfc3339),
                "updated_at": row.map(|d| rfc3339(d.updated_at_ms)),
                "attempt_log": attempts.iter().map(|a| attempt(a)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": key(&e.key()),
        "source": e.source,
        "event_id": e.id,
        "type": e.event_type,
        "received_at": rfc3339(e.received_at_ms),
        "expires_at": rfc3339(e.expires_at.saturating_mul(1000)),
        "status": r.status.as_str(),
        "content_type": e.content_type,
        "headers": e.headers,
        "body": body,
        "body_encoding": encoding,
        "routed": r.routed,
        "replay_of": r.replay_of.as_ref().map(key),
        "replays": r.replays.iter().map(key).collect::<Vec<_>>(),
        "deliveries": deliveries,
    })
}

pub(crate) fn dead_letter(d: &DeadLetterRecord) -> Value {
    json!({
        "id": d.id,
        "event": key(&d.task.event_key()),
        "source": d.task.source,
        "event_id": d.task.event_id,
        "subscription": d.task.subscription,
        "reason": d.reason,
        "receive_count": d.receive_count,
        "at": rfc3339(d.at_ms),
    })
}

pub(crate) fn skipped(c: &ReplayCandidate, reason: &str) -> Value {
    json!({ "event": key(&c.event), "subscription": c.subscription, "reason": reason })
}
