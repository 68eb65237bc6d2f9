//! One poll: claim it, fetch the pages, commit each new item as an event,
//! then store what was learnt (validators, seen ids, the next poll) and
//! end the claim. Runners (`sluice serve`'s task, the poll function, the
//! admin API's "poll now") call [`poll_due`] or [`poll`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use http::header::{ACCEPT, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION};
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use url::Url;

use super::config::{PollFormat, Poller, PollerConfig, resolve_poller};
use super::fetch::{Fetch, PageRequest};
use super::items::{Item, next_page, read_page};
use super::state::{
    LastResult, PollClaim, PollLease, PollerState, PollerStates, SEEN_CAP, StoredPoller,
};
use crate::admin::ports::{ConfigItem, ConfigStore};
use crate::config::Policy;
use crate::delivery::http::{redacted, retry_after};
use crate::error::Unavailable;
use crate::model::{Event, Headers};
use crate::pipeline::receive::body_fingerprint;
use crate::secrets::SecretResolver;
use crate::store::{Commit, EventStore};
use crate::time::to_ms;

/// Pollers polled at once by one runner.
const CONCURRENT_POLLS: usize = 8;
/// The longest wait after failures in a row.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest `Retry-After` or `X-Poll-Interval` honoured.
const MAX_ASKED_WAIT: Duration = Duration::from_secs(24 * 3600);
/// How much of an error response's body the error keeps.
const ERROR_SNIPPET_CHARS: usize = 200;

/// What a poll needs.
#[derive(Clone, Copy)]
pub struct PollPorts<'a> {
    pub states: &'a dyn PollerStates,
    pub store: &'a dyn EventStore,
    pub fetch: &'a dyn Fetch,
    pub secrets: &'a dyn SecretResolver,
    /// Whether some subscription takes sluice's own events
    /// ([`crate::notify::wanted`]): a poller's failing streak is then
    /// committed as a `poller.failing` event through `store`.
    pub notify: bool,
}

/// Why a poll runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule: only if it is due.
    Schedule,
    /// An operator's "poll now": due or not, but never beside another poll.
    Now,
    /// Fetch and report what would be emitted; nothing is committed or
    /// stored, and no claim is taken.
    DryRun,
}

/// An item emitted as an event (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EmittedItem {
    pub id: String,
    pub event_type: String,
}

/// What a poll did: `result`, and what goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PollOutcome {
    /// Not polled: the next poll is due later.
    NotDue {
        next_poll_at_ms: i64,
    },
    /// Not polled: another runner holds the poll.
    Busy {
        until_ms: i64,
    },
    /// 304: nothing changed.
    NotModified,
    /// The first poll: `recorded` items exist; none was emitted.
    Primed {
        recorded: usize,
    },
    /// Items were read; `emitted` were new, `duplicates` new to this
    /// poller's memory but already committed (within the dedup window).
    Polled {
        items: usize,
        emitted: usize,
        duplicates: usize,
    },
    /// 429 or 503: the app asked to wait.
    Throttled {
        error: String,
    },
    Failed {
        error: String,
    },
    /// The poller's state could not be read or written: not polled, or
    /// polled and not stored (the next poll commits the same items again,
    /// and the commit drops them).
    Unavailable {
        error: String,
    },
}

impl PollOutcome {
    fn last_result(&self) -> Option<LastResult> {
        Some(match self {
            Self::NotModified => LastResult::NotModified,
            Self::Primed { .. } => LastResult::Primed,
            Self::Polled { .. } => LastResult::Polled,
            Self::Throttled { .. } => LastResult::Throttled,
            Self::Failed { .. } => LastResult::Failed,
            Self::NotDue { .. } | Self::Busy { .. } | Self::Unavailable { .. } => return None,
        })
    }
}

/// The report of one poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PollReport {
    pub poller: String,
    #[serde(flatten)]
    pub outcome: PollOutcome,
    pub dry_run: bool,
    /// Pages fetched.
    pub pages: u32,
    /// Emitted (or, in a dry run, would be), oldest first.
    pub emitted: Vec<EmittedItem>,
    /// Items left out, and why (no id, too large).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// When the next scheduled poll is due, if this poll set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_poll_at_ms: Option<i64>,
}

impl PollReport {
    fn bare(poller: &str, outcome: PollOutcome, dry_run: bool) -> Self {
        Self {
            poller: poller.to_owned(),
            outcome,
            dry_run,
            pages: 0,
            emitted: Vec::new(),
            skipped: Vec::new(),
            next_poll_at_ms: None,
        }
    }
}

