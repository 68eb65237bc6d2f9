//! `sluice replay` and `sluice dlq …`: the admin API's replay and
//! dead-letter routes. A long bulk run is made of API-sized chunks (each
//! one request, repeatable without replaying twice), with a progress bar.

use std::collections::HashSet;

use http::Method;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use super::{Ctx, seg, with_query};
use crate::args::{DlqCmd, RedriveArgs, ReplayArgs};
use crate::error::CliError;
use crate::render;

/// Deliveries per request of a bulk run.
const CHUNK: u64 = 100;
/// The most one bulk request (and so a dry run) looks at.
const API_MAX: u64 = 1000;

pub async fn replay(ctx: &Ctx, a: ReplayArgs) -> Result<(), CliError> {
    let Some(event) = a.event else {
        return bulk_replay(ctx, a).await;
    };
    if a.source.is_some() || a.status.is_some() || a.since.is_some() || a.until.is_some() {
        return Err(CliError::Usage(
            "give an event id or bulk filters (--source, --status, --since, --until), not both"
                .into(),
        ));
    }
    if a.dry_run || a.limit.is_some() {
        return Err(CliError::Usage(
            "--dry-run and --limit apply to bulk replays (no event id)".into(),
        ));
    }
    ctx.backend.load_config().await?;
    let body = match a.subscription {
        Some(s) => json!({ "subscription": s }),
        None => json!({}),
    };
    let v = ctx
        .call(
            Method::POST,
            &format!("/admin/events/{}/replay", seg(&event)),
            Some(body),
        )
        .await?;
    ctx.print(&v, render::replay);
    Ok(())
}

async fn bulk_replay(ctx: &Ctx, a: ReplayArgs) -> Result<(), CliError> {
    if a.source.is_none()
        && a.subscription.is_none()
        && a.status.is_none()
        && a.since.is_none()
        && a.until.is_none()
    {
        return Err(CliError::Usage(
            "give an event id, or bulk filters (--source, --subscription, --status, --since, --until)"
                .into(),
        ));
    }
    let mut filters = Map::new();
    for (k, v) in [
        ("source", a.source),
        ("subscription", a.subscription),
        ("status", a.status),
        ("since", a.since),
        ("until", a.until),
    ] {
        if let Some(v) = v {
            filters.insert(k.into(), json!(v));
        }
    }
    ctx.backend.load_config().await?;
    let run = Bulk {
        path: "/admin/replay",
        count: "replayed",
        verb: "replay",
        doing: "replaying",
    };
    run.go(ctx, filters, a.limit, a.dry_run).await
}

pub async fn dlq(ctx: &Ctx, cmd: DlqCmd) -> Result<(), CliError> {
    match cmd {
        DlqCmd::List {
            source,
            subscription,
            limit,
            cursor,
        } => {
            let path = with_query(
                "/admin/dlq",
                &[
                    ("source", source),
                    ("subscription", subscription),
                    ("limit", limit.map(|l| l.to_string())),
                    ("cursor", cursor),
                ],
            );
            let v = ctx.call(Method::GET, &path, None).await?;
            ctx.print(&v, render::dead_letters);
            Ok(())
        }
        DlqCmd::Redrive(r) => redrive(ctx, r).await,
    }
}

async fn redrive(ctx: &Ctx, r: RedriveArgs) -> Result<(), CliError> {
    let run = Bulk {
        path: "/admin/dlq/redrive",
        count: "redriven",
        verb: "redrive",
        doing: "redriving",
    };
    let mut filters = Map::new();
    if !r.ids.is_empty() {
        // Named dead letters: one request for all of them.
        if r.ids.len() as u64 > API_MAX {
            return Err(CliError::Usage(format!(
                "at most {API_MAX} ids at once; use --all with filters for more"
            )));
        }
        let n = r.ids.len() as u64;
        filters.insert("ids".into(), json!(r.ids));
        ctx.backend.load_config().await?;
        return run.go(ctx, filters, Some(n), r.dry_run).await;
    }
    ctx.backend.load_config().await?;
    for (k, v) in [("source", r.source), ("subscription", r.subscription)] {
        if let Some(v) = v {
            filters.insert(k.into(), json!(v));
        }
    }
    run.go(ctx, filters, None, r.dry_run).await
}

