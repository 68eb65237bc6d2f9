//! Event id and type extraction, per provider.
//!
//! Runs on the hot path after verification. Headers are read first; the
//! JSON body is parsed at most once, and only when the provider needs a
//! body field, into a struct that borrows the few fields it wants (serde
//! skips the rest). Extraction never fails: non-JSON bodies, odd field
//! types and unreadable headers fall back to the body's SHA-256 as the id
//! and an empty type.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use http::{HeaderMap, HeaderName};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::verify::{HmacParams, Provider};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The provider's event id, or the hex SHA-256 of the body.
    pub id: String,
    /// The routing type, e.g. `pull_request.opened`; empty if unknown.
    pub event_type: String,
    /// A reply the provider expects instead of `accepted` (Slack
    /// `url_verification`): a JSON body. Such requests are not committed.
    pub handshake: Option<String>,
}

const GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
const GITHUB_EVENT: HeaderName = HeaderName::from_static("x-github-event");
const SHOPIFY_WEBHOOK_ID: HeaderName = HeaderName::from_static("x-shopify-webhook-id");
const SHOPIFY_EVENT_ID: HeaderName = HeaderName::from_static("x-shopify-event-id");
const SHOPIFY_TOPIC: HeaderName = HeaderName::from_static("x-shopify-topic");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const GITLAB_UUID: HeaderName = HeaderName::from_static("x-gitlab-event-uuid");
const GITLAB_EVENT: HeaderName = HeaderName::from_static("x-gitlab-event");

