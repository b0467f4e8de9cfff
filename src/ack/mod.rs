//! Ack: which segments every sink has confirmed, and therefore how far each file's checkpoint
//! may move. Also the pipeline's backpressure: the tailer may hold at most `capacity`
//! unacknowledged segments, and waits here when it has that many.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::batch::FileId;
use crate::checkpoint::{Delta, FileState, SinkState, Snapshot};

/// What the checkpoint records of a file, besides its offset.
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub path: String,
    pub kind: String,
    pub host: String,
    pub fingerprint: String,
    pub fp_len: u32,
    pub size: u64,
}

#[derive(Debug)]
struct Progress {
    meta: FileMeta,
    acked: u64,
    updated_ms: i64,
    /// (seq, end, done) in the order the segments were made.
    queue: VecDeque<(u64, u64, bool)>,
    /// Dropped from the checkpoint once everything read was acknowledged (file deleted).
    retired: bool,
}

#[derive(Debug)]
struct Pending {
    file: FileId,
    remaining: u32,
    records: u32,
    since_ms: i64,
}

#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    pending: HashMap<u64, Pending>,
    files: BTreeMap<FileId, Progress>,
    /// The generation of each path whose offset the checkpoint shows.
    current: HashMap<String, FileId>,
    sinks: BTreeMap<String, SinkState>,
    changed: bool,
    /// The paths whose checkpoint entry changed since the last [`Tracker::delta`]: a write
    /// costs what moved, not the number of files.
    dirty: BTreeSet<String>,
    /// Snapshot entries of files not (yet) opened this run, kept so they are not forgotten.
    dormant: BTreeMap<String, FileState>,
}

pub struct Tracker {
    sinks: usize,
    capacity: usize,
    state: Mutex<State>,
    room: Condvar,
    /// Signalled while the tailer waits for room (nothing new can come until something is
    /// acknowledged) and once a backfill has read everything: a sink gathering a batch then
    /// sends what it has instead of waiting for its batch timeout.
    send_now: tokio::sync::Notify,
    /// A backfill read everything there is: no batch will grow any more.
    draining: std::sync::atomic::AtomicBool,
}

pub use crate::time::now_ms;

impl Tracker {
    /// The shared state. A thread that panicked while holding the lock leaves it poisoned;
    /// the state itself stays consistent (every change is one insert or update), so the others
    /// carry on and the supervisor reports the dead thread, rather than panicking in turn.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `sink_names` in sink order; `restored` is the checkpoint loaded at start.
    pub fn new(sink_names: &[String], capacity: usize, restored: &Snapshot) -> Tracker {
        let mut st = State::default();
        for n in sink_names {
            st.sinks.insert(
                n.clone(),
                restored.sinks.get(n).cloned().unwrap_or_default(),
            );
        }
        for f in &restored.files {
            st.dormant.insert(f.path.clone(), f.clone());
        }
        Tracker {
            sinks: sink_names.len(),
            capacity,
            state: Mutex::new(st),
            room: Condvar::new(),
            send_now: tokio::sync::Notify::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A file generation is being read from `offset` (everything before it counts as done).
    pub fn register(&self, id: FileId, meta: FileMeta, offset: u64) {
        let mut st = self.state();
        st.dormant.remove(&meta.path);
        st.current.insert(meta.path.clone(), id);
        st.dirty.insert(meta.path.clone());
        st.files.insert(
            id,
            Progress {
                meta,
                acked: offset,
                updated_ms: now_ms(),
                queue: VecDeque::new(),
                retired: false,
            },
        );
        st.changed = true;
    }

    /// Updates what the checkpoint says of a file (a longer fingerprint, a new size).
    pub fn update_meta(&self, id: FileId, f: impl FnOnce(&mut FileMeta)) {
        let mut st = self.state();
        let st = &mut *st;
        if let Some(p) = st.files.get_mut(&id) {
            f(&mut p.meta);
            st.changed = true;
            st.dirty.insert(p.meta.path.clone());
        }
    }

    /// File `id` was moved to `path` (on `host`): its checkpoint entry moves with it, and the
    /// old path's entry goes.
    pub fn relocate(&self, id: FileId, path: &str, host: &str) {
        let mut st = self.state();
        let st = &mut *st;
        let Some(p) = st.files.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut p.meta.path, path.to_string());
        p.meta.host = host.to_string();
        if st.current.get(&old) == Some(&id) {
            st.current.remove(&old);
        }
        st.dormant.remove(path);
        st.current.insert(path.to_string(), id);
        st.dirty.insert(old);
        st.dirty.insert(path.to_string());
        st.changed = true;
    }

    /// The file is gone: forget it once what was read of it is acknowledged.
    pub fn retire(&self, id: FileId) {
        let mut st = self.state();
        if let Some(p) = st.files.get_mut(&id) {
            p.retired = true;
        }
        Self::collect(&mut st, id);
    }

    /// Forgets a checkpoint entry of a file that no longer exists and was never opened.
    pub fn forget_dormant(&self, path: &str) {
        let mut st = self.state();
        if st.dormant.remove(path).is_some() {
            st.changed = true;
            st.dirty.insert(path.to_string());
        }
    }

    /// Waits until fewer than `capacity` segments are unacknowledged, or `timeout` passes.
    /// Returns whether there is room.
    pub fn wait_for_room(&self, timeout: Duration) -> bool {
        let st = self.state();
        if st.in_flight >= self.capacity {
            self.send_now.notify_waiters();
        }
        let (st, _) = self
            .room
            .wait_timeout_while(st, timeout, |s| s.in_flight >= self.capacity)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.in_flight < self.capacity
    }

    /// Resolves when waiting for more segments is pointless: the tailer is blocked on a full
    /// queue, or a backfill has read everything.
    pub async fn send_now(&self) {
        let notified = self.send_now.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.draining.load(std::sync::atomic::Ordering::Relaxed)
            || self.state().in_flight >= self.capacity
        {
            return;
        }
        notified.await;
    }

    /// A backfill has read everything: sinks send their last batches at once.
    pub fn drain(&self) {
        if !self
            .draining
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.send_now.notify_waiters();
        }
    }

