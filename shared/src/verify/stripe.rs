//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, each `v1` a
//! hex HMAC-SHA256 of `{t}.{body}`. The key is the whole `whsec_…` string
//! (not base64-decoded). Other schemes (`v0`, test-mode) are ignored.

use http::HeaderName;

use super::common::TaggedSpec;

pub(super) static SPEC: TaggedSpec = TaggedSpec {
    header: HeaderName::from_static("stripe-signature"),
    sep: ',',
    ts_key: "t",
    sig_key: "v1",
    joiner: b".",
};

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use hmac::Mac;

    use super::super::tests::{headers, verifier, verifier_with};
    use super::super::{Provider, VerifyError};

    const SECRET: &str = "whsec_test_secret_abc123";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
    const T: u64 = 1_700_000_000;

    /// Independent of the code under test: one buffer, one HMAC call.
    fn sign(secret: &str, t: u64, body: &[u8]) -> String {
        let mut payload = format!("{t}.").into_bytes();
        payload.extend_from_slice(body);
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(&payload);
        hex::encode(m.finalize().into_bytes())
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn check_at(secrets: &[&str], value: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
        verifier(Provider::Stripe, secrets).verify(
            &headers(&[("Stripe-Signature", value)]),
            body,
            at(now),
        )
    }

    fn check(secrets: &[&str], value: &str, body: &[u8]) -> Result<(), VerifyError> {
        check_at(secrets, value, body, T + 10)
    }

    #[test]
    fn valid_signature_passes() {
        let h = format!("t={T},v1={}", sign(SECRET, T, BODY));
        assert_eq!(check(&[SECRET], &h, BODY), Ok(()));
        // Extra schemes (v0) and spaces are tolerated.
        let h = format!(
            "t={T}, v0={}, v1={}",
            "ab".repeat(32),
            sign(SECRET, T, BODY)
        );
        assert_eq!(check(&[SECRET], &h, BODY), Ok(()));
    }

    #[test]
    fn the_whole_whsec_string_is_the_key() {
        let h = format!("t={T},v1={}", sign("test_secret_abc123", T, BODY));
        assert_eq!(
            check(&[SECRET], &h, BODY),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn any_of_several_v1_signatures_passes() {
        let h = format!(
            "t={T},v1={},v1={}",
            sign("old", T, BODY),
            sign(SECRET, T, BODY)
        );
        assert_eq!(check(&[SECRET], &h, BODY), Ok(()));
    }

    #[test]
    fn tampering_fails() {
        let h = format!("t={T},v1={}", sign(SECRET, T, BODY));
        assert_eq!(
            check(&[SECRET], &h, b"{}"),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(&["whsec_other"], &h, BODY),
            Err(VerifyError::InvalidSignature)
        );
        // The timestamp is signed: moving it breaks the signature.
        let h = format!("t={},v1={}", T + 1, sign(SECRET, T, BODY));
        assert_eq!(
            check(&[SECRET], &h, BODY),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn rotation_accepts_any_active_secret() {
        let h = format!("t={T},v1={}", sign(SECRET, T, BODY));
        assert_eq!(check(&["whsec_new", SECRET], &h, BODY), Ok(()));
        assert_eq!(
            check(&["whsec_new", "whsec_x"], &h, BODY),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn only_old_timestamps_are_rejected() {
        let h = format!("t={T},v1={}", sign(SECRET, T, BODY));
        assert_eq!(check_at(&[SECRET], &h, BODY, T + 300), Ok(()));
        assert_eq!(
            check_at(&[SECRET], &h, BODY, T + 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
        // Far in the future still passes: Stripe rejects only old ones.
        assert_eq!(check_at(&[SECRET], &h, BODY, T - 86_400), Ok(()));
    }

    #[test]
    fn tolerance_overrides_the_window() {
        let v = verifier_with(
            Provider::Stripe,
            &[SECRET],
            None,
            Some(Duration::from_secs(10)),
        );
        let h = headers(&[(
            "Stripe-Signature",
            &format!("t={T},v1={}", sign(SECRET, T, BODY)),
        )]);
        assert_eq!(v.verify(&h, BODY, at(T + 10)), Ok(()));
        assert_eq!(
            v.verify(&h, BODY, at(T + 11)),
            Err(VerifyError::TimestampOutOfWindow)
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let sig = sign(SECRET, T, BODY);
        assert_eq!(
            verifier(Provider::Stripe, &[SECRET]).verify(&headers(&[]), BODY, at(T)),
            Err(VerifyError::MissingHeader("stripe-signature".into()))
        );
        for bad in [
            format!("v1={sig}"),
            format!("t={T}"),
            format!("t={T},v0={sig}"),
            format!("t={T},v1=xyz"),
            format!("t={T},v1={}", &sig[..10]),
            format!("t={T},v1={sig},t={}", T + 1),
            String::from(",,,="),
        ] {
            assert_eq!(
                check(&[SECRET], &bad, BODY),
                Err(VerifyError::MalformedSignature),
                "{bad:?}"
            );
        }
        assert_eq!(
            check(&[SECRET], &format!("t=abc,v1={sig}"), BODY),
            Err(VerifyError::MalformedTimestamp)
        );
    }
}
