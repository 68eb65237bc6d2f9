//! The admin API's one HTTP entry point and its route table. Adapters
//! (axum in `sluice serve`, a Lambda on AWS) only move bytes in and out.

use bytes::Bytes;
use http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};

use super::config_ops::Reply;
use super::input::Query;
use super::ports::Kind;
use super::{Admin, AdminError, openapi};

/// Largest request body the admin API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The id of a request, as its adapter knows it (API Gateway's on
/// Lambda), carried in the request's extensions. Without one, an id is
/// made up. Error bodies and the `x-request-id` header carry it, and so
/// does the log line of a 5xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// In the request's extensions: the caller is the operator in this very
/// process (the CLI), who sees the log anyway, so a 5xx body carries the
/// failure's detail too. No network adapter sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowDetail;

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    OpenApi,
    ListSources,
    CreateSource,
    GetSource,
    UpdateSource,
    DeleteSource,
    EnableSource,
    DisableSource,
    AddSourceSecret,
    RemoveSourceSecret,
    VerifySource,
    ListSubscriptions,
    CreateSubscription,
    GetSubscription,
    UpdateSubscription,
    DeleteSubscription,
    EnableSubscription,
    DisableSubscription,
    RotateSubscriptionSecret,
    ListPollers,
    CreatePoller,
    GetPoller,
    UpdatePoller,
    DeletePoller,
    EnablePoller,
    DisablePoller,
    RunPoller,
    ListEvents,
    GetEvent,
    ReplayEvent,
    BulkReplay,
    ListDeadLetters,
    RedriveDeadLetters,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// With `{name}` segments, as in the OpenAPI document.
    pub path: &'static str,
    pub op: Op,
}

const fn route(method: Method, path: &'static str, op: Op) -> Route {
    Route { method, path, op }
}

/// Every route. The OpenAPI document lists exactly these (a test checks).
pub const ROUTES: &[Route] = &[
    route(Method::GET, "/admin/openapi.json", Op::OpenApi),
    route(Method::GET, "/admin/sources", Op::ListSources),
    route(Method::POST, "/admin/sources", Op::CreateSource),
    route(Method::GET, "/admin/sources/{id}", Op::GetSource),
    route(Method::PATCH, "/admin/sources/{id}", Op::UpdateSource),
    route(Method::DELETE, "/admin/sources/{id}", Op::DeleteSource),
    route(Method::POST, "/admin/sources/{id}/enable", Op::EnableSource),
    route(
        Method::POST,
        "/admin/sources/{id}/disable",
        Op::DisableSource,
    ),
    route(
        Method::POST,
        "/admin/sources/{id}/secrets",
        Op::AddSourceSecret,
    ),
    route(
        Method::DELETE,
        "/admin/sources/{id}/secrets/{ref}",
        Op::RemoveSourceSecret,
    ),
    route(Method::POST, "/admin/sources/{id}/verify", Op::VerifySource),
    route(Method::GET, "/admin/subscriptions", Op::ListSubscriptions),
    route(Method::POST, "/admin/subscriptions", Op::CreateSubscription),
    route(
        Method::GET,
        "/admin/subscriptions/{id}",
        Op::GetSubscription,
    ),
    route(
        Method::PATCH,
        "/admin/subscriptions/{id}",
        Op::UpdateSubscription,
    ),
    route(
        Method::DELETE,
        "/admin/subscriptions/{id}",
        Op::DeleteSubscription,
    ),
    route(
        Method::POST,
        "/admin/subscriptions/{id}/enable",
        Op::EnableSubscription,
    ),
    route(
        Method::POST,
        "/admin/subscriptions/{id}/disable",
        Op::DisableSubscription,
    ),
    route(
        Method::POST,
        "/admin/subscriptions/{id}/rotate-secret",
        Op::RotateSubscriptionSecret,
    ),
    route(Method::GET, "/admin/pollers", Op::ListPollers),
    route(Method::POST, "/admin/pollers", Op::CreatePoller),
    route(Method::GET, "/admin/pollers/{id}", Op::GetPoller),
    route(Method::PATCH, "/admin/pollers/{id}", Op::UpdatePoller),
    route(Method::DELETE, "/admin/pollers/{id}", Op::DeletePoller),
    route(Method::POST, "/admin/pollers/{id}/enable", Op::EnablePoller),
    route(
        Method::POST,
        "/admin/pollers/{id}/disable",
        Op::DisablePoller,
    ),
    route(Method::POST, "/admin/pollers/{id}/run", Op::RunPoller),
    route(Method::GET, "/admin/events", Op::ListEvents),
    route(Method::GET, "/admin/events/{id}", Op::GetEvent),
    route(Method::POST, "/admin/events/{id}/replay", Op::ReplayEvent),
    route(Method::POST, "/admin/replay", Op::BulkReplay),
    route(Method::GET, "/admin/dlq", Op::ListDeadLetters),
    route(Method::POST, "/admin/dlq/redrive", Op::RedriveDeadLetters),
];

