//! A shared token sent as it is in a header (GitLab, Telegram, Okta), or
//! after an authorization scheme (`Authorization: Bearer …`, the generic
//! `bearer` provider): nothing is signed and there is no timestamp. The
//! header is a credential: callers must not store or log it (see
//! `Verifier::secret_headers`).

use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

use super::VerifyError;
use super::common::{header, ok_if, strip_prefix_ci, tag_eq};
use crate::secrets::Secret;

pub(super) struct SharedToken {
    header: HeaderName,
    /// The authorization scheme before the token (`Bearer `), matched
    /// ignoring ASCII case.
    scheme: Option<&'static str>,
    /// SHA-256 of each token: comparing fixed-size digests keeps the
    /// comparison constant-time even in the token's length.
    digests: Box<[[u8; 32]]>,
}

impl SharedToken {
    pub(super) fn new(header: HeaderName, secrets: &[Secret]) -> Self {
        Self::after_scheme(header, None, secrets)
    }

    pub(super) fn after_scheme(
        header: HeaderName,
        scheme: Option<&'static str>,
        secrets: &[Secret],
    ) -> Self {
        Self {
            header,
            scheme,
            digests: secrets
                .iter()
                .map(|s| Sha256::digest(s.expose().as_bytes()).into())
                .collect(),
        }
    }

    pub(super) fn key_count(&self) -> usize {
        self.digests.len()
    }

    pub(super) fn verify(&self, headers: &HeaderMap) -> Result<(), VerifyError> {
        let mut token = header(headers, &self.header)?;
        if let Some(scheme) = self.scheme {
            token = strip_prefix_ci(token, scheme).ok_or(VerifyError::MalformedSignature)?;
        }
        if token.is_empty() {
            return Err(VerifyError::MalformedSignature);
        }
        let got: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let matched = self
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |acc, d| acc | tag_eq(d, &got));
        ok_if(matched.into())
    }
}
