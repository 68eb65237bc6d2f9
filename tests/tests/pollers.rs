//! Pollers end to end on `sluice serve`: a real app on 127.0.0.1 is
//! polled, its new items are committed and delivered like webhooks, and
//! neither unchanged polls nor restarts emit anything twice.

use std::time::Duration;

use serde_json::{Value, json};
use sluice::poll::PollerStates;
use sluice::poll::state::LastResult;
use sluice_tests::{
    ADMIN_TOKEN, Harness, ListApp, Sink, eventually, eventually_async, standard_webhooks_valid,
};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(20);

fn harness(app: &ListApp, sink: &Sink, poller_extra: &str) -> Harness {
    let config = format!(
        r#"
[admin]
token = "env:ADMIN_TOKEN"

[[pollers]]
id = "app"
url = "{}"
item_id = "/id"
type = "/type"
allow_local = true
{poller_extra}

[[subscriptions]]
id = "out"
source = "app"
events = ["*"]
url = "{}"
signing_secret = "env:WHSEC"
allow_local = true
"#,
        app.url(),
        sink.url()
    );
    let mut h = Harness::new(&config, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("WHSEC", WHSEC)]);
    h.opts.shutdown_grace = Duration::from_secs(1);
    h
}

async fn last_result(h: &Harness) -> Option<LastResult> {
    PollerStates::get(&h.store(), "app")
        .await
        .unwrap()
        .and_then(|s| s.state.last_result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_items_are_delivered_once_signed_and_unchanged_polls_emit_nothing() {
    let app = ListApp::start().await;
    app.add(json!({ "id": "1", "type": "created" }));
    app.add(json!({ "id": "2", "type": "created" }));
    let sink = Sink::start(200).await;
    let h = harness(&app, &sink, "");
    let gw = h.start().await;

    eventually_async(WAIT, "the first poll", || async {
        last_result(&h).await == Some(LastResult::Primed)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count(), 0, "the first poll only records");

    app.add(json!({ "id": "3", "type": "updated", "n": 3 }));
    let (status, report) = gw
        .admin("POST", "/admin/pollers/app/run", Value::Null)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["result"], "polled", "{report}");
    assert_eq!(
        report["emitted"],
        json!([{ "id": "3", "event_type": "updated" }])
    );

    eventually(WAIT, "the new item delivered", || sink.count() == 1).await;
    let delivered = &sink.received()[0];
    assert!(standard_webhooks_valid(
        WHSEC,
        &delivered.headers,
        &delivered.body
    ));
    let body: Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(body, json!({ "id": "3", "type": "updated", "n": 3 }));

    let (status, report) = gw
        .admin("POST", "/admin/pollers/app/run", Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["result"], "not_modified", "{report}");
    assert!(app.not_modified() >= 1);

    let (_, events) = gw
        .admin("GET", "/admin/events?source=app", Value::Null)
        .await;
    let ids: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["3"], "{events}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count(), 1, "delivered once");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_existing_delivers_what_the_first_poll_finds() {
    let app = ListApp::start().await;
    for n in 1..=3 {
        app.add(json!({ "id": n, "type": "t" }));
    }
    let sink = Sink::start(200).await;
    let h = harness(&app, &sink, "emit_existing = true");
    let gw = h.start().await;
    eventually(WAIT, "three deliveries", || sink.count() == 3).await;
    let mut ids: Vec<Value> = sink
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["id"].clone())
        .collect();
    ids.sort_by_key(|v| v.as_i64());
    assert_eq!(ids, [json!(1), json!(2), json!(3)]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_poll_re_emits_nothing() {
    let app = ListApp::start().await;
    for n in 1..=3 {
        app.add(json!({ "id": n.to_string(), "type": "t" }));
    }
    app.set_delay(Duration::from_secs(3));
    let sink = Sink::start(200).await;
    let h = harness(&app, &sink, "emit_existing = true");

    // Stopped while its first poll waits for the app.
    let gw = h.start().await;
    eventually(WAIT, "a poll in flight", || app.requests() == 1).await;
    gw.stop().await;
    assert_eq!(sink.count(), 0);

    // The next start releases the abandoned claim and polls again.
    app.set_delay(Duration::ZERO);
    let gw = h.start().await;
    eventually(WAIT, "the three items delivered", || sink.count() == 3).await;
    gw.stop().await;

    // And once more: everything is remembered.
    app.add(json!({ "id": "4", "type": "t" }));
    let gw = h.start().await;
    let (status, report) = gw
        .admin("POST", "/admin/pollers/app/run", Value::Null)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["result"], "polled", "{report}");
    assert_eq!(report["emitted"], json!([{ "id": "4", "event_type": "t" }]));
    eventually(WAIT, "only the new item", || sink.count() == 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ids: Vec<String> = sink
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3", "4"], "each once");
    gw.stop().await;
}
