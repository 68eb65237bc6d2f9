//! The most common scheme: a header holding an optional prefix and the hex
//! or base64 HMAC of the raw body, under a shared secret used as its bytes.
//! Some providers also sign a timestamp header, before or after the body;
//! a few send extra signature headers while their keys rotate.
//!
//! Each provider that signs this way is one [`Spec`] below; the verifier is
//! shared. No timestamp signed means no replay window: dedup on the event
//! id covers a provider's retries.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName};

use super::common::{
    MacKeys, Window, decode_base64, decode_hex, header, ok_if, optional_header, parse_unix_digits,
    strip_prefix_ci,
};
use super::{Algorithm, Encoding, Provider, VerifyError};
use crate::secrets::Secret;

/// How a provider signs.
pub(super) struct Spec {
    /// Signature headers, lower case. The first must be sent; the others
    /// are optional extra candidates (a second key during a rotation).
    pub headers: &'static [&'static str],
    /// Text before the encoded tag, matched ignoring ASCII case.
    pub prefix: &'static str,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    pub stamp: Option<Stamp>,
    /// The secret is the key's base64, not the key itself.
    pub base64_key: bool,
}

/// A signed timestamp header.
pub(super) struct Stamp {
    pub header: &'static str,
    pub format: StampFormat,
    pub order: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StampFormat {
    UnixMillis,
    Rfc3339,
}

/// Where the timestamp goes in the signed bytes.
pub(super) enum Order {
    /// `{timestamp}{joiner}{body}`
    Before(&'static [u8]),
    /// `{body}{timestamp}`
    After,
}

const fn body_only(
    headers: &'static [&'static str],
    prefix: &'static str,
    algorithm: Algorithm,
    encoding: Encoding,
) -> Spec {
    Spec {
        headers,
        prefix,
        algorithm,
        encoding,
        stamp: None,
        base64_key: false,
    }
}

use Algorithm::{Sha1, Sha256};
use Encoding::{Base64, Hex};

/// Shopify: base64 of the body's HMAC-SHA256. During a secret rotation
/// Shopify may sign with the old secret for up to an hour: configure both.
static SHOPIFY: Spec = body_only(&["x-shopify-hmac-sha256"], "", Sha256, Base64);
/// Intercom: `sha1=` and hex, under the app's client secret.
static INTERCOM: Spec = body_only(&["x-hub-signature"], "sha1=", Sha1, Hex);
/// Typeform: `sha256=` and base64.
static TYPEFORM: Spec = body_only(&["typeform-signature"], "sha256=", Sha256, Base64);
/// Bitbucket Cloud and Data Center: GitHub's header and format.
static BITBUCKET: Spec = body_only(&["x-hub-signature"], "sha256=", Sha256, Hex);
/// Jira (Atlassian webhooks with a secret): `sha256=` and hex.
static JIRA: Spec = body_only(&["x-hub-signature"], "sha256=", Sha256, Hex);
/// Meta (Facebook, Instagram, WhatsApp Cloud): the app secret.
static META: Spec = body_only(&["x-hub-signature-256"], "sha256=", Sha256, Hex);
/// X Account Activity: `sha256=` and base64, under the consumer secret.
static X: Spec = body_only(&["x-twitter-webhooks-signature"], "sha256=", Sha256, Base64);
/// Dropbox: hex, under the app secret.
static DROPBOX: Spec = body_only(&["x-dropbox-signature"], "", Sha256, Hex);
/// Asana: hex, under the secret its `X-Hook-Secret` handshake sent.
static ASANA: Spec = body_only(&["x-hook-signature"], "", Sha256, Hex);
/// Coinbase Commerce: hex, under the endpoint's shared secret.
static COINBASE_COMMERCE: Spec = body_only(&["x-cc-webhook-signature"], "", Sha256, Hex);
/// GoCardless: hex, under the endpoint's secret.
static GOCARDLESS: Spec = body_only(&["webhook-signature"], "", Sha256, Hex);
/// Lemon Squeezy: hex, under the webhook's signing secret.
static LEMON_SQUEEZY: Spec = body_only(&["x-signature"], "", Sha256, Hex);
/// WooCommerce: base64, under the webhook's secret.
static WOOCOMMERCE: Spec = body_only(&["x-wc-webhook-signature"], "", Sha256, Base64);
/// DocuSign Connect: base64 under each HMAC key, one numbered header per
/// key; the first two are read.
static DOCUSIGN: Spec = body_only(
    &["x-docusign-signature-1", "x-docusign-signature-2"],
    "",
    Sha256,
    Base64,
);
/// Segment: hex HMAC-SHA1, under the destination's shared secret.
static SEGMENT: Spec = body_only(&["x-signature"], "", Sha1, Hex);
/// Sentry integrations: hex, under the integration's client secret.
static SENTRY: Spec = body_only(&["sentry-hook-signature"], "", Sha256, Hex);
/// Vercel: hex HMAC-SHA1, under the integration's client secret or the
/// webhook's secret.
static VERCEL: Spec = body_only(&["x-vercel-signature"], "", Sha1, Hex);
/// Microsoft Teams outgoing webhooks: `Authorization: HMAC <base64>`,
/// under the base64-decoded security token Teams shows once.
static TEAMS: Spec = Spec {
    base64_key: true,
    ..body_only(&["authorization"], "HMAC ", Sha256, Base64)
};
/// Webflow: hex of `{timestamp}:{body}`; the timestamp is in milliseconds.
static WEBFLOW: Spec = Spec {
    stamp: Some(Stamp {
        header: "x-webflow-timestamp",
        format: StampFormat::UnixMillis,
        order: Order::Before(b":"),
    }),
    ..body_only(&["x-webflow-signature"], "", Sha256, Hex)
};
/// Zendesk: base64 of `{timestamp}{body}`, the timestamp in RFC 3339.
static ZENDESK: Spec = Spec {
    stamp: Some(Stamp {
        header: "x-zendesk-webhook-signature-timestamp",
        format: StampFormat::Rfc3339,
        order: Order::Before(b""),
    }),
    ..body_only(&["x-zendesk-webhook-signature"], "", Sha256, Base64)
};
/// Box: base64 of `{body}{timestamp}`, under the primary key in one header
/// and the secondary key in the other; either passes.
static BOX: Spec = Spec {
    stamp: Some(Stamp {
        header: "box-delivery-timestamp",
        format: StampFormat::Rfc3339,
        order: Order::After,
    }),
    ..body_only(
        &["box-signature-primary", "box-signature-secondary"],
        "",
        Sha256,
        Base64,
    )
};

/// The spec of a provider that signs this way.
pub(super) fn spec(provider: Provider) -> Option<&'static Spec> {
    Some(match provider {
        Provider::Shopify => &SHOPIFY,
        Provider::Intercom => &INTERCOM,
        Provider::Typeform => &TYPEFORM,
        Provider::Bitbucket => &BITBUCKET,
        Provider::Jira => &JIRA,
        Provider::Meta => &META,
        Provider::X => &X,
        Provider::Dropbox => &DROPBOX,
        Provider::Asana => &ASANA,
        Provider::CoinbaseCommerce => &COINBASE_COMMERCE,
        Provider::Gocardless => &GOCARDLESS,
        Provider::LemonSqueezy => &LEMON_SQUEEZY,
        Provider::Woocommerce => &WOOCOMMERCE,
        Provider::Docusign => &DOCUSIGN,
        Provider::Segment => &SEGMENT,
        Provider::Sentry => &SENTRY,
        Provider::Vercel => &VERCEL,
        Provider::Webflow => &WEBFLOW,
        Provider::Zendesk => &ZENDESK,
        Provider::Box => &BOX,
        Provider::Teams => &TEAMS,
        _ => return None,
    })
}

