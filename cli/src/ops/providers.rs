//! `sluice providers`: every verification preset, with the headers it
//! reads, its replay window and where the event id comes from. Offline:
//! it needs no backend.

use serde_json::{Value, json};
use sluice::verify::catalogue::{About, catalogue, markdown_table};
use sluice::verify::{ReplayDirection, preset};

use super::pretty;
use crate::args::ProvidersArgs;
use crate::table::Table;

pub fn run(a: &ProvidersArgs, json: bool) {
    if a.markdown {
        print!("{}", markdown_table());
    } else if json {
        let all: Vec<Value> = catalogue().map(|a| to_json(&a)).collect();
        println!("{}", pretty(&Value::Array(all)));
    } else {
        print!("{}", text());
    }
}

fn to_json(a: &About) -> Value {
    let p = preset(a.provider);
    let window = p.tolerance.map(|t| {
        json!({
            "seconds": t.as_secs(),
            "direction": match p.direction {
                ReplayDirection::OldOnly => "old_only",
                ReplayDirection::Both => "both",
            },
        })
    });
    json!({
        "provider": a.provider,
        "headers": a.headers,
        "signature": a.signature,
        "window": window,
        "window_text": a.window(),
        "event_id": a.event_id,
        "event_type": a.event_type,
    })
}

fn text() -> String {
    let mut t = Table::new(&["PROVIDER", "HEADERS", "REPLAY WINDOW", "EVENT ID"]);
    for a in catalogue() {
        t.row([
            a.provider.to_string(),
            a.headers.join(", "),
            a.window().replace('`', ""),
            a.event_id.replace('`', ""),
        ]);
    }
    t.render()
}
