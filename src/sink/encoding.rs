//! The sinks' record encodings, as one enum: the tailer encodes every record once per sink,
//! on its own thread, straight into the segment's payload. An enum (one `match` per record,
//! inlined) rather than `Arc<dyn Encode>`: a `dyn` call per record was measured 30 % slower
//! for OTLP. It lives here, above `batch`, because it names the sinks' encoders; `batch`
//! owns only the [`Encode`] trait it implements.

use std::sync::Arc;

use crate::batch::Encode;
use crate::record::Record;

/// How a sink wants its records encoded.
#[derive(Debug, Clone)]
pub enum Encoding {
    /// One JSON document per line (file and stdout sinks).
    Ndjson,
    /// Elasticsearch `_bulk` pairs: a `create` action with `_index` and `_id`, then the document.
    EsBulk(Arc<super::elasticsearch::BulkEncoder>),
    /// Loki push entries (the Loki sink's own per-record layout).
    Loki(Arc<super::loki::LokiEncoder>),
    /// OTLP `LogRecord`s (the OTLP sink's own per-record layout).
    Otlp(Arc<super::otlp::OtlpEncoder>),
}

impl Encode for Encoding {
    #[inline]
    fn encode(&self, rec: &Record<'_>, out: &mut Vec<u8>) {
        match self {
            Encoding::Ndjson => {
                rec.write_json(out);
                out.push(b'\n');
            }
            Encoding::EsBulk(e) => e.encode(rec, out),
            Encoding::Loki(e) => e.encode(rec, out),
            Encoding::Otlp(e) => e.encode(rec, out),
        }
    }
}
