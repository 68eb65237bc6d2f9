//! Slack incoming webhooks: `text` (the notification and fallback) and
//! Block Kit `blocks`.
//!
//! Every value from the event is escaped for mrkdwn (`&`, `<`, `>`), so a
//! payload cannot forge a link or a mention such as `<!channel>`.

use serde_json::{Value, json};

use super::summary::Summary;
use super::truncate::{ELLIPSIS, truncate, truncate_by, units};

/// Slack's limits, in characters.
pub const SECTION_TEXT_MAX: usize = 3000;
pub const HEADER_TEXT_MAX: usize = 150;
pub const FIELD_TEXT_MAX: usize = 2000;
pub const FIELDS_MAX: usize = 10;
pub const CONTEXT_ELEMENTS_MAX: usize = 10;
pub const BLOCKS_MAX: usize = 50;
/// Top-level `text`: Slack advises at most 4,000 characters.
pub const TEXT_MAX: usize = 4000;

/// The title's share of the first section; the text gets the rest.
const TITLE_BUDGET: usize = 500;
const FENCE: &str = "```";

/// Escape for mrkdwn: Slack's three control characters.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn escaped_units(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        c => c.len_utf16(),
    }
}

/// `s` escaped, cut so the escaped form fits `max`.
fn fit(s: &str, max: usize) -> String {
    escape(&truncate_by(s, max, escaped_units))
}

/// A `<url|label>` link; `url` is already a normalised http(s) URL.
fn link(url: &str, label: &str) -> String {
    let url = url
        .replace('&', "&amp;")
        .replace('|', "%7C")
        .replace('<', "%3C")
        .replace('>', "%3E");
    format!("<{url}|{label}>")
}

