//! Outbound signing with Standard Webhooks.
//!
//! CONTRACT (placeholder bodies; the delivery work fills them in).

/// A subscription's signing key: the decoded bytes of a `whsec_…` secret.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// Parse `whsec_<base64>`.
    pub fn from_whsec(s: &str) -> Result<Self, String> {
        Ok(Self(s.as_bytes().to_vec()))
    }
}

/// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
pub fn signature(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let _ = (key, msg_id, timestamp, body);
    String::new()
}
