//! The OpenAPI 3.1 document of the admin API, written by hand (no proc
//! macros in the Lambda builds). A test checks that it lists exactly the
//! routes of [`super::ROUTES`], and `shared/tests/openapi_valid.rs` that
//! an OpenAPI validator accepts it.

use serde_json::{Value, json};

fn error_ref() -> Value {
    json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn body(schema: &str, required: bool) -> Value {
    json!({
        "required": required,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn errors(codes: &[&str]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for c in codes {
        let description = match *c {
            "400" => "Malformed JSON or request",
            "401" => "Missing or wrong bearer token (sluice serve), or no IAM identity (AWS)",
            "404" => "No such entry, or the admin API is disabled",
            "409" => "Conflicts with the current state (exists, read-only, in use, disabled)",
            "422" => "A value is invalid; `field` names it",
            _ => "Error",
        };
        let mut e = error_ref();
        e["description"] = json!(description);
        m.insert((*c).to_owned(), e);
    }
    m.insert("503".into(), {
        let mut e = error_ref();
        e["description"] = json!("The store is unavailable; retry");
        e
    });
    m
}

fn op(
    summary: &str,
    id: &str,
    params: &[&str],
    responses: Vec<(&str, Value)>,
    errs: &[&str],
) -> Value {
    let mut r = errors(&["401"]);
    for e in errs {
        r.extend(errors(&[e]));
    }
    for (code, v) in responses {
        r.insert(code.to_owned(), v);
    }
    json!({
        "summary": summary,
        "operationId": id,
        "parameters": params.iter().map(|p| json!({ "$ref": format!("#/components/parameters/{p}") })).collect::<Vec<_>>(),
        "responses": r,
    })
}

fn with_body(mut v: Value, schema: &str, required: bool) -> Value {
    v["requestBody"] = body(schema, required);
    let mut timeout = error_ref();
    timeout["description"] =
        json!("The body did not arrive whole within the body timeout (sluice serve)");
    v["responses"]["408"] = timeout;
    v
}

fn no_content() -> Value {
    json!({ "description": "Deleted" })
}

/// The document served at `/admin/openapi.json`.
pub fn document() -> Value {
    let source = || ok("The source", "Source");
    let sub = || ok("The subscription", "Subscription");
    let poller = || ok("The poller", "Poller");
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sluice admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sources, pollers and subscriptions, the event log with its delivery attempts, replays and the dead-letter queue. Authentication depends on where it runs. `sluice serve`: every route needs `Authorization: Bearer <token>` (the `[admin] token` of the config). AWS: the admin routes sit behind API Gateway's IAM authorizer; sign each request with SigV4 (service `execute-api`) as a principal allowed `execute-api:Invoke` on them, and API Gateway refuses unsigned or badly signed requests (403) before they reach the function. Errors are `{\"error\", \"message\"}`, plus `field` for a 422. Entries defined in the config file are read-only here (409 `read_only`), except enable/disable."
        },
        "security": [{ "bearer": [] }, { "sigv4": [] }],
        "paths": {
            "/admin/openapi.json": {
                "get": op("This document", "openapi", &[], vec![("200", json!({ "description": "OpenAPI 3.1 document", "content": { "application/json": {} } }))], &[])
            },
            "/admin/sources": {
                "get": op("List sources", "listSources", &[], vec![("200", ok("Every source", "SourceList"))], &[]),
                "post": with_body(op("Create a source", "createSource", &[], vec![("201", source())], &["400", "409", "422"]), "SourceCreate", true)
            },
            "/admin/sources/{id}": {
                "get": op("Get a source", "getSource", &["id"], vec![("200", source())], &["404"]),
                "patch": with_body(op("Update a source (absent fields unchanged, null resets)", "updateSource", &["id"], vec![("200", source())], &["400", "404", "409", "422"]), "SourcePatch", true),
                "delete": op("Delete a source without subscriptions", "deleteSource", &["id"], vec![("204", no_content())], &["404", "409"])
            },
            "/admin/sources/{id}/enable": {
                "post": op("Serve the source again", "enableSource", &["id"], vec![("200", source())], &["404"])
            },
            "/admin/sources/{id}/disable": {
                "post": op("Stop serving the source (its webhooks answer 404)", "disableSource", &["id"], vec![("200", source())], &["404"])
            },
            "/admin/sources/{id}/secrets": {
                "post": with_body(op("Add a verification secret (rotation, step one: both verify)", "addSourceSecret", &["id"], vec![("201", source())], &["400", "404", "409", "422"]), "SecretAdd", true)
            },
            "/admin/sources/{id}/secrets/{ref}": {
                "delete": op("Remove a verification secret (rotation, step two)", "removeSourceSecret", &["id", "ref"], vec![("200", source())], &["404", "409", "422"])
            },
            "/admin/sources/{id}/verify": {
                "post": with_body(op("Whether a captured request verifies against the source, and if not why (nothing is committed)", "verifySource", &["id"], vec![("200", ok("The verdict", "VerifyResult"))], &["400", "404", "409", "422"]), "VerifyRequest", true)
            },
            "/admin/subscriptions": {
                "get": op("List subscriptions", "listSubscriptions", &["sourceFilter"], vec![("200", ok("Subscriptions", "SubscriptionList"))], &["422"]),
                "post": with_body(op("Create a subscription; its signing secret is shown once", "createSubscription", &[], vec![("201", ok("The subscription and its new signing secret", "SubscriptionWithSecret"))], &["400", "409", "422"]), "SubscriptionCreate", true)
            },
            "/admin/subscriptions/{id}": {
                "get": op("Get a subscription", "getSubscription", &["id"], vec![("200", sub())], &["404"]),
                "patch": with_body(op("Update a subscription", "updateSubscription", &["id"], vec![("200", sub())], &["400", "404", "409", "422"]), "SubscriptionPatch", true),
                "delete": op("Delete a subscription", "deleteSubscription", &["id"], vec![("204", no_content())], &["404", "409"])
            },
            "/admin/subscriptions/{id}/enable": {
                "post": op("Deliver to the subscription again", "enableSubscription", &["id"], vec![("200", sub())], &["404"])
            },
            "/admin/subscriptions/{id}/disable": {
                "post": op("Stop delivering to the subscription", "disableSubscription", &["id"], vec![("200", sub())], &["404"])
            },
            "/admin/subscriptions/{id}/rotate-secret": {
                "post": with_body(op("New signing secret, shown once; the old one also signs during the overlap", "rotateSubscriptionSecret", &["id"], vec![("200", ok("The subscription and its new signing secret", "SubscriptionWithSecret"))], &["400", "404", "409", "422"]), "Rotate", false)
            },
            "/admin/pollers": {
                "get": op("List pollers", "listPollers", &[], vec![("200", ok("Every poller", "PollerList"))], &[]),
                "post": with_body(op("Create a poller (an app without webhooks, polled; its id is a source id)", "createPoller", &[], vec![("201", poller())], &["400", "409", "422"]), "PollerConfig", true)
            },
            "/admin/pollers/{id}": {
                "get": op("Get a poller", "getPoller", &["id"], vec![("200", poller())], &["404"]),
                "patch": with_body(op("Update a poller (a merge patch: absent fields unchanged, null resets)", "updatePoller", &["id"], vec![("200", poller())], &["400", "404", "409", "422"]), "PollerPatch", true),
                "delete": op("Delete a poller without subscriptions", "deletePoller", &["id"], vec![("204", no_content())], &["404", "409"])
            },
            "/admin/pollers/{id}/enable": {
                "post": op("Poll again", "enablePoller", &["id"], vec![("200", poller())], &["404"])
            },
            "/admin/pollers/{id}/disable": {
                "post": op("Stop polling", "disablePoller", &["id"], vec![("200", poller())], &["404"])
            },
            "/admin/pollers/{id}/run": {
                "post": with_body(op("Poll now, due or not (a dry run commits and stores nothing, and may test a disabled poller). 200 also when the app failed: the report says how", "runPoller", &["id"], vec![("200", ok("What the poll did", "PollReport"))], &["400", "404", "409", "422"]), "PollRunRequest", false)
            },
            "/admin/events": {
                "get": op("List events, newest first", "listEvents", &["sourceFilter", "type", "status", "since", "until", "limit", "cursor"], vec![("200", ok("A page of events", "EventPage"))], &["422"])
            },
            "/admin/events/{id}": {
                "get": op("An event with its headers, body and delivery log", "getEvent", &["eventId"], vec![("200", ok("The event", "EventDetail"))], &["404"])
            },
            "/admin/events/{id}/replay": {
                "post": with_body(op("Replay an event to one subscription or to all that take it", "replayEvent", &["eventId"], vec![("202", ok("The replay, queued", "Replay"))], &["400", "404", "409", "422"]), "ReplayRequest", false)
            },
            "/admin/replay": {
                "post": with_body(op("Bulk replay by status, source, subscription and time; repeatable (deliveries already replayed are left out)", "bulkReplay", &[], vec![("202", ok("Replays queued", "BulkResult")), ("200", ok("Dry run: what would be replayed", "BulkResult"))], &["400", "422"]), "BulkReplayRequest", false)
            },
            "/admin/dlq": {
                "get": op("List dead letters, oldest first", "listDeadLetters", &["sourceFilter", "subscriptionFilter", "limit", "cursor"], vec![("200", ok("A page of dead letters", "DeadLetterPage"))], &["422"])
            },
            "/admin/dlq/redrive": {
                "post": with_body(op("Replay dead letters (each leaves the DLQ once replayed)", "redriveDeadLetters", &[], vec![("202", ok("Replays queued", "BulkResult")), ("200", ok("Dry run", "BulkResult"))], &["400", "422"]), "RedriveRequest", false)
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "sluice serve: the `[admin] token` of the config" },
                // OpenAPI has no SigV4 type; this is how API Gateway's own
                // exports describe its IAM authorizer.
                "sigv4": { "type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4", "description": "AWS: a SigV4 signature for execute-api" }
            },
            "parameters": {
                "id": { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                "ref": { "name": "ref", "in": "path", "required": true, "description": "A secret reference (env:NAME, ssm:/path, db:NAME), percent-encoded", "schema": { "type": "string" } },
                "eventId": { "name": "id", "in": "path", "required": true, "description": "`{source}#{event id}`, with `#` written `%23`", "schema": { "type": "string" } },
                "sourceFilter": { "name": "source", "in": "query", "schema": { "type": "string" } },
                "subscriptionFilter": { "name": "subscription", "in": "query", "schema": { "type": "string" } },
                "type": { "name": "type", "in": "query", "description": "Event-type glob (`pull_request.*`)", "schema": { "type": "string" } },
                "status": { "name": "status", "in": "query", "schema": { "$ref": "#/components/schemas/EventStatus" } },
                "since": { "name": "since", "in": "query", "description": "RFC 3339 time, or a duration ago (`24h`)", "schema": { "type": "string" } },
                "until": { "name": "until", "in": "query", "description": "RFC 3339 time, or a duration ago; exclusive", "schema": { "type": "string" } },
                "limit": { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500, "default": 50 } },
                "cursor": { "name": "cursor", "in": "query", "description": "`next_cursor` of the previous page", "schema": { "type": "string" } }
            },
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let opt_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let duration = json!({ "type": "string", "description": "A duration: 5s, 30m, 2h, 7d" });
    let mut m = serde_json::Map::new();
    m.insert("Error".into(), json!({
            "type": "object", "required": ["error", "message", "request_id"],
            "properties": {
                "error": { "type": "string", "examples": ["invalid_field", "unauthorized", "not_found", "read_only", "conflict", "unavailable"] },
                "message": { "type": "string", "description": "What was wrong with the request; a fixed text for a 5xx, whose detail is logged under request_id" },
                "field": { "type": "string", "description": "The field at fault (422)" },
                "request_id": { "type": "string", "description": "Also in the x-request-id header; the log line of a 5xx carries it" }
            }
        }));
    m.insert("Meta".into(), json!({
            "type": "object",
            "properties": {
                "enabled": { "type": "boolean" },
                "origin": { "enum": ["file", "api"], "description": "file: defined in the config file (read-only here)" },
                "created_at": time, "updated_at": time
            }
        }));
    m.insert("SecretInput".into(), json!({
            "description": "A reference (env:NAME, ssm:/path) or a value the gateway keeps",
            "oneOf": [
                { "type": "string", "examples": ["env:GITHUB_SECRET"] },
                { "type": "object", "required": ["value"], "properties": { "value": { "type": "string" } }, "additionalProperties": false }
            ]
        }));
    m.insert(
        "SecretAdd".into(),
        json!({
            "type": "object", "additionalProperties": false,
            "description": "Exactly one of value and ref",
            "properties": { "value": { "type": "string" }, "ref": { "type": "string" } }
        }),
    );
    m.insert("VerifyRequest".into(), json!({
            "type": "object", "required": ["headers"], "additionalProperties": false,
            "properties": {
                "headers": { "type": "array", "items": { "type": "array", "items": { "type": "string" }, "minItems": 2, "maxItems": 2 }, "description": "[name, value] pairs, as the request carried them" },
                "body": { "type": "string", "default": "" },
                "body_encoding": { "enum": ["utf8", "base64"], "default": "utf8" },
                "at": { "type": "string", "description": "When the request was received (RFC 3339, or a duration ago), for the replay window; now when absent" },
                "url": { "type": "string", "description": "The URL the request was sent to, query included, for providers that sign it; the source's public_url replaces its scheme, host and path" }
            }
        }));
    m.insert("VerifyResult".into(), json!({
            "type": "object", "required": ["verified"],
            "properties": {
                "verified": { "type": "boolean" },
                "event_id": { "type": "string", "description": "When verified: the id the event would have" },
                "event_type": { "type": "string" },
                "handshake": { "type": "boolean", "description": "When verified: a provider handshake, answered without an event" },
                "error": { "type": "string", "description": "When not: the code a webhook would get (missing_signature, invalid_signature, timestamp_out_of_window, …)" },
                "reason": { "type": "string", "description": "When not: why, naming the header at fault; never a secret or an expected signature" }
            }
        }));
    let providers: Vec<&str> = crate::verify::Provider::ALL
        .iter()
        .map(|p| p.as_str())
        .chain(["svix"])
        .collect();
    m.insert("Provider".into(), json!({ "enum": providers }));
    m.insert("SourceCreate".into(), json!({
            "type": "object", "required": ["id", "provider", "secrets"], "additionalProperties": false,
            "properties": {
                "id": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$" },
                "provider": { "$ref": "#/components/schemas/Provider" },
                "secrets": { "type": "array", "minItems": 1, "items": { "$ref": "#/components/schemas/SecretInput" } },
                "tolerance_secs": { "type": ["integer", "null"] },
                "dedupe_window": { "type": ["string", "null"], "description": "Also the event log's retention" },
                "max_body_bytes": { "type": ["integer", "null"], "minimum": 1 },
                "hmac": { "type": ["object", "null"], "description": "Settings of the generic hmac provider" },
                "public_url": { "type": ["string", "null"], "format": "uri", "description": "The URL given to the provider (no query), for providers that sign it: twilio, square, hubspot, trello" }
            }
        }));
    m.insert("SourcePatch".into(), json!({
            "type": "object", "additionalProperties": false,
            "properties": {
                "provider": { "$ref": "#/components/schemas/Provider" },
                "secrets": { "type": "array", "items": { "$ref": "#/components/schemas/SecretInput" } },
                "tolerance_secs": { "type": ["integer", "null"] },
                "dedupe_window": { "type": ["string", "null"] },
                "max_body_bytes": { "type": ["integer", "null"] },
                "hmac": { "type": ["object", "null"] },
                "public_url": { "type": ["string", "null"], "format": "uri", "description": "The URL given to the provider (no query), for providers that sign it: twilio, square, hubspot, trello" }
            }
        }));
    m.insert("Source".into(), json!({
            "allOf": [{ "$ref": "#/components/schemas/Meta" }, {
                "type": "object",
                "properties": {
                    "id": { "type": "string" },
                    "provider": { "$ref": "#/components/schemas/Provider" },
                    "secrets": { "type": "array", "items": { "type": "string" }, "description": "References only, never values" },
                    "tolerance_secs": { "type": ["integer", "null"] },
                    "dedupe_window": { "type": ["string", "null"] },
                    "max_body_bytes": { "type": ["integer", "null"] },
                    "hmac": { "type": ["object", "null"] },
                    "public_url": { "type": "string", "format": "uri" },
                    "path": { "type": "string", "examples": ["/hooks/github"] }
                }
            }]
        }));
    m.insert("SourceList".into(), json!({ "type": "object", "properties": { "sources": { "type": "array", "items": { "$ref": "#/components/schemas/Source" } } } }));
    m.insert("Format".into(), json!({ "enum": ["raw", "slack", "discord", "teams", "teams_messagecard"], "description": "Payload shape for the destination (chat formats render a message)" }));
    m.insert("SubscriptionCreate".into(), json!({
            "type": "object", "required": ["source", "url", "events"], "additionalProperties": false,
            "properties": {
                "id": { "type": "string", "description": "Generated (sub_…) if absent", "pattern": "^[A-Za-z0-9_.-]{1,64}$" },
                "source": { "type": "string" },
                "url": { "type": "string", "format": "uri", "description": "https, unless allow_local" },
                "events": { "type": "array", "minItems": 1, "items": { "type": "string" }, "examples": [["push", "pull_request.*"]] },
                "format": { "$ref": "#/components/schemas/Format" },
                "template": { "type": ["string", "null"], "description": "Chat formats: the message text, a minijinja template" },
                "payload_template": { "type": ["string", "null"], "description": "The whole JSON body, a minijinja template" },
                "filter": { "type": ["string", "null"], "description": "A minijinja expression over payload, headers and event (type, source, id); only events it is true for are delivered", "examples": ["payload.action == \"opened\" and not payload.pull_request.draft"] },
                "retry_schedule": { "type": ["array", "null"], "items": duration },
                "allow_local": { "type": "boolean", "default": false },
                "rate_limit": { "$ref": "#/components/schemas/RateLimit" },
                "max_in_flight": { "type": ["integer", "null"], "minimum": 1, "description": "At most this many requests out at once" },
                "circuit_breaker": { "$ref": "#/components/schemas/CircuitBreaker" }
            }
        }));
    m.insert("RateLimit".into(), json!({
        "type": ["string", "null"], "pattern": "^\\s*[0-9]+\\s*/\\s*[smh]\\s*$|^unlimited$",
        "description": "At most this many requests per second, minute or hour, evenly spaced (at most 1000/s). Chat formats default to their platform's limit; \"unlimited\" turns that off",
        "examples": ["20/s", "90/m", "unlimited"]
    }));
    m.insert("CircuitBreaker".into(), json!({
        "type": ["object", "null"], "additionalProperties": false,
        "description": "After `failures` attempts in a row fail, the destination's tasks are held and one probe at a time tests it, first after `probe_after`, then at doubling waits (at most 15 min)",
        "properties": {
            "failures": { "type": "integer", "minimum": 0, "default": 10, "description": "Failed attempts in a row that open it; 0 turns this rule off" },
            "failure_percent": { "type": ["integer", "null"], "minimum": 1, "maximum": 100, "description": "Also open when this share of a window's attempts failed (off unless set)" },
            "window": { "type": "string", "default": "1m", "description": "10s to 1h" },
            "min_attempts": { "type": "integer", "minimum": 1, "default": 20, "description": "Attempts in the window before failure_percent applies" },
            "probe_after": { "type": "string", "default": "30s", "description": "1s to 15m", "examples": ["30s"] },
            "disable_after": { "type": ["string", "null"], "description": "Disable the subscription when a probe fails and the circuit has been open this long (1s to 90d; off unless set)", "examples": ["3d"] }
        }
    }));
    m.insert("DeliveryControls".into(), json!({
        "type": "object",
        "description": "The controls in effect (a chat format's default rate included) and the circuit's state",
        "properties": {
            "rate_limit": { "type": ["string", "null"], "examples": ["1/s"] },
            "max_in_flight": { "type": ["integer", "null"] },
            "circuit_breaker": { "$ref": "#/components/schemas/CircuitBreaker" },
            "in_flight": { "type": "integer", "description": "Requests out now (only counted with max_in_flight)" },
            "circuit": {
                "type": "object", "required": ["state", "consecutive_failures"],
                "properties": {
                    "state": { "enum": ["closed", "open", "probing"] },
                    "consecutive_failures": { "type": "integer" },
                    "opened_at": { "type": "string", "format": "date-time" },
                    "next_probe_at": { "type": "string", "format": "date-time", "description": "While open" },
                    "failed_probes": { "type": "integer" }
                }
            }
        }
    }));
    m.insert(
        "SubscriptionPatch".into(),
        json!({
            "type": "object", "additionalProperties": false,
            "properties": {
                "url": { "type": "string" },
                "events": { "type": "array", "items": { "type": "string" } },
                "format": { "$ref": "#/components/schemas/Format" },
                "template": { "type": ["string", "null"] },
                "payload_template": { "type": ["string", "null"] },
                "filter": { "type": ["string", "null"] },
                "retry_schedule": { "type": ["array", "null"], "items": duration },
                "allow_local": { "type": "boolean" },
                "rate_limit": { "$ref": "#/components/schemas/RateLimit" },
                "max_in_flight": { "type": ["integer", "null"], "minimum": 1 },
                "circuit_breaker": { "$ref": "#/components/schemas/CircuitBreaker" }
            }
        }),
    );
    m.insert(
        "Subscription".into(),
        json!({
            "allOf": [{ "$ref": "#/components/schemas/Meta" }, {
                "type": "object",
                "properties": {
                    "id": { "type": "string" },
                    "source": { "type": "string" },
                    "url": { "type": "string" },
                    "events": { "type": "array", "items": { "type": "string" } },
                    "format": { "$ref": "#/components/schemas/Format" },
                    "template": { "type": ["string", "null"] },
                    "payload_template": { "type": ["string", "null"] },
                    "filter": { "type": ["string", "null"] },
                    "retry_schedule": { "type": ["array", "null"], "items": duration },
                    "allow_local": { "type": "boolean" },
                    "rate_limit": { "type": ["string", "null"] },
                    "max_in_flight": { "type": ["integer", "null"] },
                    "circuit_breaker": { "$ref": "#/components/schemas/CircuitBreaker" },
                    "has_signing_secret": { "type": "boolean" },
                    "previous_secret_until": opt_time.clone(),
                    "delivery_controls": { "$ref": "#/components/schemas/DeliveryControls", "description": "On a single subscription's view" }
                }
            }]
        }),
    );
    m.insert("SubscriptionWithSecret".into(), json!({
            "allOf": [{ "$ref": "#/components/schemas/Subscription" }, {
                "type": "object", "required": ["signing_secret"],
                "properties": { "signing_secret": { "type": "string", "pattern": "^whsec_", "description": "Shown this once" } }
            }]
        }));
    m.insert("SubscriptionList".into(), json!({ "type": "object", "properties": { "subscriptions": { "type": "array", "items": { "$ref": "#/components/schemas/Subscription" } } } }));
    m.insert("Rotate".into(), json!({
            "type": "object", "additionalProperties": false,
            "properties": { "overlap": { "type": "string", "default": "24h", "description": "How long the replaced secret keeps signing (at most 30 days; 0s: not at all)" } }
        }));
    let poller_fields = json!({
        "url": { "type": "string", "format": "uri", "description": "The list endpoint or feed: https, unless allow_local" },
        "interval": { "type": ["string", "null"], "description": "How often it is polled: 60s unless set, at least 10s" },
        "headers": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Request headers; a credential (Authorization, Cookie, X-Api-Key) must be a secret reference (env:NAME, ssm:/path)" },
        "format": { "enum": ["json", "feed"], "default": "json", "description": "json: a document holding an array of items; feed: RSS or Atom" },
        "items": { "type": ["string", "null"], "description": "json: a JSON pointer to the array of items (the document itself if unset)" },
        "item_id": { "type": ["string", "null"], "description": "json (required): a JSON pointer to each item's id, e.g. /id" },
        "type": { "type": ["string", "null"], "description": "The event type: a JSON pointer into the item (/type) or a fixed string; item (json) or entry (feed) if unset" },
        "timestamp": { "type": ["string", "null"], "description": "A JSON pointer to an item's time: the order new items are emitted in" },
        "since_param": { "type": ["string", "null"], "description": "A query parameter carrying the newest timestamp seen (needs timestamp)" },
        "max_pages": { "type": ["integer", "null"], "minimum": 1, "maximum": 50, "description": "Pages followed through Link rel=next (5 unless set)" },
        "emit_existing": { "type": "boolean", "default": false, "description": "Emit what the first poll finds (otherwise it is only recorded)" },
        "dedupe_window": { "type": ["string", "null"], "description": "How long an item id is remembered; also the event log's retention" },
        "max_response_bytes": { "type": ["integer", "null"], "minimum": 1, "description": "The largest response read (4 MiB unless set)" },
        "allow_local": { "type": "boolean", "default": false }
    });
    let mut create = poller_fields.clone();
    create["id"] = json!({ "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$", "description": "The source id of its events (one namespace with sources)" });
    m.insert(
        "PollerConfig".into(),
        json!({
            "type": "object", "required": ["id", "url"], "additionalProperties": false,
            "description": "A [[pollers]] entry of the config file",
            "properties": create
        }),
    );
    m.insert(
        "PollerPatch".into(),
        json!({
            "type": "object", "additionalProperties": false,
            "properties": poller_fields
        }),
    );
    let mut view = poller_fields;
    view["id"] = json!({ "type": "string" });
    view["state"] = json!({ "oneOf": [{ "$ref": "#/components/schemas/PollerState" }, { "type": "null" }], "description": "What the poller remembers; null before its first poll (and in create and update answers)" });
    m.insert("Poller".into(), json!({
            "allOf": [{ "$ref": "#/components/schemas/Meta" }, { "type": "object", "properties": view }]
        }));
    let time = json!({ "type": ["string", "null"], "format": "date-time" });
    m.insert("PollerState".into(), json!({
        "type": "object",
        "properties": {
            "last_poll_at": time,
            "last_result": { "type": ["string", "null"], "enum": ["polled", "primed", "not_modified", "throttled", "failed", null] },
            "last_emitted": { "type": "integer", "description": "Items the last poll emitted" },
            "emitted_total": { "type": "integer" },
            "next_poll_at": time,
            "last_error": { "type": ["string", "null"], "description": "Kept until a poll succeeds" },
            "last_error_at": time,
            "failures": { "type": "integer", "description": "Failures in a row (the backoff grows with them)" },
            "polling_until": { "type": ["string", "null"], "format": "date-time", "description": "A runner holds the poll until then" },
            "cursor": { "type": ["string", "null"], "description": "The newest timestamp seen (sent as since_param)" },
            "remembered_ids": { "type": "integer" }
        }
    }));
    m.insert(
        "PollRunRequest".into(),
        json!({
            "type": "object", "additionalProperties": false,
            "properties": { "dry_run": { "type": "boolean", "default": false } }
        }),
    );
    m.insert("PollReport".into(), json!({
        "type": "object", "required": ["poller", "result", "dry_run", "pages", "emitted"],
        "properties": {
            "poller": { "type": "string" },
            "result": { "type": "string", "enum": ["not_due", "busy", "not_modified", "primed", "polled", "throttled", "failed", "unavailable"] },
            "dry_run": { "type": "boolean" },
            "pages": { "type": "integer" },
            "emitted": { "type": "array", "description": "Emitted (or, in a dry run, would be), oldest first", "items": { "type": "object", "properties": { "id": { "type": "string" }, "event_type": { "type": "string" } } } },
            "skipped": { "type": "array", "items": { "type": "string" }, "description": "Items left out, and why" },
            "recorded": { "type": "integer", "description": "primed: items the first poll recorded" },
            "items": { "type": "integer", "description": "polled: items read" },
            "duplicates": { "type": "integer", "description": "polled: new to the poller, already committed" },
            "error": { "type": "string", "description": "throttled, failed" },
            "next_poll_at_ms": { "type": "integer" }
        }
    }));
    m.insert("PollerList".into(), json!({ "type": "object", "properties": { "pollers": { "type": "array", "items": { "$ref": "#/components/schemas/Poller" } } } }));
    m.insert(
        "EventStatus".into(),
        json!({ "enum": ["pending", "delivered", "failed", "unrouted"] }),
    );
    m.insert("Counts".into(), json!({
            "type": "object",
            "properties": { "pending": { "type": "integer" }, "delivered": { "type": "integer" }, "failed": { "type": "integer" } }
        }));
    m.insert("EventBase".into(), json!({
            "type": "object",
            "properties": {
                "id": { "type": "string", "description": "{source}#{event id}" },
                "source": { "type": "string" },
                "event_id": { "type": "string" },
                "type": { "type": "string" },
                "received_at": time.clone(),
                "expires_at": { "type": "string", "format": "date-time", "description": "End of retention" },
                "status": { "$ref": "#/components/schemas/EventStatus" },
                "replay_of": { "type": ["string", "null"], "description": "The original, for a replay" }
            }
        }));
    m.insert(
        "EventSummary".into(),
        json!({
            "allOf": [{ "$ref": "#/components/schemas/EventBase" }, {
                "type": "object",
                "properties": {
                    "deliveries": { "$ref": "#/components/schemas/Counts" },
                    "destinations": {
                        "type": "array",
                        "description": "Each destination's state, by subscription id",
                        "items": {
                            "type": "object",
                            "required": ["subscription", "status", "attempts"],
                            "properties": {
                                "subscription": { "type": "string" },
                                "status": { "type": "string", "enum": ["pending", "delivered", "failed"] },
                                "attempts": { "type": "integer", "minimum": 0, "description": "Attempts made so far" }
                            }
                        }
                    }
                }
            }]
        }),
    );
    m.insert("EventPage".into(), json!({
            "type": "object",
            "properties": {
                "events": { "type": "array", "items": { "$ref": "#/components/schemas/EventSummary" } },
                "next_cursor": { "type": ["string", "null"] }
            }
        }));
    m.insert("Attempt".into(), json!({
            "type": "object",
            "properties": {
                "attempt": { "type": "integer" },
                "at": time.clone(),
                "status_code": { "type": ["integer", "null"] },
                "latency_ms": { "type": "integer" },
                "error": { "type": ["string", "null"] },
                "response": { "type": ["string", "null"], "description": "The start of the response body (at most 512 bytes)" },
                "next_attempt_at": opt_time.clone()
            }
        }));
    m.insert("Delivery".into(), json!({
            "type": "object",
            "properties": {
                "subscription": { "type": "string" },
                "status": { "enum": ["pending", "delivered", "failed"] },
                "attempts": { "type": "object", "properties": { "total": { "type": "integer" }, "succeeded": { "type": "integer" }, "failed": { "type": "integer" } } },
                "last_attempt": { "oneOf": [{ "type": "null" }, { "type": "object", "properties": {
                    "at": time.clone(), "status_code": { "type": ["integer", "null"] }, "latency_ms": { "type": "integer" },
                    "error": { "type": ["string", "null"] }, "response": { "type": ["string", "null"] } } }] },
                "next_attempt_at": opt_time.clone(),
                "updated_at": opt_time.clone(),
                "attempt_log": { "type": "array", "items": { "$ref": "#/components/schemas/Attempt" } }
            }
        }));
    m.insert("EventDetail".into(), json!({
            "allOf": [{ "$ref": "#/components/schemas/EventBase" }, {
                "type": "object",
                "properties": {
                    "content_type": { "type": ["string", "null"] },
                    "headers": { "type": "array", "items": { "type": "array", "items": { "type": "string" }, "minItems": 2, "maxItems": 2 }, "description": "[name, value] pairs; credentials removed" },
                    "body": { "type": "string" },
                    "body_encoding": { "enum": ["utf8", "base64"] },
                    "routed": { "type": ["array", "null"], "items": { "type": "string" } },
                    "replays": { "type": "array", "items": { "type": "string" } },
                    "deliveries": { "type": "array", "items": { "$ref": "#/components/schemas/Delivery" } }
                }
            }]
        }));
    m.insert("ReplayRequest".into(), json!({
            "type": "object", "additionalProperties": false,
            "properties": { "subscription": { "type": "string", "description": "One destination; every enabled subscription that takes the event when absent" } }
        }));
    m.insert("Replay".into(), json!({
            "type": "object",
            "properties": {
                "id": { "type": "string", "description": "The replay's own event id: {source}#{original}#replay-{n}" },
                "replay_of": { "type": "string" },
                "subscriptions": { "type": "array", "items": { "type": "string" } }
            }
        }));
    m.insert("BulkReplayRequest".into(), json!({
            "type": "object", "additionalProperties": false,
            "properties": {
                "status": { "enum": ["failed", "delivered"], "default": "failed" },
                "source": { "type": "string" },
                "subscription": { "type": "string" },
                "since": { "type": "string", "description": "RFC 3339 time, or a duration ago (24h)" },
                "until": { "type": "string" },
                "limit": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 },
                "dry_run": { "type": "boolean", "default": false }
            }
        }));
    m.insert("RedriveRequest".into(), json!({
            "type": "object", "additionalProperties": false,
            "properties": {
                "ids": { "type": "array", "items": { "type": "string" }, "description": "Only these dead letters" },
                "source": { "type": "string" },
                "subscription": { "type": "string" },
                "limit": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 },
                "dry_run": { "type": "boolean", "default": false }
            }
        }));
    m.insert("BulkResult".into(), json!({
            "type": "object",
            "properties": {
                "dry_run": { "type": "boolean" },
                "replayed": { "type": "integer", "description": "Deliveries replayed (bulk replay)" },
                "redriven": { "type": "integer", "description": "Deliveries replayed (redrive)" },
                "replays": { "type": "array", "items": { "type": "object", "properties": {
                    "id": { "type": ["string", "null"] }, "event": { "type": "string" }, "subscriptions": { "type": "array", "items": { "type": "string" } } } } },
                "skipped": { "type": "array", "items": { "type": "object", "properties": {
                    "event": { "type": "string" }, "subscription": { "type": "string" }, "reason": { "type": "string" }, "dead_letter": { "type": "string", "description": "Redrive: the dead letter left in place" } } } },
                "more": { "type": "boolean", "description": "The limit was reached: call again for the rest (while something was replayed; skipped entries come back every time)" }
            }
        }));
    m.insert(
        "DeadLetter".into(),
        json!({
            "type": "object",
            "properties": {
                "id": { "type": "string" },
                "event": { "type": "string" },
                "source": { "type": "string" },
                "event_id": { "type": "string" },
                "subscription": { "type": "string" },
                "reason": { "type": "string" },
                "receive_count": { "type": "integer" },
                "at": time
            }
        }),
    );
    m.insert("DeadLetterPage".into(), json!({
            "type": "object",
            "properties": {
                "dead_letters": { "type": "array", "items": { "$ref": "#/components/schemas/DeadLetter" } },
                "next_cursor": { "type": ["string", "null"] }
            }
        }));
    Value::Object(m)
}
