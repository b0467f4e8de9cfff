//! The delivery guarantee under fire: a writer appends E-Post-shaped lines to several kinds
//! and hosts and rolls to a new day's file now and then, while the shipper is killed without
//! warning (SIGKILL on Unix, TerminateProcess on Windows) 20 times at random moments and
//! restarted. The writer keeps writing through all 20 kills, so each lands mid-stream; each
//! kill's moment is recorded (lines written, records in the sink when the run started and
//! when it was killed), and most kills must have cut a run that was shipping and behind.
//!
//! At the end every record the writer wrote is in the file sink with the message the writer
//! wrote — none missing, none invented, none changed. The expectation is the writer's own
//! list of what it wrote (file, offset, kind, host, message as the test splits the lines),
//! never the shipper's parser. Duplicates (the at-least-once window between a write to the
//! sink and the checkpoint) are counted and reported.
//!
//! Deliberate breaks (made once, then reverted): the file sink writing `RCPT TO:<x` for
//! `RCPT TO:<x1` failed with "message of (.../senderlog/MAILSV02/171101.log, 204) changed";
//! the file sink dropping the records stamped 00:00:42 failed with "1 records missing"; the
//! writer stopped and the shipper left 15 s to catch up before the kills failed with "only 0
//! of 20 kills cut a run that was shipping" (and 0 duplicates).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Harness, append};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn spawn(config: &std::path::Path, log: &std::path::Path) -> Child {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start shipper")
}

/// The lines the writer produces, one E-Post kind each.
fn line(kind: &str, n: u64, day: u32) -> String {
    let t = format!(
        "{day:02}/Nov/2017:{:02}:{:02}:{:02}",
        n / 3600 % 24,
        n / 60 % 60,
        n % 60
    );
    match kind {
        "inlog" => format!(
            "<B{n:010}@mx.example.jp> [{t}] 203.0.113.5 client.example.net alice@example.net bob@example.jp\r\n"
        ),
        "outlog" => format!(
            "B{n:010}@mx.example.jp sent on [{t}] to 198.51.100.25 mx.example.com from taro@example.jp to jiro@example.com \r\n"
        ),
        // a multi-line record: continuation lines and the \r\r\n artefact
        "receivelog" => format!(
            "[{t}], 0145a008, 250-mx.example.jp Hello [203.0.113.5]\r\r\n250-AUTH LOGIN PLAIN\r\r\n250 SIZE {n}\r\r\n\r\n"
        ),
        "senderlog" => format!(
            "[{:02}:{:02}:{:02}:{:03}] [B{n:010}] SendMailMess:RCPT TO:<x{n}@example.com>\r\n",
            n / 3600 % 24,
            n / 60 % 60,
            n % 60,
            n % 1000
        ),
        _ => unreachable!(),
    }
}

/// One record as the writer wrote it.
struct Written {
    path: PathBuf,
    offset: u64,
    kind: &'static str,
    host: &'static str,
    n: u64,
    /// The message the record must carry: the text's lines, CRs and blank lines dropped,
    /// joined with `\n` (split here, not by the shipper).
    message: String,
}

