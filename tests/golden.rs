//! Golden tests: every record of the bundled example mail folder and of the shared samples,
//! field by field, through the `parse` command exactly as a user runs it.
//!
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test --test golden`, then
//! read the diff: the golden files are the reviewed expectation.

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

/// Runs `parse` over a copy of `folder` and returns the records with `log.file.path` and
/// `file.path` made relative to the folder.
fn parse_folder(folder: &Path) -> Vec<Value> {
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
    let prefix = format!("{}/", root.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("each line is JSON");
            for ptr in ["/log/file/path", "/file/path"] {
                if let Some(Value::String(p)) = v.pointer_mut(ptr) {
                    *p = p.replace(&prefix, "").replace('\\', "/");
                }
            }
            v
        })
        .collect()
}

fn check_golden(name: &str, records: &[Value]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let actual: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create)",
            path.display()
        )
    });
    let exp: Vec<Value> = expected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, (a, e)) in records.iter().zip(&exp).enumerate() {
        assert_eq!(a, e, "record {i} of {name} differs");
    }
    assert_eq!(records.len(), exp.len(), "number of records in {name}");
}

fn count(records: &[Value], kind: &str) -> usize {
    records.iter().filter(|r| r["epost"]["log"] == kind).count()
}

#[test]
fn example_mail_folder() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/mail");
    let records = parse_folder(&dir);
    check_golden("examples-mail.ndjson", &records);

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
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "../shared/samples must be present in CI"
        );
        eprintln!("skipping: {} not found", dir.display());
        return;
    }
    let records = parse_folder(&dir);
    check_golden("shared-samples.ndjson", &records);
    assert!(records.iter().all(|r| r["epost"]["parse_error"].is_null()));
}
