//! Sink: where segments go. Sinks know nothing of files: they receive encoded segments and
//! acknowledge each one once every record in it is stored, or dead-lettered with the sink's
//! reason. Transient failures (connection, 429, 5xx) are retried with backoff, forever: the
//! files on disk are the buffer, and backpressure pauses reading meanwhile. What happens
//! after an answer (retry, split, refuse, dead-letter) is the delivery engine's (`engine`);
//! the network sinks only encode requests and classify answers.

pub mod dead_letter;
pub mod elasticsearch;
pub mod encoding;
pub mod engine;
mod file;
pub mod http;
pub mod loki;
pub mod otlp;
mod stdout;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

use crate::ack::Tracker;
use crate::batch::Segment;
use crate::config::{BatchPolicy, NamedSink, SinkConfig};
use dead_letter::DeadLetter;
pub use encoding::Encoding;
pub use engine::Backoff;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying (I/O, connection, 429, 5xx): nothing was lost, the batch is sent again.
    #[error("{0}")]
    Transient(String),
    /// The sink cannot work as configured (bad URL, unreadable certificate, auth refused).
    #[error("{0}")]
    Config(String),
    /// The answer could not be read (over `http::MAX_ANSWER_BYTES`, or cut off).
    #[error("{what}: {source}")]
    Answer {
        what: String,
        source: http::AnswerError,
    },
}

/// What a delivery did with each segment of the batch: how many of its records went to the
/// dead-letter file (the rest are stored).
#[derive(Debug, Default)]
pub struct Delivered {
    pub dead_lettered: Vec<u64>,
}

enum Kind {
    File(file::FileSink),
    Stdout(stdout::StdoutSink),
    Elasticsearch(elasticsearch::ElasticsearchSink),
    Loki(loki::LokiSink),
    Otlp(otlp::OtlpSink),
}

pub struct Sink {
    pub name: String,
    pub policy: BatchPolicy,
    kind: Kind,
}

/// What `check` reports of a sink.
#[derive(Debug)]
pub struct Probe {
    /// e.g. "Elasticsearch 8.19.2"
    pub server: String,
}

impl Sink {
    pub fn new(cfg: &NamedSink, state_dir: &std::path::Path) -> Result<Sink, SinkError> {
        let dead = Arc::new(DeadLetter::new(state_dir, &cfg.name));
        let kind = match &cfg.config {
            SinkConfig::File(f) => Kind::File(file::FileSink::new(&f.path)),
            SinkConfig::Stdout(_) => Kind::Stdout(stdout::StdoutSink),
            SinkConfig::Elasticsearch(c) => {
                Kind::Elasticsearch(elasticsearch::ElasticsearchSink::new(&cfg.name, c, dead)?)
            }
            SinkConfig::Loki(c) => Kind::Loki(loki::LokiSink::new(&cfg.name, c, dead)?),
            SinkConfig::Otlp(c) => Kind::Otlp(otlp::OtlpSink::new(&cfg.name, c, dead)?),
        };
        Ok(Sink {
            name: cfg.name.clone(),
            policy: cfg.config.batch(),
            kind,
        })
    }

    pub fn encoding(&self) -> Encoding {
        match &self.kind {
            Kind::File(_) | Kind::Stdout(_) => Encoding::Ndjson,
            Kind::Elasticsearch(s) => s.encoding(),
            Kind::Loki(s) => s.encoding(),
            Kind::Otlp(s) => s.encoding(),
        }
    }

    /// One-time setup before the first delivery (index templates...).
    pub async fn start(&self) -> Result<(), SinkError> {
        match &self.kind {
            Kind::Elasticsearch(s) => s.start().await,
            Kind::Loki(s) => s.start().await,
            Kind::Otlp(s) => s.start().await,
            Kind::File(_) | Kind::Stdout(_) => Ok(()),
        }
    }

    /// Reachable, authenticated, which server and version.
    pub async fn probe(&self) -> Result<Probe, SinkError> {
        match &self.kind {
            Kind::File(f) => f.probe().await,
            Kind::Stdout(_) => Ok(Probe {
                server: "standard output".into(),
            }),
            Kind::Elasticsearch(s) => s.probe().await,
            Kind::Loki(s) => s.probe().await,
            Kind::Otlp(s) => s.probe().await,
        }
    }

