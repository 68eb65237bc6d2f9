//! Tests of the Typeform preset, a [`super::header_hmac`] spec.

use super::Provider;
use super::VerifyError::*;
use super::tests::{Case, b64_hmac};

const SECRET: &str = "typeform-secret";
const BODY: &[u8] =
    br#"{"event_id":"01FZW2B1K0PR5QYZ2G3H4J5K6L","event_type":"form_response","form_response":{}}"#;

fn case(value: &str, body: &[u8]) -> Case {
    Case::new(Provider::Typeform, &[SECRET])
        .header("Typeform-Signature", value)
        .body(body)
}

#[test]
fn signed_requests_pass_and_anything_else_fails() {
    let good = format!("sha256={}", b64_hmac(SECRET, &[BODY]));
    case(&good, BODY).passes();
    case(&good, b"{}").fails(InvalidSignature);
    case(&good[7..], BODY).fails(MalformedSignature);
    case("sha256=!!!", BODY).fails(MalformedSignature);
    Case::new(Provider::Typeform, &["rotated", SECRET])
        .header("Typeform-Signature", &good)
        .body(BODY)
        .passes();
    Case::new(Provider::Typeform, &[SECRET])
        .body(BODY)
        .fails(MissingHeader("typeform-signature".into()));
}
