//! Retention: what replaces the guide's `logclean.vbs`. E-Post never deletes a log, and the
//! guide's script deletes every file three days old whether or not anyone read it. Here a file
//! is compressed or deleted only once every sink has acknowledged all of it, as the checkpoint
//! proves, and only when it is old, quiet and not the file E-Post writes to.
//!
//! [`plan`] decides, reading but never writing; [`apply`] acts, checking each file again just
//! before it is touched. The checkpoint is only read: it belongs to the running pipeline, whose
//! tailer drops the entry of a file that disappeared (at once while running, at the next start
//! otherwise).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::checkpoint::{FileState, Snapshot};
use crate::config::{Config, RetentionAction};
use crate::discover::scan::{Seen, scan};
use crate::kind::Kind;
use crate::platform::{open_shared, sync_dir};
use crate::tail::fingerprint::{self, Fingerprint};
use crate::time::{Date, Zone};

/// A file written to more recently than this is left alone whatever its name says. E-Post
/// v4.AN keeps a file open for up to about an hour and may still append to yesterday's file
/// after midnight; on Linux/BSD nothing stops a deletion under an open handle, and what it
/// writes afterwards would be lost.
pub const QUIET: Duration = Duration::from_secs(3600);

/// Where a file's age is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatedBy {
    /// `YYMMDD.log` / `YYMMDD_HH.log`: the day E-Post wrote it.
    Name,
    /// No date in the name: the local date of its last modification.
    Modified,
}

/// What [`plan`] decided for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
    pub modified: SystemTime,
    pub date: Date,
    pub dated_by: DatedBy,
    /// Whole days between `date` and the day the plan was made for.
    pub age_days: i64,
    pub decision: Decision,
    /// The checkpoint's fingerprint, when it vouches for this file: [`apply`] checks the file
    /// still starts with these bytes before touching it.
    pub fingerprint: Option<Fingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Gzip,
    Delete,
    Keep(Keep),
}

/// Why a file is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Not older than `keep_days`.
    TooRecent,
    /// The newest file of its folder: the one E-Post writes to.
    Newest,
    /// The checkpoint does not know the file: nothing of it is known to be shipped.
    NoCheckpoint,
    /// The checkpoint's fingerprint is of other first bytes (the file was replaced).
    Replaced,
    /// Fewer bytes acknowledged than the file has (partly shipped, or grown since).
    NotShipped { offset: u64 },
    /// The file is shorter than its checkpoint (truncated): it will be read again.
    Truncated { offset: u64 },
    /// The checkpoint's fingerprint covers fewer bytes than identify the file (it was
    /// registered without being read, e.g. `start_at = "end"`).
    Unverifiable { fp_len: u32 },
    /// Written to within [`QUIET`].
    Active,
    /// The file could not be opened or read to check it.
    Unreadable(String),
    /// Everything allows it, but `action = "none"`.
    RetentionOff,
    /// It changed between the plan and the moment it was to be touched (E-Post wrote to it,
    /// or something else removed it).
    Changed(String),
}

impl Keep {
    /// A short label, for counting.
    pub fn label(&self) -> &'static str {
        match self {
            Keep::TooRecent => "too recent",
            Keep::Newest => "newest of its folder",
            Keep::NoCheckpoint => "no checkpoint",
            Keep::Replaced => "replaced since shipped",
            Keep::NotShipped { .. } => "not fully shipped",
            Keep::Truncated { .. } => "truncated",
            Keep::Unverifiable { .. } => "unverifiable checkpoint",
            Keep::Active => "being written",
            Keep::Unreadable(_) => "unreadable",
            Keep::RetentionOff => "action = none",
            Keep::Changed(_) => "changed during cleanup",
        }
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::TooRecent => f.write_str("too recent"),
            Keep::Newest => f.write_str("newest file of its folder (E-Post writes to it)"),
            Keep::NoCheckpoint => f.write_str("no checkpoint entry: not known to be shipped"),
            Keep::Replaced => {
                f.write_str("first bytes differ from the checkpoint's (replaced): not shipped")
            }
            Keep::NotShipped { offset } => {
                write!(f, "not fully shipped: {offset} bytes acknowledged")
            }
            Keep::Truncated { offset } => write!(
                f,
                "shorter than its checkpoint ({offset} bytes): will be read again"
            ),
            Keep::Unverifiable { fp_len } => write!(
                f,
                "checkpoint fingerprint covers only {fp_len} bytes: cannot prove it is the shipped file"
            ),
            Keep::Active => write!(
                f,
                "written to within the last {} minutes",
                QUIET.as_secs() / 60
            ),
            Keep::Unreadable(e) => write!(f, "cannot read it to check: {e}"),
            Keep::RetentionOff => f.write_str("shipped and old enough, but action = \"none\""),
            Keep::Changed(why) => write!(f, "changed during cleanup ({why}); left alone"),
        }
    }
}

