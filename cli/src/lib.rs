//! The `sluice` binary's library: the embedded gateway (so that tests can
//! start and stop it in-process exactly as `sluice serve` does) and the
//! operator commands, which call the admin API in-process over the
//! backend's ports.

pub mod args;
pub mod backend;
pub mod console;
pub mod console_proxy;
pub mod error;
mod http_server;
pub mod ops;
pub mod render;
pub mod serve;
pub mod table;
