//! `DeliveryQueue` over SQS: the delivery queue and its dead-letter queue.
//! A message body is the JSON of one [`DeliveryTask`].

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use futures::StreamExt;

use super::sdk_error;
use crate::error::Unavailable;
use crate::model::{DeliveryTask, ReceivedTask};
use crate::queue::{DeliveryQueue, Parked};
use crate::retry::MAX_WAIT;
use crate::time::now_ms;

/// SendMessageBatch takes at most 10 entries.
pub const BATCH_SIZE: usize = 10;
/// Message attributes of a dead-lettered task.
pub const ATTR_REASON: &str = "reason";
pub const ATTR_RECEIVE_COUNT: &str = "receive_count";
pub const ATTR_DEAD_LETTERED_AT_MS: &str = "dead_lettered_at_ms";
/// A reason longer than this is cut (at a character boundary).
const MAX_REASON_BYTES: usize = 1024;
/// How many batches `send` has in flight at once.
const SEND_CONCURRENCY: usize = 4;

/// A message body that is not a delivery task.
#[derive(Debug, thiserror::Error)]
#[error("message body is not a delivery task: {0}")]
pub struct BadTask(#[from] serde_json::Error);

/// The message body of a task.
pub fn task_body(task: &DeliveryTask) -> String {
    // A struct of three strings always serialises.
    serde_json::to_string(task).unwrap_or_default()
}

/// The task in a message body (the deliver function's SQS records).
pub fn parse_task(body: &str) -> Result<DeliveryTask, BadTask> {
    Ok(serde_json::from_str(body)?)
}

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dlq_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: &str, dlq_url: &str) -> Self {
        Self {
            client,
            queue_url: queue_url.to_owned(),
            dlq_url: dlq_url.to_owned(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn dlq_url(&self) -> &str {
        &self.dlq_url
    }

    /// Put `body` on the dead-letter queue as it is, with the reason and
    /// receive count as message attributes. [`DeliveryQueue::dead_letter`]
    /// uses it for tasks; the deliver function uses it directly for a
    /// message whose body is not a task, so that nothing is lost.
    pub async fn dead_letter_body(
        &self,
        body: &str,
        reason: &str,
        receive_count: u32,
    ) -> Result<(), Unavailable> {
        let reason = if reason.is_empty() {
            "unspecified"
        } else {
            cut(reason)
        };
        self.client
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(body)
            .message_attributes(ATTR_REASON, attr("String", reason.to_owned())?)
            .message_attributes(
                ATTR_RECEIVE_COUNT,
                attr("Number", receive_count.to_string())?,
            )
            .message_attributes(
                ATTR_DEAD_LETTERED_AT_MS,
                attr("Number", now_ms().to_string())?,
            )
            .send()
            .await
            .map_err(|e| sdk_error("SendMessage (DLQ)", e))?;
        Ok(())
    }

    /// Send one batch (at most 10) whose first task has index `offset`.
    /// Returns the indexes that were not sent, or the error that stopped
    /// the whole batch.
    async fn send_batch(
        &self,
        offset: usize,
        tasks: &[DeliveryTask],
    ) -> Result<Vec<usize>, Unavailable> {
        let entries = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                SendMessageBatchRequestEntry::builder()
                    .id((offset + i).to_string())
                    .message_body(task_body(t))
                    .build()
                    .map_err(|e| Unavailable::new(format!("SendMessageBatch entry: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("SendMessageBatch", e))?;
        for f in out.failed() {
            tracing::warn!(
                entry = f.id(),
                code = f.code(),
                message = f.message().unwrap_or_default(),
                sender_fault = f.sender_fault(),
                "delivery task not queued"
            );
        }
        // Whatever SQS did not confirm counts as failed.
        let sent: HashSet<&str> = out.successful().iter().map(|s| s.id()).collect();
        Ok((offset..offset + tasks.len())
            .filter(|i| !sent.contains(i.to_string().as_str()))
            .collect())
    }
}

/// The longest delay SQS gives a new message.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// Seconds for a new message's DelaySeconds: rounded up (a task told to
/// wait must not come back before its time), at most [`MAX_DELAY`].
fn delay_secs(delay: Duration) -> i32 {
    let d = delay.min(MAX_DELAY);
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs.min(MAX_DELAY.as_secs())).unwrap_or(0)
}

/// Seconds for ChangeMessageVisibility: rounded up, at most [`MAX_WAIT`].
fn visibility_secs(delay: Duration) -> i32 {
    let d = delay.min(MAX_WAIT);
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs.min(MAX_WAIT.as_secs())).unwrap_or(i32::MAX)
}

fn cut(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

fn attr(data_type: &str, value: String) -> Result<MessageAttributeValue, Unavailable> {
    MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .map_err(|e| Unavailable::new(format!("message attribute: {e}")))
}

#[async_trait]
impl DeliveryQueue for SqsQueue {
    /// SendMessageBatch in chunks of 10 (entry ids are the task indexes).
    /// A chunk that fails as a whole reports all its indexes; only when
    /// nothing at all could be sent is it an error.
    async fn send(&self, tasks: &[DeliveryTask]) -> Result<Vec<usize>, Unavailable> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let batches: Vec<_> = tasks
            .chunks(BATCH_SIZE)
            .enumerate()
            .map(|(n, chunk)| async move {
                let offset = n * BATCH_SIZE;
                (offset, chunk.len(), self.send_batch(offset, chunk).await)
            })
            .collect();
        let results: Vec<(usize, usize, Result<Vec<usize>, Unavailable>)> =
            futures::stream::iter(batches)
                .buffer_unordered(SEND_CONCURRENCY)
                .collect()
                .await;
        let mut failed = Vec::new();
        let mut first_error = None;
        for (offset, len, result) in results {
            match result {
                Ok(f) => failed.extend(f),
                Err(e) => {
                    tracing::warn!(error = %e, tasks = len, "delivery task batch not queued");
                    failed.extend(offset..offset + len);
                    first_error.get_or_insert(e);
                }
            }
        }
        if failed.len() == tasks.len()
            && let Some(e) = first_error
        {
            return Err(e);
        }
        failed.sort_unstable();
        Ok(failed)
    }

    async fn retry_in(&self, msg: &ReceivedTask, delay: Duration) -> Result<(), Unavailable> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&msg.handle)
            .visibility_timeout(visibility_secs(delay))
            .send()
            .await
            .map_err(|e| sdk_error("ChangeMessageVisibility", e))?;
        Ok(())
    }

    /// A fresh copy of the task, delayed (SQS delays a new message by 15
    /// minutes at most), so the wait adds nothing to a receive count: the
    /// queue's redrive policy would move a message that waited long enough
    /// by visibility changes to the DLQ. The original is then deleted.
    async fn park(&self, msg: &ReceivedTask, recheck: Duration) -> Result<Parked, Unavailable> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(task_body(&msg.task))
            .delay_seconds(delay_secs(recheck))
            .send()
            .await
            .map_err(|e| sdk_error("SendMessage", e))?;
        Ok(Parked::Copied)
    }

    async fn dead_letter(&self, msg: &ReceivedTask, reason: &str) -> Result<(), Unavailable> {
        self.dead_letter_body(&task_body(&msg.task), reason, msg.receive_count)
            .await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    use super::*;
    use crate::aws::testing::{MotoServer, TestResources, receive_all};

    fn tasks(n: usize) -> Vec<DeliveryTask> {
        (0..n)
            .map(|i| DeliveryTask {
                source: "gh".into(),
                event_id: format!("e{i}"),
                subscription: "s".into(),
            })
            .collect()
    }

    async fn queue() -> (SqsQueue, TestResources) {
        let res = TestResources::create(MotoServer::shared()).await;
        let q = SqsQueue::new(
            res.clients.sqs.clone(),
            &res.settings.queue_url,
            &res.settings.dlq_url,
        );
        (q, res)
    }

    #[test]
    fn bodies_round_trip_and_bad_bodies_are_named() {
        let t = &tasks(1)[0];
        let body = task_body(t);
        assert_eq!(
            body,
            r#"{"source":"gh","event_id":"e0","subscription":"s"}"#
        );
        assert_eq!(parse_task(&body).unwrap(), *t);
        let err = parse_task("{\"source\":1}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("message body is not a delivery task"),
            "{err}"
        );
    }

    #[test]
    fn visibility_is_rounded_up_and_capped() {
        assert_eq!(visibility_secs(Duration::ZERO), 0);
        assert_eq!(visibility_secs(Duration::from_millis(1)), 1);
        assert_eq!(visibility_secs(Duration::from_secs(5)), 5);
        assert_eq!(visibility_secs(Duration::from_secs(86_400)), 42_600);
        assert_eq!(visibility_secs(MAX_WAIT + Duration::from_millis(1)), 42_600);
        // Whatever the wait asked for (a Retry-After of days included), the
        // change leaves SQS's 12 h from the receive a margin for the attempt
        // before it (deliver's timeout is 60 s). moto does not enforce the
        // limit, so it is checked here.
        let longest = u64::try_from(visibility_secs(Duration::MAX)).unwrap();
        assert!(longest + 60 < crate::retry::SQS_VISIBILITY_LIMIT.as_secs());
        assert_eq!(delay_secs(Duration::from_secs(3600)), 900);
        assert_eq!(delay_secs(Duration::from_secs(30)), 30);
        assert_eq!(delay_secs(Duration::from_millis(300)), 1, "never early");
        assert_eq!(cut(&"é".repeat(600)).len(), 1024);
        assert_eq!(cut("short"), "short");
    }

    /// Records the entry count of every SendMessageBatch call.
    #[derive(Debug, Default, Clone)]
    struct BatchSizes(std::sync::Arc<std::sync::Mutex<Vec<usize>>>);

    impl aws_sdk_sqs::config::Intercept for BatchSizes {
        fn name(&self) -> &'static str {
            "BatchSizes"
        }

        fn read_before_execution(
            &self,
            context: &aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextRef<
                '_,
            >,
            _cfg: &mut aws_sdk_sqs::config::ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
            if let Some(input) = context.input().downcast_ref::<SendMessageBatchInput>() {
                self.0.lock().unwrap().push(input.entries().len());
            }
            Ok(())
        }
    }

    /// Fails the SendMessageBatch call whose first entry id is `0`.
    #[derive(Debug)]
    struct FailFirstBatch;

    impl aws_sdk_sqs::config::Intercept for FailFirstBatch {
        fn name(&self) -> &'static str {
            "FailFirstBatch"
        }

        fn read_before_execution(
            &self,
            context: &aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextRef<
                '_,
            >,
            _cfg: &mut aws_sdk_sqs::config::ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
            match context.input().downcast_ref::<SendMessageBatchInput>() {
                Some(input) if input.entries().first().map(|e| e.id()) == Some("0") => {
                    Err("injected failure".into())
                }
                _ => Ok(()),
            }
        }
    }

    #[tokio::test]
    async fn a_failed_batch_reports_its_indexes_and_the_rest_is_sent() {
        let (_, res) = queue().await;
        let conf = aws_sdk_sqs::config::Builder::from(&MotoServer::shared().sdk_config().await)
            .interceptor(FailFirstBatch)
            .build();
        let q = SqsQueue::new(
            aws_sdk_sqs::Client::from_conf(conf),
            &res.settings.queue_url,
            &res.settings.dlq_url,
        );
        let sent = tasks(23);
        assert_eq!(q.send(&sent).await.unwrap(), (0..10).collect::<Vec<_>>());
        let got = receive_all(&res.clients.sqs, &res.settings.queue_url, 13).await;
        let mut ids: Vec<u32> = got
            .iter()
            .map(|m| {
                parse_task(m.body().unwrap()).unwrap().event_id[1..]
                    .parse()
                    .unwrap()
            })
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (10..23).collect::<Vec<_>>());
        // Only the failing batch: nothing sent at all, so an error.
        let err = q.send(&sent[..4]).await.unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
    }

    #[tokio::test]
    async fn send_25_tasks_in_3_batches_and_receive_them() {
        let (_, res) = queue().await;
        let sizes = BatchSizes::default();
        let conf = aws_sdk_sqs::config::Builder::from(&MotoServer::shared().sdk_config().await)
            .interceptor(sizes.clone())
            .build();
        let q = SqsQueue::new(
            aws_sdk_sqs::Client::from_conf(conf),
            &res.settings.queue_url,
            &res.settings.dlq_url,
        );
        let sent = tasks(25);
        assert_eq!(q.send(&sent).await.unwrap(), Vec::<usize>::new());
        assert_eq!(q.send(&[]).await.unwrap(), Vec::<usize>::new());
        let mut sizes = sizes.0.lock().unwrap().clone();
        sizes.sort_unstable();
        assert_eq!(sizes, [5, 10, 10]);
        let got = receive_all(&res.clients.sqs, &res.settings.queue_url, 25).await;
        let mut got: Vec<DeliveryTask> = got
            .iter()
            .map(|m| parse_task(m.body().unwrap()).unwrap())
            .collect();
        got.sort_by_key(|t| t.event_id[1..].parse::<u32>().unwrap());
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn a_failing_queue_reports_every_index_or_errs() {
        let moto = MotoServer::shared();
        let clients = moto.clients().await;
        let missing = format!("{}/123456789012/no-such-queue", moto.endpoint());
        let q = SqsQueue::new(clients.sqs, &missing, &missing);
        // Nothing could be sent: an error, not a list.
        let err = q.send(&tasks(12)).await.unwrap_err();
        assert!(err.to_string().contains("SendMessageBatch"), "{err}");
    }

    #[tokio::test]
    async fn retry_in_hides_the_message_then_it_returns() {
        let (q, res) = queue().await;
        q.send(&tasks(1)).await.unwrap();
        let sqs = &res.clients.sqs;
        let url = &res.settings.queue_url;
        let first = receive_all(sqs, url, 1).await.remove(0);
        let count = |m: &aws_sdk_sqs::types::Message| -> u32 {
            m.attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        assert_eq!(count(&first), 1);
        let msg = ReceivedTask {
            task: parse_task(first.body().unwrap()).unwrap(),
            handle: first.receipt_handle().unwrap().to_owned(),
            message_id: "m-1".to_owned(),
            receive_count: 1,
        };
        q.retry_in(&msg, Duration::from_secs(2)).await.unwrap();
        // Hidden now…
        let now = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        assert!(now.messages().is_empty(), "{:?}", now.messages());
        // …and back after the delay, received a second time.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let again = receive_all(sqs, url, 1).await.remove(0);
        assert_eq!(count(&again), 2);
        assert_eq!(parse_task(again.body().unwrap()).unwrap(), msg.task);
    }

    #[tokio::test]
    async fn dead_letter_puts_the_task_on_the_dlq() {
        let (q, res) = queue().await;
        let msg = ReceivedTask {
            task: tasks(1).remove(0),
            handle: "unused".into(),
            message_id: "m-1".to_owned(),
            receive_count: 8,
        };
        q.dead_letter(&msg, "attempts exhausted: HTTP 500")
            .await
            .unwrap();
        let got = receive_all(&res.clients.sqs, &res.settings.dlq_url, 1)
            .await
            .remove(0);
        assert_eq!(parse_task(got.body().unwrap()).unwrap(), msg.task);
        let attrs = got.message_attributes().unwrap();
        assert_eq!(
            attrs[ATTR_REASON].string_value(),
            Some("attempts exhausted: HTTP 500")
        );
        assert_eq!(attrs[ATTR_RECEIVE_COUNT].string_value(), Some("8"));
        assert_eq!(attrs[ATTR_RECEIVE_COUNT].data_type(), "Number");
        assert!(attrs.contains_key(ATTR_DEAD_LETTERED_AT_MS));
        // Nothing went to the delivery queue.
        let main = res
            .clients
            .sqs
            .receive_message()
            .queue_url(&res.settings.queue_url)
            .send()
            .await
            .unwrap();
        assert!(main.messages().is_empty());
    }
}
