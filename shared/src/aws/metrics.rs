//! CloudWatch Embedded Metric Format (EMF): the functions count what the
//! pipeline did during one invocation and print it as JSON log lines, which
//! CloudWatch Logs turns into metrics. No API call, no extra latency.
//!
//! Namespace `Sluice`; dimensions `Function`, and where known `Source`
//! (receive, enqueue) or `Subscription` (deliver: the delivery's, as the
//! `subscription` label of `sluice serve`'s `sluice_deliveries_total`) and
//! (for `rejected`) `Reason`. Each line declares two dimension sets: the
//! full one and `[Function]` alone, so a function's totals need no metric
//! math.
//!
//! | metric | unit | function | meaning | `sluice serve` (`/metrics`) |
//! |---|---|---|---|---|
//! | `received` | Count | receive | requests answered | `sluice_received_total` |
//! | `accepted` | Count | receive | new events committed | `sluice_received_total{outcome="accepted"}` |
//! | `duplicates` | Count | receive | duplicates dropped | `…{outcome="duplicates"}` |
//! | `handshakes` | Count | receive | provider handshakes answered (Slack, Zoom, Twitch) | `…{outcome="handshakes"}` |
//! | `rejected` | Count | receive | refused requests (`Reason` = the error code) | `…{outcome="rejected",reason=…}` |
//! | `unavailable` | Count | all | a port (store, queue, config) failed; retried | receive: `…{outcome="unavailable"}`; deliver: `sluice_deliveries_total{outcome="unavailable"}` |
//! | `enqueued` | Count | enqueue | delivery tasks queued | |
//! | `unrouted` | Count | enqueue | events that matched no subscription | |
//! | `delivered` | Count | deliver | deliveries that got a 2xx | `sluice_deliveries_total{outcome="delivered"}` |
//! | `retried` | Count | deliver | failed attempts scheduled for a retry | `…{outcome="retried"}` |
//! | `failed` | Count | enqueue, deliver | stream records reported as failed (enqueue); deliveries dead-lettered: exhausted, 410, impossible (deliver) | deliver's: `…{outcome="failed"}` |
//! | `skipped` | Count | deliver | redelivered messages of finished deliveries | `…{outcome="skipped"}` |
//! | `put_back` | Count | deliver | messages put back: another copy holds the lease, or the attempt is not due | `…{outcome="put_back"}` |
//! | `paused` | Count | deliver | tasks of a paused subscription, left waiting | `…{outcome="paused"}` |
//! | `throttled` | Count | deliver | tasks deferred by the subscription's `rate_limit` or `max_in_flight` (not attempts) | `…{outcome="throttled"}` |
//! | `held` | Count | deliver | tasks held by an open circuit (not attempts) | `…{outcome="held"}` |
//! | `circuit_opened` | Count | deliver | a subscription's circuit opened: the destination kept failing | `sluice_circuit_changes_total{change="circuit_opened"}` |
//! | `circuit_closed` | Count | deliver | a subscription's circuit closed: a probe succeeded | `sluice_circuit_changes_total{change="circuit_closed"}` |
//! | `circuit_expired` | Count | deliver | a failed probe after `disable_after` open: the subscription was disabled | `sluice_circuit_changes_total{change="circuit_expired"}` |
//! | `delivery_latency` | Milliseconds | deliver | time of each HTTP attempt | `sluice_delivery_latency_seconds` (a histogram, in seconds) |
//!
//! The outcome names come from one place for both backends
//! (`pipeline::receive::Receipt::outcome`, `refusal_outcome`,
//! `pipeline::deliver::Outcome::metric`): an EMF metric here is an
//! `outcome` label value of `sluice serve`'s metrics (`local/metrics.rs`),
//! where the Prometheus naming puts the dimension in a label. The queue
//! depths and ages on AWS are SQS's own metrics
//! (`ApproximateNumberOfMessagesVisible`, `ApproximateAgeOfOldestMessage`).
//!
//! One line is printed per distinct (`Source`, `Reason`) pair of the
//! invocation: a receive invocation prints exactly one, a batch that spans
//! several sources one per source. Untrusted input never becomes a
//! dimension value: the receive function sets `Source` only for a source
//! that exists in the config (an unknown `/hooks/{x}` would otherwise mint
//! a new metric per probe).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "Sluice";

