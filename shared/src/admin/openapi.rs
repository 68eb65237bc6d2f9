//! The OpenAPI 3.1 document of the admin API, served at
//! `/admin/openapi.json`. Nothing in it is written twice: its schemas are
//! derived (utoipa's `ToSchema`) from the very types that parse the
//! requests and serialise the answers, its paths and parameters from
//! [`ROUTES`] and the router's query parameters, and each operation's
//! text, body and answers from one exhaustive `match` on [`Op`], so that a
//! new route does not compile until it is documented. Tests (in
//! `tests.rs`) check that it lists exactly the routes, that each request
//! schema names exactly the fields its type takes, and that real answers
//! fit their schemas; `shared/tests/openapi_valid.rs` runs an OpenAPI
//! validator over it.
//!
//! What is served is that document as generated and committed
//! (`openapi.json` beside this file, [`SERVED`]); a test fails when the
//! two differ (`SLUICE_UPDATE_OPENAPI=1` rewrites the file). Building it
//! at run time linked utoipa's builders into the admin function (about
//! 120 KB of its zip).

use std::borrow::Cow;
use std::collections::BTreeMap;

use http::Method;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{
    Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, ObjectBuilder, OpenApi,
    OpenApiBuilder, Paths, Ref, RefOr, Required, ResponseBuilder, ResponsesBuilder, Schema,
    SecurityRequirement, Type,
};

use super::ErrorBody;
use super::api::{Op, ROUTES, Route, query_names};
use super::config_ops::{
    PollerPatch, Rotate, SecretAdd, SourceCreate, SourcePatch, SubscriptionCreate,
    SubscriptionPatch,
};
use super::event_ops::{BulkReplay, LIST_DEFAULT, LIST_MAX, Redrive, ReplayOne};
use super::poller_ops::RunInput;
use super::ports::EventStatus;
use super::verify_ops::VerifyRequest;
use super::views::{
    BulkResult, DeadLetterPage, EventDetail, EventPage, Poller, PollerList, Replay, Source,
    SourceList, Subscription, SubscriptionList, SubscriptionWithSecret, VerifyResult,
};
use crate::poll::PollReport;
use crate::poll::PollerConfig;

const DESCRIPTION: &str = "Sources, pollers and subscriptions, the event log with its delivery attempts, replays and the dead-letter queue. Authentication depends on where it runs. `sluice serve`: every route needs `Authorization: Bearer <token>` (the `[admin] token` of the config). AWS: the admin routes sit behind API Gateway's IAM authorizer; sign each request with SigV4 (service `execute-api`) as a principal allowed `execute-api:Invoke` on them, and API Gateway refuses unsigned or badly signed requests (403) before they reach the function. Errors are `{\"error\", \"message\"}`, plus `field` for a 422. Entries defined in the config file are read-only here (409 `read_only`), except enable/disable.";

type Collected = Vec<(String, RefOr<Schema>)>;

/// A schema the document refers to by name: a Rust type's.
#[derive(Clone, Copy)]
struct Shape {
    name: fn() -> Cow<'static, str>,
    /// Adds the schema and every schema it refers to.
    collect: fn(&mut Collected),
}

fn shape<T: ToSchema>() -> Shape {
    Shape {
        name: T::name,
        collect: collect::<T>,
    }
}

fn collect<T: ToSchema>(out: &mut Collected) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

impl Shape {
    fn reference(self) -> RefOr<Schema> {
        RefOr::Ref(Ref::from_schema_name((self.name)()))
    }
}

/// What an answer carries.
enum Content {
    /// Nothing (204).
    Empty,
    /// Some JSON this document does not describe (the document itself).
    Json,
    Of(Shape),
}

struct Answer {
    status: u16,
    description: &'static str,
    content: Content,
}

/// One operation, as the document describes it.
struct Doc {
    summary: &'static str,
    id: &'static str,
    /// The request body and whether it is required.
    body: Option<(Shape, bool)>,
    answers: Vec<Answer>,
    /// Beside 401 and 503, which every route may answer (and 408 with a body).
    errors: &'static [u16],
}

impl Doc {
    fn new(summary: &'static str, id: &'static str) -> Self {
        Self {
            summary,
            id,
            body: None,
            answers: Vec::new(),
            errors: &[],
        }
    }

    fn body<T: ToSchema>(mut self, required: bool) -> Self {
        self.body = Some((shape::<T>(), required));
        self
    }

    fn answer<T: ToSchema>(mut self, status: u16, description: &'static str) -> Self {
        self.answers.push(Answer {
            status,
            description,
            content: Content::Of(shape::<T>()),
        });
        self
    }

