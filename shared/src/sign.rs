//! Outbound signing with Standard Webhooks
//! (<https://www.standardwebhooks.com/>): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature: v1,<base64 HMAC-SHA256>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::header::InvalidHeaderValue;
use http::{HeaderMap, HeaderName, HeaderValue};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
pub const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
pub const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

const PREFIX: &str = "whsec_";
/// Bytes of a generated key: the full SHA-256 output size.
const GENERATED_LEN: usize = 32;
/// SHA-256 block size, the HMAC key size.
const BLOCK: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// A subscription's signing key: the HMAC state keyed with the decoded bytes
/// of a `whsec_…` secret (keyed once, cloned per signature).
#[derive(Clone)]
pub struct SigningKey(HmacSha256);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// Parse `whsec_<base64>`. Errors never include the secret.
    pub fn from_whsec(s: &str) -> Result<Self, String> {
        let b64 = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| "signing secret must start with \"whsec_\"".to_owned())?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| "signing secret is not valid base64 after \"whsec_\"".to_owned())?;
        if bytes.is_empty() {
            return Err("signing secret is empty".into());
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// A new random key and its `whsec_…` form.
    pub fn generate() -> (Self, String) {
        let mut bytes = [0u8; GENERATED_LEN];
        // ThreadRng is a CSPRNG seeded from the OS.
        rand::rng().fill_bytes(&mut bytes);
        let whsec = format!("{PREFIX}{}", STANDARD.encode(bytes));
        (Self::from_bytes(&bytes), whsec)
    }

    fn from_bytes(key: &[u8]) -> Self {
        // RFC 2104 key normalisation (hash if longer than a block, zero-pad),
        // done here so keying is infallible and needs no unwrap.
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        Self(<HmacSha256 as KeyInit>::new(&block.into()))
    }
}

/// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
pub fn signature(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = key.0.clone();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + 44);
    out.push_str("v1,");
    STANDARD.encode_string(tag, &mut out);
    out
}

/// Insert (replacing) the Standard Webhooks headers into `map`:
/// `webhook-id` and `webhook-timestamp` always, `webhook-signature` when
/// there is a key. All or nothing: an id that is not a valid header value
/// inserts none, since a signature over an id the receiver never sees could
/// not be checked.
pub fn insert_headers(
    map: &mut HeaderMap,
    key: Option<&SigningKey>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<(), InvalidHeaderValue> {
    let id = HeaderValue::from_str(msg_id)?;
    if let Some(key) = key {
        let sig = HeaderValue::from_str(&signature(key, msg_id, timestamp, body))?;
        map.insert(WEBHOOK_SIGNATURE, sig);
    }
    map.insert(WEBHOOK_ID, id);
    map.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
    Ok(())
}

/// Add a second signature to `webhook-signature` (space-separated, as
/// Standard Webhooks allows), so receivers holding either key accept the
/// message during a rotation. Does nothing without a first signature.
pub fn append_signature(
    map: &mut HeaderMap,
    key: &SigningKey,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<(), InvalidHeaderValue> {
    let Some(first) = map.get(WEBHOOK_SIGNATURE).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let both = format!("{first} {}", signature(key, msg_id, timestamp, body));
    map.insert(WEBHOOK_SIGNATURE, HeaderValue::from_str(&both)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn standard_webhooks_vector() {
        let key = SigningKey::from_whsec(SECRET).unwrap();
        assert_eq!(signature(&key, MSG_ID, TS, BODY), EXPECTED);
        // The keyed state is reused: signing twice gives the same answer.
        assert_eq!(signature(&key, MSG_ID, TS, BODY), EXPECTED);
    }

    #[test]
    fn tampering_changes_signature() {
        let key = SigningKey::from_whsec(SECRET).unwrap();
        assert_ne!(signature(&key, "msg_other", TS, BODY), EXPECTED);
        assert_ne!(signature(&key, MSG_ID, TS + 1, BODY), EXPECTED);
        assert_ne!(
            signature(&key, MSG_ID, TS, b"{\"test\": 2432232315}"),
            EXPECTED
        );
    }

    #[test]
    fn long_keys_match_plain_hmac() {
        // Keys longer than a block take the hashed path of RFC 2104.
        for len in [1usize, 32, 64, 65, 200] {
            let raw: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let key = SigningKey::from_whsec(&format!("whsec_{}", STANDARD.encode(&raw))).unwrap();
            let mut mac = <HmacSha256 as Mac>::new_from_slice(&raw).unwrap();
            mac.update(b"id.1.body");
            let want = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
            assert_eq!(signature(&key, "id", 1, b"body"), want, "len {len}");
        }
    }

    #[test]
    fn rejects_bad_secrets_without_echoing_them() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not*base64!!",
            "whsec_",
        ] {
            let err = SigningKey::from_whsec(bad).unwrap_err();
            let secret_part = bad.trim_start_matches("whsec_");
            assert!(
                secret_part.is_empty() || !err.contains(secret_part),
                "{err}"
            );
        }
        assert!(!format!("{:?}", SigningKey::from_whsec(SECRET).unwrap()).contains("MfKQ"));
    }

    #[test]
    fn generated_keys_round_trip() {
        let (key, whsec) = SigningKey::generate();
        assert!(whsec.starts_with("whsec_"));
        let decoded = STANDARD.decode(&whsec[6..]).unwrap();
        assert_eq!(decoded.len(), GENERATED_LEN);
        let parsed = SigningKey::from_whsec(&whsec).unwrap();
        assert_eq!(
            signature(&key, "a", 1, b"b"),
            signature(&parsed, "a", 1, b"b")
        );
        let (_, other) = SigningKey::generate();
        assert_ne!(whsec, other);
    }

    #[test]
    fn a_second_signature_is_appended_for_rotation() {
        let key = SigningKey::from_whsec(SECRET).unwrap();
        let (old, _) = SigningKey::generate();
        let mut map = HeaderMap::new();
        append_signature(&mut map, &old, MSG_ID, TS, BODY).unwrap();
        assert!(map.is_empty(), "no first signature, nothing appended");
        insert_headers(&mut map, Some(&key), MSG_ID, TS, BODY).unwrap();
        append_signature(&mut map, &old, MSG_ID, TS, BODY).unwrap();
        let want = format!("{EXPECTED} {}", signature(&old, MSG_ID, TS, BODY));
        assert_eq!(map["webhook-signature"], want.as_str());
    }

    #[test]
    fn header_helpers() {
        let key = SigningKey::from_whsec(SECRET).unwrap();
        let mut map = HeaderMap::new();
        map.insert(WEBHOOK_SIGNATURE, HeaderValue::from_static("stale"));
        insert_headers(&mut map, Some(&key), MSG_ID, TS, BODY).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map["webhook-id"], MSG_ID);
        assert_eq!(map["webhook-timestamp"], "1614265330");
        assert_eq!(map["webhook-signature"], EXPECTED);

        let mut unsigned = HeaderMap::new();
        insert_headers(&mut unsigned, None, MSG_ID, TS, BODY).unwrap();
        assert_eq!(unsigned.len(), 2);
        assert!(!unsigned.contains_key(WEBHOOK_SIGNATURE));

        let mut bad = HeaderMap::new();
        assert!(insert_headers(&mut bad, Some(&key), "bad\nid", TS, BODY).is_err());
        assert!(
            bad.is_empty(),
            "nothing is inserted when the id is unusable"
        );
    }
}
