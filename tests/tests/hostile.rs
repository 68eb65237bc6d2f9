//! The embedded gateway against hostile and broken clients: real sockets
//! on 127.0.0.1, a real SQLite file, short timeouts so each case is quick.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{ADMIN_TOKEN, Harness, Running, github_headers};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GH_SECRET: &str = "gh-secret-for-hostile-tests";

fn harness() -> Harness {
    let config = r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["env:GH_SECRET"]

[admin]
token = "env:ADMIN_TOKEN"
"#;
    Harness::new(
        config,
        &[("GH_SECRET", GH_SECRET), ("ADMIN_TOKEN", ADMIN_TOKEN)],
    )
}

fn addr(gw: &Running) -> std::net::SocketAddr {
    gw.gateway.local_addr()
}

/// The head of a signed GitHub push whose body is `body`, declaring
/// `content_length` bytes (a liar declares more than it sends).
fn signed_head(delivery: &str, body: &[u8], content_length: usize) -> String {
    let mut head = "POST /hooks/github HTTP/1.1\r\nhost: sluice\r\n".to_owned();
    for (k, v) in github_headers(GH_SECRET, delivery, "push", body) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {content_length}\r\n\r\n"));
    head
}

/// Read until the server closes the connection (or `limit` passes, which
/// fails the test); returns what it sent and when it closed.
async fn until_closed<R: AsyncRead + Unpin>(stream: &mut R, limit: Duration) -> (String, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&got).into_owned(), Instant::now());
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Adds headers to a signed request.
type Mutate<'a> = Box<dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + 'a>;

async fn committed(h: &Harness) -> u64 {
    h.store().event_count().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_headers_stalled_bodies_and_lying_lengths_are_cut_off_and_nothing_is_committed() {
    let mut h = harness();
    h.opts.header_timeout = Duration::from_millis(600);
    h.opts.body_timeout = Duration::from_millis(600);
    let gw = h.start().await;
    let body = br#"{"ref":"refs/heads/main","pad":"0123456789012345678901234567890123456789"}"#;
    let started = Instant::now();

    // Slow loris: a head trickled a byte at a time, never finished. The
    // deadline is for the whole head; progress does not extend it.
    let (mut loris, mut trickler) = TcpStream::connect(addr(&gw)).await.unwrap().into_split();
    trickler
        .write_all(b"POST /hooks/github HTTP/1.1\r\nhost: sluice\r\nx-slow: ")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if trickler.write_all(b"a").await.is_err() {
                break;
            }
        }
    });

    // A full, signed head, then half the body, then nothing.
    let mut half = TcpStream::connect(addr(&gw)).await.unwrap();
    half.write_all(signed_head("half", body, body.len()).as_bytes())
        .await
        .unwrap();
    half.write_all(&body[..body.len() / 2]).await.unwrap();

    // The whole (validly signed) body, but a Content-Length that promises more.
    let mut liar = TcpStream::connect(addr(&gw)).await.unwrap();
    liar.write_all(signed_head("liar", body, body.len() + 100).as_bytes())
        .await
        .unwrap();
    liar.write_all(body).await.unwrap();

    // The admin API reads its bodies under the same deadline.
    let mut admin = TcpStream::connect(addr(&gw)).await.unwrap();
    admin
        .write_all(
            format!(
                "POST /admin/sources HTTP/1.1\r\nhost: sluice\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-length: 50\r\n\r\n{{\"id\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();

    // One whole request, then an idle keep-alive connection.
    let mut kept = TcpStream::connect(addr(&gw)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: sluice\r\n\r\n")
        .await
        .unwrap();

    let limit = Duration::from_secs(5);
    let (reply, closed) = until_closed(&mut kept, limit).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert!(
        closed - started >= Duration::from_millis(500),
        "the idle keep-alive connection was closed at once"
    );
    for (name, stream) in [
        ("half", &mut half),
        ("liar", &mut liar),
        ("admin", &mut admin),
    ] {
        let (reply, closed) = until_closed(stream, limit).await;
        assert!(reply.starts_with("HTTP/1.1 408"), "{name}: {reply:?}");
        assert!(
            reply.contains("\"error\":\"body_timeout\""),
            "{name}: {reply:?}"
        );
        assert!(
            closed - started >= Duration::from_millis(500),
            "{name} was cut before its deadline"
        );
    }
    let (reply, closed) = until_closed(&mut loris, limit).await;
    assert!(!reply.contains("200 OK"), "{reply:?}");
    assert!(
        closed - started < Duration::from_secs(2),
        "the trickled head kept its connection for {:?}",
        closed - started
    );
    trickle.abort();

    assert_eq!(
        committed(&h).await,
        0,
        "nothing half-received was committed"
    );

    // The server is still fine, and the same body sent properly commits.
    let (status, reply) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "whole", "push", body),
            body,
        )
        .await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")));
    assert_eq!(committed(&h).await, 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_empty_or_repeated_id_and_signature_headers_are_400_malformed_header() {
    let h = harness();
    let gw = h.start().await;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let url = format!("{}/hooks/github", gw.base);
    let send = |mutate: &dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder| {
        let mut req = gw.client.post(&url).body(body.to_vec());
        for (k, v) in github_headers(GH_SECRET, "base", "push", body) {
            if k != "x-github-delivery" && k != "x-hub-signature-256" {
                req = req.header(k, v);
            }
        }
        let req = mutate(req);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, json)
        }
    };
    let good_sig = github_headers(GH_SECRET, "x", "push", body)
        .into_iter()
        .find(|(k, _)| k == "x-hub-signature-256")
        .unwrap()
        .1;
    let wrong_sig = github_headers("not-the-secret", "x", "push", body)
        .into_iter()
        .find(|(k, _)| k == "x-hub-signature-256")
        .unwrap()
        .1;
    let signed = |req: reqwest::RequestBuilder| req.header("x-hub-signature-256", &good_sig);
    let cases: Vec<(&str, Mutate)> = vec![
        (
            "id not text",
            Box::new(|r| {
                signed(r).header(
                    "x-github-delivery",
                    http::HeaderValue::from_bytes(b"id-\xff\xfe").unwrap(),
                )
            }),
        ),
        (
            "id empty",
            Box::new(|r| signed(r).header("x-github-delivery", "")),
        ),
        (
            "id twice",
            Box::new(|r| {
                signed(r)
                    .header("x-github-delivery", "one")
                    .header("x-github-delivery", "two")
            }),
        ),
        (
            "type not text",
            Box::new(|r| {
                signed(r).header("x-github-delivery", "t").header(
                    "x-github-event",
                    http::HeaderValue::from_bytes(b"\xe9v\xe9nement").unwrap(),
                )
            }),
        ),
        (
            "signatures good then wrong",
            Box::new(|r| {
                r.header("x-github-delivery", "s1")
                    .header("x-hub-signature-256", &good_sig)
                    .header("x-hub-signature-256", &wrong_sig)
            }),
        ),
        (
            "signatures wrong then good",
            Box::new(|r| {
                r.header("x-github-delivery", "s2")
                    .header("x-hub-signature-256", &wrong_sig)
                    .header("x-hub-signature-256", &good_sig)
            }),
        ),
    ];
    for (what, mutate) in &cases {
        let (status, reply) = send(mutate.as_ref()).await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (400, Some("malformed_header")),
            "{what}: {reply}"
        );
    }
    assert_eq!(committed(&h).await, 0);

    // Two deliveries with one body stay two events when their ids are good.
    for id in ["d-1", "d-2"] {
        let (status, reply) = send(&|r| signed(r).header("x-github-delivery", id)).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("accepted")),
            "{reply}"
        );
    }
    assert_eq!(committed(&h).await, 2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_the_limit_get_431() {
    let h = harness();
    let gw = h.start().await;
    let body = br#"{"ref":"x"}"#;
    let post = |extra: Vec<(String, String)>| {
        let mut req = gw
            .client
            .post(format!("{}/hooks/github", gw.base))
            .body(body.to_vec());
        for (k, v) in github_headers(GH_SECRET, "big", "push", body)
            .into_iter()
            .chain(extra)
        {
            req = req.header(k, v);
        }
        async move { req.send().await.map(|r| r.status().as_u16()) }
    };
    // 12 KiB of headers: within the 16 KiB limit.
    let under = vec![("x-pad".to_owned(), "a".repeat(12 * 1024))];
    assert_eq!(post(under).await.unwrap(), 200);
    let over = vec![("x-pad".to_owned(), "a".repeat(17 * 1024))];
    assert_eq!(post(over).await.unwrap(), 431);
    let many = (0..120)
        .map(|i| (format!("x-pad-{i}"), "a".to_owned()))
        .collect();
    assert_eq!(post(many).await.unwrap(), 431);
    assert_eq!(committed(&h).await, 1);
    gw.stop().await;
}

/// Connections that send `prefix` (part of a head, or nothing) and wait.
async fn stalled(gw: &Running, n: usize, prefix: &[u8]) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr(gw)).await.unwrap();
        s.write_all(prefix).await.unwrap();
        out.push(s);
    }
    out
}

