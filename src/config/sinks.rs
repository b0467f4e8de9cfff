//! `[[sink]]` tables. Keys shared by the network sinks (batching, TLS, auth) have the same
//! names and defaults everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::units::{ByteSize, HumanDuration};

/// One `[[sink]]` table; `type` selects the variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    File(FileSink),
    Stdout(StdoutSink),
    Elasticsearch(Box<ElasticsearchSink>),
    Loki(Box<LokiSink>),
    Otlp(Box<OtlpSink>),
}

impl SinkConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::File(_) => "file",
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::Elasticsearch(_) => "elasticsearch",
            SinkConfig::Loki(_) => "loki",
            SinkConfig::Otlp(_) => "otlp",
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            SinkConfig::File(s) => s.name.as_deref(),
            SinkConfig::Stdout(s) => s.name.as_deref(),
            SinkConfig::Elasticsearch(s) => s.name.as_deref(),
            SinkConfig::Loki(s) => s.name.as_deref(),
            SinkConfig::Otlp(s) => s.name.as_deref(),
        }
    }

    /// The keys shared by the network sinks; `None` for file and stdout.
    pub fn network(&self) -> Option<NetworkKeys<'_>> {
        match self {
            SinkConfig::File(_) | SinkConfig::Stdout(_) => None,
            SinkConfig::Elasticsearch(s) => Some(s.network()),
            SinkConfig::Loki(s) => Some(s.network()),
            SinkConfig::Otlp(s) => Some(s.network()),
        }
    }

    /// The `type` values, in the order the README lists them.
    pub const TYPES: [&'static str; 5] = ["file", "stdout", "elasticsearch", "loki", "otlp"];

    /// Reads one `[[sink]]` table whose `type` was already taken out. The table is read by
    /// its own type's deserializer, not through serde's internally tagged enum, which buffers
    /// the table and loses every position inside it.
    pub(super) fn from_table(
        ty: &str,
        table: toml::Spanned<toml::de::DeValue<'_>>,
    ) -> Option<Result<SinkConfig, toml::de::Error>> {
        let de = toml::de::ValueDeserializer::from(table);
        Some(match ty {
            "file" => FileSink::deserialize(de).map(SinkConfig::File),
            "stdout" => StdoutSink::deserialize(de).map(SinkConfig::Stdout),
            "elasticsearch" => {
                ElasticsearchSink::deserialize(de).map(|s| SinkConfig::Elasticsearch(Box::new(s)))
            }
            "loki" => LokiSink::deserialize(de).map(|s| SinkConfig::Loki(Box::new(s))),
            "otlp" => OtlpSink::deserialize(de).map(|s| SinkConfig::Otlp(Box::new(s))),
            _ => return None,
        })
    }

    /// How records are grouped into requests.
    pub fn batch(&self) -> BatchPolicy {
        match self {
            // Local writes: everything queued goes in one write + fsync.
            SinkConfig::File(_) | SinkConfig::Stdout(_) => BatchPolicy {
                max_events: 100_000,
                max_bytes: 64 << 20,
                timeout: Duration::ZERO,
                max_in_flight: 1,
            },
            SinkConfig::Elasticsearch(s) => s.batch(),
            SinkConfig::Loki(s) => s.batch(),
            SinkConfig::Otlp(s) => s.batch(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    pub max_events: usize,
    pub max_bytes: u64,
    /// How long the first segment of a batch may wait for more.
    pub timeout: Duration,
    /// Requests in flight at once.
    pub max_in_flight: usize,
}

/// Adds the keys every network sink shares to a sink struct: `batch_max_events`,
/// `batch_max_bytes`, `batch_timeout`, `max_in_flight`, `request_timeout`, `headers` and
/// `tls.*`. (serde's `flatten` cannot be combined with `deny_unknown_fields`, which the
/// "did you mean" errors need.)
macro_rules! network_sink {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            #[serde(default = "d_events")]
            pub batch_max_events: usize,
            #[serde(default = "d_bytes")]
            pub batch_max_bytes: ByteSize,
            #[serde(default = "d_timeout")]
            pub batch_timeout: HumanDuration,
            #[serde(default = "d_in_flight")]
            pub max_in_flight: usize,
            #[serde(default = "d_request_timeout")]
            pub request_timeout: HumanDuration,
            /// Extra HTTP headers / gRPC metadata (values may be `env:`/`file:` secrets).
            #[serde(default)]
            pub headers: BTreeMap<String, Secret>,
            #[serde(default)]
            pub tls: TlsKeys,
        }

        impl $name {
            pub fn network(&self) -> NetworkKeys<'_> {
                NetworkKeys {
                    batch: BatchKeys {
                        batch_max_events: self.batch_max_events,
                        batch_max_bytes: self.batch_max_bytes,
                        batch_timeout: self.batch_timeout,
                        max_in_flight: self.max_in_flight,
                    },
                    request_timeout: self.request_timeout,
                    headers: &self.headers,
                    tls: &self.tls,
                }
            }

            pub fn batch(&self) -> BatchPolicy {
                BatchKeys {
                    batch_max_events: self.batch_max_events,
                    batch_max_bytes: self.batch_max_bytes,
                    batch_timeout: self.batch_timeout,
                    max_in_flight: self.max_in_flight,
                }
                .policy()
            }
        }
    };
}

