//! OTLP protobuf written by hand, straight from a record into the segment's payload: no
//! message structs, no per-field allocation. The layout follows
//! `opentelemetry/proto/logs/v1/logs.proto` (tests decode it with `opentelemetry-proto`).
//!
//! Per-record layout in a payload:
//!   `[u16 LE host length][host.name][i32 LE UTC offset in seconds][LogRecord message bytes]`
//! The host picks the record's `ResourceLogs`; the offset lets a dead letter show
//! `@timestamp` exactly as `parse` prints it.

use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use serde_json::{Map, Value as Json};

use crate::record::{Outcome, Record, Value};
use crate::time::Timestamp;

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;

/// `SeverityNumber` values of logs.proto.
const SEVERITY_INFO: u64 = 9;
const SEVERITY_WARN: u64 = 13;

pub const SCOPE_NAME: &str = "epost-shipper";
pub const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const SERVICE_NAME: &str = "epost";
/// The log attribute the OpenTelemetry Collector's Elasticsearch exporter takes as the
/// document `_id` (`logs_dynamic_id: {enabled: true}`); it carries `event.id`, so a record
/// replayed through a gateway overwrites nothing and is not indexed twice
/// (deploy/gateway/README.md). The exporter removes it from the stored document.
pub const DOCUMENT_ID_ATTRIBUTE: &str = "elasticsearch.document_id";

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn vlen(v: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 still takes one byte
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Every tag used here is below 16, so a key is one byte.
fn key(out: &mut Vec<u8>, tag: u8, wire: u8) {
    out.push((tag << 3) | wire);
}

/// Size of a length-delimited field with `inner` bytes of content.
fn field_len(inner: usize) -> usize {
    1 + vlen(inner as u64) + inner
}

fn len_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    key(out, tag, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An `AnyValue`'s content size (without its own key and length).
fn any_len(v: &Value<'_>, time: &[u8]) -> usize {
    match v {
        Value::Str(s) => field_len(s.len()),
        Value::Int(i) => 1 + vlen(*i as u64),
        Value::Bool(_) => 2,
        Value::Strs(list) => field_len(array_len(list)),
        Value::Time(_) => field_len(time.len()),
    }
}

/// An `ArrayValue`'s content size: one `AnyValue` (string) per item.
fn array_len(list: &[std::borrow::Cow<'_, str>]) -> usize {
    list.iter().map(|s| field_len(field_len(s.len()))).sum()
}

fn write_any(out: &mut Vec<u8>, v: &Value<'_>, time: &[u8]) {
    match v {
        Value::Str(s) => len_field(out, 1, s.as_bytes()),
        Value::Bool(b) => {
            key(out, 2, VARINT);
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            key(out, 3, VARINT);
            // int64 is a two's-complement varint (negative values take 10 bytes)
            varint(out, *i as u64);
        }
        Value::Strs(list) => {
            key(out, 5, LEN);
            varint(out, array_len(list) as u64);
            for s in list.iter() {
                key(out, 1, LEN);
                varint(out, field_len(s.len()) as u64);
                len_field(out, 1, s.as_bytes());
            }
        }
        Value::Time(_) => len_field(out, 1, time),
    }
}

/// Writes a `KeyValue` as field `tag` of the enclosing message.
fn write_kv(out: &mut Vec<u8>, tag: u8, k: &str, v: &Value<'_>, time: &[u8]) {
    let any = any_len(v, time);
    key(out, tag, LEN);
    varint(out, (field_len(k.len()) + field_len(any)) as u64);
    len_field(out, 1, k.as_bytes());
    key(out, 2, LEN);
    varint(out, any as u64);
    write_any(out, v, time);
}

fn unix_nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

/// Encodes records for OTLP on the tailer's thread.
#[derive(Debug)]
pub struct OtlpEncoder {
    /// Whether each record carries [`DOCUMENT_ID_ATTRIBUTE`] (the sink's
    /// `document_id_attribute`): 65 bytes a record, about 10 % of the CPU and 12 % of the bytes
    /// against a real collector (docs/benchmarks.md), worth it only where the collector writes
    /// to Elasticsearch.
    document_id: bool,
}

impl Default for OtlpEncoder {
    fn default() -> OtlpEncoder {
        OtlpEncoder::new(true)
    }
}

impl OtlpEncoder {
    pub fn new(document_id: bool) -> OtlpEncoder {
        OtlpEncoder { document_id }
    }

    pub fn encode(&self, rec: &Record<'_>, out: &mut Vec<u8>) {
        let observed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.encode_at(rec, observed, out);
    }

    /// `observed_ns`: when the shipper read the record (`observed_time_unix_nano`).
    pub fn encode_at(&self, rec: &Record<'_>, observed_ns: u64, out: &mut Vec<u8>) {
        let host = rec.source.host.as_bytes();
        let host = &host[..host.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(host.len() as u16).to_le_bytes());
        out.extend_from_slice(host);
        out.extend_from_slice(&rec.timestamp.offset_secs.to_le_bytes());

        key(out, 1, I64);
        out.extend_from_slice(&unix_nanos(rec.timestamp.unix_ms).to_le_bytes());
        let (number, text) = match rec.outcome {
            Outcome::Failure => (SEVERITY_WARN, "WARN"),
            _ => (SEVERITY_INFO, "INFO"),
        };
        key(out, 2, VARINT);
        varint(out, number);
        len_field(out, 3, text.as_bytes());
        // body: AnyValue{string_value}
        key(out, 5, LEN);
        varint(out, field_len(rec.message.len()) as u64);
        len_field(out, 1, rec.message.as_bytes());

        let id = rec.event_id().to_hex();
        let mut time = Vec::new();
        rec.visit(id.as_str(), &mut |name, value| {
            match name.dotted {
                // time, body and resource carry these
                "@timestamp" | "message" | "host.name" => return,
                _ => {}
            }
            time.clear();
            if let Value::Time(t) = value {
                t.write_rfc3339(&mut time);
            }
            write_kv(out, 6, name.dotted, &value, &time);
        });
        if self.document_id {
            write_kv(out, 6, DOCUMENT_ID_ATTRIBUTE, &Value::Str(id.as_str()), &[]);
        }

        key(out, 11, I64);
        out.extend_from_slice(&observed_ns.to_le_bytes());
    }
}

/// One record of a payload, split into its parts.
pub struct Encoded<'a> {
    pub host: &'a [u8],
    pub offset_secs: i32,
    pub log_record: &'a [u8],
}

/// Splits a record's bytes (see the module doc); `None` if they are not in that layout.
pub fn split(rec: &[u8]) -> Option<Encoded<'_>> {
    let n = usize::from(u16::from_le_bytes(rec.get(..2)?.try_into().ok()?));
    let host = rec.get(2..2 + n)?;
    let offset = i32::from_le_bytes(rec.get(2 + n..6 + n)?.try_into().ok()?);
    Some(Encoded {
        host,
        offset_secs: offset,
        log_record: rec.get(6 + n..)?,
    })
}

/// A `Resource` with `service.name` and `host.name`, as field `tag`.
fn resource_len(host: &[u8]) -> usize {
    let kv = |k: usize, v: usize| field_len(field_len(k) + field_len(field_len(v)));
    kv("service.name".len(), SERVICE_NAME.len()) + kv("host.name".len(), host.len())
}

fn write_resource(out: &mut Vec<u8>, host: &[u8]) {
    key(out, 1, LEN);
    varint(out, resource_len(host) as u64);
    // host names are decoded text, so valid UTF-8; lossy only guards a corrupted payload
    let host = String::from_utf8_lossy(host);
    write_kv(out, 1, "service.name", &Value::Str(SERVICE_NAME), &[]);
    write_kv(out, 1, "host.name", &Value::Str(&host), &[]);
}

fn scope_len() -> usize {
    field_len(SCOPE_NAME.len()) + field_len(SCOPE_VERSION.len())
}

/// Builds an `ExportLogsServiceRequest` from encoded records: one `ResourceLogs` per host
/// (in order of first appearance), each with one `ScopeLogs`.
pub fn request<'a>(records: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut hosts: Vec<(&[u8], Vec<&[u8]>)> = Vec::new();
    for r in records {
        let Some(e) = split(r) else { continue };
        match hosts.iter_mut().find(|(h, _)| *h == e.host) {
            Some((_, list)) => list.push(e.log_record),
            None => hosts.push((e.host, vec![e.log_record])),
        }
    }
    let mut size = 0;
    let mut lens = Vec::with_capacity(hosts.len());
    for (host, recs) in &hosts {
        let scope_logs =
            field_len(scope_len()) + recs.iter().map(|r| field_len(r.len())).sum::<usize>();
        let resource_logs = field_len(resource_len(host)) + field_len(scope_logs);
        size += field_len(resource_logs);
        lens.push((resource_logs, scope_logs));
    }
    let mut out = Vec::with_capacity(size);
    for ((host, recs), (resource_logs, scope_logs)) in hosts.iter().zip(lens) {
        key(&mut out, 1, LEN);
        varint(&mut out, resource_logs as u64);
        write_resource(&mut out, host);
        key(&mut out, 2, LEN);
        varint(&mut out, scope_logs as u64);
        key(&mut out, 1, LEN);
        varint(&mut out, scope_len() as u64);
        len_field(&mut out, 1, SCOPE_NAME.as_bytes());
        len_field(&mut out, 2, SCOPE_VERSION.as_bytes());
        for r in recs {
            len_field(&mut out, 2, r);
        }
    }
    debug_assert_eq!(out.len(), size);
    out
}

