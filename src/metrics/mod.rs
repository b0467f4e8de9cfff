//! Metrics: Prometheus text at `/metrics` and a `/health` endpoint, on loopback unless the
//! config says otherwise. Counters are atomics updated per segment or per request, never per
//! record.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::ack::{Tracker, now_ms};
use crate::kind::Kind;
use crate::progress::Counters;

/// Request latency buckets, seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default)]
pub struct SinkStats {
    pub sent_records: AtomicU64,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub failed_requests: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl SinkStats {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Everything `/metrics` shows.
pub struct Metrics {
    pub tail: Arc<Counters>,
    pub sinks: Vec<(String, Arc<SinkStats>)>,
    pub tracker: Arc<Tracker>,
    pub checkpoint_written_ms: AtomicI64,
    /// Bytes the checkpoint writer wrote (bases and journal lines): what a write costs.
    pub checkpoint_bytes: AtomicU64,
    /// `/health` fails when a sink has had records waiting this long without acknowledging.
    pub health_window: Duration,
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        self.render_tail(&mut o);
        self.render_sinks(&mut o);
        self.render_latency(&mut o);
        self.render_files(&mut o);
        o
    }

    /// The tailer's counters: lines, bytes, records per kind, handles.
    fn render_tail(&self, o: &mut String) {
        let t = &self.tail;
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            o,
            "epost_lines_read_total",
            "Physical log lines read.",
            t.lines.load(Ordering::Relaxed),
        );
        counter(
            o,
            "epost_bytes_read_total",
            "Log bytes read.",
            t.bytes.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            o,
            "# HELP epost_records_total Records made, per log kind.\n# TYPE epost_records_total counter"
        );
        for k in Kind::ALL {
            let _ = writeln!(
                o,
                "epost_records_total{{kind=\"{}\"}} {}",
                k.name(),
                t.per_kind[k as usize].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP epost_open_files Log files held open.\n# TYPE epost_open_files gauge\nepost_open_files {}",
            t.open_files.load(Ordering::Relaxed)
        );
        let unreadable = t.unreadable().len();
        let _ = writeln!(
            o,
            "# HELP epost_files_waiting_for_handle Files with data to read waiting for a handle (max_open_files in use).\n# TYPE epost_files_waiting_for_handle gauge\nepost_files_waiting_for_handle {}\n\
             # HELP epost_file_handle_wait_seconds How long the file waiting longest for a handle has waited.\n# TYPE epost_file_handle_wait_seconds gauge\nepost_file_handle_wait_seconds {}\n\
             # HELP epost_files_unreadable Log files that cannot be opened or read.\n# TYPE epost_files_unreadable gauge\nepost_files_unreadable {unreadable}",
            t.files_waiting.load(Ordering::Relaxed),
            t.longest_wait_secs.load(Ordering::Relaxed),
        );
    }

    /// Per sink: records sent, acknowledged and dead-lettered, requests, retries, last ack.
    fn render_sinks(&self, o: &mut String) {
        let sinks = self.tracker.sink_states();
        let mut lines = [
            (
                "epost_sink_records_sent_total",
                "Records handed to the sink (retries included).",
                "counter",
                String::new(),
            ),
            (
                "epost_sink_records_acked_total",
                "Records the sink acknowledged (stored or dead-lettered).",
                "counter",
                String::new(),
            ),
            (
                "epost_sink_records_dead_lettered_total",
                "Records the sink refused for good, written to the dead-letter file.",
                "counter",
                String::new(),
            ),
            (
                "epost_sink_requests_total",
                "Delivery attempts.",
                "counter",
                String::new(),
            ),
            (
                "epost_sink_retries_total",
                "Delivery attempts that failed and were retried.",
                "counter",
                String::new(),
            ),
            (
                "epost_sink_last_ack_timestamp_seconds",
                "When the sink last acknowledged something.",
                "gauge",
                String::new(),
            ),
        ];
        for (name, stats) in &self.sinks {
            let st = sinks.get(name).cloned().unwrap_or_default();
            let vals = [
                stats.sent_records.load(Ordering::Relaxed) as f64,
                st.acked_records as f64,
                st.dead_lettered as f64,
                stats.requests.load(Ordering::Relaxed) as f64,
                stats.retries.load(Ordering::Relaxed) as f64,
                st.last_ack_ms as f64 / 1000.0,
            ];
            for (l, v) in lines.iter_mut().zip(vals) {
                let _ = writeln!(l.3, "{}{{sink=\"{name}\"}} {v}", l.0);
            }
        }
        for (name, help, kind, body) in &lines {
            let _ = write!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{body}");
        }
    }

    /// Per sink: the delivery latency histogram.
    fn render_latency(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "# HELP epost_sink_request_duration_seconds Delivery request latency.\n# TYPE epost_sink_request_duration_seconds histogram"
        );
        for (name, s) in &self.sinks {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "epost_sink_request_duration_seconds_bucket{{sink=\"{name}\",le=\"{b}\"}} {}",
                    s.latency_buckets[i].load(Ordering::Relaxed)
                );
            }
            let n = s.latency_count.load(Ordering::Relaxed);
            let _ = writeln!(
                o,
                "epost_sink_request_duration_seconds_bucket{{sink=\"{name}\",le=\"+Inf\"}} {n}"
            );
            let _ = writeln!(
                o,
                "epost_sink_request_duration_seconds_sum{{sink=\"{name}\"}} {}",
                s.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                o,
                "epost_sink_request_duration_seconds_count{{sink=\"{name}\"}} {n}"
            );
        }
    }

    /// Bytes behind per file, the checkpoint's age, segments in flight.
    fn render_files(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "# HELP epost_file_bytes_behind Bytes of a file not yet acknowledged by every sink.\n# TYPE epost_file_bytes_behind gauge"
        );
        for (path, size, acked) in self.tracker.files_view() {
            let _ = writeln!(
                o,
                "epost_file_bytes_behind{{path=\"{}\"}} {}",
                path.replace('\\', "\\\\").replace('"', "\\\""),
                size.saturating_sub(acked)
            );
        }
        let written = self.checkpoint_written_ms.load(Ordering::Relaxed);
        let age = if written > 0 {
            (now_ms() - written) as f64 / 1000.0
        } else {
            -1.0
        };
        let _ = writeln!(
            o,
            "# HELP epost_checkpoint_age_seconds Seconds since the checkpoint was last written (-1: not yet).\n# TYPE epost_checkpoint_age_seconds gauge\nepost_checkpoint_age_seconds {age}"
        );
        let _ = writeln!(
            o,
            "# HELP epost_checkpoint_written_bytes_total Bytes written to the checkpoint files (bases and journal lines).\n# TYPE epost_checkpoint_written_bytes_total counter\nepost_checkpoint_written_bytes_total {}",
            self.checkpoint_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP epost_segments_in_flight Segments read but not yet acknowledged by every sink.\n# TYPE epost_segments_in_flight gauge\nepost_segments_in_flight {}",
            self.tracker.in_flight()
        );
    }

    /// Healthy when every sink acknowledged something recently, or nothing waits for it.
    pub fn health(&self) -> (bool, String) {
        let states = self.tracker.sink_states();
        let waiting = self.tracker.in_flight() > 0;
        let oldest = self.tracker.oldest_pending_ms();
        let now = now_ms();
        let mut bad = Vec::new();
        for (name, _) in &self.sinks {
            let last = states.get(name).map_or(0, |s| s.last_ack_ms);
            let stale = now - last > self.health_window.as_millis() as i64;
            let stuck = oldest.is_some_and(|t| now - t > self.health_window.as_millis() as i64);
            if waiting && stale && stuck {
                bad.push(name.clone());
            }
        }
        let mut why = Vec::new();
        if !bad.is_empty() {
            why.push(format!(
                "no acknowledgement recently from: {}",
                bad.join(", ")
            ));
        }
        // files that cannot get a handle are not read at all: as bad as a stuck sink
        let wait = self.tail.longest_wait_secs.load(Ordering::Relaxed);
        if wait > self.health_window.as_secs() {
            why.push(format!(
                "files have waited {wait} s for a file handle: raise max_open_files"
            ));
        }
        if why.is_empty() {
            (true, "ok\n".into())
        } else {
            (false, format!("{}\n", why.join("; ")))
        }
    }
}

