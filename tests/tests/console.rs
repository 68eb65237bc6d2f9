//! The operator console in headless Chromium (through chromedriver) against
//! a running gateway and real destinations on 127.0.0.1. `make test`
//! installs both (scripts/chromium.sh); without them this test fails, it
//! never skips.
//!
//! SLUICE_CHROMEDRIVER / SLUICE_CHROMIUM name other binaries;
//! SLUICE_UPDATE_SCREENSHOTS=1 also writes the screenshots to docs/img/.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sluice::aws::testing::TestResources;
use sluice_tests::{ADMIN_TOKEN, Harness, ListApp, Running, Sink, eventually, github_headers};

const GH_SECRET: &str = "gh-secret-for-console-tests";
const WAIT: Duration = Duration::from_secs(30);

/// Every string here would run script if it were ever parsed as markup or
/// followed as a link; each sets `window.__pwned`.
const HOSTILE: &str = r#"<script>window.__pwned="script"</script><img src=x onerror="window.__pwned='img'"><a href="javascript:window.__pwned='link'">x</a>"#;

fn config(sink: &Sink, app: &ListApp) -> String {
    format!(
        r#"
[admin]
token = "env:ADMIN_TOKEN"

[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]

[[sources]]
id = "asana"
provider = "asana"
secrets = ["db:asana-hook-secret"]

[[subscriptions]]
id = "deploys"
source = "github"
events = ["*"]
url = "{}"
retry_schedule = ["100ms", "100ms"]
allow_local = true

[[pollers]]
id = "app"
url = "{}"
item_id = "/id"
type = "/type"
interval = "1h"
allow_local = true
"#,
        sink.url(),
        app.url()
    )
}

