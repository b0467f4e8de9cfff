//! The Elasticsearch / OpenSearch sink: `_bulk` with `create` and `_id = event.id`, so a replay
//! after a crash answers 409 per document instead of duplicating it. Per-item results are
//! read: 409 counts as stored; 429 and 5xx items are retried alone with backoff; other 4xx
//! (mapping errors) go to the dead-letter file with the server's reason.

use std::io::Write;
use std::sync::{Arc, Mutex};

use flate2::Compression as GzLevel;
use flate2::write::GzEncoder;
use serde::Deserialize;

use std::borrow::Cow;

use super::dead_letter::DeadLetter;
use super::engine::{Code, Engine, Outcome, Records, Requests, Verdict};
use super::{Delivered, Probe, SinkError, http};
use crate::batch::Segment;
use crate::config::{Compression, ElasticsearchSink as Config, EsMode};
use crate::kind::Kind;
use crate::metrics::SinkStats;
use crate::record::Record;
use crate::record::json::write_str;
use crate::sink::Encoding;

/// Where a record goes: `logs-epost.<kind>-<namespace>` (data streams) or a date-patterned
/// index (`epost-{kind}-%Y.%m.%d`, the record's local date).
#[derive(Debug)]
pub struct BulkEncoder {
    mode: EsMode,
    namespace: String,
    index: String,
    /// The start of the action line, `{"create":{"_index":"...","_id":"`, per kind (and, for
    /// date-patterned indices, the last day seen of that kind): built once, copied per record.
    actions: Mutex<Vec<ActionPrefix>>,
}

/// (kind, local day or 0, `{"create":{"_index":"...","_id":"`)
type ActionPrefix = (Kind, i64, Box<[u8]>);

impl BulkEncoder {
    pub fn new(mode: EsMode, namespace: &str, index: &str) -> BulkEncoder {
        BulkEncoder {
            mode,
            namespace: namespace.to_string(),
            index: index.to_string(),
            actions: Mutex::new(Vec::new()),
        }
    }

    pub fn index_for(&self, kind: Kind, local_day: i64) -> String {
        match self.mode {
            EsMode::DataStream => format!("logs-epost.{}-{}", kind.name(), self.namespace),
            EsMode::Index => {
                let pattern = self.index.replace("{kind}", kind.name());
                // The config refuses a pattern that cannot be formatted; should one get here
                // all the same, the default pattern is used rather than panicking.
                format_index(&pattern, local_day)
                    .or_else(|| format_index(&format!("epost-{}-%Y.%m.%d", kind.name()), local_day))
                    .unwrap_or_else(|| format!("epost-{}", kind.name()))
            }
        }
    }

    pub fn encode(&self, rec: &Record<'_>, out: &mut Vec<u8>) {
        let kind = rec.source.kind;
        let day = match self.mode {
            EsMode::DataStream => 0,
            EsMode::Index => {
                let ts = rec.timestamp;
                (ts.unix_ms + i64::from(ts.offset_secs) * 1000).div_euclid(86_400_000)
            }
        };
        {
            let mut actions = self.actions.lock().unwrap();
            match actions.iter().find(|(k, d, _)| *k == kind && *d == day) {
                Some((_, _, prefix)) => out.extend_from_slice(prefix),
                None => {
                    let mut prefix = b"{\"create\":{\"_index\":".to_vec();
                    write_str(&mut prefix, &self.index_for(kind, day));
                    prefix.extend_from_slice(b",\"_id\":\"");
                    out.extend_from_slice(&prefix);
                    actions.retain(|(k, _, _)| *k != kind);
                    actions.push((kind, day, prefix.into()));
                }
            }
        }
        let id = rec.event_id().to_hex();
        out.extend_from_slice(id.as_str().as_bytes());
        out.extend_from_slice(b"\"}}\n");
        rec.write_json_with_id(&id, out);
        out.push(b'\n');
    }
}

/// Owned by `config`, which checks patterns with it at load; re-exported for the sink.
pub use crate::config::format_index;

