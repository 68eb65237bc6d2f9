//! Standard Webhooks (and Svix): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64> [v1a,<base64> …]` over
//! `{id}.{ts}.{body}`. `v1` is HMAC-SHA256 keyed with the base64-DECODED
//! part after `whsec_`; `v1a` is Ed25519 under a `whpk_<base64>` public
//! key. A source's secrets may mix both kinds; any signature that one of
//! them verifies passes. The `svix-*` names are read when the `webhook-*`
//! one is absent. The window applies both ways.

use std::time::SystemTime;

use base64::Engine as _;
use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::VerifyError;
use super::common::{
    BASE64, Ed25519Keys, Keys, SigList, Window, decode_base64, ok_if, optional_header,
};
use crate::secrets::Secret;

pub(super) const ID: HeaderName = HeaderName::from_static("webhook-id");
const TS: HeaderName = HeaderName::from_static("webhook-timestamp");
const SIG: HeaderName = HeaderName::from_static("webhook-signature");
pub(super) const SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
const SVIX_TS: HeaderName = HeaderName::from_static("svix-timestamp");
const SVIX_SIG: HeaderName = HeaderName::from_static("svix-signature");

pub(super) struct StandardWebhooks {
    keys: Keys<Hmac<Sha256>>,
    public: Ed25519Keys,
    window: Window,
}

/// `v1a` signatures read from one header; more are ignored, like
/// [`SigList`]'s extra candidates.
const MAX_V1A: usize = 4;

impl StandardWebhooks {
    pub(super) fn new(secrets: &[Secret], window: Window) -> Result<Self, String> {
        let mut keys = Vec::new();
        let mut public = Vec::new();
        for (i, s) in secrets.iter().enumerate() {
            let fail = |why: &str| format!("secret #{}: {why}", i + 1);
            match s.expose().strip_prefix("whpk_") {
                Some(b64) => {
                    let mut key = [0u8; 32];
                    if !decode_base64(b64, &mut key) {
                        return Err(fail(
                            "the part after whpk_ is not a base64 Ed25519 public key",
                        ));
                    }
                    public.push(key);
                }
                None => keys.push(decode_secret(s.expose()).map_err(fail)?),
            }
        }
        Ok(Self {
            keys: Keys::new(keys)?,
            public: Ed25519Keys::new(public)?,
            window,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len() + self.public.len()
    }

    pub(super) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let value = either(headers, &SIG, &SVIX_SIG)?;
        let id = either(headers, &ID, &SVIX_ID)?;
        let ts = either(headers, &TS, &SVIX_TS)?;
        let sigs = Signatures::parse(value)?;
        self.window.check(ts, now)?;
        let signed: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
        ok_if(
            self.keys.matches_any(&signed, sigs.v1.as_slice())
                || self.public.matches_any(&signed, sigs.v1a()),
        )
    }
}

/// The signatures of one `webhook-signature` value: space-separated
/// `v1,<base64>` and `v1a,<base64>`; other versions and undecodable ones
/// are skipped.
pub(super) struct Signatures {
    pub(super) v1: SigList,
    v1a: [[u8; 64]; MAX_V1A],
    v1a_len: usize,
}

impl Signatures {
    /// No signature we can read is an error: nothing to check.
    pub(super) fn parse(value: &str) -> Result<Self, VerifyError> {
        let mut sigs = Self {
            v1: SigList::new(),
            v1a: [[0u8; 64]; MAX_V1A],
            v1a_len: 0,
        };
        for item in value.split_ascii_whitespace() {
            match item.split_once(',') {
                Some(("v1", b64)) => sigs.v1.push_with(|out| decode_base64(b64, out)),
                Some(("v1a", b64))
                    if sigs.v1a_len < MAX_V1A
                        && decode_base64(b64, &mut sigs.v1a[sigs.v1a_len]) =>
                {
                    sigs.v1a_len += 1;
                }
                _ => {}
            }
        }
        if sigs.v1.is_empty() && sigs.v1a_len == 0 {
            return Err(VerifyError::MalformedSignature);
        }
        Ok(sigs)
    }

    pub(super) fn v1a(&self) -> &[[u8; 64]] {
        &self.v1a[..self.v1a_len]
    }
}

/// `whsec_<base64>` or bare base64; errors never include the value.
fn decode_secret(s: &str) -> Result<Vec<u8>, &'static str> {
    let (b64, what) = match s.strip_prefix("whsec_") {
        Some(rest) => (rest, "the part after whsec_ is not valid base64"),
        None => (s, "not valid base64 (expected whsec_<base64>)"),
    };
    let key = BASE64.decode(b64).map_err(|_| what)?;
    if key.is_empty() {
        return Err("the key after whsec_ is empty");
    }
    Ok(key)
}

