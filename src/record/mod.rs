//! The structured record of `records.md`: what every sink receives.
//!
//! A record borrows its text from the line it was parsed from wherever it can, and is encoded
//! straight into a sink's request buffer; nothing here allocates per field unless a value had
//! to be rewritten (redaction, decoding).

mod id;
pub mod json;

use std::borrow::Cow;
use std::sync::Arc;

pub use id::{EventId, GENERATION_BYTES, HexId, generation_of};

use crate::kind::Kind;
use crate::time::Timestamp;

/// What is known of a source file before any line is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub host: Arc<str>,
    pub kind: Kind,
    /// `log.file.path`: the path as the shipper opened it.
    pub path: Arc<str>,
    /// The bare file name (`171130.log`), part of `event.id` so that the same file read through
    /// a drive letter or a UNC share gives the same ids.
    pub file_name: Arc<str>,
    /// This source's fixed parts of every record's JSON, rendered once.
    pub json: json::SourceJson,
    /// Which file of that name this is: [`generation_of`] its first line, part of `event.id`
    /// so that a file deleted and re-created under the same name gets new ids.
    pub generation: u64,
}

impl Source {
    pub fn new(host: &str, kind: Kind, path: &str) -> Source {
        let file_name = path
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(path)
            .trim_end_matches(".gz");
        Source {
            host: host.into(),
            kind,
            path: path.into(),
            file_name: file_name.into(),
            json: json::SourceJson::new(host, kind, path),
            generation: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// Per-kind fields; absent when `None` or empty, never `null` or `""`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields<'a> {
    pub client_ip: Option<Cow<'a, str>>,
    pub client_domain: Option<Cow<'a, str>>,
    pub server_domain: Option<Cow<'a, str>>,
    pub server_port: Option<u16>,
    pub destination_ip: Option<Cow<'a, str>>,
    pub destination_domain: Option<Cow<'a, str>>,
    pub user_name: Option<Cow<'a, str>>,
    pub local_id: Option<Cow<'a, str>>,
    pub from: Vec<Cow<'a, str>>,
    pub to: Vec<Cow<'a, str>>,
    pub subject: Option<Cow<'a, str>>,
    pub tls_established: Option<bool>,
    pub error_message: Option<Cow<'a, str>>,
    pub file_path: Option<Cow<'a, str>>,
    pub file_size: Option<u64>,
    pub file_sha256: Option<Cow<'a, str>>,
    pub queue_suffix: Option<Cow<'a, str>>,
    pub session_id: Option<Cow<'a, str>>,
    pub session_status: Option<Cow<'a, str>>,
    pub auth_method: Option<Cow<'a, str>>,
    pub auth_result: Option<Cow<'a, str>>,
    pub reject_reason: Option<&'static str>,
    pub smtp_helo: Option<Cow<'a, str>>,
    pub reply_code: Option<u16>,
    pub direction: Option<&'static str>,
    pub command: Option<Cow<'a, str>>,
    pub args: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    pub filter_warning: Vec<Cow<'a, str>>,
    pub unknown_virus: Option<bool>,
    pub maildb_in: Option<Cow<'a, str>>,
    pub maildb_match: Option<Cow<'a, str>>,
}

/// One record. `source` is shared by every record of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub source: &'a Source,
    pub timestamp: Timestamp,
    pub time_inferred: bool,
    pub message: Cow<'a, str>,
    pub offset: u64,
    pub action: Cow<'a, str>,
    pub outcome: Outcome,
    pub parse_error: Option<Cow<'static, str>>,
    /// Bytes that were not valid in the file's encoding were replaced with U+FFFD.
    pub decode_error: bool,
    /// The record was cut at `max_record_bytes` (`epost.truncated`): its text goes on in the
    /// next record, or (viruslog) the `.RCP` file was longer.
    pub truncated: bool,
    pub fields: Fields<'a>,
}

/// A field's name: dotted (`client.ip`, for OTLP attributes) and as a path of object keys
/// (for nested JSON). Both are static, so encoders never split strings per record.
#[derive(Debug, PartialEq, Eq)]
pub struct Name {
    pub dotted: &'static str,
    pub path: &'static [&'static str],
    /// Each path segment as a JSON key, `"client":`, so the writer copies it in one go.
    pub json_keys: &'static [&'static str],
}

macro_rules! n {
    ($first:literal $(, $rest:literal)*) => {
        &Name {
            dotted: concat!($first $(, ".", $rest)*),
            path: &[$first $(, $rest)*],
            json_keys: &[concat!("\"", $first, "\":") $(, concat!("\"", $rest, "\":"))*],
        }
    };
}

/// A field value as sinks see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'v> {
    Str(&'v str),
    Int(i64),
    Bool(bool),
    Strs(&'v [Cow<'v, str>]),
    Time(Timestamp),
}

impl<'a> Record<'a> {
    pub fn event_id(&self) -> EventId {
        EventId::new(self.source, self.offset)
    }

