//! The generic, configurable HMAC scheme (`provider = "hmac"`): a header
//! with `prefix` + hex/base64 of HMAC-{SHA1,SHA256,SHA512} over a template
//! of `{body}`, `{timestamp}` and `{id}`. A `timestamp_header` enables a
//! both-direction replay window on Unix seconds.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName};

use super::common::{MacKeys, Window, decode_base64, decode_hex, header, ok_if, strip_prefix_ci};
use super::{Encoding, HmacParams, VerifyError};
use crate::secrets::Secret;

/// Segments a template may have; bounds the stack array built per request.
const MAX_SEGMENTS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<[u8]>),
    Body,
    Timestamp,
    Id,
}

pub(super) struct Generic {
    keys: MacKeys,
    signature_header: HeaderName,
    encoding: Encoding,
    prefix: Box<str>,
    template: Box<[Segment]>,
    timestamp: Option<(HeaderName, Window)>,
    id_header: Option<HeaderName>,
}

impl Generic {
    pub(super) fn new(
        secrets: &[Secret],
        params: &HmacParams,
        window: Window,
    ) -> Result<Self, String> {
        let keys = MacKeys::new(params.algorithm, secrets)?;
        let template = parse_template(&params.signed_content)?;
        let needs = |s: &Segment| template.contains(s);
        let timestamp_header = params
            .timestamp_header
            .as_deref()
            .map(|h| header_name("timestamp_header", h))
            .transpose()?;
        let id_header = params
            .id_header
            .as_deref()
            .map(|h| header_name("id_header", h))
            .transpose()?;
        if needs(&Segment::Timestamp) && timestamp_header.is_none() {
            return Err(
                "signed_content uses {timestamp} but timestamp_header is not set".to_owned(),
            );
        }
        if needs(&Segment::Id) && id_header.is_none() {
            return Err("signed_content uses {id} but id_header is not set".to_owned());
        }
        Ok(Self {
            keys,
            signature_header: header_name("signature_header", &params.signature_header)?,
            encoding: params.encoding,
            prefix: params.prefix.as_str().into(),
            template: template.into(),
            timestamp: timestamp_header.map(|h| (h, window)),
            id_header,
        })
    }

    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn has_window(&self) -> bool {
        self.timestamp.is_some()
    }

    pub(super) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let value = header(headers, &self.signature_header)?;
        let encoded =
            strip_prefix_ci(value, &self.prefix).ok_or(VerifyError::MalformedSignature)?;
        let mut buf = [0u8; 64];
        let sig = &mut buf[..self.keys.tag_len()];
        let decoded = match self.encoding {
            Encoding::Hex => decode_hex(encoded, sig),
            Encoding::Base64 => decode_base64(encoded, sig),
        };
        if !decoded {
            return Err(VerifyError::MalformedSignature);
        }
        let ts = match &self.timestamp {
            Some((name, window)) => {
                let ts = header(headers, name)?;
                window.check(ts, now)?;
                ts
            }
            None => "",
        };
        let id = match &self.id_header {
            // Only required when signed; extraction handles the id otherwise.
            Some(name) if self.template.contains(&Segment::Id) => header(headers, name)?,
            _ => "",
        };
        let mut parts: [&[u8]; MAX_SEGMENTS] = [&[]; MAX_SEGMENTS];
        for (slot, seg) in parts.iter_mut().zip(self.template.iter()) {
            *slot = match seg {
                Segment::Literal(b) => b,
                Segment::Body => body,
                Segment::Timestamp => ts.as_bytes(),
                Segment::Id => id.as_bytes(),
            };
        }
        let parts = &parts[..self.template.len()];
        ok_if(self.keys.matches_any(parts, &[sig]))
    }
}

fn header_name(field: &str, value: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(value.trim().as_bytes())
        .map_err(|_| format!("{field} {value:?} is not a valid header name"))
}

