//! The embedded backend: SQLite store and queue (one file), and the tokio
//! workers that stand in for the enqueue and deliver functions.
