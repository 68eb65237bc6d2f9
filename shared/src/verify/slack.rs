//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256("v0:{ts}:{body}")>` with
//! `X-Slack-Request-Timestamp`; the window applies in both directions.

use std::time::SystemTime;

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::VerifyError;
use super::common::{Keys, Window, decode_hex, header, ok_if, strip_prefix_ci};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("x-slack-signature");
const TS: HeaderName = HeaderName::from_static("x-slack-request-timestamp");

pub(super) struct Slack {
    keys: Keys<Hmac<Sha256>>,
    window: Window,
}

impl Slack {
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
        let ts = header(headers, &TS)?;
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
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use hmac::Mac;

    use super::super::tests::{headers, verifier};
    use super::super::{Provider, VerifyError};

    /// Slack's "Verifying requests from Slack" docs, byte for byte.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: u64 = 1531420618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOCS_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn check_at(
        secrets: &[&str],
        sig: &str,
        ts: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), VerifyError> {
        let h = headers(&[
            ("X-Slack-Signature", sig),
            ("X-Slack-Request-Timestamp", ts),
        ]);
        verifier(Provider::Slack, secrets).verify(&h, body, at(now))
    }

    fn check(secrets: &[&str], sig: &str, body: &[u8]) -> Result<(), VerifyError> {
        check_at(secrets, sig, &TS.to_string(), body, TS + 5)
    }

    #[test]
    fn published_vector_passes() {
        assert_eq!(check(&[SECRET], DOCS_SIG, BODY), Ok(()));
    }

    #[test]
    fn tampering_fails() {
        let mut body = BODY.to_vec();
        body[0] ^= 1;
        assert_eq!(
            check(&[SECRET], DOCS_SIG, &body),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(&["8f742231b10e8888abcd99yyyzzz85a6"], DOCS_SIG, BODY),
            Err(VerifyError::InvalidSignature)
        );
        // The timestamp is part of the signed bytes.
        let ts = (TS + 1).to_string();
        assert_eq!(
            check_at(&[SECRET], DOCS_SIG, &ts, BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn rotation_accepts_any_active_secret() {
        assert_eq!(check(&["new", SECRET], DOCS_SIG, BODY), Ok(()));
        assert_eq!(
            check(&["new", "newer"], DOCS_SIG, BODY),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn window_rejects_old_and_future() {
        let ts = TS.to_string();
        assert_eq!(check_at(&[SECRET], DOCS_SIG, &ts, BODY, TS + 300), Ok(()));
        assert_eq!(check_at(&[SECRET], DOCS_SIG, &ts, BODY, TS - 300), Ok(()));
        assert_eq!(
            check_at(&[SECRET], DOCS_SIG, &ts, BODY, TS + 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
        assert_eq!(
            check_at(&[SECRET], DOCS_SIG, &ts, BODY, TS - 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let v = verifier(Provider::Slack, &[SECRET]);
        let ts = TS.to_string();
        let only_ts = headers(&[("X-Slack-Request-Timestamp", &ts)]);
        assert_eq!(
            v.verify(&only_ts, BODY, at(TS)),
            Err(VerifyError::MissingHeader("x-slack-signature".into()))
        );
        let only_sig = headers(&[("X-Slack-Signature", DOCS_SIG)]);
        assert_eq!(
            v.verify(&only_sig, BODY, at(TS)),
            Err(VerifyError::MissingHeader(
                "x-slack-request-timestamp".into()
            ))
        );
        for bad in [
            "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            "v0=",
            "v0=nothex",
            "v1=a2114d57",
        ] {
            assert_eq!(
                check(&[SECRET], bad, BODY),
                Err(VerifyError::MalformedSignature),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_at(&[SECRET], DOCS_SIG, "15314206l8", BODY, TS),
            Err(VerifyError::MalformedTimestamp)
        );
    }

    #[test]
    fn independent_hmac_agrees_with_the_published_vector() {
        // Guards the vector itself: recompute it without the code under test.
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        m.update(format!("v0:{TS}:").as_bytes());
        m.update(BODY);
        assert_eq!(
            format!("v0={}", hex::encode(m.finalize().into_bytes())),
            DOCS_SIG
        );
    }
}
