//! Quarantine pairs (`viruslog`): a `.RCP` envelope and its `.MSG`, written once by E-Post
//! and shipped as one record when both have stopped changing. A source of its own: no
//! handle is kept, nothing is tailed, and the pair is finished once shipped.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::reader::ReaderKey;
use super::segment::{SegmentBuf, recovered};
use super::{Tailer, fingerprint};
use crate::discover;
use crate::kind::Kind;
use crate::parse::{FileParser, quarantine};
use crate::record::Record;

impl Tailer {
    pub(super) fn step_quarantine(&mut self, key: ReaderKey) -> bool {
        let Some(t) = self.files.get(&key) else {
            return false;
        };
        if self.resting(t) || t.finished || t.deleted {
            return false;
        }
        let path = t.log.path.clone();
        let msg = discover::message_of(&path);
        if !self.pair_settled(key, &path, msg.as_deref()) {
            return false;
        }
        if !self.wait_for_room() {
            return false;
        }
        // The envelope is read up to max_record_bytes, the .MSG only streamed through a fixed
        // buffer (size, hash, headers): neither is held whole in memory.
        let (rcp, rcp_truncated) =
            match quarantine::read_rcp_file(&path, self.options.max_record_bytes) {
                Ok(x) => x,
                Err(e) => {
                    self.failed(key, "read", &e);
                    return false;
                }
            };
        self.succeeded(key);
        self.ship_pair(key, &path, msg.as_deref(), &rcp, rcp_truncated);
        true
    }

    /// E-Post writes the pair; wait until both files have stopped changing: unchanged (sizes
    /// and times) for `settle` by our own clock, or both older than `settle` by theirs. The
    /// first rule alone decides for a pair stamped in the future (a share on a server whose
    /// clock runs ahead), which the second never passes: such pairs were never shipped.
    fn pair_settled(&mut self, key: ReaderKey, path: &Path, msg: Option<&Path>) -> bool {
        let settle = self.cfg.viruslog_settle;
        let Some(t) = self.files.get_mut(&key) else {
            return false;
        };
        let state_of = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
        };
        let now_state = (state_of(path), msg.and_then(state_of));
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
        unchanged_since.elapsed() >= settle
            || (msg.is_some() && old(now_state.0) && old(now_state.1))
    }

    /// Builds the pair's record from the envelope `rcp` (and a summary of the `.MSG`), sends
    /// it, and marks the pair finished.
    fn ship_pair(
        &mut self,
        key: ReaderKey,
        path: &Path,
        msg: Option<&Path>,
        rcp: &[u8],
        rcp_truncated: bool,
    ) {
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
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
        let msg_summary =
            msg.and_then(|p| quarantine::summarize_file(p, self.options.encoding).ok());
        let msg_path = msg.map(|p| p.to_string_lossy().into_owned());
        let outputs = &self.outputs;
        let m = match (&msg_path, msg_summary) {
            (Some(p), Some(s)) => Some((p.as_str(), s)),
            _ => None,
        };
        let mut seg = SegmentBuf::new(outputs, self.cfg.privacy.as_deref(), 0);
        seg.mark();
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            quarantine::record_summarized(
                &t.source,
                &self.options,
                rcp,
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
            .unwrap_or(rcp);
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
    }
}
