//! Property tests over the public verification API: no header set, body or
//! URL makes a verifier, a signature-header parser or the event id/type
//! extraction panic, and random requests are never accepted. The signed
//! counterpart (a correct request still verifies with unrelated headers
//! added) is in `verify/mod.rs`'s tests, beside the test signer.
//!
//! 256 cases per provider and property, with failure files off, so the
//! file runs in seconds in a debug build.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRunner};
use sluice::extract::extract;
use sluice::secrets::Secret;
use sluice::verify::{
    Algorithm, Encoding, GenericParams, HmacParams, JwtParams, Provider, TokenParams, Verifier,
    VerifyError, parse,
};

const NOW: u64 = 1_700_000_000;

/// Valid base64 after `whsec_`: every symmetric preset keys with it.
const SECRET: &str = "whsec_c2VjcmV0LWZvci1ldmVyeS1wcmVzZXQ=";

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        // ChaCha, the default, was most of the run time in a debug build.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    }
}

/// A plausible secret: a public key for the asymmetric presets.
fn secret_for(p: Provider) -> String {
    match p {
        Provider::Discord => {
            let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
            hex::encode(key.verifying_key().to_bytes())
        }
        Provider::Sendgrid => {
            // Base64 SPKI DER, as SendGrid shows it: the fixed header of a
            // P-256 key, then the uncompressed point.
            let key =
                p256::ecdsa::SigningKey::from_bytes(&[9; 32].into()).expect("a valid P-256 scalar");
            let mut der =
                hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").expect("hex");
            der.extend_from_slice(key.verifying_key().to_encoded_point(false).as_bytes());
            STANDARD.encode(der)
        }
        Provider::Basic => format!("sluice:{SECRET}"),
        // Teams' security token is base64.
        Provider::Teams => SECRET.trim_start_matches("whsec_").to_owned(),
        _ => SECRET.to_owned(),
    }
}

/// The generic scheme with every part in use: timestamp, id, prefix.
fn hmac_params(algorithm: Algorithm, encoding: Encoding) -> HmacParams {
    HmacParams {
        signature_header: "x-sig".into(),
        algorithm,
        encoding,
        prefix: "v1=".into(),
        signed_content: "{timestamp}.{id}.{body}".into(),
        timestamp_header: Some("x-ts".into()),
        id_header: Some("x-id".into()),
        type_header: Some("x-type".into()),
    }
}

static TOKEN: std::sync::LazyLock<TokenParams> = std::sync::LazyLock::new(|| TokenParams {
    header: Some("x-token".into()),
    query: None,
});

static QUERY_TOKEN: std::sync::LazyLock<TokenParams> = std::sync::LazyLock::new(|| TokenParams {
    header: None,
    query: Some("key".into()),
});

static JWT: std::sync::LazyLock<JwtParams> = std::sync::LazyLock::new(|| JwtParams {
    header: "x-jwt".into(),
    prefix: "Bearer ".into(),
    issuer: Some("sluice".into()),
    body_hash_claim: "sha256".into(),
});

/// The verifiers under test: every preset, and the generic scheme under
/// each algorithm and encoding. Standard Webhooks also with a `whpk_`
/// Ed25519 key beside the `whsec_` one, so `v1a` signatures are checked.
fn verifiers() -> Vec<(Provider, Option<HmacParams>, Verifier)> {
    let mut out = Vec::new();
    for p in Provider::ALL {
        let mut secrets = vec![Secret::new(secret_for(p))];
        if p == Provider::StandardWebhooks {
            let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
            let whpk = format!("whpk_{}", STANDARD.encode(key.verifying_key().to_bytes()));
            secrets.push(Secret::new(whpk));
        }
        let params = (p == Provider::Hmac).then(|| hmac_params(Algorithm::Sha256, Encoding::Hex));
        let generic = GenericParams {
            hmac: params.as_ref(),
            token: (p == Provider::Token).then_some(&*TOKEN),
            jwt: (p == Provider::Jwt).then_some(&*JWT),
        };
        let v = Verifier::with_params(p, &secrets, generic, None).unwrap_or_else(|e| panic!("{e}"));
        out.push((p, params, v));
        if p == Provider::Token {
            // The token in the query instead.
            let query = GenericParams {
                token: Some(&*QUERY_TOKEN),
                ..GenericParams::default()
            };
            let v = Verifier::with_params(p, &secrets, query, None).expect("token");
            out.push((p, None, v));
        }
    }
    for algorithm in [Algorithm::Sha1, Algorithm::Sha512] {
        let params = hmac_params(algorithm, Encoding::Base64);
        let v = Verifier::new(Provider::Hmac, &[Secret::new(SECRET)], Some(&params), None)
            .expect("hmac");
        out.push((Provider::Hmac, Some(params), v));
    }
    out
}

