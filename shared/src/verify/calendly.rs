//! Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`, the `v1` a
//! hex HMAC-SHA256 of `{t}.{body}` under the webhook signing key. Its
//! documentation rejects timestamps older than 3 minutes.

use http::HeaderName;

use super::common::TaggedSpec;

pub(super) static SPEC: TaggedSpec = TaggedSpec {
    header: HeaderName::from_static("calendly-webhook-signature"),
    sep: ',',
    ts_key: "t",
    sig_key: "v1",
    joiner: b".",
};

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, at, hex_hmac};

    const KEY: &str = "calendly-signing-key-7d2f";
    const BODY: &[u8] =
        br#"{"event":"invitee.created","created_at":"2020-11-23T17:51:19.000000Z","payload":{}}"#;
    const T: u64 = 1_700_000_000;

    fn header(t: u64, body: &[u8]) -> String {
        format!(
            "t={t},v1={}",
            hex_hmac(KEY, &[t.to_string().as_bytes(), b".", body])
        )
    }

    fn case(value: &str, body: &[u8], now: u64) -> Case {
        Case::new(Provider::Calendly, &[KEY])
            .header("Calendly-Webhook-Signature", value)
            .body(body)
            .now(at(now))
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        case(&header(T, BODY), BODY, T + 179).passes();
        case(&header(T, BODY), BODY, T + 181).fails(TimestampOutOfWindow);
        case(&header(T + 3600, BODY), BODY, T).passes();
        case(&header(T, BODY), b"{}", T).fails(InvalidSignature);
        case(&header(T, BODY), BODY, T).passes();
        Case::new(Provider::Calendly, &["other"])
            .header("Calendly-Webhook-Signature", &header(T, BODY))
            .body(BODY)
            .now(at(T))
            .fails(InvalidSignature);
        case(&format!("v1={}", "0".repeat(64)), BODY, T).fails(MalformedSignature);
        case(&format!("t={T},v1=xyz"), BODY, T).fails(MalformedSignature);
        case(&format!("t={T},t=1,v1={}", "0".repeat(64)), BODY, T).fails(MalformedSignature);
        Case::new(Provider::Calendly, &[KEY])
            .body(BODY)
            .fails(MissingHeader("calendly-webhook-signature".into()));
    }
}
