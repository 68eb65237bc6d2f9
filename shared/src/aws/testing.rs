//! Test harness: a moto server on a free 127.0.0.1 port, clients against it,
//! and helpers that create the tables and queues the adapters use.
//!
//! moto is installed by `scripts/moto.sh` into `.venv-moto` at the
//! workspace root (`make test` runs it), with a launcher that makes its
//! DynamoDB writes atomic as DynamoDB's are (`scripts/moto_atomic.py`);
//! `SLUICE_MOTO_SERVER` may name another server binary instead. When it cannot be found, tests fail with a
//! message saying so: they are never skipped.
//!
//! One server is shared by all the tests of a test binary
//! ([`MotoServer::shared`]); each test creates its own uniquely named
//! resources ([`TestResources::create`]), so tests run in parallel. Build
//! clients per test (they belong to the test's tokio runtime).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

use super::AwsClients;
use super::item::{PK, SK, dl, ev};
use super::settings::AwsSettings;

/// Environment variable naming the `moto_server` binary to use.
pub const MOTO_SERVER_VAR: &str = "SLUICE_MOTO_SERVER";
pub const REGION: &str = "us-east-1";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A moto server process. Dropping it stops the process; a server that is
/// never dropped (the shared one) stops when the test process exits, as it
/// watches its stdin.
pub struct MotoServer {
    endpoint: String,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl std::fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoServer")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Where the server is: `$SLUICE_MOTO_SERVER`, else
/// `<workspace>/.venv-moto/bin/sluice-moto-server` (scripts/moto.sh).
pub fn moto_server_path() -> Result<PathBuf, String> {
    let how = "run `make test` (it installs moto into .venv-moto with scripts/moto.sh), \
               or run scripts/moto.sh, or set SLUICE_MOTO_SERVER to a moto_server binary";
    if let Some(p) = std::env::var_os(MOTO_SERVER_VAR).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "{MOTO_SERVER_VAR}={} does not exist; {how}",
                p.display()
            ))
        };
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".venv-moto")
        .join("bin")
        .join("sluice-moto-server");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "moto server not found at {}: the AWS adapter tests need it; {how}",
            p.display()
        ))
    }
}

impl MotoServer {
    /// Start a private server. Panics (failing the test) when moto is not
    /// installed or does not come up.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The server shared by every test of this process, started on first use.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    pub fn try_start() -> Result<Self, String> {
        let bin = moto_server_path()?;
        let mut last = String::new();
        // A free port can be taken between probing and binding: retry.
        for _ in 0..3 {
            let port = free_port()?;
            match Self::spawn(&bin, port) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn spawn(bin: &std::path::Path, port: u16) -> Result<Self, String> {
        let log =
            std::env::temp_dir().join(format!("sluice-moto-{}-{port}.log", std::process::id()));
        // The shell runs moto in the background and kills it when its stdin
        // closes: on drop, or when the test process exits in any way. Then
        // it removes the log. SIGKILL, because moto's SIGTERM handler can
        // wait on request threads; it has nothing to flush.
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" -H 127.0.0.1 -p "$1" >"$2" 2>&1 </dev/null & m=$!; cat >/dev/null; kill -KILL $m 2>/dev/null; wait $m; rm -f "$2""#)
            .arg(bin)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child: Mutex::new(Some(child)),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        // Werkzeug prints this once it has bound the port: it tells our
        // server from another process that took the same port.
        let running = format!("Running on http://127.0.0.1:{port}");
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        loop {
            if log_text().contains(&running) && answers(port) {
                return Ok(server);
            }
            let exited = server
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || log_text().contains("Address already in use") {
                return Err(format!(
                    "moto server ({}) exited on port {port}:\n{}",
                    bin.display(),
                    log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "moto server ({}) did not answer on port {port} within {START_TIMEOUT:?}:\n{}",
                    bin.display(),
                    log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An SDK config for this server: its endpoint, `us-east-1`, static test
    /// credentials. Nothing global is set.
    pub async fn sdk_config(&self) -> SdkConfig {
        test_config(&self.endpoint, RetryConfig::standard()).await
    }

    pub async fn clients(&self) -> AwsClients {
        AwsClients::from_conf(&self.sdk_config().await)
    }

    /// Clients for this server, as [`clients`](Self::clients), with
    /// `interceptor` on each of them: tests observe (or fail) SDK calls
    /// this way.
    pub async fn clients_with<I>(&self, interceptor: I) -> AwsClients
    where
        I: aws_sdk_dynamodb::config::Intercept + Clone + 'static,
    {
        let conf = self.sdk_config().await;
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&conf)
                    .interceptor(interceptor.clone())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&conf)
                    .interceptor(interceptor.clone())
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(&conf)
                    .interceptor(interceptor)
                    .build(),
            ),
        }
    }

    /// Clients whose endpoint refuses connections, without retries: for
    /// testing how adapters report an outage.
    pub async fn unreachable_clients() -> AwsClients {
        let port = free_port().unwrap_or(9);
        let conf = test_config(&format!("http://127.0.0.1:{port}"), RetryConfig::disabled()).await;
        AwsClients::from_conf(&conf)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            // Closing stdin makes the shell kill moto and exit.
            drop(child.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn test_config(endpoint: &str, retry: RetryConfig) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .load()
        .await
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// True once something on the port answers HTTP.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 8];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/")
}

/// A name no other test of this process uses: `{prefix}-{pid}-{n}`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key schema")
}

fn string_attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition")
}

async fn enable_ttl(client: &aws_sdk_dynamodb::Client, table: &str, attr: &str) {
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attr)
                .build()
                .expect("ttl spec"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTimeToLive {table}: {e:?}"));
}

/// The events table as infra creates it: `pk` (S), stream NEW_IMAGE, TTL on
/// `expires_at`. Returns the stream ARN.
pub async fn create_events_table(client: &aws_sdk_dynamodb::Client, name: &str) -> String {
    let out = client
        .create_table()
        .table_name(name)
        .key_schema(key(PK, KeyType::Hash))
        .attribute_definitions(string_attr(PK))
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .expect("stream spec"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
    enable_ttl(client, name, ev::EXPIRES_AT).await;
    out.table_description()
        .and_then(|t| t.latest_stream_arn())
        .expect("the events table has a stream")
        .to_owned()
}

/// The deliveries table: `pk` (S) + `sk` (S), TTL on `expires_at`.
pub async fn create_deliveries_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .attribute_definitions(string_attr(PK))
        .attribute_definitions(string_attr(SK))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
    enable_ttl(client, name, dl::EXPIRES_AT).await;
}

/// The config table: `pk` (S).
pub async fn create_config_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .key_schema(key(PK, KeyType::Hash))
        .attribute_definitions(string_attr(PK))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
}

/// The pollers table: `pk` (S), the poller id.
pub async fn create_pollers_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    create_config_table(client, name).await;
}

