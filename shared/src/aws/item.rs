//! The one mapping between sluice's records and DynamoDB attribute values,
//! and a small builder for update expressions.
//!
//! Events table item (`pk` = `{source}#{id}`, no sort key):
//!
//! | attribute | type | |
//! |---|---|---|
//! | `pk` | S | `{source}#{id}` |
//! | `source`, `id`, `event_type` | S | `event_type` may be empty |
//! | `received_at_ms` | N | |
//! | `expires_at` | N | unix seconds; the table's TTL attribute |
//! | `body` | B | the raw body |
//! | `body_hash` | S | |
//! | `content_type` | S | absent when the request had none |
//! | `headers` | S | JSON array of `[name, value]` pairs |
//! | `routed` | L of S | set by enqueue: the subscriptions it routed to |
//! | `routed_at_ms` | N | |
//! | `replay_of` | S | a replay only: the id (same source) of the event it replays, never another replay |
//! | `replay_to` | L of S | a replay only: the subscriptions it goes to; enqueue routes it to these alone |
//!
//! Deliveries table item (`pk` = `{source}#{id}`, `sk` = subscription id):
//!
//! | attribute | type | |
//! |---|---|---|
//! | `source`, `event_id`, `subscription` | S | |
//! | `status` | S | `pending` \| `delivered` \| `failed` |
//! | `attempts` | L of M | `attempt`, `started_at_ms`, `latency_ms`, and when known `status_code`, `error`, `response_snippet`, `next_attempt_at_ms` |
//! | `attempt_count` | N | |
//! | `last_attempt`, `last_attempt_at_ms`, `last_latency_ms` | N | the latest attempt that moved the status |
//! | `last_status_code` (N), `last_error` (S) | | present when that attempt had one |
//! | `next_attempt_at_ms` | N | present while a retry is scheduled |
//! | `created_at_ms`, `updated_at_ms` | N | |
//! | `expires_at` | N | unix seconds; the table's TTL attribute |
//!
//! Config table item (`pk` = `source#{id}` or `subscription#{id}`):
//! `config` (S, the JSON of `SourceConfig`/`SubscriptionConfig`),
//! `enabled` (BOOL), `updated_at_ms` (N).
//!
//! Pollers table item (`pk` = poller id, no sort key):
//!
//! | attribute | type | |
//! |---|---|---|
//! | `state` | S | the JSON of `PollerState`; absent until the first save |
//! | `next_poll_at_ms` | N | a copy of the state's, for the claim's condition |
//! | `lease_owner` | S | the live claim (`PollLease`), removed by the save that ends it |
//! | `lease_until_ms` | N | |
//!
//! Gates table item (`pk` = subscription id, no sort key): the shared
//! state of its delivery controls (rate limit, in-flight sends, circuit).
//!
//! | attribute | type | |
//! |---|---|---|
//! | `state` | S | the JSON of `GateState` |
//! | `ver` | N | bumped by every write; each write is conditioned on the one it read |
//! | `updated_at_ms` | N | |

use std::collections::HashMap;
use std::fmt::Display;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

use crate::gate::GateState;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey, Headers};
use crate::poll::{PollerState, StoredPoller};
use crate::store::DeliveryState;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";

/// Events table attributes.
pub mod ev {
    pub const SOURCE: &str = "source";
    pub const ID: &str = "id";
    pub const EVENT_TYPE: &str = "event_type";
    pub const RECEIVED_AT_MS: &str = "received_at_ms";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const BODY: &str = "body";
    pub const BODY_HASH: &str = "body_hash";
    pub const CONTENT_TYPE: &str = "content_type";
    pub const HEADERS: &str = "headers";
    pub const ROUTED: &str = "routed";
    pub const ROUTED_AT_MS: &str = "routed_at_ms";
    pub const REPLAY_OF: &str = "replay_of";
    pub const REPLAY_TO: &str = "replay_to";
}

