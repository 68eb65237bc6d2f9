//! The functions' logs, set as Lambda's advanced logging controls ask:
//! `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else `INFO`) and
//! `AWS_LAMBDA_LOG_FORMAT` (`JSON` or text). The level is one level for
//! every target: per-target directives would need tracing-subscriber's
//! env-filter, whose regex engine was 230–250 KB of a zip.

use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;

/// The level and format the environment asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub level: LevelFilter,
    pub json: bool,
}

impl LogSettings {
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let level = var("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|| var("RUST_LOG"))
            .and_then(|v| level(v.trim()))
            .unwrap_or(LevelFilter::INFO);
        let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json"));
        Self { level, json }
    }
}

/// A level name as Lambda or `RUST_LOG` spells it. Lambda's `FATAL` has
/// no tracing level: it keeps errors, the most severe there is.
fn level(name: &str) -> Option<LevelFilter> {
    if name.eq_ignore_ascii_case("fatal") {
        return Some(LevelFilter::ERROR);
    }
    LevelFilter::from_str(name).ok()
}

/// Installs the global subscriber: stdout (CloudWatch adds the time), no
/// targets. Called once, first thing in a function's `main`.
pub fn init_logging() {
    let LogSettings { level, json } = LogSettings::from_env();
    let fmt = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level);
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        LogSettings::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn lambdas_log_level_wins_over_rust_log_and_info_is_the_default() {
        assert_eq!(settings(&[]).level, LevelFilter::INFO);
        assert_eq!(settings(&[("RUST_LOG", "debug")]).level, LevelFilter::DEBUG);
        let both = [("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "trace")];
        assert_eq!(settings(&both).level, LevelFilter::WARN);
        let fatal = [("AWS_LAMBDA_LOG_LEVEL", "FATAL")];
        assert_eq!(settings(&fatal).level, LevelFilter::ERROR);
    }

    #[test]
    fn a_level_it_cannot_read_falls_back_to_info() {
        // A per-target directive is not a level: it is not half-applied.
        assert_eq!(
            settings(&[("RUST_LOG", "sluice=debug")]).level,
            LevelFilter::INFO
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "loud")]).level,
            LevelFilter::INFO
        );
    }

    #[test]
    fn json_only_when_lambda_asks_for_it() {
        assert!(!settings(&[]).json);
        assert!(!settings(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).json);
        assert!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).json);
    }
}
