//! Typeform: `Typeform-Signature: sha256=<base64>`, an HMAC-SHA256 of the
//! body under the webhook's secret. No timestamp, so no replay window:
//! dedup on the body's `event_id` covers retries.

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::VerifyError;
use super::common::{Keys, decode_base64, header, ok_if, strip_prefix_ci};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("typeform-signature");

pub(super) struct Typeform {
    keys: Keys<Hmac<Sha256>>,
}

impl Typeform {
    pub(super) fn new(secrets: &[Secret]) -> Result<Self, String> {
        Ok(Self {
            keys: Keys::new(secrets.iter().map(|s| s.expose().as_bytes()))?,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let value = header(headers, &SIG)?;
        let b64 = strip_prefix_ci(value, "sha256=").ok_or(VerifyError::MalformedSignature)?;
        let mut sig = [0u8; 32];
        if !decode_base64(b64, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        ok_if(self.keys.matches(&[body], &sig))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, b64_hmac};

    const SECRET: &str = "typeform-secret";
    const BODY: &[u8] = br#"{"event_id":"01FZW2B1K0PR5QYZ2G3H4J5K6L","event_type":"form_response","form_response":{}}"#;

    fn case(value: &str, body: &[u8]) -> Case {
        Case::new(Provider::Typeform, &[SECRET])
            .header("Typeform-Signature", value)
            .body(body)
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        let good = format!("sha256={}", b64_hmac(SECRET, &[BODY]));
        case(&good, BODY).passes();
        case(&good, b"{}").fails(InvalidSignature);
        case(&good[7..], BODY).fails(MalformedSignature);
        case("sha256=!!!", BODY).fails(MalformedSignature);
        Case::new(Provider::Typeform, &["rotated", SECRET])
            .header("Typeform-Signature", &good)
            .body(BODY)
            .passes();
        Case::new(Provider::Typeform, &[SECRET])
            .body(BODY)
            .fails(MissingHeader("typeform-signature".into()));
    }
}
