//! The Loki sink: against the real server started by tests/servers/up.sh (VictoriaLogs'
//! implementation of Loki's push API; EPOST_TEST_LOKI, EPOST_TEST_LOKI_PUSH_PATH), and
//! against an in-process fake that keeps Loki's own rules (exact duplicates collapse, too-old
//! and too-far-behind entries refused with 400) for fault injection. Every test ends by
//! counting.
//!
//! VictoriaLogs keeps exact duplicates, so the real-server tests check that every record
//! arrived with the right content, and that every duplicate a crash caused has exactly the
//! timestamp and line of its original (which Loki stores once). The collapse itself is shown
//! against the fake.
//!
//! The example test adds two copies of the example's one maildblog line (three identical
//! lines in one second: three entries, three timestamps) and proves "a second run sends
//! nothing again" with a marker line: the count is then exactly one more. The kill test
//! compares each entry's line with the line the test reads from the file at the record's
//! offset, and requires duplicates > 0 (VictoriaLogs keeps re-sent entries).
//!
//! Deliberate breaks (made once, then reverted): the checkpoint removed before the second run
//! failed "the marker, and nothing sent again: 248, want 125"; entry timestamps without the
//! offset part failed "timestamp of ..." (the exact timestamp check, before the maildblog one);
//! every 5th push sent twice failed `fake_500s_and_503s` with "entries sent again after being
//! stored: 200" (the fake absorbs duplicates as Loki does: its count alone cannot show it).
//! The fakes' lines are also compared with the bytes the test reads at each offset.

mod common;
mod fake_loki;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Harness, append, inlog_line};
use fake_loki::{FakeLoki, Fault, Rules};
use serde_json::Value;

// ---- helpers ----

/// Base URL and push path of the real server, or `None` (skip) outside CI.
fn server() -> Option<(String, String)> {
    let base = common::real_server("EPOST_TEST_LOKI")?;
    let path = std::env::var("EPOST_TEST_LOKI_PUSH_PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/insert/loki/api/v1/push".to_string());
    Some((base, path))
}

use common::unique;

/// The records `parse` makes of a folder, as the sinks receive them.
fn parsed(dir: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .arg("parse")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The entry timestamp the contract gives a record, restated from docs/sinks/loki.md: the
/// written time, plus the byte offset modulo 10^9 ns (whole seconds) or modulo 10^6 ns
/// (senderlog and viruslog, which have milliseconds).
fn expected_nanos(r: &Value) -> i64 {
    let t = chrono::DateTime::parse_from_rfc3339(r["@timestamp"].as_str().unwrap()).unwrap();
    let ms = t.timestamp_millis();
    let offset = r["log"]["offset"].as_i64().unwrap();
    let kind = r["epost"]["log"].as_str().unwrap();
    let ms_res = kind == "senderlog" || kind == "viruslog" || ms % 1000 != 0;
    ms * 1_000_000
        + if ms_res {
            offset % 1_000_000
        } else {
            offset % 1_000_000_000
        }
}

/// The structured metadata the contract gives a record.
fn expected_metadata(r: &Value) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: &Value| {
        if let Some(s) = v.as_str() {
            m.insert(k.to_string(), s.to_string());
        }
    };
    put("event_id", &r["event"]["id"]);
    put("local_id", &r["email"]["local_id"]);
    put("client_ip", &r["client"]["ip"]);
    put("user", &r["user"]["name"]);
    put("outcome", &r["event"]["outcome"]);
    m
}

fn loki_sink(url: &str, push_path: &str, extra: &str) -> String {
    format!(
        "[[sink]]\ntype = \"loki\"\nurl = \"{url}\"\npush_path = \"{push_path}\"\nbatch_timeout = \"200ms\"\n{extra}\n"
    )
}

// ---- the real server (VictoriaLogs' Loki push API) ----