/// The keys every network sink has, for validation.
#[derive(Debug, Clone)]
pub struct NetworkKeys<'a> {
    pub batch: BatchKeys,
    pub request_timeout: HumanDuration,
    pub headers: &'a BTreeMap<String, Secret>,
    pub tls: &'a TlsKeys,
}

/// The batching keys of a network sink.
#[derive(Debug, Clone)]
pub struct BatchKeys {
    pub batch_max_events: usize,
    pub batch_max_bytes: ByteSize,
    pub batch_timeout: HumanDuration,
    pub max_in_flight: usize,
}

fn d_events() -> usize {
    5000
}
fn d_bytes() -> ByteSize {
    ByteSize(5 << 20)
}
fn d_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn d_in_flight() -> usize {
    4
}

impl Default for BatchKeys {
    fn default() -> Self {
        BatchKeys {
            batch_max_events: d_events(),
            batch_max_bytes: d_bytes(),
            batch_timeout: d_timeout(),
            max_in_flight: d_in_flight(),
        }
    }
}

impl BatchKeys {
    pub fn policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_events: self.batch_max_events.max(1),
            max_bytes: self.batch_max_bytes.0.max(1024),
            timeout: self.batch_timeout.0,
            max_in_flight: self.max_in_flight.clamp(1, 64),
        }
    }
}

