//! Checks made once the TOML is read: every value an admin can write is bounded, so that no
//! config makes the shipper panic (`Instant + Duration` overflow, chrono's format of a bad
//! pattern), spin (`poll_interval = "0s"`) or allocate without bound. The bounds are in the
//! README's config tables; each refusal names the file, line and key.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::error::ConfigError;
use super::redact::{display_url, percent_decode};
use super::sinks::{ElasticsearchSink, LokiSink, OtlpProtocol, OtlpSink, Secret, SinkConfig};
use super::units::ByteSize;
use super::{Metrics, NamedSink, Pipeline, RawSource, Retention};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// Where each key's value stands in the file: `source.poll_interval`, `sink[2].url`,
/// `sink[2].url[1]` (list items and `[[sink]]` tables counted from 1).
pub struct Spans(HashMap<String, Range<usize>>);

impl Spans {
    pub fn collect(root: &DeTable<'_>) -> Spans {
        let mut map = HashMap::new();
        walk("", root, &mut map);
        Spans(map)
    }

    /// The key's span, else its table's (a key left at its default has none).
    fn find(&self, key: &str) -> Option<Range<usize>> {
        let mut k = key;
        loop {
            if let Some(s) = self.0.get(k) {
                return Some(s.clone());
            }
            k = &k[..k.rfind(['.', '['])?];
        }
    }
}

fn walk(prefix: &str, table: &DeTable<'_>, out: &mut HashMap<String, Range<usize>>) {
    for (k, v) in table.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        out.insert(path.clone(), v.span());
        match v.get_ref() {
            DeValue::Table(t) => walk(&path, t, out),
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    let p = format!("{path}[{}]", i + 1);
                    out.insert(p.clone(), item.span());
                    if let DeValue::Table(t) = item.get_ref() {
                        walk(&p, t, out);
                    }
                }
            }
            _ => {}
        }
    }
}

pub struct Validator<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    pub spans: &'a Spans,
}

/// `500ms`, `30s`, `5m`, `7d`: the way the README writes durations.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        return if d.subsec_nanos() % 1_000_000 == 0 {
            format!("{}ms", d.as_millis())
        } else {
            format!("{d:?}")
        };
    }
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

