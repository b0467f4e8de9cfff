//! The tailer's cases, each against the real pipeline with a file sink.

mod common;

use std::time::Duration;

use common::{Harness, append, inlog_line};

#[test]
fn new_day_file_and_late_writes_to_yesterday() {
    let h = Harness::new();
    let d30 = h.log("inlog", "H1", "171130.log");
    append(&d30, &inlog_line(1, 30));
    let run = h.start(h.config(""));
    h.wait_until(10, "first line", |r| r.len() == 1);
    // the next day's file appears: picked up within about a second
    let d01 = h.log("inlog", "H1", "171201.log");
    let t = std::time::Instant::now();
    append(&d01, &inlog_line(2, 1));
    h.wait_until(10, "the new day's line", |r| r.len() == 2);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    // a late write to yesterday's file after today's exists
    append(&d30, &inlog_line(3, 30));
    h.wait_until(10, "the late line", |r| r.len() == 3);
    // a new host and a new kind appearing at run time
    append(
        &h.log("faillog", "H2", "171201.log"),
        "B0000000009@mx send fail on [01/Dec/2017:00:00:01] from a@b to c@d [550 x]\r\n",
    );
    h.wait_until(10, "new host and kind", |r| r.len() == 4);
    let s = run.stop();
    assert!(!s.timed_out);
    let cp = h.checkpoint();
    let files = cp["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    for f in files {
        assert_eq!(f["offset"], f["size"], "{f}");
    }
}

