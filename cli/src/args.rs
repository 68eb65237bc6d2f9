//! The command line: every command and flag of `sluice`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Webhook gateway: verify, dedup, commit and deliver webhooks",
    after_help = "Exit codes: 0 ok, 1 operation failed or not found, 2 usage or config error, 3 backend unavailable."
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SLUICE_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Print the admin API's JSON (for scripts) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the gateway's state is: the embedded database (the same flags as
/// `sluice serve`), or with `--aws` a deployment on AWS.
#[derive(Args, Clone)]
pub struct BackendArgs {
    /// The SQLite database file.
    #[arg(long, global = true, default_value = "sluice.db", env = "SLUICE_DB")]
    pub db: PathBuf,
    /// The TOML config file (`serve`: required; `apply`: the default file).
    #[arg(long, short, global = true, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// A KEY=value file for env: secrets (read if present).
    #[arg(long, global = true, default_value = ".env")]
    pub env_file: PathBuf,
    /// Operate a deployment on AWS (implied by --stack and --outputs-file);
    /// without either, its SLUICE_* variables say where it is.
    #[arg(long, global = true)]
    pub aws: bool,
    /// AWS: the CloudFormation (SAM) stack, read with DescribeStacks.
    #[arg(long, global = true, value_name = "NAME", env = "SLUICE_STACK")]
    pub stack: Option<String>,
    /// AWS: the outputs of `terraform output -json`, saved to a file.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "stack")]
    pub outputs_file: Option<PathBuf>,
    /// AWS: the region (default: the profile's, or AWS_REGION).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// AWS: the shared config/credentials profile.
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
}

impl BackendArgs {
    /// Whether the commands go to AWS rather than the embedded database.
    pub fn on_aws(&self) -> bool {
        self.aws || self.stack.is_some() || self.outputs_file.is_some()
    }

    /// Where the deployment on AWS is, as these flags say.
    pub fn aws_options(&self) -> crate::backend::AwsOptions {
        crate::backend::AwsOptions {
            stack: self.stack.clone(),
            outputs_file: self.outputs_file.clone(),
            region: self.region.clone(),
            profile: self.profile.clone(),
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the embedded gateway (SQLite) on one machine.
    Serve(ServeArgs),
    /// Sources: where providers post (`/hooks/{id}`).
    #[command(subcommand)]
    Sources(SourceCmd),
    /// Subscriptions: destinations of a source's events.
    #[command(subcommand, visible_alias = "subs")]
    Subscriptions(SubscriptionCmd),
    /// Pollers: apps without webhooks, polled; each is a source of events.
    #[command(subcommand)]
    Pollers(PollerCmd),
    /// Sync a TOML config file into the gateway, showing the changes first.
    Apply(ApplyArgs),
    /// The event log.
    #[command(subcommand)]
    Events(EventCmd),
    /// Replay one event, or in bulk the deliveries that match filters.
    Replay(ReplayArgs),
    /// The dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCmd),
    /// Whether a captured request verifies against a source, and if not
    /// why (nothing is committed; no secret is ever printed).
    Verify(VerifyArgs),
    /// Every provider preset: the headers it reads, its replay window and
    /// where the event id comes from (offline).
    Providers(ProvidersArgs),
    /// The browser console of a deployment on AWS, served on this machine
    /// (loopback only) over your AWS credentials; prints its URL and a
    /// one-time token. (`sluice serve` serves it itself at /console.)
    Console(ConsoleArgs),
}

/// `sluice console`: where to serve it.
#[derive(Args)]
pub struct ConsoleArgs {
    /// A loopback address (127.0.0.1, [::1]) and port; port 0 picks one.
    #[arg(long, default_value = crate::console_proxy::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
}

#[derive(Args)]
pub struct ProvidersArgs {
    /// Print the README's provider table (Markdown).
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[arg(long)]
    pub source: String,
    /// The request's headers, `Name: value` per line.
    #[arg(long, value_name = "FILE")]
    pub headers: PathBuf,
    /// The request's body, byte for byte.
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,
    /// When it was received (RFC 3339, or a duration ago: 10m), for the
    /// replay window; now by default.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The URL it was sent to, query included (providers that sign it).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// `sluice serve`: where to listen, and the limits a client is held to.
#[derive(Args)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080", env = "SLUICE_LISTEN")]
    pub listen: SocketAddr,
    /// Also serve `/metrics` here, without the admin token (bind it to a
    /// private address). `/metrics` on --listen needs the token.
    #[arg(long, value_name = "ADDR", env = "SLUICE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// A request's headers must arrive within this, or the connection is
    /// closed (also the idle time allowed between keep-alive requests).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// A request's body must arrive whole within this after its headers,
    /// or the answer is 408 and the connection is closed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = crate::serve::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// On shutdown, how long open connections may finish their request
    /// before they are dropped.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub http_grace: Duration,
}

#[derive(Subcommand)]
pub enum SourceCmd {
    /// List every source.
    List,
    /// One source.
    Show { id: String },
    /// Create a source.
    Add(SourceAdd),
    /// Delete a source (its subscriptions first).
    Rm { id: String },
    /// Rotate a verification secret: add the new one (both verify), then
    /// remove the old one once the provider signs with the new one.
    Rotate(SourceRotate),
    /// Serve the source's webhooks again.
    Enable { id: String },
    /// Answer the source's webhooks 404 until enabled.
    Disable { id: String },
}

#[derive(Args)]
pub struct SourceAdd {
    pub id: String,
    /// Provider preset: github, stripe, slack, shopify, standard-webhooks,
    /// gitlab, twilio, … or hmac (`sluice providers` lists them all).
    #[arg(long)]
    pub provider: String,
    /// A secret reference (env:NAME, ssm:/path); repeat for several.
    #[arg(long = "secret", value_name = "REF")]
    pub secrets: Vec<String>,
    /// Read one secret value from stdin and keep it in the database.
    #[arg(long)]
    pub secret_stdin: bool,
    /// Replay window in seconds (timestamped schemes).
    #[arg(long)]
    pub tolerance_secs: Option<u64>,
    /// How long an event id is remembered, e.g. 7d.
    #[arg(long)]
    pub dedupe_window: Option<String>,
    #[arg(long)]
    pub max_body_bytes: Option<u64>,
    /// Provider "hmac": its settings as JSON, as in the config file's [sources.hmac].
    #[arg(long, value_name = "JSON")]
    pub hmac: Option<String>,
    /// Provider "token": where the token comes, as JSON, as in the config
    /// file's [sources.token]: {"header": "X-Api-Key"} or {"query": "key"}.
    #[arg(long, value_name = "JSON")]
    pub token: Option<String>,
    /// Provider "jwt": its settings as JSON, as in the config file's
    /// [sources.jwt].
    #[arg(long, value_name = "JSON")]
    pub jwt: Option<String>,
    /// The URL given to the provider, for providers that sign it (twilio,
    /// square, hubspot, trello): scheme, host and path, no query.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Provider meta: the verify token typed into the app's webhook
    /// settings, as a secret reference (env:NAME, ssm:/path).
    #[arg(long, value_name = "REF")]
    pub verify_token: Option<String>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("change").required(true).args(["add", "add_stdin", "remove"])))]
pub struct SourceRotate {
    pub id: String,
    /// Step one: add this secret reference.
    #[arg(long, value_name = "REF")]
    pub add: Option<String>,
    /// Step one: add a secret value read from stdin (kept in the database).
    #[arg(long)]
    pub add_stdin: bool,
    /// Step two: remove this secret reference.
    #[arg(long, value_name = "REF")]
    pub remove: Option<String>,
}

#[derive(Subcommand)]
pub enum SubscriptionCmd {
    /// List subscriptions.
    List {
        #[arg(long)]
        source: Option<String>,
    },
    /// One subscription.
    Show { id: String },
    /// Create a subscription; prints its new signing secret, once.
    Add(Box<SubscriptionAdd>),
    /// Delete a subscription.
    Rm { id: String },
    /// A new signing secret, printed once; the old one keeps signing for the overlap.
    Rotate {
        id: String,
        /// How long the old secret keeps signing, e.g. 24h (the default), 0s.
        #[arg(long)]
        overlap: Option<String>,
    },
    /// Route events to it again.
    Enable { id: String },
    /// Stop routing events to it.
    Disable { id: String },
}

#[derive(Args)]
pub struct SubscriptionAdd {
    /// Its id (generated when absent).
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long)]
    pub source: String,
    /// The destination URL (https; http and private addresses need --allow-local).
    #[arg(long)]
    pub url: String,
    /// Event types or globs (push, pull_request.*, *); comma-separated or repeated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub events: Vec<String>,
    /// raw, slack, discord or teams.
    #[arg(long)]
    pub format: Option<String>,
    /// Chat formats: the message text as a minijinja template.
    #[arg(long)]
    pub template: Option<String>,
    /// The whole JSON body as a minijinja template.
    #[arg(long)]
    pub payload_template: Option<String>,
    /// Only events this minijinja expression is true for:
    /// 'payload.action == "opened" and not payload.pull_request.draft'.
    #[arg(long)]
    pub filter: Option<String>,
    /// Waits between attempts, comma-separated: 5s,5m,30m.
    #[arg(long, value_delimiter = ',')]
    pub retry_schedule: Option<Vec<String>>,
    /// Allow http:// and private addresses (local use only).
    #[arg(long)]
    pub allow_local: bool,
    /// At most this many requests a second, minute or hour: 20/s, 90/m
    /// ("unlimited" turns off a chat format's default).
    #[arg(long)]
    pub rate_limit: Option<String>,
    /// At most this many requests out at once.
    #[arg(long)]
    pub max_in_flight: Option<u32>,
    /// Open the circuit after this many failed attempts in a row (0: never).
    #[arg(long)]
    pub breaker_failures: Option<u32>,
    /// The first probe of an open circuit after this long: 30s.
    #[arg(long)]
    pub breaker_probe_after: Option<String>,
    /// Disable the subscription when a probe fails and the circuit has been
    /// open this long: 3d (off unless set).
    #[arg(long)]
    pub breaker_disable_after: Option<String>,
}

