//! RECEIVE: resolve the source, check size and signature, extract the event
//! id and type, and commit. The commit is the only durable write.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{Registry, Source};
use crate::error::ReceiveError;
use crate::extract::{Extracted, Handshake, extract, per_request_id};
use crate::model::{Event, Headers};
use crate::store::{Commit, EventStore};
use crate::time::to_ms;

/// Headers that carry credentials whatever the provider: never stored,
/// never logged. A preset's own (GitLab's and Telegram's tokens) come from
/// its verifier (`Verifier::secret_header`).
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Longest event id accepted: it becomes part of the dedup key.
pub const MAX_EVENT_ID_BYTES: usize = 256;

/// What the provider is told when the request is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    Accepted {
        id: String,
        /// The body the provider needs instead of the usual one (a Discord
        /// interaction's deferral).
        ack: Option<&'static str>,
    },
    Duplicate {
        id: String,
        ack: Option<&'static str>,
    },
    /// A provider's check of the endpoint, answered; nothing is committed.
    Handshake(Answer),
}

/// The answer to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub body: String,
    pub content_type: &'static str,
    /// A header the provider needs back (Asana's `X-Hook-Secret`); its
    /// value is marked sensitive.
    pub echo: Option<(HeaderName, HeaderValue)>,
}

const JSON: &str = "application/json";

impl Answer {
    pub(crate) fn json(body: serde_json::Value) -> Self {
        Self {
            body: body.to_string(),
            content_type: JSON,
            echo: None,
        }
    }

    pub(crate) fn text(body: String) -> Self {
        Self {
            body,
            content_type: "text/plain; charset=utf-8",
            echo: None,
        }
    }

    /// No body, and header `name` sent back with `value`.
    pub(crate) fn echo(name: HeaderName, value: HeaderValue) -> Self {
        Self {
            echo: Some((name, value)),
            ..Self::text(String::new())
        }
    }

    /// The answer to a HEAD: its headers without the body.
    pub(crate) fn without_body(self) -> Self {
        Self {
            body: String::new(),
            ..self
        }
    }

    /// What `source` answers to `handshake`: Zoom's needs the secret.
    fn to(source: &Source, handshake: Handshake) -> Self {
        match handshake {
            Handshake::Json(body) => Self {
                body,
                content_type: JSON,
                echo: None,
            },
            Handshake::Text(body) => Self::text(body),
            Handshake::Zoom { plain_token } => {
                let token = source
                    .verifier
                    .reply_tag(plain_token.as_bytes())
                    .map(hex::encode)
                    .unwrap_or_default();
                Self::json(
                    serde_json::json!({ "plainToken": plain_token, "encryptedToken": token }),
                )
            }
        }
    }
}

impl Receipt {
    /// Its name in the metrics of both backends (an EMF metric on AWS, the
    /// `outcome` label of `sluice_received_total` on one machine).
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::Duplicate { .. } => "duplicates",
            Self::Handshake(_) => "handshakes",
        }
    }
}

/// The metric name of a refused request answered with `status`: a 503 is
/// `unavailable` (the provider retries it), anything else `rejected`
/// (with the error code as its reason).
pub fn refusal_outcome(status: u16) -> &'static str {
    if status == 503 {
        "unavailable"
    } else {
        "rejected"
    }
}

/// An HTTP answer, independent of the server framework.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
    /// See [`Answer::echo`].
    pub echo: Option<(HeaderName, HeaderValue)>,
}

impl Reply {
    /// The answer to a request to `source` whose id is `request_id`. An
    /// internal failure is logged here, with its detail and the request
    /// id; the client gets the code, a fixed message and the id.
    pub fn from_result(
        result: &Result<Receipt, ReceiveError>,
        source: &str,
        request_id: &str,
    ) -> Self {
        match result {
            Ok(
                Receipt::Accepted { ack: Some(ack), .. }
                | Receipt::Duplicate { ack: Some(ack), .. },
            ) => Self::ok((*ack).to_owned()),
            Ok(Receipt::Accepted { id, ack: None }) => {
                Self::ok(serde_json::json!({ "status": "accepted", "id": id }).to_string())
            }
            Ok(Receipt::Duplicate { id, ack: None }) => {
                Self::ok(serde_json::json!({ "status": "duplicate", "id": id }).to_string())
            }
            Ok(Receipt::Handshake(answer)) => Self {
                status: 200,
                body: answer.body.clone(),
                content_type: answer.content_type,
                allow: None,
                echo: answer.echo.clone(),
            },
            Err(e) => {
                e.log_internal(source, request_id);
                Self {
                    status: e.status(),
                    body: e.body(request_id),
                    content_type: JSON,
                    allow: e.allow(),
                    echo: None,
                }
            }
        }
    }

