//! An in-process Elasticsearch `_bulk` endpoint with fault injection: whole-request errors,
//! per-item errors, dropped connections and slow answers. It stores documents by `_id` like
//! the real thing (`create` answers 409 for an existing id), so tests can count exactly.
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

pub struct FakeEs {
    pub url: String,
    pub docs: Arc<Mutex<HashMap<String, String>>>,
    pub requests: Arc<AtomicU64>,
    pub item_errors: Arc<AtomicU64>,
    pub conflicts: Arc<AtomicU64>,
}

impl FakeEs {
    pub fn start(whole: Policy, item: ItemPolicy) -> FakeEs {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let docs = Arc::new(Mutex::new(HashMap::new()));
        let requests = Arc::new(AtomicU64::new(0));
        let item_errors = Arc::new(AtomicU64::new(0));
        let conflicts = Arc::new(AtomicU64::new(0));
        let state = Arc::new((whole, item));
        {
            let (docs, requests, item_errors, conflicts) = (
                docs.clone(),
                requests.clone(),
                item_errors.clone(),
                conflicts.clone(),
            );
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let (docs, requests, item_errors, conflicts, state) = (
                        docs.clone(),
                        requests.clone(),
                        item_errors.clone(),
                        conflicts.clone(),
                        state.clone(),
                    );
                    std::thread::spawn(move || {
                        serve(
                            conn,
                            &docs,
                            &requests,
                            &item_errors,
                            &conflicts,
                            &state.0,
                            &state.1,
                        )
                    });
                }
            });
        }
        FakeEs {
            url,
            docs,
            requests,
            item_errors,
            conflicts,
        }
    }

    pub fn count(&self) -> usize {
        self.docs.lock().unwrap().len()
    }
}

fn serve(
    conn: TcpStream,
    docs: &Mutex<HashMap<String, String>>,
    requests: &AtomicU64,
    item_errors: &AtomicU64,
    conflicts: &AtomicU64,
    whole: &Policy,
    item: &ItemPolicy,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        let mut gzip = false;
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
        let (status, reply) = if path.starts_with("/_bulk") {
            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
            match whole(n) {
                Whole::Drop => return,
                Whole::Status(s) => (s, format!("{{\"error\":\"injected {s}\"}}")),
                Whole::Items => (200, bulk(&body, n, docs, item_errors, conflicts, item)),
                Whole::Slow(d) => {
                    std::thread::sleep(d);
                    (200, bulk(&body, n, docs, item_errors, conflicts, item))
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

fn bulk(
    body: &[u8],
    request: u64,
    docs: &Mutex<HashMap<String, String>>,
    item_errors: &AtomicU64,
    conflicts: &AtomicU64,
    item: &ItemPolicy,
) -> String {
    let text = String::from_utf8_lossy(body);
    let mut lines = text.lines();
    let mut items = Vec::new();
    let mut errors = false;
    while let (Some(action), Some(doc)) = (lines.next(), lines.next()) {
        let a: serde_json::Value = serde_json::from_str(action).unwrap();
        let id = a["create"]["_id"].as_str().unwrap().to_string();
        let status = match item(&id, request) {
            Some(s) => {
                item_errors.fetch_add(1, Ordering::SeqCst);
                s
            }
            None => {
                let mut d = docs.lock().unwrap();
                if d.contains_key(&id) {
                    conflicts.fetch_add(1, Ordering::SeqCst);
                    409
                } else {
                    d.insert(id.clone(), doc.to_string());
                    201
                }
            }
        };
        if status >= 300 {
            errors = true;
            items.push(format!(
                "{{\"create\":{{\"status\":{status},\"error\":{{\"type\":\"injected_{status}\",\"reason\":\"injected for id {id}\"}}}}}}"
            ));
        } else {
            items.push(format!("{{\"create\":{{\"status\":{status}}}}}"));
        }
    }
    format!("{{\"errors\":{errors},\"items\":[{}]}}", items.join(","))
}
