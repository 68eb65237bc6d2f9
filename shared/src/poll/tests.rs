//! The engine against a real HTTP app on 127.0.0.1, with in-memory state
//! and event stores.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::config::PollerConfig;
use super::engine::{PollOutcome, PollPorts, PollReport, Trigger, poll, poll_due};
use super::fakes::MemStates;
use super::fetch::HttpFetch;
use super::state::LastResult;
use crate::config::Policy;
use crate::delivery::HttpOptions;
use crate::model::EventKey;
use crate::pipeline::fakes::MemStore;
use crate::secrets::EnvSecrets;

/// A scripted answer, served before the list.
type Scripted = (u16, Vec<(&'static str, String)>, String);

#[derive(Default)]
struct App {
    /// Newest first, as list endpoints answer.
    items: Mutex<Vec<Value>>,
    /// Items per page (0: all on one).
    page_size: usize,
    script: Mutex<VecDeque<Scripted>>,
    /// Each request's query and headers.
    requests: Mutex<Vec<(Option<String>, HeaderMap)>>,
    /// A delay before answering.
    delay: Option<Duration>,
    /// A feed body served at /feed.
    feed: Mutex<String>,
}

impl App {
    fn requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn add(&self, item: Value) {
        self.items.lock().unwrap().insert(0, item);
    }
}

fn etag_of(items: &[Value]) -> String {
    format!(
        "\"{}\"",
        crate::pipeline::receive::body_fingerprint(&serde_json::to_vec(items).unwrap())
    )
}

async fn list(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    app.requests
        .lock()
        .unwrap()
        .push((query.clone(), headers.clone()));
    if let Some(delay) = app.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some((status, extra, body)) = app.script.lock().unwrap().pop_front() {
        let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
        for (k, v) in extra {
            resp.headers_mut().insert(k, v.parse().unwrap());
        }
        return resp;
    }
    let items = app.items.lock().unwrap().clone();
    let etag = etag_of(&items);
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    let page: usize = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("page=")))
        .map_or(1, |p| p.parse().unwrap());
    let size = if app.page_size == 0 {
        items.len().max(1)
    } else {
        app.page_size
    };
    let start = (page - 1) * size;
    let slice: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let mut resp = (
        [("etag", etag), ("x-poll-interval", "60".to_owned())],
        axum::Json(json!({ "events": slice })),
    )
        .into_response();
    if start + size < items.len() {
        resp.headers_mut().insert(
            "link",
            format!("</items?page={}>; rel=\"next\"", page + 1)
                .parse()
                .unwrap(),
        );
    }
    resp
}

async fn feed(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    app.requests.lock().unwrap().push((None, headers));
    (
        [("content-type", "application/rss+xml")],
        app.feed.lock().unwrap().clone(),
    )
        .into_response()
}

async fn big(State(app): State<Arc<App>>) -> Response {
    app.requests.lock().unwrap().push((None, HeaderMap::new()));
    let body = axum::body::Body::from_stream(futures::stream::iter(
        (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])),
    ));
    body.into_response()
}

async fn serve(app: Arc<App>) -> SocketAddr {
    let router = Router::new()
        .route("/items", get(list))
        .route("/feed", get(feed))
        .route("/big", get(big))
        .route(
            "/moved",
            get(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [("location", "/items?token=secret")],
                )
            }),
        )
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

struct Rig {
    app: Arc<App>,
    addr: SocketAddr,
    states: MemStates,
    store: MemStore,
    fetch: HttpFetch,
    secrets: EnvSecrets,
}

impl Rig {
    async fn new(app: App) -> Self {
        let app = Arc::new(app);
        let addr = serve(app.clone()).await;
        Self {
            app,
            addr,
            states: MemStates::default(),
            store: MemStore::default(),
            fetch: HttpFetch::new(&HttpOptions {
                allow_local: true,
                ..HttpOptions::default()
            })
            .unwrap(),
            secrets: EnvSecrets::default(),
        }
    }

