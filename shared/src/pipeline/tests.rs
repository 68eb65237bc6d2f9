//! The pipeline through in-memory ports: no disk, no network.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use tokio::sync::Notify;

use super::deliver::{DeliverOptions, DeliverPorts, Outcome, deliver};

const OPTIONS: DeliverOptions = DeliverOptions {
    lease: Duration::from_secs(60),
    pause_recheck: Duration::from_secs(900),
    inline_wait: super::deliver::INLINE_WAIT,
};
use super::enqueue::{Stored, enqueue};
use super::fakes::{MemQueue, MemStore, ScriptedTransport};
use super::receive::{Receipt, Reply, Target, receive};
use crate::config::{ConfigFile, Registry, StaticRegistry};
use crate::delivery::DeliveryError;
use crate::error::{ReceiveError, Unavailable};
use crate::gate::{Circuit, MemoryGate};
use crate::model::{DeliveryStatus, DeliveryTask, EventKey, ReceivedTask};
use crate::secrets::EnvSecrets;

const CONFIG: &str = r#"
[[sources]]
id = "gl"
provider = "gitlab"
secrets = ["env:GL_TOKEN"]
max_body_bytes = 64

[[subscriptions]]
id = "pushes"
source = "gl"
events = ["push"]
url = "https://example.com/hooks"
signing_secret = "env:SUB_SECRET"
retry_schedule = ["1s", "2s"]

[[sources]]
id = "tg"
provider = "telegram"
secrets = ["env:TG_TOKEN"]

[[subscriptions]]
id = "everything"
source = "gl"
events = ["*"]
url = "https://example.org/all"
"#;

