//! The five Lambda handlers against moto (DynamoDB, DynamoDB Streams, SQS,
//! SSM) and real HTTP destinations on 127.0.0.1, driven with the event
//! shapes Lambda hands them: an API Gateway HTTP API request into receive,
//! the events table's stream records into enqueue, the delivery queue's
//! messages (real receipt handles and receive counts) into deliver,
//! IAM-authorised HTTP API requests into admin, and the EventBridge
//! Scheduler's event into poll (the polled app a real HTTP server too).
//!
//! The `sluice` CLI with `--aws` runs as a real process (the binary
//! `cargo test --workspace` builds beside this one) against the same
//! deployment, found through a CloudFormation stack's outputs on moto.
//!
//! moto comes from `scripts/moto.sh` (`make test` runs it). Without it these
//! tests fail with instructions; they are never skipped.
//!
//! Each function's ports get clients of their own, whose SDK calls are
//! recorded (`sluice_tests::sdk_calls`). Every scenario checks that each
//! call it caused is one its function declares (`SDK_CALLS`,
//! `SDK_RESOURCES`), and `sdk_calls_are_exactly_what_each_function_declares`
//! checks that the scenarios together cause every declared call: the
//! declarations, which the deployment templates' IAM policies are checked
//! against (infra/tests), cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_sqs::types::Message;
use aws_sdk_ssm::types::ParameterType;
use base64::Engine;
use futures::FutureExt;
use futures::future::LocalBoxFuture;
use serde_json::{Value, json};
use sluice::aws::admin::DynamoConfigStore;
use sluice::aws::config_table::read_config;
use sluice::aws::sqs_queue::ATTR_REASON;
use sluice::aws::testing::{
    MotoServer, TestResources, read_stream, read_stream_inserts, receive_all, unique_name,
};
use sluice::aws::{
    AwsBackend, DynamoGate, DynamoPollerStates, DynamoStore, SqsQueue, SsmSecrets, parse_task,
    put_config,
};
use sluice::config::ConfigFile;
use sluice::delivery::{HttpOptions, HttpTransport};
use sluice::gate::Gate;
use sluice::model::{DeliveryStatus, DeliveryTask, EventKey};
use sluice::poll::{HttpFetch, PollOutcome, PollPorts, PollerStates};
use sluice::store::EventStore;
use sluice_tests::sdk_calls::{Resources, SSM_HANDSHAKE_PARAMETERS, SSM_PARAMETERS, SdkCalls};
use sluice_tests::{
    Sink, asana_headers, github_headers, sluice_bin, standard_webhooks_valid, twitch_headers,
    x_crc_response, zoom_headers, zoom_url_token,
};

const GH_SECRET: &str = "gh-secret-for-aws-tests";
const SUB_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One deployment on moto: tables, queues, SSM secrets, the config, and
/// the adapters each function's `main` would build.
struct Aws {
    res: TestResources,
    /// The test's own view, for setup and assertions (not recorded).
    backend: AwsBackend,
    /// What each function's `main` builds, on clients that record its SDK
    /// calls into the running scenario's [`CALLS`].
    receive_fn: AwsBackend,
    enqueue_fn: AwsBackend,
    deliver_fn: AwsBackend,
    /// The deliver function's gate (its own clients, recorded as its).
    deliver_gate: DynamoGate,
    /// What the admin function's `main` builds, recorded like the others.
    admin_fn: sluice_admin::IamGate,
    /// What the poll function's `main` builds, recorded like the others.
    poll_fn: PollFn,
    calls: SdkCalls,
    resources: Resources,
    transport: HttpTransport,
    /// Stream INSERTs already handed to enqueue.
    seen_inserts: Mutex<usize>,
}

/// A config whose `{ssm}` stands for this deployment's SSM prefix.
fn config(url: &str, extra: &str) -> String {
    format!(
        r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["ssm:{{ssm}}/github"]

[[subscriptions]]
id = "deploys"
source = "github"
events = ["push"]
url = "{url}"
signing_secret = "ssm:{{ssm}}/sub"
retry_schedule = ["1s", "1s"]
allow_local = true
{extra}
"#
    )
}

impl Aws {
    async fn new(config_text: &str) -> Self {
        Self::with_secrets(config_text, &[("github", GH_SECRET), ("sub", SUB_SECRET)]).await
    }

    async fn with_secrets(config_text: &str, secrets: &[(&str, &str)]) -> Self {
        let mut res = TestResources::create(MotoServer::shared()).await;
        let prefix = format!("/{}", unique_name("sluice-fn"));
        res.settings.ssm_prefix = prefix.clone();
        for (name, value) in secrets {
            res.clients
                .ssm
                .put_parameter()
                .name(format!("{prefix}/{name}"))
                .value(*value)
                .r#type(ParameterType::SecureString)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        }
        let file = ConfigFile::parse(&config_text.replace("{ssm}", &prefix)).unwrap();
        put_config(&res.clients.dynamodb, &res.settings.config_table, &file)
            .await
            .unwrap();
        let backend = AwsBackend::new(&res.clients, &res.settings);
        let calls = CALLS.try_with(SdkCalls::clone).unwrap_or_default();
        let resources = Resources::new(&res.settings, &prefix);
        let function = |name| recorded_backend(&calls, &resources, &res.settings, name);
        let (receive_fn, enqueue_fn, deliver_fn) = tokio::join!(
            function(sluice_receive::FUNCTION),
            function(sluice_enqueue::FUNCTION),
            function(sluice_deliver::FUNCTION),
        );
        let deliver_gate = DynamoGate::new(
            MotoServer::shared()
                .clients_with(calls.recorder(sluice_deliver::FUNCTION, resources.clone()))
                .await
                .dynamodb,
            res.settings.gates_table().unwrap(),
        );
        let admin_clients = MotoServer::shared()
            .clients_with(calls.recorder(sluice_admin::FUNCTION, resources.clone()))
            .await;
        let admin_fn = sluice_admin::IamGate::new(
            sluice::aws::admin_ports(&admin_clients, &res.settings).unwrap(),
        )
        .unwrap();
        let poll_fn = PollFn::new(&calls, &resources, &res.settings).await;
        // As deliver's main builds it.
        let transport = HttpTransport::new(HttpOptions {
            allow_local: res.settings.allow_local_destinations,
            ..HttpOptions::default()
        })
        .unwrap();
        Self {
            res,
            backend,
            receive_fn,
            enqueue_fn,
            deliver_fn,
            deliver_gate,
            admin_fn,
            poll_fn,
            calls,
            resources,
            transport,
            seen_inserts: Mutex::new(0),
        }
    }

    /// A new execution environment of `function` (empty caches), its
    /// calls recorded like the others.
    async fn fresh_backend(&self, function: &'static str) -> AwsBackend {
        recorded_backend(&self.calls, &self.resources, &self.res.settings, function).await
    }

    /// A new deliver execution environment's gate (its own clients).
    async fn fresh_gate(&self) -> DynamoGate {
        let clients = MotoServer::shared()
            .clients_with(
                self.calls
                    .recorder(sluice_deliver::FUNCTION, self.resources.clone()),
            )
            .await;
        DynamoGate::new(clients.dynamodb, self.res.settings.gates_table().unwrap())
    }

    fn receive_ports(&self) -> sluice_receive::Ports<'_> {
        sluice_receive::Ports {
            registry: &self.receive_fn.registry,
            store: &self.receive_fn.store,
        }
    }

    fn enqueue_ports(&self) -> sluice_enqueue::Ports<'_> {
        sluice_enqueue::Ports {
            registry: &self.enqueue_fn.registry,
            queue: &self.enqueue_fn.queue,
            store: &self.enqueue_fn.store,
        }
    }

    fn deliver_ports(&self) -> sluice_deliver::Ports<'_> {
        sluice_deliver::Ports {
            registry: &self.deliver_fn.registry,
            store: &self.deliver_fn.store,
            queue: &self.deliver_fn.queue,
            transport: &self.transport,
            gate: &self.deliver_gate,
            options: sluice::pipeline::deliver::DeliverOptions::default(),
        }
    }

    /// A POST through the receive handler, as API Gateway would send it.
    async fn post(&self, source: &str, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
        self.send(apigw_event(source, headers, body)).await
    }

    async fn send(&self, event: Value) -> (u16, Value) {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        let response =
            sluice_receive::handle(self.receive_ports(), request, SystemTime::now()).await;
        reply(&response)
    }

    /// The stream INSERTs not yet handed to enqueue, as Lambda records.
    async fn new_inserts(&self) -> Vec<Value> {
        let all = read_stream_inserts(&self.res.endpoint, &self.res.events_stream_arn).await;
        let mut seen = self.seen_inserts.lock().unwrap();
        let fresh = all[*seen..].to_vec();
        *seen = all.len();
        fresh
    }

    /// Run the enqueue handler on the new INSERTs; asserts it reported
    /// nothing and returns how many there were.
    async fn pump_enqueue(&self) -> usize {
        let records = self.new_inserts().await;
        let n = records.len();
        let response = sluice_enqueue::handle(self.enqueue_ports(), stream_event(records)).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        n
    }

    /// Receive `n` delivery tasks and run the deliver handler on them.
    async fn pump_deliver(&self, n: usize) -> (SqsEvent, SqsBatchResponse) {
        let event = sqs_event(&self.receive_tasks(n).await);
        let response = sluice_deliver::handle(self.deliver_ports(), event.clone()).await;
        (event, response)
    }

    async fn receive_tasks(&self, n: usize) -> Vec<Message> {
        let got = receive_all(&self.res.clients.sqs, &self.res.settings.queue_url, n).await;
        assert_eq!(got.len(), n, "{got:?}");
        got
    }

    /// Messages visible on `queue_url` right now (received, so hidden for
    /// the queue's visibility timeout afterwards).
    async fn visible(&self, queue_url: &str) -> Vec<Message> {
        self.res
            .clients
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }

    /// An admin API call through the admin handler, as API Gateway sends an
    /// IAM-authorised request. A null body sends none.
    async fn admin(&self, method: &str, path_and_query: &str, body: Value) -> (u16, Value) {
        let response =
            sluice_admin::handle_event(&self.admin_fn, admin_event(method, path_and_query, &body))
                .await;
        let status = u16::try_from(response.status_code).unwrap();
        let json = match &response.body {
            None => Value::Null,
            Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
            other => panic!("expected a text body, got {other:?}"),
        };
        (status, json)
    }

    fn poll_ports(&self) -> sluice_poll::Ports<'_> {
        let f = &self.poll_fn;
        sluice_poll::Ports {
            config: &f.config,
            poll: PollPorts {
                states: &f.states,
                store: &f.store,
                fetch: &f.fetch,
                secrets: &f.secrets,
                notify: false,
            },
            policy: self.res.settings.policy(),
        }
    }

    /// One run of the poll handler, on the event the schedule sends.
    async fn run_poll(&self) -> sluice_poll::RunSummary {
        let event: EventBridgeEvent = serde_json::from_str(
            &std::fs::read_to_string(events_dir().join("scheduler-poll.json")).unwrap(),
        )
        .unwrap();
        sluice_poll::handle(self.poll_ports(), event).await.unwrap()
    }

    /// The poller's next poll is due now (as if its interval had passed).
    async fn make_due(&self, poller: &str) {
        self.res
            .clients
            .dynamodb
            .update_item()
            .table_name(self.res.settings.pollers_table().unwrap())
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(poller.into()),
            )
            .update_expression("SET next_poll_at_ms = :zero")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(
                ":zero",
                aws_sdk_dynamodb::types::AttributeValue::N("0".into()),
            )
            .send()
            .await
            .unwrap();
    }

    async fn status(&self, event_id: &str, subscription: &str) -> Option<DeliveryStatus> {
        self.backend
            .store
            .delivery_status(&task("github", event_id, subscription))
            .await
            .unwrap()
    }
}

/// What the poll function's `main` builds (functions/poll/src/main.rs), on
/// clients that record its calls.
struct PollFn {
    config: DynamoConfigStore,
    states: DynamoPollerStates,
    store: DynamoStore,
    secrets: SsmSecrets,
    fetch: HttpFetch,
}

impl PollFn {
    async fn new(
        calls: &SdkCalls,
        resources: &Resources,
        settings: &sluice::aws::AwsSettings,
    ) -> Self {
        let clients = MotoServer::shared()
            .clients_with(calls.recorder(sluice_poll::FUNCTION, resources.clone()))
            .await;
        Self {
            config: DynamoConfigStore::new(clients.dynamodb.clone(), &settings.config_table),
            states: DynamoPollerStates::new(
                clients.dynamodb.clone(),
                settings.pollers_table().unwrap(),
            ),
            store: DynamoStore::new(
                clients.dynamodb.clone(),
                &settings.events_table,
                &settings.deliveries_table,
            ),
            secrets: SsmSecrets::new(
                clients.ssm.clone(),
                sluice::secrets::EnvSecrets::new(),
                settings.secrets_ttl,
            ),
            fetch: HttpFetch::new(&HttpOptions {
                allow_local: settings.allow_local_destinations,
                ..HttpOptions::default()
            })
            .unwrap(),
        }
    }
}

/// An app without webhooks: `GET /issues` answers its items as a JSON
/// list, after an optional delay, and counts the requests.
#[derive(Clone, Default)]
struct App {
    addr: Option<std::net::SocketAddr>,
    state: std::sync::Arc<Mutex<AppState>>,
}

#[derive(Default)]
struct AppState {
    items: Vec<Value>,
    requests: usize,
    authorization: Option<String>,
    delay: Duration,
}