/// The date `t` falls on in `zone`.
pub fn date_in(zone: Zone, t: SystemTime) -> Date {
    use chrono::Datelike;
    let utc: chrono::DateTime<chrono::Utc> = t.into();
    let d = match zone {
        Zone::Named(tz) => utc.with_timezone(&tz).date_naive(),
        Zone::Local => utc.with_timezone(&chrono::Local).date_naive(),
    };
    Date::new(d.year(), d.month(), d.day()).expect("chrono gives valid dates")
}

/// Today in the zone the logs are written in (file names are E-Post's local dates).
pub fn today(zone: Zone) -> Date {
    date_in(zone, SystemTime::now())
}

/// What to do with every log file of the configured kinds, and why not for those left alone.
/// Reads the folders and the first bytes of candidate files; changes nothing.
pub fn plan(config: &Config, snapshot: &Snapshot, today: Date) -> Vec<Action> {
    plan_at(config, snapshot, today, SystemTime::now())
}

/// [`plan`] with the clock for the [`QUIET`] rule given.
pub fn plan_at(config: &Config, snapshot: &Snapshot, today: Date, now: SystemTime) -> Vec<Action> {
    let by_path: HashMap<&str, &FileState> = snapshot
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    scan(&config.source.workdirs, &config.source.kinds)
        .into_iter()
        // Quarantined pairs are evidence, not logs: they are never touched.
        .filter(|s| s.file.kind != Kind::Viruslog)
        .map(|s| {
            let cp = by_path.get(s.file.path.to_string_lossy().as_ref()).copied();
            decide(&s, cp, config, today, now)
        })
        .collect()
}

fn decide(
    s: &Seen,
    cp: Option<&FileState>,
    config: &Config,
    today: Date,
    now: SystemTime,
) -> Action {
    let (date, dated_by) = match s.file.date() {
        Some(d) => (d, DatedBy::Name),
        None => (date_in(config.source.zone, s.modified), DatedBy::Modified),
    };
    let age_days = today.days() - date.days();
    let mut action = Action {
        path: s.file.path.clone(),
        kind: s.file.kind,
        size: s.size,
        modified: s.modified,
        date,
        dated_by,
        age_days,
        decision: Decision::Keep(Keep::TooRecent),
        fingerprint: None,
    };
    match verdict(s, cp, config, age_days, now) {
        Ok(fp) => {
            action.fingerprint = Some(fp);
            action.decision = match config.retention.action {
                RetentionAction::Gzip => Decision::Gzip,
                RetentionAction::Delete => Decision::Delete,
                RetentionAction::None => Decision::Keep(Keep::RetentionOff),
            };
        }
        Err(k) => action.decision = Decision::Keep(k),
    }
    action
}

