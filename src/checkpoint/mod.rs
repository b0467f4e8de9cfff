//! Checkpoint: per file, the offset below which every record was acknowledged by every sink.
//!
//! Two files hold it. The *base* (`checkpoints.json`) is a whole snapshot, written atomically:
//! a temp file is written and fsynced, the current base becomes the previous generation
//! (`.prev`), the temp file takes its name, durably. The *journal* (`checkpoints.journal`) is
//! appended to between two bases: one line per write with only the files that moved since the
//! last one, so a write costs what moved, not the number of files (10,800 files made a 2.1 MB
//! base; a trickle of lines moves a handful of them a second). When the journal outgrows the
//! base, the [`Writer`] compacts: a new base, an empty journal.
//!
//! Every base and every journal line carries a checksum, so a torn or corrupted write is
//! recognised: a damaged base falls back to the previous generation, a torn journal line ends
//! the replay there. The shipper never stops for it and never starts over from nothing; at
//! worst it sends again what it had already sent (the sinks deduplicate by `event.id`).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod journal;
mod writer;

pub use journal::Delta;
pub use writer::Writer;

/// What is known of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    pub path: String,
    pub kind: String,
    pub host: String,
    /// XXH3-64 of the first `fp_len` bytes, lowercase hex.
    pub fingerprint: String,
    pub fp_len: u32,
    /// Every record that starts below this offset was acknowledged by every sink.
    pub offset: u64,
    /// The file's size when last seen (for `status`).
    pub size: u64,
    /// Unix milliseconds of the last change to `offset`.
    pub updated_ms: i64,
}

/// Per sink: when it last acknowledged something, and how much in total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkState {
    pub last_ack_ms: i64,
    pub acked_records: u64,
    pub dead_lettered: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub written_ms: i64,
    /// Counts the bases written; the journal names the base it continues. 0 in files written
    /// before the journal existed.
    #[serde(default)]
    pub generation: u64,
    pub files: Vec<FileState>,
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkState>,
}

impl Snapshot {
    pub fn file(&self, path: &str) -> Option<&FileState> {
        self.files.iter().find(|f| f.path == path)
    }
}

const NAME: &str = "checkpoints.json";
const JOURNAL: &str = "checkpoints.journal";

pub struct Store {
    dir: PathBuf,
}

/// What `load` found, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    Fresh,
    Current,
    /// The current file was missing or damaged (the reason); the previous generation was used.
    Previous(String),
    /// Neither generation was usable (the reasons); starting as on a first run.
    Unusable(String),
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(NAME)
    }

    fn prev_path(&self) -> PathBuf {
        self.dir.join(format!("{NAME}.prev"))
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    /// The checkpoint on disk: the base (or its previous generation), then the journal lines
    /// that continue it.
    pub fn load(&self) -> (Snapshot, Loaded) {
        let (mut snap, loaded) = self.load_base();
        let journal = journal::read(&self.journal_path());
        // The journal continues the current base. When the current base was damaged, the
        // journal written after it (or after the previous one) still only holds acknowledged
        // states newer than the previous base: replaying it onto that is safe.
        let applies = match &loaded {
            Loaded::Current => journal.base == Some(snap.generation),
            Loaded::Previous(_) => journal
                .base
                .is_some_and(|b| b == snap.generation || Some(b) == snap.generation.checked_add(1)),
            Loaded::Fresh | Loaded::Unusable(_) => false,
        };
        if applies {
            journal::replay(&mut snap, journal.deltas);
        }
        // Generations never repeat, so a journal left behind by a crash during a compaction
        // can never be taken for the new base's.
        // The damaged current base had at least the next generation after the previous one.
        let floor = match loaded {
            Loaded::Previous(_) => snap.generation.saturating_add(1),
            _ => snap.generation,
        };
        snap.generation = floor.max(journal.base.unwrap_or(0));
        (snap, loaded)
    }

    fn load_base(&self) -> (Snapshot, Loaded) {
        let cur = read_checked(&self.path());
        let prev = read_checked(&self.prev_path());
        match (cur, prev) {
            (Ok(Some(s)), _) => (s, Loaded::Current),
            (Ok(None), Ok(None)) => (Snapshot::default(), Loaded::Fresh),
            (Ok(None), Ok(Some(p))) => (
                p,
                Loaded::Previous(
                    "the current checkpoint file is missing (crash during a write)".into(),
                ),
            ),
            (Err(e), Ok(Some(p))) => (p, Loaded::Previous(e)),
            (Err(e), Ok(None)) => (Snapshot::default(), Loaded::Unusable(e)),
            (Ok(None), Err(e2)) => (Snapshot::default(), Loaded::Unusable(e2)),
            (Err(e), Err(e2)) => (
                Snapshot::default(),
                Loaded::Unusable(format!("{e}; previous generation: {e2}")),
            ),
        }
    }

    /// Writes `snap` as a new base with an empty journal (what a [`Writer`] does when it
    /// compacts). Returns the bytes written.
    pub fn save(&self, snap: &Snapshot) -> io::Result<u64> {
        std::fs::create_dir_all(&self.dir)?;
        let body = serde_json::to_vec(snap).map_err(io::Error::other)?;
        let sum = xxhash_rust::xxh3::xxh3_64(&body);
        let tmp = self.dir.join(format!("{NAME}.tmp"));
        let written;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            writeln!(f)?;
            let line = format!("xxh3:{sum:016x}\n");
            f.write_all(line.as_bytes())?;
            f.sync_all()?;
            written = (body.len() + 1 + line.len()) as u64;
        }
        let cur = self.path();
        if cur.exists() {
            crate::platform::rename_durable(&cur, &self.prev_path())?;
        }
        crate::platform::rename_durable(&tmp, &cur)?;
        Ok(written + journal::reset(&self.dir, &self.journal_path(), snap.generation)?)
    }
}

