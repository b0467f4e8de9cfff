//! The Elasticsearch / OpenSearch sink: against the real servers started by
//! tests/servers/up.sh (EPOST_TEST_ELASTICSEARCH, EPOST_TEST_OPENSEARCH), and against an
//! in-process fake for fault injection. Every test ends by counting, twice: what the index
//! holds, and what the shipper SENT (items of every `_bulk`, recorded by the fake or by a
//! recording proxy in front of the real server) — an index that answers 409 to a re-sent `_id`
//! can never show a re-send by itself. Stored documents are compared with the lines the test
//! wrote (their `message`, offset and id), not only counted.
//!
//! Deliberate breaks (made once in src/sink/elasticsearch.rs, then reverted): each
//! document's message cut by its first character in the `_bulk` body failed every fake test
//! but the dead-letter one (which then got its own content check) with "message at offset
//! ..." and both real-server example tests with "/message of ..."; every 5th acknowledged
//! batch sent once more failed `fake_429_storm` ("a stored record sent again: 200"),
//! `fake_partial_bulk_failures_are_retried_alone` ("(600, 600, 100)") and both real-server
//! example tests ("items sent: 162, want 122"), where the index alone still held 122.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_es::{FakeEs, Sent, Whole};
use common::{Harness, append, inlog_line};
use serde_json::{Value, json};

fn server(var: &str) -> Option<String> {
    common::real_server(var)
}