/// `tls.ca_file`, `tls.cert_file`, `tls.key_file`, `tls.insecure_skip_verify`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsKeys {
    /// PEM bundle of CAs to trust (in addition to the public roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) and its key, for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. Off by default; for tests only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A credential: a literal, `env:NAME` or `file:PATH` (read and trimmed at load).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn resolve(raw: &str) -> Result<Secret, String> {
        if let Some(name) = raw.strip_prefix("env:") {
            std::env::var(name)
                .map(Secret)
                .map_err(|_| format!("environment variable `{name}` is not set"))
        } else if let Some(path) = raw.strip_prefix("file:") {
            // a secret is a line; 64 KiB bounds what a wrong path (a log, a device) can cost
            super::read_limited(std::path::Path::new(path), 64 << 10)
                .and_then(|b| {
                    String::from_utf8(b).map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                    })
                })
                .map(|s| Secret(s.trim().to_string()))
                .map_err(|e| format!("cannot read secret file `{path}`: {e}"))
        } else {
            Ok(Secret(raw.to_string()))
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Secret::resolve(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSink {
    pub name: Option<String>,
    /// NDJSON, appended; fsynced before acknowledging.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StdoutSink {
    pub name: Option<String>,
}

/// One URL or a list (requests rotate over them; a failing one is skipped).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Urls {
    pub fn list(&self) -> Vec<String> {
        match self {
            Urls::One(u) => vec![u.clone()],
            Urls::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EsMode {
    #[default]
    DataStream,
    Index,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

network_sink! {
    pub struct ElasticsearchSink {
        pub name: Option<String>,
        pub url: Urls,
        #[serde(default)]
        pub mode: EsMode,
        /// `mode = "index"`: the index name; `{kind}` and strftime fields of the record's time.
        #[serde(default = "d_index")]
        pub index: String,
        /// `mode = "data_stream"`: `logs-epost.<kind>-<namespace>`.
        #[serde(default = "d_namespace")]
        pub namespace: String,
        /// Install (or update) the index template with ECS mappings on start.
        #[serde(default = "yes")]
        pub template: bool,
        /// An ingest pipeline to run on every document.
        pub pipeline: Option<String>,
        pub user: Option<String>,
        pub password: Option<Secret>,
        pub api_key: Option<Secret>,
        pub bearer_token: Option<Secret>,
        #[serde(default)]
        pub compression: Compression,
        /// Gzip level 1–9 (1 is fastest).
        #[serde(default = "d_level")]
        pub compression_level: u32,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LokiLine {
    #[default]
    Message,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LokiEncoding {
    #[default]
    Protobuf,
    Json,
}

network_sink! {
    pub struct LokiSink {
        pub name: Option<String>,
        /// Base URL; the push path is added.
        pub url: String,
        /// The push path (`/insert/loki/api/v1/push` for VictoriaLogs' Loki endpoint).
        #[serde(default = "d_push_path")]
        pub push_path: String,
        /// Static labels added to every stream (low cardinality only).
        #[serde(default)]
        pub labels: BTreeMap<String, String>,
        #[serde(default = "d_job")]
        pub job: String,
        /// `X-Scope-OrgID`.
        pub tenant: Option<String>,
        #[serde(default)]
        pub line_format: LokiLine,
        #[serde(default)]
        pub encoding: LokiEncoding,
        pub user: Option<String>,
        pub password: Option<Secret>,
        pub bearer_token: Option<Secret>,
        /// Largest push request (uncompressed lines); a batch is split into pushes of at most
        /// this size. 1 MiB is what Loki's own agents send, and stays well under the gRPC
        /// message limits between Loki's distributors and ingesters.
        #[serde(default = "d_loki_request_bytes")]
        pub max_request_bytes: ByteSize,
        /// Send `event_id`, `local_id`, `client_ip`, `user`, `outcome` as structured metadata.
        /// Loki before 3.0 (or with `allow_structured_metadata: false`) refuses entries that
        /// carry any: turn it off there.
        #[serde(default = "yes")]
        pub structured_metadata: bool,
    }
}

fn d_loki_request_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum OtlpProtocol {
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

network_sink! {
    pub struct OtlpSink {
        pub name: Option<String>,
        /// `http://host:4317` (gRPC) or `http://host:4318` (HTTP; `/v1/logs` is added).
        pub endpoint: String,
        #[serde(default)]
        pub protocol: OtlpProtocol,
        #[serde(default)]
        pub compression: Compression,
        /// Largest export request (uncompressed protobuf); a batch is split into requests of
        /// at most this size. The default stays under the 4 MiB a collector's gRPC receiver
        /// accepts by default.
        #[serde(default = "d_otlp_request_bytes")]
        pub max_request_bytes: ByteSize,
        /// Basic auth (`authorization: Basic ...`), for collectors behind an authenticating
        /// proxy or with the basicauth extension.
        pub user: Option<String>,
        pub password: Option<Secret>,
        /// `authorization: Bearer <token>` (bearertokenauth extension).
        pub bearer_token: Option<Secret>,
        /// Each record carries `elasticsearch.document_id` = `event.id`, the document `_id`
        /// a collector's Elasticsearch exporter takes (deploy/gateway/). Off saves about 10 %
        /// where no collector writes to Elasticsearch.
        #[serde(default = "yes")]
        pub document_id_attribute: bool,
    }
}

fn d_otlp_request_bytes() -> ByteSize {
    ByteSize(4000 << 10)
}

fn d_index() -> String {
    "epost-{kind}-%Y.%m.%d".into()
}
fn d_namespace() -> String {
    "default".into()
}
fn d_push_path() -> String {
    "/loki/api/v1/push".into()
}
fn d_job() -> String {
    "epost".into()
}
fn d_level() -> u32 {
    1
}
fn d_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn yes() -> bool {
    true
}

// Naming rules of the sinks that the config checks at load. They live here, in the lower
// layer, and the sinks use them from here, so that `config` need not depend on `sink`.

/// The index name of `pattern` (strftime fields, `{kind}` already replaced) on a local day
/// (days since 1970-01-01), lower-cased as Elasticsearch wants it; `None` if chrono cannot
/// format it (an invalid field, or `%z` on a date). `DelayedFormat::to_string` would panic
/// there; writing it reports the error instead.
pub fn format_index(pattern: &str, local_day: i64) -> Option<String> {
    use std::fmt::Write as _;
    let date = chrono::DateTime::from_timestamp(local_day.checked_mul(86_400)?, 0)?.naive_utc();
    let mut out = String::new();
    write!(out, "{}", date.format(pattern)).ok()?;
    Some(out.to_lowercase())
}

/// Labels every stream has; static labels from the config may not reuse them.
pub const BUILTIN_LABELS: [&str; 3] = ["host", "job", "log"];

/// Label names Loki (and Prometheus) accept.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
