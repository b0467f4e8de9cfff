//! Golden tests: every record of the bundled example mail folder and of the shared samples,
//! byte for byte as the `parse` command prints it (run as a user runs it; only the temporary
//! folder's prefix is taken out of the paths).
//!
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test --test golden`, then
//! read the diff: the golden files are the reviewed expectation. Any other value of
//! `UPDATE_GOLDEN` is an error, and so is updating under `CI`.
//!
//! Besides the golden files, the records are counted by kind against counts made by the test
//! from the files themselves (`count_by_kind`: the record-start rules of the spec), and for
//! the example folder against a table counted by hand.
//!
//! Shared samples: `EPOST_SHARED_SAMPLES`, else `../shared/samples` or `../../shared/samples`
//! next to the repository (a worktree); missing under `CI` is an error.
//!
//! Deliberate breaks (made once, then reverted): the golden files as they were (the same JSON
//! re-serialised with sorted keys) failed "examples-mail.ndjson: first difference at line 1";
//! one golden message without its last character failed the same way; `UPDATE_GOLDEN=0`
//! failed "UPDATE_GOLDEN must be 1"; `CI=true UPDATE_GOLDEN=1` failed "refusing to update";
//! the count rule taking every senderlog line as a record failed "records of senderlog".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

/// 2017-11-30T11:00:05+09:00: quarantined pairs take their time from the .RCP file's mtime,
/// which a checkout does not preserve.
const RCP_MTIME: u64 = 1_512_007_205;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            let f = std::fs::File::options().write(true).open(&dst).unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(RCP_MTIME);
            f.set_modified(t).unwrap();
        }
    }
}

/// Runs `parse` over a copy of `folder` and returns its exact output, with the copy's folder
/// prefix taken out of the paths (`log.file.path`, `file.path`).
fn parse_folder(folder: &Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("mail");
    copy_tree(folder, &root);
    let out = Command::new(BIN)
        .args(["parse", "--timezone", "Asia/Tokyo"])
        // files without a <COMPUTERNAME> folder (viruslog, flat senderlog) take this machine's
        // name; pin it so the golden ids do not depend on the test machine
        .env("COMPUTERNAME", "MAILSV01")
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "parse failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("parse prints UTF-8");
    // the prefix as it appears inside a JSON string
    let prefix =
        serde_json::to_string(&format!("{}{}", root.display(), std::path::MAIN_SEPARATOR)).unwrap();
    let prefix = &prefix[1..prefix.len() - 1];
    let text = text.replace(&format!("\"{prefix}"), "\"");
    assert!(
        !text.contains(prefix),
        "a path outside log.file.path/file.path"
    );
    text
}

fn records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    match std::env::var("UPDATE_GOLDEN").as_deref() {
        Err(_) => {}
        Ok("1") => {
            assert!(
                std::env::var_os("CI").is_none(),
                "refusing to update {} under CI: the golden files are the reviewed expectation",
                path.display()
            );
            std::fs::write(&path, actual).unwrap();
            eprintln!("updated {}: review the diff", path.display());
            return;
        }
        Ok(other) => panic!("UPDATE_GOLDEN must be 1 to rewrite the golden files (got {other:?})"),
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create)",
            path.display()
        )
    });
    if expected != actual {
        let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
        let i = e
            .iter()
            .zip(&a)
            .position(|(x, y)| x != y)
            .unwrap_or(e.len().min(a.len()));
        panic!(
            "{name}: first difference at line {}\n golden: {}\n parse:  {}\n({} golden lines, {} printed; UPDATE_GOLDEN=1 rewrites after an intended change)",
            i + 1,
            e.get(i).unwrap_or(&"<none>"),
            a.get(i).unwrap_or(&"<none>"),
            e.len(),
            a.len()
        );
    }
}

/// Records per kind, counted from the files alone with the spec's record-start rules
/// (../shared/spec/formats.md): in the single-line kinds every non-blank line is a record;
/// in receivelog, receivepop3 and receiveimap4 a record starts at a `[dd/Mon/yyyy:` line (and
/// a registry dump, `---- regestry ----` to its dashes, is one record); in senderlog at a
/// line starting with `[`; the other non-blank lines join the record before them. A
/// quarantine pair (`.RCP`) is one record.
fn count_by_kind(folder: &Path) -> BTreeMap<String, usize> {
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    files(folder, &mut all);
    let mut counts = BTreeMap::new();
    for p in all {
        let rel = p.strip_prefix(folder).unwrap();
        let kind = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let n = match (kind.as_str(), ext.as_deref()) {
            ("viruslog", Some("rcp")) => 1,
            ("viruslog", _) | (_, Some("md")) => continue,
            _ => {
                let bytes = std::fs::read(&p).unwrap();
                let mut n = 0;
                let mut in_registry = false;
                for line in bytes.split(|&b| b == b'\n') {
                    let line: &[u8] = {
                        let mut l = line;
                        while let [rest @ .., b'\r'] = l {
                            l = rest;
                        }
                        l
                    };
                    if line.iter().all(|&b| b == b' ' || b == b'\t') {
                        continue;
                    }
                    let dated = line.len() > 13
                        && line[0] == b'['
                        && line[3] == b'/'
                        && line[7] == b'/'
                        && line[12] == b':';
                    n += match kind.as_str() {
                        "receivelog" | "receivepop3" | "receiveimap4" => {
                            if line.starts_with(b"---- regestry") {
                                in_registry = true;
                                1
                            } else if in_registry {
                                in_registry = !line.starts_with(b"-----");
                                0
                            } else {
                                dated as usize
                            }
                        }
                        "senderlog" => line.starts_with(b"[") as usize,
                        _ => 1,
                    };
                }
                n
            }
        };
        *counts.entry(kind).or_insert(0) += n;
    }
    counts
}

fn assert_counts(records: &[Value], folder: &Path) {
    let want = count_by_kind(folder);
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for r in records {
        *got.entry(r["epost"]["log"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    for (kind, n) in &want {
        assert_eq!(
            got.get(kind),
            Some(n),
            "records of {kind} (counted from the files)"
        );
    }
    assert_eq!(got, want, "records by kind");
}

fn count(records: &[Value], kind: &str) -> usize {
    records.iter().filter(|r| r["epost"]["log"] == kind).count()
}

#[test]
fn example_mail_folder() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/mail");
    let text = parse_folder(&dir);
    check_golden("examples-mail.ndjson", &text);
    let records = records(&text);
    assert_counts(&records, &dir);

    // The shape of the folder, independent of the golden file: one record per line, except
    // the continuation lines that join the record before them.
    for (kind, n) in [
        ("acceptlog", 13),
        ("inlog", 8),
        ("receivelog", 30),
        ("senderlog", 27),
        ("outlog", 5),
        ("outlocallog", 2),
        ("faillog", 5),
        ("pop3log", 6),
        ("receivepop3", 7),
        ("imap4log", 6),
        ("receiveimap4", 10),
        ("maildblog", 1),
        ("viruslog", 2),
    ] {
        assert_eq!(count(&records, kind), n, "records of {kind}");
    }
    for r in &records {
        // contract: no null and no empty string anywhere
        fn walk(v: &Value, at: &str) {
            match v {
                Value::Null => panic!("null at {at}"),
                Value::String(s) => assert!(!s.is_empty(), "empty string at {at}"),
                Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, &format!("{at}.{k}"))),
                Value::Array(a) => a.iter().for_each(|v| walk(v, at)),
                _ => {}
            }
        }
        walk(r, "");
        let msg = r["message"].as_str().unwrap();
        for secret in [
            "hunter2",
            "s3cret",
            "cGFzc3dvcmQxMjM=",
            "c2VjcmV0LXBhc3M=",
            "AHRhcm9A",
            "dGFybwB0",
            "2b5f0c9e",
        ] {
            assert!(!msg.contains(secret), "secret {secret} leaked: {msg}");
        }
        if let Some(a) = r["epost"]["protocol"]["args"].as_str() {
            assert!(!a.contains("hunter2") && !a.contains("2b5f0c9e"), "{a}");
        }
        assert_eq!(r["event"]["id"].as_str().unwrap().len(), 32);
    }
}

#[test]
fn shared_samples() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = match std::env::var_os("EPOST_SHARED_SAMPLES") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec![
            root.join("../shared/samples"),
            root.join("../../shared/samples"),
        ],
    };
    let Some(dir) = candidates.iter().find(|d| d.is_dir()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the shared samples must be present in CI (looked in {candidates:?})"
        );
        eprintln!("skipping: no shared samples in {candidates:?}");
        return;
    };
    let text = parse_folder(dir);
    check_golden("shared-samples.ndjson", &text);
    let records = records(&text);
    assert_counts(&records, dir);
    assert!(records.iter().all(|r| r["epost"]["parse_error"].is_null()));
}
