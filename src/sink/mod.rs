//! Sink: where segments go. Sinks know nothing of files: they receive encoded segments and
//! acknowledge each one once every record in it is stored (or dead-lettered with a reason).

pub mod dead_letter;
mod file;
mod stdout;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::ack::Tracker;
use crate::batch::{Encoding, Segment};
use crate::config::{NamedSink, SinkConfig};

/// A sink's failure to store a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying (I/O, connection, 429, 5xx): nothing was lost, the batch is sent again.
    #[error("{0}")]
    Transient(String),
}

enum Kind {
    File(file::FileSink),
    Stdout(stdout::StdoutSink),
}

pub struct Sink {
    pub name: String,
    kind: Kind,
}

impl Sink {
    pub fn new(cfg: &NamedSink) -> Result<Sink, SinkError> {
        let kind = match &cfg.config {
            SinkConfig::File(f) => Kind::File(file::FileSink::new(&f.path)),
            SinkConfig::Stdout(_) => Kind::Stdout(stdout::StdoutSink),
        };
        Ok(Sink {
            name: cfg.name.clone(),
            kind,
        })
    }

    pub fn encoding(&self) -> Encoding {
        match self.kind {
            Kind::File(_) | Kind::Stdout(_) => Encoding::Ndjson,
        }
    }

    async fn deliver(&mut self, idx: usize, batch: &[Arc<Segment>]) -> Result<u64, SinkError> {
        match &mut self.kind {
            Kind::File(f) => f.deliver(idx, batch).await,
            Kind::Stdout(s) => s.deliver(idx, batch).await,
        }
    }
}

/// Exponential backoff with jitter, capped.
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            attempt: 0,
            base,
            max,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt += 1;
        let capped = exp.min(self.max);
        // full jitter in [capped/2, capped]
        let nanos = capped.as_nanos() as u64;
        let r = jitter_fraction();
        Duration::from_nanos(nanos / 2 + (nanos / 2) * r / 1000)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

fn jitter_fraction() -> u64 {
    // No RNG dependency for this: the low bits of the clock are random enough for jitter.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(n % 1000)
}

/// Receives segments, delivers them in batches (everything queued at the moment, up to
/// `max_batch` segments), retries transient failures forever with backoff, and
/// acknowledges. Ends when the tailer closes the channel and everything is delivered.
pub async fn run(
    mut sink: Sink,
    idx: usize,
    mut rx: mpsc::UnboundedReceiver<Arc<Segment>>,
    tracker: Arc<Tracker>,
    max_batch: usize,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let dead = loop {
            match sink.deliver(idx, &batch).await {
                Ok(d) => {
                    backoff.reset();
                    break d;
                }
                Err(e) => {
                    let d = backoff.next_delay();
                    tracing::warn!(sink = %sink.name, error = %e, retry_in = ?d, "delivery failed; will retry");
                    tokio::time::sleep(d).await;
                }
            }
        };
        let _ = dead;
        for s in &batch {
            tracker.ack(&sink.name, s.seq, 0);
        }
    }
}
