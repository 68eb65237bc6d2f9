//! Okta event hooks: the hook's configured authentication value comes
//! back, as it is, in `Authorization` on every delivery and on the
//! one-time verification GET (answered in `pipeline::challenge`). Nothing
//! is signed and there is no timestamp; dedup on the body's `eventId`
//! covers Okta's retries.

use http::HeaderName;

pub(super) const TOKEN: HeaderName = http::header::AUTHORIZATION;

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, verifier};

    const TOKEN: &str = "Bearer okta-hook-7d1e";
    const BODY: &[u8] = br#"{"eventType":"com.okta.event_hook","eventId":"b5a188b9-5ece-4636-b041-482ffda96311","data":{"events":[]}}"#;

    fn case(secrets: &[&str], value: Option<&str>) -> Case {
        let c = Case::new(Provider::Okta, secrets).body(BODY);
        match value {
            Some(v) => c.header("Authorization", v),
            None => c,
        }
    }

    #[test]
    fn the_configured_authorization_value_passes_and_anything_else_fails() {
        case(&[TOKEN], Some(TOKEN)).passes();
        case(&["Bearer old", TOKEN], Some(TOKEN)).passes();
        case(&[TOKEN], Some("Bearer okta-hook-7d1f")).fails(InvalidSignature);
        case(&[TOKEN], Some("bearer okta-hook-7d1e")).fails(InvalidSignature);
        case(&[TOKEN], Some("")).fails(MalformedSignature);
        case(&[TOKEN], None).fails(MissingHeader("authorization".into()));
    }

    #[test]
    fn the_authorization_header_is_a_credential() {
        assert_eq!(
            verifier(Provider::Okta, &[TOKEN])
                .secret_header()
                .map(|h| h.as_str()),
            Some("authorization")
        );
    }
}
