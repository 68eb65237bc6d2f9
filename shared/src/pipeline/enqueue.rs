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
    if !subscriptions.is_empty() {
        let tasks = tasks_for(key, &subscriptions);
        let failed = queue.send(&tasks).await?;
        if !failed.is_empty() {
            return Err(Unavailable(format!(
                "{} of {} delivery tasks were not queued",
                failed.len(),
                tasks.len()
            )));
        }
    }
    store.mark_routed(key, &subscriptions).await?;
    log_routed(key, event_type, subscriptions.len());
    Ok(subscriptions.len())
}
