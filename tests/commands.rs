//! The commands an administrator runs besides `run`: check, status, backfill (interrupted and
//! resumed), and a clean stop of `run` on SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Harness, append, inlog_line};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

fn cmd(args: &[&str], config: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn check_reports_config_errors_sinks_and_folders() {
    let h = Harness::new();
    append(
        &h.log("inlog", "MAILSV01", "171130.log"),
        &inlog_line(1, 30),
    );
    h.config("");
    let cfg = h.dir.path().join("shipper.toml");
    let out = cmd(&["check"], &cfg);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("inlog") && text.contains("MAILSV01") && text.contains("newest 171130.log"),
        "{text}"
    );
    assert!(text.contains("all well"));

    // an unreachable sink: exit 1, the sink named
    let bad = h.dir.path().join("bad.toml");
    let t = std::fs::read_to_string(&cfg).unwrap()
        + "\n[[sink]]\ntype = \"elasticsearch\"\nname = \"es\"\nurl = \"http://127.0.0.1:9\"\n";
    std::fs::write(&bad, t).unwrap();
    let out = cmd(&["check"], &bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sink es (elasticsearch): FAILED"));

    // a typo: exit 2 with file, line and key
    let typo = h.dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        format!(
            "[source]\nworkdir = '{}'\nencodng = \"cp932\"\n[[sink]]\ntype = \"stdout\"\n",
            h.mail.display()
        ),
    )
    .unwrap();
    let out = cmd(&["check"], &typo);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.toml:3:1")
            && err.contains("source.encodng")
            && err.contains("did you mean `encoding`?"),
        "{err}"
    );
}

#[test]
fn backfill_interrupted_resumes_and_status_shows_it() {
    use common::fake_es::{FakeEs, Sent, Whole};
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    // a slow sink at first, so that the kill surely lands mid-way
    let slow = Arc::new(AtomicBool::new(true));
    let s = slow.clone();
    let fake = FakeEs::start(
        Box::new(move |_| {
            if s.load(Ordering::SeqCst) {
                Whole::Slow(Duration::from_millis(150))
            } else {
                Whole::Items
            }
        }),
        Box::new(|_, _| None),
    );
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    let total = 30_000u32;
    // every line has the same length (the message number is zero-padded), so a checkpointed
    // offset says how many lines, from the first, are acknowledged
    let line_len = inlog_line(0, 30).len() as u64;
    let mut text = String::new();
    for i in 0..total {
        let l = inlog_line(i, 30);
        assert_eq!(l.len() as u64, line_len);
        text.push_str(&l);
    }
    append(&p, &text);
    let sink = format!(
        "[[sink]]\ntype = \"elasticsearch\"\nurl = \"{}\"\nbatch_max_events = 500\nmax_in_flight = 1\ncompression = \"none\"\n",
        fake.url
    );
    h.config_sinks("", "segment_max_records = 250", &sink);
    let cfg = h.dir.path().join("shipper.toml");
    let offset = || -> u64 {
        let out = cmd(&["status", "--json"], &cfg);
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        st["files"][0]["offset"].as_u64().unwrap_or(0)
    };
    let mut child = Command::new(BIN)
        .args(["backfill", "--config"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // kill once the checkpoint shows at least 3,000 lines acknowledged
    let start = Instant::now();
    let mut seen = 0;
    while seen < 3_000 * line_len && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
        seen = offset();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // a request the dead process had fully written may still be in the fake's socket buffer:
    // let it arrive before counting the first run's requests
    let mut first_run_requests = fake.requests.load(Ordering::SeqCst);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let n = fake.requests.load(Ordering::SeqCst);
        if n == first_run_requests {
            break;
        }
        first_run_requests = n;
    }
    // the checkpoint the resumed run starts from (written at or after the one seen)
    let checkpointed = offset();
    assert!(
        seen >= 3_000 * line_len && checkpointed >= seen,
        "{seen} then {checkpointed}"
    );
    assert_eq!(checkpointed % line_len, 0, "on a line boundary");
    let resume_at = checkpointed / line_len;
    assert!(
        resume_at < u64::from(total),
        "interrupted mid-way ({resume_at})"
    );

    let out = cmd(&["status", "--json"], &cfg);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(st["bytes_behind"].as_u64().unwrap() > 0, "{st}");

    // run again: continues where it stopped and exits 0 when caught up
    slow.store(false, Ordering::SeqCst);
    let out = cmd(&["backfill"], &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("backfill complete"));

    // the line number of a document, from the message id the test wrote
    let number = |s: &Sent| -> u64 {
        let doc: serde_json::Value = serde_json::from_str(&s.doc).unwrap();
        let m = doc["message"].as_str().unwrap();
        let i = m.find("<B").expect("message id") + 2;
        m.get(i..i + 10)
            .and_then(|d| d.parse().ok())
            .expect("id digits")
    };
    let sent = fake.sent();
    let (first, second): (Vec<&Sent>, Vec<&Sent>) =
        sent.iter().partition(|s| s.request <= first_run_requests);
    let stored_first: HashSet<u64> = first
        .iter()
        .filter(|s| s.status == 201)
        .map(|s| number(s))
        .collect();
    // every line the checkpoint called acknowledged was stored by the first run
    let missing = (0..resume_at).filter(|i| !stored_first.contains(i)).count();
    assert_eq!(missing, 0, "acknowledged before the kill but not stored");
    // the resumed run sent exactly the lines after the checkpoint, each once, in order
    let resent: Vec<u64> = second.iter().map(|s| number(s)).collect();
    let want: Vec<u64> = (resume_at..u64::from(total)).collect();
    assert!(
        resent == want,
        "the resumed run sent {} lines, {:?} to {:?}; expected the {} from {resume_at}",
        resent.len(),
        resent.first(),
        resent.last(),
        want.len()
    );
    // and the only ones already there were those the first run stored after its checkpoint
    let conflicts: HashSet<u64> = second
        .iter()
        .filter(|s| s.status == 409)
        .map(|s| number(s))
        .collect();
    let expected: HashSet<u64> = stored_first
        .iter()
        .copied()
        .filter(|&i| i >= resume_at)
        .collect();
    assert_eq!(conflicts, expected);
    // every line stored, exactly once, none missing
    let stored: HashSet<String> = fake
        .docs
        .lock()
        .unwrap()
        .values()
        .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap()["message"].to_string())
        .collect();
    assert_eq!(fake.count(), total as usize, "every line stored once");
    let want: HashSet<String> = text
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::Value::from(l).to_string())
        .collect();
    assert_eq!(stored, want);

    let out = cmd(&["status", "--json"], &cfg);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["bytes_behind"], 0);
    let table = String::from_utf8_lossy(&cmd(&["status"], &cfg).stdout).to_string();
    assert!(
        table.contains("inlog/MAILSV01/171130.log") && table.contains("behind in total: 0 B"),
        "{table}"
    );
}

