//! Deliver with chat formats and templates, through in-memory ports.

use std::collections::HashMap;

use bytes::Bytes;

use super::deliver::{DeliverOptions, DeliverPorts, Outcome, deliver};

const OPTIONS: DeliverOptions = DeliverOptions {
    lease: std::time::Duration::from_secs(60),
    pause_recheck: std::time::Duration::from_secs(900),
    inline_wait: super::deliver::INLINE_WAIT,
};
use super::fakes::{MemQueue, MemStore, ScriptedTransport};
use crate::config::{ConfigError, ConfigFile, StaticRegistry};
use crate::gate::MemoryGate;
use crate::model::{DeliveryStatus, DeliveryTask, Event, EventKey, Headers, ReceivedTask};
use crate::secrets::EnvSecrets;
use crate::sign::{SigningKey, signature};
use crate::store::EventStore;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const CONFIG: &str = r#"
[[sources]]
id = "gh"
provider = "github"
secrets = ["env:GH_SECRET"]

[[subscriptions]]
id = "chat"
source = "gh"
events = ["*"]
url = "https://hooks.slack.example/services/T/B/X"
format = "slack"
signing_secret = "env:SUB_SECRET"

[[subscriptions]]
id = "broken"
source = "gh"
events = ["*"]
url = "https://discord.example/api/webhooks/1/x"
format = "discord"
template = "{{ payload.commits | length + payload.missing }}"
retry_schedule = ["1s", "1s"]
"#;

const PUSH: &[u8] = br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/api"},"pusher":{"name":"octocat"},"commits":[{}],"head_commit":{"id":"abcdef0123","message":"Ship it"}}"#;

async fn registry(config: &str) -> Result<StaticRegistry, ConfigError> {
    let secrets = EnvSecrets::from_map(HashMap::from([
        ("GH_SECRET".to_owned(), "s".to_owned()),
        ("SUB_SECRET".to_owned(), SECRET.to_owned()),
    ]));
    ConfigFile::parse(config)?.resolve(&secrets).await
}

fn stored_push(store: &MemStore) -> EventKey {
    let event = Event {
        source: "gh".into(),
        id: "d-1".into(),
        event_type: "push".into(),
        received_at_ms: 1_700_000_000_000,
        expires_at: i64::MAX,
        body: Bytes::from_static(PUSH),
        body_hash: String::new(),
        content_type: Some("application/json".into()),
        headers: Headers::from_pairs(&[("x-github-event", "push")]),
    };
    let key = event.key();
    store.events.lock().unwrap().insert(key.clone(), event);
    key
}

fn task(key: &EventKey, sub: &str, receive_count: u32) -> ReceivedTask {
    ReceivedTask {
        task: DeliveryTask {
            source: key.source.clone(),
            event_id: key.id.clone(),
            subscription: sub.into(),
        },
        handle: "h".into(),
        message_id: "m-1".into(),
        receive_count,
    }
}

#[tokio::test]
async fn a_slack_subscription_sends_slack_json_signed_over_the_sent_bytes() {
    let reg = registry(CONFIG).await.unwrap();
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(200)]);
    let key = stored_push(&store);
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    let msg = task(&key, "chat", 1);
    assert_eq!(
        deliver(&ports, &msg, &OPTIONS).await.unwrap().outcome,
        Outcome::Delivered
    );

    let reqs = transport.requests.lock().unwrap().clone();
    let req = &reqs[0];
    assert_eq!(req.headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        v["text"],
        "GitHub · push: acme/api: 1 commit pushed to main by octocat"
    );
    assert!(v["blocks"].as_array().is_some_and(|b| b.len() >= 3), "{v}");
    let ts: i64 = req.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let key_bytes = SigningKey::from_whsec(SECRET).unwrap();
    assert_eq!(
        req.headers["webhook-signature"],
        signature(&key_bytes, "gh#d-1", ts, &req.body).as_str()
    );
    assert_eq!(
        store.delivery_status(&msg.task).await.unwrap(),
        Some(DeliveryStatus::Delivered)
    );
}

#[tokio::test]
async fn a_template_that_fails_at_delivery_is_logged_and_dead_lettered_once() {
    let reg = registry(CONFIG).await.unwrap();
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(200)]);
    let key = stored_push(&store);
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    let msg = task(&key, "broken", 1);
    assert_eq!(
        deliver(&ports, &msg, &OPTIONS).await.unwrap().outcome,
        Outcome::Failed
    );

    assert!(
        transport.requests.lock().unwrap().is_empty(),
        "nothing sent"
    );
    assert!(queue.retries.lock().unwrap().is_empty(), "not retried");
    let dead = queue.dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].1.contains("render failed: template:"),
        "{}",
        dead[0].1
    );
    let attempts = store.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 1);
    let (attempt, status) = &attempts[0];
    assert_eq!(*status, DeliveryStatus::Failed);
    assert_eq!(attempt.status_code, None);
    assert!(
        attempt
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("render failed: template: ")),
        "{attempt:?}"
    );
    // The event is kept for a replay once the template is fixed.
    assert!(store.load(&key).await.unwrap().is_some());
}

#[tokio::test]
async fn template_errors_stop_the_config_and_name_the_subscription() {
    let bad = CONFIG.replace(
        "{{ payload.commits | length + payload.missing }}",
        "{% for c in payload.commits %}",
    );
    let err = registry(&bad).await.unwrap_err().to_string();
    assert!(
        err.starts_with("subscription \"broken\": template does not compile: syntax error"),
        "{err}"
    );
    let raw_text = CONFIG.replace("format = \"discord\"", "format = \"raw\"");
    let err = registry(&raw_text).await.unwrap_err().to_string();
    assert!(err.contains("template needs a chat format"), "{err}");
    let unknown = CONFIG.replace("format = \"slack\"", "format = \"msteams\"");
    let err = registry(&unknown).await.unwrap_err().to_string();
    assert!(err.contains("unknown variant `msteams`"), "{err}");
}

#[tokio::test]
async fn during_a_rotation_both_keys_sign_the_sent_bytes() {
    const OLD: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let config = CONFIG.replace(
        "signing_secret = \"env:SUB_SECRET\"",
        "signing_secret = \"env:SUB_SECRET\"\n\
         previous_signing_secret = { secret = \"env:OLD_SECRET\", until = \"2999-01-01T00:00:00Z\" }",
    );
    let secrets = EnvSecrets::from_map(HashMap::from([
        ("GH_SECRET".to_owned(), "s".to_owned()),
        ("SUB_SECRET".to_owned(), SECRET.to_owned()),
        ("OLD_SECRET".to_owned(), OLD.to_owned()),
    ]));
    let reg = ConfigFile::parse(&config)
        .unwrap()
        .resolve(&secrets)
        .await
        .unwrap();
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(200)]);
    let key = stored_push(&store);
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    deliver(&ports, &task(&key, "chat", 1), &OPTIONS)
        .await
        .unwrap();
    let req = transport.requests.lock().unwrap()[0].clone();
    let ts: i64 = req.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sigs: Vec<&str> = req.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .collect();
    let sign_with = |whsec: &str| {
        signature(
            &SigningKey::from_whsec(whsec).unwrap(),
            "gh#d-1",
            ts,
            &req.body,
        )
    };
    assert_eq!(sigs, [sign_with(SECRET), sign_with(OLD)]);
}