    fn deleted(mut self) -> Self {
        self.answers.push(Answer {
            status: 204,
            description: "Deleted",
            content: Content::Empty,
        });
        self
    }

    fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }
}

/// Every operation's text, body and answers. Exhaustive: an `Op` without
/// its description does not compile.
fn describe(op: Op) -> Doc {
    const SOURCE: &str = "The source";
    const SUBSCRIPTION: &str = "The subscription";
    const POLLER: &str = "The poller";
    const WITH_SECRET: &str = "The subscription and its new signing secret";
    match op {
        Op::OpenApi => Doc {
            answers: vec![Answer {
                status: 200,
                description: "OpenAPI 3.1 document",
                content: Content::Json,
            }],
            ..Doc::new("This document", "openapi")
        },
        Op::ListSources => {
            Doc::new("List sources", "listSources").answer::<SourceList>(200, "Every source")
        }
        Op::CreateSource => Doc::new("Create a source", "createSource")
            .body::<SourceCreate>(true)
            .answer::<Source>(201, SOURCE)
            .errors(&[400, 409, 422]),
        Op::GetSource => Doc::new("Get a source", "getSource")
            .answer::<Source>(200, SOURCE)
            .errors(&[404]),
        Op::UpdateSource => Doc::new(
            "Update a source (absent fields unchanged, null resets)",
            "updateSource",
        )
        .body::<SourcePatch>(true)
        .answer::<Source>(200, SOURCE)
        .errors(&[400, 404, 409, 422]),
        Op::DeleteSource => Doc::new("Delete a source without subscriptions", "deleteSource")
            .deleted()
            .errors(&[404, 409]),
        Op::EnableSource => Doc::new("Serve the source again", "enableSource")
            .answer::<Source>(200, SOURCE)
            .errors(&[404]),
        Op::DisableSource => Doc::new(
            "Stop serving the source (its webhooks answer 404)",
            "disableSource",
        )
        .answer::<Source>(200, SOURCE)
        .errors(&[404]),
        Op::AddSourceSecret => Doc::new(
            "Add a verification secret (rotation, step one: both verify)",
            "addSourceSecret",
        )
        .body::<SecretAdd>(true)
        .answer::<Source>(201, SOURCE)
        .errors(&[400, 404, 409, 422]),
        Op::RemoveSourceSecret => Doc::new(
            "Remove a verification secret (rotation, step two)",
            "removeSourceSecret",
        )
        .answer::<Source>(200, SOURCE)
        .errors(&[404, 409, 422]),
        Op::VerifySource => Doc::new(
            "Whether a captured request verifies against the source, and if not why (nothing is committed)",
            "verifySource",
        )
        .body::<VerifyRequest>(true)
        .answer::<VerifyResult>(200, "The verdict")
        .errors(&[400, 404, 409, 422]),
        Op::ListSubscriptions => Doc::new("List subscriptions", "listSubscriptions")
            .answer::<SubscriptionList>(200, "Subscriptions")
            .errors(&[422]),
        Op::CreateSubscription => Doc::new(
            "Create a subscription; its signing secret is shown once",
            "createSubscription",
        )
        .body::<SubscriptionCreate>(true)
        .answer::<SubscriptionWithSecret>(201, WITH_SECRET)
        .errors(&[400, 409, 422]),
        Op::GetSubscription => Doc::new("Get a subscription", "getSubscription")
            .answer::<Subscription>(200, SUBSCRIPTION)
            .errors(&[404]),
        Op::UpdateSubscription => Doc::new("Update a subscription", "updateSubscription")
            .body::<SubscriptionPatch>(true)
            .answer::<Subscription>(200, SUBSCRIPTION)
            .errors(&[400, 404, 409, 422]),
        Op::DeleteSubscription => Doc::new("Delete a subscription", "deleteSubscription")
            .deleted()
            .errors(&[404, 409]),
        Op::EnableSubscription => {
            Doc::new("Deliver to the subscription again", "enableSubscription")
                .answer::<Subscription>(200, SUBSCRIPTION)
                .errors(&[404])
        }
        Op::DisableSubscription => {
            Doc::new("Stop delivering to the subscription", "disableSubscription")
                .answer::<Subscription>(200, SUBSCRIPTION)
                .errors(&[404])
        }
        Op::RotateSubscriptionSecret => Doc::new(
            "New signing secret, shown once; the old one also signs during the overlap",
            "rotateSubscriptionSecret",
        )
        .body::<Rotate>(false)
        .answer::<SubscriptionWithSecret>(200, WITH_SECRET)
        .errors(&[400, 404, 409, 422]),
        Op::ListPollers => {
            Doc::new("List pollers", "listPollers").answer::<PollerList>(200, "Every poller")
        }
        Op::CreatePoller => Doc::new(
            "Create a poller (an app without webhooks, polled; its id is a source id)",
            "createPoller",
        )
        .body::<PollerConfig>(true)
        .answer::<Poller>(201, POLLER)
        .errors(&[400, 409, 422]),
        Op::GetPoller => Doc::new("Get a poller", "getPoller")
            .answer::<Poller>(200, POLLER)
            .errors(&[404]),
        Op::UpdatePoller => Doc::new(
            "Update a poller (a merge patch: absent fields unchanged, null resets)",
            "updatePoller",
        )
        .body::<PollerPatch>(true)
        .answer::<Poller>(200, POLLER)
        .errors(&[400, 404, 409, 422]),
        Op::DeletePoller => Doc::new("Delete a poller without subscriptions", "deletePoller")
            .deleted()
            .errors(&[404, 409]),
        Op::EnablePoller => Doc::new("Poll again", "enablePoller")
            .answer::<Poller>(200, POLLER)
            .errors(&[404]),
        Op::DisablePoller => Doc::new("Stop polling", "disablePoller")
            .answer::<Poller>(200, POLLER)
            .errors(&[404]),
        Op::RunPoller => Doc::new(
            "Poll now, due or not (a dry run commits and stores nothing, and may test a disabled poller). 200 also when the app failed: the report says how",
            "runPoller",
        )
        .body::<RunInput>(false)
        .answer::<PollReport>(200, "What the poll did")
        .errors(&[400, 404, 409, 422]),
        Op::ListEvents => Doc::new("List events, newest first", "listEvents")
            .answer::<EventPage>(200, "A page of events")
            .errors(&[422]),
        Op::GetEvent => Doc::new(
            "An event with its headers, body and delivery log",
            "getEvent",
        )
        .answer::<EventDetail>(200, "The event")
        .errors(&[404]),
        Op::ReplayEvent => Doc::new(
            "Replay an event to one subscription or to all that take it",
            "replayEvent",
        )
        .body::<ReplayOne>(false)
        .answer::<Replay>(202, "The replay, queued")
        .errors(&[400, 404, 409, 422]),
        Op::BulkReplay => Doc::new(
            "Bulk replay by status, source, subscription and time; repeatable (deliveries already replayed are left out)",
            "bulkReplay",
        )
        .body::<BulkReplay>(false)
        .answer::<BulkResult>(202, "Replays queued")
        .answer::<BulkResult>(200, "Dry run: what would be replayed")
        .errors(&[400, 422]),
        Op::ListDeadLetters => Doc::new("List dead letters, oldest first", "listDeadLetters")
            .answer::<DeadLetterPage>(200, "A page of dead letters")
            .errors(&[422]),
        Op::RedriveDeadLetters => Doc::new(
            "Replay dead letters (each leaves the DLQ once replayed)",
            "redriveDeadLetters",
        )
        .body::<Redrive>(false)
        .answer::<BulkResult>(202, "Replays queued")
        .answer::<BulkResult>(200, "Dry run")
        .errors(&[400, 422]),
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed JSON or request",
        401 => "Missing or wrong bearer token (sluice serve), or no IAM identity (AWS)",
        404 => "No such entry, or the admin API is disabled",
        408 => "The body did not arrive whole within the body timeout (sluice serve)",
        409 => "Conflicts with the current state (exists, read-only, in use, disabled)",
        422 => "A value is invalid; `field` names it",
        503 => "The store is unavailable; retry",
        _ => "Error",
    }
}

