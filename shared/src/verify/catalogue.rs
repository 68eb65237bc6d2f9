//! What each preset verifies and where its event id and type come from, as
//! text for people: `sluice providers` prints it and the README's provider
//! table is generated from it (a test compares the two). The replay window
//! is not written here: it is read from [`super::preset`].

use std::fmt::Write as _;

use serde::Serialize;

use super::{Provider, ReplayDirection, preset};

/// One preset, described.
#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub provider: Provider,
    /// The headers the check reads, as providers spell them.
    pub headers: &'static [&'static str],
    /// What is signed, how it is encoded, what the key is, and how several
    /// signatures are separated (Markdown).
    pub signature: &'static str,
    pub event_id: &'static str,
    pub event_type: &'static str,
    /// What a sluice operator must know about the window, when the preset's
    /// figure needs a word.
    #[serde(skip)]
    window_note: &'static str,
}

const fn about(
    provider: Provider,
    headers: &'static [&'static str],
    signature: &'static str,
    event_id: &'static str,
    event_type: &'static str,
) -> About {
    About {
        provider,
        headers,
        signature,
        event_id,
        event_type,
        window_note: "",
    }
}

const fn noted(a: About, window_note: &'static str) -> About {
    About { window_note, ..a }
}

const BODY_HASH: &str = "SHA-256 of the body";
/// No delivery id, and the same body for each new change: a body-hash id
/// would drop every later change.
const PER_REQUEST: &str = "a new id per request (no delivery id is sent, and each new change sends the same body again; a retry is a second event)";

/// Every preset, in [`Provider::ALL`]'s order.
pub fn catalogue() -> impl Iterator<Item = About> {
    Provider::ALL.into_iter().map(describe)
}

