//! Pollers: apps without webhooks. A poller reads an app's list endpoint
//! or feed on an interval and turns each new item into an event, committed
//! through the same conditional commit as a received webhook, so that
//! subscribers see it like any other source's event.
//!
//! `config` is the `[[pollers]]` entry and its rules, `state` what a poller
//! remembers and the port that keeps it (with the claim that stops two
//! runners polling at once), `fetch` the GET of one page through the SSRF
//! guard, `items` the reading of a page (JSON pointers, feeds, the next
//! link), and `engine` the poll itself.

pub mod config;
pub mod engine;
pub mod fetch;
pub mod items;
pub mod state;

pub use config::{PollFormat, Poller, PollerConfig, resolve_poller, validate_poller};
pub use engine::enabled_pollers;
pub use engine::{PollOutcome, PollPorts, PollReport, Trigger, poll, poll_due};
pub use fetch::{Fetch, FetchError, HttpFetch, Page, PageRequest};
pub use state::{LastResult, PollClaim, PollLease, PollerState, PollerStates, StoredPoller};

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;
