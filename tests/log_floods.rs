//! Our own log under a flood of the same fault (issue 15, item 9): every warning that can
//! repeat per record, batch, retry or poll goes through `warn_limit`, so the service's log
//! says it the first time and then once a minute with the count of those left out. The
//! tests capture what the shipper logs (a JSON subscriber writing into memory, for the whole
//! test binary; each test counts only the lines naming its own sink or file) and count lines
//! exactly.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::fake_es::{EsOptions, FakeEs, Whole};
use common::http_fake::Answer;
use common::{Harness, append, inlog_line};
use serde_json::Value;

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once for the binary).
fn capture() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| Capture)
            .init();
    });
}

/// The captured lines at WARN or above whose fields include `field` = `value`.
fn warnings(field: &str, value: &str) -> Vec<Value> {
    let text = String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "WARN" || v["level"] == "ERROR")
        .filter(|v| v["fields"][field].as_str() == Some(value))
        .collect()
}

fn with_message<'a>(lines: &'a [Value], start: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(start))
        })
        .collect()
}

fn es_sink(name: &str, url: &str, batch: usize) -> String {
    format!(
        "[[sink]]\ntype = \"elasticsearch\"\nname = \"{name}\"\nurl = \"{url}\"\nbatch_max_events = {batch}\nbatch_timeout = \"200ms\"\nmax_in_flight = 1\ncompression = \"none\"\n"
    )
}

fn dead_letters(h: &Harness, sink: &str) -> usize {
    std::fs::read_to_string(h.state.join(format!("dead-letter/{sink}.ndjson")))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Refuses (400, for good) the items whose `_id` starts with 0-3: about a quarter, chosen
/// by the fake alone.
fn refuse_some(id: &str, _: u64) -> Option<u16> {
    id.starts_with(['0', '1', '2', '3']).then_some(400)
}

/// Writes `n` inlog lines, runs the pipeline into the fake until each record is stored or
/// dead-lettered, and stops.
fn ship(h: &Harness, fake: &FakeEs, sink: &str, n: u32, per_batch: usize) {
    let toml = es_sink(sink, &fake.url, per_batch);
    let pipeline = format!("segment_max_records = {per_batch}");
    let text: String = (0..n).map(|i| inlog_line(i, 30)).collect();
    append(&h.log("inlog", "MAILSV01", "171130.log"), &text);
    let run = h.start(h.config_sinks("", &pipeline, &toml));
    let start = Instant::now();
    while fake.count() + dead_letters(h, sink) < n as usize
        && start.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    run.stop();
}

/// `ship` into a fake refusing some records, through a sink named after `what`.
fn ship_refusing(what: &str, n: u32, per_batch: usize) -> (Harness, FakeEs, String) {
    capture();
    let sink = format!("{what}-{}", common::unique());
    let fake = FakeEs::start(Box::new(|_| Whole::Items), Box::new(refuse_some));
    let h = Harness::new();
    ship(&h, &fake, &sink, n, per_batch);
    (h, fake, sink)
}

/// 400 records in one request, about a quarter refused: one warning, carrying the number
/// the fake refused.
#[test]
fn refused_records_of_one_batch_are_one_warning_with_their_count() {
    let (h, fake, sink) = ship_refusing("refused-one", 400, 1000);
    let refused = fake.sent_with(400);
    assert!(refused > 50, "the fake refused {refused}");
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1, "one request");
    assert_eq!(dead_letters(&h, &sink), refused);
    let lines = warnings("sink", &sink);
    let w = with_message(&lines, "records refused");
    assert_eq!(w.len(), 1, "{lines:#?}");
    assert_eq!(w[0]["fields"]["records"], refused as u64);
    assert_eq!(w[0]["fields"]["repeated"], 0);
    assert_eq!(lines.len(), 1, "nothing else: {lines:#?}");
}

/// 600 records in twelve requests, each with refusals: within the minute, the first batch's
/// warning only (the others are counted for the next line); every refusal is in the
/// dead-letter file.
#[test]
fn refusals_in_every_batch_are_one_warning_a_minute() {
    let (h, fake, sink) = ship_refusing("refused-many", 600, 50);
    let sent = fake.sent();
    let mut per_request: HashMap<u64, usize> = HashMap::new();
    for s in sent.iter().filter(|s| s.status == 400) {
        *per_request.entry(s.request).or_default() += 1;
    }
    assert!(per_request.len() >= 10, "{per_request:?}");
    let first = per_request.keys().min().copied().unwrap();
    assert_eq!(dead_letters(&h, &sink), fake.sent_with(400));
    let lines = warnings("sink", &sink);
    let w = with_message(&lines, "records refused");
    assert_eq!(w.len(), 1, "{lines:#?}");
    assert_eq!(w[0]["fields"]["records"], per_request[&first] as u64);
}

