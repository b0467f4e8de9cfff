//! Panics are contained or loud, never silent (issue 14, item 3). Faults are injected with
//! `EPOST_FAULT` (debug builds only, see src/fault.rs) into the real binary:
//! - a panic while parsing one line becomes one `parse_error` record for that stretch, with
//!   none of its text, and every other record of that file and of every other file ships
//!   unchanged;
//! - a tailer, sink or checkpoint-writer panic makes `backfill` and `run` exit non-zero with a
//!   message naming the component, and a clean restart afterwards ships what was missing.
//!
//! Deliberate breaks made to see these fail: dropping the `catch_unwind` in
//! `tail::push_contained` (the parse test failed: exit 1, no records after the line);
//! `r.unwrap_or(false)` for the tailer's join as before (the death tests failed: exit 0).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

struct Dir {
    root: tempfile::TempDir,
}

impl Dir {
    /// A copy of the example mail folder and a config shipping it to one file sink.
    fn new() -> Dir {
        let root = tempfile::tempdir().unwrap();
        let mail = root.path().join("mail");
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mail"),
            &mail,
        );
        let config = format!(
            "[source]\nworkdir = '{}'\nignore_older_than = \"100000d\"\nstate_dir = '{}'\n\
             [metrics]\nlisten = \"\"\n[[sink]]\ntype = \"file\"\nname = \"out\"\npath = '{}'\n",
            mail.display(),
            root.path().join("state").display(),
            root.path().join("out.ndjson").display()
        );
        std::fs::write(root.path().join("c.toml"), config).unwrap();
        Dir { root }
    }

    fn config(&self) -> PathBuf {
        self.root.path().join("c.toml")
    }

    fn mail(&self) -> PathBuf {
        self.root.path().join("mail")
    }

    fn backfill(&self, fault: &str) -> Output {
        Command::new(BIN)
            .args(["backfill", "--config"])
            .arg(self.config())
            .env("EPOST_FAULT", fault)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The records in the sink, by id (a record sent twice keeps one entry and counts 2).
    fn records(&self) -> BTreeMap<String, (serde_json::Value, usize)> {
        let mut out: BTreeMap<String, (serde_json::Value, usize)> = BTreeMap::new();
        let text = std::fs::read_to_string(self.root.path().join("out.ndjson")).unwrap_or_default();
        for line in text.lines() {
            // the two runs read two copies of the folder: compare paths inside it
            let root = self.root.path().to_string_lossy().into_owned();
            let line = line.replace(&root, "");
            let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON line");
            let id = v["event"]["id"].as_str().expect("event.id").to_string();
            let e = out.entry(id).or_insert((v.clone(), 0));
            assert_eq!(e.0, v, "the same id twice with different contents");
            e.1 += 1;
        }
        out
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
            // viruslog records take their time from the file's: keep it
            let mtime = e.metadata().unwrap().modified().unwrap();
            std::fs::File::options()
                .write(true)
                .open(&dest)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
    }
}

fn lines_holding(dir: &Path, marker: &[u8]) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += lines_holding(&p, marker);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            n += bytes
                .split(|&b| b == b'\n')
                .filter(|l| l.windows(marker.len()).any(|w| w == marker))
                .count();
        }
    }
    n
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The line holding `marker` in `file`: its byte offset and bytes (without the line end).
fn line_with(file: &Path, marker: &[u8]) -> (u64, Vec<u8>) {
    let bytes = std::fs::read(file).unwrap();
    let mut offset = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.windows(marker.len()).any(|w| w == marker) {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            return (offset, text.to_vec());
        }
        offset += line.len() as u64;
    }
    panic!("no line with the marker in {}", file.display());
}

