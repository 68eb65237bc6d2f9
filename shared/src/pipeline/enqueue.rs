//! ENQUEUE: route a committed event to the subscriptions that want it and
//! put one delivery task per (event, subscription) on the queue.

use crate::config::Registry;
use crate::error::Unavailable;
use crate::model::{DeliveryTask, EventKey};
use crate::queue::DeliveryQueue;
use crate::store::EventStore;

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
    let subscriptions: Vec<String> = registry
        .subscriptions_of(&key.source)
        .await?
        .iter()
        .filter(|s| s.is_enabled() && s.filter.matches(event_type))
        .map(|s| s.id.clone())
        .collect();
    if subscriptions.is_empty() {
        tracing::info!(source = %key.source, event_id = %key.id, event_type, outcome = "unrouted", "event matched no subscription");
    } else {
        let tasks: Vec<DeliveryTask> = subscriptions
            .iter()
            .map(|s| DeliveryTask {
                source: key.source.clone(),
                event_id: key.id.clone(),
                subscription: s.clone(),
            })
            .collect();
        let failed = queue.send(&tasks).await?;
        if !failed.is_empty() {
            return Err(Unavailable(format!(
                "{} of {} delivery tasks were not queued",
                failed.len(),
                tasks.len()
            )));
        }
        tracing::info!(source = %key.source, event_id = %key.id, event_type, deliveries = tasks.len(), outcome = "enqueued", "event routed");
    }
    store.mark_routed(key, &subscriptions).await?;
    Ok(subscriptions.len())
}