/// Deliveries table attributes.
pub mod dl {
    pub const SOURCE: &str = "source";
    pub const EVENT_ID: &str = "event_id";
    pub const SUBSCRIPTION: &str = "subscription";
    pub const STATUS: &str = "status";
    pub const ATTEMPTS: &str = "attempts";
    pub const ATTEMPT_COUNT: &str = "attempt_count";
    pub const LAST_ATTEMPT: &str = "last_attempt";
    pub const LAST_ATTEMPT_AT_MS: &str = "last_attempt_at_ms";
    pub const LAST_LATENCY_MS: &str = "last_latency_ms";
    pub const LAST_STATUS_CODE: &str = "last_status_code";
    pub const LAST_ERROR: &str = "last_error";
    pub const NEXT_ATTEMPT_AT_MS: &str = "next_attempt_at_ms";
    pub const CREATED_AT_MS: &str = "created_at_ms";
    pub const UPDATED_AT_MS: &str = "updated_at_ms";
    pub const EXPIRES_AT: &str = "expires_at";
    /// The live claim on the delivery (see `store::Lease`).
    pub const LEASE_OWNER: &str = "lease_owner";
    pub const LEASE_UNTIL_MS: &str = "lease_until_ms";
    /// The SQS message id that carries the scheduled retry.
    pub const SCHEDULED_BY: &str = "scheduled_by";
}

/// Fields of one entry of `attempts`.
pub mod at {
    pub const ATTEMPT: &str = "attempt";
    pub const STARTED_AT_MS: &str = "started_at_ms";
    pub const LATENCY_MS: &str = "latency_ms";
    pub const STATUS_CODE: &str = "status_code";
    pub const ERROR: &str = "error";
    pub const RESPONSE_SNIPPET: &str = "response_snippet";
    pub const NEXT_ATTEMPT_AT_MS: &str = "next_attempt_at_ms";
}

/// Config table attributes.
pub mod cf {
    pub const CONFIG: &str = "config";
    pub const ENABLED: &str = "enabled";
    pub const UPDATED_AT_MS: &str = "updated_at_ms";
    pub const SOURCE_PREFIX: &str = "source#";
    pub const POLLER_PREFIX: &str = "poller#";
    pub const SUBSCRIPTION_PREFIX: &str = "subscription#";
}

/// Pollers table attributes.
pub mod pl {
    pub const STATE: &str = "state";
    pub const NEXT_POLL_AT_MS: &str = "next_poll_at_ms";
    pub const LEASE_OWNER: &str = "lease_owner";
    pub const LEASE_UNTIL_MS: &str = "lease_until_ms";
}

/// Gates table attributes.
pub mod gt {
    pub const STATE: &str = "state";
    pub const VER: &str = "ver";
    pub const UPDATED_AT_MS: &str = "updated_at_ms";
}

/// An item that does not have the shape this module writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed item: {0}")]
pub struct ItemError(pub String);

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: impl Into<Vec<u8>>) -> AttributeValue {
    AttributeValue::B(Blob::new(v))
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, ItemError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(ItemError(format!("{name} is not a string"))),
        None => Err(ItemError(format!("{name} is missing"))),
    }
}

pub fn opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, ItemError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => get_s(item, name).map(Some),
    }
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, ItemError> {
    opt_n(item, name)?.ok_or_else(|| ItemError(format!("{name} is missing")))
}

pub fn opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>, ItemError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| ItemError(format!("{name} = {v} is out of range"))),
        Some(_) => Err(ItemError(format!("{name} is not a number"))),
    }
}

pub fn opt_bool(item: &Item, name: &str) -> Result<Option<bool>, ItemError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::Bool(v)) => Ok(Some(*v)),
        Some(_) => Err(ItemError(format!("{name} is not a boolean"))),
    }
}

/// The events table key of an event.
pub fn event_key(key: &EventKey) -> Item {
    HashMap::from([(PK.to_owned(), s(key.to_string()))])
}

/// The deliveries table key of a (event, subscription) pair.
pub fn delivery_key(task: &DeliveryTask) -> Item {
    HashMap::from([
        (PK.to_owned(), s(task.event_key().to_string())),
        (SK.to_owned(), s(task.subscription.clone())),
    ])
}

