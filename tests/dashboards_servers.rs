//! The dashboards' numbers, proven against the real servers of tests/servers/up.sh: a mail
//! work folder made by examples/gen_flow.rs (coherent journeys, with `expected.json`, the
//! counts of the generator's own choices, and `journeys.json`) is shipped by
//! `epost-shipper backfill` to Elasticsearch, OpenSearch or VictoriaLogs (Loki push), and every
//! panel of deploy/dashboards/catalog.json is run there: its `_search` body, or its LogsQL.
//! Each answer must equal the generator's counts and `epost-shipper report --json` on the
//! same folder (the panel's `report` key names which part).
//!
//! Each test uses its own namespace (data streams `logs-epost.<kind>-<ns>`, the panels'
//! `logs-epost.*` becomes `logs-epost.*-<ns>`) or Loki `job` (`{job="epost"}` becomes
//! `{job="<ns>"}`), so parallel and earlier runs cannot make a test pass. Ranked panels are
//! run twice: as written (their top 10 must be the top of the expected list; ties at the cut
//! may pick other keys with the same count) and with the limit lifted (the whole list must be
//! equal, key by key).
//!
//! Under CI a missing server fails (tests/common/mod.rs `real_server`).

mod common;
mod dash;
#[path = "../examples/gen_flow.rs"]
#[allow(dead_code)]
mod gen_flow;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The generated folder: messages, seed, days.
const GENERATED: (u64, u64, u32) = (300, 16, 2);

struct Folder {
    _dir: tempfile::TempDir,
    mail: PathBuf,
    state: PathBuf,
    expected: Value,
    journeys: Value,
}

fn generate() -> Folder {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let (messages, seed, days) = GENERATED;
    let received = gen_flow::generate(&mail, messages, seed, days, false);
    assert!(received > messages / 2, "{received} received");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(mail.join(name)).unwrap()).unwrap()
    };
    Folder {
        expected: read("expected.json"),
        journeys: read("journeys.json"),
        state: dir.path().join("state"),
        mail,
        _dir: dir,
    }
}

