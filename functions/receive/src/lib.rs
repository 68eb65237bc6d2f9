//! RECEIVE as a Lambda function behind an API Gateway HTTP API (payload
//! format 2.0) or a function URL: the request event in, the pipeline's
//! reply out.
//!
//! The event is taken as raw JSON and turned into lambda_http's
//! [`ApiGatewayV2httpRequest`] here, not by `lambda_http::run`: its adapter
//! base64-decodes `isBase64Encoded` bodies with a decoder that panics on
//! bad input, before any handler code runs. Here the body is decoded with a
//! checked decoder and bad base64 answers 400, and an event that is not an
//! HTTP API request answers 400 too. Bad input never panics and never gets
//! a 500.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
};
use sluice::config::Registry;
use sluice::error::ReceiveError;
use sluice::pipeline::receive::Target;
use sluice::store::EventStore;
// The handler: the metrics and the AWS backend's types.
#[cfg(feature = "aws")]
use {
    http::header::{ALLOW, CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS},
    lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse,
    lambda_http::aws_lambda_events::encodings::Body,
    sluice::aws::Metrics,
    sluice::error::{REQUEST_ID_HEADER, new_request_id},
    sluice::pipeline::challenge::challenge,
    sluice::pipeline::receive::{Receipt, Reply, receive, refusal_outcome},
    std::time::SystemTime,
};

/// The `Function` dimension of this function's metrics.
pub const FUNCTION: &str = "receive";

/// The AWS calls this function's code makes, as IAM actions. The
/// deployment templates grant these and no others (infra/tests checks
/// them); tests/tests/aws_functions.rs records the calls the handler
/// actually makes against moto and checks they are exactly these.
pub const SDK_CALLS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:Scan",
    "ssm:GetParameter",
    "ssm:PutParameter",
];

/// What each call of [`SDK_CALLS`] is made on: the variable naming the
/// table or queue, or `ssm:{prefix}/*` for the parameters below the
/// deployment's SSM prefix (the `ssm:` secrets of the config), and
/// `ssm:{prefix}/handshake/*` for the ones it writes (the secrets Asana's
/// handshakes send, each written once).
pub const SDK_RESOURCES: &[(&str, &str)] = &[
    ("dynamodb:PutItem", "SLUICE_EVENTS_TABLE"),
    ("dynamodb:Scan", "SLUICE_CONFIG_TABLE"),
    ("ssm:GetParameter", "ssm:{prefix}/*"),
    ("ssm:PutParameter", "ssm:{prefix}/handshake/*"),
];

/// The ports receive needs.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub registry: &'a dyn Registry,
    pub store: &'a dyn EventStore,
}

#[cfg(feature = "aws")]
/// What one invocation produced: the response and its metrics.
#[derive(Debug)]
pub struct Outcome {
    pub response: ApiGatewayV2httpResponse,
    pub metrics: Metrics,
}

#[cfg(feature = "aws")]
/// The Lambda handler: any JSON event in, an HTTP API response out; the
/// metrics are printed as one EMF line. The request id is API Gateway's,
/// else a new one.
pub async fn handle_event(
    ports: Ports<'_>,
    event: serde_json::Value,
    now: SystemTime,
) -> ApiGatewayV2httpResponse {
    handle_invocation(ports, event, &new_request_id(), now).await
}

#[cfg(feature = "aws")]
/// [`handle_event`], with the Lambda invocation's request id for events
/// that carry no API Gateway one.
pub async fn handle_invocation(
    ports: Ports<'_>,
    event: serde_json::Value,
    lambda_request_id: &str,
    now: SystemTime,
) -> ApiGatewayV2httpResponse {
    let outcome = match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
        Ok(mut request) => {
            if request.request_context.request_id.is_none() {
                request.request_context.request_id = Some(lambda_request_id.to_owned());
            }
            process(ports, request, now).await
        }
        Err(e) => {
            tracing::warn!(error = %e, request_id = lambda_request_id, "event is not an API Gateway HTTP API request");
            let mut metrics = Metrics::new(FUNCTION);
            let err = ReceiveError::BadRequest(format!("not an HTTP API request: {e}"));
            count(&mut metrics, None, &Err(err.status()), err.code());
            Outcome {
                response: error_response(&err, lambda_request_id),
                metrics,
            }
        }
    };
    outcome.metrics.emit();
    outcome.response
}