pub struct ElasticsearchSink {
    name: String,
    urls: Vec<String>,
    next_url: Mutex<usize>,
    client: reqwest::Client,
    encoder: Arc<BulkEncoder>,
    compression: Compression,
    level: u32,
    pipeline: Option<String>,
    template: bool,
    mode: EsMode,
    index_pattern: String,
    engine: Engine,
}

/// The first reading of a `_bulk` response: when `errors` is false every item was stored,
/// and only the number of items is needed, which is counted without building them (a
/// million-record backfill reads 680,000 items).
#[derive(Deserialize)]
struct BulkSummary {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: ItemCount,
}

#[derive(Default)]
struct ItemCount(usize);

impl<'de> Deserialize<'de> for ItemCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = ItemCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of bulk items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ItemCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(ItemCount(n))
            }
        }
        d.deserialize_seq(Counter)
    }
}

/// The full reading, when some item failed.
#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    error: Option<serde_json::Value>,
}

impl ElasticsearchSink {
    pub fn new(name: &str, c: &Config, dead: Arc<DeadLetter>) -> Result<Self, SinkError> {
        let urls: Vec<String> = c
            .url
            .list()
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        if urls.is_empty() {
            return Err(SinkError::Config("`url` is empty".into()));
        }
        for u in &urls {
            reqwest::Url::parse(u).map_err(|e| SinkError::Config(format!("bad url `{u}`: {e}")))?;
        }
        let auth = http::auth_header(
            c.user.as_deref(),
            c.password.as_ref(),
            c.bearer_token.as_ref(),
            c.api_key.as_ref(),
        );
        let client = http::client(&c.tls, c.request_timeout.0, &c.headers, auth)?;
        let index_pattern = c
            .index
            .replace("{kind}", "*")
            .split('%')
            .next()
            .unwrap_or("epost-")
            .trim_end_matches(['-', '.', '_'])
            .to_string()
            + "*";
        Ok(ElasticsearchSink {
            name: name.to_string(),
            urls,
            next_url: Mutex::new(0),
            client,
            encoder: Arc::new(BulkEncoder::new(c.mode, &c.namespace, &c.index)),
            compression: c.compression,
            level: c.compression_level.clamp(1, 9),
            pipeline: c.pipeline.clone(),
            template: c.template,
            mode: c.mode,
            index_pattern,
            engine: Engine::new(name, dead),
        })
    }

    pub fn encoding(&self) -> Encoding {
        Encoding::EsBulk(self.encoder.clone())
    }

    fn url(&self) -> String {
        let mut n = self.next_url.lock().unwrap();
        let u = self.urls[*n % self.urls.len()].clone();
        *n = n.wrapping_add(1);
        u
    }

    pub async fn probe(&self) -> Result<Probe, SinkError> {
        let url = self.url();
        let get = |path: &str| {
            let req = self.client.get(format!("{url}{path}"));
            let url = url.clone();
            async move {
                let resp = req
                    .send()
                    .await
                    .map_err(|e| SinkError::Transient(format!("{url}: {}", http::describe(&e))))?;
                let status = resp.status();
                if status == 401 || status == 403 {
                    return Err(SinkError::Config(format!(
                        "{url}: authentication refused ({status})"
                    )));
                }
                let bytes = http::read_answer(resp, http::MAX_ANSWER_BYTES)
                    .await
                    .map_err(|source| SinkError::Answer {
                        what: url.clone(),
                        source,
                    })?;
                let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                Ok((status, body))
            }
        };
        let (status, body) = get("/").await?;
        let (dist, version) = if status.is_success() {
            (
                body["version"]["distribution"].as_str().map(str::to_string),
                body["version"]["number"].as_str().map(str::to_string),
            )
        } else {
            // Some distributions (the integration-test one) have no root endpoint.
            let (status, body) = get("/_nodes/_local?filter_path=nodes.*.version").await?;
            if !status.is_success() {
                return Err(SinkError::Transient(format!("{url}: HTTP {status}")));
            }
            let v = body["nodes"]
                .as_object()
                .and_then(|m| m.values().next())
                .and_then(|n| n["version"].as_str())
                .map(str::to_string);
            (None, v)
        };
        let dist = match dist.as_deref() {
            Some("opensearch") => "OpenSearch",
            _ => "Elasticsearch",
        };
        Ok(Probe {
            server: format!("{dist} {} at {url}", version.as_deref().unwrap_or("?")),
        })
    }

