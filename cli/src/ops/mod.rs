//! The operator commands. Each is one or more admin API requests handled
//! in-process ([`sluice::admin::handle_trusted`]): the same routes,
//! validation and errors as `/admin/` over HTTP, so no operation is written
//! twice. This module maps commands to requests; `render` turns the
//! answers into tables (`--json` prints them as they are).

mod apply;
mod bulk;
mod config;
mod events;
mod providers;
mod verify;

use bytes::Bytes;
use http::{Method, Request};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use sluice::admin::{Admin, handle_trusted};

use crate::args::{BackendArgs, Command};
use crate::backend::{self, Backend, BackendOptions, EmbeddedOptions};
use crate::error::CliError;

/// What every command works with.
pub struct Ctx {
    backend: Backend,
    json: bool,
}

impl Ctx {
    fn admin(&self) -> &Admin {
        &self.backend.admin
    }

    /// One admin request; a non-2xx answer becomes the error it means.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .body(body)
            .map_err(|e| CliError::Usage(format!("cannot make the request for {path:?}: {e}")))?;
        // The operator runs the API in this process: a 5xx says why.
        req.extensions_mut().insert(sluice::admin::api::ShowDetail);
        let resp = handle_trusted(self.admin(), req).await;
        let status = resp.status().as_u16();
        let value = if resp.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(resp.body()).map_err(|e| {
                CliError::Failed(format!(
                    "the admin API answered {status} with bad JSON: {e}"
                ))
            })?
        };
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(CliError::from_api(status, &value))
        }
    }

    /// Print the answer: its JSON with `--json`, else `text` of it.
    fn print(&self, value: &Value, text: impl FnOnce(&Value) -> String) {
        if self.json {
            println!("{}", pretty(value));
        } else {
            print!("{}", text(value));
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// One path segment, percent-encoded (event ids hold `#`).
fn seg(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// `path?k=v&…` with the given parameters only.
fn with_query(path: &str, params: &[(&str, Option<String>)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in params {
        if let Some(v) = v {
            q.append_pair(k, v);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", q.finish())
    } else {
        path.to_owned()
    }
}

/// Run an operator command (anything but `serve`).
pub async fn run(command: Command, backend_args: &BackendArgs, json: bool) -> Result<(), CliError> {
    if let Command::Providers(a) = &command {
        providers::run(a, json);
        return Ok(());
    }
    let opts = if backend_args.on_aws() {
        BackendOptions::Aws(backend_args.aws_options())
    } else {
        BackendOptions::Embedded(EmbeddedOptions {
            db: backend_args.db.clone(),
            env_file: backend_args.env_file.clone(),
            create: matches!(command, Command::Apply(_)),
        })
    };
    let backend = backend::open(&opts).await?;
    let ctx = Ctx { backend, json };
    match command {
        Command::Serve { .. } | Command::Console(_) => Err(CliError::Usage(
            "serve and console run a server, not one command".into(),
        )),
        Command::Sources(c) => config::sources(&ctx, c).await,
        Command::Subscriptions(c) => config::subscriptions(&ctx, c).await,
        Command::Pollers(c) => config::pollers(&ctx, c).await,
        Command::Apply(a) => apply::run(&ctx, a, backend_args.config.as_deref()).await,
        Command::Events(c) => events::run(&ctx, c).await,
        Command::Replay(a) => bulk::replay(&ctx, a).await,
        Command::Dlq(c) => bulk::dlq(&ctx, c).await,
        Command::Verify(a) => verify::run(&ctx, a).await,
        Command::Providers(_) => Ok(()),
    }
}
