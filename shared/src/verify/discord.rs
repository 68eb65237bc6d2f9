//! Discord interactions: `X-Signature-Ed25519: <hex>`, an Ed25519
//! signature of `{X-Signature-Timestamp}{body}` under the application's
//! public key (64 hex digits, configured as the source's secret). Discord
//! checks that a failed verification is answered 401, which every
//! signature error is. Its libraries check no time window, so neither does
//! this preset: dedup on the interaction `id` covers retries. A `PING`
//! (type 1) is answered `{"type":1}`.

use http::{HeaderMap, HeaderName};

use super::VerifyError;
use super::common::{Ed25519Keys, decode_hex, header, ok_if};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("x-signature-ed25519");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-signature-timestamp");

pub(super) struct Discord {
    keys: Ed25519Keys,
}

impl Discord {
    pub(super) fn new(secrets: &[Secret]) -> Result<Self, String> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut key = [0u8; 32];
                if decode_hex(s.expose(), &mut key) {
                    Ok(key)
                } else {
                    Err(format!(
                        "secret #{}: expected the application's public key, 64 hex digits",
                        i + 1
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys: Ed25519Keys::new(keys)?,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let value = header(headers, &SIG)?;
        let ts = header(headers, &TIMESTAMP)?;
        let mut sig = [0u8; 64];
        if !decode_hex(value, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        ok_if(self.keys.matches_any(&[ts.as_bytes(), body], &[sig]))
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::Case;

    const BODY: &[u8] = br#"{"id":"1234","type":2,"data":{"name":"deploy"}}"#;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn case(public: &str, sig: &str, ts: &str, body: &[u8]) -> Case {
        Case::new(Provider::Discord, &[public])
            .header("X-Signature-Ed25519", sig)
            .header("X-Signature-Timestamp", ts)
            .body(body)
    }

    fn sign(k: &SigningKey, ts: &str, body: &[u8]) -> String {
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(body);
        hex::encode(k.sign(&msg).to_bytes())
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        let k = key(7);
        let public = hex::encode(k.verifying_key().to_bytes());
        case(&public, &sign(&k, "1700000000", BODY), "1700000000", BODY).passes();
        case(&public, &sign(&k, "1700000000", BODY), "1700000001", BODY).fails(InvalidSignature);
        case(&public, &sign(&k, "1700000000", BODY), "1700000000", b"{}").fails(InvalidSignature);
        case(
            &public,
            &sign(&key(8), "1700000000", BODY),
            "1700000000",
            BODY,
        )
        .fails(InvalidSignature);
        case(&public, "abcd", "1700000000", BODY).fails(MalformedSignature);
        Case::new(Provider::Discord, &[&public])
            .header("X-Signature-Ed25519", &sign(&k, "1", BODY))
            .body(BODY)
            .fails(MissingHeader("x-signature-timestamp".into()));
        // A key that is not one is a config error, without its value.
        let err = super::super::Verifier::new(
            Provider::Discord,
            &[crate::secrets::Secret::new("not-a-key")],
            None,
            None,
        )
        .unwrap_err();
        assert!(
            err.contains("64 hex digits") && !err.contains("not-a-key"),
            "{err}"
        );
    }
}
