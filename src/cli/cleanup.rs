//! `cleanup`: the retention job, once. Compresses or deletes old log files that every sink has
//! acknowledged; see `epost_shipper::retention` for the rules.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use epost_shipper::checkpoint::{Loaded, Store};
use epost_shipper::retention::{self, Outcome, Report};

use super::Failure;
use super::backfill::human_bytes;
use super::run::load_config;

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The configuration file (TOML)
    #[arg(long, short)]
    pub config: PathBuf,
    /// Print what would be done and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: CleanupArgs) -> Result<(), Failure> {
    let config = load_config(&a.config)?;
    let r = &config.retention;
    let (snap, loaded) = Store::new(&config.source.state_dir).load();
    match &loaded {
        Loaded::Fresh => println!(
            "no checkpoint yet in {}: nothing is known to be shipped",
            config.source.state_dir.display()
        ),
        Loaded::Current => {}
        // Older offsets never claim more than was shipped, so using them is safe.
        Loaded::Previous(why) => println!("checkpoint: previous generation in use ({why})"),
        Loaded::Unusable(why) => {
            println!("checkpoint unusable ({why}): nothing is treated as shipped")
        }
    }
    let today = retention::today(config.source.zone);
    let action = format!("{:?}", r.action).to_lowercase();
    println!(
        "retention: keep_days = {}, action = {action}, today = {today}{}",
        r.keep_days,
        if a.dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        }
    );
    let report = retention::apply(retention::plan(&config, &snap, today), a.dry_run);
    print_report(&report, &config.source.workdirs);
    match report.failed() {
        0 => Ok(()),
        n => Err(Failure::runtime(anyhow!(
            "{n} file(s) could not be cleaned up (see above); the others were"
        ))),
    }
}

fn short(path: &Path, workdirs: &[PathBuf]) -> String {
    workdirs
        .iter()
        .find_map(|w| path.strip_prefix(w).ok())
        .unwrap_or(path)
        .display()
        .to_string()
}

// Long on purpose: one row per action, one `match` arm per outcome: a table, read top to bottom.
fn print_report(report: &Report, workdirs: &[PathBuf]) {
    let mut rows = Vec::new();
    let mut too_recent = 0;
    for e in &report.entries {
        let a = &e.action;
        let (what, detail) = match &e.outcome {
            Outcome::Compressed { gz, gz_size } => (
                "gzip",
                format!(
                    "→ {} ({}), verified",
                    gz.file_name().unwrap_or_default().to_string_lossy(),
                    human_bytes(*gz_size)
                ),
            ),
            Outcome::Deleted => ("delete", "deleted".to_string()),
            Outcome::WouldCompress => ("gzip", "would compress".to_string()),
            Outcome::WouldDelete => ("delete", "would delete".to_string()),
            Outcome::Kept(retention::Keep::TooRecent) => {
                // the bulk of any folder; counted in the summary only
                too_recent += 1;
                continue;
            }
            Outcome::Kept(k) => ("keep", k.to_string()),
            Outcome::Failed(err) => ("FAILED", err.to_string()),
        };
        let age = match a.dated_by {
            retention::DatedBy::Name => format!("{}d", a.age_days),
            retention::DatedBy::Modified => format!("{}d (mtime)", a.age_days),
        };
        rows.push((
            what,
            human_bytes(a.size),
            age,
            short(&a.path, workdirs),
            detail,
        ));
    }
    if !rows.is_empty() {
        println!();
        println!(
            "{:<7} {:>10} {:>11}  {:<36} WHY / RESULT",
            "ACTION", "SIZE", "AGE", "FILE"
        );
        for (what, size, age, file, detail) in &rows {
            println!("{what:<7} {size:>10} {age:>11}  {file:<36} {detail}");
        }
    }
    println!();
    let (mut gz_from, mut gz_to, mut deleted) = (0u64, 0u64, 0u64);
    for e in &report.entries {
        match &e.outcome {
            Outcome::Compressed { gz_size, .. } => {
                gz_from += e.action.size;
                gz_to += gz_size;
            }
            Outcome::WouldCompress => gz_from += e.action.size,
            Outcome::Deleted | Outcome::WouldDelete => deleted += e.action.size,
            _ => {}
        }
    }
    let mut kept: Vec<String> = report
        .kept()
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if kept.is_empty() {
        kept.push("none".into());
    }
    let (c, d) = (report.compressed(), report.deleted());
    if report.dry_run {
        println!(
            "summary (dry run): would compress {c} file(s) ({}), would delete {d} ({}); kept: {}",
            human_bytes(gz_from),
            human_bytes(deleted),
            kept.join(", ")
        );
    } else {
        println!(
            "summary: compressed {c} file(s) ({} → {}), deleted {d} ({}); {} freed; {} failed; kept: {}",
            human_bytes(gz_from),
            human_bytes(gz_to),
            human_bytes(deleted),
            human_bytes(report.bytes_freed()),
            report.failed(),
            kept.join(", ")
        );
    }
    if too_recent > 0 {
        println!("({too_recent} file(s) not older than keep_days are not listed)");
    }
}
