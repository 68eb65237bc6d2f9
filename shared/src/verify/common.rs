//! Pieces shared by the schemes: header reading, key sets, signature
//! decoding and the replay window. Nothing here allocates on success.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::Mac;
use hmac::digest::KeyInit;
use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use super::VerifyError;
use crate::secrets::Secret;

/// Standard alphabet; padding optional, because senders differ.
pub(super) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The header's value as text. Missing: 401; not visible ASCII, or sent
/// more than once: 400.
pub(super) fn header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<&'a str, VerifyError> {
    optional_header(headers, name)?
        .ok_or_else(|| VerifyError::MissingHeader(name.as_str().to_owned()))
}

/// Every header a scheme reads (signature, timestamp, id) comes through
/// here. A repeated one is refused rather than read: which copy would be
/// checked, and so the outcome, would depend on their order.
pub(super) fn optional_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::RepeatedHeader(name.as_str().to_owned()));
    }
    value
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| VerifyError::UnreadableHeader(name.as_str().to_owned()))
}

pub(super) fn ok_if(matched: bool) -> Result<(), VerifyError> {
    if matched {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

/// Strip `prefix` ignoring ASCII case (`sha256=` vs `SHA256=`).
pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Decode hex (either case) into exactly `out.len()` bytes.
///
/// A table lookup per digit, checked once at the end: every signed request
/// decodes its signature, and `hex::decode_to_slice`'s per-digit matching
/// was a tenth of the receive path outside the HMAC (`make bench`). The
/// input is the sender's signature, not a secret.
pub(super) fn decode_hex(s: &str, out: &mut [u8]) -> bool {
    let digits = s.as_bytes();
    if digits.len() != 2 * out.len() {
        return false;
    }
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        invalid |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    invalid & NOT_HEX == 0
}

/// Marks a byte that is not a hex digit in [`HEX_VALUE`].
const NOT_HEX: u8 = 0x80;

/// Each byte's value as a hex digit, or [`NOT_HEX`].
const HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decode base64 into exactly `out.len()` bytes (at most 64).
pub(super) fn decode_base64(s: &str, out: &mut [u8]) -> bool {
    // Room for a SHA-512 tag plus the decoder's rounding; longer input is
    // rejected by the length check below or by the decoder itself.
    let mut buf = [0u8; 72];
    if s.len() > 4 * buf.len() / 3 {
        return false;
    }
    match BASE64.decode_slice(s, &mut buf) {
        Ok(n) if n == out.len() => {
            out.copy_from_slice(&buf[..n]);
            true
        }
        _ => false,
    }
}

/// Decode base64 into the start of `out`; the length, or `None` if it is
/// not base64 or does not fit (signatures of varying length, such as DER).
pub(super) fn decode_base64_into(s: &str, out: &mut [u8]) -> Option<usize> {
    if s.len() > 4 * out.len().div_ceil(3) {
        return None;
    }
    BASE64.decode_slice(s, out).ok()
}

/// The raw key bytes of each secret, checked for the usual config mistakes.
/// Errors name the secret's position, never its value.
pub(super) fn check_secrets(secrets: &[Secret]) -> Result<(), String> {
    if secrets.is_empty() {
        return Err("at least one secret is required".to_owned());
    }
    for (i, s) in secrets.iter().enumerate() {
        let v = s.expose();
        if v.is_empty() {
            return Err(format!("secret #{} is empty", i + 1));
        }
        // A stray newline from a file or `echo` is the classic cause of
        // "every signature is invalid"; refuse it at startup instead.
        if v.trim() != v {
            return Err(format!(
                "secret #{} has leading or trailing whitespace",
                i + 1
            ));
        }
    }
    Ok(())
}

/// Keyed MAC states, one per active secret. Keyed once at startup; each
/// request clones a state instead of re-deriving the pads.
#[derive(Clone)]
pub(super) struct Keys<M> {
    macs: Box<[M]>,
}

impl<M: Mac + KeyInit + Clone> Keys<M> {
    pub(super) fn new<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> Result<Self, String> {
        let macs = keys
            .into_iter()
            .map(|k| {
                <M as KeyInit>::new_from_slice(k.as_ref())
                    .map_err(|_| "invalid key length".to_owned())
            })
            .collect::<Result<Box<[M]>, _>>()?;
        Ok(Self { macs })
    }

    /// One key per secret, its text as the raw key (most HMAC presets).
    pub(super) fn from_secrets(secrets: &[Secret]) -> Result<Self, String> {
        Self::new(secrets.iter().map(|s| s.expose().as_bytes()))
    }

    pub(super) fn len(&self) -> usize {
        self.macs.len()
    }

    /// The first (current) key's tag over `parts`: for a reply the
    /// provider checks, such as Zoom's URL validation token.
    pub(super) fn first_tag(&self, parts: &[&[u8]]) -> Option<Vec<u8>> {
        let mut m = self.macs.first()?.clone();
        for p in parts {
            m.update(p);
        }
        Some(m.finalize().into_bytes().to_vec())
    }

    /// True if some key's tag over the concatenation of `parts` equals
    /// `expected`, compared in constant time.
    pub(super) fn matches(&self, parts: &[&[u8]], expected: &[u8]) -> bool {
        self.matches_any(parts, &[expected])
    }

    /// Like `matches`, for several candidate signatures: each key's tag is
    /// computed once and compared with every candidate in constant time.
    pub(super) fn matches_any<T: AsRef<[u8]>>(&self, parts: &[&[u8]], candidates: &[T]) -> bool {
        self.macs.iter().any(|mac| {
            let mut m = mac.clone();
            for p in parts {
                m.update(p);
            }
            let tag = m.finalize().into_bytes();
            // Fold without short-circuit so timing does not reveal which
            // candidate matched.
            candidates
                .iter()
                .fold(subtle::Choice::from(0), |acc, c| {
                    acc | tag_eq(&tag, c.as_ref())
                })
                .into()
        })
    }
}

/// [`Keys`] under the algorithm a scheme names, keyed with each secret's
/// bytes as they are.
pub(super) enum MacKeys {
    Sha1(Keys<::hmac::Hmac<sha1::Sha1>>),
    Sha256(Keys<::hmac::Hmac<sha2::Sha256>>),
    Sha512(Keys<::hmac::Hmac<sha2::Sha512>>),
}

impl MacKeys {
    /// One key per secret, its text as the raw key.
    pub(super) fn new(algorithm: super::Algorithm, secrets: &[Secret]) -> Result<Self, String> {
        Self::with_keys(algorithm, secrets.iter().map(|s| s.expose().as_bytes()))
    }

    /// One key per secret, the secret being the key's base64 (Microsoft
    /// Teams). Errors name the secret's position, never its value.
    pub(super) fn from_base64(
        algorithm: super::Algorithm,
        secrets: &[Secret],
    ) -> Result<Self, String> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                BASE64
                    .decode(s.expose())
                    .map_err(|_| format!("secret #{} is not base64", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::with_keys(algorithm, keys)
    }

    fn with_keys<K: AsRef<[u8]>>(
        algorithm: super::Algorithm,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Self, String> {
        Ok(match algorithm {
            super::Algorithm::Sha1 => Self::Sha1(Keys::new(keys)?),
            super::Algorithm::Sha256 => Self::Sha256(Keys::new(keys)?),
            super::Algorithm::Sha512 => Self::Sha512(Keys::new(keys)?),
        })
    }

    /// The tag length in bytes.
    pub(super) fn tag_len(&self) -> usize {
        match self {
            Self::Sha1(_) => 20,
            Self::Sha256(_) => 32,
            Self::Sha512(_) => 64,
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Self::Sha1(k) => k.len(),
            Self::Sha256(k) => k.len(),
            Self::Sha512(k) => k.len(),
        }
    }

    /// The first (current) key's tag over `parts`.
    pub(super) fn first_tag(&self, parts: &[&[u8]]) -> Option<Vec<u8>> {
        match self {
            Self::Sha1(k) => k.first_tag(parts),
            Self::Sha256(k) => k.first_tag(parts),
            Self::Sha512(k) => k.first_tag(parts),
        }
    }

    pub(super) fn matches_any<T: AsRef<[u8]>>(&self, parts: &[&[u8]], candidates: &[T]) -> bool {
        match self {
            Self::Sha1(k) => k.matches_any(parts, candidates),
            Self::Sha256(k) => k.matches_any(parts, candidates),
            Self::Sha512(k) => k.matches_any(parts, candidates),
        }
    }
}

/// Ed25519 public keys, one per active secret (Discord, Standard Webhooks
/// `v1a`). A signature is public, so its check needs no constant time;
/// `verify_strict` refuses the malleable and weak-key forms.
pub(super) struct Ed25519Keys {
    keys: Box<[ed25519_dalek::VerifyingKey]>,
}

impl Ed25519Keys {
    pub(super) fn new(keys: impl IntoIterator<Item = [u8; 32]>) -> Result<Self, String> {
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                ed25519_dalek::VerifyingKey::from_bytes(&k)
                    .map_err(|_| format!("secret #{}: not an Ed25519 public key", i + 1))
            })
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(Self { keys })
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if some key signed the concatenation of `parts` with one of
    /// `sigs`.
    pub(super) fn matches_any(&self, parts: &[&[u8]], sigs: &[[u8; 64]]) -> bool {
        if self.keys.is_empty() || sigs.is_empty() {
            return false;
        }
        let message = parts.concat();
        sigs.iter().any(|sig| {
            let sig = ed25519_dalek::Signature::from_bytes(sig);
            self.keys
                .iter()
                .any(|k| k.verify_strict(&message, &sig).is_ok())
        })
    }
}

/// The SHA-256 of each secret, for the schemes that receive the secret
/// itself (a shared token, HTTP Basic credentials, Graph's clientState):
/// comparing fixed-size digests keeps the check constant-time whatever the
/// lengths. Also what a source keeps of a secret its provider chose
/// (Asana's `X-Hook-Secret`), to know a repeated handshake.
pub struct SecretDigests(Box<[[u8; 32]]>);

/// Shows how many, never a digest.
impl std::fmt::Debug for SecretDigests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretDigests({})", self.0.len())
    }
}

impl SecretDigests {
    pub fn new(secrets: &[Secret]) -> Self {
        use sha2::Digest as _;
        Self(
            secrets
                .iter()
                .map(|s| sha2::Sha256::digest(s.expose().as_bytes()).into())
                .collect(),
        )
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `candidate` is one of the secrets; every digest is compared,
    /// so the time does not tell which one matched.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use sha2::Digest as _;
        let got: [u8; 32] = sha2::Sha256::digest(candidate).into();
        let matched = self
            .0
            .iter()
            .fold(subtle::Choice::from(0), |acc, d| acc | tag_eq(d, &got));
        matched.into()
    }
}

/// Constant-time equality of a computed tag and a candidate, a machine
/// word at a time: subtle's slice compare passes every byte through its
/// optimisation barrier, which cost as much as the rest of the check. Only
/// the length, which is public (fixed per algorithm), may end it early.
pub(super) fn tag_eq(tag: &[u8], candidate: &[u8]) -> subtle::Choice {
    if tag.len() != candidate.len() {
        return subtle::Choice::from(0);
    }
    fn words(s: &[u8]) -> impl Iterator<Item = u64> + '_ {
        s.chunks(8).map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_ne_bytes(w)
        })
    }
    words(tag)
        .zip(words(candidate))
        .fold(subtle::Choice::from(1), |acc, (a, b)| acc & a.ct_eq(&b))
}

