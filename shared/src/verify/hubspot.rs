//! HubSpot (v3 signatures): `X-HubSpot-Signature-v3`, base64 HMAC-SHA256 of
//! `{method}{uri}{body}{timestamp}` under the app's client secret, where
//! `uri` is the URL called (the source's `public_url`, or on AWS the one
//! API Gateway saw, with the request's query) with a few percent-escapes
//! decoded, and `timestamp` is `X-HubSpot-Request-Timestamp` (Unix ms).
//! HubSpot's documentation rejects timestamps older than 5 minutes.

use std::borrow::Cow;
use std::time::SystemTime;

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::VerifyError;
use super::common::{Keys, Window, decode_base64, header, ok_if, parse_unix_digits};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("x-hubspot-signature-v3");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-hubspot-request-timestamp");

/// Webhooks are POSTs: the method is part of what HubSpot signs.
const METHOD: &[u8] = b"POST";

pub(super) struct Hubspot {
    keys: Keys<Hmac<Sha256>>,
    window: Window,
}

impl Hubspot {
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
        url: Option<&str>,
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let value = header(headers, &SIG)?;
        let mut sig = [0u8; 32];
        if !decode_base64(value, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        let ts = header(headers, &TIMESTAMP)?;
        let ms = parse_unix_digits(ts, 15).ok_or(VerifyError::MalformedTimestamp)?;
        self.window.check_ms(ms, now)?;
        let uri = signed_uri(url.ok_or(VerifyError::UrlUnknown)?);
        ok_if(
            self.keys
                .matches(&[METHOD, uri.as_bytes(), body, ts.as_bytes()], &sig),
        )
    }
}

/// The URL with the escapes HubSpot decodes before signing decoded
/// (`%3A` `%2F` `%3F` `%40` `%21` `%24` `%27` `%28` `%29` `%2A` `%2C` `%3B`,
/// either case); every other escape stays as it is.
pub(super) fn signed_uri(url: &str) -> Cow<'_, str> {
    if !url.contains('%') {
        return Cow::Borrowed(url);
    }
    let b = url.as_bytes();
    let mut out = String::with_capacity(url.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(c) = b.get(i + 1..i + 3).and_then(decoded)
        {
            out.push(c);
            i += 3;
            continue;
        }
        // Copy up to the next escape in one piece (keeps UTF-8 whole).
        // `i` is at the start, a `%` or just after an escape: all ASCII,
        // so both ends are character boundaries.
        let next = b[i + 1..]
            .iter()
            .position(|&c| c == b'%')
            .map_or(b.len(), |n| i + 1 + n);
        out.push_str(&url[i..next]);
        i = next;
    }
    Cow::Owned(out)
}

fn decoded(hex: &[u8]) -> Option<char> {
    let upper = [hex[0].to_ascii_uppercase(), hex[1].to_ascii_uppercase()];
    Some(match &upper {
        b"3A" => ':',
        b"2F" => '/',
        b"3F" => '?',
        b"40" => '@',
        b"21" => '!',
        b"24" => '$',
        b"27" => '\'',
        b"28" => '(',
        b"29" => ')',
        b"2A" => '*',
        b"2C" => ',',
        b"3B" => ';',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::super::tests::{at, b64_hmac, headers, verifier};
    use super::super::{Provider, VerifyError};
    use super::signed_uri;

    const SECRET: &str = "hubspot-client-secret";
    const URL: &str = "https://hooks.example.com/hooks/hubspot?portal=62515";
    const BODY: &[u8] = br#"[{"eventId":1,"subscriptionType":"contact.creation","portalId":62515,"occurredAt":1700000000000}]"#;
    const T: u64 = 1_700_000_000;

    fn check(sig: &str, ts: &str, url: Option<&str>, now: SystemTime) -> Result<(), VerifyError> {
        verifier(Provider::Hubspot, &[SECRET]).verify_at(
            &headers(&[
                ("X-HubSpot-Signature-v3", sig),
                ("X-HubSpot-Request-Timestamp", ts),
            ]),
            BODY,
            url,
            now,
        )
    }

    fn sign(uri: &str, ts: &str) -> String {
        b64_hmac(SECRET, &[b"POST", uri.as_bytes(), BODY, ts.as_bytes()])
    }

    #[test]
    fn signed_requests_pass_for_five_minutes() {
        let ts = format!("{T}000");
        let good = sign(URL, &ts);
        assert_eq!(check(&good, &ts, Some(URL), at(T)), Ok(()));
        assert_eq!(check(&good, &ts, Some(URL), at(T + 300)), Ok(()));
        assert_eq!(
            check(&good, &ts, Some(URL), at(T + 301)),
            Err(VerifyError::TimestampOutOfWindow)
        );
        // Old only.
        assert_eq!(check(&good, &ts, Some(URL), at(T - 3600)), Ok(()));
        let other_ts = format!("{T}001");
        assert_eq!(
            check(&good, &other_ts, Some(URL), at(T)),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(
                &good,
                &ts,
                Some("https://hooks.example.com/hooks/hubspot"),
                at(T)
            ),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(check(&good, &ts, None, at(T)), Err(VerifyError::UrlUnknown));
        assert_eq!(
            check(&good, "1.7e12", Some(URL), at(T)),
            Err(VerifyError::MalformedTimestamp)
        );
        assert_eq!(
            check("!!", &ts, Some(URL), at(T)),
            Err(VerifyError::MalformedSignature)
        );
        let _ = Duration::ZERO;
    }

    #[test]
    fn the_listed_escapes_are_decoded_before_signing() {
        let called = "https://h.example.com/hooks/hs?next=%2Fa%3Fb%3Dc%20d&at=%40me%2c";
        assert_eq!(
            signed_uri(called),
            "https://h.example.com/hooks/hs?next=/a?b%3Dc%20d&at=@me,"
        );
        assert_eq!(signed_uri("%"), "%");
        assert_eq!(signed_uri("a%2"), "a%2");
        assert_eq!(signed_uri("é%3aé"), "é:é");
        let ts = format!("{T}000");
        let good = sign(&signed_uri(called), &ts);
        assert_eq!(check(&good, &ts, Some(called), at(T)), Ok(()));
    }
}
