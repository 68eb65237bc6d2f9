//! The records that flow through the pipeline.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A committed webhook. Its identity is `{source}#{id}`: the dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub source: String,
    /// The provider's own event id, or the hex SHA-256 of the body.
    pub id: String,
    /// Event type used for routing, e.g. `push` or `pull_request.opened`.
    /// Empty when the provider does not say.
    pub event_type: String,
    pub received_at_ms: i64,
    /// Unix seconds after which the dedup record may be dropped (TTL).
    pub expires_at: i64,
    /// The raw request body, exactly as received.
    pub body: Bytes,
    /// Fingerprint of the body (xxh3-128, hex), used only to notice a
    /// duplicate whose body differs from the committed one.
    pub body_hash: String,
    pub content_type: Option<String>,
    /// The request headers, credentials removed, for the log.
    pub headers: Headers,
}

impl Event {
    pub fn key(&self) -> EventKey {
        EventKey::new(&self.source, &self.id)
    }
}

/// Request headers kept with an event. Cloning shares the values' bytes,
/// so the receive path copies nothing; the JSON form (an array of
/// `[name, value]` pairs, non-text values left out) is made only when stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub HeaderMap);

impl Headers {
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Self {
        let mut map = HeaderMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                HeaderName::try_from(k.as_ref()),
                HeaderValue::try_from(v.as_ref()),
            ) {
                map.append(k, v);
            }
        }
        Self(map)
    }

    /// Text headers as `(name, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
    }
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for pair in self.iter() {
            seq.serialize_element(&pair)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(String, String)>::deserialize(d)?;
        Ok(Self::from_pairs(&pairs))
    }
}

/// `{source}#{event id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventKey {
    pub source: String,
    pub id: String,
}

impl EventKey {
    pub fn new(source: &str, id: &str) -> Self {
        Self {
            source: source.to_owned(),
            id: id.to_owned(),
        }
    }
}

impl std::fmt::Display for EventKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.source, self.id)
    }
}

/// One unit of work on the delivery queue: deliver this event to this
/// subscription. It is small on purpose; the body stays in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeliveryTask {
    pub source: String,
    pub event_id: String,
    pub subscription: String,
}

impl DeliveryTask {
    pub fn event_key(&self) -> EventKey {
        EventKey::new(&self.source, &self.event_id)
    }

    /// A stable id for this (event, subscription) pair.
    pub fn dedup_id(&self) -> String {
        format!("{}#{}#{}", self.source, self.event_id, self.subscription)
    }
}

/// A task as handed out by the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedTask {
    pub task: DeliveryTask,
    /// Opaque handle for visibility changes (SQS receipt handle, or the
    /// local queue's row id and receive count).
    pub handle: String,
    /// The message's identity across receives (SQS MessageId, or the
    /// local queue's row id): tells this message from another copy of the
    /// same task.
    pub message_id: String,
    /// How many times this message has been received, starting at 1. Not
    /// the attempt number: a message that waited for a lease or a paused
    /// subscription is received again without an attempt.
    pub receive_count: u32,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet delivered; another attempt is scheduled.
    Pending,
    Delivered,
    /// Retries exhausted, or the destination answered 410.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// The log line of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub source: String,
    pub event_id: String,
    pub subscription: String,
    /// 1-based.
    pub attempt: u32,
    pub started_at_ms: i64,
    pub latency_ms: u32,
    /// HTTP status, if a response arrived.
    pub status_code: Option<u16>,
    /// Transport error or refusal, if no response arrived.
    pub error: Option<String>,
    /// The first bytes of the response body, for the log.
    pub response_snippet: Option<String>,
    /// When the next attempt is due, if one is scheduled.
    pub next_attempt_at_ms: Option<i64>,
}

impl Attempt {
    /// The delivery this is an attempt of.
    pub fn task(&self) -> DeliveryTask {
        DeliveryTask {
            source: self.source.clone(),
            event_id: self.event_id.clone(),
            subscription: self.subscription.clone(),
        }
    }
}
