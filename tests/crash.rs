//! The delivery guarantee under fire: a writer appends E-Post-shaped lines to several kinds
//! and hosts and rolls to a new day's file several times, while the shipper is killed without
//! warning (SIGKILL on Unix, TerminateProcess on Windows) at random moments, at least 20
//! times, and restarted. At the end every written record is in the file sink — none missing,
//! none invented — and duplicates (the at-least-once window between a write to the sink and
//! the checkpoint) are counted and reported.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Harness, append};
use epost_shipper::kind::Kind;
use epost_shipper::parse::{ParseOptions, parse_bytes};
use epost_shipper::record::Source;

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
    let streams: Vec<(&str, &str)> = vec![
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
    let writer = {
        let mail = h.mail.clone();
        let streams = streams.clone();
        let writing = writing.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0x9e37_79b9);
            let mut files: Vec<PathBuf> = Vec::new();
            let mut n = 0u64;
            // 6 days: the shipper sees 5 rollovers, with late writes to the previous day
            for day in 1..=6u32 {
                for _ in 0..700 {
                    let (kind, host) = streams[rng.below(streams.len() as u64) as usize];
                    let dir = mail.join(kind).join(host);
                    std::fs::create_dir_all(&dir).unwrap();
                    // a late write to yesterday's file now and then
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
                    if !files.contains(&p) {
                        files.push(p);
                    }
                    n += 1;
                    if rng.below(4) == 0 {
                        std::thread::sleep(Duration::from_millis(3));
                    }
                }
            }
            writing.store(false, Ordering::Relaxed);
            files
        })
    };

    let mut rng = Rng(seed);
    let mut kills = 0;
    let mut child = spawn(&config, &shipper_log);
    while writing.load(Ordering::Relaxed) || kills < 20 {
        std::thread::sleep(Duration::from_millis(100 + rng.below(600)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        child = spawn(&config, &shipper_log);
    }
    let files = writer.join().unwrap();

    // What must arrive: every record of the final files, by event.id.
    let mut expected: HashSet<String> = HashSet::new();
    for p in &files {
        let kind: Kind = p
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let host = p.parent().unwrap().file_name().unwrap().to_str().unwrap();
        let source = Source::new(host, kind, &p.to_string_lossy());
        parse_bytes(
            source,
            ParseOptions::default(),
            &std::fs::read(p).unwrap(),
            &mut |r| {
                expected.insert(r.event_id().to_hex().as_str().to_string());
            },
        );
    }

    // The last run catches up.
    let start = Instant::now();
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in h.records() {
            *counts
                .entry(r["event"]["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        if expected.iter().all(|id| counts.contains_key(id))
            || start.elapsed() > Duration::from_secs(60)
        {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().unwrap();
    child.wait().unwrap();

    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    let invented: Vec<&String> = counts.keys().filter(|id| !expected.contains(*id)).collect();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let total: usize = counts.values().sum();
    eprintln!(
        "kills: {kills}; records expected: {}; in sink: {total}; missing: {}; invented: {}; duplicates (at-least-once window): {duplicates}",
        expected.len(),
        missing.len(),
        invented.len()
    );
    assert!(kills >= 20);
    assert!(
        missing.is_empty(),
        "{} records missing; shipper log:\n{}",
        missing.len(),
        std::fs::read_to_string(&shipper_log).unwrap_or_default()
    );
    assert!(
        invented.is_empty(),
        "records that were never written: {invented:?}"
    );
    assert_eq!(expected.len(), 6 * 700, "every written line is one record");
}
