//! Test harness: a real destination server on 127.0.0.1, a gateway started
//! in-process on a temporary database, and provider-style signing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sluice::local::SqliteStore;
use sluice_cli::serve::{Gateway, ServeOptions};

pub mod sdk_calls;

/// One request as the destination saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Default)]
struct SinkState {
    script: VecDeque<u16>,
    default_status: u16,
    /// The body of every answer (empty unless set).
    response_body: String,
    received: Vec<Received>,
    /// How long each answer takes (recorded on arrival).
    delay: Duration,
    /// Requests being answered now, and the most there were at once.
    in_flight: usize,
    max_in_flight: usize,
}

/// A destination: answers scripted statuses, then its default, and
/// records every request.
#[derive(Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<SinkState>>,
}

impl Sink {
    pub async fn start(default_status: u16) -> Self {
        let state = Arc::new(Mutex::new(SinkState {
            default_status,
            ..Default::default()
        }));
        let app = Router::new()
            .route("/{*path}", post(record))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next responses, in order; afterwards the default applies.
    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses);
    }

    /// Answer each request only after `delay` (a slow destination).
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn set_default(&self, status: u16) {
        self.state.lock().unwrap().default_status = status;
    }

    /// Answer with this body (the start of it lands in the attempt log).
    pub fn set_response_body(&self, body: &str) {
        self.state.lock().unwrap().response_body = body.to_owned();
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// The most requests it was answering at once (since the last reset).
    pub fn max_concurrent(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// Count the most at once from now on.
    pub fn reset_max_concurrent(&self) {
        let mut s = self.state.lock().unwrap();
        s.max_in_flight = s.in_flight;
    }

    /// Requests answered with a 2xx.
    pub fn successes(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

async fn record(
    State(state): State<Arc<Mutex<SinkState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let (status, delay, response) = {
        let mut s = state.lock().unwrap();
        let status = s.script.pop_front().unwrap_or(s.default_status);
        s.received.push(Received {
            headers,
            body,
            status,
            at: Instant::now(),
        });
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        (status, s.delay, s.response_body.clone())
    };
    tokio::time::sleep(delay).await;
    state.lock().unwrap().in_flight -= 1;
    (StatusCode::from_u16(status).unwrap(), response)
}

#[derive(Default)]
struct ListState {
    /// Newest first, as list endpoints answer.
    items: Vec<serde_json::Value>,
    requests: usize,
    /// Conditional requests answered 304.
    not_modified: usize,
    delay: Duration,
}

/// A polled app: `GET /items` answers a JSON list with an `ETag`, and 304
/// to a conditional request that still matches.
#[derive(Clone)]
pub struct ListApp {
    pub addr: SocketAddr,
    state: Arc<Mutex<ListState>>,
}

impl ListApp {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ListState::default()));
        let app = Router::new()
            .route("/items", axum::routing::get(list_items))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/items", self.addr)
    }

    /// A new item, listed first.
    pub fn add(&self, item: serde_json::Value) {
        self.state.lock().unwrap().items.insert(0, item);
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    pub fn not_modified(&self) -> usize {
        self.state.lock().unwrap().not_modified
    }

    /// Answer each request only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }
}

async fn list_items(
    State(state): State<Arc<Mutex<ListState>>>,
    headers: HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (items, delay) = {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        (s.items.clone(), s.delay)
    };
    tokio::time::sleep(delay).await;
    let body = serde_json::to_vec(&items).unwrap();
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..8]));
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        state.lock().unwrap().not_modified += 1;
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    (
        [
            ("etag", etag),
            ("content-type", "application/json".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// A config and secrets in a temporary directory, and the gateway on them.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub opts: ServeOptions,
}

impl Harness {
    /// `env` lines are written to the `.env` file the gateway reads.
    pub fn new(config: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).unwrap();
        let env_path = dir.path().join(".env");
        // Single-quoted: values are taken as they are (spaces included).
        let env_text: String = env.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        std::fs::write(&env_path, env_text).unwrap();
        let mut opts = ServeOptions::new(
            config_path,
            "127.0.0.1:0".parse().unwrap(),
            dir.path().join("sluice.db"),
        );
        opts.env_file = env_path;
        Self { dir, opts }
    }

    pub fn db_path(&self) -> PathBuf {
        self.opts.db.clone()
    }

    pub async fn start(&self) -> Running {
        let gateway = Gateway::start(&self.opts).await.unwrap();
        let base = format!("http://{}", gateway.local_addr());
        Running {
            gateway,
            base,
            client: reqwest::Client::new(),
        }
    }

    /// A second handle on the same database, for inspection.
    pub fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.db_path()).unwrap()
    }
}

pub struct Running {
    pub gateway: Gateway,
    pub base: String,
    pub client: reqwest::Client,
}

impl Running {
    pub async fn post(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .client
            .post(format!("{}/hooks/{source}", self.base))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, json)
    }

    /// An admin API call with `token` (None: no Authorization header).
    /// A null body sends nothing.
    pub async fn admin_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if !body.is_null() {
            req = req.body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, json)
    }

    /// An admin API call with [`ADMIN_TOKEN`].
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.admin_as(Some(ADMIN_TOKEN), method, path, &body).await
    }

    pub async fn stop(self) {
        self.gateway.shutdown().await;
    }
}

