//! The operator console at `/console`: a few static files (cli/console/)
//! embedded in the binary. It talks to the admin API from the browser with
//! the operator's token; this module only maps paths to bytes and headers.
//!
//! Its routes come with the `/admin` routes that answer it ([`router`]):
//! `sluice serve` answers them from its own admin API, `sluice console`
//! (cli/src/console_proxy.rs) from the admin API run in-process over AWS.
//!
//! The files other than the page itself live under
//! `/console/assets/{version}/`, where `version` is a hash of all of them:
//! they can then be cached for good, and the page (never cached without
//! revalidation) always names the set it was shipped with.

use std::sync::LazyLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

/// Webhook bodies and headers are attacker-controlled and the page shows
/// them: nothing but the console's own files may run, load or be framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const INDEX: &str = include_str!("../console/index.html");

/// (name, bytes, content type) of every file under the versioned prefix.
const FILES: &[(&str, &[u8], &str)] = &[
    (
        "console.css",
        include_bytes!("../console/console.css"),
        "text/css; charset=utf-8",
    ),
    ("app.js", include_bytes!("../console/app.js"), JS),
    ("api.js", include_bytes!("../console/api.js"), JS),
    ("dom.js", include_bytes!("../console/dom.js"), JS),
    ("events.js", include_bytes!("../console/events.js"), JS),
    ("dlq.js", include_bytes!("../console/dlq.js"), JS),
    ("config.js", include_bytes!("../console/config.js"), JS),
    (
        "favicon.svg",
        include_bytes!("../console/favicon.svg"),
        "image/svg+xml",
    ),
];

const JS: &str = "text/javascript; charset=utf-8";

/// The page's placeholder for the versioned asset prefix.
const BASE_MARK: &str = "{{assets}}";

struct Built {
    version: String,
    index: Vec<u8>,
    index_etag: String,
    etags: Vec<String>,
}

static BUILT: LazyLock<Built> = LazyLock::new(|| {
    let mut all = xxhash_rust::xxh3::Xxh3::new();
    let etags = FILES
        .iter()
        .map(|(name, bytes, _)| {
            all.update(name.as_bytes());
            all.update(bytes);
            etag(bytes)
        })
        .collect();
    let version = format!("{:016x}", all.digest());
    let index = INDEX
        .replace(BASE_MARK, &format!("/console/assets/{version}"))
        .into_bytes();
    let index_etag = etag(&index);
    Built {
        version,
        index,
        index_etag,
        etags,
    }
});

fn etag(bytes: &[u8]) -> String {
    format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// The asset prefix in force: `/console/assets/{version}`.
pub fn assets_base() -> String {
    format!("/console/assets/{}", BUILT.version)
}

/// The console's routes, and `/admin` and `/admin/*` answered by `admin`:
/// the one set of routes every server of the console mounts.
pub fn router<S>(admin: MethodRouter<S>, settings: &PageSettings) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let settings =
        Bytes::from(serde_json::json!({ "webhook_base": settings.webhook_base }).to_string());
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route(
            "/console/settings.json",
            get(move || async move { settings_response(settings) }),
        )
        .route("/console/assets/{version}/{*name}", get(asset_route))
        .route("/admin", admin.clone())
        .route("/admin/{*rest}", admin)
}

/// What the page is told about where it runs (`/console/settings.json`,
/// read without the token: nothing in it is secret).
#[derive(Debug, Clone, Default)]
pub struct PageSettings {
    /// Where providers send webhooks, `/{source}` appended: a deployment's
    /// `WebhookBaseUrl`. Unset, the page uses its own address (`sluice
    /// serve` receives webhooks where it serves the console).
    pub webhook_base: Option<String>,
}

fn settings_response(body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(h);
    resp
}

async fn page(headers: HeaderMap) -> Response {
    index(&headers)
}

