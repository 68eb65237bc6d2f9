//! The admin API's logic through its HTTP entry point, over in-memory ports.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request};
use serde_json::{Value, json};

use super::fakes::{MemConfig, MemLog, MemRegistry, MemSecrets};
use super::ports::{
    ConfigItem, ConfigStore, DeadLetterRecord, DeliveryRecord, EventRecord, EventStatus, Kind,
    Origin, Reload,
};
use super::{Admin, AdminPorts, ROUTES, handle, openapi, sync};
use crate::config::{ConfigFile, Policy, Registry};
use crate::model::{DeliveryStatus, DeliveryTask, Event, Headers};
use crate::secrets::Secret;
use crate::time::now_ms;

const TOKEN: &str = "admin-token-for-tests-0123456789";

pub(super) struct Fixture {
    pub(super) admin: Admin,
    config: Arc<MemConfig>,
    secrets: Arc<MemSecrets>,
    log: Arc<MemLog>,
    registry: Arc<MemRegistry>,
    pub(super) poll_states: Arc<crate::poll::fakes::MemStates>,
    pub(super) poll_store: Arc<crate::pipeline::fakes::MemStore>,
}

async fn fixture_with(token: Option<&str>) -> Fixture {
    fixture_under(token, Policy::EMBEDDED).await
}

async fn fixture_under(token: Option<&str>, policy: Policy) -> Fixture {
    let config = Arc::new(MemConfig::default());
    let secrets = Arc::new(MemSecrets::new(&[
        ("GH_SECRET", "gh-secret"),
        ("GH_NEXT", "gh-next"),
    ]));
    let log = Arc::new(MemLog::default());
    let registry = Arc::new(MemRegistry::new(config.clone(), secrets.clone()));
    let file = ConfigFile::parse(
        r#"
        [[sources]]
        id = "filed"
        provider = "github"
        secrets = ["env:GH_SECRET"]

        [[subscriptions]]
        id = "filed-sub"
        source = "filed"
        events = ["*"]
        url = "https://example.com/filed"
        "#,
    )
    .unwrap();
    sync::apply(config.as_ref(), &file, Origin::File)
        .await
        .unwrap();
    registry.reload().await.unwrap();
    let token = token.map(Secret::new);
    let (poll_states, poll_store, pollers) = super::fakes::poller_ports();
    let admin = Admin::new(
        AdminPorts {
            config: config.clone(),
            events: log.clone(),
            secret_store: secrets.clone(),
            secrets: secrets.clone(),
            registry: registry.clone(),
            reload: registry.clone(),
            policy,
            pollers: pollers.clone(),
            gate: Arc::new(crate::gate::MemoryGate::default()),
        },
        token.as_ref(),
    )
    .unwrap();
    Fixture {
        admin,
        config,
        secrets,
        log,
        registry,
        poll_states,
        poll_store,
    }
}

pub(super) async fn fixture() -> Fixture {
    fixture_with(Some(TOKEN)).await
}

impl Fixture {
    async fn raw(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> (u16, Value, http::HeaderMap) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = handle(&self.admin, req.body(Bytes::from(body.to_owned())).unwrap()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let json = if resp.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(resp.body()).unwrap()
        };
        (status, json, headers)
    }

    pub(super) async fn call(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (s, v, _) = self
            .raw(method, path, Some(&format!("Bearer {TOKEN}")), &body)
            .await;
        (s, v)
    }

