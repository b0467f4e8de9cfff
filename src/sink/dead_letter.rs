//! Records a sink refused for good go here, with the sink's reason, one JSON object a line:
//! `{"time":..,"sink":..,"reason":..,"record":<the record as sent>}`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::record::json::write_str;

pub struct DeadLetter {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl DeadLetter {
    /// `<state_dir>/dead-letter/<sink>.ndjson`, created on first use.
    pub fn new(state_dir: &Path, sink: &str) -> DeadLetter {
        DeadLetter {
            path: state_dir.join("dead-letter").join(file_name(sink)),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry; `record` is the record's JSON (or any bytes, stored as a string if
    /// they are not JSON).
    pub fn write(&self, sink: &str, reason: &str, record: &[u8]) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(record.len() + reason.len() + 96);
        line.extend_from_slice(b"{\"time\":");
        write_str(&mut line, &chrono::Utc::now().to_rfc3339());
        line.extend_from_slice(b",\"sink\":");
        write_str(&mut line, sink);
        line.extend_from_slice(b",\"reason\":");
        write_str(&mut line, reason);
        line.extend_from_slice(b",\"record\":");
        let rec = trim_ascii(record);
        if serde_json::from_slice::<serde::de::IgnoredAny>(rec).is_ok() {
            line.extend_from_slice(rec);
        } else {
            write_str(&mut line, &String::from_utf8_lossy(rec));
        }
        line.extend_from_slice(b"}\n");
        let mut guard = self.file.lock().unwrap();
        if guard.is_none() {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d)?;
            }
            *guard = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let f = guard.as_mut().expect("opened above");
        f.write_all(&line)?;
        f.sync_data()
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