#[test]
fn partial_last_line_waits_for_its_newline_then_times_out() {
    let h = Harness::new();
    let p = h.log("inlog", "H1", "171130.log");
    append(&p, &inlog_line(1, 30));
    let half = inlog_line(2, 30);
    append(&p, &half[..40]);
    let run = h.start(h.config("partial_line_timeout = \"2s\""));
    h.wait_until(10, "complete line", |r| r.len() == 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(h.records().len(), 1, "the partial line is held");
    append(&p, &half[40..]);
    h.wait_until(10, "completed line", |r| r.len() == 2);
    assert_eq!(h.records()[1]["email"]["local_id"], "B0000000002");
    // a last line that never gets its newline is shipped after partial_line_timeout
    append(
        &p,
        "<B0000000003@mx.example.jp> [30/Nov/2017:08:00:00] 1.2.3.4 h a@b c@d",
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(h.records().len(), 2);
    h.wait_until(10, "flushed partial line", |r| r.len() == 3);
    run.stop();
}

#[test]
fn multiline_records_are_flushed_when_idle() {
    let h = Harness::new();
    let p = h.log("receivelog", "H1", "171130.log");
    append(
        &p,
        "[30/Nov/2017:08:20:46], 0145a008, 250-mx Hello\r\r\n250-AUTH LOGIN\r\r\n250 SIZE 1\r\r\n\r\n",
    );
    let run = h.start(h.config(""));
    h.wait_until(10, "the multi-line record", |r| r.len() == 1);
    assert_eq!(
        h.records()[0]["message"],
        "[30/Nov/2017:08:20:46], 0145a008, 250-mx Hello\n250-AUTH LOGIN\n250 SIZE 1"
    );
    run.stop();
    // the checkpoint is past the record, so a restart sends nothing again
    let run = h.start(h.config(""));
    std::thread::sleep(Duration::from_millis(800));
    run.stop();
    assert_eq!(h.records().len(), 1);
}

#[test]
fn truncation_and_replacement_read_the_file_again() {
    let h = Harness::new();
    let p = h.log("inlog", "H1", "171130.log");
    for i in 1..=5 {
        append(&p, &inlog_line(i, 30));
    }
    let run = h.start(h.config(""));
    h.wait_until(10, "5 lines", |r| r.len() == 5);
    // truncated and rewritten shorter
    std::fs::write(&p, inlog_line(100, 30)).unwrap();
    h.wait_until(10, "the truncated file's line", |r| {
        r.iter()
            .filter(|v| v["message"].as_str().unwrap().contains("B0000000100"))
            .count()
            == 1
    });
    // replaced by another file under the same name (a restore): new content, longer
    let tmp = h.dir.path().join("restore.log");
    let mut text = String::new();
    for i in 200..210 {
        text.push_str(&inlog_line(i, 30));
    }
    std::fs::write(&tmp, &text).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    h.wait_until(10, "the replacement's lines", |r| {
        r.iter()
            .filter(|v| v["message"].as_str().unwrap().contains("B00000002"))
            .count()
            == 10
    });
    run.stop();
}

#[test]
fn deleted_file_is_finished_and_forgotten() {
    let h = Harness::new();
    let p = h.log("inlog", "H1", "171130.log");
    append(&p, &inlog_line(1, 30));
    let run = h.start(h.config(""));
    h.wait_until(10, "line", |r| r.len() == 1);
    append(&p, &inlog_line(2, 30));
    std::fs::remove_file(&p).unwrap();
    // whatever was written before the delete is shipped (an open handle still reads it on
    // Unix and, with FILE_SHARE_DELETE, on Windows)
    h.wait_until(10, "the last line", |r| r.len() == 2);
    std::thread::sleep(Duration::from_millis(500));
    run.stop();
    let cp = h.checkpoint();
    assert!(
        cp["files"].as_array().unwrap().is_empty(),
        "a deleted file leaves the checkpoint: {cp}"
    );
}

#[test]
fn restart_resumes_exactly_and_start_at_end_skips_history() {
    let h = Harness::new();
    let p = h.log("outlog", "H1", "171130.log");
    let line = |n: u32| {
        format!("B{n:010}@mx sent on [30/Nov/2017:08:22:15] to 1.2.3.4 mx.x from a@b to c@d \r\n")
    };
    for i in 0..50 {
        append(&p, &line(i));
    }
    let run = h.start(h.config(""));
    h.wait_until(10, "50", |r| r.len() == 50);
    run.stop();
    for i in 50..60 {
        append(&p, &line(i));
    }
    let run = h.start(h.config(""));
    h.wait_until(10, "60", |r| r.len() == 60);
    run.stop();
    let ids: std::collections::HashSet<String> = h
        .records()
        .iter()
        .map(|r| r["event"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 60, "no duplicate after a clean restart");

    // start_at = end: a first start ships only what is written from now on
    let h2 = Harness::new();
    let p2 = h2.log("outlog", "H1", "171130.log");
    for i in 0..10 {
        append(&p2, &line(i));
    }
    let run = h2.start(h2.config("start_at = \"end\""));
    std::thread::sleep(Duration::from_millis(600));
    append(&p2, &line(99));
    h2.wait_until(10, "the new line only", |r| r.len() == 1);
    run.stop();
    assert!(h2.messages()[0].starts_with("B0000000099"));
}

#[test]
fn thousands_of_old_files_with_bounded_open_handles() {
    let h = Harness::new();
    let mut expected = 0;
    for kind in ["inlog", "outlog", "faillog"] {
        for day in 0..400u32 {
            let (y, rest) = (10 + day / 300, day % 300);
            let name = format!("{y:02}{:02}{:02}.log", 1 + rest / 28 % 12, 1 + rest % 28);
            let p = h.log(kind, "H1", &name);
            if kind == "inlog" {
                append(&p, &inlog_line(day, 1 + rest % 28));
                expected += 1;
            } else {
                // other kinds: empty files (E-Post creates the file with the first write,
                // but an admin's copy may leave empty ones)
                append(&p, "");
            }
        }
    }
    let run = h.start(h.config("max_open_files = 8"));
    let mut max_open = 0;
    let start = std::time::Instant::now();
    while h.records().len() < expected && start.elapsed() < Duration::from_secs(60) {
        max_open = max_open.max(
            run.counters
                .open_files
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.records().len(), expected);
    assert!(
        max_open <= 8,
        "at most max_open_files handles, saw {max_open}"
    );
    run.stop();

    // ignore_older_than at first start: old files are not read
    let h2 = Harness::new();
    let p = h2.log("inlog", "H1", "171130.log");
    append(&p, &inlog_line(1, 30));
    let old = std::time::SystemTime::now() - Duration::from_secs(30 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fresh = h2.log("inlog", "H1", "171201.log");
    append(&fresh, &inlog_line(2, 1));
    let run = h2.start(h2.config_with("ignore_older_than = \"7d\"", ""));
    h2.wait_until(10, "the fresh file only", |r| r.len() == 1);
    std::thread::sleep(Duration::from_millis(300));
    run.stop();
    assert_eq!(h2.records().len(), 1);
}

#[test]
fn quarantine_pairs_are_shipped_once() {
    let h = Harness::new();
    let v = h.mail.join("viruslog");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("B0000000001.MSG"), "Subject: hello\r\n\r\nbody\r\n").unwrap();
    std::fs::write(
        v.join("B0000000001.RCP"),
        "Message-ID: <B0000000001@mx>\r\nReturn-path: a@b\r\nRecipient: c@d\r\n\r\nWarning: x\r\n\r\n\r\n\r\n\r\n",
    )
    .unwrap();
    let run = h.start(h.config(""));
    h.wait_until(10, "the pair", |r| r.len() == 1);
    run.stop();
    let run = h.start(h.config(""));
    std::thread::sleep(Duration::from_millis(600));
    run.stop();
    let r = h.records();
    assert_eq!(r.len(), 1, "not sent again after restart");
    assert_eq!(r[0]["email"]["subject"], "hello");
}

#[test]
fn torn_checkpoint_resumes_from_previous_generation() {
    let h = Harness::new();
    let p = h.log("inlog", "H1", "171130.log");
    for i in 0..20 {
        append(&p, &inlog_line(i, 30));
    }
    let run = h.start(h.config(""));
    h.wait_until(10, "20", |r| r.len() == 20);
    run.stop();
    for i in 20..25 {
        append(&p, &inlog_line(i, 30));
    }
    let run = h.start(h.config(""));
    h.wait_until(10, "25", |r| r.len() == 25);
    run.stop();
    // tear the current generation
    let cp = h.state.join("checkpoints.json");
    let data = std::fs::read(&cp).unwrap();
    std::fs::write(&cp, &data[..data.len() / 3]).unwrap();
    let run = h.start(h.config(""));
    std::thread::sleep(Duration::from_millis(800));
    run.stop();
    let n = h.records().len();
    // the previous generation is at most one run behind: some records again, never all 25
    assert!((25..50).contains(&n), "{n} records");
    let ids: std::collections::HashSet<String> = h
        .records()
        .iter()
        .map(|r| r["event"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 25, "every line present");
}

#[test]
fn a_stalled_sink_pauses_reading_with_bounded_memory() {
    let h = Harness::new();
    let p = h.log("inlog", "H1", "171130.log");
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&inlog_line(i, 30));
    }
    append(&p, &text);
    // the sink's file cannot be created: every delivery fails and is retried
    std::fs::create_dir_all(h.out.parent().unwrap()).unwrap();
    std::fs::create_dir_all(&h.out).unwrap();
    let cfg = h.config_with("", "queue_segments = 4\nsegment_max_bytes = \"16KiB\"");
    let run = h.start(cfg);
    std::thread::sleep(Duration::from_secs(2));
    let read = run
        .counters
        .bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        read <= 5 * 16 * 1024,
        "reading must pause at queue_segments × segment_max_bytes, read {read} of {}",
        text.len()
    );
    // the sink comes back: everything arrives
    std::fs::remove_dir(&h.out).unwrap();
    h.wait_until(60, "all 20000", |r| r.len() == 20_000);
    run.stop();
}