    /// Installs the index template with ECS mappings (idempotent: PUT replaces it).
    pub async fn start(&self) -> Result<(), SinkError> {
        if !self.template {
            return Ok(());
        }
        let (name, patterns, data_stream) = match self.mode {
            EsMode::DataStream => ("epost-shipper", vec!["logs-epost.*-*".to_string()], true),
            EsMode::Index => (
                "epost-shipper-index",
                vec![self.index_pattern.clone()],
                false,
            ),
        };
        let body = template(&patterns, data_stream);
        let url = self.url();
        let resp = self
            .client
            .put(format!("{url}/_index_template/{name}"))
            .json(&body)
            .send()
            .await
            .map_err(|e| SinkError::Transient(format!("{url}: {}", http::describe(&e))))?;
        let status = resp.status();
        if status.is_success() {
            tracing::info!(sink = %self.name, template = name, ?patterns, "index template installed");
            return Ok(());
        }
        let text = http::read_text(resp)
            .await
            .unwrap_or_else(|e| format!("({e})"));
        Err(SinkError::Transient(format!(
            "installing index template `{name}`: HTTP {status}: {}",
            http::excerpt(&text, 500)
        )))
    }

    /// Delivers a batch through the engine: one `_bulk` request of the whole batch, split in
    /// halves when the server (or a proxy in front of it) answers 413.
    pub async fn deliver(
        &self,
        idx: usize,
        batch: &[Arc<Segment>],
        stats: &SinkStats,
    ) -> Delivered {
        let bulk = Bulk {
            sink: self,
            recs: Records::new(idx, batch),
        };
        self.engine.deliver(&bulk, batch.len(), stats).await
    }

    /// The request body. Uncompressed and complete, it is streamed straight from the
    /// segments' payloads (no copy: a 5 MiB batch costs no extra 5 MiB); a part of the batch
    /// (a retry of some documents, a split), or gzip, builds a buffer.
    fn body(&self, recs: &Records<'_>, set: &[usize]) -> Result<(reqwest::Body, u64), String> {
        let (batch, idx) = (recs.batch, recs.idx);
        let full = recs.is_all(set);
        if full && self.compression == Compression::None {
            let size: usize = batch.iter().map(|s| s.payloads[idx].data.len()).sum();
            let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = batch
                .iter()
                .map(|s| Ok(bytes::Bytes::from_owner(PayloadBytes(s.clone(), idx))))
                .collect();
            let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
            return Ok((body, size as u64));
        }
        let size: usize = if full {
            batch.iter().map(|s| s.payloads[idx].data.len()).sum()
        } else {
            set.iter().map(|&i| recs.record(i).len()).sum()
        };
        // Compressed straight from the payloads: no uncompressed copy of the batch.
        let mut parts: Box<dyn Iterator<Item = &[u8]>> = if full {
            Box::new(batch.iter().map(|s| &s.payloads[idx].data[..]))
        } else {
            Box::new(set.iter().map(|&i| recs.record(i)))
        };
        let bytes = match self.compression {
            Compression::None => parts.fold(Vec::with_capacity(size), |mut v, p| {
                v.extend_from_slice(p);
                v
            }),
            Compression::Gzip => {
                let mut gz = GzEncoder::new(Vec::with_capacity(size / 8), GzLevel::new(self.level));
                parts
                    .try_for_each(|p| gz.write_all(p))
                    .and_then(|()| gz.finish())
                    .map_err(|e| format!("gzip: {e}"))?
            }
        };
        let len = bytes.len() as u64;
        Ok((reqwest::Body::from(bytes), len))
    }