    fn ports(&self) -> PollPorts<'_> {
        PollPorts {
            states: &self.states,
            store: &self.store,
            fetch: &self.fetch,
            secrets: &self.secrets,
            notify: true,
        }
    }

    fn config(&self, path: &str, extra: &str) -> PollerConfig {
        toml::from_str(&format!(
            "id = \"app\"\nurl = \"http://{}{path}\"\nallow_local = true\n{extra}",
            self.addr
        ))
        .unwrap()
    }

    async fn poll(&self, config: &PollerConfig, trigger: Trigger) -> PollReport {
        poll(
            config,
            &Policy::EMBEDDED,
            &self.ports(),
            SystemTime::now(),
            trigger,
        )
        .await
    }

    /// A scheduled poll, made due first.
    async fn poll_now_due(&self, config: &PollerConfig) -> PollReport {
        if self.states.polls.lock().unwrap().contains_key(&config.id) {
            self.states.make_due(&config.id);
        }
        self.poll(config, Trigger::Schedule).await
    }

    /// The notifications committed (events of source `sluice`).
    fn notifications(&self) -> Vec<crate::model::Event> {
        self.store
            .events
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.source == crate::notify::SOURCE)
            .cloned()
            .collect()
    }

    fn committed(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .store
            .events
            .lock()
            .unwrap()
            .keys()
            .map(|k| k.id.clone())
            .collect();
        ids.sort();
        ids
    }
}

fn json_config() -> &'static str {
    "items = \"/events\"\nitem_id = \"/id\"\ntype = \"/type\"\n"
}

fn ids(report: &PollReport) -> Vec<&str> {
    report.emitted.iter().map(|e| e.id.as_str()).collect()
}

#[tokio::test]
async fn first_poll_records_then_new_items_are_emitted_once_with_etag_and_pages() {
    let app = App {
        page_size: 2,
        ..App::default()
    };
    for n in 1..=5 {
        app.add(json!({ "id": n.to_string(), "type": "PushEvent" }));
    }
    let rig = Rig::new(app).await;
    let config = rig.config("/items", json_config());

    let first = rig.poll(&config, Trigger::Schedule).await;
    assert_eq!(first.outcome, PollOutcome::Primed { recorded: 5 });
    assert_eq!(first.pages, 3, "followed rel=next over three pages");
    assert!(first.emitted.is_empty());
    assert!(rig.committed().is_empty(), "the first poll emits nothing");

    let not_due = rig.poll(&config, Trigger::Schedule).await;
    assert!(matches!(not_due.outcome, PollOutcome::NotDue { .. }));
    assert_eq!(rig.app.requests(), 3, "a poll not due fetches nothing");

    let unchanged = rig.poll_now_due(&config).await;
    assert_eq!(unchanged.outcome, PollOutcome::NotModified);
    let (_, sent) = rig.app.requests.lock().unwrap().last().cloned().unwrap();
    assert!(sent.contains_key("if-none-match"), "a conditional request");
    assert!(rig.committed().is_empty());

    rig.app.add(json!({ "id": "6", "type": "IssuesEvent" }));
    rig.app.add(json!({ "id": "7", "type": "PushEvent" }));
    let before = rig.app.requests();
    let new = rig.poll_now_due(&config).await;
    assert_eq!(
        new.outcome,
        PollOutcome::Polled {
            items: 4,
            emitted: 2,
            duplicates: 0
        }
    );
    assert_eq!(ids(&new), ["6", "7"], "oldest first");
    assert_eq!(
        rig.app.requests() - before,
        2,
        "the second page held items already seen: the third was not fetched"
    );
    assert_eq!(rig.committed(), ["6", "7"]);
    let event = rig.store.events.lock().unwrap()[&EventKey::new("app", "6")].clone();
    assert_eq!(event.event_type, "IssuesEvent");
    assert_eq!(
        serde_json::from_slice::<Value>(&event.body).unwrap()["id"],
        "6"
    );

    let again = rig.poll_now_due(&config).await;
    assert_eq!(again.outcome, PollOutcome::NotModified);
    assert_eq!(rig.committed(), ["6", "7"], "emitted once");
    let state = rig.states.state("app");
    assert_eq!(state.emitted_total, 2);
    assert_eq!(state.last_result, Some(LastResult::NotModified));
}

