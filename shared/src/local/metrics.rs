//! `sluice serve`'s metrics, exposed at `/metrics` in the OpenMetrics text
//! format (which Prometheus scrapes). The counters are recorded where the
//! pipeline knows the outcome; the queue gauges are read from SQLite when
//! scraped. Each gateway owns its registry (no process-wide recorder), so
//! gateways started side by side in one process count apart.
//!
//! The names match the AWS EMF metrics (`aws/metrics.rs`) where the meaning
//! is the same: an EMF metric per outcome is an `outcome` label value here,
//! both taken from the same functions (`Receipt::outcome`,
//! `refusal_outcome`, `deliver::Outcome::metric`).
//!
//! | metric | type | labels | EMF |
//! |---|---|---|---|
//! | `sluice_received_total` | counter | `source`, `outcome`, `reason` | `received`; `outcome` is `accepted`, `duplicates`, `handshakes`, `rejected` or `unavailable`; `reason` the error code of `rejected` (EMF `Reason`) |
//! | `sluice_deliveries_total` | counter | `subscription`, `outcome` | `delivered`, `retried`, `failed`, `skipped`, `put_back`, `paused`, `throttled` (deferred by `rate_limit` or `max_in_flight`), `held` (deferred by an open circuit), `unavailable` |
//! | `sluice_circuit_changes_total` | counter | `subscription`, `change` | `circuit_opened`, `circuit_closed` (EMF metrics of those names) |
//! | `sluice_circuit_open` | gauge | `subscription` | 1 while the circuit is open or probing, else 0 (subscriptions the gate has seen) |
//! | `sluice_delivery_latency_seconds` | histogram | `subscription` | `delivery_latency` (ms there) |
//! | `sluice_queue_depth` | gauge | | (SQS's `ApproximateNumberOfMessagesVisible`) |
//! | `sluice_queue_oldest_age_seconds` | gauge | | (SQS's `ApproximateAgeOfOldestMessage`) |
//! | `sluice_dlq_depth` | gauge | | (the DLQ's `ApproximateNumberOfMessagesVisible`) |
//! | `sluice_polls_total` | counter | `poller`, `result` | |
//! | `sluice_poll_items_emitted_total` | counter | `poller` | |
//!
//! Label values come from the config (source, subscription and poller ids)
//! or from fixed names, never from the request: a webhook to an unknown
//! source counts with `source=""`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::{LocalGate, SqliteStore};
use crate::error::Unavailable;
use crate::gate::{Circuit, CircuitChange};
use crate::poll::{PollOutcome, PollReport};

