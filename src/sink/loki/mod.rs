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
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};

use super::dead_letter::DeadLetter;
use super::{Backoff, Delivered, Probe, SinkError, http};
use crate::batch::{Encoding, Segment};
use crate::config::{LokiEncoding, LokiSink as Config};
pub use encode::LokiEncoder;
use encode::{BUILTIN_LABELS, Entry};

pub struct LokiSink {
    name: String,
    base: String,
    push_url: String,
    client: reqwest::Client,
    encoder: Arc<LokiEncoder>,
    encoding: LokiEncoding,
    tenant: Option<String>,
    max_request_bytes: usize,
    dead: Arc<DeadLetter>,
}

/// What one push came to.
enum Push {
    Stored,
    /// Worth trying again later (transport error, 429, 5xx, auth...).
    Retry(String),
    /// 400 (some entries refused, the others stored) or 413 (too large).
    Refused {
        status: StatusCode,
        body: String,
    },
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
            name: name.to_string(),
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
            dead,
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
            Push::Stored => Ok(()),
            Push::Retry(why) => Err(SinkError::Transient(why)),
            Push::Refused { status, body } => Err(SinkError::Config(format!(
                "{}: an empty push was refused (HTTP {status}): {}; check `url` and `push_path`",
                self.push_url,
                truncate(body.trim(), 300)
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
                Ok((status, resp.text().await.unwrap_or_default()))
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
                            truncate(&body, 200)
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

    async fn push(&self, entries: &[Entry<'_>], set: &[usize]) -> Push {
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
                Err(e) => return Push::Retry(format!("gzip: {e}")),
            },
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Push::Retry(format!("{url}: {}", http::describe(&e))),
        };
        let status = resp.status();
        if status.is_success() {
            return Push::Stored;
        }
        let body = resp.text().await.unwrap_or_default();
        match status.as_u16() {
            // VictoriaLogs' answer to a wrong push path: a configuration error, not a refusal
            400 if body.contains("unsupported path") => Push::Retry(format!(
                "{url}: HTTP {status}: {}; check `url` and `push_path`",
                truncate(body.trim(), 300)
            )),
            // a Loki that takes no structured metadata refuses every entry: wait for the
            // configuration to be fixed rather than dead-letter everything
            400 if metadata_refused(&body) => Push::Retry(format!(
                "{url}: HTTP {status}: {}; set `structured_metadata = false` for this Loki, or allow structured metadata in its limits_config",
                truncate(body.trim(), 300)
            )),
            400 | 413 => Push::Refused { status, body },
            401 | 403 => Push::Retry(format!(
                "{url}: authentication refused (HTTP {status}): {}; records wait on disk until the credentials are fixed",
                truncate(&body, 300)
            )),
            404 | 405 => Push::Retry(format!(
                "{url}: HTTP {status}: no push endpoint here (check `url` and `push_path`): {}",
                truncate(&body, 300)
            )),
            _ => Push::Retry(format!("{url}: HTTP {status}: {}", truncate(&body, 500))),
        }
    }

    pub async fn deliver(
        &self,
        idx: usize,
        batch: &[Arc<Segment>],
    ) -> Result<Delivered, SinkError> {
        let mut dead = vec![0u64; batch.len()];
        let mut entries: Vec<Entry<'_>> = Vec::new();
        // the segment of each entry, for the per-segment dead-letter counts
        let mut owner: Vec<usize> = Vec::new();
        for (s, seg) in batch.iter().enumerate() {
            let p = &seg.payloads[idx];
            for r in 0..p.records() {
                match encode::decode(p.record(r)) {
                    Some(e) => {
                        entries.push(e);
                        owner.push(s);
                    }
                    None => {
                        let why = "the Loki sink could not read back its own entry (a bug; please report it)";
                        self.dead_letter(why, p.record(r))?;
                        dead[s] += 1;
                    }
                }
            }
        }

        // requests of at most max_request_bytes, popped in order: stream by stream, each in
        // time order, so that a stream's later pushes never carry older entries
        let all: Vec<usize> = (0..entries.len()).collect();
        let mut work: Vec<Vec<usize>> = Vec::new();
        let mut cur = Vec::new();
        let mut size = 0usize;
        for i in encode::streams(&entries, &all)
            .into_iter()
            .flat_map(|(_, s)| s)
        {
            let e = &entries[i];
            let n = e.line.len() + e.labels.len() + 128;
            if !cur.is_empty() && size + n > self.max_request_bytes {
                work.push(std::mem::take(&mut cur));
                size = 0;
            }
            cur.push(i);
            size += n;
        }
        if !cur.is_empty() {
            work.push(cur);
        }
        work.reverse();

        // Once anything is stored or dead-lettered, failures are retried here rather than by
        // the runner, so that no record is dead-lettered twice.
        let mut progressed = false;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        while let Some(set) = work.pop() {
            match self.push(&entries, &set).await {
                Push::Stored => progressed = true,
                Push::Retry(why) => {
                    if !progressed {
                        return Err(SinkError::Transient(why));
                    }
                    let d = backoff.next_delay();
                    tracing::warn!(sink = %self.name, error = %why, entries = set.len(), retry_in = ?d, "push failed; will retry");
                    tokio::time::sleep(d).await;
                    work.push(set);
                }
                Push::Refused { status, body } => {
                    progressed |=
                        self.isolate(&entries, &owner, set, status, &body, &mut work, &mut dead)?;
                }
            }
        }
        Ok(Delivered {
            dead_lettered: dead,
        })
    }

    /// A refused push of `set`: dead-letters what is known to be refused and queues the rest
    /// in smaller pushes. Returns whether anything was dead-lettered.
    #[allow(clippy::too_many_arguments)]
    fn isolate(
        &self,
        entries: &[Entry<'_>],
        owner: &[usize],
        set: Vec<usize>,
        status: StatusCode,
        body: &str,
        work: &mut Vec<Vec<usize>>,
        dead: &mut [u64],
    ) -> Result<bool, SinkError> {
        if set.len() == 1 {
            let reason = format!("HTTP {}: {}", status.as_u16(), truncate(body.trim(), 2000));
            self.dead_letter(&reason, &entries[set[0]].to_json())?;
            dead[owner[set[0]]] += 1;
            tracing::warn!(sink = %self.name, reason = %reason, file = %self.dead.path().display(), "entry refused by Loki; written to the dead-letter file");
            return Ok(true);
        }
        let streams = encode::streams(entries, &set);
        if streams.len() > 1 && status == StatusCode::BAD_REQUEST {
            // the answer's cutoffs may be per stream: ask again stream by stream
            for (_, s) in streams.into_iter().rev() {
                work.push(s);
            }
            return Ok(false);
        }
        // in time order, so that halves are time ranges and the older goes first
        let ordered: Vec<usize> = streams.into_iter().flat_map(|(_, s)| s).collect();
        if status == StatusCode::BAD_REQUEST
            && let Some(cut) = reject::cutoffs(body).into_iter().max_by_key(|c| c.nanos)
        {
            let (old, rest): (Vec<usize>, Vec<usize>) =
                ordered.iter().partition(|&&i| entries[i].ts < cut.nanos);
            if !old.is_empty() {
                // Loki's line may name another entry of the push: say which cutoff applied
                let reason = |ts: i64| {
                    format!(
                        "HTTP 400 (entry time {} is before the oldest acceptable timestamp Loki named): {}",
                        encode::rfc3339_nanos(ts),
                        cut.line
                    )
                };
                for &i in &old {
                    self.dead_letter(&reason(entries[i].ts), &entries[i].to_json())?;
                    dead[owner[i]] += 1;
                }
                let reason = cut.line;
                tracing::warn!(sink = %self.name, entries = old.len(), reason = %reason, file = %self.dead.path().display(), "entries older than Loki accepts; written to the dead-letter file");
                if !rest.is_empty() {
                    work.push(rest);
                }
                return Ok(true);
            }
        }
        let (a, b) = ordered.split_at(ordered.len() / 2);
        work.push(b.to_vec());
        work.push(a.to_vec());
        Ok(false)
    }

    fn dead_letter(&self, reason: &str, record: &[u8]) -> Result<(), SinkError> {
        self.dead.write(&self.name, reason, record).map_err(|e| {
            // Without the dead-letter file the record would be lost: retry.
            SinkError::Transient(format!(
                "cannot write dead-letter file `{}`: {e}",
                self.dead.path().display()
            ))
        })
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

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
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
