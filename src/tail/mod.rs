//! Tail: reading every log file from its checkpoint, as E-Post appends to it.
//!
//! One thread reads all files in turn, a segment at a time, so that no file starves the
//! others and memory stays bounded: it never holds more than `queue_segments`
//! unacknowledged segments, and waits when the sinks fall behind (the files on disk are the
//! buffer). It handles the daily new file, late writes to yesterday's file, partial last
//! lines, truncation, files deleted or replaced under the same name, and thousands of old
//! files with a bounded number of open handles.
//!
//! The [`Tailer`] here is the scheduler: it owns the map of per-file readers, keyed by the
//! file rather than its path (a moved file keeps its reader), and the loop that gives each at
//! most one segment per round. Its other jobs are one file each:
//! - `reader`: one file's state (handle, position, carry, parser, fingerprint, backoff);
//! - `folders`: keeping the readers in step with the folders (new, grown, gone, replaced,
//!   moved);
//! - `handles`: the open-handle budget (`max_open_files`);
//! - `flush`: time-based flushing of partial lines and multi-line records, closing at EOF;
//! - `quarantine`: the viruslog pairs, a source of their own;
//! - `segment`: encoding a read's records for every sink, with parser panics contained.

pub mod fingerprint;
mod flush;
mod folders;
mod handles;
mod quarantine;
mod reader;
mod segment;
/// Line splitting moved to the leaf module [`crate::lines`]; the old path stays for callers.
pub use crate::lines;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::UnboundedSender;

use crate::ack::Tracker;
use crate::batch::{FileId, Payload, Segment};
use crate::checkpoint::FileState;
use crate::config::{Pipeline, Source as SourceConfig};
use crate::discover;
use crate::kind::Kind;
use crate::parse::ParseOptions;
use crate::sink::Encoding;
use crate::time::Date;
use reader::{BACKFILL_ATTEMPTS, Failing, Limits, Reader, ReaderKey, retry_delay};

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

pub struct Tailer {
    cfg: SourceConfig,
    pipeline: Pipeline,
    plan: Plan,
    options: ParseOptions,
    tracker: Arc<Tracker>,
    outputs: Vec<Output>,
    /// Every file's reader, keyed by the file (see [`ReaderKey`]), in the order found.
    files: BTreeMap<ReaderKey, Reader>,
    /// Which reader each path belongs to now (a moved file's reader is re-indexed).
    by_path: HashMap<PathBuf, ReaderKey>,
    next_key: u64,
    restored: HashMap<String, FileState>,
    /// The checkpointed files by (kind, file name), built when first needed: where a file
    /// moved while the shipper was stopped finds its entry.
    restored_by_name: Option<HashMap<(String, String), Vec<String>>>,
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
            restored_by_name: None,
            files: BTreeMap::new(),
            by_path: HashMap::new(),
            next_key: 0,
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
    fn abandoned_partial(&self, t: &Reader) -> bool {
        SystemTime::now()
            .duration_since(t.modified)
            .is_ok_and(|age| age >= self.cfg.partial_line_timeout)
    }

    /// One round over the files: at most one segment each. Returns whether anything was done.
    fn step(&mut self) -> bool {
        // Only files with something to do: thousands of finished old files cost nothing here.
        let keys: Vec<ReaderKey> = self
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
            .map(|(k, _)| *k)
            .collect();
        let mut worked = false;
        for &k in &keys {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            match self.files.get(&k).map(|t| t.log.kind) {
                Some(Kind::Viruslog) => worked |= self.step_quarantine(k),
                Some(_) => worked |= self.step_file(k),
                None => {}
            }
        }
        self.counters
            .open_files
            .store(self.open as u64, Ordering::Relaxed);
        self.count_waiting(&keys);
        worked
    }