/// A standard queue; returns its URL.
pub async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {name}: {e:?}"))
        .queue_url()
        .expect("queue url")
        .to_owned()
}

/// A full set of uniquely named resources on a moto server, and the
/// settings that point at them.
#[derive(Debug, Clone)]
pub struct TestResources {
    pub clients: AwsClients,
    pub settings: AwsSettings,
    pub endpoint: String,
    pub events_stream_arn: String,
}

impl TestResources {
    pub async fn create(moto: &MotoServer) -> Self {
        let clients = moto.clients().await;
        let base = unique_name("sluice");
        let events_table = format!("{base}-events");
        let deliveries_table = format!("{base}-deliveries");
        let config_table = format!("{base}-config");
        let pollers_table = format!("{base}-pollers");
        let gates_table = format!("{base}-gates");
        let queue_name = format!("{base}-deliveries");
        let dlq_name = format!("{base}-dlq");
        let db = &clients.dynamodb;
        let (events_stream_arn, (), (), (), (), queue_url, dlq_url) = tokio::join!(
            create_events_table(db, &events_table),
            create_deliveries_table(db, &deliveries_table),
            create_config_table(db, &config_table),
            create_pollers_table(db, &pollers_table),
            create_pollers_table(db, &gates_table),
            create_queue(&clients.sqs, &queue_name),
            create_queue(&clients.sqs, &dlq_name),
        );
        Self {
            clients,
            settings: AwsSettings {
                events_table,
                deliveries_table,
                config_table,
                queue_url,
                dlq_url,
                config_ttl: Duration::from_secs(60),
                secrets_ttl: Duration::from_secs(300),
                ssm_prefix: format!("/{base}"),
                // A local setup: the tests' destinations are on 127.0.0.1.
                allow_local_destinations: true,
                pollers_table: Some(pollers_table),
                gates_table: Some(gates_table),
            },
            endpoint: moto.endpoint().to_owned(),
            events_stream_arn,
        }
    }
}

/// Receive until `n` messages arrived (each stays invisible for the queue's
/// visibility timeout, so none is counted twice) or 10 s passed; panics if
/// fewer arrived. System and message attributes are included.
pub async fn receive_all(client: &aws_sdk_sqs::Client, queue_url: &str, n: usize) -> Vec<Message> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        let out = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("ReceiveMessage {queue_url}: {e:?}"));
        got.extend(out.messages.unwrap_or_default());
    }
    assert!(
        got.len() >= n,
        "received {} of {n} messages from {queue_url}",
        got.len()
    );
    got
}