#[cfg(unix)]
#[test]
fn run_stops_cleanly_on_sigterm() {
    let h = Harness::new();
    append(
        &h.log("inlog", "MAILSV01", "171130.log"),
        &inlog_line(1, 30),
    );
    h.config("");
    let cfg = h.dir.path().join("shipper.toml");
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    h.wait_until(10, "the line", |r| r.len() == 1);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped cleanly"));
    let cp = h.checkpoint();
    assert_eq!(cp["files"][0]["offset"], cp["files"][0]["size"]);
}

#[test]
fn every_example_config_is_valid() {
    let h = Harness::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        // the examples name Windows folders; point them at a folder that exists here
        let mail = h.mail.display().to_string();
        let state = h.state.display().to_string();
        let text: String = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .map(|l| {
                let t = l.trim_start();
                if t.starts_with("workdir =") || t.starts_with("workdir=") {
                    format!("workdir = '{mail}'")
                } else if t.starts_with("workdirs =") {
                    format!("workdirs = ['{mail}']")
                } else if t.starts_with("state_dir =") {
                    format!("state_dir = '{state}'")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        // secrets named by env: must exist for the config to load
        for var in [
            "EPOST_ES_API_KEY",
            "EPOST_ES_PASSWORD",
            "EPOST_OTLP_AUTH",
            "EPOST_LOKI_TOKEN",
            "EPOST_LOKI_PASSWORD",
            "EPOST_OTLP_TOKEN",
        ] {
            // SAFETY: tests in this file do not read these variables concurrently
            unsafe { std::env::set_var(var, "x") };
        }
        let text = text.replace("file:D:\\epost-shipper\\loki.token", "dummy-token");
        let path = h.dir.path().join(p.file_name().unwrap());
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = epost_shipper::config::Config::load(&path) {
            panic!("{}: {e}", p.display());
        }
        n += 1;
    }
    assert!(n >= 5, "example configs found: {n}");
}
