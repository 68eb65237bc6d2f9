//! The admin API as a Lambda function behind an API Gateway HTTP API
//! (payload format 2.0): `ANY /admin/{proxy+}` routes with the `AWS_IAM`
//! authorizer, so every request is SigV4-signed by a principal that IAM
//! allowed `execute-api:Invoke` on them.
//!
//! **IAM is the gate, and the only one to manage.** There is no bearer
//! token (no secret to store, rotate or hand out): a request reaches the
//! admin API, through its trusted entry, only when its request context
//! carries the IAM identity API Gateway verified. A missing one means the
//! route is not IAM-authorised, a misconfiguration: 401, and nothing runs.
//! The caller's own `Authorization` header (its SigV4 signature) is dropped.
//! Changes are logged with the caller's ARN.
//!
//! The event is taken as raw JSON, as in the receive function: lambda_http's
//! adapter decodes `isBase64Encoded` bodies with a decoder that panics on
//! bad input. Here bad base64 answers 400 and an event that is not an HTTP
//! API request answers 400 too.

use base64::Engine;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Request};
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::encodings::Body;
use sluice::admin::api::error_response;
use sluice::admin::{Admin, AdminError, AdminPorts, MAX_BODY_BYTES, handle_trusted};

/// The `Function` name, as the templates and the parity checks know it.
pub const FUNCTION: &str = "admin";

/// The AWS calls this function's code makes, as IAM actions. The
/// deployment templates grant these and no others (infra/tests checks
/// them); tests/tests/aws_functions.rs records the calls the handler
/// actually makes against moto and checks they are exactly these.
pub const SDK_CALLS: &[&str] = &[
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:ReceiveMessage",
    "ssm:DeleteParameter",
    "ssm:GetParameter",
    "ssm:PutParameter",
];

/// What each call of [`SDK_CALLS`] is made on: the variable naming the
/// table or queue, or `ssm:{prefix}/*` for the parameters below the
/// deployment's SSM prefix.
pub const SDK_RESOURCES: &[(&str, &str)] = &[
    // Config: the config store and the registry.
    ("dynamodb:DeleteItem", "SLUICE_CONFIG_TABLE"),
    ("dynamodb:GetItem", "SLUICE_CONFIG_TABLE"),
    ("dynamodb:PutItem", "SLUICE_CONFIG_TABLE"),
    ("dynamodb:Scan", "SLUICE_CONFIG_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_CONFIG_TABLE"),
    // The event log: listings scan both tables; a replay is one PutItem.
    ("dynamodb:GetItem", "SLUICE_EVENTS_TABLE"),
    ("dynamodb:PutItem", "SLUICE_EVENTS_TABLE"),
    ("dynamodb:Scan", "SLUICE_EVENTS_TABLE"),
    ("dynamodb:Query", "SLUICE_DELIVERIES_TABLE"),
    ("dynamodb:Scan", "SLUICE_DELIVERIES_TABLE"),
    // A replay removes the DLQ messages it settles (the batch calls are
    // authorised as their single-message actions).
    ("sqs:ChangeMessageVisibility", "SLUICE_DLQ_URL"),
    ("sqs:DeleteMessage", "SLUICE_DLQ_URL"),
    ("sqs:ReceiveMessage", "SLUICE_DLQ_URL"),
    // Pollers: their states in the views (a Scan for the list, GetItem for
    // one), "poll now" (the claim and the save; the commit is the events
    // PutItem above) and a deleted poller's state.
    ("dynamodb:DeleteItem", "SLUICE_POLLERS_TABLE"),
    ("dynamodb:GetItem", "SLUICE_POLLERS_TABLE"),
    ("dynamodb:Scan", "SLUICE_POLLERS_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_POLLERS_TABLE"),
    // Delivery controls: a subscription's circuit in its view, and a
    // deleted subscription's state.
    ("dynamodb:DeleteItem", "SLUICE_GATES_TABLE"),
    ("dynamodb:GetItem", "SLUICE_GATES_TABLE"),
    // Secrets: resolved to check them, created and deleted by the API.
    ("ssm:DeleteParameter", "ssm:{prefix}/*"),
    ("ssm:GetParameter", "ssm:{prefix}/*"),
    ("ssm:PutParameter", "ssm:{prefix}/*"),
];