    /// Delivers a batch: returns once every record is stored or dead-lettered. The network
    /// sinks go through the engine; the file and stdout sinks retry with its policy.
    pub async fn deliver(
        &self,
        idx: usize,
        batch: &[Arc<Segment>],
        stats: &crate::metrics::SinkStats,
    ) -> Delivered {
        let records: u64 = batch.iter().map(|s| u64::from(s.records)).sum();
        match &self.kind {
            Kind::File(f) => {
                engine::until_ok(&self.name, stats, records, || f.deliver(idx, batch)).await;
                Delivered::default()
            }
            Kind::Stdout(s) => {
                engine::until_ok(&self.name, stats, records, || s.deliver(idx, batch)).await;
                Delivered::default()
            }
            Kind::Elasticsearch(s) => s.deliver(idx, batch, stats).await,
            Kind::Loki(s) => s.deliver(idx, batch, stats).await,
            Kind::Otlp(s) => s.deliver(idx, batch, stats).await,
        }
    }
}

/// `now + d`, saturating far in the future rather than panicking on a huge `d`.
fn deadline_after(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// The sink's setup (`start`), retried with backoff until it succeeds.
async fn start_until_ok(sink: &Sink) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    while let Err(e) = sink.start().await {
        let d = backoff.next_delay();
        if let Some(repeated) = crate::warn_limit::check("sink.setup", &sink.name) {
            tracing::warn!(sink = %sink.name, error = %http::redact_text(&e.to_string()), retry_in = ?d, repeated, "sink setup failed; will retry");
        }
        tokio::time::sleep(d).await;
    }
}

/// Receives segments, groups them into batches by the sink's policy (events, bytes, time),
/// keeps up to `max_in_flight` deliveries going (each retries inside, through the engine,
/// until every record is stored or dead-lettered), and acknowledges every segment once
/// delivered. Ends when the tailer closes the channel
/// and everything queued is delivered.
pub async fn run(
    sink: Sink,
    idx: usize,
    mut rx: mpsc::UnboundedReceiver<Arc<Segment>>,
    tracker: Arc<Tracker>,
    stats: Arc<crate::metrics::SinkStats>,
) {
    let sink = Arc::new(sink);
    let policy = sink.policy;
    start_until_ok(&sink).await;
    let slots = Arc::new(Semaphore::new(policy.max_in_flight));
    let mut deliveries = tokio::task::JoinSet::new();
    let mut closed = false;
    while !closed {
        // A delivery's panic ends this task at once, not when the next batch comes (in `run`
        // that may be never, and the pipeline would not learn its sink is dead).
        let first = tokio::select! {
            s = rx.recv() => s,
            Some(r) = deliveries.join_next(), if !deliveries.is_empty() => {
                propagate(r);
                continue;
            }
        };
        let Some(first) = first else { break };
        let mut events = first.records as usize;
        let mut bytes = first.payloads[idx].data.len() as u64;
        let mut batch = vec![first];
        let deadline = deadline_after(policy.timeout);
        while events < policy.max_events && bytes < policy.max_bytes {
            let next = if policy.timeout.is_zero() {
                rx.try_recv().ok()
            } else {
                tokio::select! {
                    biased;
                    s = rx.recv() => {
                        if s.is_none() {
                            closed = true;
                        }
                        s
                    }
                    _ = tokio::time::sleep_until(deadline) => None,
                    // the queue is full, or a backfill read everything: nothing more will come
                    // until this batch is delivered
                    () = tracker.send_now() => None,
                }
            };
            let Some(s) = next else { break };
            events += s.records as usize;
            bytes += s.payloads[idx].data.len() as u64;
            batch.push(s);
        }
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        reap(&mut deliveries);
        let (sink, tracker, stats) = (sink.clone(), tracker.clone(), stats.clone());
        deliveries.spawn(async move {
            if batch
                .iter()
                .any(|s| crate::fault::hit("sink-panic", &s.payloads[idx].data))
            {
                panic!("injected fault: sink-panic");
            }
            let delivered = sink.deliver(idx, &batch, &stats).await;
            for (i, s) in batch.iter().enumerate() {
                let dead = delivered.dead_lettered.get(i).copied().unwrap_or(0);
                tracker.ack(&sink.name, s.seq, dead);
            }
            drop(permit);
        });
    }
    // wait for the deliveries still in flight
    while let Some(r) = deliveries.join_next().await {
        propagate(r);
    }
}

/// Deliveries run as tasks of their own; a panic in one must end this sink's task (which the
/// pipeline supervises) rather than vanish with the task and leave its segments unacknowledged
/// forever.
fn reap(deliveries: &mut tokio::task::JoinSet<()>) {
    while let Some(r) = deliveries.try_join_next() {
        propagate(r);
    }
}

fn propagate(r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}
