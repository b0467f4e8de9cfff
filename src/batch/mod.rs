//! Batch: records encoded for each sink, in segments.
//!
//! A segment is what the tailer read from one file in one go (at most `segment_max_bytes`
//! of log and `segment_max_records` records), already encoded once per sink. Segments, not
//! records, move between stages: one channel send per segment per sink, and one
//! acknowledgement per segment per sink. The segment also says how far its file's checkpoint
//! may move once every sink has acknowledged it.

use crate::record::Record;

/// Identifies one generation of one file (a file replaced under the same name gets a new id).
pub type FileId = u64;

/// The records of a segment encoded for one sink.
#[derive(Debug, Default, Clone)]
pub struct Payload {
    /// The encoded records, back to back.
    pub data: Vec<u8>,
    /// End of each record in `data`, so that a sink can split, retry or dead-letter a single
    /// record.
    pub ends: Vec<u32>,
}

impl Payload {
    pub fn records(&self) -> usize {
        self.ends.len()
    }

    /// The bytes of record `i`.
    pub fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }
}

#[derive(Debug)]
pub struct Segment {
    pub seq: u64,
    pub file: FileId,
    /// Once acknowledged by every sink, the file's checkpoint may move to here.
    pub end: u64,
    pub records: u32,
    /// Bytes of log this segment was read from.
    pub log_bytes: u64,
    pub kind: crate::kind::Kind,
    /// One payload per sink, in sink order.
    pub payloads: Vec<Payload>,
}

/// How a sink wants its records encoded. Encoding happens on the tailer's thread, straight
/// into the segment's payload, once per sink.
#[derive(Debug, Clone)]
pub enum Encoding {
    /// One JSON document per line (file and stdout sinks).
    Ndjson,
    /// Elasticsearch `_bulk` pairs: a `create` action with `_index` and `_id`, then the document.
    EsBulk(std::sync::Arc<crate::sink::elasticsearch::BulkEncoder>),
    /// Loki push entries (the Loki sink's own per-record layout).
    Loki(std::sync::Arc<crate::sink::loki::LokiEncoder>),
    /// OTLP `LogRecord`s (the OTLP sink's own per-record layout).
    Otlp(std::sync::Arc<crate::sink::otlp::OtlpEncoder>),
}

impl Encoding {
    pub fn encode(&self, rec: &Record<'_>, out: &mut Payload) {
        match self {
            Encoding::Ndjson => {
                rec.write_json(&mut out.data);
                out.data.push(b'\n');
            }
            Encoding::EsBulk(e) => e.encode(rec, &mut out.data),
            Encoding::Loki(e) => e.encode(rec, &mut out.data),
            Encoding::Otlp(e) => e.encode(rec, &mut out.data),
        }
        out.ends.push(out.data.len() as u32);
    }
}