/// EMF accepts at most 100 values per metric in one document.
const MAX_VALUES: usize = 100;

/// The counters and timings of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    function: String,
    groups: BTreeMap<Dims, Group>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Dims {
    source: Option<String>,
    subscription: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Group {
    counts: BTreeMap<&'static str, u64>,
    latencies_ms: Vec<f64>,
}

impl Metrics {
    pub fn new(function: &str) -> Self {
        Self {
            function: function.to_owned(),
            groups: BTreeMap::new(),
        }
    }

    fn group(&mut self, source: Option<&str>, reason: Option<&str>) -> &mut Group {
        self.groups
            .entry(Dims {
                source: source.map(str::to_owned),
                subscription: None,
                reason: reason.map(str::to_owned),
            })
            .or_default()
    }

    fn subscription_group(&mut self, subscription: Option<&str>) -> &mut Group {
        self.groups
            .entry(Dims {
                source: None,
                subscription: subscription.map(str::to_owned),
                reason: None,
            })
            .or_default()
    }

    /// Add one to deliver's counter `name`, by subscription (the
    /// `subscription` label of `sluice_deliveries_total`).
    pub fn delivery(&mut self, subscription: Option<&str>, name: &'static str) {
        *self
            .subscription_group(subscription)
            .counts
            .entry(name)
            .or_default() += 1;
    }

    /// One `delivery_latency` value, by subscription.
    pub fn delivery_latency_ms(&mut self, subscription: &str, ms: u32) {
        self.subscription_group(Some(subscription))
            .latencies_ms
            .push(f64::from(ms));
    }

    /// Add `n` to counter `name`.
    pub fn add(&mut self, source: Option<&str>, name: &'static str, n: u64) {
        *self.group(source, None).counts.entry(name).or_default() += n;
    }

    /// Add one to counter `name`.
    pub fn incr(&mut self, source: Option<&str>, name: &'static str) {
        self.add(source, name, 1);
    }

    /// One `rejected`, with its reason as a dimension.
    pub fn rejected(&mut self, source: Option<&str>, reason: &str) {
        *self
            .group(source, Some(reason))
            .counts
            .entry("rejected")
            .or_default() += 1;
    }

    /// One `delivery_latency` value.
    pub fn latency_ms(&mut self, source: Option<&str>, ms: u32) {
        self.group(source, None).latencies_ms.push(f64::from(ms));
    }

    /// The value of a counter summed over every group (for tests and logs).
    pub fn total(&self, name: &str) -> u64 {
        self.groups
            .values()
            .filter_map(|g| g.counts.get(name))
            .sum()
    }

    /// Every latency recorded, in order of groups.
    pub fn latencies(&self) -> Vec<f64> {
        self.groups
            .values()
            .flat_map(|g| g.latencies_ms.iter().copied())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The EMF documents, one per group, stamped `timestamp_ms`.
    pub fn to_emf(&self, timestamp_ms: i64) -> Vec<Value> {
        let mut docs = Vec::new();
        for (dims, group) in &self.groups {
            let mut names = vec!["Function"];
            let mut root = Map::new();
            root.insert("Function".into(), json!(self.function));
            if let Some(source) = &dims.source {
                names.push("Source");
                root.insert("Source".into(), json!(source));
            }
            if let Some(subscription) = &dims.subscription {
                names.push("Subscription");
                root.insert("Subscription".into(), json!(subscription));
            }
            if let Some(reason) = &dims.reason {
                names.push("Reason");
                root.insert("Reason".into(), json!(reason));
            }
            let mut dimension_sets = vec![names.clone()];
            if names.len() > 1 {
                dimension_sets.push(vec!["Function"]);
            }
            let mut metrics = Vec::new();
            for (name, count) in &group.counts {
                metrics.push(json!({ "Name": name, "Unit": "Count" }));
                root.insert((*name).to_owned(), json!(count));
            }
            // Values past EMF's limit go into further documents.
            let mut chunks = group.latencies_ms.chunks(MAX_VALUES);
            if let Some(first) = chunks.next() {
                metrics.push(json!({ "Name": "delivery_latency", "Unit": "Milliseconds" }));
                root.insert("delivery_latency".into(), json!(first));
            }
            let directive = |metrics: Vec<Value>| {
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": dimension_sets,
                        "Metrics": metrics,
                    }],
                })
            };
            root.insert("_aws".into(), directive(metrics));
            let base: Map<String, Value> = root
                .iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "Function" | "Source" | "Subscription" | "Reason"
                    )
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            docs.push(Value::Object(root));
            for rest in chunks {
                let mut extra = base.clone();
                extra.insert("delivery_latency".into(), json!(rest));
                extra.insert(
                    "_aws".into(),
                    directive(vec![
                        json!({ "Name": "delivery_latency", "Unit": "Milliseconds" }),
                    ]),
                );
                docs.push(Value::Object(extra));
            }
        }
        docs
    }

    /// Print the documents to stdout, one line each, where the Lambda log
    /// agent picks them up.
    pub fn emit(&self) {
        use std::io::Write;
        let docs = self.to_emf(crate::time::now_ms());
        let mut out = std::io::stdout().lock();
        for doc in docs {
            // A lost metrics line must never fail the invocation.
            let _ = writeln!(out, "{doc}");
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_with_the_emf_directive_and_values_at_the_root() {
        let mut m = Metrics::new("receive");
        m.incr(Some("github"), "received");
        m.incr(Some("github"), "accepted");
        let docs = m.to_emf(1_700_000_000_123);
        assert_eq!(docs.len(), 1);
        assert_eq!(
            docs[0],
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_123_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Sluice",
                        "Dimensions": [["Function", "Source"], ["Function"]],
                        "Metrics": [
                            {"Name": "accepted", "Unit": "Count"},
                            {"Name": "received", "Unit": "Count"},
                        ],
                    }],
                },
                "Function": "receive",
                "Source": "github",
                "accepted": 1,
                "received": 1,
            })
        );
    }

    #[test]
    fn rejections_carry_a_reason_and_no_source_when_unknown() {
        let mut m = Metrics::new("receive");
        m.incr(None, "received");
        m.rejected(None, "unknown_source");
        let docs = m.to_emf(1);
        assert_eq!(docs.len(), 2);
        let plain = &docs[0];
        assert_eq!(plain["received"], 1);
        assert_eq!(
            plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"]])
        );
        assert!(plain.get("Source").is_none());
        let rejected = &docs[1];
        assert_eq!(rejected["Reason"], "unknown_source");
        assert_eq!(rejected["rejected"], 1);
        assert_eq!(
            rejected["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Reason"], ["Function"]])
        );
        assert_eq!(m.total("rejected"), 1);
        assert_eq!(m.total("received"), 1);
    }

    #[test]
    fn latencies_are_value_arrays_split_at_the_emf_limit() {
        let mut m = Metrics::new("deliver");
        m.incr(Some("gh"), "delivered");
        for ms in 0..150 {
            m.latency_ms(Some("gh"), ms);
        }
        let docs = m.to_emf(5);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["delivery_latency"].as_array().unwrap().len(), 100);
        assert_eq!(docs[0]["delivered"], 1);
        let units: Vec<&str> = docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Unit"].as_str().unwrap())
            .collect();
        assert_eq!(units, ["Count", "Milliseconds"]);
        assert_eq!(docs[1]["delivery_latency"].as_array().unwrap().len(), 50);
        assert_eq!(docs[1]["Source"], "gh");
        assert!(docs[1].get("delivered").is_none(), "counted once");
        assert_eq!(m.latencies().len(), 150);
    }

    #[test]
    fn every_declared_metric_has_a_value_and_every_dimension_a_key() {
        let mut m = Metrics::new("enqueue");
        m.add(Some("a"), "enqueued", 3);
        m.incr(Some("b"), "unrouted");
        m.incr(Some("b"), "failed");
        for doc in m.to_emf(9) {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], NAMESPACE);
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(doc.get(name).is_some(), "{name} has no value in {doc}");
            }
            for set in directive["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    let dim = dim.as_str().unwrap();
                    assert!(doc[dim].is_string(), "{dim} missing in {doc}");
                }
            }
            // One line each: serialised without newlines.
            assert!(!doc.to_string().contains('\n'));
        }
        assert_eq!(m.total("enqueued"), 3);
        assert!(Metrics::new("x").to_emf(1).is_empty());
    }
}
