//! An in-process Elasticsearch `_bulk` endpoint with fault injection: whole-request errors,
//! per-item errors, dropped connections, slow or endless answers and a proxy's body limit.
//! It stores documents by `_id` like the real thing (`create` answers 409 for an existing
//! id), and it also keeps every item the shipper SENT (`sent`), with its answer: an index
//! that drops re-sent ids by itself cannot show a re-send, the list of items sent can.
//!
//! `FakeEs::proxy(upstream)` puts the same recorder in front of a real server: every request
//! is forwarded, and the items of each `_bulk` are kept with the server's answer.
//!
//! A handler of `common::http_fake` (hyper), like every fake HTTP server of the tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http_fake::{Answer, HttpFake, Options, Request};

/// What to do with one `_bulk` request.
pub enum Whole {
    /// Process the items.
    Items,
    /// Answer the whole request with this status (nothing stored).
    Status(u16),
    /// Close the connection without answering (nothing stored).
    Drop,
    /// Process the items but answer only after this long.
    Slow(Duration),
}

pub type Policy = Box<dyn Fn(u64) -> Whole + Send + Sync>;
/// Per item: `Some(status)` to refuse it (429, 503, 400...), `None` to process it.
pub type ItemPolicy = Box<dyn Fn(&str, u64) -> Option<u16> + Send + Sync>;
/// Before anything else, for any request: `Some(answer)` answers it so (nothing stored; the
/// items of a `_bulk` are kept in `sent` with status 0).
pub type Override = Box<dyn Fn(&Request) -> Option<Answer> + Send + Sync>;

/// One item of a `_bulk` request as the shipper sent it, and what it was answered.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The number of the `_bulk` request (1-based).
    pub request: u64,
    pub id: String,
    pub doc: String,
    /// The item's status (201, 409, 429...), or 0 when the whole request was refused,
    /// dropped or not answered (nothing stored).
    pub status: u16,
}

/// How `FakeEs::start_opts` behaves; `Default` is a well-behaved server.
pub struct EsOptions {
    pub whole: Policy,
    pub item: ItemPolicy,
    pub answer: Option<Override>,
    /// a proxy's limit on request bodies (413 above it)
    pub body_limit: Option<usize>,
}

impl Default for EsOptions {
    fn default() -> EsOptions {
        EsOptions {
            whole: Box::new(|_| Whole::Items),
            item: Box::new(|_, _| None),
            answer: None,
            body_limit: None,
        }
    }
}

pub struct FakeEs {
    pub url: String,
    pub docs: Arc<Mutex<HashMap<String, String>>>,
    /// `_bulk` requests that reached the fake (not those refused for their size)
    pub requests: Arc<AtomicU64>,
    pub item_errors: Arc<AtomicU64>,
    pub conflicts: Arc<AtomicU64>,
    pub sent: Arc<Mutex<Vec<Sent>>>,
    pub http: HttpFake,
}

struct Shared {
    docs: Arc<Mutex<HashMap<String, String>>>,
    requests: Arc<AtomicU64>,
    item_errors: Arc<AtomicU64>,
    conflicts: Arc<AtomicU64>,
    sent: Arc<Mutex<Vec<Sent>>>,
    opts: EsOptions,
    upstream: Option<String>,
}

impl FakeEs {
    pub fn start(whole: Policy, item: ItemPolicy) -> FakeEs {
        Self::start_opts(EsOptions {
            whole,
            item,
            ..EsOptions::default()
        })
    }

    pub fn start_opts(opts: EsOptions) -> FakeEs {
        Self::start_with(opts, None)
    }

    /// A recorder in front of the real server at `upstream`.
    pub fn proxy(upstream: &str) -> FakeEs {
        Self::start_with(
            EsOptions::default(),
            Some(upstream.trim_end_matches('/').to_string()),
        )
    }

    fn start_with(opts: EsOptions, upstream: Option<String>) -> FakeEs {
        let http_opts = Options {
            body_limit: opts.body_limit,
            record: false,
            ..Options::default()
        };
        let shared = Arc::new(Shared {
            docs: Arc::new(Mutex::new(HashMap::new())),
            requests: Arc::new(AtomicU64::new(0)),
            item_errors: Arc::new(AtomicU64::new(0)),
            conflicts: Arc::new(AtomicU64::new(0)),
            sent: Arc::new(Mutex::new(Vec::new())),
            opts,
            upstream,
        });
        let st = shared.clone();
        let http = HttpFake::start_with(http_opts, move |r| serve(r, &st));
        FakeEs {
            url: http.url.clone(),
            docs: shared.docs.clone(),
            requests: shared.requests.clone(),
            item_errors: shared.item_errors.clone(),
            conflicts: shared.conflicts.clone(),
            sent: shared.sent.clone(),
            http,
        }
    }

    pub fn count(&self) -> usize {
        self.docs.lock().unwrap().len()
    }

