//! `sluice verify`: whether a captured request verifies against a source,
//! offline (the admin API's `/admin/sources/{id}/verify`; nothing is
//! committed). On failure it says why; it never prints a secret or an
//! expected signature.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use serde_json::json;

use super::{Ctx, seg};
use crate::args::VerifyArgs;
use crate::error::CliError;
use crate::table::clean_line;

pub async fn run(ctx: &Ctx, a: VerifyArgs) -> Result<(), CliError> {
    let headers = read_headers(&a.headers)?;
    let body = std::fs::read(&a.body).map_err(|e| unreadable(&a.body, &e))?;
    let (body, encoding) = match String::from_utf8(body) {
        Ok(text) => (text, "utf8"),
        Err(e) => (STANDARD.encode(e.as_bytes()), "base64"),
    };
    let mut request = json!({ "headers": headers, "body": body, "body_encoding": encoding });
    if let Some(at) = a.at {
        request["at"] = json!(at);
    }
    if let Some(url) = a.url {
        request["url"] = json!(url);
    }
    let path = format!("/admin/sources/{}/verify", seg(&a.source));
    let v = ctx.call(Method::POST, &path, Some(request)).await?;
    let s = |k: &str| clean_line(v[k].as_str().unwrap_or(""));
    if v["verified"].as_bool() != Some(true) {
        if ctx.json {
            ctx.print(&v, |_| String::new());
        }
        return Err(CliError::Failed(format!(
            "does not verify: {} ({})",
            s("reason"),
            s("error")
        )));
    }
    ctx.print(&v, |_| {
        let kind = if v["handshake"].as_bool() == Some(true) {
            " (a provider handshake: answered, no event)"
        } else {
            ""
        };
        let event_type = match s("event_type") {
            t if t.is_empty() => "(none)".to_owned(),
            t => t,
        };
        format!(
            "verifies: event id {}, type {event_type}{kind}\n",
            s("event_id")
        )
    });
    Ok(())
}

fn unreadable(path: &Path, e: &std::io::Error) -> CliError {
    CliError::Usage(format!("cannot read {}: {e}", path.display()))
}

/// `Name: value` lines, as `curl -v`, a proxy log or a browser shows
/// them; a request line (`POST /hooks/x HTTP/1.1`) and blank lines are
/// skipped.
fn read_headers(path: &Path) -> Result<Vec<(String, String)>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))?;
    parse_headers(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (n == 0 && line.contains(" HTTP/")) {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("line {}: expected `Name: value`", n + 1));
        };
        out.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if out.is_empty() {
        return Err("no headers".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_files_as_tools_show_them() {
        let text = "POST /hooks/github HTTP/1.1\r\nX-GitHub-Event: push\r\n\r\nX-Hub-Signature-256:sha256=ab:cd\n";
        assert_eq!(
            parse_headers(text).unwrap(),
            [
                ("X-GitHub-Event".to_owned(), "push".to_owned()),
                ("X-Hub-Signature-256".to_owned(), "sha256=ab:cd".to_owned()),
            ]
        );
        assert_eq!(
            parse_headers("just text").unwrap_err(),
            "line 1: expected `Name: value`"
        );
        assert_eq!(parse_headers("\n\n").unwrap_err(), "no headers");
    }
}
