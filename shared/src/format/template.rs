//! Subscription templates (minijinja): `template` renders the message text,
//! `payload_template` the whole JSON body.
//!
//! Templates are compiled when the config is loaded, so syntax errors (and
//! unknown filters on paths every render takes) stop the config there. The
//! engine is built without `include`, `import` and `extends` and has no
//! loader, so a template reaches neither the filesystem nor the network;
//! fuel bounds the time and memory of one render.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, escape_formatter};
use serde::Serialize;

use super::summary::{Summary, summarize};
use super::{Format, RenderError, money, slack, truncate};
use crate::model::{Event, Headers};

/// Fuel for one render: about 100,000 instructions or 6 MB, far more than
/// a message needs and far less than a runaway loop wants.
const FUEL: u64 = 100_000;
/// The auto-escape mode of Slack text templates.
const SLACK_ESCAPE: &str = "slack";

/// Which key a template came from, and so what it renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// `template`: the message text, wrapped in the platform's payload.
    Text,
    /// `payload_template`: the whole JSON body.
    Payload,
}

impl TemplateKind {
    pub fn key(self) -> &'static str {
        match self {
            Self::Text => "template",
            Self::Payload => "payload_template",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("set template or payload_template, not both")]
    Both,
    #[error(
        "template needs a chat format (slack, discord, teams, teams_messagecard); use payload_template to reshape a raw delivery"
    )]
    TextNeedsChatFormat,
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{key} does not compile: {message}")]
    Compile { key: &'static str, message: String },
}

/// A compiled template, cheap to clone and shared between deliveries.
#[derive(Clone)]
pub struct Template(Arc<Inner>);

struct Inner {
    env: Environment<'static>,
    kind: TemplateKind,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Template").field(&self.0.kind).finish()
    }
}

impl Template {
    /// The template of a subscription's config, if it has one.
    pub fn for_subscription(
        format: Format,
        template: Option<&str>,
        payload_template: Option<&str>,
    ) -> Result<Option<Self>, TemplateError> {
        match (template, payload_template) {
            (Some(_), Some(_)) => Err(TemplateError::Both),
            (Some(_), None) if format == Format::Raw => Err(TemplateError::TextNeedsChatFormat),
            (Some(src), None) => Self::compile(TemplateKind::Text, format, src).map(Some),
            (None, Some(src)) => Self::compile(TemplateKind::Payload, format, src).map(Some),
            (None, None) => Ok(None),
        }
    }

    pub fn compile(
        kind: TemplateKind,
        format: Format,
        source: &str,
    ) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty(kind.key()));
        }
        let compile_error = |e: minijinja::Error| TemplateError::Compile {
            key: kind.key(),
            message: e.to_string(),
        };
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        // Webhook payloads leave fields out: a missing one is empty, not an error.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        let escape = match (kind, format) {
            (TemplateKind::Payload, _) => AutoEscape::Json,
            (TemplateKind::Text, Format::Slack) => AutoEscape::Custom(Cow::Borrowed(SLACK_ESCAPE)),
            (TemplateKind::Text, _) => AutoEscape::None,
        };
        env.set_auto_escape_callback(move |_| escape.clone());
        env.set_formatter(format_value);
        env.add_filter("truncate", filter_truncate);
        env.add_filter("money", filter_money);
        env.add_filter("first_line", filter_first_line);
        env.add_template_owned(kind.key(), source.to_owned())
            .map_err(compile_error)?;
        let template = Self(Arc::new(Inner { env, kind }));
        template.dry_run().map_err(compile_error)?;
        Ok(template)
    }

    pub fn kind(&self) -> TemplateKind {
        self.0.kind
    }

    /// Render against an event. Errors are the template's (a missing value
    /// used in arithmetic, fuel run out): they will not change on retry.
    pub fn render(
        &self,
        event: &Event,
        payload: Option<&serde_json::Value>,
        summary: &Summary,
    ) -> Result<String, RenderError> {
        let ctx = Context::new(event, payload, summary);
        self.render_value(minijinja::Value::from(Serde(&ctx)))
            .map_err(|e| RenderError::Template(format!("{}: {e}", self.0.kind.key())))
    }

    fn render_value(&self, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
        self.0.env.get_template(self.0.kind.key())?.render(ctx)
    }

    /// Render once against an empty event: a name that does not exist (a
    /// filter, a test, a function) is a config error, not a failed delivery
    /// later. Other errors depend on the data and are left to delivery.
    fn dry_run(&self) -> Result<(), minijinja::Error> {
        let event = Event {
            source: "example".into(),
            id: "example".into(),
            event_type: String::new(),
            received_at_ms: 0,
            expires_at: 0,
            body: bytes::Bytes::from_static(b"{}"),
            body_hash: String::new(),
            content_type: None,
            headers: Headers::default(),
        };
        let payload = serde_json::Value::Object(serde_json::Map::new());
        let summary = summarize(&event, Some(&payload));
        let ctx = Context::new(&event, Some(&payload), &summary);
        match self.render_value(minijinja::Value::from(Serde(&ctx))) {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnknownFilter | ErrorKind::UnknownTest | ErrorKind::UnknownFunction
                ) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }
}

