//! Tests of the Shopify preset, a [`super::header_hmac`] spec.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;

use super::tests::{headers, verifier};
use super::{Provider, VerifyError};

const SECRET: &str = "shpss_0123456789abcdef";
const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;

fn sign(secret: &str, body: &[u8]) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    STANDARD.encode(m.finalize().into_bytes())
}

fn check(secrets: &[&str], sig: &str, body: &[u8]) -> Result<(), VerifyError> {
    verifier(Provider::Shopify, secrets).verify(
        &headers(&[("X-Shopify-Hmac-Sha256", sig)]),
        body,
        SystemTime::now(),
    )
}

#[test]
fn valid_signature_passes() {
    assert_eq!(check(&[SECRET], &sign(SECRET, BODY), BODY), Ok(()));
}

#[test]
fn tampering_fails() {
    let sig = sign(SECRET, BODY);
    assert_eq!(
        check(&[SECRET], &sig, b"{}"),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        check(&["shpss_other"], &sig, BODY),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn rotation_accepts_any_active_secret() {
    let sig = sign(SECRET, BODY);
    assert_eq!(check(&["shpss_new", SECRET], &sig, BODY), Ok(()));
    assert_eq!(
        check(&["shpss_new", "shpss_x"], &sig, BODY),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn missing_and_malformed_headers() {
    assert_eq!(
        verifier(Provider::Shopify, &[SECRET]).verify(&headers(&[]), BODY, SystemTime::now()),
        Err(VerifyError::MissingHeader("x-shopify-hmac-sha256".into()))
    );
    let hex = {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        m.update(BODY);
        hex::encode(m.finalize().into_bytes())
    };
    for bad in [hex.as_str(), "not base64!", "AAAA", ""] {
        assert_eq!(
            check(&[SECRET], bad, BODY),
            Err(VerifyError::MalformedSignature),
            "{bad:?}"
        );
    }
}
