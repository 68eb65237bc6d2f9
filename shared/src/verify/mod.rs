//! Inbound signature verification: one module per signing scheme, and the
//! table of provider presets.
//!
//! Keys are decoded and keyed once in [`Verifier::new`]; [`Verifier::verify`]
//! reads headers as `&str`, decodes signatures into stack buffers, feeds the
//! HMAC in pieces and compares in constant time, without allocating.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};

use crate::secrets::Secret;

mod basic;
mod calendly;
pub mod catalogue;
mod common;
mod discord;
mod github;
mod gitlab;
mod header_hmac;
mod hmac;
mod hubspot;
#[cfg(test)]
mod intercom;
mod jws;
mod linear;
mod mailgun;
mod msgraph;
mod mux;
mod okta;
mod paddle;
mod pagerduty;
mod sendgrid;
#[cfg(test)]
mod shopify;
mod slack;
mod standard_webhooks;
mod stripe;
mod telegram;
mod token;
mod twilio;
mod twitch;
#[cfg(test)]
mod typeform;
mod url_hmac;
mod zoom;

pub use common::{ReplayDirection, SecretDigests, Window};

/// The provider presets a source can name in config (`svix` is also
/// taken for `standard-webhooks`, and `twitter` for `x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    Github,
    Stripe,
    Slack,
    Shopify,
    #[serde(alias = "svix")]
    StandardWebhooks,
    Gitlab,
    Paddle,
    Calendly,
    Pagerduty,
    Intercom,
    Typeform,
    Linear,
    Zoom,
    Twitch,
    Discord,
    Sendgrid,
    Bitbucket,
    Jira,
    Meta,
    #[serde(alias = "twitter")]
    X,
    Dropbox,
    Box,
    Asana,
    CoinbaseCommerce,
    Gocardless,
    LemonSqueezy,
    Mux,
    Webflow,
    Woocommerce,
    Zendesk,
    Docusign,
    Segment,
    Sentry,
    Vercel,
    Telegram,
    /// Svix-based senders: Standard Webhooks under their own name.
    Clerk,
    Resend,
    Twilio,
    Square,
    Hubspot,
    Trello,
    Okta,
    Msgraph,
    Teams,
    Mailgun,
    Netlify,
    /// Generic: HTTP Basic credentials, each secret `user:password`.
    Basic,
    /// Generic: `Authorization: Bearer <secret>`.
    Bearer,
    /// Generic: a shared token in the header or query parameter the
    /// source's `[token]` settings name.
    Token,
    /// Generic: an HS256 JWT whose claim holds the body's SHA-256, as the
    /// source's `[jwt]` settings describe.
    Jwt,
    /// The generic, configurable HMAC scheme.
    Hmac,
}

impl Provider {
    /// Every preset, in the order the docs list them.
    pub const ALL: [Self; 51] = [
        Self::Github,
        Self::Stripe,
        Self::Slack,
        Self::Shopify,
        Self::StandardWebhooks,
        Self::Gitlab,
        Self::Paddle,
        Self::Calendly,
        Self::Pagerduty,
        Self::Intercom,
        Self::Typeform,
        Self::Linear,
        Self::Zoom,
        Self::Twitch,
        Self::Discord,
        Self::Sendgrid,
        Self::Bitbucket,
        Self::Jira,
        Self::Meta,
        Self::X,
        Self::Dropbox,
        Self::Box,
        Self::Asana,
        Self::CoinbaseCommerce,
        Self::Gocardless,
        Self::LemonSqueezy,
        Self::Mux,
        Self::Webflow,
        Self::Woocommerce,
        Self::Zendesk,
        Self::Docusign,
        Self::Segment,
        Self::Sentry,
        Self::Vercel,
        Self::Telegram,
        Self::Clerk,
        Self::Resend,
        Self::Twilio,
        Self::Square,
        Self::Hubspot,
        Self::Trello,
        Self::Okta,
        Self::Msgraph,
        Self::Teams,
        Self::Mailgun,
        Self::Netlify,
        Self::Basic,
        Self::Bearer,
        Self::Token,
        Self::Jwt,
        Self::Hmac,
    ];

    /// The config name (kebab-case), for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::Slack => "slack",
            Self::Shopify => "shopify",
            Self::StandardWebhooks => "standard-webhooks",
            Self::Gitlab => "gitlab",
            Self::Paddle => "paddle",
            Self::Calendly => "calendly",
            Self::Pagerduty => "pagerduty",
            Self::Intercom => "intercom",
            Self::Typeform => "typeform",
            Self::Linear => "linear",
            Self::Zoom => "zoom",
            Self::Twitch => "twitch",
            Self::Discord => "discord",
            Self::Sendgrid => "sendgrid",
            Self::Bitbucket => "bitbucket",
            Self::Jira => "jira",
            Self::Meta => "meta",
            Self::X => "x",
            Self::Dropbox => "dropbox",
            Self::Box => "box",
            Self::Asana => "asana",
            Self::CoinbaseCommerce => "coinbase-commerce",
            Self::Gocardless => "gocardless",
            Self::LemonSqueezy => "lemon-squeezy",
            Self::Mux => "mux",
            Self::Webflow => "webflow",
            Self::Woocommerce => "woocommerce",
            Self::Zendesk => "zendesk",
            Self::Docusign => "docusign",
            Self::Segment => "segment",
            Self::Sentry => "sentry",
            Self::Vercel => "vercel",
            Self::Telegram => "telegram",
            Self::Clerk => "clerk",
            Self::Resend => "resend",
            Self::Twilio => "twilio",
            Self::Square => "square",
            Self::Hubspot => "hubspot",
            Self::Trello => "trello",
            Self::Okta => "okta",
            Self::Msgraph => "msgraph",
            Self::Teams => "teams",
            Self::Mailgun => "mailgun",
            Self::Netlify => "netlify",
            Self::Basic => "basic",
            Self::Bearer => "bearer",
            Self::Token => "token",
            Self::Jwt => "jwt",
            Self::Hmac => "hmac",
        }
    }
}

impl Provider {
    /// Whether the signature covers the URL the provider called: the source
    /// then needs a `public_url`, unless the backend knows the URL (API
    /// Gateway's request context).
    pub fn signs_url(self) -> bool {
        matches!(
            self,
            Self::Twilio | Self::Square | Self::Hubspot | Self::Trello
        )
    }

    /// The header of a handshake in which the provider chooses the secret
    /// and sends it (Asana's `X-Hook-Secret`): the gateway keeps the first
    /// one at the source's secret reference and echoes it back.
    pub fn secret_handshake_header(self) -> Option<&'static HeaderName> {
        static X_HOOK_SECRET: HeaderName = HeaderName::from_static("x-hook-secret");
        (self == Self::Asana).then_some(&X_HOOK_SECRET)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider's replay-window defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Default window; `None` when the provider signs no timestamp. For
    /// `hmac` it applies only when `timestamp_header` is set.
    pub tolerance: Option<Duration>,
    pub direction: ReplayDirection,
}

const FIVE_MINUTES: Duration = Duration::from_secs(300);