/// The admin token the tests configure (`env:ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// GitHub's scheme: `sha256=` + hex HMAC-SHA256 of the body.
pub fn github_headers(
    secret: &str,
    delivery: &str,
    event: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    vec![
        ("x-hub-signature-256".into(), sig),
        ("x-github-delivery".into(), delivery.into()),
        ("x-github-event".into(), event.into()),
        ("content-type".into(), "application/json".into()),
    ]
}

/// Asana's scheme: `X-Hook-Signature`, the hex HMAC-SHA256 of the body
/// under the secret its `X-Hook-Secret` handshake sent.
pub fn asana_headers(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![("x-hook-signature".into(), hex_hmac(secret, &[body]))]
}

fn hex_hmac(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Zoom's scheme, signed now: `v0=` + hex HMAC-SHA256 of
/// `v0:{timestamp}:{body}`.
pub fn zoom_headers(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sig = hex_hmac(secret, &[b"v0:", ts.as_bytes(), b":", body]);
    vec![
        ("x-zm-signature".into(), format!("v0={sig}")),
        ("x-zm-request-timestamp".into(), ts),
        ("content-type".into(), "application/json".into()),
    ]
}

/// The `encryptedToken` Zoom expects for `plain_token`.
pub fn zoom_url_token(secret: &str, plain_token: &str) -> String {
    hex_hmac(secret, &[plain_token.as_bytes()])
}

/// The `response_token` X expects for a CRC's `crc_token`: `sha256=` +
/// base64 HMAC-SHA256 under the consumer secret.
pub fn x_crc_response(secret: &str, crc_token: &str) -> String {
    let tag = hex::decode(hex_hmac(secret, &[crc_token.as_bytes()])).unwrap_or_default();
    format!(
        "sha256={}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, tag)
    )
}

/// Twitch EventSub's scheme, signed now (RFC 3339 with nanoseconds):
/// `sha256=` + hex HMAC-SHA256 of id + timestamp + body.
pub fn twitch_headers(
    secret: &str,
    id: &str,
    message_type: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let ts = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let sig = hex_hmac(secret, &[id.as_bytes(), ts.as_bytes(), body]);
    vec![
        ("twitch-eventsub-message-id".into(), id.into()),
        ("twitch-eventsub-message-timestamp".into(), ts),
        (
            "twitch-eventsub-message-signature".into(),
            format!("sha256={sig}"),
        ),
        ("twitch-eventsub-message-type".into(), message_type.into()),
        ("content-type".into(), "application/json".into()),
    ]
}

/// A Discord application's key pair, from a seed: (signing key, public
/// key in hex as the source's secret).
pub fn discord_key(seed: u8) -> (ed25519_dalek::SigningKey, String) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let public = hex::encode(key.verifying_key().to_bytes());
    (key, public)
}

/// Discord's interaction scheme, signed now: hex Ed25519 over timestamp +
/// body.
pub fn discord_headers(key: &ed25519_dalek::SigningKey, body: &[u8]) -> Vec<(String, String)> {
    use ed25519_dalek::Signer;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sig = key.sign(&[ts.as_bytes(), body].concat());
    vec![
        ("x-signature-ed25519".into(), hex::encode(sig.to_bytes())),
        ("x-signature-timestamp".into(), ts),
        ("content-type".into(), "application/json".into()),
    ]
}

/// Check a Standard Webhooks signature the way a receiver would.
pub fn standard_webhooks_valid(whsec: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(whsec.trim_start_matches("whsec_"))
        .unwrap();
    let id = headers["webhook-id"].to_str().unwrap();
    let ts = headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

/// Poll `cond` every 20 ms until it holds, or panic after `limit`.
pub async fn eventually<F: FnMut() -> bool>(limit: Duration, what: &str, mut cond: F) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`], for conditions that must be awaited.
pub async fn eventually_async<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `sluice serve` as a process: the binary at `bin` (a test of the CLI
/// crate has it as `env!("CARGO_BIN_EXE_sluice")`) on the harness's config,
/// database and env file, logging JSON, plus `extra` serve flags. Its
/// address comes from the "listening" line; the log is kept for failures.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub addr: String,
    pub log: std::thread::JoinHandle<Vec<String>>,
}

impl ServeProcess {
    pub fn spawn(bin: &std::path::Path, h: &Harness, extra: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin)
            .arg("--config")
            .arg(&h.opts.config)
            .arg("--db")
            .arg(h.db_path())
            .arg("--env-file")
            .arg(&h.opts.env_file)
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<String>();
        let log = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == "sluice gateway listening"
                {
                    let _ = addr_tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                lines.push(line);
            }
            lines
        });
        let Ok(addr) = addr_rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("no listening line: {:?}", log.join().unwrap());
        };
        Self { child, addr, log }
    }
}

/// The `sluice` binary beside the running test binary
/// (`target/debug/sluice`). `cargo test --workspace --all-features` (make
/// test) builds it with the `aws` feature, which the tests of `--aws`
/// commands need; `cargo build -p sluice-cli --features aws` does alone.
pub fn sluice_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let bin = dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no {}: build it with `cargo build -p sluice-cli --features aws` (`cargo test --workspace --all-features` does)",
        bin.display()
    );
    bin
}
