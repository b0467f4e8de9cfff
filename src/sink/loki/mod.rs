//! The Grafana Loki sink: `POST /loki/api/v1/push`, protobuf + snappy (what Loki's own agents
//! send) or JSON + gzip, with the labels and structured metadata of records.md.
//!
//! Identity: every entry's timestamp carries a sub-second part derived from the record's byte
//! offset (`encode::entry_nanos`), so a replay after a crash is the same stream, timestamp and
//! line as the original, which Loki stores once, while two different records never share all
//! three.
//!
//! Refusals: 429, 5xx and transport errors are retried with backoff. A 400 means Loki stored
//! some entries and refused others; they are isolated by pushing again (splitting by stream,
//! dropping the entries older than a cutoff Loki named, else halving) until every refused
//! entry is alone in a refused push, and those go to the dead-letter file with Loki's reason.
//! Pushing accepted entries again is harmless: Loki drops the exact duplicates.

pub mod encode;
pub mod proto;
mod reject;

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};

use std::borrow::Cow;

use super::dead_letter::DeadLetter;
use super::engine::{Code, Engine, Outcome, Records, Requests, Verdict};
use super::{Delivered, Probe, SinkError, http};
use crate::batch::Segment;
use crate::config::{LokiEncoding, LokiSink as Config};
use crate::metrics::SinkStats;
use crate::sink::Encoding;
pub use encode::LokiEncoder;
use encode::{BUILTIN_LABELS, Entry};

pub struct LokiSink {
    base: String,
    push_url: String,
    client: reqwest::Client,
    encoder: Arc<LokiEncoder>,
    encoding: LokiEncoding,
    tenant: Option<String>,
    max_request_bytes: usize,
    engine: Engine,
}

impl LokiSink {
    pub fn new(name: &str, c: &Config, dead: Arc<DeadLetter>) -> Result<Self, SinkError> {
        let base = c.url.trim_end_matches('/').to_string();
        reqwest::Url::parse(&base)
            .map_err(|e| SinkError::Config(format!("bad url `{}`: {e}", c.url)))?;
        if !c.push_path.starts_with('/') {
            return Err(SinkError::Config(format!(
                "push_path `{}` must start with `/`",
                c.push_path
            )));
        }
        if c.job.is_empty() {
            return Err(SinkError::Config("`job` must not be empty".into()));
        }
        for (k, v) in &c.labels {
            if BUILTIN_LABELS.contains(&k.as_str()) {
                return Err(SinkError::Config(format!(
                    "labels.{k}: `{k}` is set by the shipper (host and log from the record, job from `job`)"
                )));
            }
            if !encode::valid_label_name(k) {
                return Err(SinkError::Config(format!(
                    "labels.{k}: not a valid Loki label name (letters, digits and `_`, not starting with a digit)"
                )));
            }
            if v.is_empty() {
                return Err(SinkError::Config(format!(
                    "labels.{k}: empty value (Loki drops empty labels)"
                )));
            }
        }
        if let Some(t) = &c.tenant {
            reqwest::header::HeaderValue::from_str(t)
                .map_err(|e| SinkError::Config(format!("tenant `{t}`: {e}")))?;
        }
        let auth = http::auth_header(
            c.user.as_deref(),
            c.password.as_ref(),
            c.bearer_token.as_ref(),
            None,
        );
        let client = http::client(&c.tls, c.request_timeout.0, &c.headers, auth)?;
        Ok(LokiSink {
            push_url: format!("{base}{}", c.push_path),
            base,
            client,
            encoder: Arc::new(LokiEncoder::new(
                &c.job,
                &c.labels,
                c.line_format,
                c.structured_metadata,
            )),
            encoding: c.encoding,
            tenant: c.tenant.clone(),
            max_request_bytes: c.max_request_bytes.0.max(1024) as usize,
            engine: Engine::new(name, dead),
        })
    }

