//! Intercom: `X-Hub-Signature: sha1=<hex>`, an HMAC-SHA1 of the body under
//! the app's client secret. No timestamp, so no replay window: dedup on
//! the notification's `id` covers retries.

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha1::Sha1;

use super::VerifyError;
use super::common::{Keys, decode_hex, header, ok_if, strip_prefix_ci};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("x-hub-signature");

pub(super) struct Intercom {
    keys: Keys<Hmac<Sha1>>,
}

impl Intercom {
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
        let hex = strip_prefix_ci(value, "sha1=").ok_or(VerifyError::MalformedSignature)?;
        let mut sig = [0u8; 20];
        if !decode_hex(hex, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        ok_if(self.keys.matches(&[body], &sig))
    }
}

#[cfg(test)]
mod tests {
    use hmac::Mac;

    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::Case;

    const SECRET: &str = "intercom-client-secret";
    const BODY: &[u8] = br#"{"type":"notification_event","id":"notif_ccd8a4d0","topic":"conversation.user.created"}"#;

    fn sign(body: &[u8]) -> String {
        let mut m = hmac::Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
        m.update(body);
        format!("sha1={}", hex::encode(m.finalize().into_bytes()))
    }

    fn case(value: &str, body: &[u8]) -> Case {
        Case::new(Provider::Intercom, &[SECRET])
            .header("X-Hub-Signature", value)
            .body(body)
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        case(&sign(BODY), BODY).passes();
        case(&sign(BODY).to_uppercase().replace("SHA1=", "sha1="), BODY).passes();
        case(&sign(BODY), b"{}").fails(InvalidSignature);
        case(&sign(BODY)[5..], BODY).fails(MalformedSignature);
        case("sha1=abc", BODY).fails(MalformedSignature);
        Case::new(Provider::Intercom, &[SECRET])
            .body(BODY)
            .fails(MissingHeader("x-hub-signature".into()));
    }
}
