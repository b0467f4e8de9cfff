//! Keeping the readers in step with the folders: each scan adds a reader for a new file
//! (from its checkpoint, or by the first-start rules), notices growth, deletion and files
//! replaced under the same name, follows a file that was moved or renamed (its reader keeps
//! its position), and restarts a file as a new generation.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::fingerprint::Fingerprint;
use super::reader::{Reader, ReaderKey};
use super::{Tailer, recently_written};
use crate::ack::FileMeta;
use crate::batch::FileId;
use crate::checkpoint::FileState;
use crate::config::StartAt;
use crate::discover::{self, LogFile, scan::Seen};
use crate::kind::Kind;
use crate::parse::FileParser;
use crate::record::Source;
use crate::time::Date;

impl Tailer {
    pub(super) fn scan(&mut self) {
        let first = self.scans == 0;
        self.scans += 1;
        if !first && self.scan_cache.quiet_round() {
            self.restat_hot_closed();
            return;
        }
        let mut cache = std::mem::take(&mut self.scan_cache);
        let (files, by_path) = (&self.files, &self.by_path);
        let seen = cache.scan(&self.cfg.workdirs, &self.cfg.kinds, |p| {
            by_path
                .get(p)
                .and_then(|k| files.get(k))
                .is_none_or(|t| t.handle.is_some() || t.newest || recently_written(t.modified))
        });
        self.scan_cache = cache;
        let mut present: HashSet<PathBuf> = HashSet::new();
        let mut appeared = Vec::new();
        let mut total_bytes = 0;
        for s in seen {
            if !self.in_plan(&s) {
                continue;
            }
            present.insert(s.file.path.clone());
            total_bytes += s.size;
            match self
                .by_path
                .get(&s.file.path)
                .and_then(|k| self.files.get_mut(k))
            {
                Some(t) => {
                    t.newest = s.newest;
                    t.modified = s.modified;
                    if t.handle.is_none() && s.size != t.size {
                        t.size = s.size;
                    }
                }
                None => appeared.push(s),
            }
        }
        // the readers whose path this scan did not list: moved (followed), else gone
        let mut gone = self.gone(&present);
        for s in appeared {
            match self.moved_here(&s, &mut gone) {
                Some(key) => self.follow(key, s),
                None => self.discovered(s, first),
            }
        }
        self.counters
            .files_total
            .store(self.files.len() as u64, Ordering::Relaxed);
        self.counters
            .bytes_total
            .store(total_bytes, Ordering::Relaxed);
        self.let_go_of_gone(gone);
        if first {
            self.forget_dormant(&present);
        }
        // Checked every tenth scan: it costs an open per file, and restores are rare.
        if self.scans % 10 == 1 {
            self.restart_replaced();
        }
    }

    /// A quiet round (nothing appeared or vanished): only files not held open but still hot
    /// may have grown (a closed file of today, one over max_open_files).
    fn restat_hot_closed(&mut self) {
        for t in self.files.values_mut() {
            if t.handle.is_none()
                && !t.finished
                && (t.newest || recently_written(t.modified))
                && let Ok(m) = std::fs::metadata(&t.log.path)
            {
                t.size = m.len();
                t.modified = m.modified().unwrap_or(t.modified);
            }
        }
    }

    /// The readers whose path this scan did not list.
    fn gone(&self, present: &HashSet<PathBuf>) -> Vec<ReaderKey> {
        self.by_path
            .iter()
            .filter(|(p, _)| !present.contains(*p))
            .map(|(_, k)| *k)
            .collect()
    }

    /// A file that appeared where none was while a file of the same kind vanished: the same
    /// file moved (a host folder renamed, the work folder moved) when the open handle is that
    /// file, or, without a handle, when it has the same name, starts with the bytes read of
    /// the vanished one and is at least as long as what was read. Its reader then follows it,
    /// rather than the vanished one being finished and the moved one read again from the
    /// start (every record twice).
    fn moved_here(&self, s: &Seen, gone: &mut Vec<ReaderKey>) -> Option<ReaderKey> {
        let at = gone.iter().position(|k| {
            self.files
                .get(k)
                .is_some_and(|t| t.log.kind == s.file.kind && same_file_moved(t, s))
        })?;
        Some(gone.swap_remove(at))
    }