/// Most signature headers a spec lists.
const MAX_HEADERS: usize = 2;

pub(super) struct HeaderHmac {
    spec: &'static Spec,
    headers: Box<[HeaderName]>,
    /// The signed timestamp's header, when the spec has one.
    stamp: Option<HeaderName>,
    /// Checked when set. A provider may sign a timestamp yet document no
    /// window: then only a configured one applies.
    window: Option<Window>,
    keys: MacKeys,
}

impl HeaderHmac {
    pub(super) fn new(
        spec: &'static Spec,
        secrets: &[Secret],
        window: Option<Window>,
    ) -> Result<Self, String> {
        let name = |h: &str| {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| format!("bad header name {h:?}"))
        };
        if spec.headers.is_empty() || spec.headers.len() > MAX_HEADERS {
            return Err("a spec names one or two signature headers".to_owned());
        }
        let stamp = spec.stamp.as_ref().map(|s| name(s.header)).transpose()?;
        Ok(Self {
            spec,
            headers: spec
                .headers
                .iter()
                .map(|h| name(h))
                .collect::<Result<_, _>>()?,
            window: window.filter(|_| stamp.is_some()),
            stamp,
            keys: if spec.base64_key {
                MacKeys::from_base64(spec.algorithm, secrets)?
            } else {
                MacKeys::new(spec.algorithm, secrets)?
            },
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The current (first) secret's HMAC of `message` (X's CRC answer).
    pub(super) fn reply_tag(&self, message: &[u8]) -> Option<Vec<u8>> {
        self.keys.first_tag(&[message])
    }

    pub(super) fn window(&self) -> Option<Window> {
        self.window
    }

    pub(super) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let tag_len = self.keys.tag_len();
        let mut bufs = [[0u8; 64]; MAX_HEADERS];
        let mut found = 0;
        for (i, name) in self.headers.iter().enumerate() {
            let value = if i == 0 {
                header(headers, name)?
            } else {
                match optional_header(headers, name)? {
                    Some(v) => v,
                    None => continue,
                }
            };
            let encoded =
                strip_prefix_ci(value, self.spec.prefix).ok_or(VerifyError::MalformedSignature)?;
            let out = &mut bufs[found][..tag_len];
            let decoded = match self.spec.encoding {
                Encoding::Hex => decode_hex(encoded, out),
                Encoding::Base64 => decode_base64(encoded, out),
            };
            if !decoded {
                return Err(VerifyError::MalformedSignature);
            }
            found += 1;
        }
        let sigs: [&[u8]; MAX_HEADERS] = [&bufs[0][..tag_len], &bufs[1][..tag_len]];
        let sigs = &sigs[..found];
        let (Some(stamp), Some(spec)) = (&self.stamp, &self.spec.stamp) else {
            return ok_if(self.keys.matches_any(&[body], sigs));
        };
        let ts = header(headers, stamp)?;
        if let Some(window) = &self.window {
            match spec.format {
                StampFormat::UnixMillis => {
                    let ms = parse_unix_digits(ts, 15).ok_or(VerifyError::MalformedTimestamp)?;
                    window.check_ms(ms, now)?;
                }
                StampFormat::Rfc3339 => window.check_rfc3339(ts, now)?,
            }
        }
        let parts: [&[u8]; 3] = match spec.order {
            Order::Before(joiner) => [ts.as_bytes(), joiner, body],
            Order::After => [body, ts.as_bytes(), &[]],
        };
        ok_if(self.keys.matches_any(&parts, sigs))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use base64::Engine as _;
    use hmac::{Hmac, Mac};

    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, at};