/// Up to `SigList::CAP` decoded 32-byte signatures, on the stack. Extra
/// candidates are ignored: no provider sends more than two or three, and
/// the cap bounds the work a request can cause.
pub(super) struct SigList {
    sigs: [[u8; 32]; Self::CAP],
    len: usize,
}

impl SigList {
    pub(super) const CAP: usize = 8;

    pub(super) fn new() -> Self {
        Self {
            sigs: [[0; 32]; Self::CAP],
            len: 0,
        }
    }

    /// Decode one candidate with `decode`; undecodable ones are skipped.
    pub(super) fn push_with(&mut self, decode: impl FnOnce(&mut [u8]) -> bool) {
        if self.len < Self::CAP {
            let slot = &mut self.sigs[self.len];
            if decode(slot) {
                self.len += 1;
            }
        }
    }

    pub(super) fn as_slice(&self) -> &[[u8; 32]] {
        &self.sigs[..self.len]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A header of `key=value` items split by `sep`, such as Stripe's
/// `t=…,v1=…` and Paddle's `ts=…;h1=…`: the timestamp under `ts_key`, if
/// the scheme has one, and
/// each hex signature under `sig_key` (other keys are ignored). Two
/// different timestamps (joined repeated headers) are refused: which one
/// did the signature cover? So is a header with no signature.
pub(super) fn tagged_hex<'a>(
    value: &'a str,
    sep: char,
    ts_key: Option<&str>,
    sig_key: &str,
) -> Result<(Option<&'a str>, SigList), VerifyError> {
    let mut ts: Option<&str> = None;
    let mut sigs = SigList::new();
    for item in value.split(sep) {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if Some(k) == ts_key {
            if ts.is_some_and(|t| t != v) {
                return Err(VerifyError::MalformedSignature);
            }
            ts = Some(v);
        } else if k == sig_key {
            sigs.push_with(|out| decode_hex(v, out));
        }
    }
    if sigs.is_empty() {
        return Err(VerifyError::MalformedSignature);
    }
    Ok((ts, sigs))
}

/// A `key=value` signature header over `{ts}{joiner}{body}`, hex
/// HMAC-SHA256: Stripe's shape, which Paddle and Calendly share.
pub(super) struct TaggedSpec {
    pub header: HeaderName,
    pub sep: char,
    pub ts_key: &'static str,
    pub sig_key: &'static str,
    pub joiner: &'static [u8],
}

pub(super) struct Tagged {
    spec: &'static TaggedSpec,
    keys: Keys<::hmac::Hmac<sha2::Sha256>>,
    window: Window,
}

impl Tagged {
    pub(super) fn new(
        spec: &'static TaggedSpec,
        secrets: &[Secret],
        window: Window,
    ) -> Result<Self, String> {
        Ok(Self {
            spec,
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
        let spec = self.spec;
        let value = header(headers, &spec.header)?;
        let (ts, sigs) = tagged_hex(value, spec.sep, Some(spec.ts_key), spec.sig_key)?;
        let ts = ts.ok_or(VerifyError::MalformedSignature)?;
        // The cheap check first: stale requests cost no HMAC.
        self.window.check(ts, now)?;
        ok_if(
            self.keys
                .matches_any(&[ts.as_bytes(), spec.joiner, body], sigs.as_slice()),
        )
    }
}

/// Which side of the window a scheme enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayDirection {
    /// Reject only timestamps older than the window (Stripe): clocks at the
    /// provider may run ahead, and a future timestamp is no replay.
    OldOnly,
    /// Reject timestamps too far in the past or the future.
    Both,
}

/// A replay window over a Unix-seconds timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub tolerance: Duration,
    pub direction: ReplayDirection,
}

impl Window {
    /// Parse a Unix-seconds timestamp header and check it against `now`.
    pub(super) fn check(&self, ts: &str, now: SystemTime) -> Result<(), VerifyError> {
        let secs = parse_unix_secs(ts).ok_or(VerifyError::MalformedTimestamp)?;
        let sent = UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or(VerifyError::MalformedTimestamp)?;
        self.check_time(sent, now)
    }