impl App {
    async fn start() -> Self {
        let mut app = Self::default();
        let state = app.state.clone();
        let router = axum::Router::new().route(
            "/issues",
            axum::routing::get(move |headers: http::HeaderMap| {
                let state = state.clone();
                async move {
                    let (items, delay) = {
                        let mut s = state.lock().unwrap();
                        s.requests += 1;
                        s.authorization = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        (s.items.clone(), s.delay)
                    };
                    tokio::time::sleep(delay).await;
                    axum::Json(items)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        app.addr = Some(listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        app
    }

    fn url(&self) -> String {
        format!("http://{}/issues", self.addr.unwrap())
    }

    fn add(&self, item: Value) {
        self.state.lock().unwrap().items.insert(0, item);
    }

    fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    fn authorization(&self) -> Option<String> {
        self.state.lock().unwrap().authorization.clone()
    }

    fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }
}

/// A poller of `app` whose token is the SSM parameter `app-token`, and a
/// subscription to its events delivering to `sink`.
fn poller_config(app: &App, sink: &str) -> String {
    format!(
        r#"
[[pollers]]
id = "issues"
url = "{app}"
item_id = "/id"
type = "/kind"
allow_local = true
headers = {{ Authorization = "ssm:{{ssm}}/app-token" }}

[[subscriptions]]
id = "issue-feed"
source = "issues"
events = ["*"]
url = "{sink}"
allow_local = true
"#,
        app = app.url()
    )
}

const APP_TOKEN: &str = "Bearer app-token-for-aws-tests";

async fn poll_deployment(app: &App, sink: &Sink) -> Aws {
    Aws::with_secrets(
        &config(&sink.url(), &poller_config(app, &sink.url())),
        &[
            ("github", GH_SECRET),
            ("sub", SUB_SECRET),
            ("app-token", APP_TOKEN),
        ],
    )
    .await
}

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

fn task(source: &str, event_id: &str, subscription: &str) -> DeliveryTask {
    DeliveryTask {
        source: source.into(),
        event_id: event_id.into(),
        subscription: subscription.into(),
    }
}

/// An HTTP API (payload 2.0) event: lowercased header names, repeated
/// headers joined with commas, a body that is not UTF-8 sent as base64.
fn apigw_event(source: &str, headers: &[(String, String)], body: &[u8]) -> Value {
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in headers {
        map.entry(k.to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let path = format!("/hooks/{source}");
    json!({
        "version": "2.0",
        "routeKey": "POST /hooks/{source}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": map,
        "pathParameters": {"source": source},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
            "requestId": "r",
            "routeKey": "POST /hooks/{source}",
            "stage": "$default",
            "timeEpoch": 1,
        },
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// An HTTP API (payload 2.0) request on the `ANY /admin/{proxy+}` route,
/// with the request context API Gateway's IAM authorizer fills in.
fn admin_event(method: &str, path_and_query: &str, body: &Value) -> Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut event = json!({
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "authorization": "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=0",
            "content-type": "application/json",
            "host": "api.execute-api.us-east-1.amazonaws.com",
            "x-amz-date": "20260101T000000Z",
        },
        "pathParameters": {"proxy": path.trim_start_matches("/admin/")},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "authorizer": {"iam": {
                "accessKey": "AKIAEXAMPLE",
                "accountId": "123456789012",
                "callerId": "AIDAEXAMPLE",
                "cognitoIdentity": null,
                "principalOrgId": null,
                "userArn": "arn:aws:iam::123456789012:user/operator",
                "userId": "AIDAEXAMPLE",
            }},
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "curl/8"},
            "requestId": "r",
            "routeKey": "ANY /admin/{proxy+}",
            "stage": "$default",
            "timeEpoch": 1,
        },
        "isBase64Encoded": false,
    });
    if !body.is_null() {
        event["body"] = json!(body.to_string());
    }
    event
}

/// Status and JSON body of a response, checking its content type.
fn reply(response: &ApiGatewayV2httpResponse) -> (u16, Value) {
    assert_eq!(response.headers["content-type"], "application/json");
    let text = match &response.body {
        Some(Body::Text(t)) => t.clone(),
        other => panic!("expected a text body, got {other:?}"),
    };
    (
        u16::try_from(response.status_code).unwrap(),
        serde_json::from_str(&text).unwrap(),
    )
}

fn stream_event(records: Vec<Value>) -> StreamEvent {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// The SQS event Lambda would build from these messages.
fn sqs_event(messages: &[Message]) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: HashMap<String, String> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deliveries",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn failed_sequences(response: &DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

fn receive_count(m: &Message) -> u32 {
    m.attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .unwrap()
        .parse()
        .unwrap()
}

fn push(delivery: &str, body: &[u8]) -> Vec<(String, String)> {
    github_headers(GH_SECRET, delivery, "push", body)
}

async fn an_accepted_webhook_is_committed_routed_and_delivered_with_its_bytes_and_signature() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    // Odd spacing and key order: the bytes must arrive untouched.
    let body = br#"{ "ref":"refs/heads/main",   "zeta":1, "alpha" : [1,2] }"#;
    // Header names in any case (the event lowercases them, as API Gateway does).
    let headers: Vec<(String, String)> = push("d-1", body)
        .into_iter()
        .map(|(k, v)| (k.to_uppercase(), v))
        .collect();
    let (status, answer) = aws.post("github", &headers, body).await;
    assert_eq!(
        (status, answer),
        (200, json!({"status": "accepted", "id": "d-1"}))
    );

    assert_eq!(aws.pump_enqueue().await, 1);
    let key = EventKey::new("github", "d-1");
    assert_eq!(
        aws.backend.store.routed(&key).await.unwrap(),
        Some(vec!["deploys".to_owned()])
    );
    let (event, response) = aws.pump_deliver(1).await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(
        parse_task(event.records[0].body.as_deref().unwrap()).unwrap(),
        task("github", "d-1", "deploys")
    );

    assert_eq!(sink.count(), 1);
    let got = &sink.received()[0];
    assert_eq!(&got.body[..], &body[..]);
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["webhook-id"], "github#d-1");
    assert!(standard_webhooks_valid(SUB_SECRET, &got.headers, &got.body));
    assert!(!standard_webhooks_valid(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &got.headers,
        &got.body
    ));
    assert_eq!(
        aws.status("d-1", "deploys").await,
        Some(DeliveryStatus::Delivered)
    );
    let attempts = aws
        .backend
        .store
        .attempts(&task("github", "d-1", "deploys"))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, Some(200));
}

async fn a_base64_body_is_verified_and_stored_as_the_decoded_bytes() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    // Not UTF-8, so the event carries it base64-encoded.
    let body = b"\xff\xfe{\"ref\":\"x\"}\x00";
    let event = apigw_event("github", &push("b64", body), body);
    assert_eq!(event["isBase64Encoded"], true);
    let (status, answer) = aws.send(event).await;
    assert_eq!(
        (status, &answer["status"]),
        (200, &json!("accepted")),
        "{answer}"
    );
    let stored = aws
        .backend
        .store
        .load(&EventKey::new("github", "b64"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&stored.body[..], &body[..]);
}

async fn a_duplicate_is_answered_as_such_and_commits_nothing() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"a"}"#;
    let first = aws.post("github", &push("dup", body), body).await;
    let second = aws.post("github", &push("dup", body), body).await;
    assert_eq!(first, (200, json!({"status": "accepted", "id": "dup"})));
    assert_eq!(second, (200, json!({"status": "duplicate", "id": "dup"})));
    assert_eq!(aws.new_inserts().await.len(), 1);
}

async fn a_duplicate_with_another_body_is_still_a_duplicate_and_the_first_body_is_kept() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let first_body = br#"{"ref":"first"}"#;
    let other_body = br#"{"ref":"second"}"#;
    let first = aws
        .post("github", &push("mm", first_body), first_body)
        .await;
    assert_eq!(first.0, 200);
    // Correctly signed, same delivery id, different bytes.
    let second = aws
        .post("github", &push("mm", other_body), other_body)
        .await;
    assert_eq!(second, (200, json!({"status": "duplicate", "id": "mm"})));
    let stored = aws
        .backend
        .store
        .load(&EventKey::new("github", "mm"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&stored.body[..], &first_body[..]);
    assert_eq!(aws.new_inserts().await.len(), 1);
}

async fn twenty_concurrent_copies_commit_once_and_queue_one_task() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let headers = push("same", body);
    let replies =
        futures::future::join_all((0..20).map(|_| aws.post("github", &headers, body))).await;
    let count = |status: &str| {
        replies
            .iter()
            .filter(|(code, r)| *code == 200 && r["status"] == status)
            .count()
    };
    assert_eq!(
        (count("accepted"), count("duplicate")),
        (1, 19),
        "{replies:?}"
    );

    // Exactly one commit: one INSERT on the stream, one task on the queue.
    assert_eq!(aws.pump_enqueue().await, 1);
    let tasks = aws.receive_tasks(1).await;
    assert_eq!(
        parse_task(tasks[0].body().unwrap()).unwrap(),
        task("github", "same", "deploys")
    );
    assert!(aws.visible(&aws.res.settings.queue_url).await.is_empty());
}

async fn bad_signatures_unknown_sources_and_wrong_methods_are_refused_without_a_commit() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"x"}"#;

    let forged = github_headers("not-the-secret", "bad", "push", body);
    let (status, answer) = aws.post("github", &forged, body).await;
    assert_eq!(
        (status, &answer["error"]),
        (401, &json!("invalid_signature")),
        "{answer}"
    );
    let (status, answer) = aws
        .post("github", &push("t", body), br#"{"ref":"tampered"}"#)
        .await;
    assert_eq!(
        (status, &answer["error"]),
        (401, &json!("invalid_signature")),
        "{answer}"
    );

    let (status, answer) = aws.post("nope", &push("u", body), body).await;
    assert_eq!(
        (status, &answer["error"]),
        (404, &json!("unknown_source")),
        "{answer}"
    );

    // No source in the path (function URL style, no route parameters).
    let mut no_source = apigw_event("github", &push("p", body), body);
    no_source["pathParameters"] = json!({});
    no_source["rawPath"] = json!("/hooks/");
    assert_eq!(aws.send(no_source).await.0, 404);

    let mut get = apigw_event("github", &push("g", body), body);
    get["requestContext"]["http"]["method"] = json!("GET");
    let request: ApiGatewayV2httpRequest = serde_json::from_value(get).unwrap();
    let outcome = sluice_receive::process(aws.receive_ports(), request, SystemTime::now()).await;
    assert_eq!(outcome.response.status_code, 405);
    assert_eq!(outcome.response.headers["allow"], "POST");

    // Metrics: the reason is a dimension; an unknown source is not.
    let request: ApiGatewayV2httpRequest =
        serde_json::from_value(apigw_event("github", &forged, body)).unwrap();
    let outcome = sluice_receive::process(aws.receive_ports(), request, SystemTime::now()).await;
    let docs = outcome.metrics.to_emf(1);
    let rejected = docs.iter().find(|d| d.get("rejected").is_some()).unwrap();
    assert_eq!(rejected["Reason"], "invalid_signature");
    assert_eq!(rejected["Source"], "github");
    let request: ApiGatewayV2httpRequest =
        serde_json::from_value(apigw_event("probe-123", &forged, body)).unwrap();
    let outcome = sluice_receive::process(aws.receive_ports(), request, SystemTime::now()).await;
    let docs = outcome.metrics.to_emf(1);
    assert!(docs.iter().all(|d| d.get("Source").is_none()), "{docs:?}");
    assert_eq!(outcome.metrics.total("rejected"), 1);

    assert!(aws.new_inserts().await.is_empty(), "nothing was committed");
}

/// Zoom's URL validation and Twitch's callback verification through the
/// receive function's API Gateway event: answered as each provider
/// requires, only when signed, and nothing committed.
async fn provider_handshakes_are_answered_through_the_receive_function() {
    let sink = Sink::start(200).await;
    let sources = r#"
[[sources]]
id = "zoom"
provider = "zoom"
secrets = ["ssm:{ssm}/zoom"]

[[sources]]
id = "twitch"
provider = "twitch"
secrets = ["ssm:{ssm}/twitch"]

[[sources]]
id = "meta"
provider = "meta"
secrets = ["ssm:{ssm}/app"]
verify_token = "ssm:{ssm}/meta-verify"

[[sources]]
id = "x"
provider = "x"
secrets = ["ssm:{ssm}/x"]

[[sources]]
id = "dropbox"
provider = "dropbox"
secrets = ["ssm:{ssm}/app"]

[[sources]]
id = "okta"
provider = "okta"
secrets = ["ssm:{ssm}/okta"]

[[sources]]
id = "trello"
provider = "trello"
secrets = ["ssm:{ssm}/app"]
public_url = "https://hooks.example.com/hooks/trello"

[[sources]]
id = "graph"
provider = "msgraph"
secrets = ["ssm:{ssm}/app"]
"#;
    let aws = Aws::with_secrets(
        &config(&sink.url(), sources),
        &[
            ("github", GH_SECRET),
            ("sub", SUB_SECRET),
            ("zoom", "zoom-secret"),
            ("twitch", "twitch-secret"),
            ("app", "app-secret"),
            ("meta-verify", "meta-verify-9f2"),
            ("x", "x-consumer-secret"),
            ("okta", "Bearer okta-hook-7d1e"),
        ],
    )
    .await;
    get_and_head_handshakes(&aws).await;
    let validation =
        br#"{"payload":{"plainToken":"tok-123"},"event_ts":1,"event":"endpoint.url_validation"}"#;
    let (status, answer) = aws
        .post("zoom", &zoom_headers("zoom-secret", validation), validation)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"plainToken": "tok-123", "encryptedToken": zoom_url_token("zoom-secret", "tok-123")})
    );
    let (status, _) = aws
        .post("zoom", &zoom_headers("forged", validation), validation)
        .await;
    assert_eq!(status, 401);

    let challenge = br#"{"challenge":"c-42","subscription":{"type":"channel.follow"}}"#;
    let headers = twitch_headers(
        "twitch-secret",
        "m-1",
        "webhook_callback_verification",
        challenge,
    );
    let request: ApiGatewayV2httpRequest =
        serde_json::from_value(apigw_event("twitch", &headers, challenge)).unwrap();
    let response = sluice_receive::handle(aws.receive_ports(), request, SystemTime::now()).await;
    assert_eq!(response.status_code, 200);
    assert_eq!(
        response.headers["content-type"],
        "text/plain; charset=utf-8"
    );
    assert!(
        matches!(&response.body, Some(Body::Text(t)) if t == "c-42"),
        "{:?}",
        response.body
    );
    assert!(
        aws.new_inserts().await.is_empty(),
        "handshakes commit nothing"
    );
}