async fn registry() -> StaticRegistry {
    let secrets = EnvSecrets::from_map(HashMap::from([
        ("GL_TOKEN".to_owned(), "tok-123".to_owned()),
        ("TG_TOKEN".to_owned(), "tg-secret-1".to_owned()),
        (
            "SUB_SECRET".to_owned(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ),
    ]));
    ConfigFile::parse(CONFIG)
        .unwrap()
        .resolve(&secrets)
        .await
        .unwrap()
}

fn gitlab_headers(token: &str, uuid: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-gitlab-token", HeaderValue::from_str(token).unwrap());
    h.insert("x-gitlab-event-uuid", HeaderValue::from_str(uuid).unwrap());
    h.insert("x-gitlab-event", HeaderValue::from_static("Push Hook"));
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

const PUSH: &[u8] = br#"{"object_kind":"push"}"#;

#[tokio::test]
async fn receive_commits_once_and_reports_duplicates() {
    let reg = registry().await;
    let store = MemStore::default();
    let h = gitlab_headers("tok-123", "uuid-1");
    let now = SystemTime::now();
    let first = receive(
        &reg,
        &store,
        "gl",
        h.clone(),
        Bytes::from_static(PUSH),
        Target::default(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        first,
        Receipt::Accepted {
            id: "uuid-1".into(),
            ack: None,
        }
    );
    let again = receive(
        &reg,
        &store,
        "gl",
        h.clone(),
        Bytes::from_static(PUSH),
        Target::default(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        again,
        Receipt::Duplicate {
            id: "uuid-1".into(),
            ack: None,
        }
    );
    {
        let stored = store.events.lock().unwrap();
        let event = stored.get(&EventKey::new("gl", "uuid-1")).unwrap();
        assert_eq!(event.event_type, "push");
        assert_eq!(&event.body[..], PUSH);
        // The credential header is never kept.
        assert!(event.headers.iter().all(|(k, _)| k != "x-gitlab-token"));
        assert!(
            event
                .headers
                .iter()
                .any(|(k, v)| k == "x-gitlab-event" && v == "Push Hook")
        );
    }

    // Nor is any other preset's (Telegram's secret token), or a generic
    // credential (Authorization, Cookie) sent to a source that ignores it.
    let mut h = HeaderMap::new();
    h.insert(
        "x-telegram-bot-api-secret-token",
        HeaderValue::from_static("tg-secret-1"),
    );
    h.insert("cookie", HeaderValue::from_static("session=1"));
    h.insert("x-kept", HeaderValue::from_static("yes"));
    receive(
        &reg,
        &store,
        "tg",
        h,
        Bytes::from_static(br#"{"update_id":7}"#),
        Target::default(),
        now,
    )
    .await
    .unwrap();
    let stored = store.events.lock().unwrap();
    let event = stored.get(&EventKey::new("tg", "7")).unwrap();
    let names: Vec<&str> = event.headers.iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["x-kept"]);
}

#[tokio::test]
async fn receive_maps_each_failure_to_its_status() {
    let reg = registry().await;
    let store = MemStore::default();
    let now = SystemTime::now();
    let body = Bytes::from_static(PUSH);

    let unknown = receive(
        &reg,
        &store,
        "nope",
        gitlab_headers("tok-123", "u"),
        body.clone(),
        Target::default(),
        now,
    )
    .await;
    assert_eq!(Reply::from_result(&unknown, "gl", "req-1").status, 404);
    assert!(
        Reply::from_result(&unknown, "gl", "req-1")
            .body
            .contains("unknown_source")
    );

    let wrong = receive(
        &reg,
        &store,
        "gl",
        gitlab_headers("tok-999", "u"),
        body.clone(),
        Target::default(),
        now,
    )
    .await;
    let reply = Reply::from_result(&wrong, "gl", "req-1");
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("invalid_signature"), "{}", reply.body);
    assert!(
        !reply.body.contains("tok-"),
        "reply must not echo tokens: {}",
        reply.body
    );

    let big = Bytes::from(vec![b'x'; 65]);
    let too_big = receive(
        &reg,
        &store,
        "gl",
        gitlab_headers("tok-123", "u"),
        big,
        Target::default(),
        now,
    )
    .await;
    assert!(matches!(
        too_big,
        Err(ReceiveError::BodyTooLarge {
            size: 65,
            limit: 64
        })
    ));
    assert_eq!(Reply::from_result(&too_big, "gl", "req-1").status, 413);

    let long_id = "i".repeat(300);
    let too_long = receive(
        &reg,
        &store,
        "gl",
        gitlab_headers("tok-123", &long_id),
        body.clone(),
        Target::default(),
        now,
    )
    .await;
    assert_eq!(Reply::from_result(&too_long, "gl", "req-1").status, 400);

    *store.down.lock().unwrap() = true;
    let down = receive(
        &reg,
        &store,
        "gl",
        gitlab_headers("tok-123", "u"),
        body,
        Target::default(),
        now,
    )
    .await;
    assert_eq!(Reply::from_result(&down, "gl", "req-1").status, 503);
    assert!(
        store.events.lock().unwrap().is_empty(),
        "nothing may be committed on a failure"
    );
}

#[tokio::test]
async fn duplicate_with_a_different_body_is_still_a_duplicate() {
    let reg = registry().await;
    let store = MemStore::default();
    let h = gitlab_headers("tok-123", "same-id");
    let now = SystemTime::now();
    receive(
        &reg,
        &store,
        "gl",
        h.clone(),
        Bytes::from_static(PUSH),
        Target::default(),
        now,
    )
    .await
    .unwrap();
    let other = Bytes::from_static(br#"{"object_kind":"push","x":1}"#);
    let r = receive(&reg, &store, "gl", h.clone(), other, Target::default(), now)
        .await
        .unwrap();
    assert_eq!(
        r,
        Receipt::Duplicate {
            id: "same-id".into(),
            ack: None,
        }
    );
    let events = store.events.lock().unwrap();
    assert_eq!(
        &events[&EventKey::new("gl", "same-id")].body[..],
        PUSH,
        "the first body stays committed"
    );
}

/// Enqueue a committed event, its payload read from the store.
async fn enqueue_stored(
    reg: &StaticRegistry,
    queue: &MemQueue,
    store: &MemStore,
    key: &EventKey,
    event_type: &str,
) -> Result<usize, Unavailable> {
    enqueue(reg, queue, store, key, event_type, &Stored { store, key }).await
}

#[tokio::test]
async fn enqueue_routes_by_type_and_records_unrouted_events() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let key = EventKey::new("gl", "e1");
    let n = enqueue_stored(&reg, &queue, &store, &key, "push")
        .await
        .unwrap();
    assert_eq!(n, 2);
    let mut routed = store.routed.lock().unwrap()[&key].clone();
    routed.sort();
    assert_eq!(routed, vec!["everything".to_owned(), "pushes".to_owned()]);

    let key2 = EventKey::new("gl", "e2");
    let n = enqueue_stored(&reg, &queue, &store, &key2, "merge_request")
        .await
        .unwrap();
    assert_eq!(n, 1, "only the catch-all subscription matches");

    // A disabled subscription is not routed to.
    reg.disable_subscription("everything").await.unwrap();
    let key3 = EventKey::new("gl", "e3");
    let n = enqueue_stored(&reg, &queue, &store, &key3, "merge_request")
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        store.routed.lock().unwrap()[&key3],
        Vec::<String>::new(),
        "unrouted events are recorded"
    );
}

#[tokio::test]
async fn enqueue_send_failure_leaves_the_event_unrouted() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    queue.fail_indexes.lock().unwrap().push(1);
    let key = EventKey::new("gl", "e1");
    assert!(
        enqueue_stored(&reg, &queue, &store, &key, "push")
            .await
            .is_err()
    );
    assert!(
        !store.routed.lock().unwrap().contains_key(&key),
        "outbox entry must stay pending for a retry"
    );
}

async fn committed_event(reg: &StaticRegistry, store: &MemStore) -> EventKey {
    receive(
        reg,
        store,
        "gl",
        gitlab_headers("tok-123", "evt-9"),
        Bytes::from_static(PUSH),
        Target::default(),
        SystemTime::now(),
    )
    .await
    .unwrap();
    EventKey::new("gl", "evt-9")
}

fn received(key: &EventKey, sub: &str, receive_count: u32) -> ReceivedTask {
    ReceivedTask {
        task: DeliveryTask {
            source: key.source.clone(),
            event_id: key.id.clone(),
            subscription: sub.into(),
        },
        handle: format!("h{receive_count}"),
        message_id: "m-1".to_owned(),
        receive_count,
    }
}

#[tokio::test]
async fn deliver_sends_the_original_body_signed_and_marks_delivered() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(204)]);
    let key = committed_event(&reg, &store).await;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    let msg = received(&key, "pushes", 1);
    assert_eq!(
        deliver(&ports, &msg, &OPTIONS).await.unwrap().outcome,
        Outcome::Delivered
    );
    let reqs = transport.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(&reqs[0].body[..], PUSH);
    assert_eq!(reqs[0].headers["content-type"], "application/json");
    assert_eq!(reqs[0].headers["webhook-id"], "gl#evt-9");
    let ts: i64 = reqs[0].headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let key_bytes =
        crate::sign::SigningKey::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let expected = crate::sign::signature(&key_bytes, "gl#evt-9", ts, PUSH);
    assert_eq!(reqs[0].headers["webhook-signature"], expected.as_str());
    assert!(expected.starts_with("v1,"));
    // The catch-all subscription has no signing secret: no signature header.
    let msg = received(&key, "everything", 1);
    deliver(&ports, &msg, &OPTIONS).await.unwrap();
    assert!(
        !transport.requests.lock().unwrap()[1]
            .headers
            .contains_key("webhook-signature")
    );

    let task = msg.task.clone();
    assert_eq!(
        store.delivery_status(&task).await.unwrap(),
        Some(DeliveryStatus::Delivered)
    );

    // A redelivered message after success is dropped, not sent again.
    assert_eq!(
        deliver(&ports, &msg, &OPTIONS).await.unwrap().outcome,
        Outcome::Skipped
    );
    assert_eq!(transport.requests.lock().unwrap().len(), 2);
}

