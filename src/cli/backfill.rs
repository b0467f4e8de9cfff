//! `backfill`: ship what already exists, with progress, and exit when caught up. It shares
//! the checkpoint with `run`, so an interrupted backfill continues where it stopped.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use epost_shipper::pipeline;
use epost_shipper::tail::{Counters, Plan};
use epost_shipper::time::Date;

use super::Failure;
use super::run::load_config;

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The configuration file (TOML)
    #[arg(long, short)]
    pub config: PathBuf,
    /// Only files dated on or after this day (YYYY-MM-DD, from the file name)
    #[arg(long)]
    pub since: Option<Date>,
    /// Only files dated on or before this day (YYYY-MM-DD)
    #[arg(long)]
    pub until: Option<Date>,
}

pub fn run(a: BackfillArgs) -> Result<(), Failure> {
    let config = load_config(&a.config)?;
    if let (Some(s), Some(u)) = (a.since, a.until)
        && s > u
    {
        return Err(Failure::usage(anyhow!("--since {s} is after --until {u}")));
    }
    let plan = Plan {
        exit_when_caught_up: true,
        since: a.since,
        until: a.until,
        first_start_rules: false,
    };
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (c, done) = (counters.clone(), done.clone());
        std::thread::spawn(move || report(&c, &done))
    };
    let result = pipeline::run(&config, plan, stop, counters.clone());
    done.store(true, Ordering::Relaxed);
    if reporter.join().is_err() {
        // only the progress display died; what was shipped is what the pipeline says
        tracing::error!("the progress reporter panicked");
    }
    let summary = result.map_err(Failure::runtime)?;
    let lines = counters.lines.load(Ordering::Relaxed);
    let bytes = counters.bytes.load(Ordering::Relaxed);
    let unreadable = std::mem::take(&mut *counters.unreadable());
    if summary.caught_up && !unreadable.is_empty() {
        eprintln!(
            "backfill finished: {} records from {lines} lines ({}) shipped and acknowledged, but {} file(s) could not be read:",
            summary.records,
            human_bytes(bytes),
            unreadable.len()
        );
        for (path, why) in &unreadable {
            eprintln!("  {}: {why}", path.display());
        }
        Err(Failure::runtime(anyhow!(
            "{} log file(s) could not be read; fix their permissions and run backfill again",
            unreadable.len()
        )))
    } else if summary.caught_up {
        eprintln!(
            "backfill complete: {} records from {lines} lines ({}) shipped and acknowledged",
            summary.records,
            human_bytes(bytes)
        );
        Ok(())
    } else {
        eprintln!(
            "backfill interrupted after {} records; the checkpoint is saved: run it again to continue",
            summary.records
        );
        Err(Failure::runtime(anyhow!("interrupted")))
    }
}

/// A progress bar on a terminal, a plain line every 10 s otherwise.
fn report(c: &Counters, done: &AtomicBool) {
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        b
    });
    let mut last_line = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let bytes = c.bytes.load(Ordering::Relaxed) + c.bytes_skipped.load(Ordering::Relaxed);
        let total = c.bytes_total.load(Ordering::Relaxed);
        let msg = format!(
            "files {}/{} lines {} records {}",
            c.files_done.load(Ordering::Relaxed),
            c.files_total.load(Ordering::Relaxed),
            c.lines.load(Ordering::Relaxed),
            c.records.load(Ordering::Relaxed)
        );
        match &bar {
            Some(b) => {
                b.set_length(total.max(bytes));
                b.set_position(bytes);
                b.set_message(msg);
            }
            None if last_line.elapsed() >= Duration::from_secs(10) => {
                last_line = Instant::now();
                let secs = start.elapsed().as_secs_f64().max(0.001);
                let rate = c.bytes.load(Ordering::Relaxed) as f64 / secs;
                let eta = if rate > 0.0 && total > bytes {
                    format!("{:.0}s", (total - bytes) as f64 / rate)
                } else {
                    "-".into()
                };
                eprintln!(
                    "backfill: {msg} bytes {}/{} rate {}/s ETA {eta}",
                    human_bytes(bytes),
                    human_bytes(total),
                    human_bytes(rate as u64)
                );
            }
            None => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}