/// The default message of a summary.
pub fn render(s: &Summary) -> Value {
    let heading = s.heading();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&heading, HEADER_TEXT_MAX)},
    })];

    let title = fit(&s.title, TITLE_BUDGET);
    let mut main = match &s.url {
        Some(url) => format!("*{}*", link(url, &title)),
        None => format!("*{title}*"),
    };
    if let Some(text) = &s.text {
        let room = SECTION_TEXT_MAX.saturating_sub(units(&main) + 1);
        main.push('\n');
        main.push_str(&fit(text, room));
    }
    blocks.push(section(main));

    for chunk in s.fields.chunks(FIELDS_MAX) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|f| {
                let name = fit(&f.name, 100);
                let room = FIELD_TEXT_MAX.saturating_sub(units(&name) + 3);
                json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", fit(&f.value, room))})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }

    if let Some(snippet) = &s.snippet {
        // Inside a code block nothing is escaped; only a fence could end it early.
        let room = SECTION_TEXT_MAX - 2 * FENCE.len() - 2;
        let body = fit(&snippet.replace(FENCE, "'''"), room);
        blocks.push(section(format!("{FENCE}\n{body}\n{FENCE}")));
    }

    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context_line(s)}],
    }));
    blocks.truncate(BLOCKS_MAX);

    let mut v = json!({
        "text": fit(&format!("{heading}: {}", s.title), TEXT_MAX),
        "blocks": blocks,
    });
    clamp(&mut v);
    v
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// Footer plus the time, which Slack shows in the reader's time zone.
fn context_line(s: &Summary) -> String {
    let when = match humantime::parse_rfc3339(&s.received_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    {
        Some(d) => format!(
            "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
            d.as_secs(),
            s.received_at
        ),
        None => escape(&s.received_at),
    };
    format!("{} · {when}", fit(&s.footer(), 1000))
}

/// The message of a text template: already escaped by the template.
pub fn render_text(text: &str) -> Value {
    json!({"text": cut_mrkdwn(text, TEXT_MAX)})
}

/// Hold any Slack payload to Slack's limits: top-level `text`, the number
/// of blocks, and the text of header, section and context blocks. Other
/// block types pass untouched.
pub fn clamp(v: &mut Value) {
    if let Some(Value::String(text)) = v.get_mut("text") {
        *text = cut_mrkdwn(text, TEXT_MAX);
    }
    let Some(Value::Array(blocks)) = v.get_mut("blocks") else {
        return;
    };
    blocks.truncate(BLOCKS_MAX);
    for block in blocks.iter_mut() {
        match block.get("type").and_then(Value::as_str) {
            Some("header") => clamp_text(block.get_mut("text"), HEADER_TEXT_MAX),
            Some("section") => {
                clamp_text(block.get_mut("text"), SECTION_TEXT_MAX);
                if let Some(Value::Array(fields)) = block.get_mut("fields") {
                    fields.truncate(FIELDS_MAX);
                    for f in fields.iter_mut() {
                        clamp_text(Some(f), FIELD_TEXT_MAX);
                    }
                }
            }
            Some("context") => {
                if let Some(Value::Array(elements)) = block.get_mut("elements") {
                    elements.truncate(CONTEXT_ELEMENTS_MAX);
                    for e in elements.iter_mut() {
                        clamp_text(Some(e), SECTION_TEXT_MAX);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Cut a text object's `text` to `max`.
fn clamp_text(obj: Option<&mut Value>, max: usize) {
    if let Some(Value::String(text)) = obj.and_then(|o| o.get_mut("text")) {
        *text = cut_mrkdwn(text, max);
    }
}

/// Cut mrkdwn that is already escaped, never leaving half an entity
/// (`&am…`) or an unclosed `<link`.
fn cut_mrkdwn(s: &str, max: usize) -> String {
    let cut = truncate(s, max);
    let Some(head) = cut.strip_suffix(ELLIPSIS) else {
        return cut.into_owned();
    };
    let mut end = head.len();
    if let Some(amp) = head.rfind('&')
        && !head[amp..].contains(';')
    {
        end = amp;
    }
    if let Some(open) = head[..end].rfind('<')
        && !head[open..end].contains('>')
    {
        end = open;
    }
    let mut out = head[..end].trim_end().to_owned();
    out.push(ELLIPSIS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::summary::{Field, Tone};

    fn summary() -> Summary {
        Summary {
            provider: "GitHub".into(),
            source: "github".into(),
            event_type: "push".into(),
            event_id: "d-1".into(),
            received_at: "2023-11-14T22:13:20Z".into(),
            title: "acme/api: 1 commit pushed to main by <!channel>".into(),
            url: Some("https://github.com/acme/api/compare/a...b?x=1&y=2".into()),
            text: Some("Fix a < b & c > d".into()),
            fields: vec![Field {
                name: "Branch".into(),
                value: "main".into(),
            }],
            snippet: None,
            tone: Tone::Neutral,
        }
    }

    #[test]
    fn renders_text_and_blocks_with_everything_escaped() {
        let v = render(&summary());
        assert_eq!(
            v["text"],
            "GitHub · push: acme/api: 1 commit pushed to main by &lt;!channel&gt;"
        );
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "GitHub · push");
        assert_eq!(
            blocks[1]["text"]["text"],
            "*<https://github.com/acme/api/compare/a...b?x=1&amp;y=2|acme/api: 1 commit pushed to main by &lt;!channel&gt;>*\nFix a &lt; b &amp; c &gt; d"
        );
        assert_eq!(blocks[2]["fields"][0]["text"], "*Branch*\nmain");
        let ctx = blocks[3]["elements"][0]["text"].as_str().unwrap();
        assert!(
            ctx.starts_with("source github · id d-1 · <!date^1700000000^"),
            "{ctx}"
        );
    }

    #[test]
    fn limits_hold_for_huge_summaries() {
        let mut s = summary();
        s.title = "&".repeat(10_000);
        s.text = Some("<".repeat(10_000));
        s.snippet = Some("x".repeat(10_000));
        s.fields = (0..30)
            .map(|i| Field {
                name: format!("f{i}"),
                value: "🦀".repeat(3000),
            })
            .collect();
        let v = render(&s);
        assert!(units(v["text"].as_str().unwrap()) <= TEXT_MAX);
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= BLOCKS_MAX);
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(units(t) <= SECTION_TEXT_MAX, "{}", units(t));
                assert!(!t.contains("&am…") && !t.ends_with("&…"));
            }
            for f in b["fields"].as_array().into_iter().flatten() {
                assert!(units(f["text"].as_str().unwrap()) <= FIELD_TEXT_MAX);
            }
        }
        // 30 fields: three sections of ten.
        assert_eq!(
            blocks.iter().filter(|b| b.get("fields").is_some()).count(),
            3
        );
        let code = blocks
            .iter()
            .find_map(|b| b["text"]["text"].as_str().filter(|t| t.starts_with("```")))
            .unwrap();
        assert!(
            code.ends_with("\n```"),
            "the code fence is closed after a cut"
        );
    }

    #[test]
    fn clamp_cuts_template_payloads_safely() {
        let mut v = json!({
            "text": format!("{}&amp;", "a".repeat(TEXT_MAX - 3)),
            "blocks": (0..60).map(|_| json!({"type": "header", "text": {"type": "plain_text", "text": "h".repeat(200)}})).collect::<Vec<_>>(),
        });
        clamp(&mut v);
        let text = v["text"].as_str().unwrap();
        assert!(
            text.ends_with("a…"),
            "no half entity: {}",
            &text[text.len() - 10..]
        );
        assert_eq!(v["blocks"].as_array().unwrap().len(), BLOCKS_MAX);
        assert_eq!(
            units(v["blocks"][0]["text"]["text"].as_str().unwrap()),
            HEADER_TEXT_MAX
        );

        let mut link =
            json!({"text": format!("see <https://example.com/{}|here>", "p".repeat(5000))});
        clamp(&mut link);
        assert_eq!(link["text"], "see…");
    }

    #[test]
    fn text_templates_become_the_text() {
        assert_eq!(render_text("*hi*"), json!({"text": "*hi*"}));
    }
}