#[tokio::test]
async fn emit_existing_emits_the_first_poll_oldest_first() {
    let app = App::default();
    for n in 1..=3 {
        app.add(json!({ "id": n, "type": "t" }));
    }
    let rig = Rig::new(app).await;
    let config = rig.config(
        "/items",
        &format!("{}emit_existing = true\n", json_config()),
    );
    let report = rig.poll(&config, Trigger::Schedule).await;
    assert_eq!(ids(&report), ["1", "2", "3"]);
    assert_eq!(rig.committed(), ["1", "2", "3"]);
}

#[tokio::test]
async fn timestamps_order_the_emits_and_feed_since_param() {
    let app = App::default();
    app.add(json!({ "id": "a", "at": "2026-01-01T00:00:03Z" }));
    app.add(json!({ "id": "b", "at": "2026-01-01T00:00:01Z" }));
    app.add(json!({ "id": "c", "at": "2026-01-01T00:00:02Z" }));
    let rig = Rig::new(app).await;
    let config = rig.config(
        "/items",
        "items = \"/events\"\nitem_id = \"/id\"\ntimestamp = \"/at\"\nsince_param = \"since\"\nemit_existing = true\n",
    );
    let report = rig.poll(&config, Trigger::Schedule).await;
    assert_eq!(ids(&report), ["b", "c", "a"]);
    assert_eq!(
        rig.states.state("app").cursor.as_deref(),
        Some("2026-01-01T00:00:03Z")
    );
    rig.app
        .add(json!({ "id": "d", "at": "2026-01-01T00:00:04Z" }));
    rig.poll_now_due(&config).await;
    let (query, _) = rig.app.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(query.as_deref(), Some("since=2026-01-01T00%3A00%3A03Z"));
}

#[tokio::test]
async fn throttling_and_errors_back_off_and_keep_the_last_error_then_recover() {
    let app = App::default();
    app.add(json!({ "id": "1" }));
    app.script.lock().unwrap().extend([
        (429, vec![("retry-after", "120".to_owned())], String::new()),
        (500, vec![], "{\"message\":\"upstream broke\"}".to_owned()),
        (500, vec![], String::new()),
    ]);
    let rig = Rig::new(app).await;
    let config = rig.config("/items", &format!("{}interval = \"30s\"\n", json_config()));

    let start = crate::time::now_ms();
    let throttled = rig.poll(&config, Trigger::Schedule).await;
    assert!(
        matches!(&throttled.outcome, PollOutcome::Throttled { error } if error.contains("HTTP 429"))
    );
    let wait = throttled.next_poll_at_ms.unwrap() - start;
    assert!(
        (120_000..125_000).contains(&wait),
        "Retry-After honoured: {wait}"
    );

    let failed = rig.poll_now_due(&config).await;
    let PollOutcome::Failed { error } = &failed.outcome else {
        panic!("{failed:?}")
    };
    assert!(
        error.ends_with("HTTP 500: {\"message\":\"upstream broke\"}"),
        "{error}"
    );
    let state = rig.states.state("app");
    assert_eq!(state.failures, 2);
    assert_eq!(state.last_error.as_deref(), Some(error.as_str()));
    let first_backoff = state.next_poll_at_ms - state.last_poll_at_ms.unwrap();
    assert_eq!(
        first_backoff, 60_000,
        "the second failure in a row waits two intervals"
    );
    assert!(rig.notifications().is_empty(), "not failing yet");

    rig.poll_now_due(&config).await;
    let state = rig.states.state("app");
    assert_eq!(state.failures, 3);
    // The third failure in a row makes the poller failing: notified once,
    // through the same commit as its items.
    let notes = rig.notifications();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].event_type, "poller.failing");
    assert_eq!(
        notes[0].id,
        format!("poller.failing:app:{}", state.last_poll_at_ms.unwrap())
    );
    let body: serde_json::Value = serde_json::from_slice(&notes[0].body).unwrap();
    assert_eq!(body["poller"], "app");
    assert!(
        body["reason"].as_str().unwrap().contains("HTTP 500"),
        "{body}"
    );
    assert_eq!(
        state.next_poll_at_ms - state.last_poll_at_ms.unwrap(),
        120_000
    );

    let recovered = rig.poll_now_due(&config).await;
    assert_eq!(recovered.outcome, PollOutcome::Primed { recorded: 1 });
    assert_eq!(rig.notifications().len(), 1, "nothing more on recovery");
    let state = rig.states.state("app");
    assert_eq!((state.failures, state.last_error), (0, None));
    assert_eq!(
        state.next_poll_at_ms - state.last_poll_at_ms.unwrap(),
        60_000,
        "X-Poll-Interval: 60"
    );
}

