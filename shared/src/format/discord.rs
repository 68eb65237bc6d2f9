//! Discord webhooks: `content` plus one embed, within Discord's limits.
//!
//! Mentions never ping (`allowed_mentions.parse` is empty), and event text
//! is markdown-escaped where Discord renders markdown, so a commit message
//! shows as written.

use serde_json::{Value, json};

use super::summary::Summary;
use super::truncate::{truncate, truncate_by, units};

/// Discord's limits, in characters.
pub const CONTENT_MAX: usize = 2000;
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELDS_MAX: usize = 25;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const FOOTER_MAX: usize = 2048;
pub const AUTHOR_MAX: usize = 256;
pub const EMBEDS_MAX: usize = 10;
/// The sum of every embed's title, description, field names and values,
/// footer text and author name.
pub const EMBED_TOTAL_MAX: usize = 6000;

/// Values this short sit side by side.
const INLINE_MAX: usize = 60;
const FENCE: &str = "```";

/// Backslash-escape what Discord's markdown would act on. `#`, `>` and `-`
/// matter only at the start of a line.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut line_start = true;
    for c in s.chars() {
        let special = matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '<')
            || (line_start && matches!(c, '#' | '>' | '-'));
        if special {
            out.push('\\');
        }
        out.push(c);
        if c == '\n' {
            line_start = true;
        } else if !c.is_whitespace() {
            line_start = false;
        }
    }
    out
}

fn escaped_units(c: char) -> usize {
    match c {
        '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '<' | '#' | '>' | '-' => 2,
        c => c.len_utf16(),
    }
}

/// `s` escaped, cut so the escaped form fits `max`.
fn fit(s: &str, max: usize) -> String {
    escape(&truncate_by(s, max, escaped_units))
}

/// The default message of a summary.
pub fn render(s: &Summary) -> Value {
    let mut description = String::new();
    if let Some(text) = &s.text {
        description = fit(text, DESCRIPTION_MAX);
    }
    if let Some(snippet) = &s.snippet {
        let sep = if description.is_empty() { 0 } else { 1 };
        let room = DESCRIPTION_MAX
            .saturating_sub(units(&description) + sep + 2 * FENCE.len() + 6)
            .max(1);
        let body = truncate(&snippet.replace(FENCE, "'''"), room).into_owned();
        if sep == 1 {
            description.push('\n');
        }
        description.push_str(&format!("{FENCE}json\n{body}\n{FENCE}"));
    }
    let fields: Vec<Value> = s
        .fields
        .iter()
        .take(FIELDS_MAX)
        .map(|f| {
            let value = fit(&f.value, FIELD_VALUE_MAX);
            json!({
                "name": truncate(&f.name, FIELD_NAME_MAX),
                "inline": units(&value) <= INLINE_MAX,
                "value": value,
            })
        })
        .collect();

    let mut embed = json!({
        "title": truncate(&s.title, TITLE_MAX),
        "color": s.accent(),
        "footer": {"text": truncate(&s.footer(), FOOTER_MAX)},
        "timestamp": s.received_at,
    });
    if let Some(url) = &s.url {
        embed["url"] = json!(url);
    }
    // Discord refuses empty strings and empty lists here.
    if !description.is_empty() {
        embed["description"] = json!(description);
    }
    if !fields.is_empty() {
        embed["fields"] = json!(fields);
    }

    let mut v = json!({
        "content": fit(&s.heading(), CONTENT_MAX),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    });
    clamp(&mut v);
    v
}

/// The message of a text template: the text is the `content`.
pub fn render_text(text: &str) -> Value {
    json!({
        "content": truncate(text, CONTENT_MAX),
        "allowed_mentions": {"parse": []},
    })
}

