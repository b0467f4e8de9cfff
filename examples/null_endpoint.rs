//! A null sink endpoint for the end-to-end benchmark: speaks the Elasticsearch `_bulk`
//! protocol correctly (one `201 created` item per action, in order), accepts Loki pushes
//! (204) and OTLP/HTTP log exports (200, empty response), stores nothing, and counts.
//!
//!   cargo run --release --example null_endpoint -- 127.0.0.1:9299
//!   GET /_stats answers {"requests":N,"documents":N,"bytes":N}

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    documents: AtomicU64,
    bytes: AtomicU64,
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9299".into());
    let listener = TcpListener::bind(&addr).expect("bind");
    eprintln!("null endpoint on http://{addr}");
    let stats = Arc::new(Stats::default());
    for conn in listener.incoming().flatten() {
        let stats = stats.clone();
        std::thread::spawn(move || serve(conn, &stats));
    }
}

fn serve(conn: TcpStream, stats: &Stats) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::with_capacity(1 << 16, conn.try_clone().unwrap());
    let mut out = conn;
    let mut body = Vec::new();
    let mut plain = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let (mut len, mut gzip) = (0usize, false);
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
            if h.starts_with("content-encoding:") && h.contains("gzip") {
                gzip = true;
            }
        }
        body.resize(len, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
        let data: &[u8] = if gzip {
            plain.clear();
            let _ = flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut plain);
            &plain
        } else {
            &body
        };
        let (status, reply): (u16, Vec<u8>) = if path.starts_with("/_bulk") {
            // every other line is an action
            let lines = memchr::memchr_iter(b'\n', data).count() as u64;
            let docs = lines / 2;
            stats.documents.fetch_add(docs, Ordering::Relaxed);
            let mut r = Vec::with_capacity(32 + docs as usize * 32);
            r.extend_from_slice(b"{\"errors\":false,\"items\":[");
            for i in 0..docs {
                if i > 0 {
                    r.push(b',');
                }
                r.extend_from_slice(b"{\"create\":{\"status\":201}}");
            }
            r.extend_from_slice(b"]}");
            (200, r)
        } else if path.contains("/push") {
            (204, Vec::new())
        } else if path.starts_with("/v1/logs") {
            (200, Vec::new())
        } else if path.starts_with("/_stats") {
            let s = format!(
                "{{\"requests\":{},\"documents\":{},\"bytes\":{}}}",
                stats.requests.load(Ordering::Relaxed),
                stats.documents.load(Ordering::Relaxed),
                stats.bytes.load(Ordering::Relaxed)
            );
            (200, s.into_bytes())
        } else {
            (200, b"{\"version\":{\"number\":\"8.99.0-null\"}}".to_vec())
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(&reply).is_err() {
            return;
        }
    }
}
