//! An in-process Elasticsearch `_bulk` endpoint with fault injection: whole-request errors,
//! per-item errors, dropped connections and slow answers. It stores documents by `_id` like
//! the real thing (`create` answers 409 for an existing id), and it also keeps every item the
//! shipper SENT (`sent`), with its answer: an index that drops re-sent ids by itself cannot
//! show a re-send, the list of items sent can.
//!
//! `FakeEs::proxy(upstream)` puts the same recorder in front of a real server: every request
//! is forwarded, and the items of each `_bulk` are kept with the server's answer.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

pub struct FakeEs {
    pub url: String,
    pub docs: Arc<Mutex<HashMap<String, String>>>,
    pub requests: Arc<AtomicU64>,
    pub item_errors: Arc<AtomicU64>,
    pub conflicts: Arc<AtomicU64>,
    pub sent: Arc<Mutex<Vec<Sent>>>,
}

struct Shared {
    docs: Arc<Mutex<HashMap<String, String>>>,
    requests: Arc<AtomicU64>,
    item_errors: Arc<AtomicU64>,
    conflicts: Arc<AtomicU64>,
    sent: Arc<Mutex<Vec<Sent>>>,
    whole: Policy,
    item: ItemPolicy,
    upstream: Option<String>,
}

impl FakeEs {
    pub fn start(whole: Policy, item: ItemPolicy) -> FakeEs {
        Self::start_with(whole, item, None)
    }

    /// A recorder in front of the real server at `upstream`.
    pub fn proxy(upstream: &str) -> FakeEs {
        Self::start_with(
            Box::new(|_| Whole::Items),
            Box::new(|_, _| None),
            Some(upstream.trim_end_matches('/').to_string()),
        )
    }

    fn start_with(whole: Policy, item: ItemPolicy, upstream: Option<String>) -> FakeEs {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            docs: Arc::new(Mutex::new(HashMap::new())),
            requests: Arc::new(AtomicU64::new(0)),
            item_errors: Arc::new(AtomicU64::new(0)),
            conflicts: Arc::new(AtomicU64::new(0)),
            sent: Arc::new(Mutex::new(Vec::new())),
            whole,
            item,
            upstream,
        });
        let fake = FakeEs {
            url,
            docs: shared.docs.clone(),
            requests: shared.requests.clone(),
            item_errors: shared.item_errors.clone(),
            conflicts: shared.conflicts.clone(),
            sent: shared.sent.clone(),
        };
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        fake
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
}

fn serve(conn: TcpStream, st: &Shared) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let method = line.split(' ').next().unwrap_or("").to_string();
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        let mut gzip = false;
        let mut content_type = String::from("application/json");
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("content-encoding:") && lower.contains("gzip") {
                gzip = true;
            }
            if let Some(v) = lower.strip_prefix("content-type:") {
                content_type = v.trim().to_string();
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if gzip {
            let mut d = flate2::read::GzDecoder::new(&body[..]);
            let mut plain = Vec::new();
            d.read_to_end(&mut plain).unwrap();
            body = plain;
        }
        let (status, reply) = if let Some(up) = &st.upstream {
            let n = path
                .starts_with("/_bulk")
                .then(|| st.requests.fetch_add(1, Ordering::SeqCst) + 1);
            let (status, reply) = forward(up, &method, &path, &content_type, body.clone());
            if let Some(n) = n {
                record_answer(&body, n, status, &reply, st);
            }
            (status, reply)
        } else if path.starts_with("/_bulk") {
            let n = st.requests.fetch_add(1, Ordering::SeqCst) + 1;
            match (st.whole)(n) {
                Whole::Drop => {
                    record_refused(&body, n, st);
                    return;
                }
                Whole::Status(s) => {
                    record_refused(&body, n, st);
                    (s, format!("{{\"error\":\"injected {s}\"}}"))
                }
                Whole::Items => (200, bulk(&body, n, st)),
                Whole::Slow(d) => {
                    std::thread::sleep(d);
                    (200, bulk(&body, n, st))
                }
            }
        } else if path.starts_with("/_index_template") {
            (200, "{\"acknowledged\":true}".to_string())
        } else {
            (
                200,
                "{\"version\":{\"number\":\"8.99.0-fake\"}}".to_string(),
            )
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(reply.as_bytes()).is_err() {
            return;
        }
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
        let status = match (st.item)(&id, request) {
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