impl Validator<'_> {
    pub(super) fn err(&self, key: &str, message: String, hint: Option<String>) -> ConfigError {
        self.err_at(key, key, message, hint)
    }

    /// An error about `key`, placed where `span_key` stands (a list item, say).
    pub(super) fn err_at(
        &self,
        key: &str,
        span_key: &str,
        message: String,
        hint: Option<String>,
    ) -> ConfigError {
        let span = self.spans.find(span_key).unwrap_or(0..0);
        ConfigError::at(self.file, self.text, span, key, message, hint)
    }

    fn duration(
        &self,
        key: &str,
        d: Duration,
        min: Duration,
        max: Duration,
        why: &str,
    ) -> Result<(), ConfigError> {
        if d < min || d > max {
            let what = if d < min { "too short" } else { "too long" };
            return Err(self.err(
                key,
                format!(
                    "{} is {what}: allowed {} to {}",
                    human(d),
                    human(min),
                    human(max)
                ),
                Some(why.to_string()),
            ));
        }
        Ok(())
    }

    fn count(&self, key: &str, n: u64, min: u64, max: u64, why: &str) -> Result<(), ConfigError> {
        if n < min || n > max {
            return Err(self.err(
                key,
                format!("{n} is out of range: allowed {min} to {max}"),
                Some(why.to_string()),
            ));
        }
        Ok(())
    }

    fn bytes(
        &self,
        key: &str,
        b: ByteSize,
        min: u64,
        max: u64,
        why: &str,
    ) -> Result<(), ConfigError> {
        if b.0 < min || b.0 > max {
            return Err(self.err(
                key,
                format!(
                    "{b} is out of range: allowed {} to {}",
                    ByteSize(min),
                    ByteSize(max)
                ),
                Some(why.to_string()),
            ));
        }
        Ok(())
    }

    pub(super) fn source(&self, s: &RawSource) -> Result<(), ConfigError> {
        let tail = "the tailer wakes up this often at most; shorter spins the CPU";
        self.duration(
            "source.poll_interval",
            s.poll_interval.0,
            10 * MS,
            HOUR,
            tail,
        )?;
        self.duration(
            "source.partial_line_timeout",
            s.partial_line_timeout.0,
            10 * MS,
            DAY,
            "how long a last line without its line end waits",
        )?;
        self.duration(
            "source.multiline_timeout",
            s.multiline_timeout.0,
            10 * MS,
            HOUR,
            "how long a multi-line record waits for a continuation",
        )?;
        self.duration(
            "source.close_inactive",
            s.close_inactive.0,
            10 * MS,
            7 * DAY,
            "an idle file is closed after this long",
        )?;
        self.duration(
            "source.viruslog_settle",
            s.viruslog_settle.0,
            10 * MS,
            HOUR,
            "how long a viruslog pair may take to be written",
        )?;
        if let Some(d) = s.ignore_older_than {
            // the upper bound keeps `now - age` far from overflowing
            self.duration(
                "source.ignore_older_than",
                d.0,
                SEC,
                1_000_000 * DAY,
                "files modified longer ago are not read at first start",
            )?;
        }
        self.count(
            "source.max_open_files",
            s.max_open_files as u64,
            4,
            10_000,
            "log handles open at once (today's, yesterday's, and a few being caught up)",
        )?;
        if s.kinds.get_ref().is_empty() {
            return Err(self.err(
                "source.kinds",
                "no log kind given: nothing would be read".into(),
                Some("leave it out (all kinds) or list some: [\"inlog\", \"acceptlog\"]".into()),
            ));
        }
        Ok(())
    }

    pub(super) fn pipeline(&self, p: &Pipeline) -> Result<(), ConfigError> {
        self.count(
            "pipeline.queue_segments",
            p.queue_segments as u64,
            1,
            1024,
            "segments held until every sink acknowledged them",
        )?;
        self.bytes(
            "pipeline.segment_max_bytes",
            p.segment_max_bytes,
            4 * KIB,
            64 * MIB,
            "log bytes read in one go",
        )?;
        self.count(
            "pipeline.segment_max_records",
            p.segment_max_records as u64,
            1,
            1_000_000,
            "records in one segment",
        )?;
        // the memory bound of the README: queue_segments × segment_max_bytes per sink
        let held = (p.queue_segments as u64).saturating_mul(p.segment_max_bytes.0);
        if held > GIB {
            return Err(self.err(
                "pipeline.queue_segments",
                format!(
                    "queue_segments × segment_max_bytes = {} of log held in memory per sink: at most 1GiB",
                    ByteSize(held)
                ),
                Some("lower queue_segments or segment_max_bytes".into()),
            ));
        }
        self.duration(
            "pipeline.checkpoint_interval",
            p.checkpoint_interval.0,
            100 * MS,
            HOUR,
            "the checkpoint is written (and fsynced) this often",
        )?;
        self.duration(
            "pipeline.shutdown_timeout",
            p.shutdown_timeout.0,
            100 * MS,
            HOUR,
            "how long a stop waits for batches in flight",
        )?;
        self.bytes(
            "pipeline.max_record_bytes",
            p.max_record_bytes,
            4 * KIB,
            64 * MIB,
            "the largest single record; past it the record is shipped truncated",
        )?;
        Ok(())
    }

    pub(super) fn retention(&self, r: &Retention) -> Result<(), ConfigError> {
        self.count(
            "retention.keep_days",
            u64::from(r.keep_days),
            0,
            36_500,
            "days a log is kept",
        )?;
        if let Some(s) = r.schedule {
            self.duration(
                "retention.schedule",
                s.0,
                MIN,
                365 * DAY,
                "how often `run` runs the retention job",
            )?;
        }
        Ok(())
    }

    pub(super) fn metrics(&self, m: &Metrics) -> Result<(), ConfigError> {
        if m.listen.is_empty() || m.listen.parse::<std::net::SocketAddr>().is_ok() {
            return Ok(());
        }
        let ok = m.listen.rsplit_once(':').is_some_and(|(host, port)| {
            port.parse::<u16>().is_ok()
                && !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        });
        if !ok {
            return Err(self.err(
                "metrics.listen",
                format!("`{}` is not a `host:port` to listen on", m.listen),
                Some("e.g. \"127.0.0.1:9898\", \"[::1]:9898\", or \"\" to turn it off".into()),
            ));
        }
        Ok(())
    }

    pub(super) fn sink_name(
        &self,
        n: usize,
        name: &str,
        earlier: &[NamedSink],
    ) -> Result<(), ConfigError> {
        let key = format!("sink[{n}].name");
        if let Err(why) = valid_sink_name(name) {
            return Err(self.err(
                &key,
                format!("sink name {name:?} {why}"),
                Some(
                    "the name becomes the dead-letter file name: use 1 to 64 letters, digits, `-`, `_` or `.` (not first)"
                        .into(),
                ),
            ));
        }
        // case-insensitively: `ES` and `es` are one dead-letter file on Windows
        if let Some(j) = earlier
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name))
        {
            return Err(self.err(
                &key,
                format!(
                    "two sinks are named `{name}` (sink[{}] and sink[{n}])",
                    j + 1
                ),
                Some(
                    "give each sink its own `name` (names differing only in case count as one)"
                        .into(),
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn sink(&self, n: usize, cfg: &mut SinkConfig) -> Result<(), ConfigError> {
        let p = format!("sink[{n}]");
        if let Some(net) = cfg.network() {
            let b = &net.batch;
            self.count(
                &format!("{p}.batch_max_events"),
                b.batch_max_events as u64,
                1,
                1_000_000,
                "records in one request",
            )?;
            self.bytes(
                &format!("{p}.batch_max_bytes"),
                b.batch_max_bytes,
                KIB,
                256 * MIB,
                "encoded bytes in one request",
            )?;
            self.duration(
                &format!("{p}.batch_timeout"),
                b.batch_timeout.0,
                Duration::ZERO,
                5 * MIN,
                "how long a batch waits for more records (0 = send what is there)",
            )?;
            self.count(
                &format!("{p}.max_in_flight"),
                b.max_in_flight as u64,
                1,
                64,
                "requests in flight at once",
            )?;
            self.duration(
                &format!("{p}.request_timeout"),
                net.request_timeout.0,
                100 * MS,
                HOUR,
                "how long one request may take",
            )?;
            for (k, v) in net.headers {
                let key = format!("{p}.headers.{k}");
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                    return Err(self.err(
                        &key,
                        format!("`{k}` is not a valid header name"),
                        Some("letters, digits and `-`, e.g. `X-Team`".into()),
                    ));
                }
                if reqwest::header::HeaderValue::from_str(v.expose()).is_err() {
                    // the value may be a secret: not shown
                    return Err(self.err(
                        &key,
                        format!("the value of header `{k}` is not a valid header value"),
                        Some("header values are visible ASCII, without line breaks".into()),
                    ));
                }
            }
            if net.tls.cert_file.is_some() != net.tls.key_file.is_some() {
                return Err(self.err(
                    &format!("{p}.tls"),
                    "tls.cert_file and tls.key_file go together".into(),
                    Some("give both (mutual TLS) or neither".into()),
                ));
            }
        }
        match cfg {
            SinkConfig::Elasticsearch(c) => self.elasticsearch(&p, c),
            SinkConfig::Loki(c) => self.loki(&p, c),
            SinkConfig::Otlp(c) => self.otlp(&p, c),
            SinkConfig::File(_) | SinkConfig::Stdout(_) => Ok(()),
        }
    }

    /// Parses a sink URL: http or https, a host, no query. `user:password@` in it is taken out
    /// (and returned) so that no URL we print or log carries a password; it becomes basic
    /// auth, as reqwest would have made it.
    // Long on purpose: the URL checks in the order a user fixes them (scheme, host, query, path,
    // credentials), each with its own message.
    fn url(
        &self,
        key: &str,
        span_key: &str,
        raw: &str,
        grpc: bool,
    ) -> Result<ParsedUrl, ConfigError> {
        let shown = display_url(raw);
        let example = if grpc {
            "http://127.0.0.1:4317"
        } else {
            "https://elastic.example.jp:9200"
        };
        if !raw.contains("://") {
            // `127.0.0.1:4317` does not parse, `localhost:4317` parses with the scheme
            // `localhost`: either way what is missing is the scheme
            return Err(self.err_at(
                key,
                span_key,
                format!("`{shown}` has no scheme"),
                Some(format!(
                    "write `http://{}` (or `https://` for TLS)",
                    shown.trim()
                )),
            ));
        }
        let mut u = reqwest::Url::parse(raw.trim()).map_err(|e| {
            self.err_at(
                key,
                span_key,
                format!("`{shown}` is not a URL: {e}"),
                Some(format!("e.g. `{example}`")),
            )
        })?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(self.err_at(
                key,
                span_key,
                format!("`{shown}`: the scheme `{}` is not supported", u.scheme()),
                Some(format!("use http:// or https://, e.g. `{example}`")),
            ));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(self.err_at(
                key,
                span_key,
                format!("`{shown}` has no host"),
                Some("e.g. `https://elastic.example.jp:9200`".into()),
            ));
        }
        if u.query().is_some() || u.fragment().is_some() {
            return Err(self.err_at(
                key,
                span_key,
                format!("`{shown}`: a sink URL takes no `?query` or `#fragment`"),
                Some("write the URL as scheme://host:port/path".into()),
            ));
        }
        if grpc && !matches!(u.path(), "" | "/") {
            return Err(self.err_at(
                key,
                span_key,
                format!("`{shown}`: a gRPC endpoint is `scheme://host:port` without a path"),
                Some("`/v1/logs` is for protocol = \"http/protobuf\"".into()),
            ));
        }
        let mut parsed = ParsedUrl {
            url: raw.trim().to_string(),
            user: None,
        };
        if !u.username().is_empty() || u.password().is_some() {
            let user = percent_decode(u.username());
            let password = u.password().map(percent_decode);
            let (Some(user), Some(password)) = (user, password.map_or(Some(None), |p| p.map(Some)))
            else {
                return Err(self.err_at(
                    key,
                    span_key,
                    format!("`{shown}`: the user or password in the URL is not UTF-8"),
                    Some("percent-encode the user and password in the URL, or use the `user` and `password` keys".into()),
                ));
            };
            // cannot fail: the URL has a host (checked above)
            let _ = u.set_username("");
            let _ = u.set_password(None);
            parsed.url = u.as_str().to_string();
            parsed.user = Some((user, password));
        }
        Ok(parsed)
    }

    /// Moves `user:password@` of a URL into the sink's `user`/`password`, refusing two sets of
    /// credentials (the URL's would silently win in reqwest).
    fn url_credentials(
        &self,
        key: &str,
        from_url: Option<(String, Option<String>)>,
        user: &mut Option<String>,
        password: &mut Option<Secret>,
        others: bool,
    ) -> Result<(), ConfigError> {
        let Some((u, p)) = from_url else {
            return Ok(());
        };
        let same = user.as_deref() == Some(u.as_str())
            && password.as_ref().map(Secret::expose) == p.as_deref();
        // a `password` key without `user` would be silently replaced by the URL's
        let conflict = if user.is_some() {
            !same
        } else {
            password.is_some()
        };
        if others || conflict {
            return Err(self.err(
                key,
                "credentials are given both in the URL (`user:password@`) and in `user`/`password`/`api_key`/`bearer_token`".into(),
                Some("keep one: `user` and `password` keys are clearer (and `password` can be `env:NAME` or `file:PATH`)".into()),
            ));
        }
        *user = Some(u);
        *password = p.map(Secret);
        Ok(())
    }

    fn elasticsearch(&self, p: &str, c: &mut ElasticsearchSink) -> Result<(), ConfigError> {
        let key = format!("{p}.url");
        let list = c.url.list();
        if list.is_empty() {
            return Err(self.err(
                &key,
                "no URL given".into(),
                Some("e.g. url = \"https://elastic.example.jp:9200\"".into()),
            ));
        }
        let many = matches!(c.url, super::sinks::Urls::Many(_));
        let mut clean = Vec::new();
        let mut creds: Option<(String, Option<String>)> = None;
        for (i, u) in list.iter().enumerate() {
            let span_key = if many {
                format!("{key}[{}]", i + 1)
            } else {
                key.clone()
            };
            let parsed = self.url(&key, &span_key, u, false)?;
            if let Some(c2) = parsed.user {
                if creds.as_ref().is_some_and(|c1| *c1 != c2) {
                    return Err(self.err_at(
                        &key,
                        &span_key,
                        "the URLs carry different credentials".into(),
                        Some("give them once, as `user` and `password`".into()),
                    ));
                }
                creds = Some(c2);
            }
            clean.push(parsed.url);
        }
        let others = c.api_key.is_some() || c.bearer_token.is_some();
        self.url_credentials(&key, creds, &mut c.user, &mut c.password, others)?;
        c.url = if many {
            super::sinks::Urls::Many(clean)
        } else {
            super::sinks::Urls::One(clean.remove(0))
        };
        self.es_index(&format!("{p}.index"), &c.index)?;
        es_name(&c.namespace).map_err(|why| {
            self.err(
                &format!("{p}.namespace"),
                format!("namespace `{}` {why}", c.namespace),
                Some("data streams are `logs-epost.<kind>-<namespace>`".into()),
            )
        })?;
        // the name goes into the `_bulk?pipeline=` query: nothing that would end or extend it
        if let Some(name) = &c.pipeline
            && (name.is_empty()
                || name.chars().any(|ch| {
                    ch.is_whitespace()
                        || ch.is_control()
                        || matches!(ch, '&' | '?' | '#' | '/' | '%' | '=' | '+')
                }))
        {
            return Err(self.err(
                &format!("{p}.pipeline"),
                format!("`{name}` is not an ingest pipeline name"),
                Some("letters, digits, `-`, `_` and `.`; leave `pipeline` out for none".into()),
            ));
        }
        self.count(
            &format!("{p}.compression_level"),
            u64::from(c.compression_level),
            1,
            9,
            "gzip level: 1 is fastest, 9 smallest",
        )
    }

    /// The `index` pattern: strftime fields chrono understands, making a valid index name.
    fn es_index(&self, key: &str, pattern: &str) -> Result<(), ConfigError> {
        use chrono::format::{Item, StrftimeItems};
        let hint = Some(
            "strftime fields of the record's local date, e.g. `epost-{kind}-%Y.%m.%d` (a literal % is %%)"
                .to_string(),
        );
        let filled = pattern.replace("{kind}", "inlog");
        if StrftimeItems::new(&filled).any(|i| matches!(i, Item::Error)) {
            return Err(self.err(
                key,
                format!("`{pattern}` is not a valid strftime pattern"),
                hint,
            ));
        }
        // Formatting can still fail (`%z`: a date has no offset); it is done here as the
        // encoder does it, on a sample day.
        let Some(name) = super::format_index(&filled, 20_453) else {
            return Err(self.err(
                key,
                format!("`{pattern}` cannot be formatted for a date (time zone fields such as %z or %Z are not available)"),
                hint,
            ));
        };
        es_name(&name).map_err(|why| {
            self.err(
                key,
                format!("`{pattern}` makes the index name `{name}`, which {why}"),
                hint.clone(),
            )
        })?;
        Ok(())
    }

    fn loki(&self, p: &str, c: &mut LokiSink) -> Result<(), ConfigError> {
        let key = format!("{p}.url");
        let parsed = self.url(&key, &key, &c.url, false)?;
        self.url_credentials(
            &key,
            parsed.user,
            &mut c.user,
            &mut c.password,
            c.bearer_token.is_some(),
        )?;
        c.url = parsed.url;
        if !c.push_path.starts_with('/') || c.push_path.contains(['?', '#', ' ']) {
            return Err(self.err(
                &format!("{p}.push_path"),
                format!(
                    "push_path `{}` must be a path starting with `/`",
                    c.push_path
                ),
                Some("e.g. \"/loki/api/v1/push\"".into()),
            ));
        }
        if c.job.is_empty() {
            return Err(self.err(
                &format!("{p}.job"),
                "`job` must not be empty".into(),
                Some("leave `job` out for the default `epost`".into()),
            ));
        }
        use super::{BUILTIN_LABELS, valid_label_name};
        for (k, v) in &c.labels {
            let key = format!("{p}.labels.{k}");
            if BUILTIN_LABELS.contains(&k.as_str()) {
                return Err(self.err(
                    &key,
                    format!(
                        "`{k}` is set by the shipper (host and log from the record, job from `job`)"
                    ),
                    Some("give another label name".into()),
                ));
            }
            if !valid_label_name(k) {
                return Err(self.err(
                    &key,
                    format!("`{k}` is not a valid Loki label name"),
                    Some("letters, digits and `_`, not starting with a digit".into()),
                ));
            }
            if v.is_empty() {
                return Err(self.err(
                    &key,
                    "empty value (Loki drops empty labels)".into(),
                    Some("give the label a value, or leave it out".into()),
                ));
            }
        }
        if let Some(t) = &c.tenant
            && reqwest::header::HeaderValue::from_str(t).is_err()
        {
            return Err(self.err(
                &format!("{p}.tenant"),
                format!("tenant `{t}` is not a valid header value"),
                Some("visible ASCII, without line breaks".into()),
            ));
        }
        self.bytes(
            &format!("{p}.max_request_bytes"),
            c.max_request_bytes,
            KIB,
            256 * MIB,
            "the largest push request",
        )
    }

    fn otlp(&self, p: &str, c: &mut OtlpSink) -> Result<(), ConfigError> {
        let key = format!("{p}.endpoint");
        let grpc = c.protocol == OtlpProtocol::Grpc;
        let parsed = self.url(&key, &key, &c.endpoint, grpc)?;
        self.url_credentials(
            &key,
            parsed.user,
            &mut c.user,
            &mut c.password,
            c.bearer_token.is_some(),
        )?;
        c.endpoint = parsed.url;
        self.bytes(
            &format!("{p}.max_request_bytes"),
            c.max_request_bytes,
            KIB,
            256 * MIB,
            "the largest export request",
        )
    }

    /// Two file sinks on one file interleave their lines; a file sink on the checkpoint or a
    /// dead-letter file destroys it.
    pub(super) fn file_paths(
        &self,
        sinks: &[NamedSink],
        state_dir: &Path,
    ) -> Result<(), ConfigError> {
        let state = normalise(state_dir);
        let dead = state.join("dead-letter");
        let mut seen: Vec<(PathBuf, usize)> = Vec::new();
        for (i, s) in sinks.iter().enumerate() {
            let SinkConfig::File(f) = &s.config else {
                continue;
            };
            let n = i + 1;
            let key = format!("sink[{n}].path");
            let p = normalise(&f.path);
            if f.path.is_dir() {
                return Err(self.err(
                    &key,
                    format!("`{}` is a folder", f.path.display()),
                    Some("give a file name, e.g. 'records.ndjson'".into()),
                ));
            }
            if let Some((_, j)) = seen.iter().find(|(q, _)| same_path(q, &p)) {
                return Err(self.err(
                    &key,
                    format!("sink[{j}] already writes to `{}`", f.path.display()),
                    Some("give each file sink its own file".into()),
                ));
            }
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
            let ours = (same_path(&parent, &state)
                && (name.starts_with("checkpoints.") || name.starts_with("epost-shipper.log")))
                || same_path(&parent, &dead);
            if ours {
                return Err(self.err(
                    &key,
                    format!("`{}` is one of the shipper's own files in the state folder", f.path.display()),
                    Some("checkpoints, dead letters and the service log live there; pick another file".into()),
                ));
            }
            seen.push((p, n));
        }
        Ok(())
    }
}

struct ParsedUrl {
    /// Without `user:password@`.
    url: String,
    user: Option<(String, Option<String>)>,
}

/// The path with its folder resolved through symlinks when it exists, so that `out/x` and
/// `./out/../out/x` and a symlinked folder compare equal.
pub(super) fn normalise(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(d), Some(f)) => std::fs::canonicalize(if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        })
        .map_or_else(|_| p.to_path_buf(), |d| d.join(f)),
        _ => p.to_path_buf(),
    }
}

