//! The admin API's answers as text for a terminal. Every function takes
//! the JSON the API returned (what `--json` prints), so the table and the
//! JSON never disagree. Text from the outside is cleaned of control
//! characters ([`crate::table`]).

use std::fmt::Write as _;

use serde_json::Value;

use crate::table::{Table, clean_line, clean_text};

/// Longest response piece shown in a table cell.
const SNIPPET: usize = 40;

/// A value as a cell: strings bare, null as `-`.
pub fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `2026-01-31T12:00:00.123Z` as `2026-01-31 12:00:00` (UTC).
fn time(v: &Value) -> String {
    match v.as_str() {
        Some(t) if t.len() >= 19 && t.is_char_boundary(19) => t[..19].replacen('T', " ", 1),
        _ => s(v),
    }
}

fn list(v: &Value) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items.iter().map(s).collect::<Vec<_>>().join(","),
        _ => "-".to_owned(),
    }
}

fn yes_no(v: &Value) -> &'static str {
    if v.as_bool().unwrap_or(false) {
        "yes"
    } else {
        "no"
    }
}

fn snippet(v: &Value) -> String {
    let text = s(v);
    match text.char_indices().nth(SNIPPET) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The start of an attempt's response, or of its error.
fn outcome(attempt: &Value) -> String {
    match (&attempt["response"], &attempt["error"]) {
        (Value::Null, Value::Null) => "-".to_owned(),
        (Value::Null, e) => snippet(e),
        (r, _) => snippet(r),
    }
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn table_or(t: &Table, none: &str) -> String {
    if t.is_empty() {
        format!("{none}\n")
    } else {
        t.render()
    }
}

/// `key: value` lines, keys padded.
fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in pairs {
        let _ = writeln!(out, "{:<width$} {}", format!("{k}:"), clean_line(v));
    }
    out
}

pub fn sources(v: &Value) -> String {
    let mut t = Table::new(&["ID", "PROVIDER", "ENABLED", "ORIGIN", "SECRETS", "PATH"]);
    for src in items(v, "sources") {
        t.row([
            s(&src["id"]),
            s(&src["provider"]),
            yes_no(&src["enabled"]).to_owned(),
            s(&src["origin"]),
            list(&src["secrets"]),
            s(&src["path"]),
        ]);
    }
    table_or(&t, "no sources")
}

pub fn source(v: &Value) -> String {
    let mut pairs = vec![
        ("id", s(&v["id"])),
        ("provider", s(&v["provider"])),
        ("path", s(&v["path"])),
        ("secrets", list(&v["secrets"])),
    ];
    // Only a provider that sends its secret in a handshake (Asana) has one.
    if let Some(h) = v.get("handshake") {
        pairs.push(("handshake", s(h)));
    }
    pairs.extend([
        ("enabled", yes_no(&v["enabled"]).to_owned()),
        ("origin", s(&v["origin"])),
        ("tolerance_secs", s(&v["tolerance_secs"])),
        ("dedupe_window", s(&v["dedupe_window"])),
        ("max_body_bytes", s(&v["max_body_bytes"])),
        ("public_url", s(&v["public_url"])),
        ("verify_token", s(&v["verify_token"])),
        ("created", time(&v["created_at"])),
        ("updated", time(&v["updated_at"])),
    ]);
    fields(&pairs)
}

pub fn subscriptions(v: &Value) -> String {
    let mut t = Table::new(&[
        "ID", "SOURCE", "EVENTS", "FORMAT", "ENABLED", "ORIGIN", "URL",
    ]);
    for sub in items(v, "subscriptions") {
        t.row([
            s(&sub["id"]),
            s(&sub["source"]),
            list(&sub["events"]),
            s(&sub["format"]),
            yes_no(&sub["enabled"]).to_owned(),
            s(&sub["origin"]),
            s(&sub["url"]),
        ]);
    }
    table_or(&t, "no subscriptions")
}

/// A subscription; a signing secret in the answer (create, rotate) is
/// shown, this once, with a warning that it will not be shown again.
pub fn subscription(v: &Value) -> String {
    let mut out = fields(&[
        ("id", s(&v["id"])),
        ("source", s(&v["source"])),
        ("url", s(&v["url"])),
        ("events", list(&v["events"])),
        ("filter", s(&v["filter"])),
        ("format", s(&v["format"])),
        ("retry_schedule", list(&v["retry_schedule"])),
        ("allow_local", yes_no(&v["allow_local"]).to_owned()),
        ("enabled", yes_no(&v["enabled"]).to_owned()),
        ("origin", s(&v["origin"])),
        (
            "signing secret",
            yes_no(&v["has_signing_secret"]).to_owned(),
        ),
        ("previous until", time(&v["previous_secret_until"])),
        ("created", time(&v["created_at"])),
        ("updated", time(&v["updated_at"])),
    ]);
    let controls = &v["delivery_controls"];
    if controls.is_object() {
        out.push_str(&delivery_controls(controls));
    }
    if let Some(secret) = v["signing_secret"].as_str() {
        let _ = writeln!(
            out,
            "\nsigning secret (shown only this once; store it now):\n{}",
            clean_line(secret)
        );
    }
    out
}

/// The controls in effect and the circuit, below a subscription's fields.
fn delivery_controls(c: &Value) -> String {
    let or_none = |v: &Value| {
        if v.is_null() { "none".to_owned() } else { s(v) }
    };
    let breaker = &c["circuit_breaker"];
    let breaker = if breaker.is_object() {
        let mut b = format!(
            "after {} failures in a row, first probe after {}",
            s(&breaker["failures"]),
            s(&breaker["probe_after"])
        );
        if breaker["disable_after"].is_string() {
            let _ = write!(b, ", disable after {} open", s(&breaker["disable_after"]));
        }
        b
    } else {
        "off".to_owned()
    };
    let circuit = &c["circuit"];
    let mut state = s(&circuit["state"]);
    if circuit["opened_at"].is_string() {
        let _ = write!(state, " since {}", time(&circuit["opened_at"]));
    }
    if circuit["next_probe_at"].is_string() {
        let _ = write!(state, ", next probe {}", time(&circuit["next_probe_at"]));
    }
    let mut out = String::from("\n");
    out.push_str(&fields(&[
        ("rate limit", or_none(&c["rate_limit"])),
        ("max in flight", or_none(&c["max_in_flight"])),
        ("in flight", s(&c["in_flight"])),
        ("breaker", breaker),
        ("circuit", state),
        ("failures in a row", s(&circuit["consecutive_failures"])),
    ]));
    out
}

/// A URL without its query and userinfo, which may hold tokens.
fn redacted_url(v: &Value) -> String {
    match v.as_str().map(url::Url::parse) {
        Some(Ok(u)) => sluice::delivery::redacted(&u),
        _ => s(v),
    }
}

/// A poller's interval: its own, or the default.
fn interval(v: &Value) -> String {
    match v.as_str() {
        Some(i) => i.to_owned(),
        None => humantime::format_duration(sluice::poll::config::DEFAULT_INTERVAL).to_string(),
    }
}

pub fn pollers(v: &Value) -> String {
    let mut t = Table::new(&[
        "ID",
        "URL",
        "INTERVAL",
        "ENABLED",
        "LAST POLL",
        "RESULT",
        "EMITTED",
        "NEXT POLL",
        "LAST ERROR",
    ]);
    for p in items(v, "pollers") {
        let state = &p["state"];
        t.row([
            s(&p["id"]),
            redacted_url(&p["url"]),
            interval(&p["interval"]),
            yes_no(&p["enabled"]).to_owned(),
            time(&state["last_poll_at"]),
            s(&state["last_result"]),
            s(&state["emitted_total"]),
            time(&state["next_poll_at"]),
            s(&state["last_error"]),
        ]);
    }
    table_or(&t, "no pollers")
}

/// What `pollers run` did.
pub fn poll_report(v: &Value) -> String {
    let id = s(&v["poller"]);
    let verb = if v["dry_run"] == true {
        "would emit"
    } else {
        "emitted"
    };
    let emitted = v["emitted"].as_array().map_or(0, Vec::len);
    let mut out = match v["result"].as_str().unwrap_or_default() {
        "primed" => format!(
            "{id}: first poll: {} items recorded, none emitted (emit_existing is off)\n",
            s(&v["recorded"])
        ),
        "polled" => format!(
            "{id}: {} items read, {verb} {emitted}, {} already committed\n",
            s(&v["items"]),
            s(&v["duplicates"])
        ),
        "not_modified" => format!("{id}: not modified since the last poll\n"),
        "throttled" | "failed" => format!(
            "{id}: {}: {}\n",
            s(&v["result"]),
            clean_line(v["error"].as_str().unwrap_or_default())
        ),
        other => format!("{id}: {other}\n"),
    };
    for e in v["emitted"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {verb} {} ({})\n",
            s(&e["id"]),
            s(&e["event_type"])
        ));
    }
    for why in v["skipped"].as_array().into_iter().flatten() {
        out.push_str(&format!("  skipped {}\n", s(why)));
    }
    out
}

