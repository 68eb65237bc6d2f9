//! `/metrics` of the embedded gateway: real webhooks in, a real destination
//! on 127.0.0.1, and the exposition read by a Prometheus text parser.

use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use sluice_tests::{ADMIN_TOKEN, Harness, ListApp, Running, Sink, eventually, github_headers};

const GH_SECRET: &str = "gh-secret-for-metrics-tests";
const WAIT: Duration = Duration::from_secs(20);

fn config(admin: bool, url: &str) -> String {
    let admin = if admin {
        "[admin]\ntoken = \"env:ADMIN_TOKEN\"\n"
    } else {
        ""
    };
    format!(
        r#"
{admin}
[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]

[[subscriptions]]
id = "deploys"
source = "github"
events = ["push"]
url = "{url}"
retry_schedule = ["1s", "1s"]
allow_local = true
"#
    )
}

fn harness(admin: bool, url: &str) -> Harness {
    let mut h = Harness::new(
        &config(admin, url),
        &[("GH_SECRET", GH_SECRET), ("ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    h.opts.shutdown_grace = Duration::from_secs(1);
    h
}

fn push(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(r#"{{"ref":"refs/heads/main","n":"{id}"}}"#).into_bytes();
    (github_headers(GH_SECRET, id, "push", &body), body)
}

/// GET `url` with an optional bearer token: the status and the body.
async fn get(gw: &Running, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = gw.client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn scrape(gw: &Running) -> Scrape {
    let (status, text) = get(gw, &format!("{}/metrics", gw.base), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The sum of the samples of `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => panic!("{metric} is not a single value"),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_received_and_delivered() {
    let sink = Sink::start(200).await;
    // The first attempt fails; the retry 1 s later succeeds.
    sink.script(&[500]);
    let h = harness(true, &sink.url());
    let gw = h.start().await;

    let (headers, body) = push("m-1");
    assert_eq!(gw.post("github", &headers, &body).await.0, 200);
    let (status, reply) = gw.post("github", &headers, &body).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("duplicate")));
    let (mut forged, body2) = push("m-2");
    forged[0].1 = format!("sha256={}", "0".repeat(64));
    let (status, reply) = gw.post("github", &forged, &body2).await;
    assert_eq!(status, 401);
    let bad_signature = reply["error"].as_str().unwrap().to_owned();
    assert_eq!(gw.post("probe-xyz", &headers, &body).await.0, 404);
    eventually(WAIT, "a failed attempt, then a delivery", || {
        sink.count() == 2 && sink.successes().len() == 1
    })
    .await;

    let s = scrape(&gw).await;
    let received = "sluice_received_total";
    let github = ("source", "github");
    assert_eq!(value(&s, received, &[github, ("outcome", "accepted")]), 1.0);
    assert_eq!(
        value(&s, received, &[github, ("outcome", "duplicates")]),
        1.0
    );
    assert_eq!(
        value(
            &s,
            received,
            &[github, ("outcome", "rejected"), ("reason", &bad_signature)]
        ),
        1.0
    );
    assert_eq!(value(&s, received, &[github]), 3.0);
    // The unknown source counts, but its name is not a label value.
    assert_eq!(
        value(
            &s,
            received,
            &[("source", ""), ("reason", "unknown_source")]
        ),
        1.0
    );
    assert_eq!(value(&s, received, &[]), 4.0);
    assert!(
        s.samples
            .iter()
            .all(|x| x.labels.values().all(|v| v != "probe-xyz")),
        "a probed path became a label value"
    );

    // The step that set the retry is counted before its attempt is
    // recorded; wait for the delivery's own count.
    let deliveries = "sluice_deliveries_total";
    let deploys = ("subscription", "deploys");
    let mut s = s;
    for _ in 0..100 {
        if value(&s, deliveries, &[deploys, ("outcome", "delivered")]) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        s = scrape(&gw).await;
    }
    assert_eq!(
        value(&s, deliveries, &[deploys, ("outcome", "retried")]),
        1.0
    );
    assert_eq!(
        value(&s, deliveries, &[deploys, ("outcome", "delivered")]),
        1.0
    );
    assert_eq!(value(&s, deliveries, &[]), 2.0);
    // One latency per HTTP attempt.
    assert_eq!(
        value(&s, "sluice_delivery_latency_seconds_count", &[deploys]),
        2.0
    );
    let histogram = s
        .samples
        .iter()
        .find(|x| x.metric == "sluice_delivery_latency_seconds")
        .expect("the latency histogram");
    assert!(matches!(&histogram.value, Value::Histogram(b) if !b.is_empty()));
    assert_eq!(value(&s, "sluice_dlq_depth", &[]), 0.0);
    // The delivered task's ack is batched: the queue empties soon after.
    for _ in 0..100 {
        if value(&s, "sluice_queue_depth", &[]) == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        s = scrape(&gw).await;
    }
    assert_eq!(value(&s, "sluice_queue_depth", &[]), 0.0);
    assert_eq!(value(&s, "sluice_queue_oldest_age_seconds", &[]), 0.0);

    // Guarded like the admin API.
    let url = format!("{}/metrics", gw.base);
    assert_eq!(get(&gw, &url, None).await.0, 401);
    assert_eq!(
        get(&gw, &url, Some("not-the-admin-token-at-all")).await.0,
        401
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_metrics_are_off_unless_on_their_own_address() {
    let sink = Sink::start(200).await;
    let mut h = harness(false, &sink.url());
    h.opts.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let gw = h.start().await;
    let (headers, body) = push("o-1");
    assert_eq!(gw.post("github", &headers, &body).await.0, 200);

    let main = format!("{}/metrics", gw.base);
    assert_eq!(get(&gw, &main, None).await.0, 404);
    assert_eq!(get(&gw, &main, Some(ADMIN_TOKEN)).await.0, 404);

    // The separate listener serves /metrics alone, without a token.
    let at = gw.gateway.metrics_addr().expect("metrics listener");
    let (status, text) = get(&gw, &format!("http://{at}/metrics"), None).await;
    assert_eq!(status, 200);
    let s = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert_eq!(
        value(
            &s,
            "sluice_received_total",
            &[("source", "github"), ("outcome", "accepted")]
        ),
        1.0
    );
    assert_eq!(get(&gw, &format!("http://{at}/healthz"), None).await.0, 404);
    assert_eq!(
        get(&gw, &format!("http://{at}/admin/sources"), None)
            .await
            .0,
        404
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_polls_count_by_result_and_their_emitted_items() {
    let app = ListApp::start().await;
    for n in 1..=3 {
        app.add(serde_json::json!({ "id": n, "type": "t" }));
    }
    let sink = Sink::start(200).await;
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
emit_existing = true

[[subscriptions]]
id = "out"
source = "app"
events = ["*"]
url = "{}"
allow_local = true
"#,
        app.url(),
        sink.url()
    );
    let mut h = Harness::new(&config, &[("ADMIN_TOKEN", ADMIN_TOKEN)]);
    h.opts.shutdown_grace = Duration::from_secs(1);
    let gw = h.start().await;
    eventually(WAIT, "three deliveries", || sink.count() == 3).await;

    let s = scrape(&gw).await;
    let poller = ("poller", "app");
    assert_eq!(
        value(&s, "sluice_polls_total", &[poller, ("result", "polled")]),
        1.0
    );
    assert_eq!(value(&s, "sluice_poll_items_emitted_total", &[poller]), 3.0);
    gw.stop().await;
}
