//! The `sluice` binary.

use std::process::ExitCode;

use clap::Parser;
use sluice_cli::args::{Cli, Command, LogFormat};
use sluice_cli::error::{CliError, exit, report};
use sluice_cli::serve::{Gateway, ServeOptions, raise_open_file_limit};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // One line, never a backtrace, whatever goes wrong.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("sluice: internal error: {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    let serving = matches!(cli.command, Command::Serve(_) | Command::Console(_));
    init_tracing(cli.log_format, serving);
    match cli.command {
        Command::Serve(args) => {
            if cli.backend.aws {
                return report(&CliError::Usage(
                    "serve runs the embedded gateway; --aws is for the operator commands".into(),
                ));
            }
            let Some(config) = cli.backend.config else {
                return report(&CliError::Usage(
                    "serve needs --config FILE (or SLUICE_CONFIG)".into(),
                ));
            };
            // Before anything opens a file: the limit bounds the connections.
            raise_open_file_limit();
            let mut opts = ServeOptions::new(config, args.listen, cli.backend.db);
            opts.env_file = cli.backend.env_file;
            opts.metrics_listen = args.metrics_listen;
            opts.header_timeout = args.header_timeout;
            opts.body_timeout = args.body_timeout;
            opts.max_connections = args.max_connections;
            opts.http_grace = args.http_grace;
            let gateway = match Gateway::start(&opts).await {
                Ok(g) => g,
                Err(e) => return report(&CliError::Usage(e.to_string())),
            };
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight deliveries");
            gateway.shutdown().await;
            ExitCode::SUCCESS
        }
        Command::Console(args) => {
            let server = match sluice_cli::console_proxy::start(&cli.backend, args.listen).await {
                Ok(s) => s,
                Err(e) => return report(&e.into()),
            };
            eprint!("{}", server.banner());
            shutdown_signal().await;
            server.shutdown().await;
            ExitCode::SUCCESS
        }
        command => match sluice_cli::ops::run(command, &cli.backend, cli.json).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&e),
        },
    }
}

/// Help and version as clap prints them; a usage error as one line.
fn usage(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::from(exit::OK)
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(exit::USAGE)
        }
        _ => {
            // The message is the first paragraph (a list of missing
            // arguments runs over several lines); the usage text follows.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            let line = message.join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            report(&CliError::Usage(format!("{line} (see sluice --help)")))
        }
    }
}

/// The gateway logs at info; an operator command only says what went wrong
/// (its answer is on stdout, its error on one stderr line).
fn init_tracing(format: LogFormat, serving: bool) {
    let default = if serving { "info" } else { "error" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
