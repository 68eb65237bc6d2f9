//! DELIVER: one attempt of one delivery task, and what follows from it.

use std::time::{Instant, SystemTime};

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use tracing::Instrument;

use crate::config::{Registry, Subscription};
use crate::delivery::{DeliveryError, DeliveryResponse, OutboundRequest, Transport};
use crate::error::Unavailable;
use crate::format::{self, Body, RenderError};
use crate::model::{Attempt, DeliveryStatus, Event, ReceivedTask};
use crate::queue::DeliveryQueue;
use crate::retry::Decision;
use crate::sign;
use crate::store::{EventStore, ForDelivery};
use crate::time::to_ms;

/// The ports delivery needs.
pub struct DeliverPorts<'a> {
    pub registry: &'a dyn Registry,
    pub store: &'a dyn EventStore,
    pub queue: &'a dyn DeliveryQueue,
    pub transport: &'a dyn Transport,
}

/// What the runtime does with the message afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Finished (delivered, dead-lettered or skipped): delete the message.
    Done,
    /// Keep it: its visibility was set to the backoff, it comes back then.
    Retry,
}

/// Deliver one task. Errors mean a port was unavailable; the message is
/// then left alone and comes back after its visibility timeout.
pub async fn deliver(
    ports: &DeliverPorts<'_>,
    msg: &ReceivedTask,
) -> Result<Disposition, Unavailable> {
    let task = &msg.task;
    let Some(sub) = ports.registry.subscription(&task.subscription).await? else {
        return dead_letter(ports, msg, "subscription no longer exists").await;
    };
    if !sub.is_enabled() {
        return dead_letter(ports, msg, "subscription is disabled").await;
    }
    let event = match ports.store.load_for_delivery(task).await? {
        ForDelivery::Event(event) => event,
        ForDelivery::Finished(status) => {
            tracing::info!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, status = status.as_str(), "already finished, skipped");
            return Ok(Disposition::Done);
        }
        ForDelivery::NoEvent => return dead_letter(ports, msg, "event no longer stored").await,
    };

    let started = SystemTime::now();
    let clock = Instant::now();
    // A payload that cannot be rendered is a failed attempt, logged and
    // dead-lettered like any other; the event itself stays stored.
    let result = match build_request(&event, &sub, to_ms(started) / 1000) {
        Ok(request) => ports.transport.send(&request).await,
        Err(e) => Err(DeliveryError::Render(e.to_string())),
    };
    let latency_ms = u32::try_from(clock.elapsed().as_millis()).unwrap_or(u32::MAX);
    let decision = sub.retry.decide(msg.receive_count, &result);

    let attempt = Attempt {
        source: task.source.clone(),
        event_id: task.event_id.clone(),
        subscription: task.subscription.clone(),
        attempt: msg.receive_count,
        started_at_ms: to_ms(started),
        latency_ms,
        status_code: result.as_ref().ok().map(|r| r.status),
        error: result.as_ref().err().map(DeliveryError::to_string),
        response_snippet: result
            .as_ref()
            .ok()
            .map(|r| r.snippet.clone())
            .filter(|s| !s.is_empty()),
        next_attempt_at_ms: None,
    };
    let outcome = outcome_text(&result);
    // Instrumented, not entered: a guard held across the awaits below would
    // leave this span on whatever ran on the thread meanwhile, and the lines
    // logged after a resume on another thread would carry no event ids.
    let span = tracing::info_span!("attempt", source = %task.source, event_id = %task.event_id, subscription = %task.subscription, attempt = msg.receive_count, latency_ms);
    settle(ports, msg, &sub.id, decision, attempt, started, &outcome)
        .instrument(span)
        .await
}