    const SECRET: &str = "endpoint-secret-1f0c";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"thing.happened"}"#;
    const T: u64 = 1_700_000_000;

    /// How each body-only preset signs, written out here rather than read
    /// from its spec: header, prefix, SHA-1 (else SHA-256), base64 (else hex).
    const BODY_ONLY: &[(Provider, &str, &str, bool, bool)] = &[
        (
            Provider::Bitbucket,
            "X-Hub-Signature",
            "sha256=",
            false,
            false,
        ),
        (Provider::Jira, "X-Hub-Signature", "sha256=", false, false),
        (
            Provider::Meta,
            "X-Hub-Signature-256",
            "sha256=",
            false,
            false,
        ),
        (
            Provider::X,
            "X-Twitter-Webhooks-Signature",
            "sha256=",
            false,
            true,
        ),
        (Provider::Dropbox, "X-Dropbox-Signature", "", false, false),
        (Provider::Asana, "X-Hook-Signature", "", false, false),
        (
            Provider::CoinbaseCommerce,
            "X-CC-Webhook-Signature",
            "",
            false,
            false,
        ),
        (Provider::Gocardless, "Webhook-Signature", "", false, false),
        (Provider::LemonSqueezy, "X-Signature", "", false, false),
        (
            Provider::Woocommerce,
            "X-WC-Webhook-Signature",
            "",
            false,
            true,
        ),
        (
            Provider::Docusign,
            "X-DocuSign-Signature-1",
            "",
            false,
            true,
        ),
        (Provider::Segment, "X-Signature", "", true, false),
        (Provider::Sentry, "Sentry-Hook-Signature", "", false, false),
        (Provider::Vercel, "x-vercel-signature", "", true, false),
    ];

    fn tag(sha1: bool, secret: &str, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        if sha1 {
            run::<Hmac<sha1::Sha1>>(secret.as_bytes(), parts)
        } else {
            run::<Hmac<sha2::Sha256>>(secret.as_bytes(), parts)
        }
    }

    fn encode(b64: bool, tag: &[u8]) -> String {
        if b64 {
            base64::engine::general_purpose::STANDARD.encode(tag)
        } else {
            hex::encode(tag)
        }
    }

    #[test]
    fn every_body_only_preset_passes_its_signature_and_nothing_else() {
        for &(p, name, prefix, sha1, b64) in BODY_ONLY {
            let good = format!("{prefix}{}", encode(b64, &tag(sha1, SECRET, &[BODY])));
            let case = |secrets: &[&str], value: &str, body: &[u8]| {
                Case::new(p, secrets).header(name, value).body(body)
            };
            case(&[SECRET], &good, BODY).passes();
            // Rotation: any active secret.
            case(&["the-new-secret", SECRET], &good, BODY).passes();
            case(&["the-new-secret"], &good, BODY).fails(InvalidSignature);
            // Tampered body, another body's tag.
            case(&[SECRET], &good, b"{}").fails(InvalidSignature);
            let other = format!("{prefix}{}", encode(b64, &tag(sha1, SECRET, &[b"{}"])));
            case(&[SECRET], &other, BODY).fails(InvalidSignature);
            // The other algorithm's tag has the wrong length.
            let wrong_alg = format!("{prefix}{}", encode(b64, &tag(!sha1, SECRET, &[BODY])));
            case(&[SECRET], &wrong_alg, BODY).fails(MalformedSignature);
            // The other encoding, a truncated tag, junk.
            let wrong_enc = format!("{prefix}{}", encode(!b64, &tag(sha1, SECRET, &[BODY])));
            case(&[SECRET], &wrong_enc, BODY).fails(MalformedSignature);
            case(&[SECRET], &good[..good.len() - 2], BODY).fails(MalformedSignature);
            case(&[SECRET], "", BODY).fails(MalformedSignature);
            if !prefix.is_empty() {
                case(&[SECRET], &good[prefix.len()..], BODY).fails(MalformedSignature);
            }
            Case::new(p, &[SECRET])
                .body(BODY)
                .fails(MissingHeader(name.to_ascii_lowercase()));
        }
    }

    #[test]
    fn docusign_and_box_accept_the_second_key_in_the_second_header() {
        let other = encode(true, &tag(false, "other-key", &[BODY]));
        let good = encode(true, &tag(false, SECRET, &[BODY]));
        let docusign = |first: &str, second: &str| {
            Case::new(Provider::Docusign, &[SECRET])
                .header("X-DocuSign-Signature-1", first)
                .header("X-DocuSign-Signature-2", second)
                .body(BODY)
        };
        docusign(&other, &good).passes();
        docusign(&good, &other).passes();
        docusign(&other, &other).fails(InvalidSignature);
        docusign(&other, "junk!").fails(MalformedSignature);
        // The second header alone is not enough: the first is required.
        Case::new(Provider::Docusign, &[SECRET])
            .header("X-DocuSign-Signature-2", &good)
            .body(BODY)
            .fails(MissingHeader("x-docusign-signature-1".into()));

        let ts = "2023-11-14T22:13:20Z";
        let primary = encode(true, &tag(false, "other-key", &[BODY, ts.as_bytes()]));
        let secondary = encode(true, &tag(false, SECRET, &[BODY, ts.as_bytes()]));
        Case::new(Provider::Box, &[SECRET])
            .header("box-signature-primary", &primary)
            .header("box-signature-secondary", &secondary)
            .header("box-delivery-timestamp", ts)
            .body(BODY)
            .now(at(T))
            .passes();
    }

    fn rfc3339(secs: u64) -> String {
        humantime::format_rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
    }

    #[test]
    fn webflow_signs_milliseconds_before_the_body_and_refuses_old_ones() {
        let case = |ms: &str, sig: &str, now: u64| {
            Case::new(Provider::Webflow, &[SECRET])
                .header("x-webflow-timestamp", ms)
                .header("x-webflow-signature", sig)
                .body(BODY)
                .now(at(now))
        };
        let ms = format!("{T}000");
        let good = hex::encode(tag(false, SECRET, &[ms.as_bytes(), b":", BODY]));
        case(&ms, &good, T).passes();
        case(&ms, &good, T + 300).passes();
        case(&ms, &good, T + 301).fails(TimestampOutOfWindow);
        // Old only: a sender's clock ahead of ours is no replay.
        case(&ms, &good, T - 3600).passes();
        case(&format!("{T}001"), &good, T).fails(InvalidSignature);
        case(&T.to_string(), &good, T).fails(TimestampOutOfWindow);
        case("soon", &good, T).fails(MalformedTimestamp);
        case("-1", &good, T).fails(MalformedTimestamp);
        Case::new(Provider::Webflow, &[SECRET])
            .header("x-webflow-signature", &good)
            .body(BODY)
            .fails(MissingHeader("x-webflow-timestamp".into()));
    }

    #[test]
    fn zendesk_signs_the_timestamp_and_checks_it_only_when_configured() {
        let ts = rfc3339(T);
        let good = encode(true, &tag(false, SECRET, &[ts.as_bytes(), BODY]));
        let case = |ts: &str, sig: &str, now: u64| {
            Case::new(Provider::Zendesk, &[SECRET])
                .header("X-Zendesk-Webhook-Signature-Timestamp", ts)
                .header("X-Zendesk-Webhook-Signature", sig)
                .body(BODY)
                .now(at(now))
        };
        case(&ts, &good, T).passes();
        // Zendesk documents no window: a day-old delivery passes…
        case(&ts, &good, T + 86_400).passes();
        // …unless a tolerance is configured, and then in both directions.
        let tolerance = Duration::from_secs(300);
        case(&ts, &good, T + 301)
            .tolerance(tolerance)
            .fails(TimestampOutOfWindow);
        case(&ts, &good, T - 301)
            .tolerance(tolerance)
            .fails(TimestampOutOfWindow);
        case(&ts, &good, T + 299).tolerance(tolerance).passes();
        case(&rfc3339(T + 1), &good, T).fails(InvalidSignature);
        case("yesterday", &good, T)
            .tolerance(tolerance)
            .fails(MalformedTimestamp);
    }

    #[test]
    fn box_signs_the_timestamp_after_the_body_for_ten_minutes() {
        let case = |ts: &str, sig: &str, now: u64| {
            Case::new(Provider::Box, &[SECRET])
                .header("box-delivery-timestamp", ts)
                .header("box-signature-primary", sig)
                .body(BODY)
                .now(at(now))
        };
        let ts = rfc3339(T);
        let good = encode(true, &tag(false, SECRET, &[BODY, ts.as_bytes()]));
        case(&ts, &good, T).passes();
        case(&ts, &good, T + 600).passes();
        case(&ts, &good, T + 601).fails(TimestampOutOfWindow);
        case(&ts, &good, T - 3600).passes();
        // An offset instead of `Z` names the same instant.
        let offset = "2023-11-14T14:13:20-08:00";
        let signed = encode(true, &tag(false, SECRET, &[BODY, offset.as_bytes()]));
        case(offset, &signed, T + 600).passes();
        case(offset, &signed, T + 601).fails(TimestampOutOfWindow);
        // The timestamp goes after the body, not before.
        let before = encode(true, &tag(false, SECRET, &[ts.as_bytes(), BODY]));
        case(&ts, &before, T).fails(InvalidSignature);
        case("2023-13-01T00:00:00Z", &good, T).fails(MalformedTimestamp);
    }
}