pub(super) fn same_path(a: &Path, b: &Path) -> bool {
    if cfg!(windows) {
        // NTFS compares names case-insensitively
        a.to_string_lossy().to_lowercase() == b.to_string_lossy().to_lowercase()
    } else {
        a == b
    }
}

/// What Elasticsearch accepts as an index (or data stream namespace) name.
fn es_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 255 {
        return Err("is longer than 255 bytes".into());
    }
    if name.starts_with(['-', '_', '+']) || name == "." || name == ".." {
        return Err("starts with `-`, `_` or `+` (or is `.`/`..`)".into());
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
        ) || c.is_control()
    }) {
        return Err(format!(
            "contains {c:?}, which Elasticsearch does not allow in names"
        ));
    }
    if name.chars().any(char::is_uppercase) {
        return Err("has upper-case letters, which Elasticsearch does not allow".into());
    }
    Ok(())
}

/// Windows device names: `CON.ndjson` opens the console, not a file.
const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// A sink name becomes `<state_dir>/dead-letter/<name>.ndjson`: only names that are a plain
/// file name on every system pass (letters, digits, `-`, `_`, `.` not first; 1 to 64; no
/// Windows device name, with or without extension). `Err` says why not.
pub fn valid_sink_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.chars().count() > 64 {
        return Err("is longer than 64 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!("contains {c:?}, which is not allowed"));
    }
    if name.starts_with('.') {
        return Err("starts with `.`".into());
    }
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    let device = RESERVED.contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        return Err(format!("is a reserved device name on Windows (`{stem}`)"));
    }
    Ok(())
}