    /// Re-indexes reader `key` under its new path; records from here on name the new path.
    fn follow(&mut self, key: ReaderKey, s: Seen) {
        let source = self.source_of(&s.file);
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        let from = std::mem::replace(&mut t.log, s.file);
        tracing::info!(from = %from.path.display(), to = %t.log.path.display(), "log file moved; following it from where it was read to");
        let generation = t.source.generation;
        t.source = Source {
            generation,
            ..source
        };
        t.parser.set_source(t.source.clone());
        t.newest = s.newest;
        t.modified = s.modified;
        t.deleted = false;
        if t.handle.is_none() {
            t.size = s.size;
        }
        self.tracker
            .relocate(t.id, &t.log.path.to_string_lossy(), &t.source.host);
        if self.by_path.get(&from.path) == Some(&key) {
            self.by_path.remove(&from.path);
        }
        self.by_path.insert(t.log.path.clone(), key);
    }

    /// Files that disappeared: what was written is finished (an open handle still reads it),
    /// and a file without a handle is let go at once.
    fn let_go_of_gone(&mut self, gone: Vec<ReaderKey>) {
        for key in gone {
            let Some(t) = self.files.get_mut(&key) else {
                continue;
            };
            if !t.deleted {
                tracing::info!(path = %t.log.path.display(), "file deleted; finishing what was written");
                t.deleted = true;
            }
            if t.handle.is_none() {
                let id = t.id;
                self.remove_reader(key);
                self.tracker.retire(id);
            }
        }
    }

    /// Checkpointed files that no longer exist at the first scan are dropped from the
    /// checkpoint.
    fn forget_dormant(&mut self, present: &HashSet<PathBuf>) {
        let dormant: Vec<String> = self
            .restored
            .keys()
            .filter(|p| !present.contains(Path::new(p.as_str())) && !Path::new(p.as_str()).exists())
            .cloned()
            .collect();
        for p in dormant {
            self.tracker.forget_dormant(&p);
        }
    }

    /// Replaced under the same name (restore, copy): the open handle is another file now.
    fn restart_replaced(&mut self) {
        let replaced: Vec<ReaderKey> = self
            .files
            .iter()
            .filter(|(_, t)| {
                t.handle.as_ref().is_some_and(|h| {
                    same_file::Handle::from_path(&t.log.path).is_ok_and(|other| &other != h)
                })
            })
            .map(|(k, _)| *k)
            .collect();
        for key in replaced {
            if let Some(t) = self.files.get(&key) {
                let p = &t.log.path;
                if let Some(repeated) =
                    crate::warn_limit::check("tail.replaced", &p.to_string_lossy())
                {
                    tracing::warn!(path = %p.display(), repeated, "file was replaced under the same name; reading the new one from the start");
                }
            }
            self.restart(key);
        }
    }

    /// Adds a reader, indexed under its path.
    fn insert_reader(&mut self, reader: Reader) -> ReaderKey {
        self.next_key += 1;
        let key = ReaderKey(self.next_key);
        self.by_path.insert(reader.log.path.clone(), key);
        self.files.insert(key, reader);
        key
    }

    /// Removes a reader (and its path, unless another reader has that path now).
    pub(super) fn remove_reader(&mut self, key: ReaderKey) -> Option<Reader> {
        let t = self.files.remove(&key)?;
        if self.by_path.get(&t.log.path) == Some(&key) {
            self.by_path.remove(&t.log.path);
        }
        Some(t)
    }

    pub(super) fn in_plan(&self, s: &Seen) -> bool {
        if self.plan.since.is_none() && self.plan.until.is_none() {
            return true;
        }
        let date = s.file.date().or_else(|| {
            let d: chrono::DateTime<chrono::Local> = s.modified.into();
            use chrono::Datelike;
            Date::new(d.year(), d.month(), d.day())
        });
        match date {
            Some(d) => {
                self.plan.since.is_none_or(|x| d >= x) && self.plan.until.is_none_or(|x| d <= x)
            }
            None => true,
        }
    }

