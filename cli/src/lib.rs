//! The `sluice` binary's library: the embedded gateway, so that tests can
//! start and stop it in-process exactly as `sluice serve` does.

pub mod serve;
