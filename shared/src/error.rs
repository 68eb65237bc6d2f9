//! Errors of the receive path and their one mapping to HTTP.

use std::time::Duration;

use crate::extract::HeaderError;
use crate::verify::VerifyError;

/// Why a port (store, queue, config) could not do its job. Nothing was
/// committed. Most failures are transient (throttling, a timeout, a 5xx
/// from the service): the caller may retry. A permanent one (the service
/// refused the request itself: validation, an item too large) will fail
/// the same way every time and must not be retried forever.
///
/// The message is for the log: it may name tables, calls and the SDK's
/// error chain, so it is never sent to a client (see [`ReceiveError::body`]).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Unavailable {
    message: String,
    permanent: bool,
}

impl Unavailable {
    /// A transient failure: retrying may succeed.
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            permanent: false,
        }
    }

    /// The service refused the request itself; retrying cannot help.
    pub fn permanent(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            permanent: true,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same failure, its message prefixed with `context`.
    pub fn context(self, context: impl std::fmt::Display) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
            permanent: self.permanent,
        }
    }
}

/// Everything that can stop a webhook from being accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("unknown source")]
    UnknownSource,
    /// The source is configured but cannot be served now (its secret does
    /// not resolve, its entry does not validate). Other sources are served.
    #[error("source unavailable: {reason}")]
    SourceUnavailable { reason: String },
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("body is {size} bytes, over the limit of {limit}")]
    BodyTooLarge { size: usize, limit: usize },
    /// The body did not arrive whole within the server's body timeout.
    #[error("the body did not arrive within {} s", .0.as_secs_f64())]
    BodyTimeout(Duration),
    /// An event id or type header that is present but unusable.
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// A method the source does not answer; `allow` lists those it does.
    #[error("method not allowed: this source answers {allow}")]
    MethodNotAllowed { allow: &'static str },
    /// A provider's check of the endpoint that does not match the
    /// source's config (Meta's `hub.verify_token`).
    #[error("handshake refused: {0}")]
    HandshakeRefused(&'static str),
    /// A handshake bringing a secret to a source that already keeps
    /// another (Asana's `X-Hook-Secret`): the first one stays.
    #[error("handshake refused: {0}")]
    SecretAlreadyKept(&'static str),
    #[error("store unavailable: {0}")]
    Unavailable(#[from] Unavailable),
}

impl From<crate::config::SourceError> for ReceiveError {
    fn from(e: crate::config::SourceError) -> Self {
        match e {
            crate::config::SourceError::Broken(b) => Self::SourceUnavailable {
                reason: b.to_string(),
            },
            crate::config::SourceError::Unavailable(u) => Self::Unavailable(u),
        }
    }
}

impl ReceiveError {
    /// The HTTP status for this error. This is the only place that decides it.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownSource => 404,
            Self::Verify(e) if e.is_malformed_request() => 400,
            // Not yet servable: the provider retries until its handshake.
            Self::Verify(VerifyError::AwaitingHandshake) => 503,
            Self::Verify(_) => 401,
            Self::BodyTooLarge { .. } => 413,
            Self::BodyTimeout(_) => 408,
            Self::Header(_) | Self::BadRequest(_) => 400,
            Self::MethodNotAllowed { .. } => 405,
            Self::HandshakeRefused(_) => 403,
            Self::SecretAlreadyKept(_) => 409,
            Self::Unavailable(u) if u.is_permanent() => 422,
            Self::SourceUnavailable { .. } | Self::Unavailable(_) => 503,
        }
    }

    /// Stable, machine-readable error code for the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSource => "unknown_source",
            Self::SourceUnavailable { .. } => "source_unavailable",
            Self::Verify(e) => e.code(),
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Header(_) => "malformed_header",
            Self::BadRequest(_) => "bad_request",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::HandshakeRefused(_) => "handshake_refused",
            Self::SecretAlreadyKept(_) => "secret_already_kept",
            Self::Unavailable(u) if u.is_permanent() => "not_storable",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// What the client is told. Errors about the request say what was
    /// wrong with it; failures on our side get a short fixed text, since
    /// their detail (tables, SDK errors, ARNs) is for the log only.
    pub fn public_message(&self) -> String {
        match self {
            Self::SourceUnavailable { .. } => {
                "this source cannot be served right now; retry later".to_owned()
            }
            Self::Unavailable(u) if u.is_permanent() => {
                "the event cannot be stored; it will not be accepted on retry".to_owned()
            }
            Self::Unavailable(_) => "temporarily unavailable; retry later".to_owned(),
            other => other.to_string(),
        }
    }

    /// The methods to name in an `Allow` header, for a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            Self::MethodNotAllowed { allow } => Some(allow),
            _ => None,
        }
    }

    /// Whether the detail of this error is ours (logged, not shown).
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::SourceUnavailable { .. } | Self::Unavailable(_))
    }

    /// The JSON body of the error response, carrying `request_id` (the
    /// id the log line of an internal error holds too). It never echoes
    /// secrets nor internals: see [`Self::public_message`].
    pub fn body(&self, request_id: &str) -> String {
        serde_json::json!({
            "error": self.code(),
            "message": self.public_message(),
            "request_id": request_id,
        })
        .to_string()
    }

    /// Log an internal error's detail under `request_id`; other errors
    /// are logged where they are found.
    pub fn log_internal(&self, source: &str, request_id: &str) {
        if self.is_internal() {
            tracing::warn!(source, request_id, code = self.code(), error = %self, "webhook not accepted");
        }
    }
}

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request id for a server that has none given (`sluice serve`).
pub fn new_request_id() -> String {
    let mut b = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_show_a_fixed_message_and_the_request_id() {
        let e = ReceiveError::Unavailable(Unavailable::new(
            "PutItem (events): ResourceNotFoundException: arn:aws:dynamodb:us-east-1:123456789012:table/t",
        ));
        assert_eq!(e.status(), 503);
        let body: serde_json::Value = serde_json::from_str(&e.body("req-1")).unwrap();
        assert_eq!(body["error"], "unavailable");
        assert_eq!(body["request_id"], "req-1");
        let text = body.to_string();
        for leak in [
            "PutItem",
            "arn:",
            "123456789012",
            "ResourceNotFound",
            "table",
        ] {
            assert!(!text.contains(leak), "{text}");
        }
        let p = ReceiveError::Unavailable(Unavailable::permanent("ValidationException: too big"));
        assert_eq!((p.status(), p.code()), (422, "not_storable"));
        assert!(!p.body("r").contains("Validation"));
        let s = ReceiveError::SourceUnavailable {
            reason: "secret ssm:/x is not set".into(),
        };
        assert_eq!((s.status(), s.code()), (503, "source_unavailable"));
        assert!(!s.body("r").contains("ssm:"));
        // Errors about the request still say what was wrong.
        let b = ReceiveError::BodyTooLarge { size: 9, limit: 1 };
        assert!(b.body("r").contains("over the limit of 1"));
        assert_ne!(new_request_id(), new_request_id());
    }
}
