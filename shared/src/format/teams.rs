//! Microsoft Teams: an Adaptive Card for Workflows (Power Automate)
//! webhooks, and the legacy Office 365 connector MessageCard.
//!
//! Teams caps a whole message at about 28 KB. Each piece gets its own cap,
//! and [`clamp`] then cuts the longest texts until the payload fits.

use serde_json::{Value, json};

use super::summary::{Summary, Tone};
use super::truncate::{truncate, truncate_bytes};

/// A message over this many bytes is refused by Teams (28 KB, with room
/// for the envelope Teams adds).
pub const PAYLOAD_MAX_BYTES: usize = 27 * 1024;

const HEADING_MAX: usize = 200;
const TITLE_MAX: usize = 400;
const TEXT_MAX: usize = 4000;
const SNIPPET_MAX: usize = 2000;
const FACTS_MAX: usize = 20;
const FACT_NAME_MAX: usize = 100;
const FACT_VALUE_MAX: usize = 1000;

const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
const CARD_SCHEMA: &str = "http://adaptivecards.io/schemas/adaptive-card.json";

/// An Adaptive Card 1.4 in the envelope Workflows webhooks take.
fn envelope(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut card = json!({
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    });
    if !actions.is_empty() {
        card["actions"] = json!(actions);
    }
    json!({
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}],
    })
}

fn text_block(text: &str) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true})
}

/// The default Adaptive Card of a summary.
pub fn render_card(s: &Summary) -> Value {
    let mut heading = text_block(&truncate(&s.heading(), HEADING_MAX));
    heading["size"] = json!("Small");
    heading["isSubtle"] = json!(true);
    let mut title = text_block(&truncate(&s.title, TITLE_MAX));
    title["size"] = json!("Medium");
    title["weight"] = json!("Bolder");
    match s.tone {
        Tone::Good => title["color"] = json!("Good"),
        Tone::Bad => title["color"] = json!("Attention"),
        Tone::Neutral => {}
    }
    let mut body = vec![heading, title];
    if let Some(text) = &s.text {
        body.push(text_block(&truncate(text, TEXT_MAX)));
    }
    if !s.fields.is_empty() {
        let facts: Vec<Value> = s
            .fields
            .iter()
            .take(FACTS_MAX)
            .map(|f| {
                json!({
                    "title": truncate(&f.name, FACT_NAME_MAX),
                    "value": truncate(&f.value, FACT_VALUE_MAX),
                })
            })
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    if let Some(snippet) = &s.snippet {
        let mut code = text_block(&truncate(snippet, SNIPPET_MAX));
        code["fontType"] = json!("Monospace");
        body.push(code);
    }
    // Teams shows DATE()/TIME() in the reader's time zone.
    let mut footer = text_block(&format!(
        "{} · {{{{DATE({t}, SHORT)}}}} {{{{TIME({t})}}}}",
        s.footer(),
        t = s.received_at
    ));
    footer["size"] = json!("Small");
    footer["isSubtle"] = json!(true);
    body.push(footer);
    let actions = match &s.url {
        Some(url) => vec![json!({"type": "Action.OpenUrl", "title": s.link_label(), "url": url})],
        None => Vec::new(),
    };
    let mut v = envelope(body, actions);
    clamp(&mut v);
    v
}

/// The Adaptive Card of a text template: one wrapping text block.
pub fn render_card_text(text: &str) -> Value {
    let mut v = envelope(vec![text_block(text)], Vec::new());
    clamp(&mut v);
    v
}

/// The default MessageCard of a summary.
pub fn render_message_card(s: &Summary) -> Value {
    let mut section = json!({
        "activityTitle": truncate(&s.heading(), HEADING_MAX),
        "activitySubtitle": format!("{} · {}", s.footer(), s.received_at),
        "markdown": true,
    });
    if !s.fields.is_empty() {
        let facts: Vec<Value> = s
            .fields
            .iter()
            .take(FACTS_MAX)
            .map(|f| {
                json!({
                    "name": truncate(&f.name, FACT_NAME_MAX),
                    "value": truncate(&f.value, FACT_VALUE_MAX),
                })
            })
            .collect();
        section["facts"] = json!(facts);
    }
    let mut sections = vec![section];
    if let Some(snippet) = &s.snippet {
        // markdown off: the JSON shows as written.
        sections.push(json!({"text": truncate(snippet, SNIPPET_MAX), "markdown": false}));
    }
    let title = truncate(&s.title, TITLE_MAX);
    let mut v = json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": title,
        "themeColor": format!("{:06X}", s.accent()),
        "title": title,
        "sections": sections,
    });
    if let Some(text) = &s.text {
        v["text"] = json!(truncate(text, TEXT_MAX));
    }
    if let Some(url) = &s.url {
        v["potentialAction"] = json!([{
            "@type": "OpenUri",
            "name": s.link_label(),
            "targets": [{"os": "default", "uri": url}],
        }]);
    }
    clamp(&mut v);
    v
}

