//! `check`: validate the config (errors name file, line, column and key), probe every sink
//! (reachable, authenticated, which server), list what the work folders hold, and say for
//! every E-Post log whether it is being written and, if not, how to switch it on.
//!
//! Without `--config` only the mail work folder is checked: `--folder DIR`, or on Windows
//! the folder E-Post's registry names (`MailSpoolDir`), else `C:\mail`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use epost_shipper::config::{Config, redact_text};
use epost_shipper::discover::scan::scan;
use epost_shipper::epost::survey::{SurveyError, local_date, survey};
use epost_shipper::epost::{Origin, detect_work_folder};
use epost_shipper::sink::Sink;

use super::Failure;
use super::backfill::human_bytes;
use super::run::load_config;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file (TOML); without it only the mail work folder is checked
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The mail work folder to check (default: the config's; without a config, on Windows,
    /// E-Post's registry value MailSpoolDir, then C:\mail)
    #[arg(long)]
    pub folder: Option<PathBuf>,
}

pub fn run(a: CheckArgs) -> Result<(), Failure> {
    let Some(path) = &a.config else {
        let (dir, origin) = match a.folder {
            Some(d) => (d, Origin::Given),
            None => detect_work_folder().ok_or_else(|| {
                Failure::usage(anyhow!(
                    "no mail work folder found: give --folder DIR (E-Post's メール作業フォルダ, e.g. C:\\mail) or --config FILE"
                ))
            })?,
        };
        return if epost_report(&dir, &origin) {
            Ok(())
        } else {
            Err(Failure::runtime(anyhow!("some checks failed (see above)")))
        };
    };
    let config = load_config(path)?;
    let mut ok = config_report(&config);
    let folders: Vec<(PathBuf, Origin)> = match &a.folder {
        Some(d) => vec![(d.clone(), Origin::Given)],
        None => config
            .source
            .workdirs
            .iter()
            .map(|w| (w.clone(), Origin::Config))
            .collect(),
    };
    registry_disagrees(&folders);
    for (dir, origin) in &folders {
        ok &= epost_report(dir, origin);
    }
    ok &= sinks_report(&config)?;
    if ok {
        println!("all well");
        Ok(())
    } else {
        Err(Failure::runtime(anyhow!("some checks failed (see above)")))
    }
}

/// Every E-Post log of `dir`: on, stale, quiet or off, and how to switch it on. False if the
/// folder is missing or not E-Post's.
fn epost_report(dir: &Path, origin: &Origin) -> bool {
    let today = local_date(std::time::SystemTime::now());
    let registry = |s: &epost_shipper::epost::enable::Switch| {
        epost_shipper::platform::registry_dword(&s.subkey(), s.value)
    };
    println!(
        "E-Post mail work folder {} ({}):",
        dir.display(),
        origin.describe()
    );
    match survey(dir, today, &registry) {
        Ok(s) => {
            for l in s.lines() {
                println!("{l}");
            }
            println!("{}", s.summary());
            true
        }
        Err(e @ SurveyError::OneKind(..)) => {
            println!("  note: {e}");
            true
        }
        Err(e) => {
            println!("  FAILED: {e}");
            false
        }
    }
}

/// On Windows: a config that reads another folder than the one E-Post writes to.
fn registry_disagrees(folders: &[(PathBuf, Origin)]) {
    let Some((dir, Origin::Registry)) = detect_work_folder() else {
        return;
    };
    let same = |p: &Path| {
        p.to_string_lossy()
            .trim_end_matches(['\\', '/'])
            .eq_ignore_ascii_case(&dir.to_string_lossy())
    };
    if !folders.iter().any(|(p, _)| same(p)) {
        println!(
            "note: E-Post writes to {} ({}), which this check does not read",
            dir.display(),
            Origin::Registry.describe()
        );
    }
}

