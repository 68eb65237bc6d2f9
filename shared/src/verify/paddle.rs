//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>…]`, each
//! `h1` a hex HMAC-SHA256 of `{ts}:{body}`, keyed with the notification
//! destination's secret key (`pdl_ntfset_…`) as it is, not decoded.
//! Paddle's SDKs reject only old timestamps, after 5 seconds; several `h1`
//! come during a secret rotation.

use http::HeaderName;

use super::common::TaggedSpec;

pub(super) static SPEC: TaggedSpec = TaggedSpec {
    header: HeaderName::from_static("paddle-signature"),
    sep: ';',
    ts_key: "ts",
    sig_key: "h1",
    joiner: b":",
};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, at, hex_hmac};

    const SECRET: &str = "pdl_ntfset_01gkpjp8bkh3a7zwrxxqmhdpc7_6Jh0bGuJbNBmY7eW2ZNLmSSlCI1VNxDi";
    const BODY: &[u8] =
        br#"{"event_id":"evt_01h8bz","event_type":"transaction.completed","data":{}}"#;
    const T: u64 = 1_700_000_000;

    fn header(t: u64, body: &[u8]) -> String {
        format!(
            "ts={t};h1={}",
            hex_hmac(SECRET, &[t.to_string().as_bytes(), b":", body])
        )
    }

    fn case(value: &str, body: &[u8], now: u64) -> Case {
        Case::new(Provider::Paddle, &[SECRET])
            .header("Paddle-Signature", value)
            .body(body)
            .now(at(now))
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        case(&header(T, BODY), BODY, T + 1).passes();
        // A rotation: the old secret's h1 and the new one's.
        let good = hex_hmac(SECRET, &[T.to_string().as_bytes(), b":", BODY]);
        let two = format!("ts={T};h1={};h1={good}", "00".repeat(32));
        case(&two, BODY, T).passes();
        case(&header(T, BODY), b"{}", T).fails(InvalidSignature);
        // Only old timestamps are refused, after 5 s.
        case(&header(T, BODY), BODY, T + 6).fails(TimestampOutOfWindow);
        case(&header(T + 600, BODY), BODY, T).passes();
        case(&format!("h1={}", "00".repeat(32)), BODY, T).fails(MalformedSignature);
        case(&format!("ts={T};h1=zz"), BODY, T).fails(MalformedSignature);
        case(&format!("ts=x;h1={}", "00".repeat(32)), BODY, T).fails(MalformedTimestamp);
        Case::new(Provider::Paddle, &[SECRET])
            .body(BODY)
            .fails(MissingHeader("paddle-signature".into()));
        assert_eq!(
            super::super::default_tolerance(Provider::Paddle),
            Some(Duration::from_secs(5))
        );
    }
}
