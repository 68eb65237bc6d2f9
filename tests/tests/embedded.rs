//! The whole pipeline on the embedded backend: real HTTP in, SQLite, real
//! HTTP destinations on 127.0.0.1.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use sluice::model::{DeliveryStatus, EventKey};
use sluice::store::EventStore;
use sluice_tests::{
    ADMIN_TOKEN, Harness, Running, Sink, asana_headers, discord_headers, discord_key, eventually,
    eventually_async, github_headers, standard_webhooks_valid, twitch_headers, x_crc_response,
    zoom_headers, zoom_url_token,
};

const GH_SECRET: &str = "gh-secret-for-tests";
const SUB_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(20);

fn config(url: &str, extra_sub: &str) -> String {
    format!(
        r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]

[[subscriptions]]
id = "deploys"
source = "github"
events = ["push", "pull_request.*"]
url = "{url}"
signing_secret = "env:SUB_SECRET"
retry_schedule = ["100ms", "100ms"]
allow_local = true
{extra_sub}
"#
    )
}

fn harness(sink: &Sink) -> Harness {
    Harness::new(
        &config(&sink.url(), ""),
        &[("GH_SECRET", GH_SECRET), ("SUB_SECRET", SUB_SECRET)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_delivered_once_with_its_original_bytes_and_a_valid_signature() {
    let sink = Sink::start(200).await;
    let h = harness(&sink);
    let gw = h.start().await;
    // Odd spacing and key order: the bytes must arrive untouched, not re-serialised.
    let body = br#"{ "ref":"refs/heads/main",   "zeta":1, "alpha" : [1,2] }"#;
    let (status, reply) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "d-1", "push", body),
            body,
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        serde_json::json!({"status": "accepted", "id": "d-1"})
    );

    eventually(WAIT, "delivery", || sink.count() == 1).await;
    let got = &sink.received()[0];
    assert_eq!(&got.body[..], &body[..]);
    assert_eq!(got.headers["content-type"], "application/json");
    assert!(
        standard_webhooks_valid(SUB_SECRET, &got.headers, &got.body),
        "outbound signature must verify"
    );
    assert!(!standard_webhooks_valid(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &got.headers,
        &got.body
    ));

    let store = h.store();
    let key = EventKey::new("github", "d-1");
    eventually_async(WAIT, "delivered status", || async {
        store
            .deliveries(&key)
            .await
            .unwrap()
            .iter()
            .any(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1, "delivered exactly once");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_twenty_concurrent_copies_commit_once_and_deliver_once() {
    let sink = Sink::start(200).await;
    let h = harness(&sink);
    let gw = h.start().await;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let headers = github_headers(GH_SECRET, "same-delivery", "push", body);
    let sends = (0..20).map(|_| gw.post("github", &headers, body));
    let replies = futures::future::join_all(sends).await;
    let accepted = replies
        .iter()
        .filter(|(s, r)| *s == 200 && r["status"] == "accepted")
        .count();
    let duplicates = replies
        .iter()
        .filter(|(s, r)| *s == 200 && r["status"] == "duplicate")
        .count();
    assert_eq!((accepted, duplicates), (1, 19), "{replies:?}");

    eventually(WAIT, "delivery", || sink.count() >= 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count(), 1);
    assert_eq!(h.store().event_count().await.unwrap(), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_a_destination_answering_500_500_200_gets_exactly_three_logged_attempts() {
    let sink = Sink::start(200).await;
    sink.script(&[500, 500]);
    let h = harness(&sink);
    let gw = h.start().await;
    let body = br#"{"ref":"x"}"#;
    let (status, _) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "d-c", "push", body),
            body,
        )
        .await;
    assert_eq!(status, 200);

    let store = h.store();
    let key = EventKey::new("github", "d-c");
    eventually_async(WAIT, "delivered after retries", || async {
        store
            .deliveries(&key)
            .await
            .unwrap()
            .iter()
            .any(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.received().iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    let attempts = store.attempts(&key).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
        vec![Some(500), Some(500), Some(200)]
    );
    assert!(attempts[0].next_attempt_at_ms.is_some() && attempts[2].next_attempt_at_ms.is_none());
    let d = &store.deliveries(&key).await.unwrap()[0];
    assert_eq!(d.attempts, 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_a_destination_that_always_fails_ends_failed_and_dead_lettered() {
    let sink = Sink::start(503).await;
    let h = harness(&sink);
    let gw = h.start().await;
    let body = br#"{"ref":"x"}"#;
    gw.post(
        "github",
        &github_headers(GH_SECRET, "d-d", "push", body),
        body,
    )
    .await;

    let store = h.store();
    let key = EventKey::new("github", "d-d");
    // The task is dead-lettered first, then the delivery marked failed.
    eventually_async(WAIT, "failed status", || async {
        store
            .deliveries(&key)
            .await
            .unwrap()
            .iter()
            .any(|d| d.status == DeliveryStatus::Failed)
    })
    .await;
    let dead = store.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].task.event_id, "d-d");
    assert_eq!(dead[0].task.subscription, "deploys");
    assert!(dead[0].reason.contains("503"), "{}", dead[0].reason);
    let d = &store.deliveries(&key).await.unwrap()[0];
    assert_eq!(d.status, DeliveryStatus::Failed);
    // retry_schedule has two waits: three attempts, then nothing more.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sink.count(), 3);
    assert_eq!(store.attempts(&key).await.unwrap().len(), 3);
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_a_restart_with_deliveries_pending_loses_none_and_repeats_none() {
    let sink = Sink::start(503).await;
    // Slow retries: deliveries are certainly pending when we stop. No
    // breaker: all twelve fail their first attempt, none is held.
    let cfg = config(&sink.url(), "circuit_breaker = { failures = 0 }").replace(
        r#"["100ms", "100ms"]"#,
        r#"["300ms", "300ms", "300ms", "300ms"]"#,
    );
    let h = Harness::new(
        &cfg,
        &[("GH_SECRET", GH_SECRET), ("SUB_SECRET", SUB_SECRET)],
    );
    let gw = h.start().await;
    let n = 12;
    for i in 0..n {
        let body = format!(r#"{{"n":{i}}}"#);
        let (status, _) = gw
            .post(
                "github",
                &github_headers(GH_SECRET, &format!("r-{i}"), "push", body.as_bytes()),
                body.as_bytes(),
            )
            .await;
        assert_eq!(status, 200);
    }
    eventually(WAIT, "first attempts", || sink.count() >= n).await;
    gw.stop().await;
    assert!(sink.successes().is_empty());

    // The destination recovers; the gateway comes back on the same database.
    sink.set_default(200);
    let gw = h.start().await;
    eventually(WAIT, "all delivered after restart", || {
        sink.successes().len() >= n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for r in sink.successes() {
        *per_event
            .entry(r.headers["webhook-id"].to_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_event.len(), n, "every event delivered: {per_event:?}");
    assert!(
        per_event.values().all(|&c| c == 1),
        "none delivered twice: {per_event:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f_an_event_matching_no_subscription_is_committed_and_logged() {
    let sink = Sink::start(200).await;
    let h = harness(&sink);
    let gw = h.start().await;
    let body = br#"{"action":"created"}"#;
    let (status, reply) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "d-f", "star", body),
            body,
        )
        .await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")));
    let store = h.store();
    let key = EventKey::new("github", "d-f");
    eventually_async(WAIT, "routing", || async {
        store.routed(&key).await.unwrap().is_some()
    })
    .await;
    assert_eq!(store.routed(&key).await.unwrap(), Some(vec![]));
    assert_eq!(store.event_count().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.count(), 0);
    gw.stop().await;
}

/// The handshakes that come as a GET or HEAD (Meta, X, Dropbox, Okta,
/// Trello) through `sluice serve`: answered as each provider requires,
/// refused when the check fails, 405 with `Allow` where a source takes
/// none, and nothing committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_get_and_head_handshakes_are_answered_through_sluice_serve() {
    let sink = Sink::start(200).await;
    let sources = r#"
[[sources]]
id = "meta"
provider = "meta"
secrets = ["env:APP_SECRET"]
verify_token = "env:META_VERIFY"

[[sources]]
id = "x"
provider = "x"
secrets = ["env:X_SECRET"]

[[sources]]
id = "dropbox"
provider = "dropbox"
secrets = ["env:APP_SECRET"]

[[sources]]
id = "okta"
provider = "okta"
secrets = ["env:OKTA_AUTH"]

[[sources]]
id = "trello"
provider = "trello"
secrets = ["env:APP_SECRET"]
public_url = "https://hooks.example.com/hooks/trello"

[[sources]]
id = "graph"
provider = "msgraph"
secrets = ["env:GRAPH_STATE"]
"#;
    let h = Harness::new(
        &config(&sink.url(), sources),
        &[
            ("GH_SECRET", GH_SECRET),
            ("SUB_SECRET", SUB_SECRET),
            ("APP_SECRET", "app-secret"),
            ("META_VERIFY", "meta-verify-9f2"),
            ("X_SECRET", "x-consumer-secret"),
            ("OKTA_AUTH", "Bearer okta-hook-7d1e"),
            ("GRAPH_STATE", "graph-client-state-5b1c"),
        ],
    );
    let gw = h.start().await;
    let call = |method: reqwest::Method, path: &str, headers: &[(&str, &str)]| {
        let mut req = gw.client.request(method, format!("{}{path}", gw.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.text().await.unwrap())
        }
    };
    let get = reqwest::Method::GET;
    let head = reqwest::Method::HEAD;

    let (s, hd, body) = call(
        get.clone(),
        "/hooks/meta?hub.mode=subscribe&hub.verify_token=meta-verify-9f2&hub.challenge=1158201444",
        &[],
    )
    .await;
    assert_eq!((s, body.as_str()), (200, "1158201444"));
    assert!(
        hd["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(hd["x-content-type-options"], "nosniff");
    let (s, _, body) = call(
        get.clone(),
        "/hooks/meta?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1",
        &[],
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(!body.contains("meta-verify-9f2"), "{body}");

    let (s, _, body) = call(get.clone(), "/hooks/x?crc_token=crc-abc_123", &[]).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"response_token": x_crc_response("x-consumer-secret", "crc-abc_123")})
    );

    let (s, hd, body) = call(get.clone(), "/hooks/dropbox?challenge=dbx-42", &[]).await;
    assert_eq!((s, body.as_str()), (200, "dbx-42"));
    assert_eq!(hd["x-content-type-options"], "nosniff");

    let challenge = ("x-okta-verification-challenge", "oktaChallenge-XYZ");
    let (s, _, body) = call(
        get.clone(),
        "/hooks/okta",
        &[("authorization", "Bearer okta-hook-7d1e"), challenge],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"verification": "oktaChallenge-XYZ"})
    );
    let (s, _, _) = call(get.clone(), "/hooks/okta", &[challenge]).await;
    assert_eq!(s, 401);

    let (s, _, body) = call(head.clone(), "/hooks/trello", &[]).await;
    assert_eq!((s, body.as_str()), (200, ""));
    let (s, hd, _) = call(get.clone(), "/hooks/trello", &[]).await;
    assert_eq!((s, hd["allow"].to_str().unwrap()), (405, "HEAD, POST"));
    let (s, hd, body) = call(get.clone(), "/hooks/github", &[]).await;
    assert_eq!((s, hd["allow"].to_str().unwrap()), (405, "POST"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "method_not_allowed"
    );
    let (s, hd, _) = call(reqwest::Method::PUT, "/hooks/meta", &[]).await;
    assert_eq!((s, hd["allow"].to_str().unwrap()), (405, "GET, HEAD, POST"));
    let (s, _, _) = call(get.clone(), "/hooks/nope?challenge=1", &[]).await;
    assert_eq!(s, 404);

    // Microsoft Graph's validation is a POST with the token in the query.
    let (s, hd, body) = call(
        reqwest::Method::POST,
        "/hooks/graph?validationToken=Validation%3a+Testing+client+application+reachability",
        &[("content-type", "text/plain")],
    )
    .await;
    assert_eq!(
        (s, body.as_str()),
        (200, "Validation: Testing client application reachability")
    );
    assert!(
        hd["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );

    assert_eq!(
        h.store().event_count().await.unwrap(),
        0,
        "handshakes commit nothing"
    );

    // Its notifications carry the clientState, and are committed.
    let note = json!({"value": [{"subscriptionId": "7f10", "clientState": "graph-client-state-5b1c", "changeType": "created", "resource": "Users/ea4d/Messages/AAMk"}]});
    let (status, reply) = gw.post("graph", &[], note.to_string().as_bytes()).await;
    assert_eq!(
        (status, &reply["status"]),
        (200, &json!("accepted")),
        "{reply}"
    );
    let forged = note.to_string().replace("5b1c", "5b1d");
    let (status, reply) = gw.post("graph", &[], forged.as_bytes()).await;
    assert_eq!(
        (status, &reply["error"]),
        (401, &json!("invalid_signature"))
    );
    assert_eq!(h.store().event_count().await.unwrap(), 1);
    gw.stop().await;
}

/// The generic `token` scheme through `sluice serve`: a token in the
/// query parameter the source names (the query reaches the verifier
/// though `sluice serve` knows no URL), and one in a header, which is
/// never stored with the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_token_sources_are_verified_through_sluice_serve() {
    let sink = Sink::start(200).await;
    let sources = r#"
[[sources]]
id = "by-query"
provider = "token"
secrets = ["env:QUERY_TOKEN"]
[sources.token]
query = "key"

[[sources]]
id = "by-header"
provider = "token"
secrets = ["env:HEADER_TOKEN"]
[sources.token]
header = "X-Api-Key"
"#;
    let h = Harness::new(
        &config(&sink.url(), sources),
        &[
            ("GH_SECRET", GH_SECRET),
            ("SUB_SECRET", SUB_SECRET),
            ("QUERY_TOKEN", "q-tok/1+2"),
            ("HEADER_TOKEN", "h-tok-9"),
        ],
    );
    let gw = h.start().await;
    let post = |path: &str, headers: &[(&str, &str)], body: &'static str| {
        let mut req = gw.client.post(format!("{}{path}", gw.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let (s, v) = post("/hooks/by-query?key=q-tok%2F1%2B2", &[], r#"{"type":"a"}"#).await;
    assert_eq!((s, &v["status"]), (200, &json!("accepted")), "{v}");
    for (query, status, code) in [
        ("?key=q-tok/1+2", 401, "invalid_signature"),
        ("?other=1", 401, "missing_signature"),
        ("", 401, "missing_signature"),
        ("?key=q-tok%2F1%2B2&key=q-tok%2F1%2B2", 400, "bad_request"),
    ] {
        let (s, v) = post(&format!("/hooks/by-query{query}"), &[], r#"{"type":"b"}"#).await;
        assert_eq!((s, &v["error"]), (status, &json!(code)), "{query}: {v}");
    }

    let (s, v) = post(
        "/hooks/by-header",
        &[("x-api-key", "h-tok-9"), ("x-kept", "1")],
        r#"{"type":"c"}"#,
    )
    .await;
    assert_eq!((s, &v["status"]), (200, &json!("accepted")), "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = post("/hooks/by-header", &[("x-api-key", "h-tok-8")], "{}").await;
    assert_eq!((s, &v["error"]), (401, &json!("invalid_signature")), "{v}");

    let store = h.store();
    assert_eq!(store.event_count().await.unwrap(), 2);
    let event = store
        .load(&EventKey::new("by-header", &id))
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&str> = event.headers.iter().map(|(k, _)| k).collect();
    assert!(names.contains(&"x-kept"), "{names:?}");
    assert!(!names.contains(&"x-api-key"), "{names:?}");
    gw.stop().await;
}

/// Asana's X-Hook-Secret handshake through `sluice serve`: before it the
/// source answers 503 (Asana retries); the first handshake's secret is
/// kept in the database and echoed in the response header; events signed
/// with it are accepted and delivered, also after a restart (the config
/// file, applied again, does not undo it); another secret is a 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asanas_secret_handshake_is_kept_and_verifies_events_through_sluice_serve() {
    let sink = Sink::start(200).await;
    let sources = r#"
[[sources]]
id = "asana"
provider = "asana"
secrets = ["db:asana-hook-secret"]

[[subscriptions]]
id = "tasks"
source = "asana"
events = ["*"]
url = "{url}"
allow_local = true
"#
    .replace("{url}", &sink.url());
    let h = Harness::new(
        &config(&sink.url(), &sources),
        &[("GH_SECRET", GH_SECRET), ("SUB_SECRET", SUB_SECRET)],
    );
    let gw = h.start().await;
    let body = br#"{"events":[{"action":"changed","resource":{"gid":"42"}}]}"#;
    let signed = |secret: &str| asana_headers(secret, body);
    let (status, v) = gw.post("asana", &signed("guess"), body).await;
    assert_eq!(
        (status, &v["error"]),
        (503, &json!("awaiting_handshake")),
        "{v}"
    );

    let handshake = |secret: &str| {
        gw.client
            .post(format!("{}/hooks/asana", gw.base))
            .header("x-hook-secret", secret)
            .send()
    };
    let r = handshake("0f3e9b1c2d4a5e6f").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hook-secret"], "0f3e9b1c2d4a5e6f");
    assert_eq!(r.text().await.unwrap(), "");
    let store = h.store();
    assert_eq!(
        store.event_count().await.unwrap(),
        0,
        "a handshake commits nothing"
    );

    let (status, v) = gw.post("asana", &signed("0f3e9b1c2d4a5e6f"), body).await;
    assert_eq!((status, &v["status"]), (200, &json!("accepted")), "{v}");
    eventually(WAIT, "the event delivered", || sink.count() == 1).await;
    gw.stop().await;

    // A restart applies the config file again; the kept secret stays.
    let gw = h.start().await;
    let other = br#"{"events":[{"action":"added","resource":{"gid":"43"}}]}"#;
    let (status, v) = gw
        .post("asana", &asana_headers("0f3e9b1c2d4a5e6f", other), other)
        .await;
    assert_eq!((status, &v["status"]), (200, &json!("accepted")), "{v}");
    let r = gw
        .client
        .post(format!("{}/hooks/asana", gw.base))
        .header("x-hook-secret", "an-attacker-choice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.headers().get("x-hook-secret").is_none());
    let (status, _) = gw.post("asana", &signed("an-attacker-choice"), body).await;
    assert_eq!(status, 401, "the first secret stays");
    eventually(WAIT, "the second event delivered", || sink.count() == 2).await;
    gw.stop().await;
}

const ZOOM_SECRET: &str = "zoom-secret-token";
const TWITCH_SECRET: &str = "twitch-subscription-secret";

/// Zoom's URL validation and Twitch's callback verification are answered
/// as each provider requires, only when signed, and commit nothing; the
/// same sources' signed events are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_provider_handshakes_are_answered_and_commit_nothing() {
    let sink = Sink::start(200).await;
    let sources = r#"
[[sources]]
id = "zoom"
provider = "zoom"
secrets = ["env:ZOOM_SECRET"]

[[sources]]
id = "twitch"
provider = "twitch"
secrets = ["env:TWITCH_SECRET"]

[[sources]]
id = "discord"
provider = "discord"
secrets = ["env:DISCORD_PUBLIC_KEY"]
"#;
    let (discord, discord_public) = discord_key(11);
    let h = Harness::new(
        &config(&sink.url(), sources),
        &[
            ("GH_SECRET", GH_SECRET),
            ("SUB_SECRET", SUB_SECRET),
            ("ZOOM_SECRET", ZOOM_SECRET),
            ("TWITCH_SECRET", TWITCH_SECRET),
            ("DISCORD_PUBLIC_KEY", &discord_public),
        ],
    );
    let gw = h.start().await;

    // Discord: a PING is answered, a forged one is a 401 (Discord checks
    // both before it saves the URL), and a command is committed and
    // deferred with an interaction response.
    let ping = br#"{"id":"987","type":1,"application_id":"42"}"#;
    let (status, reply) = gw
        .post("discord", &discord_headers(&discord, ping), ping)
        .await;
    assert_eq!((status, reply), (200, json!({"type": 1})));
    let (other, _) = discord_key(12);
    let (status, _) = gw
        .post("discord", &discord_headers(&other, ping), ping)
        .await;
    assert_eq!(status, 401);
    let command = br#"{"id":"988","type":2,"data":{"name":"deploy"},"token":"t"}"#;
    let (status, reply) = gw
        .post("discord", &discord_headers(&discord, command), command)
        .await;
    assert_eq!((status, reply), (200, json!({"type": 5})));
    assert_eq!(h.store().event_count().await.unwrap(), 1);

    let validation = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let (status, reply) = gw
        .post("zoom", &zoom_headers(ZOOM_SECRET, validation), validation)
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({
            "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": zoom_url_token(ZOOM_SECRET, "qgg8vlvZRS6UYooatFL8Aw"),
        })
    );
    let (status, reply) = gw
        .post(
            "zoom",
            &zoom_headers("not-the-secret", validation),
            validation,
        )
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (401, Some("invalid_signature"))
    );

    let challenge = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387","type":"channel.follow","version":"2"}}"#;
    let send = |headers: Vec<(String, String)>, body: &'static [u8]| {
        let mut req = gw.client.post(format!("{}/hooks/twitch", gw.base));
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        req.body(body).send()
    };
    let answer = send(
        twitch_headers(
            TWITCH_SECRET,
            "m-1",
            "webhook_callback_verification",
            challenge,
        ),
        challenge,
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        answer.text().await.unwrap(),
        "pogchamp-kappa-360noscope-vohiyo"
    );
    let forged = send(
        twitch_headers("wrong", "m-2", "webhook_callback_verification", challenge),
        challenge,
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(
        h.store().event_count().await.unwrap(),
        1,
        "handshakes commit nothing (the one event is Discord's command)"
    );

    let meeting = br#"{"event":"meeting.started","event_ts":1700000000000,"payload":{}}"#;
    let (status, reply) = gw
        .post("zoom", &zoom_headers(ZOOM_SECRET, meeting), meeting)
        .await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    let follow = br#"{"subscription":{"type":"channel.follow"},"event":{"user_id":"1"}}"#;
    let (status, reply) = gw
        .post(
            "twitch",
            &twitch_headers(TWITCH_SECRET, "m-3", "notification", follow),
            follow,
        )
        .await;
    assert_eq!(
        reply,
        json!({"status": "accepted", "id": "m-3"}),
        "{status}"
    );
    assert_eq!(h.store().event_count().await.unwrap(), 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_a_payload_filter_delivers_only_the_events_it_is_true_for() {
    let all = Sink::start(200).await;
    let opened = Sink::start(200).await;
    let extra = format!(
        r#"
[[subscriptions]]
id = "opened"
source = "github"
events = ["pull_request.*", "issues.*"]
url = "{}"
allow_local = true
filter = 'payload.action == "opened" and not payload.pull_request.draft'
"#,
        opened.url()
    );
    let h = Harness::new(
        &config(&all.url(), &extra),
        &[("GH_SECRET", GH_SECRET), ("SUB_SECRET", SUB_SECRET)],
    );
    let gw = h.start().await;
    let sends: [(&str, &str, &[u8]); 4] = [
        (
            "f-1",
            "pull_request",
            br#"{"action":"opened","pull_request":{"draft":false}}"#,
        ),
        (
            "f-2",
            "pull_request",
            br#"{"action":"opened","pull_request":{"draft":true}}"#,
        ),
        (
            "f-3",
            "pull_request",
            br#"{"action":"closed","pull_request":{"draft":false}}"#,
        ),
        // Only "opened" takes issues, and its filter is false for this one.
        ("f-4", "issues", br#"{"action":"closed","issue":{}}"#),
    ];
    for (id, event, body) in sends {
        let (status, reply) = gw
            .post("github", &github_headers(GH_SECRET, id, event, body), body)
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    let store = h.store();
    let routed = |id: &'static str| {
        let store = store.clone();
        async move { store.routed(&EventKey::new("github", id)).await.unwrap() }
    };
    eventually_async(WAIT, "routing", || async { routed("f-4").await.is_some() }).await;
    assert_eq!(
        routed("f-1").await,
        Some(vec!["deploys".into(), "opened".into()])
    );
    assert_eq!(routed("f-2").await, Some(vec!["deploys".into()]));
    assert_eq!(routed("f-3").await, Some(vec!["deploys".into()]));
    // Matched nothing after filtering: still committed, logged as unrouted.
    assert_eq!(routed("f-4").await, Some(vec![]));
    eventually(WAIT, "deliveries", || {
        all.count() == 3 && opened.count() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((all.count(), opened.count()), (3, 1));
    let got = &opened.received()[0];
    assert_eq!(&got.body[..], sends[0].2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_the_ssrf_guard_refuses_private_destinations_unless_the_subscription_opts_out() {
    let sink = Sink::start(200).await;
    let port = sink.addr.port();
    // "localhost" resolves to a loopback address: refused after resolution.
    let guarded = format!(
        r#"
[[subscriptions]]
id = "guarded"
source = "github"
events = ["*"]
url = "https://localhost:{port}/hook"
"#
    );
    let h = Harness::new(
        &config(&sink.url(), &guarded),
        &[("GH_SECRET", GH_SECRET), ("SUB_SECRET", SUB_SECRET)],
    );
    let gw = h.start().await;
    let body = br#"{"ref":"x"}"#;
    gw.post(
        "github",
        &github_headers(GH_SECRET, "d-g", "push", body),
        body,
    )
    .await;

    let store = h.store();
    eventually_async(WAIT, "guarded dead letter", || async {
        store
            .dead_letters()
            .await
            .unwrap()
            .iter()
            .any(|d| d.task.subscription == "guarded")
    })
    .await;
    let dead = store.dead_letters().await.unwrap();
    let refused = dead
        .iter()
        .find(|d| d.task.subscription == "guarded")
        .unwrap();
    assert!(refused.reason.contains("refused"), "{}", refused.reason);
    // The opted-out subscription reached the same server; the guarded one never did.
    eventually(WAIT, "opted-out delivery", || sink.count() == 1).await;
    // The refused attempt is logged right after its dead letter.
    let key = EventKey::new("github", "d-g");
    eventually_async(WAIT, "guarded attempt logged", || async {
        store
            .attempts(&key)
            .await
            .unwrap()
            .iter()
            .any(|a| a.subscription == "guarded")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.count(), 1);
    let attempts = store.attempts(&key).await.unwrap();
    let guarded_attempts: Vec<_> = attempts
        .iter()
        .filter(|a| a.subscription == "guarded")
        .collect();
    assert_eq!(guarded_attempts.len(), 1, "a refusal is not retried");
    assert!(guarded_attempts[0].status_code.is_none());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h_a_slack_subscription_receives_slack_json_signed_over_what_it_receives() {
    let sink = Sink::start(200).await;
    let chat = Sink::start(200).await;
    let slack = format!(
        r#"
[[subscriptions]]
id = "team-chat"
source = "github"
events = ["push"]
url = "{}"
format = "slack"
signing_secret = "env:SUB_SECRET"
allow_local = true
"#,
        chat.url()
    );
    let h = Harness::new(
        &config(&sink.url(), &slack),
        &[("GH_SECRET", GH_SECRET), ("SUB_SECRET", SUB_SECRET)],
    );
    let gw = h.start().await;
    let body = br#"{"ref":"refs/heads/main","compare":"https://github.com/acme/api/compare/a...b","repository":{"full_name":"acme/api"},"pusher":{"name":"mona"},"commits":[{"id":"0d1a26e67d8f"}],"head_commit":{"id":"0d1a26e67d8f","message":"Ship <it> & more"}}"#;
    let (status, _) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "d-h", "push", body),
            body,
        )
        .await;
    assert_eq!(status, 200);

    eventually(WAIT, "slack delivery", || chat.count() == 1).await;
    let got = &chat.received()[0];
    assert_eq!(got.headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        v["text"],
        "GitHub · push: acme/api: 1 commit pushed to main by mona"
    );
    assert_eq!(v["blocks"][0]["type"], "header");
    assert_eq!(
        v["blocks"][1]["text"]["text"],
        "*<https://github.com/acme/api/compare/a...b|acme/api: 1 commit pushed to main by mona>*\n0d1a26e Ship &lt;it&gt; &amp; more"
    );
    assert!(
        standard_webhooks_valid(SUB_SECRET, &got.headers, &got.body),
        "the signature covers the Slack JSON that was sent"
    );
    // The raw subscription still gets the original bytes.
    eventually(WAIT, "raw delivery", || sink.count() == 1).await;
    assert_eq!(&sink.received()[0].body[..], &body[..]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_contract_holds_for_bad_requests() {
    let sink = Sink::start(200).await;
    let cfg = config(&sink.url(), "").replace(
        "secrets = [\"env:GH_SECRET\"]",
        "secrets = [\"env:GH_SECRET\"]\nmax_body_bytes = 1024",
    );
    let h = Harness::new(
        &cfg,
        &[("GH_SECRET", GH_SECRET), ("SUB_SECRET", SUB_SECRET)],
    );
    let gw = h.start().await;
    let body = br#"{"ref":"x"}"#;

    let (s, r) = gw
        .post("nope", &github_headers(GH_SECRET, "x", "push", body), body)
        .await;
    assert_eq!((s, r["error"].as_str()), (404, Some("unknown_source")));

    let (s, r) = gw
        .post("github", &github_headers("wrong", "x", "push", body), body)
        .await;
    assert_eq!((s, r["error"].as_str()), (401, Some("invalid_signature")));

    let mut missing = github_headers(GH_SECRET, "x", "push", body);
    missing.retain(|(k, _)| k != "x-hub-signature-256");
    let (s, r) = gw.post("github", &missing, body).await;
    assert_eq!((s, r["error"].as_str()), (401, Some("missing_signature")));

    let big = vec![b'a'; 2048];
    let (s, r) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "x", "push", &big),
            &big,
        )
        .await;
    assert_eq!((s, r["error"].as_str()), (413, Some("body_too_large")));

    // A signature header that is not text: unreadable, 400.
    let resp = gw
        .client
        .post(format!("{}/hooks/github", gw.base))
        .header(
            "x-hub-signature-256",
            http::HeaderValue::from_bytes(b"sha256=\xff\xfe").unwrap(),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    let health = gw
        .client
        .get(format!("{}/healthz", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    assert_eq!(
        h.store().event_count().await.unwrap(),
        0,
        "nothing bad was committed"
    );
    gw.stop().await;
}

// ---- the admin API, over HTTP against the running gateway ----

const ADMIN_CONFIG: &str = r#"
[admin]
token = "env:ADMIN_TOKEN"
"#;

fn admin_harness() -> Harness {
    Harness::new(ADMIN_CONFIG, &[("ADMIN_TOKEN", ADMIN_TOKEN)])
}

/// Poll the event until its status is `status`; returns the event.
async fn event_with_status(gw: &Running, id: &str, status: &str) -> Value {
    let path = format!("/admin/events/{}", id.replace('#', "%23"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (s, v) = gw.admin("GET", &path, Value::Null).await;
        if s == 200 && v["status"] == status {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {id} to be {status}: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn dlq(gw: &Running) -> Value {
    gw.admin("GET", "/admin/dlq", Value::Null).await.1
}

async fn send_push(gw: &Running, delivery: &str) {
    let body = format!(r#"{{"ref":"refs/heads/main","n":"{delivery}"}}"#);
    let (status, reply) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, delivery, "push", body.as_bytes()),
            body.as_bytes(),
        )
        .await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_register_deliver_inspect_fail_replay_and_redrive() {
    let sink = Sink::start(200).await;
    let h = admin_harness();
    let gw = h.start().await;

    // Register a source (its secret given by value) and a subscription.
    let (s, v) = gw
        .admin(
            "POST",
            "/admin/sources",
            json!({"id": "github", "provider": "github", "secrets": [{"value": GH_SECRET}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(!v.to_string().contains(GH_SECRET), "never echoed: {v}");
    let (s, v) = gw
        .admin(
            "POST",
            "/admin/subscriptions",
            json!({"id": "deploys", "source": "github", "url": sink.url(), "events": ["push"],
                   "format": "raw", "retry_schedule": ["100ms", "100ms"], "allow_local": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let whsec = v["signing_secret"].as_str().unwrap().to_owned();
    assert!(whsec.starts_with("whsec_"));
    let (_, v) = gw
        .admin("GET", "/admin/subscriptions/deploys", Value::Null)
        .await;
    assert!(
        v.get("signing_secret").is_none() && v["has_signing_secret"] == true,
        "{v}"
    );

    // A signed webhook is delivered, signed with the new secret.
    send_push(&gw, "d-1").await;
    eventually(WAIT, "first delivery", || sink.count() == 1).await;
    let got = &sink.received()[0];
    assert!(standard_webhooks_valid(&whsec, &got.headers, &got.body));
    let ev = event_with_status(&gw, "github#d-1", "delivered").await;
    assert_eq!(ev["type"], "push");
    assert_eq!(ev["body_encoding"], "utf8");
    assert!(ev["body"].as_str().unwrap().contains("d-1"));
    assert!(ev["headers"].to_string().contains("x-github-event"));
    let d = &ev["deliveries"][0];
    assert_eq!(d["subscription"], "deploys");
    assert_eq!(
        d["attempts"],
        json!({"total": 1, "succeeded": 1, "failed": 0})
    );
    assert_eq!(d["last_attempt"]["status_code"], 200);
    assert!(d["last_attempt"]["latency_ms"].is_u64());
    assert!(d["last_attempt"]["at"].is_string());
    let (s, list) = gw
        .admin(
            "GET",
            "/admin/events?source=github&status=delivered",
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["events"][0]["id"], "github#d-1");

    // The destination fails: three attempts, failed, dead-lettered.
    sink.set_default(503);
    send_push(&gw, "d-2").await;
    let ev = event_with_status(&gw, "github#d-2", "failed").await;
    let d = &ev["deliveries"][0];
    assert_eq!(d["status"], "failed");
    assert_eq!(
        d["attempts"],
        json!({"total": 3, "succeeded": 0, "failed": 3})
    );
    assert_eq!(d["last_attempt"]["status_code"], 503);
    assert!(d["next_attempt_at"].is_null());
    assert!(ev["deliveries"][0]["attempt_log"][0]["next_attempt_at"].is_string());
    let (_, failed) = gw
        .admin("GET", "/admin/events?status=failed&since=1h", Value::Null)
        .await;
    assert_eq!(failed["events"].as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(
        failed["events"][0]["destinations"],
        json!([{"subscription": "deploys", "status": "failed", "attempts": 3}])
    );
    eventually_async(WAIT, "dead letter", || async {
        dlq(&gw).await["dead_letters"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    })
    .await;
    send_push(&gw, "d-3").await;
    event_with_status(&gw, "github#d-3", "failed").await;

    // It recovers; replay d-2 to it: a new delivery linked to the original.
    sink.set_default(200);
    let before = sink.successes().len();
    let (s, v) = gw
        .admin(
            "POST",
            "/admin/events/github%23d-2/replay",
            json!({"subscription": "deploys"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["id"], "github#d-2#replay-1");
    assert_eq!(v["replay_of"], "github#d-2");
    let replay = event_with_status(&gw, "github#d-2#replay-1", "delivered").await;
    assert_eq!(replay["replay_of"], "github#d-2");
    assert_eq!(
        replay["deliveries"][0]["attempts"]["total"], 1,
        "its own attempt log"
    );
    eventually(WAIT, "replayed delivery", || {
        sink.successes().len() == before + 1
    })
    .await;
    let last = sink.successes().pop().unwrap();
    assert_eq!(last.headers["webhook-id"], "github#d-2#replay-1");
    assert!(standard_webhooks_valid(&whsec, &last.headers, &last.body));
    let (_, orig) = gw
        .admin("GET", "/admin/events/github%23d-2", Value::Null)
        .await;
    assert_eq!(orig["replays"], json!(["github#d-2#replay-1"]));
    assert_eq!(
        orig["deliveries"][0]["attempts"]["total"], 3,
        "the original's log is unchanged"
    );

    // The replay settled d-2's dead letter; d-3's is redriven.
    let dead = dlq(&gw).await;
    let dead = dead["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["event"], "github#d-3");
    let (s, v) = gw.admin("POST", "/admin/dlq/redrive", json!({})).await;
    assert_eq!((s, v["redriven"].as_u64()), (202, Some(1)), "{v}");
    event_with_status(&gw, "github#d-3#replay-1", "delivered").await;
    assert!(
        dlq(&gw).await["dead_letters"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Everything that failed has been replayed: a bulk replay finds nothing.
    let (s, v) = gw
        .admin(
            "POST",
            "/admin/replay",
            json!({"status": "failed", "source": "github", "since": "1h"}),
        )
        .await;
    assert_eq!((s, v["replayed"].as_u64()), (202, Some(0)), "{v}");

    // Rotation: during the overlap, both secrets sign.
    let (s, v) = gw
        .admin(
            "POST",
            "/admin/subscriptions/deploys/rotate-secret",
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let next = v["signing_secret"].as_str().unwrap().to_owned();
    gw.stop().await;

    // Config made through the API survives a restart.
    let gw = h.start().await;
    let before = sink.successes().len();
    send_push(&gw, "d-4").await;
    eventually(WAIT, "delivery after restart", || {
        sink.successes().len() == before + 1
    })
    .await;
    let last = sink.successes().pop().unwrap();
    assert!(standard_webhooks_valid(&next, &last.headers, &last.body));
    assert!(
        standard_webhooks_valid(&whsec, &last.headers, &last.body),
        "old one still signs"
    );

    // Disabled: the source's webhooks answer 404, the subscription gets nothing new.
    let (s, _) = gw
        .admin("POST", "/admin/sources/github/disable", Value::Null)
        .await;
    assert_eq!(s, 200);
    let body = br#"{"x":1}"#;
    let (s, _) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "d-5", "push", body),
            body,
        )
        .await;
    assert_eq!(s, 404);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_rejects_bad_tokens_and_bad_input_with_the_field_named() {
    let h = Harness::new(
        &format!(
            "{ADMIN_CONFIG}\n[[sources]]\nid = \"github\"\nprovider = \"github\"\nsecrets = [\"env:GH_SECRET\"]\n"
        ),
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("GH_SECRET", GH_SECRET)],
    );
    let gw = h.start().await;
    for token in [None, Some("not-the-token-not-the-token")] {
        let (s, v) = gw
            .admin_as(token, "GET", "/admin/sources", &Value::Null)
            .await;
        assert_eq!((s, v["error"].as_str()), (401, Some("unauthorized")));
    }
    let resp = gw
        .client
        .post(format!("{}/admin/subscriptions", gw.base))
        .bearer_auth(ADMIN_TOKEN)
        .body("{\"source\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(v["error"], "malformed_json");

    let cases = [
        (
            json!({"source": "github", "url": "https://example.com", "events": "push"}),
            "events",
        ),
        (
            json!({"source": "github", "url": "ftp://example.com", "events": ["*"]}),
            "url",
        ),
        (
            json!({"source": "nope", "url": "https://example.com", "events": ["*"]}),
            "source",
        ),
        (json!({"source": "github", "events": ["*"]}), "url"),
    ];
    for (body, field) in cases {
        let (s, v) = gw.admin("POST", "/admin/subscriptions", body.clone()).await;
        assert_eq!((s, v["field"].as_str()), (422, Some(field)), "{body}: {v}");
    }
    let (s, v) = gw
        .admin("GET", "/admin/events?since=someday", Value::Null)
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("since")));
    let (s, v) = gw
        .admin("GET", "/admin/subscriptions/ghost", Value::Null)
        .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")));
    let (s, _) = gw
        .admin("GET", "/admin/events/github%23nothing", Value::Null)
        .await;
    assert_eq!(s, 404);
    let (s, _) = gw
        .admin("POST", "/admin/events/github%23nothing/replay", json!({}))
        .await;
    assert_eq!(s, 404);
    // The file's source is read-only here.
    let (s, v) = gw
        .admin(
            "PATCH",
            "/admin/sources/github",
            json!({"tolerance_secs": 10}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("read_only")));
    let (s, v) = gw.admin("DELETE", "/admin/sources", Value::Null).await;
    assert_eq!((s, v["error"].as_str()), (405, Some("method_not_allowed")));

    // Its own client: the server answers without reading the body and
    // closes that connection, which a pooled client could reuse.
    let big = reqwest::Client::new()
        .post(format!("{}/admin/sources", gw.base))
        .bearer_auth(ADMIN_TOKEN)
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);

    let (s, doc) = gw.admin("GET", "/admin/openapi.json", Value::Null).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/admin/events/{id}"]["get"].is_object());
    gw.stop().await;

    // Without [admin], the API is off.
    let sink = Sink::start(200).await;
    let off = harness(&sink);
    let gw = off.start().await;
    let (s, v) = gw.admin("GET", "/admin/sources", Value::Null).await;
    assert_eq!((s, v["error"].as_str()), (404, Some("admin_disabled")));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_beside_a_source_whose_secret_is_missing_and_serves_the_others() {
    let sink = Sink::start(200).await;
    let h = Harness::new(
        &config(
            &sink.url(),
            r#"
[[sources]]
id = "broken"
provider = "github"
secrets = ["env:NOT_SET_ANYWHERE_BROKEN"]
"#,
        ),
        &[("GH_SECRET", GH_SECRET), ("SUB_SECRET", SUB_SECRET)],
    );
    // Starts (with a warning for the broken entry) instead of refusing.
    let gw = h.start().await;
    let body = br#"{"ref":"x"}"#;
    let (status, reply) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "ok-1", "push", body),
            body,
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let resp = gw
        .client
        .post(format!("{}/hooks/broken", gw.base))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let header = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let reply: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(reply["error"], "source_unavailable", "{reply}");
    assert_eq!(reply["request_id"], json!(header));
    assert!(!reply.to_string().contains("NOT_SET_ANYWHERE"), "{reply}");
    eventually(WAIT, "delivery", || sink.count() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_secret_another_source_names_is_not_deleted_and_still_verifies() {
    let h = admin_harness();
    let gw = h.start().await;
    let (s, v) = gw
        .admin(
            "POST",
            "/admin/sources",
            json!({"id": "github", "provider": "github", "secrets": [{"value": GH_SECRET}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let stored = v["secrets"][0].as_str().unwrap().to_owned();
    assert!(stored.starts_with("db:"), "{stored}");
    let (s, v) = gw
        .admin(
            "POST",
            "/admin/sources",
            json!({"id": "mirror", "provider": "github", "secrets": [stored, {"value": "other"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = gw
        .admin(
            "DELETE",
            &format!("/admin/sources/mirror/secrets/{stored}"),
            Value::Null,
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{v}");
    let (s, _) = gw
        .admin("DELETE", "/admin/sources/mirror", Value::Null)
        .await;
    assert_eq!(s, 204);
    // github's secret is still there: its webhooks still verify.
    let body = br#"{"ref":"x"}"#;
    let (status, reply) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "kept-1", "push", body),
            body,
        )
        .await;
    assert_eq!(status, 200, "{reply}");
}