    pub(super) fn new_id(&mut self) -> FileId {
        self.next_id += 1;
        self.next_id
    }

    pub(super) fn source_of(&self, log: &LogFile) -> Source {
        let host = self
            .cfg
            .host
            .clone()
            .or_else(|| log.host.clone())
            .unwrap_or_else(discover::local_host_name);
        Source::new(&host, log.kind, &log.path.to_string_lossy())
    }

    pub(super) fn discovered(&mut self, s: Seen, first_scan: bool) {
        let path_str = s.file.path.to_string_lossy().into_owned();
        let source = self.source_of(&s.file);
        let id = self.new_id();
        let restored = match self.restored.remove(&path_str) {
            Some(r) => Some(r),
            None => self.restored_moved(&s),
        };
        let (start, fp, finished) = self.start_of(&s, &path_str, restored.as_ref(), first_scan);
        let meta = FileMeta {
            path: path_str.clone(),
            kind: s.file.kind.name().to_string(),
            host: source.host.to_string(),
            fingerprint: fp.hex(),
            fp_len: fp.len,
            size: s.size,
        };
        // Files left alone are not checkpointed unless they were before.
        if !finished || restored.is_some() {
            self.tracker.register(id, meta, start);
        }
        self.counters
            .bytes_skipped
            .fetch_add(start, Ordering::Relaxed);
        let parser = FileParser::new(source.clone(), self.options);
        self.insert_reader(Reader {
            id,
            source,
            handle: None,
            pos: start,
            carry: Vec::new(),
            parser,
            fp,
            size: s.size,
            modified: s.modified,
            newest: s.newest,
            last_growth: Instant::now(),
            deleted: false,
            finished,
            generation_known: false,
            waiting_since: None,
            failing: None,
            pair_seen: None,
            log: s.file,
        });
    }

    /// The checkpoint entry of a file moved while the shipper was stopped: an entry of the
    /// same kind and file name whose path no longer exists (a copy leaves the original, and
    /// is a file of its own), for a file that starts with the bytes checkpointed and is at
    /// least as long as the offset. Taken from the checkpointed files, and its old path
    /// forgotten, so the file goes on from its offset under its new path.
    fn restored_moved(&mut self, s: &Seen) -> Option<FileState> {
        let name = s.file.path.file_name()?.to_string_lossy().into_owned();
        let key = (s.file.kind.name().to_string(), name);
        let restored = &self.restored;
        let by_name = self.restored_by_name.get_or_insert_with(|| {
            let mut m: HashMap<(String, String), Vec<String>> = HashMap::new();
            for (p, r) in restored {
                if let Some(n) = Path::new(p).file_name() {
                    let k = (r.kind.clone(), n.to_string_lossy().into_owned());
                    m.entry(k).or_default().push(p.clone());
                }
            }
            m
        });
        let candidates = by_name.get_mut(&key)?;
        let at = candidates.iter().position(|p| {
            self.restored
                .get(p)
                .is_some_and(|r| checkpointed_here(r, s) && !Path::new(p).exists())
        })?;
        let old = candidates.swap_remove(at);
        let r = self.restored.remove(&old)?;
        tracing::info!(from = %old, to = %s.file.path.display(), offset = r.offset, "log file moved while stopped; going on from its checkpoint");
        self.tracker.forget_dormant(&old);
        Some(r)
    }

