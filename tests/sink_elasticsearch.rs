//! The Elasticsearch / OpenSearch sink: against the real servers started by
//! tests/servers/up.sh (EPOST_TEST_ELASTICSEARCH, EPOST_TEST_OPENSEARCH), and against an
//! in-process fake for fault injection. Every test ends by counting.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_es::{FakeEs, Whole};
use common::{Harness, append, inlog_line};
use serde_json::{Value, json};

fn server(var: &str) -> Option<String> {
    common::real_server(var)
}

/// The number of records `parse` makes of the example folder (every line, pairs, the last
/// line without its newline included once the tailer's partial-line timeout has passed).
fn example_records() -> usize {
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .args([
            "parse",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mail"),
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().lines().count()
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

fn count(base: &str, index: &str, query: Value) -> u64 {
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
    r["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("count failed: {r}"))
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

fn es_sink(url: &str, extra: &str) -> String {
    format!(
        "[[sink]]\ntype = \"elasticsearch\"\nurl = \"{url}\"\nbatch_timeout = \"200ms\"\n{extra}\n"
    )
}

/// Ships the example folder to a real server and checks count and fields with searches.
fn ship_examples(base: &str) {
    let ns = common::unique();
    let h = Harness::new();
    h.copy_examples();
    let cfg = h.config_sinks("", "", &es_sink(base, &format!("namespace = \"{ns}\"")));
    let run = h.start(cfg);
    let want = example_records() as u64;
    let index = format!("logs-epost.*-{ns}");
    let n = wait_count(base, &index, want, 60);
    run.stop();
    assert_eq!(n, want, "every record of the example folder");

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
    // a second run sends nothing new, and nothing twice
    let run = h.start(h.config_sinks("", "", &es_sink(base, &format!("namespace = \"{ns}\""))));
    std::thread::sleep(Duration::from_secs(2));
    run.stop();
    assert_eq!(wait_count(base, &index, want + 1, 2), want);
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
            &base,
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
    // killed mid-stream several times: documents already stored are sent again on restart
    for wait in [700u64, 400, 900, 300, 600] {
        let mut child = spawn();
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut child = spawn();
    let n = wait_count(&base, &index, total as u64, 60);
    std::thread::sleep(Duration::from_secs(1));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        wait_count(&base, &index, total as u64 + 1, 1),
        total as u64,
        "exactly once per line (got {n} while catching up)"
    );
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
    assert!(dead[0]["reason"].as_str().unwrap().contains("injected_400"));
    let cp = h.checkpoint();
    assert_eq!(
        cp["sinks"]["elasticsearch-1"]["dead_lettered"],
        refused as u64
    );
}