/// The description of one preset.
pub fn describe(p: Provider) -> About {
    use Provider as P;
    match p {
        P::Github => noted(
            about(
                p,
                &["X-Hub-Signature-256", "X-Hub-Signature"],
                "`X-Hub-Signature-256` (`sha256=` hex HMAC of the body); legacy `X-Hub-Signature` only when the former is absent",
                "`X-GitHub-Delivery`",
                "`X-GitHub-Event` + `.action` (`pull_request.opened`)",
            ),
            "GitHub sends no timestamp",
        ),
        P::Stripe => about(
            p,
            &["Stripe-Signature"],
            "`Stripe-Signature: t=…,v1=…` over `{t}.{body}`; the whole `whsec_…` string is the key; several `v1`, comma-separated",
            "body `id`",
            "body `type`",
        ),
        P::Slack => about(
            p,
            &["X-Slack-Signature", "X-Slack-Request-Timestamp"],
            "`X-Slack-Signature: v0=…` over `v0:{ts}:{body}`",
            "body `event_id`",
            "`event.type` (`url_verification` is answered)",
        ),
        P::Shopify => about(
            p,
            &["X-Shopify-Hmac-Sha256"],
            "`X-Shopify-Hmac-Sha256`, base64 HMAC of the body",
            "`X-Shopify-Webhook-Id`",
            "`X-Shopify-Topic`",
        ),
        P::StandardWebhooks => about(
            p,
            &["webhook-id", "webhook-timestamp", "webhook-signature"],
            "`webhook-signature` (or `svix-*`), `v1,` base64 HMAC over `{id}.{ts}.{body}`, key = base64 after `whsec_`; or `v1a,` Ed25519 under a `whpk_…` public key; several signatures, space-separated, secrets of both kinds",
            "`webhook-id`",
            "body `type`",
        ),
        P::Gitlab => about(
            p,
            &["X-Gitlab-Token"],
            "`X-Gitlab-Token`, a shared token compared in constant time",
            "`Idempotency-Key`, else `X-Gitlab-Event-UUID`",
            "body `object_kind`",
        ),
        P::Paddle => noted(
            about(
                p,
                &["Paddle-Signature"],
                "`Paddle-Signature: ts=…;h1=…` over `{ts}:{body}`, hex; the `pdl_ntfset_…` key as it is; several `h1`, semicolon-separated",
                "body `event_id`",
                "body `event_type`",
            ),
            "Paddle's SDKs",
        ),
        P::Calendly => about(
            p,
            &["Calendly-Webhook-Signature"],
            "`Calendly-Webhook-Signature: t=…,v1=…` over `{t}.{body}`, hex",
            BODY_HASH,
            "body `event`",
        ),
        P::Pagerduty => about(
            p,
            &["X-PagerDuty-Signature"],
            "`X-PagerDuty-Signature: v1=…[,v1=…]`, hex HMAC of the body; several during a rotation, comma-separated",
            "body `event.id`",
            "body `event.event_type`",
        ),
        P::Intercom => about(
            p,
            &["X-Hub-Signature"],
            "`X-Hub-Signature: sha1=…`, hex HMAC-SHA1 of the body",
            "body `id`",
            "body `topic`",
        ),
        P::Typeform => about(
            p,
            &["Typeform-Signature"],
            "`Typeform-Signature: sha256=…`, base64 HMAC of the body",
            "body `event_id`",
            "body `event_type`",
        ),
        P::Linear => noted(
            about(
                p,
                &["Linear-Signature"],
                "`Linear-Signature`, hex HMAC of the body",
                "`Linear-Delivery`",
                "body `type` + `.action` (`Issue.create`)",
            ),
            "on the signed body's `webhookTimestamp`, in ms",
        ),
        P::Zoom => about(
            p,
            &["x-zm-signature", "x-zm-request-timestamp"],
            "`x-zm-signature: v0=…` over `v0:{x-zm-request-timestamp}:{body}`, hex",
            BODY_HASH,
            "body `event` (`endpoint.url_validation` is answered)",
        ),
        P::Twitch => about(
            p,
            &[
                "Twitch-Eventsub-Message-Signature",
                "Twitch-Eventsub-Message-Id",
                "Twitch-Eventsub-Message-Timestamp",
            ],
            "`Twitch-Eventsub-Message-Signature: sha256=…` over message id + timestamp (RFC 3339) + body, hex",
            "`Twitch-Eventsub-Message-Id`",
            "body `subscription.type`; `revocation` (`webhook_callback_verification` is answered)",
        ),
        P::Discord => noted(
            about(
                p,
                &["X-Signature-Ed25519", "X-Signature-Timestamp"],
                "`X-Signature-Ed25519`, hex Ed25519 over `{X-Signature-Timestamp}{body}`; the secret is the application's public key (hex); a failure is a 401, as Discord requires",
                "body `id`",
                "`ping` (answered `{\"type\":1}`), `application_command`, `message_component`, `application_command_autocomplete`, `modal_submit`",
            ),
            "Discord's libraries check none",
        ),
        P::Sendgrid => noted(
            about(
                p,
                &[
                    "X-Twilio-Email-Event-Webhook-Signature",
                    "X-Twilio-Email-Event-Webhook-Timestamp",
                ],
                "`X-Twilio-Email-Event-Webhook-Signature`, base64 DER ECDSA P-256 over `{…-Timestamp}{body}`; the secret is the verification key (base64)",
                "SHA-256 of the body (a batch of events)",
                "none",
            ),
            "SendGrid's libraries check none",
        ),
        P::Bitbucket => about(
            p,
            &["X-Hub-Signature"],
            "`X-Hub-Signature: sha256=…`, hex HMAC of the body",
            "`X-Request-UUID`",
            "`X-Event-Key` (`repo:push`)",
        ),
        P::Jira => about(
            p,
            &["X-Hub-Signature"],
            "`X-Hub-Signature: sha256=…`, hex HMAC of the body (webhooks with a secret)",
            "`X-Atlassian-Webhook-Identifier`",
            "body `webhookEvent`",
        ),
        P::Meta => about(
            p,
            &["X-Hub-Signature-256"],
            "`X-Hub-Signature-256: sha256=…`, hex HMAC of the body under the app secret (Facebook, Instagram, WhatsApp Cloud); the GET `hub.challenge` is answered when `hub.verify_token` equals the source's `verify_token`",
            BODY_HASH,
            "body `object`",
        ),
        P::X => about(
            p,
            &["X-Twitter-Webhooks-Signature"],
            "`X-Twitter-Webhooks-Signature: sha256=…`, base64 HMAC of the body under the consumer secret; the GET CRC (`crc_token`) is answered with its HMAC",
            BODY_HASH,
            "the body's `…_events` key (`tweet_create_events`)",
        ),
        P::Dropbox => about(
            p,
            &["X-Dropbox-Signature"],
            "`X-Dropbox-Signature`, hex HMAC of the body under the app secret; the GET `challenge` is echoed",
            PER_REQUEST,
            "none",
        ),
        P::Box => about(
            p,
            &[
                "Box-Signature-Primary",
                "Box-Signature-Secondary",
                "Box-Delivery-Timestamp",
            ],
            "`Box-Signature-Primary` (or `-Secondary`, the other key), base64 HMAC over `{body}{Box-Delivery-Timestamp}` (RFC 3339)",
            "`Box-Delivery-Id`",
            "body `trigger` (`FILE.UPLOADED`)",
        ),
        P::Asana => about(
            p,
            &["X-Hook-Signature"],
            "`X-Hook-Signature`, hex HMAC of the body under the secret of the first `X-Hook-Secret` handshake, which sluice keeps at the source's one secret reference",
            BODY_HASH,
            "none (a batch of events)",
        ),
        P::CoinbaseCommerce => about(
            p,
            &["X-CC-Webhook-Signature"],
            "`X-CC-Webhook-Signature`, hex HMAC of the body",
            "body `event.id`",
            "body `event.type`",
        ),
        P::Gocardless => about(
            p,
            &["Webhook-Signature"],
            "`Webhook-Signature`, hex HMAC of the body",
            "body `meta.webhook_id`",
            "none (a batch of events)",
        ),
        P::LemonSqueezy => about(
            p,
            &["X-Signature"],
            "`X-Signature`, hex HMAC of the body",
            BODY_HASH,
            "body `meta.event_name`",
        ),
        P::Mux => about(
            p,
            &["Mux-Signature"],
            "`Mux-Signature: t=…,v1=…` over `{t}.{body}`, hex",
            "body `id`",
            "body `type`",
        ),
        P::Webflow => about(
            p,
            &["X-Webflow-Signature", "X-Webflow-Timestamp"],
            "`X-Webflow-Signature`, hex HMAC over `{X-Webflow-Timestamp}:{body}` (ms)",
            BODY_HASH,
            "body `triggerType`",
        ),
        P::Woocommerce => about(
            p,
            &["X-WC-Webhook-Signature"],
            "`X-WC-Webhook-Signature`, base64 HMAC of the body",
            "`X-WC-Webhook-Delivery-ID`",
            "`X-WC-Webhook-Topic` (`order.created`)",
        ),
        P::Zendesk => noted(
            about(
                p,
                &[
                    "X-Zendesk-Webhook-Signature",
                    "X-Zendesk-Webhook-Signature-Timestamp",
                ],
                "`X-Zendesk-Webhook-Signature`, base64 HMAC over `{…-Timestamp}{body}`",
                "body `id`",
                "body `type`",
            ),
            "signed, but Zendesk documents no window: set `tolerance` for one",
        ),
        P::Docusign => about(
            p,
            &["X-DocuSign-Signature-1", "X-DocuSign-Signature-2"],
            "`X-DocuSign-Signature-1` (or `-2`, a second key), base64 HMAC of the body",
            BODY_HASH,
            "body `event`",
        ),
        P::Segment => about(
            p,
            &["X-Signature"],
            "`X-Signature`, hex HMAC-SHA1 of the body",
            "body `messageId`",
            "body `type`",
        ),
        P::Sentry => about(
            p,
            &["Sentry-Hook-Signature"],
            "`Sentry-Hook-Signature`, hex HMAC of the body under the client secret",
            "`Request-ID`",
            "`Sentry-Hook-Resource` + `.action` (`issue.created`)",
        ),
        P::Vercel => about(
            p,
            &["x-vercel-signature"],
            "`x-vercel-signature`, hex HMAC-SHA1 of the body",
            "body `id`",
            "body `type`",
        ),
        P::Telegram => about(
            p,
            &["X-Telegram-Bot-Api-Secret-Token"],
            "`X-Telegram-Bot-Api-Secret-Token`, the bot's `secret_token` compared in constant time",
            "body `update_id`",
            "the update's kind (`message`, `callback_query`, …)",
        ),
        P::Okta => about(
            p,
            &["Authorization"],
            "`Authorization`, the event hook's authentication value compared in constant time; the GET `X-Okta-Verification-Challenge` is answered after the same check",
            "body `eventId`",
            "none (a batch: `data.events[].eventType`)",
        ),
        P::Msgraph => about(
            p,
            &[],
            "no signature: every notification's `clientState` in the body equals the secret, compared in constant time; the `?validationToken=` POST is echoed (`text/plain`)",
            PER_REQUEST,
            "none (a batch: `value[].changeType`)",
        ),
        P::Teams => about(
            p,
            &["Authorization"],
            "`Authorization: HMAC <base64>`, the HMAC-SHA256 of the body under the base64-decoded security token Teams shows once",
            "body `id`",
            "body `type` (`message`)",
        ),
        P::Mailgun => noted(
            about(
                p,
                &[],
                "in the body: `signature.signature`, hex HMAC-SHA256 of `{signature.timestamp}{signature.token}` under the webhook signing key (or `parent-signature`, a subaccount's parent key); JSON bodies; the event data is not signed",
                "body `signature.token` (a reused token is a duplicate)",
                "body `event-data.event`",
            ),
            "Mailgun documents none and warns against a strict one; a configured `tolerance_secs` is checked against `signature.timestamp`",
        ),
        P::Netlify => about(
            p,
            &["X-Webhook-Signature"],
            "`X-Webhook-Signature`, a JWS (HS256 only) under the JWS secret whose claims are `iss: netlify` and `sha256`, the hex SHA-256 of the body; an `exp` claim is enforced",
            BODY_HASH,
            "body `state`",
        ),
        P::Token => about(
            p,
            &[],
            "generic: a shared token in the header or query parameter `[sources.token]` names, compared in constant time",
            BODY_HASH,
            "body `type`",
        ),
        P::Jwt => about(
            p,
            &[],
            "generic: an HS256 JWT in the header `[sources.jwt]` names, whose claim (`sha256` unless set) is the hex SHA-256 of the body; `iss`, `exp` and `nbf` checked when set",
            BODY_HASH,
            "body `type`",
        ),
        P::Basic => about(
            p,
            &["Authorization"],
            "generic: `Authorization: Basic …`, the decoded `user:password` equal to a secret, compared in constant time",
            BODY_HASH,
            "body `type`",
        ),
        P::Bearer => about(
            p,
            &["Authorization"],
            "generic: `Authorization: Bearer <secret>`, compared in constant time",
            BODY_HASH,
            "body `type`",
        ),
        P::Clerk | P::Resend => about(
            p,
            &["webhook-id", "webhook-timestamp", "webhook-signature"],
            "Standard Webhooks as `standard-webhooks`: `svix-*` (or `webhook-*`) headers, `whsec_…` secrets",
            "`svix-id`",
            "body `type`",
        ),
        P::Twilio => about(
            p,
            &["X-Twilio-Signature"],
            "`X-Twilio-Signature`, base64 HMAC-SHA1 of the URL called (`public_url` + query) and the sorted form parameters; JSON bodies: the URL's `bodySHA256` is checked instead; with and without the port",
            "`I-Twilio-Idempotency-Token`",
            "none",
        ),
        P::Square => about(
            p,
            &["X-Square-Hmacsha256-Signature"],
            "`X-Square-Hmacsha256-Signature`, base64 HMAC over `{notification URL}{body}` (`public_url` + query)",
            "body `event_id`",
            "body `type`",
        ),
        P::Hubspot => about(
            p,
            &["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"],
            "`X-HubSpot-Signature-v3`, base64 HMAC over `POST{URL}{body}{X-HubSpot-Request-Timestamp}` (ms; URL = `public_url` + query, some escapes decoded)",
            BODY_HASH,
            "none (a batch of events)",
        ),
        P::Trello => about(
            p,
            &["X-Trello-Webhook"],
            "`X-Trello-Webhook`, base64 HMAC-SHA1 over `{body}{callback URL}` (`public_url` + query); the HEAD check answers 200",
            "body `action.id`",
            "body `action.type`",
        ),
        P::Hmac => about(
            p,
            &[],
            "generic, see below",
            "`id_header`, else SHA-256 of the body",
            "`type_header`, else body `type`",
        ),
    }
}