use crate::store::EventStore;

#[tokio::test]
async fn deliver_retries_with_backoff_then_dead_letters() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(500)]);
    let key = committed_event(&reg, &store).await;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    // Schedule ["1s", "2s"]: three attempts. The attempt number is the
    // store's count, not the receive count (3 receives before the second
    // attempt: it came back once before it was due).
    assert_eq!(
        deliver(&ports, &received(&key, "pushes", 1), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Retrying
    );
    assert_eq!(
        deliver(&ports, &received(&key, "pushes", 2), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::PutBack,
        "not due yet: put back until it is, nothing sent"
    );
    assert_eq!(transport.requests.lock().unwrap().len(), 1);
    store.make_due();
    assert_eq!(
        deliver(&ports, &received(&key, "pushes", 3), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Retrying
    );
    store.make_due();
    assert_eq!(
        deliver(&ports, &received(&key, "pushes", 4), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Failed
    );
    let retries = queue.retries.lock().unwrap().clone();
    assert_eq!(retries.len(), 3);
    assert!(
        retries[0].1 >= Duration::from_millis(800) && retries[0].1 <= Duration::from_millis(1200),
        "{retries:?}"
    );
    // The early copy was put back for what was left of the backoff.
    assert!(
        retries[1].1 <= retries[0].1 + Duration::from_millis(1),
        "{retries:?}"
    );
    assert!(
        retries[2].1 >= Duration::from_millis(1600) && retries[2].1 <= Duration::from_millis(2400),
        "{retries:?}"
    );
    let dead = queue.dead.lock().unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.contains("HTTP 500"), "{}", dead[0].1);
    let attempts = store.attempts.lock().unwrap();
    assert_eq!(
        attempts.iter().map(|(a, _)| a.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(attempts[0].0.next_attempt_at_ms.is_some());
    assert_eq!(attempts[2].1, DeliveryStatus::Failed);
}

/// A probe of an open circuit is a real attempt, but when it fails on its
/// task's last scheduled attempt the task is held with the others, not
/// dead-lettered. (Held tasks are not attempts: tests/delivery_controls.rs.)
#[tokio::test]
async fn a_failed_probe_never_dead_letters_its_task() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(500)]);
    let key = committed_event(&reg, &store).await;
    let gate = MemoryGate::default();
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &gate,
    };
    let due_probe = |gate: &MemoryGate| {
        gate.update("pushes", |s| {
            s.circuit = Circuit::Open {
                since_ms: 0,
                probe_at_ms: 0,
                opened: 1,
                failures: 10,
            }
        });
    };
    // Schedule ["1s", "2s"]: three attempts, each of them a probe here.
    for n in 1..=3 {
        due_probe(&gate);
        store.make_due();
        let outcome = deliver(&ports, &received(&key, "pushes", n), &OPTIONS)
            .await
            .unwrap()
            .outcome;
        assert_eq!(outcome, Outcome::Retrying, "attempt {n}");
        assert_eq!(gate.get("pushes").unwrap().circuit.name(), "open");
    }
    assert!(queue.dead.lock().unwrap().is_empty(), "never dead-lettered");
    assert_eq!(store.attempts.lock().unwrap().len(), 3, "each probe logged");
}