const HALF_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: sluice\r\n";

async fn healthz_within(gw: &Running, limit: Duration) -> Duration {
    let started = Instant::now();
    // A fresh client: a new connection, not one from a pool.
    let client = reqwest::Client::new();
    let resp = tokio::time::timeout(limit, client.get(format!("{}/healthz", gw.base)).send())
        .await
        .unwrap_or_else(|_| panic!("not served within {limit:?}"))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_do_not_lock_out_another_client() {
    // Each connection is two descriptors here: the client's and the gateway's.
    let (_, soft) = sluice_cli::serve::raise_open_file_limit().unwrap();
    assert!(
        soft >= 4_500,
        "this test needs an open-file limit of 4,500 (the hard limit allows {soft})"
    );
    let mut h = harness();
    // Long enough that none of them times out during the test.
    h.opts.header_timeout = Duration::from_secs(30);
    h.opts.http_grace = Duration::from_millis(200);
    let gw = h.start().await;
    let mut idle = stalled(&gw, 1_000, b"").await;
    idle.extend(stalled(&gw, 1_000, HALF_HEAD).await);
    healthz_within(&gw, Duration::from_secs(5)).await;
    let body = br#"{"ref":"x"}"#;
    let (status, _) = gw
        .post(
            "github",
            &github_headers(GH_SECRET, "busy", "push", body),
            body,
        )
        .await;
    assert_eq!(status, 200);
    drop(idle);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_bound_clients_wait_until_a_slot_frees() {
    let mut h = harness();
    h.opts.max_connections = 20;
    h.opts.header_timeout = Duration::from_millis(800);
    h.opts.http_grace = Duration::from_millis(200);
    let gw = h.start().await;
    // Half say nothing at all, half stop mid-head: the header timeout
    // ends both.
    let mut held = stalled(&gw, 10, b"").await;
    held.extend(stalled(&gw, 10, HALF_HEAD).await);
    // Let the gateway accept all twenty.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The next client waits in the backlog until the header timeout frees
    // a slot, then it is served.
    let waited = healthz_within(&gw, Duration::from_secs(5)).await;
    assert!(
        waited >= Duration::from_millis(300),
        "served after {waited:?}: the bound did not hold"
    );
    // And the held connections were closed by the gateway.
    for s in &mut held {
        let (_, _) = until_closed(s, Duration::from_secs(2)).await;
    }
    gw.stop().await;
}
