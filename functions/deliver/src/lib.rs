//! DELIVER as a Lambda function on the SQS delivery queue: one delivery
//! attempt per message, all messages of a batch at once.
//!
//! The event source mapping must enable `ReportBatchItemFailures`. A
//! message is reported as failed when the pipeline keeps it: for a retry,
//! or put back because another copy holds the delivery or its attempt is
//! not due (its visibility was already set, so it comes back then), or
//! when a port was unavailable (it comes back after the queue's visibility
//! timeout). Everything else is done and Lambda deletes it: delivered,
//! dead-lettered, skipped (already final, or a redundant copy), or parked
//! (a paused subscription's task, re-queued as a fresh delayed message).
//! The attempt number comes from the deliveries table, not from
//! `ApproximateReceiveCount`.

use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use sluice::aws::{Metrics, SqsQueue, parse_task};
use sluice::config::Registry;
use sluice::delivery::{DeliveryError, DeliveryResponse, OutboundRequest, Transport};
use sluice::gate::Gate;
use sluice::model::{DeliveryTask, ReceivedTask};
use sluice::pipeline::deliver::{self, DeliverOptions, DeliverPorts, Disposition, deliver};
#[cfg(test)]
use sluice::queue::Parked;
use sluice::store::EventStore;

/// The `Function` dimension of this function's metrics.
pub const FUNCTION: &str = "deliver";

/// The AWS calls this function's code makes, as IAM actions. The
/// deployment templates grant these and no others (infra/tests checks
/// them); tests/tests/aws_functions.rs records the calls the handler
/// actually makes against moto and checks they are exactly these.
pub const SDK_CALLS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
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
    // The commit of an operational notification (`sluice::notify`).
    ("dynamodb:PutItem", "SLUICE_EVENTS_TABLE"),
    ("dynamodb:GetItem", "SLUICE_GATES_TABLE"),
    ("dynamodb:PutItem", "SLUICE_GATES_TABLE"),
    ("dynamodb:Scan", "SLUICE_CONFIG_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_DELIVERIES_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_CONFIG_TABLE"),
    ("sqs:ChangeMessageVisibility", "SLUICE_QUEUE_URL"),
    ("sqs:SendMessage", "SLUICE_QUEUE_URL"),
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
    pub gate: &'a dyn Gate,
    pub options: DeliverOptions,
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
    /// What the pipeline did with a task, and to its circuit.
    Task(deliver::Report),
    /// Not a task at all: dead-lettered as it is.
    NotATask,
    /// A port failed: report it.
    Unavailable,
}

impl MessageOutcome {
    /// Reported messages stay on the queue (Lambda does not delete them).
    fn reported(&self) -> bool {
        match self {
            Self::Task(report) => report.outcome.disposition() == Disposition::Retry,
            Self::NotATask => false,
            Self::Unavailable => true,
        }
    }

    fn metric(&self) -> &'static str {
        match self {
            Self::Task(report) => report.outcome.metric(),
            Self::NotATask => deliver::Outcome::Failed.metric(),
            Self::Unavailable => deliver::UNAVAILABLE,
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
    for (message, (subscription, outcome, latency)) in event.records.iter().zip(results) {
        let subscription = subscription.as_deref();
        metrics.delivery(subscription, outcome.metric());
        if let MessageOutcome::Task(deliver::Report {
            circuit: Some(change),
            ..
        }) = outcome
        {
            metrics.delivery(subscription, change.as_str());
        }
        if let (Some(subscription), Some(ms)) = (subscription, latency) {
            metrics.delivery_latency_ms(subscription, ms);
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
                Ok(()) => MessageOutcome::NotATask,
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
        message_id: message_id.to_owned(),
        receive_count: count,
    };
    let timed = Timed {
        transport: ports.transport,
        latency_ms: Mutex::new(None),
    };
    let deliver_ports = DeliverPorts {
        registry: ports.registry,
        store: ports.store,
        queue: ports.queue,
        transport: &timed,
        gate: ports.gate,
    };
    let result = deliver(&deliver_ports, &received, &ports.options).await;
    let latency_ms = *timed
        .latency_ms
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let outcome = match result {
        Ok(report) => MessageOutcome::Task(report),
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
    (Some(received.task.subscription), outcome, latency_ms)
}

/// Passes requests on to the transport, noting how long the attempt took
/// (the pipeline's outcome says what happened, not how long it took).
struct Timed<'a> {
    transport: &'a dyn Transport,
    latency_ms: Mutex<Option<u32>>,
}

#[async_trait]
impl Transport for Timed<'_> {
    async fn send(&self, req: &OutboundRequest) -> Result<DeliveryResponse, DeliveryError> {
        let clock = Instant::now();
        let result = self.transport.send(req).await;
        let ms = u32::try_from(clock.elapsed().as_millis()).unwrap_or(u32::MAX);
        *self
            .latency_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ms);
        result
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
            MessageOutcome::Task(deliver::Outcome::Delivered.into()),
            MessageOutcome::Task(deliver::Outcome::Failed.into()),
            MessageOutcome::Task(deliver::Outcome::Skipped.into()),
            MessageOutcome::Task(deliver::Outcome::Paused(Parked::Copied).into()),
            MessageOutcome::NotATask,
            MessageOutcome::Task(deliver::Outcome::Retrying.into()),
            MessageOutcome::Task(deliver::Outcome::PutBack.into()),
            MessageOutcome::Unavailable,
        ]
        .iter()
        .map(MessageOutcome::reported)
        .collect();
        assert_eq!(
            reported,
            [false, false, false, false, false, true, true, true]
        );
    }
}
