//! The signature-header and URL parsers (`sluice::verify::parse`): the
//! first byte picks the parser and its settings, the rest is the header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::verify::parse;

const SEPS: [char; 4] = [',', ';', ' ', '='];
const KEYS: [&str; 5] = ["t", "ts", "v1", "h1", ""];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let s = text.as_ref();
    match pick % 6 {
        0 => {
            let sep = SEPS[usize::from(pick >> 3) % SEPS.len()];
            let ts = (pick & 0x80 == 0).then_some(KEYS[usize::from(pick >> 4) % 2]);
            let sig = KEYS[2 + usize::from(pick >> 5) % 3];
            if let Ok((_, sigs)) = parse::tagged(s, sep, ts, sig) {
                assert!((1..=8).contains(&sigs.len()));
            }
        }
        1 => {
            if let Ok((v1, v1a)) = parse::standard_webhooks(s) {
                assert!(!(v1.is_empty() && v1a.is_empty()));
                assert!(v1.len() <= 8 && v1a.len() <= 4);
            }
        }
        2 => {
            let max = usize::from(pick >> 3);
            if let Some(n) = parse::unix_digits(s, max) {
                assert_eq!(n.to_string().len(), s.trim_start_matches('0').len().max(1));
            }
        }
        3 => {
            let (with, without) = parse::twilio_port_variants(s);
            assert!(without.len() <= with.len());
        }
        _ => {
            let got = parse::hubspot_signed_uri(s);
            assert!(got.len() <= s.len());
        }
    }
});
