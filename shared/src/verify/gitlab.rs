//! GitLab: `X-Gitlab-Token` carries the shared token itself; nothing is
//! signed and there is no timestamp. The header is a credential: callers
//! must not store or log it (see `Verifier::secret_header`).

use http::HeaderName;

pub(super) const TOKEN: HeaderName = HeaderName::from_static("x-gitlab-token");

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::super::tests::{headers, verifier};
    use super::super::{Provider, VerifyError};

    fn check(secrets: &[&str], h: &[(&str, &str)]) -> Result<(), VerifyError> {
        verifier(Provider::Gitlab, secrets).verify(&headers(h), b"{}", SystemTime::now())
    }

    #[test]
    fn matching_token_passes_and_others_fail() {
        assert_eq!(
            check(&["glpat-secret"], &[("X-Gitlab-Token", "glpat-secret")]),
            Ok(())
        );
        assert_eq!(
            check(&["glpat-secret"], &[("X-Gitlab-Token", "glpat-secreT")]),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(&["glpat-secret"], &[("X-Gitlab-Token", "glpat-secret2")]),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(&["glpat-secret"], &[("X-Gitlab-Token", "glpat")]),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn rotation_accepts_any_active_token() {
        assert_eq!(check(&["old", "new"], &[("X-Gitlab-Token", "old")]), Ok(()));
        assert_eq!(check(&["old", "new"], &[("X-Gitlab-Token", "new")]), Ok(()));
        assert_eq!(
            check(&["old", "new"], &[("X-Gitlab-Token", "neither")]),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn missing_and_empty_tokens() {
        assert_eq!(
            check(&["t"], &[]),
            Err(VerifyError::MissingHeader("x-gitlab-token".into()))
        );
        assert_eq!(
            check(&["t"], &[("X-Gitlab-Token", "")]),
            Err(VerifyError::MalformedSignature)
        );
    }

    #[test]
    fn the_token_header_is_declared_secret() {
        assert_eq!(
            verifier(Provider::Gitlab, &["t"])
                .secret_header()
                .map(|h| h.as_str()),
            Some("x-gitlab-token")
        );
        assert_eq!(verifier(Provider::Github, &["t"]).secret_header(), None);
    }
}