    /// Sends one `_bulk` request of `docs` documents and classifies the answer.
    async fn bulk(&self, (body, len): (reqwest::Body, u64), docs: usize) -> Outcome {
        let url = self.url();
        let mut req = self
            .client
            .post(format!("{url}/_bulk"))
            .query(&[("filter_path", "errors,items.*.status,items.*.error")])
            .header("content-type", "application/x-ndjson")
            .header("content-length", len);
        if let Some(p) = &self.pipeline {
            req = req.query(&[("pipeline", p)]);
        }
        if self.compression == Compression::Gzip {
            req = req.header("content-encoding", "gzip");
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Transport(format!("{url}: {}", http::describe(&e))),
        };
        let status = resp.status();
        let after = http::retry_after(resp.headers());
        let code = Code::Http(status.as_u16());
        let bytes = match http::read_answer(resp, answer_limit(docs)).await {
            Ok(b) => b,
            // A success answer too long to read (many long item errors, or a broken server):
            // ask about fewer documents at a time. `create` makes that safe: the documents
            // already stored answer 409.
            Err(e @ http::AnswerError::TooLarge { .. }) if status.is_success() => {
                return Outcome::TooLarge {
                    code,
                    excerpt: e.to_string(),
                };
            }
            Err(e) => return Outcome::Unreadable(e),
        };
        if !status.is_success() {
            let excerpt = http::excerpt(String::from_utf8_lossy(&bytes).trim(), 500).to_string();
            // 413: a body limit (ES's http.max_content_length, or a proxy's: nginx's default
            // is 1 MiB): split. 401/403: fix the credentials; the records wait on disk. Any
            // other status: nothing was stored, so retrying is the only safe answer.
            return match status.as_u16() {
                413 => Outcome::TooLarge { code, excerpt },
                401 | 403 => Outcome::Auth { code, excerpt },
                _ => Outcome::Status {
                    code,
                    excerpt,
                    verdict: Verdict::Retry,
                    after,
                },
            };
        }
        items_outcome(&bytes, docs)
            .unwrap_or_else(|e| Outcome::Transport(format!("{url}/_bulk: {e}")))
    }
}

/// The most of a `_bulk` answer read: `http::MAX_ANSWER_BYTES`, plus 256 bytes per document,
/// since the answer has an item per document (26 bytes stored, a few hundred with an error).
/// A longer success answer splits the request (`bulk`), so this bounds memory without ever
/// stalling a batch whose answer is legitimately long.
pub fn answer_limit(docs: usize) -> usize {
    http::MAX_ANSWER_BYTES.saturating_add(docs.saturating_mul(256))
}

/// Reads the items of a successful `_bulk` answer for `docs` documents: 2xx and 409 (already
/// there: a replay) are stored, 429 and 5xx are sent again after a backoff, anything else
/// (mapping errors) is refused with the server's reason.
fn items_outcome(bytes: &[u8], docs: usize) -> Result<Outcome, String> {
    let unreadable = |e: serde_json::Error| format!("unreadable response: {e}");
    let mismatch = |n: usize| format!("bulk response has {n} items for {docs} documents");
    let summary: BulkSummary = serde_json::from_slice(bytes).map_err(unreadable)?;
    if !summary.errors {
        return match summary.items.0 {
            n if n == docs => Ok(Outcome::Delivered),
            n => Err(mismatch(n)),
        };
    }
    let parsed: BulkResponse = serde_json::from_slice(bytes).map_err(unreadable)?;
    if parsed.items.len() != docs {
        return Err(mismatch(parsed.items.len()));
    }
    let (mut refused, mut resend) = (Vec::new(), Vec::new());
    let mut wait = None;
    for (p, mut m) in parsed.items.into_iter().enumerate() {
        let item = m.drain().next().map(|(_, v)| v).unwrap_or(BulkItem {
            status: 500,
            error: None,
        });
        match item.status {
            200..=299 | 409 => {}
            429 | 500..=599 => {
                wait.get_or_insert_with(|| {
                    format!("documents rejected for now: {}", reason(&item))
                });
                resend.push(p);
            }
            _ => refused.push((p, format!("HTTP {}: {}", item.status, reason(&item)))),
        }
    }
    Ok(Outcome::PartlyRefused {
        refused,
        resend,
        wait,
    })
}