#[tokio::test]
async fn deliver_gone_disables_the_subscription() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(410)]);
    let key = committed_event(&reg, &store).await;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    assert_eq!(
        deliver(&ports, &received(&key, "pushes", 1), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Failed
    );
    assert!(
        !reg.subscription("pushes")
            .await
            .unwrap()
            .unwrap()
            .is_enabled()
    );
    assert_eq!(queue.dead.lock().unwrap().len(), 1);
    // Later tasks for the disabled subscription wait (paused), unsent and
    // with nothing recorded, however often they come back.
    let key2 = EventKey::new("gl", "other");
    let other = crate::model::Event {
        id: "other".into(),
        ..store.events.lock().unwrap()[&key].clone()
    };
    store.events.lock().unwrap().insert(key2.clone(), other);
    for n in 1..=3 {
        assert_eq!(
            deliver(&ports, &received(&key2, "pushes", n), &OPTIONS)
                .await
                .unwrap()
                .outcome,
            Outcome::Paused(crate::queue::Parked::Copied)
        );
    }
    assert_eq!(transport.requests.lock().unwrap().len(), 1);
    assert_eq!(queue.dead.lock().unwrap().len(), 1);
    assert_eq!(queue.parked.lock().unwrap().len(), 3);
    assert_eq!(store.attempts.lock().unwrap().len(), 1);
    // Resumed: the next copy is sent, as attempt 1 of that delivery.
    reg.subscription("pushes")
        .await
        .unwrap()
        .unwrap()
        .set_enabled(true);
    *transport.script.lock().unwrap() = vec![ScriptedTransport::status(200)].into();
    assert_eq!(
        deliver(&ports, &received(&key2, "pushes", 4), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Delivered
    );
    let attempts = store.attempts.lock().unwrap();
    assert_eq!(attempts.last().unwrap().0.attempt, 1);
}

/// A task that can never be sent is recorded as a failed attempt with the
/// reason (so the delivery is final and listed) and dead-lettered: for a
/// deleted subscription and for an event that is gone.
#[tokio::test]
async fn undeliverable_tasks_are_recorded_failed_and_dead_lettered() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(200)]);
    let key = committed_event(&reg, &store).await;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    assert_eq!(
        deliver(&ports, &received(&key, "deleted-sub", 1), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Failed
    );
    let gone = EventKey::new("gl", "gone");
    assert_eq!(
        deliver(&ports, &received(&gone, "pushes", 1), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Failed
    );
    assert!(transport.requests.lock().unwrap().is_empty());
    let dead = queue.dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].1, "subscription was deleted");
    assert_eq!(dead[1].1, "event no longer stored");
    let attempts = store.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts.iter().all(|(a, s)| *s == DeliveryStatus::Failed
            && a.attempt == 1
            && a.status_code.is_none())
    );
    assert_eq!(
        attempts[0].0.error.as_deref(),
        Some("subscription was deleted")
    );
    // A copy that comes back once it is final is dropped quietly: not
    // dead-lettered again.
    assert_eq!(
        deliver(&ports, &received(&key, "deleted-sub", 2), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Skipped
    );
    assert_eq!(queue.dead.lock().unwrap().len(), 2);
}

