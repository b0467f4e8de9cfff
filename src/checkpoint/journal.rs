//! The checkpoint journal: what moved since the base, one checksummed line per write.
//!
//! ```text
//! xxh3:<16 hex> {"base":7}                                   <- the base it continues
//! xxh3:<16 hex> {"written_ms":..,"files":[..],"removed":[..],"sinks":{..}}
//! ```
//!
//! Lines hold absolute states (a file's whole entry, not a difference), so replaying a line
//! twice, or onto an older base, never moves an offset past what was acknowledged.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FileState, MAX_FILE_BYTES, SinkState, Snapshot};

/// One write: the entries of the files that moved, the paths the checkpoint forgets, and the
/// sinks' totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    pub written_ms: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sinks: BTreeMap<String, SinkState>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    base: u64,
}

/// What a journal file holds: the base it continues (`None`: absent or unreadable) and its
/// whole lines up to the first damaged one.
#[derive(Debug, Default)]
pub struct Contents {
    pub base: Option<u64>,
    pub deltas: Vec<Delta>,
}

/// `xxh3:<hex> <json>\n` for `value`.
pub fn line<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    let sum = xxhash_rust::xxh3::xxh3_64(&body);
    let mut out = Vec::with_capacity(body.len() + 24);
    out.extend_from_slice(format!("xxh3:{sum:016x} ").as_bytes());
    out.extend_from_slice(&body);
    out.push(b'\n');
    Ok(out)
}

/// The JSON of one whole line, if its checksum holds.
fn checked(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"xxh3:")?;
    let (hex, body) = (rest.get(..16)?, rest.get(17..)?);
    let want = u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    (rest.get(16) == Some(&b' ') && xxhash_rust::xxh3::xxh3_64(body) == want).then_some(body)
}

/// Parses a journal's bytes. A line without its newline is a write that did not finish; it
/// and everything after the first damaged line are ignored (nothing after it was acknowledged
/// as written).
pub fn decode(data: &[u8]) -> Contents {
    let mut lines = data.split_inclusive(|&b| b == b'\n');
    let header = lines
        .next()
        .and_then(|l| l.strip_suffix(b"\n"))
        .and_then(checked)
        .and_then(|b| serde_json::from_slice::<Header>(b).ok());
    let Some(header) = header else {
        return Contents::default();
    };
    let deltas = lines
        .map_while(|l| l.strip_suffix(b"\n").and_then(checked))
        .map_while(|b| serde_json::from_slice::<Delta>(b).ok())
        .collect();
    Contents {
        base: Some(header.base),
        deltas,
    }
}

/// Reads the journal at `path` (absent, unreadable or oversized: empty).
pub fn read(path: &Path) -> Contents {
    let mut data = Vec::new();
    match std::fs::File::open(path).and_then(|f| f.take(MAX_FILE_BYTES).read_to_end(&mut data)) {
        Ok(_) => decode(&data),
        Err(_) => Contents::default(),
    }
}

/// Applies `deltas`, in order, to `snap`.
pub fn replay(snap: &mut Snapshot, deltas: Vec<Delta>) {
    if deltas.is_empty() {
        return;
    }
    let mut files: BTreeMap<String, FileState> = std::mem::take(&mut snap.files)
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    for d in deltas {
        snap.written_ms = snap.written_ms.max(d.written_ms);
        apply(&mut files, &mut snap.sinks, d);
    }
    snap.files = files.into_values().collect();
}

/// One delta onto a path-keyed view of the files.
pub fn apply(
    files: &mut BTreeMap<String, FileState>,
    sinks: &mut BTreeMap<String, SinkState>,
    d: Delta,
) {
    for p in d.removed {
        files.remove(&p);
    }
    for f in d.files {
        files.insert(f.path.clone(), f);
    }
    if !d.sinks.is_empty() {
        *sinks = d.sinks;
    }
}

/// Starts an empty journal continuing base `generation`: written aside, then renamed into
/// place, so a crash leaves the old journal or the new one, never a mix. Returns its size.
pub fn reset(dir: &Path, path: &Path, generation: u64) -> io::Result<u64> {
    let header = line(&Header { base: generation })?;
    let tmp = dir.join("checkpoints.journal.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&header)?;
        f.sync_all()?;
    }
    crate::platform::rename_durable(&tmp, path)?;
    Ok(header.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::checkpoint::test_state as state;

    fn delta(files: Vec<FileState>, removed: &[&str]) -> Delta {
        Delta {
            written_ms: 5,
            files,
            removed: removed.iter().map(|s| s.to_string()).collect(),
            sinks: BTreeMap::new(),
        }
    }

    fn journal(base: u64, deltas: &[Delta]) -> Vec<u8> {
        let mut out = line(&Header { base }).unwrap();
        for d in deltas {
            out.extend(line(d).unwrap());
        }
        out
    }

    #[test]
    fn whole_lines_replay_in_order() {
        let d1 = delta(vec![state("/a", 10), state("/b", 5)], &[]);
        let d2 = delta(vec![state("/a", 20)], &["/b"]);
        let got = decode(&journal(3, &[d1.clone(), d2.clone()]));
        assert_eq!(got.base, Some(3));
        assert_eq!(got.deltas, vec![d1, d2]);
        let mut snap = Snapshot {
            files: vec![state("/b", 1), state("/c", 7)],
            ..Snapshot::default()
        };
        replay(&mut snap, got.deltas);
        let view: Vec<(&str, u64)> = snap
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.offset))
            .collect();
        assert_eq!(view, vec![("/a", 20), ("/c", 7)]);
    }

    #[test]
    fn a_torn_or_damaged_line_ends_the_replay_there() {
        let ds = [
            delta(vec![state("/a", 1)], &[]),
            delta(vec![state("/a", 2)], &[]),
            delta(vec![state("/a", 3)], &[]),
        ];
        let whole = journal(1, &ds);
        // torn inside the last line: the first two remain
        for cut in 1..40 {
            let got = decode(&whole[..whole.len() - cut]);
            assert_eq!(got.deltas.len(), 2, "cut {cut}");
        }
        // a flipped byte in the second delta: only the first remains, even though the third
        // is whole
        let second = whole
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(2);
        let at = second.map(|(i, _)| i - 5).unwrap();
        let mut bad = whole.clone();
        bad[at] ^= 1;
        assert_eq!(decode(&bad).deltas, ds[..1].to_vec());
        // a damaged header: nothing
        let mut bad = whole;
        bad[8] ^= 1;
        let got = decode(&bad);
        assert_eq!((got.base, got.deltas.len()), (None, 0));
    }
}