/// chromedriver on a free port of 127.0.0.1, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let bin = std::env::var("SLUICE_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} ({e}): run scripts/chromium.sh (make test does)")
            });
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let status = format!("{}/status", driver.url);
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ready = match http.get(&status).send().await {
                Ok(r) => r.text().await.is_ok_and(|t| {
                    serde_json::from_str::<Value>(&t).is_ok_and(|v| v["value"]["ready"] == true)
                }),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    async fn browser(&self) -> Client {
        let mut args = vec![
            "--headless=new",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,860",
            "--lang=en-GB",
        ];
        // Chromium refuses to run as root inside its sandbox.
        if Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
        {
            args.push("--no-sandbox");
        }
        let mut chrome = json!({ "args": args });
        if let Ok(bin) = std::env::var("SLUICE_CHROMIUM") {
            chrome["binary"] = json!(bin);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), chrome);
        ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("no Chromium session: {e}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `script` (a function body) in the page.
async fn js(c: &Client, script: &str, args: Vec<Value>) -> Value {
    c.execute(script, args).await.unwrap()
}

/// Poll `script` until it returns true, or fail after [`WAIT`].
async fn wait_js(c: &Client, what: &str, script: &str, args: Vec<Value>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if js(c, script, args.clone()).await == json!(true) {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let page = js(c, "return document.body.innerText", vec![]).await;
            panic!(
                "timed out waiting for: {what}\npage:\n{}",
                page.as_str().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_css(c: &Client, what: &str, css: &str) {
    wait_js(
        c,
        what,
        "return document.querySelector(arguments[0]) !== null",
        vec![json!(css)],
    )
    .await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    js(
        c,
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
        vec![json!(css)],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn go(c: &Client, hash: &str) {
    js(c, "location.hash = arguments[0]", vec![json!(hash)]).await;
}

async fn send(gw: &Running, id: &str, event: &str, body: &str) {
    let (status, reply) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, id, event, body.as_bytes()),
            body.as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
}

fn received_body(sink: &Sink, marker: &str, status: u16) -> usize {
    sink.received()
        .iter()
        .filter(|r| r.status == status && String::from_utf8_lossy(&r.body).contains(marker))
        .count()
}

/// A screenshot kept in target/console-screenshots/ only.
async fn shot_only(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), &png).unwrap();
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("target").join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), &png).unwrap();
    if std::env::var_os("SLUICE_UPDATE_SCREENSHOTS").is_some() {
        let docs = root.join("docs").join("img");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), &png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_drives_the_gateway_and_renders_webhook_data_inert() {
    let sink = Sink::start(200).await;
    let audit = Sink::start(200).await;
    let app = ListApp::start().await;
    // Every answer's start is shown in the timeline: hostile too.
    sink.set_response_body(HOSTILE);
    let h = Harness::new(
        &config(&sink, &app),
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("GH_SECRET", GH_SECRET)],
    );
    let gw = h.start().await;
    let console = format!("{}/console", gw.base);

    // The page's own headers.
    let resp = gw.client.get(&console).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");

    let driver = Driver::start().await;
    let c = driver.browser().await;
    c.goto(&console).await.unwrap();

    // ---- sign in: a wrong token, then the right one ----
    wait_css(&c, "sign-in form", "#token").await;
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("not-the-token")
        .await
        .unwrap();
    click(&c, "#sign-in").await;
    wait_js(
        &c,
        "wrong-token error",
        "const e = document.querySelector('#sign-in-error'); return !!e && !e.hidden && e.textContent.includes('Wrong token')",
        vec![],
    )
    .await;
    assert_eq!(
        js(&c, "return sessionStorage.length", vec![]).await,
        json!(0)
    );
    let field = c.find(Locator::Css("#token")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(ADMIN_TOKEN).await.unwrap();
    click(&c, "#sign-in").await;
    wait_css(&c, "events table", "#events tbody").await;
    let stored = js(
        &c,
        "return [sessionStorage.getItem('sluice.admin-token'), document.cookie, location.href]",
        vec![],
    )
    .await;
    assert_eq!(stored[0], json!(ADMIN_TOKEN));
    assert_eq!(stored[1], json!(""), "no cookie");
    assert!(!stored[2].as_str().unwrap().contains(ADMIN_TOKEN));
    // Gone if the page reloads; kept while it lives.
    js(&c, "window.__sameDocument = 42", vec![]).await;

    // ---- a webhook appears without a reload ----
    send(&gw, "d-1", "push", r#"{"ref":"refs/heads/main","n":1}"#).await;
    wait_js(
        &c,
        "d-1 listed, delivered to deploys",
        r#"return !!document.querySelector('tr[data-event-id="github#d-1"] .dest[data-subscription="deploys"][data-status="delivered"]')"#,
        vec![],
    )
    .await;
    assert_eq!(
        js(&c, "return window.__sameDocument", vec![]).await,
        json!(42)
    );
    assert!(
        text(&c, r#"tr[data-event-id="github#d-1"] .attempts"#)
            .await
            .contains("1 attempt")
    );

    // ---- a failing destination: retried, failed, dead-lettered ----
    sink.set_default(503);
    send(&gw, "d-2", "push", r#"{"n":"two"}"#).await;
    send(&gw, "d-3", "push", r#"{"n":"three"}"#).await;
    for id in ["d-2", "d-3"] {
        wait_js(
            &c,
            &format!("{id} failed"),
            "return document.querySelector(`tr[data-event-id=\"github#${arguments[0]}\"]`)?.dataset.status === 'failed'",
            vec![json!(id)],
        )
        .await;
    }

    // ---- filters: the list narrows to what the API answers ----
    js(
        &c,
        "const s = document.querySelector('#f-status'); s.value = 'failed'; s.dispatchEvent(new Event('change'))",
        vec![],
    )
    .await;
    wait_js(
        &c,
        "only the failed events listed",
        "const rows = [...document.querySelectorAll('#events tbody tr[data-event-id]')]; return rows.map(r => r.dataset.eventId).join(' ') === 'github#d-3 github#d-2'",
        vec![],
    )
    .await;
    js(
        &c,
        "const s = document.querySelector('#f-status'); s.value = ''; s.dispatchEvent(new Event('change'))",
        vec![],
    )
    .await;
    wait_css(&c, "all events again", r#"tr[data-event-id="github#d-1"]"#).await;

    // ---- one event: the timeline matches the admin API ----
    click(&c, r#"tr[data-event-id="github#d-2"] a.event-link"#).await;
    wait_js(
        &c,
        "d-2 timeline",
        r#"return document.querySelectorAll('.destination[data-subscription="deploys"][data-status="failed"] li.attempt').length === 3"#,
        vec![],
    )
    .await;
    let (status, api) = gw
        .admin("GET", "/admin/events/github%23d-2", Value::Null)
        .await;
    assert_eq!(status, 200);
    let log = api["deliveries"][0]["attempt_log"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(log.len(), 3);
    let shown = js(
        &c,
        r#"return [...document.querySelectorAll('.destination[data-subscription="deploys"] li.attempt')].map(li => ({
            n: li.querySelector('.a-n').textContent,
            status: li.querySelector('.a-status').textContent,
            latency: li.querySelector('.a-latency').textContent,
            response: li.querySelector('.a-response')?.textContent ?? null,
            next: li.querySelector('.a-next time')?.getAttribute('datetime') ?? null,
            at: li.querySelector('.a-time').getAttribute('datetime'),
            time: li.querySelector('.a-time').textContent,
        }))"#,
        vec![],
    )
    .await;
    for (a, s) in log.iter().zip(shown.as_array().unwrap()) {
        assert_eq!(s["n"], json!(format!("#{}", a["attempt"])));
        assert_eq!(s["status"], json!(a["status_code"].to_string()));
        assert_eq!(s["latency"], json!(format!("{} ms", a["latency_ms"])));
        assert_eq!(s["response"], a["response"]);
        assert_eq!(s["next"], a["next_attempt_at"]);
        assert_eq!(s["at"], a["at"]);
        assert!(!s["time"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        log[2]["response"],
        json!(HOSTILE),
        "the snippet is the sink's answer"
    );
    assert!(
        text(&c, "#event-body").await.contains("\"n\": \"two\""),
        "pretty JSON"
    );
    screenshot(&c, "console-event.png").await;

    // ---- dead letters: bulk preview counts, then redrive one ----
    go(&c, "#/dlq").await;
    wait_css(&c, "d-3's dead letter", r#"tr[data-event="github#d-3"]"#).await;
    c.find(Locator::Css("#b-source"))
        .await
        .unwrap()
        .send_keys("github")
        .await
        .unwrap();
    click(&c, "#bulk-preview").await;
    let (_, dry) = gw
        .admin(
            "POST",
            "/admin/replay",
            json!({"source": "github", "status": "failed", "dry_run": true}),
        )
        .await;
    assert_eq!(dry["replayed"], json!(2), "{dry}");
    wait_js(
        &c,
        "preview count",
        "return document.querySelector('#bulk-result').textContent.startsWith('2 deliveries of 2 events would be replayed') && document.querySelector('#bulk-run').textContent === 'Replay 2' && !document.querySelector('#bulk-run').disabled",
        vec![],
    )
    .await;

    sink.set_default(200);
    click(&c, r#"tr[data-event="github#d-3"] input.pick"#).await;
    click(&c, "#redrive").await;
    eventually(WAIT, "the redriven d-3 delivered", || {
        received_body(&sink, "three", 200) == 1
    })
    .await;
    wait_js(
        &c,
        "d-3 leaves the dead letters",
        r#"return !document.querySelector('tr[data-event="github#d-3"]')"#,
        vec![],
    )
    .await;

    // ---- replay d-2 from its page, the destination recovered ----
    go(&c, "#/events/github%23d-2").await;
    wait_css(
        &c,
        "d-2 replay button",
        ".destination[data-subscription=\"deploys\"] button.replay-one",
    )
    .await;
    click(
        &c,
        ".destination[data-subscription=\"deploys\"] button.replay-one",
    )
    .await;
    wait_js(
        &c,
        "replay queued",
        "return document.querySelector('#flash').textContent.includes('Replay queued')",
        vec![],
    )
    .await;
    eventually(WAIT, "the replay of d-2 delivered", || {
        received_body(&sink, "two", 200) == 1
    })
    .await;
    wait_js(
        &c,
        "d-2 lists its replay",
        "return [...document.querySelectorAll('.meta a')].some(a => a.textContent.startsWith('github#d-2'))",
        vec![],
    )
    .await;

    // ---- sources and subscriptions ----
    go(&c, "#/sources").await;
    wait_css(&c, "sources", r#"tr[data-source="github"] input.url"#).await;
    let url = js(
        &c,
        r#"return document.querySelector('tr[data-source="github"] input.url').value"#,
        vec![],
    )
    .await;
    assert_eq!(url, json!(format!("{}/hooks/github", gw.base)));
    // Asana's source waits for the handshake that brings its secret.
    let badges = js(
        &c,
        r#"return ['asana', 'github'].map(id => [...document.querySelectorAll(`tr[data-source="${id}"] .badge`)].map(b => b.textContent))"#,
        vec![],
    )
    .await;
    assert_eq!(
        badges,
        json!([["enabled", "awaiting handshake"], ["enabled"]])
    );
    wait_css(&c, "source choices", "#new-source option[value=\"github\"]").await;
    c.find(Locator::Css("#new-source"))
        .await
        .unwrap()
        .select_by_value("github")
        .await
        .unwrap();
    c.find(Locator::Css("#new-id"))
        .await
        .unwrap()
        .send_keys("audit")
        .await
        .unwrap();
    c.find(Locator::Css("#new-url"))
        .await
        .unwrap()
        .send_keys(&audit.url())
        .await
        .unwrap();
    click(&c, "#new-allow-local").await;
    click(&c, "#new-create").await;
    wait_js(
        &c,
        "the new secret",
        "return (document.querySelector('#new-secret')?.textContent ?? '').startsWith('whsec_')",
        vec![],
    )
    .await;
    let secret = text(&c, "#new-secret").await;
    let (_, sub) = gw
        .admin("GET", "/admin/subscriptions/audit", Value::Null)
        .await;
    assert_eq!(sub["has_signing_secret"], json!(true), "{sub}");
    assert_eq!(sub["url"], json!(audit.url()));
    assert!(!sub.to_string().contains(&secret));
    go(&c, "#/events").await;
    wait_css(&c, "events", "#events").await;
    go(&c, "#/sources").await;
    wait_css(&c, "audit listed", r#"tr[data-subscription="audit"]"#).await;
    let again = js(&c, "return document.body.textContent", vec![]).await;
    assert!(
        !again.as_str().unwrap().contains(&secret),
        "the secret is shown once"
    );
    assert_eq!(
        js(&c, "return document.querySelector('#new-secret')", vec![]).await,
        Value::Null
    );

    // ---- pause: events skip audit; resume: they reach it again ----
    click(&c, r#"tr[data-subscription="audit"] button.toggle"#).await;
    wait_css(
        &c,
        "audit paused",
        r#"tr[data-subscription="audit"][data-enabled="false"]"#,
    )
    .await;
    let (_, sub) = gw
        .admin("GET", "/admin/subscriptions/audit", Value::Null)
        .await;
    assert_eq!(sub["enabled"], json!(false));
    send(&gw, "d-4", "push", r#"{"n":"four"}"#).await;
    eventually(WAIT, "deploys gets d-4", || {
        received_body(&sink, "four", 200) == 1
    })
    .await;
    let (_, d4) = gw
        .admin("GET", "/admin/events/github%23d-4", Value::Null)
        .await;
    let to: Vec<&Value> = d4["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["subscription"])
        .collect();
    assert_eq!(
        to,
        [&json!("deploys")],
        "a paused subscription takes nothing"
    );
    click(&c, r#"tr[data-subscription="audit"] button.toggle"#).await;
    wait_css(
        &c,
        "audit resumed",
        r#"tr[data-subscription="audit"][data-enabled="true"]"#,
    )
    .await;
    send(&gw, "d-5", "push", r#"{"n":"five"}"#).await;
    eventually(WAIT, "audit gets d-5 once resumed", || {
        received_body(&audit, "five", 200) == 1
    })
    .await;
    assert_eq!(received_body(&audit, "four", 200), 0);

    // ---- rotate audit's secret: the new one, once ----
    click(&c, r#"tr[data-subscription="audit"] button.rotate"#).await;
    wait_js(
        &c,
        "the rotated secret",
        "const s = document.querySelector('#new-secret')?.textContent ?? ''; return s.startsWith('whsec_') && s !== arguments[0]",
        vec![json!(secret)],
    )
    .await;
    let (_, sub) = gw
        .admin("GET", "/admin/subscriptions/audit", Value::Null)
        .await;
    assert!(sub["previous_secret_until"].is_string(), "{sub}");

    // ---- hostile data renders as text ----
    // In the id and type too: both are shown in the list and on the page.
    let hostile_id = r#"d-x"><img src=x onerror="window.__pwned='id'">"#;
    let hostile_type = "push<img src=x onerror=window.__pwned='type'>";
    let body = json!({ "title": HOSTILE, "url": "javascript:window.__pwned='url'" }).to_string();
    let mut headers = github_headers(GH_SECRET, hostile_id, hostile_type, body.as_bytes());
    headers.push(("x-note".into(), HOSTILE.into()));
    let (status, reply) = gw.post("github", &headers, body.as_bytes()).await;
    assert_eq!(status, 200, "{reply}");
    go(&c, "#/events").await;
    let find_row = "const tr = [...document.querySelectorAll('#events tr')].find(tr => tr.dataset.eventId === 'github#' + arguments[0]);";
    wait_js(
        &c,
        "the hostile event listed, its type as text",
        &format!("{find_row} return !!tr && tr.children[3].textContent === arguments[1]"),
        vec![json!(hostile_id), json!(hostile_type)],
    )
    .await;
    js(
        &c,
        &format!("{find_row} tr.querySelector('a.event-link').click()"),
        vec![json!(hostile_id)],
    )
    .await;
    wait_js(
        &c,
        "the hostile id as text",
        "return document.querySelector('#event-id')?.textContent === arguments[0]",
        vec![json!(hostile_id)],
    )
    .await;
    wait_js(
        &c,
        "hostile body and header shown as text",
        "return document.querySelector('#event-body').textContent.includes('<script>window.__pwned') && document.querySelector('#headers').textContent.includes('onerror=')",
        vec![],
    )
    .await;
    wait_css(&c, "timeline of d-x", "li.attempt .a-response").await;
    let inert = js(
        &c,
        "return {
            pwned: typeof window.__pwned,
            scripts: document.querySelectorAll('main script, main img, main iframe, main object').length,
            js_links: document.querySelectorAll('a[href^=\"javascript:\" i]').length,
            foreign_links: [...document.querySelectorAll('a[href]')].filter(a => !a.getAttribute('href').startsWith('#/')).length,
        }",
        vec![],
    )
    .await;
    assert_eq!(
        inert,
        json!({"pwned": "undefined", "scripts": 0, "js_links": 0, "foreign_links": 0})
    );

    // ---- the events list, for the README ----
    go(&c, "#/events").await;
    wait_js(
        &c,
        "all five events listed with destinations",
        "return document.querySelectorAll('#events tbody tr[data-event-id]').length >= 6 && !document.querySelector('#events tbody td.dests .muted')",
        vec![],
    )
    .await;
    screenshot(&c, "console-events.png").await;

    // ---- pollers: state, and a poll now ----
    go(&c, "#/pollers").await;
    wait_css(&c, "the poller", r#"tr[data-poller="app"] button.poll-now"#).await;
    app.add(json!({ "id": "item-1", "type": "created" }));
    click(&c, r#"tr[data-poller="app"] button.poll-now"#).await;
    wait_js(
        &c,
        "poll reported",
        "return document.querySelector('#flash').textContent.startsWith('app: ')",
        vec![],
    )
    .await;
    assert!(app.requests() >= 1);
    let (_, p) = gw.admin("GET", "/admin/pollers/app", Value::Null).await;
    let result = p["state"]["last_result"].as_str().unwrap().to_owned();
    wait_js(
        &c,
        "the poller's last result shown",
        r#"return document.querySelector('tr[data-poller="app"]').textContent.includes(arguments[0])"#,
        vec![json!(result)],
    )
    .await;
    shot_only(&c, "console-pollers.png").await;
    go(&c, "#/dlq").await;
    wait_css(&c, "dead letters", "#dead-letters tbody tr").await;
    shot_only(&c, "console-dlq.png").await;
    go(&c, "#/sources").await;
    wait_css(&c, "subscriptions", r#"tr[data-subscription="audit"]"#).await;
    shot_only(&c, "console-sources.png").await;
    // Still never set, after every page.
    assert_eq!(
        js(&c, "return typeof window.__pwned", vec![]).await,
        json!("undefined")
    );

    // ---- signing out forgets the token ----
    click(&c, "#sign-out").await;
    wait_css(&c, "sign-in form", "#token").await;
    assert_eq!(
        js(&c, "return sessionStorage.length", vec![]).await,
        json!(0)
    );

    c.close().await.unwrap();
    drop(driver);
    gw.stop().await;
}

// ------------------------------------------------------------------------
// `sluice console`: the same console over a deployment on AWS (moto), the
// admin API run by the `sluice` process on the operator's credentials.

/// The deployment's `webhook_base_url` output, as Terraform writes it.
const AWS_WEBHOOK_BASE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/hooks";

/// `sluice --outputs-file F console` as a child process, on fake
/// credentials and moto's endpoint only; its URL and token from stderr.
struct AwsConsole {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl AwsConsole {
    fn start(res: &TestResources) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        // What `terraform output -json` saves, for this deployment.
        let vars: std::collections::HashMap<&str, String> =
            res.settings.to_vars().into_iter().collect();
        let mut outputs: serde_json::Map<String, Value> = sluice::aws::settings::STACK_OUTPUTS
            .iter()
            .chain(&sluice::aws::settings::OPTIONAL_STACK_OUTPUTS)
            .map(|(output, var)| {
                (
                    sluice::aws::settings::terraform_name(output),
                    json!({ "value": vars[var], "type": "string" }),
                )
            })
            .collect();
        outputs.insert(
            "webhook_base_url".into(),
            json!({ "value": AWS_WEBHOOK_BASE, "type": "string" }),
        );
        let file = dir.path().join("outputs.json");
        std::fs::write(&file, Value::Object(outputs).to_string()).unwrap();
        let mut child = Command::new(sluice_tests::sluice_bin())
            .arg("--outputs-file")
            .arg(&file)
            .args(["console", "--listen", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", &res.endpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
        // Reads stderr to its end, so the child never blocks on it.
        std::thread::spawn(move || {
            let mut url = None;
            let mut seen = Vec::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(u) = line.strip_prefix("sluice console: http://") {
                    url = u.strip_suffix("/console").map(str::to_owned);
                } else if let Some((_, t)) = line.split_once("valid until this process stops): ")
                    && let Some(u) = url.take()
                {
                    let _ = tx.send((u, t.to_owned()));
                }
                seen.push(line);
            }
            eprintln!("sluice console's stderr:\n{}", seen.join("\n"));
        });
        let Ok((addr, token)) = rx.recv_timeout(WAIT) else {
            let _ = child.kill();
            let status = child.wait().unwrap();
            panic!(
                "sluice console did not print its URL and token (exit {status}; a `sluice` \
                 without the aws feature exits 2: `cargo build -p sluice-cli --features aws`)"
            );
        };
        Self {
            child,
            base: format!("http://{addr}"),
            token,
            _dir: dir,
        }
    }
}

impl Drop for AwsConsole {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_console_serves_a_deployment_on_aws_behind_its_token_and_host_check() {
    use sluice::aws::testing::{MotoServer, TestResources, unique_name};
    use sluice::model::{Attempt, DeliveryStatus, EventKey};
    use sluice::store::EventStore;

    // A deployment on moto: its config, a source's secret in SSM.
    let mut res = TestResources::create(MotoServer::shared()).await;
    let prefix = format!("/{}", unique_name("sluice-console"));
    res.settings.ssm_prefix = prefix.clone();
    res.clients
        .ssm
        .put_parameter()
        .name(format!("{prefix}/github"))
        .value(GH_SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let config = sluice::config::ConfigFile::parse(&format!(
        r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["ssm:{prefix}/github"]

[[subscriptions]]
id = "deploys"
source = "github"
events = ["*"]
url = "https://deploys.example/hook"
"#
    ))
    .unwrap();
    sluice::aws::put_config(&res.clients.dynamodb, &res.settings.config_table, &config)
        .await
        .unwrap();

    // A webhook through the receive function's code, routed to deploys,
    // whose only attempt failed for good: an event and a dead letter.
    let aws = sluice::aws::AwsBackend::new(&res.clients, &res.settings);
    let body = br#"{"ref":"refs/heads/main","from":"aws"}"#;
    let mut headers = axum::http::HeaderMap::new();
    for (k, v) in github_headers(GH_SECRET, "a-1", "push", body) {
        headers.insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    sluice::pipeline::receive::receive(
        &aws.registry,
        &aws.store,
        "github",
        headers,
        bytes::Bytes::from_static(body),
        sluice::pipeline::receive::Target {
            query: None,
            seen_url: &[],
        },
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    let key = EventKey::new("github", "a-1");
    aws.store
        .mark_routed(&key, &["deploys".into()])
        .await
        .unwrap();
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    aws.store
        .record_attempt(
            &Attempt {
                source: "github".into(),
                event_id: "a-1".into(),
                subscription: "deploys".into(),
                attempt: 1,
                started_at_ms: now_ms,
                latency_ms: 12,
                status_code: Some(503),
                error: None,
                response_snippet: Some("down for maintenance".into()),
                next_attempt_at_ms: None,
            },
            DeliveryStatus::Failed,
        )
        .await
        .unwrap();

    let console = AwsConsole::start(&res);
    assert!(
        console.base.starts_with("http://127.0.0.1:"),
        "{}",
        console.base
    );
    assert_eq!(console.token.len(), 43, "32 bytes, base64url");

    // ---- HTTP: the token, the Host, the console's own headers ----
    let http = reqwest::Client::new();
    let events = format!("{}/admin/events", console.base);
    let resp = http.get(&events).send().await.unwrap();
    assert_eq!(resp.status(), 401, "no token");
    let resp = http
        .get(&events)
        .bearer_auth("not-the-token-of-this-console")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a wrong token");
    let resp = http
        .get(&events)
        .bearer_auth(&console.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let listed: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(listed["events"][0]["id"], json!("github#a-1"), "{listed}");
    let port = console.base.rsplit(':').next().unwrap().to_owned();
    for host in [format!("rebound.example:{port}"), "localhost:1".to_owned()] {
        for path in ["/admin/events", "/console"] {
            let resp = http
                .get(format!("{}{path}", console.base))
                .header("host", &host)
                .bearer_auth(&console.token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 403, "Host {host} {path}");
        }
    }
    let resp = http
        .get(format!("http://localhost:{port}/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "localhost with the port");
    assert_eq!(
        resp.headers()["content-security-policy"],
        sluice_cli::console::CSP
    );
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let page = resp.text().await.unwrap();
    assert!(page.contains(&sluice_cli::console::assets_base()));

    // ---- the browser: sign in, the event from DynamoDB, its page ----
    let driver = Driver::start().await;
    let c = driver.browser().await;
    c.goto(&format!("{}/console", console.base)).await.unwrap();
    wait_css(&c, "sign-in form", "#token").await;
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("not-the-token-of-this-console")
        .await
        .unwrap();
    click(&c, "#sign-in").await;
    wait_js(
        &c,
        "wrong-token error",
        "const e = document.querySelector('#sign-in-error'); return !!e && !e.hidden && e.textContent.includes('Wrong token')",
        vec![],
    )
    .await;
    let field = c.find(Locator::Css("#token")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(&console.token).await.unwrap();
    click(&c, "#sign-in").await;
    wait_js(
        &c,
        "a-1 listed, failed at deploys",
        r#"return !!document.querySelector('tr[data-event-id="github#a-1"][data-status="failed"] .dest[data-subscription="deploys"][data-status="failed"]')"#,
        vec![],
    )
    .await;
    assert!(
        !js(&c, "return location.href", vec![])
            .await
            .as_str()
            .unwrap()
            .contains(&console.token)
    );
    click(&c, r#"tr[data-event-id="github#a-1"] a.event-link"#).await;
    wait_js(
        &c,
        "a-1's page: body and the failed attempt",
        r#"return document.querySelector('#event-id')?.textContent === 'a-1'
            && document.querySelector('#event-body').textContent.includes('"from": "aws"')
            && document.querySelectorAll('.destination[data-subscription="deploys"][data-status="failed"] li.attempt').length === 1"#,
        vec![],
    )
    .await;
    assert_eq!(
        text(
            &c,
            ".destination[data-subscription=\"deploys\"] li.attempt .a-status"
        )
        .await,
        "503"
    );
    go(&c, "#/dlq").await;
    wait_css(&c, "a-1's dead letter", r#"tr[data-event="github#a-1"]"#).await;
    shot_only(&c, "console-aws-dlq.png").await;

    // The webhook URL to give GitHub is the deployment's, not this page's.
    go(&c, "#/sources").await;
    wait_css(&c, "sources", r#"tr[data-source="github"] input.url"#).await;
    let url = js(
        &c,
        r#"return document.querySelector('tr[data-source="github"] input.url').value"#,
        vec![],
    )
    .await;
    assert_eq!(url, json!(format!("{AWS_WEBHOOK_BASE}/github")));

    c.close().await.unwrap();
    drop(driver);
}