/// The presets table.
pub const fn preset(provider: Provider) -> Preset {
    use ReplayDirection::{Both, OldOnly};
    let (tolerance, direction) = match provider {
        Provider::Github
        | Provider::Shopify
        | Provider::Gitlab
        | Provider::Pagerduty
        | Provider::Intercom
        | Provider::Typeform
        // Discord's and SendGrid's libraries check no time.
        | Provider::Discord
        | Provider::Sendgrid
        | Provider::Bitbucket
        | Provider::Jira
        | Provider::Meta
        | Provider::X
        | Provider::Dropbox
        | Provider::Asana
        | Provider::CoinbaseCommerce
        | Provider::Gocardless
        | Provider::LemonSqueezy
        | Provider::Woocommerce
        | Provider::Docusign
        | Provider::Segment
        | Provider::Sentry
        | Provider::Vercel
        | Provider::Telegram
        | Provider::Okta
        | Provider::Msgraph
        | Provider::Teams
        | Provider::Netlify
        | Provider::Basic
        | Provider::Bearer
        | Provider::Token
        | Provider::Jwt
        | Provider::Twilio
        | Provider::Square
        | Provider::Trello
        // Zendesk signs a timestamp but documents no window, and Mailgun
        // warns against a strict one: only a configured `tolerance` is
        // enforced.
        | Provider::Zendesk
        | Provider::Mailgun => (None, Both),
        // Stripe's libraries reject only old timestamps; Mux's follow them,
        // and Webflow's documentation checks only the age.
        // HubSpot's documentation too.
        Provider::Stripe | Provider::Mux | Provider::Webflow | Provider::Hubspot => {
            (Some(FIVE_MINUTES), OldOnly)
        }
        // Box's SDKs: older than 10 minutes.
        Provider::Box => (Some(Duration::from_secs(600)), OldOnly),
        // Paddle's SDKs: older than 5 s.
        Provider::Paddle => (Some(Duration::from_secs(5)), OldOnly),
        // Calendly's documentation: older than 3 minutes.
        Provider::Calendly => (Some(Duration::from_secs(180)), OldOnly),
        // Linear's SDK: more than a minute either way.
        Provider::Linear => (Some(Duration::from_secs(60)), Both),
        // Twitch: older than 10 minutes.
        Provider::Twitch => (Some(Duration::from_secs(600)), OldOnly),
        // Zoom publishes no window: the common five minutes.
        Provider::Slack
        | Provider::StandardWebhooks
        | Provider::Clerk
        | Provider::Resend
        | Provider::Hmac
        | Provider::Zoom => {
            (Some(FIVE_MINUTES), Both)
        }
    };
    Preset {
        tolerance,
        direction,
    }
}

/// The preset's replay window, if the provider signs a timestamp.
pub fn default_tolerance(provider: Provider) -> Option<Duration> {
    preset(provider).tolerance
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

/// Settings of the generic `hmac` scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacParams {
    /// Header carrying the signature, e.g. `X-Signature`.
    pub signature_header: String,
    #[serde(default)]
    #[schema(default = Algorithm::default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    #[schema(default = Encoding::default)]
    pub encoding: Encoding,
    /// Text before the encoded digest, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: String,
    /// Template of the signed bytes: `{body}`, `{timestamp}`, `{id}`.
    #[serde(default = "HmacParams::default_signed_content")]
    #[schema(default = HmacParams::default_signed_content)]
    pub signed_content: String,
    /// Header carrying a Unix timestamp; enables the replay window.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Header carrying the event id (dedup key); else SHA-256 of the body.
    #[serde(default)]
    pub id_header: Option<String>,
    /// Header carrying the event type; else the body's top-level `type`.
    #[serde(default)]
    pub type_header: Option<String>,
}

impl HmacParams {
    fn default_signed_content() -> String {
        "{body}".to_owned()
    }
}

/// Settings of the generic `token` scheme: where the shared token comes,
/// exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenParams {
    /// A header carrying the token as it is, e.g. `X-Api-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub header: Option<String>,
    /// A query parameter carrying it, e.g. `key` for
    /// `/hooks/{source}?key=…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub query: Option<String>,
}

/// Settings of the generic `jwt` scheme: an HS256 JWT under the source's
/// secret, whose claim holds the hex SHA-256 of the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtParams {
    /// Header carrying the token, e.g. `Authorization`.
    pub header: String,
    /// Text before the token, e.g. `Bearer `.
    #[serde(default)]
    pub prefix: String,
    /// The `iss` claim the token must carry, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub issuer: Option<String>,
    /// The claim holding the body's hex SHA-256.
    #[serde(default = "JwtParams::default_body_hash_claim")]
    #[schema(default = JwtParams::default_body_hash_claim)]
    pub body_hash_claim: String,
}

impl JwtParams {
    fn default_body_hash_claim() -> String {
        "sha256".to_owned()
    }
}

/// The settings of the generic schemes, each read by its own provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericParams<'a> {
    pub hmac: Option<&'a HmacParams>,
    pub token: Option<&'a TokenParams>,
    pub jwt: Option<&'a JwtParams>,
}

