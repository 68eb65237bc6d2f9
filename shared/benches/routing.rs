//! Routing one event over a source with 100 subscriptions: type globs
//! only, and payload filters on every subscription (the body parsed once
//! per event, then one expression per subscription).

use std::fmt::Write as _;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sluice::config::{ConfigFile, StaticRegistry};
use sluice::model::{Event, EventKey, Headers};
use sluice::pipeline::enqueue::route;
use sluice::secrets::EnvSecrets;

const SUBSCRIPTIONS: usize = 100;

/// 100 subscriptions of one source; with `filters`, each also has a
/// payload filter, half of which match the event.
fn config(filters: bool) -> String {
    let mut toml = String::from(
        "[[sources]]\nid = \"github\"\nprovider = \"github\"\nsecrets = [\"env:GH\"]\n",
    );
    for i in 0..SUBSCRIPTIONS {
        let events = if i % 2 == 0 {
            "pull_request.opened"
        } else {
            "pull_request.*"
        };
        let _ = write!(
            toml,
            "\n[[subscriptions]]\nid = \"s{i}\"\nsource = \"github\"\nevents = [\"{events}\", \"push\"]\nurl = \"https://example.com/{i}\"\n"
        );
        if filters {
            let action = if i % 2 == 0 { "opened" } else { "closed" };
            let _ = writeln!(
                toml,
                "filter = '''payload.action == \"{action}\" and not payload.pull_request.draft and payload.pull_request.additions > {i}'''"
            );
        }
    }
    toml
}

fn registry(rt: &tokio::runtime::Runtime, filters: bool) -> StaticRegistry {
    rt.block_on(async {
        let secrets = EnvSecrets::from_map([("GH".to_owned(), "bench-secret".to_owned())].into());
        ConfigFile::parse(&config(filters))
            .expect("config")
            .resolve(&secrets)
            .await
            .expect("resolve")
    })
}

/// A pull_request event of about 2 KiB.
fn event() -> Event {
    let pad = "x".repeat(1800);
    let body = format!(
        r#"{{"action":"opened","number":7,"pull_request":{{"draft":false,"additions":500,"title":"Fix","body":"{pad}"}},"repository":{{"full_name":"acme/api"}}}}"#
    );
    Event {
        source: "github".into(),
        id: "d-1".into(),
        event_type: "pull_request.opened".into(),
        received_at_ms: 0,
        expires_at: 0,
        body: Bytes::from(body),
        body_hash: String::new(),
        content_type: Some("application/json".into()),
        headers: Headers::from_pairs(&[("x-github-event", "pull_request")]),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let event = event();
    let key = EventKey::new("github", "d-1");
    let mut group = c.benchmark_group("route_100_subscriptions");
    for (name, filters, expected) in [
        ("type_globs", false, SUBSCRIPTIONS),
        ("payload_filters", true, 50),
    ] {
        let reg = registry(&rt, filters);
        let routed = rt
            .block_on(route(&reg, &key, "pull_request.opened", &event))
            .expect("route");
        assert_eq!(routed.len(), expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(route(black_box(&reg), &key, "pull_request.opened", &event)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