/// Records the attempt and acts on the retry decision.
async fn settle(
    ports: &DeliverPorts<'_>,
    msg: &ReceivedTask,
    subscription: &str,
    decision: Decision,
    mut attempt: Attempt,
    started: SystemTime,
    outcome: &str,
) -> Result<Disposition, Unavailable> {
    match decision {
        Decision::Delivered => {
            ports
                .store
                .record_attempt(&attempt, DeliveryStatus::Delivered)
                .await?;
            tracing::info!(outcome = "delivered", result = %outcome, "delivered");
            Ok(Disposition::Done)
        }
        Decision::Retry(delay) => {
            attempt.next_attempt_at_ms = Some(to_ms(started + delay));
            ports
                .store
                .record_attempt(&attempt, DeliveryStatus::Pending)
                .await?;
            ports.queue.retry_in(msg, delay).await?;
            tracing::warn!(outcome = "retry", result = %outcome, retry_in_ms = delay.as_millis() as u64, "attempt failed, will retry");
            Ok(Disposition::Retry)
        }
        // Dead-letter before marking failed: if the DLQ send fails the message
        // comes back and is tried again; the other order would skip it as
        // finished and it would never reach the DLQ. A duplicate DLQ entry is
        // the worst case, and it is harmless.
        Decision::Exhausted => {
            ports
                .queue
                .dead_letter(msg, &format!("attempts exhausted: {outcome}"))
                .await?;
            ports
                .store
                .record_attempt(&attempt, DeliveryStatus::Failed)
                .await?;
            tracing::error!(outcome = "failed", result = %outcome, "delivery failed, dead-lettered");
            Ok(Disposition::Done)
        }
        Decision::Gone => {
            ports
                .queue
                .dead_letter(msg, "destination answered 410 Gone; subscription disabled")
                .await?;
            ports.registry.disable_subscription(subscription).await?;
            ports
                .store
                .record_attempt(&attempt, DeliveryStatus::Failed)
                .await?;
            tracing::error!(outcome = "failed", result = %outcome, "destination answered 410 Gone: subscription disabled");
            Ok(Disposition::Done)
        }
    }
}

async fn dead_letter(
    ports: &DeliverPorts<'_>,
    msg: &ReceivedTask,
    reason: &str,
) -> Result<Disposition, Unavailable> {
    let task = &msg.task;
    tracing::error!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, reason, "delivery impossible, dead-lettered");
    ports.queue.dead_letter(msg, reason).await?;
    Ok(Disposition::Done)
}

fn outcome_text(result: &Result<DeliveryResponse, DeliveryError>) -> String {
    match result {
        Ok(r) => format!("HTTP {}", r.status),
        Err(e) => e.to_string(),
    }
}

/// The outbound request: the body the subscription's format renders (the
/// original body and content type for `raw`), plus Standard Webhooks
/// headers, signed over the bytes actually sent, when the subscription has
/// a signing secret.
pub fn build_request(
    event: &Event,
    sub: &Subscription,
    timestamp: i64,
) -> Result<OutboundRequest, RenderError> {
    let mut headers = HeaderMap::with_capacity(5);
    let body = match format::render(sub.format, sub.template.as_ref(), event)? {
        Body::Original => {
            let content_type = event
                .content_type
                .as_deref()
                .unwrap_or("application/octet-stream");
            if let Ok(v) = HeaderValue::from_str(content_type) {
                headers.insert(CONTENT_TYPE, v);
            }
            // Shares the stored bytes: no copy on the raw path.
            event.body.clone()
        }
        Body::Json(rendered) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            rendered
        }
    };
    // The id stays the same across retries, so the receiver can dedup.
    let msg_id = event.key().to_string();
    let signing_key = sub.signing_key.as_ref();
    if sign::insert_headers(&mut headers, signing_key, &msg_id, timestamp, &body).is_err() {
        tracing::warn!(source = %event.source, event_id = %event.id, "event id is not a valid header value; sent without Standard Webhooks headers");
    }
    // During a rotation the replaced key signs too, until its overlap ends.
    if let Some(previous) =
        sub.previous_key_at(crate::time::from_ms(timestamp.saturating_mul(1000)))
    {
        let _ = sign::append_signature(&mut headers, previous, &msg_id, timestamp, &body);
    }
    if !event.event_type.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&event.event_type) {
            headers.insert(HeaderName::from_static("sluice-event-type"), v);
        }
    }
    Ok(OutboundRequest {
        url: sub.url.clone(),
        body,
        headers,
        allow_local: sub.allow_local,
    })
}