impl GenericParams<'_> {
    /// Which of the settings `provider` needs and which it must not have:
    /// a setting belongs to its provider only. The one rule for the config
    /// file and the admin API; errors name the setting.
    pub fn check(&self, provider: Provider) -> Result<(), (&'static str, String)> {
        for (name, owner, present) in [
            ("hmac", Provider::Hmac, self.hmac.is_some()),
            ("token", Provider::Token, self.token.is_some()),
            ("jwt", Provider::Jwt, self.jwt.is_some()),
        ] {
            if provider == owner && !present {
                return Err((
                    name,
                    format!("provider \"{name}\" needs its {name} settings"),
                ));
            }
            if provider != owner && present {
                return Err((
                    name,
                    format!("the {name} settings only apply to provider \"{name}\""),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(String),
    /// A scheme that reads its credential from the body, without it.
    #[error("missing {0} in the body")]
    MissingBodyField(&'static str),
    #[error("header {0} is not readable text")]
    UnreadableHeader(String),
    #[error("header {0} is sent more than once")]
    RepeatedHeader(String),
    #[error("missing query parameter {0}")]
    MissingQueryParameter(String),
    #[error("query parameter {0} is sent more than once")]
    RepeatedQueryParameter(String),
    #[error("signature header is malformed")]
    MalformedSignature,
    #[error("signature does not match")]
    InvalidSignature,
    #[error("timestamp is malformed")]
    MalformedTimestamp,
    #[error("timestamp is outside the replay window")]
    TimestampOutOfWindow,
    /// A scheme that signs the URL, with no URL to check: the source has
    /// no `public_url` and the backend saw none.
    #[error("the URL the request was sent to is not known")]
    UrlUnknown,
    /// A source whose provider sends its secret in a handshake (Asana),
    /// before that handshake: nothing can be verified yet.
    #[error("the source holds no secret yet: its provider's handshake has not come")]
    AwaitingHandshake,
}

impl VerifyError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) | Self::MissingBodyField(_) | Self::MissingQueryParameter(_) => {
                "missing_signature"
            }
            Self::RepeatedQueryParameter(_) => "bad_request",
            Self::UnreadableHeader(_) | Self::RepeatedHeader(_) => "malformed_header",
            Self::MalformedSignature => "malformed_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::TimestampOutOfWindow => "timestamp_out_of_window",
            Self::UrlUnknown => "url_unknown",
            Self::AwaitingHandshake => "awaiting_handshake",
        }
    }

    /// True when the request itself is unreadable (400), not merely
    /// unauthenticated (401).
    pub fn is_malformed_request(&self) -> bool {
        matches!(
            self,
            Self::UnreadableHeader(_) | Self::RepeatedHeader(_) | Self::RepeatedQueryParameter(_)
        )
    }
}

/// The signature-header and URL parsers on their own, for the property
/// tests (`shared/tests/verify_props.rs`) and the fuzz targets (`fuzz/`),
/// which can then check what they return and not only that they return.
/// Not an API: [`Verifier`] is.
#[doc(hidden)]
pub mod parse {
    use std::borrow::Cow;

    use super::VerifyError;

    /// A `key=value` list split by `sep` (Stripe's `t=…,v1=…`, Paddle's
    /// `ts=…;h1=…`, PagerDuty's `v1=…,v1=…`): the timestamp, and the 32-byte
    /// hex signatures decoded (at most 8).
    pub fn tagged<'a>(
        value: &'a str,
        sep: char,
        ts_key: Option<&str>,
        sig_key: &str,
    ) -> Result<(Option<&'a str>, Vec<[u8; 32]>), VerifyError> {
        let (ts, sigs) = super::common::tagged_hex(value, sep, ts_key, sig_key)?;
        Ok((ts, sigs.as_slice().to_vec()))
    }

    /// The decoded `v1` (HMAC) and `v1a` (Ed25519) signatures.
    pub type V1AndV1a = (Vec<[u8; 32]>, Vec<[u8; 64]>);

    /// Standard Webhooks' space-separated `v1,<base64>` / `v1a,<base64>`
    /// list.
    pub fn standard_webhooks(value: &str) -> Result<V1AndV1a, VerifyError> {
        let sigs = super::standard_webhooks::Signatures::parse(value)?;
        Ok((sigs.v1.as_slice().to_vec(), sigs.v1a().to_vec()))
    }

    /// Digits only, at most `max` of them: the Unix timestamps of headers.
    pub fn unix_digits(s: &str, max: usize) -> Option<u64> {
        super::common::parse_unix_digits(s, max)
    }

    /// Twilio: the URL with its port (explicit or the scheme's default)
    /// and without.
    pub fn twilio_port_variants(url: &str) -> (String, String) {
        super::twilio::port_variants(url)
    }

    /// HubSpot v3: the URL with the escapes HubSpot decodes decoded.
    pub fn hubspot_signed_uri(url: &str) -> Cow<'_, str> {
        super::hubspot::signed_uri(url)
    }
}

/// A source's verifier: the scheme, its decoded keys and its replay window.
pub struct Verifier {
    provider: Provider,
    scheme: Scheme,
    /// Kept for introspection; each scheme holds its own copy.
    window: Option<Window>,
}

enum Scheme {
    Github(github::Github),
    /// Stripe's `t=…,v1=…` shape: Stripe, Paddle, Calendly, Mux.
    Tagged(common::Tagged),
    /// One header with the body's HMAC, maybe a signed timestamp.
    HeaderHmac(header_hmac::HeaderHmac),
    Slack(slack::Slack),
    StandardWebhooks(standard_webhooks::StandardWebhooks),
    /// A shared token in a header: GitLab, Telegram.
    Token(token::SharedToken),
    Pagerduty(pagerduty::Pagerduty),
    Linear(linear::Linear),
    Zoom(zoom::Zoom),
    Twitch(twitch::Twitch),
    Discord(discord::Discord),
    Sendgrid(sendgrid::Sendgrid),
    /// The URL and the body under one HMAC: Square, Trello.
    UrlHmac(url_hmac::UrlHmac),
    Twilio(twilio::Twilio),
    Hubspot(hubspot::Hubspot),
    /// A `clientState` in every notification of the body: Microsoft Graph.
    Msgraph(msgraph::Msgraph),
    /// The signature in the body, over a timestamp and token: Mailgun.
    Mailgun(mailgun::Mailgun),
    /// A JWS over a claim holding the body's hash: Netlify.
    Jws(jws::Jws),
    /// No key yet: the provider's handshake brings it (Asana).
    AwaitingHandshake,
    Basic(basic::Basic),
    Hmac(hmac::Generic),
}

impl Verifier {
    /// Build a verifier. `secrets` holds one or more active secrets
    /// (rotation); each is decoded as the provider requires. `tolerance`
    /// overrides the preset's replay window. Errors describe bad config and
    /// never contain a secret.
    pub fn new(
        provider: Provider,
        secrets: &[Secret],
        hmac: Option<&HmacParams>,
        tolerance: Option<Duration>,
    ) -> Result<Self, String> {
        let generic = GenericParams {
            hmac,
            ..GenericParams::default()
        };
        Self::with_params(provider, secrets, generic, tolerance)
    }

