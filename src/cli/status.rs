//! `status`: per file and sink, what is checkpointed and how far behind it is.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use epost_shipper::checkpoint::{Loaded, Store};
use epost_shipper::discover::scan::scan;
use serde_json::json;

use super::Failure;
use super::backfill::human_bytes;
use super::run::load_config;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The configuration file (TOML)
    #[arg(long, short)]
    pub config: PathBuf,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

fn when(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

// Long on purpose: the `status` table: gather the rows, then print them, in one place.
pub fn run(a: StatusArgs) -> Result<(), Failure> {
    let config = load_config(&a.config)?;
    let (snap, loaded) = Store::new(&config.source.state_dir).load();
    let by_path: HashMap<&str, _> = snap.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut rows = Vec::new();
    let mut behind_total = 0u64;
    for s in scan(&config.source.workdirs, &config.source.kinds) {
        let path = s.file.path.to_string_lossy().into_owned();
        let cp = by_path.get(path.as_str());
        let offset = cp.map(|f| f.offset);
        let behind = s.size.saturating_sub(offset.unwrap_or(0));
        if cp.is_some() {
            behind_total += behind;
        }
        rows.push(json!({
            "path": path,
            "kind": s.file.kind.name(),
            "host": s.file.host,
            "size": s.size,
            "offset": offset,
            "behind": cp.map(|_| behind),
            "tracked": cp.is_some(),
            "updated": cp.map(|f| when(f.updated_ms)),
        }));
    }
    let sinks: Vec<_> = config
        .sinks
        .iter()
        .map(|s| {
            let st = snap.sinks.get(&s.name).cloned().unwrap_or_default();
            json!({
                "name": s.name,
                "type": s.config.type_name(),
                "last_ack": when(st.last_ack_ms),
                "acked_records": st.acked_records,
                "dead_lettered": st.dead_lettered,
            })
        })
        .collect();
    let checkpoint = match loaded {
        Loaded::Fresh => "none yet".to_string(),
        Loaded::Current => format!("written {}", when(snap.written_ms)),
        Loaded::Previous(why) => format!("previous generation in use ({why})"),
        Loaded::Unusable(why) => format!("unusable ({why})"),
    };
    if a.json {
        let out = json!({
            "checkpoint": checkpoint,
            "state_dir": config.source.state_dir.display().to_string(),
            "bytes_behind": behind_total,
            "files": rows,
            "sinks": sinks,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        return Ok(());
    }
    println!(
        "checkpoint: {checkpoint} ({})",
        config.source.state_dir.display()
    );
    println!();
    println!(
        "{:<52} {:>10} {:>10} {:>10}  UPDATED",
        "FILE", "SIZE", "SHIPPED", "BEHIND"
    );
    for r in &rows {
        let path = r["path"].as_str().unwrap_or("");
        let short = config
            .source
            .workdirs
            .iter()
            .find_map(|w| std::path::Path::new(path).strip_prefix(w).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| path.to_string());
        let size = r["size"].as_u64().unwrap_or(0);
        let (shipped, behind) = match (r["offset"].as_u64(), r["behind"].as_u64()) {
            (Some(o), Some(b)) => (human_bytes(o), human_bytes(b)),
            _ => ("-".into(), "not tracked".into()),
        };
        println!(
            "{:<52} {:>10} {:>10} {:>10}  {}",
            short,
            human_bytes(size),
            shipped,
            behind,
            r["updated"].as_str().unwrap_or("-")
        );
    }
    println!();
    println!(
        "{:<24} {:<14} {:>14} {:>14}  LAST ACK",
        "SINK", "TYPE", "ACKED", "DEAD-LETTERED"
    );
    for s in &sinks {
        println!(
            "{:<24} {:<14} {:>14} {:>14}  {}",
            s["name"].as_str().unwrap_or(""),
            s["type"].as_str().unwrap_or(""),
            s["acked_records"],
            s["dead_lettered"],
            s["last_ack"].as_str().unwrap_or("-")
        );
    }
    println!();
    println!("behind in total: {}", human_bytes(behind_total));
    Ok(())
}