/// The enabled pollers of the config store: what runners poll.
pub async fn enabled_pollers(config: &dyn ConfigStore) -> Result<Vec<PollerConfig>, Unavailable> {
    Ok(config
        .list_config()
        .await?
        .into_iter()
        .filter(|e| e.enabled)
        .filter_map(|e| match e.item {
            ConfigItem::Poller(p) => Some(p),
            _ => None,
        })
        .collect())
}

/// Poll every poller of `configs` that is due (at most 8 at once). The
/// states are read once to skip those not due; each due one is then
/// claimed, so overlapping runners poll it once.
pub async fn poll_due(
    configs: &[PollerConfig],
    policy: &Policy,
    ports: &PollPorts<'_>,
    now: SystemTime,
) -> Vec<PollReport> {
    let now_ms = to_ms(now);
    let stored = match ports.states.list().await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "poller states unavailable; nothing polled");
            return configs
                .iter()
                .map(|c| {
                    PollReport::bare(
                        &c.id,
                        PollOutcome::Unavailable {
                            error: e.to_string(),
                        },
                        false,
                    )
                })
                .collect();
        }
    };
    let stored: HashMap<String, StoredPoller> = stored.into_iter().collect();
    let due = configs.iter().filter(|c| {
        stored
            .get(&c.id)
            .is_none_or(|s| s.refusal(now_ms, false).is_none())
    });
    // Made first, so the stream holds futures rather than a closure over
    // borrowed configs (which a spawned task could not prove general).
    let polls: Vec<_> = due
        .map(|c| poll(c, policy, ports, now, Trigger::Schedule))
        .collect();
    futures::stream::iter(polls)
        .buffer_unordered(CONCURRENT_POLLS)
        .collect()
        .await
}

/// Poll one poller.
pub async fn poll(
    config: &PollerConfig,
    policy: &Policy,
    ports: &PollPorts<'_>,
    now: SystemTime,
    trigger: Trigger,
) -> PollReport {
    let now_ms = to_ms(now);
    let dry_run = trigger == Trigger::DryRun;
    let unavailable = |e: Unavailable| {
        tracing::error!(poller = %config.id, error = %e, "poller state unavailable");
        PollReport::bare(
            &config.id,
            PollOutcome::Unavailable {
                error: e.to_string(),
            },
            dry_run,
        )
    };
    let (state, lease) = if dry_run {
        match ports.states.get(&config.id).await {
            Ok(stored) => (stored.unwrap_or_default().state, None),
            Err(e) => return unavailable(e),
        }
    } else {
        let lease = PollLease::new(now_ms);
        match ports
            .states
            .claim(&config.id, &lease, now_ms, trigger == Trigger::Now)
            .await
        {
            Ok(PollClaim::Held(state)) => (state, Some(lease)),
            Ok(PollClaim::Busy { until_ms }) => {
                return PollReport::bare(&config.id, PollOutcome::Busy { until_ms }, dry_run);
            }
            Ok(PollClaim::NotDue { at_ms }) => {
                return PollReport::bare(
                    &config.id,
                    PollOutcome::NotDue {
                        next_poll_at_ms: at_ms,
                    },
                    dry_run,
                );
            }
            Err(e) => return unavailable(e),
        }
    };
    let (report, next_state) = match resolve_poller(config, policy, ports.secrets).await {
        Ok(poller) => run(&poller, state, ports, now, dry_run).await,
        Err(e) => {
            let interval = config.interval.unwrap_or(super::config::DEFAULT_INTERVAL);
            let trouble = Trouble::failed(e.to_string(), 0);
            failed(&config.id, state, trouble, interval, now_ms, dry_run)
        }
    };
    log(&report);
    let Some(lease) = lease else {
        return report;
    };
    match ports.states.save(&config.id, &lease, &next_state).await {
        Ok(true) => {
            // Only a saved poll counts: its failure count is the streak's.
            if ports.notify
                && let Some(n) = failing(config, &report, &next_state, now)
            {
                crate::notify::commit(ports.store, &n).await;
            }
            report
        }
        Ok(false) => {
            tracing::warn!(poller = %config.id, "the poll's claim expired before it ended; its state was not stored");
            report
        }
        Err(e) => unavailable(e),
    }
}

/// A `poller.failing` notification, on the failure that makes the streak
/// [`POLLER_FAILING_AFTER`](crate::notify::POLLER_FAILING_AFTER) long:
/// once per streak (a success resets the count).
fn failing(
    config: &PollerConfig,
    report: &PollReport,
    state: &PollerState,
    now: SystemTime,
) -> Option<crate::notify::Notification> {
    let (PollOutcome::Failed { error } | PollOutcome::Throttled { error }) = &report.outcome else {
        return None;
    };
    (state.failures == crate::notify::POLLER_FAILING_AFTER)
        .then(|| crate::notify::Notification::poller(&config.id, error.clone(), now))
}

