//! `sluice sources …`, `sluice subscriptions …` and `sluice pollers …`:
//! the admin API's config routes.

use std::io::Read as _;

use http::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, seg, with_query};
use crate::args::{
    PollerAdd, PollerCmd, SourceAdd, SourceCmd, SourceRotate, SubscriptionAdd, SubscriptionCmd,
};
use crate::error::CliError;
use crate::render;

pub async fn sources(ctx: &Ctx, cmd: SourceCmd) -> Result<(), CliError> {
    match cmd {
        SourceCmd::List => {
            let v = ctx.call(Method::GET, "/admin/sources", None).await?;
            ctx.print(&v, render::sources);
        }
        SourceCmd::Show { id } => {
            let v = ctx
                .call(Method::GET, &format!("/admin/sources/{}", seg(&id)), None)
                .await?;
            ctx.print(&v, render::source);
        }
        SourceCmd::Add(a) => {
            let body = source_body(a)?;
            let v = ctx.call(Method::POST, "/admin/sources", Some(body)).await?;
            ctx.print(&v, |v| format!("created source\n{}", render::source(v)));
        }
        SourceCmd::Rm { id } => {
            ctx.call(
                Method::DELETE,
                &format!("/admin/sources/{}", seg(&id)),
                None,
            )
            .await?;
            ctx.print(&json!({ "deleted": id }), |_| {
                format!("deleted source {}\n", crate::table::clean_line(&id))
            });
        }
        SourceCmd::Rotate(r) => rotate_source(ctx, r).await?,
        SourceCmd::Enable { id } => set_enabled(ctx, "sources", &id, true).await?,
        SourceCmd::Disable { id } => set_enabled(ctx, "sources", &id, false).await?,
    }
    Ok(())
}

fn source_body(a: SourceAdd) -> Result<Value, CliError> {
    let mut secrets: Vec<Value> = a.secrets.into_iter().map(Value::String).collect();
    if a.secret_stdin {
        secrets.push(json!({ "value": read_secret()? }));
    }
    if secrets.is_empty() {
        return Err(CliError::Usage(
            "name a secret: --secret env:NAME (or ssm:/path), or --secret-stdin".into(),
        ));
    }
    let mut body = Map::new();
    body.insert("id".into(), json!(a.id));
    body.insert("provider".into(), json!(a.provider));
    body.insert("secrets".into(), Value::Array(secrets));
    if let Some(v) = a.tolerance_secs {
        body.insert("tolerance_secs".into(), json!(v));
    }
    if let Some(v) = a.dedupe_window {
        body.insert("dedupe_window".into(), json!(v));
    }
    if let Some(v) = a.max_body_bytes {
        body.insert("max_body_bytes".into(), json!(v));
    }
    for (name, settings) in [("hmac", a.hmac), ("token", a.token), ("jwt", a.jwt)] {
        if let Some(text) = settings {
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("--{name} is not JSON: {e}")))?;
            body.insert(name.into(), v);
        }
    }
    if let Some(u) = a.public_url {
        body.insert("public_url".into(), json!(u));
    }
    if let Some(r) = a.verify_token {
        body.insert("verify_token".into(), json!(r));
    }
    Ok(Value::Object(body))
}

/// A secret value from stdin (never from the command line, where shell
/// history and `ps` would keep it).
fn read_secret() -> Result<String, CliError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| CliError::Usage(format!("cannot read the secret from stdin: {e}")))?;
    let s = s.trim_end_matches(['\r', '\n']).to_owned();
    if s.is_empty() {
        return Err(CliError::Usage(
            "the secret read from stdin is empty".into(),
        ));
    }
    Ok(s)
}

async fn rotate_source(ctx: &Ctx, r: SourceRotate) -> Result<(), CliError> {
    let base = format!("/admin/sources/{}/secrets", seg(&r.id));
    let v = if let Some(old) = r.remove {
        ctx.call(Method::DELETE, &format!("{base}/{}", seg(&old)), None)
            .await?
    } else {
        let body = match r.add {
            Some(reference) => json!({ "ref": reference }),
            None => json!({ "value": read_secret()? }),
        };
        ctx.call(Method::POST, &base, Some(body)).await?
    };
    ctx.print(&v, render::source);
    Ok(())
}

async fn set_enabled(ctx: &Ctx, kind: &str, id: &str, enabled: bool) -> Result<(), CliError> {
    let action = if enabled { "enable" } else { "disable" };
    let v = ctx
        .call(
            Method::POST,
            &format!("/admin/{kind}/{}/{action}", seg(id)),
            None,
        )
        .await?;
    ctx.print(&v, |v| {
        format!(
            "{} {} {}d\n",
            kind.trim_end_matches('s'),
            render::s(&v["id"]),
            action
        )
    });
    Ok(())
}

