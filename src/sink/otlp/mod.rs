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

pub mod encode;
mod grpc;
mod http_proto;
mod tls;

use std::borrow::Cow;
use std::sync::Arc;

pub use encode::{OtlpEncoder, record_json};

use super::dead_letter::DeadLetter;
use super::engine::{Engine, Outcome, Records, Requests};
use super::{Delivered, Probe, SinkError, http};
use crate::batch::Segment;
use crate::config::{OtlpProtocol, OtlpSink as Config};
use crate::metrics::SinkStats;
use crate::sink::Encoding;

/// What an export request came to: accepted (maybe in part), or a failure the engine acts on.
#[derive(Debug)]
pub enum Export {
    /// Stored, but for `rejected` records (`partial_success`), with the server's message.
    Accepted {
        rejected: i64,
        message: String,
    },
    Failed(Outcome),
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
    engine: Engine,
}

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
            encoder: Arc::new(OtlpEncoder::new(c.document_id_attribute)),
            engine: Engine::new(name, dead),
        })
    }

    pub fn encoding(&self) -> Encoding {
        Encoding::Otlp(self.encoder.clone())
    }

    pub async fn start(&self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn export(&self, body: Vec<u8>) -> Export {
        match &self.transport {
            Transport::Grpc(g) => g.export(body).await,
            Transport::Http(h) => h.export(body).await,
        }
    }

    /// Sends an empty export request: OTLP has no version call, but an empty export shows
    /// the endpoint is reachable, speaks OTLP logs and takes our credentials.
    pub async fn probe(&self) -> Result<Probe, SinkError> {
        match self.export(Vec::new()).await {
            Export::Accepted { .. } => Ok(Probe {
                server: format!("{} (an empty export was accepted)", self.target),
            }),
            Export::Failed(o) if o.retryable() => Err(o.into_error(&self.target)),
            Export::Failed(o) => Err(SinkError::Config(format!(
                "{}: an empty export was refused: {}",
                self.target,
                o.reason()
            ))),
        }
    }

    pub async fn deliver(
        &self,
        idx: usize,
        batch: &[Arc<Segment>],
        stats: &SinkStats,
    ) -> Delivered {
        let exports = Exports {
            sink: self,
            recs: Records::new(idx, batch),
        };
        self.engine.deliver(&exports, batch.len(), stats).await
    }
}

/// A batch as export requests.
struct Exports<'a> {
    sink: &'a OtlpSink,
    recs: Records<'a>,
}

impl Requests for Exports<'_> {
    /// The batch's records in requests of at most `max_request` bytes.
    fn plan(&self) -> Vec<Vec<usize>> {
        let mut chunks = Vec::new();
        let mut cur = Vec::new();
        let mut size = 0;
        for i in 0..self.recs.len() {
            let share = encode::request_share(self.recs.record(i));
            if !cur.is_empty() && size + share > self.sink.max_request {
                chunks.push(std::mem::take(&mut cur));
                size = 0;
            }
            size += share;
            cur.push(i);
        }
        if !cur.is_empty() {
            chunks.push(cur);
        }
        chunks
    }

    async fn send(&self, set: &[usize]) -> Outcome {
        let body = encode::request(set.iter().map(|&i| self.recs.record(i)));
        match self.sink.export(body).await {
            Export::Accepted { rejected, message } if rejected > 0 => {
                let n = set.len();
                let k = usize::try_from(rejected).unwrap_or(0).min(n);
                Outcome::Unattributed {
                    rejected: k,
                    reason: format!(
                        "partial success: the collector rejected {k} of the {n} records of one request, without saying which (every record of that request is written here): {message}"
                    ),
                }
            }
            Export::Accepted { message, .. } => {
                if !message.is_empty()
                    && let Some(repeated) =
                        crate::warn_limit::check("otlp.accepted", &self.sink.name)
                {
                    tracing::warn!(sink = %self.sink.name, message = %message, repeated, "the collector accepted the records with a warning");
                }
                Outcome::Delivered
            }
            Export::Failed(o) => o,
        }
    }

    fn segment(&self, i: usize) -> usize {
        self.recs.segment(i)
    }

    fn dead_letter_json(&self, i: usize) -> Cow<'_, [u8]> {
        Cow::Owned(encode::record_json(self.recs.record(i)))
    }

    fn refusal_reason(&self, outcome: &Outcome) -> String {
        format!("refused by the collector: {}", outcome.reason())
    }
}
