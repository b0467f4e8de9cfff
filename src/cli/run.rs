//! `run`: the daemon.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::anyhow;
use clap::Args;
use epost_shipper::config::Config;
use epost_shipper::pipeline;
use epost_shipper::tail::{Counters, Plan};

use super::Failure;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (TOML)
    #[arg(long, short)]
    pub config: PathBuf,
}

pub fn load_config(path: &std::path::Path) -> Result<Config, Failure> {
    Config::load(path).map_err(Failure::usage)
}

pub fn run(a: RunArgs) -> Result<(), Failure> {
    let config = load_config(&a.config)?;
    run_config(&config, Arc::new(AtomicBool::new(false)))
}

/// Shared with the Windows service, which stops the run through `stop`.
pub fn run_config(config: &Config, stop: Arc<AtomicBool>) -> Result<(), Failure> {
    tracing::info!(
        config = %config.path.display(),
        workdirs = ?config.source.workdirs,
        sinks = ?config.sinks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        "epost-shipper {} starting", env!("CARGO_PKG_VERSION")
    );
    let summary = pipeline::run(config, Plan::follow(), stop, Arc::new(Counters::default()))
        .map_err(Failure::runtime)?;
    if summary.timed_out {
        return Err(Failure::runtime(anyhow!(
            "stopped with unacknowledged batches (shutdown_timeout); they will be sent again on the next start"
        )));
    }
    tracing::info!(
        records = summary.records,
        "stopped cleanly; checkpoint written"
    );
    Ok(())
}
