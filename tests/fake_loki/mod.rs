//! An in-process Loki push endpoint that keeps Loki's rules, so that tests can count exactly:
//!
//! - two entries of a stream with the same timestamp and the same line are one entry (a
//!   replay is absorbed, counted in `duplicates`);
//! - `reject_older_than`: entries older than this are refused by the "distributor" with
//!   Loki's `greater_than_max_sample_age` message;
//! - `max_behind`: entries further behind the stream's newest entry than this are refused by
//!   the "ingester" with Loki's `too_far_behind` message;
//! - `refuse`: any other per-entry refusal, with the reason given;
//! - `no_metadata`: streams with structured metadata are refused (Loki before 3.0);
//!
//! and a push with refused entries stores the others and answers 400 naming the refused ones,
//! as Loki does. Whole-request faults (statuses, dropped connections before or after storing)
//! come from `fault`, numbered over the pushes that carry entries (the sink's empty start-up
//! push is answered without faults). Protobuf + snappy and JSON (+ gzip) bodies are both read.
//! A handler of `common::http_fake` (hyper), like every fake HTTP server of the tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::http_fake::{Answer, HttpFake, Options, Request};

use epost_shipper::sink::loki::encode::parse_labels;
use epost_shipper::sink::loki::proto;
use prost::Message;

/// What to do with one push request (numbered from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer with this status, store nothing.
    Status(u16),
    /// Close the connection without answering, store nothing.
    Drop,
    /// Store, then close the connection without answering (the answer is lost).
    DropAfterStore,
}

pub type RefusePolicy = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;
pub type FaultPolicy = Box<dyn Fn(u64) -> Fault + Send + Sync>;

#[derive(Default)]
pub struct Rules {
    pub reject_older_than: Option<i64>,
    pub max_behind: Option<i64>,
    /// Per entry line: `Some(reason)` refuses it.
    pub refuse: Option<RefusePolicy>,
    /// Like a Loki with `allow_structured_metadata: false`: a stream with any is refused.
    pub no_metadata: bool,
    pub fault: Option<FaultPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub labels: BTreeMap<String, String>,
    pub ts: i64,
    pub line: String,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Default)]
struct Stream {
    /// (timestamp, line) -> metadata
    entries: BTreeMap<(i64, String), BTreeMap<String, String>>,
    newest: i64,
}

#[derive(Default)]
pub struct State {
    streams: Mutex<HashMap<BTreeMap<String, String>, Stream>>,
    pub requests: AtomicU64,
    pub duplicates: AtomicU64,
    pub refused: AtomicU64,
    /// Pushes in which a stream's entries were not in timestamp order.
    pub unordered: AtomicU64,
    /// (authorization, X-Scope-OrgID, content-type, content-encoding) of every push.
    pub headers: Mutex<Vec<[Option<String>; 4]>>,
}

pub struct FakeLoki {
    pub url: String,
    pub state: Arc<State>,
    http: HttpFake,
}

impl FakeLoki {
    pub fn start(rules: Rules) -> FakeLoki {
        Self::start_with(rules, None)
    }

    /// Over TLS with this server configuration (`https://127.0.0.1:<port>`).
    pub fn start_tls(rules: Rules, tls: Arc<rustls::ServerConfig>) -> FakeLoki {
        Self::start_with(rules, Some(tls))
    }

    fn start_with(rules: Rules, tls: Option<Arc<rustls::ServerConfig>>) -> FakeLoki {
        let state = Arc::new(State::default());
        let st = state.clone();
        let opts = Options {
            tls,
            record: false,
            ..Options::default()
        };
        let http = HttpFake::start_with(opts, move |r| serve(r, &st, &rules));
        FakeLoki {
            url: http.url.clone(),
            state,
            http,
        }
    }

    /// Entries stored (after collapsing exact duplicates).
    pub fn count(&self) -> usize {
        let s = self.state.streams.lock().unwrap();
        s.values().map(|s| s.entries.len()).sum()
    }

    pub fn entries(&self) -> Vec<Stored> {
        let s = self.state.streams.lock().unwrap();
        let mut out = Vec::new();
        for (labels, st) in s.iter() {
            for ((ts, line), meta) in &st.entries {
                out.push(Stored {
                    labels: labels.clone(),
                    ts: *ts,
                    line: line.clone(),
                    metadata: meta.clone(),
                });
            }
        }
        out.sort_by(|a, b| (&a.labels, a.ts).cmp(&(&b.labels, b.ts)));
        out
    }