    fn ok(body: String) -> Self {
        Self {
            status: 200,
            body,
            content_type: JSON,
            allow: None,
            echo: None,
        }
    }
}

/// Where a request was sent, as far as the adapter knows: what the schemes
/// that sign the URL check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The raw query string, without `?`; `None` or empty if there was none.
    pub query: Option<&'a str>,
    /// The URL (scheme, host, path) the adapter saw the request at, in
    /// pieces joined only for the sources that need it (API Gateway's
    /// `https://`, domain and path): no copy on the common path. Empty on
    /// `sluice serve`, which does not trust `Host`. A source's
    /// `public_url` takes precedence.
    pub seen_url: &'a [&'a str],
}

impl Target<'_> {
    /// The URL the provider called, query included: `public_url`, else the
    /// one seen, with the request's query appended.
    fn url(&self, public_url: Option<&str>) -> Option<String> {
        let mut url = match public_url {
            Some(u) => u.to_owned(),
            None if self.seen_url.is_empty() => return None,
            None => self.seen_url.concat(),
        };
        if let Some(q) = self.query.filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(q);
        }
        Some(url)
    }
}

/// Handle `POST /hooks/{source}`. `body` is the raw bytes as received; the
/// request's headers move into the event (no copy).
pub async fn receive(
    registry: &dyn Registry,
    store: &dyn EventStore,
    source_id: &str,
    headers: HeaderMap,
    body: Bytes,
    target: Target<'_>,
    now: SystemTime,
) -> Result<Receipt, ReceiveError> {
    let source = registry
        .source(source_id)
        .await?
        .ok_or(ReceiveError::UnknownSource)?;
    if let Some(answer) =
        super::secret_handshake::answer_secret_handshake(registry, &source, &headers).await?
    {
        return Ok(Receipt::Handshake(answer));
    }
    let Built {
        event,
        handshake,
        ack,
    } = verify_and_build(&source, headers, body, target, now)?;
    if let Some(reply) = handshake {
        tracing::info!(source = %source.id, "answered provider handshake");
        return Ok(Receipt::Handshake(reply));
    }
    match store.commit(&event).await? {
        Commit::Accepted => {
            tracing::info!(source = %event.source, event_id = %event.id, event_type = %event.event_type, outcome = "accepted", "event committed");
            Ok(Receipt::Accepted { id: event.id, ack })
        }
        Commit::Duplicate { body_hash } => {
            let mismatch = body_hash.as_deref().is_some_and(|h| h != event.body_hash);
            if mismatch {
                tracing::warn!(source = %event.source, event_id = %event.id, outcome = "duplicate", body_mismatch = true, "duplicate event id with a different body");
            } else {
                tracing::info!(source = %event.source, event_id = %event.id, outcome = "duplicate", "duplicate dropped");
            }
            Ok(Receipt::Duplicate { id: event.id, ack })
        }
    }
}

/// A verified request: the event to commit, or a handshake to answer.
#[derive(Debug)]
pub struct Built {
    pub event: Event,
    /// A provider's check of the endpoint: answer it, commit nothing.
    pub handshake: Option<Answer>,
    /// What to answer when the event is committed, if the provider needs
    /// something other than sluice's receipt.
    pub ack: Option<&'static str>,
}

