//! ENQUEUE as a Lambda function on the events table's DynamoDB stream (the
//! outbox): each INSERT is a newly committed event, routed to its
//! subscriptions with one SQS delivery task each.
//!
//! The event source mapping must enable `ReportBatchItemFailures`. Records
//! are handled concurrently; each failed one is reported by its sequence
//! number. Lambda restarts the shard from the lowest reported number, so
//! the records after it are handled again: enqueue is idempotent (a task
//! sent twice is skipped by deliver once the delivery is final, and
//! marking an event routed twice changes nothing).
//!
//! A replay (an item with `replay_to`, written by the admin API) is queued
//! to the subscriptions it names and to no other.

use async_trait::async_trait;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;
use sluice::aws::Metrics;
use sluice::aws::item::{PK, ev};
use sluice::config::Registry;
use sluice::error::Unavailable;
use sluice::filter::FilterInput;
use sluice::model::{EventKey, Headers};
use sluice::pipeline::enqueue::{EventContent, enqueue, enqueue_replay};
use sluice::queue::DeliveryQueue;
use sluice::store::EventStore;

/// The `Function` dimension of this function's metrics.
pub const FUNCTION: &str = "enqueue";

/// The AWS calls this function's code makes, as IAM actions. The
/// deployment templates grant these and no others (infra/tests checks
/// them); tests/tests/aws_functions.rs records the calls the handler
/// actually makes against moto and checks they are exactly these.
pub const SDK_CALLS: &[&str] = &["dynamodb:Scan", "dynamodb:UpdateItem", "sqs:SendMessage"];

/// What each call of [`SDK_CALLS`] is made on: the variable naming the
/// table or queue. Routing needs no secret: enqueue reads none.
pub const SDK_RESOURCES: &[(&str, &str)] = &[
    ("dynamodb:Scan", "SLUICE_CONFIG_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_EVENTS_TABLE"),
    ("dynamodb:UpdateItem", "SLUICE_DELIVERIES_TABLE"),
    // SendMessageBatch: IAM authorises it as sqs:SendMessage.
    ("sqs:SendMessage", "SLUICE_QUEUE_URL"),
];

/// The ports enqueue needs.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub registry: &'a dyn Registry,
    pub queue: &'a dyn DeliveryQueue,
    pub store: &'a dyn EventStore,
}