#[cfg(feature = "aws")]
/// One request, already parsed; metrics are printed.
pub async fn handle(
    ports: Ports<'_>,
    request: ApiGatewayV2httpRequest,
    now: SystemTime,
) -> ApiGatewayV2httpResponse {
    let outcome = process(ports, request, now).await;
    outcome.metrics.emit();
    outcome.response
}

#[cfg(feature = "aws")]
/// One request: route, decode, run the pipeline, build the response and
/// count what happened. Prints nothing but the log of an internal error.
pub async fn process(
    ports: Ports<'_>,
    mut request: ApiGatewayV2httpRequest,
    now: SystemTime,
) -> Outcome {
    let request_id = request
        .request_context
        .request_id
        .clone()
        .unwrap_or_else(new_request_id);
    let mut outcome = process_request(ports, &mut request, &request_id, now).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        outcome.response.headers.insert(REQUEST_ID_HEADER, v);
    }
    outcome
}

/// The URL API Gateway (or the function URL) was called at, in pieces:
/// HTTPS, its domain and the raw path. What URL-signing providers signed,
/// unless the source's `public_url` says otherwise (a custom domain's base
/// path). Joined only for such sources.
fn seen_url<'a>(
    context: &'a ApiGatewayV2httpRequestContext,
    raw_path: Option<&'a str>,
) -> Option<[&'a str; 3]> {
    let domain = context.domain_name.as_deref()?;
    Some(["https://", domain, raw_path.unwrap_or("/")])
}

#[cfg(feature = "aws")]
async fn process_request(
    ports: Ports<'_>,
    request: &mut ApiGatewayV2httpRequest,
    request_id: &str,
    now: SystemTime,
) -> Outcome {
    let mut metrics = Metrics::new(FUNCTION);
    let (source, result) = match map_request(request) {
        Ok(Mapped::Delivery(Input {
            source,
            headers,
            body,
            sent_to,
        })) => {
            let result = receive(
                ports.registry,
                ports.store,
                &source,
                headers,
                body,
                sent_to.target(),
                now,
            )
            .await;
            (source, result)
        }
        // A provider's GET or HEAD check of the endpoint, or a 405.
        Ok(Mapped::Check(check)) => {
            let result = challenge(
                ports.registry,
                &check.source,
                check.method,
                check.headers,
                check.query,
                now,
            )
            .await;
            (check.source, result)
        }
        Err(err) => {
            count(&mut metrics, None, &Err(err.status()), err.code());
            return Outcome {
                response: error_response(&err, request_id),
                metrics,
            };
        }
    };
    // Only a configured source becomes a dimension value.
    let known = !matches!(result, Err(ReceiveError::UnknownSource));
    let code = match &result {
        Ok(_) => "",
        Err(e) => e.code(),
    };
    let summary = result.as_ref().map(|r| r.clone()).map_err(|e| e.status());
    count(
        &mut metrics,
        known.then_some(source.as_str()),
        &summary,
        code,
    );
    let reply = Reply::from_result(&result, &source, request_id);
    Outcome {
        response: reply_response(reply),
        metrics,
    }
}

/// One request as the pipeline takes it: the source named by the path,
/// the headers and body moved out of the event, and where it was sent.
#[derive(Debug)]
pub struct Input<'a> {
    pub source: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub sent_to: SentTo<'a>,
}

/// Where the request was sent, borrowed from the event.
#[derive(Debug)]
pub struct SentTo<'a> {
    query: Option<&'a str>,
    seen_url: Option<[&'a str; 3]>,
}