/// Asana's X-Hook-Secret handshake through the receive function: the
/// secret is written once to SSM below `{prefix}/handshake/` (the one path
/// receive may write), echoed in the response header, and then verifies
/// events, in this execution environment and in a fresh one. Another
/// secret is a 409 and leaves SSM as it was; a source whose reference is
/// elsewhere cannot take one (503, nothing written).
async fn asanas_secret_handshake_is_kept_in_ssm_through_the_receive_function() {
    let sink = Sink::start(200).await;
    let sources = r#"
[[sources]]
id = "asana"
provider = "asana"
secrets = ["ssm:{ssm}/handshake/asana"]

[[sources]]
id = "asana-retry"
provider = "asana"
secrets = ["ssm:{ssm}/handshake/asana-retry"]

[[sources]]
id = "asana-elsewhere"
provider = "asana"
secrets = ["ssm:{ssm}/asana-elsewhere"]
"#;
    let aws = Aws::new(&config(&sink.url(), sources)).await;
    let body = br#"{"events":[{"action":"changed","resource":{"gid":"7"}}]}"#;
    let (status, v) = aws.post("asana", &asana_headers("guess", body), body).await;
    assert_eq!(
        (status, &v["error"]),
        (503, &json!("awaiting_handshake")),
        "{v}"
    );

    let handshake = |source: &str, secret: &str| {
        let event = apigw_event(
            source,
            &[("X-Hook-Secret".to_owned(), secret.to_owned())],
            b"",
        );
        let request: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        sluice_receive::handle(aws.receive_ports(), request, SystemTime::now())
    };
    let response = handshake("asana", "8c1f0e2d3b4a5968").await;
    assert_eq!(response.status_code, 200, "{:?}", response.body);
    assert_eq!(response.headers["x-hook-secret"], "8c1f0e2d3b4a5968");
    // Read from SSM itself, not through a cache.
    let kept = || async {
        let out = aws
            .res
            .clients
            .ssm
            .get_parameter()
            .name(format!("{}/handshake/asana", aws.res.settings.ssm_prefix))
            .with_decryption(true)
            .send()
            .await
            .unwrap();
        out.parameter().unwrap().value().unwrap().to_owned()
    };
    assert_eq!(kept().await, "8c1f0e2d3b4a5968");
    assert!(
        aws.new_inserts().await.is_empty(),
        "a handshake commits nothing"
    );

    let (status, v) = aws
        .post("asana", &asana_headers("8c1f0e2d3b4a5968", body), body)
        .await;
    assert_eq!((status, &v["status"]), (200, &json!("accepted")), "{v}");
    // A fresh execution environment reads the kept secret from SSM.
    let fresh = aws.fresh_backend(sluice_receive::FUNCTION).await;
    let ports = sluice_receive::Ports {
        registry: &fresh.registry,
        store: &fresh.store,
    };
    let other = br#"{"events":[{"action":"added","resource":{"gid":"8"}}]}"#;
    let request: ApiGatewayV2httpRequest = serde_json::from_value(apigw_event(
        "asana",
        &asana_headers("8c1f0e2d3b4a5968", other),
        other,
    ))
    .unwrap();
    let (status, v) = reply(&sluice_receive::handle(ports, request, SystemTime::now()).await);
    assert_eq!((status, &v["status"]), (200, &json!("accepted")), "{v}");
    assert_eq!(aws.new_inserts().await.len(), 2);

    let response = handshake("asana", "chosen-by-someone-else").await;
    assert_eq!(response.status_code, 409, "{:?}", response.body);
    assert!(!response.headers.contains_key("x-hook-secret"));
    assert_eq!(kept().await, "8c1f0e2d3b4a5968", "the first stays");

    // An instance that saw the source waiting, the parameter written
    // meanwhile (its answer lost): the retry with that secret is echoed.
    let (status, _) = aws
        .post("asana-retry", &asana_headers("x", body), body)
        .await;
    assert_eq!(status, 503);
    aws.res
        .clients
        .ssm
        .put_parameter()
        .name(format!(
            "{}/handshake/asana-retry",
            aws.res.settings.ssm_prefix
        ))
        .value("5d7e")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let response = handshake("asana-retry", "5d7e").await;
    assert_eq!(response.status_code, 200, "{:?}", response.body);
    assert_eq!(response.headers["x-hook-secret"], "5d7e");

    let response = handshake("asana-elsewhere", "8c1f0e2d3b4a5968").await;
    assert_eq!(response.status_code, 503, "{:?}", response.body);
    let text = match &response.body {
        Some(Body::Text(t)) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert!(!text.contains("handshake/"), "no internals: {text}");
}

/// A GET or HEAD to `/hooks/{source}` as API Gateway's `GET` route hands
/// it to the receive function.
fn check_event(source: &str, method: &str, query: &str, headers: &[(&str, &str)]) -> Value {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut event = apigw_event(source, &headers, b"");
    let route = format!("{method} /hooks/{{source}}");
    event["routeKey"] = json!(route);
    event["requestContext"]["routeKey"] = json!(route);
    event["requestContext"]["http"]["method"] = json!(method);
    event["rawQueryString"] = json!(query);
    event.as_object_mut().unwrap().remove("body");
    event
}

/// The GET and HEAD handshakes (Meta, X, Dropbox, Okta, Trello) through
/// the receive function, with the secrets and Meta's verify token in SSM.
async fn get_and_head_handshakes(aws: &Aws) {
    let call = |event: Value| async move {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        sluice_receive::handle(aws.receive_ports(), request, SystemTime::now()).await
    };
    let text = |r: &ApiGatewayV2httpResponse| match &r.body {
        Some(Body::Text(t)) => t.clone(),
        other => panic!("{other:?}"),
    };
    let r = call(check_event(
        "meta",
        "GET",
        "hub.mode=subscribe&hub.verify_token=meta-verify-9f2&hub.challenge=1158201444",
        &[],
    ))
    .await;
    assert_eq!((r.status_code, text(&r).as_str()), (200, "1158201444"));
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let r = call(check_event(
        "meta",
        "GET",
        "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1",
        &[],
    ))
    .await;
    assert_eq!(r.status_code, 403);

    let r = call(check_event("x", "GET", "crc_token=crc-abc_123", &[])).await;
    assert_eq!(r.status_code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text(&r)).unwrap(),
        json!({"response_token": x_crc_response("x-consumer-secret", "crc-abc_123")})
    );

    let r = call(check_event("dropbox", "GET", "challenge=dbx-42", &[])).await;
    assert_eq!((r.status_code, text(&r).as_str()), (200, "dbx-42"));

    let challenge = ("x-okta-verification-challenge", "oktaChallenge-XYZ");
    let r = call(check_event(
        "okta",
        "GET",
        "",
        &[("authorization", "Bearer okta-hook-7d1e"), challenge],
    ))
    .await;
    assert_eq!(r.status_code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text(&r)).unwrap(),
        json!({"verification": "oktaChallenge-XYZ"})
    );
    let r = call(check_event("okta", "GET", "", &[challenge])).await;
    assert_eq!(r.status_code, 401);

    let r = call(check_event("trello", "HEAD", "", &[])).await;
    assert_eq!((r.status_code, text(&r).as_str()), (200, ""));
    // Microsoft Graph: a POST with the token in the query, no body.
    let mut validation = check_event(
        "graph",
        "POST",
        "validationToken=Validation%3a+Testing+client+application+reachability",
        &[("content-type", "text/plain")],
    );
    validation["routeKey"] = json!("POST /hooks/{source}");
    let r = call(validation).await;
    assert_eq!(
        (r.status_code, text(&r).as_str()),
        (200, "Validation: Testing client application reachability")
    );
    let r = call(check_event("trello", "GET", "", &[])).await;
    assert_eq!(
        (r.status_code, r.headers["allow"].to_str().unwrap()),
        (405, "HEAD, POST")
    );
    assert!(
        aws.new_inserts().await.is_empty(),
        "handshakes commit nothing"
    );
}

async fn an_invalid_base64_body_is_a_400_and_never_a_panic() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"x"}"#;
    for bad in ["%%% not base64 %%%", "AAA", "e30=!"] {
        let mut event = apigw_event("github", &push("b", body), body);
        event["body"] = json!(bad);
        event["isBase64Encoded"] = json!(true);
        let (status, answer) = aws.send(event.clone()).await;
        assert_eq!(
            (status, &answer["error"]),
            (400, &json!("bad_request")),
            "{bad}: {answer}"
        );
        // The entry point main runs (any JSON in) answers the same.
        let response =
            sluice_receive::handle_event(aws.receive_ports(), event, SystemTime::now()).await;
        assert_eq!(response.status_code, 400);
    }
    // An event that is not an HTTP API request at all: 400 too.
    let response = sluice_receive::handle_event(
        aws.receive_ports(),
        json!({"Records": [{"eventSource": "aws:sqs"}]}),
        SystemTime::now(),
    )
    .await;
    assert_eq!(reply(&response).0, 400);
    assert!(aws.new_inserts().await.is_empty());
}

/// Fails every SendMessageBatch that carries a task of event `e-2`.
#[derive(Debug)]
struct FailEventTwo;