/// Hold any Discord payload to Discord's limits: each field of each embed,
/// the counts, and the 6,000-character total across embeds. The total is
/// met by cutting descriptions first, then dropping fields from the end,
/// then cutting footers and titles.
pub fn clamp(v: &mut Value) {
    cut_str(v.get_mut("content"), CONTENT_MAX);
    let Some(Value::Array(embeds)) = v.get_mut("embeds") else {
        return;
    };
    embeds.truncate(EMBEDS_MAX);
    for e in embeds.iter_mut() {
        cut_str(e.get_mut("title"), TITLE_MAX);
        cut_str(e.get_mut("description"), DESCRIPTION_MAX);
        cut_str(e.pointer_mut("/footer/text"), FOOTER_MAX);
        cut_str(e.pointer_mut("/author/name"), AUTHOR_MAX);
        if let Some(Value::Array(fields)) = e.get_mut("fields") {
            fields.truncate(FIELDS_MAX);
            for f in fields.iter_mut() {
                cut_str(f.get_mut("name"), FIELD_NAME_MAX);
                cut_str(f.get_mut("value"), FIELD_VALUE_MAX);
            }
        }
    }
    for shrink in [
        shrink_descriptions,
        drop_fields,
        shrink_footers,
        shrink_titles,
    ] {
        let total: usize = embeds.iter().map(embed_units).sum();
        if total <= EMBED_TOTAL_MAX {
            return;
        }
        shrink(embeds, total - EMBED_TOTAL_MAX);
    }
}

fn str_units(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, units)
}

fn embed_units(e: &Value) -> usize {
    let fields: usize = e.get("fields").and_then(Value::as_array).map_or(0, |fs| {
        fs.iter()
            .map(|f| str_units(f.get("name")) + str_units(f.get("value")))
            .sum()
    });
    str_units(e.get("title"))
        + str_units(e.get("description"))
        + str_units(e.pointer("/footer/text"))
        + str_units(e.pointer("/author/name"))
        + fields
}

fn cut_str(v: Option<&mut Value>, max: usize) {
    if let Some(Value::String(s)) = v
        && units(s) > max
    {
        *s = truncate(s, max).into_owned();
    }
}

/// Cut the strings at `pointer` in each embed, last embed first, until
/// `excess` units are gone.
fn shrink_at(embeds: &mut [Value], mut excess: usize, pointer: &str) {
    for e in embeds.iter_mut().rev() {
        if excess == 0 {
            return;
        }
        if let Some(Value::String(s)) = e.pointer_mut(pointer) {
            let len = units(s);
            let keep = len.saturating_sub(excess);
            *s = truncate(s, keep).into_owned();
            excess = excess.saturating_sub(len - units(s));
        }
    }
}

fn shrink_descriptions(embeds: &mut [Value], excess: usize) {
    shrink_at(embeds, excess, "/description");
}

fn shrink_footers(embeds: &mut [Value], excess: usize) {
    shrink_at(embeds, excess, "/footer/text");
}

fn shrink_titles(embeds: &mut [Value], excess: usize) {
    shrink_at(embeds, excess, "/title");
}