/// The admin API behind IAM: the shared [`Admin`], without a bearer token
/// (IAM authorised the caller before the request got here).
pub struct IamGate {
    admin: Admin,
}

impl IamGate {
    pub fn new(ports: AdminPorts) -> Result<Self, String> {
        Ok(Self {
            admin: Admin::new(ports, None)?,
        })
    }
}

/// Who called, as API Gateway's IAM authorizer verified it; None when the
/// request did not go through it.
pub fn iam_caller(request: &ApiGatewayV2httpRequest) -> Option<String> {
    let iam = request.request_context.authorizer.as_ref()?.iam.as_ref()?;
    let present = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    if !present(&iam.account_id) || !(present(&iam.user_arn) || present(&iam.caller_id)) {
        return None;
    }
    iam.user_arn.clone().or_else(|| iam.caller_id.clone())
}

/// The Lambda handler: any JSON event in, an HTTP API response out.
pub async fn handle_event(gate: &IamGate, event: serde_json::Value) -> ApiGatewayV2httpResponse {
    match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
        Ok(request) => handle_request(gate, request).await,
        Err(e) => {
            tracing::warn!(error = %e, "event is not an API Gateway HTTP API request");
            to_lambda(error_response(&AdminError::BadRequest(format!(
                "not an HTTP API request: {e}"
            ))))
        }
    }
}

/// One request, already parsed.
pub async fn handle_request(
    gate: &IamGate,
    request: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let Some(caller) = iam_caller(&request) else {
        tracing::warn!(
            path = request.raw_path.as_deref().unwrap_or(""),
            "admin request without an IAM identity refused: the route must use the AWS_IAM authorizer"
        );
        return to_lambda(error_response(&AdminError::Unauthorized));
    };
    let req = match to_http(&request) {
        Ok(req) => req,
        Err(e) => return to_lambda(error_response(&e)),
    };
    if req.method() != http::Method::GET {
        tracing::info!(caller = %caller, method = %req.method(), path = req.uri().path(), "admin request by");
    }
    to_lambda(handle_trusted(&gate.admin, req).await)
}

/// The path the admin API routes on: `rawPath`, without the stage prefix
/// of a named stage (`/prod/admin/…`).
fn admin_path(request: &ApiGatewayV2httpRequest) -> String {
    let raw = request
        .raw_path
        .as_deref()
        .or(request.request_context.http.path.as_deref())
        .unwrap_or("/");
    if let Some(stage) = request.request_context.stage.as_deref()
        && stage != "$default"
        && let Some(rest) = raw.strip_prefix(&format!("/{stage}"))
        && rest.starts_with('/')
    {
        return rest.to_owned();
    }
    raw.to_owned()
}

