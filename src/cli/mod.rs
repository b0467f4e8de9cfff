//! Subcommands. Errors carry their exit code: 2 for bad usage or config, 1 for failures at
//! run time.

mod parse;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "epost-shipper", version, about = "Ships E-Post Mail Server logs to Elasticsearch, Loki and OpenTelemetry", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the records of log files (or `-` for stdin, or whole folders) as NDJSON
    Parse(parse::ParseArgs),
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
    match cli.command {
        Command::Parse(a) => parse::run(a),
    }
}
