//! Event id and type extraction: the first byte picks the preset (over
//! `Provider::ALL`), then headers, then the body.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sluice::extract::extract;
use sluice::verify::{Algorithm, Encoding, Provider};

fuzz_target!(|data: &[u8]| {
    let mut input = common::Input::new(data);
    let provider = Provider::ALL[usize::from(input.byte()) % Provider::ALL.len()];
    let params = common::hmac_params(Algorithm::Sha256, Encoding::Hex);
    let headers = input.headers();
    let body = input.rest();
    if let Ok(e) = extract(provider, Some(&params), &headers, body) {
        assert!(!e.id.is_empty(), "{provider}: empty id");
    }
});
