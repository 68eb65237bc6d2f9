//! Request parsing: JSON bodies (400 when not JSON, 422 naming the field
//! when a value is wrong), query strings, times and limits.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::AdminError;
use crate::time::{now_ms, to_ms};

/// Parse a JSON body; an empty body is `{}`.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    // Syntax first (400), then values (422): a body that is not JSON is
    // malformed whatever its fields would have been.
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| AdminError::MalformedJson(strip_location(&e.to_string())))?;
    json_value(json)
}

/// Read a JSON value as `T`; 422 naming the field when a value is wrong.
pub(crate) fn json_value<T: DeserializeOwned>(json: serde_json::Value) -> Result<T, AdminError> {
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        from_serde(&path, &inner)
    })
}

fn from_serde(path: &str, e: &serde_json::Error) -> AdminError {
    use serde_json::error::Category;
    let message = strip_location(&e.to_string());
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => AdminError::MalformedJson(message),
        Category::Data => {
            // `unknown field` / `missing field` name the field themselves.
            let named = ["unknown field `", "missing field `"]
                .iter()
                .find_map(|p| message.strip_prefix(p))
                .and_then(|rest| rest.split('`').next());
            let field = match (named, path) {
                (Some(f), "." | "") => f.to_owned(),
                (Some(f), p) if p == f || p.ends_with(&format!(".{f}")) => p.to_owned(),
                (Some(f), p) => format!("{p}.{f}"),
                (None, "." | "") => "body".to_owned(),
                (None, p) => p.to_owned(),
            };
            AdminError::invalid(field, message)
        }
    }
}

/// serde_json appends " at line L column C"; the field says where.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters; unknown names and repeats are refused (a typo in a
/// filter must not silently widen it).
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub(crate) fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, AdminError> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(AdminError::invalid(
                    k.as_ref(),
                    format!(
                        "unknown query parameter (allowed: {})",
                        if allowed.is_empty() {
                            "none".to_owned()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                ));
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(AdminError::invalid(k.as_ref(), "given more than once"));
            }
        }
        Ok(Self(map))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A page size in `1..=max`, `default` when absent.
pub(crate) fn limit(
    field: &str,
    value: Option<u64>,
    default: usize,
    max: usize,
) -> Result<usize, AdminError> {
    match value {
        None => Ok(default),
        Some(n) if n >= 1 && n <= max as u64 => Ok(n as usize),
        Some(_) => Err(AdminError::invalid(
            field,
            format!("must be between 1 and {max}"),
        )),
    }
}

pub(crate) fn limit_param(q: &Query, default: usize, max: usize) -> Result<usize, AdminError> {
    let value = q
        .get("limit")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| AdminError::invalid("limit", "must be a whole number"))
        })
        .transpose()?;
    limit("limit", value, default, max)
}

/// A point in time: RFC 3339 (`2025-01-31T12:00:00Z`), or a duration meaning
/// that long ago (`24h`, `7d`). Unix milliseconds.
pub(crate) fn time_ms(field: &str, value: &str) -> Result<i64, AdminError> {
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        return Ok(to_ms(t));
    }
    if let Ok(d) = humantime::parse_duration(value) {
        let ago = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms().saturating_sub(ago));
    }
    Err(AdminError::invalid(
        field,
        "must be an RFC 3339 time (2025-01-31T12:00:00Z) or a duration ago (24h)",
    ))
}

pub(crate) fn opt_time_ms(field: &str, value: Option<&str>) -> Result<Option<i64>, AdminError> {
    value.map(|v| time_ms(field, v)).transpose()
}

/// Last millisecond humantime can format (end of year 9999).
const MAX_FORMAT_MS: i64 = 253_402_300_799_999;

/// RFC 3339 with milliseconds, UTC. Clamped to 1970..=9999: humantime
/// panics outside that range, and a stored time must never take a
/// response down.
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = crate::time::from_ms(ms.clamp(0, MAX_FORMAT_MS));
    humantime::format_rfc3339_millis(t).to_string()
}

pub(crate) fn rfc3339_time(t: SystemTime) -> String {
    rfc3339(to_ms(t))
}

/// For PATCH bodies: absent → None, `null` → Some(None), value → Some(Some).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A duration written as `24h`, `30m`, `0s`.
pub(crate) fn duration(field: &str, value: &str) -> Result<Duration, AdminError> {
    humantime::parse_duration(value)
        .map_err(|e| AdminError::invalid(field, format!("not a duration like 24h: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_of_range_are_clamped_not_panicked_on() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn times_parse_as_rfc3339_or_an_age() {
        assert_eq!(
            time_ms("t", "2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        let ago = now_ms() - time_ms("t", "1h").unwrap();
        assert!((3_600_000..3_700_000).contains(&ago), "{ago}");
        assert!(
            time_ms("t", "100000000000years").is_ok(),
            "saturates, no panic"
        );
        assert!(time_ms("t", "soon").is_err());
    }
}
