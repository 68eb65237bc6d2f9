//! `POST /admin/sources/{id}/verify`: whether a captured request verifies
//! against a source, and if not, why. Nothing is committed or routed: it
//! runs the receive path's own check ([`verify_and_build`]) on the bytes
//! given. The answer names a missing header, a timestamp outside the
//! window or no matching secret, never a secret or an expected tag.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::config_ops::Reply;
use super::input::json_body;
use super::ports::Kind;
use super::views::VerifyResult;
use super::{Admin, AdminError};
use crate::config::SourceError;
use crate::pipeline::receive::{Target, verify_and_build};
use crate::time::from_ms;

/// A captured request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyRequest {
    /// `[name, value]` pairs, as the request carried them.
    headers: Vec<(String, String)>,
    #[serde(default)]
    #[schema(default = "")]
    body: String,
    #[serde(default)]
    #[schema(default = BodyEncoding::default)]
    body_encoding: BodyEncoding,
    /// When the request was received (RFC 3339, or a duration ago), for
    /// the replay window; now when absent.
    #[serde(default)]
    #[schema(nullable = false)]
    at: Option<String>,
    /// The URL the request was sent to, query included, for providers that
    /// sign it; the source's `public_url` replaces its scheme, host and path.
    #[serde(default)]
    #[schema(format = "uri", nullable = false)]
    url: Option<String>,
}

/// How a body is written in JSON: as text, or base64 when it is not UTF-8.
#[derive(Deserialize, Serialize, ToSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum BodyEncoding {
    #[default]
    Utf8,
    Base64,
}

fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap, AdminError> {
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        let bad = |what: &str| AdminError::invalid(format!("headers[{i}]"), what.to_owned());
        let name = HeaderName::try_from(name.as_str()).map_err(|_| bad("not a header name"))?;
        let value = HeaderValue::try_from(value.as_str()).map_err(|_| bad("not a header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

impl Admin {
    pub(crate) async fn verify_request(&self, id: &str, body: &[u8]) -> Result<Reply, AdminError> {
        let input: VerifyRequest = json_body(body)?;
        let headers = header_map(&input.headers)?;
        let body = match input.body_encoding {
            BodyEncoding::Utf8 => Bytes::from(input.body),
            BodyEncoding::Base64 => STANDARD
                .decode(input.body.as_bytes())
                .map(Bytes::from)
                .map_err(|_| AdminError::invalid("body", "not base64"))?,
        };
        let at = match input.at.as_deref() {
            None => SystemTime::now(),
            Some(t) => from_ms(super::input::time_ms("at", t)?),
        };
        let source = match self.ports.registry.source(id).await {
            Ok(Some(s)) => s,
            // Disabled sources are not served, so the registry does not
            // have them: say which it is.
            Ok(None) => {
                return Err(
                    match self.ports.config.get_config(Kind::Source, id).await? {
                        Some(_) => AdminError::Conflict(format!(
                            "source {id:?} is disabled (its webhooks answer 404); enable it to verify"
                        )),
                        None => AdminError::NotFound(format!("no source {id:?}")),
                    },
                );
            }
            Err(SourceError::Broken(b)) => {
                return Err(AdminError::Conflict(format!(
                    "source {id:?} cannot verify now: {}",
                    b.reason
                )));
            }
            Err(SourceError::Unavailable(u)) => return Err(AdminError::Unavailable(u)),
        };
        let (base, query) = match input.url.as_deref() {
            Some(u) => match u.split_once('?') {
                Some((base, q)) => (Some(base), Some(q)),
                None => (Some(u), None),
            },
            None => (None, None),
        };
        let seen_url = base.as_slice();
        let target = Target { query, seen_url };
        let verdict = match verify_and_build(&source, headers, body, target, at) {
            Ok(built) => VerifyResult::verified(
                built.event.id,
                built.event.event_type,
                built.handshake.is_some(),
            ),
            Err(e) => VerifyResult::refused(e.code(), e.to_string()),
        };
        Reply::json(200, &verdict)
    }
}
