//! The admin API's OpenAPI document, checked by an OpenAPI validator
//! (openapi-spec-validator, installed into .venv-moto by scripts/moto.sh):
//! a document that does not validate fails here, not in an operator's
//! client generator.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_openapi_document_is_valid_openapi_3_1() {
    let validator =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-moto/bin/openapi-spec-validator");
    assert!(
        validator.is_file(),
        "{} is missing: run `make test` (or scripts/moto.sh), which installs it",
        validator.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, sluice::admin::openapi::SERVED).unwrap();
    let out = Command::new(&validator)
        .args(["--schema", "3.1", "--subschema-errors", "all"])
        .arg(&file)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains(": OK"), "{report}");
}
