//! What an event says, in a few plain-text lines: drawn from the well-known
//! fields of the common providers, or a generic fallback. Every platform
//! renders the same [`Summary`]; nothing here knows about markup.

use serde::Serialize;
use serde_json::{Map, Value};

use super::money::format_minor;
use super::truncate::{first_line, truncate};
use crate::model::Event;
use crate::time::from_ms;

/// Caps on the summary's own pieces; the platforms cut further to theirs.
const TITLE_MAX: usize = 250;
const TEXT_MAX: usize = 1000;
const FIELD_MAX: usize = 200;
const SNIPPET_MAX: usize = 1500;
/// Fields of the generic fallback: a few, not the whole payload.
const GENERIC_FIELDS: usize = 8;

/// Keys whose values are never shown (matched as lower-case substrings).
const SENSITIVE: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "private_key",
];

/// An event, summarised for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `GitHub`, `Stripe`, …; the source id when the provider is unknown.
    pub provider: String,
    pub source: String,
    pub event_type: String,
    pub event_id: String,
    /// RFC 3339, UTC, whole seconds.
    pub received_at: String,
    /// One line: what happened.
    pub title: String,
    /// Where to see it; http(s) only.
    pub url: Option<String>,
    /// Longer text: a commit message, a description. Plain, untrusted.
    pub text: Option<String>,
    pub fields: Vec<Field>,
    /// Preformatted text for a code block (the generic fallback's JSON).
    pub snippet: Option<String>,
    pub tone: Tone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// Whether the event is good or bad news, for platforms that colour it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    Neutral,
    Good,
    Bad,
}

impl Summary {
    /// `GitHub · push`: who sent it and what kind of event.
    pub fn heading(&self) -> String {
        if self.event_type.is_empty() {
            format!("{} event", self.provider)
        } else {
            format!("{} · {}", self.provider, self.event_type)
        }
    }

    /// `source github · id 72d3…`: where to look it up in sluice.
    pub fn footer(&self) -> String {
        format!("source {} · id {}", self.source, self.event_id)
    }

    /// A colour for platforms that show one: the tone's, else the provider's.
    pub fn accent(&self) -> u32 {
        match (self.tone, self.provider.as_str()) {
            (Tone::Good, _) => 0x2EB67D,
            (Tone::Bad, _) => 0xE01E5A,
            (_, "GitHub") => 0x24292F,
            (_, "GitLab") => 0xFC6D26,
            (_, "Stripe") => 0x635BFF,
            (_, "Shopify") => 0x95BF47,
            (_, "Slack") => 0x4A154B,
            _ => 0x5865F2,
        }
    }

    /// The label of the link to [`url`](Self::url).
    pub fn link_label(&self) -> String {
        format!("Open in {}", self.provider)
    }

    fn field(&mut self, name: &str, value: impl AsRef<str>) {
        let value = value.as_ref().trim();
        if !value.is_empty() {
            self.fields.push(Field {
                name: name.to_owned(),
                value: truncate(value, FIELD_MAX).into_owned(),
            });
        }
    }

    fn set_title(&mut self, title: String) {
        self.title = truncate(first_line(&title), TITLE_MAX).into_owned();
    }

    fn set_text(&mut self, text: Option<&str>) {
        self.text = text
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| truncate(t, TEXT_MAX).into_owned());
    }

    fn set_url(&mut self, url: Option<&str>) {
        self.url = url.and_then(http_url);
    }
}

/// Summarise `event`; `payload` is its body parsed as JSON, if it is JSON.
/// Never fails: what is not recognised gets the generic summary.
pub fn summarize(event: &Event, payload: Option<&Value>) -> Summary {
    let mut s = Summary {
        provider: event.source.clone(),
        source: event.source.clone(),
        event_type: event.event_type.clone(),
        event_id: event.id.clone(),
        received_at: humantime::format_rfc3339_seconds(from_ms(event.received_at_ms)).to_string(),
        title: String::new(),
        url: None,
        text: None,
        fields: Vec::new(),
        snippet: None,
        tone: Tone::Neutral,
    };
    let header = |name: &str| {
        event
            .headers
            .0
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match payload {
        Some(p @ Value::Object(_)) if event.source == crate::notify::SOURCE => sluice(&mut s, p),
        Some(p @ Value::Object(_)) => {
            if let Some(name) = header("x-github-event") {
                github(&mut s, name, p);
            } else if header("x-gitlab-event").is_some() || is_gitlab(p) {
                gitlab(&mut s, p);
            } else if let Some(topic) = header("x-shopify-topic") {
                shopify(&mut s, topic, header("x-shopify-shop-domain"), p);
            } else if header("stripe-signature").is_some() || is_stripe(p) {
                stripe(&mut s, p);
            } else if is_slack(p) {
                slack(&mut s, p);
            } else {
                generic(&mut s, Some(p), &event.body, event.content_type.as_deref());
            }
        }
        other => generic(&mut s, other, &event.body, event.content_type.as_deref()),
    }
    // Platforms refuse an empty title or section.
    if s.title.is_empty() {
        s.title = format!("Event from {}", s.source);
    }
    s
}

fn is_stripe(p: &Value) -> bool {
    p.get("object").and_then(Value::as_str) == Some("event") && p.pointer("/data/object").is_some()
}

fn is_slack(p: &Value) -> bool {
    p.get("type").and_then(Value::as_str) == Some("event_callback") && p.get("event").is_some()
}

fn is_gitlab(p: &Value) -> bool {
    p.get("object_kind").and_then(Value::as_str).is_some() && p.get("project").is_some()
}

fn str_at<'a>(p: &'a Value, pointer: &str) -> Option<&'a str> {
    p.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn i64_at(p: &Value, pointer: &str) -> Option<i64> {
    p.pointer(pointer).and_then(Value::as_i64)
}

