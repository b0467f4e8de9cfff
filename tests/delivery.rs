//! The delivery engine against an in-process fake Elasticsearch that misbehaves the way
//! proxies and broken servers do: a body limit answered with 413 (nginx's
//! `client_max_body_size`), and answers hundreds of MB long. Every test ends in exact counts.
//!
//! The fake is a small blocking HTTP/1.1 server of its own (it must see each request's size
//! and stream endless answers, which `common::fake_es` does not do); it should move to the
//! shared test HTTP helper when there is one.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Harness, append};
use epost_shipper::sink::http::{AnswerError, MAX_ANSWER_BYTES};
use epost_shipper::sink::{Sink, SinkError};
use serde_json::Value;

/// How the fake answers with an endless body (`Content-Length` declared or chunked).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Huge {
    Declared,
    Chunked,
}

/// The most the fake writes of an endless answer: enough to show the shipper stops reading
/// (it reads at most MAX_ANSWER_BYTES) without costing a shared test machine 600 MB.
const HUGE_BYTES: u64 = 96 << 20;

type HugePolicy = Box<dyn Fn(&str, u64) -> Option<Huge> + Send + Sync>;

struct Fake {
    url: String,
    /// `_id` → `message` of every document stored
    docs: Arc<Mutex<HashMap<String, String>>>,
    state: Arc<State>,
}

struct State {
    body_limit: usize,
    /// (request line, nth request) → answer with an endless body instead
    huge: HugePolicy,
    requests: AtomicU64,
    too_large: AtomicU64,
    duplicates: AtomicU64,
    /// bytes written of endless answers before the client hung up
    huge_written: AtomicU64,
}

impl Fake {
    fn start(body_limit: usize, huge: HugePolicy) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let docs = Arc::new(Mutex::new(HashMap::new()));
        let state = Arc::new(State {
            body_limit,
            huge,
            requests: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            huge_written: AtomicU64::new(0),
        });
        let (d, s) = (docs.clone(), state.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (d, s) = (d.clone(), s.clone());
                std::thread::spawn(move || serve(conn, &d, &s));
            }
        });
        Fake { url, docs, state }
    }

    fn count(&self) -> usize {
        self.docs.lock().unwrap().len()
    }
}