/// LogsQL over HTTP: one JSON object per entry (or per stats row).
fn logsql(base: &str, query: &str) -> Vec<Value> {
    let r = reqwest::blocking::Client::new()
        .get(format!("{base}/select/logsql/query"))
        .query(&[("query", query)])
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{query}: {:?}", r.text());
    r.text()
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn vl_count(base: &str, filter: &str) -> u64 {
    let rows = logsql(base, &format!("{filter} | stats count() as n"));
    rows.first()
        .and_then(|r| r["n"].as_str())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn wait_vl_count(base: &str, filter: &str, want: u64, secs: u64) -> u64 {
    let start = Instant::now();
    loop {
        let n = vl_count(base, filter);
        if n >= want || start.elapsed() > Duration::from_secs(secs) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn vl_nanos(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v["_time"].as_str().unwrap())
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

/// Ships the example folder; every record arrives once with its labels, line, timestamp and
/// structured metadata exactly as the contract says.
fn ship_examples(base: &str, push_path: &str, extra: &str, json_lines: bool) {
    let run = unique();
    let h = Harness::new();
    h.copy_examples();
    // the example has one maildblog line: two more copies of it make three identical lines in
    // one second, three records that Loki would collapse if their timestamps were equal
    let maildb = h.mail.join("maildblog/MAILSV01/171130.log");
    let mach_line = std::fs::read_to_string(&maildb).unwrap();
    assert_eq!(mach_line.lines().count(), 1);
    append(&maildb, &mach_line.repeat(2));
    let sink = loki_sink(
        base,
        push_path,
        &format!("labels = {{ run = \"{run}\" }}\n{extra}"),
    );
    let pipeline = h.start(h.config_sinks("", "", &sink));
    // viruslog's time is the copy's file time: parse the copy
    let want = parsed(&h.mail);
    let filter = format!("{{run=\"{run}\"}}");
    let n = wait_vl_count(base, &filter, want.len() as u64, 60);
    pipeline.stop();
    assert_eq!(n, want.len() as u64, "every record of the example folder");

    let got = logsql(base, &filter);
    let by_id: HashMap<&str, &Value> = got
        .iter()
        .map(|v| (v["event_id"].as_str().expect("event_id metadata"), v))
        .collect();
    assert_eq!(by_id.len(), want.len(), "one entry per record");
    for r in &want {
        let id = r["event"]["id"].as_str().unwrap();
        let v = by_id
            .get(id)
            .unwrap_or_else(|| panic!("record {id} missing: {r}"));
        let kind = r["epost"]["log"].as_str().unwrap();
        let host = r["host"]["name"].as_str().unwrap();
        assert_eq!(
            v["_stream"],
            format!("{{host=\"{host}\",job=\"epost\",log=\"{kind}\",run=\"{run}\"}}"),
            "labels are exactly job, host, log and the static ones"
        );
        if json_lines {
            let line: Value = serde_json::from_str(v["_msg"].as_str().unwrap()).unwrap();
            assert_eq!(&line, r, "line_format = json: the whole record");
        } else {
            assert_eq!(v["_msg"], r["message"], "{id}");
        }
        assert_eq!(vl_nanos(v), expected_nanos(r), "timestamp of {id}: {v}");
        for (k, val) in expected_metadata(r) {
            assert_eq!(v[&k], val.as_str(), "structured metadata {k} of {id}");
        }
        for k in ["user", "local_id", "client_ip"] {
            if !expected_metadata(r).contains_key(k) {
                assert!(v.get(k).is_none(), "{k} is absent when the record has none");
            }
        }
    }
    // a message's journey by its id, across kinds, with a field filter
    let journey = vl_count(base, &format!("{filter} local_id:=B0000097587"));
    assert!(journey >= 8, "B0000097587 across kinds: {journey}");
    // the three identical mach!! lines of maildblog are all there, with distinct timestamps
    let mach = logsql(base, &format!("{{run=\"{run}\",log=\"maildblog\"}}"));
    assert_eq!(
        mach.len(),
        3,
        "three identical lines, three entries: {mach:?}"
    );
    let times: HashSet<i64> = mach.iter().map(vl_nanos).collect();
    assert_eq!(times.len(), 3, "distinct timestamps in one stream");
    if !json_lines {
        for m in &mach {
            assert_eq!(m["_msg"], mach_line.trim_end_matches("\r\n"));
        }
    }

    // a second run sends nothing again: a line written after it started arrives, and the
    // count (VictoriaLogs keeps a re-sent entry) is then exactly one more
    let pipeline = h.start(h.config_sinks("", "", &sink));
    append(
        &h.mail.join("inlog/MAILSV01/171130.log"),
        &inlog_line(99_999, 30),
    );
    let n = wait_vl_count(base, &filter, want.len() as u64 + 1, 60);
    pipeline.stop();
    assert_eq!(
        n,
        want.len() as u64 + 1,
        "the marker, and nothing sent again"
    );
    let marker = logsql(base, &format!("{filter} local_id:=B0000099999"));
    assert_eq!(marker.len(), 1);
}

#[test]
fn real_loki_ships_examples_protobuf() {
    if let Some((base, path)) = server() {
        ship_examples(&base, &path, "", false);
    }
}

#[test]
fn real_loki_ships_examples_json_gzip_with_json_lines() {
    if let Some((base, path)) = server() {
        ship_examples(
            &base,
            &path,
            // VictoriaLogs would parse a JSON line into fields; this header keeps it whole
            "encoding = \"json\"\nline_format = \"json\"\nheaders = { \"VL-Loki-Disable-Message-Parsing\" = \"1\" }",
            true,
        );
    }
}

#[test]
fn real_loki_probe_names_the_server() {
    let Some((base, path)) = server() else { return };
    let h = Harness::new();
    let cfg = h.config_sinks("", "", &loki_sink(&base, &path, ""));
    let sink = epost_shipper::sink::Sink::new(&cfg.sinks[0], &h.state).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = rt.block_on(sink.probe()).expect("probe");
    assert!(p.server.starts_with("VictoriaLogs v"), "{}", p.server);
    // a wrong push path is named as such
    let cfg = h.config_sinks("", "", &loki_sink(&base, "/nope/push", ""));
    let sink = epost_shipper::sink::Sink::new(&cfg.sinks[0], &h.state).unwrap();
    let e = rt.block_on(sink.probe()).unwrap_err().to_string();
    assert!(e.contains("push_path"), "{e}");
    // and the records wait for the fix instead of going to the dead-letter file (the
    // server answers a wrong path with 400)
    let p = h.log("inlog", "MAILSV01", "171130.log");
    append(&p, &inlog_line(1, 30));
    let run = h.start(cfg);
    std::thread::sleep(Duration::from_secs(2));
    run.stop();
    assert!(dead_letters(&h).is_empty(), "{:?}", dead_letters(&h));
    for f in h.checkpoint()["files"].as_array().unwrap() {
        assert_eq!(f["offset"], 0, "nothing acknowledged: {f}");
    }
}

/// Writes `total` inlog records and some identical maildblog lines into the harness folder;
/// returns the number of records.
fn write_stream_files(h: &Harness, total: u32) -> usize {
    let p = h.log("inlog", "MAILSV01", "171130.log");
    let mut text = String::new();
    for i in 0..total {
        text.push_str(&inlog_line(i, 30));
    }
    append(&p, &text);
    // identical lines in one second: different records, all must survive
    let m = h.log("maildblog", "MAILSV01", "171130.log");
    let mach =
        "[30/Nov/2017:10:00:00] [IN=alice@example.net] / [maildb=alice@example.net] mach!!\r\n";
    append(&m, &mach.repeat(40));
    total as usize + 40
}

/// Runs the binary over a writer that appends 3000 inlog lines and 40 identical maildblog
/// lines while the shipper is SIGKILLed 7 times and restarted, then lets it catch up (the
/// checkpoint at the end of both files). Returns the number of records written.
fn kill_and_restart(h: &Harness, url: &str, push_path: &str, extra: &str) -> usize {
    let total = 3040;
    // A checkpoint a second apart and kills at every phase: restarts send again what the
    // server already has, which is what this test is about.
    let config = h.dir.path().join("shipper.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[source]
workdir = '{mail}'
state_dir = '{state}'
ignore_older_than = "3650d"
poll_interval = "100ms"
partial_line_timeout = "1s"

[pipeline]
checkpoint_interval = "1s"
segment_max_records = 50

{sink}
"#,
            mail = h.mail.display(),
            state = h.state.display(),
            sink = loki_sink(
                url,
                push_path,
                &format!("batch_max_events = 100\nmax_in_flight = 2\n{extra}"),
            )
        ),
    )
    .unwrap();
    // the writer appends while the shipper is killed and restarted
    let writer = {
        let p = h.log("inlog", "MAILSV01", "171130.log");
        let m = h.log("maildblog", "MAILSV01", "171130.log");
        std::thread::spawn(move || {
            let mach = "[30/Nov/2017:10:00:00] [IN=alice@example.net] / [maildb=alice@example.net] mach!!\r\n";
            for chunk in 0..60u32 {
                let mut text = String::new();
                for i in chunk * 50..chunk * 50 + 50 {
                    text.push_str(&inlog_line(i, 30));
                }
                append(&p, &text);
                if chunk % 3 == 0 {
                    // identical lines in one second, some in the same segment
                    append(&m, &mach.repeat(2));
                }
                std::thread::sleep(Duration::from_millis(80));
            }
        })
    };
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    for wait in [700u64, 1500, 2500, 400, 1800, 1200, 900] {
        let mut child = spawn();
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    writer.join().unwrap();
    let mut child = spawn();
    // caught up when the checkpoint reaches the end of both files
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        let done = Some(common::checkpoint_in(&h.state)).is_some_and(|cp| {
            let f = cp["files"].as_array().cloned().unwrap_or_default();
            f.len() == 2 && f.iter().all(|f| f["offset"] == f["size"])
        });
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    total
}

#[test]
fn real_loki_kill_and_restart_loses_nothing_and_replays_are_identical() {
    let Some((base, path)) = server() else { return };
    let run = unique();
    let h = Harness::new();
    let total = kill_and_restart(&h, &base, &path, &format!("labels = {{ run = \"{run}\" }}"));
    let filter = format!("{{run=\"{run}\"}}");
    wait_vl_count(&base, &filter, total as u64, 30);
    std::thread::sleep(Duration::from_secs(2));

    let got = logsql(
        &base,
        &format!("{filter} | fields _time, _msg, _stream, event_id"),
    );
    let mut by_id: HashMap<String, Vec<(i64, String, String)>> = HashMap::new();
    for v in &got {
        by_id
            .entry(v["event_id"].as_str().unwrap().to_string())
            .or_default()
            .push((
                vl_nanos(v),
                v["_msg"].as_str().unwrap().to_string(),
                v["_stream"].as_str().unwrap().to_string(),
            ));
    }
    let expected: HashSet<String> = parsed(&h.mail)
        .iter()
        .map(|r| r["event"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(expected.len(), total);
    let missing = expected
        .iter()
        .filter(|id| !by_id.contains_key(*id))
        .count();
    let invented = by_id.keys().filter(|id| !expected.contains(*id)).count();
    let duplicates = got.len() - by_id.len();
    eprintln!(
        "records {total}; entries in VictoriaLogs {}; missing {missing}; invented {invented}; replayed duplicates {duplicates}",
        got.len()
    );
    assert_eq!(missing, 0, "no record missing");
    assert_eq!(invented, 0);
    // VictoriaLogs keeps re-sent entries: the kills fell inside the at-least-once window
    assert!(
        duplicates > 0,
        "no kill fell between a push and its checkpoint"
    );
    // each entry's line is the line written at that record's offset (read from the file
    // here, not taken from the shipper)
    let files: HashMap<String, Vec<u8>> = ["inlog", "maildblog"]
        .iter()
        .map(|k| {
            let p = h.mail.join(k).join("MAILSV01/171130.log");
            (p.to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    let line_at = |path: &str, offset: u64| {
        let b = &files[path][offset as usize..];
        let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
        String::from_utf8(b[..end].to_vec())
            .unwrap()
            .trim_end_matches('\r')
            .to_string()
    };
    for r in parsed(&h.mail) {
        let id = r["event"]["id"].as_str().unwrap();
        let want = line_at(
            r["log"]["file"]["path"].as_str().unwrap(),
            r["log"]["offset"].as_u64().unwrap(),
        );
        assert_eq!(by_id[id][0].1, want, "the line of {id}");
    }
    for (id, copies) in &by_id {
        assert!(
            copies.iter().all(|c| c == &copies[0]),
            "a replay of {id} differs from its original (Loki would keep both): {copies:?}"
        );
    }
    // and different records never look alike: Loki keeps every one of them
    let distinct: HashSet<&(i64, String, String)> = by_id.values().map(|c| &c[0]).collect();
    assert_eq!(
        distinct.len(),
        total,
        "(stream, timestamp, line) is unique per record"
    );
}

// ---- fault injection against the fake ----

/// Ships `total` inlog lines (and 40 identical maildblog lines) to the fake; waits until
/// every record is stored or dead-lettered, then stops.
fn fake_run(fake: &FakeLoki, total: u32, extra: &str) -> Harness {
    let h = Harness::new();
    let n = write_stream_files(&h, total);
    let sink = loki_sink(
        &fake.url,
        "/loki/api/v1/push",
        &format!("batch_max_events = 100\nmax_in_flight = 3\n{extra}"),
    );
    let run = h.start(h.config_sinks("", "segment_max_records = 50", &sink));
    wait_settled(&h, fake, n);
    run.stop();
    h
}

fn dead_letters(h: &Harness) -> Vec<Value> {
    std::fs::read_to_string(h.state.join("dead-letter/loki-1.ndjson"))
        .map(|t| {
            t.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// Until stored + dead-lettered covers `n` records and the checkpoint is at the end.
fn wait_settled(h: &Harness, fake: &FakeLoki, n: usize) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        let cp_done = Some(common::checkpoint_in(&h.state)).is_some_and(|cp| {
            let f = cp["files"].as_array().cloned().unwrap_or_default();
            !f.is_empty() && f.iter().all(|f| f["offset"] == f["size"])
        });
        if cp_done && fake.count() + dead_letters(h).len() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "not settled: {} stored, {} dead-lettered of {n}",
        fake.count(),
        dead_letters(h).len()
    );
}

/// Every record of the folder is in the fake exactly once, with the right line, timestamp
/// and metadata, and no push had a stream out of timestamp order.
fn assert_exact(h: &Harness, fake: &FakeLoki) {
    let want = parsed(&h.mail);
    let got = fake.entries();
    assert_eq!(got.len(), want.len(), "stored once each");
    let by_id: HashMap<&str, &fake_loki::Stored> = got
        .iter()
        .map(|e| (e.metadata["event_id"].as_str(), e))
        .collect();
    for r in &want {
        let e = by_id[r["event"]["id"].as_str().unwrap()];
        assert_eq!(e.line, r["message"].as_str().unwrap());
        // and the line as the test reads it from the file at the record's offset
        let bytes = std::fs::read(r["log"]["file"]["path"].as_str().unwrap()).unwrap();
        let at = &bytes[r["log"]["offset"].as_u64().unwrap() as usize..];
        let end = at.iter().position(|&c| c == b'\n').unwrap_or(at.len());
        assert_eq!(
            e.line.as_bytes(),
            at[..end].strip_suffix(b"\r").unwrap_or(&at[..end]),
            "the line written at {}",
            r["log"]["offset"]
        );
        assert_eq!(e.ts, expected_nanos(r));
        assert_eq!(e.metadata, expected_metadata(r));
        assert_eq!(e.labels["log"], r["epost"]["log"].as_str().unwrap());
        assert_eq!(e.labels.len(), 3, "job, host, log: {:?}", e.labels);
    }
    assert_eq!(fake.n(&fake.state.unordered), 0, "streams in time order");
    assert!(dead_letters(h).is_empty());
    eprintln!(
        "pushes {}, duplicates absorbed {}",
        fake.n(&fake.state.requests),
        fake.n(&fake.state.duplicates)
    );
}

#[test]
fn fake_429_storm() {
    let fake = FakeLoki::start(Rules {
        fault: Some(Box::new(|n| {
            if n <= 15 {
                Fault::Status(429)
            } else {
                Fault::None
            }
        })),
        ..Rules::default()
    });
    let h = fake_run(&fake, 1000, "");
    assert_exact(&h, &fake);
    // counted at the fake, which absorbs re-sent entries: a refused push stored nothing, so
    // nothing stored may come again
    assert_eq!(
        fake.n(&fake.state.duplicates),
        0,
        "entries sent again after being stored"
    );
}

#[test]
fn fake_500s_and_503s() {
    let fake = FakeLoki::start(Rules {
        fault: Some(Box::new(|n| match n % 4 {
            1 => Fault::Status(500),
            2 => Fault::Status(503),
            _ => Fault::None,
        })),
        ..Rules::default()
    });
    let h = fake_run(&fake, 800, "");
    assert_exact(&h, &fake);
    // counted at the fake, which absorbs re-sent entries: a refused push stored nothing, so
    // nothing stored may come again
    assert_eq!(
        fake.n(&fake.state.duplicates),
        0,
        "entries sent again after being stored"
    );
}

#[test]
fn fake_dropped_connections_and_lost_answers() {
    // every third push is dropped before it is stored, every third after (the answer is
    // lost, the push is sent again and Loki's duplicate rule absorbs it)
    let fake = FakeLoki::start(Rules {
        fault: Some(Box::new(|n| match n % 3 {
            1 => Fault::Drop,
            2 => Fault::DropAfterStore,
            _ => Fault::None,
        })),
        ..Rules::default()
    });
    let h = fake_run(&fake, 800, "");
    assert_exact(&h, &fake);
    assert!(
        fake.n(&fake.state.duplicates) > 0,
        "replays of stored pushes were absorbed"
    );
}

#[test]
fn fake_replay_collapses_and_identical_lines_survive() {
    let fake = FakeLoki::start(Rules::default());
    let h = fake_run(&fake, 300, "");
    assert_exact(&h, &fake);
    let mach = fake
        .entries()
        .iter()
        .filter(|e| e.line.ends_with("mach!!"))
        .count();
    assert_eq!(mach, 40, "40 identical lines in one second are 40 entries");
    // forget the checkpoint: everything is sent again, and Loki keeps it once
    std::fs::remove_dir_all(&h.state).unwrap();
    let sink = loki_sink(&fake.url, "/loki/api/v1/push", "");
    let run = h.start(h.config_sinks("", "", &sink));
    let start = Instant::now();
    while fake.n(&fake.state.duplicates) < 340 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    run.stop();
    assert_eq!(fake.n(&fake.state.duplicates), 340, "every record replayed");
    assert_eq!(fake.count(), 340, "and none stored twice");
}

#[test]
fn fake_too_old_entries_go_to_dead_letter_with_lokis_reason() {
    // Loki accepts nothing before 2017-12-01 00:00+09:00: every record of 11-30 is too old
    // (as E-Post history is for a Loki that keeps the default one-week limit)
    let cutoff = chrono::DateTime::parse_from_rfc3339("2017-12-01T00:00:00+09:00")
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap();
    let fake = FakeLoki::start(Rules {
        reject_older_than: Some(cutoff),
        ..Rules::default()
    });
    let h = Harness::new();
    let old = write_stream_files(&h, 600);
    let p = h.log("inlog", "MAILSV01", "171201.log");
    let mut text = String::new();
    for i in 1000..1300 {
        text.push_str(&inlog_line(i, 1).replace("Nov", "Dec"));
    }
    append(&p, &text);
    let sink = loki_sink(&fake.url, "/loki/api/v1/push", "batch_max_events = 500");
    let run = h.start(h.config_sinks("", "segment_max_records = 100", &sink));
    wait_settled(&h, &fake, old + 300);
    run.stop();
    let dead = dead_letters(&h);
    assert_eq!(dead.len(), old, "every 11-30 record, once");
    assert_eq!(fake.count(), 300, "every 12-01 record");
    let ids: HashSet<&str> = dead
        .iter()
        .map(|d| {
            d["record"]["structured_metadata"]["event_id"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), old, "no record dead-lettered twice");
    for d in &dead {
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("HTTP 400 (entry time 2017-11-")
                && reason.contains("): entry for stream '{host=\"MAILSV01\", job=\"epost\"")
                && reason.contains("has timestamp too old")
                && reason.contains("oldest acceptable timestamp is: 2017-11-30 15:00:00 +0000 UTC"),
            "{reason}"
        );
        assert_eq!(d["sink"], "loki-1");
        assert!(d["record"]["line"].as_str().is_some());
        assert!(
            d["record"]["timestamp"]
                .as_str()
                .unwrap()
                .starts_with("2017-11-")
        );
    }
    let cp = h.checkpoint();
    assert_eq!(cp["sinks"]["loki-1"]["dead_lettered"], old as u64);
    // the cutoff Loki names lets whole batches of old entries go without one push each
    let pushes = fake.n(&fake.state.requests);
    eprintln!("pushes {pushes} for {} records", old + 300);
    assert!(pushes < 60, "{pushes} pushes");
}

#[test]
fn fake_too_far_behind_goes_to_dead_letter() {
    // Loki with unordered writes accepts up to an hour behind the stream's newest entry
    let fake = FakeLoki::start(Rules {
        max_behind: Some(3600 * 1_000_000_000),
        ..Rules::default()
    });
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171201.log");
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&inlog_line(i, 1).replace("Nov", "Dec"));
    }
    append(&p, &text);
    let sink = loki_sink(&fake.url, "/loki/api/v1/push", "");
    let run = h.start(h.config_sinks("", "", &sink));
    wait_settled(&h, &fake, 200);
    // a late file of the day before: a day behind the stream, so refused...
    let late = h.log("inlog", "MAILSV01", "171130.log");
    let mut text = String::new();
    for i in 500..650 {
        text.push_str(&inlog_line(i, 30));
    }
    append(&late, &text);
    // ...while a new line of today in the same stream is stored
    append(&p, &inlog_line(999, 1).replace("Nov", "Dec"));
    wait_settled(&h, &fake, 351);
    run.stop();
    let dead = dead_letters(&h);
    assert_eq!(dead.len(), 150);
    assert_eq!(fake.count(), 201);
    for d in &dead {
        let r = d["reason"].as_str().unwrap();
        assert!(r.contains("entry too far behind"), "{r}");
    }
    let ids: HashSet<&str> = dead
        .iter()
        .map(|d| {
            d["record"]["structured_metadata"]["event_id"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 150);
}

#[test]
fn fake_400_with_a_reason_isolates_exactly_the_refused_entries() {
    // lines of ids ending in 7 are refused (as Loki refuses a line that is too long)
    let fake = FakeLoki::start(Rules {
        refuse: Some(Box::new(|line: &str| {
            (line.starts_with("<B") && line.as_bytes().get(11) == Some(&b'7')).then(|| {
                format!(
                    "Max entry size '100' bytes exceeded for stream '{{job=\"epost\"}}' while adding an entry with length '{}' bytes",
                    line.len()
                )
            })
        })),
        ..Rules::default()
    });
    let h = Harness::new();
    let n = write_stream_files(&h, 500);
    let sink = loki_sink(&fake.url, "/loki/api/v1/push", "batch_max_events = 200");
    let run = h.start(h.config_sinks("", "segment_max_records = 100", &sink));
    let refused: HashSet<String> = parsed(&h.mail)
        .iter()
        .filter(|r| {
            let m = r["message"].as_str().unwrap();
            m.starts_with("<B") && m.as_bytes()[11] == b'7'
        })
        .map(|r| r["event"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(refused.len(), 50);
    wait_settled(&h, &fake, n);
    run.stop();
    let dead = dead_letters(&h);
    let dead_ids: HashSet<String> = dead
        .iter()
        .map(|d| {
            d["record"]["structured_metadata"]["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(dead.len(), 50, "each refused entry once");
    assert_eq!(dead_ids, refused, "exactly the refused ones");
    assert_eq!(fake.count(), n - 50, "all the others stored");
    for d in &dead {
        let r = d["reason"].as_str().unwrap();
        assert!(r.starts_with("HTTP 400: Max entry size"), "{r}");
    }
    assert_eq!(h.checkpoint()["sinks"]["loki-1"]["dead_lettered"], 50);
}

#[test]
fn fake_tenant_auth_and_encodings_are_sent() {
    let fake = FakeLoki::start(Rules::default());
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    for i in 0..20 {
        append(&p, &inlog_line(i, 30));
    }
    let sinks = format!(
        "{}{}",
        loki_sink(
            &fake.url,
            "/loki/api/v1/push",
            "name = \"pb\"\ntenant = \"acme\"\nuser = \"u\"\npassword = \"p\"\nlabels = { env = \"prod\" }"
        ),
        loki_sink(
            &fake.url,
            "/loki/api/v1/push",
            "name = \"js\"\nencoding = \"json\"\nbearer_token = \"tok\"\njob = \"mail\""
        ),
    );
    let run = h.start(h.config_sinks("", "", &sinks));
    let start = Instant::now();
    while fake.count() < 40 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    run.stop();
    assert_eq!(
        fake.count(),
        40,
        "20 per sink (different streams: job differs)"
    );
    let headers = fake.state.headers.lock().unwrap().clone();
    let pb = headers
        .iter()
        .find(|h| h[2].as_deref() == Some("application/x-protobuf"))
        .expect("a protobuf push");
    assert_eq!(pb[0].as_deref(), Some("Basic dTpw"));
    assert_eq!(pb[1].as_deref(), Some("acme"));
    assert_eq!(pb[3], None);
    let js = headers
        .iter()
        .find(|h| h[2].as_deref() == Some("application/json"))
        .expect("a JSON push");
    assert_eq!(js[0].as_deref(), Some("Bearer tok"));
    assert_eq!(js[1], None, "no tenant header unless configured");
    assert_eq!(js[3].as_deref(), Some("gzip"));
    let jobs: HashSet<String> = fake
        .entries()
        .iter()
        .map(|e| e.labels["job"].clone())
        .collect();
    assert_eq!(
        jobs,
        HashSet::from(["epost".to_string(), "mail".to_string()])
    );
    assert!(
        fake.entries()
            .iter()
            .filter(|e| e.labels["job"] == "epost")
            .all(|e| e.labels["env"] == "prod")
    );
}

#[test]
fn fake_probe_and_config_errors() {
    let fake = FakeLoki::start(Rules::default());
    let h = Harness::new();
    let cfg = h.config_sinks("", "", &loki_sink(&fake.url, "/loki/api/v1/push", ""));
    let sink = epost_shipper::sink::Sink::new(&cfg.sinks[0], &h.state).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = rt.block_on(sink.probe()).expect("probe");
    assert!(
        p.server.starts_with("Grafana Loki 3.9.9-fake"),
        "{}",
        p.server
    );
    for (extra, want) in [
        ("labels = { host = \"x\" }", "labels.host"),
        (
            "labels = { \"a-b\" = \"x\" }",
            "not a valid Loki label name",
        ),
        ("job = \"\"", "job"),
    ] {
        // refused when the config is loaded (exit 2 in every command)
        let e = h
            .try_config_sinks("", "", &loki_sink(&fake.url, "/loki/api/v1/push", extra))
            .err()
            .unwrap_or_else(|| panic!("{extra} accepted"))
            .to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
}

#[test]
fn fake_loki_without_structured_metadata_holds_records_until_configured() {
    let fake = FakeLoki::start(Rules {
        no_metadata: true,
        ..Rules::default()
    });
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    for i in 0..30 {
        append(&p, &inlog_line(i, 30));
    }
    let run = h.start(h.config_sinks("", "", &loki_sink(&fake.url, "/loki/api/v1/push", "")));
    let start = Instant::now();
    while fake.n(&fake.state.refused) == 0 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    run.stop();
    // a configuration problem: nothing dead-lettered, nothing acknowledged
    assert!(fake.n(&fake.state.refused) > 0);
    assert_eq!(fake.count(), 0);
    assert!(dead_letters(&h).is_empty());
    assert_eq!(h.checkpoint()["files"][0]["offset"], 0);
    // once told, the same records go through, without metadata
    let sink = loki_sink(
        &fake.url,
        "/loki/api/v1/push",
        "structured_metadata = false",
    );
    let run = h.start(h.config_sinks("", "", &sink));
    wait_settled(&h, &fake, 30);
    run.stop();
    assert_eq!(fake.count(), 30);
    assert!(fake.entries().iter().all(|e| e.metadata.is_empty()));
    assert!(dead_letters(&h).is_empty());
}

#[test]
fn example_config_loads_and_builds_the_sink() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example-loki.toml");
    let dir = tempfile::tempdir().unwrap();
    // the example names a Windows mail folder: point it at one that exists here
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(r"'C:\mail'", &format!("'{}'", dir.path().display()));
    let cfg =
        epost_shipper::config::Config::from_str(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.sinks.len(), 1);
    let sink = epost_shipper::sink::Sink::new(&cfg.sinks[0], dir.path()).unwrap();
    assert_eq!(sink.name, "loki");
}

#[test]
fn fake_over_tls_with_custom_ca_and_client_certificate() {
    let pki = common::pki::Pki::new();
    let fake = FakeLoki::start_tls(Rules::default(), pki.server(b"http/1.1", true));
    let h = Harness::new();
    let files = pki.write(h.dir.path());
    let ca = format!("tls.ca_file = '{}'", files.ca.display());
    let client = format!(
        "tls.cert_file = '{}'\ntls.key_file = '{}'",
        files.client_cert.display(),
        files.client_key.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let probe = |extra: &str| {
        let cfg = h.config_sinks("", "", &loki_sink(&fake.url, "/loki/api/v1/push", extra));
        let sink = epost_shipper::sink::Sink::new(&cfg.sinks[0], &h.state).unwrap();
        rt.block_on(sink.probe())
    };
    // the server's certificate is not trusted without the CA; the server wants a client
    // certificate
    let e = probe(&client).expect_err("unknown CA accepted").to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    let e = probe(&ca)
        .expect_err("no client certificate accepted")
        .to_string();
    assert!(e.contains("127.0.0.1"), "{e}");
    let both = format!("{ca}\n{client}");
    let p = probe(&both).expect("probe over mutual TLS");
    assert!(p.server.contains("https://127.0.0.1"), "{}", p.server);

    let p = h.log("inlog", "MAILSV01", "171130.log");
    for i in 0..20 {
        append(&p, &inlog_line(i, 30));
    }
    let run = h.start(h.config_sinks("", "", &loki_sink(&fake.url, "/loki/api/v1/push", &both)));
    wait_settled(&h, &fake, 20);
    run.stop();
    assert_exact(&h, &fake);
}

#[test]
fn fake_kill_and_restart_counts_exactly_once_loki_collapses_replays() {
    let fake = FakeLoki::start(Rules::default());
    let h = Harness::new();
    let total = kill_and_restart(&h, &fake.url, "/loki/api/v1/push", "");
    assert_eq!(
        fake.count(),
        total,
        "every record once, after Loki's duplicate rule"
    );
    assert_exact(&h, &fake);
}
