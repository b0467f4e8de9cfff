//! Tail: reading every log file from its checkpoint, as E-Post appends to it.
//!
//! One thread reads all files in turn, a segment at a time, so that no file starves the
//! others and memory stays bounded: it never holds more than `queue_segments`
//! unacknowledged segments, and waits when the sinks fall behind (the files on disk are the
//! buffer). It handles the daily new file, late writes to yesterday's file, partial last
//! lines, truncation, files deleted or replaced under the same name, and thousands of old
//! files with a bounded number of open handles.

pub mod fingerprint;
/// Line splitting moved to the leaf module [`crate::lines`]; the old path stays for callers.
pub use crate::lines;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::UnboundedSender;

use crate::ack::{FileMeta, Tracker};
use crate::batch::{FileId, Payload, Segment};
use crate::checkpoint::FileState;
use crate::config::{Pipeline, Source as SourceConfig, StartAt};
use crate::discover::{self, LogFile, scan::Seen};
use crate::kind::Kind;
use crate::lines::Lines;
use crate::parse::{FileParser, ParseOptions, quarantine};
use crate::record::{Record, Source};
use crate::sink::Encoding;
use crate::time::Date;
use fingerprint::Fingerprint;

/// What to read, and when to stop.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Stop once everything that exists was read and acknowledged (`backfill`).
    pub exit_when_caught_up: bool,
    /// Only files whose name date is within these bounds (inclusive).
    pub since: Option<Date>,
    pub until: Option<Date>,
    /// Apply `start_at` and `ignore_older_than` to files never seen before.
    pub first_start_rules: bool,
}

impl Plan {
    pub fn follow() -> Plan {
        Plan {
            exit_when_caught_up: false,
            since: None,
            until: None,
            first_start_rules: true,
        }
    }
}

/// A sink's input: how it wants records encoded, and where segments go.
pub struct Output {
    pub encoding: Encoding,
    pub tx: UnboundedSender<Arc<Segment>>,
}

pub use crate::progress::Counters;

/// Written to in the last ten minutes: worth a stat on every scan (late writes to
/// yesterday's file); older files are checked every 30th scan.
fn recently_written(modified: SystemTime) -> bool {
    SystemTime::now()
        .duration_since(modified)
        .map_or(true, |d| d < Duration::from_secs(600))
}

/// A file that could not be opened or read: retried with a growing delay, warned about once.
#[derive(Debug, Clone, Copy)]
struct Failing {
    times: u32,
    retry_at: Instant,
}

/// A backfill gives up on a file after this many failures in a row (a permission problem does
/// not fix itself) and names it when it ends; `run` keeps retrying, every 5 minutes at most.
const BACKFILL_ATTEMPTS: u32 = 3;

fn retry_delay(times: u32) -> Duration {
    Duration::from_secs(1u64 << times.min(8).saturating_sub(1)).min(Duration::from_secs(300))
}

/// What is known of a quarantine pair's two files: sizes and modification times.
type PairState = (Option<(u64, SystemTime)>, Option<(u64, SystemTime)>);

struct Tracked {
    id: FileId,
    log: LogFile,
    source: Source,
    handle: Option<same_file::Handle>,
    /// Next byte to read from the file; `carry` holds the bytes before it that do not make a
    /// complete line yet.
    pos: u64,
    carry: Vec<u8>,
    parser: FileParser,
    fp: Fingerprint,
    size: u64,
    modified: SystemTime,
    newest: bool,
    last_growth: Instant,
    deleted: bool,
    /// Nothing more to do (a shipped quarantine pair, or a file left alone as too old).
    finished: bool,
    /// When this file, with something to read, first found every handle in use.
    waiting_since: Option<Instant>,
    /// Opening or reading failed: when to try again, and how often it failed in a row.
    failing: Option<Failing>,
    /// The quarantine pair as last seen (sizes and times of both files), and since when.
    pair_seen: Option<(PairState, Instant)>,
    /// The parser knows the file's generation (from its first line, read when the file is
    /// opened at an offset past it).
    generation_known: bool,
}