/// One line per sink that sends credentials over plain `http://`.
pub fn warnings(sinks: &[NamedSink]) -> Vec<String> {
    let mut out = Vec::new();
    for s in sinks {
        let (urls, creds): (Vec<String>, bool) = match &s.config {
            SinkConfig::Elasticsearch(c) => (
                c.url.list(),
                c.user.is_some()
                    || c.password.is_some()
                    || c.api_key.is_some()
                    || c.bearer_token.is_some(),
            ),
            SinkConfig::Loki(c) => (
                vec![c.url.clone()],
                c.user.is_some() || c.password.is_some() || c.bearer_token.is_some(),
            ),
            SinkConfig::Otlp(c) => (
                vec![c.endpoint.clone()],
                c.user.is_some() || c.password.is_some() || c.bearer_token.is_some(),
            ),
            SinkConfig::File(_) | SinkConfig::Stdout(_) => continue,
        };
        let header = s.config.network().is_some_and(|n| {
            n.headers.keys().any(|k| {
                k.eq_ignore_ascii_case("authorization") || k.to_ascii_lowercase().contains("key")
            })
        });
        let plain: Vec<String> = urls
            .iter()
            .filter(|u| u.trim().to_ascii_lowercase().starts_with("http://"))
            .map(|u| display_url(u))
            .collect();
        if (creds || header) && !plain.is_empty() {
            out.push(format!(
                "sink `{}`: credentials are sent unencrypted to {} (plain http://); use https://",
                s.name,
                plain.join(", ")
            ));
        }
    }
    out
}