pub fn event_to_item(e: &Event) -> Item {
    let headers = serde_json::to_string(&e.headers).unwrap_or_else(|_| "[]".to_owned());
    let mut item = HashMap::with_capacity(10);
    item.insert(PK.to_owned(), s(e.key().to_string()));
    item.insert(ev::SOURCE.to_owned(), s(e.source.clone()));
    item.insert(ev::ID.to_owned(), s(e.id.clone()));
    item.insert(ev::EVENT_TYPE.to_owned(), s(e.event_type.clone()));
    item.insert(ev::RECEIVED_AT_MS.to_owned(), n(e.received_at_ms));
    item.insert(ev::EXPIRES_AT.to_owned(), n(e.expires_at));
    item.insert(ev::BODY.to_owned(), b(e.body.to_vec()));
    item.insert(ev::BODY_HASH.to_owned(), s(e.body_hash.clone()));
    if let Some(ct) = &e.content_type {
        item.insert(ev::CONTENT_TYPE.to_owned(), s(ct.clone()));
    }
    item.insert(ev::HEADERS.to_owned(), s(headers));
    item
}

pub fn item_to_event(item: &Item) -> Result<Event, ItemError> {
    let body = match item.get(ev::BODY) {
        Some(AttributeValue::B(blob)) => Bytes::copy_from_slice(blob.as_ref()),
        // Tolerated: an item written by hand without a body.
        None => Bytes::new(),
        Some(_) => return Err(ItemError(format!("{} is not binary", ev::BODY))),
    };
    let headers = match opt_s(item, ev::HEADERS)? {
        None => Headers::default(),
        Some(json) => serde_json::from_str(json)
            .map_err(|e| ItemError(format!("{} is not a JSON list of pairs: {e}", ev::HEADERS)))?,
    };
    Ok(Event {
        source: get_s(item, ev::SOURCE)?.to_owned(),
        id: get_s(item, ev::ID)?.to_owned(),
        event_type: opt_s(item, ev::EVENT_TYPE)?.unwrap_or_default().to_owned(),
        received_at_ms: get_n(item, ev::RECEIVED_AT_MS)?,
        expires_at: get_n(item, ev::EXPIRES_AT)?,
        body,
        body_hash: opt_s(item, ev::BODY_HASH)?.unwrap_or_default().to_owned(),
        content_type: opt_s(item, ev::CONTENT_TYPE)?.map(str::to_owned),
        headers,
    })
}

/// The `routed` list of an events item, if routing has finished.
pub fn item_routed(item: &Item) -> Result<Option<Vec<String>>, ItemError> {
    opt_string_list(item, ev::ROUTED)
}

/// A list of strings, if the attribute is there.
pub fn opt_string_list(item: &Item, name: &str) -> Result<Option<Vec<String>>, ItemError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(s) => Ok(s.clone()),
                _ => Err(ItemError(format!("{name} holds a non-string"))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(ItemError(format!("{name} is not a list"))),
    }
}

/// A list of strings as an attribute value.
pub fn string_list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.clone())).collect())
}

/// One entry of a delivery's `attempts` list.
pub fn attempt_to_value(a: &Attempt) -> AttributeValue {
    let mut m = HashMap::with_capacity(7);
    m.insert(at::ATTEMPT.to_owned(), n(a.attempt));
    m.insert(at::STARTED_AT_MS.to_owned(), n(a.started_at_ms));
    m.insert(at::LATENCY_MS.to_owned(), n(a.latency_ms));
    if let Some(code) = a.status_code {
        m.insert(at::STATUS_CODE.to_owned(), n(code));
    }
    if let Some(e) = &a.error {
        m.insert(at::ERROR.to_owned(), s(e.clone()));
    }
    if let Some(snippet) = &a.response_snippet {
        m.insert(at::RESPONSE_SNIPPET.to_owned(), s(snippet.clone()));
    }
    if let Some(next) = a.next_attempt_at_ms {
        m.insert(at::NEXT_ATTEMPT_AT_MS.to_owned(), n(next));
    }
    AttributeValue::M(m)
}