/// A sink answered 503 with `Retry-After: 1` for a minute and then served: it retried some
/// sixty times; the log has the first warning and at most one more, which counts the
/// retries left out; every record arrives.
#[test]
fn a_sink_retrying_for_a_minute_logs_at_most_two_lines() {
    capture();
    let sink = format!("retrying-{}", common::unique());
    let failed = Arc::new(AtomicU64::new(0));
    let since: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (f, s) = (failed.clone(), since.clone());
    let fake = FakeEs::start_opts(EsOptions {
        answer: Some(Box::new(move |r| {
            if !r.path.starts_with("/_bulk") {
                return None;
            }
            let first = *s.lock().unwrap().get_or_insert_with(Instant::now);
            (first.elapsed() < Duration::from_secs(65)).then(|| {
                f.fetch_add(1, Ordering::SeqCst);
                Answer::json(503, "{\"error\":\"injected 503\"}").header("retry-after", "1")
            })
        })),
        ..EsOptions::default()
    });
    let h = Harness::new();
    let n = 100;
    let text: String = (0..n).map(|i| inlog_line(i, 30)).collect();
    append(&h.log("inlog", "MAILSV01", "171130.log"), &text);
    let run = h.start(h.config_sinks("", "", &es_sink(&sink, &fake.url, 1000)));
    let start = Instant::now();
    while fake.count() < n as usize && start.elapsed() < Duration::from_secs(150) {
        std::thread::sleep(Duration::from_millis(100));
    }
    run.stop();
    assert_eq!(
        fake.count(),
        n as usize,
        "every record stored once the sink serves"
    );
    let failed = failed.load(Ordering::SeqCst);
    assert!(
        failed >= 40,
        "{failed} refused requests: the flood happened"
    );
    let lines = warnings("sink", &sink);
    let w = with_message(&lines, "delivery failed");
    assert!((1..=2).contains(&w.len()), "{} lines: {w:#?}", w.len());
    assert_eq!(w[0]["fields"]["repeated"], 0);
    let told: u64 = w
        .iter()
        .map(|v| 1 + v["fields"]["repeated"].as_u64().unwrap())
        .sum();
    assert!(told <= failed, "{told} retries told of, {failed} refused");
    if let Some(second) = w.get(1) {
        assert!(second["fields"]["repeated"].as_u64().unwrap() > 0);
    }
    assert_eq!(lines.len(), w.len(), "nothing else: {lines:#?}");
}

/// A log file that cannot be read (here: a name that leads to a folder), polled ten times a
/// second for six seconds: one warning.
#[test]
fn an_unreadable_file_polled_repeatedly_is_one_warning() {
    capture();
    let h = Harness::new();
    let good = h.log("inlog", "MAILSV01", "171130.log");
    append(&good, &inlog_line(1, 30));
    let bad = h.log("inlog", "MAILSV01", "171201.log");
    let target = h.dir.path().join("not-a-file");
    std::fs::create_dir_all(&target).unwrap();
    symlink_dir(&target, &bad);
    let run = h.start(h.config(""));
    h.wait_until(10, "the readable file", |r| r.len() == 1);
    std::thread::sleep(Duration::from_secs(6));
    run.stop();
    let lines = warnings("path", &bad.display().to_string());
    assert_eq!(lines.len(), 1, "{lines:#?}");
}

/// The same name unreadable, then a readable file, then unreadable again, four times over:
/// each spell of failures would be a warning of its own, and each change of file another;
/// within the minute there is one of each.
#[test]
fn a_file_failing_again_and_again_is_one_warning_a_minute() {
    capture();
    let h = Harness::new();
    let bad = h.log("inlog", "MAILSV01", "171201.log");
    let folder = h.dir.path().join("not-a-file");
    std::fs::create_dir_all(&folder).unwrap();
    let run = h.start(h.config(""));
    for i in 0..4 {
        let _ = std::fs::remove_file(&bad);
        symlink_dir(&folder, &bad);
        std::thread::sleep(Duration::from_millis(700));
        std::fs::remove_file(&bad).unwrap();
        append(&bad, &inlog_line(i, 1));
        h.wait_until(10, "the readable file", |r| r.len() == i as usize + 1);
    }
    run.stop();
    let lines = warnings("path", &bad.display().to_string());
    let unreadable = with_message(&lines, "cannot read log file");
    assert_eq!(unreadable.len(), 1, "{lines:#?}");
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[cfg(windows)]
fn symlink_dir(target: &Path, link: &Path) {
    std::os::windows::fs::symlink_dir(target, link).unwrap();
}

/// The work folder gone (a share unmounted) while polled ten times a second: one warning.
#[test]
fn a_work_folder_that_cannot_be_listed_is_one_warning() {
    capture();
    let h = Harness::new();
    append(
        &h.log("inlog", "MAILSV01", "171130.log"),
        &inlog_line(1, 30),
    );
    let run = h.start(h.config(""));
    h.wait_until(10, "the record", |r| r.len() == 1);
    let gone = h.dir.path().join("unmounted");
    std::fs::rename(&h.mail, &gone).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    run.stop();
    let lines = warnings("workdir", &h.mail.display().to_string());
    let w = with_message(&lines, "cannot list work folder");
    assert_eq!(w.len(), 1, "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
}
