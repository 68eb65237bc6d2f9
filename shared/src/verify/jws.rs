//! A JWS (compact JWT) in a header, HS256 under the shared secret, whose
//! claims carry the hex SHA-256 of the body: Netlify's outgoing webhooks
//! (`X-Webhook-Signature`, `iss: "netlify"`, claim `sha256`), and the
//! generic `jwt` provider, whose header, prefix, issuer and claim the
//! source names.
//!
//! Only `alg: HS256` is accepted, whatever else the token's header says:
//! `none` and the asymmetric algorithms are refused, so a token cannot
//! choose how it is checked. `exp` and `nbf` claims, when present, are
//! enforced. The MAC is RustCrypto's `hmac`; a JWT crate is not used
//! because those that are well kept link RSA and ECDSA backends this check
//! never calls, in a Lambda zip with a 3 MB budget.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::common::{Keys, decode_hex, header, ok_if, strip_prefix_ci, tag_eq};
use super::{JwtParams, VerifyError};
use crate::secrets::Secret;

type HmacSha256 = ::hmac::Hmac<Sha256>;

/// A token much longer than a header and a few claims is not decoded.
const MAX_TOKEN: usize = 4096;

pub(super) struct Jws {
    header: HeaderName,
    /// Text before the token (`Bearer `), matched ignoring ASCII case.
    prefix: Box<str>,
    /// The `iss` claim the token must carry, if any.
    issuer: Option<Box<str>>,
    /// The claim holding the body's hex SHA-256.
    hash_claim: Box<str>,
    keys: Keys<HmacSha256>,
}

#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: &'a str,
}

impl Jws {
    /// Netlify's outgoing webhooks.
    pub(super) fn netlify(secrets: &[Secret]) -> Result<Self, String> {
        Self::configured(
            &JwtParams {
                header: "x-webhook-signature".to_owned(),
                prefix: String::new(),
                issuer: Some("netlify".to_owned()),
                body_hash_claim: JwtParams::default_body_hash_claim(),
            },
            secrets,
        )
    }

    pub(super) fn configured(params: &JwtParams, secrets: &[Secret]) -> Result<Self, String> {
        let header = HeaderName::from_bytes(params.header.as_bytes())
            .map_err(|_| format!("jwt.header {:?} is not a header name", params.header))?;
        if params.body_hash_claim.is_empty() {
            return Err("jwt.body_hash_claim is empty".to_owned());
        }
        Ok(Self {
            header,
            prefix: params.prefix.as_str().into(),
            issuer: params.issuer.as_deref().map(Into::into),
            hash_claim: params.body_hash_claim.as_str().into(),
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
        let value = header(headers, &self.header)?;
        let token = strip_prefix_ci(value, &self.prefix)
            .ok_or(VerifyError::MalformedSignature)?
            .trim();
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
        let claims: serde_json::Map<String, serde_json::Value> = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(VerifyError::InvalidSignature)?;
        if let Some(issuer) = &self.issuer {
            let iss = claims.get("iss").and_then(|v| v.as_str());
            if iss != Some(&**issuer) {
                return Err(VerifyError::InvalidSignature);
            }
        }
        let mut claimed = [0u8; 32];
        let hash_ok = claims
            .get(&*self.hash_claim)
            .and_then(|v| v.as_str())
            .is_some_and(|h| decode_hex(h, &mut claimed));
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        ok_if(hash_ok && bool::from(tag_eq(&claimed, &body_hash)))?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let time = |name| match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or(VerifyError::MalformedTimestamp),
        };
        if time("exp")?.is_some_and(|exp| now >= exp) || time("nbf")?.is_some_and(|nbf| now < nbf) {
            return Err(VerifyError::TimestampOutOfWindow);
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
    fn exp_and_nbf_bound_the_tokens_use() {
        let mut c = claims(BODY);
        c["exp"] = 1_700_000_000u64.into();
        c["nbf"] = 1_699_999_000u64.into();
        let t = token(SECRET, HS256, &c);
        case(&t).now(at(1_699_999_999)).passes();
        case(&t).now(at(1_700_000_000)).fails(TimestampOutOfWindow);
        case(&t).now(at(1_699_998_999)).fails(TimestampOutOfWindow);
        c["exp"] = "soon".into();
        case(&token(SECRET, HS256, &c)).fails(MalformedTimestamp);
    }

    /// The generic `jwt` provider: the source's header, prefix, issuer
    /// (none here) and claim.
    #[test]
    fn the_generic_scheme_reads_what_the_source_names() {
        let params = JwtParams {
            header: "Authorization".into(),
            prefix: "Bearer ".into(),
            issuer: None,
            body_hash_claim: "body_sha256".into(),
        };
        let v = |h: &str| {
            let secrets = [Secret::new(SECRET)];
            let jws = Jws::configured(&params, &secrets).unwrap();
            jws.verify(
                &super::super::tests::headers(&[("authorization", h)]),
                BODY,
                at(1),
            )
        };
        let c = serde_json::json!({"body_sha256": hex::encode(Sha256::digest(BODY))});
        assert_eq!(v(&format!("Bearer {}", token(SECRET, HS256, &c))), Ok(()));
        assert_eq!(v(&format!("bearer {}", token(SECRET, HS256, &c))), Ok(()));
        assert_eq!(v(&token(SECRET, HS256, &c)), Err(MalformedSignature));
        // Netlify's claim name is not this source's.
        assert_eq!(
            v(&format!("Bearer {}", token(SECRET, HS256, &claims(BODY)))),
            Err(InvalidSignature)
        );
        let bad = JwtParams {
            header: "bad header".into(),
            ..params.clone()
        };
        assert!(Jws::configured(&bad, &[Secret::new(SECRET)]).is_err());
    }
}
