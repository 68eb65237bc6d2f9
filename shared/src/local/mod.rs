//! The embedded backend: SQLite store and queue (one file), and the tokio
//! workers that stand in for the enqueue and deliver functions.
//!
//! [`SqliteStore`] implements both [`EventStore`](crate::store::EventStore)
//! and [`DeliveryQueue`](crate::queue::DeliveryQueue). The DynamoDB stream
//! becomes an outbox flag set in the commit's own transaction; the SQS queue
//! becomes a table with visibility timeouts, receive counts and dead letters.

pub mod admin;
pub mod gate;
pub mod metrics;
pub mod poller_state;
mod readers;
pub mod registry;
pub mod runtime;
mod store;
mod writer;

#[cfg(test)]
mod tests;

pub use admin::LocalSecrets;
pub use gate::LocalGate;
pub use registry::LocalRegistry;
pub use store::{DeadLetter, DeliveryRow, Dispatched, OutboxEntry, RoutedCommit, SqliteStore};
