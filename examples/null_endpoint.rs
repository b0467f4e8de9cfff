//! A null sink endpoint for the end-to-end benchmark: speaks the Elasticsearch `_bulk`
//! protocol correctly (one `201 created` item per action, in order), accepts Loki pushes
//! (204) and OTLP/HTTP log exports (200, empty response), stores nothing, and counts.
//! The HTTP server is the tests' one (`tests/common/http_fake.rs`, hyper).
//!
//!   cargo run --release --example null_endpoint -- 127.0.0.1:9299
//!   GET /_stats answers {"requests":N,"documents":N,"bytes":N}

#[path = "../tests/common/http_fake.rs"]
mod http_fake;

use std::sync::atomic::{AtomicU64, Ordering};

use http_fake::{Answer, HttpFake, Options, Request};

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
    let stats = Stats::default();
    let opts = Options {
        bind: addr.clone(),
        record: false,
        worker_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        ..Options::default()
    };
    let server = HttpFake::start_with(opts, move |r| answer(r, &stats));
    eprintln!("null endpoint on http://{addr}");
    server.serve_forever();
}

fn answer(r: &Request, stats: &Stats) -> Answer {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    stats
        .bytes
        .fetch_add(r.body.len() as u64, Ordering::Relaxed);
    if r.path.starts_with("/_bulk") {
        // every other line is an action
        let docs = match r.decoded() {
            Ok(data) => memchr::memchr_iter(b'\n', &data).count() as u64 / 2,
            Err(e) => return Answer::json(400, format!("{{\"error\":\"{e}\"}}")),
        };
        stats.documents.fetch_add(docs, Ordering::Relaxed);
        let mut reply = Vec::with_capacity(32 + docs as usize * 26);
        reply.extend_from_slice(b"{\"errors\":false,\"items\":[");
        for i in 0..docs {
            if i > 0 {
                reply.push(b',');
            }
            reply.extend_from_slice(b"{\"create\":{\"status\":201}}");
        }
        reply.extend_from_slice(b"]}");
        Answer::json(200, reply)
    } else if r.path.contains("/push") {
        Answer::new(204, "")
    } else if r.path.starts_with("/v1/logs") {
        Answer::new(200, "")
    } else if r.path.starts_with("/_stats") {
        Answer::json(
            200,
            format!(
                "{{\"requests\":{},\"documents\":{},\"bytes\":{}}}",
                stats.requests.load(Ordering::Relaxed),
                stats.documents.load(Ordering::Relaxed),
                stats.bytes.load(Ordering::Relaxed)
            ),
        )
    } else {
        Answer::json(200, "{\"version\":{\"number\":\"8.99.0-null\"}}")
    }
}