impl SentTo<'_> {
    /// What the schemes that sign the URL check.
    pub fn target(&self) -> Target<'_> {
        Target {
            query: self.query,
            seen_url: self.seen_url.as_ref().map_or(&[], |parts| parts.as_slice()),
        }
    }
}

/// A provider's GET or HEAD check of its endpoint, borrowed from the
/// event: answered by the pipeline's challenge step (or with 405).
#[derive(Debug)]
pub struct Check<'a> {
    pub source: String,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
}

/// What a request asks of the pipeline.
#[derive(Debug)]
pub enum Mapped<'a> {
    /// A POST: verify, dedup, commit.
    Delivery(Input<'a>),
    /// Any other method.
    Check(Check<'a>),
}

/// The request mapping: the Lambda event into the pipeline's input, with
/// no I/O (the fuzz target `lambda_request` drives it). A POST's headers
/// and body are taken out of `request`. Errs with 404 when the path names
/// no source and 400 when the body is not base64.
pub fn map_request(request: &mut ApiGatewayV2httpRequest) -> Result<Mapped<'_>, ReceiveError> {
    let source = source_of(request).ok_or(ReceiveError::UnknownSource)?;
    if request.request_context.http.method != Method::POST {
        let request: &ApiGatewayV2httpRequest = request;
        return Ok(Mapped::Check(Check {
            source,
            method: &request.request_context.http.method,
            headers: &request.headers,
            query: request.raw_query_string.as_deref(),
        }));
    }
    let body = raw_body(request).inspect_err(|err| {
        tracing::info!(source = %source, outcome = "rejected", reason = err.code(), error = %err, "request body rejected");
    })?;
    let headers = std::mem::take(&mut request.headers);
    // Only read from here on: the input borrows the query and the URL.
    let request: &ApiGatewayV2httpRequest = request;
    Ok(Mapped::Delivery(Input {
        source,
        headers,
        body,
        sent_to: SentTo {
            query: request.raw_query_string.as_deref(),
            seen_url: seen_url(&request.request_context, request.raw_path.as_deref()),
        },
    }))
}

/// The source id: the `{source}` path parameter of the `/hooks/{source}`
/// route, else the path segment after `/hooks/` (function URLs and
/// `cargo lambda watch` have no route parameters). `None` when the path
/// names none, or names more than one segment.
pub fn source_of(request: &ApiGatewayV2httpRequest) -> Option<String> {
    if let Some(s) = request.path_parameters.get("source") {
        return (!s.is_empty()).then(|| s.clone());
    }
    let path = request
        .raw_path
        .as_deref()
        .or(request.request_context.http.path.as_deref())?;
    let (_, rest) = path.split_once("/hooks/")?;
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
}

/// The body bytes exactly as the provider sent them, taken out of the
/// request (a text body moves, it is not copied).
pub fn raw_body(request: &mut ApiGatewayV2httpRequest) -> Result<Bytes, ReceiveError> {
    let Some(body) = request.body.take() else {
        return Ok(Bytes::new());
    };
    if !request.is_base64_encoded {
        return Ok(Bytes::from(body));
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map(Bytes::from)
        .map_err(|e| ReceiveError::BadRequest(format!("body is not valid base64: {e}")))
}

#[cfg(feature = "aws")]
fn error_response(err: &ReceiveError, request_id: &str) -> ApiGatewayV2httpResponse {
    json_response(err.status(), err.body(request_id))
}

#[cfg(feature = "aws")]
fn json_response(status: u16, body: String) -> ApiGatewayV2httpResponse {
    reply_response(Reply {
        status,
        body,
        content_type: "application/json",
        allow: None,
        echo: None,
    })
}

#[cfg(feature = "aws")]
fn reply_response(reply: Reply) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::with_capacity(3);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    // A handshake echoes the provider's text: never sniffed as HTML.
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(allow) = reply.allow {
        headers.insert(ALLOW, HeaderValue::from_static(allow));
    }
    if let Some((name, value)) = reply.echo {
        headers.insert(name, value);
    }
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(reply.status);
    response.headers = headers;
    response.body = Some(Body::Text(reply.body));
    response.is_base64_encoded = false;
    response
}

