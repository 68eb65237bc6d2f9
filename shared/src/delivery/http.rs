//! The reqwest adapter of [`Transport`], with the SSRF guard.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::HeaderMap;
use http::header::RETRY_AFTER;
use reqwest::{Client, redirect};
use url::Url;

use super::ssrf::{self, GuardedResolver};
use super::{DeliveryError, DeliveryResponse, OutboundRequest, Transport};

/// Settings of the HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// TCP + TLS connect.
    pub connect_timeout: Duration,
    /// The whole request, from connect to the end of the snippet.
    pub timeout: Duration,
    pub user_agent: String,
    /// How many bytes of the response body to keep (the rest is not read).
    pub snippet_cap: usize,
    /// Build the client that reaches `allow_local` destinations (http://,
    /// loopback, private addresses). Off, such a request is refused, and
    /// the client (with its own copy of the CA roots) is never built.
    pub allow_local: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            user_agent: concat!("sluice/", env!("CARGO_PKG_VERSION")).to_owned(),
            snippet_cap: 1024,
            allow_local: false,
        }
    }
}

/// The outbound HTTP clients, built once: a guarded one (https only,
/// resolver that refuses forbidden addresses) and, only when
/// [`HttpOptions::allow_local`] is on, an open one for `allow_local`
/// targets. Every outbound request (deliveries, polls) picks its client
/// here, so every one passes the SSRF guard.
#[derive(Debug, Clone)]
pub struct GuardedClients {
    guarded: Client,
    open: Option<Client>,
}

impl GuardedClients {
    pub fn new(opts: &HttpOptions) -> Result<Self, DeliveryError> {
        let base = || {
            Client::builder()
                .connect_timeout(opts.connect_timeout)
                .timeout(opts.timeout)
                .user_agent(opts.user_agent.clone())
                // A redirect could point anywhere; the status is the answer.
                .redirect(redirect::Policy::none())
                // Env proxies would resolve and connect on our behalf,
                // bypassing the guard.
                .no_proxy()
        };
        let guarded = base()
            .https_only(true)
            .dns_resolver(GuardedResolver::new())
            .build()
            .map_err(|e| DeliveryError::Other(format!("building HTTP client: {}", chain(&e))))?;
        let open = if opts.allow_local {
            Some(base().build().map_err(|e| {
                DeliveryError::Other(format!("building HTTP client: {}", chain(&e)))
            })?)
        } else {
            None
        };
        Ok(Self { guarded, open })
    }

    /// The client for `url`, after the checks made before connecting.
    pub fn client_for(&self, url: &Url, allow_local: bool) -> Result<&Client, DeliveryError> {
        let client = match (&self.open, allow_local) {
            (Some(open), true) => open,
            (None, true) => {
                return Err(DeliveryError::Refused(
                    "allow_local targets are disabled in this deployment".into(),
                ));
            }
            (_, false) => &self.guarded,
        };
        ssrf::check_url(url, allow_local)?;
        Ok(client)
    }
}

/// Delivers over HTTP(S), through [`GuardedClients`].
#[derive(Debug, Clone)]
pub struct HttpTransport {
    clients: GuardedClients,
    snippet_cap: usize,
}

impl HttpTransport {
    pub fn new(opts: HttpOptions) -> Result<Self, DeliveryError> {
        Ok(Self {
            clients: GuardedClients::new(&opts)?,
            snippet_cap: opts.snippet_cap,
        })
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, req: &OutboundRequest) -> Result<DeliveryResponse, DeliveryError> {
        let client = self.clients.client_for(&req.url, req.allow_local)?;
        let mut resp = client
            .post(req.url.clone())
            .headers(req.headers.clone())
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| {
                let err = map_error(e);
                tracing::debug!(url = %redacted(&req.url), error = %err, "delivery failed");
                err
            })?;

        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers(), SystemTime::now());

        // Read only up to the cap, then drop the rest (and the connection).
        let mut buf = Vec::with_capacity(self.snippet_cap.min(8 * 1024));
        while buf.len() < self.snippet_cap {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(self.snippet_cap - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
                Ok(None) => break,
                // The status already arrived and decides the outcome; a
                // body error only shortens the snippet.
                Err(_) => break,
            }
        }
        drop(resp);

        Ok(DeliveryResponse {
            status,
            retry_after,
            snippet: snippet_text(&buf),
        })
    }
}

