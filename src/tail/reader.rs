//! One log file's reader state: its handle, position, carry (bytes read that do not make a
//! complete line yet), parser, fingerprint and generation, and its failure backoff. The
//! scheduler in `mod.rs` owns one per file.

use std::time::{Duration, Instant, SystemTime};

use super::fingerprint::Fingerprint;
use crate::batch::FileId;
use crate::discover::LogFile;
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