#[derive(Subcommand)]
pub enum PollerCmd {
    /// List every poller.
    List,
    /// One poller.
    Show { id: String },
    /// Create a poller.
    Add(Box<PollerAdd>),
    /// Delete a poller (its subscriptions first).
    Rm { id: String },
    /// Poll it again.
    Enable { id: String },
    /// Stop polling it.
    Disable { id: String },
    /// Poll it now, due or not, and print what it emitted.
    Run {
        id: String,
        /// Fetch and print what would be emitted; commit and store nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args)]
pub struct PollerAdd {
    /// Its id: the source id of its events (subscriptions name it as --source).
    #[arg(long)]
    pub id: String,
    /// The list endpoint or feed (https; http and private addresses need --allow-local).
    #[arg(long)]
    pub url: String,
    /// json (a document holding an array of items; the default) or feed (RSS or Atom).
    #[arg(long)]
    pub format: Option<String>,
    /// json: a JSON pointer to each item's id, e.g. /id (required for json).
    #[arg(long)]
    pub item_id: Option<String>,
    /// json: a JSON pointer to the array of items (the document itself if unset).
    #[arg(long)]
    pub items: Option<String>,
    /// The event type: a JSON pointer into the item (/type), or a fixed string.
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// A JSON pointer to an item's time: the order new items are emitted in.
    #[arg(long)]
    pub timestamp: Option<String>,
    /// A query parameter carrying the newest timestamp seen (needs --timestamp).
    #[arg(long)]
    pub since_param: Option<String>,
    /// How often it is polled, e.g. 5m (60s unless set; at least 10s).
    #[arg(long)]
    pub interval: Option<String>,
    /// A request header, NAME=VALUE; repeat for several. A credential
    /// (Authorization, Cookie, X-Api-Key) must be a secret reference:
    /// Authorization=env:ITEMS_TOKEN.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Pages followed through Link rel="next" in one poll (5 unless set).
    #[arg(long)]
    pub max_pages: Option<u32>,
    /// Emit what the first poll finds (otherwise it is only recorded).
    #[arg(long)]
    pub emit_existing: bool,
    /// How long an item id is remembered, e.g. 7d.
    #[arg(long)]
    pub dedupe_window: Option<String>,
    /// The largest response read (4 MiB unless set).
    #[arg(long)]
    pub max_response_bytes: Option<u64>,
    /// Allow http:// and private addresses (local use only).
    #[arg(long)]
    pub allow_local: bool,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// The config file (default: --config / SLUICE_CONFIG).
    pub file: Option<PathBuf>,
    /// Apply without asking.
    #[arg(long, short)]
    pub yes: bool,
    /// Only show the changes.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
}

#[derive(Subcommand)]
pub enum EventCmd {
    /// Events, newest first.
    List(EventFilters),
    /// One event: headers, body, and per destination its deliveries and attempts.
    Show { id: String },
}

#[derive(Args)]
pub struct EventFilters {
    #[arg(long)]
    pub source: Option<String>,
    /// An event type or glob.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// pending, delivered, failed or unrouted.
    #[arg(long)]
    pub status: Option<String>,
    /// RFC 3339 time, or an age such as 24h.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many (1-500, default 50).
    #[arg(long)]
    pub limit: Option<u32>,
    /// The next page, from a previous listing.
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The event to replay ({source}#{event id}); without it, a bulk replay.
    pub event: Option<String>,
    /// Only to this subscription.
    #[arg(long)]
    pub subscription: Option<String>,
    /// Bulk: only this source's events.
    #[arg(long)]
    pub source: Option<String>,
    /// Bulk: deliveries in this state, failed (the default) or delivered.
    #[arg(long)]
    pub status: Option<String>,
    /// Bulk: events received since (RFC 3339, or an age such as 24h).
    #[arg(long)]
    pub since: Option<String>,
    /// Bulk: events received before.
    #[arg(long)]
    pub until: Option<String>,
    /// Bulk: replay at most this many deliveries.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Bulk: only show what would be replayed.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand)]
pub enum DlqCmd {
    /// Dead letters, oldest first.
    List {
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        subscription: Option<String>,
        /// At most this many (1-500, default 50).
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Replay dead letters to their subscriptions (which removes them).
    Redrive(RedriveArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all"])))]
pub struct RedriveArgs {
    /// Dead-letter ids from `sluice dlq list`.
    pub ids: Vec<String>,
    /// Every dead letter (narrowed by --source / --subscription).
    #[arg(long)]
    pub all: bool,
    #[arg(long, requires = "all")]
    pub source: Option<String>,
    #[arg(long, requires = "all")]
    pub subscription: Option<String>,
    /// Only show what would be redriven.
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn backend_flags_go_before_or_after_the_command() {
        let cli =
            Cli::try_parse_from(["sluice", "events", "list", "--db", "x.db", "--json"]).unwrap();
        assert_eq!(cli.backend.db, PathBuf::from("x.db"));
        assert!(cli.json);
        let cli = Cli::try_parse_from(["sluice", "--db", "y.db", "dlq", "list"]).unwrap();
        assert_eq!(cli.backend.db, PathBuf::from("y.db"));
        // redrive needs ids or --all, not both.
        assert!(Cli::try_parse_from(["sluice", "dlq", "redrive"]).is_err());
        assert!(Cli::try_parse_from(["sluice", "dlq", "redrive", "7", "--all"]).is_err());
        assert!(Cli::try_parse_from(["sluice", "apply", "--yes", "--dry-run"]).is_err());
    }

    #[test]
    fn aws_is_chosen_by_flag_stack_or_outputs_file() {
        let parse = |args: &[&str]| {
            let mut all = vec!["sluice"];
            all.extend(args);
            Cli::try_parse_from(all).unwrap().backend
        };
        assert!(!parse(&["events", "list", "--db", "x.db"]).on_aws());
        let b = parse(&[
            "--aws",
            "--region",
            "eu-west-1",
            "--profile",
            "ops",
            "dlq",
            "list",
        ]);
        assert!(b.on_aws());
        assert_eq!(b.region.as_deref(), Some("eu-west-1"));
        assert_eq!(b.profile.as_deref(), Some("ops"));
        let b = parse(&["events", "list", "--stack", "sluice-prod"]);
        assert!(b.on_aws());
        assert_eq!(b.stack.as_deref(), Some("sluice-prod"));
        assert!(parse(&["sources", "list", "--outputs-file", "tf.json"]).on_aws());
        assert!(
            Cli::try_parse_from([
                "sluice",
                "--stack",
                "a",
                "--outputs-file",
                "b",
                "dlq",
                "list"
            ])
            .is_err()
        );
    }
}
