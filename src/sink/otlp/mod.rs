//! The OpenTelemetry sink: OTLP logs over gRPC (`LogsService/Export`) or HTTP/protobuf
//! (`POST /v1/logs`), gzip by default.
//!
//! Records are encoded to `LogRecord` protobuf on the tailer's thread (see `encode`); a
//! delivery groups them by host into `ResourceLogs` and sends requests of at most
//! `max_request_bytes`. A batch is acknowledged only once every request of it was answered
//! with success:
//! - UNAVAILABLE, RESOURCE_EXHAUSTED, 429, 502–504, timeouts and connection errors (and the
//!   other statuses that do not say the data is bad) are retried with backoff, waiting at
//!   least the delay the server asks for (gRPC `RetryInfo`, HTTP `Retry-After`);
//! - a request the server refuses as bad (INVALID_ARGUMENT, HTTP 400...) is split in halves
//!   until the refused records are isolated, and those go to the dead-letter file with the
//!   server's reason; nothing was stored of a refused request, so splitting sends nothing
//!   twice. A request too large for the server (HTTP 413, gRPC "larger than max") is split
//!   the same way;
//! - a `partial_success` with rejected records: the server does not say which records, so
//!   every record of that request goes to the dead-letter file with the server's message,
//!   and the number it rejected is counted as dead-lettered.
//!
//! Requests of one batch are sent one after another and retried where they failed, so a
//! failure late in a batch does not send its first requests again.

mod encode;
mod grpc;
mod http_proto;
mod tls;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

pub use encode::{OtlpEncoder, record_json};

use super::dead_letter::DeadLetter;
use super::{Backoff, Delivered, Probe, SinkError, http};
use crate::batch::{Encoding, Segment};
use crate::config::{OtlpProtocol, OtlpSink as Config};

/// A server's retry delay is honoured up to this long.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(300);

/// What became of one export request.
#[derive(Debug)]
pub enum Outcome {
    /// Stored, but for `rejected` records (`partial_success`).
    Accepted { rejected: i64, message: String },
    /// Nothing stored; send it again after `after` (the server's wish) or a backoff.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Nothing stored: the server refuses this data.
    Rejected { why: String },
    /// Nothing stored: the request is over the server's size limit.
    TooLarge { why: String },
}

enum Transport {
    Grpc(Box<grpc::Grpc>),
    Http(http_proto::Http),
}

pub struct OtlpSink {
    name: String,
    /// What logs and `check` call the server.
    target: String,
    transport: Transport,
    max_request: usize,
    encoder: Arc<OtlpEncoder>,
    dead: Arc<DeadLetter>,
}

/// (segment, record) in a batch.
type Ref = (u32, u32);

impl OtlpSink {
    pub fn new(name: &str, c: &Config, dead: Arc<DeadLetter>) -> Result<Self, SinkError> {
        let auth = http::auth_header(
            c.user.as_deref(),
            c.password.as_ref(),
            c.bearer_token.as_ref(),
            None,
        );
        let (transport, target) = match c.protocol {
            OtlpProtocol::Grpc => (
                Transport::Grpc(Box::new(grpc::Grpc::new(c, auth)?)),
                format!("OTLP/gRPC {}", c.endpoint),
            ),
            OtlpProtocol::HttpProtobuf => {
                let h = http_proto::Http::new(c, auth)?;
                let target = format!("OTLP/HTTP {}", h.url());
                (Transport::Http(h), target)
            }
        };
        Ok(OtlpSink {
            name: name.to_string(),
            target,
            transport,
            max_request: usize::try_from(c.max_request_bytes.0)
                .unwrap_or(usize::MAX)
                .max(1024),
            encoder: Arc::new(OtlpEncoder),
            dead,
        })
    }

    pub fn encoding(&self) -> Encoding {
        Encoding::Otlp(self.encoder.clone())
    }

