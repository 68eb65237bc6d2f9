//! Tests of the Intercom preset, a [`super::header_hmac`] spec.

use hmac::Mac;

use super::Provider;
use super::VerifyError::*;
use super::tests::Case;

const SECRET: &str = "intercom-client-secret";
const BODY: &[u8] =
    br#"{"type":"notification_event","id":"notif_ccd8a4d0","topic":"conversation.user.created"}"#;

fn sign(body: &[u8]) -> String {
    let mut m = hmac::Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(body);
    format!("sha1={}", hex::encode(m.finalize().into_bytes()))
}

fn case(value: &str, body: &[u8]) -> Case {
    Case::new(Provider::Intercom, &[SECRET])
        .header("X-Hub-Signature", value)
        .body(body)
}

#[test]
fn signed_requests_pass_and_anything_else_fails() {
    case(&sign(BODY), BODY).passes();
    case(&sign(BODY).to_uppercase().replace("SHA1=", "sha1="), BODY).passes();
    case(&sign(BODY), b"{}").fails(InvalidSignature);
    case(&sign(BODY)[5..], BODY).fails(MalformedSignature);
    case("sha1=abc", BODY).fails(MalformedSignature);
    Case::new(Provider::Intercom, &[SECRET])
        .body(BODY)
        .fails(MissingHeader("x-hub-signature".into()));
}
