//! Schemes that sign the URL they call with the body: Square (the
//! notification URL, then the body) and Trello (the body, then the
//! callback URL). The URL is the source's `public_url` (or, on AWS, the one
//! API Gateway saw) with the request's query: never the `Host` header.

use http::{HeaderMap, HeaderName};

use super::common::{MacKeys, decode_base64, header, ok_if};
use super::{Algorithm, VerifyError};
use crate::secrets::Secret;

pub(super) struct Spec {
    pub header: HeaderName,
    pub algorithm: Algorithm,
    pub url_first: bool,
}

/// Square: base64 HMAC-SHA256 of `{url}{body}` under the subscription's
/// signature key.
pub(super) static SQUARE: Spec = Spec {
    header: HeaderName::from_static("x-square-hmacsha256-signature"),
    algorithm: Algorithm::Sha256,
    url_first: true,
};

/// Trello: base64 HMAC-SHA1 of `{body}{callbackURL}` under the app secret.
pub(super) static TRELLO: Spec = Spec {
    header: HeaderName::from_static("x-trello-webhook"),
    algorithm: Algorithm::Sha1,
    url_first: false,
};

pub(super) struct UrlHmac {
    spec: &'static Spec,
    keys: MacKeys,
}

impl UrlHmac {
    pub(super) fn new(spec: &'static Spec, secrets: &[Secret]) -> Result<Self, String> {
        Ok(Self {
            spec,
            keys: MacKeys::new(spec.algorithm, secrets)?,
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
    ) -> Result<(), VerifyError> {
        let value = header(headers, &self.spec.header)?;
        let mut buf = [0u8; 32];
        let sig = &mut buf[..self.keys.tag_len()];
        if !decode_base64(value, sig) {
            return Err(VerifyError::MalformedSignature);
        }
        let url = url.ok_or(VerifyError::UrlUnknown)?.as_bytes();
        let parts = if self.spec.url_first {
            [url, body]
        } else {
            [body, url]
        };
        ok_if(self.keys.matches_any(&parts, &[&*sig]))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};

    use super::super::tests::{b64_hmac, headers, verifier};
    use super::super::{Provider, VerifyError};

    const URL: &str = "https://hooks.example.com/hooks/square";
    const BODY: &[u8] = br#"{"merchant_id":"6SSW7HV8K2ST5","type":"payment.created","event_id":"13b867cf-db3d-4b1c-90b6-2f32a9d78124"}"#;

    fn check(
        p: Provider,
        name: &str,
        sig: &str,
        body: &[u8],
        url: Option<&str>,
    ) -> Result<(), VerifyError> {
        verifier(p, &["sig-key"]).verify_at(
            &headers(&[(name, sig)]),
            body,
            url,
            std::time::SystemTime::now(),
        )
    }

    #[test]
    fn square_signs_the_url_then_the_body() {
        let good = b64_hmac("sig-key", &[URL.as_bytes(), BODY]);
        let sq = |sig: &str, body: &[u8], url| {
            check(
                Provider::Square,
                "x-square-hmacsha256-signature",
                sig,
                body,
                url,
            )
        };
        assert_eq!(sq(&good, BODY, Some(URL)), Ok(()));
        assert_eq!(
            sq(&good, b"{}", Some(URL)),
            Err(VerifyError::InvalidSignature)
        );
        // Another host or path, or the query left out: another URL.
        for other in [
            "https://evil.example.com/hooks/square",
            "https://hooks.example.com/hooks/square2",
            "https://hooks.example.com/hooks/square?x=1",
            "http://hooks.example.com/hooks/square",
        ] {
            assert_eq!(
                sq(&good, BODY, Some(other)),
                Err(VerifyError::InvalidSignature),
                "{other}"
            );
        }
        assert_eq!(sq(&good, BODY, None), Err(VerifyError::UrlUnknown));
        assert_eq!(
            sq("not base64!", BODY, Some(URL)),
            Err(VerifyError::MalformedSignature)
        );
        let body_first = b64_hmac("sig-key", &[BODY, URL.as_bytes()]);
        assert_eq!(
            sq(&body_first, BODY, Some(URL)),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn trello_signs_the_body_then_the_callback_url_with_sha1() {
        let url = "https://hooks.example.com/hooks/trello";
        let body =
            br#"{"action":{"id":"51f9424bcd6e040f3c002412","type":"updateCard"},"model":{}}"#;
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(b"sig-key").unwrap();
        m.update(body);
        m.update(url.as_bytes());
        let good = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
        let tr = |sig: &str, body: &[u8], url: &str| {
            check(Provider::Trello, "X-Trello-Webhook", sig, body, Some(url))
        };
        assert_eq!(tr(&good, body, url), Ok(()));
        assert_eq!(tr(&good, b"{}", url), Err(VerifyError::InvalidSignature));
        assert_eq!(
            tr(&good, body, "https://hooks.example.com/x"),
            Err(VerifyError::InvalidSignature)
        );
        // A SHA-256 tag is the wrong length for SHA-1.
        let sha256 = b64_hmac("sig-key", &[body, url.as_bytes()]);
        assert_eq!(tr(&sha256, body, url), Err(VerifyError::MalformedSignature));
    }
}
