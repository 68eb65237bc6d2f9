//! Mux: `Mux-Signature: t=<unix>,v1=<hex>`, the `v1` a hex HMAC-SHA256
//! of `{t}.{body}` under the webhook signing secret: Stripe's shape. Mux's
//! SDKs reject timestamps older than 5 minutes.

use http::HeaderName;

use super::common::TaggedSpec;

pub(super) static SPEC: TaggedSpec = TaggedSpec {
    header: HeaderName::from_static("mux-signature"),
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

    const SECRET: &str = "mux-signing-secret-0b1d";
    const BODY: &[u8] =
        br#"{"type":"video.asset.ready","id":"3a56ac3d-33da-4366-855b-f592d898409d","data":{}}"#;
    const T: u64 = 1_700_000_000;

    fn sig(t: u64, body: &[u8]) -> String {
        hex_hmac(SECRET, &[t.to_string().as_bytes(), b".", body])
    }

    fn case(value: &str, now: u64) -> Case {
        Case::new(Provider::Mux, &[SECRET])
            .header("Mux-Signature", value)
            .body(BODY)
            .now(at(now))
    }

    #[test]
    fn signed_requests_pass_within_five_minutes_of_age() {
        let good = format!("t={T},v1={}", sig(T, BODY));
        case(&good, T).passes();
        case(&good, T + 300).passes();
        case(&good, T + 301).fails(TimestampOutOfWindow);
        // Old only: a clock ahead of ours is no replay.
        case(&good, T - 3600).passes();
        case(&format!("t={T},v1={}", sig(T, b"{}")), T).fails(InvalidSignature);
        case(&format!("t={},v1={}", T + 1, sig(T, BODY)), T).fails(InvalidSignature);
        case(&format!("t={T}"), T).fails(MalformedSignature);
        case(&format!("t=soon,v1={}", sig(T, BODY)), T).fails(MalformedTimestamp);
        Case::new(Provider::Mux, &[SECRET])
            .body(BODY)
            .fails(MissingHeader("mux-signature".into()));
    }
}
