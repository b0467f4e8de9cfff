//! One pass over the configured work folders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{LogFile, walk};
use crate::kind::Kind;

/// A log file as seen by a scan.
#[derive(Debug, Clone)]
pub struct Seen {
    pub file: LogFile,
    pub size: u64,
    pub modified: SystemTime,
    /// No newer file exists in its folder (the one E-Post writes today).
    pub newest: bool,
}

/// Lists every log file of the wanted kinds under `workdirs`. Unreadable folders are
/// reported and skipped: one bad share must not stop the others.
pub fn scan(workdirs: &[PathBuf], kinds: &[Kind]) -> Vec<Seen> {
    let mut out = Vec::new();
    for w in workdirs {
        match walk(w) {
            Ok(files) => {
                for f in files {
                    if !kinds.contains(&f.kind) {
                        continue;
                    }
                    // retention compresses fully shipped files: nothing left to tail
                    if f.file_name().to_ascii_lowercase().ends_with(".gz") {
                        continue;
                    }
                    if let Ok(m) = std::fs::metadata(&f.path) {
                        out.push(Seen {
                            size: m.len(),
                            modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                            file: f,
                            newest: false,
                        });
                    }
                }
            }
            Err(e) => tracing::warn!(workdir = %w.display(), error = %e, "cannot list work folder"),
        }
    }
    mark_newest(&mut out);
    out
}

fn mark_newest(files: &mut [Seen]) {
    let mut newest: HashMap<(Kind, Option<&Path>), &str> = HashMap::new();
    let names: Vec<(Kind, Option<PathBuf>, String)> = files
        .iter()
        .map(|s| {
            (
                s.file.kind,
                s.file.path.parent().map(Path::to_path_buf),
                s.file.file_name().to_string(),
            )
        })
        .collect();
    for (k, dir, name) in &names {
        let e = newest.entry((*k, dir.as_deref())).or_insert(name);
        if name.as_str() > *e {
            *e = name;
        }
    }
    for (s, (k, dir, name)) in files.iter_mut().zip(&names) {
        s.newest =
            *k != Kind::Viruslog && newest.get(&(*k, dir.as_deref())) == Some(&name.as_str());
    }
}
