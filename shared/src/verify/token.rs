//! A shared token sent as it is in a header (GitLab, Telegram, Okta), after
//! an authorization scheme (`Authorization: Bearer …`, the generic `bearer`
//! provider), or in a query parameter or header the source names (the
//! generic `token` provider): nothing is signed and there is no timestamp.
//! The header is a credential: callers must not store or log it (see
//! `Verifier::secret_header`). A query parameter is part of the URL, which
//! neither backend stores.

use http::{HeaderMap, HeaderName};

use super::common::{SecretDigests, header, ok_if, strip_prefix_ci};
use super::{TokenParams, VerifyError};
use crate::secrets::Secret;

/// Where the token comes.
enum Carrier {
    Header {
        name: HeaderName,
        /// The authorization scheme before the token (`Bearer `), matched
        /// ignoring ASCII case.
        scheme: Option<&'static str>,
    },
    Query(Box<str>),
}

pub(super) struct SharedToken {
    carrier: Carrier,
    digests: SecretDigests,
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
        Self::with(
            Carrier::Header {
                name: header,
                scheme,
            },
            secrets,
        )
    }

    /// The generic `token` provider: exactly one of a header and a query
    /// parameter.
    pub(super) fn configured(params: &TokenParams, secrets: &[Secret]) -> Result<Self, String> {
        let carrier = match (&params.header, &params.query) {
            (Some(h), None) => Carrier::Header {
                name: HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| format!("token.header {h:?} is not a header name"))?,
                scheme: None,
            },
            (None, Some(q)) if !q.is_empty() => Carrier::Query(q.as_str().into()),
            (None, Some(_)) => return Err("token.query is empty".to_owned()),
            _ => return Err("the token settings name exactly one of header and query".to_owned()),
        };
        Ok(Self::with(carrier, secrets))
    }

    fn with(carrier: Carrier, secrets: &[Secret]) -> Self {
        Self {
            carrier,
            digests: SecretDigests::new(secrets),
        }
    }

    /// The header carrying the token, if it comes in one.
    pub(super) fn header(&self) -> Option<&HeaderName> {
        match &self.carrier {
            Carrier::Header { name, .. } => Some(name),
            Carrier::Query(_) => None,
        }
    }

    pub(super) fn key_count(&self) -> usize {
        self.digests.len()
    }

    pub(super) fn verify(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), VerifyError> {
        let from_query;
        let token = match &self.carrier {
            Carrier::Header { name, scheme } => {
                let value = header(headers, name)?;
                match scheme {
                    Some(s) => strip_prefix_ci(value, s).ok_or(VerifyError::MalformedSignature)?,
                    None => value,
                }
            }
            Carrier::Query(name) => {
                from_query = query_value(query.unwrap_or(""), name)?;
                &from_query
            }
        };
        if token.is_empty() {
            return Err(VerifyError::MalformedSignature);
        }
        ok_if(self.digests.matches(token.as_bytes()))
    }
}

/// The one value of parameter `name` in `query`, percent-decoded. Sent
/// twice it is refused, as a repeated header is: which copy would be
/// checked would depend on their order.
fn query_value(query: &str, name: &str) -> Result<String, VerifyError> {
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == name {
            if found.is_some() {
                return Err(VerifyError::RepeatedQueryParameter(name.to_owned()));
            }
            found = Some(v.into_owned());
        }
    }
    found.ok_or_else(|| VerifyError::MissingQueryParameter(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::super::tests::headers;
    use super::super::{GenericParams, Provider, TokenParams, Verifier, VerifyError::*};
    use crate::secrets::Secret;

    fn token(header: Option<&str>, query: Option<&str>) -> Result<Verifier, String> {
        let params = TokenParams {
            header: header.map(Into::into),
            query: query.map(Into::into),
        };
        let generic = GenericParams {
            token: Some(&params),
            ..GenericParams::default()
        };
        let secrets = [Secret::new("old-token"), Secret::new("tok/3+x")];
        Verifier::with_params(Provider::Token, &secrets, generic, None)
    }

    #[test]
    fn a_token_in_the_named_header_passes_only_when_equal() {
        let v = token(Some("X-Api-Key"), None).unwrap();
        let check = |h: &[(&str, &str)]| v.verify(&headers(h), b"{}", SystemTime::now());
        assert_eq!(check(&[("x-api-key", "tok/3+x")]), Ok(()));
        assert_eq!(check(&[("x-api-key", "old-token")]), Ok(()));
        assert_eq!(check(&[("x-api-key", "tok/3+y")]), Err(InvalidSignature));
        assert_eq!(check(&[("x-api-key", "")]), Err(MalformedSignature));
        assert_eq!(check(&[]), Err(MissingHeader("x-api-key".into())));
        assert_eq!(
            check(&[("x-api-key", "tok/3+x"), ("x-api-key", "old-token")]),
            Err(RepeatedHeader("x-api-key".into()))
        );
        assert_eq!(v.secret_header().map(|h| h.as_str()), Some("x-api-key"));
    }

    /// The query parameter is percent-decoded (`+` is a space, as in a
    /// form), must come once, and is not a header to drop.
    #[test]
    fn a_token_in_the_named_query_parameter_passes_only_when_equal() {
        let v = token(None, Some("key")).unwrap();
        let check =
            |q: Option<&str>| v.verify_request(&headers(&[]), b"{}", None, q, SystemTime::now());
        assert_eq!(check(Some("a=1&key=tok%2F3%2Bx")), Ok(()));
        assert_eq!(check(Some("key=old-token")), Ok(()));
        assert_eq!(check(Some("key=tok/3+x")), Err(InvalidSignature));
        assert_eq!(check(Some("key=")), Err(MalformedSignature));
        assert_eq!(
            check(Some("keys=old-token")),
            Err(MissingQueryParameter("key".into()))
        );
        assert_eq!(check(None), Err(MissingQueryParameter("key".into())));
        let twice = check(Some("key=old-token&key=nope"));
        assert_eq!(twice, Err(RepeatedQueryParameter("key".into())));
        assert!(twice.unwrap_err().is_malformed_request());
        assert_eq!(v.secret_header(), None);
        // Through verify_at, the query comes from the URL.
        assert_eq!(
            v.verify_at(
                &headers(&[]),
                b"{}",
                Some("https://h.example/hooks/s?key=old-token"),
                SystemTime::now()
            ),
            Ok(())
        );
    }

    #[test]
    fn the_settings_name_exactly_one_carrier() {
        for (h, q) in [(None, None), (Some("x-a"), Some("k")), (None, Some(""))] {
            let err = token(h, q).err().unwrap();
            assert!(
                !err.contains("old-token") && !err.contains("tok/3"),
                "{err}"
            );
        }
        assert!(token(Some("bad header"), None).is_err());
        let none = Verifier::new(Provider::Token, &[Secret::new("t")], None, None);
        assert!(none.err().unwrap().contains("[token] settings"));
    }
}