    pub fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// Records a new segment before it is handed to the sinks. A segment with no records
    /// needs no sink and is done at once (it still moves the checkpoint, in order).
    pub fn add_segment(&self, seq: u64, file: FileId, end: u64, records: u32) {
        let mut st = self.state();
        let done = records == 0 || self.sinks == 0;
        if let Some(p) = st.files.get_mut(&file) {
            p.queue.push_back((seq, end, done));
        }
        if done {
            Self::advance(&mut st, file);
        } else {
            st.in_flight += 1;
            st.pending.insert(
                seq,
                Pending {
                    file,
                    remaining: self.sinks as u32,
                    records,
                    since_ms: now_ms(),
                },
            );
        }
    }

    /// Sink `sink` has stored (or dead-lettered) every record of segment `seq`.
    pub fn ack(&self, sink: &str, seq: u64, dead_lettered: u64) {
        let mut st = self.state();
        let Some(p) = st.pending.get_mut(&seq) else {
            return;
        };
        p.remaining -= 1;
        let (file, records, finished) = (p.file, p.records, p.remaining == 0);
        if let Some(s) = st.sinks.get_mut(sink) {
            s.last_ack_ms = now_ms();
            s.acked_records += u64::from(records);
            s.dead_lettered += dead_lettered;
        }
        if finished {
            st.pending.remove(&seq);
            st.in_flight -= 1;
            if let Some(f) = st.files.get_mut(&file)
                && let Some(e) = f.queue.iter_mut().find(|e| e.0 == seq)
            {
                e.2 = true;
            }
            Self::advance(&mut st, file);
            drop(st);
            self.room.notify_all();
        }
    }

    fn advance(st: &mut State, file: FileId) {
        if let Some(p) = st.files.get_mut(&file) {
            let mut moved = false;
            while let Some(&(_, end, true)) = p.queue.front() {
                p.acked = end;
                p.queue.pop_front();
                moved = true;
            }
            if moved {
                p.updated_ms = now_ms();
                st.changed = true;
                st.dirty.insert(p.meta.path.clone());
            }
        }
        Self::collect(st, file);
    }