pub fn extract(
    provider: Provider,
    hmac: Option<&HmacParams>,
    headers: &HeaderMap,
    body: &[u8],
) -> Extracted {
    let (id, event_type, handshake) = match provider {
        Provider::Github => {
            // `pull_request` + body `action` → `pull_request.opened`. The
            // body is parsed only when there is an event name to extend.
            let event_type = match text(headers, &GITHUB_EVENT) {
                None => String::new(),
                Some(e) => match Fields::parse(body) {
                    Some(Fields {
                        action: Str(Some(a)),
                        ..
                    }) => format!("{e}.{a}"),
                    _ => e.to_owned(),
                },
            };
            (owned(text(headers, &GITHUB_DELIVERY)), event_type, None)
        }
        Provider::Stripe => {
            let f = Fields::parse(body).unwrap_or_default();
            (
                f.id.into_owned(),
                f.r#type.into_owned().unwrap_or_default(),
                None,
            )
        }
        Provider::Slack => slack(body),
        Provider::Shopify => {
            let id =
                text(headers, &SHOPIFY_WEBHOOK_ID).or_else(|| text(headers, &SHOPIFY_EVENT_ID));
            (
                owned(id),
                owned(text(headers, &SHOPIFY_TOPIC)).unwrap_or_default(),
                None,
            )
        }
        Provider::StandardWebhooks => {
            let id = text(headers, &WEBHOOK_ID).or_else(|| text(headers, &SVIX_ID));
            (owned(id), body_type(body), None)
        }
        Provider::Gitlab => {
            let id = text(headers, &IDEMPOTENCY_KEY).or_else(|| text(headers, &GITLAB_UUID));
            let kind = Fields::parse(body).and_then(|f| f.object_kind.into_owned());
            let event_type = kind
                .or_else(|| owned(text(headers, &GITLAB_EVENT)))
                .unwrap_or_default();
            (owned(id), event_type, None)
        }
        Provider::Hmac => {
            let named = |name: Option<&String>| {
                name.and_then(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
                    .and_then(|n| owned(text(headers, &n)))
            };
            let id = named(hmac.and_then(|p| p.id_header.as_ref()));
            let event_type = match named(hmac.and_then(|p| p.type_header.as_ref())) {
                Some(t) => t,
                None => body_type(body),
            };
            (id, event_type, None)
        }
    };
    Extracted {
        id: id.unwrap_or_else(|| sha256_hex(body)),
        event_type,
        handshake,
    }
}

pub fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// Slack: Events API JSON, or form-encoded bodies (slash commands,
/// interactivity) that carry no event id.
fn slack(body: &[u8]) -> (Option<String>, String, Option<String>) {
    let Some(f) = Fields::parse(body) else {
        // Form bodies: a `command` param is a slash command, a `payload`
        // param an interactive action; their JSON is not unpacked here.
        let kind = if form_has(body, b"command") {
            "slash_command"
        } else if form_has(body, b"payload") {
            "interactive"
        } else {
            ""
        };
        return (None, kind.to_owned(), None);
    };
    let outer = f.r#type.as_deref().unwrap_or("");
    if outer == "url_verification" {
        let challenge = f.challenge.as_deref().unwrap_or("");
        // serde_json escapes the challenge correctly, whatever it holds.
        let reply = serde_json::json!({ "challenge": challenge }).to_string();
        return (None, outer.to_owned(), Some(reply));
    }
    let event_type = match (outer, f.event.0.as_deref()) {
        ("event_callback", Some(inner)) => inner.to_owned(),
        _ => outer.to_owned(),
    };
    (f.event_id.into_owned(), event_type, None)
}

/// True if the `application/x-www-form-urlencoded` body has param `name`.
fn form_has(body: &[u8], name: &[u8]) -> bool {
    body.split(|&b| b == b'&')
        .any(|pair| pair.split(|&b| b == b'=').next().is_some_and(|k| k == name))
}

fn body_type(body: &[u8]) -> String {
    Fields::parse(body)
        .and_then(|f| f.r#type.into_owned())
        .unwrap_or_default()
}

/// A readable, non-empty header value.
fn text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// The union of body fields any provider needs. Fields absent from the
/// struct are skipped by serde without being materialised.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Fields<'a> {
    #[serde(borrow)]
    id: Str<'a>,
    #[serde(borrow, rename = "type")]
    r#type: Str<'a>,
    #[serde(borrow)]
    action: Str<'a>,
    #[serde(borrow)]
    event_id: Str<'a>,
    #[serde(borrow)]
    challenge: Str<'a>,
    #[serde(borrow)]
    object_kind: Str<'a>,
    /// Slack's inner `event.type`.
    #[serde(borrow)]
    event: EventType<'a>,
}

impl<'a> Fields<'a> {
    /// `None` unless the body is a JSON object. Cheap rejection first, so
    /// form bodies never reach the parser.
    fn parse(body: &'a [u8]) -> Option<Self> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first != b'{' {
            return None;
        }
        serde_json::from_slice(body).ok()
    }
}

/// A string field, or `None` for any other JSON type (which is skipped),
/// so one odd field does not void the whole extraction. Borrows from the
/// body unless the string has escapes.
#[derive(Default)]
struct Str<'a>(Option<Cow<'a, str>>);

impl<'a> Str<'a> {
    fn into_owned(self) -> Option<String> {
        self.0.map(Cow::into_owned)
    }

    fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// The `type` of an object value; `None` for anything else.
#[derive(Default)]
struct EventType<'a>(Str<'a>);