    async fn create_source(&self) {
        let (s, v) = self
            .call(
                Method::POST,
                "/admin/sources",
                json!({"id": "gh", "provider": "github", "secrets": ["env:GH_SECRET"]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    async fn create_sub(&self, id: &str) -> Value {
        let (s, v) = self
            .call(
                Method::POST,
                "/admin/subscriptions",
                json!({"id": id, "source": "gh", "url": "https://example.com/in", "events": ["push"]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }
}

/// What `/admin/openapi.json` serves is the document the types generate:
/// `SLUICE_UPDATE_OPENAPI=1` rewrites the committed copy after a change.
#[test]
fn the_served_openapi_document_is_the_generated_one() {
    let generated = openapi::document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/admin/openapi.json");
    if std::env::var_os("SLUICE_UPDATE_OPENAPI").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
        return;
    }
    let served: Value = serde_json::from_str(openapi::SERVED).unwrap();
    assert!(
        served == generated,
        "shared/src/admin/openapi.json is stale: run \
         SLUICE_UPDATE_OPENAPI=1 cargo test -p sluice --lib the_served_openapi"
    );
}

#[test]
fn every_route_is_in_the_openapi_document_and_nothing_else() {
    let doc = openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routed);
    // The formats listed are the ones the config takes.
    for f in doc["components"]["schemas"]["Format"]["enum"]
        .as_array()
        .unwrap()
    {
        serde_json::from_value::<crate::config::Format>(f.clone()).unwrap();
    }
    // Both ways in are described (bearer on `sluice serve`, SigV4 on AWS),
    // each by a scheme that exists.
    let schemes: BTreeSet<&str> = doc["security"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|alt| alt.as_object().unwrap().keys().map(String::as_str))
        .collect();
    assert_eq!(schemes, BTreeSet::from(["bearer", "sigv4"]));
    for name in schemes {
        assert!(
            !doc["components"]["securitySchemes"][name].is_null(),
            "{name}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"],
        "awsSigv4"
    );
    // Every $ref points at something that exists.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/").skip(1) {
        let target = &part[..part.find('"').unwrap()];
        let (kind, name) = target.split_once('/').unwrap();
        assert!(
            !doc["components"][kind][name].is_null(),
            "dangling $ref {target}"
        );
    }
}

/// The fields `T` deserialises, as serde names them: its error for an
/// unknown field lists them (every request type denies unknown fields).
fn fields_of<T: serde::de::DeserializeOwned>() -> BTreeSet<String> {
    let Err(e) = serde_json::from_str::<T>(r#"{"__not_a_field__": 0}"#) else {
        panic!("{} took an unknown field", std::any::type_name::<T>());
    };
    let message = e.to_string();
    let (_, expected) = message
        .split_once(", expected ")
        .unwrap_or_else(|| panic!("{message}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn schema_of<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        schema = schema_of(doc, r.trim_start_matches("#/components/schemas/"));
    }
    schema
}

/// The properties `schema` declares through `$ref`, `allOf` and `oneOf`;
/// None when it takes any key (`additionalProperties`).
fn declared(doc: &Value, schema: &Value) -> Option<BTreeSet<String>> {
    let s = resolve(doc, schema);
    if s.get("additionalProperties")
        .is_some_and(|a| *a != Value::Bool(false))
    {
        return None;
    }
    let mut out: BTreeSet<String> = s
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for key in ["allOf", "oneOf"] {
        for part in s.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.extend(declared(doc, part)?);
        }
    }
    Some(out)
}

/// Whether `v` fits `schema`: types, enums, required keys, items, and
/// (`strict`) no key the schema does not declare. JSON Schema would let
/// undeclared keys through; the document must not miss any. Parts of an
/// `allOf` are checked leniently, the whole strictly.
fn fits(doc: &Value, schema: &Value, v: &Value, at: &str, strict: bool) -> Result<(), String> {
    let s = resolve(doc, schema);
    if let Some(branches) = s.get("oneOf").and_then(Value::as_array) {
        let misses: Vec<String> = branches
            .iter()
            .filter_map(|b| fits(doc, b, v, at, strict).err())
            .collect();
        if misses.len() == branches.len() {
            return Err(format!("{at}: fits no branch of oneOf: {misses:?}"));
        }
    }
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        fits(doc, part, v, at, false)?;
    }
    if let Some(t) = s.get("type") {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "number",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let allowed: Vec<&str> = match t {
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        let number = kind == "integer" && allowed.contains(&"number");
        if !allowed.contains(&kind) && !number {
            return Err(format!("{at}: a {kind}, documented as {t}"));
        }
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array)
        && !values.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {values:?}"));
    }
    match v {
        Value::Object(m) => {
            for key in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = key.as_str().unwrap_or_default();
                if !m.contains_key(key) {
                    return Err(format!("{at}: required {key} is missing"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, value) in m {
                let here = format!("{at}.{k}");
                match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
                    (Some(p), _) => fits(doc, p, value, &here, true)?,
                    (None, Some(extra)) if extra.is_object() => {
                        fits(doc, extra, value, &here, true)?;
                    }
                    _ => {}
                }
            }
            if strict
                && let Some(known) = declared(doc, s)
                && let Some(k) = m.keys().find(|k| !known.contains(*k))
            {
                return Err(format!("{at}.{k} is not in the document"));
            }
        }
        Value::Array(items) => {
            let prefix = s.get("prefixItems").and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let here = format!("{at}[{i}]");
                match (prefix.and_then(|p| p.get(i)), s.get("items")) {
                    (Some(p), _) => fits(doc, p, item, &here, true)?,
                    (None, Some(Value::Bool(false))) => {
                        return Err(format!("{here}: beyond the documented items"));
                    }
                    (None, Some(schema)) => fits(doc, schema, item, &here, true)?,
                    (None, None) => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

impl Fixture {
    /// `call`, then check the answer against what the document says
    /// `method path` answers with that status.
    async fn checked(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let (status, v) = self.call(method.clone(), path, body).await;
        let doc = openapi::document();
        let route_path = path.split('?').next().unwrap_or_default();
        let (route, _) = super::api::match_route(&method, route_path).unwrap();
        let answer = &doc["paths"][route.path][method.as_str().to_lowercase()]["responses"]
            [status.to_string()];
        assert!(
            answer.is_object(),
            "{method} {path} answered {status}, which the document does not list: {v}"
        );
        match answer["content"]["application/json"].get("schema") {
            Some(schema) => {
                if let Err(e) = fits(&doc, schema, &v, "answer", true) {
                    panic!("{method} {path} ({status}): {e}\n{v:#}");
                }
            }
            None => assert!(v.is_null(), "{method} {path}: undocumented body {v}"),
        }
        (status, v)
    }
}

#[test]
fn no_two_types_share_a_schema_name() {
    let (_, clashes) = openapi::build();
    assert!(clashes.is_empty(), "{clashes:?}");
}

#[test]
fn each_request_schema_names_exactly_the_fields_its_type_takes() {
    use super::config_ops::{
        PollerPatch, Rotate, SecretAdd, SourceCreate, SourcePatch, SubscriptionCreate,
        SubscriptionPatch,
    };
    use super::event_ops::{BulkReplay, Redrive, ReplayOne};
    use super::poller_ops::RunInput;
    use super::verify_ops::VerifyRequest;
    use crate::poll::PollerConfig;
    use utoipa::ToSchema;

    fn entry<T: ToSchema + serde::de::DeserializeOwned>() -> (String, BTreeSet<String>) {
        (T::name().into_owned(), fields_of::<T>())
    }
    let types = [
        entry::<SourceCreate>(),
        entry::<SourcePatch>(),
        entry::<SecretAdd>(),
        entry::<VerifyRequest>(),
        entry::<SubscriptionCreate>(),
        entry::<SubscriptionPatch>(),
        entry::<Rotate>(),
        entry::<PollerConfig>(),
        entry::<PollerPatch>(),
        entry::<RunInput>(),
        entry::<ReplayOne>(),
        entry::<BulkReplay>(),
        entry::<Redrive>(),
    ];
    let doc = openapi::document();
    // Every request body the document names is one of these.
    let mut bodies = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let Some(r) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                bodies.insert(r.trim_start_matches("#/components/schemas/").to_owned());
            }
        }
    }
    let names: BTreeSet<String> = types.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(bodies, names);
    for (name, fields) in &types {
        let schema = schema_of(&doc, name);
        assert_eq!(declared(&doc, schema).as_ref(), Some(fields), "{name}");
        assert_eq!(
            schema["additionalProperties"], false,
            "{name} refuses others"
        );
    }
    // A poller's patch takes exactly the fields of its config.
    assert_eq!(fields_of::<PollerPatch>(), fields_of::<PollerConfig>());
}

#[test]
fn the_views_show_every_field_of_the_config_but_secrets() {
    let doc = openapi::document();
    let shown = |name: &str| declared(&doc, schema_of(&doc, name)).unwrap();
    for (view, config, hidden) in [
        (
            "Source",
            fields_of::<crate::config::SourceConfig>(),
            &[][..],
        ),
        ("Poller", fields_of::<crate::poll::PollerConfig>(), &[][..]),
        (
            "Subscription",
            fields_of::<crate::config::SubscriptionConfig>(),
            &["signing_secret", "previous_signing_secret"][..],
        ),
    ] {
        let shown = shown(view);
        for field in config {
            assert_eq!(
                shown.contains(&field),
                !hidden.contains(&field.as_str()),
                "{view}.{field}"
            );
        }
    }
}

#[test]
fn documented_defaults_and_bounds_are_the_codes() {
    let doc = openapi::document();
    let prop = |schema: &str, field: &str| schema_of(&doc, schema)["properties"][field].clone();
    let breaker = serde_json::to_value(crate::gate::Breaker::default()).unwrap();
    for (field, value) in breaker.as_object().unwrap() {
        assert_eq!(&prop("CircuitBreaker", field)["default"], value, "{field}");
    }
    let overlap = prop("Rotate", "overlap")["default"].clone();
    assert_eq!(
        humantime::parse_duration(overlap.as_str().unwrap()).unwrap(),
        super::config_ops::DEFAULT_OVERLAP
    );
    for schema in ["BulkReplayRequest", "RedriveRequest"] {
        let limit = prop(schema, "limit");
        assert_eq!(limit["default"], super::event_ops::BULK_DEFAULT, "{schema}");
        assert_eq!(limit["maximum"], super::event_ops::BULK_MAX, "{schema}");
    }
    use crate::poll::config::{MAX_PAGES_LIMIT, MAX_RESPONSE_BYTES_LIMIT};
    for schema in ["PollerConfig", "PollerPatch"] {
        assert_eq!(prop(schema, "max_pages")["maximum"], MAX_PAGES_LIMIT);
        assert_eq!(
            prop(schema, "max_response_bytes")["maximum"],
            MAX_RESPONSE_BYTES_LIMIT
        );
    }
    // The event status filter takes what the log has.
    let statuses: Vec<Value> = crate::admin::ports::EventStatus::ALL
        .iter()
        .map(|s| json!(s.as_str()))
        .collect();
    assert_eq!(schema_of(&doc, "EventStatus")["enum"], json!(statuses));
}

#[tokio::test]
async fn every_answer_fits_the_schema_the_document_gives_it() {
    use crate::model::Attempt;
    let f = fixture().await;
    let call = |m: Method, path: &'static str, body: Value| f.checked(m, path, body);

    // Sources, with every optional field.
    f.create_source().await;
    call(
        Method::POST,
        "/admin/sources",
        json!({"id": "hm", "provider": "hmac", "secrets": [{"value": "abc"}],
               "tolerance_secs": 300, "dedupe_window": "2d", "max_body_bytes": 1000,
               "hmac": {"signature_header": "X-Sig", "prefix": "sha256=", "timestamp_header": "X-Ts"}}),
    )
    .await;
    let (s, _) = call(
        Method::POST,
        "/admin/sources",
        json!({"id": "tw", "provider": "twilio", "secrets": ["env:GH_SECRET"],
               "public_url": "https://example.com/hooks/tw"}),
    )
    .await;
    assert_eq!(s, 201);
    call(Method::GET, "/admin/sources", Value::Null).await;
    call(Method::GET, "/admin/sources/filed", Value::Null).await;
    call(
        Method::PATCH,
        "/admin/sources/hm",
        json!({"tolerance_secs": null, "dedupe_window": "1h"}),
    )
    .await;
    call(Method::POST, "/admin/sources/gh/disable", Value::Null).await;
    call(
        Method::POST,
        "/admin/sources/gh/verify",
        json!({"headers": []}),
    )
    .await;
    call(Method::POST, "/admin/sources/gh/enable", Value::Null).await;
    call(
        Method::POST,
        "/admin/sources/gh/secrets",
        json!({"ref": "env:GH_NEXT"}),
    )
    .await;
    call(
        Method::DELETE,
        "/admin/sources/gh/secrets/env:GH_SECRET",
        Value::Null,
    )
    .await;
    for headers in [
        json!([["X-GitHub-Event", "push"]]),
        json!([["bad name", "x"]]),
    ] {
        call(
            Method::POST,
            "/admin/sources/gh/verify",
            json!({"headers": headers, "body": "{}"}),
        )
        .await;
    }
    let body = r#"{"ref":"refs/heads/main"}"#;
    let (_, v) = call(
        Method::POST,
        "/admin/sources/gh/verify",
        json!({"headers": [["X-Hub-Signature-256", format!("sha256={}", hmac_hex("gh-next", &[body.as_bytes()]))],
                           ["X-GitHub-Event", "push"], ["X-GitHub-Delivery", "d-1"]], "body": body}),
    )
    .await;
    assert_eq!(v["verified"], true, "{v}");

    // Subscriptions: a full one, its controls, a rotation.
    call(
        Method::POST,
        "/admin/subscriptions",
        json!({"id": "s1", "source": "gh", "url": "https://example.com/a", "events": ["push"]}),
    )
    .await;
    call(
        Method::POST,
        "/admin/subscriptions",
        json!({"id": "s2", "source": "gh", "url": "https://example.com/b", "events": ["*"],
               "format": "slack", "template": "{{ event.type }}", "filter": "payload.a == 1",
               "retry_schedule": ["1s", "1m"], "rate_limit": "5/s", "max_in_flight": 3,
               "circuit_breaker": {"failures": 5, "failure_percent": 50, "disable_after": "3d"}}),
    )
    .await;
    call(Method::GET, "/admin/subscriptions", Value::Null).await;
    call(Method::GET, "/admin/subscriptions?source=gh", Value::Null).await;
    let (_, v) = call(Method::GET, "/admin/subscriptions/s2", Value::Null).await;
    assert!(v["delivery_controls"].is_object(), "{v}");
    call(
        Method::PATCH,
        "/admin/subscriptions/s2",
        json!({"template": null, "format": "raw", "rate_limit": null}),
    )
    .await;
    call(
        Method::POST,
        "/admin/subscriptions/s1/rotate-secret",
        json!({"overlap": "1h"}),
    )
    .await;
    let (_, v) = call(Method::GET, "/admin/subscriptions/s1", Value::Null).await;
    assert!(v["previous_secret_until"].is_string(), "{v}");
    call(Method::POST, "/admin/subscriptions/s1/disable", Value::Null).await;
    call(Method::POST, "/admin/subscriptions/s1/enable", Value::Null).await;
    call(
        Method::POST,
        "/admin/subscriptions",
        json!({"source": "gh", "url": "ftp://x", "events": ["*"]}),
    )
    .await;

    // Pollers, and a poll that fails (nothing listens on port 9).
    call(
        Method::POST,
        "/admin/pollers",
        json!({"id": "p1", "url": POLLER_URL, "item_id": "/id", "interval": "30s",
               "headers": {"Authorization": "env:GH_SECRET"}}),
    )
    .await;
    call(
        Method::POST,
        "/admin/pollers",
        json!({"id": "p2", "url": "http://127.0.0.1:9/x", "item_id": "/id", "allow_local": true,
               "emit_existing": true, "items": "/data", "type": "/kind", "timestamp": "/t",
               "since_param": "since", "max_pages": 3, "dedupe_window": "1d",
               "max_response_bytes": 10000}),
    )
    .await;
    call(
        Method::PATCH,
        "/admin/pollers/p1",
        json!({"interval": "2m", "headers": {"Accept": "application/json"}}),
    )
    .await;
    let (_, v) = call(Method::POST, "/admin/pollers/p2/run", Value::Null).await;
    assert_eq!(v["result"], "failed", "{v}");
    let (_, v) = call(Method::GET, "/admin/pollers/p2", Value::Null).await;
    assert!(v["state"].is_object(), "{v}");
    call(Method::GET, "/admin/pollers", Value::Null).await;
    call(Method::POST, "/admin/pollers/p2/disable", Value::Null).await;
    call(Method::PATCH, "/admin/pollers/p1", json!({"id": "other"})).await;

    // The event log: an event with attempts (one for a subscription with
    // no delivery row), a replay of it, dead letters.
    {
        let mut r = record("e1", DeliveryStatus::Failed, &["s1", "s2"]);
        let attempt = |sub: &str, n: u32, status_code: Option<u16>| Attempt {
            source: "gh".into(),
            event_id: "e1".into(),
            subscription: sub.into(),
            attempt: n,
            started_at_ms: now_ms(),
            latency_ms: 12,
            status_code,
            error: status_code.is_none().then(|| "timeout".to_owned()),
            response_snippet: status_code.map(|_| "x".repeat(600)),
            next_attempt_at_ms: Some(now_ms()),
        };
        r.attempts = vec![
            attempt("s1", 1, Some(503)),
            attempt("s1", 2, None),
            attempt("orphan", 1, Some(200)),
        ];
        let mut replay = record("e2", DeliveryStatus::Delivered, &["s1"]);
        replay.event.body = Bytes::from_static(b"{\"a\":1}");
        replay.routed = None;
        replay.replay_of = Some(crate::model::EventKey::new("gh", "e1"));
        let mut records = f.log.records.lock().unwrap();
        records.push(r);
        records.push(replay);
    }
    call(Method::GET, "/admin/events", Value::Null).await;
    call(
        Method::GET,
        "/admin/events?limit=1&status=failed",
        Value::Null,
    )
    .await;
    let (_, v) = call(Method::GET, "/admin/events/gh%23e1", Value::Null).await;
    assert_eq!(v["deliveries"].as_array().map(Vec::len), Some(3), "{v}");
    call(Method::GET, "/admin/events/gh%23e2", Value::Null).await;
    call(
        Method::POST,
        "/admin/events/gh%23e1/replay",
        json!({"subscription": "s1"}),
    )
    .await;
    call(Method::POST, "/admin/replay", json!({"dry_run": true})).await;
    call(
        Method::POST,
        "/admin/replay",
        json!({"status": "delivered"}),
    )
    .await;
    call(Method::POST, "/admin/replay", json!({"status": "pending"})).await;
    for (id, event) in [("7", "e1"), ("8", "gone")] {
        f.log.dead.lock().unwrap().push(DeadLetterRecord {
            id: id.into(),
            task: DeliveryTask {
                source: "gh".into(),
                event_id: event.into(),
                subscription: "s2".into(),
            },
            reason: "attempts exhausted".into(),
            receive_count: 3,
            at_ms: now_ms(),
        });
    }
    let (_, v) = call(Method::GET, "/admin/dlq", Value::Null).await;
    assert_eq!(v["dead_letters"].as_array().map(Vec::len), Some(2), "{v}");
    call(Method::GET, "/admin/dlq?limit=1", Value::Null).await;
    call(Method::POST, "/admin/dlq/redrive", json!({"dry_run": true})).await;
    let (_, v) = call(Method::POST, "/admin/dlq/redrive", Value::Null).await;
    assert_eq!(v["skipped"][0]["dead_letter"], "8", "{v}");

    // Errors, and deletes.
    call(Method::GET, "/admin/sources/nope", Value::Null).await;
    call(Method::PATCH, "/admin/sources/filed", json!({})).await;
    call(Method::DELETE, "/admin/sources/gh", Value::Null).await;
    call(Method::GET, "/admin/events?status=nope", Value::Null).await;
    call(Method::DELETE, "/admin/subscriptions/s2", Value::Null).await;
    call(Method::DELETE, "/admin/pollers/p2", Value::Null).await;
    let (s, v, _) = f
        .raw(
            Method::POST,
            "/admin/sources",
            Some(&format!("Bearer {TOKEN}")),
            "{",
        )
        .await;
    assert_eq!(s, 400);
    let doc = openapi::document();
    fits(&doc, schema_of(&doc, "Error"), &v, "answer", true).unwrap();
}

#[tokio::test]
async fn the_token_guards_every_route_and_a_missing_token_disables_the_api() {
    let f = fixture().await;
    for auth in [
        None,
        Some("Bearer wrong-token-wrong-token"),
        Some("Basic abc"),
        Some(TOKEN),
    ] {
        let (s, v, h) = f.raw(Method::GET, "/admin/sources", auth, "").await;
        assert_eq!(
            (s, v["error"].as_str()),
            (401, Some("unauthorized")),
            "{auth:?}"
        );
        assert_eq!(h["www-authenticate"], "Bearer realm=\"sluice-admin\"");
    }
    // Unknown routes too: nothing is learnt without the token.
    let (s, _, _) = f.raw(Method::GET, "/admin/nope", None, "").await;
    assert_eq!(s, 401);
    let (s, _, _) = f
        .raw(
            Method::GET,
            "/admin/sources",
            Some(&format!("bearer {TOKEN}")),
            "",
        )
        .await;
    assert_eq!(s, 200);

    let off = fixture_with(None).await;
    let (s, v, _) = off
        .raw(
            Method::GET,
            "/admin/sources",
            Some(&format!("Bearer {TOKEN}")),
            "",
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("admin_disabled")));

    let short = Secret::new("short");
    let err = Admin::new(
        AdminPorts {
            config: f.config.clone(),
            events: f.log.clone(),
            secret_store: f.secrets.clone(),
            secrets: f.secrets.clone(),
            registry: f.registry.clone(),
            reload: f.registry.clone(),
            policy: Policy::EMBEDDED,
            pollers: super::fakes::poller_ports().2,
            gate: Arc::new(crate::gate::MemoryGate::default()),
        },
        Some(&short),
    )
    .err()
    .unwrap();
    assert!(err.contains("at least 16"), "{err}");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let f = fixture().await;
    let (s, v) = f
        .call(Method::GET, "/admin/nothing/here", Value::Null)
        .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")));
    let (s, v, h) = f
        .raw(
            Method::PUT,
            "/admin/sources",
            Some(&format!("Bearer {TOKEN}")),
            "",
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (405, Some("method_not_allowed")));
    assert_eq!(h["allow"], "GET, POST");
    let (s, v) = f
        .call(Method::GET, "/admin/sources?bogus=1", Value::Null)
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("bogus")));
    let (s, _) = f
        .call(Method::GET, "/admin/sources/%FF%FE", Value::Null)
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_subscription_gets_a_signing_secret_shown_once() {
    let f = fixture().await;
    f.create_source().await;
    let created = f.create_sub("deploys").await;
    let whsec = created["signing_secret"].as_str().unwrap();
    assert!(whsec.starts_with("whsec_"));
    let key =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &whsec[6..]).unwrap();
    assert!((24..=32).contains(&key.len()));
    assert_eq!(created["has_signing_secret"], true);
    assert_eq!(created["origin"], "api");
    assert_eq!(created["enabled"], true);

    let (s, got) = f
        .call(Method::GET, "/admin/subscriptions/deploys", Value::Null)
        .await;
    assert_eq!(s, 200);
    assert!(got.get("signing_secret").is_none(), "{got}");
    assert!(!got.to_string().contains(&whsec[6..]));
    assert_eq!(got["has_signing_secret"], true);

    // Live at once: the running registry signs with it.
    let sub = f.registry.now_sub("deploys");
    assert!(sub.signing_key.is_some());
    // Kept in the secret store, referenced by the config.
    assert!(
        f.secrets
            .stored
            .lock()
            .unwrap()
            .values()
            .any(|v| v == whsec)
    );

    let (s, list) = f
        .call(Method::GET, "/admin/subscriptions?source=gh", Value::Null)
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1);

    // Chat formats and templates pass through to the config.
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions",
            json!({"id": "chat", "source": "gh", "url": "https://hooks.slack.example/x", "events": ["*"],
                   "format": "slack", "template": "{{ event.type }}"}),
        )
        .await;
    assert_eq!(
        (s, v["format"].as_str(), v["template"].as_str()),
        (201, Some("slack"), Some("{{ event.type }}")),
        "{v}"
    );
    assert!(f.registry.now_sub("chat").template.is_some());

