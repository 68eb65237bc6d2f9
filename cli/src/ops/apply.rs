//! `sluice apply FILE`: sync a config file into the gateway through the
//! admin API's own plan and apply ([`sluice::admin::Admin::plan_file`]),
//! as `sluice serve` does with its file at start-up. The plan is shown
//! first; only that plan is applied.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use serde_json::{Value, json};
use sluice::admin::AdminError;
use sluice::admin::ports::{ConfigItem, Kind};
use sluice::admin::sync::Plan;
use sluice::config::ConfigFile;

use super::Ctx;
use crate::args::ApplyArgs;
use crate::error::CliError;
use crate::render;

fn admin_error(e: &AdminError) -> CliError {
    CliError::from_api(e.status(), &e.body())
}

pub async fn run(ctx: &Ctx, a: ApplyArgs, config: Option<&Path>) -> Result<(), CliError> {
    let Some(path) = a.file.as_deref().or(config) else {
        return Err(CliError::Usage(
            "name the file: sluice apply FILE (or --config / SLUICE_CONFIG)".into(),
        ));
    };
    let file = ConfigFile::load(path).map_err(|e| CliError::Usage(e.to_string()))?;
    let plan = ctx
        .admin()
        .plan_file(&file)
        .await
        .map_err(|e| admin_error(&e))?;
    let mut shown = plan_json(&plan);
    if !ctx.json {
        print!("{}", render::plan(&shown));
    }
    if plan.is_empty() || a.dry_run {
        shown["applied"] = json!(false);
        shown["dry_run"] = json!(a.dry_run);
        if ctx.json {
            println!("{}", super::pretty(&shown));
        } else if a.dry_run && !plan.is_empty() {
            println!("dry run: nothing applied");
        }
        return Ok(());
    }
    if !a.yes && !confirm()? {
        return Err(CliError::Failed("not applied".into()));
    }
    let applied = ctx
        .admin()
        .apply_file(&file, &plan)
        .await
        .map_err(|e| admin_error(&e))?;
    let mut done = plan_json(&applied);
    done["applied"] = json!(true);
    done["dry_run"] = json!(false);
    if ctx.json {
        println!("{}", super::pretty(&done));
    } else {
        println!(
            "applied: {} created, {} updated, {} deleted (a running gateway picks it up within 2 s)",
            applied.create.len(),
            applied.update.len(),
            applied.delete.len()
        );
    }
    Ok(())
}

/// Ask on the terminal; without one, refuse rather than guess.
fn confirm() -> Result<bool, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(
            "not applying without confirmation: stdin is not a terminal; pass --yes (or --dry-run to only show the changes)"
                .into(),
        ));
    }
    eprint!("apply these changes? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn entry(kind: Kind, id: &str) -> Value {
    json!({ "kind": kind.as_str(), "id": id })
}

fn item_value(item: &ConfigItem) -> Value {
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// The fields that differ between two versions of an entry.
fn changes(before: &ConfigItem, after: &ConfigItem) -> Vec<Value> {
    let (old, new) = (item_value(before), item_value(after));
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut fields: Vec<&String> = old.keys().chain(new.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter_map(|f| {
            let (a, b) = (
                old.get(f).unwrap_or(&Value::Null),
                new.get(f).unwrap_or(&Value::Null),
            );
            (a != b).then(|| json!({ "field": f, "from": a, "to": b }))
        })
        .collect()
}

/// The plan as JSON: what `--json` prints and the diff is drawn from.
fn plan_json(plan: &Plan) -> Value {
    let update: Vec<Value> = plan
        .update
        .iter()
        .zip(&plan.before)
        .map(|(after, before)| {
            let mut v = entry(after.kind(), after.id());
            v["changes"] = Value::Array(changes(before, after));
            v["take_over"] = json!(
                plan.take_over
                    .iter()
                    .any(|(k, id)| *k == after.kind() && id == after.id())
            );
            v
        })
        .collect();
    json!({
        "create": plan.create.iter().map(|i| entry(i.kind(), i.id())).collect::<Vec<_>>(),
        "update": update,
        "delete": plan.delete.iter().map(|(k, id)| entry(*k, id)).collect::<Vec<_>>(),
        "unchanged": plan.unchanged,
    })
}
