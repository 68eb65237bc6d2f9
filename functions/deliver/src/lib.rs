//! DELIVER as a Lambda function on the SQS delivery queue: one delivery
//! attempt per message, all messages of a batch at once.
//!
//! The event source mapping must enable `ReportBatchItemFailures`. A
//! message is reported as failed when the pipeline keeps it for a retry
//! (its visibility was already set to the backoff, so it comes back then,
//! with a higher `ApproximateReceiveCount`, which is the attempt number) or
//! when a port was unavailable (it comes back after the queue's visibility
//! timeout). Everything else is done and Lambda deletes it: delivered,
//! dead-lettered, or skipped because the delivery was already final.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use sluice::aws::{Metrics, SqsQueue, parse_task};
use sluice::config::Registry;
use sluice::delivery::{DeliveryError, DeliveryResponse, OutboundRequest, Transport};
use sluice::error::Unavailable;
use sluice::model::{DeliveryTask, ReceivedTask};
use sluice::pipeline::deliver::{DeliverPorts, Disposition, deliver};
use sluice::queue::DeliveryQueue;
use sluice::store::EventStore;

/// The `Function` dimension of this function's metrics.
pub const FUNCTION: &str = "deliver";

/// The AWS calls this function's code makes, as IAM actions. The
/// deployment templates grant these and no others (infra/tests checks
/// them); tests/tests/aws_functions.rs records the calls the handler
/// actually makes against moto and checks they are exactly these.
pub const SDK_CALLS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
    "sqs:ChangeMessageVisibility",
    "sqs:SendMessage",
    "ssm:GetParameter",
];

/// What each call of [`SDK_CALLS`] is made on: the variable naming the
/// table or queue, or `ssm:{prefix}/*` for the parameters below the
/// deployment's SSM prefix (the `ssm:` secrets of the config).
pub const SDK_RESOURCES: &[(&str, &str)] = &[
    ("dynamodb:GetItem", "SLUICE_EVENTS_TABLE"),
    ("dynamodb:GetItem", "SLUICE_DELIVERIES_TABLE"),
    ("dynamodb:Scan", "SLUICE_CONFIG_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_DELIVERIES_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_CONFIG_TABLE"),
    ("sqs:ChangeMessageVisibility", "SLUICE_QUEUE_URL"),
    ("sqs:SendMessage", "SLUICE_DLQ_URL"),
    ("ssm:GetParameter", "ssm:{prefix}/*"),
];

/// The SQS system attribute that counts receives (the attempt number).
pub const RECEIVE_COUNT: &str = "ApproximateReceiveCount";

/// The ports deliver needs. The queue is the SQS adapter itself: a message
/// whose body is not a task is dead-lettered as raw bytes, which the port
/// cannot express.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub registry: &'a dyn Registry,
    pub store: &'a dyn EventStore,
    pub queue: &'a SqsQueue,
    pub transport: &'a dyn Transport,
}

/// What one invocation produced: the batch response and its metrics.
#[derive(Debug)]
pub struct Outcome {
    pub response: SqsBatchResponse,
    pub metrics: Metrics,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MessageOutcome {
    Delivered,
    /// Dead-lettered: exhausted, 410, impossible, or not a task at all.
    Failed,
    /// Already final: a redelivered message.
    Skipped,
    /// Kept for a retry: report it.
    Retry,
    /// A port failed: report it.
    Unavailable,
}

impl MessageOutcome {
    fn reported(&self) -> bool {
        matches!(self, Self::Retry | Self::Unavailable)
    }

    fn metric(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Retry => "retried",
            Self::Unavailable => "unavailable",
        }
    }
}

/// The Lambda handler: the batch response, with the metrics printed.
pub async fn handle(ports: Ports<'_>, event: SqsEvent) -> SqsBatchResponse {
    let outcome = process(ports, event).await;
    outcome.metrics.emit();
    outcome.response
}

