//! The `sluice` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use sluice_cli::serve::{Gateway, ServeOptions};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Webhook gateway: verify, dedup, commit and deliver webhooks"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SLUICE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded gateway (SQLite) on one machine.
    Serve {
        /// The TOML config file.
        #[arg(long, short, env = "SLUICE_CONFIG")]
        config: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080", env = "SLUICE_LISTEN")]
        listen: SocketAddr,
        /// The SQLite database file (created if missing).
        #[arg(long, default_value = "sluice.db", env = "SLUICE_DB")]
        db: PathBuf,
        /// A KEY=value file for env: secrets (read if present).
        #[arg(long, default_value = ".env")]
        env_file: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve {
            config,
            listen,
            db,
            env_file,
        } => {
            let mut opts = ServeOptions::new(config, listen, db);
            opts.env_file = env_file;
            let gateway = match Gateway::start(&opts).await {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("sluice: {e}");
                    return ExitCode::from(2);
                }
            };
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight deliveries");
            gateway.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
