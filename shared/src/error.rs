//! Errors of the receive path and their one mapping to HTTP.

use std::time::Duration;

use crate::extract::HeaderError;
use crate::verify::VerifyError;

/// Why a port (store, queue, config) could not do its job. Always
/// retryable from the caller's point of view: nothing was committed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

impl Unavailable {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// Everything that can stop a webhook from being accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("unknown source")]
    UnknownSource,
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
    #[error("store unavailable: {0}")]
    Unavailable(#[from] Unavailable),
}

impl ReceiveError {
    /// The HTTP status for this error. This is the only place that decides it.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownSource => 404,
            Self::Verify(e) if e.is_malformed_request() => 400,
            Self::Verify(_) => 401,
            Self::BodyTooLarge { .. } => 413,
            Self::BodyTimeout(_) => 408,
            Self::Header(_) | Self::BadRequest(_) => 400,
            Self::Unavailable(_) => 503,
        }
    }

    /// Stable, machine-readable error code for the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSource => "unknown_source",
            Self::Verify(e) => e.code(),
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Header(_) => "malformed_header",
            Self::BadRequest(_) => "bad_request",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The JSON body of the error response. It never echoes secrets: the
    /// message names what was wrong, not the values involved.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.code(), "message": self.to_string() }).to_string()
    }
}