impl aws_sdk_sqs::config::Intercept for FailEventTwo {
    fn name(&self) -> &'static str {
        "FailEventTwo"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_sqs::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
        match context.input().downcast_ref::<SendMessageBatchInput>() {
            Some(input)
                if input
                    .entries()
                    .iter()
                    .any(|e| e.message_body().contains(r#""event_id":"e-2""#)) =>
            {
                Err("injected SendMessageBatch failure".into())
            }
            _ => Ok(()),
        }
    }
}

async fn enqueue_reports_only_the_failed_records_by_sequence_number() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    for id in ["e-1", "e-2", "e-3"] {
        let body = format!(r#"{{"ref":"{id}"}}"#);
        assert_eq!(
            aws.post("github", &push(id, body.as_bytes()), body.as_bytes())
                .await
                .0,
            200
        );
    }
    let records = aws.new_inserts().await;
    assert_eq!(records.len(), 3);
    let sequence = |i: usize| {
        records[i]["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let key = |id: &str| EventKey::new("github", id);

    // 1. SQS refuses e-2's task (a real SDK call, failed by an interceptor).
    let conf = aws_sdk_sqs::config::Builder::from(&MotoServer::shared().sdk_config().await)
        .interceptor(FailEventTwo)
        .build();
    let failing_queue = SqsQueue::new(
        aws_sdk_sqs::Client::from_conf(conf),
        &aws.res.settings.queue_url,
        &aws.res.settings.dlq_url,
    );
    let ports = sluice_enqueue::Ports {
        queue: &failing_queue,
        ..aws.enqueue_ports()
    };
    let outcome = sluice_enqueue::process(ports, stream_event(records.clone())).await;
    assert_eq!(failed_sequences(&outcome.response), [sequence(1)]);
    assert_eq!(outcome.metrics.total("failed"), 1);
    assert_eq!(outcome.metrics.total("enqueued"), 2);
    let store = &aws.backend.store;
    assert_eq!(
        store.routed(&key("e-1")).await.unwrap(),
        Some(vec!["deploys".into()])
    );
    assert_eq!(
        store.routed(&key("e-2")).await.unwrap(),
        None,
        "not marked routed"
    );
    assert_eq!(
        store.routed(&key("e-3")).await.unwrap(),
        Some(vec!["deploys".into()])
    );
    assert_eq!(aws.receive_tasks(2).await.len(), 2);

    // Lambda hands the failed record back; now SQS takes it.
    let retry =
        sluice_enqueue::handle(aws.enqueue_ports(), stream_event(vec![records[1].clone()])).await;
    assert!(retry.batch_item_failures.is_empty(), "{retry:?}");
    assert_eq!(
        store.routed(&key("e-2")).await.unwrap(),
        Some(vec!["deploys".into()])
    );
    let tasks = aws.receive_tasks(1).await;
    assert_eq!(
        parse_task(tasks[0].body().unwrap()).unwrap().event_id,
        "e-2"
    );

    // 2. A record whose image is not an event is reported, not dropped;
    // the others in the batch go through.
    let mut broken = records.clone();
    broken[0]["dynamodb"]["NewImage"]
        .as_object_mut()
        .unwrap()
        .remove("source");
    let response = sluice_enqueue::handle(aws.enqueue_ports(), stream_event(broken.clone())).await;
    assert_eq!(failed_sequences(&response), [sequence(0)]);
    // A record that is not even a stream record, through main's entry
    // point: reported by its sequence number, the rest handled.
    let mut raw = broken;
    raw[0]["dynamodb"]["SizeBytes"] = json!("not a number");
    let response =
        sluice_enqueue::handle_json(aws.enqueue_ports(), json!({ "Records": raw })).await;
    assert_eq!(failed_sequences(&response), [sequence(0)]);

    // 3. MODIFY records (enqueue's own mark_routed) are ignored.
    let modifies: Vec<Value> = read_stream(&aws.res.endpoint, &aws.res.events_stream_arn)
        .await
        .into_iter()
        .filter(|r| r["eventName"] == "MODIFY")
        .collect();
    assert!(!modifies.is_empty());
    let outcome = sluice_enqueue::process(aws.enqueue_ports(), stream_event(modifies)).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    assert!(outcome.metrics.is_empty(), "{:?}", outcome.metrics);
}

async fn an_event_matching_no_subscription_is_marked_routed_to_none() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"action":"opened"}"#;
    let headers = github_headers(GH_SECRET, "iss", "issues", body);
    assert_eq!(aws.post("github", &headers, body).await.0, 200);
    let outcome =
        sluice_enqueue::process(aws.enqueue_ports(), stream_event(aws.new_inserts().await)).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(outcome.metrics.total("unrouted"), 1);
    assert_eq!(
        aws.backend
            .store
            .routed(&EventKey::new("github", "iss"))
            .await
            .unwrap(),
        Some(vec![])
    );
    assert!(aws.visible(&aws.res.settings.queue_url).await.is_empty());
}

/// Payload filters on AWS: enqueue reads the body and headers from the
/// stream record (no read of its own: the recorded calls stay those
/// declared), and only matching events are queued to the subscription.
async fn a_payload_filter_queues_only_the_events_it_is_true_for() {
    let sink = Sink::start(200).await;
    let extra = format!(
        r#"
[[subscriptions]]
id = "opened"
source = "github"
events = ["pull_request.*"]
url = "{}"
allow_local = true
filter = 'payload.action == "opened" and headers["x-github-event"] == "pull_request"'
"#,
        sink.url()
    );
    let aws = Aws::new(&config(&sink.url(), &extra)).await;
    for (id, action) in [("pr-1", "opened"), ("pr-2", "closed")] {
        let body = format!(r#"{{"action":"{action}","pull_request":{{}}}}"#);
        let headers = github_headers(GH_SECRET, id, "pull_request", body.as_bytes());
        assert_eq!(aws.post("github", &headers, body.as_bytes()).await.0, 200);
    }
    let outcome =
        sluice_enqueue::process(aws.enqueue_ports(), stream_event(aws.new_inserts().await)).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(outcome.metrics.total("unrouted"), 1);
    let store = &aws.backend.store;
    let (pr1, pr2) = (
        EventKey::new("github", "pr-1"),
        EventKey::new("github", "pr-2"),
    );
    assert_eq!(
        store.routed(&pr1).await.unwrap(),
        Some(vec!["opened".to_owned()])
    );
    assert_eq!(store.routed(&pr2).await.unwrap(), Some(vec![]));
    let (event, response) = aws.pump_deliver(1).await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(
        parse_task(event.records[0].body.as_deref().unwrap()).unwrap(),
        task("github", "pr-1", "opened")
    );
    assert_eq!(sink.count(), 1);
}

async fn deliver_reports_only_the_message_whose_destination_failed() {
    let ok = Sink::start(200).await;
    let broken = Sink::start(500).await;
    let extra = format!(
        r#"
[[subscriptions]]
id = "issues"
source = "github"
events = ["issues.*"]
url = "{}"
retry_schedule = ["1s", "1s"]
allow_local = true
"#,
        broken.url()
    );
    let aws = Aws::new(&config(&ok.url(), &extra)).await;
    let push_body = br#"{"ref":"p"}"#;
    let issue_body = br#"{"action":"opened"}"#;
    assert_eq!(
        aws.post("github", &push("p-1", push_body), push_body)
            .await
            .0,
        200
    );
    let issue = github_headers(GH_SECRET, "i-1", "issues", issue_body);
    assert_eq!(aws.post("github", &issue, issue_body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 2);

    let (event, response) = aws.pump_deliver(2).await;
    let issue_message = event
        .records
        .iter()
        .find(|m| parse_task(m.body.as_deref().unwrap()).unwrap().subscription == "issues")
        .unwrap();
    assert_eq!(
        failed_ids(&response),
        [issue_message.message_id.clone().unwrap()]
    );
    assert_eq!(ok.count(), 1);
    assert_eq!(broken.count(), 1);
    assert_eq!(
        aws.status("p-1", "deploys").await,
        Some(DeliveryStatus::Delivered)
    );
    assert_eq!(
        aws.status("i-1", "issues").await,
        Some(DeliveryStatus::Pending)
    );
}

async fn a_failed_attempt_comes_back_after_its_backoff_with_the_next_receive_count() {
    let sink = Sink::start(200).await;
    sink.script(&[500]);
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"r"}"#;
    assert_eq!(aws.post("github", &push("r-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);

    let first = aws.receive_tasks(1).await;
    assert_eq!(receive_count(&first[0]), 1);
    let event = sqs_event(&first);
    let outcome = sluice_deliver::process(aws.deliver_ports(), event.clone()).await;
    assert_eq!(
        failed_ids(&outcome.response),
        [event.records[0].message_id.clone().unwrap()]
    );
    assert_eq!(outcome.metrics.total("retried"), 1);
    assert_eq!(outcome.metrics.latencies().len(), 1);
    assert_eq!(
        aws.status("r-1", "deploys").await,
        Some(DeliveryStatus::Pending)
    );
    let attempts = aws
        .backend
        .store
        .attempts(&task("github", "r-1", "deploys"))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, Some(500));
    assert!(attempts[0].next_attempt_at_ms.is_some());

    // Hidden for the backoff (1 s ± 20 %, rounded up to whole seconds)
    // rather than the queue's 30 s visibility timeout…
    let started = std::time::Instant::now();
    let again = aws.receive_tasks(1).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // …and back as attempt 2, which succeeds.
    assert_eq!(receive_count(&again[0]), 2);
    let event = sqs_event(&again);
    let outcome = sluice_deliver::process(aws.deliver_ports(), event).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(outcome.metrics.total("delivered"), 1);
    assert_eq!(
        sink.received().iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 200]
    );
    assert_eq!(
        aws.status("r-1", "deploys").await,
        Some(DeliveryStatus::Delivered)
    );
    let attempts = aws
        .backend
        .store
        .attempts(&task("github", "r-1", "deploys"))
        .await
        .unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
}

async fn exhausted_retries_end_on_the_dlq_with_the_delivery_failed() {
    let sink = Sink::start(500).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"x"}"#;
    assert_eq!(aws.post("github", &push("x-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);

    // retry_schedule has two waits: three attempts.
    for attempt in 1..=3 {
        let messages = aws.receive_tasks(1).await;
        assert_eq!(receive_count(&messages[0]), attempt);
        let response = sluice_deliver::handle(aws.deliver_ports(), sqs_event(&messages)).await;
        let reported = !response.batch_item_failures.is_empty();
        assert_eq!(reported, attempt < 3, "attempt {attempt}: {response:?}");
    }
    assert_eq!(sink.count(), 3);
    assert_eq!(
        aws.status("x-1", "deploys").await,
        Some(DeliveryStatus::Failed)
    );
    let dead = receive_all(&aws.res.clients.sqs, &aws.res.settings.dlq_url, 1).await;
    assert_eq!(
        parse_task(dead[0].body().unwrap()).unwrap(),
        task("github", "x-1", "deploys")
    );
    let reason = dead[0].message_attributes().unwrap()[ATTR_REASON]
        .string_value()
        .unwrap()
        .to_owned();
    assert!(reason.contains("500"), "{reason}");
}

/// Two deliveries exhausted by one deliver function: it commits one
/// `delivery.exhausted` notification to the events table (a PutItem, the
/// second a duplicate of the first), which the stream routes to a
/// Slack-format subscription on source `sluice` like any event.
async fn an_exhausted_delivery_commits_one_notification_that_reaches_a_slack_subscription() {
    let sink = Sink::start(500).await;
    let slack = Sink::start(200).await;
    let ops = format!(
        r#"
[[subscriptions]]
id = "ops"
source = "sluice"
events = ["delivery.exhausted"]
url = "{}"
format = "slack"
allow_local = true
"#,
        slack.url()
    );
    let aws = Aws::new(&config(&sink.url(), &ops)).await;
    for id in ["n-1", "n-2"] {
        let body = format!(r#"{{"ref":"{id}"}}"#);
        let body = body.as_bytes();
        assert_eq!(aws.post("github", &push(id, body), body).await.0, 200);
    }
    assert_eq!(aws.pump_enqueue().await, 2);
    // retry_schedule has two waits: three attempts of each.
    for attempt in 1..=3 {
        let messages = aws.receive_tasks(2).await;
        let response = sluice_deliver::handle(aws.deliver_ports(), sqs_event(&messages)).await;
        assert_eq!(
            response.batch_item_failures.len(),
            if attempt < 3 { 2 } else { 0 },
            "attempt {attempt}: {response:?}"
        );
    }
    assert_eq!(sink.count(), 6);
    // One notification for both, routed to ops.
    assert_eq!(aws.pump_enqueue().await, 1);
    let (_, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let got = slack.received();
    assert_eq!(got.len(), 1);
    let message: Value = serde_json::from_slice(&got[0].body).unwrap();
    let text = message["text"].as_str().unwrap();
    assert!(text.contains("Delivery to deploys failed"), "{message}");
    assert!(message["blocks"].is_array(), "{message}");
    let all = message.to_string();
    assert!(
        all.contains("github#n-1") || all.contains("github#n-2"),
        "{all}"
    );
}

async fn a_410_disables_the_subscription_in_the_config_table() {
    let sink = Sink::start(410).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"g"}"#;
    assert_eq!(aws.post("github", &push("g-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    let (_, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(
        aws.status("g-1", "deploys").await,
        Some(DeliveryStatus::Failed)
    );

    let stored = read_config(&aws.res.clients.dynamodb, &aws.res.settings.config_table)
        .await
        .unwrap();
    assert_eq!(stored.disabled, ["deploys"]);
    assert_eq!(
        receive_all(&aws.res.clients.sqs, &aws.res.settings.dlq_url, 1)
            .await
            .len(),
        1
    );

    // A fresh execution environment (no cache) routes nothing to it now.
    let fresh = aws.fresh_backend(sluice_enqueue::FUNCTION).await;
    let body = br#"{"ref":"g2"}"#;
    assert_eq!(aws.post("github", &push("g-2", body), body).await.0, 200);
    let ports = sluice_enqueue::Ports {
        registry: &fresh.registry,
        queue: &fresh.queue,
        store: &fresh.store,
    };
    let outcome = sluice_enqueue::process(ports, stream_event(aws.new_inserts().await)).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(outcome.metrics.total("unrouted"), 1);
    assert_eq!(sink.count(), 1);
}

async fn a_message_redelivered_after_success_is_not_delivered_twice() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"once"}"#;
    assert_eq!(aws.post("github", &push("o-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    let (event, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(sink.count(), 1);

    // SQS delivers at least once: the same message again.
    let outcome = sluice_deliver::process(aws.deliver_ports(), event).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(outcome.metrics.total("skipped"), 1);
    assert_eq!(sink.count(), 1);
    assert_eq!(
        aws.status("o-1", "deploys").await,
        Some(DeliveryStatus::Delivered)
    );
}

async fn a_message_that_is_not_a_task_is_dead_lettered_as_it_is() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    aws.res
        .clients
        .sqs
        .send_message()
        .queue_url(&aws.res.settings.queue_url)
        .message_body("not a task {")
        .send()
        .await
        .unwrap();
    let (_, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let dead = receive_all(&aws.res.clients.sqs, &aws.res.settings.dlq_url, 1).await;
    assert_eq!(dead[0].body(), Some("not a task {"));
    let reason = dead[0].message_attributes().unwrap()[ATTR_REASON]
        .string_value()
        .unwrap();
    assert!(reason.contains("not a delivery task"), "{reason}");
    assert_eq!(sink.count(), 0);
}

/// Four deliver invocations at once, each its own execution environment,
/// take batches of a 30-event burst to a subscription limited to 10
/// requests a second and 2 at once: the shared state in the gates table
/// (conditional writes) holds both limits across them, and every event
/// arrives once. The admin function shows the controls and the circuit,
/// and forgets them with the subscription.
async fn a_rate_limit_and_max_in_flight_hold_across_concurrent_deliver_invocations() {
    const N: usize = 30;
    let sink = Sink::start(200).await;
    sink.set_delay(Duration::from_millis(100));
    let aws = Aws::new(&config(
        &sink.url(),
        "rate_limit = \"10/s\"\nmax_in_flight = 2",
    ))
    .await;
    for i in 0..N {
        let body = format!(r#"{{"ref":"refs/heads/main","n":"rl-{i}"}}"#);
        let (status, _) = aws
            .post(
                "github",
                &push(&format!("rl-{i}"), body.as_bytes()),
                body.as_bytes(),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(aws.pump_enqueue().await, N);

    let deadline = Instant::now() + Duration::from_secs(90);
    let invocation = || async {
        let backend = aws.fresh_backend(sluice_deliver::FUNCTION).await;
        let gate = aws.fresh_gate().await;
        let ports = sluice_deliver::Ports {
            registry: &backend.registry,
            store: &backend.store,
            queue: &backend.queue,
            gate: &gate,
            ..aws.deliver_ports()
        };
        while sink.successes().len() < N && Instant::now() < deadline {
            let messages = aws.visible(&aws.res.settings.queue_url).await;
            if !messages.is_empty() {
                deliver_as_lambda(&aws, ports, &messages).await;
            }
        }
    };
    tokio::join!(invocation(), invocation(), invocation(), invocation());

    let got = sink.received();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["n"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), N, "one request per event");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "every event, none twice");
    // No second holds more than 10 (the loopback hop's jitter allowed).
    for w in got.windows(11) {
        let span = w[10].at - w[0].at;
        assert!(
            span + Duration::from_millis(25) >= Duration::from_secs(1),
            "11 within {span:?}"
        );
    }
    assert!(sink.max_concurrent() <= 2, "{}", sink.max_concurrent());

    let (status, sub) = aws
        .admin("GET", "/admin/subscriptions/deploys", Value::Null)
        .await;
    assert_eq!(status, 200, "{sub}");
    let controls = &sub["delivery_controls"];
    assert_eq!(controls["rate_limit"], "10/s", "{sub}");
    assert_eq!(controls["max_in_flight"], 2, "{sub}");
    assert_eq!(controls["circuit"]["state"], "closed", "{sub}");
    assert!(aws.deliver_gate.state("deploys").await.unwrap().is_some());

    // One made through the API: its own breaker, and forgotten with it.
    let (status, created) = aws
        .admin(
            "POST",
            "/admin/subscriptions",
            json!({
                "id": "extra", "source": "github", "events": ["push"],
                "url": sink.url(), "allow_local": true,
                "circuit_breaker": {"failures": 5, "probe_after": "10s"},
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (_, extra) = aws
        .admin("GET", "/admin/subscriptions/extra", Value::Null)
        .await;
    let breaker = &extra["delivery_controls"]["circuit_breaker"];
    assert_eq!(
        (
            breaker["failures"].as_u64(),
            breaker["probe_after"].as_str()
        ),
        (Some(5), Some("10s")),
        "{extra}"
    );
    let (status, _) = aws
        .admin("DELETE", "/admin/subscriptions/extra", Value::Null)
        .await;
    assert_eq!(status, 204);
    assert_eq!(aws.deliver_gate.state("extra").await.unwrap(), None);
}

/// The deliver handler as Lambda runs it: messages it does not report
/// are deleted.
async fn deliver_as_lambda(
    aws: &Aws,
    ports: sluice_deliver::Ports<'_>,
    messages: &[Message],
) -> sluice_deliver::Outcome {
    let outcome = sluice_deliver::process(ports, sqs_event(messages)).await;
    let reported: BTreeSet<String> = outcome
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    for m in messages {
        if !reported.contains(m.message_id().unwrap()) {
            aws.res
                .clients
                .sqs
                .delete_message()
                .queue_url(&aws.res.settings.queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    outcome
}

/// Deliver ports with a short lease and pause recheck, so a test sees
/// what comes back without waiting minutes.
fn quick_ports(aws: &Aws) -> sluice_deliver::Ports<'_> {
    sluice_deliver::Ports {
        options: sluice::pipeline::deliver::DeliverOptions {
            lease: Duration::from_secs(5),
            pause_recheck: Duration::from_secs(1),
            ..Default::default()
        },
        ..aws.deliver_ports()
    }
}

/// SQS hands one message to two deliver invocations at once, and a partly
/// failed stream batch queues the task a second time: against a
/// destination that answers after 2 s, the three overlapping copies make
/// one POST. The losers are put back for the rest of the lease, and once
/// the delivery is final they are dropped (not dead-lettered).
async fn overlapping_copies_of_one_task_make_one_post() {
    let sink = Sink::start(200).await;
    sink.set_delay(Duration::from_secs(2));
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"twice"}"#;
    assert_eq!(aws.post("github", &push("t-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    let original = aws.receive_tasks(1).await;
    // The same task queued again, as a re-run enqueue would.
    aws.res
        .clients
        .sqs
        .send_message()
        .queue_url(&aws.res.settings.queue_url)
        .message_body(original[0].body().unwrap())
        .send()
        .await
        .unwrap();
    let copy = aws.receive_tasks(1).await;
    let ports = quick_ports(&aws);
    let (a, b, c) = tokio::join!(
        deliver_as_lambda(&aws, ports, &original),
        deliver_as_lambda(&aws, ports, &original),
        deliver_as_lambda(&aws, ports, &copy),
    );
    let total = |what| a.metrics.total(what) + b.metrics.total(what) + c.metrics.total(what);
    assert_eq!(total("delivered"), 1);
    assert_eq!(total("put_back"), 2);
    assert_eq!(sink.count(), 1, "one POST");
    assert_eq!(
        aws.status("t-1", "deploys").await,
        Some(DeliveryStatus::Delivered)
    );
    // The put-back copy returns after the lease and is dropped quietly.
    let back = aws.receive_tasks(1).await;
    let outcome = deliver_as_lambda(&aws, ports, &back).await;
    assert_eq!(outcome.metrics.total("skipped"), 1);
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(sink.count(), 1);
    let attempts = aws
        .backend
        .store
        .attempts(&task("github", "t-1", "deploys"))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(aws.visible(&aws.res.settings.dlq_url).await.is_empty());
}

/// Disabling a subscription pauses it: a queued task is re-queued as a
/// fresh delayed message (no receive counted towards the redrive), nothing
/// is sent or recorded, and once it is enabled again the task is delivered
/// once.
async fn a_paused_subscription_holds_its_tasks_until_resumed() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"pause"}"#;
    assert_eq!(aws.post("github", &push("p-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    let (status, _) = aws
        .admin("POST", "/admin/subscriptions/deploys/disable", Value::Null)
        .await;
    assert_eq!(status, 200);
    let paused = aws.fresh_backend(sluice_deliver::FUNCTION).await;
    let ports = sluice_deliver::Ports {
        registry: &paused.registry,
        store: &paused.store,
        queue: &paused.queue,
        ..quick_ports(&aws)
    };
    for _ in 0..3 {
        let messages = aws.receive_tasks(1).await;
        assert_eq!(receive_count(&messages[0]), 1, "a fresh message each time");
        let outcome = deliver_as_lambda(&aws, ports, &messages).await;
        assert_eq!(outcome.metrics.total("paused"), 1);
        assert!(outcome.response.batch_item_failures.is_empty());
    }
    assert_eq!(sink.count(), 0);
    assert_eq!(
        aws.status("p-1", "deploys").await,
        Some(DeliveryStatus::Pending)
    );

    let (status, _) = aws
        .admin("POST", "/admin/subscriptions/deploys/enable", Value::Null)
        .await;
    assert_eq!(status, 200);
    let resumed = aws.fresh_backend(sluice_deliver::FUNCTION).await;
    let ports = sluice_deliver::Ports {
        registry: &resumed.registry,
        store: &resumed.store,
        queue: &resumed.queue,
        ..quick_ports(&aws)
    };
    let messages = aws.receive_tasks(1).await;
    let outcome = deliver_as_lambda(&aws, ports, &messages).await;
    assert_eq!(outcome.metrics.total("delivered"), 1);
    assert_eq!(sink.count(), 1);
    assert_eq!(
        aws.status("p-1", "deploys").await,
        Some(DeliveryStatus::Delivered)
    );
    let attempts = aws
        .backend
        .store
        .attempts(&task("github", "p-1", "deploys"))
        .await
        .unwrap();
    assert_eq!(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1]);
}

/// A task whose subscription was deleted is recorded as a failed attempt
/// with the reason: it is listed as a dead letter by the admin API (and
/// `dlq list`), and on the DLQ.
async fn a_deleted_subscriptions_task_is_a_listed_dead_letter() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"deleted"}"#;
    assert_eq!(aws.post("github", &push("d-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    // Deleted from the config table (this one came from a file, which the
    // admin API leaves to the file).
    aws.res
        .clients
        .dynamodb
        .delete_item()
        .table_name(&aws.res.settings.config_table)
        .key(
            sluice::aws::item::PK,
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "{}deploys",
                sluice::aws::item::cf::SUBSCRIPTION_PREFIX
            )),
        )
        .send()
        .await
        .unwrap();
    let fresh = aws.fresh_backend(sluice_deliver::FUNCTION).await;
    let ports = sluice_deliver::Ports {
        registry: &fresh.registry,
        store: &fresh.store,
        queue: &fresh.queue,
        ..aws.deliver_ports()
    };
    let messages = aws.receive_tasks(1).await;
    let outcome = deliver_as_lambda(&aws, ports, &messages).await;
    assert_eq!(outcome.metrics.total("failed"), 1);
    assert_eq!(sink.count(), 0);
    assert_eq!(
        aws.status("d-1", "deploys").await,
        Some(DeliveryStatus::Failed)
    );
    let (status, listed) = aws.admin("GET", "/admin/dlq", Value::Null).await;
    assert_eq!(status, 200);
    let items = listed["dead_letters"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["subscription"], "deploys");
    assert_eq!(
        items[0]["reason"],
        "failed on attempt 1: subscription was deleted"
    );
    let dead = receive_all(&aws.res.clients.sqs, &aws.res.settings.dlq_url, 1).await;
    assert_eq!(
        parse_task(dead[0].body().unwrap()).unwrap(),
        task("github", "d-1", "deploys")
    );
}

/// The whole loop on AWS: a webhook fails at its destination until its
/// retries run out (dead letter), the admin function lists and shows it,
/// the destination recovers, a replay through the admin function is one
/// new events item that the stream takes through enqueue and deliver, and
/// the dead letter is settled (listing and DLQ). A bulk replay then finds
/// nothing left to replay.
async fn a_failed_event_is_listed_shown_and_replayed_through_the_admin_function() {
    let sink = Sink::start(500).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"refs/heads/main","admin":true}"#;
    assert_eq!(aws.post("github", &push("a-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    for attempt in 1..=3 {
        let messages = aws.receive_tasks(1).await;
        let response = sluice_deliver::handle(aws.deliver_ports(), sqs_event(&messages)).await;
        assert_eq!(response.batch_item_failures.is_empty(), attempt == 3);
    }
    assert_eq!(
        aws.status("a-1", "deploys").await,
        Some(DeliveryStatus::Failed)
    );

    let (s, v) = aws
        .admin("GET", "/admin/events?status=failed", Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["events"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["events"][0]["id"], "github#a-1");
    assert_eq!(v["events"][0]["type"], "push");
    assert_eq!(
        v["events"][0]["deliveries"],
        json!({"pending": 0, "delivered": 0, "failed": 1})
    );
    let dest = &v["events"][0]["destinations"];
    assert_eq!(dest.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(dest[0]["subscription"], "deploys");
    assert_eq!(dest[0]["status"], "failed");
    assert!(dest[0]["attempts"].as_u64().is_some_and(|n| n >= 1), "{v}");
    let (_, v) = aws
        .admin("GET", "/admin/events?status=delivered", Value::Null)
        .await;
    assert_eq!(v["events"], json!([]));

    let (s, v) = aws
        .admin("GET", "/admin/events/github%23a-1", Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["body"], std::str::from_utf8(body).unwrap());
    assert_eq!(v["routed"], json!(["deploys"]));
    let delivery = &v["deliveries"][0];
    assert_eq!(delivery["subscription"], "deploys");
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts"]["total"], 3);
    assert_eq!(delivery["attempt_log"][2]["status_code"], 500);
    assert!(
        v["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["x-github-event", "push"])),
        "{v}"
    );

    let (s, v) = aws.admin("GET", "/admin/dlq", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["dead_letters"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["dead_letters"][0]["id"], "github#a-1#deploys");
    assert_eq!(v["dead_letters"][0]["receive_count"], 3);
    assert!(
        v["dead_letters"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{v}"
    );

    // The destination recovers; the operator replays.
    sink.set_default(200);
    let (s, v) = aws
        .admin(
            "POST",
            "/admin/events/github%23a-1/replay",
            json!({"subscription": "deploys"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["id"], "github#a-1#replay-1");
    assert_eq!(v["replay_of"], "github#a-1");
    // Settled: out of the listing, and its DLQ message deleted.
    let (_, v) = aws.admin("GET", "/admin/dlq", Value::Null).await;
    assert_eq!(v["dead_letters"], json!([]), "{v}");
    assert!(aws.visible(&aws.res.settings.dlq_url).await.is_empty());

    // One durable write: the replay reaches deliver through the stream.
    assert_eq!(aws.pump_enqueue().await, 1);
    let replay = EventKey::new("github", "a-1#replay-1");
    assert_eq!(
        aws.backend.store.routed(&replay).await.unwrap(),
        Some(vec!["deploys".to_owned()])
    );
    let (_, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let delivered = sink.successes();
    assert_eq!(delivered.len(), 1);
    assert_eq!(&delivered[0].body[..], &body[..]);
    assert_eq!(delivered[0].headers["webhook-id"], "github#a-1#replay-1");
    assert!(standard_webhooks_valid(
        SUB_SECRET,
        &delivered[0].headers,
        &delivered[0].body
    ));

    let (_, v) = aws
        .admin("GET", "/admin/events/github%23a-1", Value::Null)
        .await;
    assert_eq!(v["replays"], json!(["github#a-1#replay-1"]));
    let (_, v) = aws
        .admin("GET", "/admin/events/github%23a-1%23replay-1", Value::Null)
        .await;
    assert_eq!(v["status"], "delivered", "{v}");
    assert_eq!(v["replay_of"], "github#a-1");
    let (_, v) = aws.admin("GET", "/admin/events?limit=1", Value::Null).await;
    assert_eq!(v["events"][0]["id"], "github#a-1#replay-1", "newest first");
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let (_, v) = aws
        .admin(
            "GET",
            &format!("/admin/events?limit=1&cursor={cursor}"),
            Value::Null,
        )
        .await;
    assert_eq!(v["events"][0]["id"], "github#a-1");
    let (s, _) = aws
        .admin("GET", "/admin/events?cursor=nope", Value::Null)
        .await;
    assert_eq!(s, 422);

    // Repeatable: the failed delivery is already followed by a replay.
    let (s, v) = aws
        .admin("POST", "/admin/replay", json!({"status": "failed"}))
        .await;
    assert_eq!((s, &v["replayed"]), (202, &json!(0)), "{v}");
    let (_, v) = aws
        .admin(
            "POST",
            "/admin/replay",
            json!({"status": "delivered", "dry_run": true}),
        )
        .await;
    assert_eq!(v["replayed"], 1, "{v}");
    assert_eq!(v["replays"][0]["event"], "github#a-1#replay-1");
}

/// Two subscriptions fail; a replay to one reaches only that one (enqueue
/// routes a replay to the subscriptions it names, even though the other
/// matches the event), and its DLQ sweep leaves the other's dead letter,
/// which a redrive then replays. Concurrent replays get distinct numbers.
async fn a_replay_goes_to_the_named_subscription_only_and_the_dlq_redrives() {
    let sink = Sink::start(503).await;
    let text = format!(
        r#"
[[sources]]
id = "github"
provider = "github"
secrets = ["ssm:{{ssm}}/github"]

[[subscriptions]]
id = "deploys"
source = "github"
events = ["push"]
url = "{url}"
retry_schedule = []
allow_local = true

[[subscriptions]]
id = "audit"
source = "github"
events = ["*"]
url = "{url}"
retry_schedule = []
allow_local = true
"#,
        url = sink.url()
    );
    let aws = Aws::new(&text).await;
    let body = br#"{"ref":"two"}"#;
    assert_eq!(aws.post("github", &push("t-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    let (_, response) = aws.pump_deliver(2).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let (_, v) = aws
        .admin("GET", "/admin/dlq?subscription=audit", Value::Null)
        .await;
    assert_eq!(v["dead_letters"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = aws.admin("GET", "/admin/dlq?limit=1", Value::Null).await;
    assert_eq!(v["dead_letters"].as_array().unwrap().len(), 1, "{v}");
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let (_, v2) = aws
        .admin(
            "GET",
            &format!("/admin/dlq?limit=1&cursor={cursor}"),
            Value::Null,
        )
        .await;
    assert_ne!(v["dead_letters"][0]["id"], v2["dead_letters"][0]["id"]);

    sink.set_default(200);
    let (s, v) = aws
        .admin(
            "POST",
            "/admin/events/github%23t-1/replay",
            json!({"subscription": "deploys"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(aws.pump_enqueue().await, 1);
    let (event, _) = aws.pump_deliver(1).await;
    assert_eq!(
        parse_task(event.records[0].body.as_deref().unwrap()).unwrap(),
        task("github", "t-1#replay-1", "deploys")
    );
    assert!(
        aws.visible(&aws.res.settings.queue_url).await.is_empty(),
        "no task for audit"
    );
    // audit's dead letter is still listed and still on the DLQ.
    let (_, v) = aws.admin("GET", "/admin/dlq", Value::Null).await;
    assert_eq!(v["dead_letters"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["dead_letters"][0]["id"], "github#t-1#audit");
    let dlq = receive_all(&aws.res.clients.sqs, &aws.res.settings.dlq_url, 1).await;
    assert_eq!(
        parse_task(dlq[0].body().unwrap()).unwrap(),
        task("github", "t-1", "audit")
    );
    aws.res
        .clients
        .sqs
        .change_message_visibility()
        .queue_url(&aws.res.settings.dlq_url)
        .receipt_handle(dlq[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();

    let (s, v) = aws
        .admin(
            "POST",
            "/admin/dlq/redrive",
            json!({"ids": ["github#t-1#audit"]}),
        )
        .await;
    assert_eq!((s, &v["redriven"]), (202, &json!(1)), "{v}");
    assert_eq!(v["replays"][0]["id"], "github#t-1#replay-2");
    assert!(aws.visible(&aws.res.settings.dlq_url).await.is_empty());
    let (_, v) = aws.admin("GET", "/admin/dlq", Value::Null).await;
    assert_eq!(v["dead_letters"], json!([]), "{v}");
    assert_eq!(aws.pump_enqueue().await, 1);
    let (event, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        parse_task(event.records[0].body.as_deref().unwrap()).unwrap(),
        task("github", "t-1#replay-2", "audit")
    );

    // Concurrent replays of one event: distinct numbers, each committed once.
    let replays = futures::future::join_all((0..4).map(|_| {
        aws.admin(
            "POST",
            "/admin/events/github%23t-1/replay",
            json!({"subscription": "audit"}),
        )
    }))
    .await;
    let mut ids: Vec<String> = replays
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, 202, "{v}");
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(aws.pump_enqueue().await, 4);
}

/// Config changes and secrets through the admin function, on the config
/// table and SSM; and without the IAM authorizer's identity nothing runs.
async fn the_admin_function_manages_config_and_secrets_and_requires_an_iam_identity() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let (s, v) = aws
        .admin(
            "POST",
            "/admin/subscriptions",
            json!({"id": "ops", "source": "github", "url": sink.url(), "events": ["*"], "allow_local": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["signing_secret"].as_str().unwrap().starts_with("whsec_"));
    let (s, _) = aws
        .admin("POST", "/admin/subscriptions/ops/disable", Value::Null)
        .await;
    assert_eq!(s, 200);
    let stored = read_config(&aws.res.clients.dynamodb, &aws.res.settings.config_table)
        .await
        .unwrap();
    assert_eq!(stored.disabled, ["ops"]);
    let reference = stored
        .file
        .subscriptions
        .iter()
        .find(|s| s.id == "ops")
        .unwrap()
        .signing_secret
        .clone()
        .unwrap();
    let sluice::secrets::SecretRef::Ssm(path) = &reference else {
        panic!("{reference:?}")
    };
    assert!(path.starts_with(&aws.res.settings.ssm_prefix), "{path}");
    let (s, _) = aws
        .admin("DELETE", "/admin/subscriptions/ops", Value::Null)
        .await;
    assert_eq!(s, 204);
    let gone = aws.res.clients.ssm.get_parameter().name(path).send().await;
    assert!(gone.is_err(), "its parameter is deleted");
    let (s, v) = aws
        .admin("GET", "/admin/events/github%23none", Value::Null)
        .await;
    assert_eq!((s, &v["error"]), (404, &json!("not_found")));

    // No IAM identity (the route is not IAM-authorised): refused.
    let mut event = admin_event("GET", "/admin/sources", &Value::Null);
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let response = sluice_admin::handle_event(&aws.admin_fn, event).await;
    assert_eq!(response.status_code, 401);
    // A bearer token of the caller's own is no way in either: IAM is
    // the gate.
    let mut event = admin_event("GET", "/admin/sources", &Value::Null);
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    event["headers"]["authorization"] = json!("Bearer guess-guess-guess-guess");
    let response = sluice_admin::handle_event(&aws.admin_fn, event).await;
    assert_eq!(response.status_code, 401);
    // Not an HTTP API event at all: a 400, not a panic.
    let response = sluice_admin::handle_event(&aws.admin_fn, json!({"Records": []})).await;
    assert_eq!(response.status_code, 400);
    let mut bad = admin_event("POST", "/admin/sources", &Value::Null);
    bad["body"] = json!("%%%");
    bad["isBase64Encoded"] = json!(true);
    let response = sluice_admin::handle_event(&aws.admin_fn, bad).await;
    assert_eq!(response.status_code, 400);
}

/// A config with a healthy source and one whose secret is not in SSM.
fn config_with_a_broken_source(url: &str) -> String {
    config(
        url,
        r#"
[[sources]]
id = "broken"
provider = "github"
secrets = ["ssm:{ssm}/not-there"]
"#,
    )
}

async fn one_source_whose_secret_is_missing_takes_down_no_other() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config_with_a_broken_source(&sink.url())).await;
    let body = br#"{"ref":"x"}"#;
    // Cold: the healthy source is served, the broken one answers 503 with
    // its own code and no detail.
    let (status, answer) = aws.post("github", &push("c-1", body), body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = aws.post("broken", &push("c-2", body), body).await;
    assert_eq!(
        (status, &answer["error"], &answer["request_id"]),
        (503, &json!("source_unavailable"), &json!("r")),
        "{answer}"
    );
    assert!(!answer.to_string().contains("not-there"), "{answer}");

    // Warm, with a config refreshed on every call: a source added since
    // is served although the broken one still is broken.
    let mut settings = aws.res.settings.clone();
    settings.config_ttl = Duration::ZERO;
    let warm = recorded_backend(
        &aws.calls,
        &aws.resources,
        &settings,
        sluice_receive::FUNCTION,
    )
    .await;
    let ports = sluice_receive::Ports {
        registry: &warm.registry,
        store: &warm.store,
    };
    let post = |source: &'static str, id: &'static str| {
        let request: ApiGatewayV2httpRequest =
            serde_json::from_value(apigw_event(source, &push(id, body), body)).unwrap();
        async move { reply(&sluice_receive::handle(ports, request, SystemTime::now()).await) }
    };
    assert_eq!(post("github", "w-1").await.0, 200);
    assert_eq!(post("broken", "w-2").await.0, 503);
    let mut fresh =
        ConfigFile::parse(&config(&sink.url(), "").replace("{ssm}", &aws.res.settings.ssm_prefix))
            .unwrap();
    fresh.sources[0].id = "fresh".into();
    fresh.subscriptions.clear();
    put_config(
        &aws.res.clients.dynamodb,
        &aws.res.settings.config_table,
        &fresh,
    )
    .await
    .unwrap();
    let (status, answer) = post("fresh", "w-3").await;
    assert_eq!(status, 200, "a new source appears: {answer}");
    assert_eq!(post("github", "w-4").await.0, 200);
    assert_eq!(post("broken", "w-5").await.0, 503);
}

async fn a_store_failure_is_a_503_that_names_no_internals_and_carries_the_request_id() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let body = br#"{"ref":"x"}"#;
    // The registry is warm; then the events table goes away.
    assert_eq!(aws.post("github", &push("s-0", body), body).await.0, 200);
    let db = &aws.res.clients.dynamodb;
    db.delete_table()
        .table_name(&aws.res.settings.events_table)
        .send()
        .await
        .unwrap();
    let event = apigw_event("github", &push("s-1", body), body);
    let request: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
    let response = sluice_receive::handle(aws.receive_ports(), request, SystemTime::now()).await;
    assert_eq!(response.headers["x-request-id"], "r");
    let (status, answer) = reply(&response);
    assert_eq!(
        (status, &answer["error"]),
        (503, &json!("unavailable")),
        "{answer}"
    );
    assert_eq!(answer["request_id"], "r");
    let text = answer.to_string();
    for leak in [
        aws.res.settings.events_table.as_str(),
        "ResourceNotFound",
        "arn:",
        "PutItem",
        "dynamodb",
        "request id",
        "service error",
    ] {
        assert!(!text.contains(leak), "{leak:?} in {text}");
    }

    // The admin API's 5xx the same way: the config table goes too.
    db.delete_table()
        .table_name(&aws.res.settings.config_table)
        .send()
        .await
        .unwrap();
    let response = sluice_admin::handle_event(
        &aws.admin_fn,
        admin_event("GET", "/admin/sources", &Value::Null),
    )
    .await;
    let (status, answer) = reply(&response);
    assert_eq!(
        (status, &answer["error"]),
        (503, &json!("unavailable")),
        "{answer}"
    );
    assert!(
        answer["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{answer}"
    );
    let text = answer.to_string();
    for leak in [
        aws.res.settings.config_table.as_str(),
        "ResourceNotFound",
        "Scan",
        "arn:",
    ] {
        assert!(!text.contains(leak), "{leak:?} in {text}");
    }
}

async fn allow_local_needs_the_deployments_switch() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let local = json!({"id": "local", "source": "github", "url": sink.url(), "events": ["*"], "allow_local": true});
    // The switch off, as in both templates.
    let mut off = aws.res.settings.clone();
    off.allow_local_destinations = false;
    let clients = MotoServer::shared()
        .clients_with(
            aws.calls
                .recorder(sluice_admin::FUNCTION, aws.resources.clone()),
        )
        .await;
    let gate =
        sluice_admin::IamGate::new(sluice::aws::admin_ports(&clients, &off).unwrap()).unwrap();
    let response =
        sluice_admin::handle_event(&gate, admin_event("POST", "/admin/subscriptions", &local))
            .await;
    let (status, answer) = reply(&response);
    assert_eq!(
        (status, &answer["field"]),
        (422, &json!("allow_local")),
        "{answer}"
    );
    // The config written earlier (deploys has allow_local) is refused at
    // load by a function without the switch: nothing reaches 127.0.0.1.
    let deliver =
        recorded_backend(&aws.calls, &aws.resources, &off, sluice_deliver::FUNCTION).await;
    let err = sluice::config::Registry::subscription(&deliver.registry, "deploys")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allow_local"), "{err}");
    // With the switch on (`make watch`, these tests): accepted.
    let (status, answer) = aws.admin("POST", "/admin/subscriptions", local).await;
    assert_eq!(status, 201, "{answer}");
}

async fn a_stored_secret_in_use_is_not_deleted_and_a_source_in_use_is_not_deleted() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    let prefix = aws.res.settings.ssm_prefix.clone();
    let shared = format!("ssm:{prefix}/github");
    let (s, v) = aws
        .admin(
            "POST",
            "/admin/sources",
            json!({"id": "mirror", "provider": "github", "secrets": [shared, {"value": "mirror-own"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // Removing it from mirror would delete the parameter github uses.
    let (s, v) = aws
        .admin(
            "DELETE",
            &format!(
                "/admin/sources/mirror/secrets/{}",
                shared.replace('/', "%2F")
            ),
            Value::Null,
        )
        .await;
    assert_eq!((s, &v["error"]), (409, &json!("conflict")), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("source \"github\""),
        "{v}"
    );
    // Deleting mirror keeps it too; github still verifies.
    let (s, _) = aws
        .admin("DELETE", "/admin/sources/mirror", Value::Null)
        .await;
    assert_eq!(s, 204);
    let kept = aws
        .res
        .clients
        .ssm
        .get_parameter()
        .name(format!("{prefix}/github"))
        .send()
        .await;
    assert!(kept.is_ok(), "the shared parameter is kept");
    let body = br#"{"ref":"x"}"#;
    assert_eq!(aws.post("github", &push("k-1", body), body).await.0, 200);
    // A source with a subscription is not deleted.
    let (s, v) = aws
        .admin(
            "POST",
            "/admin/sources",
            json!({"id": "owned", "provider": "github", "secrets": [shared]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = aws
        .admin(
            "POST",
            "/admin/subscriptions",
            json!({"id": "owned-sub", "source": "owned", "url": "https://example.com/x", "events": ["*"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = aws
        .admin("DELETE", "/admin/sources/owned", Value::Null)
        .await;
    assert_eq!((s, &v["error"]), (409, &json!("conflict")), "{v}");
}

async fn a_concurrent_subscription_create_and_source_delete_leave_no_orphan() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(&sink.url(), "")).await;
    // Two processes: the admin function, and an operator's CLI (its own
    // ports, its own write lock).
    let clients = MotoServer::shared()
        .clients_with(
            aws.calls
                .recorder(sluice_admin::FUNCTION, aws.resources.clone()),
        )
        .await;
    let cli =
        sluice_admin::IamGate::new(sluice::aws::admin_ports(&clients, &aws.res.settings).unwrap())
            .unwrap();
    let call = |gate: &'static str, method: &'static str, path: String, body: Value| {
        let gate = if gate == "cli" { &cli } else { &aws.admin_fn };
        async move {
            let response =
                sluice_admin::handle_event(gate, admin_event(method, &path, &body)).await;
            u16::try_from(response.status_code).unwrap()
        }
    };
    let prefix = aws.res.settings.ssm_prefix.clone();
    for round in 0..6 {
        let source = format!("race{round}");
        let s = call(
            "fn",
            "POST",
            "/admin/sources".into(),
            json!({"id": source, "provider": "github", "secrets": [format!("ssm:{prefix}/github")]}),
        )
        .await;
        assert_eq!(s, 201);
        let (created, deleted) = tokio::join!(
            call(
                "fn",
                "POST",
                "/admin/subscriptions".into(),
                json!({"id": format!("sub{round}"), "source": source, "url": "https://example.com/x", "events": ["*"]}),
            ),
            call(
                "cli",
                "DELETE",
                format!("/admin/sources/{source}"),
                Value::Null
            ),
        );
        let stored = read_config(&aws.res.clients.dynamodb, &aws.res.settings.config_table)
            .await
            .unwrap();
        for sub in &stored.file.subscriptions {
            assert!(
                stored.file.sources.iter().any(|s| s.id == sub.source),
                "round {round}: subscription {} without its source ({created}, {deleted})",
                sub.id
            );
        }
        // Exactly one of them won.
        assert!(
            (created == 201) != (deleted == 204),
            "round {round}: create {created}, delete {deleted}"
        );
    }
}

async fn an_event_the_store_refuses_is_a_4xx_not_a_503() {
    let sink = Sink::start(200).await;
    let aws = Aws::new(&config(
        &sink.url(),
        &format!(
            r#"
[[sources]]
id = "big"
provider = "github"
secrets = ["ssm:{{ssm}}/github"]
max_body_bytes = {}
"#,
            sluice::config::AWS_MAX_BODY_BYTES
        ),
    ))
    .await;
    // A body at the bound fits; with 30 KB of headers (more than API
    // Gateway lets through) the item is over DynamoDB's 400 KB, which the
    // service refuses for good: retrying cannot help.
    let body = vec![b'x'; sluice::config::AWS_MAX_BODY_BYTES];
    let mut headers = push("big-1", &body);
    headers.push(("x-padding".into(), "p".repeat(30 * 1024)));
    let (status, answer) = aws.post("big", &headers, &body).await;
    assert_eq!(
        (status, &answer["error"]),
        (422, &json!("not_storable")),
        "{answer}"
    );
    assert!(!answer.to_string().contains("Validation"), "{answer}");
    let (status, answer) = aws.post("big", &push("big-2", &body), &body).await;
    assert_eq!(status, 200, "{answer}");
}

fn sample(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The samples for `cargo lambda invoke --data-file` stay valid events:
/// each deserialises into its aws_lambda_events type, and the request is
/// signed for the watch setup's secret (`dev-github-secret`, as in
/// examples/dev.env).
async fn the_sample_events_are_valid_and_the_request_verifies() {
    let request = sample("apigw-v2-github-push.json");
    let typed: ApiGatewayV2httpRequest = serde_json::from_value(request.clone()).unwrap();
    assert_eq!(sluice_receive::source_of(&typed).as_deref(), Some("github"));
    let delivery = typed.headers["x-github-delivery"]
        .to_str()
        .unwrap()
        .to_owned();

    let sink = Sink::start(200).await;
    let aws = Aws::with_secrets(
        &config(&sink.url(), ""),
        &[("github", "dev-github-secret"), ("sub", SUB_SECRET)],
    )
    .await;
    let response =
        sluice_receive::handle_event(aws.receive_ports(), request, SystemTime::now()).await;
    assert_eq!(
        reply(&response),
        (200, json!({"status": "accepted", "id": delivery}))
    );

    let stream: StreamEvent = serde_json::from_value(sample("dynamodb-insert.json")).unwrap();
    assert_eq!(stream.records.len(), 1);
    let image = sluice_enqueue::parse_image(&stream.records[0]).unwrap();
    assert_eq!(image.key, EventKey::new("github", &delivery));
    assert_eq!(image.event_type, "push");
    assert_eq!(image.replay_to, None);
    assert!(stream.records[0].change.sequence_number.is_some());

    let sqs: SqsEvent = serde_json::from_value(sample("sqs-delivery.json")).unwrap();
    assert_eq!(sqs.records.len(), 1);
    let task = parse_task(sqs.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(task.event_key(), image.key);
    assert_eq!(sluice_deliver::receive_count(&sqs.records[0]), Some(1));
    assert!(sqs.records[0].message_id.is_some() && sqs.records[0].receipt_handle.is_some());
}

// ------------------------------------------------------------------------
// The scenarios above, as tests, and the SDK calls they record.

/// The backend `function`'s `main` would build, on clients recording its
/// SDK calls into `calls`.
async fn recorded_backend(
    calls: &SdkCalls,
    resources: &Resources,
    settings: &sluice::aws::AwsSettings,
    function: &'static str,
) -> AwsBackend {
    let recorder = calls.recorder(function, resources.clone());
    let clients = MotoServer::shared().clients_with(recorder).await;
    let backend = AwsBackend::new(&clients, settings);
    // As each function's main builds it.
    if function == sluice_receive::FUNCTION {
        backend.keeping_handshake_secrets(&clients, settings)
    } else {
        backend
    }
}

tokio::task_local! {
    /// Where the running scenario's [`Aws`] records its functions' calls.
    static CALLS: SdkCalls;
}

// ------------------------------------------------------------------------
// Poll: the schedule's event, a real app on 127.0.0.1.

async fn a_poller_records_first_then_commits_each_new_item_once_and_it_is_delivered() {
    let sink = Sink::start(200).await;
    let app = App::start().await;
    app.add(json!({"id": "1", "kind": "opened", "title": "first"}));
    let aws = poll_deployment(&app, &sink).await;

    // The first poll records what exists and emits nothing.
    let first = aws.run_poll().await;
    assert_eq!(first.pollers, 1);
    assert_eq!(first.reports.len(), 1, "{first:?}");
    assert_eq!(
        first.reports[0].outcome,
        PollOutcome::Primed { recorded: 1 }
    );
    assert_eq!(app.requests(), 1);
    assert_eq!(
        app.authorization().as_deref(),
        Some(APP_TOKEN),
        "the header secret, from SSM"
    );
    assert!(aws.new_inserts().await.is_empty(), "nothing committed");

    // Not due yet: nothing fetched.
    let early = aws.run_poll().await;
    assert!(early.reports.is_empty(), "{early:?}");
    assert_eq!(app.requests(), 1);

    // A new item, once the interval has passed: committed once, as an
    // event of the poller's source, and delivered like any event.
    app.add(json!({"id": "2", "kind": "closed", "title": "second"}));
    aws.make_due("issues").await;
    let second = aws.run_poll().await;
    assert!(
        matches!(
            second.reports[0].outcome,
            PollOutcome::Polled {
                items: 2,
                emitted: 1,
                ..
            }
        ),
        "{second:?}"
    );
    assert_eq!(second.emitted(), 1);
    let event = aws
        .backend
        .store
        .load(&EventKey::new("issues", "2"))
        .await
        .unwrap()
        .expect("the new item is an event");
    assert_eq!(event.event_type, "closed");
    let body: Value = serde_json::from_slice(&event.body).unwrap();
    assert_eq!(body["title"], "second");
    assert!(
        aws.backend
            .store
            .load(&EventKey::new("issues", "1"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(aws.pump_enqueue().await, 1);
    let (_, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(sink.successes().len(), 1);
    assert_eq!(
        aws.backend
            .store
            .delivery_status(&task("issues", "2", "issue-feed"))
            .await
            .unwrap(),
        Some(DeliveryStatus::Delivered)
    );

    // Polled again: the item is not committed a second time.
    aws.make_due("issues").await;
    let third = aws.run_poll().await;
    assert!(
        matches!(
            third.reports[0].outcome,
            PollOutcome::Polled { emitted: 0, .. }
        ),
        "{third:?}"
    );
    assert!(aws.new_inserts().await.is_empty());

    // Through the admin function: the state in the views, "poll now",
    // and a deleted poller's state removed.
    let (s, v) = aws.admin("GET", "/admin/pollers", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["pollers"][0]["state"]["emitted_total"], 1, "{v}");
    app.add(json!({"id": "3", "kind": "opened", "title": "third"}));
    let (s, v) = aws
        .admin("POST", "/admin/pollers/issues/run", Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["emitted"],
        json!([{"id": "3", "event_type": "opened"}]),
        "{v}"
    );
    let (s, v) = aws.admin("GET", "/admin/pollers/issues", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"]["emitted_total"], 2, "{v}");
    // A poller made through the API, polled, then deleted: its state goes.
    let (s, v) = aws
        .admin(
            "POST",
            "/admin/pollers",
            json!({"id": "more", "url": app.url(), "item_id": "/id", "allow_local": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = aws
        .admin("POST", "/admin/pollers/more/run", Value::Null)
        .await;
    assert_eq!((s, &v["result"]), (200, &json!("primed")), "{v}");
    let states = DynamoPollerStates::new(
        aws.res.clients.dynamodb.clone(),
        aws.res.settings.pollers_table.as_deref().unwrap(),
    );
    assert!(PollerStates::get(&states, "more").await.unwrap().is_some());
    let (s, v) = aws
        .admin("DELETE", "/admin/pollers/more", Value::Null)
        .await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(PollerStates::get(&states, "more").await.unwrap(), None);
}

async fn overlapping_poll_runs_poll_once() {
    let sink = Sink::start(200).await;
    let app = App::start().await;
    app.add(json!({"id": "1", "kind": "opened"}));
    // Slow enough that the runs overlap for the whole poll.
    app.set_delay(Duration::from_millis(500));
    let aws = poll_deployment(&app, &sink).await;

    let busy_or_done =
        |o: &PollOutcome| matches!(o, PollOutcome::Busy { .. } | PollOutcome::NotDue { .. });
    let (a, b) = tokio::join!(aws.run_poll(), aws.run_poll());
    assert_eq!(app.requests(), 1, "polled once: {a:?} {b:?}");
    let outcomes: Vec<&PollOutcome> = a
        .reports
        .iter()
        .chain(&b.reports)
        .map(|r| &r.outcome)
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| ***o == PollOutcome::Primed { recorded: 1 })
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| **o == PollOutcome::Primed { recorded: 1 } || busy_or_done(o))
    );

    // And with a new item: one request, one commit.
    app.add(json!({"id": "2", "kind": "closed"}));
    aws.make_due("issues").await;
    let (a, b) = tokio::join!(aws.run_poll(), aws.run_poll());
    assert_eq!(app.requests(), 2, "polled once more: {a:?} {b:?}");
    assert_eq!(a.emitted() + b.emitted(), 1);
    let inserts = aws.new_inserts().await;
    assert_eq!(inserts.len(), 1, "{inserts:?}");
    assert_eq!(inserts[0]["dynamodb"]["Keys"]["pk"]["S"], "issues#2");
}

type Scenario = fn() -> LocalBoxFuture<'static, ()>;

/// Every scenario is a test of its own (`scenarios::<name>`) and one of
/// [`SCENARIOS`], whose union of recorded calls is checked by
/// `sdk_calls_are_exactly_what_each_function_declares`.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        const SCENARIOS: &[(&str, Scenario)] = &[$((stringify!($name), || $name().boxed_local())),*];

        mod scenarios {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::scenario_test(stringify!($name), super::$name()).await;
                }
            )*
        }
    };
}

scenarios![
    an_accepted_webhook_is_committed_routed_and_delivered_with_its_bytes_and_signature,
    a_base64_body_is_verified_and_stored_as_the_decoded_bytes,
    a_duplicate_is_answered_as_such_and_commits_nothing,
    a_duplicate_with_another_body_is_still_a_duplicate_and_the_first_body_is_kept,
    twenty_concurrent_copies_commit_once_and_queue_one_task,
    bad_signatures_unknown_sources_and_wrong_methods_are_refused_without_a_commit,
    provider_handshakes_are_answered_through_the_receive_function,
    asanas_secret_handshake_is_kept_in_ssm_through_the_receive_function,
    an_invalid_base64_body_is_a_400_and_never_a_panic,
    enqueue_reports_only_the_failed_records_by_sequence_number,
    an_event_matching_no_subscription_is_marked_routed_to_none,
    a_payload_filter_queues_only_the_events_it_is_true_for,
    deliver_reports_only_the_message_whose_destination_failed,
    a_failed_attempt_comes_back_after_its_backoff_with_the_next_receive_count,
    exhausted_retries_end_on_the_dlq_with_the_delivery_failed,
    an_exhausted_delivery_commits_one_notification_that_reaches_a_slack_subscription,
    a_410_disables_the_subscription_in_the_config_table,
    a_message_redelivered_after_success_is_not_delivered_twice,
    a_message_that_is_not_a_task_is_dead_lettered_as_it_is,
    the_sample_events_are_valid_and_the_request_verifies,
    a_failed_event_is_listed_shown_and_replayed_through_the_admin_function,
    a_replay_goes_to_the_named_subscription_only_and_the_dlq_redrives,
    the_admin_function_manages_config_and_secrets_and_requires_an_iam_identity,
    overlapping_copies_of_one_task_make_one_post,
    a_paused_subscription_holds_its_tasks_until_resumed,
    a_deleted_subscriptions_task_is_a_listed_dead_letter,
    one_source_whose_secret_is_missing_takes_down_no_other,
    a_store_failure_is_a_503_that_names_no_internals_and_carries_the_request_id,
    allow_local_needs_the_deployments_switch,
    a_stored_secret_in_use_is_not_deleted_and_a_source_in_use_is_not_deleted,
    a_concurrent_subscription_create_and_source_delete_leave_no_orphan,
    an_event_the_store_refuses_is_a_4xx_not_a_503,
    a_poller_records_first_then_commits_each_new_item_once_and_it_is_delivered,
    overlapping_poll_runs_poll_once,
    a_rate_limit_and_max_in_flight_hold_across_concurrent_deliver_invocations,
];

/// The scenario tests of this process: `None` while running, then the
/// calls they recorded, or `Err` if they failed.
type Runs = BTreeMap<&'static str, Option<Result<SdkCalls, ()>>>;
static RUNS: Mutex<Runs> = Mutex::new(BTreeMap::new());

fn runs() -> std::sync::MutexGuard<'static, Runs> {
    RUNS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one function declares: its `SDK_CALLS` and `SDK_RESOURCES`.
fn declared(
    function: &str,
) -> (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
) {
    match function {
        sluice_receive::FUNCTION => (sluice_receive::SDK_CALLS, sluice_receive::SDK_RESOURCES),
        sluice_enqueue::FUNCTION => (sluice_enqueue::SDK_CALLS, sluice_enqueue::SDK_RESOURCES),
        sluice_deliver::FUNCTION => (sluice_deliver::SDK_CALLS, sluice_deliver::SDK_RESOURCES),
        sluice_admin::FUNCTION => (sluice_admin::SDK_CALLS, sluice_admin::SDK_RESOURCES),
        sluice_poll::FUNCTION => (sluice_poll::SDK_CALLS, sluice_poll::SDK_RESOURCES),
        other => panic!("no declared SDK calls for function {other:?}"),
    }
}

const FUNCTIONS: [&str; 5] = [
    sluice_receive::FUNCTION,
    sluice_enqueue::FUNCTION,
    sluice_deliver::FUNCTION,
    sluice_admin::FUNCTION,
    sluice_poll::FUNCTION,
];

/// Run one scenario, recording its calls, and check that each is declared
/// by its function.
async fn run_scenario(body: impl Future<Output = ()>) -> SdkCalls {
    let calls = SdkCalls::default();
    // Boxed: the scenarios' futures are large in debug builds, and the
    // test thread's stack is not.
    CALLS.scope(calls.clone(), Box::pin(body)).await;
    let undeclared: Vec<String> = calls
        .calls()
        .into_iter()
        .filter(|c| {
            let (actions, resources) = declared(c.function);
            !actions.contains(&c.action.as_str())
                || !resources.contains(&(c.action.as_str(), c.resource.as_str()))
        })
        .map(|c| c.to_string())
        .collect();
    assert!(
        undeclared.is_empty(),
        "SDK calls the functions do not declare in SDK_CALLS/SDK_RESOURCES \
         (declare them, and grant them in infra/sam and infra/terraform):\n  {}",
        undeclared.join("\n  ")
    );
    calls
}

/// One scenario as a test: its result is published in [`RUNS`], a failure
/// included.
async fn scenario_test(name: &'static str, body: impl Future<Output = ()>) {
    struct Failed(&'static str);
    impl Drop for Failed {
        fn drop(&mut self) {
            runs().insert(self.0, Some(Err(())));
        }
    }
    runs().insert(name, None);
    let on_panic = Failed(name);
    let calls = run_scenario(body).await;
    std::mem::forget(on_panic);
    runs().insert(name, Some(Ok(calls)));
}

/// The scenarios together make every call each function declares, on the
/// resource it declares (each scenario already checked the converse). A
/// scenario whose test has started is waited for; one that has not (a
/// filtered run) is run here. libtest starts tests in name order, and this
/// name sorts after `scenarios::*`, so in a full run nothing runs twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_calls_are_exactly_what_each_function_declares() {
    let vars: BTreeSet<&str> = sluice::aws::settings::ALL_VARS.into_iter().collect();
    for function in FUNCTIONS {
        let (actions, resources) = declared(function);
        let mut sorted = actions.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, actions, "{function}: SDK_CALLS sorted, no repeats");
        let resource_actions: BTreeSet<&str> = resources.iter().map(|(a, _)| *a).collect();
        let action_set: BTreeSet<&str> = actions.iter().copied().collect();
        assert_eq!(
            resource_actions, action_set,
            "{function}: SDK_RESOURCES names the actions of SDK_CALLS"
        );
        for (action, resource) in resources {
            assert!(
                vars.contains(resource)
                    || [SSM_PARAMETERS, SSM_HANDSHAKE_PARAMETERS].contains(resource),
                "{function}: {action} on {resource:?}: not a variable of settings.rs nor \
                 {SSM_PARAMETERS} nor {SSM_HANDSHAKE_PARAMETERS}"
            );
        }
    }

    let union = SdkCalls::default();
    let mut started = Vec::new();
    for (name, scenario) in SCENARIOS {
        let has_started = runs().contains_key(name);
        if has_started {
            started.push(*name);
        } else {
            union.extend(&run_scenario(scenario()).await);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for name in started {
        loop {
            let state = runs().get(name).cloned().flatten();
            match state {
                Some(Ok(calls)) => {
                    union.extend(&calls);
                    break;
                }
                Some(Err(())) => panic!(
                    "scenario {name} failed in its own test, so the calls it records are unknown"
                ),
                None => {
                    assert!(Instant::now() < deadline, "scenario {name} did not finish");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    let recorded = union.calls();
    for function in FUNCTIONS {
        let (actions, resources) = declared(function);
        let seen: BTreeSet<(&str, &str)> = recorded
            .iter()
            .filter(|c| c.function == function)
            .map(|c| (c.action.as_str(), c.resource.as_str()))
            .collect();
        let never: Vec<String> = resources
            .iter()
            .filter(|r| !seen.contains(r))
            .map(|(a, r)| format!("{a} on {r}"))
            .collect();
        assert!(
            never.is_empty(),
            "{function} declares calls no scenario made (remove them from SDK_CALLS/SDK_RESOURCES \
             and the templates, or add a scenario that makes them):\n  {}",
            never.join("\n  ")
        );
        let seen_actions: BTreeSet<&str> = seen.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            seen_actions,
            actions.iter().copied().collect::<BTreeSet<_>>(),
            "{function}"
        );
    }
}

// ------------------------------------------------------------------------
// The `sluice` CLI with `--aws`, as a real process, against the same
// deployment the handlers run on.

/// What one run of the binary did.
#[derive(Debug)]
struct CliOut {
    code: i32,
    stdout: String,
    stderr: String,
}

impl CliOut {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// `sluice` on AWS as an operator runs it: credentials and region from a
/// profile only, `AWS_ENDPOINT_URL` pointing at moto, nothing else of this
/// process's environment.
struct AwsCli {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl AwsCli {
    fn new(endpoint: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config"),
            "[profile moto]\nregion = us-east-1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("credentials"),
            "[moto]\naws_access_key_id = test\naws_secret_access_key = test\n",
        )
        .unwrap();
        Self {
            dir,
            endpoint: endpoint.to_owned(),
        }
    }

    async fn run(&self, args: &[&str], env: &[(&str, String)]) -> CliOut {
        let mut cmd = std::process::Command::new(sluice_bin());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AWS_CONFIG_FILE", self.dir.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            // A local setup: the destinations are on 127.0.0.1.
            .env("SLUICE_ALLOW_LOCAL_DESTINATIONS", "true")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(std::process::Stdio::null());
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        CliOut {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// `sluice --stack STACK --profile moto ARGS`.
    async fn stack(&self, stack: &str, args: &[&str]) -> CliOut {
        let mut all = vec!["--stack", stack, "--profile", "moto"];
        all.extend(args);
        self.run(&all, &[]).await
    }
}

/// A CloudFormation stack on moto whose outputs are this deployment's
/// resources, named as infra/sam/template.yaml names them.
async fn create_stack(res: &TestResources) -> String {
    let name = unique_name("sluice-stack");
    let vars: HashMap<&str, String> = res.settings.to_vars().into_iter().collect();
    let outputs: serde_json::Map<String, Value> = sluice::aws::settings::STACK_OUTPUTS
        .iter()
        .map(|(output, var)| ((*output).to_owned(), json!({ "Value": vars[var] })))
        .collect();
    let template = json!({
        "Resources": { "Handle": { "Type": "AWS::CloudFormation::WaitConditionHandle" } },
        "Outputs": outputs,
    });
    let cf = aws_sdk_cloudformation::Client::new(&MotoServer::shared().sdk_config().await);
    cf.create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    name
}

/// Fail every attempt of the one task on the queue (3 with the schedule
/// below), which ends it on the DLQ.
async fn exhaust(aws: &Aws) {
    for attempt in 1..=3 {
        let messages = aws.receive_tasks(1).await;
        let response = sluice_deliver::handle(aws.deliver_ports(), sqs_event(&messages)).await;
        assert_eq!(response.batch_item_failures.is_empty(), attempt == 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_operates_a_stack_register_fail_inspect_replay_redrive() {
    let sink = Sink::start(500).await;
    // Nothing configured: the CLI registers the source and subscription.
    let aws = Aws::with_secrets("", &[("github", GH_SECRET)]).await;
    let stack = create_stack(&aws.res).await;
    let cli = AwsCli::new(&aws.res.endpoint);
    let prefix = aws.res.settings.ssm_prefix.clone();

    cli.stack(
        &stack,
        &[
            "sources",
            "add",
            "github",
            "--provider",
            "github",
            "--secret",
            &format!("ssm:{prefix}/github"),
        ],
    )
    .await
    .ok();
    let created = cli
        .stack(
            &stack,
            &[
                "subscriptions",
                "add",
                "--id",
                "deploys",
                "--source",
                "github",
                "--url",
                &sink.url(),
                "--events",
                "push",
                "--retry-schedule",
                "1s,1s",
                "--allow-local",
                "--json",
            ],
        )
        .await
        .ok()
        .json();
    let whsec = created["signing_secret"].as_str().unwrap().to_owned();
    assert!(whsec.starts_with("whsec_"), "{created}");
    // Written where the functions read it: the config table, its secret in SSM.
    let file = read_config(&aws.res.clients.dynamodb, &aws.res.settings.config_table)
        .await
        .unwrap();
    assert_eq!(file.file.sources[0].id, "github");
    assert_eq!(file.file.subscriptions[0].id, "deploys");

    // A signed webhook fails at its destination until it is dead-lettered.
    let body = br#"{"ref":"refs/heads/main","cli":true}"#;
    assert_eq!(aws.post("github", &push("c-1", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    exhaust(&aws).await;

    let listed = cli
        .stack(&stack, &["events", "list", "--status", "failed", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(listed["events"][0]["id"], "github#c-1", "{listed}");
    assert_eq!(
        listed["events"][0]["deliveries"],
        json!({"pending": 0, "delivered": 0, "failed": 1})
    );
    let shown = cli
        .stack(&stack, &["events", "show", "github#c-1", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["deliveries"][0]["attempts"]["total"], 3, "{shown}");
    assert_eq!(shown["deliveries"][0]["attempt_log"][2]["status_code"], 500);
    // The table an operator reads says the same.
    let table = cli
        .stack(&stack, &["events", "show", "github#c-1"])
        .await
        .ok();
    assert!(table.stdout.contains("deploys"), "{table:?}");
    assert!(table.stdout.contains("500"), "{table:?}");
    // The Terraform way: `terraform output -json` saved to a file.
    let tf: serde_json::Map<String, Value> = sluice::aws::settings::STACK_OUTPUTS
        .iter()
        .map(|(output, var)| {
            let name = sluice::aws::settings::terraform_name(output);
            let value = aws
                .res
                .settings
                .to_vars()
                .into_iter()
                .find(|(v, _)| v == var)
                .unwrap()
                .1;
            (
                name,
                json!({ "sensitive": false, "type": "string", "value": value }),
            )
        })
        .collect();
    let tf_file = cli.dir.path().join("outputs.json");
    std::fs::write(&tf_file, Value::Object(tf).to_string()).unwrap();
    let dlq = cli
        .run(
            &[
                "--outputs-file",
                tf_file.to_str().unwrap(),
                "--profile",
                "moto",
                "dlq",
                "list",
                "--json",
            ],
            &[],
        )
        .await
        .ok()
        .json();
    assert_eq!(dlq["dead_letters"][0]["id"], "github#c-1#deploys", "{dlq}");

    // The destination recovers; the operator replays.
    sink.set_default(200);
    let replayed = cli
        .stack(&stack, &["replay", "github#c-1", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(replayed["id"], "github#c-1#replay-1", "{replayed}");
    assert_eq!(aws.pump_enqueue().await, 1);
    let (_, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let delivered = sink.successes();
    assert_eq!(delivered.len(), 1);
    assert_eq!(&delivered[0].body[..], &body[..]);
    assert!(standard_webhooks_valid(
        &whsec,
        &delivered[0].headers,
        &delivered[0].body
    ));
    let shown = cli
        .stack(&stack, &["events", "show", "github#c-1#replay-1", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["status"], "delivered", "{shown}");
    // Settled: its dead letter is gone.
    let dlq = cli
        .stack(&stack, &["dlq", "list", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(dlq["dead_letters"], json!([]), "{dlq}");

    // Another failure, redriven from the DLQ; the settings from SLUICE_*
    // variables, as the functions read them.
    sink.set_default(500);
    let body = br#"{"ref":"refs/heads/main","cli":2}"#;
    assert_eq!(aws.post("github", &push("c-2", body), body).await.0, 200);
    assert_eq!(aws.pump_enqueue().await, 1);
    exhaust(&aws).await;
    sink.set_default(200);
    let mut env = aws.res.settings.to_vars();
    env.push(("AWS_PROFILE", "moto".to_owned()));
    let redriven = cli
        .run(&["--aws", "dlq", "redrive", "--all", "--json"], &env)
        .await
        .ok()
        .json();
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    assert_eq!(aws.pump_enqueue().await, 1);
    let (_, response) = aws.pump_deliver(1).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(sink.successes().len(), 2);
    assert_eq!(&sink.successes()[1].body[..], &body[..]);
    let dlq = cli
        .stack(&stack, &["dlq", "list", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(dlq["dead_letters"], json!([]), "{dlq}");

    // A stack that does not exist, or no stack at all: one line, exit 2.
    let out = cli.stack("no-such-stack", &["events", "list"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.starts_with("sluice: stack no-such-stack"),
        "{out:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    let out = cli
        .run(&["--aws", "--profile", "moto", "events", "list"], &[])
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("SLUICE_EVENTS_TABLE"), "{out:?}");
}