/// The config's own checks and what the work folders hold. False if a log file cannot be read.
fn config_report(config: &Config) -> bool {
    println!("config {}: OK", config.path.display());
    for w in &config.warnings {
        println!("warning: {w}");
    }
    println!(
        "state folder {}: writable",
        config.source.state_dir.display()
    );
    let mut ok = true;
    // what E-Post has written
    let files = scan(&config.source.workdirs, &config.source.kinds);
    for w in &config.source.workdirs {
        let mine: Vec<_> = files
            .iter()
            .filter(|s| s.file.path.starts_with(w))
            .collect();
        println!("work folder {}: {} log files", w.display(), mine.len());
        let mut newest: BTreeMap<(String, String), (&str, u64)> = BTreeMap::new();
        for s in &mine {
            let key = (
                s.file.kind.name().to_string(),
                s.file
                    .host
                    .clone()
                    .unwrap_or_else(|| "(no host folder)".into()),
            );
            let name = s.file.file_name();
            let e = newest.entry(key).or_insert((name, s.size));
            if name > e.0 {
                *e = (name, s.size);
            }
        }
        for ((kind, host), (name, size)) in &newest {
            println!(
                "  {kind:<13} {host:<20} newest {name} ({})",
                human_bytes(*size)
            );
        }
        if mine.is_empty() {
            println!("  (no E-Post logs yet: expected <kind>/<COMPUTERNAME>/YYMMDD.log)");
        }
    }

    // Every log file must be readable by whoever runs the shipper (the service account):
    // opened as the tailer opens it and read. Taken from the walk rather than the scan,
    // which leaves out what it cannot even stat (a dangling link).
    let unreadable = unreadable_files(&config.source.workdirs, &config.source.kinds);
    if !unreadable.is_empty() {
        ok = false;
        println!("unreadable log files: {}", unreadable.len());
        for (path, why) in &unreadable {
            println!("  {}: {why}", path.display());
        }
    }

    // which personal fields leave the machine, and where ([privacy])
    super::check_privacy::print(config);
    ok
}

/// Every sink, probed. False if one fails.
fn sinks_report(config: &Config) -> Result<bool, Failure> {
    let mut ok = true;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    for s in &config.sinks {
        let sink = match Sink::new(s, &config.source.state_dir) {
            Ok(k) => k,
            Err(e) => {
                println!(
                    "sink {} ({}): FAILED: {}",
                    s.name,
                    s.config.type_name(),
                    redact_text(&e.to_string())
                );
                ok = false;
                continue;
            }
        };
        let probe = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(15), sink.probe()).await
        });
        match probe {
            Ok(Ok(p)) => println!(
                "sink {} ({}): OK, {}",
                s.name,
                s.config.type_name(),
                redact_text(&p.server)
            ),
            Ok(Err(e)) => {
                println!(
                    "sink {} ({}): FAILED: {}",
                    s.name,
                    s.config.type_name(),
                    redact_text(&e.to_string())
                );
                ok = false;
            }
            Err(_) => {
                println!(
                    "sink {} ({}): FAILED: no answer within 15 s",
                    s.name,
                    s.config.type_name()
                );
                ok = false;
            }
        }
    }
    Ok(ok)
}

/// The log files of the work folders that cannot be opened and read, with the OS error.
fn unreadable_files(
    workdirs: &[PathBuf],
    kinds: &[epost_shipper::kind::Kind],
) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for w in workdirs {
        // a folder that cannot be listed is reported by the scan above
        let Ok(files) = epost_shipper::discover::walk(w) else {
            continue;
        };
        for f in files {
            if !kinds.contains(&f.kind) || f.file_name().to_ascii_lowercase().ends_with(".gz") {
                continue;
            }
            if let Err(why) = readable(&f.path) {
                out.push((f.path, why));
            }
        }
    }
    out
}

fn readable(path: &std::path::Path) -> Result<(), String> {
    use std::io::Read;
    // not a regular file (a FIFO would block the open): the tailer cannot read it either
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut f = epost_shipper::platform::open_shared(path).map_err(|e| e.to_string())?;
    f.read(&mut [0u8; 1]).map_err(|e| e.to_string())?;
    Ok(())
}