/// The records `parse` makes of the example folder (every line, pairs, the last line without
/// its newline included once the tailer's partial-line timeout has passed), by event.id.
fn example_records() -> HashMap<String, Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .args([
            "parse",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mail"),
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["event"]["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// The example folder's records, counted by kind from its files (tests/golden.rs).
const EXAMPLE_RECORDS: usize = 122;

/// Every document of `index` by `_id`.
fn all_docs(base: &str, index: &str) -> HashMap<String, Value> {
    let _ = http().post(format!("{base}/{index}/_refresh")).send();
    let r: Value = http()
        .post(format!("{base}/{index}/_search"))
        .json(&json!({"query": {"match_all": {}}, "size": 10000}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    r["hits"]["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("search failed: {r}"))
        .iter()
        .map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone()))
        .collect()
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// The number of documents matching `query`. A new index's shards may not answer yet ("all
/// shards failed", 503): asked again for up to 60 s.
fn count(base: &str, index: &str, query: Value) -> u64 {
    let start = Instant::now();
    loop {
        let _ = http().post(format!("{base}/{index}/_refresh")).send();
        let r: Value = http()
            .post(format!(
                "{base}/{index}/_count?ignore_unavailable=true&allow_no_indices=true"
            ))
            .json(&json!({ "query": query }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        match r["count"].as_u64() {
            Some(n) => return n,
            None if start.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(250))
            }
            None => panic!("count failed: {r}"),
        }
    }
}

fn wait_count(base: &str, index: &str, want: u64, secs: u64) -> u64 {
    let start = Instant::now();
    loop {
        let n = count(base, index, json!({"match_all": {}}));
        if n >= want || start.elapsed() > Duration::from_secs(secs) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits (60 s at most) until the proxy has seen `n` items stored (201).
fn wait_sent(proxy: &FakeEs, n: usize) {
    let start = Instant::now();
    while proxy.sent_with(201) < n && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn es_sink(url: &str, extra: &str) -> String {
    format!(
        "[[sink]]\ntype = \"elasticsearch\"\nurl = \"{url}\"\nbatch_timeout = \"200ms\"\n{extra}\n"
    )
}

/// Ships the example folder to a real server (through a recording proxy) and checks count,
/// contents and fields with searches.
fn ship_examples(base: &str) {
    let ns = common::unique();
    let proxy = FakeEs::proxy(base);
    let h = Harness::new();
    h.copy_examples();
    let cfg = h.config_sinks(
        "",
        "",
        &es_sink(&proxy.url, &format!("namespace = \"{ns}\"")),
    );
    let run = h.start(cfg);
    let reference = example_records();
    assert_eq!(reference.len(), EXAMPLE_RECORDS, "the reference parse");
    let want = EXAMPLE_RECORDS as u64;
    let index = format!("logs-epost.*-{ns}");
    let n = wait_count(base, &index, want, 60);
    // the index can show a document before its _bulk answer reached the proxy
    wait_sent(&proxy, EXAMPLE_RECORDS);
    run.stop();
    assert_eq!(n, want, "every record of the example folder");
    // what was sent: each record once, each stored
    let sent = proxy.sent();
    assert_eq!(sent.len(), EXAMPLE_RECORDS, "items sent: {sent:?}");
    assert_eq!(proxy.sent_with(201), EXAMPLE_RECORDS, "items stored");
    // what the index holds is what `parse` prints, record by record
    let docs = all_docs(base, &index);
    assert_eq!(docs.len(), EXAMPLE_RECORDS);
    for (id, doc) in &docs {
        let r = reference
            .get(id)
            .unwrap_or_else(|| panic!("a document nobody wrote: {doc}"));
        // (quarantine pairs take @timestamp from the .RCP's mtime, which the copy sets anew)
        for ptr in ["/message", "/epost/log", "/log/offset", "/email/local_id"] {
            assert_eq!(doc.pointer(ptr), r.pointer(ptr), "{ptr} of {id}");
        }
        if r["epost"]["log"] != "viruslog" {
            assert_eq!(doc["@timestamp"], r["@timestamp"], "@timestamp of {id}");
        }
    }

    // a message's journey, by its id, across kinds
    let by_id = count(
        base,
        &index,
        json!({"term": {"email.local_id": "B0000097587"}}),
    );
    assert!(
        by_id >= 8,
        "B0000097587 in acceptlog, inlog, senderlog, outlog...: {by_id}"
    );
    // client.ip is an ip: a CIDR query works
    let net = count(
        base,
        &index,
        json!({"term": {"client.ip": "203.0.113.0/24"}}),
    );
    assert!(net >= 4, "{net}");
    // @timestamp is a date with the right offset: 08:20:44+09:00 is 23:20:44Z the day before
    let at = count(
        base,
        &index,
        json!({"range": {"@timestamp": {"gte": "2017-11-29T23:20:44Z", "lte": "2017-11-29T23:20:44Z"}}}),
    );
    assert!(at >= 2, "{at}");
    let r: Value = http()
        .post(format!("{base}/{index}/_search"))
        .json(&json!({"query": {"term": {"epost.log": "faillog"}}, "sort": [{"log.offset": "asc"}], "size": 10}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let first = &r["hits"]["hits"][0]["_source"];
    assert_eq!(
        first["error"]["message"],
        "550 5.1.1 <nobody@example.com>... User unknown"
    );
    assert_eq!(first["epost"]["smtp"]["reply_code"], 550);
    assert_eq!(first["@timestamp"], "2017-11-30T09:10:51.000+09:00");
    let id = first["event"]["id"].as_str().unwrap();
    assert_eq!(r["hits"]["hits"][0]["_id"], id, "_id is event.id");
    // a second run sends nothing again: a line written after it started arrives, and it is
    // the only item sent (counted at the proxy: the index would drop a re-send by itself)
    let before = proxy.sent().len();
    let run = h.start(h.config_sinks(
        "",
        "",
        &es_sink(&proxy.url, &format!("namespace = \"{ns}\"")),
    ));
    let marker = "<B0000099999@mx.example.jp> [30/Nov/2017:23:00:00] 203.0.113.5 client.example.net alice@example.net bob@example.jp";
    append(
        &h.mail.join("inlog/MAILSV01/171130.log"),
        &format!("{marker}\r\n"),
    );
    let n = wait_count(base, &index, want + 1, 60);
    wait_sent(&proxy, EXAMPLE_RECORDS + 1);
    run.stop();
    assert_eq!(n, want + 1, "the marker line arrives");
    let again: Vec<Sent> = proxy.sent()[before..].to_vec();
    assert_eq!(
        again.len(),
        1,
        "the second run sent only the new line: {again:?}"
    );
    let doc: Value = serde_json::from_str(&again[0].doc).unwrap();
    assert_eq!(doc["message"], marker);
    assert_eq!(again[0].status, 201);
}

#[test]
fn real_elasticsearch_ships_examples() {
    if let Some(base) = server("EPOST_TEST_ELASTICSEARCH") {
        ship_examples(&base);
    }
}

#[test]
fn real_opensearch_ships_examples() {
    if let Some(base) = server("EPOST_TEST_OPENSEARCH") {
        ship_examples(&base);
    }
}

#[test]
fn real_elasticsearch_kill_and_restart_counts_exactly() {
    let Some(base) = server("EPOST_TEST_ELASTICSEARCH") else {
        return;
    };
    let ns = common::unique();
    let proxy = FakeEs::proxy(&base);
    let h = Harness::new();
    let total = 3000;
    let p = h.log("inlog", "MAILSV01", "171130.log");
    let mut text = String::new();
    for i in 0..total {
        text.push_str(&inlog_line(i, 30));
    }
    append(&p, &text);
    h.config_sinks(
        "",
        "segment_max_records = 100",
        &es_sink(
            &proxy.url,
            &format!("namespace = \"{ns}\"\nbatch_max_events = 200\ncompression = \"none\""),
        ),
    );
    let config = h.dir.path().join("shipper.toml");
    let index = format!("logs-epost.inlog-{ns}");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // killed mid-stream several times: documents already stored are sent again on restart.
    // Each kill waits until this run has sent something, so it cuts a run at work; where it
    // fell (items sent, items stored) is recorded.
    let mut kills = Vec::new();
    for wait in [300u64, 150, 400, 100, 250] {
        let mut child = spawn();
        let before = proxy.sent().len();
        let start = Instant::now();
        while proxy.sent().len() == before && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        kills.push((proxy.sent().len() - before, proxy.sent_with(201)));
    }
    let mut child = spawn();
    let n = wait_count(&base, &index, total as u64, 60);
    wait_sent(&proxy, total as usize);
    child.kill().unwrap();
    child.wait().unwrap();
    let stored = proxy.sent_with(201);
    let resent = proxy.sent_with(409);
    eprintln!(
        "kills (items sent in that run, items stored so far): {kills:?}; sent {}, stored {stored}, re-sent and refused as existing (409) {resent}",
        proxy.sent().len()
    );
    assert!(
        kills
            .iter()
            .filter(|(sent, stored)| *sent > 0 && *stored < total as usize)
            .count()
            >= 3,
        "kills must cut runs that were shipping: {kills:?}"
    );
    assert_eq!(n, total as u64, "the index holds each line once");
    assert_eq!(stored, total as usize, "each line stored once");
    assert_eq!(
        proxy.sent().len(),
        stored + resent,
        "every item sent was stored or refused as a re-send"
    );
    // what the index holds is what was written
    let docs = all_docs(&base, &index);
    assert_docs_are_the_lines(&docs, total);
}

/// `docs` (by `_id`) are exactly the `total` inlog lines written by `inlog_line(i, 30)`: by
/// offset, each document's message is the line without its CRLF, and its local id matches.
fn assert_docs_are_the_lines(docs: &HashMap<String, Value>, total: u32) {
    assert_docs_are_lines(docs, total);
    assert_eq!(docs.len(), total as usize, "every line");
}

/// Each of `docs` is one of the `total` lines, with its message and local id.
fn assert_docs_are_lines(docs: &HashMap<String, Value>, total: u32) {
    let len = inlog_line(0, 30).len() as u64;
    let mut seen = HashSet::new();
    for (id, doc) in docs {
        assert_eq!(doc["event"]["id"], json!(id), "_id is event.id");
        let offset = doc["log"]["offset"].as_u64().unwrap();
        assert_eq!(offset % len, 0, "offset {offset} is not a line start");
        let i = (offset / len) as u32;
        assert!(i < total, "offset {offset} past the lines written");
        let line = inlog_line(i, 30);
        assert_eq!(
            doc["message"].as_str().unwrap(),
            line.trim_end_matches("\r\n"),
            "message at offset {offset}"
        );
        assert_eq!(doc["email"]["local_id"], format!("B{i:010}"));
        assert!(seen.insert(i), "line {i} twice");
    }
}

#[test]
fn real_elasticsearch_mapping_conflict_goes_to_dead_letter() {
    let Some(base) = server("EPOST_TEST_ELASTICSEARCH") else {
        return;
    };
    let prefix = common::unique();
    // an index whose mapping cannot take our documents: email.local_id as a number
    let index = format!("{prefix}-inlog-2017.11.30");
    let r = http()
        .put(format!("{base}/{index}"))
        .json(&json!({"mappings": {"properties": {"email": {"properties": {"local_id": {"type": "long"}}}}}}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    for i in 0..5 {
        append(&p, &inlog_line(i, 30));
    }
    // the next day's index is ours: those documents are stored
    let p2 = h.log("inlog", "MAILSV01", "171201.log");
    append(
        &p2,
        "<B0000000099@mx> [01/Dec/2017:00:00:01] 1.2.3.4 h a@b c@d\r\n",
    );
    let sink = es_sink(
        &base,
        &format!("mode = \"index\"\nindex = \"{prefix}-{{kind}}-%Y.%m.%d\"\ntemplate = false"),
    );
    let run = h.start(h.config_sinks("", "", &sink));
    let dl = h.state.join("dead-letter/elasticsearch-1.ndjson");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let n = std::fs::read_to_string(&dl)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= 5
            && count(
                &base,
                &format!("{prefix}-inlog-2017.12.01"),
                json!({"match_all": {}}),
            ) == 1
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    run.stop();
    let text = std::fs::read_to_string(&dl).expect("dead-letter file");
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 5, "{text}");
    for e in &entries {
        let reason = e["reason"].as_str().unwrap();
        assert!(
            reason.contains("HTTP 400") && reason.contains("parsing_exception"),
            "{reason}"
        );
        assert_eq!(e["sink"], "elasticsearch-1");
        assert!(
            e["record"]["email"]["local_id"]
                .as_str()
                .unwrap()
                .starts_with('B')
        );
    }
    // the checkpoint moved past them: they are not retried forever
    let cp = h.checkpoint();
    for f in cp["files"].as_array().unwrap() {
        assert_eq!(f["offset"], f["size"], "{f}");
    }
    let _ = http().delete(format!("{base}/{prefix}-*")).send();
}

// ---- fault injection against the fake ----

fn fake_run(fake: &FakeEs, total: u32, extra: &str) -> (Harness, HashSet<String>) {
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    let mut text = String::new();
    for i in 0..total {
        text.push_str(&inlog_line(i, 30));
    }
    append(&p, &text);
    let sink = es_sink(
        &fake.url,
        &format!("batch_max_events = 100\nmax_in_flight = 3\n{extra}"),
    );
    let run = h.start(h.config_sinks("", "segment_max_records = 50", &sink));
    let start = Instant::now();
    while fake.count() < total as usize && start.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // let any duplicate in flight land, then stop cleanly
    std::thread::sleep(Duration::from_millis(300));
    run.stop();
    let ids: HashSet<String> = fake.docs.lock().unwrap().keys().cloned().collect();
    (h, ids)
}

fn expected_ids(h: &Harness) -> HashSet<String> {
    let p = h.mail.join("inlog/MAILSV01/171130.log");
    let mut ids = HashSet::new();
    epost_shipper::parse::parse_bytes(
        epost_shipper::record::Source::new(
            "MAILSV01",
            epost_shipper::kind::Kind::Inlog,
            &p.to_string_lossy(),
        ),
        Default::default(),
        &std::fs::read(&p).unwrap(),
        &mut |r| {
            ids.insert(r.event_id().to_hex().as_str().to_string());
        },
    );
    ids
}

fn assert_exact(h: &Harness, fake: &FakeEs, got: &HashSet<String>, total: u32) {
    assert_eq!(got.len(), total as usize, "stored once each");
    assert_eq!(got, &expected_ids(h), "the same ids as the lines");
    let docs: HashMap<String, Value> = fake
        .docs
        .lock()
        .unwrap()
        .iter()
        .map(|(id, d)| (id.clone(), serde_json::from_str(d).unwrap()))
        .collect();
    assert_docs_are_the_lines(&docs, total);
    // what was sent: each line stored by exactly one item; every other item it sent was
    // refused (by the fault injected), never answered "exists" unless the test says so
    assert_eq!(fake.sent_with(201), total as usize, "items stored");
    let cp = h.checkpoint();
    let f = &cp["files"][0];
    assert_eq!(f["offset"], f["size"], "checkpoint at the end: {f}");
    eprintln!(
        "requests {}, item errors {}, 409 conflicts {}",
        fake.requests.load(std::sync::atomic::Ordering::SeqCst),
        fake.item_errors.load(std::sync::atomic::Ordering::SeqCst),
        fake.conflicts.load(std::sync::atomic::Ordering::SeqCst)
    );
}

#[test]
fn fake_429_storm() {
    // the first 15 bulk requests are refused whole
    let fake = FakeEs::start(
        Box::new(|n| {
            if n <= 15 {
                Whole::Status(429)
            } else {
                Whole::Items
            }
        }),
        Box::new(|_, _| None),
    );
    let (h, ids) = fake_run(&fake, 1000, "");
    assert_exact(&h, &fake, &ids, 1000);
    assert_eq!(fake.sent_with(409), 0, "a stored record sent again");
    let refused: HashSet<u64> = fake
        .sent()
        .iter()
        .filter(|s| s.status == 0)
        .map(|s| s.request)
        .collect();
    assert_eq!(refused.len(), 15, "the 15 refused requests: {refused:?}");
    assert_eq!(fake.sent().len(), fake.sent_with(0) + 1000);
}

#[test]
fn fake_partial_bulk_failures_are_retried_alone() {
    // every item is refused (429 or 503) on its first two tries
    let tries = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        u32,
    >::new()));
    let t = tries.clone();
    let fake = FakeEs::start(
        Box::new(|_| Whole::Items),
        Box::new(move |id, _| {
            let mut m = t.lock().unwrap();
            let n = m.entry(id.to_string()).or_insert(0);
            *n += 1;
            match *n {
                1 => Some(429),
                2 => Some(503),
                _ => None,
            }
        }),
    );
    let (h, ids) = fake_run(&fake, 600, "");
    assert_exact(&h, &fake, &ids, 600);
    assert_eq!(
        fake.item_errors.load(std::sync::atomic::Ordering::SeqCst),
        1200
    );
    // each item sent exactly three times (429, 503, stored), never once more
    assert_eq!(
        (
            fake.sent_with(429),
            fake.sent_with(503),
            fake.sent_with(409)
        ),
        (600, 600, 0)
    );
    assert_eq!(fake.sent().len(), 1800);
}

#[test]
fn fake_dropped_connections() {
    let fake = FakeEs::start(
        Box::new(|n| {
            if n % 3 == 1 {
                Whole::Drop
            } else {
                Whole::Items
            }
        }),
        Box::new(|_, _| None),
    );
    let (h, ids) = fake_run(&fake, 800, "");
    assert_exact(&h, &fake, &ids, 800);
    // a dropped request stored nothing: its items are sent again, a stored one never is
    assert_eq!(fake.sent_with(409), 0, "a stored record sent again");
    assert!(fake.sent_with(0) > 0, "some requests were dropped");
    assert_eq!(fake.sent().len(), fake.sent_with(0) + 800);
}

#[test]
fn fake_slow_responses_time_out_and_are_retried() {
    // the first answers come after the client gave up: the documents are stored, the
    // retry gets 409s, and the count stays exact
    let fake = FakeEs::start(
        Box::new(|n| {
            if n <= 4 {
                Whole::Slow(Duration::from_millis(1500))
            } else {
                Whole::Items
            }
        }),
        Box::new(|_, _| None),
    );
    let (h, ids) = fake_run(&fake, 500, "request_timeout = \"500ms\"");
    assert_exact(&h, &fake, &ids, 500);
    assert!(
        fake.conflicts.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "replays answered 409"
    );
    // only the items of the 4 slow requests may be sent again
    let slow: HashSet<String> = fake
        .sent()
        .iter()
        .filter(|s| s.request <= 4)
        .map(|s| s.id.clone())
        .collect();
    for s in fake.sent().iter().filter(|s| s.status == 409) {
        assert!(slow.contains(&s.id), "re-sent but never slow: {s:?}");
    }
    assert_eq!(fake.sent().len(), 500 + fake.sent_with(409));
}

#[test]
fn fake_permanent_item_errors_go_to_dead_letter() {
    // ids ending in 0 are refused for good (a mapping error)
    let fake = FakeEs::start(
        Box::new(|_| Whole::Items),
        Box::new(|id, _| id.ends_with('0').then_some(400)),
    );
    let h = Harness::new();
    let p = h.log("inlog", "MAILSV01", "171130.log");
    let mut text = String::new();
    for i in 0..500 {
        text.push_str(&inlog_line(i, 30));
    }
    append(&p, &text);
    let run = h.start(h.config_sinks("", "", &es_sink(&fake.url, "")));
    let expected = expected_ids(&h);
    let refused = expected.iter().filter(|id| id.ends_with('0')).count();
    let dl = h.state.join("dead-letter/elasticsearch-1.ndjson");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let n = std::fs::read_to_string(&dl)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if fake.count() + n >= 500 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    run.stop();
    let dead: Vec<Value> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), refused);
    assert_eq!(fake.count(), 500 - refused);
    let docs: HashMap<String, Value> = fake
        .docs
        .lock()
        .unwrap()
        .iter()
        .map(|(id, d)| (id.clone(), serde_json::from_str(d).unwrap()))
        .collect();
    assert_docs_are_lines(&docs, 500);
    // a permanent error is not retried: each item sent once
    assert_eq!(fake.sent().len(), 500, "items sent");
    assert_eq!(fake.sent_with(400), refused);
    for d in &dead {
        let off = d["record"]["log"]["offset"].as_u64().unwrap();
        let i = (off / inlog_line(0, 30).len() as u64) as u32;
        assert_eq!(
            d["record"]["message"].as_str().unwrap(),
            inlog_line(i, 30).trim_end_matches("\r\n")
        );
    }
    assert!(dead[0]["reason"].as_str().unwrap().contains("injected_400"));
    let cp = h.checkpoint();
    assert_eq!(
        cp["sinks"]["elasticsearch-1"]["dead_lettered"],
        refused as u64
    );
}