/// Upper bound of what a record adds to a request (its field key and length, and a share of a
/// `ResourceLogs` of its own when it is the first of its host).
pub fn request_share(rec: &[u8]) -> usize {
    let host = split(rec).map_or(0, |e| e.host.len());
    rec.len() + 8 + 64 + host
}

/// The record as the nested JSON object `parse` prints (same names, values and types; keys
/// sorted), rebuilt from its OTLP encoding for the dead-letter file. Falls back to the raw
/// bytes when they cannot be decoded.
pub fn record_json(rec: &[u8]) -> Vec<u8> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;

    let Some(e) = split(rec) else {
        return rec.to_vec();
    };
    let Ok(lr) = LogRecord::decode(e.log_record) else {
        return rec.to_vec();
    };
    let mut root = Map::new();
    let mut ts = Vec::new();
    Timestamp {
        unix_ms: (lr.time_unix_nano / 1_000_000) as i64,
        offset_secs: e.offset_secs,
    }
    .write_rfc3339(&mut ts);
    root.insert(
        "@timestamp".into(),
        Json::String(String::from_utf8_lossy(&ts).into_owned()),
    );
    fn json_of(v: Option<Any>) -> Json {
        match v {
            Some(Any::StringValue(s)) => Json::String(s),
            Some(Any::BoolValue(b)) => Json::Bool(b),
            Some(Any::IntValue(i)) => Json::from(i),
            Some(Any::DoubleValue(d)) => Json::from(d),
            Some(Any::ArrayValue(a)) => {
                Json::Array(a.values.into_iter().map(|v| json_of(v.value)).collect())
            }
            _ => Json::Null,
        }
    }
    if let Some(body) = lr.body {
        root.insert("message".into(), json_of(body.value));
    }
    let mut put = |dotted: &str, value: Json| {
        let mut obj = &mut root;
        let mut parts = dotted.split('.').peekable();
        while let Some(p) = parts.next() {
            if parts.peek().is_none() {
                obj.insert(p.to_string(), value);
                return;
            }
            let slot = obj
                .entry(p.to_string())
                .or_insert_with(|| Json::Object(Map::new()));
            if !slot.is_object() {
                *slot = Json::Object(Map::new());
            }
            obj = slot.as_object_mut().expect("made an object above");
        }
    };
    put(
        "host.name",
        Json::String(String::from_utf8_lossy(e.host).into_owned()),
    );
    for kv in lr.attributes {
        // a copy of `event.id` for the collector, not a field of the record
        if kv.key == DOCUMENT_ID_ATTRIBUTE {
            continue;
        }
        put(&kv.key, json_of(kv.value.and_then(|v| v.value)));
    }
    serde_json::to_vec(&Json::Object(root)).unwrap_or_else(|_| rec.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;
    use crate::record::Source;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use std::borrow::Cow;

    fn record(source: &Source) -> Record<'_> {
        let mut r = Record {
            source,
            timestamp: Timestamp {
                unix_ms: 1_512_001_244_123,
                offset_secs: 9 * 3600,
            },
            time_inferred: true,
            message: Cow::Borrowed("B0000000001 send fail: 550 user unknown"),
            offset: 0,
            action: Cow::Borrowed("delivery-failed"),
            outcome: Outcome::Failure,
            parse_error: None,
            decode_error: false,
            truncated: false,
            fields: Default::default(),
        };
        r.fields.to = vec![Cow::Borrowed("a@example.jp"), Cow::Borrowed("b@example.jp")];
        r.fields.reply_code = Some(550);
        r.fields.tls_established = Some(false);
        r.fields.client_ip = Some(Cow::Borrowed("203.0.113.5"));
        r
    }

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX, (-1i64) as u64] {
            let mut b = Vec::new();
            varint(&mut b, v);
            assert_eq!(b.len(), vlen(v), "{v}");
        }
    }

    /// `document_id_attribute = false`: the records decode the same, without the one
    /// attribute. Break seen failing: the `if self.document_id` removed.
    #[test]
    fn document_id_attribute_can_be_left_out() {
        let src = Source::new("MAILSV01", Kind::Faillog, "/m/faillog/MAILSV01/171130.log");
        let rec = record(&src);
        let attrs = |enc: OtlpEncoder| {
            let mut payload = Vec::new();
            enc.encode_at(&rec, 42, &mut payload);
            let body = request(std::iter::once(&payload[..]));
            let req = ExportLogsServiceRequest::decode(&body[..]).unwrap();
            let lr = req.resource_logs[0].scope_logs[0].log_records[0].clone();
            (lr.body, lr.attributes)
        };
        let (body_on, mut on) = attrs(OtlpEncoder::new(true));
        let (body_off, off) = attrs(OtlpEncoder::new(false));
        assert_eq!(body_on, body_off);
        assert_eq!(
            on.last().map(|kv| kv.key.as_str()),
            Some(DOCUMENT_ID_ATTRIBUTE)
        );
        on.pop();
        assert_eq!(on, off, "everything else the same");
        assert!(off.iter().all(|kv| kv.key != DOCUMENT_ID_ATTRIBUTE));
        assert!(off.iter().any(|kv| kv.key == "event.id"));
    }

    #[test]
    fn log_record_decodes_with_the_reference_types() {
        let src = Source::new("MAILSV01", Kind::Faillog, "/m/faillog/MAILSV01/171130.log");
        let rec = record(&src);
        let mut payload = Vec::new();
        OtlpEncoder::default().encode_at(&rec, 42, &mut payload);
        OtlpEncoder::default().encode_at(&rec, 43, &mut payload);
        let one = payload.len() / 2;
        let body = request([&payload[..one], &payload[one..]].into_iter());
        let req = ExportLogsServiceRequest::decode(&body[..]).unwrap();
        assert_eq!(req.resource_logs.len(), 1);
        let rl = &req.resource_logs[0];
        let res: Vec<_> = rl.resource.as_ref().unwrap().attributes.iter().collect();
        assert_eq!(res[0].key, "service.name");
        assert_eq!(
            res[0].value.as_ref().unwrap().value,
            Some(Any::StringValue("epost".into()))
        );
        assert_eq!(res[1].key, "host.name");
        assert_eq!(
            res[1].value.as_ref().unwrap().value,
            Some(Any::StringValue("MAILSV01".into()))
        );
        let sl = &rl.scope_logs[0];
        let scope = sl.scope.as_ref().unwrap();
        assert_eq!(scope.name, "epost-shipper");
        assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(sl.log_records.len(), 2);
        let lr = &sl.log_records[0];
        assert_eq!(lr.time_unix_nano, 1_512_001_244_123_000_000);
        assert_eq!(lr.observed_time_unix_nano, 42);
        assert_eq!(lr.severity_number, 13);
        assert_eq!(lr.severity_text, "WARN");
        assert_eq!(
            lr.body.as_ref().unwrap().value,
            Some(Any::StringValue(rec.message.to_string()))
        );
        let attr = |k: &str| {
            lr.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(attr("epost.smtp.reply_code"), Some(Any::IntValue(550)));
        assert_eq!(attr("log.offset"), Some(Any::IntValue(0)));
        assert_eq!(attr("tls.established"), Some(Any::BoolValue(false)));
        assert_eq!(attr("epost.time_inferred"), Some(Any::BoolValue(true)));
        assert_eq!(
            attr("client.ip"),
            Some(Any::StringValue("203.0.113.5".into()))
        );
        assert_eq!(
            attr("event.id"),
            Some(Any::StringValue(rec.event_id().to_hex().as_str().into()))
        );
        assert_eq!(
            attr(DOCUMENT_ID_ATTRIBUTE),
            attr("event.id"),
            "the Elasticsearch exporter's document id is the event id"
        );
        match attr("email.to.address") {
            Some(Any::ArrayValue(a)) => {
                let v: Vec<_> = a.values.iter().map(|v| v.value.clone()).collect();
                assert_eq!(
                    v,
                    vec![
                        Some(Any::StringValue("a@example.jp".into())),
                        Some(Any::StringValue("b@example.jp".into()))
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        for k in ["@timestamp", "message", "host.name"] {
            assert_eq!(attr(k), None, "{k} is not an attribute");
        }
    }

    #[test]
    fn hosts_get_their_own_resource() {
        let a = Source::new("MX1", Kind::Inlog, "/m/inlog/MX1/171130.log");
        let b = Source::new("MX2", Kind::Inlog, "/m/inlog/MX2/171130.log");
        let mut recs = Vec::new();
        for s in [&a, &b, &a] {
            let mut p = Vec::new();
            OtlpEncoder::default().encode_at(&record(s), 1, &mut p);
            recs.push(p);
        }
        let body = request(recs.iter().map(|r| &r[..]));
        let req = ExportLogsServiceRequest::decode(&body[..]).unwrap();
        let counts: Vec<usize> = req
            .resource_logs
            .iter()
            .map(|r| r.scope_logs[0].log_records.len())
            .collect();
        assert_eq!(counts, vec![2, 1]);
        assert!(request(std::iter::empty()).is_empty());
    }

    #[test]
    fn dead_letter_json_is_the_parse_record() {
        let src = Source::new("MAILSV01", Kind::Faillog, "/m/faillog/MAILSV01/171130.log");
        let rec = record(&src);
        let mut p = Vec::new();
        OtlpEncoder::default().encode_at(&rec, 1, &mut p);
        let ours: Json = serde_json::from_slice(&record_json(&p)).unwrap();
        let parse: Json = serde_json::from_str(&rec.to_json()).unwrap();
        assert_eq!(ours, parse);
        assert_eq!(record_json(b"x"), b"x");
    }
}
