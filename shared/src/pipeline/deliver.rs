//! DELIVER: one attempt of one delivery task, and what follows from it.

use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use tracing::Instrument;

use crate::config::{Registry, Subscription};
use crate::delivery::{DeliveryError, DeliveryResponse, OutboundRequest, Transport};
use crate::error::Unavailable;
use crate::format::{self, Body, RenderError};
use crate::gate::{Admission, CircuitChange, Deferral, Gate, Verdict};
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, ReceivedTask};
use crate::notify::{self, Kind, Notification};
use crate::queue::{DeliveryQueue, Parked};
use crate::retry::Decision;
use crate::sign;
use crate::store::{Claim, EventStore, Lease};
use crate::time::to_ms;

/// The ports delivery needs.
pub struct DeliverPorts<'a> {
    pub registry: &'a dyn Registry,
    pub store: &'a dyn EventStore,
    pub queue: &'a dyn DeliveryQueue,
    pub transport: &'a dyn Transport,
    pub gate: &'a dyn Gate,
}

/// Timings of the deliver step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverOptions {
    /// How long a claim on a delivery lasts: longer than one attempt can
    /// take (the transport's timeout and the bookkeeping after it), so a
    /// live holder never loses it mid-send.
    pub lease: Duration,
    /// How often a paused subscription's task is looked at again.
    pub pause_recheck: Duration,
    /// A task the rate limit or `max_in_flight` turns away for no longer
    /// than this waits in place, holding its claim, instead of going back
    /// to the queue (which on SQS delays in whole seconds, and costs two
    /// requests each time).
    pub inline_wait: Duration,
}

impl Default for DeliverOptions {
    fn default() -> Self {
        Self {
            // The HTTP transport's 30 s, plus the writes after it; on AWS
            // also deliver's 60 s timeout, after which the holder is gone.
            lease: Duration::from_secs(75),
            // SQS's longest delay on a new message.
            pause_recheck: Duration::from_secs(900),
            inline_wait: INLINE_WAIT,
        }
    }
}

/// The default [`DeliverOptions::inline_wait`]: well inside the claim's
/// lease, and a few slots of a per-second limit.
pub const INLINE_WAIT: Duration = Duration::from_secs(2);

/// What one message came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent, and the destination accepted it.
    Delivered,
    /// An attempt failed; the message comes back after the backoff.
    Retrying,
    /// Recorded as failed and dead-lettered: attempts exhausted, 410, a
    /// permanent error, or nothing left to send (the subscription was
    /// deleted, the event is gone).
    Failed,
    /// Nothing to do: the delivery is final, or another copy of the task
    /// carries its schedule.
    Skipped,
    /// Another claim is live, or the next attempt is not due yet: the
    /// message comes back then, with nothing sent or recorded.
    PutBack,
    /// The subscription is paused: the task waits, with nothing sent or
    /// recorded.
    Paused(Parked),
    /// The subscription's delivery controls turned it away for now (rate
    /// limit, in-flight cap, open circuit): the task waits, with nothing
    /// sent or recorded, and its retry schedule untouched.
    Deferred { why: Deferral, parked: Parked },
}

/// What one message came to, and what it did to the destination's
/// circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    /// Set when this attempt opened or closed the circuit.
    pub circuit: Option<CircuitChange>,
}

impl From<Outcome> for Report {
    fn from(outcome: Outcome) -> Self {
        Self {
            outcome,
            circuit: None,
        }
    }
}

/// The metric name of a delivery step that a port interrupted (the task
/// comes back after its visibility timeout).
pub const UNAVAILABLE: &str = "unavailable";

/// What the runtime does with the message afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Finished with: delete the message.
    Done,
    /// Keep it: its visibility was set, it comes back then.
    Retry,
}

impl Outcome {
    /// Its name in the metrics of both backends (an EMF metric on AWS, the
    /// `outcome` label of `sluice_deliveries_total` on one machine).
    pub fn metric(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retried",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::PutBack => "put_back",
            Self::Paused(_) => "paused",
            Self::Deferred {
                why: Deferral::RateLimited | Deferral::InFlight | Deferral::Contended,
                ..
            } => "throttled",
            Self::Deferred {
                why: Deferral::CircuitOpen,
                ..
            } => "held",
        }
    }

    pub fn disposition(self) -> Disposition {
        match self {
            Self::Delivered
            | Self::Failed
            | Self::Skipped
            | Self::Paused(Parked::Copied)
            | Self::Deferred {
                parked: Parked::Copied,
                ..
            } => Disposition::Done,
            Self::Retrying
            | Self::PutBack
            | Self::Paused(Parked::Kept)
            | Self::Deferred {
                parked: Parked::Kept,
                ..
            } => Disposition::Retry,
        }
    }
}

