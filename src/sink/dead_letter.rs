//! Records a sink refused for good go here, with the sink's reason, one JSON object a line:
//! `{"time":..,"sink":..,"reason":..,"record":<the record as sent>}`.
//!
//! A delivery writes its batch's refusals in one `append`, which is all-or-nothing: on any
//! error the file is cut back to its length before the append, so a full disk leaves neither
//! torn lines nor a part of the entries (which the retry would write a second time). `append`
//! blocks (write and fsync): the engine calls it from `spawn_blocking`. The file is rotated at
//! `MAX_FILE_BYTES` (`<sink>.ndjson` → `.1` → `.2` ..., `KEEP` old files).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::record::json::write_str;

/// The dead-letter file is rotated before an append would take it past this.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Rotated files kept (`.1` is the newest); the oldest beyond them is removed.
pub const KEEP: u32 = 3;

pub struct DeadLetter {
    path: PathBuf,
    /// `MAX_FILE_BYTES`; unit tests set less.
    pub(crate) max_bytes: u64,
    file: Mutex<Option<File>>,
    /// Unit tests: a filling disk. Each append takes the next budget and fails once it has
    /// written that many bytes; with none left, appends succeed.
    #[cfg(test)]
    pub(crate) budgets: Mutex<std::collections::VecDeque<usize>>,
}

impl DeadLetter {
    /// `<state_dir>/dead-letter/<sink>.ndjson`, created on first use.
    pub fn new(state_dir: &Path, sink: &str) -> DeadLetter {
        DeadLetter {
            path: state_dir.join("dead-letter").join(file_name(sink)),
            max_bytes: MAX_FILE_BYTES,
            file: Mutex::new(None),
            #[cfg(test)]
            budgets: Mutex::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry to `out`; `record` is the record's JSON (or any bytes, stored as a
    /// string if they are not JSON).
    pub fn encode(out: &mut Vec<u8>, sink: &str, reason: &str, record: &[u8]) {
        out.reserve(record.len() + reason.len() + 96);
        out.extend_from_slice(b"{\"time\":");
        write_str(out, &chrono::Utc::now().to_rfc3339());
        out.extend_from_slice(b",\"sink\":");
        write_str(out, sink);
        out.extend_from_slice(b",\"reason\":");
        write_str(out, reason);
        out.extend_from_slice(b",\"record\":");
        let rec = trim_ascii(record);
        if serde_json::from_slice::<serde::de::IgnoredAny>(rec).is_ok() {
            out.extend_from_slice(rec);
        } else {
            write_str(out, &String::from_utf8_lossy(rec));
        }
        out.extend_from_slice(b"}\n");
    }

    /// Appends one entry (tests and tools; deliveries use `encode` and `append`).
    pub fn write(&self, sink: &str, reason: &str, record: &[u8]) -> std::io::Result<()> {
        let mut line = Vec::new();
        DeadLetter::encode(&mut line, sink, reason, record);
        self.append(&line)
    }

    /// Appends whole lines, all or nothing, and fsyncs them. Blocking.
    pub fn append(&self, lines: &[u8]) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = match guard.take() {
            Some(f) => f,
            None => self.open()?,
        };
        let len = f.metadata()?.len();
        if len > 0 && len + lines.len() as u64 > self.max_bytes {
            drop(f);
            self.rotate()?;
            f = self.open()?;
        }
        match self.write_all_or_nothing(&mut f, lines) {
            Ok(()) => {
                *guard = Some(f);
                Ok(())
            }
            // the handle is dropped: the next append starts with a fresh one
            Err(e) => Err(e),
        }
    }

    fn write_all_or_nothing(&self, f: &mut File, lines: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(left) = self.budgets.lock().unwrap().pop_front() {
            let mut disk = super::file::FillingDisk { file: f, left };
            return super::file::append_all_or_nothing(&mut disk, std::iter::once(lines));
        }
        super::file::append_all_or_nothing(f, std::iter::once(lines))
    }

    fn open(&self) -> std::io::Result<File> {
        if let Some(d) = self.path.parent() {
            std::fs::create_dir_all(d)?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    /// `<sink>.ndjson` → `.1`, `.1` → `.2` ... up to `KEEP` (the oldest is replaced).
    fn rotate(&self) -> std::io::Result<()> {
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        for n in (1..KEEP).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))
    }
}

/// `<sink>.ndjson`. The config accepts only names that are safe file names everywhere
/// (`config::valid_sink_name`); any other name (a sink built without the config) is
/// hex-encoded, so that it can neither leave the dead-letter folder nor name a device.
fn file_name(sink: &str) -> String {
    if crate::config::valid_sink_name(sink).is_ok() {
        format!("{sink}.ndjson")
    } else {
        let hex: String = sink.bytes().map(|b| format!("{b:02x}")).collect();
        format!("sink-{hex}.ndjson")
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e]
}

#[cfg(test)]
mod tests {
    #[test]
    fn unsafe_names_stay_in_the_folder() {
        assert_eq!(super::file_name("es-1"), "es-1.ndjson");
        for bad in ["../x", "a/b", "C:x", "CON", "nul.txt", "", ".hidden"] {
            let f = super::file_name(bad);
            assert!(
                f.starts_with("sink-") && !f.contains(['/', '\\', ':']),
                "{bad} → {f}"
            );
        }
    }

    #[test]
    fn entries_are_json_with_reason() {
        let d = tempfile::tempdir().unwrap();
        let dl = super::DeadLetter::new(d.path(), "es");
        dl.write("es", "mapper_parsing_exception: x", b"{\"a\":1}\n")
            .unwrap();
        dl.write("es", "bad", b"not json").unwrap();
        let text = std::fs::read_to_string(dl.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["record"]["a"], 1);
        assert_eq!(lines[0]["reason"], "mapper_parsing_exception: x");
        assert_eq!(lines[1]["record"], "not json");
    }
}

#[cfg(test)]
mod rotation {
    /// Past `max_bytes` the file moves to `.1`, `.1` to `.2` ..., and at most KEEP old files
    /// stay; no entry is split between files.
    #[test]
    fn files_rotate_and_old_ones_go() {
        let d = tempfile::tempdir().unwrap();
        let mut dl = super::DeadLetter::new(d.path(), "es");
        dl.max_bytes = 1000;
        for i in 0..100 {
            dl.write("es", "bad", format!("{{\"n\":{i}}}").as_bytes())
                .unwrap();
        }
        let read = |p: &std::path::Path| -> Vec<u64> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["record"]["n"].as_u64().unwrap()
                })
                .collect()
        };
        let mut kept = Vec::new();
        for n in (1..=super::KEEP).rev() {
            let p = d.path().join(format!("dead-letter/es.ndjson.{n}"));
            let size = std::fs::metadata(&p).unwrap().len();
            assert!(size <= 1000, "{n}: {size}");
            kept.extend(read(&p));
        }
        assert!(
            !d.path()
                .join(format!("dead-letter/es.ndjson.{}", super::KEEP + 1))
                .exists()
        );
        kept.extend(read(dl.path()));
        // the newest entries, in order, none missing in between
        let first = kept[0];
        assert_eq!(kept, (first..100).collect::<Vec<u64>>());
    }
}