    /// Drops file `id` once it is retired and everything read of it is acknowledged. Only
    /// the file whose state just changed is looked at: an ack must not cost a walk over
    /// every file (10,800 of them made each ack take about 0.25 ms under the lock).
    fn collect(st: &mut State, id: FileId) {
        if !st
            .files
            .get(&id)
            .is_some_and(|p| p.retired && p.queue.is_empty())
        {
            return;
        }
        if let Some(p) = st.files.remove(&id)
            && st.current.get(&p.meta.path) == Some(&id)
        {
            st.current.remove(&p.meta.path);
            st.dirty.insert(p.meta.path);
        }
        st.changed = true;
    }

    /// The acknowledged offset of a file generation.
    pub fn acked(&self, id: FileId) -> Option<u64> {
        self.state().files.get(&id).map(|p| p.acked)
    }

    /// Whether every segment of `id` was acknowledged.
    pub fn settled(&self, id: FileId) -> bool {
        self.state()
            .files
            .get(&id)
            .is_none_or(|p| p.queue.is_empty())
    }

    /// Per sink: last acknowledgement and totals (for metrics and health).
    pub fn sink_states(&self) -> BTreeMap<String, SinkState> {
        self.state().sinks.clone()
    }

    /// (path, size, acknowledged offset) of every file being read.
    pub fn files_view(&self) -> Vec<(String, u64, u64)> {
        let st = self.state();
        st.current
            .iter()
            .filter_map(|(p, id)| st.files.get(id).map(|f| (p.clone(), f.meta.size, f.acked)))
            .collect()
    }

    /// When the oldest unacknowledged segment was handed to the sinks.
    pub fn oldest_pending_ms(&self) -> Option<i64> {
        self.state().pending.values().map(|p| p.since_ms).min()
    }

    /// The whole checkpoint as it stands now, without affecting what is next written.
    /// Clones every file's entry under the lock: for retention and tests, not for the
    /// periodic write (that is [`Tracker::delta`]).
    pub fn current(&self) -> Snapshot {
        let st = self.state();
        let mut files: Vec<FileState> = st.dormant.values().cloned().collect();
        files.extend(st.current.keys().filter_map(|path| st.current_entry(path)));
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Snapshot {
            version: 1,
            written_ms: now_ms(),
            generation: 0,
            files,
            sinks: st.sinks.clone(),
        }
    }

    /// What moved since the last call: the entries of the paths that changed, the paths
    /// the checkpoint no longer holds, the sinks' totals. `None` if nothing moved. The lock
    /// is held for as long as it takes to copy what moved.
    pub fn delta(&self) -> Option<Delta> {
        let mut st = self.state();
        if !st.changed {
            return None;
        }
        st.changed = false;
        let dirty = std::mem::take(&mut st.dirty);
        let mut delta = Delta {
            written_ms: now_ms(),
            sinks: st.sinks.clone(),
            ..Delta::default()
        };
        for path in dirty {
            let entry = st
                .current_entry(&path)
                .or_else(|| st.dormant.get(&path).cloned());
            match entry {
                Some(e) => delta.files.push(e),
                None => delta.removed.push(path),
            }
        }
        Some(delta)
    }
}