    // A payload filter is compiled into the live subscription; PATCH
    // changes it and null removes it.
    let filter = r#"payload.action == "opened""#;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions",
            json!({"id": "opened", "source": "gh", "url": "https://example.com/o", "events": ["*"], "filter": filter}),
        )
        .await;
    assert_eq!((s, v["filter"].as_str()), (201, Some(filter)), "{v}");
    assert!(f.registry.now_sub("opened").payload_filter.is_some());
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/subscriptions/opened",
            json!({"filter": "payload.action =="}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("filter")), "{v}");
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/subscriptions/opened",
            json!({"filter": null}),
        )
        .await;
    assert_eq!((s, v.get("filter")), (200, None), "{v}");
    assert!(f.registry.now_sub("opened").payload_filter.is_none());

    // A generated id when none is given.
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions",
            json!({"source": "gh", "url": "https://example.com/x", "events": ["*"], "format": "raw"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("sub_"));

    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions",
            json!({"id": "deploys", "source": "gh", "url": "https://example.com/x", "events": ["*"]}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("already_exists")));
}

#[tokio::test]
async fn a_subscription_takes_sluices_own_events_and_no_source_or_poller_takes_its_id() {
    let f = fixture().await;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions",
            json!({"id": "ops", "source": "sluice", "events": ["*"],
                   "url": "https://hooks.slack.com/services/T/B/X", "format": "slack"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["source"], "sluice", "{v}");
    for (path, body) in [
        (
            "/admin/sources",
            json!({"id": "sluice", "provider": "github", "secrets": ["env:GH_SECRET"]}),
        ),
        (
            "/admin/pollers",
            json!({"id": "sluice", "url": "https://example.com/items"}),
        ),
    ] {
        let (s, v) = f.call(Method::POST, path, body).await;
        assert_eq!(s, 422, "{path}: {v}");
        assert_eq!(v["field"], "id", "{path}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains("reserved"),
            "{path}: {v}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_400_or_422_naming_the_field() {
    let f = fixture().await;
    f.create_source().await;
    let post = |body: &'static str| {
        let f = &f;
        async move {
            f.raw(
                Method::POST,
                "/admin/subscriptions",
                Some(&format!("Bearer {TOKEN}")),
                body,
            )
            .await
        }
    };
    let (s, v, _) = post("{not json").await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("malformed_json")),
        "{v}"
    );
    let (s, _, _) = post(r#"{"source":"gh"} trailing"#).await;
    assert_eq!(s, 400);

    let cases = [
        (
            json!({"source": "gh", "url": "https://x.example", "events": "push"}),
            "events",
        ),
        (
            json!({"source": "gh", "url": "https://x.example"}),
            "events",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "colour": 1}),
            "colour",
        ),
        (
            json!({"source": "gh", "url": "http://x.example", "events": ["*"]}),
            "url",
        ),
        (
            json!({"source": "gh", "url": "not a url", "events": ["*"]}),
            "url",
        ),
        (
            json!({"source": "nope", "url": "https://x.example", "events": ["*"]}),
            "source",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": []}),
            "events",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "id": "bad id!"}),
            "id",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "retry_schedule": ["soon"]}),
            "retry_schedule[0]",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "format": "fax"}),
            "format",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "allow_local": "yes"}),
            "allow_local",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "template": "{{ x }}"}),
            "template",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "format": "slack", "template": "{{ x"}),
            "template",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "filter": "payload.action =="}),
            "filter",
        ),
        (
            json!({"source": "gh", "url": "https://x.example", "events": ["*"], "filter": "payload | shout"}),
            "filter",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = f
            .call(Method::POST, "/admin/subscriptions", body.clone())
            .await;
        assert_eq!(s, 422, "{body} → {v}");
        assert_eq!(v["error"], "invalid_field");
        assert_eq!(v["field"], field, "{body} → {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains(field.split('[').next().unwrap())
                || !v["message"].as_str().unwrap().is_empty()
        );
    }

    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "x", "provider": "github", "secrets": ["env:NOT_SET_ANYWHERE_X"]}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("secrets[0]")), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("env:NOT_SET_ANYWHERE_X")
    );
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "x", "provider": "nope", "secrets": ["env:GH_SECRET"]}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("provider")), "{v}");
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "x", "provider": "github", "secrets": []}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("secrets")), "{v}");
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "x", "provider": "github", "secrets": ["plain"]}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("secrets[0]")), "{v}");
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "x", "provider": "hmac", "secrets": ["env:GH_SECRET"]}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("hmac")), "{v}");
    for (body, field) in [
        (
            json!({"id": "x", "provider": "token", "secrets": ["env:GH_SECRET"]}),
            "token",
        ),
        (
            json!({"id": "x", "provider": "token", "secrets": ["env:GH_SECRET"],
                   "token": {"header": "X-A", "query": "k"}}),
            "token",
        ),
        (
            json!({"id": "x", "provider": "github", "secrets": ["env:GH_SECRET"],
                   "jwt": {"header": "X-Jwt"}}),
            "jwt",
        ),
    ] {
        let (s, v) = f.call(Method::POST, "/admin/sources", body).await;
        assert_eq!((s, v["field"].as_str()), (422, Some(field)), "{v}");
    }
    let (s, v) = f
        .call(Method::GET, "/admin/events?limit=0", Value::Null)
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("limit")));
    let (s, v) = f
        .call(Method::GET, "/admin/events?status=lost", Value::Null)
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("status")));
    let (s, v) = f
        .call(Method::GET, "/admin/events?since=yesterdayish", Value::Null)
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("since")));
    let (s, v) = f
        .call(Method::GET, "/admin/events?cursor=zzz", Value::Null)
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("cursor")));
    let (s, v) = f
        .call(Method::POST, "/admin/replay", json!({"status": "pending"}))
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("status")));
    let (s, v) = f
        .call(Method::POST, "/admin/replay", json!({"limit": 5000}))
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("limit")));

    let (s, v) = f
        .call(Method::GET, "/admin/subscriptions/ghost", Value::Null)
        .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")));
    let (s, _) = f
        .call(Method::GET, "/admin/events/no-hash", Value::Null)
        .await;
    assert_eq!(s, 404);
    let (s, _) = f
        .call(Method::GET, "/admin/events/gh%23none", Value::Null)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn file_entries_are_read_only_but_can_be_disabled() {
    let f = fixture().await;
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/subscriptions/filed-sub",
            json!({"events": ["push"]}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("read_only")), "{v}");
    let (s, _) = f
        .call(Method::DELETE, "/admin/sources/filed", Value::Null)
        .await;
    assert_eq!(s, 409);
    let (s, _) = f
        .call(
            Method::POST,
            "/admin/subscriptions/filed-sub/rotate-secret",
            Value::Null,
        )
        .await;
    assert_eq!(s, 409);

    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions/filed-sub/disable",
            Value::Null,
        )
        .await;
    assert_eq!((s, v["enabled"].as_bool()), (200, Some(false)), "{v}");
    assert!(
        !f.registry.now_sub("filed-sub").is_enabled(),
        "live at once"
    );
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions/filed-sub/enable",
            Value::Null,
        )
        .await;
    assert_eq!((s, v["enabled"].as_bool()), (200, Some(true)));
    let (s, v) = f
        .call(Method::POST, "/admin/sources/filed/disable", Value::Null)
        .await;
    assert_eq!(
        (s, v["enabled"].as_bool(), v["origin"].as_str()),
        (200, Some(false), Some("file"))
    );
    let (s, _) = f
        .call(Method::POST, "/admin/sources/ghost/disable", Value::Null)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn update_and_delete_a_subscription_and_its_source() {
    let f = fixture().await;
    f.create_source().await;
    f.create_sub("deploys").await;
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/subscriptions/deploys",
            json!({"events": ["push", "release"], "retry_schedule": ["1s"], "url": "https://example.com/v2"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["events"], json!(["push", "release"]));
    assert_eq!(
        f.registry.now_sub("deploys").url.as_str(),
        "https://example.com/v2"
    );
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/subscriptions/deploys",
            json!({"retry_schedule": null}),
        )
        .await;
    assert_eq!((s, &v["retry_schedule"]), (200, &Value::Null));
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/subscriptions/deploys",
            json!({"source": "filed"}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("source")));

    let (s, v) = f
        .call(Method::DELETE, "/admin/sources/gh", Value::Null)
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")));
    assert!(v["message"].as_str().unwrap().contains("deploys"));
    let (s, _) = f
        .call(Method::DELETE, "/admin/subscriptions/deploys", Value::Null)
        .await;
    assert_eq!(s, 204);
    assert!(
        f.secrets.stored.lock().unwrap().is_empty(),
        "its secret is forgotten"
    );
    let (s, _) = f
        .call(Method::DELETE, "/admin/sources/gh", Value::Null)
        .await;
    assert_eq!(s, 204);
    let (s, _) = f.call(Method::GET, "/admin/sources/gh", Value::Null).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn rotating_a_signing_secret_keeps_the_old_one_signing_for_the_overlap() {
    let f = fixture().await;
    f.create_source().await;
    let first = f.create_sub("deploys").await["signing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions/deploys/rotate-secret",
            json!({"overlap": "1h"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let second = v["signing_secret"].as_str().unwrap();
    assert_ne!(first, second);
    assert!(v["previous_secret_until"].is_string());
    let sub = f.registry.now_sub("deploys");
    assert!(sub.previous_key_at(std::time::SystemTime::now()).is_some());
    // Both are kept for now.
    assert_eq!(f.secrets.stored.lock().unwrap().len(), 2);

    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions/deploys/rotate-secret",
            json!({"overlap": "0s"}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(v["previous_secret_until"].is_null());
    assert!(f.registry.now_sub("deploys").previous_signing_key.is_none());
    assert_eq!(
        f.secrets.stored.lock().unwrap().len(),
        1,
        "replaced ones forgotten"
    );
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions/deploys/rotate-secret",
            json!({"overlap": "90d"}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("overlap")));
}

#[tokio::test]
async fn source_secrets_rotate_by_adding_then_removing() {
    let f = fixture().await;
    f.create_source().await;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources/gh/secrets",
            json!({"value": "brand-new"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let refs: Vec<String> = serde_json::from_value(v["secrets"].clone()).unwrap();
    assert_eq!(refs.len(), 2);
    assert!(
        !v.to_string().contains("brand-new"),
        "values are never shown"
    );
    let (s, _) = f
        .call(
            Method::POST,
            "/admin/sources/gh/secrets",
            json!({"ref": "env:GH_NEXT"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources/gh/secrets",
            json!({"ref": "env:NOT_SET_ANYWHERE_Y"}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("ref")), "{v}");
    let (s, _) = f
        .call(
            Method::POST,
            "/admin/sources/gh/secrets",
            json!({"ref": "env:GH_NEXT", "value": "x"}),
        )
        .await;
    assert_eq!(s, 422);

    let (s, v) = f
        .call(
            Method::DELETE,
            "/admin/sources/gh/secrets/env:GH_SECRET",
            Value::Null,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let stored = &refs[1];
    let (s, _) = f
        .call(
            Method::DELETE,
            &format!("/admin/sources/gh/secrets/{stored}"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);
    assert!(f.secrets.stored.lock().unwrap().is_empty());
    let (s, v) = f
        .call(
            Method::DELETE,
            "/admin/sources/gh/secrets/env:GH_NEXT",
            Value::Null,
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (409, Some("conflict")),
        "the last one stays"
    );
    let (s, _) = f
        .call(
            Method::DELETE,
            "/admin/sources/gh/secrets/env:GH_SECRET",
            Value::Null,
        )
        .await;
    assert_eq!(s, 404);
}

/// An asana source may name a reference that holds nothing yet (its
/// handshake brings the secret), and only one; pointed elsewhere, the
/// secret its handshake kept is deleted like any secret sluice created.
#[tokio::test]
async fn an_asana_source_names_one_reference_its_handshake_fills() {
    let f = fixture().await;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "asana", "provider": "asana", "secrets": ["db:asana-1"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "gh2", "provider": "github", "secrets": ["db:nothing-here"]}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("secrets[0]")), "{v}");
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "asana2", "provider": "asana", "secrets": ["db:a", "db:b"]}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("secrets")), "{v}");
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources/asana/secrets",
            json!({"value": "a-second-one"}),
        )
        .await;
    assert_eq!(s, 422, "no rotation: one reference, {v}");
    let (_, v) = f
        .call(Method::GET, "/admin/sources/asana", json!(null))
        .await;
    assert_eq!(v["handshake"], "awaiting", "{v}");

    // The handshake came and its secret was kept.
    f.secrets
        .stored
        .lock()
        .unwrap()
        .insert("asana-1".into(), "kept-by-handshake".into());
    let (_, v) = f.call(Method::GET, "/admin/sources", json!(null)).await;
    let handshakes: Vec<_> = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s.get("handshake").cloned()))
        .collect();
    assert!(handshakes.contains(&("asana", Some(json!("done")))), "{v}");
    assert!(
        handshakes
            .iter()
            .all(|(id, h)| *id == "asana" || h.is_none()),
        "only a handshake provider shows one: {v}"
    );
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/sources/asana",
            json!({"secrets": ["db:asana-2"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        !f.secrets.stored.lock().unwrap().contains_key("asana-1"),
        "the old kept secret is deleted"
    );
}

fn record(id: &str, status: DeliveryStatus, subs: &[&str]) -> EventRecord {
    EventRecord {
        event: Event {
            source: "gh".into(),
            id: id.into(),
            event_type: "push".into(),
            received_at_ms: now_ms(),
            expires_at: now_ms() / 1000 + 3600,
            body: Bytes::from_static(b"\xff\x00binary"),
            body_hash: "h".into(),
            content_type: Some("application/octet-stream".into()),
            headers: Headers::from_pairs(&[("x-github-event", "push")]),
        },
        status: EventStatus::Failed,
        routed: Some(subs.iter().map(|s| (*s).to_owned()).collect()),
        deliveries: subs
            .iter()
            .map(|s| DeliveryRecord {
                subscription: (*s).to_owned(),
                status,
                next_attempt_at_ms: None,
                updated_at_ms: now_ms(),
            })
            .collect(),
        attempts: Vec::new(),
        replay_of: None,
        replays: Vec::new(),
    }
}

#[tokio::test]
async fn replays_check_the_destination_and_link_to_the_original() {
    let f = fixture().await;
    f.create_source().await;
    f.create_sub("deploys").await;
    f.create_sub("audit").await;
    f.log
        .records
        .lock()
        .unwrap()
        .push(record("e1", DeliveryStatus::Failed, &["deploys"]));

    let (s, v) = f
        .call(Method::GET, "/admin/events/gh%23e1", Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["body_encoding"], "base64");
    assert_eq!(v["deliveries"][0]["subscription"], "deploys");

    let (s, v) = f
        .call(
            Method::POST,
            "/admin/events/gh%23e1/replay",
            json!({"subscription": "deploys"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["id"], "gh#e1#replay-1");
    assert_eq!(v["replay_of"], "gh#e1");
    let (s, v) = f
        .call(Method::POST, "/admin/events/gh%23e1/replay", Value::Null)
        .await;
    assert_eq!(s, 202);
    assert_eq!(v["subscriptions"], json!(["audit", "deploys"]));
    // A replay of a replay goes back to the original.
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/events/gh%23e1%23replay-1/replay",
            json!({"subscription": "audit"}),
        )
        .await;
    assert_eq!((s, v["replay_of"].as_str()), (202, Some("gh#e1")), "{v}");

    let (s, v) = f
        .call(
            Method::POST,
            "/admin/events/gh%23e1/replay",
            json!({"subscription": "ghost"}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("subscription")));
    let (s, _) = f
        .call(
            Method::POST,
            "/admin/events/gh%23e1/replay",
            json!({"subscription": "filed-sub"}),
        )
        .await;
    assert_eq!(s, 409, "another source's subscription");
    f.call(
        Method::POST,
        "/admin/subscriptions/deploys/disable",
        Value::Null,
    )
    .await;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/events/gh%23e1/replay",
            json!({"subscription": "deploys"}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")));
    let (s, _) = f
        .call(Method::POST, "/admin/events/gh%23e9/replay", Value::Null)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn bulk_replay_and_redrive_skip_what_cannot_be_replayed() {
    let f = fixture().await;
    f.create_source().await;
    f.create_sub("deploys").await;
    {
        let mut records = f.log.records.lock().unwrap();
        records.push(record("a", DeliveryStatus::Failed, &["deploys"]));
        records.push(record("b", DeliveryStatus::Failed, &["gone"]));
        records.push(record("c", DeliveryStatus::Delivered, &["deploys"]));
    }
    let (s, v) = f
        .call(Method::POST, "/admin/replay", json!({"dry_run": true}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["replayed"].as_u64(),
            v["skipped"].as_array().unwrap().len()
        ),
        (Some(1), 1)
    );
    assert!(
        f.log.replays.lock().unwrap().is_empty(),
        "a dry run changes nothing"
    );
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/replay",
            json!({"status": "failed", "source": "gh", "since": "1h"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["replays"][0]["id"], "gh#a#replay-1");
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no longer exists")
    );

    f.log.dead.lock().unwrap().push(DeadLetterRecord {
        id: "7".into(),
        task: DeliveryTask {
            source: "gh".into(),
            event_id: "c".into(),
            subscription: "deploys".into(),
        },
        reason: "attempts exhausted: HTTP 503".into(),
        receive_count: 3,
        at_ms: now_ms(),
    });
    let (s, v) = f.call(Method::GET, "/admin/dlq", Value::Null).await;
    assert_eq!((s, v["dead_letters"][0]["id"].as_str()), (200, Some("7")));
    let (s, v) = f
        .call(Method::POST, "/admin/dlq/redrive", json!({"ids": ["7"]}))
        .await;
    assert_eq!((s, v["redriven"].as_u64()), (202, Some(1)), "{v}");
    assert!(f.log.dead.lock().unwrap().is_empty());
}

#[tokio::test]
async fn syncing_a_file_is_idempotent_and_keeps_api_entries() {
    let f = fixture().await;
    f.create_source().await;
    let file = ConfigFile::parse(
        r#"
        [[sources]]
        id = "filed"
        provider = "github"
        secrets = ["env:GH_SECRET"]
        "#,
    )
    .unwrap();
    let plan = sync::apply(f.config.as_ref(), &file, Origin::File)
        .await
        .unwrap();
    assert_eq!(
        plan.delete,
        vec![(Kind::Subscription, "filed-sub".to_owned())]
    );
    let again = sync::apply(f.config.as_ref(), &file, Origin::File)
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(again.unchanged, 1);
    assert!(
        f.config
            .get_config(Kind::Source, "gh")
            .await
            .unwrap()
            .is_some(),
        "API entries stay"
    );

    // The file takes over an API entry with the same id.
    let mut takes = file.clone();
    takes.sources.push(
        match f
            .config
            .get_config(Kind::Source, "gh")
            .await
            .unwrap()
            .unwrap()
            .item
        {
            ConfigItem::Source(s) => s,
            _ => unreachable!(),
        },
    );
    let plan = sync::apply(f.config.as_ref(), &takes, Origin::File)
        .await
        .unwrap();
    assert_eq!(plan.take_over, vec![(Kind::Source, "gh".to_owned())]);
    let gh = f
        .config
        .get_config(Kind::Source, "gh")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gh.origin, Origin::File);

    // A file that leaves an API subscription without its source is refused whole.
    f.create_sub("deploys").await;
    let before = f.config.list_config().await.unwrap();
    let err = sync::apply(f.config.as_ref(), &file, Origin::File)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("deploys"), "{err}");
    assert_eq!(f.config.list_config().await.unwrap(), before);
}

impl MemRegistry {
    fn now_sub(&self, id: &str) -> Arc<crate::config::Subscription> {
        self.current
            .read()
            .unwrap()
            .get_subscription(id)
            .unwrap()
            .clone()
    }
}

#[tokio::test]
async fn the_trusted_entry_skips_only_the_token_check() {
    // No token at all: HTTP callers get the disabled API, the in-process
    // caller gets the same routes, validation and errors.
    let f = fixture_with(None).await;
    let get = |path: &str| {
        Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Bytes::new())
            .unwrap()
    };
    let resp = handle(&f.admin, get("/admin/sources")).await;
    assert_eq!(resp.status(), 404);
    let resp = super::handle_trusted(&f.admin, get("/admin/sources")).await;
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["sources"][0]["id"], "filed");
    let resp = super::handle_trusted(&f.admin, get("/admin/nowhere")).await;
    assert_eq!(resp.status(), 404);
    let resp = super::handle_trusted(&f.admin, get("/admin/events?bogus=1")).await;
    assert_eq!(resp.status(), 422);
}

#[tokio::test]
async fn applying_a_file_shows_its_plan_then_writes_exactly_that() {
    let f = fixture().await;
    let file = ConfigFile::parse(
        r#"
        [[sources]]
        id = "filed"
        provider = "github"
        secrets = ["env:GH_NEXT"]

        [[sources]]
        id = "more"
        provider = "github"
        secrets = ["env:GH_SECRET"]
        "#,
    )
    .unwrap();
    let plan = f.admin.plan_file(&file).await.unwrap();
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.before.len(), 1);
    match (&plan.before[0], &plan.update[0]) {
        (ConfigItem::Source(old), ConfigItem::Source(new)) => {
            assert_eq!(old.secrets[0].to_string(), "env:GH_SECRET");
            assert_eq!(new.secrets[0].to_string(), "env:GH_NEXT");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        plan.delete,
        vec![(Kind::Subscription, "filed-sub".to_owned())]
    );
    // Planning wrote nothing.
    assert!(
        f.config
            .get_config(Kind::Source, "more")
            .await
            .unwrap()
            .is_none()
    );

    // A plan that no longer matches the store is refused, nothing written.
    let stale = super::sync::Plan::default();
    let err = f.admin.apply_file(&file, &stale).await.unwrap_err();
    assert_eq!(err.status(), 409, "{err}");
    assert!(
        f.config
            .get_config(Kind::Source, "more")
            .await
            .unwrap()
            .is_none()
    );

    let reloads = *f.registry.reloads.lock().unwrap();
    let applied = f.admin.apply_file(&file, &plan).await.unwrap();
    assert_eq!(applied, plan);
    assert_eq!(
        *f.registry.reloads.lock().unwrap(),
        reloads + 1,
        "made live"
    );
    assert!(
        f.config
            .get_config(Kind::Source, "more")
            .await
            .unwrap()
            .is_some()
    );
    let again = f.admin.plan_file(&file).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(again.unchanged, 2);

    // A secret that does not resolve is refused at planning time.
    let bad = ConfigFile::parse(
        r#"
        [[sources]]
        id = "filed"
        provider = "github"
        secrets = ["env:NOT_SET_ANYWHERE"]
        "#,
    )
    .unwrap();
    let err = f.admin.plan_file(&bad).await.unwrap_err();
    assert_eq!(err.status(), 422);
    assert!(err.to_string().contains("NOT_SET_ANYWHERE"), "{err}");
}

#[tokio::test]
async fn a_stored_secret_another_entry_uses_is_never_deleted() {
    let f = fixture().await;
    f.create_source().await;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources/gh/secrets",
            json!({"value": "shared-value"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let stored: String = serde_json::from_value(v["secrets"][1].clone()).unwrap();
    assert!(stored.starts_with("db:"), "{stored}");
    // Another source names the same stored secret.
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "other", "provider": "github", "secrets": [stored]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let name = stored.trim_start_matches("db:").to_owned();
    let path = format!("/admin/sources/gh/secrets/{stored}");
    let (s, v) = f.call(Method::DELETE, &path, Value::Null).await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("source \"other\""),
        "{v}"
    );
    assert!(f.secrets.stored.lock().unwrap().contains_key(&name));
    // Deleting the other source keeps it: gh still uses it.
    let (s, _) = f
        .call(Method::DELETE, "/admin/sources/other", Value::Null)
        .await;
    assert_eq!(s, 204);
    assert!(f.secrets.stored.lock().unwrap().contains_key(&name));
    // Used by nobody else, it is removed and deleted.
    let (s, v) = f.call(Method::DELETE, &path, Value::Null).await;
    assert_eq!(s, 200, "{v}");
    assert!(!f.secrets.stored.lock().unwrap().contains_key(&name));
}

/// Meta's verify token: a value is kept in the secret store and shown as
/// its reference only; it is refused for other providers; replacing or
/// clearing it deletes the stored value; the served source answers the
/// GET `hub.challenge` with it.
#[tokio::test]
async fn a_verify_token_is_stored_like_a_secret_and_only_meta_takes_it() {
    let f = fixture().await;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "fb", "provider": "meta", "secrets": ["env:GH_SECRET"], "verify_token": {"value": "typed-in-meta"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let stored = v["verify_token"].as_str().unwrap().to_owned();
    assert!(stored.starts_with("db:"), "{v}");
    assert!(!v.to_string().contains("typed-in-meta"), "{v}");
    let name = stored.trim_start_matches("db:").to_owned();
    assert!(f.secrets.stored.lock().unwrap().contains_key(&name));
    let source = f.registry.source("fb").await.unwrap().unwrap();
    let query = "hub.mode=subscribe&hub.verify_token=typed-in-meta&hub.challenge=7";
    let answer = crate::pipeline::challenge::answer_challenge(
        &source,
        &Method::GET,
        &http::HeaderMap::new(),
        Some(query),
        std::time::SystemTime::now(),
    )
    .unwrap();
    assert_eq!(answer.body, "7");

    for body in [
        json!({"id": "gh2", "provider": "github", "secrets": ["env:GH_SECRET"], "verify_token": "env:GH_NEXT"}),
        json!({"id": "gh3", "provider": "github", "secrets": ["env:GH_SECRET"], "verify_token": {"value": "x"}}),
        json!({"id": "fb2", "provider": "meta", "secrets": ["env:GH_SECRET"], "verify_token": "env:NOT_SET"}),
    ] {
        let (s, v) = f.call(Method::POST, "/admin/sources", body.clone()).await;
        assert_eq!(
            (s, v["field"].as_str()),
            (422, Some("verify_token")),
            "{body}: {v}"
        );
    }
    // Switching the provider away from meta with the token left is refused.
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/sources/fb",
            json!({"provider": "github"}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("verify_token")), "{v}");

    // A reference replaces the stored value, which is deleted.
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/sources/fb",
            json!({"verify_token": "env:GH_NEXT"}),
        )
        .await;
    assert_eq!(
        (s, v["verify_token"].as_str()),
        (200, Some("env:GH_NEXT")),
        "{v}"
    );
    assert!(!f.secrets.stored.lock().unwrap().contains_key(&name));
    // Cleared: the handshake is refused, and the source still verifies.
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/sources/fb",
            json!({"verify_token": null}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("verify_token").is_none(), "{v}");
    let source = f.registry.source("fb").await.unwrap().unwrap();
    assert!(source.verify_token.is_none());
}

#[tokio::test]
async fn allow_local_and_the_body_bound_follow_the_deployment_policy() {
    let body = |id: &str| json!({"id": id, "source": "gh", "url": "http://127.0.0.1:9/in", "events": ["*"], "allow_local": true});
    let off = fixture_under(Some(TOKEN), Policy::aws(false)).await;
    off.create_source().await;
    let (s, v) = off
        .call(Method::POST, "/admin/subscriptions", body("local"))
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("allow_local")), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("SLUICE_ALLOW_LOCAL_DESTINATIONS"),
        "{v}"
    );
    // Nor can an existing subscription be switched to it.
    off.create_sub("remote").await;
    let (s, v) = off
        .call(
            Method::PATCH,
            "/admin/subscriptions/remote",
            json!({"allow_local": true}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("allow_local")), "{v}");
    // A body bound above what DynamoDB can store is refused, by name.
    let (s, v) = off
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "big", "provider": "github", "secrets": ["env:GH_SECRET"],
                   "max_body_bytes": crate::config::AWS_MAX_BODY_BYTES + 1}),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (422, Some("max_body_bytes")),
        "{v}"
    );

    let on = fixture_under(Some(TOKEN), Policy::aws(true)).await;
    on.create_source().await;
    let (s, v) = on
        .call(Method::POST, "/admin/subscriptions", body("local"))
        .await;
    assert_eq!(s, 201, "{v}");
    let embedded = fixture().await;
    embedded.create_source().await;
    let (s, v) = embedded
        .call(Method::POST, "/admin/subscriptions", body("local"))
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test]
async fn a_5xx_names_no_internals_and_carries_the_request_id() {
    let e = super::AdminError::Unavailable(crate::error::Unavailable::new(
        "Scan (config): ResourceNotFoundException: arn:aws:dynamodb:us-east-1:123456789012:table/cfg",
    ));
    let resp = super::api::error_response_with_id(&e, "req-9");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()[crate::error::REQUEST_ID_HEADER], "req-9");
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        (body["error"].as_str(), body["request_id"].as_str()),
        (Some("unavailable"), Some("req-9"))
    );
    for leak in ["Scan", "arn:", "123456789012", "ResourceNotFound", "cfg"] {
        assert!(!body.to_string().contains(leak), "{body}");
    }
    // The CLI (the operator, in this process) is told why.
    let resp = super::api::detailed_error_response(&e, "req-9");
    assert_eq!(resp.status(), 503);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("ResourceNotFoundException"),
        "{body}"
    );
    assert_eq!(body["request_id"], "req-9");
    // Through the route table, the id given by the adapter is used.
    let f = fixture().await;
    let mut req = Request::builder()
        .method(Method::GET)
        .uri("/admin/nothing-here")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Bytes::new())
        .unwrap();
    req.extensions_mut()
        .insert(super::api::RequestId("apigw-1".into()));
    let resp = handle(&f.admin, req).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()[crate::error::REQUEST_ID_HEADER], "apigw-1");
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["request_id"], "apigw-1");
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_captured_request_is_verified_offline_and_a_failure_says_why() {
    let f = fixture().await;
    f.create_source().await;
    let body = r#"{"ref":"refs/heads/main"}"#;
    let tag = hmac_hex("gh-secret", &[body.as_bytes()]);
    let headers = |sig: &str| {
        json!([
            ["X-Hub-Signature-256", format!("sha256={sig}")],
            ["X-GitHub-Event", "push"],
            ["X-GitHub-Delivery", "d-1"]
        ])
    };
    let verify = |req: Value| f.call(Method::POST, "/admin/sources/gh/verify", req);

    let (s, v) = verify(json!({"headers": headers(&tag), "body": body})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"verified": true, "event_id": "d-1", "event_type": "push", "handshake": false})
    );
    // The same bytes, base64-encoded, verify the same way.
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, body);
    let (_, v) =
        verify(json!({"headers": headers(&tag), "body": b64, "body_encoding": "base64"})).await;
    assert_eq!(v["verified"], true, "{v}");

    // Tampered: no secret matched. Nothing says what would have.
    let (s, v) = verify(json!({"headers": headers(&tag), "body": "{}"})).await;
    assert_eq!(
        (s, &v["verified"], &v["error"]),
        (200, &json!(false), &json!("invalid_signature")),
        "{v}"
    );
    let text = v.to_string();
    assert!(
        !text.contains("gh-secret") && !text.contains(&hmac_hex("gh-secret", &[b"{}"])),
        "{text}"
    );
    // A missing header is named.
    let (_, v) = verify(json!({"headers": [["X-GitHub-Event", "push"]], "body": body})).await;
    assert_eq!(v["error"], "missing_signature", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("x-hub-signature-256"),
        "{v}"
    );

    // Bad input names the field; an unknown source is a 404.
    let (s, v) = verify(json!({"headers": [["bad name", "x"]], "body": body})).await;
    assert_eq!((s, v["field"].as_str()), (422, Some("headers[0]")), "{v}");
    let (s, v) =
        verify(json!({"headers": headers(&tag), "body": "%%", "body_encoding": "base64"})).await;
    assert_eq!((s, v["field"].as_str()), (422, Some("body")), "{v}");
    let (s, v) = verify(json!({"headers": headers(&tag), "at": "yesterday-ish"})).await;
    assert_eq!((s, v["field"].as_str()), (422, Some("at")), "{v}");
    let (s, _) = f
        .call(
            Method::POST,
            "/admin/sources/nope/verify",
            json!({"headers": []}),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_replay_window_is_checked_at_the_time_given() {
    let f = fixture().await;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "sl", "provider": "slack", "secrets": ["env:GH_SECRET"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let body = "token=x&command=%2Fdeploy";
    let ts = (now_ms() / 1000 - 3600).to_string();
    let sig = hmac_hex("gh-secret", &[b"v0:", ts.as_bytes(), b":", body.as_bytes()]);
    let req = |at: Option<String>| {
        let mut r = json!({
            "headers": [["X-Slack-Request-Timestamp", ts.clone()], ["X-Slack-Signature", format!("v0={sig}")]],
            "body": body,
        });
        if let Some(at) = at {
            r["at"] = json!(at);
        }
        r
    };
    // Received an hour ago: outside the window now, inside it then.
    let (_, v) = f
        .call(Method::POST, "/admin/sources/sl/verify", req(None))
        .await;
    assert_eq!(v["error"], "timestamp_out_of_window", "{v}");
    let (_, v) = f
        .call(
            Method::POST,
            "/admin/sources/sl/verify",
            req(Some("1h".into())),
        )
        .await;
    assert_eq!(v["verified"], true, "{v}");
}

const POLLER_URL: &str = "https://api.example.com/v1/items";

impl Fixture {
    async fn create_poller(&self, id: &str) -> Value {
        let (s, v) = self
            .call(
                Method::POST,
                "/admin/pollers",
                json!({"id": id, "url": POLLER_URL, "item_id": "/id", "interval": "30s",
                       "headers": {"Authorization": "env:GH_SECRET", "Accept": "application/json"}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }
}

#[tokio::test]
async fn pollers_are_created_listed_read_patched_disabled_and_deleted() {
    let f = fixture().await;
    let v = f.create_poller("items").await;
    assert_eq!(v["id"], "items");
    assert_eq!(v["url"], POLLER_URL);
    assert_eq!(v["interval"], "30s");
    assert_eq!(v["format"], "json");
    assert_eq!(v["origin"], "api");
    assert_eq!(v["enabled"], true);
    assert_eq!(
        v["headers"],
        json!({"Accept": "application/json", "Authorization": "env:GH_SECRET"}),
        "a secret header is shown as its reference"
    );
    assert!(!v.to_string().contains("gh-secret"), "never its value: {v}");
    assert!(v.get("state").is_some_and(Value::is_null), "{v}");
    let stored = f
        .config
        .get_config(Kind::Poller, "items")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(&stored.item, ConfigItem::Poller(p) if p.item_id.as_deref() == Some("/id")));

    let (s, v) = f.call(Method::GET, "/admin/pollers", Value::Null).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["pollers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["items"]);
    let (_, v) = f.call(Method::GET, "/admin/sources", Value::Null).await;
    assert!(
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != "items"),
        "a poller is not a source: {v}"
    );
    assert!(
        f.registry.source("items").await.unwrap().is_none(),
        "nor served as one"
    );

    // A merge patch: absent fields unchanged, null resets.
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/pollers/items",
            json!({"interval": "2m", "headers": null, "type": "/kind"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["interval"].as_str(), v["type"].as_str()),
        (Some("2m"), Some("/kind"))
    );
    assert!(v.get("headers").is_none(), "{v}");
    assert_eq!(v["item_id"], "/id", "unchanged");
    // Objects merge member by member (RFC 7396).
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/pollers/items",
            json!({"headers": {"Accept": "application/json", "X-Api-Key": "env:GH_NEXT"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/pollers/items",
            json!({"headers": {"Accept": null}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["headers"], json!({"X-Api-Key": "env:GH_NEXT"}));
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/pollers/items",
            json!({"headers": {"Cookie": "session=1"}}),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (422, Some("headers.Cookie")),
        "{v}"
    );
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/pollers/items",
            json!({"id": "other"}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("id")));
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/pollers/items",
            json!({"max_pages": 0}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("max_pages")), "{v}");

    let (s, v) = f
        .call(Method::POST, "/admin/pollers/items/disable", Value::Null)
        .await;
    assert_eq!((s, &v["enabled"]), (200, &json!(false)));
    let (s, v) = f
        .call(Method::GET, "/admin/pollers/items", Value::Null)
        .await;
    assert_eq!((s, &v["enabled"]), (200, &json!(false)));
    let (s, v) = f
        .call(Method::POST, "/admin/pollers/items/enable", Value::Null)
        .await;
    assert_eq!((s, &v["enabled"]), (200, &json!(true)));

    let (s, _) = f
        .call(Method::DELETE, "/admin/pollers/items", Value::Null)
        .await;
    assert_eq!(s, 204);
    let (s, _) = f
        .call(Method::GET, "/admin/pollers/items", Value::Null)
        .await;
    assert_eq!(s, 404);
    let (s, _) = f
        .call(Method::DELETE, "/admin/pollers/items", Value::Null)
        .await;
    assert_eq!(s, 404);
    let (s, _) = f
        .call(Method::POST, "/admin/pollers/ghost/enable", Value::Null)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_bad_poller_is_422_naming_the_field() {
    let f = fixture().await;
    let cases = [
        (json!({"id": "p", "url": POLLER_URL}), "item_id"),
        (
            json!({"id": "p", "url": POLLER_URL, "item_id": "/id", "interval": "5s"}),
            "interval",
        ),
        (
            json!({"id": "p", "url": "ftp://example.com/x", "item_id": "/id"}),
            "url",
        ),
        (
            json!({"id": "p", "url": "http://example.com/x", "item_id": "/id"}),
            "url",
        ),
        (
            json!({"id": "p", "url": POLLER_URL, "item_id": "/id",
                   "headers": {"Authorization": "Bearer abc"}}),
            "headers.Authorization",
        ),
        (
            json!({"id": "p", "url": POLLER_URL, "item_id": "/id",
                   "headers": {"X-Api-Key": "env:NOT_SET"}}),
            "headers",
        ),
        (
            json!({"id": "bad id", "url": POLLER_URL, "item_id": "/id"}),
            "id",
        ),
        (json!({"id": "p", "item_id": "/id"}), "url"),
        (
            json!({"id": "p", "url": POLLER_URL, "item_id": "/id", "format": "xml"}),
            "format",
        ),
        (
            json!({"id": "p", "url": POLLER_URL, "item_id": "/id", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = f.call(Method::POST, "/admin/pollers", body.clone()).await;
        assert_eq!((s, v["field"].as_str()), (422, Some(field)), "{body}: {v}");
        assert!(!v.to_string().contains("Bearer abc"), "{v}");
    }
    assert!(
        f.config
            .get_config(Kind::Poller, "p")
            .await
            .unwrap()
            .is_none(),
        "nothing was written"
    );
}

#[tokio::test]
async fn pollers_and_sources_share_one_namespace_and_subscriptions_take_either() {
    let f = fixture().await;
    f.create_source().await;
    // A poller with a source's id, and a source with a poller's.
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/pollers",
            json!({"id": "gh", "url": POLLER_URL, "item_id": "/id"}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (409, Some("already_exists")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("source"), "{v}");
    f.create_poller("items").await;
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/sources",
            json!({"id": "items", "provider": "github", "secrets": ["env:GH_SECRET"]}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (409, Some("already_exists")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("poller"), "{v}");
    let (s, _) = f
        .call(
            Method::POST,
            "/admin/pollers",
            json!({"id": "items", "url": POLLER_URL, "item_id": "/id"}),
        )
        .await;
    assert_eq!(s, 409);

    // A subscription names the poller as its source.
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions",
            json!({"id": "on-items", "source": "items", "url": "https://example.com/in", "events": ["*"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(f.registry.now_sub("on-items").source, "items");
    let (s, v) = f
        .call(Method::DELETE, "/admin/pollers/items", Value::Null)
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("on-items"), "{v}");
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/pollers/items",
            json!({"dedupe_window": "1s"}),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (422, Some("config")),
        "its subscriptions' retries must fit its retention: {v}"
    );
    let (s, _) = f
        .call(Method::DELETE, "/admin/subscriptions/on-items", Value::Null)
        .await;
    assert_eq!(s, 204);
    let (s, _) = f
        .call(Method::DELETE, "/admin/pollers/items", Value::Null)
        .await;
    assert_eq!(s, 204);
    let (s, v) = f
        .call(
            Method::POST,
            "/admin/subscriptions",
            json!({"source": "items", "url": "https://example.com/in", "events": ["*"]}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("source")), "{v}");
}

#[tokio::test]
async fn file_pollers_sync_idempotently_and_are_read_only() {
    let f = fixture().await;
    let file = ConfigFile::parse(
        r#"
        [[sources]]
        id = "filed"
        provider = "github"
        secrets = ["env:GH_SECRET"]

        [[pollers]]
        id = "feed"
        url = "https://example.com/feed.xml"
        format = "feed"
        interval = "5m"

        [[subscriptions]]
        id = "filed-sub"
        source = "feed"
        events = ["*"]
        url = "https://example.com/filed"
        "#,
    )
    .unwrap();
    let plan = sync::apply(f.config.as_ref(), &file, Origin::File)
        .await
        .unwrap();
    assert_eq!(
        plan.create.iter().map(ConfigItem::kind).collect::<Vec<_>>(),
        [Kind::Poller]
    );
    assert_eq!(plan.update.len(), 1, "filed-sub moves to the poller");
    let again = sync::apply(f.config.as_ref(), &file, Origin::File)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(again.unchanged, 3);

    let (s, v) = f
        .call(Method::GET, "/admin/pollers/feed", Value::Null)
        .await;
    assert_eq!((s, v["origin"].as_str()), (200, Some("file")), "{v}");
    let (s, v) = f
        .call(
            Method::PATCH,
            "/admin/pollers/feed",
            json!({"interval": "1m"}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("read_only")), "{v}");
    let (s, _) = f
        .call(Method::DELETE, "/admin/pollers/feed", Value::Null)
        .await;
    assert_eq!(s, 409);
    let (s, _) = f
        .call(Method::POST, "/admin/pollers/feed/disable", Value::Null)
        .await;
    assert_eq!(s, 200, "file entries can be disabled");

    // A plan (sluice apply) resolves the pollers' header secrets too.
    let mut unresolved = file.clone();
    unresolved.pollers[0].headers.insert(
        "Authorization".into(),
        crate::poll::config::HeaderSetting::Secret("env:NOT_SET".parse().unwrap()),
    );
    let err = f.admin.plan_file(&unresolved).await.unwrap_err();
    assert!(err.to_string().contains("NOT_SET"), "{err}");
    assert!(f.admin.plan_file(&file).await.unwrap().is_empty());

    // Dropping the poller but keeping its subscription is refused whole.
    let mut dropped = file.clone();
    dropped.pollers.clear();
    let before = f.config.list_config().await.unwrap();
    let err = sync::apply(f.config.as_ref(), &dropped, Origin::File)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("feed"), "{err}");
    assert_eq!(f.config.list_config().await.unwrap(), before);
}
