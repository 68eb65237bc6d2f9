//! Sluice: a webhook gateway.
//!
//! Everything that is not an entry point lives here: verification, the
//! pipeline steps (receive, enqueue, deliver) as plain async functions over
//! small ports, and the adapters that implement those ports.

pub mod admin;
pub mod config;
pub mod delivery;
pub mod error;
pub mod extract;
pub mod filter;
pub mod format;
pub mod gate;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod poll;
pub mod queue;
pub mod retry;
pub mod routing;
pub mod secrets;
pub mod sign;
pub mod store;
pub mod time;
pub mod verify;

#[cfg(feature = "local")]
pub mod local;

#[cfg(feature = "aws")]
pub mod aws;