    pub fn encoding(&self) -> Encoding {
        Encoding::Loki(self.encoder.clone())
    }

    /// An empty push before the first delivery: a wrong `url` or `push_path` is answered
    /// with 400 by some servers (VictoriaLogs), which must not send every record to the
    /// dead-letter file. Until it passes, the runner retries and the records wait on disk.
    pub async fn start(&self) -> Result<(), SinkError> {
        self.empty_push().await
    }

    async fn empty_push(&self) -> Result<(), SinkError> {
        let empty: Vec<Entry<'_>> = Vec::new();
        match self.push(&empty, &[]).await {
            Outcome::Delivered => Ok(()),
            o if o.retryable() => Err(o.into_error(&self.push_url)),
            o => Err(SinkError::Config(format!(
                "{}: an empty push was refused ({}); check `url` and `push_path`",
                self.push_url,
                o.reason()
            ))),
        }
    }

    /// Which server (Loki's build info, or VictoriaLogs' version), then an empty push, which
    /// checks the push path, the credentials and the tenant without storing anything.
    pub async fn probe(&self) -> Result<Probe, SinkError> {
        let base = &self.base;
        let get = |path: &'static str| {
            let req = self.with_tenant(self.client.get(format!("{base}{path}")));
            async move {
                let resp = req
                    .send()
                    .await
                    .map_err(|e| SinkError::Transient(format!("{base}: {}", http::describe(&e))))?;
                let status = resp.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(SinkError::Config(format!(
                        "{base}{path}: authentication refused ({status})"
                    )));
                }
                let text = http::read_text(resp)
                    .await
                    .map_err(|source| SinkError::Answer {
                        what: format!("{base}{path}"),
                        source,
                    })?;
                Ok((status, text))
            }
        };
        let server = match get("/loki/api/v1/status/buildinfo").await? {
            (s, body) if s.is_success() => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                format!("Grafana Loki {}", v["version"].as_str().unwrap_or("?"))
            }
            _ => match get("/health").await? {
                (s, body) if s.is_success() && body.trim() == "OK" => {
                    let (_, metrics) = get("/metrics").await.unwrap_or_default();
                    format!(
                        "VictoriaLogs {}",
                        victorialogs_version(&metrics).unwrap_or("?")
                    )
                }
                _ => match get("/ready").await? {
                    (s, _) if s.is_success() => "a Loki-compatible server".to_string(),
                    (s, body) => {
                        return Err(SinkError::Transient(format!(
                            "{base}: not a Loki server, or not ready (GET /ready: HTTP {s}: {})",
                            http::excerpt(&body, 200)
                        )));
                    }
                },
            },
        };
        self.empty_push().await?;
        Ok(Probe {
            server: format!("{server} at {base}, pushing to {}", self.push_url),
        })
    }

    fn with_tenant(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.tenant {
            Some(t) => req.header("X-Scope-OrgID", t),
            None => req,
        }
    }

    /// Pushes the entries `set` of `entries` and classifies Loki's answer.
    async fn push(&self, entries: &[Entry<'_>], set: &[usize]) -> Outcome {
        let url = &self.push_url;
        let mut req = self.with_tenant(self.client.post(url));
        req = match self.encoding {
            LokiEncoding::Protobuf => req
                .header(CONTENT_TYPE, "application/x-protobuf")
                .body(encode::protobuf_body(entries, set)),
            LokiEncoding::Json => match encode::json_body(entries, set) {
                Ok(b) => req
                    .header(CONTENT_TYPE, "application/json")
                    .header(CONTENT_ENCODING, "gzip")
                    .body(b),
                Err(e) => return Outcome::Transport(format!("gzip: {e}")),
            },
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Transport(format!("{url}: {}", http::describe(&e))),
        };
        let status = resp.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        let after = http::retry_after(resp.headers());
        let body = match http::read_text(resp).await {
            Ok(b) => b,
            Err(e) => return Outcome::Unreadable(e),
        };
        classify(status, after, &body, entries, set)
    }

    pub async fn deliver(
        &self,
        idx: usize,
        batch: &[Arc<Segment>],
        stats: &SinkStats,
    ) -> Delivered {
        let recs = Records::new(idx, batch);
        let mut entries: Vec<Entry<'_>> = Vec::with_capacity(recs.len());
        // the segment of each entry, for the per-segment dead-letter counts
        let mut owner: Vec<usize> = Vec::with_capacity(recs.len());
        let mut broken = Vec::new();
        for i in 0..recs.len() {
            match encode::decode(recs.record(i)) {
                Some(e) => {
                    entries.push(e);
                    owner.push(recs.segment(i));
                }
                None => broken.push(i),
            }
        }
        let pushes = Pushes {
            sink: self,
            recs: &recs,
            entries,
            owner,
            broken,
        };
        self.engine.deliver(&pushes, batch.len(), stats).await
    }
}