/// A number or a string, as text: ids come both ways.
fn scalar_at(p: &Value, pointer: &str) -> Option<String> {
    match p.pointer(pointer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `url` if it is an absolute http(s) URL: nothing else becomes a link.
/// Returned normalised, so it holds no spaces or angle brackets.
pub fn http_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// `payment_intent.succeeded` → `Payment intent succeeded`.
fn humanize(s: &str) -> String {
    let words = s.replace(['.', '_', '/'], " ");
    let mut chars = words.trim().chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn github(s: &mut Summary, name: &str, p: &Value) {
    s.provider = "GitHub".into();
    let repo = str_at(p, "/repository/full_name").unwrap_or("GitHub");
    let sender = str_at(p, "/sender/login");
    let action = str_at(p, "/action").unwrap_or("");
    match name {
        "push" => github_push(s, repo, sender, p),
        "pull_request" => {
            let pr = p.get("pull_request").unwrap_or(&Value::Null);
            let merged = pr.get("merged").and_then(Value::as_bool) == Some(true);
            let verb = if action == "closed" && merged {
                "merged".to_owned()
            } else {
                github_verb(action)
            };
            let number = scalar_at(pr, "/number").or_else(|| scalar_at(p, "/number"));
            s.set_title(format!(
                "{repo}: pull request #{} {verb}: {}",
                number.as_deref().unwrap_or("?"),
                str_at(pr, "/title").unwrap_or("")
            ));
            s.set_url(str_at(pr, "/html_url"));
            s.set_text(str_at(pr, "/body"));
            s.field("Repository", repo);
            s.field("Author", str_at(pr, "/user/login").unwrap_or(""));
            if let (Some(head), Some(base)) = (str_at(pr, "/head/ref"), str_at(pr, "/base/ref")) {
                s.field("Branches", format!("{head} → {base}"));
            }
        }
        "issues" => {
            let issue = p.get("issue").unwrap_or(&Value::Null);
            s.set_title(format!(
                "{repo}: issue #{} {}: {}",
                scalar_at(issue, "/number").as_deref().unwrap_or("?"),
                github_verb(action),
                str_at(issue, "/title").unwrap_or("")
            ));
            s.set_url(str_at(issue, "/html_url"));
            s.set_text(str_at(issue, "/body"));
            s.field("Repository", repo);
            s.field("Author", str_at(issue, "/user/login").unwrap_or(""));
            let labels: Vec<&str> = issue
                .get("labels")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(|x| str_at(x, "/name")).collect())
                .unwrap_or_default();
            s.field("Labels", labels.join(", "));
        }
        "release" => {
            let rel = p.get("release").unwrap_or(&Value::Null);
            let tag = str_at(rel, "/tag_name");
            let name = str_at(rel, "/name").or(tag).unwrap_or("?");
            s.set_title(format!("{repo}: release {name} {}", github_verb(action)));
            s.set_url(str_at(rel, "/html_url"));
            s.set_text(str_at(rel, "/body"));
            s.field("Repository", repo);
            s.field("Tag", tag.unwrap_or(""));
            s.field("Author", str_at(rel, "/author/login").unwrap_or(""));
            if rel.get("prerelease").and_then(Value::as_bool) == Some(true) {
                s.field("Pre-release", "yes");
            }
        }
        "workflow_run" => {
            let run = p.get("workflow_run").unwrap_or(&Value::Null);
            let workflow = str_at(run, "/name").unwrap_or("workflow");
            let number = scalar_at(run, "/run_number").map(|n| format!(" #{n}"));
            let conclusion = str_at(run, "/conclusion");
            let outcome = match (action, conclusion) {
                ("completed", Some(c)) => match c {
                    "success" => "succeeded".to_owned(),
                    "failure" => "failed".to_owned(),
                    "cancelled" => "was cancelled".to_owned(),
                    "timed_out" => "timed out".to_owned(),
                    "skipped" => "was skipped".to_owned(),
                    "action_required" => "needs action".to_owned(),
                    other => format!("completed: {}", other.replace('_', " ")),
                },
                _ => github_verb(action),
            };
            s.tone = match conclusion {
                Some("success") if action == "completed" => Tone::Good,
                Some("failure" | "timed_out" | "startup_failure") if action == "completed" => {
                    Tone::Bad
                }
                _ => Tone::Neutral,
            };
            s.set_title(format!(
                "{repo}: {workflow}{} {outcome}",
                number.unwrap_or_default()
            ));
            s.set_url(str_at(run, "/html_url"));
            s.set_text(
                str_at(run, "/display_title")
                    .or_else(|| str_at(run, "/head_commit/message").map(first_line)),
            );
            s.field("Repository", repo);
            s.field("Branch", str_at(run, "/head_branch").unwrap_or(""));
            s.field("Trigger", str_at(run, "/event").unwrap_or(""));
            s.field(
                "Actor",
                str_at(run, "/triggering_actor/login")
                    .or_else(|| str_at(run, "/actor/login"))
                    .unwrap_or(""),
            );
        }
        _ => {
            let what = if action.is_empty() {
                name.replace('_', " ")
            } else {
                format!("{} {}", name.replace('_', " "), github_verb(action))
            };
            s.set_title(format!("{repo}: {what}"));
            s.set_url(str_at(p, "/repository/html_url"));
            s.set_text(str_at(p, "/zen"));
            s.field("Repository", repo);
            s.field("Sender", sender.unwrap_or(""));
        }
    }
}

fn github_verb(action: &str) -> String {
    match action {
        "synchronize" => "updated".into(),
        "" => "updated".into(),
        other => other.replace('_', " "),
    }
}

fn github_push(s: &mut Summary, repo: &str, sender: Option<&str>, p: &Value) {
    let git_ref = str_at(p, "/ref").unwrap_or("");
    let (kind, name) = if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        ("branch", b)
    } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        ("tag", t)
    } else {
        ("ref", git_ref)
    };
    let pusher = str_at(p, "/pusher/name").or(sender).unwrap_or("someone");
    let commits = p
        .get("commits")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let flag = |k: &str| p.get(k).and_then(Value::as_bool) == Some(true);
    let title = if flag("deleted") {
        format!("{repo}: {kind} {name} deleted by {pusher}")
    } else if kind == "tag" {
        format!("{repo}: tag {name} pushed by {pusher}")
    } else if commits == 0 && flag("created") {
        format!("{repo}: {kind} {name} created by {pusher}")
    } else {
        let forced = if flag("forced") { " (force-push)" } else { "" };
        format!(
            "{repo}: {} pushed to {name} by {pusher}{forced}",
            plural(commits, "commit", "commits")
        )
    };
    s.set_title(title);
    s.set_url(str_at(p, "/compare"));
    let head = p.get("head_commit").filter(|h| h.is_object());
    s.set_text(head.map(commit_line).as_deref());
    s.field("Repository", repo);
    s.field(if kind == "tag" { "Tag" } else { "Branch" }, name);
    s.field("Pusher", pusher);
    if kind == "branch" {
        s.field("Commits", commits.to_string());
    }
}