/// The headers a preset reads, to verify or to extract.
fn own_names(p: Provider) -> &'static [&'static str] {
    match p {
        Provider::Github => &[
            "x-hub-signature-256",
            "x-hub-signature",
            "x-github-delivery",
            "x-github-event",
        ],
        Provider::Stripe => &["stripe-signature"],
        Provider::Slack => &["x-slack-signature", "x-slack-request-timestamp"],
        Provider::Shopify => &[
            "x-shopify-hmac-sha256",
            "x-shopify-webhook-id",
            "x-shopify-event-id",
            "x-shopify-topic",
        ],
        Provider::StandardWebhooks | Provider::Clerk | Provider::Resend => &[
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-id",
            "svix-timestamp",
            "svix-signature",
        ],
        Provider::Gitlab => &[
            "x-gitlab-token",
            "idempotency-key",
            "x-gitlab-event-uuid",
            "x-gitlab-event",
        ],
        Provider::Paddle => &["paddle-signature"],
        Provider::Calendly => &["calendly-webhook-signature"],
        Provider::Pagerduty => &["x-pagerduty-signature"],
        Provider::Intercom | Provider::Bitbucket | Provider::Jira => &[
            "x-hub-signature",
            "x-request-uuid",
            "x-event-key",
            "x-atlassian-webhook-identifier",
        ],
        Provider::Typeform => &["typeform-signature"],
        Provider::Linear => &["linear-signature", "linear-delivery", "linear-event"],
        Provider::Zoom => &["x-zm-signature", "x-zm-request-timestamp"],
        Provider::Twitch => &[
            "twitch-eventsub-message-id",
            "twitch-eventsub-message-timestamp",
            "twitch-eventsub-message-signature",
            "twitch-eventsub-message-type",
        ],
        Provider::Discord => &["x-signature-ed25519", "x-signature-timestamp"],
        Provider::Sendgrid => &[
            "x-twilio-email-event-webhook-signature",
            "x-twilio-email-event-webhook-timestamp",
        ],
        Provider::Meta => &["x-hub-signature-256"],
        Provider::X => &["x-twitter-webhooks-signature"],
        Provider::Dropbox => &["x-dropbox-signature"],
        Provider::Box => &[
            "box-signature-primary",
            "box-signature-secondary",
            "box-delivery-timestamp",
            "box-delivery-id",
        ],
        Provider::Asana => &["x-hook-signature"],
        Provider::CoinbaseCommerce => &["x-cc-webhook-signature"],
        Provider::Gocardless => &["webhook-signature"],
        Provider::LemonSqueezy | Provider::Segment => &["x-signature"],
        Provider::Mux => &["mux-signature"],
        Provider::Webflow => &["x-webflow-signature", "x-webflow-timestamp"],
        Provider::Woocommerce => &[
            "x-wc-webhook-signature",
            "x-wc-webhook-delivery-id",
            "x-wc-webhook-topic",
        ],
        Provider::Zendesk => &[
            "x-zendesk-webhook-signature",
            "x-zendesk-webhook-signature-timestamp",
        ],
        Provider::Docusign => &["x-docusign-signature-1", "x-docusign-signature-2"],
        Provider::Sentry => &[
            "sentry-hook-signature",
            "request-id",
            "sentry-hook-resource",
        ],
        Provider::Vercel => &["x-vercel-signature"],
        Provider::Telegram => &["x-telegram-bot-api-secret-token"],
        Provider::Twilio => &["x-twilio-signature", "i-twilio-idempotency-token"],
        Provider::Square => &["x-square-hmacsha256-signature"],
        Provider::Hubspot => &["x-hubspot-signature-v3", "x-hubspot-request-timestamp"],
        Provider::Trello => &["x-trello-webhook"],
        Provider::Okta | Provider::Basic | Provider::Bearer => &["authorization"],
        Provider::Teams => &["authorization"],
        Provider::Token => &["x-token"],
        Provider::Jwt => &["x-jwt"],
        Provider::Netlify => &["x-webhook-signature"],
        // Read no header: their credential is in the body.
        Provider::Msgraph | Provider::Mailgun => &["content-type"],
        Provider::Hmac => &["x-sig", "x-ts", "x-id", "x-type"],
    }
}