/// The fingerprint that proves the file is the one fully shipped, or why it is kept.
fn verdict(
    s: &Seen,
    cp: Option<&FileState>,
    config: &Config,
    age_days: i64,
    now: SystemTime,
) -> Result<Fingerprint, Keep> {
    if age_days <= i64::from(config.retention.keep_days) {
        return Err(Keep::TooRecent);
    }
    if s.newest {
        return Err(Keep::Newest);
    }
    let cp = cp.ok_or(Keep::NoCheckpoint)?;
    let fp =
        Fingerprint::parse(&cp.fingerprint, cp.fp_len).ok_or(Keep::Unverifiable { fp_len: 0 })?;
    // A replaced file makes the offsets meaningless, so identity is checked first; an empty
    // fingerprint has nothing to compare and is judged below.
    if fp.len > 0 {
        let mut f = open_shared(&s.file.path).map_err(|e| Keep::Unreadable(e.to_string()))?;
        if !fp
            .matches(&mut f)
            .map_err(|e| Keep::Unreadable(e.to_string()))?
        {
            return Err(Keep::Replaced);
        }
    }
    if cp.offset < s.size {
        return Err(Keep::NotShipped { offset: cp.offset });
    }
    if cp.offset > s.size {
        return Err(Keep::Truncated { offset: cp.offset });
    }
    // The tailer widens the fingerprint as it reads, so a file read to its end has one of
    // min(LEN, size) bytes; a shorter one was never read and proves nothing.
    if u64::from(fp.len) < s.size.min(u64::from(fingerprint::LEN)) {
        return Err(Keep::Unverifiable { fp_len: fp.len });
    }
    if now.duration_since(s.modified).is_ok_and(|d| d < QUIET) || s.modified > now {
        return Err(Keep::Active);
    }
    Ok(fp)
}

/// A failure on one file; the others are still processed.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("cannot {op} `{}`: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("the compressed copy of `{}` does not match it ({why}); original kept", path.display())]
    Verify { path: PathBuf, why: String },
    #[error("`{}` already exists and is not a copy of `{}`; both kept", gz.display(), path.display())]
    GzExists { path: PathBuf, gz: PathBuf },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RetentionError + 'a {
    move |error| RetentionError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

#[derive(Debug)]
pub enum Outcome {
    Compressed { gz: PathBuf, gz_size: u64 },
    Deleted,
    WouldCompress,
    WouldDelete,
    Kept(Keep),
    Failed(RetentionError),
}

#[derive(Debug)]
pub struct Entry {
    pub action: Action,
    pub outcome: Outcome,
}

#[derive(Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    pub entries: Vec<Entry>,
}

impl Report {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.entries.iter().filter(|e| f(&e.outcome)).count()
    }

    pub fn compressed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Compressed { .. } | Outcome::WouldCompress))
    }

    pub fn deleted(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Deleted | Outcome::WouldDelete))
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    /// Bytes no longer on disk (for a dry run: what deleting would free; compression is not
    /// tried, so it counts nothing).
    pub fn bytes_freed(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match &e.outcome {
                Outcome::Compressed { gz_size, .. } => e.action.size.saturating_sub(*gz_size),
                Outcome::Deleted | Outcome::WouldDelete => e.action.size,
                _ => 0,
            })
            .sum()
    }

    /// Files left alone, by reason.
    pub fn kept(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for e in &self.entries {
            if let Outcome::Kept(k) = &e.outcome {
                *m.entry(k.label()).or_default() += 1;
            }
        }
        m
    }
}