/// `1a2b3c4 Fix the frobnicator`: a short id and the subject line.
fn commit_line(commit: &Value) -> String {
    let id = str_at(commit, "/id").unwrap_or("");
    let short: String = id.chars().take(7).collect();
    let subject = str_at(commit, "/message").map(first_line).unwrap_or("");
    format!("{short} {subject}").trim().to_owned()
}

fn gitlab(s: &mut Summary, p: &Value) {
    s.provider = "GitLab".into();
    let kind = str_at(p, "/object_kind").unwrap_or("event");
    let project = str_at(p, "/project/path_with_namespace")
        .or_else(|| str_at(p, "/project/name"))
        .unwrap_or("GitLab");
    let user = str_at(p, "/user_name")
        .or_else(|| str_at(p, "/user/name"))
        .or_else(|| str_at(p, "/user_username"))
        .unwrap_or("someone");
    match kind {
        "push" | "tag_push" => {
            let git_ref = str_at(p, "/ref").unwrap_or("");
            let name = git_ref
                .strip_prefix("refs/heads/")
                .or_else(|| git_ref.strip_prefix("refs/tags/"))
                .unwrap_or(git_ref);
            let count = i64_at(p, "/total_commits_count")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or_else(|| {
                    p.get("commits")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                });
            let deleted = str_at(p, "/after").is_some_and(|a| a.bytes().all(|b| b == b'0'));
            let title = match (kind, deleted) {
                (_, true) => format!("{project}: {name} deleted by {user}"),
                ("tag_push", false) => format!("{project}: tag {name} pushed by {user}"),
                _ => format!(
                    "{project}: {} pushed to {name} by {user}",
                    plural(count, "commit", "commits")
                ),
            };
            s.set_title(title);
            // The head commit is the checked-out one, else the last listed.
            let commits = p.get("commits").and_then(Value::as_array);
            let checkout = str_at(p, "/checkout_sha");
            let head = commits.and_then(|c| {
                c.iter()
                    .find(|x| checkout.is_some() && str_at(x, "/id") == checkout)
                    .or_else(|| c.last())
            });
            s.set_url(
                head.and_then(|h| str_at(h, "/url"))
                    .or_else(|| str_at(p, "/project/web_url")),
            );
            s.set_text(head.map(commit_line).as_deref());
            s.field("Project", project);
            s.field(if kind == "tag_push" { "Tag" } else { "Branch" }, name);
            s.field("Pusher", user);
            if kind == "push" {
                s.field("Commits", count.to_string());
            }
        }
        "merge_request" => {
            let mr = p.get("object_attributes").unwrap_or(&Value::Null);
            let action = str_at(mr, "/action").unwrap_or("");
            let verb = match action {
                "open" => "opened".to_owned(),
                "close" => "closed".to_owned(),
                "reopen" => "reopened".to_owned(),
                "update" => "updated".to_owned(),
                "merge" => "merged".to_owned(),
                "" => str_at(mr, "/state").unwrap_or("updated").to_owned(),
                other => other.replace('_', " "),
            };
            s.set_title(format!(
                "{project}: merge request !{} {verb}: {}",
                scalar_at(mr, "/iid").as_deref().unwrap_or("?"),
                str_at(mr, "/title").unwrap_or("")
            ));
            s.set_url(str_at(mr, "/url"));
            s.set_text(str_at(mr, "/description"));
            s.field("Project", project);
            s.field("Author", user);
            if let (Some(src), Some(dst)) =
                (str_at(mr, "/source_branch"), str_at(mr, "/target_branch"))
            {
                s.field("Branches", format!("{src} → {dst}"));
            }
        }
        other => {
            let attrs = p.get("object_attributes").unwrap_or(&Value::Null);
            let what = str_at(attrs, "/title")
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            s.set_title(format!("{project}: {}{what}", other.replace('_', " ")));
            s.set_url(str_at(attrs, "/url").or_else(|| str_at(p, "/project/web_url")));
            s.field("Project", project);
            s.field("User", user);
            s.field("Status", str_at(attrs, "/status").unwrap_or(""));
        }
    }
}