/// The capped bytes as text: a character cut by the cap is dropped
/// rather than shown as a replacement character.
fn snippet_text(buf: &[u8]) -> String {
    let whole = match std::str::from_utf8(buf) {
        Err(e) if e.error_len().is_none() => &buf[..e.valid_up_to()],
        _ => buf,
    };
    String::from_utf8_lossy(whole).into_owned()
}

/// The URL without query, fragment and userinfo, which may hold tokens.
pub fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    // Fails only for URLs that cannot have userinfo; nothing to strip then.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// `Retry-After` as a wait from `now`: delta-seconds or an HTTP date (a
/// date in the past means no wait). Invalid values are ignored.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurdly long values; the retry policy caps them anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

pub(crate) fn map_error(err: reqwest::Error) -> DeliveryError {
    // reqwest's Display includes the URL (possibly with a token).
    let err = err.without_url();
    if let Some(f) = ssrf::find_forbidden(&err) {
        return DeliveryError::Refused(f.to_string());
    }
    if err.is_timeout() {
        DeliveryError::Timeout
    } else if err.is_connect() {
        DeliveryError::Connect(chain(&err))
    } else {
        DeliveryError::Other(chain(&err))
    }
}

/// The error and its sources, "a: b: c", without repeats.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let msg = e.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::{HeaderMap as AxumHeaders, StatusCode};
    use axum::routing::post;
    use bytes::Bytes;
    use http::HeaderValue;
    use http::header::CONTENT_TYPE;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::Mutex;

    use super::*;

    async fn serve(router: Router) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    /// A server that counts hits and answers `status` with extra headers.
    async fn counting(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let router = Router::new().fallback(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let mut map = AxumHeaders::new();
                for (k, v) in headers {
                    map.insert(*k, HeaderValue::from_static(v));
                }
                (StatusCode::from_u16(status).unwrap(), map, "body")
            }
        });
        (serve(router).await, hits)
    }

    fn transport() -> HttpTransport {
        HttpTransport::new(HttpOptions {
            allow_local: true,
            ..HttpOptions::default()
        })
        .unwrap()
    }

    fn request(url: &str, allow_local: bool) -> OutboundRequest {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        OutboundRequest {
            url: Url::parse(url).unwrap(),
            body: Bytes::from_static(br#"{"a":1}"#),
            headers,
            allow_local,
        }
    }

    #[tokio::test]
    async fn delivers_body_and_headers_and_returns_2xx() {
        type Seen = Arc<Mutex<Option<(AxumHeaders, Bytes)>>>;
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let router = Router::new().route(
            "/hook",
            post(move |headers: AxumHeaders, body: Bytes| {
                let s = s.clone();
                async move {
                    *s.lock().await = Some((headers, body));
                    (StatusCode::ACCEPTED, "thanks")
                }
            }),
        );
        let addr = serve(router).await;
        let resp = transport()
            .send(&request(&format!("http://{addr}/hook?token=x"), true))
            .await
            .unwrap();
        assert_eq!(resp.status, 202);
        assert_eq!(resp.snippet, "thanks");
        assert_eq!(resp.retry_after, None);

        let (headers, body) = seen.lock().await.take().expect("request reached server");
        assert_eq!(&body[..], br#"{"a":1}"#);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["webhook-id"], "msg_1");
        assert_eq!(
            headers["user-agent"],
            concat!("sluice/", env!("CARGO_PKG_VERSION"))
        );
    }

    #[tokio::test]
    async fn server_error_with_retry_after() {
        let (addr, hits) = counting(500, &[("retry-after", "7")]).await;
        let resp = transport()
            .send(&request(&format!("http://{addr}/"), true))
            .await
            .unwrap();
        assert_eq!(resp.status, 500);
        assert_eq!(resp.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn redirect_is_not_followed() {
        let (target, target_hits) = counting(200, &[]).await;
        let location: &'static str = format!("http://{target}/").leak();
        let headers: &'static [(&'static str, &'static str)] = vec![("location", location)].leak();
        let (addr, hits) = counting(302, headers).await;
        let resp = transport()
            .send(&request(&format!("http://{addr}/"), true))
            .await
            .unwrap();
        assert_eq!(resp.status, 302);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(target_hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn slow_server_times_out() {
        let router = Router::new().fallback(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        });
        let addr = serve(router).await;
        let t = HttpTransport::new(HttpOptions {
            timeout: Duration::from_millis(200),
            allow_local: true,
            ..HttpOptions::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let err = t
            .send(&request(&format!("http://{addr}/"), true))
            .await
            .unwrap_err();
        assert_eq!(err, DeliveryError::Timeout);
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn connection_refused_is_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = transport()
            .send(&request(&format!("http://{addr}/?secret=hunter2"), true))
            .await
            .unwrap_err();
        let DeliveryError::Connect(msg) = &err else {
            panic!("expected Connect, got {err:?}");
        };
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(!err.is_permanent());
    }

    #[tokio::test]
    async fn http_refused_without_allow_local() {
        let (addr, hits) = counting(200, &[]).await;
        let err = transport()
            .send(&request(&format!("http://{addr}/"), false))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            DeliveryError::Refused("destination must use https".into())
        );
        assert!(err.is_permanent());
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn allow_local_reaches_loopback() {
        let (addr, hits) = counting(204, &[]).await;
        let resp = transport()
            .send(&request(&format!("http://{addr}/"), true))
            .await
            .unwrap();
        assert_eq!(resp.status, 204);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn without_the_switch_allow_local_is_refused() {
        let (addr, hits) = counting(204, &[]).await;
        let t = HttpTransport::new(HttpOptions::default()).unwrap();
        assert!(t.clients.open.is_none(), "the open client is not built");
        let err = t
            .send(&request(&format!("http://{addr}/"), true))
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Refused(_)), "{err:?}");
        assert!(err.is_permanent());
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn hostname_resolving_to_loopback_is_refused_by_resolver() {
        // A bare TCP listener: without the guard the client would connect
        // here and fail the TLS handshake (Connect/Other, not Refused).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let a = accepted.clone();
        tokio::spawn(async move {
            while let Ok((_sock, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
            }
        });
        let err = transport()
            .send(&request(
                &format!("https://localhost:{port}/?token=s3cret"),
                false,
            ))
            .await
            .unwrap_err();
        let DeliveryError::Refused(msg) = &err else {
            panic!("expected Refused, got {err:?}");
        };
        assert!(msg.contains("localhost"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn literal_forbidden_addresses_are_refused() {
        let t = transport();
        for url in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00:ec2::254]/",
        ] {
            let err = t.send(&request(url, false)).await.unwrap_err();
            assert!(
                matches!(err, DeliveryError::Refused(_)),
                "{url}: expected Refused, got {err:?}"
            );
        }
    }

    #[test]
    fn a_character_cut_by_the_cap_is_dropped() {
        assert_eq!(snippet_text("héllo".as_bytes()), "héllo");
        assert_eq!(snippet_text(&"hé".as_bytes()[..2]), "h");
        assert_eq!(snippet_text(b"a\xffb"), "a\u{fffd}b");
    }

    #[tokio::test]
    async fn snippet_is_capped_and_body_not_buffered() {
        // An endless chunked body: reading it all would never finish.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                    if sock.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut chunk = b"1000\r\n".to_vec();
                    chunk.extend(std::iter::repeat_n(b'x', 0x1000));
                    chunk.extend_from_slice(b"\r\n");
                    while sock.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        let t = HttpTransport::new(HttpOptions {
            timeout: Duration::from_secs(5),
            snippet_cap: 1000,
            allow_local: true,
            ..HttpOptions::default()
        })
        .unwrap();
        let resp = t
            .send(&request(&format!("http://{addr}/"), true))
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.snippet.len(), 1000);
        assert!(resp.snippet.bytes().all(|b| b == b'x'));
    }

    #[test]
    fn redacts_query_and_userinfo() {
        let u = Url::parse("https://user:pw@example.com:8443/a/b?token=abc#frag").unwrap();
        assert_eq!(redacted(&u), "https://example.com:8443/a/b");
    }

    #[test]
    fn parses_retry_after() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&m, now)
        };
        assert_eq!(h("120"), Some(Duration::from_secs(120)));
        assert_eq!(h(" 0 "), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(h(&later), Some(Duration::from_secs(90)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(h(&earlier), Some(Duration::ZERO));
        assert_eq!(h("soon"), None);
        assert_eq!(h("-5"), None);
        assert_eq!(
            h("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