    /// [`Self::new`], for any generic scheme: `token` and `jwt` take their
    /// settings here.
    pub fn with_params(
        provider: Provider,
        secrets: &[Secret],
        generic: GenericParams<'_>,
        tolerance: Option<Duration>,
    ) -> Result<Self, String> {
        let fail = |e: String| format!("{provider}: {e}");
        common::check_secrets(secrets).map_err(fail)?;
        let preset = preset(provider);
        let configured = tolerance.or(preset.tolerance);
        // Providers without a timestamp get a window that is never consulted.
        let window = Window {
            tolerance: configured.unwrap_or(FIVE_MINUTES),
            direction: preset.direction,
        };
        let tagged = |spec| common::Tagged::new(spec, secrets, window).map(Scheme::Tagged);
        let scheme = match provider {
            Provider::Github => github::Github::new(secrets).map(Scheme::Github),
            Provider::Stripe => tagged(&stripe::SPEC),
            Provider::Paddle => tagged(&paddle::SPEC),
            Provider::Calendly => tagged(&calendly::SPEC),
            Provider::Mux => tagged(&mux::SPEC),
            Provider::Slack => slack::Slack::new(secrets, window).map(Scheme::Slack),
            Provider::StandardWebhooks | Provider::Clerk | Provider::Resend => {
                standard_webhooks::StandardWebhooks::new(secrets, window)
                    .map(Scheme::StandardWebhooks)
            }
            Provider::Gitlab => Ok(Scheme::Token(token::SharedToken::new(
                gitlab::TOKEN,
                secrets,
            ))),
            Provider::Telegram => Ok(Scheme::Token(token::SharedToken::new(
                telegram::TOKEN,
                secrets,
            ))),
            Provider::Okta => Ok(Scheme::Token(token::SharedToken::new(okta::TOKEN, secrets))),
            Provider::Msgraph => Ok(Scheme::Msgraph(msgraph::Msgraph::new(secrets))),
            Provider::Mailgun => {
                mailgun::Mailgun::new(secrets, configured.map(|_| window)).map(Scheme::Mailgun)
            }
            Provider::Netlify => jws::Jws::netlify(secrets).map(Scheme::Jws),
            Provider::Token => match generic.token {
                Some(params) => token::SharedToken::configured(params, secrets).map(Scheme::Token),
                None => Err("the token provider needs its [token] settings".to_owned()),
            },
            Provider::Jwt => match generic.jwt {
                Some(params) => jws::Jws::configured(params, secrets).map(Scheme::Jws),
                None => Err("the jwt provider needs its [jwt] settings".to_owned()),
            },
            Provider::Basic => basic::Basic::new(secrets).map(Scheme::Basic),
            Provider::Bearer => Ok(Scheme::Token(token::SharedToken::after_scheme(
                http::header::AUTHORIZATION,
                Some("Bearer "),
                secrets,
            ))),
            Provider::Pagerduty => pagerduty::Pagerduty::new(secrets).map(Scheme::Pagerduty),
            Provider::Linear => linear::Linear::new(secrets, window).map(Scheme::Linear),
            Provider::Zoom => zoom::Zoom::new(secrets, window).map(Scheme::Zoom),
            Provider::Twitch => twitch::Twitch::new(secrets, window).map(Scheme::Twitch),
            Provider::Discord => discord::Discord::new(secrets).map(Scheme::Discord),
            Provider::Sendgrid => sendgrid::Sendgrid::new(secrets).map(Scheme::Sendgrid),
            Provider::Square => {
                url_hmac::UrlHmac::new(&url_hmac::SQUARE, secrets).map(Scheme::UrlHmac)
            }
            Provider::Trello => {
                url_hmac::UrlHmac::new(&url_hmac::TRELLO, secrets).map(Scheme::UrlHmac)
            }
            Provider::Twilio => twilio::Twilio::new(secrets).map(Scheme::Twilio),
            Provider::Hubspot => hubspot::Hubspot::new(secrets, window).map(Scheme::Hubspot),
            Provider::Hmac => match generic.hmac {
                Some(params) => hmac::Generic::new(secrets, params, window).map(Scheme::Hmac),
                None => Err("the hmac provider needs its [hmac] settings".to_owned()),
            },
            Provider::Shopify
            | Provider::Intercom
            | Provider::Typeform
            | Provider::Bitbucket
            | Provider::Jira
            | Provider::Meta
            | Provider::X
            | Provider::Dropbox
            | Provider::Box
            | Provider::Teams
            | Provider::Asana
            | Provider::CoinbaseCommerce
            | Provider::Gocardless
            | Provider::LemonSqueezy
            | Provider::Woocommerce
            | Provider::Zendesk
            | Provider::Docusign
            | Provider::Segment
            | Provider::Sentry
            | Provider::Vercel
            | Provider::Webflow => match header_hmac::spec(provider) {
                Some(spec) => {
                    header_hmac::HeaderHmac::new(spec, secrets, configured.map(|_| window))
                        .map(Scheme::HeaderHmac)
                }
                None => Err("no signing spec".to_owned()),
            },
        }
        .map_err(fail)?;
        let window = match &scheme {
            Scheme::Tagged(_)
            | Scheme::Slack(_)
            | Scheme::StandardWebhooks(_)
            | Scheme::Linear(_)
            | Scheme::Zoom(_)
            | Scheme::Twitch(_)
            | Scheme::Hubspot(_) => Some(window),
            Scheme::HeaderHmac(s) => s.window(),
            Scheme::Mailgun(s) => s.window(),
            Scheme::Hmac(g) if g.has_window() => Some(window),
            _ => None,
        };
        if tolerance.is_some() && window.is_none() {
            tracing::warn!(%provider, "tolerance is ignored: these requests carry no signed timestamp");
        }
        Ok(Self {
            provider,
            scheme,
            window,
        })
    }

    /// The verifier of a source whose provider sends the secret in a
    /// handshake ([`Provider::secret_handshake_header`]) before it has:
    /// every request fails with [`VerifyError::AwaitingHandshake`].
    pub fn awaiting_handshake(provider: Provider) -> Self {
        Self {
            provider,
            scheme: Scheme::AwaitingHandshake,
            window: None,
        }
    }

    /// Whether this verifier waits for its provider's handshake.
    pub fn is_awaiting_handshake(&self) -> bool {
        matches!(self.scheme, Scheme::AwaitingHandshake)
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The replay window in force, if any.
    pub fn window(&self) -> Option<Window> {
        self.window
    }

    /// The request header carrying this source's credential, if its scheme
    /// reads one (a shared token, HTTP Basic). Callers must not store, log
    /// or forward it.
    pub fn secret_header(&self) -> Option<&HeaderName> {
        static AUTHORIZATION: HeaderName = http::header::AUTHORIZATION;
        match &self.scheme {
            Scheme::Token(t) => t.header(),
            Scheme::Basic(_) => Some(&AUTHORIZATION),
            _ => None,
        }
    }

    /// Check a request whose URL is not known (see [`Self::verify_at`]).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        self.verify_at(headers, body, None, now)
    }

    /// Check the request. Constant-time comparison; any active secret passes.
    /// `url` is the URL the provider called, query included, for the
    /// schemes that sign it ([`Provider::signs_url`]); a token in the query
    /// is read from it too. Never panics, and allocates only when it fails
    /// or the scheme signs the URL.
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        url: Option<&str>,
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let query = url.and_then(|u| u.split_once('?')).map(|(_, q)| q);
        self.verify_request(headers, body, url, query, now)
    }

    /// [`Self::verify_at`], with the raw query string (no `?`) given apart
    /// from the URL: the receive path knows it even when no URL is known.
    pub fn verify_request(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        url: Option<&str>,
        query: Option<&str>,
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        match &self.scheme {
            Scheme::Github(s) => s.verify(headers, body),
            Scheme::Tagged(s) => s.verify(headers, body, now),
            Scheme::HeaderHmac(s) => s.verify(headers, body, now),
            Scheme::Slack(s) => s.verify(headers, body, now),
            Scheme::StandardWebhooks(s) => s.verify(headers, body, now),
            Scheme::Token(s) => s.verify(headers, query),
            Scheme::Pagerduty(s) => s.verify(headers, body),
            Scheme::Linear(s) => s.verify(headers, body, now),
            Scheme::Zoom(s) => s.verify(headers, body, now),
            Scheme::Twitch(s) => s.verify(headers, body, now),
            Scheme::Discord(s) => s.verify(headers, body),
            Scheme::Sendgrid(s) => s.verify(headers, body),
            Scheme::UrlHmac(s) => s.verify(headers, body, url),
            Scheme::Twilio(s) => s.verify(headers, body, url),
            Scheme::Hubspot(s) => s.verify(headers, body, url, now),
            Scheme::Msgraph(s) => s.verify(body),
            Scheme::Mailgun(s) => s.verify(body, now),
            Scheme::Jws(s) => s.verify(headers, body, now),
            Scheme::Basic(s) => s.verify(headers),
            Scheme::Hmac(s) => s.verify(headers, body, now),
            Scheme::AwaitingHandshake => Err(VerifyError::AwaitingHandshake),
        }
    }

    /// The current (first) secret's HMAC of `message`, for a handshake
    /// whose answer proves the secret: Zoom's URL validation, X's CRC.
    /// `None` for schemes that answer none this way.
    pub fn reply_tag(&self, message: &[u8]) -> Option<Vec<u8>> {
        match &self.scheme {
            Scheme::Zoom(z) => z.reply_tag(message),
            Scheme::HeaderHmac(h) if self.provider == Provider::X => h.reply_tag(message),
            _ => None,
        }
    }

    fn key_count(&self) -> usize {
        match &self.scheme {
            Scheme::Github(s) => s.key_count(),
            Scheme::Tagged(s) => s.key_count(),
            Scheme::HeaderHmac(s) => s.key_count(),
            Scheme::Slack(s) => s.key_count(),
            Scheme::StandardWebhooks(s) => s.key_count(),
            Scheme::Token(s) => s.key_count(),
            Scheme::Pagerduty(s) => s.key_count(),
            Scheme::Linear(s) => s.key_count(),
            Scheme::Zoom(s) => s.key_count(),
            Scheme::Twitch(s) => s.key_count(),
            Scheme::Discord(s) => s.key_count(),
            Scheme::Sendgrid(s) => s.key_count(),
            Scheme::UrlHmac(s) => s.key_count(),
            Scheme::Twilio(s) => s.key_count(),
            Scheme::Hubspot(s) => s.key_count(),
            Scheme::Msgraph(s) => s.key_count(),
            Scheme::Mailgun(s) => s.key_count(),
            Scheme::Jws(s) => s.key_count(),
            Scheme::Basic(s) => s.key_count(),
            Scheme::Hmac(s) => s.key_count(),
            Scheme::AwaitingHandshake => 0,
        }
    }
}