/// Visitor methods that skip any non-string value as `None`.
macro_rules! skip_non_strings {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Str(None))
            }
            skip_non_strings!();
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EventType<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = EventType<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(EventType::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut ty = Str(None);
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    if key.as_deref() == Some("type") {
                        ty = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(EventType(ty))
            }
            skip_non_strings!();
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        crate::verify::tests::headers(pairs)
    }

    fn ex(p: Provider, h: &[(&str, &str)], body: &[u8]) -> Extracted {
        extract(p, None, &headers(h), body)
    }

    #[test]
    fn github_type_gets_the_action_suffix() {
        let body = br#"{"action":"opened","number":1,"pull_request":{"action":"nested"}}"#;
        let h = [
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ];
        let got = ex(Provider::Github, &h, body);
        assert_eq!(got.id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(got.event_type, "pull_request.opened");
        assert_eq!(got.handshake, None);
        let push = ex(
            Provider::Github,
            &[("X-GitHub-Event", "push")],
            br#"{"ref":"refs/heads/main"}"#,
        );
        assert_eq!(push.event_type, "push");
        assert_eq!(push.id, sha256_hex(br#"{"ref":"refs/heads/main"}"#));
        // Non-string action is ignored; a non-JSON body still yields the header type.
        assert_eq!(
            ex(
                Provider::Github,
                &[("X-GitHub-Event", "ping")],
                br#"{"action":5}"#
            )
            .event_type,
            "ping"
        );
        assert_eq!(
            ex(
                Provider::Github,
                &[("X-GitHub-Event", "ping")],
                b"payload=%7B%7D"
            )
            .event_type,
            "ping"
        );
        assert_eq!(ex(Provider::Github, &[], body).event_type, "");
    }

    #[test]
    fn stripe_id_and_type_come_from_the_body() {
        let body = br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","data":{"object":{"id":"ch_1","type":"card"}},"type":"charge.succeeded"}"#;
        let got = ex(Provider::Stripe, &[], body);
        assert_eq!(got.id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
        assert_eq!(got.event_type, "charge.succeeded");
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let got = ex(
            Provider::Stripe,
            &[],
            br#"{"id":"evt_\u0031","type":"a\/b"}"#,
        );
        assert_eq!((got.id.as_str(), got.event_type.as_str()), ("evt_1", "a/b"));
    }

    #[test]
    fn slack_event_callback_uses_the_inner_type() {
        let body = br#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention","text":"hi","blocks":[{"type":"rich_text"}]},"team_id":"T1"}"#;
        let got = ex(Provider::Slack, &[], body);
        assert_eq!(got.id, "Ev08MFMKH6");
        assert_eq!(got.event_type, "app_mention");
        assert_eq!(got.handshake, None);
        let other = ex(
            Provider::Slack,
            &[],
            br#"{"type":"app_rate_limited","event":"x"}"#,
        );
        assert_eq!(other.event_type, "app_rate_limited");
    }

    #[test]
    fn slack_url_verification_is_a_handshake() {
        let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let got = ex(Provider::Slack, &[], body);
        assert_eq!(
            got.handshake.as_deref(),
            Some(r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#)
        );
        assert_eq!(got.event_type, "url_verification");
        // Quotes and control characters in the challenge stay valid JSON.
        let tricky = ex(
            Provider::Slack,
            &[],
            br#"{"type":"url_verification","challenge":"a\"b\\c\n</script>"}"#,
        );
        let reply = tricky.handshake.unwrap();
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(v["challenge"], "a\"b\\c\n</script>");
    }

    #[test]
    fn slack_form_bodies_fall_back() {
        let body = b"token=x&team_id=T1&command=%2Fdeploy&text=now";
        let got = ex(Provider::Slack, &[], body);
        assert_eq!(got.id, sha256_hex(body));
        assert_eq!(got.event_type, "slash_command");
        let interactive = ex(
            Provider::Slack,
            &[],
            b"payload=%7B%22type%22%3A%22block_actions%22%7D",
        );
        assert_eq!(interactive.event_type, "interactive");
        // `command` must be a param name, not a substring of one.
        assert_eq!(
            ex(Provider::Slack, &[], b"subcommand=x&text=command").event_type,
            ""
        );
    }

    #[test]
    fn shopify_uses_headers_only() {
        let h = [
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
            ("X-Shopify-Event-Id", "evt-9"),
            ("X-Shopify-Topic", "orders/create"),
        ];
        let got = ex(Provider::Shopify, &h, br#"{"id":1,"type":"ignored"}"#);
        assert_eq!(got.id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
        assert_eq!(got.event_type, "orders/create");
        let event_only = ex(Provider::Shopify, &[("X-Shopify-Event-Id", "evt-9")], b"{}");
        assert_eq!(event_only.id, "evt-9");
        assert_eq!(event_only.event_type, "");
    }

    #[test]
    fn standard_webhooks_id_from_either_header() {
        let body = br#"{"type":"invoice.paid","data":{"type":"nested"}}"#;
        let got = ex(Provider::StandardWebhooks, &[("webhook-id", "msg_1")], body);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("msg_1", "invoice.paid")
        );
        assert_eq!(
            ex(Provider::StandardWebhooks, &[("svix-id", "msg_2")], body).id,
            "msg_2"
        );
        assert_eq!(
            ex(Provider::StandardWebhooks, &[("webhook-id", "")], body).id,
            sha256_hex(body)
        );
    }

    #[test]
    fn gitlab_prefers_idempotency_key_and_object_kind() {
        let body = br#"{"object_kind":"merge_request","event_type":"merge_request"}"#;
        let h = [
            ("Idempotency-Key", "idem-1"),
            ("X-Gitlab-Event-UUID", "uuid-1"),
            ("X-Gitlab-Event", "Merge Request Hook"),
        ];
        let got = ex(Provider::Gitlab, &h, body);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("idem-1", "merge_request")
        );
        let h = [
            ("X-Gitlab-Event-UUID", "uuid-1"),
            ("X-Gitlab-Event", "System Hook"),
        ];
        let got = ex(Provider::Gitlab, &h, b"not json");
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("uuid-1", "System Hook")
        );
    }

    #[test]
    fn hmac_uses_configured_headers_else_body_type() {
        let params = HmacParams {
            signature_header: "x-sig".into(),
            algorithm: Default::default(),
            encoding: Default::default(),
            prefix: String::new(),
            signed_content: "{body}".into(),
            timestamp_header: None,
            id_header: Some("X-Event-Id".into()),
            type_header: Some("X-Event-Type".into()),
        };
        let body = br#"{"type":"from.body","id":"not-used"}"#;
        let h = headers(&[("x-event-id", "e-1"), ("x-event-type", "from.header")]);
        let got = extract(Provider::Hmac, Some(&params), &h, body);
        assert_eq!(
            (got.id.as_str(), got.event_type.as_str()),
            ("e-1", "from.header")
        );
        let got = extract(Provider::Hmac, Some(&params), &HeaderMap::new(), body);
        assert_eq!(
            (got.id, got.event_type.as_str()),
            (sha256_hex(body), "from.body")
        );
        let got = extract(Provider::Hmac, None, &HeaderMap::new(), body);
        assert_eq!(got.event_type, "from.body");
    }

    #[test]
    fn non_json_and_odd_bodies_never_fail() {
        for body in [
            &b""[..],
            b"\xff\xfe",
            b"[1,2]",
            b"{",
            b"{\"id\":",
            b"null",
            b"  {\"id\": {\"x\": [1]}, \"type\": null}",
            b"{\"id\":\"a\",\"id\":\"b\"}",
        ] {
            for p in [
                Provider::Github,
                Provider::Stripe,
                Provider::Slack,
                Provider::Shopify,
                Provider::StandardWebhooks,
                Provider::Gitlab,
                Provider::Hmac,
            ] {
                let got = ex(p, &[], body);
                assert_eq!(got.id, sha256_hex(body), "{p} {body:?}");
                assert_eq!(got.handshake, None);
            }
        }
        // One odd field does not lose the others.
        let got = ex(
            Provider::Stripe,
            &[],
            br#"{"id":"evt_2","type":{"nested":true}}"#,
        );
        assert_eq!((got.id.as_str(), got.event_type.as_str()), ("evt_2", ""));
    }

    #[test]
    fn unreadable_header_falls_back() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-github-delivery",
            http::HeaderValue::from_bytes(b"\xffid").unwrap(),
        );
        let got = extract(Provider::Github, None, &h, b"{}");
        assert_eq!(got.id, sha256_hex(b"{}"));
    }

    #[test]
    fn sha256_hex_is_the_known_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