/// Two overlapping copies of one task: one claims and sends, the other
/// finds the lease and is put back for its remaining time; once the first
/// has delivered, the copy is dropped.
#[tokio::test]
async fn overlapping_copies_of_a_task_send_once() {
    let reg = registry().await;
    let store = MemStore::default();
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(200)]);
    let held = HeldTransport {
        inner: &transport,
        entered: entered.clone(),
        release: release.clone(),
    };
    let key = committed_event(&reg, &store).await;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &held,
        gate: &MemoryGate::default(),
    };
    let first = received(&key, "pushes", 1);
    let mut copy = received(&key, "pushes", 1);
    copy.message_id = "m-2".into();
    copy.handle = "h-copy".into();
    let second = async {
        entered.notified().await;
        let outcome = deliver(&ports, &copy, &OPTIONS).await.unwrap().outcome;
        release.notify_one();
        outcome
    };
    let (a, b) = tokio::join!(deliver(&ports, &first, &OPTIONS), second);
    assert_eq!(a.unwrap().outcome, Outcome::Delivered);
    assert_eq!(b, Outcome::PutBack);
    let retries = queue.retries.lock().unwrap().clone();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].0, "h-copy");
    assert!(retries[0].1 > Duration::from_secs(50) && retries[0].1 <= OPTIONS.lease);
    assert_eq!(
        deliver(&ports, &copy, &OPTIONS).await.unwrap().outcome,
        Outcome::Skipped
    );
    assert_eq!(transport.requests.lock().unwrap().len(), 1);
}

/// Passes requests on, but holds each until released.
struct HeldTransport<'a> {
    inner: &'a ScriptedTransport,
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait::async_trait]
impl crate::delivery::Transport for HeldTransport<'_> {
    async fn send(
        &self,
        req: &crate::delivery::OutboundRequest,
    ) -> Result<crate::delivery::DeliveryResponse, DeliveryError> {
        self.entered.notify_one();
        self.release.notified().await;
        self.inner.send(req).await
    }
}

/// The event id of a delivery is its `webhook-id`: one that cannot be a
/// header value fails the attempt for good, and nothing unsigned is sent.
#[tokio::test]
async fn an_unsignable_event_id_fails_closed() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(200)]);
    let key = committed_event(&reg, &store).await;
    let bad = EventKey::new("gl", "evt\nbad");
    let event = crate::model::Event {
        id: bad.id.clone(),
        ..store.events.lock().unwrap()[&key].clone()
    };
    store.events.lock().unwrap().insert(bad.clone(), event);
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    assert_eq!(
        deliver(&ports, &received(&bad, "pushes", 1), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Failed
    );
    assert!(transport.requests.lock().unwrap().is_empty());
    let attempts = store.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 1);
    assert!(
        attempts[0]
            .0
            .error
            .as_deref()
            .unwrap()
            .contains("cannot be signed"),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn deliver_refused_destination_is_not_retried() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport =
        ScriptedTransport::new(vec![Err(DeliveryError::Refused("private address".into()))]);
    let key = committed_event(&reg, &store).await;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    assert_eq!(
        deliver(&ports, &received(&key, "pushes", 1), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Failed
    );
    assert!(queue.retries.lock().unwrap().is_empty());
    assert_eq!(queue.dead.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn deliver_store_outage_leaves_the_message_for_redelivery() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(200)]);
    let key = committed_event(&reg, &store).await;
    *store.down.lock().unwrap() = true;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    assert!(
        deliver(&ports, &received(&key, "pushes", 1), &OPTIONS)
            .await
            .is_err()
    );
    assert!(queue.dead.lock().unwrap().is_empty());
}