    /// Calls `f` with every present field under its dotted ECS name, in an order where fields
    /// that share an object prefix are adjacent (the nested JSON writer relies on that).
    /// `event.id` is passed as its hex string.
    pub fn visit<'s>(&'s self, id_hex: &'s str, f: &mut impl FnMut(&'static Name, Value<'s>)) {
        f(n!("@timestamp"), Value::Time(self.timestamp));
        f(n!("message"), Value::Str(&self.message));
        f(n!("event", "id"), Value::Str(id_hex));
        f(
            n!("event", "dataset"),
            Value::Str(self.source.kind.dataset()),
        );
        f(n!("event", "module"), Value::Str("epost"));
        f(n!("event", "action"), Value::Str(&self.action));
        f(n!("event", "outcome"), Value::Str(self.outcome.as_str()));
        f(n!("host", "name"), Value::Str(&self.source.host));
        f(n!("log", "file", "path"), Value::Str(&self.source.path));
        f(
            n!("log", "offset"),
            Value::Int(i64::try_from(self.offset).unwrap_or(i64::MAX)),
        );
        self.visit_fields(f);
    }

    /// The fields after `log.offset` in [`Record::visit`]'s order: those that not every record
    /// has (and `epost.log`).
    // Long on purpose: one line per optional field, in the record's documented order.
    pub fn visit_fields<'s>(&'s self, f: &mut impl FnMut(&'static Name, Value<'s>)) {
        let x = &self.fields;
        let s = |v: &'s Option<Cow<'a, str>>| v.as_deref().filter(|s| !s.is_empty());
        macro_rules! opt_str {
            ($name:expr, $v:expr) => {
                if let Some(v) = s($v) {
                    f($name, Value::Str(v));
                }
            };
        }
        macro_rules! opt {
            ($name:expr, $v:expr, $variant:ident) => {
                if let Some(v) = $v {
                    f($name, Value::$variant(v.into()));
                }
            };
        }
        macro_rules! list {
            ($name:expr, $v:expr) => {
                if !$v.is_empty() {
                    f($name, Value::Strs(&$v));
                }
            };
        }
        opt_str!(n!("client", "ip"), &x.client_ip);
        opt_str!(n!("client", "domain"), &x.client_domain);
        opt_str!(n!("server", "domain"), &x.server_domain);
        opt!(n!("server", "port"), x.server_port, Int);
        opt_str!(n!("destination", "ip"), &x.destination_ip);
        opt_str!(n!("destination", "domain"), &x.destination_domain);
        opt_str!(n!("user", "name"), &x.user_name);
        opt_str!(n!("email", "local_id"), &x.local_id);
        list!(n!("email", "from", "address"), x.from);
        list!(n!("email", "to", "address"), x.to);
        opt_str!(n!("email", "subject"), &x.subject);
        opt!(n!("tls", "established"), x.tls_established, Bool);
        opt_str!(n!("error", "message"), &x.error_message);
        opt_str!(n!("file", "path"), &x.file_path);
        opt!(
            n!("file", "size"),
            x.file_size.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
            Int
        );
        opt_str!(n!("file", "hash", "sha256"), &x.file_sha256);
        f(n!("epost", "log"), Value::Str(self.source.kind.name()));
        if let Some(e) = &self.parse_error {
            f(n!("epost", "parse_error"), Value::Str(e));
        }
        if self.decode_error {
            f(n!("epost", "decode_error"), Value::Bool(true));
        }
        if self.time_inferred {
            f(n!("epost", "time_inferred"), Value::Bool(true));
        }
        if self.truncated {
            f(n!("epost", "truncated"), Value::Bool(true));
        }
        opt_str!(n!("epost", "queue", "suffix"), &x.queue_suffix);
        opt_str!(n!("epost", "session", "id"), &x.session_id);
        opt_str!(n!("epost", "session", "status"), &x.session_status);
        opt_str!(n!("epost", "auth", "method"), &x.auth_method);
        opt_str!(n!("epost", "auth", "result"), &x.auth_result);
        opt!(n!("epost", "reject", "reason"), x.reject_reason, Str);
        opt_str!(n!("epost", "smtp", "helo"), &x.smtp_helo);
        opt!(
            n!("epost", "smtp", "reply_code"),
            x.reply_code.map(i64::from),
            Int
        );
        opt!(n!("epost", "trace", "direction"), x.direction, Str);
        opt_str!(n!("epost", "protocol", "command"), &x.command);
        opt_str!(n!("epost", "protocol", "args"), &x.args);
        opt_str!(n!("epost", "protocol", "status"), &x.status);
        list!(n!("epost", "filter", "warning"), x.filter_warning);
        opt!(
            n!("epost", "filter", "unknown_virus"),
            x.unknown_virus,
            Bool
        );
        opt_str!(n!("epost", "maildb", "in"), &x.maildb_in);
        opt_str!(n!("epost", "maildb", "match"), &x.maildb_match);
    }

    /// The record as one line of nested JSON (what `parse` prints and Elasticsearch stores).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        json::write_record(self, &self.event_id().to_hex(), out);
    }

    /// The same, with the id already computed (the bulk encoder needs it twice).
    pub fn write_json_with_id(&self, id: &HexId, out: &mut Vec<u8>) {
        json::write_record(self, id, out);
    }

    pub fn to_json(&self) -> String {
        let mut v = Vec::with_capacity(512);
        self.write_json(&mut v);
        String::from_utf8(v).expect("JSON writer emits UTF-8")
    }
}
