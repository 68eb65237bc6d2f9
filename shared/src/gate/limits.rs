//! A subscription's delivery controls as configured: parsed and checked
//! once, for the file, the admin API and the CLI alike.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::format::Format;

/// At most `count` requests per `per`, sent evenly: one every
/// [`interval`](Self::interval), never in a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

/// The fastest limit: one request a millisecond.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "rate_limit {0:?}: expected COUNT/UNIT with a COUNT of at least 1 and UNIT s, m or h \
         (for example \"20/s\"), or \"unlimited\""
    )]
    BadRate(String),
    #[error("rate_limit {0:?} is over the most sluice can pace, 1000/s")]
    TooFast(String),
    #[error("max_in_flight must be at least 1")]
    NoInFlight,
    #[error("circuit_breaker.probe_after must be between 1s and 15m")]
    BadProbe,
    #[error("circuit_breaker.failure_percent must be between 1 and 100")]
    BadPercent,
    #[error("circuit_breaker.window must be between 10s and 1h")]
    BadWindow,
    #[error("circuit_breaker.min_attempts must be at least 1")]
    NoMinAttempts,
    #[error("circuit_breaker.disable_after must be between 1s and 90d")]
    BadDisableAfter,
}

impl LimitError {
    /// The setting at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::BadRate(_) | Self::TooFast(_) => "rate_limit",
            Self::NoInFlight => "max_in_flight",
            Self::BadProbe => "circuit_breaker.probe_after",
            Self::BadPercent => "circuit_breaker.failure_percent",
            Self::BadWindow => "circuit_breaker.window",
            Self::NoMinAttempts => "circuit_breaker.min_attempts",
            Self::BadDisableAfter => "circuit_breaker.disable_after",
        }
    }
}

impl Rate {
    /// The spacing between two sends, rounded up to whole milliseconds so
    /// that the pace never exceeds the limit.
    pub fn interval(&self) -> Duration {
        let per = self.per.as_millis();
        let count = u128::from(self.count.max(1));
        Duration::from_millis(u64::try_from(per.div_ceil(count)).unwrap_or(u64::MAX))
    }
}

impl FromStr for Rate {
    type Err = LimitError;

    fn from_str(s: &str) -> Result<Self, LimitError> {
        let bad = || LimitError::BadRate(s.to_owned());
        let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(bad());
        }
        let rate = Self { count, per };
        if rate.per / rate.count < MIN_INTERVAL {
            return Err(LimitError::TooFast(s.to_owned()));
        }
        Ok(rate)
    }
}

/// A rate is written as text: `20/s`, `90/m`, or `unlimited` (off).
impl PartialSchema for Rate {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            // What FromStr takes, and the off switch.
            .pattern(Some(format!(
                r"^\s*[0-9]+\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$|^{UNLIMITED}$"
            )))
            .description(Some(
                "At most this many requests per second, minute or hour, evenly spaced \
                 (at most 1000/s). Chat formats default to their platform's limit; \
                 \"unlimited\" turns that off",
            ))
            .examples(["20/s", "90/m", UNLIMITED])
            .into()
    }
}

impl ToSchema for Rate {
    fn name() -> std::borrow::Cow<'static, str> {
        "RateLimit".into()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// The circuit breaker's settings (`[subscriptions.circuit_breaker]`).
/// After `failures` attempts in a row fail, the destination's tasks are
/// held and one probe at a time tests it, first after `probe_after`, then
/// at doubling waits (at most 15 min).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CircuitBreaker)]
pub struct Breaker {
    /// Consecutive failed attempts that open the circuit; 0 turns this
    /// rule off.
    #[serde(default = "default_failures")]
    #[schema(default = default_failures)]
    pub failures: u32,
    /// Also open when at least this percent of the attempts of a `window`
    /// failed, once there were `min_attempts` of them. Off unless set: it
    /// makes every success a write of the gate's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100, nullable = false)]
    pub failure_percent: Option<u8>,
    /// The window `failure_percent` counts in: 10s to 1h.
    #[serde(default = "default_window", with = "humantime_serde")]
    #[schema(value_type = crate::config::HumanDuration, default = "1m")]
    pub window: Duration,
    /// Attempts in the window before `failure_percent` applies.
    #[serde(default = "default_min_attempts")]
    #[schema(minimum = 1, default = default_min_attempts)]
    pub min_attempts: u32,
    /// The wait before the first probe (1s to 15m); it doubles after each
    /// failed probe, up to 15 minutes.
    #[serde(default = "default_probe_after", with = "humantime_serde")]
    #[schema(value_type = crate::config::HumanDuration, default = "30s")]
    pub probe_after: Duration,
    /// Disable the subscription when a probe fails and the circuit has
    /// been open this long (1s to 90d). Off unless set.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = crate::config::HumanDuration, examples("3d"))]
    pub disable_after: Option<Duration>,
}

fn default_failures() -> u32 {
    10
}

fn default_window() -> Duration {
    Duration::from_secs(60)
}

fn default_min_attempts() -> u32 {
    20
}

fn default_probe_after() -> Duration {
    Duration::from_secs(30)
}

/// The longest wait between probes: SQS's longest message delay, so that
/// a held task waits in one step.
pub const MAX_PROBE_WAIT: Duration = Duration::from_secs(900);

/// The longest `disable_after`: well past any retention an event has.
const MAX_DISABLE_AFTER: Duration = Duration::from_secs(90 * 86_400);

impl Default for Breaker {
    fn default() -> Self {
        Self {
            failures: default_failures(),
            failure_percent: None,
            window: default_window(),
            min_attempts: default_min_attempts(),
            probe_after: default_probe_after(),
            disable_after: None,
        }
    }
}

impl Breaker {
    /// Whether either rule can open the circuit.
    pub fn enabled(&self) -> bool {
        self.failures > 0 || self.failure_percent.is_some()
    }