/// Deliver one task. Errors mean a port was unavailable; the message is
/// then left alone and comes back after its visibility timeout.
///
/// The delivery is claimed first, so of two overlapping copies of one
/// task only one sends; the loser puts its message back for the rest of
/// the claim, or drops it once the delivery is final.
pub async fn deliver(
    ports: &DeliverPorts<'_>,
    msg: &ReceivedTask,
    options: &DeliverOptions,
) -> Result<Report, Unavailable> {
    match attempt(ports, msg, options).await {
        // The store refuses this task's writes for good (an item over
        // DynamoDB's size limit, say): retrying would fail the same way
        // until the queue's redrive. Dead-letter it now, with the reason;
        // the DLQ message and this log line are its trace.
        Err(e) if e.is_permanent() => {
            let task = &msg.task;
            tracing::error!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, error = %e, "the store refuses this task for good; dead-lettered");
            ports
                .queue
                .dead_letter(msg, &format!("the store refused the task: {e}"))
                .await?;
            Ok(Outcome::Failed.into())
        }
        other => other,
    }
}

async fn attempt(
    ports: &DeliverPorts<'_>,
    msg: &ReceivedTask,
    options: &DeliverOptions,
) -> Result<Report, Unavailable> {
    let task = &msg.task;
    let (lease, attempt, event) = match ports.store.claim(msg, options.lease).await? {
        Claim::Held {
            lease,
            attempt,
            event,
        } => (lease, attempt, event),
        Claim::Finished(status) => {
            tracing::info!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, status = status.as_str(), "already final; message dropped");
            return Ok(Outcome::Skipped.into());
        }
        Claim::NotDue {
            by_this_message: false,
            ..
        } => {
            tracing::info!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, "another copy of this task carries its schedule; message dropped");
            return Ok(Outcome::Skipped.into());
        }
        Claim::Leased { wait } | Claim::NotDue { wait, .. } => {
            tracing::info!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, wait_ms = wait.as_millis() as u64, "delivery claimed elsewhere or not due; message put back");
            ports.queue.retry_in(msg, wait).await?;
            return Ok(Outcome::PutBack.into());
        }
    };
    let Some(sub) = ports.registry.subscription(&task.subscription).await? else {
        return fail_unsent(ports, msg, &lease, attempt, "subscription was deleted")
            .await
            .map(Report::from);
    };
    let Some(event) = event else {
        return fail_unsent(ports, msg, &lease, attempt, "event no longer stored")
            .await
            .map(Report::from);
    };
    if !sub.is_enabled() {
        // Paused: the task waits for the subscription, however long, and
        // is free to be claimed as soon as it is resumed.
        let parked = ports.queue.park(msg, options.pause_recheck).await?;
        ports.store.release(task, &lease).await?;
        tracing::info!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, "subscription paused; task waits");
        return Ok(Outcome::Paused(parked).into());
    }
    let mut waited = Duration::ZERO;
    let pass = loop {
        match ports
            .gate
            .admit(&sub.id, &sub.controls, &lease.owner, options.lease)
            .await?
        {
            Admission::Go(pass) => break pass,
            // A short wait for a slot is spent here; the send is checked
            // against the limit again afterwards.
            Admission::Wait { wait, why }
                if why != Deferral::CircuitOpen && waited + wait <= options.inline_wait =>
            {
                tokio::time::sleep(wait).await;
                waited += wait;
            }
            Admission::Wait { wait, why } => {
                let parked = ports.queue.park(msg, wait).await?;
                ports.store.release(task, &lease).await?;
                tracing::info!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, deferral = why.as_str(), wait_ms = wait.as_millis() as u64, "deferred by the subscription's delivery controls");
                return Ok(Outcome::Deferred { why, parked }.into());
            }
        }
    };

    let started = SystemTime::now();
    let clock = Instant::now();
    // A payload that cannot be rendered or signed is a failed attempt,
    // logged and dead-lettered like any other; the event stays stored.
    let result = match build_request(&event, &sub, to_ms(started) / 1000) {
        Ok(request) => ports.transport.send(&request).await,
        Err(e @ BuildError::Render(_)) => Err(DeliveryError::Render(e.to_string())),
        Err(e @ BuildError::Unsignable) => Err(DeliveryError::Unsigned(e.to_string())),
    };
    let elapsed = clock.elapsed();
    let latency_ms = u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX);
    let verdict = Verdict::of(&result);
    // An untracked pass that went well has nothing to tell the gate: no
    // round trip on the hot path.
    let circuit = if pass.tracked || verdict == Verdict::Failing {
        match ports
            .gate
            .finish(&sub.id, &sub.controls, &pass, verdict, elapsed)
            .await
        {
            Ok(change) => change,
            // The slot frees itself when the lease ends; the attempt is
            // recorded all the same.
            Err(e) => {
                tracing::warn!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, error = %e, "the gate could not be updated after the attempt");
                None
            }
        }
    } else {
        None
    };
    match circuit {
        Some(CircuitChange::Opened) => {
            tracing::warn!(subscription = %task.subscription, circuit = "opened", probe_after_s = sub.controls.breaker.probe_after.as_secs(), "circuit opened: the destination kept failing (the circuit breaker's failures in a row, or its failure_percent); its tasks are held until a probe succeeds");
            let reason = format!(
                "the destination kept failing, the last time with {}",
                outcome_text(&result)
            );
            let n = Notification::subscription(Kind::CircuitOpened, &sub.id, reason);
            notify_about(ports, task, n.with_event(task.event_key().to_string())).await;
        }
        Some(CircuitChange::Closed) => {
            tracing::info!(subscription = %task.subscription, circuit = "closed", "circuit closed: the destination answered; held tasks go again");
            let reason = format!("the destination answered {}", outcome_text(&result));
            let n = Notification::subscription(Kind::CircuitClosed, &sub.id, reason);
            notify_about(ports, task, n).await;
        }
        Some(CircuitChange::Expired) => {
            let after = sub.controls.breaker.disable_after.unwrap_or_default();
            let after = humantime::format_duration(after);
            // Logged, not raised: the attempt is recorded all the same, and
            // a subscription left enabled only goes on being probed.
            match ports.registry.disable_subscription(&sub.id).await {
                Ok(()) => {
                    tracing::error!(subscription = %task.subscription, circuit = "expired", disable_after = %after, "subscription disabled: its circuit stayed open past the circuit breaker's disable_after; its tasks wait until it is resumed");
                    let reason = format!(
                        "its circuit stayed open for longer than {after}, and the last probe failed with {}",
                        outcome_text(&result)
                    );
                    let n = Notification::subscription(Kind::SubscriptionDisabled, &sub.id, reason);
                    notify_about(ports, task, n.with_event(task.event_key().to_string())).await;
                }
                Err(e) => {
                    tracing::warn!(subscription = %task.subscription, error = %e, "the circuit expired but the subscription could not be disabled");
                }
            }
        }
        None => {}
    }
    let decision = match sub.retry.decide(attempt, &result) {
        Decision::Retry(delay) => Decision::Retry(before_expiry(delay, &event, started)),
        // A probe tests the destination for every held task: its failure
        // never dead-letters the task that happened to be the probe. It
        // waits for the circuit with the others.
        Decision::Exhausted if pass.probe => Decision::Retry(before_expiry(
            sub.controls.breaker.probe_after,
            &event,
            started,
        )),
        other => other,
    };

    let record = Attempt {
        source: task.source.clone(),
        event_id: task.event_id.clone(),
        subscription: task.subscription.clone(),
        attempt,
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
    // What the decision is worth telling the operators, once recorded.
    let notice = match &decision {
        Decision::Exhausted => Some(Notification::subscription(
            Kind::DeliveryExhausted,
            &sub.id,
            format!("{outcome} (attempt {attempt})"),
        )),
        Decision::Gone => Some(Notification::subscription(
            Kind::SubscriptionDisabled,
            &sub.id,
            format!(
                "the destination answered 410 Gone to event {}",
                task.event_key()
            ),
        )),
        Decision::Delivered | Decision::Retry(_) => None,
    };
    // Instrumented, not entered: a guard held across the awaits below would
    // leave this span on whatever ran on the thread meanwhile, and the lines
    // logged after a resume on another thread would carry no event ids.
    let span = tracing::info_span!("attempt", source = %task.source, event_id = %task.event_id, subscription = %task.subscription, attempt, latency_ms);
    let outcome = settle(
        ports, msg, &lease, &sub.id, decision, record, started, &outcome,
    )
    .instrument(span)
    .await?;
    if let Some(n) = notice {
        notify_about(ports, task, n.with_event(task.event_key().to_string())).await;
    }
    Ok(Report { outcome, circuit })
}