fn serve(conn: TcpStream, docs: &Mutex<HashMap<String, String>>, s: &State) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        // The whole body is read before answering, even a 413: the client then always sees
        // the answer (a server closing mid-upload gives a reset instead, a transport error).
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let n = s.requests.fetch_add(1, Relaxed);
        let line = line.trim_end().to_string();
        if let Some(h) = (s.huge)(&line, n) {
            endless(&mut out, h, s);
            return;
        }
        let (status, answer) = if line.starts_with("POST /_bulk") {
            if body.len() > s.body_limit {
                s.too_large.fetch_add(1, Relaxed);
                (
                    "413 Request Entity Too Large",
                    "<html><body>413 Request Entity Too Large</body></html>".to_string(),
                )
            } else {
                ("200 OK", bulk(&body, docs, s))
            }
        } else {
            (
                "200 OK",
                r#"{"version":{"number":"8.19.0","distribution":"elasticsearch"}}"#.to_string(),
            )
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Stores each `create` pair by `_id` (409 for one already there, as ES does).
fn bulk(body: &[u8], docs: &Mutex<HashMap<String, String>>, s: &State) -> String {
    let text = String::from_utf8_lossy(body);
    let mut lines = text.lines();
    let mut items = Vec::new();
    let mut errors = false;
    while let (Some(action), Some(doc)) = (lines.next(), lines.next()) {
        let action: Value = serde_json::from_str(action).unwrap();
        let doc: Value = serde_json::from_str(doc).unwrap();
        let id = action["create"]["_id"].as_str().unwrap().to_string();
        let message = doc["message"].as_str().unwrap().to_string();
        match docs.lock().unwrap().entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => {
                s.duplicates.fetch_add(1, Relaxed);
                errors = true;
                items.push(r#"{"create":{"status":409}}"#);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(message);
                items.push(r#"{"create":{"status":201}}"#);
            }
        }
    }
    format!(r#"{{"errors":{errors},"items":[{}]}}"#, items.join(","))
}

/// An answer that does not end (up to HUGE_BYTES): counts what it got to write.
fn endless(out: &mut TcpStream, h: Huge, s: &State) {
    let head = match h {
        Huge::Declared => {
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 629145600\r\n\r\n".to_string()
        }
        Huge::Chunked => {
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                .to_string()
        }
    };
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let block = vec![b' '; 64 << 10];
    let mut written = 0u64;
    while written < HUGE_BYTES {
        let ok = match h {
            Huge::Declared => out.write_all(&block),
            Huge::Chunked => out
                .write_all(format!("{:x}\r\n", block.len()).as_bytes())
                .and_then(|()| out.write_all(&block))
                .and_then(|()| out.write_all(b"\r\n")),
        };
        if ok.is_err() {
            break;
        }
        written += block.len() as u64;
        s.huge_written.fetch_add(block.len() as u64, Relaxed);
    }
}

/// An inlog line with a recipient of `pad` extra characters (a document that large).
fn line(n: u32, pad: usize) -> String {
    format!(
        "<B{n:010}@mx.example.jp> [30/Nov/2017:08:00:00] 203.0.113.5 client.example.net alice@example.net bob{}@example.jp\r\n",
        "x".repeat(pad)
    )
}

fn es_sink(url: &str) -> String {
    format!(
        "[[sink]]\ntype = \"elasticsearch\"\nurl = \"{url}\"\nbatch_timeout = \"200ms\"\ncompression = \"none\"\n"
    )
}

fn dead_letters(h: &Harness) -> Vec<Value> {
    std::fs::read_to_string(h.state.join("dead-letter/elasticsearch-1.ndjson"))
        .map(|t| {
            t.lines()
                .map(|l| serde_json::from_str(l).expect("one valid JSON entry a line"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the fake stored and the dead-letter file hold `n` records between them.
fn settle(h: &Harness, fake: &Fake, n: usize, secs: u64) {
    let start = Instant::now();
    while fake.count() + dead_letters(h).len() < n && start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A proxy with a 64 KiB body limit in front of ES: batches are split on 413 until they
/// pass; a document over the limit on its own goes to the dead-letter file. Every record is
/// indexed or dead-lettered, exactly once, with the message that was sent.
#[test]
fn es_413_splits_and_dead_letters_only_what_cannot_pass() {
    let limit = 64 << 10;
    let fake = Fake::start(limit, Box::new(|_, _| None));
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    let (n, mut text) = (1500u32, String::new());
    let big = |i: u32| i % 250 == 7;
    for i in 0..n {
        text.push_str(&line(
            i,
            if big(i) {
                70_000
            } else {
                (i % 50) as usize * 10
            },
        ));
    }
    append(&p, &text);
    let run = h.start(h.config_sinks("", "", &es_sink(&fake.url)));
    settle(&h, &fake, n as usize, 60);
    run.stop();

    let sent: HashMap<String, bool> = text
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| (l.to_string(), big(i as u32)))
        .collect();
    let dead = dead_letters(&h);
    let stored: Vec<String> = fake.docs.lock().unwrap().values().cloned().collect();
    let oversized = (0..n).filter(|&i| big(i)).count();
    assert_eq!(dead.len(), oversized, "exactly the oversized documents");
    assert_eq!(stored.len(), n as usize - oversized, "every other document");
    assert_eq!(fake.state.duplicates.load(Relaxed), 0, "nothing sent twice");
    for m in &stored {
        assert_eq!(sent.get(m), Some(&false), "stored as sent: {m:.80}");
    }
    let mut dead_messages = std::collections::HashSet::new();
    for d in &dead {
        let m = d["record"]["message"].as_str().unwrap();
        assert_eq!(sent.get(m), Some(&true), "dead-lettered as sent: {m:.80}");
        assert!(dead_messages.insert(m.to_string()), "dead-lettered once");
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with("HTTP 413: too large"), "{reason}");
    }
    assert!(fake.state.too_large.load(Relaxed) > 0);
    let cp = h.checkpoint();
    assert_eq!(
        cp["sinks"]["elasticsearch-1"]["dead_lettered"],
        oversized as u64
    );
}

fn probe_error(url: &str, sink_toml: &str) -> SinkError {
    let h = Harness::new();
    let cfg = h.config_sinks("", "", sink_toml);
    let sink = Sink::new(&cfg.sinks[0], &cfg.source.state_dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), sink.probe())
            .await
            .expect("the probe ends")
    });
    match r {
        Ok(p) => panic!("{url}: probe passed: {}", p.server),
        Err(e) => e,
    }
}

/// `check` against endpoints answering hundreds of MB: the answer is refused (declared
/// length) or cut off after MAX_ANSWER_BYTES (chunked), as a typed error.
#[test]
fn check_reads_at_most_max_answer_bytes() {
    for huge in [Huge::Declared, Huge::Chunked] {
        for loki in [false, true] {
            let fake = Fake::start(usize::MAX, Box::new(move |_, _| Some(huge)));
            let toml = if loki {
                format!("[[sink]]\ntype = \"loki\"\nurl = \"{}\"\n", fake.url)
            } else {
                es_sink(&fake.url)
            };
            let e = probe_error(&fake.url, &toml);
            assert!(
                matches!(
                    e,
                    SinkError::Answer {
                        source: AnswerError::TooLarge {
                            limit: MAX_ANSWER_BYTES
                        },
                        ..
                    }
                ),
                "{huge:?} loki={loki}: {e:?}"
            );
            // the fake stops once the client hangs up and the socket buffers are full
            std::thread::sleep(Duration::from_millis(300));
            let written = fake.state.huge_written.load(Relaxed);
            assert!(
                written < 3 * MAX_ANSWER_BYTES as u64 + (8 << 20),
                "{huge:?} loki={loki}: {written} bytes written"
            );
            assert_eq!(fake.state.requests.load(Relaxed), 1, "{huge:?} loki={loki}");
        }
    }
}

/// A `_bulk` answered 200 with an endless body, then normally: the delivery reads at most
/// its allowance, splits the request (asking about fewer documents), and every record is
/// indexed exactly once.
#[test]
fn an_endless_bulk_answer_is_cut_off_and_split() {
    let fake = Fake::start(
        usize::MAX,
        Box::new(|line, _| {
            static FIRST: std::sync::Once = std::sync::Once::new();
            let mut huge = None;
            if line.starts_with("POST /_bulk") {
                FIRST.call_once(|| huge = Some(Huge::Chunked));
            }
            huge
        }),
    );
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    let text: String = (0..300).map(|i| line(i, 0)).collect();
    append(&p, &text);
    let run = h.start(h.config_sinks("", "", &es_sink(&fake.url)));
    settle(&h, &fake, 300, 60);
    run.stop();
    assert_eq!(fake.count(), 300);
    assert_eq!(fake.state.duplicates.load(Relaxed), 0);
    assert!(dead_letters(&h).is_empty());
    let written = fake.state.huge_written.load(Relaxed);
    let allowance = epost_shipper::sink::elasticsearch::answer_limit(300) as u64;
    assert!(
        written > 0 && written < 3 * allowance + (8 << 20),
        "{written} bytes written of the endless answer"
    );
    // the cut-off request was sent again in two halves: template, bulk, bulk, bulk
    assert!(fake.state.requests.load(Relaxed) >= 4);
}