pub struct Tailer {
    cfg: SourceConfig,
    pipeline: Pipeline,
    plan: Plan,
    options: ParseOptions,
    tracker: Arc<Tracker>,
    outputs: Vec<Output>,
    files: BTreeMap<PathBuf, Tracked>,
    restored: HashMap<String, FileState>,
    next_id: FileId,
    next_seq: u64,
    scans: u64,
    open: usize,
    stop: Arc<AtomicBool>,
    wake: std::sync::mpsc::Receiver<()>,
    counters: Arc<Counters>,
    buf: Vec<u8>,
    scan_cache: discover::scan::ScanCache,
    /// When the last summary of waiting and unreadable files was logged.
    last_summary: Option<Instant>,
}

impl Tailer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: SourceConfig,
        pipeline: Pipeline,
        plan: Plan,
        tracker: Arc<Tracker>,
        outputs: Vec<Output>,
        restored: &[FileState],
        stop: Arc<AtomicBool>,
        wake: std::sync::mpsc::Receiver<()>,
        counters: Arc<Counters>,
    ) -> Tailer {
        let options = ParseOptions {
            encoding: cfg.encoding,
            zone: cfg.zone,
            redact: cfg.redact,
            max_record_bytes: usize::try_from(pipeline.max_record_bytes.0).unwrap_or(usize::MAX),
        };
        Tailer {
            options,
            restored: restored
                .iter()
                .map(|f| (f.path.clone(), f.clone()))
                .collect(),
            cfg,
            pipeline,
            plan,
            tracker,
            outputs,
            files: BTreeMap::new(),
            next_id: 1,
            next_seq: 1,
            scans: 0,
            open: 0,
            stop,
            wake,
            counters,
            buf: Vec::new(),
            scan_cache: Default::default(),
            last_summary: None,
        }
    }

    /// Runs until `stop` is set (or, for a backfill, until caught up). Returns whether it
    /// caught up.
    pub fn run(mut self) -> bool {
        // `None` = never scanned. Not `Instant::now() - 1h`: on Windows `Instant` counts from
        // boot, so that subtraction panics in a service's first hour after a reboot.
        let mut last_scan: Option<Instant> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            if last_scan.is_none_or(|t| t.elapsed() >= self.cfg.poll_interval) {
                self.scan();
                last_scan = Some(Instant::now());
            }
            let worked = self.step();
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            if !worked {
                // A backfill looks again soon: it only waits for the last acknowledgements.
                let mut wait = self.cfg.poll_interval.min(Duration::from_millis(250));
                if self.plan.exit_when_caught_up {
                    self.tracker.drain();
                    if self.caught_up() {
                        return true;
                    }
                    wait = wait.min(Duration::from_millis(20));
                }
                match self.wake.recv_timeout(wait) {
                    Ok(()) => {
                        while self.wake.try_recv().is_ok() {}
                        // a file appeared or changed: look now rather than at the next poll
                        if last_scan.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
                            self.scan();
                            last_scan = Some(Instant::now());
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(wait);
                    }
                }
            }
        }
    }

    /// Everything that exists was read and acknowledged. A last line without its line end
    /// (still being written) is left for `run`: the checkpoint stays before it.
    fn caught_up(&self) -> bool {
        self.scans > 0
            && self.files.values().all(|t| {
                t.finished
                    || self.given_up(t)
                    || (t.pos >= t.size
                        && memchr::memchr(b'\n', &t.carry).is_none()
                        && (t.carry.is_empty() || !self.abandoned_partial(t))
                        && t.parser.pending_offset().is_none())
            })
            && self.tracker.in_flight() == 0
    }

    /// A last line without its line end in a file nobody has written to for
    /// `partial_line_timeout`: `run` ships it after that wait, and a backfill (which does not
    /// wait) must agree, or `status` shows the file behind for ever and retention never
    /// compresses it.
    fn abandoned_partial(&self, t: &Tracked) -> bool {
        SystemTime::now()
            .duration_since(t.modified)
            .is_ok_and(|age| age >= self.cfg.partial_line_timeout)
    }

    fn scan(&mut self) {
        let first = self.scans == 0;
        self.scans += 1;
        if !first && self.scan_cache.quiet_round() {
            // Nothing appeared or vanished: only files not held open but still hot may have
            // grown (a closed file of today, one over max_open_files).
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
        let mut present: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
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
        // files that disappeared
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
        if first {
            let dormant: Vec<String> = self
                .restored
                .keys()
                .filter(|p| {
                    !present.contains(Path::new(p.as_str())) && !Path::new(p.as_str()).exists()
                })
                .cloned()
                .collect();
            for p in dormant {
                self.tracker.forget_dormant(&p);
            }
        }
        // replaced under the same name (restore, copy): the open handle is another file now.
        // Checked every tenth scan: it costs an open per file, and restores are rare.
        if self.scans % 10 != 1 {
            return;
        }
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
            tracing::warn!(path = %p.display(), "file was replaced under the same name; reading the new one from the start");
            self.restart(&p);
        }
    }

    fn in_plan(&self, s: &Seen) -> bool {
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

    fn new_id(&mut self) -> FileId {
        self.next_id += 1;
        self.next_id
    }

    fn source_of(&self, log: &LogFile) -> Source {
        let host = self
            .cfg
            .host
            .clone()
            .or_else(|| log.host.clone())
            .unwrap_or_else(discover::local_host_name);
        Source::new(&host, log.kind, &log.path.to_string_lossy())
    }

    fn discovered(&mut self, s: Seen, first_scan: bool) {
        let path_str = s.file.path.to_string_lossy().into_owned();
        let source = self.source_of(&s.file);
        let id = self.new_id();
        let restored = self.restored.remove(&path_str);
        let mut start = 0u64;
        let mut fp = Fingerprint { hash: 0, len: 0 };
        let mut finished = false;
        match &restored {
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
            Tracked {
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

    /// Starts a file over from byte 0 as a new generation.
    fn restart(&mut self, path: &Path) {
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

    /// One round over the files: at most one segment each. Returns whether anything was done.
    fn step(&mut self) -> bool {
        // Only files with something to do: thousands of finished old files cost nothing here.
        let paths: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(_, t)| {
                !t.finished
                    && (t.handle.is_some()
                        || t.size > t.pos
                        || t.deleted
                        || !t.carry.is_empty()
                        || t.parser.pending_offset().is_some())
            })
            .map(|(p, _)| p.clone())
            .collect();
        let mut worked = false;
        for p in &paths {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            match self.files.get(p).map(|t| t.log.kind) {
                Some(Kind::Viruslog) => worked |= self.step_quarantine(p),
                Some(_) => worked |= self.step_file(p),
                None => {}
            }
        }
        self.counters
            .open_files
            .store(self.open as u64, Ordering::Relaxed);
        self.count_waiting(&paths);
        worked
    }

    /// The metrics of files waiting for a handle and of files that cannot be read, and a
    /// summary warning about both every ten minutes while there are any.
    /// `active`: the files this step looked at (a file waiting for a handle has something
    /// to read, so it is one of them; the thousands of finished files are not walked again).
    fn count_waiting(&mut self, active: &[PathBuf]) {
        let mut waiting = 0u64;
        let mut longest = Duration::ZERO;
        for t in active.iter().filter_map(|p| self.files.get(p)) {
            if let Some(since) = t.waiting_since {
                waiting += 1;
                longest = longest.max(since.elapsed());
            }
        }
        self.counters
            .files_waiting
            .store(waiting, Ordering::Relaxed);
        self.counters
            .longest_wait_secs
            .store(longest.as_secs(), Ordering::Relaxed);
        let unreadable = self
            .counters
            .unreadable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        if (waiting > 0 && longest >= Duration::from_secs(60)) || unreadable > 0 {
            if self
                .last_summary
                .is_some_and(|t| t.elapsed() < Duration::from_secs(600))
            {
                return;
            }
            self.last_summary = Some(Instant::now());
            if waiting > 0 && longest >= Duration::from_secs(60) {
                tracing::warn!(waiting, longest = ?longest, max_open_files = self.cfg.max_open_files, "files wait for a handle: raise max_open_files");
            }
            if unreadable > 0 {
                tracing::warn!(
                    files = unreadable,
                    "log files cannot be read (see the first warning for each; `check` lists them)"
                );
            }
        }
    }

    /// Waits for room in the pipeline; false if asked to stop meanwhile.
    fn wait_for_room(&self) -> bool {
        loop {
            if self.tracker.wait_for_room(Duration::from_millis(200)) {
                return true;
            }
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
        }
    }

    fn step_quarantine(&mut self, path: &Path) -> bool {
        let settle = self.cfg.viruslog_settle;
        let t = self.files.get(path).expect("present");
        if self.given_up(t) || t.failing.is_some_and(|f| Instant::now() < f.retry_at) {
            return false;
        }
        let t = self.files.get_mut(path).expect("present");
        if t.finished || t.deleted {
            return false;
        }
        // E-Post writes the pair; wait until both files have stopped changing: unchanged (sizes
        // and times) for `settle` by our own clock, or both older than `settle` by theirs. The
        // first rule alone decides for a pair stamped in the future (a share on a server whose
        // clock runs ahead), which the second never passes: such pairs were never shipped.
        let msg = discover::message_of(path);
        let state_of = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
        };
        let now_state = (state_of(path), msg.as_deref().and_then(state_of));
        let unchanged_since = match t.pair_seen {
            Some((seen, since)) if seen == now_state => since,
            _ => {
                let now = Instant::now();
                t.pair_seen = Some((now_state, now));
                now
            }
        };
        let old = |st: Option<(u64, SystemTime)>| {
            st.is_some_and(|(_, m)| {
                SystemTime::now()
                    .duration_since(m)
                    .is_ok_and(|age| age >= settle)
            })
        };
        let settled = unchanged_since.elapsed() >= settle
            || (msg.is_some() && old(now_state.0) && old(now_state.1));
        if !settled {
            return false;
        }
        if !self.wait_for_room() {
            return false;
        }
        // The envelope is read up to max_record_bytes, the .MSG only streamed through a fixed
        // buffer (size, hash, headers): neither is held whole in memory.
        let (rcp, rcp_truncated) =
            match quarantine::read_rcp_file(path, self.options.max_record_bytes) {
                Ok(x) => x,
                Err(e) => {
                    self.failed(path, "read", &e);
                    return false;
                }
            };
        self.succeeded(path);
        let t = self.files.get_mut(path).expect("present");
        let meta = std::fs::metadata(path).ok();
        let mtime = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let rcp_len = u64::try_from(rcp.len()).unwrap_or(u64::MAX);
        // past a cut envelope the position is the file's own size (the part read is shorter)
        let rcp_size = match &meta {
            Some(m) if rcp_truncated => m.len().max(rcp_len),
            _ => rcp_len,
        };
        let msg_summary = msg
            .as_ref()
            .and_then(|p| quarantine::summarize_file(p, self.options.encoding).ok());
        let msg_path = msg.as_ref().map(|p| p.to_string_lossy().into_owned());
        let outputs = &self.outputs;
        let m = match (&msg_path, msg_summary) {
            (Some(p), Some(s)) => Some((p.as_str(), s)),
            _ => None,
        };
        let mut seg = SegmentBuf::new(outputs, 0);
        seg.mark();
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            quarantine::record_summarized(
                &t.source,
                &self.options,
                &rcp,
                rcp_truncated,
                mtime,
                m,
                &mut |r: &Record<'_>| seg.emit(r),
            )
        }));
        if built.is_err() {
            // contained as for lines: one parse_error record for the pair, and on we go
            let mut parser = FileParser::new(t.source.clone(), self.options);
            recovered(&mut parser, &mut seg, path, 0, rcp_len);
        }
        let (records, payloads) = seg.finish();
        let fp_bytes = rcp
            .get(..usize::try_from(fingerprint::LEN).map_or(rcp.len(), |l| l.min(rcp.len())))
            .unwrap_or(&rcp);
        let fp = xxhash_rust::xxh3::xxh3_64(fp_bytes);
        // at most fingerprint::LEN, a u32
        let fp_len = u32::try_from(fp_bytes.len()).unwrap_or(fingerprint::LEN);
        let end = rcp_size.max(1);
        t.finished = true;
        t.pos = end;
        t.size = end;
        let id = t.id;
        self.tracker.update_meta(id, |m| {
            m.fingerprint = format!("{fp:016x}");
            m.fp_len = fp_len;
            m.size = end;
        });
        self.counters.files_done.fetch_add(1, Ordering::Relaxed);
        self.emit_segment(id, Kind::Viruslog, end, records, rcp_len, payloads);
        true
    }

    fn open_handle(&mut self, path: &Path) -> bool {
        if self.open >= self.cfg.max_open_files && !self.close_one_idle(path) {
            let t = self.files.get_mut(path).expect("present");
            if t.waiting_since.is_none() {
                t.waiting_since = Some(Instant::now());
                tracing::debug!(path = %path.display(), max_open_files = self.cfg.max_open_files, "every handle is in use; the file waits its turn");
            }
            return false;
        }
        let mut file = match crate::platform::open_shared(path) {
            Ok(f) => f,
            Err(e) => {
                self.failed(path, "open", &e);
                return false;
            }
        };
        self.succeeded(path);
        let t = self.files.get_mut(path).expect("present");
        t.waiting_since = None;
        if t.fp.len > 0 {
            match t.fp.matches(&mut file) {
                Ok(true) => {}
                _ => {
                    drop(file);
                    tracing::warn!(path = %path.display(), "file changed under the same name; reading the new one from the start");
                    self.restart(path);
                    return false;
                }
            }
        }
        if t.pos > 0 && !t.generation_known {
            // resumed past the first line: the ids still need the file's generation
            match fingerprint::generation(&mut file) {
                Ok(Some(g)) => {
                    t.parser.set_generation(g);
                    t.source.generation = g;
                    t.generation_known = true;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read the first line of log file; will retry");
                    return false;
                }
            }
        }
        if let Err(e) = file.seek(SeekFrom::Start(t.pos)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot seek in log file; will retry");
            return false;
        }
        match same_file::Handle::from_file(file) {
            Ok(h) => {
                t.handle = Some(h);
                self.open += 1;
                true
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot identify log file; will retry");
                false
            }
        }
    }

    /// Makes room for `for_path`: closes the handle of a file with nothing left to read, an
    /// old day's first, else the newest file of a folder idle longest (it is stat'ed on every
    /// scan and reopened when it grows). Without the second choice, more folders than
    /// `max_open_files` (central collection) held every handle on their newest files for good
    /// and no other file could ever be read.
    fn close_one_idle(&mut self, for_path: &Path) -> bool {
        let victim = self
            .files
            .iter()
            .filter(|(p, t)| {
                t.handle.is_some()
                    && p.as_path() != for_path
                    && t.carry.is_empty()
                    && t.parser.pending_offset().is_none()
                    && t.pos >= t.size
            })
            .min_by_key(|(_, t)| (t.newest, t.last_growth))
            .map(|(p, _)| p.clone());
        match victim {
            Some(p) => {
                let t = self.files.get_mut(&p).expect("present");
                t.handle = None;
                self.open -= 1;
                true
            }
            None => false,
        }
    }

    /// Notes that `path` could not be opened or read: warned about once, then retried with a
    /// growing delay (not four times a second), and listed for `backfill` and the metrics.
    fn failed(&mut self, path: &Path, what: &str, e: &std::io::Error) {
        let Some(t) = self.files.get_mut(path) else {
            return;
        };
        let times = t.failing.map_or(0, |f| f.times).saturating_add(1);
        if times == 1 {
            tracing::warn!(path = %path.display(), error = %e, "cannot {what} log file; retrying with a growing delay (no further warning for this file)");
        }
        let now = Instant::now();
        t.failing = Some(Failing {
            times,
            retry_at: now.checked_add(retry_delay(times)).unwrap_or(now),
        });
        self.counters
            .unreadable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(path.to_path_buf(), format!("cannot {what}: {e}"));
    }

    fn succeeded(&mut self, path: &Path) {
        if let Some(t) = self.files.get_mut(path)
            && t.failing.take().is_some()
        {
            tracing::info!(path = %path.display(), "log file readable again");
            self.counters
                .unreadable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(path);
        }
    }

    /// A backfill stops trying a file that kept failing; it names it when it ends.
    fn given_up(&self, t: &Tracked) -> bool {
        self.plan.exit_when_caught_up && t.failing.is_some_and(|f| f.times >= BACKFILL_ATTEMPTS)
    }

    fn step_file(&mut self, path: &Path) -> bool {
        if crate::fault::hit("tail-panic", path.to_string_lossy().as_bytes()) {
            panic!("injected fault: tail-panic");
        }
        if self.files.get(path).is_some_and(|t| {
            self.given_up(t) || t.failing.is_some_and(|f| Instant::now() < f.retry_at)
        }) {
            return false;
        }
        let (needs_data, finished) = {
            let t = self.files.get(path).expect("present");
            (t.size > t.pos || t.handle.is_some(), t.finished)
        };
        if finished || !needs_data {
            return self.maybe_flush_idle(path);
        }
        if self.files.get(path).is_some_and(|t| t.handle.is_none()) && !self.open_handle(path) {
            return false;
        }
        // current size, from the open handle
        let size = {
            let t = self.files.get_mut(path).expect("present");
            match t.handle.as_ref().map(|h| h.as_file().metadata()) {
                Some(Ok(m)) => m.len(),
                _ => t.size,
            }
        };
        let t = self.files.get_mut(path).expect("present");
        let lines_waiting = memchr::memchr(b'\n', &t.carry).is_some();
        if size < t.pos {
            tracing::warn!(path = %path.display(), size, offset = t.pos, "file was truncated; reading it again from the start");
            self.restart(path);
            return true;
        }
        if size > t.size {
            t.last_growth = Instant::now();
        }
        t.size = size;
        if size == t.pos && !lines_waiting {
            return self.at_eof(path);
        }
        if !self.wait_for_room() {
            return false;
        }
        self.read_segment(path);
        true
    }

    /// Nothing new to read: flush what waits on time, close idle rotated files, finish
    /// deleted ones.
    fn at_eof(&mut self, path: &Path) -> bool {
        let worked = self.maybe_flush_idle(path);
        let close_inactive = self.cfg.close_inactive;
        let t = self.files.get_mut(path).expect("present");
        let idle = t.last_growth.elapsed();
        let settled = t.carry.is_empty() && t.parser.pending_offset().is_none();
        if t.deleted && (settled || idle >= self.cfg.partial_line_timeout) {
            // Deleted: what was written is read; flush the rest and let it go.
            if !settled {
                self.flush(path, true);
            }
            let t = self.files.get_mut(path).expect("present");
            if t.handle.take().is_some() {
                self.open -= 1;
            }
            self.tracker.retire(t.id);
            self.counters.files_done.fetch_add(1, Ordering::Relaxed);
            self.files.remove(path);
            return true;
        }
        let old_day = !t.newest || self.plan.exit_when_caught_up;
        // history (not written for a while) is closed at its end at once; yesterday's file
        // stays open for late writes until it has been idle for close_inactive
        let quiet = SystemTime::now()
            .duration_since(t.modified)
            .is_ok_and(|d| d >= close_inactive);
        if t.handle.is_some()
            && settled
            && old_day
            && (idle >= close_inactive || quiet || self.plan.exit_when_caught_up)
        {
            t.handle = None;
            self.open -= 1;
            self.counters.files_done.fetch_add(1, Ordering::Relaxed);
        }
        worked
    }

    /// Emits a multi-line record or a partial last line that has waited long enough.
    fn maybe_flush_idle(&mut self, path: &Path) -> bool {
        let t = self.files.get(path).expect("present");
        let idle = t.last_growth.elapsed();
        let partial_due = !t.carry.is_empty()
            && if self.plan.exit_when_caught_up {
                self.abandoned_partial(t)
            } else {
                idle >= self.cfg.partial_line_timeout
            };
        let pending_due = t.parser.pending_offset().is_some()
            && (idle >= self.cfg.multiline_timeout || self.plan.exit_when_caught_up);
        if partial_due || pending_due {
            if !self.wait_for_room() {
                return false;
            }
            return self.flush(path, partial_due);
        }
        false
    }

    /// Emits the pending multi-line record, and the partial last line too if `partial`.
    fn flush(&mut self, path: &Path, partial: bool) -> bool {
        let t = self.files.get_mut(path).expect("present");
        let mut seg = SegmentBuf::new(&self.outputs, 0);
        let mut end = t.pos - t.carry.len() as u64;
        if partial && !t.carry.is_empty() {
            tracing::debug!(path = %path.display(), "flushing a last line that has no line end after waiting");
            let carry = std::mem::take(&mut t.carry);
            push_contained(&mut t.parser, &mut seg, path, end, &carry, t.pos);
            end = t.pos;
            self.counters.lines.fetch_add(1, Ordering::Relaxed);
        }
        flush_contained(&mut t.parser, &mut seg, path, end);
        let id = t.id;
        let kind = t.log.kind;
        let (records, payloads) = seg.finish();
        self.emit_segment(id, kind, end, records, 0, payloads);
        true
    }

    fn read_segment(&mut self, path: &Path) {
        let max_bytes = self.pipeline.segment_max_bytes.0 as usize;
        let max_records = u32::try_from(self.pipeline.segment_max_records).unwrap_or(u32::MAX);
        let max_line = usize::try_from(self.pipeline.max_record_bytes.0).unwrap_or(usize::MAX);
        let outputs = &self.outputs;
        let t = self.files.get_mut(path).expect("present");
        let Some(h) = t.handle.as_mut() else { return };
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&t.carry);
        let base = t.pos - t.carry.len() as u64;
        let want = max_bytes.saturating_sub(buf.len()).max(4096);
        let start_len = buf.len();
        buf.resize(start_len + want, 0);
        let n = match h.as_file_mut().read(&mut buf[start_len..]) {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(0);
                self.buf = buf;
                self.failed(path, "read", &e);
                return;
            }
        };
        buf.truncate(start_len + n);
        t.pos += n as u64;
        if n > 0 {
            t.last_growth = Instant::now();
        }
        let mut seg = SegmentBuf::new(outputs, buf.len());
        let mut consumed = 0usize;
        let mut lines = 0u64;
        for line in Lines::with_base(&buf, base) {
            // A "line" longer than `max_record_bytes` is not a log line (binary junk, a file
            // of NULs): cut it rather than buffer without bound.
            if !line.complete && line.bytes.len() < max_line {
                break;
            }
            let start = line.end - line.bytes.len() as u64 - u64::from(line.complete);
            push_contained(&mut t.parser, &mut seg, path, start, line.bytes, line.end);
            consumed = (line.end - base) as usize;
            lines += 1;
            if seg.records >= max_records {
                break;
            }
        }
        let (records, payloads) = seg.finish();
        t.carry.clear();
        t.carry.extend_from_slice(&buf[consumed..]);
        let end = t.parser.pending_offset().unwrap_or(base + consumed as u64);
        // a longer fingerprint once the file has grown
        if t.fp.len < fingerprint::LEN
            && t.pos > u64::from(t.fp.len)
            && let Ok(fp) = Fingerprint::of(h.as_file_mut())
        {
            t.fp = fp;
            let (hex, len, size) = (fp.hex(), fp.len, t.size);
            self.tracker.update_meta(t.id, |m| {
                m.fingerprint = hex;
                m.fp_len = len;
                m.size = size;
            });
        } else {
            let size = t.size;
            self.tracker.update_meta(t.id, |m| m.size = size);
        }
        let (id, kind) = (t.id, t.log.kind);
        self.counters.lines.fetch_add(lines, Ordering::Relaxed);
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.buf = buf;
        self.emit_segment(id, kind, end, records, n as u64, payloads);
    }

    fn emit_segment(
        &mut self,
        file: FileId,
        kind: Kind,
        end: u64,
        records: u32,
        log_bytes: u64,
        payloads: Vec<Payload>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counters
            .records
            .fetch_add(u64::from(records), Ordering::Relaxed);
        self.counters.per_kind[kind as usize].fetch_add(u64::from(records), Ordering::Relaxed);
        self.tracker.add_segment(seq, file, end, records);
        if records == 0 {
            return;
        }
        let seg = Arc::new(Segment {
            seq,
            file,
            end,
            records,
            log_bytes,
            kind,
            payloads,
        });
        for o in &self.outputs {
            // a closed channel means that sink has stopped; shutdown is under way
            let _ = o.tx.send(seg.clone());
        }
    }
}