async fn asset_route(
    Path((version, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    asset(&version, &name, &headers)
}

/// The console's page. Revalidated on every load (`no-cache`), so a new
/// binary's assets are picked up at once.
pub fn index(req: &HeaderMap) -> Response {
    let built = &*BUILT;
    respond(
        req,
        &built.index,
        "text/html; charset=utf-8",
        &built.index_etag,
        "no-cache",
    )
}

/// One file of `version`. Only names in the table exist: nothing is read
/// from disk, so `..` or an encoded slash can only miss.
pub fn asset(version: &str, name: &str, req: &HeaderMap) -> Response {
    let built = &*BUILT;
    if version != built.version {
        return not_found();
    }
    match FILES.iter().position(|(n, _, _)| *n == name) {
        Some(i) => {
            let (_, bytes, content_type) = FILES[i];
            respond(
                req,
                bytes,
                content_type,
                &built.etags[i],
                // The URL changes with the content: keep it a year.
                "public, max-age=31536000, immutable",
            )
        }
        None => not_found(),
    }
}

fn respond(
    req: &HeaderMap,
    bytes: &'static [u8],
    content_type: &'static str,
    etag: &str,
    cache: &'static str,
) -> Response {
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(bytes));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    secure(h);
    resp
}

fn not_found() -> Response {
    let mut resp = (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "not found\n",
    )
        .into_response();
    secure(resp.headers_mut());
    resp
}

/// The headers of every console response.
fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(resp: &Response, name: header::HeaderName) -> &str {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn version() -> String {
        BUILT.version.clone()
    }

    fn assert_secure(resp: &Response) {
        assert_eq!(get(resp, header::CONTENT_SECURITY_POLICY), CSP);
        assert_eq!(get(resp, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(get(resp, header::REFERRER_POLICY), "no-referrer");
    }

    #[test]
    fn the_page_names_the_versioned_assets_and_is_revalidated() {
        let resp = index(&HeaderMap::new());
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(get(&resp, header::CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(get(&resp, header::CACHE_CONTROL), "no-cache");
        assert!(get(&resp, header::ETAG).starts_with('"'));
        assert_secure(&resp);
        let html = String::from_utf8(BUILT.index.clone()).unwrap();
        assert!(!html.contains(BASE_MARK));
        assert!(html.contains(&format!("{}/app.js", assets_base())));
        assert!(html.contains(&format!("{}/console.css", assets_base())));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_no_other_origin() {
        let html = String::from_utf8(BUILT.index.clone()).unwrap();
        assert!(!html.contains("<style"), "inline style");
        assert!(!html.contains(" style="), "inline style attribute");
        for (i, _) in html.match_indices(" on") {
            let name: String = html[i + 3..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            let after = html[i + 3 + name.len()..].trim_start();
            assert!(!after.starts_with('='), "inline handler on{name}");
        }
        for script in html.split("<script").skip(1) {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains("src="), "inline script: {tag}");
        }
        assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("//"));
    }

    #[test]
    fn no_asset_writes_html_from_data() {
        for (name, bytes, _) in FILES {
            let text = String::from_utf8_lossy(bytes);
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!text.contains(bad), "{name} uses {bad}");
            }
        }
    }

    #[test]
    fn assets_have_their_content_types_and_are_cached_for_good() {
        let v = version();
        for (name, want) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("events.js", "text/javascript; charset=utf-8"),
            ("console.css", "text/css; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ] {
            let resp = asset(&v, name, &HeaderMap::new());
            assert_eq!(resp.status(), StatusCode::OK, "{name}");
            assert_eq!(get(&resp, header::CONTENT_TYPE), want, "{name}");
            assert_eq!(
                get(&resp, header::CACHE_CONTROL),
                "public, max-age=31536000, immutable"
            );
            assert_secure(&resp);
        }
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let v = version();
        let first = asset(&v, "app.js", &HeaderMap::new());
        let tag = get(&first, header::ETAG).to_owned();
        let mut req = HeaderMap::new();
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&tag).unwrap());
        let again = asset(&v, "app.js", &req);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(get(&again, header::ETAG), tag);
        assert_secure(&again);
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(asset(&v, "app.js", &req).status(), StatusCode::OK);
        let page_tag = get(&index(&HeaderMap::new()), header::ETAG).to_owned();
        req.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&page_tag).unwrap(),
        );
        assert_eq!(index(&req).status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn unknown_names_other_versions_and_traversal_are_404() {
        let v = version();
        let none = HeaderMap::new();
        for name in [
            "missing.js",
            "",
            "../index.html",
            "../../Cargo.toml",
            "..%2fapp.js",
            "./app.js",
            "app.js/",
            "/app.js",
            "sub/app.js",
            "APP.JS",
            "console.rs",
        ] {
            let resp = asset(&v, name, &none);
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{name:?}");
            assert_secure(&resp);
        }
        assert_eq!(
            asset("0000000000000000", "app.js", &none).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(asset("..", "app.js", &none).status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_router_serves_the_page_and_assets_and_only_get() {
        use tower::ServiceExt;
        let settings = PageSettings {
            webhook_base: Some("https://abc.execute-api.example.com/hooks".into()),
        };
        let app = router(
            axum::routing::any(|| async { StatusCode::IM_A_TEAPOT }),
            &settings,
        );
        let call = |method: &str, uri: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap()
        };
        for uri in ["/console", "/console/"] {
            let resp = app.clone().oneshot(call("GET", uri)).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            assert_secure(&resp);
        }
        let css = format!("{}/console.css", assets_base());
        let resp = app.clone().oneshot(call("GET", &css)).await.unwrap();
        assert_eq!(get(&resp, header::CONTENT_TYPE), "text/css; charset=utf-8");
        for uri in [
            format!("{}/../../admin/sources", assets_base()),
            format!("{}/%2e%2e/app.js", assets_base()),
            "/console/assets/x/app.js".to_owned(),
            "/console/app.js".to_owned(),
        ] {
            let resp = app.clone().oneshot(call("GET", &uri)).await.unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{uri}");
        }
        let resp = app.clone().oneshot(call("POST", "/console")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        // What the page is told about where webhooks go; no token needed.
        let resp = app
            .clone()
            .oneshot(call("GET", "/console/settings.json"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_secure(&resp);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({ "webhook_base": "https://abc.execute-api.example.com/hooks" })
        );
        // `/admin` and below go to the handler given, any method.
        for (method, uri) in [("GET", "/admin"), ("POST", "/admin/events/x/replay")] {
            let resp = app.clone().oneshot(call(method, uri)).await.unwrap();
            assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT, "{method} {uri}");
        }
    }
}