fn stripe(s: &mut Summary, p: &Value) {
    s.provider = "Stripe".into();
    let event_type = str_at(p, "/type")
        .unwrap_or(s.event_type.as_str())
        .to_owned();
    let obj = p.pointer("/data/object").unwrap_or(&Value::Null);
    let currency = str_at(obj, "/currency");
    let amount = ["amount", "amount_paid", "amount_due", "amount_total"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_i64))
        .zip(currency)
        .map(|(a, c)| format_minor(a, c));
    let title = match &amount {
        Some(a) => format!("{}: {a}", humanize(&event_type)),
        None => humanize(&event_type),
    };
    s.set_title(title);
    s.tone = if event_type.ends_with(".failed")
        || event_type.ends_with("payment_failed")
        || event_type.starts_with("charge.dispute.")
    {
        Tone::Bad
    } else if event_type.ends_with(".succeeded") || event_type.ends_with(".paid") {
        Tone::Good
    } else {
        Tone::Neutral
    };
    let live = p.get("livemode").and_then(Value::as_bool);
    let account = str_at(p, "/account");
    // The dashboard's event page; Connect events live under the account.
    if account.is_none()
        && let Some(id) = str_at(p, "/id").filter(|id| id.starts_with("evt_"))
    {
        let mode = if live == Some(false) { "test/" } else { "" };
        s.set_url(Some(&format!(
            "https://dashboard.stripe.com/{mode}events/{id}"
        )));
    }
    let failure =
        str_at(obj, "/last_payment_error/message").or_else(|| str_at(obj, "/failure_message"));
    let text = match (str_at(obj, "/description"), failure) {
        (Some(d), Some(f)) => Some(format!("{d}\n{f}")),
        (d, f) => d.or(f).map(str::to_owned),
    };
    s.set_text(text.as_deref());
    let kind = str_at(obj, "/object")
        .map(humanize)
        .unwrap_or_else(|| "Object".into());
    s.field(&kind, str_at(obj, "/id").unwrap_or(""));
    s.field("Amount", amount.unwrap_or_default());
    let customer = str_at(obj, "/customer").or_else(|| str_at(obj, "/customer/id"));
    s.field("Customer", customer.unwrap_or(""));
    s.field("Status", str_at(obj, "/status").unwrap_or(""));
    s.field(
        "Mode",
        match live {
            Some(true) => "live",
            Some(false) => "test",
            None => "",
        },
    );
    s.field("Account", account.unwrap_or(""));
}