fn log(report: &PollReport) {
    let poller = report.poller.as_str();
    let emitted = report.emitted.len();
    match &report.outcome {
        PollOutcome::Failed { error } | PollOutcome::Throttled { error } => {
            tracing::warn!(poller, error = %error, pages = report.pages, "poll failed");
        }
        outcome => {
            tracing::info!(poller, result = ?outcome, emitted, pages = report.pages, dry_run = report.dry_run, "polled");
        }
    }
}

/// What the pages said.
enum Fetched {
    NotModified {
        asked_interval: Option<Duration>,
    },
    Items {
        items: Vec<Item>,
        skipped: Vec<String>,
        pages: u32,
        etag: Option<String>,
        last_modified: Option<String>,
        asked_interval: Option<Duration>,
    },
}

/// Why the pages could not be read.
struct Trouble {
    throttled: bool,
    /// `Retry-After`, if the app sent one.
    wait: Option<Duration>,
    error: String,
    pages: u32,
}

impl Trouble {
    fn failed(error: String, pages: u32) -> Self {
        Self {
            throttled: false,
            wait: None,
            error,
            pages,
        }
    }
}

/// The identity of what a poller polls: seen ids and validators belong to
/// it, and a poller whose URL or pointers change starts over.
fn target_of(poller: &Poller) -> String {
    format!(
        "{} {} {} {}",
        poller.url,
        poller.format.as_str(),
        poller.items.as_deref().unwrap_or(""),
        poller.item_id.as_deref().unwrap_or("")
    )
}

async fn run(
    poller: &Poller,
    mut state: PollerState,
    ports: &PollPorts<'_>,
    now: SystemTime,
    dry_run: bool,
) -> (PollReport, PollerState) {
    let now_ms = to_ms(now);
    let target = target_of(poller);
    if state.target.as_deref() != Some(target.as_str()) {
        // New, or its URL or pointers changed: what it remembers was of
        // another list.
        state = PollerState {
            target: Some(target),
            emitted_total: state.emitted_total,
            ..PollerState::default()
        };
    }
    let fetched = match fetch_pages(poller, &state, ports.fetch, now).await {
        Ok(f) => f,
        Err(t) => return failed(&poller.id, state, t, poller.interval, now_ms, dry_run),
    };
    let (items, skipped, pages, etag, last_modified, asked) = match fetched {
        Fetched::NotModified { asked_interval } => {
            let next_poll_at_ms = next_at(now_ms, poller.interval, asked_interval);
            let report = PollReport {
                pages: 1,
                next_poll_at_ms: Some(next_poll_at_ms),
                ..PollReport::bare(&poller.id, PollOutcome::NotModified, dry_run)
            };
            let next = succeeded(state, &report, now_ms, next_poll_at_ms);
            return (report, next);
        }
        Fetched::Items {
            items,
            skipped,
            pages,
            etag,
            last_modified,
            asked_interval,
        } => (items, skipped, pages, etag, last_modified, asked_interval),
    };
    let fresh = fresh_items(&items, &state.seen);
    let mut emitted = Vec::new();
    let mut duplicates = 0;
    let outcome = if !state.primed && !poller.emit_existing {
        PollOutcome::Primed {
            recorded: items.len(),
        }
    } else {
        for item in &fresh {
            let as_emitted = EmittedItem {
                id: item.id.clone(),
                event_type: item.event_type.clone(),
            };
            if dry_run {
                emitted.push(as_emitted);
                continue;
            }
            match ports.store.commit(&event_of(poller, item, now_ms)).await {
                Ok(Commit::Accepted) => emitted.push(as_emitted),
                Ok(Commit::Duplicate { .. }) => duplicates += 1,
                Err(e) => {
                    // Keep the old validators and seen ids: the next poll
                    // reads these items again and commits what is missing.
                    let trouble =
                        Trouble::failed(format!("committing item {:?}: {e}", item.id), pages);
                    let (mut report, mut next) =
                        failed(&poller.id, state, trouble, poller.interval, now_ms, dry_run);
                    next.emitted_total += emitted.len() as u64;
                    report.emitted = emitted;
                    return (report, next);
                }
            }
        }
        PollOutcome::Polled {
            items: items.len(),
            emitted: emitted.len(),
            duplicates,
        }
    };
    let next_poll_at_ms = next_at(now_ms, poller.interval, asked);
    let report = PollReport {
        poller: poller.id.clone(),
        outcome,
        dry_run,
        pages,
        emitted,
        skipped,
        next_poll_at_ms: Some(next_poll_at_ms),
    };
    state.etag = etag;
    state.last_modified = last_modified;
    if let Some((raw, _)) = items
        .iter()
        .filter_map(|i| i.timestamp.as_ref())
        .filter_map(|(raw, ms)| Some((raw, (*ms)?)))
        .max_by_key(|(_, ms)| *ms)
    {
        state.cursor = Some(raw.clone());
    }
    state.seen = remembered(&items, std::mem::take(&mut state.seen));
    state.primed = true;
    let next = succeeded(state, &report, now_ms, next_poll_at_ms);
    (report, next)
}

