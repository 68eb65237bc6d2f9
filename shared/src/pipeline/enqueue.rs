//! ENQUEUE: route a committed event to the subscriptions that want it and
//! put one delivery task per (event, subscription) on the queue.

use crate::config::Registry;
use crate::error::Unavailable;
use crate::model::{DeliveryTask, EventKey};
use crate::queue::DeliveryQueue;
use crate::store::EventStore;

/// The ids of the subscriptions that want this event: those of its source
/// that are enabled and whose type filter matches.
pub async fn route(
    registry: &dyn Registry,
    source: &str,
    event_type: &str,
) -> Result<Vec<String>, Unavailable> {
    Ok(registry
        .subscriptions_of(source)
        .await?
        .iter()
        .filter(|s| s.is_enabled() && s.filter.matches(event_type))
        .map(|s| s.id.clone())
        .collect())
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
pub async fn enqueue(
    registry: &dyn Registry,
    queue: &dyn DeliveryQueue,
    store: &dyn EventStore,
    key: &EventKey,
    event_type: &str,
) -> Result<usize, Unavailable> {
    let subscriptions = route(registry, &key.source, event_type).await?;
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
    use super::*;
    use crate::pipeline::fakes::{MemQueue, MemStore};

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