/// The attempt log of a deliveries item, oldest first.
pub fn item_attempts(item: &Item) -> Result<Vec<Attempt>, ItemError> {
    let list = match item.get(dl::ATTEMPTS) {
        None | Some(AttributeValue::Null(_)) => return Ok(Vec::new()),
        Some(AttributeValue::L(list)) => list,
        Some(_) => return Err(ItemError(format!("{} is not a list", dl::ATTEMPTS))),
    };
    let source = get_s(item, dl::SOURCE)?;
    let event_id = get_s(item, dl::EVENT_ID)?;
    let subscription = get_s(item, dl::SUBSCRIPTION)?;
    list.iter()
        .map(|v| {
            let AttributeValue::M(m) = v else {
                return Err(ItemError(format!("{} holds a non-map", dl::ATTEMPTS)));
            };
            Ok(Attempt {
                source: source.to_owned(),
                event_id: event_id.to_owned(),
                subscription: subscription.to_owned(),
                attempt: get_n(m, at::ATTEMPT)?,
                started_at_ms: get_n(m, at::STARTED_AT_MS)?,
                latency_ms: get_n(m, at::LATENCY_MS)?,
                status_code: opt_n(m, at::STATUS_CODE)?,
                error: opt_s(m, at::ERROR)?.map(str::to_owned),
                response_snippet: opt_s(m, at::RESPONSE_SNIPPET)?.map(str::to_owned),
                next_attempt_at_ms: opt_n(m, at::NEXT_ATTEMPT_AT_MS)?,
            })
        })
        .collect()
}

pub fn item_status(item: &Item) -> Result<Option<DeliveryStatus>, ItemError> {
    match opt_s(item, dl::STATUS)? {
        None => Ok(None),
        Some(v) => DeliveryStatus::parse(v)
            .map(Some)
            .ok_or_else(|| ItemError(format!("{} = {v:?} is not a delivery status", dl::STATUS))),
    }
}

/// What a deliveries item says, as far as a claim cares.
pub fn item_delivery_state(item: &Item) -> Result<DeliveryState, ItemError> {
    Ok(DeliveryState {
        status: item_status(item)?,
        attempts: opt_n(item, dl::ATTEMPT_COUNT)?.unwrap_or(0),
        lease_until_ms: opt_n(item, dl::LEASE_UNTIL_MS)?,
        next_attempt_at_ms: opt_n(item, dl::NEXT_ATTEMPT_AT_MS)?,
        scheduled_by: opt_s(item, dl::SCHEDULED_BY)?.map(str::to_owned),
    })
}

/// The pollers table key of a poller.
pub fn poller_key(id: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(id))])
}

/// A poller's state as its `state` attribute.
pub fn poller_state_value(state: &PollerState) -> Result<AttributeValue, ItemError> {
    serde_json::to_string(state)
        .map(s)
        .map_err(|e| ItemError(format!("{}: {e}", pl::STATE)))
}

/// What a pollers item says: its state (the default before the first
/// save) and its claim. The claim's condition reads `next_poll_at_ms`, so
/// that column is what the state says too.
pub fn item_stored_poller(item: &Item) -> Result<StoredPoller, ItemError> {
    let mut state: PollerState = match opt_s(item, pl::STATE)? {
        None => PollerState::default(),
        Some(json) => serde_json::from_str(json)
            .map_err(|e| ItemError(format!("{} is not a poller state: {e}", pl::STATE)))?,
    };
    if let Some(next) = opt_n(item, pl::NEXT_POLL_AT_MS)? {
        state.next_poll_at_ms = next;
    }
    Ok(StoredPoller {
        state,
        lease_until_ms: opt_n(item, pl::LEASE_UNTIL_MS)?,
    })
}

/// The gates table key of a subscription.
pub fn gate_key(subscription: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(subscription))])
}

/// A gate's state as its `state` attribute.
pub fn gate_state_value(state: &GateState) -> Result<AttributeValue, ItemError> {
    serde_json::to_string(state)
        .map(s)
        .map_err(|e| ItemError(format!("{}: {e}", gt::STATE)))
}