/// Commit an operational notification, if some subscription takes them;
/// never about a notification's own delivery (no loops). A failure is
/// logged and the delivery goes on.
async fn notify_about(ports: &DeliverPorts<'_>, task: &DeliveryTask, n: Notification) {
    if notify::about_notifications(&task.source) {
        return;
    }
    notify::notify(ports.registry, ports.store, &n).await;
}

/// Records the attempt and acts on the retry decision.
#[allow(clippy::too_many_arguments)]
async fn settle(
    ports: &DeliverPorts<'_>,
    msg: &ReceivedTask,
    lease: &Lease,
    subscription: &str,
    decision: Decision,
    mut attempt: Attempt,
    started: SystemTime,
    outcome: &str,
) -> Result<Outcome, Unavailable> {
    match decision {
        Decision::Delivered => {
            ports
                .store
                .settle(&attempt, DeliveryStatus::Delivered, lease)
                .await?;
            tracing::info!(outcome = "delivered", result = %outcome, "delivered");
            Ok(Outcome::Delivered)
        }
        Decision::Retry(delay) => {
            attempt.next_attempt_at_ms = Some(to_ms(started + delay));
            ports
                .store
                .settle(&attempt, DeliveryStatus::Pending, lease)
                .await?;
            ports.queue.retry_in(msg, delay).await?;
            tracing::warn!(outcome = "retry", result = %outcome, retry_in_ms = delay.as_millis() as u64, "attempt failed, will retry");
            Ok(Outcome::Retrying)
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
                .settle(&attempt, DeliveryStatus::Failed, lease)
                .await?;
            tracing::error!(outcome = "failed", result = %outcome, "delivery failed, dead-lettered");
            Ok(Outcome::Failed)
        }
        Decision::Gone => {
            ports
                .queue
                .dead_letter(msg, "destination answered 410 Gone; subscription disabled")
                .await?;
            ports.registry.disable_subscription(subscription).await?;
            ports
                .store
                .settle(&attempt, DeliveryStatus::Failed, lease)
                .await?;
            tracing::error!(outcome = "failed", result = %outcome, "destination answered 410 Gone: subscription disabled");
            Ok(Outcome::Failed)
        }
    }
}

