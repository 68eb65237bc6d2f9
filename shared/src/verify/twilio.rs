//! Twilio: `X-Twilio-Signature`, base64 HMAC-SHA1 under the account's auth
//! token of the URL Twilio called (with its query) followed by each form
//! parameter of the body, sorted, as `{name}{value}`. For a JSON body the
//! URL carries `bodySHA256`, the hex SHA-256 of the body, and no
//! parameters follow. Like Twilio's own validators, the URL is tried with
//! and without its port (Twilio may sign either). No timestamp is signed.
//!
//! The URL is the source's `public_url` (or, on AWS, the one API Gateway
//! saw) with the request's query: never the `Host` header.

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::VerifyError;
use super::common::{Keys, decode_base64, decode_hex, header, ok_if, tag_eq};
use crate::secrets::Secret;
use url::form_urlencoded;

const SIG: HeaderName = HeaderName::from_static("x-twilio-signature");

pub(super) struct Twilio {
    keys: Keys<Hmac<Sha1>>,
}

impl Twilio {
    pub(super) fn new(secrets: &[Secret]) -> Result<Self, String> {
        Ok(Self {
            keys: Keys::from_secrets(secrets)?,
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
        let value = header(headers, &SIG)?;
        let mut sig = [0u8; 20];
        if !decode_base64(value, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        let url = url.ok_or(VerifyError::UrlUnknown)?;
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let params: Vec<(String, String)> = match body_sha256(query) {
            // JSON: the body is bound by its hash in the signed URL.
            Some(hex) => {
                let mut want = [0u8; 32];
                let got: [u8; 32] = Sha256::digest(body).into();
                if !decode_hex(hex, &mut want) || !bool::from(tag_eq(&got, &want)) {
                    return Err(VerifyError::InvalidSignature);
                }
                Vec::new()
            }
            None => sorted_params(body),
        };
        let (with_port, without_port) = port_variants(url);
        let matched = [with_port.as_str(), without_port.as_str()].iter().any(|u| {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * params.len());
            parts.push(u.as_bytes());
            for (k, v) in &params {
                parts.push(k.as_bytes());
                parts.push(v.as_bytes());
            }
            self.keys.matches(&parts, &sig)
        });
        ok_if(matched)
    }
}

/// The `bodySHA256` query parameter, if present.
fn body_sha256(query: &str) -> Option<&str> {
    query.split('&').find_map(|p| p.strip_prefix("bodySHA256="))
}

/// The form parameters of the body, decoded, sorted by name then value,
/// without repeats (as Twilio's validators sort a set of each). A body
/// that is not a form has none.
fn sorted_params(body: &[u8]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    params.dedup();
    params
}

/// The URL with an explicit port (its own, or the scheme's default) and
/// without one.
pub(super) fn port_variants(url: &str) -> (String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), url.to_owned());
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port follows the last `:` after any IPv6 literal's `]`.
    let after_bracket = authority.rfind(']').map_or(0, |i| i + 1);
    let (host, port) = match authority[after_bracket..].rfind(':') {
        Some(i) => {
            let i = after_bracket + i;
            (&authority[..i], Some(&authority[i + 1..]))
        }
        None => (authority, None),
    };
    let default = if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        "443"
    };
    let port = port.unwrap_or(default);
    (
        format!("{scheme}://{host}:{port}{tail}"),
        format!("{scheme}://{host}{tail}"),
    )
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use sha2::Digest;

    use super::super::tests::{headers, verifier};
    use super::super::{Provider, VerifyError};
    use super::port_variants;

    fn check(token: &str, sig: &str, body: &[u8], url: &str) -> Result<(), VerifyError> {
        verifier(Provider::Twilio, &[token]).verify_at(
            &headers(&[("X-Twilio-Signature", sig)]),
            body,
            Some(url),
            std::time::SystemTime::now(),
        )
    }

    const FORM: &[u8] = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// Twilio's library tests (PROVIDERS.md): a form body.
    #[test]
    fn the_published_form_vector_verifies() {
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert_eq!(check("12345", sig, FORM, URL), Ok(()));
        // Twilio may have signed with the port: both forms pass.
        assert_eq!(
            check(
                "12345",
                sig,
                FORM,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2"
            ),
            Ok(())
        );
        assert_eq!(
            check("12346", sig, FORM, URL),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check("12345", sig, &FORM[1..], URL),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(
                "12345",
                sig,
                FORM,
                "https://mycompany.com/myapp.php?foo=1&bar=3"
            ),
            Err(VerifyError::InvalidSignature)
        );
        // Parameter order in the body does not matter: they are sorted.
        let shuffled = b"To=%2B18005551212&Digits=1234&CallSid=CA1234567890ABCDE&From=%2B14158675309&Caller=%2B14158675309";
        assert_eq!(check("12345", sig, shuffled, URL), Ok(()));
        assert_eq!(
            check("12345", "abc", FORM, URL),
            Err(VerifyError::MalformedSignature)
        );
    }

    /// Twilio's library tests (PROVIDERS.md): a JSON body, bound by its
    /// hash in the URL.
    #[test]
    fn the_published_json_vector_verifies_and_binds_the_body() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = hex::encode(sha2::Sha256::digest(body));
        let url = format!("{URL}&bodySHA256={hash}");
        let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
        assert_eq!(check("12345", sig, body, &url), Ok(()));
        // Another body under the same signed URL fails on the hash.
        assert_eq!(
            check(
                "12345",
                sig,
                br#"{"property": "other", "boolean": true}"#,
                &url
            ),
            Err(VerifyError::InvalidSignature)
        );
        let bad_hash = url.replace(&hash[..4], "zzzz");
        assert_eq!(
            check("12345", sig, body, &bad_hash),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn repeated_parameters_are_signed_once_each_in_order() {
        let body = b"b=2&a=1&b=1&a=1";
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(b"tok").unwrap();
        m.update(b"https://h.example.com/t");
        m.update(b"a1b1b2");
        let sig = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
        assert_eq!(check("tok", &sig, body, "https://h.example.com/t"), Ok(()));
    }

    #[test]
    fn port_variants_cover_explicit_default_and_ipv6() {
        assert_eq!(
            port_variants("https://a.example/x?y=1"),
            (
                "https://a.example:443/x?y=1".into(),
                "https://a.example/x?y=1".into()
            )
        );
        assert_eq!(
            port_variants("http://a.example:8080/x"),
            (
                "http://a.example:8080/x".into(),
                "http://a.example/x".into()
            )
        );
        assert_eq!(
            port_variants("https://[::1]:8443"),
            ("https://[::1]:8443".into(), "https://[::1]".into())
        );
        assert_eq!(port_variants("junk"), ("junk".into(), "junk".into()));
    }
}
