//! Outbound HTTP delivery: the transport port and its reqwest adapter with
//! the SSRF guard.
//!
//! `http` holds the reqwest adapter, `ssrf` the guard it applies.

pub mod http;
pub mod ssrf;

use std::time::Duration;

use ::http::HeaderMap;
use async_trait::async_trait;
use bytes::Bytes;
use url::Url;

pub use self::http::{HttpOptions, HttpTransport, redacted};
pub use self::ssrf::is_forbidden;

/// One POST to a destination.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub url: Url,
    pub body: Bytes,
    /// Content type, Standard Webhooks headers, and so on.
    pub headers: HeaderMap,
    /// Allow http:// and private, loopback or link-local targets.
    pub allow_local: bool,
}

/// A response from the destination (any status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResponse {
    pub status: u16,
    /// From `Retry-After` (seconds or HTTP date), if present and valid.
    pub retry_after: Option<Duration>,
    /// The first bytes of the response body (capped), lossily decoded.
    pub snippet: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The guard refused the destination (scheme, or resolved address).
    #[error("refused: {0}")]
    Refused(String),
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("{0}")]
    Other(String),
    /// The payload could not be rendered (a subscription template failed);
    /// nothing was sent.
    #[error("render failed: {0}")]
    Render(String),
    /// The request could not be signed (see `pipeline::deliver::BuildError`);
    /// nothing was sent, and never unsigned instead.
    #[error("not sent: {0}")]
    Unsigned(String),
}

impl DeliveryError {
    /// A refusal, a render or signing failure will not change by retrying.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Refused(_) | Self::Render(_) | Self::Unsigned(_))
    }
}

#[async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, req: &OutboundRequest) -> Result<DeliveryResponse, DeliveryError>;
}
