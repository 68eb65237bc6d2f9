//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>`, an
//! HMAC-SHA256 of the message id, its timestamp (RFC 3339, in nanoseconds)
//! and the body, concatenated, under the subscription's secret. Twitch
//! asks to refuse messages older than 10 minutes; dedup on the message id
//! covers its retries.

use std::time::SystemTime;

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::VerifyError;
use super::common::{Keys, Window, decode_hex, header, ok_if, strip_prefix_ci};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("twitch-eventsub-message-signature");
const ID: HeaderName = HeaderName::from_static("twitch-eventsub-message-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("twitch-eventsub-message-timestamp");

pub(super) struct Twitch {
    keys: Keys<Hmac<Sha256>>,
    window: Window,
}

impl Twitch {
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
        let id = header(headers, &ID)?;
        let ts = header(headers, &TIMESTAMP)?;
        let hex = strip_prefix_ci(value, "sha256=").ok_or(VerifyError::MalformedSignature)?;
        let mut sig = [0u8; 32];
        if !decode_hex(hex, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        self.window.check_rfc3339(ts, now)?;
        ok_if(
            self.keys
                .matches(&[id.as_bytes(), ts.as_bytes(), body], &sig),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, at, hex_hmac};

    const SECRET: &str = "twitch-sub-secret";
    const ID: &str = "e76c6bd4-55c9-4987-8304-da1588d8988b";
    const BODY: &[u8] = br#"{"subscription":{"type":"channel.follow"},"event":{}}"#;
    // 2023-11-14T22:13:20Z, with Twitch's nanoseconds.
    const TS: &str = "2023-11-14T22:13:20.123456789Z";
    const T: u64 = 1_700_000_000;

    fn case(sig: &str, ts: &str, body: &[u8], now: std::time::SystemTime) -> Case {
        Case::new(Provider::Twitch, &[SECRET])
            .header("Twitch-Eventsub-Message-Id", ID)
            .header("Twitch-Eventsub-Message-Timestamp", ts)
            .header("Twitch-Eventsub-Message-Signature", sig)
            .body(body)
            .now(now)
    }

    fn sign(ts: &str, body: &[u8]) -> String {
        format!(
            "sha256={}",
            hex_hmac(SECRET, &[ID.as_bytes(), ts.as_bytes(), body])
        )
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        case(&sign(TS, BODY), TS, BODY, at(T + 1)).passes();
        case(&sign(TS, BODY), TS, BODY, at(T + 599)).passes();
        case(&sign(TS, BODY), TS, BODY, at(T + 601)).fails(TimestampOutOfWindow);
        // A clock ahead of ours is no replay.
        case(&sign(TS, BODY), TS, BODY, at(T) - Duration::from_secs(3600)).passes();
        case(&sign(TS, BODY), TS, b"{}", at(T)).fails(InvalidSignature);
        case(&sign(TS, BODY), "2023-11-14T22:13:21Z", BODY, at(T)).fails(InvalidSignature);
        case(&sign(TS, BODY), "yesterday", BODY, at(T)).fails(MalformedTimestamp);
        case(&sign(TS, BODY)[7..], TS, BODY, at(T)).fails(MalformedSignature);
        Case::new(Provider::Twitch, &[SECRET])
            .header("Twitch-Eventsub-Message-Signature", &sign(TS, BODY))
            .header("Twitch-Eventsub-Message-Timestamp", TS)
            .body(BODY)
            .fails(MissingHeader("twitch-eventsub-message-id".into()));
    }
}