    /// Check a Unix-milliseconds timestamp against `now`.
    pub(super) fn check_ms(&self, ms: u64, now: SystemTime) -> Result<(), VerifyError> {
        let sent = UNIX_EPOCH
            .checked_add(Duration::from_millis(ms))
            .ok_or(VerifyError::MalformedTimestamp)?;
        self.check_time(sent, now)
    }

    /// Parse an RFC 3339 timestamp (`…Z` or an offset such as `-07:00`,
    /// fractions up to nanoseconds) and check it against `now`.
    pub(super) fn check_rfc3339(&self, ts: &str, now: SystemTime) -> Result<(), VerifyError> {
        let sent = chrono::DateTime::parse_from_rfc3339(ts)
            .map_err(|_| VerifyError::MalformedTimestamp)?;
        self.check_time(sent.into(), now)
    }

    fn check_time(&self, sent: SystemTime, now: SystemTime) -> Result<(), VerifyError> {
        match now.duration_since(sent) {
            Ok(age) if age > self.tolerance => Err(VerifyError::TimestampOutOfWindow),
            Ok(_) => Ok(()),
            Err(ahead) => {
                if self.direction == ReplayDirection::Both && ahead.duration() > self.tolerance {
                    Err(VerifyError::TimestampOutOfWindow)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Digits only (no sign, no spaces), at most 12 of them: seconds until the
/// year 33658, which keeps the arithmetic far from overflow.
fn parse_unix_secs(s: &str) -> Option<u64> {
    parse_unix_digits(s, 12)
}

/// Digits only, at most `max` of them (15 for milliseconds).
pub(super) fn parse_unix_digits(s: &str, max: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Hmac;
    use sha2::Sha256;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn decode_hex_agrees_with_the_hex_crate() {
        let bytes: Vec<u8> = (0..=255).collect();
        for text in [hex::encode(&bytes), hex::encode_upper(&bytes)] {
            let mut out = [0u8; 256];
            assert!(decode_hex(&text, &mut out));
            assert_eq!(out.as_slice(), bytes.as_slice());
        }
        let mut out = [0u8; 2];
        assert!(decode_hex("aF09", &mut out));
        assert_eq!(out, [0xaf, 0x09]);
        // Every ASCII byte that is not a hex digit, at each position.
        for b in 0..=127u8 {
            if b.is_ascii_hexdigit() {
                continue;
            }
            for at in 0..4 {
                let mut text = *b"00ff";
                text[at] = b;
                let text = std::str::from_utf8(&text).unwrap();
                assert!(!decode_hex(text, &mut out), "{b:#x} at {at}");
            }
        }
        assert!(!decode_hex("00f", &mut out), "odd length");
        assert!(!decode_hex("00ff00", &mut out), "too long");
        assert!(!decode_hex("", &mut out), "empty");
        // Two bytes of UTF-8: the right length, but not digits.
        assert!(!decode_hex("é", &mut [0u8; 1]), "non-ASCII");
    }

    #[test]
    fn window_directions() {
        let old_only = Window {
            tolerance: Duration::from_secs(300),
            direction: ReplayDirection::OldOnly,
        };
        let both = Window {
            tolerance: Duration::from_secs(300),
            direction: ReplayDirection::Both,
        };
        let now = at(1_000_000);
        for w in [old_only, both] {
            assert_eq!(w.check("1000000", now), Ok(()));
            assert_eq!(w.check("999700", now), Ok(()), "edge of the window passes");
            assert_eq!(
                w.check("999699", now),
                Err(VerifyError::TimestampOutOfWindow)
            );
            assert_eq!(w.check("1000300", now), Ok(()));
        }
        assert_eq!(old_only.check("1000301", now), Ok(()));
        assert_eq!(old_only.check("9999999999", now), Ok(()));
        assert_eq!(
            both.check("1000301", now),
            Err(VerifyError::TimestampOutOfWindow)
        );
    }

    #[test]
    fn timestamps_must_be_plain_digits() {
        let w = Window {
            tolerance: Duration::from_secs(300),
            direction: ReplayDirection::Both,
        };
        for bad in [
            "",
            "+1000000",
            "-5",
            "1e6",
            "1000000.5",
            " 1",
            "99999999999999999999",
            "abc",
        ] {
            assert_eq!(
                w.check(bad, at(1_000_000)),
                Err(VerifyError::MalformedTimestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn base64_decoding_checks_length_and_tolerates_missing_padding() {
        let mut out = [0u8; 4];
        assert!(decode_base64("AQIDBA==", &mut out));
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(decode_base64("AQIDBA", &mut out));
        assert!(!decode_base64("AQID", &mut out), "3 bytes, 4 wanted");
        assert!(!decode_base64("AQIDBAU=", &mut out), "5 bytes, 4 wanted");
        assert!(!decode_base64("!!!!", &mut out));
        assert!(!decode_base64(&"A".repeat(10_000), &mut out));
    }

    #[test]
    fn matches_any_finds_a_match_among_candidates() {
        let keys = Keys::<Hmac<Sha256>>::new(["k1", "k2"]).unwrap();
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(b"k2").unwrap();
        m.update(b"ab");
        let good: [u8; 32] = m.finalize().into_bytes().into();
        assert!(keys.matches_any(&[b"a", b"b"], &[[0u8; 32], good]));
        assert!(!keys.matches_any(&[b"a", b"b"], &[[0u8; 32]]));
        assert!(keys.matches(&[b"ab"], &good));
        assert!(!keys.matches(&[b"abc"], &good));
    }

    #[test]
    fn tag_eq_sees_a_difference_in_any_byte_and_any_length() {
        // 20 (SHA-1: a partial last word), 32 and 64 bytes.
        for len in [20usize, 32, 64] {
            let tag: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(bool::from(tag_eq(&tag, &tag.clone())));
            for i in 0..len {
                let mut other = tag.clone();
                other[i] ^= 0x01;
                assert!(!bool::from(tag_eq(&tag, &other)), "len {len}, byte {i}");
            }
            assert!(!bool::from(tag_eq(&tag, &tag[..len - 1])));
            let mut longer = tag.clone();
            longer.push(0);
            assert!(!bool::from(tag_eq(&tag, &longer)));
        }
        assert!(!bool::from(tag_eq(&[1; 32], &[])));
    }

    #[test]
    fn secrets_are_checked_without_echoing_them() {
        assert!(check_secrets(&[]).is_err());
        let err = check_secrets(&[Secret::new("ok"), Secret::new("hunter2\n")]).unwrap_err();
        assert!(err.contains("#2") && !err.contains("hunter2"), "{err}");
        assert!(check_secrets(&[Secret::new("")]).is_err());
        assert!(check_secrets(&[Secret::new("It's a Secret to Everybody")]).is_ok());
    }
}
