//! The CLI's errors and their exit codes: the one place that decides them.

use std::process::ExitCode;

use serde_json::Value;

/// Documented exit codes (README, "CLI").
pub mod exit {
    /// The command did what it was asked.
    pub const OK: u8 = 0;
    /// The operation failed: not found, a conflict, a read-only entry, a
    /// bulk run that stopped on deliveries it could not replay.
    pub const FAILED: u8 = 1;
    /// Bad usage or bad config: unknown flags, invalid values, a config
    /// file that does not parse or validate, a secret that does not resolve.
    pub const USAGE: u8 = 2;
    /// The backend cannot be reached: no database, the store failed.
    pub const UNAVAILABLE: u8 = 3;
}

/// Every way a command fails. Shown as one line, `sluice: {message}`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unavailable(String),
}

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            Self::Failed(_) => exit::FAILED,
            Self::Usage(_) => exit::USAGE,
            Self::Unavailable(_) => exit::UNAVAILABLE,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// An admin API error response (`{"error","message"}`) as a CLI error.
    /// The status says which kind; the message never holds a secret.
    pub fn from_api(status: u16, body: &Value) -> Self {
        let message = body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the admin API answered {status}"));
        match status {
            400 | 413 | 422 => Self::Usage(message),
            503 => Self::Unavailable(message),
            _ => Self::Failed(message),
        }
    }
}

/// Print the error as one line on stderr, control characters escaped (a
/// message can quote an id the operator typed).
pub fn report(e: &CliError) -> ExitCode {
    eprintln!("sluice: {}", crate::table::clean_line(&e.to_string()));
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn api_statuses_map_to_the_documented_exit_codes() {
        let body = json!({ "error": "x", "message": "no source \"a\"" });
        assert_eq!(CliError::from_api(404, &body).code(), exit::FAILED);
        assert_eq!(CliError::from_api(409, &body).code(), exit::FAILED);
        assert_eq!(CliError::from_api(422, &body).code(), exit::USAGE);
        assert_eq!(CliError::from_api(400, &body).code(), exit::USAGE);
        assert_eq!(CliError::from_api(503, &body).code(), exit::UNAVAILABLE);
        assert_eq!(
            CliError::from_api(404, &body).to_string(),
            "no source \"a\""
        );
        assert_eq!(
            CliError::from_api(500, &json!(null)).to_string(),
            "the admin API answered 500"
        );
    }
}