/// A batch as `_bulk` requests.
struct Bulk<'a> {
    sink: &'a ElasticsearchSink,
    recs: Records<'a>,
}

impl Requests for Bulk<'_> {
    fn plan(&self) -> Vec<Vec<usize>> {
        vec![self.recs.all()]
    }

    async fn send(&self, set: &[usize]) -> Outcome {
        match self.sink.body(&self.recs, set) {
            Ok(body) => self.sink.bulk(body, set.len()).await,
            Err(e) => Outcome::Transport(e),
        }
    }

    fn segment(&self, i: usize) -> usize {
        self.recs.segment(i)
    }

    fn dead_letter_json(&self, i: usize) -> Cow<'_, [u8]> {
        Cow::Borrowed(doc_of(self.recs.record(i)))
    }
}

/// One segment's payload as `Bytes` without copying it.
struct PayloadBytes(Arc<Segment>, usize);

impl AsRef<[u8]> for PayloadBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0.payloads[self.1].data
    }
}

fn reason(item: &BulkItem) -> String {
    match &item.error {
        Some(e) => {
            let t = e["type"].as_str().unwrap_or("error");
            let r = e["reason"].as_str().unwrap_or("");
            let cause = e["caused_by"]["reason"].as_str();
            match cause {
                Some(c) => format!("{t}: {r} (caused by: {c})"),
                None => format!("{t}: {r}"),
            }
        }
        None => "no reason given".into(),
    }
}

/// The document line of an action + document pair.
fn doc_of(pair: &[u8]) -> &[u8] {
    match memchr::memchr(b'\n', pair) {
        Some(i) => &pair[i + 1..],
        None => pair,
    }
}