/// What one invocation produced: the batch response and its metrics.
#[derive(Debug)]
pub struct Outcome {
    pub response: DynamoDbEventResponse,
    pub metrics: Metrics,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RecordOutcome {
    /// Not an INSERT: nothing to do.
    Ignored,
    Routed {
        source: String,
        tasks: usize,
    },
    /// Report it, so that Lambda hands it (and those after it) back.
    Failed {
        source: Option<String>,
    },
}

/// A record as it arrived: typed, or the reason it is not a stream record
/// and its sequence number if it has one.
type Arrived = Result<EventRecord, (Option<String>, String)>;

/// The Lambda handler, for any JSON event: each record is read on its own,
/// so one record that does not parse is reported by its sequence number
/// instead of failing the whole batch. Metrics are printed.
pub async fn handle_json(ports: Ports<'_>, event: serde_json::Value) -> DynamoDbEventResponse {
    let records = match event {
        serde_json::Value::Object(mut map) => match map.remove("Records") {
            Some(serde_json::Value::Array(records)) => records,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let arrived = records
        .into_iter()
        .map(|raw| {
            let sequence = raw["dynamodb"]["SequenceNumber"]
                .as_str()
                .map(str::to_owned);
            serde_json::from_value::<EventRecord>(raw).map_err(|e| (sequence, e.to_string()))
        })
        .collect();
    let outcome = process_arrived(ports, arrived).await;
    outcome.metrics.emit();
    outcome.response
}

/// The handler for a typed event; metrics are printed.
pub async fn handle(ports: Ports<'_>, event: Event) -> DynamoDbEventResponse {
    let outcome = process(ports, event).await;
    outcome.metrics.emit();
    outcome.response
}

/// Route every INSERT of the batch concurrently. Prints nothing.
pub async fn process(ports: Ports<'_>, event: Event) -> Outcome {
    process_arrived(ports, event.records.into_iter().map(Ok).collect()).await
}

async fn process_arrived(ports: Ports<'_>, records: Vec<Arrived>) -> Outcome {
    let outcomes = futures::future::join_all(records.iter().map(|r| async move {
        match r {
            Ok(record) => handle_record(ports, record).await,
            Err((sequence, e)) => {
                // Reported, like an image that does not parse (see below).
                tracing::error!(sequence = sequence.as_deref().unwrap_or(""), error = %e, "not a DynamoDB stream record; reported as failed");
                RecordOutcome::Failed { source: None }
            }
        }
    }))
    .await;
    let mut metrics = Metrics::new(FUNCTION);
    let mut response = DynamoDbEventResponse::default();
    for (record, outcome) in records.iter().zip(outcomes) {
        let sequence = match record {
            Ok(r) => r.change.sequence_number.clone(),
            Err((sequence, _)) => sequence.clone(),
        };
        match outcome {
            RecordOutcome::Ignored => {}
            RecordOutcome::Routed { source, tasks: 0 } => {
                metrics.incr(Some(&source), "unrouted");
            }
            RecordOutcome::Routed { source, tasks } => {
                metrics.add(Some(&source), "enqueued", tasks as u64);
            }
            RecordOutcome::Failed { source } => {
                metrics.incr(source.as_deref(), "failed");
                // A record without a sequence number cannot be named; an
                // identifier that is absent makes Lambda retry the whole
                // batch, which is the safe side.
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = sequence;
                response.batch_item_failures.push(failure);
            }
        }
    }
    Outcome { response, metrics }
}

async fn handle_record(ports: Ports<'_>, record: &EventRecord) -> RecordOutcome {
    let sequence = record.change.sequence_number.as_deref().unwrap_or("");
    if record.event_name != "INSERT" {
        return RecordOutcome::Ignored;
    }
    let Image {
        key,
        event_type,
        replay_to,
    } = match parse_image(record) {
        Ok(parsed) => parsed,
        // Reported, not dropped: this record is the only outbox entry of
        // an event the provider was already told is accepted, so skipping
        // it would lose the event silently. Reporting it keeps it in the
        // stream; the mapping's retry limit and on-failure destination
        // (infra) take it out of the way and keep it for an operator.
        Err(e) => {
            tracing::error!(sequence, event_id = %record.event_id, error = %e, "stream record is not an event; reported as failed");
            return RecordOutcome::Failed { source: None };
        }
    };
    let result = match &replay_to {
        Some(subs) => enqueue_replay(ports.queue, ports.store, &key, &event_type, subs).await,
        None => {
            let content = ImageContent {
                record,
                key: &key,
                event_type: &event_type,
            };
            let (registry, queue, store) = (ports.registry, ports.queue, ports.store);
            enqueue(registry, queue, store, &key, &event_type, &content).await
        }
    };
    match result {
        Ok(tasks) => RecordOutcome::Routed {
            source: key.source,
            tasks,
        },
        Err(e) => {
            tracing::error!(sequence, source = %key.source, event_id = %key.id, error = %e, "enqueue failed; record reported for retry");
            RecordOutcome::Failed {
                source: Some(key.source),
            }
        }
    }
}

/// What payload filters read of an event: the body and headers its
/// record's `NewImage` carries, so routing makes no read of its own.
/// Built only when a subscription that takes the event has a filter.
struct ImageContent<'a> {
    record: &'a EventRecord,
    key: &'a EventKey,
    /// Already read by [`parse_image`].
    event_type: &'a str,
}

#[async_trait]
impl EventContent for ImageContent<'_> {
    async fn filter_input(&self) -> Result<FilterInput, Unavailable> {
        let image = &self.record.change.new_image;
        let body = match image.get(ev::BODY) {
            Some(AttributeValue::B(b)) => bytes::Bytes::copy_from_slice(b),
            _ => bytes::Bytes::new(),
        };
        // Written by sluice (item::event_to_item); unreadable ones are none.
        let headers: Headers = match image.get(ev::HEADERS) {
            Some(AttributeValue::S(h)) => serde_json::from_str(h).unwrap_or_default(),
            _ => Headers::default(),
        };
        let event = sluice::model::Event {
            source: self.key.source.clone(),
            id: self.key.id.clone(),
            event_type: self.event_type.to_owned(),
            received_at_ms: 0,
            expires_at: 0,
            body,
            body_hash: String::new(),
            content_type: None,
            headers,
        };
        Ok(FilterInput::new(Some(&event)))
    }
}

/// What enqueue reads of a stream record's `NewImage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub key: EventKey,
    /// May be empty.
    pub event_type: String,
    /// A replay's subscriptions; None for an event to route.
    pub replay_to: Option<Vec<String>>,
}

