//! Provider checks of the endpoint that come as a GET or HEAD to
//! `/hooks/{source}` rather than as a webhook: Meta's `hub.challenge`, X's
//! CRC, Dropbox's `challenge`, Okta's verification and Trello's HEAD. Each
//! is answered from the source's config; nothing is committed. Any other
//! method, or a GET to a source whose provider sends none, is a 405 naming
//! the methods the source answers.

use std::borrow::Cow;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, Method};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::receive::{Answer, Receipt};
use crate::config::{Registry, Source};
use crate::error::ReceiveError;
use crate::verify::Provider;

/// Longest challenge echoed or signed: providers send a few dozen bytes,
/// and an echo must not become a reflector for large payloads.
pub const MAX_CHALLENGE_BYTES: usize = 1024;

const OKTA_CHALLENGE: HeaderName = HeaderName::from_static("x-okta-verification-challenge");

/// The methods `/hooks/{source}` answers for `provider`, as an `Allow`
/// header lists them.
pub fn allowed_methods(provider: Provider) -> &'static str {
    match provider {
        Provider::Meta | Provider::X | Provider::Dropbox | Provider::Okta => "GET, HEAD, POST",
        Provider::Trello => "HEAD, POST",
        _ => "POST",
    }
}

/// Handle a request to `/hooks/{source}` by any method but POST.
pub async fn challenge(
    registry: &dyn Registry,
    source_id: &str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    now: SystemTime,
) -> Result<Receipt, ReceiveError> {
    let source = registry
        .source(source_id)
        .await?
        .ok_or(ReceiveError::UnknownSource)?;
    let answer = answer_challenge(&source, method, headers, query, now).inspect_err(|e| {
        tracing::info!(source = %source.id, %method, outcome = "rejected", reason = e.code(), "handshake refused");
    })?;
    tracing::info!(source = %source.id, %method, "answered provider handshake");
    Ok(Receipt::Handshake(answer))
}

/// The answer to a GET or HEAD check of `source`. No I/O.
pub fn answer_challenge(
    source: &Source,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    now: SystemTime,
) -> Result<Answer, ReceiveError> {
    let head = method == Method::HEAD;
    let not_allowed = || ReceiveError::MethodNotAllowed {
        allow: allowed_methods(source.provider),
    };
    if !head && method != Method::GET {
        return Err(not_allowed());
    }
    let answer = match source.provider {
        Provider::Meta => meta(source, query)?,
        Provider::X => {
            let token = param(query, "crc_token")?;
            let tag = source.verifier.reply_tag(token.as_bytes()).ok_or_else(|| {
                ReceiveError::SourceUnavailable {
                    reason: "no key to answer the CRC with".to_owned(),
                }
            })?;
            Answer::json(serde_json::json!({
                "response_token": format!("sha256={}", STANDARD.encode(tag)),
            }))
        }
        Provider::Dropbox => Answer::text(param(query, "challenge")?.into_owned()),
        Provider::Okta => {
            // The verification carries the hook's Authorization like every
            // delivery: only Okta, holding it, gets the challenge back.
            source.verifier.verify(headers, b"", now)?;
            let challenge = single_header(headers, &OKTA_CHALLENGE)?;
            Answer::json(serde_json::json!({ "verification": challenge }))
        }
        // Trello checks the callback URL with a HEAD when a webhook is
        // created, and wants a 200.
        Provider::Trello if head => Answer::text(String::new()),
        _ => return Err(not_allowed()),
    };
    Ok(if head { answer.without_body() } else { answer })
}

/// Microsoft Graph validates a subscription with a POST carrying
/// `?validationToken=…` and no notification, answered with the token as
/// text within 10 s. It comes before any check: it carries no
/// `clientState`. `None` for any other request.
pub fn query_handshake(
    source: &Source,
    query: Option<&str>,
) -> Result<Option<Answer>, ReceiveError> {
    const NAME: &str = "validationToken";
    let Some(q) = query.filter(|q| source.provider == Provider::Msgraph && q.contains(NAME)) else {
        return Ok(None);
    };
    if !url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == NAME) {
        return Ok(None);
    }
    Ok(Some(Answer::text(param(Some(q), NAME)?.into_owned())))
}