/// A wait cut so that the next attempt still finds the event: the config
/// keeps every schedule inside the retention (`config::RETENTION_MARGIN`
/// before it), but a destination's `Retry-After` may ask for more.
fn before_expiry(delay: Duration, event: &Event, now: SystemTime) -> Duration {
    let left_ms = event
        .expires_at
        .saturating_mul(1000)
        .saturating_sub(to_ms(now))
        .saturating_sub(to_ms_duration(crate::config::RETENTION_MARGIN));
    delay.min(Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)))
}

fn to_ms_duration(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A task that can never be sent: recorded as a failed attempt with the
/// reason (so the delivery is final, listed as a dead letter, and its
/// event can be purged), and dead-lettered.
async fn fail_unsent(
    ports: &DeliverPorts<'_>,
    msg: &ReceivedTask,
    lease: &Lease,
    attempt: u32,
    reason: &str,
) -> Result<Outcome, Unavailable> {
    let task = &msg.task;
    tracing::error!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, reason, "delivery impossible, dead-lettered");
    ports.queue.dead_letter(msg, reason).await?;
    let record = Attempt {
        source: task.source.clone(),
        event_id: task.event_id.clone(),
        subscription: task.subscription.clone(),
        attempt,
        started_at_ms: to_ms(SystemTime::now()),
        latency_ms: 0,
        status_code: None,
        error: Some(reason.to_owned()),
        response_snippet: None,
        next_attempt_at_ms: None,
    };
    ports
        .store
        .settle(&record, DeliveryStatus::Failed, lease)
        .await?;
    Ok(Outcome::Failed)
}

fn outcome_text(result: &Result<DeliveryResponse, DeliveryError>) -> String {
    match result {
        Ok(r) => format!("HTTP {}", r.status),
        Err(e) => e.to_string(),
    }
}

/// Why no request could be built for a delivery. Nothing was sent, and
/// retrying cannot help: both depend only on the event and the config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The signature would name an id the receiver cannot be shown; an
    /// unsigned delivery is never sent in its place.
    #[error("the event id cannot be sent in a webhook-id header, so the delivery cannot be signed")]
    Unsignable,
}

/// The outbound request: the body the subscription's format renders (the
/// original body and content type for `raw`), plus Standard Webhooks
/// headers, signed over the bytes actually sent, when the subscription has
/// a signing secret. Fails closed: no headers, no request.
pub fn build_request(
    event: &Event,
    sub: &Subscription,
    timestamp: i64,
) -> Result<OutboundRequest, BuildError> {
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
    sign::insert_headers(&mut headers, signing_key, &msg_id, timestamp, &body)
        .map_err(|_| BuildError::Unsignable)?;
    // During a rotation the replaced key signs too, until its overlap ends.
    if let Some(previous) =
        sub.previous_key_at(crate::time::from_ms(timestamp.saturating_mul(1000)))
    {
        sign::append_signature(&mut headers, previous, &msg_id, timestamp, &body)
            .map_err(|_| BuildError::Unsignable)?;
    }
    if !event.event_type.is_empty()
        && let Ok(v) = HeaderValue::from_str(&event.event_type)
    {
        headers.insert(HeaderName::from_static("sluice-event-type"), v);
    }
    Ok(OutboundRequest {
        url: sub.url.clone(),
        body,
        headers,
        allow_local: sub.allow_local,
    })
}