    /// The metrics of files waiting for a handle and of files that cannot be read, and a
    /// summary warning about both every ten minutes while there are any.
    /// `active`: the files this step looked at (a file waiting for a handle has something
    /// to read, so it is one of them; the thousands of finished files are not walked again).
    fn count_waiting(&mut self, active: &[ReaderKey]) {
        let mut waiting = 0u64;
        let mut longest = Duration::ZERO;
        for t in active.iter().filter_map(|k| self.files.get(k)) {
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
        let unreadable = self.counters.unreadable().len();
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

    /// Notes that `path` could not be opened or read: warned about once, then retried with a
    /// growing delay (not four times a second), and listed for `backfill` and the metrics.
    fn failed(&mut self, key: ReaderKey, what: &str, e: &std::io::Error) {
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        let path = t.log.path.as_path();
        let times = t.failing.map_or(0, |f| f.times).saturating_add(1);
        // once a spell of failures, and a file that keeps coming back and failing again at
        // most once a minute
        if times == 1
            && let Some(repeated) =
                crate::warn_limit::check("tail.unreadable", &path.to_string_lossy())
        {
            tracing::warn!(path = %path.display(), error = %e, repeated, "cannot {what} log file; retrying with a growing delay (no further warning for this file until it is read again)");
        }
        let now = Instant::now();
        t.failing = Some(Failing {
            times,
            retry_at: now.checked_add(retry_delay(times)).unwrap_or(now),
        });
        self.counters
            .unreadable()
            .insert(path.to_path_buf(), format!("cannot {what}: {e}"));
    }

    fn succeeded(&mut self, key: ReaderKey) {
        if let Some(t) = self.files.get_mut(&key)
            && t.failing.take().is_some()
        {
            tracing::info!(path = %t.log.path.display(), "log file readable again");
            self.counters.unreadable().remove(&t.log.path);
        }
    }

    /// A backfill stops trying a file that kept failing; it names it when it ends.
    fn given_up(&self, t: &Reader) -> bool {
        self.plan.exit_when_caught_up && t.failing.is_some_and(|f| f.times >= BACKFILL_ATTEMPTS)
    }

    /// Not to be tried now: given up, or failing and its retry delay not over yet.
    fn resting(&self, t: &Reader) -> bool {
        self.given_up(t) || t.failing.is_some_and(|f| Instant::now() < f.retry_at)
    }

    fn step_file(&mut self, key: ReaderKey) -> bool {
        let Some(t) = self.files.get(&key) else {
            return false;
        };
        if crate::fault::hit("tail-panic", t.log.path.to_string_lossy().as_bytes()) {
            panic!("injected fault: tail-panic");
        }
        if self.resting(t) {
            return false;
        }
        if t.finished || !(t.size > t.pos || t.handle.is_some()) {
            return self.maybe_flush_idle(key);
        }
        if t.handle.is_none() && !self.open_handle(key) {
            return false;
        }
        // current size, from the open handle
        let size = {
            let t = self.files.get_mut(&key).expect("present");
            match t.handle.as_ref().map(|h| h.as_file().metadata()) {
                Some(Ok(m)) => m.len(),
                _ => t.size,
            }
        };
        let t = self.files.get_mut(&key).expect("present");
        let lines_waiting = memchr::memchr(b'\n', &t.carry).is_some();
        if size < t.pos {
            let path = t.log.path.as_path();
            if let Some(repeated) =
                crate::warn_limit::check("tail.truncated", &path.to_string_lossy())
            {
                tracing::warn!(path = %path.display(), size, offset = t.pos, repeated, "file was truncated; reading it again from the start");
            }
            self.restart(key);
            return true;
        }
        if size > t.size {
            t.last_growth = Instant::now();
        }
        t.size = size;
        if size == t.pos && !lines_waiting {
            return self.at_eof(key);
        }
        if !self.wait_for_room() {
            return false;
        }
        self.read_segment(key);
        true
    }

    /// Reads the file's next segment and sends it on; the reader does the reading and
    /// parsing, the scheduler the bookkeeping (checkpoint metadata, counters, sending).
    fn read_segment(&mut self, key: ReaderKey) {
        let limits = Limits {
            max_bytes: self.pipeline.segment_max_bytes.0 as usize,
            max_records: u32::try_from(self.pipeline.segment_max_records).unwrap_or(u32::MAX),
            max_line: usize::try_from(self.pipeline.max_record_bytes.0).unwrap_or(usize::MAX),
        };
        let t = self.files.get_mut(&key).expect("present");
        let read = match t.read_segment(
            &mut self.buf,
            &self.outputs,
            self.cfg.privacy.as_deref(),
            &limits,
        ) {
            Ok(Some(read)) => read,
            Ok(None) => return,
            Err(e) => {
                self.failed(key, "read", &e);
                return;
            }
        };
        let size = t.size;
        match read.new_fingerprint {
            Some(fp) => {
                let (hex, len) = (fp.hex(), fp.len);
                self.tracker.update_meta(t.id, |m| {
                    m.fingerprint = hex;
                    m.fp_len = len;
                    m.size = size;
                });
            }
            None => self.tracker.update_meta(t.id, |m| m.size = size),
        }
        let (id, kind) = (t.id, t.log.kind);
        self.counters.lines.fetch_add(read.lines, Ordering::Relaxed);
        self.counters.bytes.fetch_add(read.bytes, Ordering::Relaxed);
        self.emit_segment(id, kind, read.end, read.records, read.bytes, read.payloads);
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
