//! The fetch port (one GET of one page) and its reqwest adapter, through
//! the same guarded clients as deliveries.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use url::Url;

use crate::delivery::DeliveryError;
use crate::delivery::http::{GuardedClients, HttpOptions, map_error, redacted};

/// One page to fetch.
#[derive(Debug, Clone)]
pub struct PageRequest<'a> {
    pub url: &'a Url,
    /// The poller's headers and any conditional-request headers.
    pub headers: HeaderMap,
    pub allow_local: bool,
    /// A body over this many bytes is an error; the rest is not read.
    pub max_bytes: usize,
}

/// A response (any status), its body read whole within the cap.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The guard refused the URL (scheme, or resolved address).
    #[error("refused: {0}")]
    Refused(String),
    #[error("the response is over {limit} bytes (max_response_bytes)")]
    TooLarge { limit: usize },
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("{0}")]
    Other(String),
}

impl From<DeliveryError> for FetchError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Refused(m) => Self::Refused(m),
            DeliveryError::Timeout => Self::Timeout,
            DeliveryError::Connect(m) => Self::Connect(m),
            other => Self::Other(other.to_string()),
        }
    }
}

#[async_trait]
pub trait Fetch: Send + Sync {
    async fn get(&self, req: &PageRequest<'_>) -> Result<Page, FetchError>;
}

/// Fetches over HTTP(S) with the SSRF guard, redirects not followed.
#[derive(Debug, Clone)]
pub struct HttpFetch {
    clients: GuardedClients,
}

impl HttpFetch {
    pub fn new(opts: &HttpOptions) -> Result<Self, FetchError> {
        Ok(Self {
            clients: GuardedClients::new(opts)?,
        })
    }
}

#[async_trait]
impl Fetch for HttpFetch {
    async fn get(&self, req: &PageRequest<'_>) -> Result<Page, FetchError> {
        let client = self.clients.client_for(req.url, req.allow_local)?;
        let mut resp = client
            .get(req.url.clone())
            .headers(req.headers.clone())
            .send()
            .await
            .map_err(|e| {
                let err = FetchError::from(map_error(e));
                tracing::debug!(url = %redacted(req.url), error = %err, "poll request failed");
                err
            })?;
        if resp
            .content_length()
            .is_some_and(|n| n > req.max_bytes as u64)
        {
            return Err(FetchError::TooLarge {
                limit: req.max_bytes,
            });
        }
        let status = resp.status().as_u16();
        let headers = std::mem::take(resp.headers_mut());
        // Read chunk by chunk: a body past the cap stops the read (and
        // drops the connection) instead of growing without bound.
        let mut body = BytesMut::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::from(map_error(e)))?
        {
            if body.len() + chunk.len() > req.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: req.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Page {
            status,
            headers,
            body: body.freeze(),
        })
    }
}