/// Meta: `hub.mode=subscribe`, and `hub.verify_token` equal to the
/// source's `verify_token` (compared in constant time), get `hub.challenge`
/// back as text.
fn meta(source: &Source, query: Option<&str>) -> Result<Answer, ReceiveError> {
    if param(query, "hub.mode")? != "subscribe" {
        return Err(ReceiveError::BadRequest(
            "query parameter hub.mode must be subscribe".to_owned(),
        ));
    }
    let given = param(query, "hub.verify_token")?;
    let challenge = param(query, "hub.challenge")?;
    let Some(expected) = &source.verify_token else {
        return Err(ReceiveError::HandshakeRefused(
            "this source has no verify_token configured",
        ));
    };
    // Fixed-size digests: the comparison takes the same time whatever the
    // lengths.
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.expose().as_bytes());
    if !bool::from(a.ct_eq(&b)) {
        return Err(ReceiveError::HandshakeRefused(
            "hub.verify_token does not match",
        ));
    }
    Ok(Answer::text(challenge.into_owned()))
}

/// The one value of query parameter `name`: missing, repeated, empty or
/// over [`MAX_CHALLENGE_BYTES`] is a 400.
fn param<'q>(query: Option<&'q str>, name: &str) -> Result<Cow<'q, str>, ReceiveError> {
    let bad = |what: &str| ReceiveError::BadRequest(format!("query parameter {name} {what}"));
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == name {
            if found.is_some() {
                return Err(bad("is sent more than once"));
            }
            found = Some(v);
        }
    }
    let value = found.ok_or_else(|| bad("is missing"))?;
    check_len(&value).map_err(|w| bad(&w))?;
    Ok(value)
}

/// The one value of header `name`, under the same rules as [`param`].
pub(super) fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h str, ReceiveError> {
    let bad = |what: &str| ReceiveError::BadRequest(format!("header {name} {what}"));
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or_else(|| bad("is missing"))?;
    if values.next().is_some() {
        return Err(bad("is sent more than once"));
    }
    let value = value.to_str().map_err(|_| bad("is not readable text"))?;
    check_len(value).map_err(|w| bad(&w))?;
    Ok(value)
}