/// At most this many scrapes are served at once; more connections are closed at once. A
/// scraper needs one; 100 slow clients on a host with 64 descriptors starved the checkpoint
/// writer of descriptors with the hand-written server this replaces.
const MAX_CONNECTIONS: usize = 8;
/// A client must send its request head within this, and the whole exchange ends within
/// `EXCHANGE_DEADLINE`: a client that opens and stays silent holds nothing for long.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(15);

/// Serves `/metrics` and `/health` on `listener` (HTTP/1.1 by hyper) until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((c, _)) => c,
            Err(e) => {
                // out of descriptors and the like: retrying at once would spin a core
                static LIMIT: crate::warn_limit::Limited =
                    crate::warn_limit::Limited::new(Duration::from_secs(60));
                if let Some(held) = LIMIT.check() {
                    tracing::warn!(error = %e, repeated = held, "metrics: cannot accept a connection");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let answer = respond(&metrics, req.uri().path());
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_DEADLINE)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // an error here is the client's (a bad request, a reset): nothing to do
            let _ = tokio::time::timeout(EXCHANGE_DEADLINE, conn).await;
        });
    }
}

fn respond(metrics: &Metrics, path: &str) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, ctype, body) = match path {
        "/metrics" => (200, "text/plain; version=0.0.4", metrics.render()),
        "/health" => match metrics.health() {
            (true, b) => (200, "text/plain", b),
            (false, b) => (503, "text/plain", b),
        },
        _ => (404, "text/plain", "try /metrics or /health\n".into()),
    };
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    r
}
