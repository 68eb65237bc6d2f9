//! Every verifier: the first byte picks one (every preset, and the generic
//! scheme under each algorithm), then the time, the URL, the headers and
//! the body.

#![no_main]

mod common;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use sluice::secrets::Secret;
use sluice::verify::{
    Algorithm, Encoding, GenericParams, JwtParams, Provider, TokenParams, Verifier,
};

/// Valid base64 after `whsec_`: every symmetric preset keys with it.
const SECRET: &str = "whsec_c2VjcmV0LWZvci1ldmVyeS1wcmVzZXQ=";

/// The public keys of the asymmetric schemes, as configured: Ed25519 in
/// hex (Discord) and after `whpk_` (Standard Webhooks), P-256 as base64
/// SPKI DER (SendGrid).
fn public_keys() -> (String, String, String) {
    let ed = ed25519_dalek::SigningKey::from_bytes(&[9; 32])
        .verifying_key()
        .to_bytes();
    let p256 = p256::ecdsa::SigningKey::from_bytes(&[9; 32].into())
        .map(|k| {
            k.verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec()
        })
        .unwrap_or_default();
    let mut der =
        hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap_or_default();
    der.extend_from_slice(&p256);
    (
        hex::encode(ed),
        format!("whpk_{}", STANDARD.encode(ed)),
        STANDARD.encode(der),
    )
}

fn verifiers() -> &'static [Verifier] {
    static ALL: OnceLock<Vec<Verifier>> = OnceLock::new();
    ALL.get_or_init(|| {
        let (ed25519, whpk, p256) = public_keys();
        let mut out = Vec::new();
        for p in Provider::ALL {
            let secrets: Vec<Secret> = match p {
                Provider::Discord => vec![Secret::new(ed25519.clone())],
                Provider::Sendgrid => vec![Secret::new(p256.clone())],
                Provider::Basic => vec![Secret::new(format!("sluice:{SECRET}"))],
                Provider::Teams => vec![Secret::new(SECRET.trim_start_matches("whsec_"))],
                Provider::StandardWebhooks => vec![Secret::new(SECRET), Secret::new(whpk.clone())],
                _ => vec![Secret::new(SECRET)],
            };
            let params = common::hmac_params(Algorithm::Sha256, Encoding::Hex);
            let token = TokenParams {
                header: None,
                query: Some("key".into()),
            };
            let jwt = JwtParams {
                header: "x-jwt".into(),
                prefix: "Bearer ".into(),
                issuer: Some("sluice".into()),
                body_hash_claim: "sha256".into(),
            };
            let generic = GenericParams {
                hmac: Some(&params),
                token: Some(&token),
                jwt: Some(&jwt),
            };
            if let Ok(v) = Verifier::with_params(p, &secrets, generic, None) {
                out.push(v);
            }
        }
        for (a, e) in [
            (Algorithm::Sha1, Encoding::Base64),
            (Algorithm::Sha512, Encoding::Base64),
        ] {
            let params = common::hmac_params(a, e);
            if let Ok(v) =
                Verifier::new(Provider::Hmac, &[Secret::new(SECRET)], Some(&params), None)
            {
                out.push(v);
            }
        }
        // Every preset must key: a missing one would go unfuzzed.
        assert_eq!(out.len(), Provider::ALL.len() + 2);
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let all = verifiers();
    let mut input = common::Input::new(data);
    let v = &all[usize::from(input.byte()) % all.len()];
    // Around 2023-11-14, ± 68 years.
    let now = UNIX_EPOCH
        + Duration::from_secs(1_700_000_000)
        + Duration::from_secs(u64::from(input.u32()))
        - Duration::from_secs(1 << 31);
    let now: SystemTime = now;
    let url_len = input.byte();
    let url = (url_len != 0)
        .then(|| String::from_utf8_lossy(input.take(usize::from(url_len))).into_owned());
    let headers = input.headers();
    let body = input.rest();
    if let Err(e) = v.verify_at(&headers, body, url.as_deref(), now) {
        assert!(!e.code().is_empty());
    }
});
