//! Operational notifications on `sluice serve`: sluice's own events
//! (source `sluice`) reach a second destination through the normal
//! pipeline, in a chat format, rate-limited, and never about their own
//! deliveries. Real HTTP in, SQLite, real destinations on 127.0.0.1.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use sluice::model::{DeliveryStatus, EventKey};
use sluice::notify::WINDOW;
use sluice_tests::{ADMIN_TOKEN, Harness, Sink, eventually_async, github_headers};

const GH_SECRET: &str = "gh-secret-for-notification-tests";
const WAIT: Duration = Duration::from_secs(30);

fn push(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(r#"{{"ref":"refs/heads/main","n":"{id}"}}"#).into_bytes();
    (github_headers(GH_SECRET, id, "push", &body), body)
}

fn window(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        / WINDOW.as_millis()
}

/// Three deliveries to a destination that always fails exhaust their two
/// attempts; a Slack-format subscription on source `sluice` receives one
/// `delivery.exhausted` message for them (one per subscription and
/// window), a valid Slack payload naming the subscription and the event.
/// A second subscription on `sluice`, whose own destination fails too,
/// exhausts its delivery of that notification without notifying about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_delivery_is_notified_once_at_a_second_sink_in_the_slack_format() {
    let failing = Sink::start(500).await;
    let slack = Sink::start(200).await;
    let mut h = Harness::new(
        &format!(
            r#"
[admin]
token = "env:ADMIN_TOKEN"

[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]

[[subscriptions]]
id = "orders"
source = "github"
events = ["push"]
url = "{failing}"
retry_schedule = ["1s"]
allow_local = true

[[subscriptions]]
id = "ops"
source = "sluice"
events = ["delivery.exhausted"]
url = "{slack}"
format = "slack"
allow_local = true

[[subscriptions]]
id = "ops-broken"
source = "sluice"
events = ["*"]
url = "{failing}"
retry_schedule = ["1s"]
allow_local = true
"#,
            failing = failing.url(),
            slack = slack.url(),
        ),
        &[("GH_SECRET", GH_SECRET), ("ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    h.opts.shutdown_grace = Duration::from_secs(1);
    let gw = h.start().await;
    let store = h.store();
    let store = &store;
    let failing_sink = &failing;

    let started = SystemTime::now();
    let ids = ["n-1", "n-2", "n-3"];
    for id in ids {
        let (headers, body) = push(id);
        assert_eq!(gw.post("github", &headers, &body).await.0, 200);
    }
    eventually_async(
        WAIT,
        "the three deliveries failed for good",
        || async move {
            let mut failed = 0;
            for id in ids {
                let rows = store
                    .deliveries(&EventKey::new("github", id))
                    .await
                    .unwrap();
                failed += rows
                    .iter()
                    .filter(|r| r.subscription == "orders" && r.status == DeliveryStatus::Failed)
                    .count();
            }
            failed == ids.len()
        },
    )
    .await;
    let exhausted = SystemTime::now();
    // ops-broken gets the notification, fails twice, and is exhausted too:
    // 3 × 2 attempts of orders, then its own 2.
    eventually_async(
        WAIT,
        "ops-broken's delivery failed for good",
        || async move { failing_sink.count() >= ids.len() * 2 + 2 },
    )
    .await;
    // Whatever else was coming has time to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let got = slack.received();
    let windows = if window(started) == window(exhausted) {
        1
    } else {
        2
    };
    assert!(
        !got.is_empty() && got.len() <= windows,
        "one notification per window, none about ops-broken: {:?}",
        got.iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect::<Vec<_>>()
    );
    let message: Value = serde_json::from_slice(&got[0].body).unwrap();
    // A Slack incoming-webhook message: the notification text and blocks.
    let text = message["text"].as_str().expect("a text");
    assert!(text.contains("Delivery to orders failed"), "{text}");
    let blocks = message["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header", "{message}");
    let all = message.to_string();
    assert!(all.contains("orders"), "{all}");
    assert!(
        ids.iter().any(|id| all.contains(&format!("github#{id}"))),
        "names the event: {all}"
    );
    assert!(all.contains("sluice dlq list"), "{all}");
    assert_eq!(
        got[0].headers.get("sluice-event-type").unwrap(),
        "delivery.exhausted"
    );
    // ops-broken's own failure was not notified: only orders is named.
    assert!(got.iter().all(|r| {
        let body = String::from_utf8_lossy(&r.body);
        !body.contains("Delivery to ops-broken")
    }));
    gw.stop().await;
}