/// What a gates item says: the state and its version.
pub fn item_gate(item: &Item) -> Result<(GateState, u64), ItemError> {
    let state = serde_json::from_str(get_s(item, gt::STATE)?)
        .map_err(|e| ItemError(format!("{} is not a gate state: {e}", gt::STATE)))?;
    Ok((state, get_n(item, gt::VER)?))
}

/// Builds an update expression with a placeholder for every attribute name
/// and value, so reserved words (`status`, `source`, …) need no thought.
#[derive(Debug, Default, Clone)]
pub struct Update {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    condition: Option<String>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }

    /// The placeholder of an attribute name (`#name`).
    pub fn name(&mut self, attr: &str) -> String {
        let key = format!("#{attr}");
        self.names.insert(key.clone(), attr.to_owned());
        key
    }

    /// A fresh placeholder for a value (`:v0`, `:v1`, …).
    pub fn value(&mut self, v: AttributeValue) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), v);
        key
    }

    /// `SET attr = v`
    pub fn set(mut self, attr: &str, v: AttributeValue) -> Self {
        let (a, v) = (self.name(attr), self.value(v));
        self.set.push(format!("{a} = {v}"));
        self
    }

    /// `SET attr = v`, or `REMOVE attr` when `v` is `None`.
    pub fn set_or_remove(self, attr: &str, v: Option<AttributeValue>) -> Self {
        match v {
            Some(v) => self.set(attr, v),
            None => self.remove(attr),
        }
    }

    /// `SET attr = if_not_exists(attr, v)`: written once, never reset.
    pub fn set_once(mut self, attr: &str, v: AttributeValue) -> Self {
        let (a, v) = (self.name(attr), self.value(v));
        self.set.push(format!("{a} = if_not_exists({a}, {v})"));
        self
    }

    /// `SET attr = list_append(if_not_exists(attr, []), [v])`
    pub fn append(mut self, attr: &str, v: AttributeValue) -> Self {
        let a = self.name(attr);
        let empty = self.value(AttributeValue::L(Vec::new()));
        let v = self.value(AttributeValue::L(vec![v]));
        self.set.push(format!(
            "{a} = list_append(if_not_exists({a}, {empty}), {v})"
        ));
        self
    }

    /// `ADD attr n`
    pub fn add(mut self, attr: &str, by: i64) -> Self {
        let (a, v) = (self.name(attr), self.value(n(by)));
        self.add.push(format!("{a} {v}"));
        self
    }

    /// `REMOVE attr`
    pub fn remove(mut self, attr: &str) -> Self {
        let a = self.name(attr);
        self.remove.push(a);
        self
    }

    /// A condition expression; build it with [`name`](Self::name) and
    /// [`value`](Self::value) placeholders.
    pub fn condition(mut self, f: impl FnOnce(&mut Self) -> String) -> Self {
        let c = f(&mut self);
        self.condition = Some(c);
        self
    }

    pub fn expression(&self) -> String {
        let mut parts = Vec::with_capacity(3);
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        parts.join(" ")
    }

    /// Fill an UpdateItem request with the expression, names, values and
    /// condition.
    pub fn apply(
        self,
        req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let expr = self.expression();
        let req = req
            .update_expression(expr)
            .set_expression_attribute_names(Some(self.names))
            .set_condition_expression(self.condition);
        if self.values.is_empty() {
            req
        } else {
            req.set_expression_attribute_values(Some(self.values))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            source: "gh".into(),
            id: "d-1".into(),
            event_type: String::new(),
            received_at_ms: 1_700_000_000_123,
            expires_at: 1_700_604_800,
            body: Bytes::from_static(&[0, 159, 146, 150, 255, b'{']),
            body_hash: "abc".into(),
            content_type: None,
            headers: crate::model::Headers::from_pairs(&[("x-a", "1"), ("x-b", "two")]),
        }
    }

    #[test]
    fn event_round_trips() {
        let e = event();
        let item = event_to_item(&e);
        assert_eq!(item[PK], s("gh#d-1"));
        assert_eq!(item[ev::HEADERS], s(r#"[["x-a","1"],["x-b","two"]]"#));
        assert!(!item.contains_key(ev::CONTENT_TYPE));
        assert_eq!(item_to_event(&item).unwrap(), e);
        let with_ct = Event {
            content_type: Some("application/json".into()),
            ..e
        };
        assert_eq!(item_to_event(&event_to_item(&with_ct)).unwrap(), with_ct);
    }

    #[test]
    fn malformed_items_say_what_is_wrong() {
        let mut item = event_to_item(&event());
        item.insert(ev::RECEIVED_AT_MS.into(), s("x"));
        assert_eq!(
            item_to_event(&item).unwrap_err().to_string(),
            "malformed item: received_at_ms is not a number"
        );
        item.remove(ev::SOURCE);
        assert_eq!(
            item_to_event(&item).unwrap_err().to_string(),
            "malformed item: source is missing"
        );
    }

    #[test]
    fn attempts_round_trip() {
        let a = Attempt {
            source: "gh".into(),
            event_id: "d-1".into(),
            subscription: "s".into(),
            attempt: 2,
            started_at_ms: 5,
            latency_ms: 7,
            status_code: Some(503),
            error: None,
            response_snippet: Some("busy".into()),
            next_attempt_at_ms: Some(99),
        };
        let item = HashMap::from([
            (dl::SOURCE.to_owned(), s("gh")),
            (dl::EVENT_ID.to_owned(), s("d-1")),
            (dl::SUBSCRIPTION.to_owned(), s("s")),
            (dl::STATUS.to_owned(), s("pending")),
            (
                dl::ATTEMPTS.to_owned(),
                AttributeValue::L(vec![attempt_to_value(&a)]),
            ),
        ]);
        assert_eq!(item_attempts(&item).unwrap(), vec![a]);
        assert_eq!(item_status(&item).unwrap(), Some(DeliveryStatus::Pending));
    }

    #[test]
    fn poller_items_round_trip_and_a_new_one_is_due() {
        assert_eq!(
            item_stored_poller(&Item::new()).unwrap(),
            StoredPoller::default()
        );
        let state = PollerState {
            seen: vec!["a".into()],
            primed: true,
            next_poll_at_ms: 9,
            ..PollerState::default()
        };
        let item = HashMap::from([
            (PK.to_owned(), s("p")),
            (pl::STATE.to_owned(), poller_state_value(&state).unwrap()),
            (pl::NEXT_POLL_AT_MS.to_owned(), n(9)),
            (pl::LEASE_OWNER.to_owned(), s("me")),
            (pl::LEASE_UNTIL_MS.to_owned(), n(20)),
        ]);
        assert_eq!(
            item_stored_poller(&item).unwrap(),
            StoredPoller {
                state,
                lease_until_ms: Some(20)
            }
        );
        let broken = HashMap::from([(pl::STATE.to_owned(), s("{"))]);
        assert!(
            item_stored_poller(&broken)
                .unwrap_err()
                .to_string()
                .contains("state is not a poller state")
        );
    }

    #[test]
    fn update_builder_uses_placeholders() {
        let u = Update::new()
            .set("status", s("pending"))
            .set_once("expires_at", n(5))
            .append("attempts", n(1))
            .remove("last_error")
            .add("attempt_count", 1)
            .condition(|u| {
                let st = u.name("status");
                let p = u.value(s("pending"));
                format!("attribute_not_exists({st}) OR {st} = {p}")
            });
        assert_eq!(
            u.expression(),
            "SET #status = :v0, #expires_at = if_not_exists(#expires_at, :v1), \
             #attempts = list_append(if_not_exists(#attempts, :v2), :v3) \
             REMOVE #last_error ADD #attempt_count :v4"
        );
        assert_eq!(
            u.condition.as_deref(),
            Some("attribute_not_exists(#status) OR #status = :v5")
        );
        assert_eq!(u.names.len(), 5);
        assert_eq!(u.values.len(), 6);
    }
}