#[cfg(feature = "aws")]
/// Count one request: `received`, then what became of it.
fn count(metrics: &mut Metrics, source: Option<&str>, result: &Result<Receipt, u16>, code: &str) {
    metrics.incr(source, "received");
    match result {
        Ok(receipt) => metrics.incr(source, receipt.outcome()),
        Err(status) => match refusal_outcome(*status) {
            "rejected" => metrics.rejected(source, code),
            other => metrics.incr(source, other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ApiGatewayV2httpRequest {
        serde_json::from_value(json).unwrap()
    }

    fn base(path: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {},
            "requestContext": {"http": {"method": "POST", "path": path}},
            "isBase64Encoded": false,
        })
    }

    /// URL-signing providers are checked against https + API Gateway's
    /// domain + the raw path; without a domain nothing is assumed.
    #[test]
    fn the_url_seen_is_api_gateways_domain_and_raw_path() {
        let mut event = base("/hooks/square");
        event["requestContext"]["domainName"] = "abc.execute-api.example.com".into();
        let r = request(event);
        assert_eq!(
            seen_url(&r.request_context, r.raw_path.as_deref()).map(|p| p.concat()),
            Some("https://abc.execute-api.example.com/hooks/square".to_owned())
        );
        let r = request(base("/hooks/square"));
        assert_eq!(seen_url(&r.request_context, r.raw_path.as_deref()), None);
    }

    /// The mapping refuses what never reaches the pipeline, and hands
    /// over the rest: headers and body moved, the URL for URL signing.
    #[test]
    fn requests_map_to_the_pipelines_input() {
        let mut get = base("/hooks/square");
        get["requestContext"]["http"]["method"] = "GET".into();
        get["rawQueryString"] = "challenge=abc".into();
        let mut get = request(get);
        let Ok(Mapped::Check(check)) = map_request(&mut get) else {
            panic!("a GET is not a check")
        };
        assert_eq!(
            (check.source.as_str(), check.method),
            ("square", &Method::GET)
        );
        assert_eq!(check.query, Some("challenge=abc"));
        let Err(err) = map_request(&mut request(base("/other"))) else {
            panic!("a path without a source maps")
        };
        assert_eq!(err.status(), 404);
        let mut post = base("/hooks/square");
        post["requestContext"]["domainName"] = "abc.example.com".into();
        post["rawQueryString"] = "a=1".into();
        post["headers"] = serde_json::json!({"x-square-hmacsha256-signature": "c2ln"});
        post["body"] = "{}".into();
        let mut r = request(post);
        let Ok(Mapped::Delivery(input)) = map_request(&mut r) else {
            panic!("a POST is not a delivery")
        };
        assert_eq!(input.source, "square");
        assert_eq!(&input.body[..], b"{}");
        assert_eq!(input.headers["x-square-hmacsha256-signature"], "c2ln");
        let target = input.sent_to.target();
        assert_eq!(target.query, Some("a=1"));
        assert_eq!(
            target.seen_url.concat(),
            "https://abc.example.com/hooks/square"
        );
    }

    /// The sample events of `tests/events/` (for `cargo lambda invoke`)
    /// are API Gateway requests this function reads, with their source.
    #[test]
    fn the_sample_events_are_http_api_requests() {
        for (file, source, method) in [
            ("apigw-v2-github-push.json", "github", Method::POST),
            ("apigw-v2-dropbox-challenge.json", "dropbox", Method::GET),
        ] {
            let path = format!("{}/../../tests/events/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let r: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
            assert_eq!(source_of(&r).as_deref(), Some(source), "{file}");
            assert_eq!(r.request_context.http.method, method, "{file}");
        }
    }

    #[test]
    fn the_source_comes_from_the_route_or_the_path() {
        let mut with_param = base("/hooks/ignored");
        with_param["pathParameters"] = serde_json::json!({"source": "github"});
        assert_eq!(source_of(&request(with_param)).as_deref(), Some("github"));
        for (path, want) in [
            ("/hooks/stripe", Some("stripe")),
            ("/lambda-url/receive/hooks/github", Some("github")),
            ("/prod/hooks/a.b-c_d", Some("a.b-c_d")),
            ("/hooks/", None),
            ("/hooks/a/b", None),
            ("/other/github", None),
            ("/", None),
        ] {
            assert_eq!(source_of(&request(base(path))).as_deref(), want, "{path}");
        }
    }

    /// The event `cargo lambda watch` (1.9) sends for
    /// `POST /lambda-url/receive/hooks/github`: the `/lambda-url/receive`
    /// prefix is stripped from `rawPath` and `requestContext.http.path`,
    /// there are no path parameters, the route is `$default`, and a body
    /// whose content type is not text or JSON arrives base64-encoded.
    #[test]
    fn cargo_lambda_watch_requests_are_routed_by_their_path() {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/hooks/github",
            "rawQueryString": null,
            "headers": {
                "content-type": "application/x-www-form-urlencoded",
                "x-github-event": "push",
                "lambda-runtime-aws-request-id": "15f20586-9944-4928-bb2f-bcd6fb266b59",
            },
            "queryStringParameters": {},
            "pathParameters": {},
            "stageVariables": {},
            "requestContext": {
                "routeKey": "$default",
                "stage": "$default",
                "requestId": "15f20586-9944-4928-bb2f-bcd6fb266b59",
                "domainName": "localhost",
                "domainPrefix": "receive",
                "http": {
                    "method": "POST",
                    "path": "/hooks/github",
                    "protocol": "http",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "cargo-lambda",
                },
                "time": "02/Dec/2026:07:21:06 +0000",
                "timeEpoch": 1796196066,
            },
            "body": "cGF5bG9hZD0lN0IlN0Q=",
            "isBase64Encoded": true,
        });
        let mut request = request(event);
        assert_eq!(source_of(&request).as_deref(), Some("github"));
        assert_eq!(request.request_context.http.method, Method::POST);
        assert_eq!(&raw_body(&mut request).unwrap()[..], b"payload=%7B%7D");
    }

    #[test]
    fn bodies_are_passed_as_bytes_and_bad_base64_is_a_400() {
        let mut plain = base("/hooks/x");
        plain["body"] = "{ \"a\" : 1 }".into();
        assert_eq!(
            &raw_body(&mut request(plain)).unwrap()[..],
            b"{ \"a\" : 1 }"
        );

        let mut encoded = base("/hooks/x");
        encoded["body"] = "AP/+e30=".into();
        encoded["isBase64Encoded"] = true.into();
        assert_eq!(
            &raw_body(&mut request(encoded)).unwrap()[..],
            b"\x00\xff\xfe{}"
        );

        for bad in ["%%%", "AAA", "A===", "Zm9v\n!"] {
            let mut ev = base("/hooks/x");
            ev["body"] = bad.into();
            ev["isBase64Encoded"] = true.into();
            let err = raw_body(&mut request(ev)).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert_eq!(err.code(), "bad_request");
        }
        assert!(raw_body(&mut request(base("/hooks/x"))).unwrap().is_empty());
    }

    #[cfg(feature = "aws")]
    #[test]
    fn responses_are_json_with_the_status() {
        let r = error_response(&ReceiveError::UnknownSource, "req-1");
        assert_eq!(r.status_code, 404);
        assert_eq!(r.headers[CONTENT_TYPE], "application/json");
        let Some(Body::Text(body)) = &r.body else {
            panic!("{:?}", r.body)
        };
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "unknown_source");
        assert_eq!(json["request_id"], "req-1");
        // What API Gateway reads.
        let wire = serde_json::to_value(&r).unwrap();
        assert_eq!(wire["statusCode"], 404);
        assert_eq!(wire["headers"]["content-type"], "application/json");
        assert_eq!(wire["isBase64Encoded"], false);
    }
}