/// Shows the shape, never key material.
impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("provider", &self.provider)
            .field("secrets", &self.key_count())
            .field("window", &self.window())
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            let name = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
            h.append(name, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    pub(crate) fn at(secs: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Hex HMAC-SHA256 of the concatenated parts: the tests' own signer,
    /// independent of the code under test.
    pub(crate) fn hex_hmac(secret: &str, parts: &[&[u8]]) -> String {
        hex::encode(hmac256(secret, parts))
    }

    pub(crate) fn b64_hmac(secret: &str, parts: &[&[u8]]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(hmac256(secret, parts))
    }

    fn hmac256(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
        use ::hmac::Mac;
        let mut m = ::hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }

    /// One request to a preset's verifier, built up and checked.
    pub(crate) struct Case {
        provider: Provider,
        secrets: Vec<String>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        now: SystemTime,
        tolerance: Option<Duration>,
    }

    impl Case {
        pub(crate) fn new(provider: Provider, secrets: &[&str]) -> Self {
            Self {
                provider,
                secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
                headers: Vec::new(),
                body: Vec::new(),
                now: SystemTime::now(),
                tolerance: None,
            }
        }

        pub(crate) fn tolerance(mut self, tolerance: Duration) -> Self {
            self.tolerance = Some(tolerance);
            self
        }

        pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.to_owned(), value.to_owned()));
            self
        }

        pub(crate) fn body(mut self, body: &[u8]) -> Self {
            self.body = body.to_vec();
            self
        }

        pub(crate) fn now(mut self, now: SystemTime) -> Self {
            self.now = now;
            self
        }

        pub(crate) fn run(&self) -> Result<(), VerifyError> {
            let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
            let pairs: Vec<(&str, &str)> = self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            verifier_with(self.provider, &secrets, None, self.tolerance).verify(
                &headers(&pairs),
                &self.body,
                self.now,
            )
        }

        #[track_caller]
        pub(crate) fn passes(&self) {
            assert_eq!(self.run(), Ok(()), "{:?}", self.headers);
        }

        #[track_caller]
        pub(crate) fn fails(&self, want: VerifyError) {
            assert_eq!(self.run(), Err(want), "{:?}", self.headers);
        }
    }

    pub(crate) fn verifier(provider: Provider, secrets: &[&str]) -> Verifier {
        verifier_with(provider, secrets, None, None)
    }

    pub(crate) fn verifier_with(
        provider: Provider,
        secrets: &[&str],
        hmac: Option<&HmacParams>,
        tolerance: Option<Duration>,
    ) -> Verifier {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        let generic = GenericParams {
            hmac,
            token: (provider == Provider::Token).then(|| &*TEST_TOKEN),
            jwt: (provider == Provider::Jwt).then(|| &*TEST_JWT),
        };
        Verifier::with_params(provider, &secrets, generic, tolerance).unwrap()
    }

    /// The generic `token` settings the tests' verifiers take.
    pub(crate) static TEST_TOKEN: std::sync::LazyLock<TokenParams> =
        std::sync::LazyLock::new(|| TokenParams {
            header: Some("X-Test-Token".into()),
            query: None,
        });

    /// The generic `jwt` settings the tests' verifiers take.
    pub(crate) static TEST_JWT: std::sync::LazyLock<JwtParams> =
        std::sync::LazyLock::new(|| JwtParams {
            header: "X-Test-Jwt".into(),
            prefix: String::new(),
            issuer: Some("sluice-test".into()),
            body_hash_claim: "body_sha256".into(),
        });

    #[test]
    fn verifier_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Verifier>();
    }

    #[test]
    fn presets_table() {
        assert_eq!(default_tolerance(Provider::Github), None);
        assert_eq!(default_tolerance(Provider::Shopify), None);
        assert_eq!(default_tolerance(Provider::Gitlab), None);
        assert_eq!(
            preset(Provider::Stripe),
            Preset {
                tolerance: Some(FIVE_MINUTES),
                direction: ReplayDirection::OldOnly
            }
        );
        for p in [Provider::Slack, Provider::StandardWebhooks, Provider::Hmac] {
            assert_eq!(
                preset(p),
                Preset {
                    tolerance: Some(FIVE_MINUTES),
                    direction: ReplayDirection::Both
                },
                "{p}"
            );
        }
    }

    #[test]
    fn window_reflects_preset_and_override() {
        assert_eq!(verifier(Provider::Github, &["s"]).window(), None);
        assert_eq!(
            verifier_with(
                Provider::Stripe,
                &["s"],
                None,
                Some(Duration::from_secs(60))
            )
            .window(),
            Some(Window {
                tolerance: Duration::from_secs(60),
                direction: ReplayDirection::OldOnly
            })
        );
        assert_eq!(
            verifier(Provider::Slack, &["s"]).window(),
            Some(Window {
                tolerance: FIVE_MINUTES,
                direction: ReplayDirection::Both
            })
        );
    }

    #[test]
    fn provider_names_match_serde() {
        for p in Provider::ALL {
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert_eq!(
            serde_json::from_str::<Provider>("\"svix\"").unwrap(),
            Provider::StandardWebhooks
        );
    }

    #[test]
    fn config_errors_never_contain_the_secret() {
        let err = Verifier::new(Provider::Github, &[], None, None).unwrap_err();
        assert!(err.starts_with("github:"), "{err}");
        let err =
            Verifier::new(Provider::Stripe, &[Secret::new("whsec_abc\n")], None, None).unwrap_err();
        assert!(
            err.contains("secret #1") && !err.contains("whsec_abc"),
            "{err}"
        );
        let err = Verifier::new(
            Provider::StandardWebhooks,
            &[Secret::new("whsec_%%notb64%%")],
            None,
            None,
        )
        .unwrap_err();
        assert!(err.contains("base64") && !err.contains("notb64"), "{err}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let v = verifier(Provider::Stripe, &["whsec_topsecret"]);
        let dbg = format!("{v:?}");
        assert!(
            dbg.contains("Stripe") && dbg.contains("secrets: 1"),
            "{dbg}"
        );
        assert!(!dbg.contains("topsecret"), "{dbg}");
    }

    /// A request each preset accepts: its headers, signed over `body` at
    /// `now` with the secret `SIGNED_WITH`.
    fn signed(provider: Provider, body: &[u8], now: u64) -> Vec<(&'static str, String)> {
        use ::hmac::{Hmac, Mac};
        use base64::Engine as _;
        use sha2::Sha256;
        let mac = |key: &[u8], parts: &[&[u8]]| {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        };
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let secret = SIGNED_WITH.as_bytes();
        let ts = now.to_string();
        match provider {
            Provider::Github => vec![(
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(mac(secret, &[body]))),
            )],
            Provider::Stripe => vec![(
                "stripe-signature",
                format!(
                    "t={ts},v1={}",
                    hex::encode(mac(secret, &[ts.as_bytes(), b".", body]))
                ),
            )],
            Provider::Slack => vec![
                (
                    "x-slack-signature",
                    format!(
                        "v0={}",
                        hex::encode(mac(secret, &[b"v0:", ts.as_bytes(), b":", body]))
                    ),
                ),
                ("x-slack-request-timestamp", ts.clone()),
            ],
            Provider::Shopify => vec![("x-shopify-hmac-sha256", b64(&mac(secret, &[body])))],
            Provider::StandardWebhooks => {
                let key = base64::engine::general_purpose::STANDARD
                    .decode(SIGNED_WITH.trim_start_matches("whsec_"))
                    .unwrap();
                let sig = mac(&key, &[b"msg_1.", ts.as_bytes(), b".", body]);
                vec![
                    ("webhook-id", "msg_1".to_owned()),
                    ("webhook-timestamp", ts.clone()),
                    ("webhook-signature", format!("v1,{}", b64(&sig))),
                ]
            }
            Provider::Gitlab => vec![("x-gitlab-token", SIGNED_WITH.to_owned())],
            Provider::Hmac => vec![
                (
                    "x-sig",
                    hex::encode(mac(secret, &[ts.as_bytes(), b".", body])),
                ),
                ("x-ts", ts.clone()),
            ],
            Provider::Paddle => vec![(
                "paddle-signature",
                format!(
                    "ts={ts};h1={}",
                    hex::encode(mac(secret, &[ts.as_bytes(), b":", body]))
                ),
            )],
            Provider::Calendly => vec![(
                "calendly-webhook-signature",
                format!(
                    "t={ts},v1={}",
                    hex::encode(mac(secret, &[ts.as_bytes(), b".", body]))
                ),
            )],
            Provider::Pagerduty => vec![(
                "x-pagerduty-signature",
                format!("v1={}", hex::encode(mac(secret, &[body]))),
            )],
            Provider::Intercom => {
                let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).unwrap();
                m.update(body);
                vec![(
                    "x-hub-signature",
                    format!("sha1={}", hex::encode(m.finalize().into_bytes())),
                )]
            }
            Provider::Typeform => vec![(
                "typeform-signature",
                format!("sha256={}", b64(&mac(secret, &[body]))),
            )],
            // The time is the body's `webhookTimestamp`.
            Provider::Linear => vec![("linear-signature", hex::encode(mac(secret, &[body])))],
            Provider::Zoom => vec![
                (
                    "x-zm-signature",
                    format!(
                        "v0={}",
                        hex::encode(mac(secret, &[b"v0:", ts.as_bytes(), b":", body]))
                    ),
                ),
                ("x-zm-request-timestamp", ts.clone()),
            ],
            Provider::Twitch => {
                let at =
                    humantime::format_rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(now))
                        .to_string();
                let sig = mac(secret, &[b"m-1", at.as_bytes(), body]);
                vec![
                    ("twitch-eventsub-message-id", "m-1".to_owned()),
                    ("twitch-eventsub-message-timestamp", at),
                    (
                        "twitch-eventsub-message-signature",
                        format!("sha256={}", hex::encode(sig)),
                    ),
                ]
            }
            Provider::Discord => {
                use ed25519_dalek::Signer;
                let sig = ed25519_key().sign(&[ts.as_bytes(), body].concat());
                vec![
                    ("x-signature-ed25519", hex::encode(sig.to_bytes())),
                    ("x-signature-timestamp", ts.clone()),
                ]
            }
            Provider::Sendgrid => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = p256_key().sign(&[ts.as_bytes(), body].concat());
                vec![
                    (
                        "x-twilio-email-event-webhook-signature",
                        b64(sig.to_der().as_bytes()),
                    ),
                    ("x-twilio-email-event-webhook-timestamp", ts.clone()),
                ]
            }
            Provider::Clerk | Provider::Resend => {
                let key = base64::engine::general_purpose::STANDARD
                    .decode(SIGNED_WITH.trim_start_matches("whsec_"))
                    .unwrap();
                let sig = mac(&key, &[b"msg_1.", ts.as_bytes(), b".", body]);
                vec![
                    ("svix-id", "msg_1".to_owned()),
                    ("svix-timestamp", ts.clone()),
                    ("svix-signature", format!("v1,{}", b64(&sig))),
                ]
            }
            Provider::Telegram => vec![("x-telegram-bot-api-secret-token", SIGNED_WITH.to_owned())],
            Provider::Okta => vec![("authorization", SIGNED_WITH.to_owned())],
            // Their credential is in the body, not a header.
            Provider::Msgraph | Provider::Mailgun => vec![],
            Provider::Teams => vec![(
                "authorization",
                format!(
                    "HMAC {}",
                    b64(&mac(&STANDARD_B64.decode(TEAMS_KEY).unwrap(), &[body]))
                ),
            )],
            Provider::Netlify => vec![(
                "x-webhook-signature",
                jws::tests::token(SIGNED_WITH, r#"{"alg":"HS256"}"#, &jws::tests::claims(body)),
            )],
            Provider::Basic => vec![(
                "authorization",
                format!("Basic {}", b64(key_for(provider).as_bytes())),
            )],
            Provider::Bearer => vec![("authorization", format!("Bearer {SIGNED_WITH}"))],
            Provider::Token => vec![("x-test-token", SIGNED_WITH.to_owned())],
            Provider::Jwt => vec![(
                "x-test-jwt",
                jws::tests::token(
                    SIGNED_WITH,
                    r#"{"alg":"HS256"}"#,
                    &serde_json::json!({
                        "iss": "sluice-test",
                        "body_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body)),
                    }),
                ),
            )],
            Provider::Mux => vec![(
                "mux-signature",
                format!(
                    "t={ts},v1={}",
                    hex::encode(mac(secret, &[ts.as_bytes(), b".", body]))
                ),
            )],
            Provider::Bitbucket | Provider::Jira => vec![(
                "x-hub-signature",
                format!("sha256={}", hex::encode(mac(secret, &[body]))),
            )],
            Provider::Meta => vec![(
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(mac(secret, &[body]))),
            )],
            Provider::X => vec![(
                "x-twitter-webhooks-signature",
                format!("sha256={}", b64(&mac(secret, &[body]))),
            )],
            Provider::Dropbox => vec![("x-dropbox-signature", hex::encode(mac(secret, &[body])))],
            Provider::Asana => vec![("x-hook-signature", hex::encode(mac(secret, &[body])))],
            Provider::CoinbaseCommerce => {
                vec![("x-cc-webhook-signature", hex::encode(mac(secret, &[body])))]
            }
            Provider::Gocardless => vec![("webhook-signature", hex::encode(mac(secret, &[body])))],
            Provider::LemonSqueezy => vec![("x-signature", hex::encode(mac(secret, &[body])))],
            Provider::Woocommerce => vec![("x-wc-webhook-signature", b64(&mac(secret, &[body])))],
            Provider::Docusign => vec![("x-docusign-signature-1", b64(&mac(secret, &[body])))],
            Provider::Sentry => vec![("sentry-hook-signature", hex::encode(mac(secret, &[body])))],
            Provider::Segment | Provider::Vercel => {
                let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).unwrap();
                m.update(body);
                let name = if provider == Provider::Segment {
                    "x-signature"
                } else {
                    "x-vercel-signature"
                };
                vec![(name, hex::encode(m.finalize().into_bytes()))]
            }
            Provider::Webflow => {
                let ms = format!("{now}000");
                vec![
                    (
                        "x-webflow-signature",
                        hex::encode(mac(secret, &[ms.as_bytes(), b":", body])),
                    ),
                    ("x-webflow-timestamp", ms),
                ]
            }
            Provider::Square => vec![(
                "x-square-hmacsha256-signature",
                b64(&mac(secret, &[SIGNED_URL.as_bytes(), body])),
            )],
            Provider::Hubspot => {
                let ms = format!("{now}000");
                vec![
                    (
                        "x-hubspot-signature-v3",
                        b64(&mac(
                            secret,
                            &[b"POST", SIGNED_URL.as_bytes(), body, ms.as_bytes()],
                        )),
                    ),
                    ("x-hubspot-request-timestamp", ms),
                ]
            }
            Provider::Twilio | Provider::Trello => {
                // The body is JSON: Twilio signs the URL alone (without a
                // `bodySHA256` the body is read as a form with no
                // parameters… but a JSON body does parse as one).
                let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).unwrap();
                if provider == Provider::Trello {
                    m.update(body);
                    m.update(SIGNED_URL.as_bytes());
                    vec![("x-trello-webhook", b64(&m.finalize().into_bytes()))]
                } else {
                    m.update(SIGNED_URL.as_bytes());
                    // Twilio signs the parameters sorted, whatever their
                    // order in the body (a `&` in a JSON string splits it).
                    let mut params: Vec<_> = url::form_urlencoded::parse(body).collect();
                    params.sort();
                    params.dedup();
                    for (k, v) in params {
                        m.update(k.as_bytes());
                        m.update(v.as_bytes());
                    }
                    vec![("x-twilio-signature", b64(&m.finalize().into_bytes()))]
                }
            }
            Provider::Zendesk | Provider::Box => {
                let at =
                    humantime::format_rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(now))
                        .to_string();
                if provider == Provider::Zendesk {
                    vec![
                        (
                            "x-zendesk-webhook-signature",
                            b64(&mac(secret, &[at.as_bytes(), body])),
                        ),
                        ("x-zendesk-webhook-signature-timestamp", at),
                    ]
                } else {
                    vec![
                        (
                            "box-signature-primary",
                            b64(&mac(secret, &[body, at.as_bytes()])),
                        ),
                        ("box-delivery-timestamp", at),
                    ]
                }
            }
        }
    }

    /// The URL `signed` signs for the presets that sign it.
    const SIGNED_URL: &str = "https://hooks.example.com/hooks/src?a=1";

    /// Valid base64 after `whsec_`, so every symmetric preset can key
    /// with it.
    const SIGNED_WITH: &str = "whsec_c2VjcmV0LWZvci1ldmVyeS1wcmVzZXQ=";

    /// A Mailgun `signature` object under `SIGNED_WITH`, for a body.
    fn mailgun_signature(now: u64) -> serde_json::Value {
        let ts = now.to_string();
        serde_json::json!({
            "timestamp": ts,
            "token": "tok-1",
            "signature": hex_hmac(SIGNED_WITH, &[ts.as_bytes(), b"tok-1"]),
        })
    }

    /// Teams shows its security token as base64.
    const TEAMS_KEY: &str = "c2VjcmV0LWZvci10ZWFtcw==";
    use base64::engine::general_purpose::STANDARD as STANDARD_B64;

    fn ed25519_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[9; 32])
    }

    fn p256_key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_bytes(&[9; 32].into()).unwrap()
    }

    /// The secret `signed` signs for: `SIGNED_WITH`, or the public key of
    /// an asymmetric preset.
    pub(crate) fn key_for(p: Provider) -> String {
        match p {
            Provider::Discord => hex::encode(ed25519_key().verifying_key().to_bytes()),
            Provider::Basic => "sluice:secret-for-every-preset".to_owned(),
            Provider::Teams => TEAMS_KEY.to_owned(),
            Provider::Sendgrid => sendgrid::tests::public(&p256_key()),
            _ => SIGNED_WITH.to_owned(),
        }
    }

    fn generic() -> HmacParams {
        HmacParams {
            signature_header: "X-Sig".into(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: String::new(),
            signed_content: "{timestamp}.{body}".into(),
            timestamp_header: Some("X-Ts".into()),
            id_header: None,
            type_header: None,
        }
    }

    /// Each header a preset reads, sent twice (a valid copy and a wrong
    /// one), is refused the same way in both orders: never accepted in one
    /// order and rejected in the other.
    #[test]
    fn a_repeated_header_is_refused_whatever_the_order() {
        let now = 1_700_000_000;
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(now);
        let body = br#"{"id":"evt_1","type":"t","webhookTimestamp":1700000000000}"#;
        let params = generic();
        // Microsoft Graph and Mailgun read no header.
        for p in Provider::ALL
            .into_iter()
            .filter(|p| !matches!(p, Provider::Msgraph | Provider::Mailgun))
        {
            let v = verifier_with(p, &[&key_for(p)], Some(&params), None);
            let good = signed(p, body, now);
            let pairs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let url = Some(SIGNED_URL);
            assert_eq!(v.verify_at(&headers(&pairs), body, url, at), Ok(()), "{p}");
            for (name, value) in &good {
                let wrong = format!("{value}0");
                for order in [[value.as_str(), &wrong], [&wrong, value.as_str()]] {
                    let mut h = HeaderMap::new();
                    for (k, v) in &good {
                        if k != name {
                            h.insert(*k, http::HeaderValue::from_str(v).unwrap());
                        }
                    }
                    for v in order {
                        h.append(*name, http::HeaderValue::from_str(v).unwrap());
                    }
                    let err = v.verify_at(&h, body, url, at).unwrap_err();
                    assert_eq!(
                        err,
                        VerifyError::RepeatedHeader((*name).into()),
                        "{p} {order:?}"
                    );
                    assert!(err.is_malformed_request());
                    assert_eq!(err.code(), "malformed_header");
                }
                // The same copy twice is still two headers.
                let mut h = headers(&pairs);
                h.append(*name, http::HeaderValue::from_str(value).unwrap());
                assert_eq!(
                    v.verify_at(&h, body, url, at),
                    Err(VerifyError::RepeatedHeader((*name).into())),
                    "{p}"
                );
            }
        }
    }

    /// Junk of every shape through every scheme: errors, never panics.
    #[test]
    fn garbage_never_panics() {
        let params = HmacParams {
            signature_header: "x-sig".into(),
            algorithm: Algorithm::Sha512,
            encoding: Encoding::Base64,
            prefix: "v=".into(),
            signed_content: "{timestamp}.{id}.{body}".into(),
            timestamp_header: Some("x-ts".into()),
            id_header: Some("x-id".into()),
            type_header: None,
        };
        let values = [
            "",
            " ",
            ",",
            "=",
            "v1,",
            "t=",
            "t=,v1=",
            "sha256=",
            "v0=",
            "v=",
            "\t",
            "é",
            "v1,,v1,",
            "t=99999999999999999999",
            "t=1,v1=zz,v1=00",
            "sha256=0",
            "v1,====",
            "{}{}",
        ];
        let names = [
            "x-hub-signature-256",
            "x-hub-signature",
            "stripe-signature",
            "x-slack-signature",
            "x-slack-request-timestamp",
            "x-shopify-hmac-sha256",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-signature",
            "x-gitlab-token",
            "x-sig",
            "x-ts",
            "x-id",
            "paddle-signature",
            "calendly-webhook-signature",
            "x-pagerduty-signature",
            "typeform-signature",
            "linear-signature",
            "x-zm-signature",
            "x-zm-request-timestamp",
            "twitch-eventsub-message-id",
            "twitch-eventsub-message-timestamp",
            "twitch-eventsub-message-signature",
            "x-signature-ed25519",
            "x-signature-timestamp",
            "x-twilio-email-event-webhook-signature",
            "x-twilio-email-event-webhook-timestamp",
        ];
        for p in Provider::ALL {
            let key = match p {
                Provider::Discord | Provider::Sendgrid | Provider::Basic => key_for(p),
                _ => "c2VjcmV0".to_owned(),
            };
            let v = verifier_with(p, &[&key], Some(&params), None);
            for value in values {
                let mut h = HeaderMap::new();
                for name in names {
                    if let Ok(hv) = http::HeaderValue::from_str(value) {
                        h.insert(http::HeaderName::from_static(name), hv);
                    }
                }
                assert!(
                    v.verify_at(&h, b"body", Some(SIGNED_URL), SystemTime::UNIX_EPOCH)
                        .is_err(),
                    "{p} {value:?}"
                );
                assert!(
                    v.verify(&h, b"", SystemTime::now()).is_err(),
                    "{p} {value:?}"
                );
            }
        }
    }

    /// Header names some scheme reads: an "unrelated" header is none of
    /// these (a second `webhook-signature` would rightly change the
    /// outcome of a request signed with `svix-*` headers).
    fn read_by_some_scheme() -> &'static [&'static str] {
        static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
        NAMES.get_or_init(read_names)
    }

    fn read_names() -> Vec<&'static str> {
        const ALTERNATES: &[&str] = &[
            "x-hub-signature",
            "x-hub-signature-256",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-id",
            "svix-timestamp",
            "svix-signature",
            "box-signature-secondary",
            "x-docusign-signature-2",
            "x-id",
        ];
        let mut names = ALTERNATES.to_vec();
        for p in Provider::ALL {
            names.extend(signed(p, b"{}", 0).into_iter().map(|(k, _)| k));
        }
        names
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 256,
            failure_persistence: None,
            // ChaCha, the default, is slow in a debug build.
            rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
            ..proptest::test_runner::Config::default()
        })]

        /// A correctly signed request to every preset still verifies after
        /// arbitrary unrelated headers are added, repeated or not, with
        /// any value a header can hold (opaque bytes included), and
        /// whatever the body's text (SendGrid's excepted, see below).
        #[test]
        fn a_signed_request_still_verifies_with_unrelated_headers_added(
            extra in proptest::collection::vec(
                (
                    "[a-z][a-z0-9-]{0,24}",
                    // What a header value may hold: visible ASCII, space,
                    // tab and opaque bytes.
                    proptest::collection::vec(
                        proptest::prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, proptest::strategy::Just(b'\t')],
                        0..200,
                    ),
                    1..4usize,
                ),
                0..12,
            ),
            text in ".{0,64}",
        ) {
            let now = 1_700_000_000;
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(now);
            // JSON with the fields the body-timestamped presets (Linear)
            // and Microsoft Graph (its clientState) read.
            let body = |text: &str| {
                serde_json::json!({
                    "id": "evt_1",
                    "type": "t",
                    "webhookTimestamp": now * 1000,
                    "text": text,
                    "value": [{"clientState": SIGNED_WITH, "text": text}],
                    "signature": mailgun_signature(now),
                })
                .to_string()
            };
            let (varied, fixed) = (body(&text), body(""));
            static SENDGRID: std::sync::OnceLock<Vec<(&str, String)>> = std::sync::OnceLock::new();
            let params = generic();
            let read = read_by_some_scheme();
            let mut unrelated = Vec::new();
            for (name, value, times) in &extra {
                if read.contains(&name.as_str()) {
                    continue;
                }
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    http::HeaderValue::from_bytes(value),
                ) {
                    unrelated.extend(std::iter::repeat_n((name, value), *times));
                }
            }
            for p in Provider::ALL {
                let v = verifier_with(p, &[&key_for(p)], Some(&params), None);
                // A P-256 signature costs milliseconds in a debug build:
                // SendGrid's request keeps one body, signed once.
                let (body, good) = if p == Provider::Sendgrid {
                    (fixed.as_bytes(), SENDGRID.get_or_init(|| signed(p, fixed.as_bytes(), now)).clone())
                } else {
                    (varied.as_bytes(), signed(p, varied.as_bytes(), now))
                };
                let pairs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let mut h = headers(&pairs);
                for (name, value) in &unrelated {
                    h.append(name.clone(), value.clone());
                }
                proptest::prop_assert_eq!(
                    v.verify_at(&h, body, Some(SIGNED_URL), at),
                    Ok(()),
                    "{} {:?}",
                    p,
                    h
                );
            }
        }
    }
}