/// A checkpoint file larger than this is not read: a damaged file must not make the loader
/// allocate without bound (a real one holds a few hundred bytes per log file).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Why a checkpoint file's bytes are unusable.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("truncated (no checksum line)")]
    NoChecksum,
    #[error("checksum mismatch (torn or corrupted write)")]
    Mismatch,
    #[error("larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// The snapshot in a checkpoint file's bytes: the JSON body line, then `xxh3:<hex>` of it.
pub fn decode_checked(data: &[u8]) -> Result<Snapshot, CheckpointError> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let body = lines.next().unwrap_or("");
    let sum_line = lines.next().unwrap_or("");
    let want = sum_line
        .strip_prefix("xxh3:")
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .ok_or(CheckpointError::NoChecksum)?;
    if xxhash_rust::xxh3::xxh3_64(body.as_bytes()) != want {
        return Err(CheckpointError::Mismatch);
    }
    Ok(serde_json::from_str(body)?)
}

/// `Ok(None)` if absent, `Err(reason)` if present but unusable.
fn read_checked(path: &Path) -> Result<Option<Snapshot>, String> {
    let mut data = Vec::new();
    let read =
        std::fs::File::open(path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut data));
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let decoded = if u64::try_from(data.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        Err(CheckpointError::TooLarge)
    } else {
        decode_checked(&data)
    };
    decoded
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A file's checkpoint entry at `offset`, for the journal's and the writer's tests.
#[cfg(test)]
pub(crate) fn test_state(path: &str, offset: u64) -> FileState {
    FileState {
        path: path.into(),
        kind: "inlog".into(),
        host: "H".into(),
        fingerprint: "00".into(),
        fp_len: 1,
        offset,
        size: offset,
        updated_ms: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(offset: u64) -> Snapshot {
        Snapshot {
            version: 1,
            written_ms: 1,
            generation: offset,
            files: vec![FileState {
                path: "/m/inlog/H/171130.log".into(),
                kind: "inlog".into(),
                host: "H".into(),
                fingerprint: "00".into(),
                fp_len: 10,
                offset,
                size: offset,
                updated_ms: 1,
            }],
            sinks: BTreeMap::new(),
        }
    }

    #[test]
    fn round_trip_and_generations() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        assert_eq!(s.load().1, Loaded::Fresh);
        s.save(&snap(10)).unwrap();
        s.save(&snap(20)).unwrap();
        let (got, how) = s.load();
        assert_eq!(how, Loaded::Current);
        assert_eq!(got.files[0].offset, 20);
    }

    #[test]
    fn torn_current_falls_back_to_previous() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        s.save(&snap(10)).unwrap();
        s.save(&snap(20)).unwrap();
        // a torn write: half the file
        let data = std::fs::read(s.path()).unwrap();
        std::fs::write(s.path(), &data[..data.len() / 2]).unwrap();
        let (got, how) = s.load();
        assert!(matches!(how, Loaded::Previous(_)), "{how:?}");
        assert_eq!(got.files[0].offset, 10);
        // flipped bytes with a valid-looking shape
        let mut data = std::fs::read(s.prev_path()).unwrap();
        data[20] ^= 1;
        std::fs::write(s.path(), &data).unwrap();
        assert!(matches!(s.load().1, Loaded::Previous(_)));
    }

    #[test]
    fn missing_current_uses_previous_and_both_bad_starts_fresh() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        s.save(&snap(10)).unwrap();
        s.save(&snap(20)).unwrap();
        std::fs::remove_file(s.path()).unwrap();
        let (got, how) = s.load();
        assert!(matches!(how, Loaded::Previous(_)));
        assert_eq!(got.files[0].offset, 10);
        std::fs::write(s.path(), b"garbage").unwrap();
        std::fs::write(s.prev_path(), b"{}").unwrap();
        assert!(matches!(s.load().1, Loaded::Unusable(_)));
    }
}