/// A bulk replay or redrive: a dry run first (it checks the input before
/// anything is written, and sizes the progress bar), then chunks until
/// nothing more matches.
struct Bulk {
    path: &'static str,
    /// The answer's count field.
    count: &'static str,
    verb: &'static str,
    /// The progress bar's message.
    doing: &'static str,
}

impl Bulk {
    async fn request(
        &self,
        ctx: &Ctx,
        filters: &Map<String, Value>,
        limit: u64,
        dry_run: bool,
    ) -> Result<Value, CliError> {
        let mut body = filters.clone();
        body.insert("limit".into(), json!(limit));
        body.insert("dry_run".into(), json!(dry_run));
        ctx.call(Method::POST, self.path, Some(Value::Object(body)))
            .await
    }

    async fn go(
        &self,
        ctx: &Ctx,
        filters: Map<String, Value>,
        limit: Option<u64>,
        dry_run: bool,
    ) -> Result<(), CliError> {
        if limit == Some(0) {
            return Err(CliError::Usage("--limit must be at least 1".into()));
        }
        let preview = self
            .request(ctx, &filters, limit.unwrap_or(API_MAX).min(API_MAX), true)
            .await?;
        let planned = preview[self.count].as_u64().unwrap_or(0);
        if dry_run {
            ctx.print(&preview, |v| render::bulk(v, self.count, self.verb));
            return Ok(());
        }
        if planned == 0 {
            // Nothing to do: the preview's skipped list says why, if anything.
            let mut none = preview;
            none["dry_run"] = json!(false);
            none["more"] = json!(false);
            ctx.print(&none, |v| render::bulk(v, self.count, self.verb));
            return Ok(());
        }
        let sized = !preview["more"].as_bool().unwrap_or(false);
        let bar = progress(sized.then_some(planned), self.doing);
        let mut done = 0u64;
        let mut replays = Vec::new();
        let mut skipped = Vec::new();
        let mut seen = HashSet::new();
        let mut stalled = false;
        loop {
            let chunk = match limit {
                Some(l) => CHUNK.min(l - done),
                None => CHUNK,
            };
            let v = self.request(ctx, &filters, chunk, false).await?;
            let n = v[self.count].as_u64().unwrap_or(0);
            done += n;
            bar.inc(n);
            if let Some(r) = v["replays"].as_array() {
                replays.extend(r.iter().cloned());
            }
            // What cannot be replayed stays a candidate: listed once.
            for s in v["skipped"].as_array().into_iter().flatten() {
                if seen.insert((s["event"].to_string(), s["subscription"].to_string())) {
                    skipped.push(s.clone());
                }
            }
            let more = v["more"].as_bool().unwrap_or(false);
            if !more || limit.is_some_and(|l| done >= l) {
                break;
            }
            if n == 0 {
                stalled = true;
                break;
            }
        }
        bar.finish_and_clear();
        let mut total = Map::new();
        total.insert("dry_run".into(), json!(false));
        total.insert(self.count.into(), json!(done));
        total.insert("replays".into(), Value::Array(replays));
        total.insert("skipped".into(), Value::Array(skipped));
        total.insert("more".into(), json!(stalled));
        let total = Value::Object(total);
        ctx.print(&total, |v| render::bulk(v, self.count, self.verb));
        if stalled {
            return Err(CliError::Failed(format!(
                "stopped after {done}: what still matches cannot be replayed (see skipped); narrow the filters"
            )));
        }
        Ok(())
    }
}

/// On stderr, and only when it is a terminal (indicatif hides it otherwise).
fn progress(len: Option<u64>, doing: &'static str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    let template = if len.is_some() {
        "{msg} [{bar:40}] {pos}/{len} ({eta})"
    } else {
        "{msg} {pos} deliveries"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(doing);
    bar
}
