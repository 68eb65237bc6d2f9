//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>`.
//!
//! The legacy `X-Hub-Signature: sha1=<hex>` is accepted only when the
//! SHA-256 header is absent; when both are present SHA-1 is never looked
//! at. This leaves a downgrade path (strip the SHA-256 header), which is
//! acceptable because HMAC-SHA1 is still unforgeable in practice (SHA-1's
//! collision attacks do not carry over to HMAC), and it keeps senders that
//! only speak SHA-1 (older GitHub Enterprise, GitHub-compatible tools)
//! working.
//! GitHub signs no timestamp, so there is no replay window.

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha1::Sha1;
use sha2::Sha256;

use super::VerifyError;
use super::common::{Keys, decode_hex, header, ok_if, optional_header, strip_prefix_ci};
use crate::secrets::Secret;

const SIG256: HeaderName = HeaderName::from_static("x-hub-signature-256");
const SIG1: HeaderName = HeaderName::from_static("x-hub-signature");

pub(super) struct Github {
    sha256: Keys<Hmac<Sha256>>,
    sha1: Keys<Hmac<Sha1>>,
}

impl Github {
    pub(super) fn new(secrets: &[Secret]) -> Result<Self, String> {
        let raw = || secrets.iter().map(|s| s.expose().as_bytes());
        Ok(Self {
            sha256: Keys::new(raw())?,
            sha1: Keys::new(raw())?,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.sha256.len()
    }

    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        if let Some(v) = optional_header(headers, &SIG256)? {
            let hex = strip_prefix_ci(v, "sha256=").ok_or(VerifyError::MalformedSignature)?;
            let mut sig = [0u8; 32];
            if !decode_hex(hex, &mut sig) {
                return Err(VerifyError::MalformedSignature);
            }
            return ok_if(self.sha256.matches(&[body], &sig));
        }
        let v = header(headers, &SIG1).map_err(|e| match e {
            // Name the header operators should look for.
            VerifyError::MissingHeader(_) => VerifyError::MissingHeader(SIG256.as_str().to_owned()),
            other => other,
        })?;
        let hex = strip_prefix_ci(v, "sha1=").ok_or(VerifyError::MalformedSignature)?;
        let mut sig = [0u8; 20];
        if !decode_hex(hex, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        ok_if(self.sha1.matches(&[body], &sig))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use hmac::Mac;

    use super::super::tests::{headers, verifier};
    use super::super::{Provider, VerifyError};

    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    /// Published in GitHub's "Validating webhook deliveries" docs.
    const DOCS_SIG: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn sha1_sig(secret: &str, body: &[u8]) -> String {
        let mut m = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(body);
        format!("sha1={}", hex::encode(m.finalize().into_bytes()))
    }

    fn check(secrets: &[&str], h: &[(&str, &str)], body: &[u8]) -> Result<(), VerifyError> {
        verifier(Provider::Github, secrets).verify(&headers(h), body, SystemTime::now())
    }

    #[test]
    fn published_vector_passes() {
        assert_eq!(
            check(&[SECRET], &[("X-Hub-Signature-256", DOCS_SIG)], BODY),
            Ok(())
        );
        // Header names are case-insensitive; the hex may be upper case.
        let upper = DOCS_SIG.to_uppercase();
        assert_eq!(
            check(&[SECRET], &[("x-hub-signature-256", &upper)], BODY),
            Ok(())
        );
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        let h = [("X-Hub-Signature-256", DOCS_SIG)];
        assert_eq!(
            check(&[SECRET], &h, b"Hello, World?"),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(&["not it"], &h, BODY),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn rotation_accepts_any_active_secret() {
        let h = [("X-Hub-Signature-256", DOCS_SIG)];
        assert_eq!(check(&["new secret", SECRET], &h, BODY), Ok(()));
        assert_eq!(check(&[SECRET, "new secret"], &h, BODY), Ok(()));
        assert_eq!(
            check(&["new secret", "other"], &h, BODY),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        assert_eq!(
            check(&[SECRET], &[], BODY),
            Err(VerifyError::MissingHeader("x-hub-signature-256".into()))
        );
        for bad in [
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            // Two headers joined by API Gateway.
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17,sha256=00",
            "",
        ] {
            assert_eq!(
                check(&[SECRET], &[("X-Hub-Signature-256", bad)], BODY),
                Err(VerifyError::MalformedSignature),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unreadable_header_is_a_bad_request() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            http::HeaderValue::from_bytes(b"sha256=\xff").unwrap(),
        );
        let err = verifier(Provider::Github, &[SECRET])
            .verify(&h, BODY, SystemTime::now())
            .unwrap_err();
        assert_eq!(
            err,
            VerifyError::UnreadableHeader("x-hub-signature-256".into())
        );
        assert!(err.is_malformed_request());
    }

    #[test]
    fn legacy_sha1_only_when_sha256_is_absent() {
        let sha1 = sha1_sig(SECRET, BODY);
        assert_eq!(
            check(&[SECRET], &[("X-Hub-Signature", &sha1)], BODY),
            Ok(())
        );
        assert_eq!(
            check(&[SECRET], &[("X-Hub-Signature", &sha1)], b"tampered"),
            Err(VerifyError::InvalidSignature)
        );
        // A valid SHA-1 does not rescue a wrong SHA-256.
        let bad256 = format!("sha256={}", "00".repeat(32));
        assert_eq!(
            check(
                &[SECRET],
                &[("X-Hub-Signature", &sha1), ("X-Hub-Signature-256", &bad256)],
                BODY
            ),
            Err(VerifyError::InvalidSignature)
        );
    }
}
