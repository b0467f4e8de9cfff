//! The delivery engine against an in-process fake Elasticsearch that misbehaves the way
//! proxies and broken servers do: a body limit answered with 413 (nginx's
//! `client_max_body_size`), and answers hundreds of MB long. Every test ends in exact counts.
//! The fake is `common::fake_es` with a body limit and endless answers from `common::http_fake`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::fake_es::{EsOptions, FakeEs};
use common::http_fake::{Answer, Request};
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

/// (request, nth request from 0) → answer with an endless body instead
type HugePolicy = Box<dyn Fn(&Request, u64) -> Option<Huge> + Send + Sync>;

struct Fake {
    es: FakeEs,
    /// bytes written of endless answers before the client hung up
    huge_written: Arc<AtomicU64>,
}

impl Fake {
    fn start(body_limit: usize, huge: HugePolicy) -> Fake {
        let huge_written = Arc::new(AtomicU64::new(0));
        let w = huge_written.clone();
        let es = FakeEs::start_opts(EsOptions {
            body_limit: Some(body_limit),
            answer: Some(Box::new(move |r| {
                let h = huge(r, r.n - 1)?;
                let declared = (h == Huge::Declared).then_some(600 << 20);
                Some(Answer::endless(declared, HUGE_BYTES, w.clone()))
            })),
            ..EsOptions::default()
        });
        Fake { es, huge_written }
    }

    fn count(&self) -> usize {
        self.es.count()
    }

    fn duplicates(&self) -> u64 {
        self.es.conflicts.load(Relaxed)
    }

    /// every request, 413s included
    fn requests(&self) -> u64 {
        self.es.http.count()
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
    let run = h.start(h.config_sinks("", "", &es_sink(&fake.es.url)));
    settle(&h, &fake, n as usize, 60);
    run.stop();

    let sent: HashMap<String, bool> = text
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| (l.to_string(), big(i as u32)))
        .collect();
    let dead = dead_letters(&h);
    let stored: Vec<String> = fake.es.messages();
    let oversized = (0..n).filter(|&i| big(i)).count();
    assert_eq!(dead.len(), oversized, "exactly the oversized documents");
    assert_eq!(stored.len(), n as usize - oversized, "every other document");
    assert_eq!(fake.duplicates(), 0, "nothing sent twice");
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
    assert!(fake.es.http.too_large() > 0);
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
                format!("[[sink]]\ntype = \"loki\"\nurl = \"{}\"\n", fake.es.url)
            } else {
                es_sink(&fake.es.url)
            };
            let e = probe_error(&fake.es.url, &toml);
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
            let written = fake.huge_written.load(Relaxed);
            assert!(
                written < 3 * MAX_ANSWER_BYTES as u64 + (8 << 20),
                "{huge:?} loki={loki}: {written} bytes written"
            );
            assert_eq!(fake.requests(), 1, "{huge:?} loki={loki}");
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
        Box::new(|r, _| {
            static FIRST: std::sync::Once = std::sync::Once::new();
            let mut huge = None;
            if r.method == "POST" && r.path.starts_with("/_bulk") {
                FIRST.call_once(|| huge = Some(Huge::Chunked));
            }
            huge
        }),
    );
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    let text: String = (0..300).map(|i| line(i, 0)).collect();
    append(&p, &text);
    let run = h.start(h.config_sinks("", "", &es_sink(&fake.es.url)));
    settle(&h, &fake, 300, 60);
    run.stop();
    assert_eq!(fake.count(), 300);
    assert_eq!(fake.duplicates(), 0);
    assert!(dead_letters(&h).is_empty());
    let written = fake.huge_written.load(Relaxed);
    let allowance = epost_shipper::sink::elasticsearch::answer_limit(300) as u64;
    assert!(
        written > 0 && written < 3 * allowance + (8 << 20),
        "{written} bytes written of the endless answer"
    );
    // the cut-off request was sent again in two halves: template, bulk, bulk, bulk
    assert!(fake.requests() >= 4);
}
