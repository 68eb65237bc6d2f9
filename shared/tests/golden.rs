//! Golden files of the chat payloads: every chat format for a GitHub push,
//! a Stripe payment and a generic event, plus the two template kinds.
//!
//! The inputs are `tests/golden/input/*.json`; each output is
//! `tests/golden/{input}.{case}.json`. A mismatch fails the test. After an
//! intended change, regenerate with `UPDATE_GOLDEN=1 cargo test -p sluice
//! --test golden` and review the diff.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use sluice::format::{Body, Format, Template, render};
use sluice::model::{Event, Headers};

#[derive(Deserialize)]
struct Input {
    source: String,
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    received_at_ms: i64,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    body: Value,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn event(name: &str) -> Event {
    let path = dir().join("input").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let input: Input = serde_json::from_str(&text).unwrap();
    Event {
        source: input.source,
        id: input.id,
        event_type: input.event_type,
        received_at_ms: input.received_at_ms,
        expires_at: 0,
        body: Bytes::from(serde_json::to_vec(&input.body).unwrap()),
        body_hash: String::new(),
        content_type: input.content_type,
        headers: Headers::from_pairs(&input.headers),
    }
}

/// Compare with the golden file (as JSON values, so key order is free),
/// or write it when `UPDATE_GOLDEN` is set. Returns a failure message.
fn check(file: &str, got: &Value) -> Option<String> {
    let path = dir().join(file);
    let pretty = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, pretty).unwrap();
        return None;
    }
    let want = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<Value>(&text).unwrap(),
        Err(e) => {
            return Some(format!(
                "{file}: {e} (run with UPDATE_GOLDEN=1 to create it)"
            ));
        }
    };
    (want != *got).then(|| format!("{file} differs; rendered now:\n{pretty}"))
}

fn rendered(format: Format, template: Option<&Template>, event: &Event) -> Value {
    match render(format, template, event).unwrap() {
        Body::Json(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Body::Original => panic!("{format:?} sent the original body"),
    }
}

#[test]
fn chat_payloads_match_their_golden_files() {
    let mut failures = Vec::new();
    for input in ["github-push", "stripe-payment", "generic-event"] {
        let event = event(input);
        for format in [
            Format::Slack,
            Format::Discord,
            Format::Teams,
            Format::TeamsMessagecard,
        ] {
            let file = format!("{input}.{}.json", format.as_str());
            failures.extend(check(&file, &rendered(format, None, &event)));
        }
    }

    let slack_text = Template::for_subscription(
        Format::Slack,
        Some(
            "*{{ payload.repository.full_name }}*: {{ payload.commits | length }} new \
             {% if payload.commits | length == 1 %}commit{% else %}commits{% endif %} \
             by {{ payload.pusher.name }}\n\
             {% for c in payload.commits %}• `{{ c.id[:7] }}` {{ c.message | first_line }}\n{% endfor %}",
        ),
        None,
    )
    .unwrap()
    .unwrap();
    failures.extend(check(
        "github-push.slack-template.json",
        &rendered(Format::Slack, Some(&slack_text), &event("github-push")),
    ));

    let discord_payload = Template::for_subscription(
        Format::Discord,
        None,
        Some(
            r#"{
              "username": "Payments",
              "content": {{ "💸 " ~ (payload.data.object.amount | money(payload.data.object.currency)) ~ " from " ~ payload.data.object.customer }},
              "embeds": [{"title": {{ summary.title }}, "url": {{ summary.url }}, "color": 6570404}]
            }"#,
        ),
    )
    .unwrap()
    .unwrap();
    failures.extend(check(
        "stripe-payment.discord-payload-template.json",
        &rendered(
            Format::Discord,
            Some(&discord_payload),
            &event("stripe-payment"),
        ),
    ));

    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_mismatch_is_reported() {
    // The checker itself must fail on a difference, or every golden test
    // above would pass vacuously.
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        return;
    }
    let wrong = serde_json::json!({"text": "not what the golden file says"});
    assert!(check("github-push.slack.json", &wrong).is_some());
}
