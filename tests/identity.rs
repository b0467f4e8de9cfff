//! `event.id` names a record, not a position (issue 14, item 4): a file deleted and re-created
//! under the same name gets ids of its own (before, its records collided with the old file's
//! and Elasticsearch dropped them as duplicates), while the same file read again, read from a
//! checkpoint half-way, or read through another path keeps its ids.
//!
//! Deliberate break made to see these fail: `generation` left out of `EventId::new` (the
//! re-created file's records then share the old ids: `recreated_file_gets_new_ids` failed), and
//! `set_generation` not called on resume (`resumed_file_keeps_the_ids_of_a_whole_read` failed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

struct Setup {
    root: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("mail/inlog/MX1")).unwrap();
        Setup { root }
    }

    fn log(&self) -> PathBuf {
        self.root.path().join("mail/inlog/MX1/171130.log")
    }

    fn config(&self, workdir: &Path) -> PathBuf {
        let c = self.root.path().join("c.toml");
        std::fs::write(
            &c,
            format!(
                "[source]\nworkdir = '{}'\nignore_older_than = \"100000d\"\nstate_dir = '{}'\n\
                 [metrics]\nlisten = \"\"\n[[sink]]\ntype = \"file\"\npath = '{}'\n",
                workdir.display(),
                self.root.path().join("state").display(),
                self.root.path().join("out.ndjson").display()
            ),
        )
        .unwrap();
        c
    }

    fn backfill(&self, workdir: &Path) {
        let out = Command::new(BIN)
            .args(["backfill", "--config"])
            .arg(self.config(workdir))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// (id → message) of every record in the sink, and how many lines it holds.
    fn shipped(&self) -> (BTreeMap<String, String>, usize) {
        let text = std::fs::read_to_string(self.root.path().join("out.ndjson")).unwrap();
        let mut m = BTreeMap::new();
        let mut n = 0;
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            m.insert(
                v["event"]["id"].as_str().unwrap().to_string(),
                v["message"].as_str().unwrap().to_string(),
            );
            n += 1;
        }
        (m, n)
    }
}

/// inlog lines of the same length for messages `from..to` (so that two files can differ
/// only in content, not in size or offsets).
fn lines(from: u32, to: u32) -> String {
    (from..to)
        .map(|n| {
            format!(
                "<B{n:010}@mx.example.jp> [30/Nov/2017:08:{:02}:00] 203.0.113.5 c.example.net a@example.net b@example.jp\r\n",
                n % 60
            )
        })
        .collect()
}

#[test]
fn recreated_file_gets_new_ids() {
    let s = Setup::new();
    let mail = s.root.path().join("mail");
    std::fs::write(s.log(), lines(1, 4)).unwrap();
    s.backfill(&mail);
    // deleted and written anew under the same name, same size, same offsets
    std::fs::remove_file(s.log()).unwrap();
    std::fs::write(s.log(), lines(101, 104)).unwrap();
    s.backfill(&mail);
    let (m, n) = s.shipped();
    assert_eq!(n, 6, "both files' records shipped");
    assert_eq!(m.len(), 6, "six distinct ids: {m:#?}");
    let mut messages: Vec<&str> = m.values().map(String::as_str).collect();
    messages.sort();
    let mut want: Vec<String> = lines(1, 4)
        .lines()
        .chain(lines(101, 104).lines())
        .map(str::to_string)
        .collect();
    want.sort();
    assert_eq!(messages, want);
}

#[test]
fn resumed_file_keeps_the_ids_of_a_whole_read() {
    // the ids of a file read in two runs (the second from the checkpoint, past the first
    // line) equal those of one read of the whole file in a fresh state
    let once = Setup::new();
    std::fs::write(once.log(), lines(1, 7)).unwrap();
    once.backfill(&once.root.path().join("mail"));
    let (whole, _) = once.shipped();

    let twice = Setup::new();
    let mail = twice.root.path().join("mail");
    std::fs::write(twice.log(), lines(1, 4)).unwrap();
    twice.backfill(&mail);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(twice.log())
        .unwrap();
    std::io::Write::write_all(&mut f, lines(4, 7).as_bytes()).unwrap();
    drop(f);
    twice.backfill(&mail);
    let (parts, n) = twice.shipped();
    assert_eq!(n, 6, "nothing sent twice, nothing missing");
    assert_eq!(parts, whole);
}

#[test]
fn the_same_file_through_another_path_has_the_same_ids() {
    let a = Setup::new();
    std::fs::write(a.log(), lines(1, 4)).unwrap();
    a.backfill(&a.root.path().join("mail"));
    let b = Setup::new();
    let other = b.root.path().join("share/mail");
    std::fs::create_dir_all(other.join("inlog/MX1")).unwrap();
    std::fs::copy(a.log(), other.join("inlog/MX1/171130.log")).unwrap();
    b.backfill(&other);
    assert_eq!(a.shipped().0, b.shipped().0);
}