impl fmt::Display for Report {
    /// One line: what was done and what was left alone, by reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let would = if self.dry_run { "would be " } else { "" };
        write!(
            f,
            "{} {would}compressed, {} {would}deleted, {} bytes {would}freed, {} failed",
            self.compressed(),
            self.deleted(),
            self.bytes_freed(),
            self.failed()
        )?;
        let kept = self.kept();
        if !kept.is_empty() {
            let total: usize = kept.values().sum();
            let parts: Vec<String> = kept.iter().map(|(k, n)| format!("{n} {k}")).collect();
            write!(f, "; kept {total}: {}", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Carries out a plan. Each file is checked again just before it is touched (same size,
/// modification time and first bytes as planned); an error on one file is reported in its
/// entry and the others go on. `dry_run` touches nothing.
pub fn apply(actions: Vec<Action>, dry_run: bool) -> Report {
    let entries = actions
        .into_iter()
        .map(|action| {
            let outcome = match (&action.decision, dry_run) {
                (Decision::Keep(k), _) => Outcome::Kept(k.clone()),
                (Decision::Gzip, true) => Outcome::WouldCompress,
                (Decision::Delete, true) => Outcome::WouldDelete,
                (Decision::Gzip, false) => match gzip(&action) {
                    Ok(Done::Gzip { gz, gz_size }) => Outcome::Compressed { gz, gz_size },
                    Ok(Done::Deleted) => Outcome::Deleted,
                    Ok(Done::Changed(why)) => Outcome::Kept(Keep::Changed(why)),
                    Err(e) => Outcome::Failed(e),
                },
                (Decision::Delete, false) => match delete(&action) {
                    Ok(Done::Changed(why)) => Outcome::Kept(Keep::Changed(why)),
                    Ok(_) => Outcome::Deleted,
                    Err(e) => Outcome::Failed(e),
                },
            };
            // one pass over a thousand files of a read-only share: one line, then a count
            // (the report names every file)
            if let Outcome::Failed(e) = &outcome
                && let Some(repeated) = crate::warn_limit::check("retention.failed", "")
            {
                tracing::warn!(error = %e, repeated, "retention");
            }
            Entry { action, outcome }
        })
        .collect();
    Report { dry_run, entries }
}

/// Plans and applies with the configured rules and today's date: what `run` calls on its
/// `[retention] schedule`, with the checkpoint it holds.
pub fn run_once(config: &Config, snapshot: &Snapshot) -> Report {
    let report = apply(plan(config, snapshot, today(config.source.zone)), false);
    tracing::info!(summary = %report, "retention");
    report
}

enum Done {
    Gzip { gz: PathBuf, gz_size: u64 },
    Deleted,
    Changed(String),
}

/// `<name>.gz` beside the file.
pub fn gz_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".gz");
    PathBuf::from(s)
}

/// Opens the file if it is still exactly as planned; otherwise why not.
fn as_planned(a: &Action) -> Result<Result<File, String>, RetentionError> {
    let mut f = match open_shared(&a.path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err("it is gone".into())),
        Err(e) => return Err(io_err("open", &a.path)(e)),
    };
    let m = f.metadata().map_err(io_err("stat", &a.path))?;
    if m.len() != a.size {
        return Ok(Err(format!("size {} is now {}", a.size, m.len())));
    }
    if m.modified().ok() != Some(a.modified) {
        return Ok(Err("modified since planned".into()));
    }
    let fp = a.fingerprint.expect("only planned files are acted on");
    if !fp.matches(&mut f).map_err(io_err("read", &a.path))? {
        return Ok(Err("its first bytes changed".into()));
    }
    Ok(Ok(f))
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn remove_original(a: &Action, handle: File) -> Result<(), RetentionError> {
    // Windows refuses to delete a file we hold open without delete sharing; never hold it.
    drop(handle);
    std::fs::remove_file(&a.path).map_err(io_err("remove", &a.path))?;
    sync_dir(parent(&a.path)).map_err(io_err("sync the folder of", &a.path))
}

fn delete(a: &Action) -> Result<Done, RetentionError> {
    match as_planned(a)? {
        Err(why) => Ok(Done::Changed(why)),
        Ok(f) => {
            remove_original(a, f)?;
            Ok(Done::Deleted)
        }
    }
}

/// Length and SHA-256 of everything `r` yields.
fn digest(mut r: impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let got = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..got]);
        n += got as u64;
    }
    Ok((n, h.finalize().into()))
}

/// Removes the temp file unless the rename took it.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Compresses `src` (positioned at its start) into `tmp`; returns length and hash of what was
/// read from `src`, and the size of the result. Durable before it returns.
fn compress_into(
    src: &mut File,
    tmp: &Path,
    name: &str,
    mtime: SystemTime,
) -> io::Result<(u64, [u8; 32], u64)> {
    let secs = mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32);
    let out = File::create(tmp)?;
    // The name and time in the header let `gunzip -N` restore the file as it was.
    let mut enc = flate2::GzBuilder::new()
        .filename(name.as_bytes())
        .mtime(secs)
        .write(BufWriter::new(out), Compression::default());
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let got = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..got]);
        enc.write_all(&buf[..got])?;
        n += got as u64;
    }
    let out = enc.finish()?.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    let gz_size = out.metadata()?.len();
    // Keeps the day visible to anything that goes by modification time.
    let _ = out.set_modified(mtime);
    Ok((n, h.finalize().into(), gz_size))
}