fn json_content(schema: Option<RefOr<Schema>>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(schema).build()
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A `{name}` segment of `route`'s path.
fn path_param(route: &Route, name: &str) -> Parameter {
    let description = match name {
        "ref" => Some("A secret reference (env:NAME, ssm:/path, db:NAME), percent-encoded"),
        "id" if route.path.starts_with("/admin/events/") => {
            Some("`{source}#{event id}`, with `#` written `%23`")
        }
        _ => None,
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(description)
        .schema(Some(string_schema()))
        .build()
}

/// A query parameter the router takes (`query_names`).
fn query_param(name: &str, out: &mut Collected) -> Parameter {
    let (description, schema): (Option<&str>, RefOr<Schema>) = match name {
        "type" => (
            Some("Event-type glob (`pull_request.*`)"),
            string_schema().into(),
        ),
        "status" => {
            let status = shape::<EventStatus>();
            (status.collect)(out);
            (None, status.reference())
        }
        "since" => (
            Some("RFC 3339 time, or a duration ago (`24h`)"),
            string_schema().into(),
        ),
        "until" => (
            Some("RFC 3339 time, or a duration ago; exclusive"),
            string_schema().into(),
        ),
        "limit" => (
            None,
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(LIST_MAX as f64))
                .default(Some(json!(LIST_DEFAULT)))
                .into(),
        ),
        "cursor" => (
            Some("`next_cursor` of the previous page"),
            string_schema().into(),
        ),
        _ => (None, string_schema().into()),
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(description)
        .schema(Some(schema))
        .build()
}

fn error_response(status: u16, out: &mut Collected) -> utoipa::openapi::Response {
    let error = shape::<ErrorBody>();
    (error.collect)(out);
    ResponseBuilder::new()
        .description(error_description(status))
        .content("application/json", json_content(Some(error.reference())))
        .build()
}

/// The operation of `route`; the schemas it names are added to `out`.
fn operation(route: &Route, out: &mut Collected) -> Operation {
    let doc = describe(route.op);
    let mut params: Vec<Parameter> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| path_param(route, name))
        .collect();
    params.extend(query_names(route.op).iter().map(|q| query_param(q, out)));

    let mut errors = vec![401, 503];
    errors.extend_from_slice(doc.errors);
    let mut op = OperationBuilder::new()
        .summary(Some(doc.summary))
        .operation_id(Some(doc.id))
        .parameters(Some(params));
    if let Some((body, required)) = doc.body {
        (body.collect)(out);
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(if required {
                    Required::True
                } else {
                    Required::False
                }))
                .content("application/json", json_content(Some(body.reference())))
                .build(),
        ));
        errors.push(408);
    }
    let mut responses = ResponsesBuilder::new();
    for status in errors {
        responses = responses.response(status.to_string(), error_response(status, out));
    }
    for answer in doc.answers {
        let mut response = ResponseBuilder::new().description(answer.description);
        match answer.content {
            Content::Empty => {}
            Content::Json => response = response.content("application/json", json_content(None)),
            Content::Of(shape) => {
                (shape.collect)(out);
                response =
                    response.content("application/json", json_content(Some(shape.reference())));
            }
        }
        responses = responses.response(answer.status.to_string(), response.build());
    }
    op.responses(responses.build()).build()
}