/// Ships the folder with `backfill` (which exits once every record is acknowledged).
fn ship(f: &Folder, sink: &str) {
    let cfg = f.mail.parent().unwrap().join("shipper.toml");
    let text = format!(
        "[source]\nworkdir = '{}'\ntimezone = \"Asia/Tokyo\"\nignore_older_than = \"36500d\"\n\
         state_dir = '{}'\n\n[metrics]\nlisten = \"\"\n\n{sink}\n",
        f.mail.display(),
        f.state.display()
    );
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .args(["backfill", "--log-level", "warn", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "backfill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn records(expected: &Value) -> u64 {
    expected["records_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

/// `report --json` on the folder; it must agree with the generator on every key the panels
/// compare.
fn check_report(f: &Folder) {
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .args(["report", "--json"])
        .arg(&f.mail)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "report --json: {err}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("report --json is JSON");
    for p in dash::panels(&dash::catalog()) {
        let Some(key) = p["report"].as_str() else {
            continue;
        };
        let key = key.split(['.', '[']).next().unwrap();
        assert_eq!(
            report[key], f.expected[key],
            "report --json .{key} vs expected.json"
        );
    }
}

/// The event ids of the records `trace --json ID` prints that carry that id (trace adds the
/// session's receivelog and acceptlog lines, which carry none).
fn trace_ids(f: &Folder, id: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .args(["trace", "--json", id])
        .arg(&f.mail)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["email"]["local_id"] == id)
        .map(|r| r["event"]["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!ids.is_empty(), "trace found nothing for {id}");
    ids
}

// ---------------------------------------------------------------------------------------
// The backends: what a panel answers
// ---------------------------------------------------------------------------------------

trait Backend {
    fn name(&self) -> &str;
    /// totals panel: name → count
    fn totals(&self, p: &Value) -> BTreeMap<String, u64>;
    /// ranked panel, in the order answered; `all` lifts the panel's limit
    fn ranked(&self, p: &Value, all: bool) -> Vec<(String, u64)>;
    /// histogram panel: (hour start, unix seconds; kind) → count
    fn per_hour(&self, p: &Value) -> BTreeMap<(i64, String), u64>;
    /// list panel: (kind, local id, event id) of each record, `$local_id` replaced
    fn list(&self, p: &Value, local_id: &str) -> Vec<(String, String, String)>;
}

struct Es {
    name: &'static str,
    base: String,
    ns: String,
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

impl Es {
    fn search(&self, p: &Value, body: &Value) -> Value {
        let index = format!("{}-{}", p["es"]["index"].as_str().unwrap(), self.ns);
        let r: Value = http()
            .post(format!("{}/{index}/_search", self.base))
            .json(body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(r["error"].is_null(), "{} {}: {r}", self.name, p["id"]);
        r
    }
    fn wait(&self, want: u64) {
        let start = Instant::now();
        loop {
            let _ = http()
                .post(format!("{}/logs-epost.*-{}/_refresh", self.base, self.ns))
                .send();
            let r: Value = http()
                .post(format!("{}/logs-epost.*-{}/_count", self.base, self.ns))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let n = r["count"].as_u64();
            if n == Some(want) || start.elapsed() > Duration::from_secs(60) {
                assert_eq!(n, Some(want), "{}: every record stored: {r}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn substitute(v: &Value, local_id: &str) -> Value {
    serde_json::from_str(&v.to_string().replace("$local_id", local_id)).unwrap()
}

impl Backend for Es {
    fn name(&self) -> &str {
        self.name
    }
    fn totals(&self, p: &Value) -> BTreeMap<String, u64> {
        let r = self.search(p, &p["es"]["body"]);
        r["aggregations"]["totals"]["buckets"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, b)| (k.clone(), b["doc_count"].as_u64().unwrap()))
            .collect()
    }
    fn ranked(&self, p: &Value, all: bool) -> Vec<(String, u64)> {
        let mut body = p["es"]["body"].clone();
        let name = body["aggs"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        if all {
            body["aggs"][&name]["terms"]["size"] = json!(10_000);
        }
        let r = self.search(p, &body);
        let agg = &r["aggregations"][&name];
        // (a top 10 of many tied keys has a non-zero error bound: shards return only their
        // top; the counts of the keys returned are compared all the same)
        if all {
            assert_eq!(
                agg["doc_count_error_upper_bound"], 0,
                "{}: exact counts",
                p["id"]
            );
            assert_eq!(agg["sum_other_doc_count"], 0, "{}: every key", p["id"]);
        }
        agg["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["key"].as_str().unwrap().to_string(),
                    b["doc_count"].as_u64().unwrap(),
                )
            })
            .collect()
    }
    fn per_hour(&self, p: &Value) -> BTreeMap<(i64, String), u64> {
        let r = self.search(p, &p["es"]["body"]);
        let mut out = BTreeMap::new();
        for h in r["aggregations"]["per_hour"]["buckets"].as_array().unwrap() {
            let t = h["key"].as_i64().unwrap() / 1000;
            assert_eq!(h["by_kind"]["sum_other_doc_count"], 0);
            for k in h["by_kind"]["buckets"].as_array().unwrap() {
                let kind = k["key"].as_str().unwrap().to_string();
                out.insert((t, kind), k["doc_count"].as_u64().unwrap());
            }
        }
        out
    }
    fn list(&self, p: &Value, local_id: &str) -> Vec<(String, String, String)> {
        let r = self.search(p, &substitute(&p["es"]["body"], local_id));
        let hits = r["hits"]["hits"].as_array().unwrap();
        assert_eq!(
            r["hits"]["total"]["value"].as_u64(),
            Some(hits.len() as u64),
            "{}: all hits",
            p["id"]
        );
        hits.iter()
            .map(|h| {
                let s = &h["_source"];
                let kind = s["epost"]["log"].as_str().unwrap().to_string();
                let id = s["email"]["local_id"].as_str().unwrap_or("").to_string();
                (kind, id, s["event"]["id"].as_str().unwrap().to_string())
            })
            .collect()
    }
}

struct Vl {
    base: String,
    job: String,
}

impl Vl {
    fn query(&self, p: &Value, q: &str) -> Vec<Value> {
        assert!(
            q.contains("job=\"epost\""),
            "{}: the stream selector",
            p["id"]
        );
        let q = q.replace("job=\"epost\"", &format!("job=\"{}\"", self.job));
        let r = http()
            .get(format!("{}/select/logsql/query", self.base))
            .query(&[("query", q.as_str())])
            .send()
            .unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "{}: {q}: {text}", p["id"]);
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    fn wait(&self, want: u64) {
        let start = Instant::now();
        let p = json!({"id": "count"});
        loop {
            let rows = self.query(&p, "{job=\"epost\"} | stats count() as n");
            let n = rows
                .first()
                .and_then(|r| r["n"].as_str()?.parse::<u64>().ok());
            if n == Some(want) || start.elapsed() > Duration::from_secs(60) {
                assert_eq!(n, Some(want), "VictoriaLogs: every record stored");
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn num(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or_else(|| panic!("not a count: {v}"))
}

impl Backend for Vl {
    fn name(&self) -> &str {
        "VictoriaLogs"
    }
    fn totals(&self, p: &Value) -> BTreeMap<String, u64> {
        let rows = self.query(p, p["logsql"].as_str().unwrap());
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), num(v)))
            .collect()
    }
    fn ranked(&self, p: &Value, all: bool) -> Vec<(String, u64)> {
        let mut q = p["logsql"].as_str().unwrap().to_string();
        assert!(q.ends_with("| limit 10"), "{}: a top 10", p["id"]);
        if all {
            q = q.replace("| limit 10", "| limit 100000");
        }
        let key = q
            .split("stats by (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap()
            .to_string();
        self.query(p, &q)
            .iter()
            .map(|r| (r[&key].as_str().unwrap().to_string(), num(&r["n"])))
            .collect()
    }
    fn per_hour(&self, p: &Value) -> BTreeMap<(i64, String), u64> {
        self.query(p, p["logsql"].as_str().unwrap())
            .iter()
            .map(|r| {
                let t = chrono::DateTime::parse_from_rfc3339(r["_time"].as_str().unwrap()).unwrap();
                (
                    (t.timestamp(), r["log"].as_str().unwrap().to_string()),
                    num(&r["n"]),
                )
            })
            .collect()
    }
    fn list(&self, p: &Value, local_id: &str) -> Vec<(String, String, String)> {
        let q = p["logsql"].as_str().unwrap().replace("$local_id", local_id);
        self.query(p, &q)
            .iter()
            .map(|r| {
                let kind = r["log"].as_str().unwrap().to_string();
                let id = r["local_id"].as_str().unwrap_or("").to_string();
                (kind, id, r["event_id"].as_str().unwrap().to_string())
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The checks, the same for every backend
// ---------------------------------------------------------------------------------------

fn ranked_list(v: &Value) -> Vec<(String, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The panel as written: its top 10 is the expected list's top (keys may differ where the
/// counts tie at the cut); with the limit lifted, the whole list, key by key.
fn check_ranked(b: &dyn Backend, p: &Value, want: &[(String, u64)]) {
    let id = p["id"].as_str().unwrap();
    assert!(!want.is_empty(), "{id}: the generator made no such records");
    let wmap: HashMap<&str, u64> = want.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    let all = b.ranked(p, true);
    let amap: BTreeMap<&str, u64> = all.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    assert_eq!(amap.len(), all.len(), "{} {id}: a key twice", b.name());
    let wsorted: BTreeMap<&str, u64> = wmap.iter().map(|(k, c)| (*k, *c)).collect();
    assert_eq!(amap, wsorted, "{} {id}: every key and count", b.name());
    let top = b.ranked(p, false);
    let n = want.len().min(10);
    assert_eq!(top.len(), n, "{} {id}: the top {n}", b.name());
    for (k, c) in &top {
        assert_eq!(wmap.get(k.as_str()), Some(c), "{} {id}: {k}", b.name());
    }
    let counts: Vec<u64> = top.iter().map(|(_, c)| *c).collect();
    let wcounts: Vec<u64> = want[..n].iter().map(|(_, c)| *c).collect();
    assert_eq!(counts, wcounts, "{} {id}: sorted by count", b.name());
}

fn expected_per_hour(expected: &Value) -> BTreeMap<(i64, String), u64> {
    let mut out = BTreeMap::new();
    for h in expected["per_hour"].as_array().unwrap() {
        let t = chrono::DateTime::parse_from_rfc3339(h["hour"].as_str().unwrap()).unwrap();
        for (kind, n) in h["records"].as_object().unwrap() {
            out.insert((t.timestamp(), kind.clone()), n.as_u64().unwrap());
        }
    }
    out
}

/// The journey panel for a few messages: the kinds their records come from (receivelog
/// lines carry the session handle, not the id: the `trace` command joins them, a panel
/// cannot), and one delivery or failure record per recipient.
fn check_journeys(b: &dyn Backend, p: &Value, f: &Folder) {
    let all = f.journeys["messages"].as_array().unwrap();
    let pick = [
        all.iter()
            .find(|j| j["failures"].as_array().is_some_and(|f| !f.is_empty())),
        all.iter().find(|j| !j["quarantined"].is_null()),
        all.iter()
            .find(|j| j["deliveries"].as_array().is_some_and(|d| d.len() > 1)),
    ];
    for j in pick
        .into_iter()
        .map(|j| j.expect("the generator made such a message"))
    {
        let id = j["id"].as_str().unwrap();
        let got = b.list(p, id);
        assert!(
            got.iter().all(|(_, l, _)| l == id),
            "{} journey {id}: {got:?}",
            b.name()
        );
        // exactly the records `trace --json` finds with that id
        let events: BTreeSet<&str> = got.iter().map(|(_, _, e)| e.as_str()).collect();
        assert_eq!(
            events.len(),
            got.len(),
            "{} journey {id}: a record twice",
            b.name()
        );
        let traced = trace_ids(f, id);
        let traced: BTreeSet<&str> = traced.iter().map(String::as_str).collect();
        assert_eq!(events, traced, "{} journey {id} vs trace --json", b.name());
        let kinds: BTreeSet<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
        let mut want: BTreeSet<&str> = j["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        want.remove("receivelog");
        for d in j["deliveries"].as_array().unwrap() {
            want.insert(d["kind"].as_str().unwrap());
        }
        if !j["failures"].as_array().unwrap().is_empty() {
            want.insert("faillog");
        }
        assert_eq!(kinds, want, "{} journey {id}", b.name());
        let ends = got
            .iter()
            .filter(|(k, _, _)| matches!(k.as_str(), "outlog" | "outlocallog" | "faillog"))
            .count();
        let recipients =
            j["deliveries"].as_array().unwrap().len() + j["failures"].as_array().unwrap().len();
        assert_eq!(
            ends,
            recipients,
            "{} journey {id}: a delivery or failure per recipient",
            b.name()
        );
    }
}

fn check_quarantine(b: &dyn Backend, p: &Value, f: &Folder) {
    let got = b.list(p, "");
    let want: BTreeSet<&str> = f.journeys["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| !j["quarantined"].is_null())
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got.len() as u64,
        f.expected["records_by_kind"]["viruslog"].as_u64().unwrap()
    );
    let ids: BTreeSet<&str> = got.iter().map(|(_, l, _)| l.as_str()).collect();
    assert_eq!(ids, want, "{}: the quarantined messages", b.name());
    assert!(got.iter().all(|(k, _, _)| k == "viruslog"));
}

fn check_panels(b: &dyn Backend, f: &Folder) {
    let c = dash::catalog();
    let mut checked = Vec::new();
    for p in dash::panels(&c) {
        let id = p["id"].as_str().unwrap();
        match p["kind"].as_str().unwrap() {
            "totals" => {
                let want: BTreeMap<String, u64> = f.expected["totals"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                    .collect();
                assert_eq!(b.totals(p), want, "{} totals", b.name());
            }
            "ranked" => check_ranked(
                b,
                p,
                &ranked_list(&f.expected[p["report"].as_str().unwrap()]),
            ),
            "histogram" => assert_eq!(
                b.per_hour(p),
                expected_per_hour(&f.expected),
                "{} {id}",
                b.name()
            ),
            _ if id == "journey" => check_journeys(b, p, f),
            _ if id == "quarantine" => check_quarantine(b, p, f),
            other => panic!("{id}: a panel kind this test does not check: {other}"),
        }
        checked.push(id);
    }
    assert_eq!(checked.len(), dash::panels(&c).len());
    eprintln!(
        "{}: {} panels equal report --json and the generator's counts: {checked:?}",
        b.name(),
        checked.len()
    );
}

fn es_backend(var: &str, name: &'static str) {
    let Some(base) = common::real_server(var) else {
        return;
    };
    let f = generate();
    check_report(&f);
    let ns = common::unique();
    ship(
        &f,
        &format!(
            "[[sink]]\ntype = \"elasticsearch\"\nurl = \"{base}\"\nnamespace = \"{ns}\"\nrequest_timeout = \"120s\""
        ),
    );
    let b = Es { name, base, ns };
    b.wait(records(&f.expected));
    check_panels(&b, &f);
}

#[test]
fn elasticsearch_panels_equal_the_report_and_the_generator() {
    es_backend("EPOST_TEST_ELASTICSEARCH", "Elasticsearch");
}

#[test]
fn opensearch_panels_equal_the_report_and_the_generator() {
    es_backend("EPOST_TEST_OPENSEARCH", "OpenSearch");
}

#[test]
fn victorialogs_logsql_panels_equal_the_report_and_the_generator() {
    let Some(base) = common::real_server("EPOST_TEST_LOKI") else {
        return;
    };
    let push = std::env::var("EPOST_TEST_LOKI_PUSH_PATH")
        .unwrap_or_else(|_| "/insert/loki/api/v1/push".into());
    let f = generate();
    check_report(&f);
    let job = common::unique();
    ship(
        &f,
        &format!(
            "[[sink]]\ntype = \"loki\"\nurl = \"{base}\"\npush_path = \"{push}\"\njob = \"{job}\""
        ),
    );
    let b = Vl { base, job };
    b.wait(records(&f.expected));
    check_panels(&b, &f);
}