    /// Every item sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// How many items were sent with this answer.
    pub fn sent_with(&self, status: u16) -> usize {
        self.sent().iter().filter(|s| s.status == status).count()
    }

    /// The `message` of every document stored.
    pub fn messages(&self) -> Vec<String> {
        self.docs
            .lock()
            .unwrap()
            .values()
            .map(|d| {
                let v: serde_json::Value = serde_json::from_str(d).unwrap();
                v["message"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

fn serve(r: &Request, st: &Shared) -> Answer {
    let Ok(body) = r.decoded() else {
        return Answer::json(400, "{\"error\":\"bad gzip\"}");
    };
    let is_bulk = r.path.starts_with("/_bulk");
    let n = is_bulk.then(|| st.requests.fetch_add(1, Ordering::SeqCst) + 1);
    if let Some(a) = st.opts.answer.as_ref().and_then(|f| f(r)) {
        if let Some(n) = n {
            record_refused(&body, n, st);
        }
        return a;
    }
    if let Some(up) = &st.upstream {
        let ctype = r.header("content-type").unwrap_or("application/json");
        let (status, reply) = forward(up, &r.method, &r.path, ctype, body.to_vec());
        if let Some(n) = n {
            record_answer(&body, n, status, &reply, st);
        }
        return Answer::json(status, reply);
    }
    let Some(n) = n else {
        return if r.path.starts_with("/_index_template") {
            Answer::json(200, "{\"acknowledged\":true}")
        } else {
            Answer::json(200, "{\"version\":{\"number\":\"8.99.0-fake\"}}")
        };
    };
    match (st.opts.whole)(n) {
        Whole::Drop => {
            record_refused(&body, n, st);
            Answer::close()
        }
        Whole::Status(s) => {
            record_refused(&body, n, st);
            Answer::json(s, format!("{{\"error\":\"injected {s}\"}}"))
        }
        Whole::Items => Answer::json(200, bulk(&body, n, st)),
        Whole::Slow(d) => Answer::json(200, bulk(&body, n, st)).delay(d),
    }
}

/// The (id, document) pairs of a `_bulk` body.
fn items(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let mut lines = text.lines();
    let mut out = Vec::new();
    while let (Some(action), Some(doc)) = (lines.next(), lines.next()) {
        let a: serde_json::Value = serde_json::from_str(action).unwrap();
        let id = a["create"]["_id"].as_str().unwrap().to_string();
        out.push((id, doc.to_string()));
    }
    out
}

fn record_refused(body: &[u8], request: u64, st: &Shared) {
    let mut sent = st.sent.lock().unwrap();
    for (id, doc) in items(body) {
        sent.push(Sent {
            request,
            id,
            doc,
            status: 0,
        });
    }
}

/// The real server's answer to a forwarded `_bulk`, item by item.
fn record_answer(body: &[u8], request: u64, status: u16, reply: &str, st: &Shared) {
    let answer: serde_json::Value = serde_json::from_str(reply).unwrap_or_default();
    let mut sent = st.sent.lock().unwrap();
    for (i, (id, doc)) in items(body).into_iter().enumerate() {
        let s = if status == 200 {
            answer["items"][i]["create"]["status"].as_u64().unwrap_or(0) as u16
        } else {
            0
        };
        match s {
            201 => {
                st.docs.lock().unwrap().insert(id.clone(), doc.clone());
            }
            409 => {
                st.conflicts.fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                st.item_errors.fetch_add(1, Ordering::SeqCst);
            }
        }
        sent.push(Sent {
            request,
            id,
            doc,
            status: s,
        });
    }
}

fn forward(up: &str, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let client = reqwest::blocking::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    match client
        .request(method, format!("{up}{path}"))
        .header("content-type", content_type)
        .body(body)
        .send()
    {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (502, format!("{{\"error\":\"proxy: {e}\"}}")),
    }
}

fn bulk(body: &[u8], request: u64, st: &Shared) -> String {
    let mut items_out = Vec::new();
    let mut errors = false;
    for (id, doc) in items(body) {
        let status = match (st.opts.item)(&id, request) {
            Some(s) => {
                st.item_errors.fetch_add(1, Ordering::SeqCst);
                s
            }
            None => {
                let mut d = st.docs.lock().unwrap();
                if d.contains_key(&id) {
                    st.conflicts.fetch_add(1, Ordering::SeqCst);
                    409
                } else {
                    d.insert(id.clone(), doc.clone());
                    201
                }
            }
        };
        st.sent.lock().unwrap().push(Sent {
            request,
            id: id.clone(),
            doc,
            status,
        });
        if status >= 300 {
            errors = true;
            items_out.push(format!(
                "{{\"create\":{{\"status\":{status},\"error\":{{\"type\":\"injected_{status}\",\"reason\":\"injected for id {id}\"}}}}}}"
            ));
        } else {
            items_out.push(format!("{{\"create\":{{\"status\":{status}}}}}"));
        }
    }
    format!(
        "{{\"errors\":{errors},\"items\":[{}]}}",
        items_out.join(",")
    )
}
