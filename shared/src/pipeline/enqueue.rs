//! ENQUEUE: route a committed event to the subscriptions that want it and
//! put one delivery task per (event, subscription) on the queue.

use async_trait::async_trait;

use crate::config::Registry;
use crate::error::Unavailable;
use crate::filter::FilterInput;
use crate::model::{DeliveryTask, Event, EventKey};
use crate::queue::DeliveryQueue;
use crate::store::EventStore;

/// Where routing gets what a payload filter reads of an event: asked at
/// most once per event, and only when a subscription that takes its type
/// has a filter, so events of unfiltered sources cost nothing more.
#[async_trait]
pub trait EventContent: Send + Sync {
    async fn filter_input(&self) -> Result<FilterInput, Unavailable>;
}

/// An event in hand (being committed, or read by the admin API).
#[async_trait]
impl EventContent for Event {
    async fn filter_input(&self) -> Result<FilterInput, Unavailable> {
        Ok(FilterInput::new(Some(self)))
    }
}

/// A committed event, read from the store when a filter needs it.
pub struct Stored<'a> {
    pub store: &'a dyn EventStore,
    pub key: &'a EventKey,
}

#[async_trait]
impl EventContent for Stored<'_> {
    async fn filter_input(&self) -> Result<FilterInput, Unavailable> {
        Ok(FilterInput::new(self.store.load(self.key).await?.as_ref()))
    }
}

/// The ids of the subscriptions that want this event, in one pass over
/// its source's subscriptions: enabled, a type glob matches, and the
/// payload filter (if any) is true. A filter that fails on this event
/// (a type error) does not match it, and says so in the log.
pub async fn route(
    registry: &dyn Registry,
    key: &EventKey,
    event_type: &str,
    content: &dyn EventContent,
) -> Result<Vec<String>, Unavailable> {
    let subscriptions = registry.subscriptions_of(&key.source).await?;
    let mut input: Option<FilterInput> = None;
    let mut routed = Vec::new();
    for s in subscriptions.iter() {
        if !s.is_enabled() || !s.filter.matches(event_type) {
            continue;
        }
        if let Some(filter) = &s.payload_filter {
            let input = match &mut input {
                Some(input) => input,
                None => input.insert(content.filter_input().await?),
            };
            match filter.matches(input) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(source = %key.source, event_id = %key.id, subscription = %s.id, error = %e, "filter failed on this event; not delivered to the subscription");
                    continue;
                }
            }
        }
        routed.push(s.id.clone());
    }
    Ok(routed)
}

/// One task per subscription.
fn tasks_for(key: &EventKey, subscriptions: &[String]) -> Vec<DeliveryTask> {
    subscriptions
        .iter()
        .map(|s| DeliveryTask {
            source: key.source.clone(),
            event_id: key.id.clone(),
            subscription: s.clone(),
        })
        .collect()
}

/// The log line for a routed event, the same on every backend.
pub fn log_routed(key: &EventKey, event_type: &str, deliveries: usize) {
    if deliveries == 0 {
        tracing::info!(source = %key.source, event_id = %key.id, event_type, outcome = "unrouted", "event matched no subscription");
    } else {
        tracing::info!(source = %key.source, event_id = %key.id, event_type, deliveries, outcome = "enqueued", "event routed");
    }
}

/// The task ids are sent first and the event marked routed second: a crash
/// in between re-sends the tasks, which delivery's status check makes
/// harmless, whereas the other order could lose them.
///
/// `content` gives payload filters the event (on AWS, from the stream
/// record that carries it).
pub async fn enqueue(
    registry: &dyn Registry,
    queue: &dyn DeliveryQueue,
    store: &dyn EventStore,
    key: &EventKey,
    event_type: &str,
    content: &dyn EventContent,
) -> Result<usize, Unavailable> {
    let subscriptions = route(registry, key, event_type, content).await?;
    dispatch(queue, store, key, event_type, &subscriptions).await
}

/// A replay's commit (on AWS, a new events item naming its subscriptions):
/// queued to exactly those, never routed again, so a replay to one
/// destination reaches no other. Whether each may take it was checked when
/// the replay was made; deliver checks again (a subscription deleted or
/// disabled since dead-letters the task, and the SSRF guard applies).
pub async fn enqueue_replay(
    queue: &dyn DeliveryQueue,
    store: &dyn EventStore,
    key: &EventKey,
    event_type: &str,
    subscriptions: &[String],
) -> Result<usize, Unavailable> {
    let mut unique: Vec<String> = Vec::with_capacity(subscriptions.len());
    for s in subscriptions {
        if !unique.contains(s) {
            unique.push(s.clone());
        }
    }
    dispatch(queue, store, key, event_type, &unique).await
}

