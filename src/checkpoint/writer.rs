//! The checkpoint writer: keeps its own copy of the whole checkpoint, so that a compaction
//! serialises that copy and never makes the tracker (whose lock the sinks' acks take) clone
//! every file's state.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};

use super::journal::{self, Delta};
use super::{FileState, SinkState, Snapshot, Store};

/// The journal is compacted into a new base once it is larger than this many times the base
/// (and at least [`COMPACT_MIN_BYTES`]): the bytes written then stay within a small factor of
/// what moved, and a restart replays at most a few bases' worth of lines.
const COMPACT_FACTOR: u64 = 4;
const COMPACT_MIN_BYTES: u64 = 1024 * 1024;

pub struct Writer {
    store: Store,
    generation: u64,
    files: BTreeMap<String, FileState>,
    sinks: BTreeMap<String, SinkState>,
    /// Open for appending once a base and its journal header are on disk; `None` until the
    /// first write, and after a failed append (whose torn line the next compaction replaces).
    journal: Option<File>,
    journal_bytes: u64,
    base_bytes: u64,
    written_bytes: u64,
}

/// What one write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// One journal line of this many bytes.
    Appended(u64),
    /// A new base and an empty journal, this many bytes in all.
    Compacted(u64),
}

impl Writer {
    /// A writer continuing `loaded` (what [`Store::load`] returned). Its first write compacts,
    /// so a journal left by an earlier run is never appended to.
    pub fn new(store: Store, loaded: &Snapshot) -> Writer {
        Writer {
            store,
            generation: loaded.generation,
            files: loaded
                .files
                .iter()
                .map(|f| (f.path.clone(), f.clone()))
                .collect(),
            sinks: loaded.sinks.clone(),
            journal: None,
            journal_bytes: 0,
            base_bytes: 0,
            written_bytes: 0,
        }
    }

    /// Records `delta`: one journal line, or a compaction when the journal is due for one.
    /// On an error the delta is still held, and the next write compacts.
    pub fn write(&mut self, delta: Delta) -> io::Result<Written> {
        let line = journal::line(&delta)?;
        journal::apply(&mut self.files, &mut self.sinks, delta);
        let limit = (self.base_bytes.saturating_mul(COMPACT_FACTOR)).max(COMPACT_MIN_BYTES);
        let due = self.journal_bytes.saturating_add(line.len() as u64) > limit;
        match self.journal.as_mut() {
            Some(f) if !due => {
                let appended = f.write_all(&line).and_then(|()| f.sync_data());
                if let Err(e) = appended {
                    self.journal = None;
                    return Err(e);
                }
                self.journal_bytes += line.len() as u64;
                self.written_bytes += line.len() as u64;
                Ok(Written::Appended(line.len() as u64))
            }
            _ => self.compact().map(Written::Compacted),
        }
    }

    /// Takes `delta` into the checkpoint without writing it (the next write or compaction
    /// includes it).
    pub fn absorb(&mut self, delta: Delta) {
        journal::apply(&mut self.files, &mut self.sinks, delta);
    }

    /// Writes the whole checkpoint as a new base with an empty journal. Returns the bytes.
    pub fn compact(&mut self) -> io::Result<u64> {
        self.journal = None;
        let snap = self.snapshot();
        let bytes = self.store.save(&snap)?;
        let journal = OpenOptions::new()
            .append(true)
            .open(self.store.journal_path())?;
        self.generation = snap.generation;
        self.base_bytes = bytes;
        self.journal_bytes = 0;
        self.journal = Some(journal);
        self.written_bytes += bytes;
        Ok(bytes)
    }

