//! Payload filters: a subscription's optional `filter`, a minijinja
//! expression over the event, such as
//! `payload.action == "opened" and not payload.pull_request.draft`.
//!
//! It sees `payload` (the body parsed as JSON; none if it is not JSON),
//! `headers` (by lower-case name, credentials removed) and `event`
//! (`type`, `source`, `id`). A missing field is undefined, which is false
//! and compares unequal to everything, so a filter on a field some events
//! lack needs no guard. Filters compile when the config loads; a filter
//! that fails on one event (a type error, fuel run out) does not match it.
//! Like templates, the engine has no loader, and fuel bounds each check.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, Expression, UndefinedBehavior, Value};
use serde::Serialize;

use crate::model::Event;

/// Fuel for one check: far more than an expression over a payload needs.
const FUEL: u64 = 10_000;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // Webhook payloads leave fields out: a missing one is undefined, not an error.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
});

/// Why a filter does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("filter is empty")]
    Empty,
    #[error("filter does not compile: {0}")]
    Compile(String),
}

/// A compiled filter, shared by every routing of its subscription.
pub struct PayloadFilter {
    expr: Expression<'static, 'static>,
}

impl std::fmt::Debug for PayloadFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadFilter")
    }
}

impl PayloadFilter {
    /// Compile `source`. A name that does not exist (a filter, a test, a
    /// function, a method of `event`'s strings) is found here too, by one check against an empty event:
    /// it would otherwise fail on every event, quietly.
    pub fn compile(source: &str) -> Result<Self, FilterError> {
        if source.trim().is_empty() {
            return Err(FilterError::Empty);
        }
        let expr = ENV
            .compile_expression_owned(source.to_owned())
            .map_err(|e| FilterError::Compile(e.to_string()))?;
        let filter = Self { expr };
        match filter.expr.eval(FilterInput::new(None).0) {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnknownFilter
                        | ErrorKind::UnknownTest
                        | ErrorKind::UnknownFunction
                        | ErrorKind::UnknownMethod
                ) =>
            {
                Err(FilterError::Compile(e.to_string()))
            }
            _ => Ok(filter),
        }
    }

    /// Whether the event passes. An error is a non-match.
    pub fn matches(&self, input: &FilterInput) -> Result<bool, String> {
        self.expr
            .eval(input.0.clone())
            .map(|v| v.is_true())
            .map_err(|e| e.to_string())
    }
}

/// What a filter sees of one event, built once and shared by every
/// filter the event meets.
#[derive(Debug, Clone)]
pub struct FilterInput(Value);

#[derive(Serialize, Default)]
struct Context<'a> {
    event: EventFacts<'a>,
    payload: Option<serde_json::Value>,
    headers: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize, Default)]
struct EventFacts<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    source: &'a str,
    id: &'a str,
}

impl FilterInput {
    /// The input for `event`; an event that is gone has no payload,
    /// headers or facts, so only a filter that expects none passes it.
    pub fn new(event: Option<&Event>) -> Self {
        let context = event.map_or_else(Context::default, |event| Context {
            event: EventFacts {
                event_type: &event.event_type,
                source: &event.source,
                id: &event.id,
            },
            payload: serde_json::from_slice(&event.body).ok(),
            headers: event
                .headers
                .0
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
                .collect(),
        });
        Self(Value::from(Serde(context)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Headers;

    fn event(event_type: &str, body: &str) -> Event {
        Event {
            source: "github".into(),
            id: "d-1".into(),
            event_type: event_type.into(),
            received_at_ms: 0,
            expires_at: 0,
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
            body_hash: String::new(),
            content_type: Some("application/json".into()),
            headers: Headers::from_pairs(&[("X-GitHub-Event", event_type)]),
        }
    }

    fn check(filter: &str, e: &Event) -> Result<bool, String> {
        PayloadFilter::compile(filter)
            .unwrap()
            .matches(&FilterInput::new(Some(e)))
    }

    const OPENED_DRAFT: &str =
        r#"{"action":"opened","pull_request":{"draft":true,"additions":12}}"#;
    const OPENED: &str = r#"{"action":"opened","pull_request":{"draft":false,"additions":12}}"#;
    const CLOSED: &str = r#"{"action":"closed","pull_request":{"draft":false}}"#;

    #[test]
    fn matching_and_non_matching_payloads() {
        let f = r#"payload.action == "opened" and not payload.pull_request.draft"#;
        assert_eq!(check(f, &event("pull_request", OPENED)), Ok(true));
        assert_eq!(check(f, &event("pull_request", OPENED_DRAFT)), Ok(false));
        assert_eq!(check(f, &event("pull_request", CLOSED)), Ok(false));
        assert_eq!(
            check(
                "payload.pull_request.additions > 10",
                &event("pull_request", OPENED)
            ),
            Ok(true)
        );
    }

    #[test]
    fn event_facts_and_headers_are_visible() {
        let e = event("push", "{}");
        assert_eq!(check(r#"event.type == "push""#, &e), Ok(true));
        assert_eq!(check(r#"event.source == "github""#, &e), Ok(true));
        assert_eq!(check(r#"event.id == "d-1""#, &e), Ok(true));
        assert_eq!(
            check(r#"headers["x-github-event"] == "push""#, &e),
            Ok(true)
        );
        assert_eq!(check(r#"event.type is startingwith("pu")"#, &e), Ok(true));
        assert_eq!(check(r#""x-github-event" in headers"#, &e), Ok(true));
    }

    #[test]
    fn a_missing_field_is_undefined_and_false() {
        let e = event("push", r#"{"ref":"refs/heads/main"}"#);
        assert_eq!(check("payload.pull_request.draft", &e), Ok(false));
        assert_eq!(check("not payload.pull_request.draft", &e), Ok(true));
        assert_eq!(check(r#"payload.nothing == "x""#, &e), Ok(false));
        assert_eq!(check("payload.nothing is defined", &e), Ok(false));
    }

    #[test]
    fn a_body_that_is_not_json_has_no_payload() {
        let e = event("push", "token=x&text=hello");
        assert_eq!(check("payload is none", &e), Ok(true));
        assert_eq!(check(r#"payload.text == "hello""#, &e), Ok(false));
    }

    #[test]
    fn a_type_error_is_reported_and_does_not_match() {
        let e = event("pull_request", OPENED);
        let err = check(r#"payload.action + 1 > 2"#, &e).unwrap_err();
        assert!(err.contains("invalid operation"), "{err}");
        // Fuel (or range's own cap) bounds a runaway check.
        assert!(check("range(1000000) | list | length > 0", &e).is_err());
    }

    #[test]
    fn compile_errors_are_found_at_load() {
        assert_eq!(
            PayloadFilter::compile("  ").unwrap_err(),
            FilterError::Empty
        );
        let err = PayloadFilter::compile("payload.action ==").unwrap_err();
        assert!(matches!(err, FilterError::Compile(_)), "{err:?}");
        // An unknown filter or test would fail on every event.
        let err = PayloadFilter::compile("payload.action | shout").unwrap_err();
        assert!(err.to_string().contains("unknown filter"), "{err}");
        let err = PayloadFilter::compile("payload is spicy").unwrap_err();
        assert!(err.to_string().contains("unknown test"), "{err}");
        // Python's string methods are not there (use `is startingwith`).
        let err = PayloadFilter::compile(r#"event.type.startswith("pull")"#).unwrap_err();
        assert!(err.to_string().contains("unknown method"), "{err}");
    }
}
