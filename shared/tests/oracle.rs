//! sluice's signature verification against the providers' own libraries.
//!
//! `tests/oracle/oracle.py`, run with `.venv-oracle/bin/python` (`make
//! oracle` installs the libraries pinned in `tests/requirements-oracle.txt`),
//! signs requests the way each provider's library does, mutates them, and
//! records the LIBRARY's verdict on every one. This test builds sluice's
//! `Verifier` for each case (the preset's defaults, the case's `now`) and
//! requires the same verdict, except for the differences listed in
//! [`DIFFERENCES`], where sluice's documented behaviour is the opposite one
//! and the test requires exactly that. Every disagreement is printed.
//!
//! No network: the script only imports the installed libraries; keys,
//! secrets and clocks are fixed, so the run is deterministic and takes
//! about a second.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sluice::secrets::Secret;
use sluice::verify::{Provider, Verifier};

/// Cases where sluice, as documented, answers the opposite of the library.
/// Each entry is checked both ways: sluice must differ on it, and the case
/// must still exist in the oracle's output.
const DIFFERENCES: &[(&str, &str)] = &[
    // common.rs: base64 signatures are decoded with padding optional
    // ("because senders differ"); the library compares the header text, so
    // the same signature without its `=` fails there.
    (
        "standard-webhooks/unpadded-signature",
        "sluice decodes base64 with optional padding; the library compares text",
    ),
    // standard_webhooks.rs: "The `svix-*` names are read when the
    // `webhook-*` one is absent". The standardwebhooks library reads only
    // `webhook-*`; Svix's reads both (the `svix/*` cases agree), but the
    // `svix-*` one first, so with both present and different, Svix's
    // library judges `svix-signature` and sluice `webhook-signature`.
    (
        "standard-webhooks/svix-header-names",
        "sluice reads the svix-* header names too",
    ),
    (
        "svix/both-names-svix-wrong",
        "sluice prefers webhook-* when both are sent; Svix's library prefers svix-*",
    ),
    // common.rs `tagged_hex`: keys and values are trimmed, so Stripe's
    // header with a space after a comma is read; the library splits on
    // ',' and '=' without trimming and finds no `v1`.
    (
        "stripe/spaces-after-commas",
        "sluice trims the items of Stripe-Signature",
    ),
    // common.rs `decode_hex`: "Decode hex (either case)"; the signature is
    // compared as bytes. The libraries compare the lower-case hex text.
    (
        "stripe/uppercase-hex",
        "sluice decodes hex in either case; the library compares text",
    ),
    (
        "slack/uppercase-hex",
        "sluice decodes hex in either case; the library compares text",
    ),
    (
        "github/uppercase-hex",
        "sluice decodes hex in either case (github.rs tests it); githubkit compares text",
    ),
    // common.rs `tagged_hex`: "other keys are ignored" in Paddle-Signature;
    // the SDK raises on any key but `ts` and `h1`.
    (
        "paddle/unknown-key",
        "sluice ignores unknown keys in Paddle-Signature; the SDK refuses them",
    ),
    // mod.rs `preset`: Paddle's window is OldOnly ("Paddle's SDKs: older
    // than 5 s"), which is what paddle-node-sdk's WebhooksValidator does
    // (`now > ts + 5` fails, nothing else), but paddle-python-sdk 1.16.1's
    // Verifier also refuses a timestamp more than 5 s AHEAD of its clock.
    // sluice accepts those, as it does Stripe's: a clock ahead is no
    // replay. The two SDKs disagree; sluice follows the Node one.
    (
        "paddle/timestamp-6s-ahead",
        "sluice's Paddle preset refuses only old timestamps; the SDK refuses future ones too",
    ),
    (
        "paddle/timestamp-300s-ahead",
        "sluice's Paddle preset refuses only old timestamps; the SDK refuses future ones too",
    ),
    (
        "paddle/timestamp-301s-ahead",
        "sluice's Paddle preset refuses only old timestamps; the SDK refuses future ones too",
    ),
    (
        "paddle/timestamp-3600s-ahead",
        "sluice's Paddle preset refuses only old timestamps; the SDK refuses future ones too",
    ),
];