/// A header name: mostly the provider's own, else any valid token.
fn name(own: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(own).prop_map(str::to_owned),
        1 => "[a-z0-9!#$%&'*+.^_`|~-]{1,30}",
    ]
}

/// Hex and base64 of random tags of the usual lengths (SHA-1, SHA-256,
/// Ed25519 and SHA-512, DER-ish), behind the usual prefixes.
fn signature_like() -> impl Strategy<Value = Vec<u8>> {
    let prefix = proptest::sample::select(vec![
        "",
        "sha256=",
        "sha1=",
        "v0=",
        "v1=",
        "v1,",
        "v1a,",
        "t=1700000000,v1=",
        "ts=1700000000;h1=",
        "v1=abc,v1=",
        "v1,AAAA v1a,",
    ]);
    let len = proptest::sample::select(vec![0usize, 1, 20, 31, 32, 33, 64, 70, 72, 80]);
    (prefix, len, any::<u64>(), any::<bool>()).prop_map(|(prefix, len, seed, hex)| {
        let bytes: Vec<u8> = (0..len)
            .map(|i| (seed.rotate_left(i as u32 % 64) >> (i % 8)) as u8)
            .collect();
        let body = if hex {
            hex::encode(&bytes)
        } else {
            STANDARD.encode(&bytes)
        };
        format!("{prefix}{body}").into_bytes()
    })
}

/// Timestamps near [`NOW`] and far from it, in seconds, milliseconds and
/// RFC 3339, and numbers that overflow.
fn timestamp_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u64..2 * NOW).prop_map(|s| s.to_string()),
        (NOW - 1000..NOW + 1000).prop_map(|s| s.to_string()),
        (NOW - 1000..NOW + 1000).prop_map(|s| format!("{s}000")),
        (NOW - 1000..NOW + 1000).prop_map(|s| {
            humantime::format_rfc3339(UNIX_EPOCH + Duration::from_secs(s)).to_string()
        }),
        "[0-9]{13,40}",
        "[0-9T:.+Z-]{0,40}",
    ]
    .prop_map(String::into_bytes)
}

/// A header value: arbitrary bytes, non-ASCII text, empty, huge, or shaped
/// like a signature or a timestamp. Bytes a header cannot hold are left
/// to `HeaderValue::from_bytes` to refuse (the header is then skipped).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..64),
        2 => ".{0,40}".prop_map(String::into_bytes),
        1 => Just(Vec::new()),
        1 => (any::<u8>(), 0..8_000usize).prop_map(|(b, n)| vec![b.max(b' '); n]),
        3 => signature_like(),
        3 => timestamp_like(),
    ]
}

/// Headers from `own` and random names, each sent 1 to 3 times.
fn header_set(own: &'static [&'static str]) -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec((name(own), value(), 1..4usize), 0..10).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (name, value, times) in pairs {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value),
            ) else {
                continue;
            };
            for _ in 0..times {
                h.append(name.clone(), value.clone());
            }
        }
        h
    })
}

/// Bodies: bytes, JSON shaped like events (with the fields extraction and
/// Linear's window read, of any type), forms, and a large one.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let scalar = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    let json = scalar.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                proptest::sample::select(vec![
                    "id",
                    "type",
                    "event",
                    "event_id",
                    "event_type",
                    "action",
                    "object_kind",
                    "webhookTimestamp",
                    "meta",
                    "webhook_id",
                    "event_name",
                    "subscription",
                    "challenge",
                    "payload",
                    "plainToken",
                    "update_id",
                    "message",
                    "tweet_create_events",
                    "trigger",
                    "topic",
                    "messageId",
                    "webhookEvent",
                    "triggerType",
                    "object",
                    "eventId",
                    "value",
                    "clientState",
                    "signature",
                    "token",
                    "timestamp",
                    "event-data",
                    "state",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..256),
        4 => json.prop_map(|v| v.to_string().into_bytes()),
        1 => "([a-zA-Z0-9%+]{0,8}=[a-zA-Z0-9%+]{0,8}&?){0,6}".prop_map(String::into_bytes),
        1 => (any::<u8>(), 0..16_000usize).prop_map(|(b, n)| vec![b; n]),
    ]
}

