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
    use common::fake_es::{FakeEs, Whole};
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
    let total = 30_000;
    let mut text = String::new();
    for i in 0..total {
        text.push_str(&inlog_line(i, 30));
    }
    append(&p, &text);
    let sink = format!(
        "[[sink]]\ntype = \"elasticsearch\"\nurl = \"{}\"\nbatch_max_events = 500\nmax_in_flight = 1\ncompression = \"none\"\n",
        fake.url
    );
    h.config_sinks("", "segment_max_records = 250", &sink);
    let cfg = h.dir.path().join("shipper.toml");
    let mut child = Command::new(BIN)
        .args(["backfill", "--config"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while fake.count() < 3_000 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = fake.count();
    assert!(
        (3_000..total as usize).contains(&before),
        "interrupted mid-way ({before})"
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
    assert_eq!(fake.count(), total as usize, "every line stored once");
    let replayed = fake.conflicts.load(Ordering::SeqCst);
    assert!(
        replayed < 2_000,
        "resumed near where it stopped, not from the start ({replayed} sent again)"
    );

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