const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>
<item><guid>n-1</guid><title>One</title><link>https://news.example/1</link></item>
</channel></rss>"#;

#[tokio::test]
async fn a_feed_is_polled_like_a_list() {
    let app = App::default();
    *app.feed.lock().unwrap() = RSS.to_owned();
    let rig = Rig::new(app).await;
    let config = rig.config("/feed", "format = \"feed\"\n");
    assert_eq!(
        rig.poll(&config, Trigger::Schedule).await.outcome,
        PollOutcome::Primed { recorded: 1 }
    );
    *rig.app.feed.lock().unwrap() = RSS.replace(
        "<item>",
        "<item><guid>n-2</guid><title>Two</title></item><item>",
    );
    let report = rig.poll_now_due(&config).await;
    assert_eq!(ids(&report), ["n-2"]);
    let (_, sent) = rig.app.requests.lock().unwrap().last().cloned().unwrap();
    assert!(
        sent["accept"]
            .to_str()
            .unwrap()
            .starts_with("application/rss+xml")
    );
    let event = rig.store.events.lock().unwrap()[&EventKey::new("app", "n-2")].clone();
    assert_eq!(event.event_type, "entry");
}

#[tokio::test]
async fn a_response_over_the_cap_is_an_error_not_a_buffer() {
    let rig = Rig::new(App::default()).await;
    let config = rig.config(
        "/big",
        &format!("{}max_response_bytes = 100000\n", json_config()),
    );
    let report = rig.poll(&config, Trigger::Schedule).await;
    let PollOutcome::Failed { error } = &report.outcome else {
        panic!("{report:?}")
    };
    assert!(
        error.ends_with("the response is over 100000 bytes (max_response_bytes)"),
        "{error}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed_and_the_target_is_redacted() {
    let rig = Rig::new(App::default()).await;
    let config = rig.config("/moved", json_config());
    let report = rig.poll(&config, Trigger::Schedule).await;
    let PollOutcome::Failed { error } = &report.outcome else {
        panic!("{report:?}")
    };
    assert!(
        error.contains("HTTP 301 (redirects are not followed"),
        "{error}"
    );
    assert!(!error.contains("secret"), "{error}");
    assert_eq!(rig.app.requests(), 0);
}

#[tokio::test]
async fn the_ssrf_guard_applies_without_allow_local() {
    let rig = Rig::new(App::default()).await;
    let mut config = rig.config("/items", json_config());
    config.allow_local = false;
    config.url = config.url.replace("http://", "https://");
    let report = rig.poll(&config, Trigger::Schedule).await;
    let PollOutcome::Failed { error } = &report.outcome else {
        panic!("{report:?}")
    };
    assert!(error.contains("refused"), "{error}");
    assert_eq!(rig.app.requests(), 0);
}

#[tokio::test]
async fn a_dry_run_commits_and_stores_nothing() {
    let app = App::default();
    app.add(json!({ "id": "1" }));
    let rig = Rig::new(app).await;
    let config = rig.config(
        "/items",
        &format!("{}emit_existing = true\n", json_config()),
    );
    let report = rig.poll(&config, Trigger::DryRun).await;
    assert!(report.dry_run);
    assert_eq!(ids(&report), ["1"]);
    assert!(rig.committed().is_empty());
    assert!(rig.states.polls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn overlapping_runners_poll_once() {
    let app = App {
        delay: Some(Duration::from_millis(200)),
        ..App::default()
    };
    app.add(json!({ "id": "1" }));
    let rig = Rig::new(app).await;
    let config = rig.config("/items", json_config());
    let configs = [config.clone()];
    let ports = rig.ports();
    let now = SystemTime::now();
    let (a, b, c) = tokio::join!(
        poll_due(&configs, &Policy::EMBEDDED, &ports, now),
        poll_due(&configs, &Policy::EMBEDDED, &ports, now),
        poll(&config, &Policy::EMBEDDED, &ports, now, Trigger::Now),
    );
    assert_eq!(rig.app.requests(), 1, "one poll ran");
    // A runner that sees the claim skips the poller, or finds it busy.
    let ran: Vec<_> = a
        .iter()
        .chain(&b)
        .chain([&c])
        .filter(|r| !matches!(r.outcome, PollOutcome::Busy { .. }))
        .collect();
    assert_eq!(ran.len(), 1, "{a:?} {b:?} {c:?}");
    assert_eq!(ran[0].outcome, PollOutcome::Primed { recorded: 1 });
}

#[tokio::test]
async fn a_poll_whose_state_was_lost_re_emits_nothing() {
    // A runner that dies after committing, before storing its state: the
    // next poll reads the same items and the commit drops them.
    let app = App::default();
    app.add(json!({ "id": "1" }));
    let rig = Rig::new(app).await;
    let config = rig.config("/items", json_config());
    rig.poll(&config, Trigger::Schedule).await;
    let primed = rig.states.state("app");
    rig.app.add(json!({ "id": "2" }));
    let report = rig.poll_now_due(&config).await;
    assert_eq!(ids(&report), ["2"]);
    // Put back the state from before that poll, as if it was never stored.
    rig.states
        .polls
        .lock()
        .unwrap()
        .insert("app".into(), (primed, None));
    let again = rig.poll_now_due(&config).await;
    assert_eq!(
        again.outcome,
        PollOutcome::Polled {
            items: 2,
            emitted: 0,
            duplicates: 1
        }
    );
    assert_eq!(rig.committed(), ["2"]);
}

#[tokio::test]
async fn a_changed_url_starts_over() {
    let app = App::default();
    app.add(json!({ "id": "1" }));
    let rig = Rig::new(app).await;
    let config = rig.config("/items", json_config());
    rig.poll(&config, Trigger::Schedule).await;
    let mut moved = config.clone();
    moved.url.push_str("?filter=all");
    let report = rig.poll(&moved, Trigger::Now).await;
    assert_eq!(report.outcome, PollOutcome::Primed { recorded: 1 });
    assert!(rig.committed().is_empty());
}

#[tokio::test]
async fn a_missing_secret_fails_the_poll_without_fetching() {
    let rig = Rig::new(App::default()).await;
    let config = rig.config(
        "/items",
        &format!(
            "{}headers = {{ Authorization = \"env:SLUICE_TEST_UNSET_POLL_TOKEN\" }}\n",
            json_config()
        ),
    );
    let report = rig.poll(&config, Trigger::Schedule).await;
    let PollOutcome::Failed { error } = &report.outcome else {
        panic!("{report:?}")
    };
    assert!(error.starts_with("poller \"app\""), "{error}");
    assert_eq!(rig.app.requests(), 0);
    assert_eq!(rig.states.state("app").failures, 1);
}