impl About {
    /// The replay window in words: its length and direction, or `none`.
    pub fn window(&self) -> String {
        let p = preset(self.provider);
        let mut out = match (self.provider, p.tolerance) {
            (Provider::Hmac, Some(t)) => {
                format!("with `timestamp_header`: {} s both ways", t.as_secs())
            }
            (_, Some(t)) => {
                let direction = match p.direction {
                    ReplayDirection::OldOnly => "old timestamps only",
                    ReplayDirection::Both => "both directions",
                };
                format!("{} s, {direction}", t.as_secs())
            }
            (_, None) => "none".to_owned(),
        };
        if !self.window_note.is_empty() {
            let _ = write!(out, " ({})", self.window_note);
        }
        out
    }
}

/// The README's provider table, generated.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| `provider` | signature | replay window | event id | event type |\n|---|---|---|---|---|\n",
    );
    for a in catalogue() {
        let alias = match a.provider {
            Provider::StandardWebhooks => " (alias `svix`)",
            Provider::X => " (alias `twitter`)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "| `{}`{alias} | {} | {} | {} | {} |",
            a.provider,
            a.signature,
            a.window(),
            a.event_id,
            a.event_type
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request missing the first header a preset lists is refused for
    /// that header: the catalogue names what the scheme really reads.
    #[test]
    fn the_first_listed_header_is_the_one_a_bare_request_lacks() {
        // The generic schemes read the headers their settings name.
        let generic = [Provider::Hmac, Provider::Token, Provider::Jwt];
        for a in catalogue().filter(|a| !generic.contains(&a.provider)) {
            let v = super::super::tests::verifier_with(
                a.provider,
                &[super::super::tests::key_for(a.provider).as_str()],
                None,
                None,
            );
            let err = v
                .verify(&http::HeaderMap::new(), b"{}", std::time::SystemTime::now())
                .unwrap_err();
            let Some(first) = a.headers.first().map(|h| h.to_ascii_lowercase()) else {
                // No header: the credential is in the body.
                assert!(
                    matches!(err, super::super::VerifyError::MissingBodyField(_)),
                    "{}: {err:?}",
                    a.provider
                );
                continue;
            };
            match a.provider {
                // Its legacy header is the fallback: the error names the
                // current one.
                Provider::Github => {
                    assert_eq!(err, super::super::VerifyError::MissingHeader(first))
                }
                // The id and timestamp are read after the signature.
                _ => {
                    assert!(
                        a.headers.iter().any(|h| err
                            == super::super::VerifyError::MissingHeader(h.to_ascii_lowercase())),
                        "{}: {err:?}",
                        a.provider
                    )
                }
            }
        }
    }

    #[test]
    fn every_row_has_a_signature_an_id_and_a_type() {
        for a in catalogue() {
            assert!(!a.signature.is_empty() && !a.event_id.is_empty() && !a.event_type.is_empty());
            assert!(
                !a.signature.contains('|'),
                "{} breaks the table",
                a.provider
            );
        }
    }
}