/// Serve one admin request. Never panics and never answers 500 for bad
/// input: every failure is an [`AdminError`] with its own status.
pub async fn handle(admin: &Admin, req: Request<Bytes>) -> Response<Bytes> {
    serve(admin, req, Caller::Http).await
}

/// Serve one request from a trusted caller in the same process: the
/// `sluice` CLI, which opened the database itself and so holds every
/// right the token would grant. Only the bearer check is skipped; routing,
/// validation, errors and the audit line are those of [`handle`].
pub async fn handle_trusted(admin: &Admin, req: Request<Bytes>) -> Response<Bytes> {
    serve(admin, req, Caller::InProcess).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Http,
    InProcess,
}

async fn serve(admin: &Admin, req: Request<Bytes>, caller: Caller) -> Response<Bytes> {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(crate::error::new_request_id, |r| r.0.clone());
    let mut resp = match dispatch(admin, &req, caller).await {
        Ok(reply) => respond(reply),
        Err(e) if req.extensions().get::<ShowDetail>().is_some() => {
            detailed_error_response(&e, &request_id)
        }
        Err(e) => error_response_with_id(&e, &request_id),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut()
            .insert(crate::error::REQUEST_ID_HEADER, v);
    }
    // An audit line for every change (paths hold ids and references only).
    if req.method() != Method::GET {
        tracing::info!(method = %req.method(), path = req.uri().path(), status = resp.status().as_u16(), "admin request");
    }
    resp
}

/// The error response for `e` (adapters use it for what they catch
/// themselves, such as a body over the limit), under a new request id.
pub fn error_response(e: &AdminError) -> Response<Bytes> {
    error_response_with_id(e, &crate::error::new_request_id())
}

/// [`error_response_with_id`] whose message is the whole error, for a
/// caller in this process ([`ShowDetail`]).
pub(crate) fn detailed_error_response(e: &AdminError, request_id: &str) -> Response<Bytes> {
    let resp = error_response_with_id(e, request_id);
    let mut body = e.error_body(Some(request_id));
    body.message = e.to_string();
    let (parts, _) = resp.into_parts();
    Response::from_parts(parts, json_bytes(&body))
}

/// The error response for `e`; its body and header carry `request_id`,
/// and a 5xx's detail is logged under it.
pub fn error_response_with_id(e: &AdminError, request_id: &str) -> Response<Bytes> {
    if let AdminError::Unavailable(u) = e {
        tracing::warn!(request_id, error = %u, "admin request failed: store unavailable");
    }
    let mut resp = json_response(e.status(), json_bytes(&e.error_body(Some(request_id))));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut()
            .insert(crate::error::REQUEST_ID_HEADER, v);
    }
    match e {
        AdminError::Unauthorized => {
            resp.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sluice-admin\""),
            );
        }
        AdminError::MethodNotAllowed { allow, .. } => {
            if let Ok(v) = HeaderValue::from_str(allow) {
                resp.headers_mut().insert(ALLOW, v);
            }
        }
        _ => {}
    }
    resp
}

fn respond(reply: Reply) -> Response<Bytes> {
    match reply.body {
        Some(body) => json_response(reply.status, Bytes::from(body.to_string())),
        None => {
            let mut resp = Response::new(Bytes::new());
            *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            resp
        }
    }
}

/// `body` as JSON, its keys sorted (through a `Value`) as every answer's are.
fn json_bytes<T: serde::Serialize>(body: &T) -> Bytes {
    // Cannot fail: the error body's map keys are all strings.
    let value = serde_json::to_value(body).unwrap_or_default();
    Bytes::from(value.to_string())
}

fn json_response(status: u16, body: Bytes) -> Response<Bytes> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The bearer check of the admin API, also guarding `sluice serve`'s
/// `/metrics`: disabled (404) without a token, else 401 unless the
/// `Authorization` header carries it.
pub fn authorize(admin: &Admin, headers: &http::HeaderMap) -> Result<(), AdminError> {
    if !admin.enabled() {
        return Err(AdminError::Disabled);
    }
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match token {
        Some(t) if admin.authorized(t) => Ok(()),
        _ => Err(AdminError::Unauthorized),
    }
}