/// A poller; header values are what the config holds (secret references
/// for credentials, never their values).
pub fn poller(v: &Value) -> String {
    let headers = match v["headers"].as_object() {
        Some(h) if !h.is_empty() => h
            .iter()
            .map(|(name, value)| format!("{name}={}", s(value)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".to_owned(),
    };
    fields(&[
        ("id", s(&v["id"])),
        ("url", s(&v["url"])),
        ("format", s(&v["format"])),
        ("interval", interval(&v["interval"])),
        ("items", s(&v["items"])),
        ("item_id", s(&v["item_id"])),
        ("type", s(&v["type"])),
        ("timestamp", s(&v["timestamp"])),
        ("since_param", s(&v["since_param"])),
        ("headers", headers),
        ("max_pages", s(&v["max_pages"])),
        ("emit_existing", yes_no(&v["emit_existing"]).to_owned()),
        ("dedupe_window", s(&v["dedupe_window"])),
        ("max_response_bytes", s(&v["max_response_bytes"])),
        ("allow_local", yes_no(&v["allow_local"]).to_owned()),
        ("enabled", yes_no(&v["enabled"]).to_owned()),
        ("origin", s(&v["origin"])),
        ("created", time(&v["created_at"])),
        ("updated", time(&v["updated_at"])),
        ("last poll", time(&v["state"]["last_poll_at"])),
        ("result", s(&v["state"]["last_result"])),
        ("emitted", s(&v["state"]["emitted_total"])),
        ("next poll", time(&v["state"]["next_poll_at"])),
        ("last error", s(&v["state"]["last_error"])),
        ("failures in a row", s(&v["state"]["failures"])),
    ])
}

pub fn events(v: &Value) -> String {
    let mut t = Table::new(&[
        "ID",
        "TYPE",
        "STATUS",
        "RECEIVED",
        "DELIVERED",
        "PENDING",
        "FAILED",
        "REPLAY OF",
    ]);
    for e in items(v, "events") {
        let d = &e["deliveries"];
        t.row([
            s(&e["id"]),
            s(&e["type"]),
            s(&e["status"]),
            time(&e["received_at"]),
            s(&d["delivered"]),
            s(&d["pending"]),
            s(&d["failed"]),
            s(&e["replay_of"]),
        ]);
    }
    let mut out = table_or(&t, "no events");
    if let Some(c) = v["next_cursor"].as_str() {
        let _ = writeln!(out, "more: --cursor {}", clean_line(c));
    }
    out
}

/// One event: what came in, then per destination what happened.
pub fn event(v: &Value) -> String {
    let mut out = fields(&[
        ("id", s(&v["id"])),
        ("type", s(&v["type"])),
        ("status", s(&v["status"])),
        ("received", time(&v["received_at"])),
        ("expires", time(&v["expires_at"])),
        ("content type", s(&v["content_type"])),
        ("routed to", list(&v["routed"])),
        ("replay of", s(&v["replay_of"])),
        ("replays", list(&v["replays"])),
    ]);
    out.push_str("\nheaders:\n");
    if let Some(h) = v["headers"].as_object() {
        for (k, val) in h {
            let _ = writeln!(out, "  {}: {}", clean_line(k), clean_line(&s(val)));
        }
    } else if let Some(pairs) = v["headers"].as_array() {
        for p in pairs {
            let _ = writeln!(
                out,
                "  {}: {}",
                clean_line(&s(&p[0])),
                clean_line(&s(&p[1]))
            );
        }
    }
    let _ = writeln!(out, "\nbody ({}):", s(&v["body_encoding"]));
    out.push_str(&clean_text(&s(&v["body"])));
    out.push_str("\n\ndeliveries:\n");
    let mut t = Table::new(&[
        "SUBSCRIPTION",
        "STATUS",
        "ATTEMPTS",
        "OK",
        "FAILED",
        "LAST ATTEMPT",
        "CODE",
        "LATENCY",
        "NEXT ATTEMPT",
        "RESPONSE / ERROR",
    ]);
    let deliveries = items(v, "deliveries");
    for d in deliveries {
        let last = &d["last_attempt"];
        let code = match (&last["status_code"], &last["error"]) {
            (Value::Null, Value::Null) => "-".to_owned(),
            (Value::Null, _) => "error".to_owned(),
            (c, _) => s(c),
        };
        t.row([
            s(&d["subscription"]),
            s(&d["status"]),
            s(&d["attempts"]["total"]),
            s(&d["attempts"]["succeeded"]),
            s(&d["attempts"]["failed"]),
            time(&last["at"]),
            code,
            last["latency_ms"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
            time(&d["next_attempt_at"]),
            outcome(last),
        ]);
    }
    out.push_str(&table_or(&t, "  none yet"));
    for d in deliveries {
        let log = items(d, "attempt_log");
        if log.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\nattempts to {}:", clean_line(&s(&d["subscription"])));
        let mut t = Table::new(&["#", "AT", "CODE", "LATENCY", "NEXT", "RESPONSE / ERROR"]);
        for a in log {
            t.row([
                s(&a["attempt"]),
                time(&a["at"]),
                s(&a["status_code"]),
                a["latency_ms"]
                    .as_u64()
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
                time(&a["next_attempt_at"]),
                outcome(a),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

pub fn dead_letters(v: &Value) -> String {
    let mut t = Table::new(&["ID", "EVENT", "SUBSCRIPTION", "RECEIVES", "AT", "REASON"]);
    for d in items(v, "dead_letters") {
        t.row([
            s(&d["id"]),
            s(&d["event"]),
            s(&d["subscription"]),
            s(&d["receive_count"]),
            time(&d["at"]),
            s(&d["reason"]),
        ]);
    }
    let mut out = table_or(&t, "no dead letters");
    if let Some(c) = v["next_cursor"].as_str() {
        let _ = writeln!(out, "more: --cursor {}", clean_line(c));
    }
    out
}

pub fn replay(v: &Value) -> String {
    format!(
        "queued replay {} of {} to {}\n",
        clean_line(&s(&v["id"])),
        clean_line(&s(&v["replay_of"])),
        clean_line(&list(&v["subscriptions"]))
    )
}

/// A bulk replay or redrive (or its dry run): what was queued, what was not.
pub fn bulk(v: &Value, count: &str, verb: &str) -> String {
    let n = v[count].as_u64().unwrap_or(0);
    let dry = v["dry_run"].as_bool().unwrap_or(false);
    let mut out = if dry {
        format!("dry run: would {verb} {n} deliveries\n")
    } else {
        format!("{count} {n} deliveries\n")
    };
    let mut t = if dry {
        Table::new(&["EVENT", "SUBSCRIPTIONS"])
    } else {
        Table::new(&["REPLAY", "EVENT", "SUBSCRIPTIONS"])
    };
    for r in items(v, "replays") {
        if dry {
            t.row([s(&r["event"]), list(&r["subscriptions"])]);
        } else {
            t.row([s(&r["id"]), s(&r["event"]), list(&r["subscriptions"])]);
        }
    }
    if !t.is_empty() {
        out.push_str(&t.render());
    }
    let skipped = items(v, "skipped");
    if !skipped.is_empty() {
        let _ = writeln!(out, "\nskipped {}:", skipped.len());
        let mut t = Table::new(&["EVENT", "SUBSCRIPTION", "REASON"]);
        for k in skipped {
            t.row([s(&k["event"]), s(&k["subscription"]), s(&k["reason"])]);
        }
        out.push_str(&t.render());
    }
    if dry && v["more"].as_bool().unwrap_or(false) {
        out.push_str("(more match: a dry run shows the first 1000)\n");
    }
    out
}

fn entry(e: &Value) -> String {
    clean_line(&format!("{} {}", s(&e["kind"]), s(&e["id"])))
}

/// The changes `apply` makes: `+` create, `~` update (field by field),
/// `-` delete.
pub fn plan(v: &Value) -> String {
    let mut out = String::new();
    for e in items(v, "create") {
        let _ = writeln!(out, "+ {}", entry(e));
    }
    for e in items(v, "update") {
        let _ = writeln!(out, "~ {}", entry(e));
        if e["take_over"].as_bool().unwrap_or(false) {
            out.push_str("    now owned by the file (was created through the API)\n");
        }
        for c in items(e, "changes") {
            let _ = writeln!(
                out,
                "    {}: {} -> {}",
                clean_line(&s(&c["field"])),
                clean_line(&c["from"].to_string()),
                clean_line(&c["to"].to_string())
            );
        }
    }
    for e in items(v, "delete") {
        let _ = writeln!(out, "- {}", entry(e));
    }
    let unchanged = v["unchanged"].as_u64().unwrap_or(0);
    if out.is_empty() {
        let _ = writeln!(out, "no changes ({unchanged} unchanged)");
    } else {
        let _ = writeln!(
            out,
            "{} to create, {} to update, {} to delete, {unchanged} unchanged",
            items(v, "create").len(),
            items(v, "update").len(),
            items(v, "delete").len()
        );
    }
    out
}