/// Split `signed_content` into literals and placeholders. A `{name}` that
/// is not a known placeholder is refused: it is almost surely a typo, and
/// silently signing it as text would reject every request.
fn parse_template(t: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let (before, from_brace) = rest.split_at(open);
        literal.push_str(before);
        let close = from_brace.find('}');
        let name = close.map(|c| &from_brace[1..c]);
        let seg = match name {
            Some("body") => Some(Segment::Body),
            Some("timestamp") => Some(Segment::Timestamp),
            Some("id") => Some(Segment::Id),
            Some(n)
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                return Err(format!(
                    "signed_content: unknown placeholder {{{n}}} (use {{body}}, {{timestamp}}, {{id}})"
                ));
            }
            _ => None,
        };
        match (seg, close) {
            (Some(seg), Some(c)) => {
                if !literal.is_empty() {
                    out.push(Segment::Literal(
                        std::mem::take(&mut literal).into_bytes().into(),
                    ));
                }
                out.push(seg);
                rest = &from_brace[c + 1..];
            }
            _ => {
                // A lone brace is literal text.
                literal.push('{');
                rest = &from_brace[1..];
            }
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        out.push(Segment::Literal(literal.into_bytes().into()));
    }
    if !out.contains(&Segment::Body) {
        return Err(
            "signed_content must include {body}: otherwise the body is not authenticated"
                .to_owned(),
        );
    }
    if out.len() > MAX_SEGMENTS {
        return Err(format!("signed_content has more than {MAX_SEGMENTS} parts"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use ::hmac::Mac;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::super::tests::{headers, verifier_with};
    use super::super::{Algorithm, Encoding, HmacParams, Provider, Verifier, VerifyError};
    use super::{Segment, parse_template};
    use crate::secrets::Secret;

    const SECRET: &str = "generic-secret";
    const BODY: &[u8] = br#"{"type":"order.created","id":"o_1"}"#;
    const T: u64 = 1_700_000_000;

    fn params() -> HmacParams {
        HmacParams {
            signature_header: "X-Signature".into(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: String::new(),
            signed_content: "{body}".into(),
            timestamp_header: None,
            id_header: None,
            type_header: None,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn mac_bytes(alg: Algorithm, secret: &str, msg: &[u8]) -> Vec<u8> {
        fn run<M: Mac + ::hmac::digest::KeyInit>(k: &[u8], msg: &[u8]) -> Vec<u8> {
            let mut m = <M as ::hmac::digest::KeyInit>::new_from_slice(k).unwrap();
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        match alg {
            Algorithm::Sha1 => run::<::hmac::Hmac<sha1::Sha1>>(secret.as_bytes(), msg),
            Algorithm::Sha256 => run::<::hmac::Hmac<sha2::Sha256>>(secret.as_bytes(), msg),
            Algorithm::Sha512 => run::<::hmac::Hmac<sha2::Sha512>>(secret.as_bytes(), msg),
        }
    }

    fn check(
        p: &HmacParams,
        secrets: &[&str],
        h: &[(&str, &str)],
        body: &[u8],
        now: u64,
    ) -> Result<(), VerifyError> {
        verifier_with(Provider::Hmac, secrets, Some(p), None).verify(&headers(h), body, at(now))
    }

    #[test]
    fn every_algorithm_and_encoding() {
        for alg in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            for enc in [Encoding::Hex, Encoding::Base64] {
                let p = HmacParams {
                    algorithm: alg,
                    encoding: enc,
                    prefix: "sha=".into(),
                    ..params()
                };
                let tag = mac_bytes(alg, SECRET, BODY);
                let text = match enc {
                    Encoding::Hex => hex::encode(&tag),
                    Encoding::Base64 => STANDARD.encode(&tag),
                };
                let sig = format!("sha={text}");
                assert_eq!(
                    check(&p, &[SECRET], &[("x-signature", &sig)], BODY, T),
                    Ok(()),
                    "{alg:?} {enc:?}"
                );
                assert_eq!(
                    check(&p, &[SECRET], &[("x-signature", &sig)], b"tampered", T),
                    Err(VerifyError::InvalidSignature),
                    "{alg:?} {enc:?}"
                );
                assert_eq!(
                    check(&p, &[SECRET], &[("x-signature", &text)], BODY, T),
                    Err(VerifyError::MalformedSignature),
                    "prefix required, {alg:?} {enc:?}"
                );
            }
        }
    }

    #[test]
    fn wrong_secret_rotation_and_missing_header() {
        let p = params();
        let sig = hex::encode(mac_bytes(Algorithm::Sha256, SECRET, BODY));
        let h = [("X-Signature", sig.as_str())];
        assert_eq!(
            check(&p, &["other"], &h, BODY, T),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(check(&p, &["other", SECRET], &h, BODY, T), Ok(()));
        assert_eq!(
            check(&p, &[SECRET], &[], BODY, T),
            Err(VerifyError::MissingHeader("x-signature".into()))
        );
        // A SHA-1-length tag where SHA-256 is configured.
        let short = hex::encode(mac_bytes(Algorithm::Sha1, SECRET, BODY));
        assert_eq!(
            check(&p, &[SECRET], &[("X-Signature", &short)], BODY, T),
            Err(VerifyError::MalformedSignature)
        );
    }

    #[test]
    fn template_with_timestamp_and_id_and_window() {
        let p = HmacParams {
            signed_content: "{timestamp}:{id}:{body}".into(),
            timestamp_header: Some("X-Ts".into()),
            id_header: Some("X-Id".into()),
            ..params()
        };
        let mut msg = format!("{T}:evt_9:").into_bytes();
        msg.extend_from_slice(BODY);
        let sig = hex::encode(mac_bytes(Algorithm::Sha256, SECRET, &msg));
        let ts = T.to_string();
        let h = [
            ("X-Signature", sig.as_str()),
            ("X-Ts", ts.as_str()),
            ("X-Id", "evt_9"),
        ];
        assert_eq!(check(&p, &[SECRET], &h, BODY, T), Ok(()));
        assert_eq!(check(&p, &[SECRET], &h, BODY, T + 300), Ok(()));
        assert_eq!(check(&p, &[SECRET], &h, BODY, T - 300), Ok(()));
        assert_eq!(
            check(&p, &[SECRET], &h, BODY, T + 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
        assert_eq!(
            check(&p, &[SECRET], &h, BODY, T - 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
        let other_id = [
            ("X-Signature", sig.as_str()),
            ("X-Ts", ts.as_str()),
            ("X-Id", "evt_8"),
        ];
        assert_eq!(
            check(&p, &[SECRET], &other_id, BODY, T),
            Err(VerifyError::InvalidSignature)
        );
        let no_ts = [("X-Signature", sig.as_str()), ("X-Id", "evt_9")];
        assert_eq!(
            check(&p, &[SECRET], &no_ts, BODY, T),
            Err(VerifyError::MissingHeader("x-ts".into()))
        );
        let bad_ts = [
            ("X-Signature", sig.as_str()),
            ("X-Ts", "soon"),
            ("X-Id", "evt_9"),
        ];
        assert_eq!(
            check(&p, &[SECRET], &bad_ts, BODY, T),
            Err(VerifyError::MalformedTimestamp)
        );
        let short = verifier_with(
            Provider::Hmac,
            &[SECRET],
            Some(&p),
            Some(Duration::from_secs(5)),
        );
        assert_eq!(
            short.verify(&headers(&h), BODY, at(T + 6)),
            Err(VerifyError::TimestampOutOfWindow)
        );
    }

    #[test]
    fn templates_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_template("v0:{timestamp}:{body}").unwrap(),
            vec![
                Segment::Literal(b"v0:".to_vec().into()),
                Segment::Timestamp,
                Segment::Literal(b":".to_vec().into()),
                Segment::Body
            ]
        );
        assert_eq!(
            parse_template("{{body}}").unwrap(),
            vec![
                Segment::Literal(b"{".to_vec().into()),
                Segment::Body,
                Segment::Literal(b"}".to_vec().into())
            ]
        );
        assert!(parse_template("{timestamp}").is_err(), "no body");
        assert!(parse_template("{tstamp}.{body}").is_err(), "typo");
        assert!(
            parse_template(&"x{body}".repeat(9)).is_err(),
            "too many parts"
        );
        let need_ts = HmacParams {
            signed_content: "{timestamp}.{body}".into(),
            ..params()
        };
        assert!(
            Verifier::new(Provider::Hmac, &[Secret::new(SECRET)], Some(&need_ts), None).is_err()
        );
        let bad_header = HmacParams {
            signature_header: "Bad Header".into(),
            ..params()
        };
        assert!(
            Verifier::new(
                Provider::Hmac,
                &[Secret::new(SECRET)],
                Some(&bad_header),
                None
            )
            .is_err()
        );
        assert!(
            Verifier::new(Provider::Hmac, &[Secret::new(SECRET)], None, None).is_err(),
            "params required"
        );
    }
}