/// A store that refuses a task's writes for good (not an outage): the
/// task is dead-lettered with the reason at once, not retried until the
/// queue's redrive.
#[tokio::test]
async fn a_permanent_store_error_dead_letters_the_task() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(200)]);
    let key = committed_event(&reg, &store).await;
    *store.refuses.lock().unwrap() = true;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    assert_eq!(
        deliver(&ports, &received(&key, "pushes", 1), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Failed
    );
    let dead = queue.dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.contains("item too large"), "{dead:?}");
    assert!(transport.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn exhaustion_with_the_dlq_down_is_retried_not_lost() {
    let reg = registry().await;
    let store = MemStore::default();
    let queue = MemQueue::default();
    let transport = ScriptedTransport::new(vec![ScriptedTransport::status(500)]);
    let key = committed_event(&reg, &store).await;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &transport,
        gate: &MemoryGate::default(),
    };
    *queue.dlq_down.lock().unwrap() = true;
    // Two attempts are on record; the last (3 of 3) fails and the DLQ is
    // unavailable.
    for n in 1..=2 {
        let mut a = crate::model::Attempt {
            source: key.source.clone(),
            event_id: key.id.clone(),
            subscription: "pushes".into(),
            attempt: n,
            started_at_ms: 0,
            latency_ms: 1,
            status_code: Some(500),
            error: None,
            response_snippet: None,
            next_attempt_at_ms: None,
        };
        a.attempt = n;
        store
            .record_attempt(&a, DeliveryStatus::Pending)
            .await
            .unwrap();
    }
    assert!(
        deliver(&ports, &received(&key, "pushes", 3), &OPTIONS)
            .await
            .is_err()
    );
    let task = received(&key, "pushes", 3).task;
    assert_ne!(
        store.delivery_status(&task).await.unwrap(),
        Some(DeliveryStatus::Failed),
        "must not be final before it is dead-lettered"
    );
    // Redelivered once the DLQ is back (and the lease of the interrupted
    // attempt is over): dead-lettered, then failed.
    *queue.dlq_down.lock().unwrap() = false;
    store.leases.lock().unwrap().clear();
    assert_eq!(
        deliver(&ports, &received(&key, "pushes", 4), &OPTIONS)
            .await
            .unwrap()
            .outcome,
        Outcome::Failed
    );
    assert_eq!(queue.dead.lock().unwrap().len(), 1);
    assert_eq!(
        store.delivery_status(&task).await.unwrap(),
        Some(DeliveryStatus::Failed)
    );
}

/// A log event's message and the names of the spans it was inside, root first.
type LoggedEvent = (String, Vec<String>);

/// Every event logged while it is the subscriber.
#[derive(Clone, Default)]
struct SpanLog(Arc<std::sync::Mutex<Vec<LoggedEvent>>>);

impl<S> tracing_subscriber::Layer<S> for SpanLog
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let mut message = String::new();
        event.record(&mut |f: &tracing::field::Field, v: &dyn std::fmt::Debug| {
            if f.name() == "message" {
                message = format!("{v:?}");
            }
        });
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().map(|s| s.name().to_owned()).collect())
            .unwrap_or_default();
        self.0.lock().unwrap().push((message, spans));
    }
}

/// The attempt's span covers the lines it logs after awaiting the store
/// and the queue, and nothing else that runs while it is suspended.
#[tokio::test]
async fn an_attempt_span_stays_with_its_attempt_across_awaits() {
    use tracing_subscriber::layer::SubscriberExt;

    let log = SpanLog::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(log.clone()));
    // tracing-core works out a callsite's interest when it is first
    // reached, from the subscribers it sees then: another test's thread
    // registering the span at the moment this one's subscriber is set can
    // leave it disabled. Once every callsite is registered (after a first
    // run), rebuilding the cache settles it; the second run is the one
    // that counts.
    let mut events = Vec::new();
    for _ in 0..2 {
        log.0.lock().unwrap().clear();
        let reg = registry().await;
        let store = MemStore::default();
        let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let queue = MemQueue {
            pause_retry: Some((entered.clone(), release.clone())),
            ..MemQueue::default()
        };
        let transport = ScriptedTransport::new(vec![ScriptedTransport::status(500)]);
        let key = committed_event(&reg, &store).await;
        let ports = DeliverPorts {
            registry: &reg,
            store: &store,
            queue: &queue,
            transport: &transport,
            gate: &MemoryGate::default(),
        };
        let msg = received(&key, "pushes", 1);
        let other = async {
            entered.notified().await;
            tracing::info!("unrelated work while the attempt waits");
            release.notify_one();
        };
        let (disposition, ()) = tokio::join!(deliver(&ports, &msg, &OPTIONS), other);
        assert_eq!(disposition.unwrap().outcome, Outcome::Retrying);
        events = log.0.lock().unwrap().clone();
        tracing::callsite::rebuild_interest_cache();
    }

    let spans_of = |text: &str| {
        events
            .iter()
            .find(|(m, _)| m.contains(text))
            .map(|(_, spans)| spans.clone())
            .unwrap_or_else(|| panic!("no {text:?} in {events:?}"))
    };
    assert_eq!(spans_of("unrelated work"), Vec::<String>::new());
    assert_eq!(
        spans_of("will retry"),
        vec!["attempt".to_owned()],
        "{events:?}"
    );
}