fn gzip(a: &Action) -> Result<Done, RetentionError> {
    let mut src = match as_planned(a)? {
        Err(why) => return Ok(Done::Changed(why)),
        Ok(f) => f,
    };
    let gz = gz_path(&a.path);
    let dir = parent(&a.path);
    let name = a
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let created = match std::fs::symlink_metadata(&gz) {
        Ok(_) => {
            // An earlier run stopped between the rename and the removal: the copy may be
            // complete. Only a verified copy lets the original go.
            let (len, hash) = digest(&mut src).map_err(io_err("read", &a.path))?;
            let got = File::open(&gz)
                .and_then(|f| digest(MultiGzDecoder::new(f)))
                .ok();
            if len != a.size || got != Some((len, hash)) {
                return Err(RetentionError::GzExists {
                    path: a.path.clone(),
                    gz,
                });
            }
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Not `*.log`, so neither the tailer nor `parse` of a folder picks it up.
            let tmp = dir.join(format!(".{name}.gz.tmp"));
            let mut guard = TempGuard(Some(tmp.clone()));
            let (len, hash, _) = compress_into(&mut src, &tmp, &name, a.modified)
                .map_err(io_err("compress", &a.path))?;
            if len != a.size {
                return Ok(Done::Changed(format!("size {} is now {len}", a.size)));
            }
            let back = File::open(&tmp)
                .and_then(|f| digest(MultiGzDecoder::new(f)))
                .map_err(|e| RetentionError::Verify {
                    path: a.path.clone(),
                    why: format!("cannot decompress it: {e}"),
                })?;
            if back != (len, hash) {
                return Err(RetentionError::Verify {
                    path: a.path.clone(),
                    why: format!(
                        "{} bytes decompressed, {len} expected, or a different SHA-256",
                        back.0
                    ),
                });
            }
            crate::platform::rename_durable(&tmp, &gz).map_err(io_err("rename into place", &gz))?;
            guard.0 = None;
            true
        }
        Err(e) => return Err(io_err("stat", &gz)(e)),
    };
    // A write that landed while compressing would be lost with the original: look once more.
    drop(src);
    let src = match as_planned(a)? {
        Ok(f) => f,
        Err(why) => {
            if created {
                let _ = std::fs::remove_file(&gz);
                let _ = sync_dir(dir);
            }
            return Ok(Done::Changed(why));
        }
    };
    remove_original(a, src)?;
    let gz_size = std::fs::metadata(&gz).map(|m| m.len()).unwrap_or(0);
    Ok(Done::Gzip { gz, gz_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gz_path_appends() {
        assert_eq!(
            gz_path(Path::new("/m/inlog/H/171130.log")),
            PathBuf::from("/m/inlog/H/171130.log.gz")
        );
    }

    #[test]
    fn dates_follow_the_zone() {
        // 2017-11-30 16:00 UTC is already 12-01 in Tokyo
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_512_057_600);
        let tokyo: Zone = "Asia/Tokyo".parse().unwrap();
        let utc: Zone = "UTC".parse().unwrap();
        assert_eq!(date_in(tokyo, t), Date::new(2017, 12, 1).unwrap());
        assert_eq!(date_in(utc, t), Date::new(2017, 11, 30).unwrap());
    }

    #[test]
    fn report_line_counts_reasons() {
        let a = Action {
            path: "/m/inlog/H/171130.log".into(),
            kind: Kind::Inlog,
            size: 100,
            modified: SystemTime::UNIX_EPOCH,
            date: Date::new(2017, 11, 30).unwrap(),
            dated_by: DatedBy::Name,
            age_days: 40,
            decision: Decision::Delete,
            fingerprint: None,
        };
        let r = Report {
            dry_run: false,
            entries: vec![
                Entry {
                    action: a.clone(),
                    outcome: Outcome::Deleted,
                },
                Entry {
                    action: a.clone(),
                    outcome: Outcome::Kept(Keep::TooRecent),
                },
                Entry {
                    action: a,
                    outcome: Outcome::Kept(Keep::TooRecent),
                },
            ],
        };
        assert_eq!(r.bytes_freed(), 100);
        assert_eq!(r.kept().get("too recent"), Some(&2));
        assert_eq!(
            r.to_string(),
            "0 compressed, 1 deleted, 100 bytes freed, 0 failed; kept 2: 2 too recent"
        );
    }
}