fn drop_fields(embeds: &mut [Value], mut excess: usize) {
    for e in embeds.iter_mut().rev() {
        let Some(Value::Array(fields)) = e.get_mut("fields") else {
            continue;
        };
        while excess > 0 {
            let Some(f) = fields.pop() else { break };
            let freed = str_units(f.get("name")) + str_units(f.get("value"));
            excess = excess.saturating_sub(freed);
        }
        if excess == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::summary::{Field, Tone};

    fn summary() -> Summary {
        Summary {
            provider: "GitHub".into(),
            source: "github".into(),
            event_type: "pull_request.opened".into(),
            event_id: "d-1".into(),
            received_at: "2023-11-14T22:13:20Z".into(),
            title: "acme/api: pull request #1 opened".into(),
            url: Some("https://github.com/acme/api/pull/1".into()),
            text: Some("Uses *snake_case* and @everyone\n# not a heading".into()),
            fields: vec![Field {
                name: "Author".into(),
                value: "octo_cat".into(),
            }],
            snippet: None,
            tone: Tone::Neutral,
        }
    }

    fn total(v: &Value) -> usize {
        v["embeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(embed_units)
            .sum()
    }

    #[test]
    fn renders_content_and_one_embed() {
        let v = render(&summary());
        assert_eq!(v["content"], "GitHub · pull\\_request.opened");
        assert_eq!(v["allowed_mentions"], json!({"parse": []}));
        let e = &v["embeds"][0];
        assert_eq!(e["title"], "acme/api: pull request #1 opened");
        assert_eq!(e["url"], "https://github.com/acme/api/pull/1");
        assert_eq!(
            e["description"],
            "Uses \\*snake\\_case\\* and @everyone\n\\# not a heading"
        );
        assert_eq!(
            e["fields"][0],
            json!({"name": "Author", "value": "octo\\_cat", "inline": true})
        );
        assert_eq!(e["footer"]["text"], "source github · id d-1");
        assert_eq!(e["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(e["color"], 0x24292F);
    }

    #[test]
    fn empty_parts_are_left_out() {
        let mut s = summary();
        s.text = None;
        s.fields.clear();
        s.url = None;
        let e = &render(&s)["embeds"][0];
        assert!(
            e.get("description").is_none() && e.get("fields").is_none() && e.get("url").is_none()
        );
    }

    #[test]
    fn every_limit_holds_for_a_huge_summary() {
        let mut s = summary();
        s.title = "t".repeat(1000);
        s.text = Some("_".repeat(9000));
        s.snippet = Some("🦀".repeat(5000));
        s.fields = (0..40)
            .map(|i| Field {
                name: "n".repeat(300) + &i.to_string(),
                value: "v".repeat(2000),
            })
            .collect();
        let v = render(&s);
        let e = &v["embeds"][0];
        assert!(units(e["title"].as_str().unwrap()) <= TITLE_MAX);
        assert!(units(e["description"].as_str().unwrap()) <= DESCRIPTION_MAX);
        let fields = e["fields"].as_array().unwrap();
        assert!(fields.len() <= FIELDS_MAX);
        for f in fields {
            assert!(units(f["name"].as_str().unwrap()) <= FIELD_NAME_MAX);
            assert!(units(f["value"].as_str().unwrap()) <= FIELD_VALUE_MAX);
        }
        assert!(total(&v) <= EMBED_TOTAL_MAX, "{}", total(&v));
    }

    #[test]
    fn snippets_keep_their_code_fence() {
        let mut s = summary();
        s.text = None;
        s.snippet = Some(format!("{{\"a\": \"```\"}}{}", "x".repeat(5000)));
        let d = render(&s)["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(d.starts_with("```json\n") && d.ends_with("\n```"), "{d}");
        assert_eq!(d.matches(FENCE).count(), 2);
    }

    #[test]
    fn clamp_meets_the_total_across_embeds() {
        let embed = json!({"title": "t".repeat(300), "description": "d".repeat(5000),
            "fields": (0..30).map(|_| json!({"name": "n", "value": "v".repeat(1100)})).collect::<Vec<_>>(),
            "footer": {"text": "f".repeat(3000)}});
        let mut v = json!({"content": "c".repeat(3000), "embeds": vec![embed; 12]});
        clamp(&mut v);
        assert_eq!(units(v["content"].as_str().unwrap()), CONTENT_MAX);
        assert_eq!(v["embeds"].as_array().unwrap().len(), EMBEDS_MAX);
        assert!(total(&v) <= EMBED_TOTAL_MAX, "{}", total(&v));
    }

    #[test]
    fn text_templates_become_the_content() {
        let v = render_text(&"x".repeat(2500));
        assert_eq!(units(v["content"].as_str().unwrap()), CONTENT_MAX);
        assert_eq!(v["allowed_mentions"]["parse"], json!([]));
    }
}