/// What a template sees.
#[derive(Serialize)]
struct Context<'a> {
    event: EventView<'a>,
    /// The body parsed as JSON; none if it is not JSON.
    payload: Option<&'a serde_json::Value>,
    /// The body as text (invalid UTF-8 replaced).
    body: Cow<'a, str>,
    /// Request headers by lower-case name, credentials already removed.
    headers: BTreeMap<&'a str, &'a str>,
    summary: &'a Summary,
}

#[derive(Serialize)]
struct EventView<'a> {
    source: &'a str,
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    received_at: &'a str,
    received_at_ms: i64,
    content_type: Option<&'a str>,
}

impl<'a> Context<'a> {
    fn new(event: &'a Event, payload: Option<&'a serde_json::Value>, summary: &'a Summary) -> Self {
        Self {
            event: EventView {
                source: &event.source,
                id: &event.id,
                event_type: &event.event_type,
                received_at: &summary.received_at,
                received_at_ms: event.received_at_ms,
                content_type: event.content_type.as_deref(),
            },
            payload,
            body: String::from_utf8_lossy(&event.body),
            headers: event.headers.iter().collect(),
            summary,
        }
    }
}

/// Slack text templates escape every value for mrkdwn (`| safe` opts out);
/// text templates print none as nothing rather than "none".
fn format_value(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    match state.auto_escape() {
        AutoEscape::Json => escape_formatter(out, state, value),
        _ if value.is_none() || value.is_undefined() => Ok(()),
        AutoEscape::Custom(name) if name == SLACK_ESCAPE && !value.is_safe() => {
            out.write_str(&slack::escape(&value.to_string()))?;
            Ok(())
        }
        AutoEscape::Custom(_) => {
            write!(out, "{value}")?;
            Ok(())
        }
        _ => escape_formatter(out, state, value),
    }
}

/// A value as text for the filters: none and undefined are empty, not
/// "none".
fn text_of(v: &minijinja::Value) -> Cow<'_, str> {
    if v.is_none() || v.is_undefined() {
        Cow::Borrowed("")
    } else if let Some(s) = v.as_str() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(v.to_string())
    }
}

/// `{{ text | truncate(100) }}`: cut on a character boundary, with an
/// ellipsis.
fn filter_truncate(v: minijinja::Value, length: Option<usize>) -> String {
    truncate::truncate(&text_of(&v), length.unwrap_or(255)).into_owned()
}

/// `{{ message | first_line }}`: the first non-blank line, trimmed.
fn filter_first_line(v: minijinja::Value) -> String {
    truncate::first_line(&text_of(&v)).to_owned()
}