#[test]
fn a_parser_panic_on_one_line_is_contained_and_every_other_record_ships() {
    let clean = Dir::new();
    let out = clean.backfill("");
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = clean.records();

    let faulty = Dir::new();
    // One inlog line, picked by a marker that no other line of the folder holds.
    let marker = "saburo@example.org shiro";
    assert_eq!(lines_holding(&faulty.mail(), marker.as_bytes()), 1);
    let inlog = faulty.mail().join("inlog/MAILSV01/171130.log");
    let (offset, line) = line_with(&inlog, marker.as_bytes());
    let out = faulty.backfill(&format!("parse-panic={marker}"));
    assert!(
        out.status.success(),
        "a parser panic must not stop the run: {}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("saburo"),
        "our own log quoted the line"
    );
    let got = faulty.records();

    // Exactly one record differs: the one at that line's offset in that file.
    let mut replaced = Vec::new();
    for (id, (want, _)) in &expected {
        match got.get(id) {
            Some((v, n)) => {
                assert_eq!(*n, 1, "sent twice: {id}");
                if v != want {
                    replaced.push(v.clone());
                }
            }
            None => panic!("record missing after a contained panic: {want}"),
        }
    }
    assert_eq!(got.len(), expected.len(), "records invented");
    assert_eq!(
        replaced.len(),
        1,
        "{}",
        serde_json::to_string_pretty(&replaced).unwrap()
    );
    let r = &replaced[0];
    assert_eq!(r["log"]["offset"].as_u64(), Some(offset));
    assert!(
        r["log"]["file"]["path"]
            .as_str()
            .unwrap()
            .ends_with("171130.log")
    );
    assert!(
        r["epost"]["parse_error"]
            .as_str()
            .is_some_and(|e| e.contains("internal error"))
    );
    let message = r["message"].as_str().unwrap();
    let line = String::from_utf8_lossy(&line);
    for word in line.split_whitespace().filter(|w| w.len() > 4) {
        assert!(
            !message.contains(word),
            "the text of the failed line leaked: {word}"
        );
    }
    // and the records after it in the same file arrived (checked above record by record)
    assert!(expected.values().any(|(v, _)| {
        v["log"]["file"]["path"] == r["log"]["file"]["path"]
            && v["log"]["offset"].as_u64() > Some(offset)
    }));
}

/// A component that dies makes the command fail, naming it; a clean restart then ships the
/// rest, so that nothing is lost.
fn dies_loudly(fault: &str, component: &str) {
    let clean = Dir::new();
    assert!(clean.backfill("").status.success());
    let expected = clean.records();

    let d = Dir::new();
    let out = d.backfill(fault);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{fault}: {err}");
    assert!(
        err.contains(&format!("the {component} panicked")),
        "{fault}: the error must name the component: {err}"
    );
    assert!(!err.contains("stopped cleanly") && !err.contains("backfill complete"));
    let out = d.backfill("");
    assert!(out.status.success(), "restart: {}", stderr(&out));
    let got = d.records();
    for (id, (want, _)) in &expected {
        let (v, _) = got
            .get(id)
            .unwrap_or_else(|| panic!("{fault}: lost: {want}"));
        assert_eq!(v, want);
    }
    assert_eq!(got.len(), expected.len(), "{fault}: records invented");
}

#[test]
fn a_tailer_panic_makes_backfill_exit_non_zero() {
    dies_loudly("tail-panic=faillog", "tailer");
}

#[test]
fn a_sink_panic_makes_backfill_exit_non_zero() {
    dies_loudly("sink-panic=B0000097590", "sink `out`");
}

#[test]
fn a_checkpoint_writer_panic_makes_backfill_exit_non_zero() {
    dies_loudly("checkpoint-panic", "checkpoint writer");
}

#[test]
fn a_dying_component_makes_run_exit_non_zero_by_itself() {
    let d = Dir::new();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(d.config())
        .env("EPOST_FAULT", "sink-panic=B0000097590")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `run` never ends by itself unless something died: a generous deadline, then a failure.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("run kept going after its sink died");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("the sink `out` panicked"), "{err}");
}
