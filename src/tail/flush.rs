//! Time-based flushing: a multi-line record or a partial last line is emitted once its file
//! has been quiet long enough, and idle or deleted files are closed or let go at their end.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::Tailer;
use super::reader::ReaderKey;
use super::segment::{SegmentBuf, flush_contained, push_contained};

impl Tailer {
    /// Nothing new to read: flush what waits on time, close idle rotated files, finish
    /// deleted ones.
    pub(super) fn at_eof(&mut self, key: ReaderKey) -> bool {
        let worked = self.maybe_flush_idle(key);
        let close_inactive = self.cfg.close_inactive;
        let Some(t) = self.files.get_mut(&key) else {
            return worked;
        };
        let idle = t.last_growth.elapsed();
        let settled = t.carry.is_empty() && t.parser.pending_offset().is_none();
        if t.deleted && (settled || idle >= self.cfg.partial_line_timeout) {
            // Deleted: what was written is read; flush the rest and let it go.
            if !settled {
                self.flush(key, true);
            }
            if let Some(t) = self.remove_reader(key) {
                if t.handle.is_some() {
                    self.open -= 1;
                }
                self.tracker.retire(t.id);
            }
            self.counters.files_done.fetch_add(1, Ordering::Relaxed);
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
    pub(super) fn maybe_flush_idle(&mut self, key: ReaderKey) -> bool {
        let Some(t) = self.files.get(&key) else {
            return false;
        };
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
            return self.flush(key, partial_due);
        }
        false
    }

    /// Emits the pending multi-line record, and the partial last line too if `partial`.
    pub(super) fn flush(&mut self, key: ReaderKey, partial: bool) -> bool {
        let Some(t) = self.files.get_mut(&key) else {
            return false;
        };
        let path = t.log.path.as_path();
        let mut seg = SegmentBuf::new(&self.outputs, self.cfg.privacy.as_deref(), 0);
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
}
