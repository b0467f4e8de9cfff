//! The tailer's progress counters: written by the tailer, read by `backfill`'s progress
//! display and by the metrics. A leaf module so that `metrics` can read them without
//! depending on the tailer.

use std::path::PathBuf;

/// Progress counters, for `backfill`'s progress display and the metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub lines: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
    pub records: std::sync::atomic::AtomicU64,
    pub files_done: std::sync::atomic::AtomicU64,
    pub files_total: std::sync::atomic::AtomicU64,
    pub bytes_total: std::sync::atomic::AtomicU64,
    /// Bytes already shipped before this run (checkpointed) or skipped (`start_at = end`).
    pub bytes_skipped: std::sync::atomic::AtomicU64,
    pub open_files: std::sync::atomic::AtomicU64,
    /// Files with something to read that wait for a handle (`max_open_files` all in use).
    pub files_waiting: std::sync::atomic::AtomicU64,
    /// How long the file waiting longest for a handle has waited, in seconds.
    pub longest_wait_secs: std::sync::atomic::AtomicU64,
    /// Log files that cannot be opened or read (permissions, locks), by path.
    pub unreadable: std::sync::Mutex<std::collections::BTreeMap<PathBuf, String>>,
    /// Records per log kind, indexed by `Kind as usize`.
    pub per_kind: [std::sync::atomic::AtomicU64; 13],
}

impl Counters {
    /// The unreadable files. A thread that panicked holding the lock leaves the map as it was
    /// (one insert or remove at a time), so a poisoned lock is used as it is.
    pub fn unreadable(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<PathBuf, String>> {
        self.unreadable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
