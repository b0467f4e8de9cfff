//! Keeping the readers in step with the folders: each scan adds a reader for a new file
//! (from its checkpoint, or by the first-start rules), notices growth, deletion and files
//! replaced under the same name, and restarts a file as a new generation.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::fingerprint::Fingerprint;
use super::reader::Reader;
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
        let files = &self.files;
        let seen = cache.scan(&self.cfg.workdirs, &self.cfg.kinds, |p| {
            files
                .get(p)
                .is_none_or(|t| t.handle.is_some() || t.newest || recently_written(t.modified))
        });
        self.scan_cache = cache;
        let mut present: HashSet<PathBuf> = HashSet::new();
        let mut total_bytes = 0;
        for s in seen {
            if !self.in_plan(&s) {
                continue;
            }
            present.insert(s.file.path.clone());
            total_bytes += s.size;
            match self.files.get_mut(&s.file.path) {
                Some(t) => {
                    t.newest = s.newest;
                    t.modified = s.modified;
                    if t.handle.is_none() && s.size != t.size {
                        t.size = s.size;
                    }
                }
                None => self.discovered(s, first),
            }
        }
        self.counters
            .files_total
            .store(self.files.len() as u64, Ordering::Relaxed);
        self.counters
            .bytes_total
            .store(total_bytes, Ordering::Relaxed);
        self.let_go_of_gone(&present);
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
        for (p, t) in self.files.iter_mut() {
            if t.handle.is_none()
                && !t.finished
                && (t.newest || recently_written(t.modified))
                && let Ok(m) = std::fs::metadata(p)
            {
                t.size = m.len();
                t.modified = m.modified().unwrap_or(t.modified);
            }
        }
    }

    /// Files that disappeared: what was written is finished (an open handle still reads it),
    /// and a file without a handle is let go at once.
    fn let_go_of_gone(&mut self, present: &HashSet<PathBuf>) {
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains(*p))
            .cloned()
            .collect();
        for p in gone {
            let t = self.files.get_mut(&p).expect("listed above");
            if !t.deleted {
                tracing::info!(path = %p.display(), "file deleted; finishing what was written");
                t.deleted = true;
            }
            if t.handle.is_none() {
                self.tracker.retire(t.id);
                self.files.remove(&p);
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
        let replaced: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(p, t)| {
                t.handle
                    .as_ref()
                    .is_some_and(|h| same_file::Handle::from_path(p).is_ok_and(|other| &other != h))
            })
            .map(|(p, _)| p.clone())
            .collect();
        for p in replaced {
            if let Some(repeated) = crate::warn_limit::check("tail.replaced", &p.to_string_lossy())
            {
                tracing::warn!(path = %p.display(), repeated, "file was replaced under the same name; reading the new one from the start");
            }
            self.restart(&p);
        }
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
        let restored = self.restored.remove(&path_str);
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
        self.files.insert(
            s.file.path.clone(),
            Reader {
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
            },
        );
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

    /// Starts a file over from byte 0 as a new generation.
    pub(super) fn restart(&mut self, path: &Path) {
        let id = self.new_id();
        let Some(t) = self.files.get_mut(path) else {
            return;
        };
        if t.handle.take().is_some() {
            self.open -= 1;
        }
        self.tracker.retire(t.id);
        t.id = id;
        t.pos = 0;
        t.carry.clear();
        t.parser = FileParser::new(t.source.clone(), self.options);
        t.fp = Fingerprint { hash: 0, len: 0 };
        t.finished = false;
        t.deleted = false;
        t.generation_known = false;
        let meta = FileMeta {
            path: path.to_string_lossy().into_owned(),
            kind: t.log.kind.name().to_string(),
            host: t.source.host.to_string(),
            fingerprint: t.fp.hex(),
            fp_len: 0,
            size: t.size,
        };
        self.tracker.register(id, meta, 0);
    }
}