/// The `webhook-*` header, else its `svix-*` twin; missing names the former.
fn either<'a>(
    headers: &'a HeaderMap,
    primary: &HeaderName,
    svix: &HeaderName,
) -> Result<&'a str, VerifyError> {
    match optional_header(headers, primary)? {
        Some(v) => Ok(v),
        None => optional_header(headers, svix)?
            .ok_or_else(|| VerifyError::MissingHeader(primary.as_str().to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use hmac::Mac;

    use super::super::tests::{headers, verifier, verifier_with};
    use super::super::{Provider, Verifier, VerifyError};
    use crate::secrets::Secret;

    /// The standardwebhooks library's own test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: u64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn sw_headers(id: &str, ts: &str, sig: &str) -> http::HeaderMap {
        headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", ts),
            ("webhook-signature", sig),
        ])
    }

    fn check_at(secrets: &[&str], sig: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
        verifier(Provider::StandardWebhooks, secrets).verify(
            &sw_headers(ID, &TS.to_string(), sig),
            body,
            at(now),
        )
    }

    fn check(secrets: &[&str], sig: &str, body: &[u8]) -> Result<(), VerifyError> {
        check_at(secrets, sig, body, TS)
    }

    /// Sign with a raw key, independently of the code under test.
    fn sign(key: &[u8], id: &str, ts: u64, body: &[u8]) -> String {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        m.update(format!("{id}.{ts}.").as_bytes());
        m.update(body);
        format!("v1,{}", STANDARD.encode(m.finalize().into_bytes()))
    }

    #[test]
    fn published_vector_passes() {
        assert_eq!(check(&[SECRET], SIG, BODY), Ok(()));
    }

    #[test]
    fn svix_header_names_work_too() {
        let h = headers(&[
            ("svix-id", ID),
            ("svix-timestamp", &TS.to_string()),
            ("svix-signature", SIG),
        ]);
        assert_eq!(
            verifier(Provider::StandardWebhooks, &[SECRET]).verify(&h, BODY, at(TS)),
            Ok(())
        );
    }

    #[test]
    fn secret_without_prefix_is_base64_too() {
        assert_eq!(
            check(&["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], SIG, BODY),
            Ok(())
        );
    }

    #[test]
    fn the_key_is_the_decoded_part() {
        // Signed with the raw `whsec_` string as the key (the Stripe way): must fail.
        let wrong = sign(SECRET.as_bytes(), ID, TS, BODY);
        assert_eq!(
            check(&[SECRET], &wrong, BODY),
            Err(VerifyError::InvalidSignature)
        );
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(sign(&key, ID, TS, BODY), SIG);
    }

    #[test]
    fn tampering_fails() {
        assert_eq!(
            check(&[SECRET], SIG, br#"{"test": 2432232315}"#),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(&["whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"], SIG, BODY),
            Err(VerifyError::InvalidSignature)
        );
        let v = verifier(Provider::StandardWebhooks, &[SECRET]);
        let other_id = sw_headers("msg_other", &TS.to_string(), SIG);
        assert_eq!(
            v.verify(&other_id, BODY, at(TS)),
            Err(VerifyError::InvalidSignature)
        );
        let other_ts = sw_headers(ID, &(TS + 1).to_string(), SIG);
        assert_eq!(
            v.verify(&other_ts, BODY, at(TS)),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn several_signatures_and_other_versions() {
        let multi = format!("v1a,AAAA v1,{} {SIG}", STANDARD.encode([7u8; 32]));
        assert_eq!(check(&[SECRET], &multi, BODY), Ok(()));
        assert_eq!(
            check(
                &[SECRET],
                "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                BODY
            ),
            Err(VerifyError::MalformedSignature)
        );
    }

    #[test]
    fn v1a_is_ed25519_under_a_whpk_public_key() {
        use ed25519_dalek::{Signer, SigningKey};
        let k = SigningKey::from_bytes(&[5; 32]);
        let whpk = format!("whpk_{}", STANDARD.encode(k.verifying_key().to_bytes()));
        let msg = format!("{ID}.{TS}.{}", std::str::from_utf8(BODY).unwrap());
        let v1a = format!("v1a,{}", STANDARD.encode(k.sign(msg.as_bytes()).to_bytes()));
        assert_eq!(check(&[&whpk], &v1a, BODY), Ok(()));
        // Mixed with a symmetric secret, either kind of signature passes.
        assert_eq!(check(&[SECRET, &whpk], &v1a, BODY), Ok(()));
        assert_eq!(check(&[SECRET, &whpk], SIG, BODY), Ok(()));
        assert_eq!(
            check(&[&whpk], &v1a, b"{}"),
            Err(VerifyError::InvalidSignature)
        );
        // A v1 signature means nothing to a public key alone.
        assert_eq!(
            check(&[&whpk], SIG, BODY),
            Err(VerifyError::InvalidSignature)
        );
        let other = SigningKey::from_bytes(&[6; 32]);
        let forged = format!(
            "v1a,{}",
            STANDARD.encode(other.sign(msg.as_bytes()).to_bytes())
        );
        assert_eq!(
            check(&[&whpk], &forged, BODY),
            Err(VerifyError::InvalidSignature)
        );
        let err = Verifier::new(
            Provider::StandardWebhooks,
            &[Secret::new("whpk_bm90LWEta2V5")],
            None,
            None,
        )
        .unwrap_err();
        assert!(err.contains("whpk_") && !err.contains("bm90"), "{err}");
    }

    #[test]
    fn rotation_accepts_any_active_secret() {
        let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(check(&[other, SECRET], SIG, BODY), Ok(()));
        assert_eq!(check(&[SECRET, other], SIG, BODY), Ok(()));
        assert_eq!(
            check(&[other, "whsec_BBBB"], SIG, BODY),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn window_rejects_old_and_future() {
        assert_eq!(check_at(&[SECRET], SIG, BODY, TS + 300), Ok(()));
        assert_eq!(check_at(&[SECRET], SIG, BODY, TS - 300), Ok(()));
        assert_eq!(
            check_at(&[SECRET], SIG, BODY, TS + 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
        assert_eq!(
            check_at(&[SECRET], SIG, BODY, TS - 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
        let wide = verifier_with(
            Provider::StandardWebhooks,
            &[SECRET],
            None,
            Some(Duration::from_secs(3600)),
        );
        let h = sw_headers(ID, &TS.to_string(), SIG);
        assert_eq!(wide.verify(&h, BODY, at(TS - 3600)), Ok(()));
        assert_eq!(
            wide.verify(&h, BODY, at(TS - 3601)),
            Err(VerifyError::TimestampOutOfWindow)
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let v = verifier(Provider::StandardWebhooks, &[SECRET]);
        let ts = TS.to_string();
        let no_sig = headers(&[("webhook-id", ID), ("webhook-timestamp", &ts)]);
        assert_eq!(
            v.verify(&no_sig, BODY, at(TS)),
            Err(VerifyError::MissingHeader("webhook-signature".into()))
        );
        let no_id = headers(&[("webhook-timestamp", &ts), ("webhook-signature", SIG)]);
        assert_eq!(
            v.verify(&no_id, BODY, at(TS)),
            Err(VerifyError::MissingHeader("webhook-id".into()))
        );
        let no_ts = headers(&[("webhook-id", ID), ("webhook-signature", SIG)]);
        assert_eq!(
            v.verify(&no_ts, BODY, at(TS)),
            Err(VerifyError::MissingHeader("webhook-timestamp".into()))
        );
        for bad in [
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,",
            "v1,!!!",
            "v1,AAAA",
            "v1 g0hM",
        ] {
            assert_eq!(
                check(&[SECRET], bad, BODY),
                Err(VerifyError::MalformedSignature),
                "{bad:?}"
            );
        }
        let bad_ts = sw_headers(ID, "16142653e0", SIG);
        assert_eq!(
            v.verify(&bad_ts, BODY, at(TS)),
            Err(VerifyError::MalformedTimestamp)
        );
    }

    #[test]
    fn bad_secrets_are_refused_without_echoing_them() {
        for bad in ["whsec_not*base64!", "plain-text-secret!", "whsec_"] {
            let err = Verifier::new(Provider::StandardWebhooks, &[Secret::new(bad)], None, None)
                .unwrap_err();
            assert!(err.contains("secret #1"), "{err}");
            assert!(
                !err.contains(bad.trim_start_matches("whsec_")) || bad == "whsec_",
                "{err}"
            );
        }
    }
}