fn check_len(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    if value.len() > MAX_CHALLENGE_BYTES {
        return Err(format!("is over {MAX_CHALLENGE_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};
    use http::{HeaderMap, HeaderValue, Method};

    use super::*;
    use crate::config::{ConfigFile, StaticRegistry};
    use crate::pipeline::receive::Reply;
    use crate::secrets::EnvSecrets;

    const CONFIG: &str = r#"
[[sources]]
id = "meta"
provider = "meta"
secrets = ["env:APP_SECRET"]
verify_token = "env:META_VERIFY"

[[sources]]
id = "meta-untokened"
provider = "meta"
secrets = ["env:APP_SECRET"]

[[sources]]
id = "x"
provider = "x"
secrets = ["env:X_NEW", "env:X_OLD"]

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
id = "gh"
provider = "github"
secrets = ["env:APP_SECRET"]

[[sources]]
id = "graph"
provider = "msgraph"
secrets = ["env:APP_SECRET"]
"#;

    async fn registry() -> StaticRegistry {
        let secrets = EnvSecrets::from_map(HashMap::from(
            [
                ("APP_SECRET", "app-secret"),
                ("META_VERIFY", "meta-verify-9f2"),
                ("X_NEW", "x-consumer-new"),
                ("X_OLD", "x-consumer-old"),
                ("OKTA_AUTH", "Bearer okta-hook-7d1e"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        ));
        ConfigFile::parse(CONFIG)
            .unwrap()
            .resolve(&secrets)
            .await
            .unwrap()
    }

    async fn ask(
        source: &str,
        method: Method,
        headers: &[(&str, &str)],
        query: &str,
    ) -> Result<Answer, ReceiveError> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let registry = registry().await;
        match challenge(
            &registry,
            source,
            &method,
            &h,
            Some(query),
            SystemTime::now(),
        )
        .await
        {
            Ok(Receipt::Handshake(a)) => Ok(a),
            Ok(other) => panic!("not a handshake: {other:?}"),
            Err(e) => Err(e),
        }
    }

    fn code(r: Result<Answer, ReceiveError>) -> (u16, &'static str) {
        let e = r.unwrap_err();
        (e.status(), e.code())
    }

    const META_OK: &str =
        "hub.mode=subscribe&hub.verify_token=meta-verify-9f2&hub.challenge=1158201444";

    #[tokio::test]
    async fn meta_gets_its_challenge_back_only_with_the_verify_token() {
        let a = ask("meta", Method::GET, &[], META_OK).await.unwrap();
        assert_eq!(a.body, "1158201444");
        assert!(a.content_type.starts_with("text/plain"));
        // Percent-encoded values are decoded, as Meta's form encoding is.
        let a = ask(
            "meta",
            Method::GET,
            &[],
            "hub.mode=subscribe&hub.verify_token=meta%2Dverify%2D9f2&hub.challenge=a%20b",
        )
        .await
        .unwrap();
        assert_eq!(a.body, "a b");
        for query in [
            "hub.mode=subscribe&hub.verify_token=meta-verify-9f3&hub.challenge=1",
            "hub.mode=subscribe&hub.verify_token=meta-verify-9f&hub.challenge=1",
            "hub.mode=subscribe&hub.verify_token=&hub.challenge=1",
        ] {
            let r = ask("meta", Method::GET, &[], query).await;
            match query.contains("verify_token=&") {
                true => assert_eq!(code(r), (400, "bad_request"), "{query}"),
                false => assert_eq!(code(r), (403, "handshake_refused"), "{query}"),
            }
        }
        let r = ask("meta-untokened", Method::GET, &[], META_OK).await;
        assert_eq!(code(r), (403, "handshake_refused"));
    }

    #[tokio::test]
    async fn a_meta_check_missing_or_repeating_a_parameter_is_a_400() {
        for query in [
            "hub.verify_token=meta-verify-9f2&hub.challenge=1",
            "hub.mode=unsubscribe&hub.verify_token=meta-verify-9f2&hub.challenge=1",
            "hub.mode=subscribe&hub.verify_token=meta-verify-9f2",
            "hub.mode=subscribe&hub.challenge=1",
            "hub.mode=subscribe&hub.verify_token=meta-verify-9f2&hub.challenge=1&hub.challenge=2",
        ] {
            let e = ask("meta", Method::GET, &[], query).await.unwrap_err();
            assert_eq!((e.status(), e.code()), (400, "bad_request"), "{query}");
            assert!(e.public_message().contains("hub."), "{e}");
        }
        assert_eq!(
            code(ask("meta", Method::GET, &[], "").await),
            (400, "bad_request")
        );
    }

    #[tokio::test]
    async fn x_crc_is_answered_with_the_current_secrets_hmac() {
        let a = ask("x", Method::GET, &[], "crc_token=crc-abc_123")
            .await
            .unwrap();
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(b"x-consumer-new").unwrap();
        m.update(b"crc-abc_123");
        let expected = format!("sha256={}", STANDARD.encode(m.finalize().into_bytes()));
        let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(body, serde_json::json!({ "response_token": expected }));
        assert_eq!(a.content_type, "application/json");
        assert_eq!(
            code(ask("x", Method::GET, &[], "").await),
            (400, "bad_request")
        );
    }

    #[tokio::test]
    async fn dropbox_gets_its_challenge_echoed_within_a_bound() {
        let a = ask("dropbox", Method::GET, &[], "challenge=dbx-42")
            .await
            .unwrap();
        assert_eq!(a.body, "dbx-42");
        assert!(a.content_type.starts_with("text/plain"));
        let long = format!("challenge={}", "a".repeat(MAX_CHALLENGE_BYTES + 1));
        assert_eq!(
            code(ask("dropbox", Method::GET, &[], &long).await),
            (400, "bad_request")
        );
        let max = format!("challenge={}", "a".repeat(MAX_CHALLENGE_BYTES));
        assert!(ask("dropbox", Method::GET, &[], &max).await.is_ok());
        assert_eq!(
            code(ask("dropbox", Method::GET, &[], "challenge=").await),
            (400, "bad_request")
        );
    }

    #[tokio::test]
    async fn okta_verification_needs_the_hooks_authorization() {
        let auth = ("authorization", "Bearer okta-hook-7d1e");
        let challenge = ("x-okta-verification-challenge", "oktaChallenge-XYZ");
        let a = ask("okta", Method::GET, &[auth, challenge], "")
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&a.body).unwrap(),
            serde_json::json!({ "verification": "oktaChallenge-XYZ" })
        );
        let wrong = ("authorization", "Bearer okta-hook-0000");
        assert_eq!(
            code(ask("okta", Method::GET, &[wrong, challenge], "").await),
            (401, "invalid_signature")
        );
        assert_eq!(
            code(ask("okta", Method::GET, &[challenge], "").await),
            (401, "missing_signature")
        );
        assert_eq!(
            code(ask("okta", Method::GET, &[auth], "").await),
            (400, "bad_request")
        );
        assert_eq!(
            code(ask("okta", Method::GET, &[auth, challenge, challenge], "").await),
            (400, "bad_request")
        );
    }

    #[tokio::test]
    async fn head_runs_the_same_check_and_answers_without_a_body() {
        let a = ask("trello", Method::HEAD, &[], "").await.unwrap();
        assert_eq!(a.body, "");
        let a = ask("meta", Method::HEAD, &[], META_OK).await.unwrap();
        assert_eq!(a.body, "");
        let bad = META_OK.replace("9f2", "9f3");
        assert_eq!(
            code(ask("meta", Method::HEAD, &[], &bad).await),
            (403, "handshake_refused")
        );
    }

    #[tokio::test]
    async fn other_methods_and_sources_without_a_check_are_405_naming_what_is_allowed() {
        for (source, method, allow) in [
            ("gh", Method::GET, "POST"),
            ("gh", Method::HEAD, "POST"),
            ("trello", Method::GET, "HEAD, POST"),
            ("meta", Method::PUT, "GET, HEAD, POST"),
            ("dropbox", Method::DELETE, "GET, HEAD, POST"),
        ] {
            let e = ask(source, method.clone(), &[], META_OK).await.unwrap_err();
            assert_eq!(e.status(), 405, "{source} {method}");
            assert_eq!(e.allow(), Some(allow), "{source} {method}");
            let reply = Reply::from_result(&Err(e), source, "req-1");
            assert_eq!((reply.status, reply.allow), (405, Some(allow)));
        }
        assert_eq!(
            code(ask("nope", Method::GET, &[], "").await),
            (404, "unknown_source")
        );
    }

    #[tokio::test]
    async fn a_graph_validation_token_is_echoed_before_any_check() {
        use crate::pipeline::receive::{Target, verify_and_build};
        let registry = registry().await;
        let graph = registry.source("graph").await.unwrap().unwrap();
        let gh = registry.source("gh").await.unwrap().unwrap();
        let check = |source: &Source, query: &str| {
            verify_and_build(
                source,
                HeaderMap::new(),
                bytes::Bytes::new(),
                Target {
                    query: Some(query),
                    seen_url: &[],
                },
                SystemTime::now(),
            )
        };
        // Graph percent-encodes the token, spaces and colons included.
        let built = check(
            &graph,
            "validationToken=Validation%3a+Testing+client+application+reachability",
        )
        .unwrap();
        let answer = built.handshake.unwrap();
        assert_eq!(
            answer.body,
            "Validation: Testing client application reachability"
        );
        assert!(answer.content_type.starts_with("text/plain"));
        // Twice, empty or too long: a 400, never an echo.
        for query in [
            "validationToken=a&validationToken=b".to_owned(),
            "validationToken=".to_owned(),
            format!("validationToken={}", "a".repeat(MAX_CHALLENGE_BYTES + 1)),
        ] {
            let e = check(&graph, &query).unwrap_err();
            assert_eq!(e.status(), 400, "{query}");
        }
        // Without the parameter a Graph POST is a notification, checked;
        // other providers never answer it.
        let e = check(&graph, "validationTokenX=1").unwrap_err();
        assert_eq!(e.code(), "missing_signature");
        let e = check(&gh, "validationToken=x").unwrap_err();
        assert_eq!(e.code(), "missing_signature");
    }
}