    fn check(&self) -> Result<(), LimitError> {
        if !(Duration::from_secs(1)..=MAX_PROBE_WAIT).contains(&self.probe_after) {
            return Err(LimitError::BadProbe);
        }
        if self
            .failure_percent
            .is_some_and(|p| !(1..=100).contains(&p))
        {
            return Err(LimitError::BadPercent);
        }
        if !(Duration::from_secs(10)..=Duration::from_secs(3600)).contains(&self.window) {
            return Err(LimitError::BadWindow);
        }
        if self.min_attempts == 0 {
            return Err(LimitError::NoMinAttempts);
        }
        if self
            .disable_after
            .is_some_and(|d| !(Duration::from_secs(1)..=MAX_DISABLE_AFTER).contains(&d))
        {
            return Err(LimitError::BadDisableAfter);
        }
        Ok(())
    }

    /// The wait before the probe that follows the `opened`-th consecutive
    /// opening (1-based): `probe_after`, doubled each time, capped.
    pub fn probe_wait(&self, opened: u32) -> Duration {
        let doublings = opened.saturating_sub(1).min(20);
        self.probe_after
            .saturating_mul(1 << doublings)
            .min(MAX_PROBE_WAIT)
    }
}

/// What the gate enforces for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Controls {
    pub rate: Option<Rate>,
    pub max_in_flight: Option<u32>,
    pub breaker: Breaker,
}

/// `rate_limit = "unlimited"` turns off a chat format's default.
pub const UNLIMITED: &str = "unlimited";

impl Controls {
    /// The controls of a subscription: its settings, and where it sets no
    /// `rate_limit`, its format's default.
    pub fn new(
        format: Format,
        rate_limit: Option<&str>,
        max_in_flight: Option<u32>,
        breaker: Option<Breaker>,
    ) -> Result<Self, LimitError> {
        let rate = match rate_limit.map(str::trim) {
            Some(UNLIMITED) => None,
            Some(text) => Some(text.parse()?),
            None => default_rate(format),
        };
        if max_in_flight == Some(0) {
            return Err(LimitError::NoInFlight);
        }
        let breaker = breaker.unwrap_or_default();
        breaker.check()?;
        Ok(Self {
            rate,
            max_in_flight,
            breaker,
        })
    }

    /// Whether the gate must keep count of this subscription's sends (the
    /// breaker alone needs only failures).
    pub fn limited(&self) -> bool {
        self.rate.is_some() || self.max_in_flight.is_some()
    }
}