const NOTIFY_CONFIG: &str = r#"
[[sources]]
id = "gl"
provider = "gitlab"
secrets = ["env:GL_TOKEN"]

[[subscriptions]]
id = "flaky"
source = "gl"
events = ["*"]
url = "https://example.com/flaky"
retry_schedule = ["1s"]
circuit_breaker = { failures = 1 }

[[subscriptions]]
id = "gone"
source = "gl"
events = ["*"]
url = "https://example.com/gone"

[[subscriptions]]
id = "ops"
source = "sluice"
events = ["*"]
url = "https://hooks.slack.com/services/T/B/X"
format = "slack"
retry_schedule = ["1s"]
"#;

/// The notifications (events of source `sluice`) in the store, by type.
fn notifications(store: &MemStore) -> Vec<(String, String)> {
    let mut got: Vec<_> = store
        .events
        .lock()
        .unwrap()
        .values()
        .filter(|e| e.source == crate::notify::SOURCE)
        .map(|e| (e.event_type.clone(), e.id.clone()))
        .collect();
    got.sort();
    got
}

/// deliver commits a notification when a circuit opens and when a 410
/// disables a subscription, through the store's commit; a delivery of a
/// notification that fails for good notifies nothing (no loop); and with
/// no subscription on `sluice`, nothing is committed at all.
#[tokio::test]
async fn deliver_notifies_circuit_and_gone_but_never_about_a_notification() {
    let secrets = EnvSecrets::from_map(HashMap::from([(
        "GL_TOKEN".to_owned(),
        "tok-123".to_owned(),
    )]));
    let reg = ConfigFile::parse(NOTIFY_CONFIG)
        .unwrap()
        .resolve(&secrets)
        .await
        .unwrap();
    let store = MemStore::default();
    let queue = MemQueue::default();
    let gate = MemoryGate::default();
    let key = committed_event(&reg, &store).await;
    let failing = ScriptedTransport::new(vec![ScriptedTransport::status(500)]);
    let gone = ScriptedTransport::new(vec![ScriptedTransport::status(410)]);
    let ports = |transport| DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport,
        gate: &gate,
    };

    let report = deliver(&ports(&failing), &received(&key, "flaky", 1), &OPTIONS)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Retrying);
    assert_eq!(report.circuit, Some(crate::gate::CircuitChange::Opened));
    let report = deliver(&ports(&gone), &received(&key, "gone", 1), &OPTIONS)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    let got = notifications(&store);
    let types: Vec<_> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["circuit.opened", "subscription.disabled"],
        "{got:?}"
    );
    assert!(got[0].1.starts_with("circuit.opened:flaky:"), "{got:?}");
    assert!(
        got[1].1.starts_with("subscription.disabled:gone:"),
        "{got:?}"
    );

    // ops's own destination fails: its two attempts end in the DLQ, and
    // that is not notified (it would go to ops again).
    let note = EventKey::new(crate::notify::SOURCE, &got[0].1);
    let first = deliver(&ports(&failing), &received(&note, "ops", 1), &OPTIONS)
        .await
        .unwrap();
    assert_eq!(first.outcome, Outcome::Retrying);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let last = deliver(&ports(&failing), &received(&note, "ops", 2), &OPTIONS)
        .await
        .unwrap();
    assert_eq!(last.outcome, Outcome::Failed);
    assert_eq!(
        notifications(&store).len(),
        2,
        "{:?}",
        notifications(&store)
    );

    // Without a subscription on `sluice`, a 410 commits nothing.
    let reg = registry().await;
    let store = MemStore::default();
    let key = committed_event(&reg, &store).await;
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &gone,
        gate: &gate,
    };
    let report = deliver(&ports, &received(&key, "pushes", 1), &OPTIONS)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(notifications(&store).is_empty());
}