fn expected_message(text: &str) -> String {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where one kill fell.
#[derive(Debug)]
struct Kill {
    written: usize,
    sink_at_start: usize,
    sink_at_kill: usize,
}

/// The distinct records (by file and offset) in the sink.
fn in_sink(h: &Harness) -> usize {
    h.records()
        .iter()
        .map(key)
        .collect::<std::collections::HashSet<_>>()
        .len()
}

fn key(r: &serde_json::Value) -> (String, u64) {
    (
        r["log"]["file"]["path"].as_str().unwrap().to_string(),
        r["log"]["offset"].as_u64().unwrap(),
    )
}

#[test]
fn kill_9_twenty_times_nothing_lost() {
    let h = Harness::new();
    // writer and shipper share the clock: small segments and short timers make the kills land
    // in every phase (reading, writing the sink, checkpointing)
    h.config_with(
        "ignore_older_than = \"3650d\"\npartial_line_timeout = \"30s\"",
        "segment_max_bytes = \"8KiB\"\nsegment_max_records = 50",
    );
    let config = h.dir.path().join("shipper.toml");
    let shipper_log = h.dir.path().join("shipper.log");
    let streams: Vec<(&'static str, &'static str)> = vec![
        ("inlog", "MAILSV01"),
        ("inlog", "MAILSV02"),
        ("outlog", "MAILSV01"),
        ("receivelog", "MAILSV01"),
        ("senderlog", "MAILSV02"),
    ];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");

    let writing = Arc::new(AtomicBool::new(true));
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let mail = h.mail.clone();
        let streams = streams.clone();
        let (writing, count) = (writing.clone(), count.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0x9e37_79b9);
            let mut sizes: HashMap<PathBuf, u64> = HashMap::new();
            let mut written: Vec<Written> = Vec::new();
            let mut n = 0u64;
            // until the kills are done, and at least 1500 lines: a new day every 300 lines,
            // with late writes to the previous day
            while writing.load(Ordering::Relaxed) || n < 1500 {
                let day = (1 + n / 300).min(28) as u32;
                let (kind, host) = streams[rng.below(streams.len() as u64) as usize];
                let dir = mail.join(kind).join(host);
                std::fs::create_dir_all(&dir).unwrap();
                let d = if day > 1 && rng.below(20) == 0 {
                    day - 1
                } else {
                    day
                };
                let p = dir.join(format!("1711{d:02}.log"));
                let text = line(kind, n, d);
                if rng.below(10) == 0 {
                    // a line written in two pieces: the shipper must hold the first half
                    let cut = text.len() / 2;
                    append(&p, &text[..cut]);
                    std::thread::sleep(Duration::from_millis(2));
                    append(&p, &text[cut..]);
                } else {
                    append(&p, &text);
                }
                let size = sizes.entry(p.clone()).or_insert(0);
                written.push(Written {
                    path: p,
                    offset: *size,
                    kind,
                    host,
                    n,
                    message: expected_message(&text),
                });
                *size += text.len() as u64;
                n += 1;
                count.store(written.len(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(3));
            }
            written
        })
    };

    let mut rng = Rng(seed);
    let mut kills: Vec<Kill> = Vec::new();
    let mut child = spawn(&config, &shipper_log);
    for _ in 0..20 {
        let sink_at_start = in_sink(&h);
        std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
        let written = count.load(Ordering::Relaxed);
        child.kill().unwrap();
        child.wait().unwrap();
        kills.push(Kill {
            written,
            sink_at_start,
            sink_at_kill: in_sink(&h),
        });
        child = spawn(&config, &shipper_log);
    }
    writing.store(false, Ordering::Relaxed);
    let written = writer.join().unwrap();

    // What must arrive: every line the writer wrote, by file and offset.
    let expected: HashMap<(String, u64), &Written> = written
        .iter()
        .map(|w| ((w.path.to_string_lossy().into_owned(), w.offset), w))
        .collect();
    assert_eq!(expected.len(), written.len());

    // The last run catches up.
    let start = Instant::now();
    let records = loop {
        let records = h.records();
        let have: std::collections::HashSet<(String, u64)> = records.iter().map(key).collect();
        if expected.keys().all(|k| have.contains(k)) || start.elapsed() > Duration::from_secs(90) {
            break records;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().unwrap();
    child.wait().unwrap();

    let mut counts: HashMap<(String, u64), usize> = HashMap::new();
    let mut invented = Vec::new();
    for r in &records {
        let k = key(r);
        *counts.entry(k.clone()).or_default() += 1;
        let Some(w) = expected.get(&k) else {
            invented.push(r.clone());
            continue;
        };
        // the record is the line that was written there, not only a record at that place
        assert_eq!(
            r["message"].as_str().unwrap(),
            w.message,
            "message of {k:?} changed"
        );
        assert_eq!(r["epost"]["log"], w.kind, "{r}");
        assert_eq!(r["host"]["name"], w.host, "{r}");
        if w.kind != "receivelog" {
            assert_eq!(r["email"]["local_id"], format!("B{:010}", w.n), "{r}");
        }
    }
    let missing: Vec<&(String, u64)> = expected
        .keys()
        .filter(|k| !counts.contains_key(*k))
        .collect();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let cut: Vec<&Kill> = kills
        .iter()
        .filter(|k| k.sink_at_kill > k.sink_at_start && k.sink_at_kill < k.written)
        .collect();
    eprintln!(
        "kills: {}; {} cut a run that was shipping and behind; where they fell: {kills:?}",
        kills.len(),
        cut.len()
    );
    eprintln!(
        "records written: {}; in sink: {}; missing: {}; invented: {}; duplicates (at-least-once window): {duplicates}",
        written.len(),
        records.len(),
        missing.len(),
        invented.len()
    );
    assert!(
        missing.is_empty(),
        "{} records missing (first: {:?}); shipper log:\n{}",
        missing.len(),
        missing.first(),
        std::fs::read_to_string(&shipper_log).unwrap_or_default()
    );
    assert!(
        invented.is_empty(),
        "records that were never written: {invented:?}"
    );
    // most kills interrupted real work: the run had shipped something and was behind
    assert!(
        cut.len() >= 10,
        "only {} of 20 kills cut a run that was shipping: {kills:?}",
        cut.len()
    );
    // the file sink cannot drop a re-sent record: kills inside the at-least-once window
    // (records in the sink, checkpoint not yet written) must show as duplicates
    assert!(
        duplicates > 0,
        "no kill fell between a sink write and its checkpoint"
    );
    assert!(written.len() >= 1500);
}