/// The pure part of receive: limit, verify, extract, build the record. No
/// I/O, so it is what the `receive_path` bench measures.
pub fn verify_and_build(
    source: &Source,
    headers: HeaderMap,
    body: Bytes,
    target: Target<'_>,
    now: SystemTime,
) -> Result<Built, ReceiveError> {
    if body.len() > source.max_body_bytes {
        return Err(ReceiveError::BodyTooLarge {
            size: body.len(),
            limit: source.max_body_bytes,
        });
    }
    // Microsoft Graph's subscription validation: answered, nothing else.
    if let Some(answer) = super::challenge::query_handshake(source, target.query)? {
        tracing::info!(source = %source.id, "answered provider handshake");
        return Ok(Built {
            event: build_event(source, String::new(), String::new(), headers, body, now),
            handshake: Some(answer),
            ack: None,
        });
    }
    // Built only for the schemes that sign it: the others never look.
    let url = source
        .provider
        .signs_url()
        .then(|| target.url(source.public_url.as_deref()))
        .flatten();
    if let Err(e) =
        source
            .verifier
            .verify_request(&headers, &body, url.as_deref(), target.query, now)
    {
        tracing::info!(source = %source.id, outcome = "rejected", reason = e.code(), "webhook rejected");
        return Err(e.into());
    }
    let Extracted {
        id,
        per_request,
        event_type,
        handshake,
        ack,
    } = extract(source.provider, source.hmac.as_ref(), &headers, &body).inspect_err(|e| {
        tracing::info!(source = %source.id, outcome = "rejected", reason = "malformed_header", error = %e, "webhook rejected");
    })?;
    if id.len() > MAX_EVENT_ID_BYTES {
        return Err(ReceiveError::BadRequest(format!(
            "event id is {} bytes, over the limit of {MAX_EVENT_ID_BYTES}",
            id.len()
        )));
    }
    let id = if per_request { per_request_id() } else { id };
    let event = build_event(source, id, event_type, headers, body, now);
    Ok(Built {
        event,
        handshake: handshake.map(|h| Answer::to(source, h)),
        ack,
    })
}

/// The record of a request to `source`.
fn build_event(
    source: &Source,
    id: String,
    event_type: String,
    headers: HeaderMap,
    body: Bytes,
    now: SystemTime,
) -> Event {
    let received_at_ms = to_ms(now);
    Event {
        source: source.id.clone(),
        id,
        event_type,
        received_at_ms,
        expires_at: received_at_ms / 1000 + source.dedupe_window.as_secs() as i64,
        body_hash: body_fingerprint(&body),
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: kept_headers(headers, source.verifier.secret_header()),
        body,
    }
}

/// A cheap fingerprint of the body. It only flags a duplicate id whose body
/// differs; the signature check already authenticated the bytes.
pub fn body_fingerprint(body: &[u8]) -> String {
    let digest = xxhash_rust::xxh3::xxh3_128(body).to_be_bytes();
    // Into a buffer first: `hex::encode` builds its String one char at a
    // time. 16 bytes fill the 32 digits exactly and hex digits are ASCII,
    // so neither step can fail.
    let mut text = [0u8; 32];
    let _ = hex::encode_to_slice(digest, &mut text);
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

fn kept_headers(mut headers: HeaderMap, secret: Option<&HeaderName>) -> Headers {
    let credentials = || {
        CREDENTIAL_HEADERS
            .iter()
            .copied()
            .chain(secret.map(HeaderName::as_str))
    };
    // Usually none is present: one pass over the few names the request
    // has costs less than a hashed removal per credential header.
    if headers
        .keys()
        .any(|k| credentials().any(|c| c == k.as_str()))
    {
        for name in credentials() {
            headers.remove(name);
        }
    }
    Headers(headers)
}

#[cfg(test)]
mod tests {
    use super::body_fingerprint;

    #[test]
    fn the_fingerprint_is_the_hex_xxh3_128_of_the_body() {
        for body in [&b""[..], b"{}", &[0xff; 3000]] {
            let expected = hex::encode(xxhash_rust::xxh3::xxh3_128(body).to_be_bytes());
            assert_eq!(body_fingerprint(body), expected);
        }
        assert_ne!(body_fingerprint(b"a"), body_fingerprint(b"b"));
    }

    /// `public_url` wins over the URL the adapter saw; the pieces seen are
    /// joined; the request's query is appended; nothing known is `None`.
    #[test]
    fn the_signed_url_is_the_public_url_else_the_one_seen_with_the_query() {
        let seen = ["https://", "abc.execute-api.example.com", "/hooks/sq"];
        let t = |query, seen_url| super::Target { query, seen_url };
        assert_eq!(
            t(Some("a=1"), &seen).url(None).as_deref(),
            Some("https://abc.execute-api.example.com/hooks/sq?a=1")
        );
        assert_eq!(
            t(Some(""), &seen).url(None).as_deref(),
            Some("https://abc.execute-api.example.com/hooks/sq")
        );
        assert_eq!(
            t(Some("a=1"), &seen)
                .url(Some("https://hooks.example.com/base/hooks/sq"))
                .as_deref(),
            Some("https://hooks.example.com/base/hooks/sq?a=1")
        );
        assert_eq!(
            t(None, &[])
                .url(Some("http://127.0.0.1:8080/hooks/sq"))
                .as_deref(),
            Some("http://127.0.0.1:8080/hooks/sq")
        );
        assert_eq!(t(Some("a=1"), &[]).url(None), None);
    }
}