/// The index template: ECS types for the fields of `records.md`.
pub fn template(patterns: &[String], data_stream: bool) -> serde_json::Value {
    use serde_json::json;
    let kw = json!({"type": "keyword", "ignore_above": 1024});
    let text_kw =
        json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}});
    let mappings = json!({
        "dynamic_templates": [
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}
        ],
        "properties": {
            "@timestamp": {"type": "date"},
            "message": {"type": "text"},
            "event": {"properties": {
                "id": kw, "dataset": kw, "module": kw, "action": kw, "outcome": kw
            }},
            "host": {"properties": {"name": kw}},
            "log": {"properties": {"file": {"properties": {"path": kw}}, "offset": {"type": "long"}}},
            "client": {"properties": {"ip": {"type": "ip"}, "domain": kw}},
            "server": {"properties": {"domain": kw, "port": {"type": "long"}}},
            "destination": {"properties": {"ip": {"type": "ip"}, "domain": kw}},
            "user": {"properties": {"name": kw}},
            "email": {"properties": {
                "local_id": kw,
                "from": {"properties": {"address": kw}},
                "to": {"properties": {"address": kw}},
                "subject": text_kw
            }},
            "tls": {"properties": {"established": {"type": "boolean"}}},
            "error": {"properties": {"message": text_kw}},
            "file": {"properties": {"path": kw, "size": {"type": "long"}, "hash": {"properties": {"sha256": kw}}}},
            "epost": {"properties": {
                "log": kw,
                "parse_error": kw,
                "decode_error": {"type": "boolean"},
                "time_inferred": {"type": "boolean"},
                "truncated": {"type": "boolean"},
                "queue": {"properties": {"suffix": kw}},
                "session": {"properties": {"id": kw, "status": kw}},
                "auth": {"properties": {"method": kw, "result": kw}},
                "reject": {"properties": {"reason": kw}},
                "smtp": {"properties": {"helo": kw, "reply_code": {"type": "integer"}}},
                "trace": {"properties": {"direction": kw}},
                "protocol": {"properties": {"command": kw, "args": kw, "status": kw}},
                "filter": {"properties": {"warning": text_kw, "unknown_virus": {"type": "boolean"}}},
                "maildb": {"properties": {"in": kw, "match": kw}}
            }}
        }
    });
    let mut t = json!({
        "index_patterns": patterns,
        "priority": 200,
        "template": {
            "settings": {"index": {"number_of_replicas": 0}},
            "mappings": mappings
        },
        "_meta": {"managed_by": "epost-shipper", "version": env!("CARGO_PKG_VERSION")}
    });
    if data_stream {
        t["data_stream"] = json!({});
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names() {
        let e = BulkEncoder::new(EsMode::DataStream, "prod", "");
        assert_eq!(e.index_for(Kind::Inlog, 0), "logs-epost.inlog-prod");
        let e = BulkEncoder::new(EsMode::Index, "", "epost-{kind}-%Y.%m.%d");
        // 2017-11-30 is day 17500 since the epoch
        assert_eq!(
            e.index_for(Kind::Faillog, 17_500),
            "epost-faillog-2017.11.30"
        );
        assert_eq!(
            e.index_for(Kind::Faillog, 17_501),
            "epost-faillog-2017.12.01"
        );
    }

    fn record(
        source: &crate::record::Source,
        unix_ms: i64,
        offset_secs: i32,
        offset: u64,
    ) -> Record<'_> {
        Record {
            source,
            timestamp: crate::time::Timestamp {
                unix_ms,
                offset_secs,
            },
            time_inferred: false,
            message: "m".into(),
            offset,
            action: "a".into(),
            outcome: crate::record::Outcome::Success,
            parse_error: None,
            decode_error: false,
            truncated: false,
            fields: Default::default(),
        }
    }

    /// The cached action-line prefix follows the kind and, for dated indices, the day of each
    /// record, whatever order they come in.
    #[test]
    fn action_lines_follow_kind_and_day() {
        use crate::record::Source;
        let e = BulkEncoder::new(EsMode::Index, "", "epost-{kind}-%Y.%m.%d");
        let inlog = Source::new("MAILSV01", Kind::Inlog, "/m/inlog/MAILSV01/171130.log");
        let faillog = Source::new("MAILSV01", Kind::Faillog, "/m/faillog/MAILSV01/171130.log");
        // 2017-11-30 23:59:59 and 2017-12-01 00:00:01 in Tokyo
        let (late, early) = (1_512_053_999_000, 1_512_054_001_000);
        let mut out = Vec::new();
        let mut expected = Vec::new();
        for (source, ms, index) in [
            (&inlog, late, "epost-inlog-2017.11.30"),
            (&faillog, late, "epost-faillog-2017.11.30"),
            (&inlog, early, "epost-inlog-2017.12.01"),
            (&inlog, late, "epost-inlog-2017.11.30"),
            (&faillog, early, "epost-faillog-2017.12.01"),
            (&faillog, early, "epost-faillog-2017.12.01"),
        ] {
            let rec = record(source, ms, 9 * 3600, 7);
            e.encode(&rec, &mut out);
            let id = rec.event_id().to_hex();
            expected.push(format!(
                "{{\"create\":{{\"_index\":\"{index}\",\"_id\":\"{}\"}}}}",
                id.as_str()
            ));
            expected.push(rec.to_json());
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
        let e = BulkEncoder::new(EsMode::DataStream, "prod", "");
        let mut out = Vec::new();
        let rec = record(&faillog, late, 0, 0);
        e.encode(&rec, &mut out);
        assert!(out.starts_with(b"{\"create\":{\"_index\":\"logs-epost.faillog-prod\",\"_id\":\""));
    }
}