    pub fn n(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

fn serve(r: &Request, st: &State, rules: &Rules) -> Answer {
    if r.method == "POST" && r.path.ends_with("/push") {
        st.headers.lock().unwrap().push(
            [
                "authorization",
                "x-scope-orgid",
                "content-type",
                "content-encoding",
            ]
            .map(|h| r.header(h).map(str::to_string)),
        );
        match decode(r) {
            Err(e) => Answer::text(400, e),
            // the sink's start-up check: answered, not counted, no faults
            Ok(streams) if streams.iter().all(|s| s.1.is_empty()) => Answer::text(204, ""),
            Ok(streams) => {
                let n = st.requests.fetch_add(1, Ordering::SeqCst) + 1;
                match rules.fault.as_ref().map_or(Fault::None, |f| f(n)) {
                    Fault::Drop => Answer::close(),
                    Fault::Status(s) => Answer::text(s, format!("injected {s}")),
                    Fault::None => {
                        let (s, reply) = push(st, rules, streams);
                        Answer::text(s, reply)
                    }
                    Fault::DropAfterStore => {
                        push(st, rules, streams);
                        Answer::close()
                    }
                }
            }
        }
    } else if r.path.starts_with("/loki/api/v1/status/buildinfo") {
        Answer::text(200, "{\"version\":\"3.9.9-fake\"}")
    } else if r.path.starts_with("/ready") {
        Answer::text(200, "ready")
    } else {
        Answer::text(404, "404 page not found")
    }
}

type Streams = Vec<(
    BTreeMap<String, String>,
    Vec<(i64, String, BTreeMap<String, String>)>,
)>;

fn decode(r: &Request) -> Result<Streams, String> {
    if r.header("content-type").unwrap_or("").contains("protobuf") {
        let raw = r.unsnappy()?;
        let req = proto::PushRequest::decode(&raw[..]).map_err(|e| format!("protobuf: {e}"))?;
        Ok(req
            .streams
            .into_iter()
            .map(|s| {
                let labels: BTreeMap<String, String> =
                    parse_labels(&s.labels).into_iter().collect();
                let entries = s
                    .entries
                    .into_iter()
                    .map(|e| {
                        (
                            e.timestamp.map_or(0, |t| t.nanos()),
                            e.line,
                            e.structured_metadata
                                .into_iter()
                                .map(|p| (p.name, p.value))
                                .collect(),
                        )
                    })
                    .collect();
                (labels, entries)
            })
            .collect())
    } else {
        let v: serde_json::Value =
            serde_json::from_slice(&r.decoded()?).map_err(|e| format!("json: {e}"))?;
        let mut out = Vec::new();
        for s in v["streams"].as_array().ok_or("no streams")? {
            let labels: BTreeMap<String, String> = s["stream"]
                .as_object()
                .ok_or("no stream")?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            let mut entries = Vec::new();
            for e in s["values"].as_array().ok_or("no values")? {
                let ts: i64 = e[0]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or("bad timestamp")?;
                let line = e[1].as_str().ok_or("bad line")?.to_string();
                let meta = e[2]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                entries.push((ts, line, meta));
            }
            out.push((labels, entries));
        }
        Ok(out)
    }
}

fn label_text(l: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `time.Time.String()` for a UTC time.
pub fn go_time(ns: i64) -> String {
    let (s, n) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let d = chrono::DateTime::from_timestamp(s, 0).unwrap();
    let mut t = d.format("%Y-%m-%d %H:%M:%S").to_string();
    if n > 0 {
        let frac = format!("{n:09}");
        t.push('.');
        t.push_str(frac.trim_end_matches('0'));
    }
    t.push_str(" +0000 UTC");
    t
}

fn rfc3339_secs(ns: i64) -> String {
    chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn push(st: &State, rules: &Rules, streams: Streams) -> (u16, String) {
    let mut errors: Vec<String> = Vec::new();
    let mut all = st.streams.lock().unwrap();
    for (labels, entries) in streams {
        if entries.windows(2).any(|w| w[1].0 < w[0].0) {
            st.unordered.fetch_add(1, Ordering::SeqCst);
        }
        let text = label_text(&labels);
        if rules.no_metadata && entries.iter().any(|e| !e.2.is_empty()) {
            errors.push(format!(
                "stream '{text}' includes structured metadata, but this feature is disallowed. Please see `limits_config.structured_metadata` or contact your Loki administrator to enable it."
            ));
            st.refused.fetch_add(entries.len() as u64, Ordering::SeqCst);
            continue;
        }
        let stream = all.entry(labels).or_default();
        let total = entries.len();
        let mut behind = Vec::new();
        for (ts, line, meta) in entries {
            if let Some(cut) = rules.reject_older_than
                && ts < cut
            {
                errors.push(format!(
                    "entry for stream '{text}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                    go_time(ts),
                    go_time(cut)
                ));
                st.refused.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if let Some(reason) = rules.refuse.as_ref().and_then(|f| f(&line)) {
                errors.push(reason);
                st.refused.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if let Some(w) = rules.max_behind
                && !stream.entries.is_empty()
                && ts < stream.newest - w
            {
                behind.push(format!(
                    "entry with timestamp {} ignored, reason: 'entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}',",
                    go_time(ts),
                    rfc3339_secs(ts),
                    rfc3339_secs(stream.newest - w)
                ));
                st.refused.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if stream.entries.contains_key(&(ts, line.clone())) {
                st.duplicates.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            stream.newest = stream.newest.max(ts);
            stream.entries.insert((ts, line), meta);
        }
        if !behind.is_empty() {
            let n = behind.len();
            // Loki lists at most 10 (max_returned_errors) and then counts
            behind.truncate(10);
            errors.extend(behind);
            errors.push(format!(
                "user 'fake', total ignored: {n} out of {total} for stream: {text}"
            ));
        }
    }
    if errors.is_empty() {
        (204, String::new())
    } else {
        (400, errors.join("\n"))
    }
}
