//! Subcommands. Errors carry their exit code: 2 for bad usage or config, 1 for failures at
//! run time.

mod backfill;
mod check;
mod check_privacy;
mod cleanup;
mod init;
mod parse;
mod report;
mod run;
mod service;
mod status;
mod trace;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "epost-shipper", version, about = "Ships E-Post Mail Server logs to Elasticsearch, Loki and OpenTelemetry", long_about = None)]
pub struct Cli {
    /// Log level of the shipper's own messages (error, warn, info, debug, trace); RUST_LOG
    /// overrides it
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Format of the shipper's own messages on stderr
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the records of log files (or `-` for stdin, or whole folders) as NDJSON
    Parse(parse::ParseArgs),
    /// Tail the mail work folder and ship every record until stopped (Ctrl-C, SIGTERM)
    Run(run::RunArgs),
    /// Windows service: install, uninstall, or run under the service control manager
    #[command(subcommand, hide = cfg!(not(windows)))]
    Service(service::ServiceCommand),
    /// Ship what already exists, with progress, and exit when everything is acknowledged
    Backfill(backfill::BackfillArgs),
    /// Validate the config, probe every sink, and say which E-Post logs are on (and how to
    /// switch on the others)
    Check(check::CheckArgs),
    /// Write a commented config for this machine's mail work folder and one sink
    Init(init::InitArgs),
    /// Per file and sink: what is checkpointed and how far behind it is
    Status(status::StatusArgs),
    /// Compress or delete old log files that every sink has acknowledged ([retention])
    Cleanup(cleanup::CleanupArgs),
    /// A message's journey by local id or Message-ID, or an address's or IP's messages and sessions
    Trace(trace::TraceArgs),
    /// Mail-flow summary (pflogsumm for E-Post) as text, JSON or an HTML page
    Report(report::ReportArgs),
}

pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 2,
            error: error.into(),
        }
    }
    pub fn runtime(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Service(c) = cli.command {
        // Sets up its own logging: a service has no console (a file in the state folder).
        return service::run(c, &cli.log_level, cli.log_format);
    }
    init_logging(&cli.log_level, cli.log_format)?;
    install_panic_hook();
    match cli.command {
        Command::Parse(a) => parse::run(a),
        Command::Run(a) => run::run(a),
        Command::Service(_) => unreachable!("dispatched above"),
        Command::Backfill(a) => backfill::run(a),
        Command::Check(a) => check::run(a),
        Command::Init(a) => init::run(a),
        Command::Status(a) => status::run(a),
        Command::Cleanup(a) => cleanup::run(a),
        Command::Trace(a) => trace::run(a),
        Command::Report(a) => report::run(a),
    }
}

/// Panics are logged with their thread and place but not their message: a panic while
/// parsing may quote the log text (a slicing panic prints the string), and log text can hold a
/// credential that redaction never got to. The pipeline turns a panic into an error naming the
/// component, and the parser's own panics into `parse_error` records.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if tracing::dispatcher::has_been_set() {
            tracing::error!(thread, at = %at, "panic (its message is not logged: it may quote log text)");
        } else {
            eprintln!("epost-shipper: panic in thread {thread} at {at}");
        }
        if std::env::var_os("EPOST_DEBUG_PANIC").is_some() {
            eprintln!("{info}");
        }
    }));
}

fn init_logging(level: &str, format: LogFormat) -> Result<(), Failure> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(format!(
            "warn,epost_shipper={level},epost_shipper::cli={level}"
        )),
    }
    .map_err(|e| Failure::usage(anyhow::anyhow!("bad --log-level / RUST_LOG: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