/// The MessageCard of a text template.
pub fn render_message_card_text(text: &str) -> Value {
    let summary = truncate(super::truncate::first_line(text), HEADING_MAX);
    let mut v = json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": summary,
        "text": text,
    });
    clamp(&mut v);
    v
}

/// Bring any payload under [`PAYLOAD_MAX_BYTES`] by cutting its longest
/// `text` or `value` strings. Returns false if it still does not fit (a
/// payload made of many short strings), which the caller reports.
pub fn clamp(v: &mut Value) -> bool {
    // Each round cuts the longest string by the excess (plus slack for
    // JSON escapes); a bounded number of rounds always ends.
    for _ in 0..64 {
        let size = serde_json::to_vec(v).map_or(0, |b| b.len());
        if size <= PAYLOAD_MAX_BYTES {
            return true;
        }
        let excess = size - PAYLOAD_MAX_BYTES;
        let Some(longest) = longest_text(v) else {
            return false;
        };
        let keep = longest.len().saturating_sub(excess + 64);
        let cut = truncate_bytes(longest, keep).into_owned();
        if cut.len() >= longest.len() {
            return false;
        }
        *longest = cut;
    }
    false
}

/// The longest string under a `text` or `value` key, anywhere.
fn longest_text(v: &mut Value) -> Option<&mut String> {
    fn walk<'a>(v: &'a mut Value, best: &mut Option<&'a mut String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    let is_text = k == "text" || k == "value";
                    match child {
                        Value::String(s) => {
                            if is_text && best.as_ref().is_none_or(|b| s.len() > b.len()) {
                                *best = Some(s);
                            }
                        }
                        other => walk(other, best),
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, best);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk(v, &mut best);
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::summary::Field;

    fn summary() -> Summary {
        Summary {
            provider: "Stripe".into(),
            source: "stripe".into(),
            event_type: "charge.failed".into(),
            event_id: "evt_1".into(),
            received_at: "2023-11-14T22:13:20Z".into(),
            title: "Charge failed: 5.00 USD".into(),
            url: Some("https://dashboard.stripe.com/events/evt_1".into()),
            text: Some("Card declined".into()),
            fields: vec![Field {
                name: "Amount".into(),
                value: "5.00 USD".into(),
            }],
            snippet: None,
            tone: Tone::Bad,
        }
    }

    #[test]
    fn adaptive_card_in_the_workflows_envelope() {
        let v = render_card(&summary());
        assert_eq!(v["type"], "message");
        let att = &v["attachments"][0];
        assert_eq!(att["contentType"], CARD_CONTENT_TYPE);
        let card = &att["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let body = card["body"].as_array().unwrap();
        assert_eq!(body[0]["text"], "Stripe · charge.failed");
        assert_eq!(body[1]["text"], "Charge failed: 5.00 USD");
        assert_eq!(body[1]["color"], "Attention");
        assert_eq!(body[2]["text"], "Card declined");
        assert_eq!(
            body[3]["facts"][0],
            json!({"title": "Amount", "value": "5.00 USD"})
        );
        assert_eq!(
            body[4]["text"],
            "source stripe · id evt_1 · {{DATE(2023-11-14T22:13:20Z, SHORT)}} {{TIME(2023-11-14T22:13:20Z)}}"
        );
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(card["actions"][0]["title"], "Open in Stripe");
    }

    #[test]
    fn message_card() {
        let v = render_message_card(&summary());
        assert_eq!(v["@type"], "MessageCard");
        assert_eq!(v["summary"], "Charge failed: 5.00 USD");
        assert_eq!(v["themeColor"], "E01E5A");
        assert_eq!(v["text"], "Card declined");
        assert_eq!(v["sections"][0]["facts"][0]["name"], "Amount");
        assert_eq!(
            v["potentialAction"][0]["targets"][0]["uri"],
            "https://dashboard.stripe.com/events/evt_1"
        );
    }

    #[test]
    fn payloads_fit_the_size_limit() {
        let mut s = summary();
        // Three bytes a char, and quotes that JSON escapes.
        s.text = Some("日\"".repeat(10_000));
        s.snippet = Some("語".repeat(10_000));
        s.fields = (0..50)
            .map(|_| Field {
                name: "n".into(),
                value: "値".repeat(2000),
            })
            .collect();
        for v in [render_card(&s), render_message_card(&s)] {
            let size = serde_json::to_vec(&v).unwrap().len();
            assert!(size <= PAYLOAD_MAX_BYTES, "{size}");
        }
        let v = render_card_text(&"x".repeat(100_000));
        assert!(serde_json::to_vec(&v).unwrap().len() <= PAYLOAD_MAX_BYTES);
    }

    #[test]
    fn clamp_reports_what_it_cannot_fit() {
        let mut v = json!({"items": (0..20_000).map(|i| json!({"k": i})).collect::<Vec<_>>()});
        assert!(!clamp(&mut v));
        let mut ok = json!({"text": "short"});
        assert!(clamp(&mut ok));
    }
}
