//! The receive hot path: verify, extract and build the record, beside a
//! bare HMAC-SHA256 of the same bytes (the floor). Budget (DESIGN.md): at
//! 2 KiB, at most 1.5x the floor. Discord (Ed25519) and Square (which
//! signs the URL) show an asymmetric scheme and a URL-signing one.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::SystemTime;

use base64::Engine;
use bytes::Bytes;
use criterion::{
    BatchSize, Bencher, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;
use sluice::config::{ConfigFile, Registry, Source};
use sluice::pipeline::receive::{Target, verify_and_build};
use sluice::secrets::EnvSecrets;

const GH_SECRET: &str = "bench-github-secret";
const STRIPE_SECRET: &str = "whsec_bench_stripe_secret";
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SQUARE_SECRET: &str = "bench-square-signature-key";
const SQUARE_URL: &str = "https://hooks.example.com/hooks/square";
/// The Discord application's key pair; the source holds the public half.
const DISCORD_SEED: [u8; 32] = [7; 32];

const CONFIG: &str = r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH"]
max_body_bytes = 1048576

[[sources]]
id = "stripe"
provider = "stripe"
secrets = ["env:STRIPE"]
max_body_bytes = 1048576

[[sources]]
id = "sw"
provider = "standard-webhooks"
secrets = ["env:SW"]
max_body_bytes = 1048576

[[sources]]
id = "discord"
provider = "discord"
secrets = ["env:DISCORD"]
max_body_bytes = 1048576

[[sources]]
id = "square"
provider = "square"
secrets = ["env:SQUARE"]
public_url = "https://hooks.example.com/hooks/square"
max_body_bytes = 1048576
"#;

fn sources() -> HashMap<&'static str, std::sync::Arc<Source>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let secrets = EnvSecrets::from_map(HashMap::from([
            ("GH".to_owned(), GH_SECRET.to_owned()),
            ("STRIPE".to_owned(), STRIPE_SECRET.to_owned()),
            ("SW".to_owned(), SW_SECRET.to_owned()),
            (
                "DISCORD".to_owned(),
                hex::encode(
                    ed25519_dalek::SigningKey::from_bytes(&DISCORD_SEED)
                        .verifying_key()
                        .to_bytes(),
                ),
            ),
            ("SQUARE".to_owned(), SQUARE_SECRET.to_owned()),
        ]));
        let reg = ConfigFile::parse(CONFIG)
            .expect("config")
            .resolve(&secrets)
            .await
            .expect("resolve");
        let mut out = HashMap::new();
        for id in ["github", "stripe", "sw", "discord", "square"] {
            out.insert(id, reg.source(id).await.expect("source").expect("exists"));
        }
        out
    })
}

/// A JSON body of exactly `size` bytes, shaped like a provider event.
fn body(size: usize) -> Bytes {
    let head = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"payment_intent.succeeded","action":"opened","data":""#;
    let tail = r#""}"#;
    let pad = size - head.len() - tail.len();
    Bytes::from(format!("{head}{}{tail}", "x".repeat(pad)))
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).expect("header"));
    }
    h
}

/// One receive: the server hands over the request's headers and body, so
/// making a copy of them for each call is setup, outside the timing.
/// Dropping the event is timed: the server drops it after the commit.
fn receive(b: &mut Bencher, source: &Source, headers: &HeaderMap, body: &Bytes, now: SystemTime) {
    receive_at(b, source, headers, body, Target::default(), now)
}

/// [`receive`] of a request sent to `target` (the URL-signing schemes).
fn receive_at(
    b: &mut Bencher,
    source: &Source,
    headers: &HeaderMap,
    body: &Bytes,
    target: Target<'_>,
    now: SystemTime,
) {
    b.iter_batched(
        || (headers.clone(), body.clone()),
        |(headers, body)| {
            drop(black_box(
                verify_and_build(source, headers, body, target, now).expect("valid"),
            ))
        },
        BatchSize::NumIterations(64),
    )
}

fn bench(c: &mut Criterion) {
    let sources = sources();
    let now = SystemTime::now();
    let ts = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let (github, stripe_src, sw_src) = (&sources["github"], &sources["stripe"], &sources["sw"]);
    let (discord_src, square_src) = (&sources["discord"], &sources["square"]);
    let mut group = c.benchmark_group("receive_path");
    for size in [2 * 1024, 256 * 1024] {
        let body = body(size);
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_with_input(
            BenchmarkId::new("hmac_sha256_floor", size),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(GH_SECRET.as_bytes()).expect("key");
                    mac.update(black_box(body));
                    black_box(mac.finalize().into_bytes())
                })
            },
        );

        let gh = headers(&[
            (
                "x-hub-signature-256",
                format!("sha256={}", hmac_hex(GH_SECRET.as_bytes(), &[&body])),
            ),
            (
                "x-github-delivery",
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            ),
            ("x-github-event", "pull_request".into()),
            ("content-type", "application/json".into()),
        ]);
        group.bench_with_input(BenchmarkId::new("github", size), &body, |b, body| {
            receive(b, github, &gh, body, now)
        });

        let stripe = headers(&[
            (
                "stripe-signature",
                format!(
                    "t={ts},v1={}",
                    hmac_hex(STRIPE_SECRET.as_bytes(), &[ts.as_bytes(), b".", &body])
                ),
            ),
            ("content-type", "application/json".into()),
        ]);
        group.bench_with_input(BenchmarkId::new("stripe", size), &body, |b, body| {
            receive(b, stripe_src, &stripe, body, now)
        });

        let sw_key = base64::engine::general_purpose::STANDARD
            .decode(SW_SECRET.trim_start_matches("whsec_"))
            .expect("b64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&sw_key).expect("key");
        mac.update(format!("msg_bench.{ts}.").as_bytes());
        mac.update(&body);
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let sw = headers(&[
            ("webhook-id", "msg_bench".into()),
            ("webhook-timestamp", ts.clone()),
            ("webhook-signature", format!("v1,{sig}")),
            ("content-type", "application/json".into()),
        ]);
        group.bench_with_input(
            BenchmarkId::new("standard_webhooks", size),
            &body,
            |b, body| receive(b, sw_src, &sw, body, now),
        );

        // Ed25519 over `{timestamp}{body}`, hex.
        let discord_sig = {
            use ed25519_dalek::Signer;
            let key = ed25519_dalek::SigningKey::from_bytes(&DISCORD_SEED);
            hex::encode(key.sign(&[ts.as_bytes(), &body].concat()).to_bytes())
        };
        let discord = headers(&[
            ("x-signature-ed25519", discord_sig),
            ("x-signature-timestamp", ts.clone()),
            ("content-type", "application/json".into()),
        ]);
        group.bench_with_input(BenchmarkId::new("discord", size), &body, |b, body| {
            receive(b, discord_src, &discord, body, now)
        });

        // Base64 HMAC-SHA256 over the URL called (public_url + the query),
        // then the body.
        let query = "source=bench";
        let signed_url = format!("{SQUARE_URL}?{query}");
        let mut mac = Hmac::<Sha256>::new_from_slice(SQUARE_SECRET.as_bytes()).expect("key");
        mac.update(signed_url.as_bytes());
        mac.update(&body);
        let square = headers(&[
            (
                "x-square-hmacsha256-signature",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
            ),
            ("content-type", "application/json".into()),
        ]);
        let target = Target {
            query: Some(query),
            seen_url: &[],
        };
        group.bench_with_input(BenchmarkId::new("square", size), &body, |b, body| {
            receive_at(b, square_src, &square, body, target, now)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