fn shopify(s: &mut Summary, topic: &str, shop: Option<&str>, p: &Value) {
    s.provider = "Shopify".into();
    let (resource, verb) = topic.split_once('/').unwrap_or((topic, ""));
    let verb = match verb {
        "create" => "created".to_owned(),
        "update" | "updated" => "updated".to_owned(),
        "delete" => "deleted".to_owned(),
        other => other.replace('_', " "),
    };
    // A plain host name only: it becomes part of a link.
    let shop = shop.filter(|d| {
        d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    });
    if resource == "orders" {
        let name = str_at(p, "/name")
            .map(str::to_owned)
            .or_else(|| scalar_at(p, "/order_number").map(|n| format!("#{n}")))
            .unwrap_or_else(|| "?".into());
        let currency = str_at(p, "/currency").unwrap_or("");
        let total =
            scalar_at(p, "/total_price").map(|t| format!("{t} {currency}").trim().to_owned());
        let title = match &total {
            Some(t) => format!("Order {name} {verb}: {t}"),
            None => format!("Order {name} {verb}"),
        };
        s.set_title(title);
        if let (Some(shop), Some(id)) = (shop, scalar_at(p, "/id")) {
            s.set_url(Some(&format!("https://{shop}/admin/orders/{id}")));
        }
        s.field("Order", &name);
        s.field("Total", total.unwrap_or_default());
        s.field("Payment", str_at(p, "/financial_status").unwrap_or(""));
        s.field(
            "Fulfillment",
            str_at(p, "/fulfillment_status").unwrap_or("unfulfilled"),
        );
        if let Some(items) = p.get("line_items").and_then(Value::as_array) {
            s.field("Items", items.len().to_string());
        }
    } else {
        let what = str_at(p, "/title")
            .or_else(|| str_at(p, "/name"))
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        s.set_title(format!("{} {verb}{what}", humanize(resource)));
        s.field("Id", scalar_at(p, "/id").unwrap_or_default());
    }
    s.field("Shop", shop.unwrap_or(""));
}

fn slack(s: &mut Summary, p: &Value) {
    s.provider = "Slack".into();
    let ev = p.get("event").unwrap_or(&Value::Null);
    let kind = str_at(ev, "/type").unwrap_or("event");
    let user = str_at(ev, "/user");
    let channel = str_at(ev, "/channel");
    let mut title = humanize(kind);
    if let Some(u) = user {
        title.push_str(&format!(" from {u}"));
    }
    if let Some(c) = channel {
        title.push_str(&format!(" in {c}"));
    }
    s.set_title(title);
    s.set_text(str_at(ev, "/text"));
    s.field("Team", str_at(p, "/team_id").unwrap_or(""));
    s.field("Channel", channel.unwrap_or(""));
    s.field("User", user.unwrap_or(""));
}

/// sluice's own events (`notify`): what happened to which subscription
/// or poller, why, and the delivery's event.
fn sluice(s: &mut Summary, p: &Value) {
    use crate::notify::Kind;
    s.provider = "sluice".into();
    let kind = Kind::parse(&s.event_type);
    let subscription = str_at(p, "/subscription");
    let poller = str_at(p, "/poller");
    let who = subscription.or(poller).unwrap_or("?");
    let (title, tone) = match kind {
        Some(Kind::DeliveryExhausted) => (format!("Delivery to {who} failed"), Tone::Bad),
        Some(Kind::SubscriptionDisabled) => (format!("Subscription {who} disabled"), Tone::Bad),
        Some(Kind::CircuitOpened) => (format!("Circuit of {who} opened"), Tone::Bad),
        Some(Kind::CircuitClosed) => (format!("Circuit of {who} closed"), Tone::Good),
        Some(Kind::PollerFailing) => (format!("Poller {who} is failing"), Tone::Bad),
        None => (
            format!("{} · {who}", humanize(&s.event_type)),
            Tone::Neutral,
        ),
    };
    s.set_title(title);
    s.tone = tone;
    s.set_text(str_at(p, "/text"));
    s.field("Subscription", subscription.unwrap_or(""));
    s.field("Poller", poller.unwrap_or(""));
    s.field("Reason", str_at(p, "/reason").unwrap_or(""));
    s.field("Event", str_at(p, "/event").unwrap_or(""));
    s.field("At", str_at(p, "/at").unwrap_or(""));
}

