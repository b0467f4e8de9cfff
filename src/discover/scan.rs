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

/// A work folder that cannot be listed, as on every poll until it can: warned about once a
/// minute with the count.
fn list_failed(w: &Path, e: &std::io::Error) {
    if let Some(repeated) = crate::warn_limit::check("discover.list", &w.to_string_lossy()) {
        tracing::warn!(workdir = %w.display(), error = %e, repeated, "cannot list work folder");
    }
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
            Err(e) => list_failed(w, &e),
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

/// Scans that cost little when nothing changed: a folder is listed again only when its
/// modification time moved (or was recent, for filesystems with coarse times), and a file is
/// stat'ed on every scan only when the caller says it is hot (open, today's, unknown); the
/// others every `COLD_EVERY` scans. Thousands of old daily files then cost a few folder stats
/// a second instead of thousands of file stats.
#[derive(Debug, Default)]
pub struct ScanCache {
    dirs: HashMap<PathBuf, (SystemTime, Vec<PathBuf>, Vec<LogFile>)>,
    files: HashMap<PathBuf, (u64, SystemTime)>,
    round: u64,
    /// Stat everything on the next scan (a filesystem event arrived).
    pub force: bool,
}

const COLD_EVERY: u64 = 30;

fn recently(t: SystemTime) -> bool {
    SystemTime::now()
        .duration_since(t)
        .map_or(true, |d| d < std::time::Duration::from_secs(3))
}

impl ScanCache {
    /// A round that can be skipped: no folder was added to, removed from or renamed in (one
    /// stat per folder), and it is not a full round. The caller then only refreshes the files
    /// it holds hot. Returns true (and counts the round) when skipped.
    pub fn quiet_round(&mut self) -> bool {
        if self.force || self.dirs.is_empty() || (self.round + 1) % COLD_EVERY == 1 {
            return false;
        }
        let unchanged = self.dirs.iter().all(|(dir, (mtime, _, _))| {
            std::fs::metadata(dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t == *mtime && !recently(t))
        });
        if unchanged {
            self.round += 1;
        }
        unchanged
    }

    pub fn scan(
        &mut self,
        workdirs: &[PathBuf],
        kinds: &[Kind],
        hot: impl Fn(&Path) -> bool,
    ) -> Vec<Seen> {
        self.round += 1;
        let full = self.force || self.round % COLD_EVERY == 1;
        self.force = false;
        let mut files = Vec::new();
        for w in workdirs {
            if let Err(e) = self.walk(w, 0, full, &mut files) {
                list_failed(w, &e);
            }
        }
        let mut out = Vec::new();
        let mut alive = std::collections::HashSet::new();
        for f in files {
            if !kinds.contains(&f.kind) || f.file_name().to_ascii_lowercase().ends_with(".gz") {
                continue;
            }
            let cached = self.files.get(&f.path).copied();
            let (size, modified) = match cached {
                Some(c) if !full && !hot(&f.path) => c,
                _ => match std::fs::metadata(&f.path) {
                    Ok(m) => {
                        let v = (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
                        self.files.insert(f.path.clone(), v);
                        v
                    }
                    Err(_) => continue,
                },
            };
            alive.insert(f.path.clone());
            out.push(Seen {
                file: f,
                size,
                modified,
                newest: false,
            });
        }
        self.files.retain(|p, _| alive.contains(p));
        mark_newest(&mut out);
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }

    fn walk(
        &mut self,
        dir: &Path,
        depth: usize,
        full: bool,
        out: &mut Vec<LogFile>,
    ) -> std::io::Result<()> {
        if depth > 4 {
            return Ok(());
        }
        let mtime = std::fs::metadata(dir)?
            .modified()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // a folder changed within the last seconds may change again within its time
        // granularity unseen: list it again
        let recent = recently(mtime);
        let cached = self
            .dirs
            .get(dir)
            .filter(|(t, _, _)| *t == mtime && !recent && !full);
        let (subdirs, files) = match cached {
            Some((_, s, f)) => (s.clone(), f.clone()),
            None => {
                let mut subdirs = Vec::new();
                let mut files = Vec::new();
                for entry in std::fs::read_dir(dir)? {
                    let entry = entry?;
                    let path = entry.path();
                    if entry.file_type()?.is_dir() {
                        subdirs.push(path);
                    } else if let Some(f) = super::classify(&path) {
                        files.push(f);
                    }
                }
                self.dirs
                    .insert(dir.to_path_buf(), (mtime, subdirs.clone(), files.clone()));
                (subdirs, files)
            }
        };
        out.extend(files);
        for s in subdirs {
            // a sub-folder that vanished is simply not listed
            let _ = self.walk(&s, depth + 1, full, out);
        }
        Ok(())
    }
}
