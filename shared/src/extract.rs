//! Event id and type extraction, per provider.
//!
//! CONTRACT (placeholder body; the verification work fills it in).

use http::HeaderMap;

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

pub fn extract(
    provider: Provider,
    hmac: Option<&HmacParams>,
    headers: &HeaderMap,
    body: &[u8],
) -> Extracted {
    let _ = (provider, hmac, headers);
    Extracted {
        id: crate::extract::sha256_hex(body),
        event_type: String::new(),
        handshake: None,
    }
}

pub fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}