/// The request as the admin API takes it: method, path and query as sent,
/// the headers without the caller's Authorization, the body decoded.
pub fn to_http(request: &ApiGatewayV2httpRequest) -> Result<Request<Bytes>, AdminError> {
    let body = match request.body.as_deref() {
        None => Bytes::new(),
        Some(b) if request.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(Bytes::from)
            .map_err(|e| AdminError::BadRequest(format!("body is not valid base64: {e}")))?,
        Some(b) => Bytes::copy_from_slice(b.as_bytes()),
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(AdminError::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let path = admin_path(request);
    let uri = match request.raw_query_string.as_deref() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    };
    let mut req = Request::builder()
        .method(request.request_context.http.method.clone())
        .uri(&uri)
        .body(body)
        .map_err(|e| AdminError::BadRequest(format!("request line {uri:?}: {e}")))?;
    let mut headers: HeaderMap = request.headers.clone();
    headers.remove(AUTHORIZATION);
    *req.headers_mut() = headers;
    if let Some(id) = &request.request_context.request_id {
        req.extensions_mut()
            .insert(sluice::admin::api::RequestId(id.clone()));
    }
    Ok(req)
}

/// The admin API's response as API Gateway takes it. Its bodies are JSON
/// (UTF-8); anything else would go base64-encoded.
pub fn to_lambda(resp: http::Response<Bytes>) -> ApiGatewayV2httpResponse {
    let (parts, body) = resp.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => out.body = None,
        Ok(text) => out.body = Some(Body::Text(text)),
        Err(e) => {
            out.body = Some(Body::Text(
                base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
            ));
            out.is_base64_encoded = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ApiGatewayV2httpRequest {
        serde_json::from_value(json).unwrap()
    }

    /// An HTTP API (payload 2.0) request through an `AWS_IAM` route.
    fn iam_event(method: &str, path: &str, query: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "2.0",
            "routeKey": "ANY /admin/{proxy+}",
            "rawPath": path,
            "rawQueryString": query,
            "headers": {
                "authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
                "x-amz-date": "20260101T000000Z",
                "content-type": "application/json",
            },
            "pathParameters": {"proxy": path.trim_start_matches("/admin/")},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "authorizer": {"iam": {
                    "accessKey": "AKIA", "accountId": "123456789012", "callerId": "AIDA",
                    "principalOrgId": null, "userArn": "arn:aws:iam::123456789012:user/ops",
                    "userId": "AIDA", "cognitoIdentity": null,
                }},
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "curl"},
                "requestId": "r",
                "routeKey": "ANY /admin/{proxy+}",
                "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000",
                "timeEpoch": 1,
            },
            "isBase64Encoded": false,
        })
    }

    #[test]
    fn the_iam_identity_is_required() {
        let with = request(iam_event("GET", "/admin/events", ""));
        assert_eq!(
            iam_caller(&with).as_deref(),
            Some("arn:aws:iam::123456789012:user/ops")
        );
        let mut none = iam_event("GET", "/admin/events", "");
        none["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("authorizer");
        assert_eq!(iam_caller(&request(none)), None);
        let mut empty = iam_event("GET", "/admin/events", "");
        empty["requestContext"]["authorizer"]["iam"]["accountId"] = "".into();
        assert_eq!(iam_caller(&request(empty)), None);
        // A JWT or Lambda authorizer is not IAM.
        let mut jwt = iam_event("GET", "/admin/events", "");
        jwt["requestContext"]["authorizer"] =
            serde_json::json!({"jwt": {"claims": {"sub": "x"}, "scopes": null}});
        assert_eq!(iam_caller(&request(jwt)), None);
    }

    #[test]
    fn the_request_keeps_method_path_query_and_body_but_not_the_signature() {
        let mut ev = iam_event("POST", "/admin/events/gh%23e1/replay", "a=1&b=two");
        ev["body"] = "{\"subscription\":\"x\"}".into();
        let req = to_http(&request(ev)).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/admin/events/gh%23e1/replay");
        assert_eq!(req.uri().query(), Some("a=1&b=two"));
        assert!(req.headers().get(AUTHORIZATION).is_none());
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(&req.body()[..], b"{\"subscription\":\"x\"}");

        // A named stage prefixes rawPath; the admin API routes without it.
        let mut staged = iam_event("GET", "/prod/admin/sources", "");
        staged["requestContext"]["stage"] = "prod".into();
        let req = to_http(&request(staged)).unwrap();
        assert_eq!(req.uri().path(), "/admin/sources");
        assert_eq!(req.uri().query(), None);
    }

    #[test]
    fn bad_base64_is_a_400_and_a_large_body_a_413() {
        let mut ev = iam_event("POST", "/admin/sources", "");
        ev["body"] = "e30=".into();
        ev["isBase64Encoded"] = true.into();
        assert_eq!(&to_http(&request(ev.clone())).unwrap().body()[..], b"{}");
        ev["body"] = "%%%".into();
        let err = to_http(&request(ev.clone())).unwrap_err();
        assert_eq!(err.status(), 400);
        ev["body"] = "a".repeat(MAX_BODY_BYTES + 1).into();
        ev["isBase64Encoded"] = false.into();
        let err = to_http(&request(ev)).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn responses_go_back_as_api_gateway_reads_them() {
        let r = to_lambda(error_response(&AdminError::NotFound("no event".into())));
        assert_eq!(r.status_code, 404);
        assert_eq!(r.headers["content-type"], "application/json");
        let wire = serde_json::to_value(&r).unwrap();
        assert_eq!(wire["statusCode"], 404);
        assert_eq!(wire["isBase64Encoded"], false);
        let body: serde_json::Value = serde_json::from_str(wire["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "not_found");
        let empty = to_lambda(http::Response::new(Bytes::new()));
        assert_eq!(empty.body, None);
    }
}
