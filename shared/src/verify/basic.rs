//! Generic schemes for senders that only authenticate: `basic` (HTTP
//! Basic, `Authorization: Basic base64(user:password)`, each secret being
//! `user:password`) and `bearer` (`Authorization: Bearer <secret>`, a
//! [`super::token::SharedToken`] after its scheme). Nothing is signed and
//! there is no timestamp; `Authorization` is a credential, never stored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::VerifyError;
use super::common::{SecretDigests, header, ok_if, strip_prefix_ci};
use crate::secrets::Secret;

/// `user:password` fits easily; a longer header is not decoded.
const MAX_CREDENTIALS: usize = 1024;

pub(super) struct Basic {
    /// Each `user:password`.
    digests: SecretDigests,
}

impl Basic {
    pub(super) fn new(secrets: &[Secret]) -> Result<Self, String> {
        for (i, s) in secrets.iter().enumerate() {
            if !s.expose().contains(':') {
                return Err(format!(
                    "secret #{} is not user:password (HTTP Basic credentials)",
                    i + 1
                ));
            }
        }
        Ok(Self {
            digests: SecretDigests::new(secrets),
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.digests.len()
    }

    pub(super) fn verify(&self, headers: &HeaderMap) -> Result<(), VerifyError> {
        let value = header(headers, &AUTHORIZATION)?;
        let encoded = strip_prefix_ci(value, "Basic ")
            .map(str::trim)
            .filter(|e| !e.is_empty() && e.len() <= MAX_CREDENTIALS)
            .ok_or(VerifyError::MalformedSignature)?;
        let decoded = STANDARD
            .decode(encoded)
            .map_err(|_| VerifyError::MalformedSignature)?;
        ok_if(self.digests.matches(&decoded))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::super::tests::{Case, verifier};
    use super::super::{Provider, Verifier, VerifyError::*};
    use crate::secrets::Secret;

    const CREDS: &str = "sluice:pa55:word";

    fn basic(value: Option<&str>) -> Case {
        let c = Case::new(Provider::Basic, &["old:one", CREDS]);
        match value {
            Some(v) => c.header("Authorization", v),
            None => c,
        }
    }

    #[test]
    fn basic_credentials_pass_only_when_equal() {
        let good = format!("Basic {}", STANDARD.encode(CREDS));
        basic(Some(&good)).passes();
        basic(Some(&format!("basic {}", STANDARD.encode(CREDS)))).passes();
        basic(Some(&format!(
            "Basic {}",
            STANDARD.encode("sluice:pa55:wore")
        )))
        .fails(InvalidSignature);
        basic(Some(&format!("Basic {}", STANDARD.encode("sluice")))).fails(InvalidSignature);
        basic(Some(&format!("Bearer {}", STANDARD.encode(CREDS)))).fails(MalformedSignature);
        basic(Some("Basic %%%")).fails(MalformedSignature);
        basic(Some("Basic ")).fails(MalformedSignature);
        basic(Some(&format!("Basic {}", "QUFB".repeat(300)))).fails(MalformedSignature);
        basic(None).fails(MissingHeader("authorization".into()));
    }

    #[test]
    fn a_basic_secret_must_be_user_colon_password() {
        let err = Verifier::new(Provider::Basic, &[Secret::new("nocolon")], None, None)
            .err()
            .unwrap();
        assert!(
            err.contains("secret #1") && !err.contains("nocolon"),
            "{err}"
        );
    }

    #[test]
    fn a_bearer_token_passes_only_when_equal() {
        let case = |v: &str| Case::new(Provider::Bearer, &["tok-1"]).header("Authorization", v);
        case("Bearer tok-1").passes();
        case("bearer tok-1").passes();
        case("Bearer tok-2").fails(InvalidSignature);
        case("Bearer ").fails(MalformedSignature);
        case("tok-1").fails(MalformedSignature);
        case("Basic tok-1").fails(MalformedSignature);
        assert_eq!(
            verifier(Provider::Bearer, &["tok-1"])
                .secret_header()
                .map(|h| h.as_str()),
            Some("authorization")
        );
    }
}