/// What Loki's answer to a failed push means. A 400 means Loki stored some entries and
/// refused others: with a cutoff named (too old, too far behind) for a push of one stream,
/// the entries before it are refused for that reason and the rest pushed again; otherwise the
/// engine splits the push (by stream, then in halves: `Pushes::split`) until each refused
/// entry is alone. Pushing accepted entries again is harmless: Loki drops exact duplicates.
fn classify(
    status: StatusCode,
    after: Option<std::time::Duration>,
    body: &str,
    entries: &[Entry<'_>],
    set: &[usize],
) -> Outcome {
    let code = Code::Http(status.as_u16());
    let short = |hint: &str| format!("{}{hint}", http::excerpt(body.trim(), 300));
    let retry = |excerpt: String| Outcome::Status {
        code,
        excerpt,
        verdict: Verdict::Retry,
        after,
    };
    match status.as_u16() {
        // VictoriaLogs' answer to a wrong push path: a configuration error, not a refusal
        400 if body.contains("unsupported path") => retry(short("; check `url` and `push_path`")),
        // a Loki that takes no structured metadata refuses every entry: wait for the
        // configuration to be fixed rather than dead-letter everything
        400 if metadata_refused(body) => retry(short(
            "; set `structured_metadata = false` for this Loki, or allow structured metadata in its limits_config",
        )),
        400 => cutoff_refusal(body, entries, set).unwrap_or_else(|| Outcome::Status {
            code,
            excerpt: http::excerpt(body.trim(), 2000).to_string(),
            verdict: Verdict::Refused,
            after: None,
        }),
        413 => Outcome::TooLarge {
            code,
            excerpt: http::excerpt(body.trim(), 2000).to_string(),
        },
        401 | 403 => Outcome::Auth {
            code,
            excerpt: short(""),
        },
        404 | 405 => retry(short(
            " (no push endpoint here: check `url` and `push_path`)",
        )),
        _ => retry(http::excerpt(body.trim(), 500).to_string()),
    }
}

/// A 400 naming a cutoff, for a push of one stream: the entries older than the latest cutoff
/// named are refused (both cutoffs only move forward, so they would be refused again), the
/// others pushed again. `None` if that does not apply.
fn cutoff_refusal(body: &str, entries: &[Entry<'_>], set: &[usize]) -> Option<Outcome> {
    if encode::streams(entries, set).len() > 1 {
        return None;
    }
    let cut = reject::cutoffs(body).into_iter().max_by_key(|c| c.nanos)?;
    let (mut refused, mut resend) = (Vec::new(), Vec::new());
    for (p, &i) in set.iter().enumerate() {
        let ts = entries.get(i)?.ts;
        if ts < cut.nanos {
            // Loki's line may name another entry of the push: say which cutoff applied
            let why = format!(
                "HTTP 400 (entry time {} is before the oldest acceptable timestamp Loki named): {}",
                encode::rfc3339_nanos(ts),
                cut.line
            );
            refused.push((p, why));
        } else {
            resend.push(p);
        }
    }
    (!refused.is_empty()).then_some(Outcome::PartlyRefused {
        refused,
        resend,
        wait: None,
    })
}

/// A batch as Loki pushes. Indices are entries (the records that decoded).
struct Pushes<'a> {
    sink: &'a LokiSink,
    recs: &'a Records<'a>,
    entries: Vec<Entry<'a>>,
    owner: Vec<usize>,
    /// Records that do not decode (a bug, never data): dead-lettered as they are.
    broken: Vec<usize>,
}

impl Requests for Pushes<'_> {
    /// Requests of at most `max_request_bytes`, stream by stream, each in time order, so that
    /// a stream's later pushes never carry older entries.
    fn plan(&self) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..self.entries.len()).collect();
        let mut work: Vec<Vec<usize>> = Vec::new();
        let mut cur = Vec::new();
        let mut size = 0usize;
        for i in encode::streams(&self.entries, &all)
            .into_iter()
            .flat_map(|(_, s)| s)
        {
            let e = &self.entries[i];
            let n = e.line.len() + e.labels.len() + 128;
            if !cur.is_empty() && size + n > self.sink.max_request_bytes {
                work.push(std::mem::take(&mut cur));
                size = 0;
            }
            cur.push(i);
            size += n;
        }
        if !cur.is_empty() {
            work.push(cur);
        }
        work
    }

    async fn send(&self, set: &[usize]) -> Outcome {
        self.sink.push(&self.entries, set).await
    }

    fn segment(&self, i: usize) -> usize {
        self.owner.get(i).copied().unwrap_or(0)
    }

    fn dead_letter_json(&self, i: usize) -> Cow<'_, [u8]> {
        Cow::Owned(self.entries[i].to_json())
    }

    /// A refused push of several streams: the answer's cutoffs may be per stream, so ask
    /// again stream by stream; one stream: halves in time order (the older goes first).
    fn split(&self, set: &[usize], too_large: bool) -> Vec<Vec<usize>> {
        let streams = encode::streams(&self.entries, set);
        if streams.len() > 1 && !too_large {
            return streams.into_iter().map(|(_, s)| s).collect();
        }
        let ordered: Vec<usize> = streams.into_iter().flat_map(|(_, s)| s).collect();
        super::engine::halves(&ordered)
    }

    fn unsendable(&self) -> Vec<(usize, &[u8], String)> {
        let why = "the Loki sink could not read back its own entry (a bug; please report it)";
        self.broken
            .iter()
            .map(|&i| (self.recs.segment(i), self.recs.record(i), why.to_string()))
            .collect()
    }
}

