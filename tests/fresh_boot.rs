//! A freshly booted machine: `run` and `backfill` inside a Linux time namespace whose
//! monotonic and boot clocks say the machine has been up for about 30 s (a service starts at
//! boot). Every record of the example folder must arrive, with its message, and the process
//! must exit 0.
//!
//! On Windows `Instant` counts from boot, so `Instant::now() - 1 h` panics in the first hour
//! (issue 14, item 1); tests/wine/run.sh proves the Windows build under the same namespace.
//! On Linux `Instant` is a signed `timespec` of CLOCK_MONOTONIC, so that subtraction does not
//! panic here: this test guards everything else that reads the uptime (the boot clock,
//! timers, "never" as "an hour ago").
//!
//! Needs `unshare --time` (util-linux, root or user namespaces): without it the test says
//! "skipping", except under `CI`, where it fails.
//!
//! Deliberate break (made once, then reverted): comparing each shipped message with the
//! reference cut by one character failed with "message of record (.../acceptlog/...171130.log,
//! 0)". On 322918a `backfill` fails here with "records of pop3log: 5, want 6": it never ships
//! the unterminated last line of pop3log/MAILSV01/171201.log (issue 14, item 7).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Harness;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

/// The example folder's records by kind, counted by hand from its files (one record per line,
/// continuation lines joining the record before them, a quarantine pair one record); the
/// same table as tests/golden.rs.
const EXAMPLE_KINDS: [(&str, usize); 13] = [
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
];

/// `unshare` arguments that put a command on a machine up for ~30 s, or `None` (skip) where
/// time namespaces are not available; under CI that is a failure.
fn fresh_boot() -> Option<Vec<String>> {
    let up: f64 = std::fs::read_to_string("/proc/uptime")
        .expect("/proc/uptime")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let back = (up as i64 - 30).max(0);
    let args: Vec<String> = [
        "--time".to_string(),
        format!("--monotonic=-{back}"),
        format!("--boottime=-{back}"),
    ]
    .into();
    // the probe: the namespace must really show a young machine
    let probe = Command::new("unshare")
        .args(&args)
        .args(["cat", "/proc/uptime"])
        .output();
    let seen = match &probe {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<f64>().ok()),
        _ => None,
    };
    match seen {
        Some(s) if s < 120.0 => Some(args),
        _ => {
            let why = format!("`unshare --time` does not give a fresh uptime: {probe:?}");
            assert!(std::env::var_os("CI").is_none(), "{why} (CI is set)");
            eprintln!("skipping: {why}");
            None
        }
    }
}

fn config(h: &Harness) -> std::path::PathBuf {
    // poll and timers as a service has them by default, except the partial-line timeout
    // (the example folder ends one file without a newline)
    let text = format!(
        r#"
[source]
workdir = '{mail}'
state_dir = '{state}'
ignore_older_than = "100000d"
partial_line_timeout = "1s"

[metrics]
listen = ""

[[sink]]
type = "file"
path = '{out}'
"#,
        mail = h.mail.display(),
        state = h.state.display(),
        out = h.out.display(),
    );
    let p = h.dir.path().join("shipper.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The messages `parse` prints for the folder, outside the namespace: the reference the
/// shipped records are compared with, record by record (by file and offset).
fn reference(mail: &Path) -> BTreeMap<(String, u64), String> {
    let out = Command::new(BIN).arg("parse").arg(mail).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (key(&v), v["message"].as_str().unwrap().to_string())
        })
        .collect()
}

fn key(v: &Value) -> (String, u64) {
    (
        v["log"]["file"]["path"].as_str().unwrap().to_string(),
        v["log"]["offset"].as_u64().unwrap(),
    )
}

fn assert_every_record(h: &Harness) {
    let records = h.records();
    for (kind, n) in EXAMPLE_KINDS {
        let got = records.iter().filter(|r| r["epost"]["log"] == kind).count();
        assert_eq!(got, n, "records of {kind}");
    }
    let total: usize = EXAMPLE_KINDS.iter().map(|k| k.1).sum();
    assert_eq!(records.len(), total, "each record once");
    let want = reference(&h.mail);
    assert_eq!(want.len(), total, "the reference parse");
    for r in &records {
        let k = key(r);
        let msg = want
            .get(&k)
            .unwrap_or_else(|| panic!("a record nobody wrote: {r}"));
        assert_eq!(
            r["message"].as_str().unwrap(),
            msg,
            "message of record {k:?}"
        );
    }
}

#[test]
fn backfill_on_a_freshly_booted_machine() {
    let Some(ns) = fresh_boot() else { return };
    let h = Harness::new();
    h.copy_examples();
    let cfg = config(&h);
    let out = Command::new("unshare")
        .args(&ns)
        .arg(BIN)
        .args(["backfill", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "backfill: {:?}\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_every_record(&h);
}

#[test]
fn run_on_a_freshly_booted_machine() {
    let Some(ns) = fresh_boot() else { return };
    let h = Harness::new();
    h.copy_examples();
    let cfg = config(&h);
    let log = h.dir.path().join("run.log");
    // `sh` prints its pid and becomes the shipper (exec), so the shipper itself gets SIGTERM;
    // `unshare` (which forks for a time namespace) exits with the shipper's status
    let mut child = Command::new("unshare")
        .args(&ns)
        .args([
            "sh",
            "-c",
            "echo $$; exec \"$0\" run --config \"$1\" 2>\"$2\"",
        ])
        .arg(BIN)
        .arg(&cfg)
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pid = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut pid,
    )
    .unwrap();
    let pid = pid.trim().to_string();
    let total: usize = EXAMPLE_KINDS.iter().map(|k| k.1).sum();
    let start = Instant::now();
    while h.records().len() < total && start.elapsed() < Duration::from_secs(120) {
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "run exited by itself ({st:?}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success(), "kill -TERM {pid}");
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "run: {status:?}\n{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains("stopped cleanly"), "{text}");
    assert_every_record(&h);
}
