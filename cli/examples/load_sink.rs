//! Destination for the load test. Each event id carries the time the load
//! tool sent it (`<unix micros>-<thread>-<n>`), so the sink measures the
//! end-to-end latency: request sent → destination receives. It also counts
//! ids seen twice (duplicate deliveries) and the span from the first send
//! to the last receive, for the delivered rate. `GET /ids` lists every id
//! received, one a line: the id, then the receive time (unix micros) of
//! each time it arrived (for `scripts/faults.sh`, which matches repeats
//! against the moments it killed the gateway).
//!
//!     cargo run --release -p sluice-cli --example load_sink -- 127.0.0.1:9091
//!     curl 127.0.0.1:9091/stats
//!     curl 127.0.0.1:9091/ids

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    received: u64,
    /// Id -> when it first arrived (unix micros).
    seen: HashMap<String, u64>,
    duplicates: u64,
    /// (id, when it arrived again), for each repeat.
    repeats: Vec<(String, u64)>,
    first_sent_us: Option<u64>,
    last_received_us: u64,
}

type Shared = Arc<Mutex<Stats>>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9091".into());
    let stats: Shared = Arc::default();
    let app = Router::new()
        .route("/stats", get(report))
        .route("/ids", get(ids))
        .route("/{*path}", post(receive))
        .with_state(stats);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("load sink on {addr}");
    axum::serve(listener, app).await.expect("serve");
}

async fn receive(State(stats): State<Shared>, headers: HeaderMap) -> &'static str {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok());
    let sent_us = id
        .and_then(|id| id.rsplit('#').next())
        .and_then(|id| id.split('-').next())
        .and_then(|us| us.parse::<u64>().ok());
    let mut s = stats.lock().expect("stats");
    s.received += 1;
    s.last_received_us = s.last_received_us.max(now_us);
    if let Some(id) = id {
        let s = &mut *s;
        match s.seen.entry(id.to_owned()) {
            Entry::Occupied(_) => {
                s.duplicates += 1;
                s.repeats.push((id.to_owned(), now_us));
            }
            Entry::Vacant(v) => {
                v.insert(now_us);
            }
        }
    }
    if let Some(sent) = sent_us {
        s.first_sent_us = Some(s.first_sent_us.map_or(sent, |f| f.min(sent)));
        s.latencies_us.push(now_us.saturating_sub(sent));
    }
    "ok"
}

async fn ids(State(stats): State<Shared>) -> String {
    let s = stats.lock().expect("stats");
    let mut again: HashMap<&str, Vec<u64>> = HashMap::new();
    for (id, at) in &s.repeats {
        again.entry(id.as_str()).or_default().push(*at);
    }
    let mut out = String::with_capacity(s.seen.len() * 48);
    for (id, first) in &s.seen {
        let _ = write!(out, "{id} {first}");
        for at in again.get(id.as_str()).into_iter().flatten() {
            let _ = write!(out, " {at}");
        }
        out.push('\n');
    }
    out
}

async fn report(State(stats): State<Shared>) -> String {
    let s = stats.lock().expect("stats");
    let mut l = s.latencies_us.clone();
    l.sort_unstable();
    let pct = |p: f64| {
        if l.is_empty() {
            0.0
        } else {
            l[((l.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    // From the first request sent to the last delivery received.
    let span_s = s
        .first_sent_us
        .map_or(0.0, |f| s.last_received_us.saturating_sub(f) as f64 / 1e6);
    let rate = if span_s > 0.0 {
        s.received as f64 / span_s
    } else {
        0.0
    };
    format!(
        "{{\"received\":{},\"unique\":{},\"duplicates\":{},\"span_s\":{:.2},\"delivered_per_s\":{:.0},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}\n",
        s.received,
        s.seen.len(),
        s.duplicates,
        span_s,
        rate,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    )
}
