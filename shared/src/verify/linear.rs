//! Linear: `Linear-Signature: <hex>`, an HMAC-SHA256 of the body under the
//! webhook's signing secret. The time is inside the signed body
//! (`webhookTimestamp`, Unix milliseconds); Linear's SDK refuses it more
//! than a minute away from now, in either direction. It is read after the
//! signature matched, so only an authentic time is trusted.

use std::time::SystemTime;

use hmac::Hmac;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::VerifyError;
use super::common::{Keys, Window, decode_hex, header, ok_if};
use crate::secrets::Secret;

const SIG: HeaderName = HeaderName::from_static("linear-signature");

pub(super) struct Linear {
    keys: Keys<Hmac<Sha256>>,
    window: Window,
}

impl Linear {
    pub(super) fn new(secrets: &[Secret], window: Window) -> Result<Self, String> {
        Ok(Self {
            keys: Keys::from_secrets(secrets)?,
            window,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let value = header(headers, &SIG)?;
        let mut sig = [0u8; 32];
        if !decode_hex(value, &mut sig) {
            return Err(VerifyError::MalformedSignature);
        }
        ok_if(self.keys.matches(&[body], &sig))?;
        let ms = crate::extract::field(body, &[b"webhookTimestamp"])
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or(VerifyError::MalformedTimestamp)?;
        self.window.check_ms(ms, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Provider;
    use super::super::VerifyError::*;
    use super::super::tests::{Case, at, hex_hmac};

    const SECRET: &str = "lin_wh_secret_4f1c";
    const T: u64 = 1_700_000_000;

    fn body(ms: &str) -> Vec<u8> {
        format!(
            r#"{{"action":"create","type":"Issue","data":{{"id":"abc"}},"webhookTimestamp":{ms}}}"#
        )
        .into_bytes()
    }

    fn case(sig: &str, body: &[u8], now: std::time::SystemTime) -> Case {
        Case::new(Provider::Linear, &[SECRET])
            .header("Linear-Signature", sig)
            .body(body)
            .now(now)
    }

    #[test]
    fn signed_requests_pass_and_anything_else_fails() {
        let b = body(&format!("{}", T * 1000));
        let sig = hex_hmac(SECRET, &[&b]);
        case(&sig, &b, at(T)).passes();
        case(&sig, &b, at(T) + Duration::from_millis(59_999)).passes();
        case(&sig, &b, at(T + 61)).fails(TimestampOutOfWindow);
        case(&sig, &b, at(T - 61)).fails(TimestampOutOfWindow);
        case(&sig, b"{}", at(T)).fails(InvalidSignature);
        case("v1=00", &b, at(T)).fails(MalformedSignature);
        // A signed body without a readable time.
        for ms in ["\"soon\"", "-1", "1e3"] {
            let b = body(ms);
            case(&hex_hmac(SECRET, &[&b]), &b, at(T)).fails(MalformedTimestamp);
        }
        Case::new(Provider::Linear, &[SECRET])
            .body(&b)
            .fails(MissingHeader("linear-signature".into()));
    }
}