/// `{{ amount | money(currency) }}`: minor units to `20.00 USD`; a missing
/// amount is empty.
fn filter_money(
    amount: minijinja::Value,
    currency: Option<minijinja::Value>,
) -> Result<String, minijinja::Error> {
    if amount.is_none() || amount.is_undefined() {
        return Ok(String::new());
    }
    let minor = i64::try_from(amount)?;
    let currency = currency.as_ref().map(text_of).unwrap_or_default();
    Ok(money::format_minor(minor, &currency))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn event(body: &[u8]) -> Event {
        Event {
            source: "gh".into(),
            id: "d-1".into(),
            event_type: "push".into(),
            received_at_ms: 1_700_000_000_000,
            expires_at: 0,
            body: Bytes::copy_from_slice(body),
            body_hash: String::new(),
            content_type: Some("application/json".into()),
            headers: Headers::from_pairs(&[("x-github-event", "push")]),
        }
    }

    fn render(
        kind: TemplateKind,
        format: Format,
        src: &str,
        body: &[u8],
    ) -> Result<String, String> {
        let t = Template::compile(kind, format, src).map_err(|e| e.to_string())?;
        let e = event(body);
        let payload: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let s = summarize(&e, payload.as_ref());
        t.render(&e, payload.as_ref(), &s)
            .map_err(|e| e.to_string())
    }

    const PUSH: &[u8] = br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/api"},"pusher":{"name":"o<b>"},"amount":2000,"commits":[{"message":"a"},{"message":"b"}]}"#;

    #[test]
    fn text_templates_see_event_payload_headers_and_summary() {
        let out = render(
            TemplateKind::Text,
            Format::Discord,
            "{{ event.source }}/{{ event.type }} {{ payload.repository.full_name }} \
             {{ headers['x-github-event'] }} {{ summary.title }} {{ payload.commits | length }} \
             {{ payload.amount | money('usd') }} [{{ payload.missing }}][{{ payload.missing.deeper }}][{{ none }}]",
            PUSH,
        )
        .unwrap();
        assert_eq!(
            out,
            "gh/push acme/api push acme/api: 2 commits pushed to main by o<b> 2 20.00 USD [][][]"
        );
    }

    #[test]
    fn slack_text_templates_escape_values_but_not_the_template() {
        let out = render(
            TemplateKind::Text,
            Format::Slack,
            "<https://x.test|{{ payload.pusher.name }}> {{ '<!here>' | safe }}",
            PUSH,
        )
        .unwrap();
        assert_eq!(out, "<https://x.test|o&lt;b&gt;> <!here>");
    }

    #[test]
    fn payload_templates_emit_json_values() {
        let out = render(
            TemplateKind::Payload,
            Format::Slack,
            r#"{"text": {{ "Push by " ~ payload.pusher.name }}, "n": {{ payload.commits | length }}, "x": {{ payload.nope }}}"#,
            PUSH,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, json!({"text": "Push by o<b>", "n": 2, "x": null}));
    }

    #[test]
    fn filters_treat_missing_values_as_empty() {
        let out = render(
            TemplateKind::Text,
            Format::Teams,
            "[{{ payload.nul | first_line }}][{{ payload.missing | truncate(3) }}]\
             [{{ payload.missing | money('usd') }}][{{ 1234 | money }}][{{ 12 | truncate }}]",
            br#"{"nul":null}"#,
        )
        .unwrap();
        assert_eq!(out, "[][][][12.34][12]");
        let e = render(
            TemplateKind::Text,
            Format::Teams,
            "{{ 'x' | money('usd') }}",
            b"{}",
        )
        .unwrap_err();
        assert!(e.contains("template:"), "{e}");
    }

    #[test]
    fn filters() {
        let out = render(
            TemplateKind::Text,
            Format::Teams,
            "{{ 'héllo wörld' | truncate(7) }}|{{ 'a\nb' | first_line }}|{{ 500 | money('jpy') }}",
            b"{}",
        )
        .unwrap();
        assert_eq!(out, "héllo…|a|500 JPY");
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = |t: Option<&str>, p: Option<&str>, f: Format| {
            Template::for_subscription(f, t, p).unwrap_err().to_string()
        };
        assert!(err(Some("x"), Some("y"), Format::Slack).contains("not both"));
        assert!(err(Some("x"), None, Format::Raw).contains("chat format"));
        assert_eq!(err(Some("  "), None, Format::Slack), "template is empty");
        let syntax = err(Some("{{ payload.x }\n"), None, Format::Slack);
        assert!(
            syntax.starts_with("template does not compile: syntax error"),
            "{syntax}"
        );
        let unknown = err(None, Some("{{ payload | nosuch }}"), Format::Raw);
        assert!(
            unknown.contains("payload_template does not compile") && unknown.contains("nosuch"),
            "{unknown}"
        );
        // Not a config error: it depends on the data.
        assert!(
            Template::for_subscription(Format::Slack, Some("{{ payload.amount / 100 }}"), None)
                .is_ok()
        );
        assert!(
            Template::for_subscription(Format::Raw, None, None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn no_filesystem_and_bounded_work() {
        let err = Template::compile(
            TemplateKind::Text,
            Format::Slack,
            "{% include '/etc/passwd' %}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not compile"), "{err}");
        let looping = render(
            TemplateKind::Text,
            Format::Slack,
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            b"{}",
        )
        .unwrap_err();
        assert!(looping.contains("fuel"), "{looping}");
        let huge = render(
            TemplateKind::Text,
            Format::Slack,
            "{{ 'x' * 1000000000 }}",
            b"{}",
        )
        .unwrap_err();
        assert!(huge.contains("fuel"), "{huge}");
    }

    #[test]
    fn data_errors_surface_at_render() {
        let e = render(
            TemplateKind::Text,
            Format::Slack,
            "{{ payload.amount_missing / 100 }}",
            PUSH,
        )
        .unwrap_err();
        assert!(e.starts_with("template: invalid operation"), "{e}");
    }

    #[test]
    fn non_json_bodies_render_with_body_text() {
        let out = render(
            TemplateKind::Text,
            Format::Discord,
            "[{{ payload }}] {{ body }}",
            b"a=1&b=2",
        )
        .unwrap();
        assert_eq!(out, "[] a=1&b=2");
    }
}