/// The state after a poll that read the app.
fn succeeded(
    mut state: PollerState,
    report: &PollReport,
    now_ms: i64,
    next_poll_at_ms: i64,
) -> PollerState {
    state.last_poll_at_ms = Some(now_ms);
    state.last_result = report.outcome.last_result();
    state.last_emitted = report.emitted.len() as u64;
    state.emitted_total += report.emitted.len() as u64;
    state.last_error = None;
    state.failures = 0;
    state.next_poll_at_ms = next_poll_at_ms;
    state
}

/// The report and state of a failed poll: the error is kept, and the next
/// poll waits for the app's `Retry-After` or a backoff that doubles with
/// each failure in a row.
fn failed(
    poller: &str,
    mut state: PollerState,
    trouble: Trouble,
    interval: Duration,
    now_ms: i64,
    dry_run: bool,
) -> (PollReport, PollerState) {
    state.failures = state.failures.saturating_add(1);
    let backoff = interval
        .saturating_mul(1 << state.failures.saturating_sub(1).min(6))
        .min(MAX_BACKOFF.max(interval));
    let wait = trouble
        .wait
        .map(|w| w.min(MAX_ASKED_WAIT).max(interval))
        .unwrap_or(backoff);
    let next_poll_at_ms = now_ms.saturating_add(duration_ms(wait));
    let (outcome, result) = if trouble.throttled {
        (
            PollOutcome::Throttled {
                error: trouble.error.clone(),
            },
            LastResult::Throttled,
        )
    } else {
        (
            PollOutcome::Failed {
                error: trouble.error.clone(),
            },
            LastResult::Failed,
        )
    };
    state.last_poll_at_ms = Some(now_ms);
    state.last_result = Some(result);
    state.last_emitted = 0;
    state.last_error = Some(trouble.error);
    state.last_error_at_ms = Some(now_ms);
    state.next_poll_at_ms = next_poll_at_ms;
    let report = PollReport {
        pages: trouble.pages,
        next_poll_at_ms: Some(next_poll_at_ms),
        ..PollReport::bare(poller, outcome, dry_run)
    };
    (report, state)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The next poll: the interval, or longer if the app asks (`X-Poll-Interval`).
fn next_at(now_ms: i64, interval: Duration, asked: Option<Duration>) -> i64 {
    let wait = asked
        .map(|a| a.min(MAX_ASKED_WAIT).max(interval))
        .unwrap_or(interval);
    now_ms.saturating_add(duration_ms(wait))
}

/// Items not remembered as seen, each once, oldest first: by their time
/// when every one has one, else the reverse of the app's order (lists
/// come newest first).
fn fresh_items<'a>(items: &'a [Item], seen: &[String]) -> Vec<&'a Item> {
    let seen: HashSet<&str> = seen.iter().map(String::as_str).collect();
    let mut once = HashSet::new();
    let mut fresh: Vec<&Item> = items
        .iter()
        .filter(|i| !seen.contains(i.id.as_str()) && once.insert(i.id.as_str()))
        .collect();
    let times: Option<Vec<i64>> = fresh
        .iter()
        .map(|i| i.timestamp.as_ref().and_then(|t| t.1))
        .collect();
    match times {
        Some(_) => fresh.sort_by_key(|i| i.timestamp.as_ref().and_then(|t| t.1)),
        None => fresh.reverse(),
    }
    fresh
}

/// This poll's ids first, then the older ones still remembered, at most
/// [`SEEN_CAP`].
fn remembered(items: &[Item], old: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(SEEN_CAP.min(items.len() + old.len()));
    let mut once = HashSet::new();
    for id in items.iter().map(|i| i.id.clone()).chain(old) {
        if out.len() == SEEN_CAP {
            break;
        }
        if once.insert(id.clone()) {
            out.push(id);
        }
    }
    out
}