/// The URL the request was sent to: none, any text, or URL-shaped with
/// ports, IPv6 literals, escapes and queries (`bodySHA256` included).
fn url() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => ".{0,60}".prop_map(Some),
        4 => (
            "(https?|HTTP|ftp)?(://)?",
            "(\\[[0-9a-f:]{0,12}\\]|[a-z0-9.é-]{0,20})(:[0-9]{0,6})?",
            "(/[a-zA-Z0-9%.é-]{0,10}){0,3}",
            "(\\?([a-zA-Z0-9%]{0,6}=[a-zA-Z0-9%]{0,8}&?|bodySHA256=[0-9a-f]{0,64}){0,3})?",
            "(#.{0,5})?",
        )
            .prop_map(|(s, a, p, q, f)| Some(format!("{s}{a}{p}{q}{f}"))),
    ]
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// No request panics a verifier, none is accepted without a signature
/// (random ones never match), and the same request gets the same answer.
#[test]
fn no_request_panics_a_verifier_or_passes_unsigned() {
    for (p, _, v) in verifiers() {
        let mut runner = TestRunner::new(config());
        runner
            .run(
                &(header_set(own_names(p)), body(), url(), 0..2 * NOW),
                |(h, body, url, now)| {
                    let got = v.verify_at(&h, &body, url.as_deref(), at(now));
                    prop_assert!(got.is_err(), "{p}: accepted {h:?}");
                    prop_assert_eq!(&got, &v.verify_at(&h, &body, url.as_deref(), at(now)));
                    if let Err(e) = &got {
                        // A typed error with a stable code; 400 only for an
                        // unreadable or repeated header.
                        prop_assert!(!e.code().is_empty());
                        prop_assert_eq!(
                            e.is_malformed_request(),
                            matches!(
                                e,
                                VerifyError::UnreadableHeader(_)
                                    | VerifyError::RepeatedHeader(_)
                                    | VerifyError::RepeatedQueryParameter(_)
                            )
                        );
                    }
                    Ok(())
                },
            )
            .unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}

/// Extraction takes any headers and body: an id (never empty) and a type,
/// or a typed header error; the same input gives the same answer.
#[test]
fn extraction_never_panics_and_always_names_an_event() {
    for (p, params, _) in verifiers() {
        let mut runner = TestRunner::new(config());
        runner
            .run(&(header_set(own_names(p)), body()), |(h, body)| {
                let got = extract(p, params.as_ref(), &h, &body);
                prop_assert_eq!(&got, &extract(p, params.as_ref(), &h, &body));
                if let Ok(e) = &got {
                    prop_assert!(!e.id.is_empty(), "{p}: empty id");
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any text through Stripe's, Paddle's and PagerDuty's parser, with
    /// any separator and keys: no panic, and a success holds a signature.
    #[test]
    fn tagged_headers_never_panic(
        value in prop_oneof![".{0,80}", "([a-z0-9]{0,3}=[0-9a-fA-F]{0,66}[,; ]?){0,10}"],
        sep in proptest::sample::select(vec![',', ';', ' ', '=', 'é']),
        ts_key in proptest::option::of("[a-z0-9]{0,3}"),
        sig_key in "[a-z0-9=]{0,3}",
    ) {
        if let Ok((_, sigs)) = parse::tagged(&value, sep, ts_key.as_deref(), &sig_key) {
            prop_assert!(!sigs.is_empty() && sigs.len() <= 8);
        }
    }

    /// A well-formed `t=…,v1=…` header, with unknown items beside its
    /// own, gives back its timestamp and signatures (the first 8).
    #[test]
    fn tagged_headers_round_trip(
        ts in 0u64..100_000_000_000,
        sigs in proptest::collection::vec(any::<[u8; 32]>(), 1..12),
        others in proptest::collection::vec("[a-su-uw-z][0-9]?=[a-z0-9]{0,8}", 0..4),
        upper in any::<bool>(),
    ) {
        let mut items = vec![format!("t={ts}")];
        items.extend(others);
        for s in &sigs {
            let hex = if upper { hex::encode_upper(s) } else { hex::encode(s) };
            items.push(format!("v1={hex}"));
        }
        let header = items.join(",");
        let (got_ts, got) = parse::tagged(&header, ',', Some("t"), "v1")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ts = ts.to_string();
        prop_assert_eq!(got_ts, Some(ts.as_str()));
        prop_assert_eq!(&got[..], &sigs[..sigs.len().min(8)]);
    }

    /// Standard Webhooks' list: any text parses or is refused without
    /// panicking; a built list gives back its `v1` and `v1a` signatures.
    #[test]
    fn standard_webhooks_lists_round_trip(
        junk in ".{0,80}",
        v1 in proptest::collection::vec(any::<[u8; 32]>(), 0..10),
        v1a in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 64), 0..6),
        other in "(v2,[A-Za-z0-9+/=]{0,20} ?)?",
    ) {
        let _ = parse::standard_webhooks(&junk);
        let mut items: Vec<String> = v1.iter().map(|s| format!("v1,{}", STANDARD.encode(s))).collect();
        items.extend(v1a.iter().map(|s| format!("v1a,{}", STANDARD.encode(s))));
        items.push(other);
        let got = parse::standard_webhooks(&items.join(" "));
        if v1.is_empty() && v1a.is_empty() {
            prop_assert_eq!(got, Err(VerifyError::MalformedSignature));
        } else {
            let (got_v1, got_v1a) = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&got_v1[..], &v1[..v1.len().min(8)]);
            let want: Vec<&[u8]> = v1a.iter().take(4).map(Vec::as_slice).collect();
            let got: Vec<&[u8]> = got_v1a.iter().map(|s| &s[..]).collect();
            prop_assert_eq!(got, want);
        }
    }

    /// Timestamps: digits only, at most `max` of them.
    #[test]
    fn unix_timestamps_are_digits_only(s in ".{0,20}|[0-9]{0,20}", n in 0u64..1_000_000_000_000) {
        let got = parse::unix_digits(&s, 12);
        let digits = !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(got.is_some(), digits);
        prop_assert_eq!(parse::unix_digits(&n.to_string(), 12), Some(n));
    }

    /// Twilio's two URLs: no panic on any text; for a URL the second has
    /// no port and the first the given or default one.
    #[test]
    fn twilio_port_variants(
        junk in ".{0,60}",
        https in any::<bool>(),
        host in "([a-z0-9é.-]{1,20}|\\[[0-9a-f:]{2,12}\\])",
        port in proptest::option::of(0u16..),
        tail in "(/[a-z0-9%]{0,8}){0,3}(\\?[a-z0-9=&:]{0,20})?",
    ) {
        let _ = parse::twilio_port_variants(&junk);
        let scheme = if https { "https" } else { "http" };
        let with = port.map(|p| format!(":{p}")).unwrap_or_default();
        let (with_port, without) = parse::twilio_port_variants(&format!("{scheme}://{host}{with}{tail}"));
        let default = if https { 443 } else { 80 };
        prop_assert_eq!(with_port, format!("{scheme}://{host}:{}{tail}", port.unwrap_or(default)));
        prop_assert_eq!(without, format!("{scheme}://{host}{tail}"));
    }

    /// HubSpot's URL: no panic on any text; unchanged without `%`, and
    /// each escape decoded shortens it by two bytes (three become one).
    #[test]
    fn hubspot_uris(url in ".{0,60}|([a-z/:?=&]|%[0-9a-fA-F]{0,2}|é){0,30}") {
        let got = parse::hubspot_signed_uri(&url);
        if !url.contains('%') {
            prop_assert_eq!(&*got, url.as_str());
        }
        let shorter = url.len() - got.len().min(url.len());
        prop_assert!(got.len() <= url.len());
        prop_assert_eq!(shorter % 2, 0);
        prop_assert!(shorter <= 2 * url.matches('%').count());
    }
}