/// The content type of [`GatewayMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceivedLabels {
    source: String,
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    subscription: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubscriptionLabels {
    subscription: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CircuitLabels {
    subscription: String,
    change: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    poller: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollerLabels {
    poller: String,
}

type LatencyFamily = Family<SubscriptionLabels, Histogram, fn() -> Histogram>;

/// 5 ms to about 41 s, doubling: past the HTTP transport's 30 s timeout.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The gateway's metrics. Recording is a lock-free increment once a label
/// set exists (a read lock on its family to find it).
pub struct GatewayMetrics {
    registry: Registry,
    received: Family<ReceivedLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    latency: LatencyFamily,
    queue_depth: Gauge,
    queue_oldest_age: Gauge<f64, AtomicU64>,
    dlq_depth: Gauge,
    polls: Family<PollLabels, Counter>,
    poll_items: Family<PollerLabels, Counter>,
    circuit_changes: Family<CircuitLabels, Counter>,
    circuit_open: Family<SubscriptionLabels, Gauge>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let received = Family::<ReceivedLabels, Counter>::default();
        registry.register(
            "received",
            "Webhook requests answered, by source and outcome",
            received.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery steps, by subscription and outcome",
            deliveries.clone(),
        );
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "delivery_latency",
            "Time of each HTTP attempt, by subscription",
            Unit::Seconds,
            latency.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Delivery tasks queued (waiting, in flight or parked)",
            queue_depth.clone(),
        );
        let queue_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "queue_oldest_age",
            "Age of the oldest queued delivery task (0 when none)",
            Unit::Seconds,
            queue_oldest_age.clone(),
        );
        let dlq_depth = Gauge::default();
        registry.register(
            "dlq_depth",
            "Dead letters not yet replayed",
            dlq_depth.clone(),
        );
        let polls = Family::<PollLabels, Counter>::default();
        registry.register(
            "polls",
            "Scheduled polls, by poller and result",
            polls.clone(),
        );
        let poll_items = Family::<PollerLabels, Counter>::default();
        registry.register(
            "poll_items_emitted",
            "Items a poller emitted as events",
            poll_items.clone(),
        );
        let circuit_changes = Family::<CircuitLabels, Counter>::default();
        registry.register(
            "circuit_changes",
            "Circuit breaker transitions, by subscription",
            circuit_changes.clone(),
        );
        let circuit_open = Family::<SubscriptionLabels, Gauge>::default();
        registry.register(
            "circuit_open",
            "1 while a subscription's circuit is open (its tasks held)",
            circuit_open.clone(),
        );
        Self {
            registry,
            received,
            deliveries,
            latency,
            queue_depth,
            queue_oldest_age,
            dlq_depth,
            polls,
            poll_items,
            circuit_changes,
            circuit_open,
        }
    }

    /// One webhook request. `source` is `None` unless the source exists;
    /// `reason` is the error code of a rejection ("" otherwise).
    pub fn received(&self, source: Option<&str>, outcome: &'static str, reason: &'static str) {
        self.received
            .get_or_create(&ReceivedLabels {
                source: source.unwrap_or_default().to_owned(),
                outcome,
                reason,
            })
            .inc();
    }

    /// One delivery step of `subscription` and what it came to.
    pub fn delivery(&self, subscription: &str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                subscription: subscription.to_owned(),
                outcome,
            })
            .inc();
    }

    /// A circuit opened or closed.
    pub fn circuit_change(&self, subscription: &str, change: CircuitChange) {
        self.circuit_changes
            .get_or_create(&CircuitLabels {
                subscription: subscription.to_owned(),
                change: change.as_str(),
            })
            .inc();
    }

    /// How long one HTTP attempt to `subscription` took.
    pub fn attempt_latency(&self, subscription: &str, took: Duration) {
        self.latency
            .get_or_create(&SubscriptionLabels {
                subscription: subscription.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// One poll (a dry run is not counted: it changes nothing).
    pub fn poll(&self, report: &PollReport) {
        if report.dry_run {
            return;
        }
        let result = poll_result(&report.outcome);
        self.polls
            .get_or_create(&PollLabels {
                poller: report.poller.clone(),
                result,
            })
            .inc();
        if !report.emitted.is_empty() {
            self.poll_items
                .get_or_create(&PollerLabels {
                    poller: report.poller.clone(),
                })
                .inc_by(report.emitted.len() as u64);
        }
    }

    /// The exposition: the queue gauges read now, then every metric.
    pub async fn render(
        &self,
        store: &SqliteStore,
        gate: &LocalGate,
    ) -> Result<String, MetricsError> {
        for (subscription, state) in gate.snapshot() {
            let open = !matches!(state.circuit, Circuit::Closed { .. });
            self.circuit_open
                .get_or_create(&SubscriptionLabels { subscription })
                .set(i64::from(open));
        }
        let stats = store.queue_stats().await?;
        self.queue_depth.set(stats.depth);
        self.dlq_depth.set(stats.dead_letters);
        self.queue_oldest_age
            .set(stats.oldest_age_ms as f64 / 1000.0);
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|_| MetricsError::Encode)?;
        Ok(out)
    }
}

/// The `result` label of a poll: the `result` field of its report.
fn poll_result(outcome: &PollOutcome) -> &'static str {
    match outcome {
        PollOutcome::NotDue { .. } => "not_due",
        PollOutcome::Busy { .. } => "busy",
        PollOutcome::NotModified => "not_modified",
        PollOutcome::Primed { .. } => "primed",
        PollOutcome::Polled { .. } => "polled",
        PollOutcome::Throttled { .. } => "throttled",
        PollOutcome::Failed { .. } => "failed",
        PollOutcome::Unavailable { .. } => "unavailable",
    }
}