/// Find the route for `method` and `path`; path parameters come back
/// percent-decoded.
pub fn match_route(
    method: &Method,
    path: &str,
) -> Result<(&'static Route, Vec<String>), AdminError> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut allowed: Vec<&str> = Vec::new();
    for r in ROUTES {
        let pattern: Vec<&str> = r.path.split('/').collect();
        if pattern.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        let mut matched = true;
        for (p, s) in pattern.iter().zip(&segments) {
            if p.starts_with('{') {
                let decoded = percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map_err(|_| AdminError::BadRequest("path is not UTF-8".into()))?;
                if decoded.is_empty() {
                    matched = false;
                    break;
                }
                params.push(decoded.into_owned());
            } else if p != s {
                matched = false;
                break;
            }
        }
        if !matched {
            continue;
        }
        if r.method == *method {
            return Ok((r, params));
        }
        allowed.push(r.method.as_str());
    }
    if allowed.is_empty() {
        Err(AdminError::NoRoute {
            method: method.to_string(),
            path: path.to_owned(),
        })
    } else {
        Err(AdminError::MethodNotAllowed {
            method: method.to_string(),
            allow: allowed.join(", "),
        })
    }
}

/// The query parameters a route takes (any other is refused); the OpenAPI
/// document lists these.
pub(super) fn query_names(op: Op) -> &'static [&'static str] {
    match op {
        Op::ListSubscriptions => &["source"],
        Op::ListEvents => &[
            "source", "type", "status", "since", "until", "limit", "cursor",
        ],
        Op::ListDeadLetters => &["source", "subscription", "limit", "cursor"],
        _ => &[],
    }
}

async fn dispatch(
    admin: &Admin,
    req: &Request<Bytes>,
    caller: Caller,
) -> Result<Reply, AdminError> {
    // Before routing, so an unauthenticated caller learns nothing of it.
    if caller == Caller::Http {
        authorize(admin, req.headers())?;
    }
    let (route, params) = match_route(req.method(), req.uri().path())?;
    let id = params.first().cloned().unwrap_or_default();
    let second = params.get(1).cloned().unwrap_or_default();
    let q = Query::parse(req.uri().query(), query_names(route.op))?;
    let body = req.body().as_ref();
    match route.op {
        Op::OpenApi => Ok(Reply::ok(served_openapi().clone())),
        Op::ListSources => admin.list_sources().await,
        Op::CreateSource => admin.create_source(body).await,
        Op::GetSource => admin.get_source(&id).await,
        Op::UpdateSource => admin.update_source(&id, body).await,
        Op::DeleteSource => admin.delete_event_source(Kind::Source, &id).await,
        Op::EnableSource => admin.set_enabled(Kind::Source, &id, true).await,
        Op::DisableSource => admin.set_enabled(Kind::Source, &id, false).await,
        Op::AddSourceSecret => admin.add_source_secret(&id, body).await,
        Op::RemoveSourceSecret => admin.remove_source_secret(&id, &second).await,
        Op::VerifySource => admin.verify_request(&id, body).await,
        Op::ListSubscriptions => admin.list_subscriptions(&q).await,
        Op::CreateSubscription => admin.create_subscription(body).await,
        Op::GetSubscription => admin.get_subscription(&id).await,
        Op::UpdateSubscription => admin.update_subscription(&id, body).await,
        Op::DeleteSubscription => admin.delete_subscription(&id).await,
        Op::EnableSubscription => admin.set_enabled(Kind::Subscription, &id, true).await,
        Op::DisableSubscription => admin.set_enabled(Kind::Subscription, &id, false).await,
        Op::RotateSubscriptionSecret => admin.rotate_subscription_secret(&id, body).await,
        Op::ListPollers => admin.list_pollers().await,
        Op::CreatePoller => admin.create_poller(body).await,
        Op::GetPoller => admin.get_poller(&id).await,
        Op::UpdatePoller => admin.update_poller(&id, body).await,
        Op::DeletePoller => admin.delete_event_source(Kind::Poller, &id).await,
        Op::EnablePoller => admin.set_enabled(Kind::Poller, &id, true).await,
        Op::DisablePoller => admin.set_enabled(Kind::Poller, &id, false).await,
        Op::RunPoller => admin.run_poller(&id, body).await,
        Op::ListEvents => admin.list_events(&q).await,
        Op::GetEvent => admin.get_event(&id).await,
        Op::ReplayEvent => admin.replay_event(&id, body).await,
        Op::BulkReplay => admin.bulk_replay(body).await,
        Op::ListDeadLetters => admin.list_dead_letters(&q).await,
        Op::RedriveDeadLetters => admin.redrive(body).await,
    }
}

/// The committed OpenAPI document, parsed once.
fn served_openapi() -> &'static serde_json::Value {
    static DOC: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
        // A test parses the same text and compares it with the generated
        // document, so this cannot fail in a build that passed its tests.
        serde_json::from_str(openapi::SERVED).unwrap_or_default()
    });
    &DOC
}