/// Providers the oracle signs for that sluice has no preset for yet. Their
/// cases are not verified, but the test checks that the name is indeed no
/// preset: once one is added, this entry must go and the cases count.
const NOT_PRESETS: &[(&str, &str)] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The oracle's python: `SLUICE_ORACLE_PYTHON`, else `.venv-oracle`, which
/// must exist and match the pinned requirements.
fn python(root: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_ORACLE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root.join(".venv-oracle");
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make oracle` (scripts/oracle-venv.sh installs the providers' \
         libraries pinned in tests/requirements-oracle.txt), then this test again",
        python.display()
    );
    let requirements = std::fs::read(root.join("tests/requirements-oracle.txt"))
        .expect("tests/requirements-oracle.txt");
    let want = hex::encode(Sha256::digest(&requirements));
    let stamp = std::fs::read_to_string(venv.join(".requirements.sha256")).unwrap_or_default();
    assert_eq!(
        stamp.trim(),
        want,
        "{} is not the install of the current tests/requirements-oracle.txt: run `make oracle`",
        venv.display()
    );
    python
}

fn oracle() -> Value {
    let root = root();
    let python = python(&root);
    let out = Command::new(&python)
        .arg(root.join("tests/oracle/oracle.py"))
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; run `make oracle`", python.display()));
    assert!(
        out.status.success(),
        "tests/oracle/oracle.py failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the oracle prints one JSON document")
}

fn text<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("case without {key}: {case}"))
}

fn headers(case: &Value) -> HeaderMap {
    let mut map = HeaderMap::new();
    for pair in case["headers"].as_array().expect("headers") {
        let (name, value) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

/// Accepted? The library's verdict as the oracle wrote it.
fn library_accepts(case: &Value) -> bool {
    match text(case, "verdict") {
        "accept" => true,
        "reject" => false,
        other => panic!("verdict {other:?} in {case}"),
    }
}

fn provider(name: &str) -> Result<Provider, serde_json::Error> {
    serde_json::from_value(Value::String(name.to_owned()))
}

#[test]
fn sluice_agrees_with_the_providers_libraries() {
    let doc = oracle();
    println!("oracle libraries: {}", doc["libraries"]);
    let cases = doc["cases"].as_array().expect("cases");
    let differences: BTreeMap<&str, &str> = DIFFERENCES.iter().copied().collect();
    let mut failures = Vec::new();
    let mut seen = BTreeMap::<&str, (usize, usize)>::new();
    let mut unchecked = BTreeMap::<&str, usize>::new();
    let mut differed = 0;

    for case in cases {
        let id = text(case, "id");
        let name = text(case, "provider");
        let accepts = library_accepts(case);
        let tally = seen.entry(name).or_default();
        if accepts {
            tally.0 += 1;
        } else {
            tally.1 += 1;
        }
        if let Some((_, why)) = NOT_PRESETS.iter().find(|(p, _)| *p == name) {
            assert!(
                provider(name).is_err(),
                "{name} is a sluice preset now: remove it from NOT_PRESETS ({why})"
            );
            *unchecked.entry(name).or_default() += 1;
            continue;
        }
        let preset = provider(name).unwrap_or_else(|_| {
            panic!(
                "the oracle signs for {name:?}, which is no sluice preset: list it in NOT_PRESETS"
            )
        });
        let secrets: Vec<Secret> = case["secrets"]
            .as_array()
            .expect("secrets")
            .iter()
            .map(|s| Secret::new(s.as_str().expect("secret")))
            .collect();
        let body = STANDARD.decode(text(case, "body_b64")).expect("body_b64");
        let now = UNIX_EPOCH + Duration::from_secs(case["now"].as_u64().expect("now"));
        let verifier = match Verifier::new(preset, &secrets, None, None) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{id}: sluice refused the case's keys: {e}"));
                continue;
            }
        };
        // The URL the request was sent to, for the presets that sign it.
        let url = case["url"].as_str();
        let result = verifier.verify_at(&headers(case), &body, url, now);
        let documented = differences.get(id);
        let expected = accepts != documented.is_some();
        if documented.is_some() {
            differed += 1;
        }
        if result.is_ok() != expected {
            failures.push(format!(
                "{id} ({}): library {}{}, sluice {:?}{}",
                text(case, "description"),
                text(case, "verdict"),
                case["library_said"]
                    .as_str()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default(),
                result,
                match documented {
                    Some(why) => format!("; expected the documented difference: {why}"),
                    None => String::new(),
                },
            ));
        }
    }

    // A listed difference whose case is gone would hide nothing and prove
    // nothing: the list must follow the oracle.
    for (id, _) in DIFFERENCES {
        if !cases.iter().any(|c| c["id"] == *id) {
            failures.push(format!(
                "{id}: listed in DIFFERENCES but the oracle has no such case"
            ));
        }
    }
    // An oracle that only accepts, or only rejects, tests nothing.
    for (name, (accepted, rejected)) in &seen {
        if *accepted == 0 || *rejected == 0 {
            failures.push(format!(
                "{name}: the library accepted {accepted} and rejected {rejected} cases; \
                 its wiring in oracle.py is broken"
            ));
        }
    }

    let covered: Vec<&str> = Provider::ALL
        .iter()
        .map(|p| p.as_str())
        .filter(|p| seen.contains_key(p))
        .collect();
    let uncovered: Vec<&str> = Provider::ALL
        .iter()
        .map(|p| p.as_str())
        .filter(|p| !seen.contains_key(p))
        .collect();
    println!(
        "{} cases; presets checked: {}; {differed} documented differences; \
         not presets yet (library verdicts only): {unchecked:?}; presets with no library here: {}",
        cases.len(),
        covered.join(", "),
        uncovered.join(", ")
    );
    assert!(
        failures.is_empty(),
        "sluice disagrees with the providers' libraries on {} case(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
