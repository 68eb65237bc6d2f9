//! Payload formats: how an event is shaped for its destination.
//!
//! `raw` sends the original body untouched. The chat formats (`slack`,
//! `discord`, `teams`, `teams_messagecard`) turn the event into a
//! [`Summary`](summary::Summary) and render it as the platform's JSON,
//! unless the subscription has a template. Every chat payload is held to
//! its platform's limits before it is sent.
//!
//! | module | concern |
//! |---|---|
//! | [`summary`] | what an event says: provider-aware fields, generic fallback |
//! | [`slack`], [`discord`], [`teams`] | one platform's payload and limits |
//! | [`template`] | subscription templates (minijinja) |
//! | [`truncate`] | cutting text safely |
//! | [`money`] | amounts in minor units |

pub mod discord;
pub mod money;
pub mod slack;
pub mod summary;
pub mod teams;
pub mod template;
pub mod truncate;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::template::{Template, TemplateError, TemplateKind};
use crate::model::Event;

/// How the payload is shaped for the destination (chat formats render a
/// message).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The original body and content type, unchanged.
    #[default]
    Raw,
    /// A Slack incoming webhook: `text` and Block Kit `blocks`.
    Slack,
    /// A Discord webhook: `content` and an embed.
    Discord,
    /// A Teams Workflows webhook: an Adaptive Card.
    Teams,
    /// A legacy Office 365 connector webhook: a MessageCard.
    #[serde(alias = "teams-messagecard")]
    TeamsMessagecard,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Teams => "teams",
            Self::TeamsMessagecard => "teams_messagecard",
        }
    }
}

