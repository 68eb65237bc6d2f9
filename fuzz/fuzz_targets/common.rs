//! Reading a fuzz input as the parts of a request. Every read succeeds:
//! past the end, bytes are 0 and slices empty, so each input is some
//! request and libFuzzer's mutations all land somewhere.

use http::{HeaderMap, HeaderName, HeaderValue};

pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self(data)
    }

    pub fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        first
    }

    // Each target compiles this file; not all read a u32.
    #[allow(dead_code)]
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// A length-prefixed (two bytes) slice: values up to 64 KiB.
    pub fn sized(&mut self) -> &'a [u8] {
        let n = u16::from_le_bytes([self.byte(), self.byte()]);
        self.take(usize::from(n))
    }

    pub fn rest(self) -> &'a [u8] {
        self.0
    }

    /// Up to 15 headers: a name from [`NAMES`] (or, for bytes from 0xe0,
    /// raw bytes), then a sized value; names may repeat. Names and values
    /// a header cannot hold are skipped, as a server would never pass them.
    pub fn headers(&mut self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for _ in 0..self.byte() % 16 {
            let pick = self.byte();
            let name = if pick < 0xe0 {
                HeaderName::from_static(NAMES[usize::from(pick) % NAMES.len()])
            } else {
                let raw = self.take(usize::from(pick & 0x1f));
                match HeaderName::from_bytes(raw) {
                    Ok(n) => n,
                    Err(_) => continue,
                }
            };
            if let Ok(v) = HeaderValue::from_bytes(self.sized()) {
                h.append(name, v);
            }
        }
        h
    }
}

/// Every header a preset or the generic scheme below reads, to verify or
/// to extract.
pub const NAMES: &[&str] = &[
    "x-hub-signature-256",
    "x-hub-signature",
    "x-github-delivery",
    "x-github-event",
    "stripe-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-shopify-hmac-sha256",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-shopify-topic",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-gitlab-token",
    "idempotency-key",
    "x-gitlab-event-uuid",
    "x-gitlab-event",
    "paddle-signature",
    "calendly-webhook-signature",
    "x-pagerduty-signature",
    "x-request-uuid",
    "x-event-key",
    "x-atlassian-webhook-identifier",
    "typeform-signature",
    "linear-signature",
    "linear-delivery",
    "linear-event",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "twitch-eventsub-message-id",
    "twitch-eventsub-message-timestamp",
    "twitch-eventsub-message-signature",
    "twitch-eventsub-message-type",
    "x-signature-ed25519",
    "x-signature-timestamp",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "x-twitter-webhooks-signature",
    "x-dropbox-signature",
    "box-signature-primary",
    "box-signature-secondary",
    "box-delivery-timestamp",
    "box-delivery-id",
    "x-hook-signature",
    "x-cc-webhook-signature",
    "x-signature",
    "mux-signature",
    "x-webflow-signature",
    "x-webflow-timestamp",
    "x-wc-webhook-signature",
    "x-wc-webhook-delivery-id",
    "x-wc-webhook-topic",
    "x-zendesk-webhook-signature",
    "x-zendesk-webhook-signature-timestamp",
    "x-docusign-signature-1",
    "x-docusign-signature-2",
    "sentry-hook-signature",
    "request-id",
    "sentry-hook-resource",
    "x-vercel-signature",
    "x-telegram-bot-api-secret-token",
    "x-twilio-signature",
    "i-twilio-idempotency-token",
    "x-square-hmacsha256-signature",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-trello-webhook",
    "x-sig",
    "x-ts",
    "x-id",
    "x-type",
    "content-type",
    // Okta, Teams, HTTP Basic and Bearer.
    "authorization",
    "x-okta-verification-challenge",
    // Netlify's JWS, and the generic jwt's header below.
    "x-webhook-signature",
    "x-jwt",
    // Asana's handshake.
    "x-hook-secret",
];

/// The generic scheme with every part in use: timestamp, id, prefix.
pub fn hmac_params(
    algorithm: sluice::verify::Algorithm,
    encoding: sluice::verify::Encoding,
) -> sluice::verify::HmacParams {
    sluice::verify::HmacParams {
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