/// A probe that fails once the circuit has been open for the breaker's
/// `disable_after` disables the subscription and notifies it; the task
/// is not dead-lettered but waits as a paused subscription's does.
#[tokio::test]
async fn a_circuit_open_past_disable_after_disables_the_subscription() {
    let config = format!(
        "{NOTIFY_CONFIG}
[[subscriptions]]
id = \"doomed\"
source = \"gl\"
events = [\"*\"]
url = \"https://example.com/doomed\"
retry_schedule = [\"1s\", \"1s\", \"1s\"]
circuit_breaker = {{ failures = 1, probe_after = \"1s\", disable_after = \"1s\" }}
"
    );
    let secrets = EnvSecrets::from_map(HashMap::from([(
        "GL_TOKEN".to_owned(),
        "tok-123".to_owned(),
    )]));
    let reg = ConfigFile::parse(&config)
        .unwrap()
        .resolve(&secrets)
        .await
        .unwrap();
    let store = MemStore::default();
    let queue = MemQueue::default();
    let gate = MemoryGate::default();
    let key = committed_event(&reg, &store).await;
    let failing = ScriptedTransport::new(vec![ScriptedTransport::status(503)]);
    let ports = DeliverPorts {
        registry: &reg,
        store: &store,
        queue: &queue,
        transport: &failing,
        gate: &gate,
    };

    let first = deliver(&ports, &received(&key, "doomed", 1), &OPTIONS)
        .await
        .unwrap();
    assert_eq!(first.circuit, Some(crate::gate::CircuitChange::Opened));
    assert!(
        reg.subscription("doomed")
            .await
            .unwrap()
            .unwrap()
            .is_enabled()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let probe = deliver(&ports, &received(&key, "doomed", 2), &OPTIONS)
        .await
        .unwrap();
    assert_eq!(
        (probe.outcome, probe.circuit),
        (Outcome::Retrying, Some(crate::gate::CircuitChange::Expired))
    );
    assert!(
        !reg.subscription("doomed")
            .await
            .unwrap()
            .unwrap()
            .is_enabled()
    );
    let got = notifications(&store);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter().any(|(t, id)| t == "subscription.disabled"
            && id.starts_with("subscription.disabled:doomed:")),
        "{got:?}"
    );
    let note = store
        .events
        .lock()
        .unwrap()
        .values()
        .find(|e| e.event_type == "subscription.disabled")
        .unwrap()
        .body
        .clone();
    let note = String::from_utf8_lossy(&note).into_owned();
    assert!(
        note.contains("longer than 1s") && note.contains("503"),
        "{note}"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = deliver(&ports, &received(&key, "doomed", 3), &OPTIONS)
        .await
        .unwrap();
    assert!(matches!(after.outcome, Outcome::Paused(_)), "{after:?}");
    assert_eq!(
        failing.requests.lock().unwrap().len(),
        2,
        "nothing sent once disabled"
    );
    assert!(
        queue.dead.lock().unwrap().is_empty(),
        "no task dead-lettered"
    );
}

/// Dropbox sends the same body, with no delivery id, for every new change
/// in an account: the second change is committed as its own event, not
/// dropped as a duplicate of the first.
#[tokio::test]
async fn a_second_dropbox_change_with_the_same_body_is_a_new_event() {
    use hmac::{Hmac, Mac};
    let secrets = EnvSecrets::from_map(HashMap::from([(
        "DBX_SECRET".to_owned(),
        "dropbox-app-secret".to_owned(),
    )]));
    let reg = ConfigFile::parse(
        r#"
[[sources]]
id = "dbx"
provider = "dropbox"
secrets = ["env:DBX_SECRET"]
"#,
    )
    .unwrap()
    .resolve(&secrets)
    .await
    .unwrap();
    let store = MemStore::default();
    let body: &[u8] = br#"{"list_folder":{"accounts":["dbid:AAH4f99"]},"delta":{"users":[12345]}}"#;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"dropbox-app-secret").unwrap();
    mac.update(body);
    let mut h = HeaderMap::new();
    h.insert(
        "x-dropbox-signature",
        HeaderValue::from_str(&hex::encode(mac.finalize().into_bytes())).unwrap(),
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let got = receive(
            &reg,
            &store,
            "dbx",
            h.clone(),
            Bytes::from_static(body),
            Target::default(),
            SystemTime::now(),
        )
        .await
        .unwrap();
        let Receipt::Accepted { id, .. } = got else {
            panic!("a new change must be accepted, got {got:?}");
        };
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(store.events.lock().unwrap().len(), 2);
}
