//! `/metrics` counts match what was shipped; `/health` answers.
//!
//! No sleep before reading: the metrics are polled until the sink's acknowledged count is
//! there and the first checkpoint is written (a deadline, not a delay), then every series is
//! checked exactly. The checkpoint age is bounded on both sides: not the "not yet" -1, and
//! not older than the run itself.
//!
//! Deliberate breaks (made once, then reverted): reading the metrics as soon as the sink file
//! had 65 records (no wait for the first checkpoint) failed "checkpoint age -1 s" — the old
//! `>= 0.0` passed only thanks to its 300 ms sleep; the upper bound of the age set to 0 s
//! failed "checkpoint age ... but the run is".

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Harness, append, inlog_line};

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    // in pieces, as a client may: the server must wait for the whole head
    for part in ["GET ", path, " HTTP/1.1\r\n", "host: x\r\n", "\r\n"] {
        s.write_all(part.as_bytes()).unwrap();
        s.flush().unwrap();
    }
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_match_what_was_shipped() {
    let h = Harness::new();
    for (kind, n) in [("inlog", 40u32), ("outlog", 25)] {
        let p = h.log(kind, "MAILSV01", "171130.log");
        for i in 0..n {
            if kind == "inlog" {
                append(&p, &inlog_line(i, 30));
            } else {
                append(
                    &p,
                    &format!(
                        "B{i:010}@mx sent on [30/Nov/2017:08:00:00] to 1.2.3.4 mx.x from a@b to c@d \r\n"
                    ),
                );
            }
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let sink = format!("[[sink]]\ntype = \"file\"\npath = '{}'\n", h.out.display());
    let started = std::time::Instant::now();
    let run = h.start(h.write_config_metrics("", "", &sink, &addr));
    h.wait_until(60, "65 records", |r| r.len() >= 65);
    // the acknowledgement is counted after the write the sink file shows: wait for it
    let acked = "epost_sink_records_acked_total{sink=\"file-1\"}";
    let (status, text) = {
        let mut last;
        loop {
            last = get(&addr, "/metrics");
            // ... and for the first checkpoint (the age is -1 until then)
            let done = last.1.lines().any(|l| l == format!("{acked} 65"))
                && !last.1.contains("\nepost_checkpoint_age_seconds -1");
            if done || started.elapsed() > Duration::from_secs(60) {
                break last;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(status, 200);
    assert_eq!(h.records().len(), 65, "the sink holds each record once");
    assert_eq!(value(&text, "epost_records_total{kind=\"inlog\"}"), 40.0);
    assert_eq!(value(&text, "epost_records_total{kind=\"outlog\"}"), 25.0);
    assert_eq!(value(&text, "epost_lines_read_total"), 65.0);
    assert_eq!(
        value(&text, "epost_sink_records_acked_total{sink=\"file-1\"}"),
        65.0
    );
    assert_eq!(
        value(
            &text,
            "epost_sink_records_dead_lettered_total{sink=\"file-1\"}"
        ),
        0.0
    );
    assert!(
        value(
            &text,
            "epost_sink_request_duration_seconds_count{sink=\"file-1\"}"
        ) >= 1.0
    );
    assert!(text.contains("epost_file_bytes_behind{path="));
    // a checkpoint was written during this run: its age is at most the run's age (and not
    // the "not yet" -1)
    let age = value(&text, "epost_checkpoint_age_seconds");
    let lived = started.elapsed().as_secs_f64();
    assert!(
        (0.0..=lived).contains(&age),
        "checkpoint age {age} s, but the run is {lived} s old"
    );
    let (status, body) = get(&addr, "/health");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    run.stop();
}
