//! Delivery guarantees of the embedded backend under pauses, deletions and
//! a destination that hangs: real HTTP in, SQLite, real destinations on
//! 127.0.0.1.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice::model::{DeliveryStatus, EventKey};
use sluice_tests::{ADMIN_TOKEN, Harness, Sink, eventually, eventually_async, github_headers};

const GH_SECRET: &str = "gh-secret-for-delivery-tests";
const WAIT: Duration = Duration::from_secs(20);

fn source() -> &'static str {
    r#"
[admin]
token = "env:ADMIN_TOKEN"

[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]
"#
}

fn harness(subscriptions: &str) -> Harness {
    let mut h = Harness::new(
        &format!("{}\n{subscriptions}", source()),
        &[("GH_SECRET", GH_SECRET), ("ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    h.opts.shutdown_grace = Duration::from_secs(1);
    h
}

fn push(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(r#"{{"ref":"refs/heads/main","n":"{id}"}}"#).into_bytes();
    (github_headers(GH_SECRET, id, "push", &body), body)
}

/// Disabling a subscription pauses it: tasks already queued wait (parked,
/// nothing sent, nothing recorded), and enabling it again delivers each
/// of them once, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_subscription_holds_its_queued_tasks_and_delivers_each_once_when_resumed() {
    let sink = Sink::start(200).await;
    // The first attempt of each fails; the retry comes 1 s later.
    sink.script(&[500, 500, 500]);
    let h = harness(&format!(
        r#"
[[subscriptions]]
id = "deploys"
source = "github"
events = ["push"]
url = "{}"
retry_schedule = ["1s", "1s"]
allow_local = true
"#,
        sink.url()
    ));
    let gw = h.start().await;
    for id in ["p-1", "p-2", "p-3"] {
        let (headers, body) = push(id);
        assert_eq!(gw.post("github", &headers, &body).await.0, 200);
    }
    eventually(WAIT, "three failed first attempts", || sink.count() == 3).await;
    let (status, _) = gw
        .admin("POST", "/admin/subscriptions/deploys/disable", Value::Null)
        .await;
    assert_eq!(status, 200);
    let store = h.store();
    eventually_async(WAIT, "the retries parked", || {
        let store = store.clone();
        async move { store.parked_count().await.unwrap() == 3 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count(), 3, "nothing sent while paused");

    let (status, _) = gw
        .admin("POST", "/admin/subscriptions/deploys/enable", Value::Null)
        .await;
    assert_eq!(status, 200);
    let resumed = Instant::now();
    eventually(WAIT, "each task delivered", || sink.successes().len() == 3).await;
    assert!(
        resumed.elapsed() < Duration::from_secs(5),
        "woken on resume"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.successes().len(), 3, "each once");
    for id in ["p-1", "p-2", "p-3"] {
        let rows = store
            .deliveries(&EventKey::new("github", id))
            .await
            .unwrap();
        assert_eq!(rows[0].status, DeliveryStatus::Delivered);
        assert_eq!(rows[0].attempts, 2, "the paused waits were not attempts");
    }
    assert_eq!(store.parked_count().await.unwrap(), 0);
    gw.stop().await;
}

/// A queued task whose subscription is deleted is a failed attempt with
/// the reason: listed by the admin API's dead letters (what `dlq list`
/// shows), its delivery final, so the event can be purged in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_subscriptions_queued_task_is_a_listed_dead_letter() {
    let sink = Sink::start(500).await;
    let h = harness("");
    let gw = h.start().await;
    let created = serde_json::json!({
        "id": "doomed",
        "source": "github",
        "events": ["push"],
        "url": sink.url(),
        "retry_schedule": ["1s", "1s"],
        "allow_local": true,
    });
    let (status, answer) = gw.admin("POST", "/admin/subscriptions", created).await;
    assert_eq!(status, 201, "{answer}");
    let (headers, body) = push("x-1");
    assert_eq!(gw.post("github", &headers, &body).await.0, 200);
    eventually(WAIT, "the first attempt", || sink.count() == 1).await;
    let (status, answer) = gw
        .admin("DELETE", "/admin/subscriptions/doomed", Value::Null)
        .await;
    assert!(status == 200 || status == 204, "{status} {answer}");

    let listed = || async {
        let (_, v) = gw.admin("GET", "/admin/dlq", Value::Null).await;
        v["dead_letters"].as_array().cloned().unwrap_or_default()
    };
    let deadline = Instant::now() + WAIT;
    let items = loop {
        let items = listed().await;
        if !items.is_empty() || Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["subscription"], "doomed");
    assert_eq!(items[0]["reason"], "subscription was deleted");
    let rows = h
        .store()
        .deliveries(&EventKey::new("github", "x-1"))
        .await
        .unwrap();
    assert_eq!(rows[0].status, DeliveryStatus::Failed);
    assert_eq!(sink.count(), 1, "nothing sent after the delete");
    gw.stop().await;
}

/// A destination that never answers holds its attempts' slots until the
/// timeout; it may hold at most its share of them, so another
/// subscription's event is sent at once, not after the hung ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_destination_does_not_delay_another_subscription() {
    let hanging = Sink::start(200).await;
    hanging.set_delay(Duration::from_secs(120));
    let healthy = Sink::start(200).await;
    let h = harness(&format!(
        r#"
[[subscriptions]]
id = "hangs"
source = "github"
events = ["issues.*"]
url = "{}"
allow_local = true

[[subscriptions]]
id = "healthy"
source = "github"
events = ["push"]
url = "{}"
allow_local = true
"#,
        hanging.url(),
        healthy.url()
    ));
    let gw = h.start().await;
    for n in 0..80 {
        let body = format!(r#"{{"action":"opened","n":{n}}}"#).into_bytes();
        let headers = github_headers(GH_SECRET, &format!("i-{n}"), "issues", &body);
        assert_eq!(gw.post("github", &headers, &body).await.0, 200);
    }
    eventually(WAIT, "the hanging destination busy", || {
        hanging.count() >= 30
    })
    .await;
    let (headers, body) = push("h-1");
    let sent = Instant::now();
    assert_eq!(gw.post("github", &headers, &body).await.0, 200);
    eventually(WAIT, "the healthy delivery", || healthy.count() == 1).await;
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(1), "waited {took:?}");
    // It held no more than half of the 64 slots.
    assert!(hanging.count() <= 32, "{}", hanging.count());
    gw.stop().await;
}