/// The platforms' documented limits for their incoming webhooks:
/// - Slack: 1 message a second;
/// - Discord: 30 messages a minute per channel;
/// - Teams connectors: 60 requests in 30 seconds (they also cap an hour
///   and a day, which this pace alone does not keep under).
pub fn default_rate(format: Format) -> Option<Rate> {
    let (count, per) = match format {
        Format::Raw => return None,
        Format::Slack => (1, 1),
        Format::Discord => (30, 60),
        Format::Teams | Format::TeamsMessagecard => (2, 1),
    };
    Some(Rate {
        count,
        per: Duration::from_secs(per),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_pace_evenly() {
        let r: Rate = "20/s".parse().unwrap();
        assert_eq!(r.interval(), Duration::from_millis(50));
        assert_eq!(r.to_string(), "20/s");
        let r: Rate = "3/s".parse().unwrap();
        // Rounded up: never faster than the limit.
        assert_eq!(r.interval(), Duration::from_millis(334));
        let r: Rate = " 90 / m ".parse().unwrap();
        assert_eq!(r.interval(), Duration::from_millis(667));
        assert_eq!("1000/s".parse::<Rate>().unwrap().interval(), MIN_INTERVAL);
    }

    #[test]
    fn bad_rates_say_what_is_expected() {
        for bad in ["", "20", "0/s", "-1/s", "20/d", "x/s", "20/"] {
            assert!(
                matches!(bad.parse::<Rate>(), Err(LimitError::BadRate(_))),
                "{bad}"
            );
        }
        assert_eq!(
            "1001/s".parse::<Rate>(),
            Err(LimitError::TooFast("1001/s".into()))
        );
    }

    #[test]
    fn chat_formats_get_their_platform_limit_unless_set() {
        let slack = Controls::new(Format::Slack, None, None, None).unwrap();
        assert_eq!(slack.rate.unwrap().interval(), Duration::from_secs(1));
        let discord = Controls::new(Format::Discord, None, None, None).unwrap();
        assert_eq!(discord.rate.unwrap().interval(), Duration::from_secs(2));
        assert!(
            Controls::new(Format::Raw, None, None, None)
                .unwrap()
                .rate
                .is_none()
        );
        let off = Controls::new(Format::Slack, Some("unlimited"), None, None).unwrap();
        assert!(off.rate.is_none());
        let own = Controls::new(Format::Slack, Some("5/m"), Some(2), None).unwrap();
        assert_eq!(own.rate.unwrap().interval(), Duration::from_secs(12));
        assert_eq!(own.max_in_flight, Some(2));
        assert!(own.limited());
    }

    #[test]
    fn the_breaker_is_on_by_default_and_its_probes_back_off() {
        let c = Controls::new(Format::Raw, None, None, None).unwrap();
        assert!(c.breaker.enabled());
        assert!(!c.limited());
        assert_eq!(c.breaker.failures, 10);
        assert_eq!(c.breaker.probe_wait(1), Duration::from_secs(30));
        assert_eq!(c.breaker.probe_wait(2), Duration::from_secs(60));
        assert_eq!(c.breaker.probe_wait(30), MAX_PROBE_WAIT);
        let bad = Breaker {
            failures: 3,
            probe_after: Duration::from_millis(10),
            ..Breaker::default()
        };
        assert_eq!(
            Controls::new(Format::Raw, None, None, Some(bad)),
            Err(LimitError::BadProbe)
        );
        assert_eq!(
            Controls::new(Format::Raw, None, Some(0), None),
            Err(LimitError::NoInFlight)
        );
        for (bad, err) in [
            (r#"{ failure_percent = 0 }"#, LimitError::BadPercent),
            (r#"{ failure_percent = 101 }"#, LimitError::BadPercent),
            (
                r#"{ failure_percent = 50, window = "1s" }"#,
                LimitError::BadWindow,
            ),
            (r#"{ min_attempts = 0 }"#, LimitError::NoMinAttempts),
            (r#"{ disable_after = "0s" }"#, LimitError::BadDisableAfter),
            (r#"{ disable_after = "91d" }"#, LimitError::BadDisableAfter),
        ] {
            let b: Breaker = toml::from_str(&format!("b = {bad}"))
                .map(|t: std::collections::HashMap<String, Breaker>| t["b"])
                .unwrap();
            assert_eq!(
                Controls::new(Format::Raw, None, None, Some(b)),
                Err(err),
                "{bad}"
            );
        }
        let rate_only: std::collections::HashMap<String, Breaker> =
            toml::from_str(r#"b = { failures = 0, failure_percent = 50 }"#).unwrap();
        assert!(rate_only["b"].enabled(), "either rule turns it on");
        let days: std::collections::HashMap<String, Breaker> =
            toml::from_str(r#"b = { disable_after = "3d" }"#).unwrap();
        assert_eq!(
            days["b"].disable_after,
            Some(Duration::from_secs(3 * 86_400))
        );
        assert!(Controls::new(Format::Raw, None, None, Some(days["b"])).is_ok());
        assert_eq!(Breaker::default().disable_after, None, "off unless set");
    }
}