/// Why an event could not be rendered. Rendering is deterministic, so
/// retrying the same event with the same config cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Template(String),
    #[error("payload_template did not produce JSON: {0}")]
    NotJson(String),
    #[error("payload_template must produce a JSON object for {0}")]
    NotObject(&'static str),
    #[error("template rendered an empty message")]
    Empty,
    #[error("template needs a chat format")]
    NoChatFormat,
    #[error("payload is over the {limit}-byte limit of {format} even after cutting its texts")]
    TooLarge { format: &'static str, limit: usize },
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The event's own body and content type (`raw`): nothing was copied.
    Original,
    /// A rendered JSON payload (`application/json`).
    Json(Bytes),
}

/// Render `event` for a subscription with this format and template.
pub fn render(
    format: Format,
    template: Option<&Template>,
    event: &Event,
) -> Result<Body, RenderError> {
    if format == Format::Raw && template.is_none() {
        return Ok(Body::Original);
    }
    let payload: Option<Value> = serde_json::from_slice(&event.body).ok();
    let summary = summary::summarize(event, payload.as_ref());
    let mut value = match template {
        None => match format {
            Format::Raw => return Ok(Body::Original),
            Format::Slack => slack::render(&summary),
            Format::Discord => discord::render(&summary),
            Format::Teams => teams::render_card(&summary),
            Format::TeamsMessagecard => teams::render_message_card(&summary),
        },
        Some(t) => {
            let out = t.render(event, payload.as_ref(), &summary)?;
            match t.kind() {
                TemplateKind::Payload => {
                    let v: Value = serde_json::from_str(&out)
                        .map_err(|e| RenderError::NotJson(e.to_string()))?;
                    // Every chat platform takes an object; anything else
                    // would be refused on every retry.
                    if format != Format::Raw && !v.is_object() {
                        return Err(RenderError::NotObject(format.as_str()));
                    }
                    v
                }
                TemplateKind::Text => {
                    let text = out.trim();
                    if text.is_empty() {
                        return Err(RenderError::Empty);
                    }
                    match format {
                        Format::Raw => return Err(RenderError::NoChatFormat),
                        Format::Slack => slack::render_text(text),
                        Format::Discord => discord::render_text(text),
                        Format::Teams => teams::render_card_text(text),
                        Format::TeamsMessagecard => teams::render_message_card_text(text),
                    }
                }
            }
        }
    };
    clamp(format, &mut value)?;
    let bytes = serde_json::to_vec(&value).map_err(|e| RenderError::NotJson(e.to_string()))?;
    Ok(Body::Json(Bytes::from(bytes)))
}

/// Hold a payload to its platform's limits (a payload template's too).
fn clamp(format: Format, value: &mut Value) -> Result<(), RenderError> {
    match format {
        Format::Raw => {}
        Format::Slack => slack::clamp(value),
        Format::Discord => discord::clamp(value),
        Format::Teams | Format::TeamsMessagecard => {
            if !teams::clamp(value) {
                return Err(RenderError::TooLarge {
                    format: format.as_str(),
                    limit: teams::PAYLOAD_MAX_BYTES,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Headers;

    fn event(body: &'static [u8]) -> Event {
        Event {
            source: "acme".into(),
            id: "e1".into(),
            event_type: "thing.done".into(),
            received_at_ms: 1_700_000_000_000,
            expires_at: 0,
            body: Bytes::from_static(body),
            body_hash: String::new(),
            content_type: Some("application/json".into()),
            headers: Headers::default(),
        }
    }

    fn json_of(body: Body) -> Value {
        match body {
            Body::Json(b) => serde_json::from_slice(&b).unwrap(),
            Body::Original => panic!("expected a rendered body"),
        }
    }

    #[test]
    fn raw_is_the_original_body() {
        let e = event(b"not even json");
        assert_eq!(render(Format::Raw, None, &e).unwrap(), Body::Original);
    }

    #[test]
    fn format_names_in_config() {
        for (name, f) in [
            ("raw", Format::Raw),
            ("slack", Format::Slack),
            ("discord", Format::Discord),
            ("teams", Format::Teams),
            ("teams_messagecard", Format::TeamsMessagecard),
        ] {
            let parsed: Format = serde_json::from_value(Value::String(name.into())).unwrap();
            assert_eq!(parsed, f);
            assert_eq!(f.as_str(), name);
            assert_eq!(serde_json::to_value(f).unwrap(), Value::String(name.into()));
        }
        let alias: Format = serde_json::from_str("\"teams-messagecard\"").unwrap();
        assert_eq!(alias, Format::TeamsMessagecard);
        assert!(serde_json::from_str::<Format>("\"msteams\"").is_err());
    }

    #[test]
    fn every_chat_format_renders_any_body() {
        for body in [
            &b"{\"a\":1}"[..],
            b"",
            b"\xff\xfe",
            b"[1,2,3]",
            b"\"str\"",
            b"{\"deep\":{\"x\":[{}]}}",
        ] {
            let e = Event {
                body: Bytes::copy_from_slice(body),
                ..event(b"")
            };
            for f in [
                Format::Slack,
                Format::Discord,
                Format::Teams,
                Format::TeamsMessagecard,
            ] {
                let v = json_of(render(f, None, &e).unwrap());
                assert!(v.is_object(), "{f:?} {body:?}");
            }
        }
    }

    #[test]
    fn text_templates_are_wrapped_per_platform() {
        let e = event(br#"{"name":"x"}"#);
        let t = |f| {
            Template::for_subscription(f, Some("  Hi {{ payload.name }}\n"), None)
                .unwrap()
                .unwrap()
        };
        let slack = json_of(render(Format::Slack, Some(&t(Format::Slack)), &e).unwrap());
        assert_eq!(slack, serde_json::json!({"text": "Hi x"}));
        let discord = json_of(render(Format::Discord, Some(&t(Format::Discord)), &e).unwrap());
        assert_eq!(discord["content"], "Hi x");
        let teams = json_of(render(Format::Teams, Some(&t(Format::Teams)), &e).unwrap());
        assert_eq!(
            teams["attachments"][0]["content"]["body"][0]["text"],
            "Hi x"
        );
        let card = json_of(
            render(
                Format::TeamsMessagecard,
                Some(&t(Format::TeamsMessagecard)),
                &e,
            )
            .unwrap(),
        );
        assert_eq!(
            (card["summary"].as_str(), card["text"].as_str()),
            (Some("Hi x"), Some("Hi x"))
        );
    }

    #[test]
    fn payload_templates_are_clamped_to_the_platform() {
        let e = event(br#"{"name":"x"}"#);
        let src = r#"{"content": {{ "y" * 3000 }}, "username": "sluice"}"#;
        let t = Template::for_subscription(Format::Discord, None, Some(src))
            .unwrap()
            .unwrap();
        let v = json_of(render(Format::Discord, Some(&t), &e).unwrap());
        assert_eq!(
            truncate::units(v["content"].as_str().unwrap()),
            discord::CONTENT_MAX
        );
        assert_eq!(v["username"], "sluice");
        // Raw with a payload template: reshaped, but no platform limits.
        let t = Template::for_subscription(Format::Raw, None, Some(src))
            .unwrap()
            .unwrap();
        let v = json_of(render(Format::Raw, Some(&t), &e).unwrap());
        assert_eq!(v["content"].as_str().unwrap().len(), 3000);
    }

    #[test]
    fn render_failures_are_errors_not_panics() {
        let e = event(br#"{"name":"x"}"#);
        let not_json =
            Template::for_subscription(Format::Slack, None, Some("text: {{ payload.name }}"))
                .unwrap()
                .unwrap();
        assert!(matches!(
            render(Format::Slack, Some(&not_json), &e),
            Err(RenderError::NotJson(_))
        ));
        let list = Template::for_subscription(Format::Slack, None, Some("[1, 2]"))
            .unwrap()
            .unwrap();
        assert_eq!(
            render(Format::Slack, Some(&list), &e),
            Err(RenderError::NotObject("slack"))
        );
        let empty = Template::for_subscription(Format::Slack, Some("{{ payload.missing }}"), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            render(Format::Slack, Some(&empty), &e),
            Err(RenderError::Empty)
        );
        let bad = Template::for_subscription(Format::Slack, Some("{{ payload.name + 1 }}"), None)
            .unwrap()
            .unwrap();
        let err = render(Format::Slack, Some(&bad), &e).unwrap_err();
        assert!(err.to_string().starts_with("template: "), "{err}");
    }
}
