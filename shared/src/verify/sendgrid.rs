//! SendGrid's Event Webhook: `X-Twilio-Email-Event-Webhook-Signature`, a
//! base64 DER ECDSA P-256 / SHA-256 signature of
//! `{X-Twilio-Email-Event-Webhook-Timestamp}{body}`, under the public key
//! SendGrid shows (base64 SPKI DER, configured as the source's secret).
//! Its libraries check no time window, so neither does this preset. A
//! request carries a batch of events (a JSON array), so its id is the
//! body's SHA-256.

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use super::VerifyError;
use super::common::{BASE64, decode_base64_into, header, ok_if};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-timestamp");

/// The longest DER encoding of a P-256 signature.
const MAX_DER: usize = 72;

pub(super) struct Sendgrid {
    keys: Box<[VerifyingKey]>,
}

impl Sendgrid {
    pub(super) fn new(secrets: &[Secret]) -> Result<Self, String> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let der = BASE64.decode(s.expose());
                der.ok()
                    .and_then(|der| VerifyingKey::from_public_key_der(&der).ok())
                    .ok_or_else(|| {
                        format!(
                            "secret #{}: expected the verification key, base64 of a P-256 public key",
                            i + 1
                        )
                    })
            })
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(Self { keys })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let value = header(headers, &SIG)?;
        let ts = header(headers, &TIMESTAMP)?;
        let mut der = [0u8; MAX_DER];
        let len = decode_base64_into(value, &mut der).ok_or(VerifyError::MalformedSignature)?;
        let sig = Signature::from_der(&der[..len]).map_err(|_| VerifyError::MalformedSignature)?;
        let message = [ts.as_bytes(), body].concat();
        ok_if(self.keys.iter().any(|k| k.verify(&message, &sig).is_ok()))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{Signature, SigningKey};

    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::Case;

    const BODY: &[u8] = br#"[{"email":"a@example.com","event":"delivered","sg_event_id":"e1"}]"#;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    /// Base64 SPKI DER, as SendGrid shows it: the fixed header of a P-256
    /// key, then the uncompressed point.
    pub(crate) fn public(k: &SigningKey) -> String {
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.extend_from_slice(k.verifying_key().to_encoded_point(false).as_bytes());
        STANDARD.encode(der)
    }

    fn sign(k: &SigningKey, ts: &str, body: &[u8]) -> String {
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(body);
        let sig: Signature = k.sign(&msg);
        STANDARD.encode(sig.to_der().as_bytes())
    }

    fn case(public: &str, sig: &str, ts: &str, body: &[u8]) -> Case {
        Case::new(Provider::Sendgrid, &[public])
            .header("X-Twilio-Email-Event-Webhook-Signature", sig)
            .header("X-Twilio-Email-Event-Webhook-Timestamp", ts)
            .body(body)
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        let k = key(3);
        let pk = public(&k);
        case(&pk, &sign(&k, "1700000000", BODY), "1700000000", BODY).passes();
        case(&pk, &sign(&k, "1700000000", BODY), "1700000009", BODY).fails(InvalidSignature);
        case(&pk, &sign(&k, "1700000000", BODY), "1700000000", b"[]").fails(InvalidSignature);
        case(&pk, &sign(&key(4), "1700000000", BODY), "1700000000", BODY).fails(InvalidSignature);
        case(&pk, "bm90IGRlcg==", "1700000000", BODY).fails(MalformedSignature);
        case(&pk, "%%%", "1700000000", BODY).fails(MalformedSignature);
        Case::new(Provider::Sendgrid, &[&pk])
            .body(BODY)
            .fails(MissingHeader(
                "x-twilio-email-event-webhook-signature".into(),
            ));
        // Rotation: either key verifies.
        Case::new(Provider::Sendgrid, &[&public(&key(9)), &pk])
            .header(
                "X-Twilio-Email-Event-Webhook-Signature",
                &sign(&k, "1", BODY),
            )
            .header("X-Twilio-Email-Event-Webhook-Timestamp", "1")
            .body(BODY)
            .passes();
        let err = super::super::Verifier::new(
            Provider::Sendgrid,
            &[crate::secrets::Secret::new("MFkwEwYHKoZIzj0CAQ")],
            None,
            None,
        )
        .unwrap_err();
        assert!(
            err.contains("P-256 public key") && !err.contains("MFkw"),
            "{err}"
        );
    }
}