/// The INSERT records of a DynamoDB stream, oldest first, shaped as the
/// records of a Lambda DynamoDB stream event (`eventName`, `eventSourceARN`,
/// `dynamodb.Keys`, `dynamodb.NewImage`, `dynamodb.SequenceNumber`, …), so
/// handler tests can wrap them in `{"Records": [...]}`.
///
/// It speaks the DynamoDB Streams JSON protocol to the moto server directly
/// (moto does not check signatures), so no Streams SDK crate is needed.
pub async fn read_stream_inserts(endpoint: &str, stream_arn: &str) -> Vec<serde_json::Value> {
    read_stream(endpoint, stream_arn)
        .await
        .into_iter()
        .filter(|r| r["eventName"] == "INSERT")
        .collect()
}

/// Every record of a DynamoDB stream (INSERT, MODIFY, REMOVE), oldest first.
pub async fn read_stream(endpoint: &str, stream_arn: &str) -> Vec<serde_json::Value> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let call = |target: &'static str, body: serde_json::Value| {
        let http = http.clone();
        async move {
            let res = http
                .post(endpoint)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", format!("DynamoDBStreams_20120810.{target}"))
                .header(
                    "authorization",
                    format!(
                        "AWS4-HMAC-SHA256 Credential=test/20240101/{REGION}/dynamodb/aws4_request, \
                         SignedHeaders=host, Signature=0"
                    ),
                )
                .body(body.to_string())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{target}: {e}"));
            let status = res.status();
            let bytes = res.bytes().await.unwrap_or_default();
            assert!(
                status.is_success(),
                "{target}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .unwrap_or_else(|e| panic!("{target}: {e}"))
        }
    };
    let desc = call(
        "DescribeStream",
        serde_json::json!({ "StreamArn": stream_arn }),
    )
    .await;
    let shards = desc["StreamDescription"]["Shards"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut records = Vec::new();
    for shard in shards {
        let it = call(
            "GetShardIterator",
            serde_json::json!({
                "StreamArn": stream_arn,
                "ShardId": shard["ShardId"],
                "ShardIteratorType": "TRIM_HORIZON",
            }),
        )
        .await;
        let mut iterator = it["ShardIterator"].clone();
        while iterator.is_string() {
            let page = call(
                "GetRecords",
                serde_json::json!({ "ShardIterator": iterator, "Limit": 1000 }),
            )
            .await;
            let batch = page["Records"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            for mut r in batch {
                r["eventSourceARN"] = serde_json::Value::String(stream_arn.to_owned());
                records.push(r);
            }
            iterator = page["NextShardIterator"].clone();
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::aws::dynamo_store::DynamoStore;
    use crate::model::Event;
    use crate::store::EventStore;

    #[test]
    fn a_private_server_stops_on_drop() {
        let moto = MotoServer::start();
        let port = moto.port();
        assert!(answers(port));
        drop(moto);
        assert!(!answers(port), "moto still answers after drop");
    }

    #[test]
    fn a_missing_binary_fails_with_instructions() {
        // Only the message is checked here; the lookup itself reads the
        // process environment, which tests must not change.
        let err = moto_server_path()
            .err()
            .unwrap_or_else(|| "make test".to_owned());
        assert!(err.contains("make test"), "{err}");
    }

    #[tokio::test]
    async fn the_events_stream_carries_each_insert_once() {
        let res = TestResources::create(MotoServer::shared()).await;
        let store = DynamoStore::new(
            res.clients.dynamodb.clone(),
            &res.settings.events_table,
            &res.settings.deliveries_table,
        );
        let event = |id: &str| Event {
            source: "gh".into(),
            id: id.into(),
            event_type: "push".into(),
            received_at_ms: 1,
            expires_at: 2,
            body: Bytes::from_static(b"\x00{}"),
            body_hash: "h".into(),
            content_type: None,
            headers: crate::model::Headers::default(),
        };
        store.commit(&event("a")).await.unwrap();
        store.commit(&event("a")).await.unwrap(); // duplicate: no record
        store.commit(&event("b")).await.unwrap();
        store.mark_routed(&event("a").key(), &[]).await.unwrap(); // MODIFY
        let inserts = read_stream_inserts(&res.endpoint, &res.events_stream_arn).await;
        let keys: Vec<&str> = inserts
            .iter()
            .map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["gh#a", "gh#b"]);
        let r = &inserts[0];
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["eventSourceARN"], res.events_stream_arn.as_str());
        assert_eq!(r["dynamodb"]["NewImage"]["event_type"]["S"], "push");
        assert_eq!(r["dynamodb"]["NewImage"]["body"]["B"], "AHt9");
        assert!(r["dynamodb"]["SequenceNumber"].is_string());
        let all = read_stream(&res.endpoint, &res.events_stream_arn).await;
        assert_eq!(all.len(), 3);
        assert_eq!(all[2]["eventName"], "MODIFY");
    }
}