/// Deliver every message of the batch concurrently. Prints nothing.
pub async fn process(ports: Ports<'_>, event: SqsEvent) -> Outcome {
    let results =
        futures::future::join_all(event.records.iter().map(|m| handle_message(ports, m))).await;
    let mut metrics = Metrics::new(FUNCTION);
    let mut response = SqsBatchResponse::default();
    for (message, (source, outcome, latency)) in event.records.iter().zip(results) {
        let source = source.as_deref();
        metrics.incr(source, outcome.metric());
        if let Some(ms) = latency {
            metrics.latency_ms(source, ms);
        }
        if outcome.reported() {
            // An empty identifier makes Lambda retry the whole batch: the
            // safe side for a message that somehow has no id.
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Outcome { response, metrics }
}

/// The attempt number of a message: its `ApproximateReceiveCount`.
pub fn receive_count(message: &SqsMessage) -> Option<u32> {
    message
        .attributes
        .get(RECEIVE_COUNT)
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
}

async fn handle_message(
    ports: Ports<'_>,
    message: &SqsMessage,
) -> (Option<String>, MessageOutcome, Option<u32>) {
    let message_id = message.message_id.as_deref().unwrap_or("");
    let body = message.body.as_deref().unwrap_or("");
    let count = receive_count(message).unwrap_or_else(|| {
        tracing::warn!(
            message_id,
            "message has no {RECEIVE_COUNT}; counted as attempt 1"
        );
        1
    });
    let task = match parse_task(body) {
        Ok(task) => task,
        // Not a task: nobody can deliver it, and retrying will not change
        // that. It goes to the dead-letter queue as it is, with the
        // reason, and is then done; if even that fails, it is reported and
        // comes back, so it is never lost.
        Err(e) => {
            let reason = e.to_string();
            tracing::error!(message_id, error = %reason, "message is not a delivery task; dead-lettering it");
            let outcome = match ports.queue.dead_letter_body(body, &reason, count).await {
                Ok(()) => MessageOutcome::Failed,
                Err(e) => {
                    tracing::error!(message_id, error = %e, "dead-lettering failed; message reported for retry");
                    MessageOutcome::Unavailable
                }
            };
            return (None, outcome, None);
        }
    };
    let received = ReceivedTask {
        task,
        handle: message.receipt_handle.clone().unwrap_or_default(),
        receive_count: count,
    };
    let recorder = Recorder {
        transport: ports.transport,
        queue: ports.queue,
        seen: Mutex::new(Seen::default()),
    };
    let deliver_ports = DeliverPorts {
        registry: ports.registry,
        store: ports.store,
        queue: &recorder,
        transport: &recorder,
    };
    let result = deliver(&deliver_ports, &received).await;
    let seen = recorder.seen();
    let outcome = match result {
        Ok(Disposition::Retry) => MessageOutcome::Retry,
        Ok(Disposition::Done) if seen.dead_lettered => MessageOutcome::Failed,
        Ok(Disposition::Done) if seen.success => MessageOutcome::Delivered,
        Ok(Disposition::Done) => MessageOutcome::Skipped,
        Err(e) => {
            let DeliveryTask {
                source,
                event_id,
                subscription,
            } = &received.task;
            tracing::error!(%source, %event_id, %subscription, attempt = count, error = %e, "delivery interrupted; message reported for retry");
            MessageOutcome::Unavailable
        }
    };
    (Some(received.task.source), outcome, seen.latency_ms)
}

/// What the pipeline did through the ports, for the metrics.
#[derive(Debug, Clone, Default)]
struct Seen {
    latency_ms: Option<u32>,
    success: bool,
    dead_lettered: bool,
}

/// Passes the transport and queue calls of one message through, noting
/// what happened; the pipeline's own results do not say whether `Done`
/// meant delivered, dead-lettered or skipped.
struct Recorder<'a> {
    transport: &'a dyn Transport,
    queue: &'a SqsQueue,
    seen: Mutex<Seen>,
}

impl Recorder<'_> {
    fn note(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    fn seen(&self) -> Seen {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Transport for Recorder<'_> {
    async fn send(&self, req: &OutboundRequest) -> Result<DeliveryResponse, DeliveryError> {
        let clock = Instant::now();
        let result = self.transport.send(req).await;
        let ms = u32::try_from(clock.elapsed().as_millis()).unwrap_or(u32::MAX);
        let success = matches!(&result, Ok(r) if (200..300).contains(&r.status));
        self.note(|s| {
            s.latency_ms = Some(ms);
            s.success = success;
        });
        result
    }
}

#[async_trait]
impl DeliveryQueue for Recorder<'_> {
    async fn send(&self, tasks: &[DeliveryTask]) -> Result<Vec<usize>, Unavailable> {
        self.queue.send(tasks).await
    }

    async fn retry_in(&self, msg: &ReceivedTask, delay: Duration) -> Result<(), Unavailable> {
        self.queue.retry_in(msg, delay).await
    }

    async fn dead_letter(&self, msg: &ReceivedTask, reason: &str) -> Result<(), Unavailable> {
        self.queue.dead_letter(msg, reason).await?;
        self.note(|s| s.dead_lettered = true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receive_count_is_the_approximate_receive_count_attribute() {
        let message: SqsMessage = serde_json::from_value(serde_json::json!({
            "messageId": "m-1",
            "receiptHandle": "h",
            "body": "{}",
            "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1"},
        }))
        .unwrap();
        assert_eq!(receive_count(&message), Some(3));
        for bad in ["0", "x", ""] {
            let mut m = message.clone();
            m.attributes.insert(RECEIVE_COUNT.into(), bad.into());
            assert_eq!(receive_count(&m), None, "{bad}");
        }
        let mut m = message.clone();
        m.attributes.clear();
        assert_eq!(receive_count(&m), None);
    }

    #[test]
    fn only_retries_and_outages_are_reported() {
        let reported: Vec<bool> = [
            MessageOutcome::Delivered,
            MessageOutcome::Failed,
            MessageOutcome::Skipped,
            MessageOutcome::Retry,
            MessageOutcome::Unavailable,
        ]
        .iter()
        .map(MessageOutcome::reported)
        .collect();
        assert_eq!(reported, [false, false, false, true, true]);
    }
}