    /// Where a newly discovered file starts, with its identity, and whether it is left alone:
    /// at its checkpoint if it is the file checkpointed, else by the first-start rules
    /// (`ignore_older_than`, `start_at`) on the first scan, else at byte 0.
    fn start_of(
        &self,
        s: &Seen,
        path_str: &str,
        restored: Option<&FileState>,
        first_scan: bool,
    ) -> (u64, Fingerprint, bool) {
        let mut start = 0u64;
        let mut fp = Fingerprint { hash: 0, len: 0 };
        let mut finished = false;
        match restored {
            Some(r) => {
                let stored = Fingerprint::parse(&r.fingerprint, r.fp_len);
                let same = match (stored, crate::platform::open_shared(&s.file.path)) {
                    (Some(stored), Ok(mut f)) => stored.matches(&mut f).unwrap_or(false),
                    // Cannot open it now (permissions, a lock): trust the checkpoint rather
                    // than read it all again later; the fingerprint is checked again when the
                    // file can be opened.
                    (Some(_), Err(_)) => true,
                    (None, _) => false,
                };
                if same && r.offset <= s.size {
                    start = r.offset;
                    fp = stored.expect("checked");
                } else if same {
                    tracing::warn!(path = %path_str, checkpoint = r.offset, size = s.size, "file is shorter than its checkpoint (truncated); reading it again from the start");
                } else {
                    tracing::warn!(path = %path_str, "file differs from the one checkpointed (replaced); reading it from the start");
                }
                if s.file.kind == Kind::Viruslog && same && r.offset > 0 {
                    finished = true;
                }
            }
            None if first_scan && self.plan.first_start_rules => {
                let too_old = self.cfg.ignore_older_than.is_some_and(|age| {
                    SystemTime::now()
                        .duration_since(s.modified)
                        .is_ok_and(|d| d > age)
                });
                if too_old {
                    tracing::debug!(path = %path_str, "older than ignore_older_than; not read");
                    finished = true;
                    start = s.size;
                } else if self.cfg.start_at == StartAt::End {
                    start = s.size;
                    if s.file.kind == Kind::Viruslog {
                        finished = true;
                    } else if let Ok(mut f) = crate::platform::open_shared(&s.file.path)
                        && let Ok(now) = Fingerprint::of(&mut f)
                    {
                        // Checkpointed with its identity even though nothing is read now:
                        // without it a restart judged every such file "replaced" and
                        // shipped the last 7 days again.
                        fp = now;
                    }
                }
            }
            None => {}
        }
        (start, fp, finished)
    }

    /// Starts a file over from byte 0 as a new generation: another file is at this path now,
    /// so it gets a reader (and a key) of its own.
    pub(super) fn restart(&mut self, key: ReaderKey) {
        let id = self.new_id();
        let Some(old) = self.remove_reader(key) else {
            return;
        };
        if old.handle.is_some() {
            self.open -= 1;
        }
        self.tracker.retire(old.id);
        let meta = FileMeta {
            path: old.log.path.to_string_lossy().into_owned(),
            kind: old.log.kind.name().to_string(),
            host: old.source.host.to_string(),
            fingerprint: Fingerprint { hash: 0, len: 0 }.hex(),
            fp_len: 0,
            size: old.size,
        };
        self.tracker.register(id, meta, 0);
        let parser = FileParser::new(old.source.clone(), self.options);
        self.insert_reader(Reader {
            id,
            handle: None,
            pos: 0,
            carry: Vec::new(),
            parser,
            fp: Fingerprint { hash: 0, len: 0 },
            finished: false,
            deleted: false,
            generation_known: false,
            last_growth: Instant::now(),
            waiting_since: None,
            failing: None,
            pair_seen: None,
            ..old
        });
    }
}

/// Whether the file seen in `s` is the one reader `t` reads, under another path: the same
/// file to the operating system when `t` holds it open; else the same name, kind and first
/// bytes, and at least as long as what was read.
fn same_file_moved(t: &Reader, s: &Seen) -> bool {
    if let Some(h) = &t.handle {
        return same_file::Handle::from_path(&s.file.path).is_ok_and(|other| &other == h);
    }
    t.fp.len > 0
        && t.pos <= s.size
        && t.log.path.file_name() == s.file.path.file_name()
        && crate::platform::open_shared(&s.file.path)
            .is_ok_and(|mut f| t.fp.matches(&mut f).unwrap_or(false))
}

/// Whether checkpoint entry `r` can be the file seen in `s`: it starts with the bytes
/// checkpointed and is at least as long as the offset.
fn checkpointed_here(r: &FileState, s: &Seen) -> bool {
    r.offset <= s.size
        && Fingerprint::parse(&r.fingerprint, r.fp_len).is_some_and(|fp| {
            fp.len > 0
                && crate::platform::open_shared(&s.file.path)
                    .is_ok_and(|mut f| fp.matches(&mut f).unwrap_or(false))
        })
}