    pub async fn start(&self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn export(&self, body: Vec<u8>) -> Outcome {
        match &self.transport {
            Transport::Grpc(g) => g.export(body).await,
            Transport::Http(h) => h.export(body).await,
        }
    }

    /// Sends an empty export request: OTLP has no version call, but an empty export shows
    /// the endpoint is reachable, speaks OTLP logs and takes our credentials.
    pub async fn probe(&self) -> Result<Probe, SinkError> {
        match self.export(Vec::new()).await {
            Outcome::Accepted { .. } => Ok(Probe {
                server: format!("{} (an empty export was accepted)", self.target),
            }),
            Outcome::Retry { why, .. } if why.starts_with("authentication refused") => {
                Err(SinkError::Config(format!("{}: {why}", self.target)))
            }
            Outcome::Retry { why, .. } => {
                Err(SinkError::Transient(format!("{}: {why}", self.target)))
            }
            Outcome::Rejected { why } | Outcome::TooLarge { why } => Err(SinkError::Config(
                format!("{}: an empty export was refused: {why}", self.target),
            )),
        }
    }

    pub async fn deliver(
        &self,
        idx: usize,
        batch: &[Arc<Segment>],
    ) -> Result<Delivered, SinkError> {
        let record = |(s, r): Ref| batch[s as usize].payloads[idx].record(r as usize);
        let mut dead = vec![0u64; batch.len()];
        let mut todo = self.split_by_size(idx, batch);
        while let Some(chunk) = todo.pop_front() {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
            loop {
                let body = encode::request(chunk.iter().map(|&r| record(r)));
                match self.export(body).await {
                    Outcome::Accepted { rejected, message } => {
                        if rejected > 0 {
                            self.partial(&chunk, rejected, &message, &record, &mut dead)
                                .await;
                        } else if !message.is_empty() {
                            tracing::warn!(sink = %self.name, message = %message, "the collector accepted the records with a warning");
                        }
                        break;
                    }
                    Outcome::Retry { why, after } => {
                        let wait = match after {
                            Some(d) => d.min(MAX_SERVER_DELAY),
                            None => backoff.next_delay(),
                        };
                        tracing::warn!(sink = %self.name, error = %why, records = chunk.len(), retry_in = ?wait, server_delay = after.is_some(), "export failed; will retry");
                        tokio::time::sleep(wait).await;
                    }
                    Outcome::Rejected { why } | Outcome::TooLarge { why } if chunk.len() > 1 => {
                        tracing::warn!(sink = %self.name, error = %why, records = chunk.len(), "export refused; splitting the request to find the records at fault");
                        let (a, b) = chunk.split_at(chunk.len() / 2);
                        todo.push_front(b.to_vec());
                        todo.push_front(a.to_vec());
                        break;
                    }
                    Outcome::Rejected { why } | Outcome::TooLarge { why } => {
                        let why = format!("refused by the collector: {why}");
                        tracing::warn!(sink = %self.name, reason = %why, file = %self.dead.path().display(), "record refused; written to the dead-letter file");
                        self.dead_letter(&why, record(chunk[0])).await;
                        dead[chunk[0].0 as usize] += 1;
                        break;
                    }
                }
            }
        }
        Ok(Delivered {
            dead_lettered: dead,
        })
    }

    /// The batch's records in requests of at most `max_request` bytes.
    fn split_by_size(&self, idx: usize, batch: &[Arc<Segment>]) -> VecDeque<Vec<Ref>> {
        let mut chunks = VecDeque::new();
        let mut cur = Vec::new();
        let mut size = 0;
        for (s, seg) in batch.iter().enumerate() {
            let p = &seg.payloads[idx];
            for r in 0..p.records() {
                let share = encode::request_share(p.record(r));
                if !cur.is_empty() && size + share > self.max_request {
                    chunks.push_back(std::mem::take(&mut cur));
                    size = 0;
                }
                size += share;
                cur.push((s as u32, r as u32));
            }
        }
        if !cur.is_empty() {
            chunks.push_back(cur);
        }
        chunks
    }

    /// `rejected` records of `chunk` were refused, and the server does not say which.
    async fn partial<'b>(
        &self,
        chunk: &[Ref],
        rejected: i64,
        message: &str,
        record: &impl Fn(Ref) -> &'b [u8],
        dead: &mut [u64],
    ) {
        let n = chunk.len();
        let k = usize::try_from(rejected).unwrap_or(0).min(n);
        let why = format!(
            "partial success: the collector rejected {k} of the {n} records of one request, without saying which (every record of that request is written here): {message}"
        );
        tracing::warn!(sink = %self.name, rejected = k, records = n, message = %message, file = %self.dead.path().display(), "the collector rejected part of a request; its records are written to the dead-letter file");
        for &r in chunk {
            self.dead_letter(&why, record(r)).await;
        }
        for &(s, _) in &chunk[..k] {
            dead[s as usize] += 1;
        }
    }

    /// Writes a dead letter, retrying until it is on disk: the server has already answered
    /// for this record, so failing the delivery instead would send its request again.
    async fn dead_letter(&self, why: &str, rec: &[u8]) {
        let json = encode::record_json(rec);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        while let Err(e) = self.dead.write(&self.name, why, &json) {
            let wait = backoff.next_delay();
            tracing::error!(sink = %self.name, error = %e, file = %self.dead.path().display(), retry_in = ?wait, "cannot write the dead-letter file; will retry");
            tokio::time::sleep(wait).await;
        }
    }
}