/// The records of one segment as they are encoded for every sink.
struct SegmentBuf<'a> {
    outputs: &'a [Output],
    payloads: Vec<Payload>,
    records: u32,
    /// Each payload's (bytes, records) before the line being parsed, to undo a partial one.
    marks: Vec<(usize, usize)>,
    marked_records: u32,
}

impl<'a> SegmentBuf<'a> {
    fn new(outputs: &'a [Output], log_bytes: usize) -> SegmentBuf<'a> {
        // JSON records are about seven times the log bytes: size once, not by doubling
        let payloads = outputs
            .iter()
            .map(|_| Payload {
                data: Vec::with_capacity(log_bytes.saturating_mul(8).saturating_add(1024)),
                ends: Vec::with_capacity(log_bytes / 64),
            })
            .collect();
        SegmentBuf {
            outputs,
            payloads,
            records: 0,
            marks: vec![(0, 0); outputs.len()],
            marked_records: 0,
        }
    }

    fn emit(&mut self, r: &Record<'_>) {
        self.records += 1;
        for (o, p) in self.outputs.iter().zip(self.payloads.iter_mut()) {
            p.push(&o.encoding, r);
        }
    }

    fn mark(&mut self) {
        for (m, p) in self.marks.iter_mut().zip(&self.payloads) {
            *m = (p.data.len(), p.ends.len());
        }
        self.marked_records = self.records;
    }

    /// Drops what was encoded since [`mark`](Self::mark): a panic may have left a record
    /// half-written into a payload.
    fn rollback(&mut self) {
        for (&(bytes, ends), p) in self.marks.iter().zip(self.payloads.iter_mut()) {
            p.data.truncate(bytes);
            p.ends.truncate(ends);
        }
        self.records = self.marked_records;
    }

    fn finish(self) -> (u32, Vec<Payload>) {
        (self.records, self.payloads)
    }
}

/// Feeds one line to a file's parser. A panic in the parser (a bug, met on some hostile line)
/// must not stop this file or any other: what the panic interrupted — the line, and the
/// multi-line record it was part of — becomes one `parse_error` record without its text, and
/// the file goes on with a fresh parser state.
fn push_contained(
    parser: &mut FileParser,
    seg: &mut SegmentBuf<'_>,
    path: &Path,
    start: u64,
    bytes: &[u8],
    end: u64,
) {
    let stretch = parser.pending_offset().unwrap_or(start);
    seg.mark();
    let pushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        parser.push_line(start, bytes, &mut |r| seg.emit(r))
    }));
    if pushed.is_err() {
        recovered(parser, seg, path, stretch, end);
    }
}

/// [`push_contained`] for the end of a multi-line record.
fn flush_contained(parser: &mut FileParser, seg: &mut SegmentBuf<'_>, path: &Path, end: u64) {
    let Some(stretch) = parser.pending_offset() else {
        return;
    };
    seg.mark();
    let flushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        parser.flush(&mut |r| seg.emit(r))
    }));
    if flushed.is_err() {
        recovered(parser, seg, path, stretch, end);
    }
}

fn recovered(parser: &mut FileParser, seg: &mut SegmentBuf<'_>, path: &Path, from: u64, to: u64) {
    seg.rollback();
    tracing::error!(path = %path.display(), offset = from, bytes = to.saturating_sub(from), "the parser failed on these bytes (a bug; please report it): shipped as a parse_error record without their text; the file goes on");
    parser.recover(from, to.saturating_sub(from), &mut |r| seg.emit(r));
}