async fn dispatch(
    queue: &dyn DeliveryQueue,
    store: &dyn EventStore,
    key: &EventKey,
    event_type: &str,
    subscriptions: &[String],
) -> Result<usize, Unavailable> {
    if !subscriptions.is_empty() {
        let tasks = tasks_for(key, subscriptions);
        let failed = queue.send(&tasks).await?;
        if !failed.is_empty() {
            return Err(Unavailable::new(format!(
                "{} of {} delivery tasks were not queued",
                failed.len(),
                tasks.len()
            )));
        }
    }
    store.mark_routed(key, subscriptions).await?;
    log_routed(key, event_type, subscriptions.len());
    Ok(subscriptions.len())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::{ConfigFile, StaticRegistry};
    use crate::model::Headers;
    use crate::pipeline::fakes::{MemQueue, MemStore};
    use crate::secrets::EnvSecrets;

    const FILTERED: &str = r#"
[[sources]]
id = "gh"
provider = "github"
secrets = ["env:GH"]

[[subscriptions]]
id = "opened"
source = "gh"
events = ["pull_request"]
url = "https://example.com/opened"
filter = 'payload.action == "opened" and not payload.pull_request.draft'

[[subscriptions]]
id = "all-prs"
source = "gh"
events = ["pull_request"]
url = "https://example.com/all"

[[subscriptions]]
id = "broken"
source = "gh"
events = ["*"]
url = "https://example.com/broken"
filter = "payload.number + payload.action == 1"
"#;

    async fn filtered() -> StaticRegistry {
        let secrets = EnvSecrets::from_map([("GH".to_owned(), "s".to_owned())].into());
        ConfigFile::parse(FILTERED)
            .unwrap()
            .resolve(&secrets)
            .await
            .unwrap()
    }

    fn pr(body: &str) -> Event {
        Event {
            source: "gh".into(),
            id: "d-1".into(),
            event_type: "pull_request".into(),
            received_at_ms: 0,
            expires_at: 0,
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
            body_hash: String::new(),
            content_type: None,
            headers: Headers::default(),
        }
    }

    /// Counts how often routing asks for the payload.
    struct Counted(Event, AtomicUsize);

    #[async_trait]
    impl EventContent for Counted {
        async fn filter_input(&self) -> Result<FilterInput, Unavailable> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.filter_input().await
        }
    }

    #[tokio::test]
    async fn payload_filters_route_and_the_payload_is_read_once() {
        let reg = filtered().await;
        let key = EventKey::new("gh", "d-1");
        let opened = Counted(
            pr(r#"{"action":"opened","number":1,"pull_request":{"draft":false}}"#),
            AtomicUsize::new(0),
        );
        // "broken" fails on every event (a type error): not routed, no error.
        let subs = route(&reg, &key, "pull_request", &opened).await.unwrap();
        assert_eq!(subs, ["opened", "all-prs"]);
        assert_eq!(
            opened.1.load(Ordering::Relaxed),
            1,
            "one read for two filters"
        );

        let draft = pr(r#"{"action":"opened","pull_request":{"draft":true}}"#);
        let subs = route(&reg, &key, "pull_request", &draft).await.unwrap();
        assert_eq!(subs, ["all-prs"]);
    }

    #[tokio::test]
    async fn events_no_filter_looks_at_are_not_read() {
        let reg = filtered().await;
        let key = EventKey::new("gh", "d-2");
        let push = Counted(pr("{}"), AtomicUsize::new(0));
        // Only "broken" takes pushes, and it has a filter: one read.
        assert!(route(&reg, &key, "push", &push).await.unwrap().is_empty());
        assert_eq!(push.1.load(Ordering::Relaxed), 1);
        // A source without filtered subscriptions is never read.
        let other = EventKey::new("none", "d-3");
        let untouched = Counted(pr("{}"), AtomicUsize::new(0));
        assert!(
            route(&reg, &other, "push", &untouched)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(untouched.1.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn enqueue_reads_the_committed_event_for_filters() {
        let reg = filtered().await;
        let store = MemStore::default();
        let queue = MemQueue::default();
        let event = pr(r#"{"action":"closed","pull_request":{"draft":false}}"#);
        store.commit(&event).await.unwrap();
        let key = event.key();
        let stored = Stored {
            store: &store,
            key: &key,
        };
        let n = enqueue(&reg, &queue, &store, &key, "pull_request", &stored)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(store.routed.lock().unwrap()[&event.key()], ["all-prs"]);
    }

    #[test]
    fn a_filter_that_does_not_compile_names_the_subscription() {
        let bad = FILTERED.replace("payload.action == \"opened\"", "payload.action ==");
        let msg = ConfigFile::parse(&bad).unwrap_err().to_string();
        assert!(
            msg.contains("subscription \"opened\": filter does not compile"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_replay_goes_to_the_subscriptions_it_names_only() {
        let store = MemStore::default();
        let queue = MemQueue::default();
        let key = EventKey::new("gl", "e1#replay-1");
        let subs = ["b".to_owned(), "a".to_owned(), "b".to_owned()];
        let n = enqueue_replay(&queue, &store, &key, "push", &subs)
            .await
            .unwrap();
        assert_eq!(n, 2, "once per subscription");
        assert_eq!(
            store.routed.lock().unwrap()[&key],
            vec!["b".to_owned(), "a".to_owned()]
        );
        let queued: Vec<String> = queue
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.subscription.clone())
            .collect();
        assert_eq!(queued, ["b", "a"]);
    }
}