fn generic(s: &mut Summary, payload: Option<&Value>, body: &[u8], content_type: Option<&str>) {
    s.title = if s.event_type.is_empty() {
        format!("Event from {}", s.source)
    } else {
        truncate(
            &format!("{} event from {}", s.event_type, s.source),
            TITLE_MAX,
        )
        .into_owned()
    };
    match payload {
        Some(Value::Object(map)) => {
            // Sorted, so the choice does not depend on serde_json's map order.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let shown = |k: &&String| !k.trim().is_empty() && !is_sensitive(k);
            for (k, v) in entries.into_iter().filter(|(k, _)| shown(k)) {
                if s.fields.len() == GENERIC_FIELDS {
                    break;
                }
                match v {
                    // The id and type are in the heading and footer already.
                    Value::String(t) if *t == s.event_id || *t == s.event_type => {}
                    Value::String(t) => s.field(k, t),
                    Value::Number(n) => s.field(k, n.to_string()),
                    Value::Bool(b) => s.field(k, b.to_string()),
                    _ => {}
                }
            }
            // Nothing flat to show: show the shape instead.
            if s.fields.is_empty() {
                s.snippet = Some(json_snippet(&Value::Object(map.clone())));
            }
        }
        Some(other) => s.snippet = Some(json_snippet(other)),
        None => {
            s.snippet = Some(match std::str::from_utf8(body) {
                Ok(text) if !text.trim().is_empty() => {
                    truncate(text.trim(), SNIPPET_MAX).into_owned()
                }
                _ => format!(
                    "({} bytes of {})",
                    body.len(),
                    content_type.unwrap_or("unknown content type")
                ),
            });
        }
    }
}

fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| key.contains(s))
}

/// Pretty JSON with sensitive values masked, cut to the snippet cap.
fn json_snippet(v: &Value) -> String {
    let masked = mask(v);
    let pretty = serde_json::to_string_pretty(&masked).unwrap_or_default();
    truncate(&pretty, SNIPPET_MAX).into_owned()
}

