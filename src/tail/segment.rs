//! Building a segment: the records of one read, encoded for every sink, with a parser
//! panic contained to the bytes it interrupted.

use std::path::Path;

use super::Output;
use crate::batch::Payload;
use crate::parse::FileParser;
use crate::privacy::Policy;
use crate::record::Record;

/// The records of one segment as they are encoded for every sink.
pub(super) struct SegmentBuf<'a> {
    pub(super) outputs: &'a [Output],
    /// `[privacy]`, applied to each record before any sink encodes it (so the dead-letter
    /// file, which keeps records as encoded, gets it too). `None` when off or a no-op.
    pub(super) privacy: Option<&'a Policy>,
    pub(super) payloads: Vec<Payload>,
    pub(super) records: u32,
    /// Each payload's (bytes, records) before the line being parsed, to undo a partial one.
    pub(super) marks: Vec<(usize, usize)>,
    pub(super) marked_records: u32,
}

impl<'a> SegmentBuf<'a> {
    pub(super) fn new(
        outputs: &'a [Output],
        privacy: Option<&'a Policy>,
        log_bytes: usize,
    ) -> SegmentBuf<'a> {
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
            privacy: privacy.filter(|p| p.hides_anything()),
            payloads,
            records: 0,
            marks: vec![(0, 0); outputs.len()],
            marked_records: 0,
        }
    }

    pub(super) fn emit(&mut self, r: &Record<'_>) {
        let private;
        let r = match self.privacy {
            Some(p) => {
                private = p.apply(r);
                &private
            }
            None => r,
        };
        self.records += 1;
        for (o, p) in self.outputs.iter().zip(self.payloads.iter_mut()) {
            p.push(&o.encoding, r);
        }
    }

    pub(super) fn mark(&mut self) {
        for (m, p) in self.marks.iter_mut().zip(&self.payloads) {
            *m = (p.data.len(), p.ends.len());
        }
        self.marked_records = self.records;
    }

    /// Drops what was encoded since [`mark`](Self::mark): a panic may have left a record
    /// half-written into a payload.
    pub(super) fn rollback(&mut self) {
        for (&(bytes, ends), p) in self.marks.iter().zip(self.payloads.iter_mut()) {
            p.data.truncate(bytes);
            p.ends.truncate(ends);
        }
        self.records = self.marked_records;
    }

    pub(super) fn finish(self) -> (u32, Vec<Payload>) {
        (self.records, self.payloads)
    }
}

/// Feeds one line to a file's parser. A panic in the parser (a bug, met on some hostile line)
/// must not stop this file or any other: what the panic interrupted — the line, and the
/// multi-line record it was part of — becomes one `parse_error` record without its text, and
/// the file goes on with a fresh parser state.
pub(super) fn push_contained(
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
pub(super) fn flush_contained(
    parser: &mut FileParser,
    seg: &mut SegmentBuf<'_>,
    path: &Path,
    end: u64,
) {
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

pub(super) fn recovered(
    parser: &mut FileParser,
    seg: &mut SegmentBuf<'_>,
    path: &Path,
    from: u64,
    to: u64,
) {
    seg.rollback();
    if let Some(repeated) = crate::warn_limit::check("tail.parser", &path.to_string_lossy()) {
        tracing::error!(path = %path.display(), offset = from, bytes = to.saturating_sub(from), repeated, "the parser failed on these bytes (a bug; please report it): shipped as a parse_error record without their text; the file goes on");
    }
    parser.recover(from, to.saturating_sub(from), &mut |r| seg.emit(r));
}
