//! Zoom: `x-zm-signature: v0=<hex>` over `v0:{x-zm-request-timestamp}:{body}`
//! (HMAC-SHA256 under the app's secret token). Zoom's URL validation
//! (`endpoint.url_validation`) is answered with the `plainToken` and its
//! hex HMAC under the same secret ([`Zoom::reply_tag`]).

use std::time::SystemTime;

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::VerifyError;
use super::common::{Keys, Window, decode_hex, header, ok_if, strip_prefix_ci};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("x-zm-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-zm-request-timestamp");

pub(super) struct Zoom {
    keys: Keys<Hmac<Sha256>>,
    window: Window,
}

impl Zoom {
    pub(super) fn new(secrets: &[Secret], window: Window) -> Result<Self, String> {
        Ok(Self {
            keys: Keys::from_secrets(secrets)?,
            window,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let value = header(headers, &SIG)?;
        let ts = header(headers, &TIMESTAMP)?;
        let hex = strip_prefix_ci(value, "v0=").ok_or(VerifyError::MalformedSignature)?;
        let mut sig = [0u8; 32];
        if !decode_hex(hex, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        self.window.check(ts, now)?;
        ok_if(
            self.keys
                .matches(&[b"v0:", ts.as_bytes(), b":", body], &sig),
        )
    }

    /// The HMAC of `message` under the current (first) secret: hex-encoded,
    /// a URL validation's `encryptedToken`.
    pub(super) fn reply_tag(&self, message: &[u8]) -> Option<Vec<u8>> {
        self.keys.first_tag(&[message])
    }
}

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, at, hex_hmac, verifier};

    const SECRET: &str = "zoom-secret-token";
    const BODY: &[u8] = br#"{"event":"meeting.started","event_ts":1700000000000,"payload":{}}"#;
    const T: u64 = 1_700_000_000;

    fn case(sig: &str, ts: &str, body: &[u8], now: u64) -> Case {
        Case::new(Provider::Zoom, &[SECRET])
            .header("x-zm-signature", sig)
            .header("x-zm-request-timestamp", ts)
            .body(body)
            .now(at(now))
    }

    fn sign(ts: u64, body: &[u8]) -> String {
        format!(
            "v0={}",
            hex_hmac(SECRET, &[b"v0:", ts.to_string().as_bytes(), b":", body])
        )
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        let ts = T.to_string();
        case(&sign(T, BODY), &ts, BODY, T).passes();
        case(&sign(T, BODY), &ts, b"{}", T).fails(InvalidSignature);
        case(&sign(T, BODY), "1700000001", BODY, T).fails(InvalidSignature);
        case(&sign(T, BODY), &ts, BODY, T + 301).fails(TimestampOutOfWindow);
        case(&sign(T, BODY), &ts, BODY, T - 301).fails(TimestampOutOfWindow);
        case(&sign(T, BODY)[3..], &ts, BODY, T).fails(MalformedSignature);
        case(&sign(T, BODY), "noon", BODY, T).fails(MalformedTimestamp);
        Case::new(Provider::Zoom, &[SECRET])
            .header("x-zm-signature", &sign(T, BODY))
            .body(BODY)
            .fails(MissingHeader("x-zm-request-timestamp".into()));
    }

    #[test]
    fn the_url_validation_token_is_the_hex_hmac_of_the_plain_token() {
        let v = verifier(Provider::Zoom, &[SECRET, "older"]);
        assert_eq!(
            v.reply_tag(b"qgg8vlvZRS6UYooatFL8Aw").map(hex::encode),
            Some(hex_hmac(SECRET, &[b"qgg8vlvZRS6UYooatFL8Aw"]))
        );
        assert_eq!(verifier(Provider::Github, &["s"]).reply_tag(b"x"), None);
    }
}
