//! `/metrics` counts match what was shipped; `/health` answers.

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
    let run = h.start(h.write_config_metrics("", "", &sink, &addr));
    h.wait_until(20, "65 records", |r| r.len() == 65);
    std::thread::sleep(Duration::from_millis(300));
    let (status, text) = get(&addr, "/metrics");
    assert_eq!(status, 200);
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
    assert!(value(&text, "epost_checkpoint_age_seconds") >= 0.0);
    let (status, body) = get(&addr, "/health");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    run.stop();
}