impl State {
    /// The checkpoint entry of the generation now read under `path`.
    fn current_entry(&self, path: &str) -> Option<FileState> {
        let p = self.files.get(self.current.get(path)?)?;
        Some(FileState {
            path: path.to_string(),
            kind: p.meta.kind.clone(),
            host: p.meta.host.clone(),
            fingerprint: p.meta.fingerprint.clone(),
            fp_len: p.meta.fp_len,
            offset: p.acked,
            size: p.meta.size,
            updated_ms: p.updated_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(p: &str) -> FileMeta {
        FileMeta {
            path: p.into(),
            kind: "inlog".into(),
            host: "H".into(),
            fingerprint: "0".into(),
            fp_len: 0,
            size: 0,
        }
    }

    #[test]
    fn checkpoint_moves_only_past_segments_every_sink_acked_in_order() {
        let t = Tracker::new(&["a".into(), "b".into()], 8, &Snapshot::default());
        t.register(1, meta("/f"), 0);
        t.add_segment(1, 1, 100, 5);
        t.add_segment(2, 1, 200, 5);
        t.add_segment(3, 1, 250, 0); // blank lines only
        t.ack("a", 2, 0);
        t.ack("b", 2, 0);
        assert_eq!(t.acked(1), Some(0), "segment 1 is not done yet");
        t.ack("a", 1, 0);
        assert_eq!(t.acked(1), Some(0), "sink b has not acked segment 1");
        t.ack("b", 1, 0);
        assert_eq!(t.acked(1), Some(250));
        assert_eq!(t.in_flight(), 0);
        let d = t.delta().unwrap();
        assert_eq!(d.files.len(), 1);
        assert_eq!(d.files[0].offset, 250);
        assert_eq!(d.sinks["a"].acked_records, 10);
        assert!(t.delta().is_none(), "unchanged");
    }

    #[test]
    fn backpressure_waits_for_acks() {
        let t = std::sync::Arc::new(Tracker::new(&["a".into()], 1, &Snapshot::default()));
        t.register(1, meta("/f"), 0);
        t.add_segment(1, 1, 10, 1);
        assert!(!t.wait_for_room(Duration::from_millis(10)));
        let t2 = t.clone();
        let h = std::thread::spawn(move || t2.wait_for_room(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(20));
        t.ack("a", 1, 0);
        assert!(h.join().unwrap());
    }

    #[test]
    fn newer_generation_owns_the_path_and_retired_files_leave() {
        let mut restored = Snapshot::default();
        restored.files.push(FileState {
            path: "/old".into(),
            kind: "inlog".into(),
            host: "H".into(),
            fingerprint: "0".into(),
            fp_len: 0,
            offset: 7,
            size: 7,
            updated_ms: 0,
        });
        let t = Tracker::new(&["a".into()], 8, &restored);
        t.register(1, meta("/f"), 0);
        t.add_segment(1, 1, 100, 1);
        t.register(2, meta("/f"), 0); // replaced under the same name
        t.add_segment(2, 2, 30, 1);
        t.ack("a", 2, 0);
        t.ack("a", 1, 0);
        let s = t.current();
        let f = s.file("/f").unwrap();
        assert_eq!(f.offset, 30);
        assert_eq!(
            s.file("/old").unwrap().offset,
            7,
            "dormant entries are kept"
        );
        t.retire(2);
        assert!(t.current().file("/f").is_none());
    }

    /// Of 1,000 files, the two that moved are in the delta, and nothing else; a retired file
    /// and a forgotten dormant entry are listed as removed; `current` does not consume what
    /// the next delta must hold.
    #[test]
    fn a_delta_holds_exactly_what_moved() {
        let mut restored = Snapshot::default();
        for p in ["/dormant1", "/dormant2"] {
            restored.files.push(FileState {
                path: p.into(),
                kind: "inlog".into(),
                host: "H".into(),
                fingerprint: "0".into(),
                fp_len: 0,
                offset: 3,
                size: 3,
                updated_ms: 0,
            });
        }
        let t = Tracker::new(&["a".into()], 64, &restored);
        for id in 0..1000u64 {
            t.register(id, meta(&format!("/f{id}")), 0);
        }
        let first = t.delta().unwrap();
        assert_eq!(first.files.len(), 1000, "every registered file once");
        assert!(t.delta().is_none());
        t.add_segment(1, 17, 100, 2);
        t.add_segment(2, 900, 50, 1);
        t.add_segment(3, 17, 160, 1);
        t.ack("a", 1, 0);
        t.ack("a", 2, 0);
        let _ = t.current();
        let d = t.delta().unwrap();
        let moved: Vec<(&str, u64)> = d
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.offset))
            .collect();
        assert_eq!(moved, vec![("/f17", 100), ("/f900", 50)]);
        assert!(d.removed.is_empty());
        assert_eq!(d.sinks["a"].acked_records, 3);
        t.retire(900);
        t.forget_dormant("/dormant1");
        t.ack("a", 3, 0);
        let d = t.delta().unwrap();
        let moved: Vec<(&str, u64)> = d
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.offset))
            .collect();
        assert_eq!(moved, vec![("/f17", 160)]);
        assert_eq!(
            d.removed,
            vec!["/dormant1".to_string(), "/f900".to_string()]
        );
        assert_eq!(t.current().files.len(), 1000, "999 read, one dormant left");
    }
}
