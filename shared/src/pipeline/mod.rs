//! The pipeline steps as plain async functions over the ports.