fn mask(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let v = if is_sensitive(k) {
                            Value::String("[redacted]".into())
                        } else {
                            mask(v)
                        };
                        (k.clone(), v)
                    })
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::model::Headers;

    fn event(source: &str, event_type: &str, headers: &[(&str, &str)], body: &[u8]) -> Event {
        Event {
            source: source.into(),
            id: "evt-1".into(),
            event_type: event_type.into(),
            received_at_ms: 1_700_000_000_000,
            expires_at: 0,
            body: Bytes::copy_from_slice(body),
            body_hash: String::new(),
            content_type: Some("application/json".into()),
            headers: Headers::from_pairs(headers),
        }
    }

    fn summary_of(source: &str, event_type: &str, headers: &[(&str, &str)], v: &Value) -> Summary {
        let body = serde_json::to_vec(v).unwrap();
        let e = event(source, event_type, headers, &body);
        summarize(&e, Some(v))
    }

    fn field<'a>(s: &'a Summary, name: &str) -> Option<&'a str> {
        s.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }

    #[test]
    fn github_push() {
        let p = json!({
            "ref": "refs/heads/main",
            "compare": "https://github.com/acme/api/compare/a...b",
            "repository": {"full_name": "acme/api"},
            "pusher": {"name": "octocat"},
            "commits": [{}, {}, {}],
            "head_commit": {"id": "1a2b3c4d5e6f", "message": "Fix the frobnicator\n\nLong body"}
        });
        let s = summary_of("gh", "push", &[("x-github-event", "push")], &p);
        assert_eq!(s.provider, "GitHub");
        assert_eq!(s.heading(), "GitHub · push");
        assert_eq!(s.title, "acme/api: 3 commits pushed to main by octocat");
        assert_eq!(
            s.url.as_deref(),
            Some("https://github.com/acme/api/compare/a...b")
        );
        assert_eq!(s.text.as_deref(), Some("1a2b3c4 Fix the frobnicator"));
        assert_eq!(field(&s, "Branch"), Some("main"));
        assert_eq!(field(&s, "Commits"), Some("3"));
        assert_eq!(s.received_at, "2023-11-14T22:13:20Z");
    }

    #[test]
    fn github_push_variants() {
        let base = |extra: Value| {
            let mut p =
                json!({"repository": {"full_name": "r"}, "pusher": {"name": "u"}, "commits": []});
            p.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            summary_of("gh", "push", &[("x-github-event", "push")], &p).title
        };
        assert_eq!(
            base(json!({"ref": "refs/tags/v1.0"})),
            "r: tag v1.0 pushed by u"
        );
        assert_eq!(
            base(json!({"ref": "refs/heads/x", "deleted": true})),
            "r: branch x deleted by u"
        );
        assert_eq!(
            base(json!({"ref": "refs/heads/x", "created": true})),
            "r: branch x created by u"
        );
        assert_eq!(
            base(json!({"ref": "refs/heads/x", "forced": true, "commits": [{}]})),
            "r: 1 commit pushed to x by u (force-push)"
        );
    }

    #[test]
    fn github_pull_request_issue_release_workflow() {
        let gh = |name: &str, p: Value| summary_of("gh", name, &[("x-github-event", name)], &p);
        let pr = gh(
            "pull_request",
            json!({"action": "closed", "number": 42, "repository": {"full_name": "acme/api"},
                   "pull_request": {"number": 42, "title": "Add frobnicator", "merged": true,
                   "html_url": "https://github.com/acme/api/pull/42", "user": {"login": "hubot"},
                   "head": {"ref": "feat"}, "base": {"ref": "main"}}}),
        );
        assert_eq!(
            pr.title,
            "acme/api: pull request #42 merged: Add frobnicator"
        );
        assert_eq!(field(&pr, "Author"), Some("hubot"));
        assert_eq!(field(&pr, "Branches"), Some("feat → main"));
        assert_eq!(
            pr.url.as_deref(),
            Some("https://github.com/acme/api/pull/42")
        );

        let issue = gh(
            "issues",
            json!({"action": "opened", "repository": {"full_name": "acme/api"},
                   "issue": {"number": 7, "title": "Crash", "labels": [{"name": "bug"}, {"name": "p1"}],
                   "user": {"login": "u"}, "html_url": "https://github.com/acme/api/issues/7"}}),
        );
        assert_eq!(issue.title, "acme/api: issue #7 opened: Crash");
        assert_eq!(field(&issue, "Labels"), Some("bug, p1"));

        let rel = gh(
            "release",
            json!({"action": "published", "repository": {"full_name": "acme/api"},
                   "release": {"tag_name": "v2.0.0", "name": "", "prerelease": true,
                   "html_url": "https://github.com/acme/api/releases/v2.0.0", "body": "Notes"}}),
        );
        assert_eq!(rel.title, "acme/api: release v2.0.0 published");
        assert_eq!(field(&rel, "Pre-release"), Some("yes"));
        assert_eq!(rel.text.as_deref(), Some("Notes"));

        let run = gh(
            "workflow_run",
            json!({"action": "completed", "repository": {"full_name": "acme/api"},
                   "workflow_run": {"name": "CI", "run_number": 12, "conclusion": "failure",
                   "head_branch": "main", "event": "push", "display_title": "Fix it",
                   "html_url": "https://github.com/acme/api/actions/runs/1", "actor": {"login": "u"}}}),
        );
        assert_eq!(run.title, "acme/api: CI #12 failed");
        assert_eq!(run.tone, Tone::Bad);
        assert_eq!(run.text.as_deref(), Some("Fix it"));

        let star = gh(
            "star",
            json!({"action": "created", "repository": {"full_name": "acme/api"}, "sender": {"login": "fan"}}),
        );
        assert_eq!(star.title, "acme/api: star created");
        assert_eq!(field(&star, "Sender"), Some("fan"));
    }

    #[test]
    fn stripe_amounts_use_minor_units() {
        let p = json!({
            "id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "livemode": false,
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 2000,
                     "currency": "usd", "customer": "cus_9", "status": "succeeded"}}
        });
        let s = summary_of("stripe", "payment_intent.succeeded", &[], &p);
        assert_eq!(s.provider, "Stripe");
        assert_eq!(s.title, "Payment intent succeeded: 20.00 USD");
        assert_eq!(s.tone, Tone::Good);
        assert_eq!(field(&s, "Payment intent"), Some("pi_1"));
        assert_eq!(field(&s, "Customer"), Some("cus_9"));
        assert_eq!(field(&s, "Mode"), Some("test"));
        assert_eq!(
            s.url.as_deref(),
            Some("https://dashboard.stripe.com/test/events/evt_1")
        );

        let jpy = json!({"id": "evt_2", "object": "event", "type": "charge.failed", "livemode": true,
            "data": {"object": {"id": "ch_1", "object": "charge", "amount": 500, "currency": "jpy",
            "failure_message": "Card declined"}}});
        let s = summary_of("stripe", "charge.failed", &[], &jpy);
        assert_eq!(s.title, "Charge failed: 500 JPY");
        assert_eq!(s.tone, Tone::Bad);
        assert_eq!(s.text.as_deref(), Some("Card declined"));
        assert_eq!(
            s.url.as_deref(),
            Some("https://dashboard.stripe.com/events/evt_2")
        );
    }

    #[test]
    fn shopify_orders() {
        let p = json!({"id": 820982911946154508u64, "name": "#1001", "total_price": "199.00",
            "currency": "CAD", "financial_status": "paid", "fulfillment_status": null,
            "line_items": [{}, {}]});
        let s = summary_of(
            "shop",
            "orders/create",
            &[
                ("x-shopify-topic", "orders/create"),
                ("x-shopify-shop-domain", "acme.myshopify.com"),
            ],
            &p,
        );
        assert_eq!(s.title, "Order #1001 created: 199.00 CAD");
        assert_eq!(
            s.url.as_deref(),
            Some("https://acme.myshopify.com/admin/orders/820982911946154508")
        );
        assert_eq!(field(&s, "Fulfillment"), Some("unfulfilled"));
        assert_eq!(field(&s, "Items"), Some("2"));
    }

    #[test]
    fn slack_and_gitlab() {
        let p = json!({"token": "XXX", "team_id": "T1", "type": "event_callback",
            "event": {"type": "message", "user": "U1", "channel": "C1", "text": "hello <!channel>"}});
        let s = summary_of("slack", "message", &[], &p);
        assert_eq!(s.title, "Message from U1 in C1");
        assert_eq!(s.text.as_deref(), Some("hello <!channel>"));
        assert!(s.fields.iter().all(|f| f.value != "XXX"));

        let push = json!({"object_kind": "push", "ref": "refs/heads/main", "user_name": "Jo",
            "project": {"path_with_namespace": "g/p", "web_url": "https://gitlab.com/g/p"},
            "total_commits_count": 2, "checkout_sha": "bbb",
            "commits": [{"id": "aaa", "message": "old"}, {"id": "bbb", "message": "new\nbody", "url": "https://gitlab.com/g/p/-/commit/bbb"}]});
        let s = summary_of("gl", "push", &[("x-gitlab-event", "Push Hook")], &push);
        assert_eq!(s.title, "g/p: 2 commits pushed to main by Jo");
        assert_eq!(s.text.as_deref(), Some("bbb new"));
        assert_eq!(
            s.url.as_deref(),
            Some("https://gitlab.com/g/p/-/commit/bbb")
        );

        let mr = json!({"object_kind": "merge_request", "user": {"name": "Jo"},
            "project": {"path_with_namespace": "g/p"},
            "object_attributes": {"iid": 5, "title": "Speed up", "action": "merge",
            "url": "https://gitlab.com/g/p/-/merge_requests/5", "source_branch": "fast", "target_branch": "main"}});
        let s = summary_of("gl", "merge_request", &[], &mr);
        assert_eq!(s.title, "g/p: merge request !5 merged: Speed up");
        assert_eq!(field(&s, "Branches"), Some("fast → main"));
    }

    #[test]
    fn generic_shows_flat_fields_and_hides_secrets() {
        let p = json!({"id": "x1", "type": "thing.done", "count": 3, "ok": true,
            "api_token": "hunter2", "nested": {"a": 1}});
        let s = summary_of("acme", "thing.done", &[], &p);
        assert_eq!(s.provider, "acme");
        assert_eq!(s.title, "thing.done event from acme");
        let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["count", "id", "ok"]);
        assert!(s.snippet.is_none());

        // An empty key would be an empty field name, which Discord refuses.
        let odd = json!({"": "x", "object": "event", "type": "", "data": {"object": {}}});
        let s = summary_of("acme", "", &[], &odd);
        assert_eq!(s.title, "Event from acme", "Stripe-shaped with no type");
        assert!(s.fields.iter().all(|f| !f.name.is_empty()));

        let nested = json!({"data": {"password": "p", "list": [1, 2]}});
        let s = summary_of("acme", "", &[], &nested);
        assert_eq!(s.title, "Event from acme");
        let snippet = s.snippet.unwrap();
        assert!(
            snippet.contains("[redacted]") && !snippet.contains("\"p\""),
            "{snippet}"
        );
    }

    #[test]
    fn non_json_bodies_get_the_generic_summary() {
        let e = event("form", "", &[], b"a=1&b=2");
        let s = summarize(&e, None);
        assert_eq!(s.snippet.as_deref(), Some("a=1&b=2"));
        let e = event("bin", "", &[], &[0xff, 0xfe, 0x00]);
        let s = summarize(&e, None);
        assert_eq!(s.snippet.as_deref(), Some("(3 bytes of application/json)"));
        // A provider header with a body that is not JSON is still generic.
        let e = event("gh", "push", &[("x-github-event", "push")], b"not json");
        assert_eq!(summarize(&e, None).provider, "gh");
    }

    #[test]
    fn links_are_http_only() {
        assert_eq!(http_url("javascript:alert(1)"), None);
        assert_eq!(http_url("not a url"), None);
        assert_eq!(
            http_url(" https://x.test/a ").as_deref(),
            Some("https://x.test/a")
        );
    }

    #[test]
    fn long_values_are_capped() {
        let long = "x".repeat(5000);
        let p = json!({"ref": "refs/heads/main", "repository": {"full_name": long.clone()},
            "head_commit": {"id": "1", "message": long}});
        let s = summary_of("gh", "push", &[("x-github-event", "push")], &p);
        assert!(s.title.chars().count() <= TITLE_MAX);
        assert!(s.text.as_ref().unwrap().chars().count() <= TEXT_MAX);
        assert!(
            s.fields
                .iter()
                .all(|f| f.value.chars().count() <= FIELD_MAX)
        );
    }
}