/// Loki's refusal of structured metadata (`stream '{..}' includes structured metadata, but
/// this feature is disallowed...`): a whole-tenant setting, not a fault of the entry.
fn metadata_refused(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    b.contains("structured metadata")
        && ["disallowed", "disabled", "not allowed", "not enabled"]
            .iter()
            .any(|w| b.contains(w))
}

/// `vm_app_version{version="victoria-logs-v1.52.1", short_version="v1.52.1"} 1`
fn victorialogs_version(metrics: &str) -> Option<&str> {
    let line = metrics.lines().find(|l| l.starts_with("vm_app_version{"))?;
    let v = line
        .split("short_version=\"")
        .nth(1)
        .or_else(|| line.split("version=\"").nth(1))?;
    v.split('"').next()
}

#[cfg(test)]
mod tests {
    #[test]
    fn victorialogs_version_from_metrics() {
        let m =
            "# x\nvm_app_version{version=\"victoria-logs-v1.52.1\", short_version=\"v1.52.1\"} 1\n";
        assert_eq!(super::victorialogs_version(m), Some("v1.52.1"));
        let m = "vm_app_version{version=\"victoria-logs-v1.52.1\"} 1\n";
        assert_eq!(
            super::victorialogs_version(m),
            Some("victoria-logs-v1.52.1")
        );
    }
}
