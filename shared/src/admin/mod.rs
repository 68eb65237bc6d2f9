//! The admin API: sources and subscriptions, the event log, replays and
//! the dead-letter queue. The logic is plain async functions over ports
//! ([`ports`]), with one HTTP entry point ([`handle`]) over
//! `http::Request<Bytes>`, so the embedded gateway (axum) and an AWS
//! Lambda serve the same contract through thin adapters.

pub mod api;
mod config_ops;
mod event_ops;
mod input;
pub mod openapi;
mod poller_ops;
pub mod ports;
pub mod sync;
mod verify_ops;
mod views;

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

pub use api::{MAX_BODY_BYTES, ROUTES, handle, handle_trusted};

use crate::config::Registry;
use crate::error::Unavailable;
use crate::poll::{Fetch, PollerStates};
use crate::secrets::{Secret, SecretResolver, SecretStore};
use crate::store::EventStore;
use ports::{ConfigStore, EventLog, Reload};

/// Shortest admin token accepted: a guessable token guards everything.
pub const MIN_TOKEN_LEN: usize = 16;

/// What the admin API works on.
pub struct AdminPorts {
    pub config: Arc<dyn ConfigStore>,
    pub events: Arc<dyn EventLog>,
    /// Keeps secrets created through the API (generated signing secrets,
    /// source secrets given by value).
    pub secret_store: Arc<dyn SecretStore>,
    /// Resolves references, to check them before they are saved.
    pub secrets: Arc<dyn SecretResolver>,
    /// The running registry: replays are checked against it.
    pub registry: Arc<dyn Registry>,
    /// Makes config changes live.
    pub reload: Arc<dyn Reload>,
    /// What the deployment allows (`allow_local`, the body size bound):
    /// entries outside it are refused with 422.
    pub policy: crate::config::Policy,
    /// Pollers' state, and what "poll now" needs.
    pub pollers: PollerPorts,
    /// The subscriptions' delivery controls: circuits shown, a deleted
    /// subscription's state forgotten.
    pub gate: Arc<dyn crate::gate::Gate>,
}

/// The ports of the pollers in the admin API: their state (shown, and
/// claimed by "poll now"), the store "poll now" commits to, and the
/// fetch through the SSRF guard.
#[derive(Clone)]
pub struct PollerPorts {
    pub states: Arc<dyn PollerStates>,
    /// On one machine, one that routes at commit (the gateway's workers
    /// then deliver); on AWS the events table, whose stream routes.
    pub store: Arc<dyn EventStore>,
    pub fetch: Arc<dyn Fetch>,
}

/// The admin API's state.
pub struct Admin {
    ports: AdminPorts,
    /// SHA-256 of the bearer token; None: the API is disabled.
    token: Option<[u8; 32]>,
    /// Config changes one at a time: each validates against the config as
    /// it stands, then writes.
    writes: tokio::sync::Mutex<()>,
}

impl Admin {
    /// `token`: the bearer token, None to disable the API. Errors when the
    /// token is too short to be safe.
    pub fn new(ports: AdminPorts, token: Option<&Secret>) -> Result<Self, String> {
        if let Some(t) = token
            && t.expose().len() < MIN_TOKEN_LEN
        {
            return Err(format!(
                "the admin token must be at least {MIN_TOKEN_LEN} characters"
            ));
        }
        Ok(Self {
            ports,
            token: token.map(|t| Sha256::digest(t.expose().as_bytes()).into()),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Constant time: both sides are hashed first, so neither the length
    /// nor the content of the token leaks through timing.
    fn authorized(&self, presented: &str) -> bool {
        let Some(expected) = &self.token else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(got.ct_eq(expected))
    }
}

/// Every way an admin request can fail, and its one mapping to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("the admin API is disabled: set [admin] token in the config")]
    Disabled,
    #[error("no route {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("{method} is not allowed here (allowed: {allow})")]
    MethodNotAllowed { method: String, allow: String },
    #[error("{0}")]
    NotFound(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("body is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body did not arrive within {} s", .0.as_secs_f64())]
    BodyTimeout(std::time::Duration),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    ReadOnly(String),
    #[error("{0}")]
    Conflict(String),
    #[error("unavailable: {0}")]
    Unavailable(#[from] Unavailable),
}

impl From<ports::WriteError> for AdminError {
    fn from(e: ports::WriteError) -> Self {
        match e {
            ports::WriteError::Conflict(m) => Self::Conflict(m),
            ports::WriteError::Unavailable(u) => Self::Unavailable(u),
        }
    }
}

impl AdminError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status. This is the only place that decides it.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Disabled | Self::NoRoute { .. } | Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::MalformedJson(_) | Self::BadRequest(_) => 400,
            Self::TooLarge { .. } => 413,
            Self::BodyTimeout(_) => 408,
            Self::Invalid { .. } => 422,
            Self::AlreadyExists(_) | Self::ReadOnly(_) | Self::Conflict(_) => 409,
            Self::Unavailable(_) => 503,
        }
    }

    /// Stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Disabled => "admin_disabled",
            Self::NoRoute { .. } | Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::MalformedJson(_) => "malformed_json",
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge { .. } => "body_too_large",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Invalid { .. } => "invalid_field",
            Self::AlreadyExists(_) => "already_exists",
            Self::ReadOnly(_) => "read_only",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// What the caller is told: a failure on our side gets a fixed text,
    /// since its detail (tables, SDK errors, ARNs) is for the log only.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable(_) => "temporarily unavailable; retry later".to_owned(),
            other => other.to_string(),
        }
    }

    /// `{"error", "message"}`, plus `field` for a 422 (no request id: the
    /// CLI shows its own errors this way). Never holds a secret nor an
    /// internal detail: messages name references and fields, not values,
    /// and a 5xx says only [`Self::public_message`].
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self.error_body(None)).unwrap_or_default()
    }

    /// The body of an error answer.
    pub(crate) fn error_body<'a>(&'a self, request_id: Option<&'a str>) -> ErrorBody<'a> {
        ErrorBody {
            error: self.code(),
            message: self.public_message(),
            field: match self {
                Self::Invalid { field, .. } => Some(field),
                _ => None,
            },
            request_id,
        }
    }
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// A stable, machine-readable code.
    #[schema(examples(
        "invalid_field",
        "unauthorized",
        "not_found",
        "read_only",
        "conflict",
        "unavailable"
    ))]
    pub(crate) error: &'static str,
    /// What was wrong with the request; a fixed text for a 5xx, whose
    /// detail is logged under `request_id`.
    pub(crate) message: String,
    /// The field at fault (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) field: Option<&'a str>,
    /// Also in the `x-request-id` header; the log line of a 5xx carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub(crate) request_id: Option<&'a str>,
}