    /// The whole checkpoint as this writer holds it, as the next base would be.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: 1,
            written_ms: crate::time::now_ms(),
            generation: self.generation.saturating_add(1),
            files: self.files.values().cloned().collect(),
            sinks: self.sinks.clone(),
        }
    }

    /// Bytes written since this writer was made (bases and journal lines).
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Loaded;

    use crate::checkpoint::test_state as state;

    fn moved(files: Vec<FileState>) -> Delta {
        Delta {
            written_ms: 1,
            files,
            ..Delta::default()
        }
    }

    fn offsets(s: &Snapshot) -> Vec<(String, u64)> {
        s.files.iter().map(|f| (f.path.clone(), f.offset)).collect()
    }

    /// 2,000 files, then a trickle that moves two of them per write: every write after the
    /// first is one line with exactly the two entries, the base is written once, and what is
    /// loaded equals an expectation kept beside it.
    #[test]
    fn writes_cost_what_moved_and_load_gives_the_same_state() {
        let d = tempfile::tempdir().unwrap();
        let mut loaded = Snapshot::default();
        let mut want = BTreeMap::new();
        for i in 0..2000 {
            let f = state(&format!("/m/inlog/H/{i:06}.log"), 0);
            want.insert(f.path.clone(), 0u64);
            loaded.files.push(f);
        }
        let mut w = Writer::new(Store::new(d.path()), &loaded);
        let first = w.write(moved(vec![])).unwrap();
        let Written::Compacted(base) = first else {
            panic!("the first write compacts: {first:?}")
        };
        assert!(base > 2000 * 100, "{base}");
        let base_before = std::fs::read(Store::new(d.path()).path()).unwrap();
        for step in 1..=200u64 {
            let a = format!("/m/inlog/H/{:06}.log", step % 7);
            let b = format!("/m/inlog/H/{:06}.log", 1000 + step % 3);
            want.insert(a.clone(), step * 10);
            want.insert(b.clone(), step * 20);
            let got = w
                .write(moved(vec![state(&a, step * 10), state(&b, step * 20)]))
                .unwrap();
            let Written::Appended(n) = got else {
                panic!("step {step}: {got:?}")
            };
            assert!(n < 600, "one line of two entries, {n} bytes");
        }
        let journal = std::fs::read(d.path().join("checkpoints.journal")).unwrap();
        let contents = journal::decode(&journal);
        assert_eq!(contents.deltas.len(), 200);
        assert!(contents.deltas.iter().all(|d| d.files.len() == 2));
        assert_eq!(
            std::fs::read(Store::new(d.path()).path()).unwrap(),
            base_before,
            "the base is not rewritten by a trickle"
        );
        let (got, how) = Store::new(d.path()).load();
        assert_eq!(how, Loaded::Current);
        let want: Vec<(String, u64)> = want.into_iter().collect();
        assert_eq!(offsets(&got), want);
        assert!(
            w.written_bytes() < base + 200 * 600,
            "{}",
            w.written_bytes()
        );
    }

    #[test]
    fn the_journal_is_compacted_when_it_outgrows_the_base() {
        let d = tempfile::tempdir().unwrap();
        let mut w = Writer::new(Store::new(d.path()), &Snapshot::default());
        let mut compactions = 0;
        let mut last = 0;
        // 40 entries a line, about 6 KB; the base stays small, so the 1 MiB floor decides
        for i in 0..800u64 {
            let files = (0..40).map(|j| state(&format!("/f{j}"), i)).collect();
            if let Written::Compacted(_) = w.write(moved(files)).unwrap() {
                compactions += 1;
            }
            last = i;
        }
        let journal_len = std::fs::metadata(d.path().join("checkpoints.journal"))
            .unwrap()
            .len();
        assert!(journal_len <= COMPACT_MIN_BYTES, "{journal_len}");
        assert!(
            (2..=5).contains(&compactions),
            "first write plus one per MiB of lines: {compactions}"
        );
        let (got, _) = Store::new(d.path()).load();
        assert_eq!(got.files.len(), 40);
        assert!(got.files.iter().all(|f| f.offset == last));
        assert_eq!(got.generation, compactions);
    }

    #[test]
    fn crash_states_between_the_steps_of_a_compaction_load_safely() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        let mut w = Writer::new(Store::new(d.path()), &Snapshot::default());
        w.write(moved(vec![state("/a", 10)])).unwrap(); // base 1
        w.write(moved(vec![state("/a", 20)])).unwrap(); // journal of 1
        let old_journal = std::fs::read(d.path().join("checkpoints.journal")).unwrap();
        w.compact().unwrap(); // base 2, empty journal
        w.write(moved(vec![state("/a", 30)])).unwrap();
        assert_eq!(offsets(&store.load().0), vec![("/a".into(), 30)]);

        // a crash after the new base took its name but before the journal was reset: the
        // old journal names base 1 and is not replayed onto base 2
        std::fs::write(d.path().join("checkpoints.journal"), &old_journal).unwrap();
        let (got, how) = store.load();
        assert_eq!(how, Loaded::Current);
        assert_eq!(offsets(&got), vec![("/a".into(), 20)], "base 2 as written");
        // and the next writer continues after every generation seen
        assert_eq!(got.generation, 2);

        // the current base torn: the previous one (base 1) plus its own journal
        let cur = std::fs::read(store.path()).unwrap();
        std::fs::write(store.path(), &cur[..cur.len() / 2]).unwrap();
        let (got, how) = store.load();
        assert!(matches!(how, Loaded::Previous(_)), "{how:?}");
        assert_eq!(offsets(&got), vec![("/a".into(), 20)]);
        let mut w = Writer::new(Store::new(d.path()), &got);
        assert!(matches!(
            w.write(Delta::default()).unwrap(),
            Written::Compacted(_)
        ));
        assert!(store.load().0.generation > 2, "a generation never repeats");
    }
}
