//! Mailgun: the signature is in the JSON body, not a header:
//! `signature.{timestamp, token, signature}`, the last being the hex
//! HMAC-SHA256 of `{timestamp}{token}` under the webhook signing key. A
//! subaccount's event may also carry `parent-signature`, the same under the
//! parent account's key; either passes.
//!
//! The event data itself is not signed: anyone holding one signed request
//! can attach its `signature` to another body. Mailgun's advice is to
//! refuse a token seen before, so the token is the event id (the dedup key):
//! a second body under the same token is a duplicate and is never
//! delivered, for as long as ids are remembered (`dedupe_window`).
//! Mailgun documents no window and warns against a strict one; a configured
//! `tolerance_secs` is checked against `signature.timestamp`.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::Deserialize;

use super::VerifyError;
use super::common::{Keys, Window, decode_hex, ok_if};
use crate::secrets::Secret;

type HmacSha256 = ::hmac::Hmac<sha2::Sha256>;

const FIELDS: &str = "signature.{timestamp,token,signature}";

pub(super) struct Mailgun {
    keys: Keys<HmacSha256>,
    window: Option<Window>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    signature: Signed<'a>,
}

#[derive(Deserialize)]
struct Signed<'a> {
    #[serde(borrow)]
    timestamp: Stamp<'a>,
    #[serde(borrow)]
    token: Cow<'a, str>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
    #[serde(rename = "parent-signature", borrow, default)]
    parent_signature: Option<Cow<'a, str>>,
}

/// Mailgun sends the timestamp as a string; a number is read the same.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stamp<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(u64),
}

impl Stamp<'_> {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Text(t) => Cow::Borrowed(t),
            Self::Number(n) => Cow::Owned(n.to_string()),
        }
    }
}

impl Mailgun {
    pub(super) fn new(secrets: &[Secret], window: Option<Window>) -> Result<Self, String> {
        Ok(Self {
            keys: Keys::from_secrets(secrets)?,
            window,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn window(&self) -> Option<Window> {
        self.window
    }

    pub(super) fn verify(&self, body: &[u8], now: SystemTime) -> Result<(), VerifyError> {
        let Body { signature: signed } =
            serde_json::from_slice(body).map_err(|_| VerifyError::MissingBodyField(FIELDS))?;
        let stamp = signed.timestamp.text();
        let mut tags = [[0u8; 32]; 2];
        let mut found = 0;
        for sig in std::iter::once(&signed.signature).chain(&signed.parent_signature) {
            if !decode_hex(sig, &mut tags[found]) {
                return Err(VerifyError::MalformedSignature);
            }
            found += 1;
        }
        let parts: [&[u8]; 2] = [stamp.as_bytes(), signed.token.as_bytes()];
        ok_if(self.keys.matches_any(&parts, &tags[..found]))?;
        match &self.window {
            Some(w) => w.check(&stamp, now),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, hex_hmac, verifier_with};
    use super::*;

    const KEY: &str = "key-mailgun-signing";
    const TOKEN: &str = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123";

    /// A Mailgun body: the signature object and some event data.
    pub(crate) fn body(key: &str, timestamp: &str, token: &str) -> String {
        let sig = hex_hmac(key, &[timestamp.as_bytes(), token.as_bytes()]);
        serde_json::json!({
            "signature": {"timestamp": timestamp, "token": token, "signature": sig},
            "event-data": {"id": "CPgfbmQMTCKtHW6uIWtuVe", "event": "delivered"},
        })
        .to_string()
    }

    fn case(body: &str) -> Case {
        Case::new(Provider::Mailgun, &["old-key", KEY]).body(body.as_bytes())
    }

    #[test]
    fn the_body_signature_passes_under_any_configured_key() {
        case(&body(KEY, "1770920772", TOKEN)).passes();
        case(&body("old-key", "1770920772", TOKEN)).passes();
        case(&body("other", "1770920772", TOKEN)).fails(InvalidSignature);
    }

    /// Only the timestamp and token are signed: changing either fails,
    /// changing the event data does not (hence the token as the event id).
    #[test]
    fn the_timestamp_and_token_are_what_is_signed() {
        let good = body(KEY, "1770920772", TOKEN);
        case(&good.replace("1770920772", "1770920773")).fails(InvalidSignature);
        case(&good.replace(TOKEN, &TOKEN.replace('e', "f"))).fails(InvalidSignature);
        case(&good.replace("delivered", "failed")).passes();
    }

    #[test]
    fn a_numeric_timestamp_is_read_as_its_digits() {
        let good = body(KEY, "1770920772", TOKEN);
        case(&good.replace("\"1770920772\"", "1770920772")).passes();
    }

    #[test]
    fn a_subaccounts_parent_signature_also_passes() {
        let parent = hex_hmac(KEY, &[b"1770920772", TOKEN.as_bytes()]);
        let own = hex_hmac("subaccount-key", &[b"1770920772", TOKEN.as_bytes()]);
        let b = serde_json::json!({
            "signature": {
                "timestamp": "1770920772", "token": TOKEN,
                "signature": own, "parent-signature": parent,
            },
        })
        .to_string();
        case(&b).passes();
    }

    #[test]
    fn missing_or_malformed_signatures_are_refused() {
        case("{}").fails(MissingBodyField(FIELDS));
        case("not json").fails(MissingBodyField(FIELDS));
        case(r#"{"signature":{"timestamp":"1","token":"t"}}"#).fails(MissingBodyField(FIELDS));
        case(r#"{"signature":{"timestamp":"1","token":"t","signature":"zz"}}"#)
            .fails(MalformedSignature);
        case(r#"{"signature":{"timestamp":true,"token":"t","signature":"00"}}"#)
            .fails(MissingBodyField(FIELDS));
    }

    /// No window unless one is configured; then the body's timestamp is
    /// checked, in both directions.
    #[test]
    fn a_configured_window_applies_to_the_signed_timestamp() {
        let now = 1_770_920_772u64;
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let b = body(KEY, &now.to_string(), TOKEN);
        let open = verifier_with(Provider::Mailgun, &[KEY], None, None);
        assert_eq!(open.window(), None);
        assert_eq!(
            open.verify(&Default::default(), b.as_bytes(), at(now + 86_400)),
            Ok(())
        );
        let strict = verifier_with(
            Provider::Mailgun,
            &[KEY],
            None,
            Some(Duration::from_secs(3600)),
        );
        let check = |t| strict.verify(&Default::default(), b.as_bytes(), at(t));
        assert_eq!(check(now + 3600), Ok(()));
        assert_eq!(check(now + 3601), Err(TimestampOutOfWindow));
        assert_eq!(check(now - 3601), Err(TimestampOutOfWindow));
        let bad = body(KEY, "soon", TOKEN);
        assert_eq!(
            strict.verify(&Default::default(), bad.as_bytes(), at(now)),
            Err(MalformedTimestamp)
        );
    }
}