fn event_of(poller: &Poller, item: &Item, now_ms: i64) -> Event {
    Event {
        source: poller.id.clone(),
        id: item.id.clone(),
        event_type: item.event_type.clone(),
        received_at_ms: now_ms,
        expires_at: now_ms / 1000 + poller.dedupe_window.as_secs() as i64,
        body_hash: body_fingerprint(&item.body),
        content_type: Some("application/json".to_owned()),
        headers: Headers::default(),
        body: item.body.clone(),
    }
}

/// The first page's URL: the poller's, with `since_param` when a cursor
/// is known.
fn first_url(poller: &Poller, state: &PollerState) -> Url {
    let mut url = poller.url.clone();
    if let (Some(param), Some(cursor)) = (&poller.since_param, &state.cursor) {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != param)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair(param, cursor);
    }
    url
}

fn text_header(headers: &HeaderMap, name: http::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `X-Poll-Interval` (seconds), as GitHub sends it.
fn asked_interval(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("x-poll-interval")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

async fn fetch_pages(
    poller: &Poller,
    state: &PollerState,
    fetch: &dyn Fetch,
    now: SystemTime,
) -> Result<Fetched, Trouble> {
    let seen: HashSet<&str> = state.seen.iter().map(String::as_str).collect();
    let mut url = first_url(poller, state);
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let mut first = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let mut headers = poller.headers.clone();
        if !headers.contains_key(ACCEPT) {
            headers.insert(
                ACCEPT,
                HeaderValue::from_static(match poller.format {
                    PollFormat::Json => "application/json",
                    PollFormat::Feed => {
                        "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"
                    }
                }),
            );
        }
        if pages == 1 {
            let conditional = [
                (IF_NONE_MATCH, &state.etag),
                (IF_MODIFIED_SINCE, &state.last_modified),
            ];
            for (name, value) in conditional {
                if let Some(v) = value.as_deref().and_then(|v| HeaderValue::try_from(v).ok()) {
                    headers.insert(name, v);
                }
            }
        }
        let page = fetch
            .get(&PageRequest {
                url: &url,
                headers,
                allow_local: poller.allow_local,
                max_bytes: poller.max_response_bytes,
            })
            .await
            .map_err(|e| Trouble::failed(format!("GET {}: {e}", redacted(&url)), pages))?;
        match page.status {
            200..=299 => {}
            304 if pages == 1 => {
                return Ok(Fetched::NotModified {
                    asked_interval: asked_interval(&page.headers),
                });
            }
            429 | 503 => {
                return Err(Trouble {
                    throttled: true,
                    wait: retry_after(&page.headers, now),
                    error: status_error(&url, &page),
                    pages,
                });
            }
            _ => return Err(Trouble::failed(status_error(&url, &page), pages)),
        }
        if first.is_none() {
            first = Some((
                text_header(&page.headers, ETAG),
                text_header(&page.headers, LAST_MODIFIED),
                asked_interval(&page.headers),
            ));
        }
        let read = read_page(poller, &page.body)
            .map_err(|e| Trouble::failed(format!("GET {}: {e}", redacted(&url)), pages))?;
        // Lists come newest first: past an item already seen, the older
        // pages hold nothing new.
        let reached_seen = read.items.iter().any(|i| seen.contains(i.id.as_str()));
        items.extend(read.items);
        skipped.extend(read.skipped);
        if reached_seen || pages >= poller.max_pages {
            break;
        }
        match next_page(&url, &page.headers) {
            Ok(Some(next)) => url = next,
            Ok(None) => break,
            Err(e) => return Err(Trouble::failed(e, pages)),
        }
    }
    let (etag, last_modified, asked_interval) = first.unwrap_or_default();
    Ok(Fetched::Items {
        items,
        skipped,
        pages,
        etag,
        last_modified,
        asked_interval,
    })
}

/// "GET url: HTTP 500: <the start of the body>", and where a redirect
/// pointed (redirects are not followed).
fn status_error(url: &Url, page: &super::fetch::Page) -> String {
    let mut error = format!("GET {}: HTTP {}", redacted(url), page.status);
    if (300..400).contains(&page.status) {
        if let Some(to) = page
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|to| url.join(to).ok())
        {
            error.push_str(&format!(
                " (redirects are not followed; it points to {}: set url to it)",
                redacted(&to)
            ));
        }
        return error;
    }
    let text = String::from_utf8_lossy(&page.body);
    let snippet: String = text.trim().chars().take(ERROR_SNIPPET_CHARS).collect();
    if !snippet.is_empty() {
        error.push_str(": ");
        error.push_str(&snippet);
    }
    error
}
