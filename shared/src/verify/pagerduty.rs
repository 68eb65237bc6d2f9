//! PagerDuty (v3 webhooks): `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`,
//! each a hex HMAC-SHA256 of the body. Several come while a secret is
//! being rotated. No timestamp is signed, so there is no replay window:
//! dedup on the body's `event.id` covers retries.

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::VerifyError;
use super::common::{Keys, header, ok_if, tagged_hex};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("x-pagerduty-signature");

pub(super) struct Pagerduty {
    keys: Keys<Hmac<Sha256>>,
}

impl Pagerduty {
    pub(super) fn new(secrets: &[Secret]) -> Result<Self, String> {
        Ok(Self {
            keys: Keys::from_secrets(secrets)?,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let value = header(headers, &SIG)?;
        let (_, sigs) = tagged_hex(value, ',', None, "v1")?;
        ok_if(self.keys.matches_any(&[body], sigs.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, hex_hmac};

    const SECRET: &str = "pd-webhook-secret-c0ffee";
    const BODY: &[u8] =
        br#"{"event":{"id":"01DEN7NXDPXMFPP3QSQ4TFWKBT","event_type":"incident.triggered"}}"#;

    fn case(value: &str, body: &[u8]) -> Case {
        Case::new(Provider::Pagerduty, &[SECRET])
            .header("X-PagerDuty-Signature", value)
            .body(body)
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        let good = hex_hmac(SECRET, &[BODY]);
        case(&format!("v1={good}"), BODY).passes();
        case(&format!("v1={},v1={good}", "a".repeat(64)), BODY).passes();
        case(&format!("v1={good}"), b"{}").fails(InvalidSignature);
        case(&format!("v0={good}"), BODY).fails(MalformedSignature);
        case(&good, BODY).fails(MalformedSignature);
        Case::new(Provider::Pagerduty, &[SECRET])
            .body(BODY)
            .fails(MissingHeader("x-pagerduty-signature".into()));
    }
}