/// The event key, type and (for a replay) subscriptions in a record's
/// `NewImage` (attribute names from [`sluice::aws::item`]). `event_type`
/// may be empty or absent.
pub fn parse_image(record: &EventRecord) -> Result<Image, String> {
    let image = &record.change.new_image;
    if image.is_empty() {
        return Err("the record has no NewImage (the events table's stream must be NEW_IMAGE or NEW_AND_OLD_IMAGES)".to_owned());
    }
    let string = |name: &str| match image.get(name) {
        Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => Err(format!("{name} is not a string")),
    };
    let required = |name: &str| match string(name)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{name} is missing or empty")),
    };
    let source = required(ev::SOURCE)?;
    let id = required(ev::ID)?;
    let event_type = string(ev::EVENT_TYPE)?.unwrap_or_default();
    let replay_to = match image.get(ev::REPLAY_TO) {
        None | Some(AttributeValue::Null(_)) => None,
        Some(AttributeValue::L(list)) => Some(
            list.iter()
                .map(|v| match v {
                    AttributeValue::S(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(format!("{} holds a non-string", ev::REPLAY_TO)),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(format!("{} is not a list", ev::REPLAY_TO)),
    };
    let key = EventKey::new(source, id);
    if let Some(pk) = string(PK)?
        && pk != key.to_string()
    {
        return Err(format!("{PK} {pk:?} does not match {source:?} and {id:?}"));
    }
    Ok(Image {
        key,
        event_type: event_type.to_owned(),
        replay_to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(image: serde_json::Value) -> EventRecord {
        serde_json::from_value(serde_json::json!({
            "eventID": "1",
            "eventName": "INSERT",
            "awsRegion": "us-east-1",
            "eventSource": "aws:dynamodb",
            "dynamodb": {
                "Keys": {"pk": {"S": "gh#d-1"}},
                "NewImage": image,
                "SequenceNumber": "100",
                "SizeBytes": 10,
                "StreamViewType": "NEW_IMAGE",
            },
        }))
        .unwrap()
    }

    #[test]
    fn the_key_and_type_come_from_the_new_image() {
        let r = record(serde_json::json!({
            "pk": {"S": "gh#d-1"}, "source": {"S": "gh"}, "id": {"S": "d-1"},
            "event_type": {"S": "push"}, "body": {"B": "e30="},
        }));
        assert_eq!(
            parse_image(&r).unwrap(),
            Image {
                key: EventKey::new("gh", "d-1"),
                event_type: "push".to_owned(),
                replay_to: None,
            }
        );
        let untyped = record(serde_json::json!({"source": {"S": "gh"}, "id": {"S": "d-1"}}));
        assert_eq!(parse_image(&untyped).unwrap().event_type, "");
        let replay = record(serde_json::json!({
            "source": {"S": "gh"}, "id": {"S": "d-1#replay-1"}, "replay_of": {"S": "d-1"},
            "replay_to": {"L": [{"S": "a"}, {"S": "b"}]},
        }));
        assert_eq!(
            parse_image(&replay).unwrap().replay_to,
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
    }

    #[test]
    fn images_that_are_not_events_are_errors() {
        for (image, what) in [
            (serde_json::json!({}), "NewImage"),
            (serde_json::json!({"id": {"S": "d-1"}}), "source"),
            (
                serde_json::json!({"source": {"S": "gh"}, "id": {"N": "1"}}),
                "id is not a string",
            ),
            (
                serde_json::json!({"source": {"S": ""}, "id": {"S": "x"}}),
                "source is missing or empty",
            ),
            (
                serde_json::json!({"pk": {"S": "gh#other"}, "source": {"S": "gh"}, "id": {"S": "d-1"}}),
                "does not match",
            ),
            (
                serde_json::json!({"source": {"S": "gh"}, "id": {"S": "d"}, "event_type": {"BOOL": true}}),
                "event_type",
            ),
            (
                serde_json::json!({"source": {"S": "gh"}, "id": {"S": "d"}, "replay_to": {"S": "a"}}),
                "replay_to is not a list",
            ),
            (
                serde_json::json!({"source": {"S": "gh"}, "id": {"S": "d"}, "replay_to": {"L": [{"N": "1"}]}}),
                "replay_to holds",
            ),
        ] {
            let err = parse_image(&record(image.clone())).unwrap_err();
            assert!(err.contains(what), "{image}: {err}");
        }
    }
}
