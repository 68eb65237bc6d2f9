//! The pipeline steps as plain async functions over the ports. AWS and the
//! embedded gateway run exactly this code.

pub mod challenge;
pub mod deliver;
pub mod enqueue;
pub mod receive;
pub mod secret_handshake;

#[cfg(test)]
mod chat_tests;
#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;
