//! Delivery controls on `sluice serve`: a rate limit and `max_in_flight`
//! under a burst, and the circuit breaker against a destination that fails
//! for a while and then recovers. Real HTTP in, SQLite, real destinations
//! on 127.0.0.1 that timestamp each request.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use sluice::model::{DeliveryStatus, EventKey};
use sluice_tests::{ADMIN_TOKEN, Harness, Received, Sink, eventually, github_headers};

const GH_SECRET: &str = "gh-secret-for-controls-tests";

fn harness(subscriptions: &str) -> Harness {
    let mut h = Harness::new(
        &format!(
            r#"
[admin]
token = "env:ADMIN_TOKEN"

[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]
{subscriptions}"#
        ),
        &[("GH_SECRET", GH_SECRET), ("ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    h.opts.shutdown_grace = Duration::from_secs(1);
    h
}

fn push(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(r#"{{"ref":"refs/heads/main","n":"{id}"}}"#).into_bytes();
    (github_headers(GH_SECRET, id, "push", &body), body)
}

/// How many requests carried each event (by the body's `n`).
fn per_event(requests: &[Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in requests {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        *counts
            .entry(v["n"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

/// Sends start at least the interval apart at the gateway; the loopback
/// hop can bunch two arrivals by a few milliseconds, which is the slack.
const ARRIVAL_JITTER: Duration = Duration::from_millis(25);

/// A burst of 200 events to two subscriptions of one source: one limited
/// to 20 requests a second, one to 3 requests at once against a slow
/// destination. Neither destination ever sees more than its limit, and
/// each gets every event exactly once, in one attempt: a task over the
/// limit waits, it is not failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_held_to_the_rate_limit_and_max_in_flight_and_each_event_arrives_once() {
    let paced = Sink::start(200).await;
    let capped = Sink::start(200).await;
    capped.set_delay(Duration::from_millis(60));
    let h = harness(&format!(
        r#"
[[subscriptions]]
id = "paced"
source = "github"
events = ["push"]
url = "{}"
rate_limit = "20/s"
allow_local = true

[[subscriptions]]
id = "capped"
source = "github"
events = ["push"]
url = "{}"
max_in_flight = 3
allow_local = true
"#,
        paced.url(),
        capped.url()
    ));
    let gw = h.start().await;
    let ids: Vec<String> = (0..200).map(|i| format!("burst-{i}")).collect();
    for id in &ids {
        let (headers, body) = push(id);
        assert_eq!(gw.post("github", &headers, &body).await.0, 200);
    }
    let wait = Duration::from_secs(60);
    eventually(wait, "200 requests at each destination", || {
        paced.count() >= 200 && capped.count() >= 200
    })
    .await;
    // Nothing more comes: no task was sent twice.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for (sink, name) in [(&paced, "paced"), (&capped, "capped")] {
        let got = sink.received();
        assert_eq!(got.len(), 200, "{name}: one request per event");
        let counts = per_event(&got);
        assert_eq!(counts.len(), 200, "{name}: every event arrived");
        assert!(counts.values().all(|&n| n == 1), "{name}: none twice");
    }

    // No window of one second holds more than 20 of the paced requests.
    let at: Vec<_> = paced.received().iter().map(|r| r.at).collect();
    for (i, w) in at.windows(21).enumerate() {
        let span = w[20] - w[0];
        assert!(
            span + ARRIVAL_JITTER >= Duration::from_secs(1),
            "requests {i}..={}: 21 within {span:?}",
            i + 20
        );
    }
    assert_eq!(
        capped.max_concurrent(),
        3,
        "the cap is reached, never passed"
    );

    // The deferrals were not attempts: every delivery took one.
    let store = h.store();
    for id in &ids {
        let rows = store
            .deliveries(&EventKey::new("github", id))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{id}");
        for row in rows {
            assert_eq!(row.status, DeliveryStatus::Delivered, "{id}");
            assert_eq!(row.attempts, 1, "{id}: the waits were not attempts");
        }
    }
    let (_, sub) = gw
        .admin("GET", "/admin/subscriptions/paced", Value::Null)
        .await;
    assert_eq!(sub["delivery_controls"]["rate_limit"], "20/s", "{sub}");
    gw.stop().await;
}

async fn circuit(gw: &sluice_tests::Running, sub: &str) -> Value {
    let (status, body) = gw
        .admin("GET", &format!("/admin/subscriptions/{sub}"), Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    body["delivery_controls"]["circuit"].clone()
}

/// A destination that fails, then recovers. After 3 failures in a row the
/// circuit opens: the tasks are held, not attempted, so their retry
/// schedules (3 attempts, a second apart: long exhausted by the end of the
/// outage) are untouched. One probe at a time tests the destination; when
/// one succeeds the circuit closes and every held task is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_holds_tasks_through_an_outage_and_delivers_each_once_after() {
    let sink = Sink::start(503).await;
    sink.set_delay(Duration::from_millis(200));
    let h = harness(&format!(
        r#"
[[subscriptions]]
id = "flaky"
source = "github"
events = ["push"]
url = "{}"
retry_schedule = ["1s", "1s"]
circuit_breaker = {{ failures = 3, probe_after = "1s" }}
allow_local = true
"#,
        sink.url()
    ));
    let gw = h.start().await;
    assert_eq!(circuit(&gw, "flaky").await["state"], "closed");
    for i in 0..10 {
        let (headers, body) = push(&format!("outage-{i}"));
        assert_eq!(gw.post("github", &headers, &body).await.0, 200);
    }
    let wait = Duration::from_secs(20);
    let mut open = Value::Null;
    for _ in 0..200 {
        open = circuit(&gw, "flaky").await;
        if open["state"] != "closed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(open["state"], "closed", "the circuit opened: {open}");
    assert!(open["opened_at"].is_string(), "{open}");
    // The first sends were let through before the third failure came back.
    let before = sink.count();
    assert!(before >= 3, "{before}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    sink.reset_max_concurrent();

    // Held through 3.5 s of outage: without the breaker all ten would have
    // made their three attempts by now and been dead-lettered.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let probes = sink.count() - before;
    assert!(
        (1..=3).contains(&probes),
        "probes at 1 s, then 2 s later: {probes}"
    );
    assert_eq!(sink.max_concurrent(), 1, "one probe at a time");
    let c = circuit(&gw, "flaky").await;
    assert_ne!(c["state"], "closed", "{c}");

    sink.set_default(200);
    eventually(wait, "every event delivered after the recovery", || {
        per_event(&sink.successes()).len() == 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let successes = per_event(&sink.successes());
    assert!(successes.values().all(|&n| n == 1), "{successes:?}");
    assert_eq!(circuit(&gw, "flaky").await["state"], "closed");
    let (_, dlq) = gw.admin("GET", "/admin/dlq", Value::Null).await;
    assert_eq!(
        dlq["dead_letters"].as_array().map(Vec::len),
        Some(0),
        "{dlq}"
    );
    // The held time used no attempts: each made at most its three, and
    // the probes on top of them.
    let store = h.store();
    let mut attempts = 0;
    for i in 0..10 {
        let rows = store
            .deliveries(&EventKey::new("github", &format!("outage-{i}")))
            .await
            .unwrap();
        assert_eq!(rows[0].status, DeliveryStatus::Delivered);
        attempts += rows[0].attempts;
    }
    assert_eq!(
        attempts as usize,
        sink.count(),
        "every attempt logged, and only those"
    );
    gw.stop().await;
}
