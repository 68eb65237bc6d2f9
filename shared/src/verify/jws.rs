//! A JWS (compact JWT) in a header, HS256 under the shared secret, whose
//! claims carry the hex SHA-256 of the body: Netlify's outgoing webhooks
//! (`X-Webhook-Signature`, `iss: "netlify"`, claim `sha256`).
//!
//! Only `alg: HS256` is accepted, whatever else the token's header says:
//! `none` and the asymmetric algorithms are refused, so a token cannot
//! choose how it is checked. An `exp` claim, when present, is enforced.
//! The MAC is RustCrypto's `hmac`; a JWT crate is not used because those
//! that are well kept link RSA and ECDSA backends this check never calls,
//! in a Lambda zip with a 3 MB budget.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::VerifyError;
use super::common::{Keys, decode_hex, header, ok_if, tag_eq};
use crate::secrets::Secret;

type HmacSha256 = ::hmac::Hmac<Sha256>;

/// A token much longer than a header and a few claims is not decoded.
const MAX_TOKEN: usize = 4096;

/// How a sender uses the scheme.
pub(super) struct Spec {
    pub header: HeaderName,
    /// The `iss` claim the token must carry.
    pub issuer: &'static str,
}

/// Netlify deploy notifications and form submissions.
pub(super) static NETLIFY: Spec = Spec {
    header: HeaderName::from_static("x-webhook-signature"),
    issuer: "netlify",
};

pub(super) struct Jws {
    spec: &'static Spec,
    keys: Keys<HmacSha256>,
}

#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: &'a str,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
}

impl Jws {
    pub(super) fn new(spec: &'static Spec, secrets: &[Secret]) -> Result<Self, String> {
        Ok(Self {
            spec,
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
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let token = header(headers, &self.spec.header)?.trim();
        if token.len() > MAX_TOKEN {
            return Err(VerifyError::MalformedSignature);
        }
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::MalformedSignature);
        };
        let head = URL_SAFE_NO_PAD
            .decode(head)
            .map_err(|_| VerifyError::MalformedSignature)?;
        let jose: JoseHeader =
            serde_json::from_slice(&head).map_err(|_| VerifyError::MalformedSignature)?;
        if jose.alg != "HS256" {
            return Err(VerifyError::MalformedSignature);
        }
        // Room for the decoder's rounding; anything but 32 bytes is refused.
        let mut tag = [0u8; 48];
        if sig.len() > 64 || URL_SAFE_NO_PAD.decode_slice(sig, &mut tag) != Ok(32) {
            return Err(VerifyError::MalformedSignature);
        }
        let signing_input = &token[..token.len() - sig.len() - 1];
        ok_if(self.keys.matches(&[signing_input.as_bytes()], &tag[..32]))?;
        // Signed from here on: a claim that is wrong is a wrong request.
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(VerifyError::InvalidSignature)?;
        if claims.iss.as_deref() != Some(self.spec.issuer) {
            return Err(VerifyError::InvalidSignature);
        }
        let mut claimed = [0u8; 32];
        let hash_ok = claims
            .sha256
            .as_deref()
            .is_some_and(|h| decode_hex(h, &mut claimed));
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        ok_if(hash_ok && bool::from(tag_eq(&claimed, &body_hash)))?;
        if let Some(exp) = claims.exp {
            let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            if now >= exp {
                return Err(VerifyError::TimestampOutOfWindow);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, at};
    use super::*;

    const SECRET: &str = "netlify-jws-secret";
    const BODY: &[u8] = br#"{"id":"5ebc34bf4fea0b01f02efa3a","state":"ready"}"#;

    /// A compact JWS of `header` and `claims` under `secret`, signed here
    /// with the tests' own HMAC.
    pub(crate) fn token(secret: &str, header: &str, claims: &serde_json::Value) -> String {
        use ::hmac::Mac;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut m = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        m.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        )
    }

    /// Netlify's claims for `body`.
    pub(crate) fn claims(body: &[u8]) -> serde_json::Value {
        serde_json::json!({"iss": "netlify", "sha256": hex::encode(Sha256::digest(body))})
    }

    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    fn case(token: &str) -> Case {
        Case::new(Provider::Netlify, &["old", SECRET])
            .header("X-Webhook-Signature", token)
            .body(BODY)
    }

    #[test]
    fn a_token_over_the_body_passes_under_any_configured_secret() {
        case(&token(SECRET, HS256, &claims(BODY))).passes();
        case(&token("old", HS256, &claims(BODY))).passes();
        case(&token("other", HS256, &claims(BODY))).fails(InvalidSignature);
    }

    #[test]
    fn the_body_hash_and_issuer_must_match() {
        case(&token(SECRET, HS256, &claims(b"{}"))).fails(InvalidSignature);
        let mut c = claims(BODY);
        c["iss"] = "elsewhere".into();
        case(&token(SECRET, HS256, &c)).fails(InvalidSignature);
        c = claims(BODY);
        c.as_object_mut().unwrap().remove("sha256");
        case(&token(SECRET, HS256, &c)).fails(InvalidSignature);
        c = claims(BODY);
        c["sha256"] = "not hex".into();
        case(&token(SECRET, HS256, &c)).fails(InvalidSignature);
    }

    /// The token cannot pick its algorithm: `none`, another HMAC or an
    /// asymmetric one are refused before any MAC is computed.
    #[test]
    fn only_hs256_is_accepted() {
        for alg in ["none", "HS512", "RS256", "ES256", "hs256"] {
            let h = format!(r#"{{"alg":"{alg}"}}"#);
            case(&token(SECRET, &h, &claims(BODY))).fails(MalformedSignature);
        }
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims(BODY).to_string())
        );
        case(&unsigned).fails(MalformedSignature);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = token(SECRET, HS256, &claims(BODY));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "%%%.e30.AAAA",
            &format!("{good}x"),
            &format!("{good}.{good}"),
            &"a".repeat(5000),
        ] {
            case(bad).fails(MalformedSignature);
        }
        Case::new(Provider::Netlify, &[SECRET])
            .body(BODY)
            .fails(MissingHeader("x-webhook-signature".into()));
    }

    #[test]
    fn an_expired_token_is_out_of_its_window() {
        let mut c = claims(BODY);
        c["exp"] = 1_700_000_000u64.into();
        let t = token(SECRET, HS256, &c);
        case(&t).now(at(1_699_999_999)).passes();
        case(&t).now(at(1_700_000_000)).fails(TimestampOutOfWindow);
    }
}