/// Why `/metrics` could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Store(#[from] Unavailable),
    #[error("the metrics could not be encoded")]
    Encode,
}

/// What the queue gauges show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Queued tasks: waiting, claimed or parked.
    pub depth: i64,
    /// Since the oldest queued task was first queued; 0 when none is.
    pub oldest_age_ms: i64,
    pub dead_letters: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::gate::{Admission, Breaker, Controls, Gate, Verdict};

    const LEASE: Duration = Duration::from_secs(75);

    #[test]
    fn the_poll_result_label_is_the_reports_result_field() {
        for outcome in [
            PollOutcome::NotDue { next_poll_at_ms: 1 },
            PollOutcome::Busy { until_ms: 1 },
            PollOutcome::NotModified,
            PollOutcome::Primed { recorded: 1 },
            PollOutcome::Polled {
                items: 1,
                emitted: 1,
                duplicates: 0,
            },
            PollOutcome::Throttled { error: "e".into() },
            PollOutcome::Failed { error: "e".into() },
            PollOutcome::Unavailable { error: "e".into() },
        ] {
            let json = serde_json::to_value(&outcome).unwrap();
            assert_eq!(json["result"], poll_result(&outcome));
        }
    }

    #[tokio::test]
    async fn the_exposition_carries_the_counters_and_the_queue_gauges() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("m.db")).unwrap();
        let m = GatewayMetrics::new();
        m.received(Some("gh"), "accepted", "");
        m.received(Some("gh"), "accepted", "");
        m.received(None, "rejected", "unknown_source");
        m.delivery("a", "retried");
        m.attempt_latency("a", Duration::from_millis(20));
        // One failure opens "a"'s circuit; "b" has seen only successes.
        let gate = LocalGate::load(store.clone()).await.unwrap();
        let breaker = Breaker {
            failures: 1,
            probe_after: Duration::from_secs(60),
            ..Breaker::default()
        };
        let controls = Controls::new(Format::Raw, None, None, Some(breaker)).unwrap();
        for (sub, verdict) in [("a", Verdict::Failing), ("b", Verdict::Healthy)] {
            let Admission::Go(pass) = gate.admit(sub, &controls, "o", LEASE).await.unwrap() else {
                panic!("a closed circuit admits");
            };
            if let Some(change) = gate
                .finish(sub, &controls, &pass, verdict, Duration::ZERO)
                .await
                .unwrap()
            {
                m.circuit_change(sub, change);
            }
        }
        let text = m.render(&store, &gate).await.unwrap();
        assert!(
            text.contains(
                r#"sluice_circuit_changes_total{subscription="a",change="circuit_opened"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"sluice_circuit_open{subscription="a"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sluice_circuit_open{subscription="b"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sluice_received_total{source="gh",outcome="accepted",reason=""} 2"#),
            "{text}"
        );
        assert!(text.contains(
            r#"sluice_received_total{source="",outcome="rejected",reason="unknown_source"} 1"#
        ));
        assert!(text.contains(r#"sluice_deliveries_total{subscription="a",outcome="retried"} 1"#));
        assert!(text.contains(r#"sluice_delivery_latency_seconds_count{subscription="a"} 1"#));
        assert!(text.contains("sluice_queue_depth 0\n"));
        assert!(text.contains("sluice_dlq_depth 0\n"));
        assert!(text.ends_with("# EOF\n"));
    }
}
