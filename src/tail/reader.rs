//! One log file's reader state: its handle, position, carry (bytes read that do not make a
//! complete line yet), parser, fingerprint and generation, and its failure backoff. The
//! scheduler in `mod.rs` owns one per file.

use std::time::{Duration, Instant, SystemTime};

use std::io::Read as _;

use super::Output;
use super::fingerprint::{self, Fingerprint};
use super::segment::{SegmentBuf, push_contained};
use crate::batch::FileId;
use crate::batch::Payload;
use crate::discover::LogFile;
use crate::lines::Lines;
use crate::parse::FileParser;
use crate::record::Source;

/// A file that could not be opened or read: retried with a growing delay, warned about once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failing {
    pub(super) times: u32,
    pub(super) retry_at: Instant,
}

/// A backfill gives up on a file after this many failures in a row (a permission problem does
/// not fix itself) and names it when it ends; `run` keeps retrying, every 5 minutes at most.
pub(super) const BACKFILL_ATTEMPTS: u32 = 3;

pub(super) fn retry_delay(times: u32) -> Duration {
    Duration::from_secs(1u64 << times.min(8).saturating_sub(1)).min(Duration::from_secs(300))
}

/// What is known of a quarantine pair's two files: sizes and modification times.
pub(super) type PairState = (Option<(u64, SystemTime)>, Option<(u64, SystemTime)>);

/// Which file a reader follows, whatever it is called now: the scheduler's map is keyed by
/// this, and `Tailer::by_path` only says which reader a path belongs to at the moment. A file
/// renamed or moved (a host folder renamed, the work folder moved) keeps its reader and its
/// position; a different file under the same name gets a reader (and a key) of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct ReaderKey(pub(super) u64);

pub(super) struct Reader {
    pub(super) id: FileId,
    pub(super) log: LogFile,
    pub(super) source: Source,
    pub(super) handle: Option<same_file::Handle>,
    /// Next byte to read from the file; `carry` holds the bytes before it that do not make a
    /// complete line yet.
    pub(super) pos: u64,
    pub(super) carry: Vec<u8>,
    pub(super) parser: FileParser,
    pub(super) fp: Fingerprint,
    pub(super) size: u64,
    pub(super) modified: SystemTime,
    pub(super) newest: bool,
    pub(super) last_growth: Instant,
    pub(super) deleted: bool,
    /// Nothing more to do (a shipped quarantine pair, or a file left alone as too old).
    pub(super) finished: bool,
    /// When this file, with something to read, first found every handle in use.
    pub(super) waiting_since: Option<Instant>,
    /// Opening or reading failed: when to try again, and how often it failed in a row.
    pub(super) failing: Option<Failing>,
    /// The quarantine pair as last seen (sizes and times of both files), and since when.
    pub(super) pair_seen: Option<(PairState, Instant)>,
    /// The parser knows the file's generation (from its first line, read when the file is
    /// opened at an offset past it).
    pub(super) generation_known: bool,
}

/// How much one read may take.
pub(super) struct Limits {
    /// Log bytes per segment (`segment_max_bytes`).
    pub(super) max_bytes: usize,
    /// Records per segment (`segment_max_records`).
    pub(super) max_records: u32,
    /// A "line" this long without a line end is cut (`max_record_bytes`).
    pub(super) max_line: usize,
}

/// What one read of a file produced, for the scheduler to account for and send.
pub(super) struct Read {
    pub(super) records: u32,
    pub(super) payloads: Vec<Payload>,
    /// The checkpoint may move here once the segment is acknowledged.
    pub(super) end: u64,
    /// Log bytes read.
    pub(super) bytes: u64,
    pub(super) lines: u64,
    /// A longer fingerprint, taken because the file has grown past the last one.
    pub(super) new_fingerprint: Option<Fingerprint>,
}

impl Reader {
    /// Reads the next segment from the open handle (`None` without one) and parses it into
    /// records encoded for every output. `buf` is scratch space kept between reads. On a
    /// read error nothing has changed.
    pub(super) fn read_segment(
        &mut self,
        buf: &mut Vec<u8>,
        outputs: &[Output],
        privacy: Option<&crate::privacy::Policy>,
        limits: &Limits,
    ) -> std::io::Result<Option<Read>> {
        let Some(h) = self.handle.as_mut() else {
            return Ok(None);
        };
        buf.clear();
        buf.extend_from_slice(&self.carry);
        let base = self.pos - self.carry.len() as u64;
        let want = limits.max_bytes.saturating_sub(buf.len()).max(4096);
        let start_len = buf.len();
        buf.resize(start_len + want, 0);
        let n = match h.as_file_mut().read(&mut buf[start_len..]) {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(0);
                return Err(e);
            }
        };
        buf.truncate(start_len + n);
        self.pos += n as u64;
        if n > 0 {
            self.last_growth = Instant::now();
        }
        let mut seg = SegmentBuf::new(outputs, privacy, buf.len());
        let mut consumed = 0usize;
        let mut lines = 0u64;
        for line in Lines::with_base(buf, base) {
            // A "line" longer than `max_record_bytes` is not a log line (binary junk, a file
            // of NULs): cut it rather than buffer without bound.
            if !line.complete && line.bytes.len() < limits.max_line {
                break;
            }
            let start = line.end - line.bytes.len() as u64 - u64::from(line.complete);
            push_contained(
                &mut self.parser,
                &mut seg,
                &self.log.path,
                start,
                line.bytes,
                line.end,
            );
            consumed = (line.end - base) as usize;
            lines += 1;
            if seg.records >= limits.max_records {
                break;
            }
        }
        let (records, payloads) = seg.finish();
        self.carry.clear();
        self.carry.extend_from_slice(&buf[consumed..]);
        let end = self
            .parser
            .pending_offset()
            .unwrap_or(base + consumed as u64);
        // a longer fingerprint once the file has grown
        let mut new_fingerprint = None;
        if self.fp.len < fingerprint::LEN
            && self.pos > u64::from(self.fp.len)
            && let Ok(fp) = Fingerprint::of(h.as_file_mut())
        {
            self.fp = fp;
            new_fingerprint = Some(fp);
        }
        Ok(Some(Read {
            records,
            payloads,
            end,
            bytes: n as u64,
            lines,
            new_fingerprint,
        }))
    }
}