pub async fn subscriptions(ctx: &Ctx, cmd: SubscriptionCmd) -> Result<(), CliError> {
    match cmd {
        SubscriptionCmd::List { source } => {
            let path = with_query("/admin/subscriptions", &[("source", source)]);
            let v = ctx.call(Method::GET, &path, None).await?;
            ctx.print(&v, render::subscriptions);
        }
        SubscriptionCmd::Show { id } => {
            let v = ctx
                .call(
                    Method::GET,
                    &format!("/admin/subscriptions/{}", seg(&id)),
                    None,
                )
                .await?;
            ctx.print(&v, render::subscription);
        }
        SubscriptionCmd::Add(a) => {
            let v = ctx
                .call(
                    Method::POST,
                    "/admin/subscriptions",
                    Some(subscription_body(*a)),
                )
                .await?;
            ctx.print(&v, |v| {
                format!("created subscription\n{}", render::subscription(v))
            });
        }
        SubscriptionCmd::Rm { id } => {
            ctx.call(
                Method::DELETE,
                &format!("/admin/subscriptions/{}", seg(&id)),
                None,
            )
            .await?;
            ctx.print(&json!({ "deleted": id }), |_| {
                format!("deleted subscription {}\n", crate::table::clean_line(&id))
            });
        }
        SubscriptionCmd::Rotate { id, overlap } => {
            let body = match overlap {
                Some(o) => json!({ "overlap": o }),
                None => json!({}),
            };
            let v = ctx
                .call(
                    Method::POST,
                    &format!("/admin/subscriptions/{}/rotate-secret", seg(&id)),
                    Some(body),
                )
                .await?;
            ctx.print(&v, render::subscription);
        }
        SubscriptionCmd::Enable { id } => set_enabled(ctx, "subscriptions", &id, true).await?,
        SubscriptionCmd::Disable { id } => set_enabled(ctx, "subscriptions", &id, false).await?,
    }
    Ok(())
}

fn subscription_body(a: SubscriptionAdd) -> Value {
    let mut body = Map::new();
    if let Some(id) = a.id {
        body.insert("id".into(), json!(id));
    }
    body.insert("source".into(), json!(a.source));
    body.insert("url".into(), json!(a.url));
    body.insert("events".into(), json!(a.events));
    if let Some(v) = a.format {
        body.insert("format".into(), json!(v));
    }
    if let Some(v) = a.template {
        body.insert("template".into(), json!(v));
    }
    if let Some(v) = a.payload_template {
        body.insert("payload_template".into(), json!(v));
    }
    if let Some(v) = a.filter {
        body.insert("filter".into(), json!(v));
    }
    if let Some(v) = a.retry_schedule {
        body.insert("retry_schedule".into(), json!(v));
    }
    if a.allow_local {
        body.insert("allow_local".into(), json!(true));
    }
    if let Some(v) = a.rate_limit {
        body.insert("rate_limit".into(), json!(v));
    }
    if let Some(v) = a.max_in_flight {
        body.insert("max_in_flight".into(), json!(v));
    }
    if a.breaker_failures.is_some()
        || a.breaker_probe_after.is_some()
        || a.breaker_disable_after.is_some()
    {
        let mut breaker = Map::new();
        if let Some(v) = a.breaker_failures {
            breaker.insert("failures".into(), json!(v));
        }
        if let Some(v) = a.breaker_probe_after {
            breaker.insert("probe_after".into(), json!(v));
        }
        if let Some(v) = a.breaker_disable_after {
            breaker.insert("disable_after".into(), json!(v));
        }
        body.insert("circuit_breaker".into(), Value::Object(breaker));
    }
    Value::Object(body)
}

pub async fn pollers(ctx: &Ctx, cmd: PollerCmd) -> Result<(), CliError> {
    match cmd {
        PollerCmd::List => {
            let v = ctx.call(Method::GET, "/admin/pollers", None).await?;
            ctx.print(&v, render::pollers);
        }
        PollerCmd::Show { id } => {
            let v = ctx
                .call(Method::GET, &format!("/admin/pollers/{}", seg(&id)), None)
                .await?;
            ctx.print(&v, render::poller);
        }
        PollerCmd::Add(a) => {
            let body = poller_body(*a)?;
            let v = ctx.call(Method::POST, "/admin/pollers", Some(body)).await?;
            ctx.print(&v, |v| format!("created poller\n{}", render::poller(v)));
        }
        PollerCmd::Rm { id } => {
            ctx.call(
                Method::DELETE,
                &format!("/admin/pollers/{}", seg(&id)),
                None,
            )
            .await?;
            ctx.print(&json!({ "deleted": id }), |_| {
                format!("deleted poller {}\n", crate::table::clean_line(&id))
            });
        }
        PollerCmd::Enable { id } => set_enabled(ctx, "pollers", &id, true).await?,
        PollerCmd::Disable { id } => set_enabled(ctx, "pollers", &id, false).await?,
        PollerCmd::Run { id, dry_run } => {
            let v = ctx
                .call(
                    Method::POST,
                    &format!("/admin/pollers/{}/run", seg(&id)),
                    Some(serde_json::json!({ "dry_run": dry_run })),
                )
                .await?;
            ctx.print(&v, render::poll_report);
        }
    }
    Ok(())
}

fn poller_body(a: PollerAdd) -> Result<Value, CliError> {
    let mut headers = Map::new();
    for h in a.headers {
        let Some((name, value)) = h.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--header {h:?}: write it NAME=VALUE (Authorization=env:TOKEN)"
            )));
        };
        headers.insert(name.trim().to_owned(), json!(value));
    }
    let mut body = Map::new();
    body.insert("id".into(), json!(a.id));
    body.insert("url".into(), json!(a.url));
    if !headers.is_empty() {
        body.insert("headers".into(), Value::Object(headers));
    }
    let optional = [
        ("format", a.format),
        ("item_id", a.item_id),
        ("items", a.items),
        ("type", a.event_type),
        ("timestamp", a.timestamp),
        ("since_param", a.since_param),
        ("interval", a.interval),
        ("dedupe_window", a.dedupe_window),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            body.insert(key.into(), json!(v));
        }
    }
    if let Some(v) = a.max_pages {
        body.insert("max_pages".into(), json!(v));
    }
    if let Some(v) = a.max_response_bytes {
        body.insert("max_response_bytes".into(), json!(v));
    }
    if a.emit_existing {
        body.insert("emit_existing".into(), json!(true));
    }
    if a.allow_local {
        body.insert("allow_local".into(), json!(true));
    }
    Ok(Value::Object(body))
}