fn http_method(m: &Method) -> Option<HttpMethod> {
    Some(match *m {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        Method::TRACE => HttpMethod::Trace,
        // None other can be routed; the route-table test would see it missing.
        _ => return None,
    })
}

/// Every schema the paths name, once; and the names under which two
/// different schemas were collected (which would make one of them wrong).
fn schemas(collected: Collected) -> (BTreeMap<String, RefOr<Schema>>, Vec<String>) {
    let mut map: BTreeMap<String, RefOr<Schema>> = BTreeMap::new();
    let mut clashes = Vec::new();
    for (name, schema) in collected {
        match map.get(&name) {
            Some(seen) if *seen != schema => clashes.push(name),
            Some(_) => {}
            None => {
                map.insert(name, schema);
            }
        }
    }
    (map, clashes)
}

/// The document, and the schema names that clash (for the tests).
pub(super) fn build() -> (OpenApi, Vec<String>) {
    let mut collected = Collected::new();
    let mut paths = Paths::new();
    for route in ROUTES {
        if let Some(method) = http_method(&route.method) {
            paths.add_path_operation(route.path, vec![method], operation(route, &mut collected));
        }
    }
    let (schemas, clashes) = schemas(collected);

    // OpenAPI has no SigV4 type; this is how API Gateway's own exports
    // describe its IAM authorizer.
    let mut sigv4 =
        ApiKeyValue::with_description("Authorization", "AWS: a SigV4 signature for execute-api");
    sigv4.extensions = Some(Extensions::from_iter([(
        "x-amazon-apigateway-authtype",
        "awsSigv4",
    )]));
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("sluice serve: the `[admin] token` of the config"))
                    .build(),
            ),
        )
        .security_scheme("sigv4", SecurityScheme::ApiKey(ApiKey::Header(sigv4)))
        .build();
    let no_scopes = Vec::<String>::new;
    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("sluice admin API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .security(Some([
            SecurityRequirement::new("bearer", no_scopes()),
            SecurityRequirement::new("sigv4", no_scopes()),
        ]))
        .build();
    (doc, clashes)
}

/// The document served at `/admin/openapi.json`: [`document`] as it was
/// generated and committed.
pub const SERVED: &str = include_str!("openapi.json");

/// The document, generated from the types and routes.
pub fn document() -> Value {
    // Cannot fail: every map in it has string keys.
    serde_json::to_value(build().0).unwrap_or_default()
}
